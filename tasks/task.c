// tasks/task.c — task registry, storage (one arena per task), split hashing and baselines.
// See task.h.
#include "tasks/task.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/files.h"
#include "tasks/loaders.h"
#include "tasks/metrics.h"

const char *const TASK_KIND_NAMES[] = {"lm", "cls", "reg", "gen"};
const char *const SPLIT_NAMES[NUM_SPLITS] = {"train", "validation", "test"};

// ----------------------------------------------------------------------------
// registry

typedef struct {
    const char *name;
    TaskLoader load;
    const char *path_hint;   // NULL: built-in
} TaskEntry;

static const TaskEntry TASKS[] = {
    {"pretrain", load_pretrain, NULL},
    {"spam", load_spam, NULL},
    {"sotu-era", load_sotu, NULL},
    {"sotu-party", load_sotu, NULL},
    {"g2p", load_g2p, NULL},
    {"glue-sst2", load_glue, "GLUE SST-2 folder: train.tsv, dev.tsv"},
    {"glue-mnli", load_glue, "GLUE MNLI folder: train.tsv, dev_matched.tsv (validation), dev_mismatched.tsv (test)"},
    {"glue-cola", load_glue, "GLUE CoLA folder: train.tsv, dev.tsv (no header row)"},
    {"glue-stsb", load_glue, "GLUE STS-B folder: train.tsv, dev.tsv"},
    {"glue-mrpc", load_glue, "GLUE MRPC folder: train.tsv, dev.tsv"},
    {"glue-qqp", load_glue, "GLUE QQP folder: train.tsv, dev.tsv"},
    {"glue-qnli", load_glue, "GLUE QNLI folder: train.tsv, dev.tsv"},
    {"glue-rte", load_glue, "GLUE RTE folder: train.tsv, dev.tsv"},
    {"e2e", load_e2e, "E2E NLG folder: trainset.csv, devset.csv, testset_w_refs.csv (mr,ref)"},
    {"wikisql", load_wikisql, "WikiSQL folder: {train,dev,test}.jsonl and {train,dev,test}.tables.jsonl"},
    {"samsum", load_samsum, "SAMSum folder: train.json, val.json, test.json"},
};
enum { NUM_TASKS = sizeof TASKS / sizeof TASKS[0] };

const char *const TASK_NAMES[] = {"pretrain", "spam", "sotu-era", "sotu-party", "g2p",
                                  "glue-sst2", "glue-mnli", "glue-cola", "glue-stsb",
                                  "glue-mrpc", "glue-qqp", "glue-qnli", "glue-rte",
                                  "e2e", "wikisql", "samsum", NULL};

static const TaskEntry *task_entry(const char *name) {
    for (int i = 0; i < NUM_TASKS; i++)
        if (!strcmp(TASKS[i].name, name)) return &TASKS[i];
    return NULL;
}

int task_is_builtin(const char *name) {
    const TaskEntry *e = task_entry(name);
    return e && !e->path_hint;
}

const char *task_path_hint(const char *name) {
    const TaskEntry *e = task_entry(name);
    return e && e->path_hint ? e->path_hint : "";
}

int task_load(const char *name, const char *path, const char *data_dir, Task **out) {
    TaskOptions opt = {0};
    return task_load_opts(name, path, data_dir, &opt, out);
}

