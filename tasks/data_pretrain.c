// tasks/data_pretrain.c — the `pretrain` language-model corpus.
//
// Like web text, it holds the downstream domains but none of their evaluation data. Each
// split of `pretrain` takes the same split of every source, so its train split holds only
// train-split material:
//   SOTU addresses (whole, split by address as in sotu-era / sotu-party),
//   Moby-Dick (data/moby-dick, one document per chapter file, split by file name),
//   SpamAssassin texts (cleaned as in `spam`, labels dropped, split as in `spam`),
//   CMUdict entries in the dictionary's line format "WORD  PH1 PH2 ..." / "WORD(1)  ...",
//   split by word as in `g2p`, in documents of CMUDICT_DOC_LINES lines.
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/errors.h"
#include "tasks/loaders.h"

enum { CMUDICT_DOC_LINES = 1000 };

static void add_doc(Task *t, SplitId s, const char *text) {
    Example ex = {.text = text, .label = -1};
    task_add(t, s, &ex);
}

static int add_moby_dick(Task *t, const char *data_dir) {
    if (task_require_data(data_dir, "moby-dick") != 0) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/moby-dick/data/file_list.json", data_dir);
    json_error_t jerr;
    json_t *list = json_load_file(path, 0, &jerr);
    if (!list) return err_set("%s:%d: %s (run `make data` again to refetch)", path, jerr.line, jerr.text);
    int status = json_is_array(list) && json_array_size(list) > 0 ? 0 : err_set("%s: expected a JSON array of file names", path);
    for (size_t i = 0; status == 0 && i < json_array_size(list); i++) {
        const char *name = json_string_value(json_array_get(list, i));
        if (!name) { status = err_set("%s: entry %zu is not a string", path, i); break; }
        char file[4096];
        snprintf(file, sizeof file, "%s/moby-dick/data/%s", data_dir, name);
        char *text;
        size_t len;
        if (task_read_file(file, 1, &text, &len) != 0) { status = -1; break; }
        add_doc(t, task_split_of_key("moby-dick", name, strlen(name)), task_strndup(t, text, len));
        free(text);
    }
    json_decref(list);
    return status;
}

// Appends CMUdict lines of one split into documents of CMUDICT_DOC_LINES lines.
static void add_cmudict_split(Task *t, const CmuWord *words, int n, SplitId split) {
    size_t cap = 1 << 16, len = 0;
    char *doc = xmalloc(cap);
    int lines = 0;
    for (int i = 0; i <= n; i++) {
        if ((i == n || lines == CMUDICT_DOC_LINES) && lines > 0) {
            add_doc(t, split, task_strndup(t, doc, len));
            len = 0;
            lines = 0;
        }
        if (i == n) break;
        if (words[i].split != split) continue;
        for (int k = 0; k < words[i].nprons; k++) {
            size_t need = strlen(words[i].word) + strlen(words[i].prons[k]) + 16;
            if (len + need > cap) { cap = 2 * (len + need); doc = xrealloc(doc, cap); }
            len += (size_t)(k ? sprintf(doc + len, "%s(%d)  %s\n", words[i].word, k, words[i].prons[k])
                              : sprintf(doc + len, "%s  %s\n", words[i].word, words[i].prons[k]));
        }
        lines++;
    }
    free(doc);
}

int load_pretrain(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out) {
    Task *t = task_new(name, TASK_LM,
                       "LM corpus: SOTU addresses, Moby-Dick chapters, SpamAssassin texts, CMUdict lines (each split from the same split of every source)");
    static const char *const METRICS[] = {"loss"};
    task_set_metrics(t, 1, METRICS);
    for (int s = 0; s < NUM_SPLITS; s++)
        t->split_sources[s] = "the same split of sotu (by address), moby-dick (by chapter), spam (by text), cmudict (by word)";

    SotuAddress *addr;
    int na = sotu_read(t, data_dir, &addr);
    if (na < 0) { task_free(t); return -1; }
    for (int i = 0; i < na; i++) add_doc(t, addr[i].split, addr[i].text);
    free(addr);

    if (add_moby_dick(t, data_dir) != 0) { task_free(t); return -1; }

    SpamMessage *msgs;
    int nm = spam_read(t, data_dir, &msgs, &t->n_duplicates);
    if (nm < 0) { task_free(t); return -1; }
    for (int i = 0; i < nm; i++) add_doc(t, msgs[i].split, msgs[i].text);
    free(msgs);

    CmuWord *words;
    int nw = cmudict_read(t, data_dir, &words);
    if (nw < 0) { task_free(t); return -1; }
    for (int s = 0; s < NUM_SPLITS; s++) add_cmudict_split(t, words, nw, (SplitId)s);
    free(words);
    // as in the tasks: no evaluation document occurs verbatim in the train corpus
    const Split *tr = task_split(t, SPLIT_TRAIN);
    const char **train = xmalloc(((size_t)tr->n + 1) * sizeof *train);
    for (int i = 0; i < tr->n; i++) train[i] = tr->ex[i].text;
    for (int s = SPLIT_VALIDATION; s < NUM_SPLITS; s++)
        t->n_decontaminated += task_drop_verbatim(t, (SplitId)s, train, tr->n);
    free(train);
    *out = t;
    return 0;
}