int task_load_opts(const char *name, const char *path, const char *data_dir,
                   const TaskOptions *opt, Task **out) {
    *out = NULL;
    const TaskEntry *e = task_entry(name);
    if (!e) {
        char list[1024] = "";
        for (int i = 0; TASK_NAMES[i]; i++) {
            if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, TASK_NAMES[i], sizeof list - strlen(list) - 1);
        }
        return err_set("unknown task '%s'; known tasks: %s", name, list);
    }
    if (e->path_hint && !path)
        return err_set("task '%s' reads your own copy of the data: give its path (%s)", name, e->path_hint);
    if (!e->path_hint && path)
        return err_set("task '%s' is built in (data from `make data`) and takes no path; got '%s'", name, path);
    if (!data_dir) data_dir = getenv("LORALAB_DATA");
    if (!data_dir || !*data_dir) data_dir = "data";
    TaskOptions defaults = {0};
    if (!opt) opt = &defaults;
    if (e->load(name, path, data_dir, opt, out) != 0) {
        LAB_ASSERT(*out == NULL);
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// storage

struct TaskArena {
    TaskArena *next;
    size_t used, cap;
    _Alignas(8) char data[];
};

void *task_alloc(Task *t, size_t bytes) {
    bytes = (bytes + 7) & ~(size_t)7;
    TaskArena *a = t->arena;
    if (!a || a->used + bytes > a->cap) {
        // Blocks grow from 16 KiB, doubling up to 1 MiB: a small task takes little memory.
        size_t grow = !a ? (1u << 14) : a->cap >= (1u << 19) ? (1u << 20) : 2 * a->cap;
        size_t cap = bytes > grow ? bytes : grow;
        TaskArena *b = xmalloc(sizeof *b + cap);
        b->cap = cap;
        b->used = 0;
        // A huge one-off block goes behind the current one so the current keeps filling.
        if (a && bytes > (1u << 19)) { b->next = a->next; a->next = b; a = b; }
        else { b->next = a; t->arena = b; a = b; }
    }
    void *p = a->data + a->used;
    a->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *task_strndup(Task *t, const char *s, size_t n) {
    char *p = task_alloc(t, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *task_strdup(Task *t, const char *s) { return task_strndup(t, s, strlen(s)); }

Task *task_new(const char *name, TaskKind kind, const char *description) {
    Task *t = xcalloc(1, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->description = task_strdup(t, description);
    return t;
}

void task_free(Task *t) {
    if (!t) return;
    for (int s = 0; s < NUM_SPLITS; s++) free(t->splits[s].ex);
    for (TaskArena *a = t->arena; a;) {
        TaskArena *next = a->next;
        free(a);
        a = next;
    }
    free(t);
}

Example *task_add(Task *t, SplitId s, const Example *ex) {
    LAB_ASSERT(s >= 0 && s < NUM_SPLITS);
    Split *sp = &t->splits[s];
    if (sp->n == sp->cap) {
        sp->cap = sp->cap ? 2 * sp->cap : 256;
        sp->ex = xrealloc(sp->ex, (size_t)sp->cap * sizeof *sp->ex);
    }
    sp->ex[sp->n] = *ex;
    return &sp->ex[sp->n++];
}

void task_set_labels(Task *t, int n, const char *const *names) {
    LAB_ASSERT(n >= 0 && n <= TASK_MAX_LABELS);
    t->n_labels = n;
    for (int i = 0; i < n; i++) t->label_names[i] = task_strdup(t, names[i]);
}

void task_set_metrics(Task *t, int n, const char *const *names) {
    LAB_ASSERT(n >= 1 && n <= TASK_MAX_METRICS);
    t->n_metrics = n;
    for (int i = 0; i < n; i++) t->metrics[i] = task_strdup(t, names[i]);
}

int task_read_file(const char *path, int hint_make_data, char **out, size_t *len) {
    *out = NULL;
    if (files_check_regular(path, "a data file")) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (hint_make_data)
            return err_set("%s: %s; the built-in data sets are fetched by `make data` (scripts/fetch_data.sh)",
                           path, strerror(errno));
        return err_set("%s: %s", path, strerror(errno));
    }
    // Sized from the file's length (plus room to see the end), so a small file costs a small
    // buffer; a file that grows while read still grows the buffer.
    struct stat st;
    size_t cap = fstat(fileno(f), &st) == 0 ? (size_t)st.st_size + 4097 : 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (cap - n < 4096) { cap *= 2; buf = xrealloc(buf, cap); }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return err_set("%s: read error", path); }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return 0;
}

int task_require_data(const char *data_dir, const char *package) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, package);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set("%s: not found; the built-in data sets are fetched by `make data` "
                       "(scripts/fetch_data.sh; set LORALAB_DATA or --data for another folder)", path);
    return 0;
}

// ----------------------------------------------------------------------------
// access

const Split *task_split(const Task *t, SplitId s) {
    LAB_ASSERT(s >= 0 && s < NUM_SPLITS);
    return &t->splits[s];
}

int task_split_size(const Task *t, SplitId s) { return task_split(t, s)->n; }

const Example *task_example(const Task *t, SplitId s, int i) {
    const Split *sp = task_split(t, s);
    LAB_ASSERT(i >= 0 && i < sp->n);
    return &sp->ex[i];
}

int task_split_parse(const char *s, SplitId *out) {
    if (!strcmp(s, "train")) *out = SPLIT_TRAIN;
    else if (!strcmp(s, "validation") || !strcmp(s, "val") || !strcmp(s, "dev")) *out = SPLIT_VALIDATION;
    else if (!strcmp(s, "test")) *out = SPLIT_TEST;
    else return err_set("unknown split '%s' (expected train, validation or test)", s);
    return 0;
}

void task_label_counts(const Task *t, SplitId s, int *counts) {
    LAB_ASSERT(t->kind == TASK_CLS);
    memset(counts, 0, (size_t)t->n_labels * sizeof *counts);
    const Split *sp = task_split(t, s);
    for (int i = 0; i < sp->n; i++) {
        LAB_ASSERT(sp->ex[i].label >= 0 && sp->ex[i].label < t->n_labels);
        counts[sp->ex[i].label]++;
    }
}

// ----------------------------------------------------------------------------
// split hashing

uint64_t task_fnv1a(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

SplitId task_split_of_key(const char *salt, const char *key, size_t keylen) {
    uint64_t h = task_fnv1a(salt, strlen(salt));
    h ^= ':'; h *= 0x100000001b3ULL;
    const unsigned char *p = (const unsigned char *)key;
    for (size_t i = 0; i < keylen; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    // FNV's low bits mix poorly for short keys; finish with splitmix64's mixer.
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27; h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    unsigned r = (unsigned)(h % 100);
    return r < 80 ? SPLIT_TRAIN : r < 90 ? SPLIT_VALIDATION : SPLIT_TEST;
}

// ----------------------------------------------------------------------------
// decontamination

enum { PROBE_BYTES = 32 };
static const uint64_t RK_BASE = 1099511628211ULL;

typedef struct {
    uint64_t h;   // hash of the first PROBE_BYTES bytes
    int index;    // example index
} RkProbe;

static int cmp_probe(const void *a, const void *b) {
    const RkProbe *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : x->index - y->index;
}

static uint64_t rk_hash(const unsigned char *s) {
    uint64_t h = 0;
    for (int i = 0; i < PROBE_BYTES; i++) h = h * RK_BASE + s[i];
    return h;
}

int task_drop_verbatim(Task *t, SplitId s, const char *const *docs, int ndocs) {
    Split *sp = &t->splits[s];
    if (sp->n == 0) return 0;
    char *found = xcalloc((size_t)sp->n, 1);
    RkProbe *probes = xmalloc((size_t)sp->n * sizeof *probes);
    int np = 0;
    for (int i = 0; i < sp->n; i++) {
        size_t len = strlen(sp->ex[i].text);
        if (len >= PROBE_BYTES) { probes[np++] = (RkProbe){rk_hash((const unsigned char *)sp->ex[i].text), i}; continue; }
        for (int d = 0; d < ndocs && !found[i]; d++)   // short texts: a plain search
            found[i] = strstr(docs[d], sp->ex[i].text) != NULL;
    }
    qsort(probes, (size_t)np, sizeof *probes, cmp_probe);
    // open addressing: hash -> first probe with that hash
    size_t cap = 1;
    while (cap < 4 * (size_t)np + 4) cap *= 2;
    int *first = xmalloc(cap * sizeof *first);
    for (size_t i = 0; i < cap; i++) first[i] = -1;
    for (int i = 0; i < np; i++) {
        if (i > 0 && probes[i].h == probes[i - 1].h) continue;
        size_t j = probes[i].h & (cap - 1);
        while (first[j] >= 0) j = (j + 1) & (cap - 1);
        first[j] = i;
    }
    uint64_t top = 1;
    for (int i = 1; i < PROBE_BYTES; i++) top *= RK_BASE;
    for (int d = 0; d < ndocs && np > 0; d++) {
        const unsigned char *doc = (const unsigned char *)docs[d];
        size_t n = strlen(docs[d]);
        if (n < PROBE_BYTES) continue;
        uint64_t h = rk_hash(doc);
        for (size_t pos = 0; pos + PROBE_BYTES <= n; pos++) {
            if (pos > 0) h = (h - doc[pos - 1] * top) * RK_BASE + doc[pos + PROBE_BYTES - 1];
            for (size_t j = h & (cap - 1); first[j] >= 0; j = (j + 1) & (cap - 1)) {
                if (probes[first[j]].h != h) continue;
                for (int k = first[j]; k < np && probes[k].h == h; k++) {
                    const char *x = sp->ex[probes[k].index].text;
                    size_t len = strlen(x);
                    if (!found[probes[k].index] && len <= n - pos && !memcmp(doc + pos, x, len)) found[probes[k].index] = 1;
                }
                break;
            }
        }
    }
    int kept = 0;
    for (int i = 0; i < sp->n; i++)
        if (!found[i]) sp->ex[kept++] = sp->ex[i];
    int dropped = sp->n - kept;
    sp->n = kept;
    free(first);
    free(probes);
    free(found);
    return dropped;
}

// ----------------------------------------------------------------------------
// baselines: scored with the metric functions the evaluation uses (tasks/metrics.h), on
// whitespace-separated words for generation, as tasks/evaluate.c does.

static void baseline_add(Baseline *b, const char *metric, double value) {
    LAB_ASSERT(b->n < TASK_MAX_METRICS);
    b->metric[b->n] = metric;
    b->value[b->n] = value;
    b->n++;
}

// The majority train label on split s, scored with every metric of the task.
static void majority_baseline(const Task *t, SplitId s, Baseline *b) {
    int counts[TASK_MAX_LABELS], major = 0;
    task_label_counts(t, SPLIT_TRAIN, counts);
    for (int c = 1; c < t->n_labels; c++)
        if (counts[c] > counts[major]) major = c;
    const Split *sp = task_split(t, s);
    int *pred = xmalloc((size_t)sp->n * sizeof *pred), *gold = xmalloc((size_t)sp->n * sizeof *gold);
    for (int i = 0; i < sp->n; i++) pred[i] = major, gold[i] = sp->ex[i].label;
    b->name = "majority";
    for (int k = 0; k < t->n_metrics; k++) {
        const MetricInfo *m = metric_find(t->metrics[k]);
        if (m && m->input == METRIC_OF_LABELS) baseline_add(b, t->metrics[k], m->of_labels(pred, gold, (size_t)sp->n, t->n_labels));
    }
    free(pred);
    free(gold);
}

// The train mean on split s: Pearson and Spearman of a constant are 0 (undefined), so the
// MSE is reported too.
static void mean_baseline(const Task *t, SplitId s, Baseline *b) {
    const Split *tr = task_split(t, SPLIT_TRAIN), *sp = task_split(t, s);
    double mean = 0;
    for (int i = 0; i < tr->n; i++) mean += tr->ex[i].value;
    mean /= tr->n;
    double *pred = xmalloc((size_t)sp->n * sizeof *pred), *gold = xmalloc((size_t)sp->n * sizeof *gold);
    for (int i = 0; i < sp->n; i++) pred[i] = mean, gold[i] = sp->ex[i].value;
    b->name = "mean";
    static const MetricId SCORED[] = {METRIC_PEARSON, METRIC_SPEARMAN, METRIC_MSE};
    for (int k = 0; k < 3; k++)
        baseline_add(b, METRIC_TABLE[SCORED[k]].name, METRIC_TABLE[SCORED[k]].of_values(pred, gold, (size_t)sp->n));
    free(pred);
    free(gold);
}

// Scores predicted strings preds[i] against the references of split s with every metric of
// the task.
static void score_generation(const Task *t, SplitId s, const char *const *preds, const char *name, Baseline *b) {
    const Split *sp = task_split(t, s);
    size_t n = (size_t)sp->n, nref = 0;
    for (size_t i = 0; i < n; i++) nref += (size_t)sp->ex[i].nrefs;
    MetricWords *w = metric_words_new();
    MetricSeq *hyps = xmalloc(n * sizeof *hyps), *pool = xmalloc((nref + 1) * sizeof *pool);
    MetricRefs *refs = xmalloc(n * sizeof *refs);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        hyps[i] = metric_words_split(w, preds[i]);
        refs[i].refs = pool + at;
        refs[i].nrefs = (size_t)sp->ex[i].nrefs;
        for (int r = 0; r < sp->ex[i].nrefs; r++) pool[at++] = metric_words_split(w, sp->ex[i].refs[r]);
    }
    b->name = name;
    for (int k = 0; k < t->n_metrics; k++) {
        const MetricInfo *m = metric_find(t->metrics[k]);
        if (m && m->input == METRIC_OF_TEXT) baseline_add(b, t->metrics[k], m->of_text(hyps, refs, n));
    }
    metric_words_free(w);
    free(hyps);
    free(pool);
    free(refs);
}

// The "spelling" pronunciation of a word: each letter read as one ARPAbet phoneme.
static void spelling_pronunciation(const char *word, char *out, size_t cap) {
    static const char *const LETTER[26] = {"AE1", "B", "K", "D", "EH1", "F", "G", "HH", "IH1", "JH",
                                           "K", "L", "M", "N", "AA1", "P", "K", "R", "S", "T",
                                           "AH1", "V", "W", "K S", "Y", "Z"};
    out[0] = '\0';
    size_t n = 0;
    for (const char *p = word; *p; p++) {
        int c = toupper((unsigned char)*p);
        if (c < 'A' || c > 'Z') continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? " " : "", LETTER[c - 'A']);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

// Most frequent target string of the train split (ties: the smallest string).
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *most_frequent_target(const Task *t) {
    const Split *sp = task_split(t, SPLIT_TRAIN);
    const char **v = xmalloc((size_t)sp->n * sizeof *v);
    for (int i = 0; i < sp->n; i++) v[i] = sp->ex[i].target;
    qsort(v, (size_t)sp->n, sizeof *v, cmp_str);
    const char *best = v[0];
    int best_run = 0;
    for (int i = 0; i < sp->n;) {
        int j = i;
        while (j < sp->n && !strcmp(v[j], v[i])) j++;
        if (j - i > best_run) { best_run = j - i; best = v[i]; }
        i = j;
    }
    free(v);
    return best;
}

static int generation_baselines(const Task *t, SplitId s, Baseline *out, int cap) {
    const Split *sp = task_split(t, s);
    const char **preds = xmalloc((size_t)sp->n * sizeof *preds);
    int nb = 0;
    const char *mf = most_frequent_target(t);
    for (int i = 0; i < sp->n; i++) preds[i] = mf;
    score_generation(t, s, preds, "most-frequent", &out[nb++]);
    if (nb < cap && !strcmp(t->name, "g2p")) {
        char *buf = xmalloc((size_t)sp->n * 1024);
        for (int i = 0; i < sp->n; i++) {
            spelling_pronunciation(sp->ex[i].text, buf + (size_t)i * 1024, 1024);
            preds[i] = buf + (size_t)i * 1024;
        }
        score_generation(t, s, preds, "spelling", &out[nb++]);
        free(buf);
    } else if (nb < cap) {
        for (int i = 0; i < sp->n; i++) preds[i] = sp->ex[i].text;   // copy the input
        score_generation(t, s, preds, "copy", &out[nb++]);
    }
    free(preds);
    return nb;
}

// Unigram (byte-frequency, add-one) cross-entropy of split s under the train split, nats
// per byte.
static double unigram_cross_entropy(const Task *t, SplitId s) {
    double count[256], total = 256;
    for (int c = 0; c < 256; c++) count[c] = 1;
    const Split *tr = task_split(t, SPLIT_TRAIN);
    for (int i = 0; i < tr->n; i++)
        for (const unsigned char *p = (const unsigned char *)tr->ex[i].text; *p; p++) count[*p]++, total++;
    const Split *sp = task_split(t, s);
    double nll = 0;
    long n = 0;
    for (int i = 0; i < sp->n; i++)
        for (const unsigned char *p = (const unsigned char *)sp->ex[i].text; *p; p++) nll -= log(count[*p] / total), n++;
    return n ? nll / n : 0;
}

int task_baselines(const Task *t, SplitId s, Baseline *out, int cap) {
    if (task_split_size(t, s) == 0 || task_split_size(t, SPLIT_TRAIN) == 0 || cap < 1) return 0;
    memset(out, 0, (size_t)cap * sizeof *out);
    switch (t->kind) {
    case TASK_CLS: majority_baseline(t, s, &out[0]); return 1;
    case TASK_REG: mean_baseline(t, s, &out[0]); return 1;
    case TASK_GEN: return generation_baselines(t, s, out, cap);
    case TASK_LM:
        out[0].name = "unigram";
        baseline_add(&out[0], "loss", unigram_cross_entropy(t, s));
        return 1;
    }
    return 0;
}
