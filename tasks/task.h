// tasks/task.h — the task interface: named data sets with train / validation / test splits.
//
// A Task is loaded by name: the built-in tasks read the pinned npm packages under data/
// (scripts/fetch_data.sh, `make data`); the loaders read a user's own copy of the paper's
// data sets from a path (GLUE TSV, E2E NLG CSV, WikiSQL JSONL, SAMSum JSON).
//
// Built-in splits are deterministic on every machine: an example's split is a function of a
// stable key (address year + president, message text, word, chapter) through FNV-1a
// (task_split_of_key), 80 / 10 / 10, so the splits are disjoint by construction and do not
// depend on file order, locale or platform.
//
// Ownership: task_load returns a Task that owns every string and array it points to (one
// arena); task_free releases all of it. Examples are read-only for callers.
#ifndef LORALAB_TASK_H
#define LORALAB_TASK_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TASK_LM, TASK_CLS, TASK_REG, TASK_GEN } TaskKind;
extern const char *const TASK_KIND_NAMES[];   // "lm", "cls", "reg", "gen"

typedef enum { SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST, NUM_SPLITS } SplitId;
extern const char *const SPLIT_NAMES[NUM_SPLITS];   // "train", "validation", "test"

// One example. Which fields are set depends on the task kind:
//   TASK_LM:  text (one document)
//   TASK_CLS: text (+ text_b for sentence-pair tasks), label in [0, n_labels)
//   TASK_REG: text (+ text_b), value
//   TASK_GEN: text (the prompt), target, and refs[0..nrefs) = every reference, refs[0] == target
// Unused fields are NULL / -1 / 0.
typedef struct {
    const char *text;
    const char *text_b;    // second sentence of a pair task (GLUE MNLI, MRPC, ...), or NULL
    int label;
    float value;
    const char *target;
    const char **refs;
    int nrefs;
} Example;

typedef struct {
    Example *ex;
    int n, cap;
} Split;

enum { TASK_MAX_METRICS = 4, TASK_MAX_LABELS = 16 };

typedef struct TaskArena TaskArena;

typedef struct {
    char name[64];             // "spam", "glue-sst2", ...
    TaskKind kind;
    const char *description;   // one line: what maps to what
    int n_labels;              // TASK_CLS: number of classes; else 0
    const char *label_names[TASK_MAX_LABELS];
    int n_metrics;             // metrics[0] is the primary metric
    const char *metrics[TASK_MAX_METRICS];   // names in the metric table (tasks/metrics.h):
                                             // "accuracy", "f1", "macro_f1", "mcc", "pearson",
                                             // "spearman", "exact_match", "per", "bleu",
                                             // "rouge1", "rouge2", "rougeL", "loss"
    const char *split_sources[NUM_SPLITS];   // where each split came from (file name or rule)
    int n_skipped;             // malformed rows skipped (TaskOptions.skip_malformed)
    int n_duplicates;          // exact duplicates dropped while loading (built-ins)
    int n_decontaminated;      // validation / test examples dropped because their text occurs
                               // verbatim in the train material (built-ins)
    Split splits[NUM_SPLITS];  // a split may be empty (e.g. GLUE's unlabelled test set)
    TaskArena *arena;          // owns every string above and below
} Task;

typedef struct {
    int skip_malformed;   // 1: skip (and count) malformed rows instead of failing
} TaskOptions;

// ----------------------------------------------------------------------------
// loading

// Loads task `name`. path: the user's data folder for the loader tasks (glue-*, e2e,
// wikisql, samsum), NULL for built-ins. data_dir: where `make data` unpacked the packages
// (NULL: $LORALAB_DATA or "data"). Returns 0 and *out (free with task_free), or -1 with
// err_set(): an unknown name lists the known tasks, missing data names `make data`, a
// malformed row names file:line.
int task_load(const char *name, const char *path, const char *data_dir, Task **out);
int task_load_opts(const char *name, const char *path, const char *data_dir,
                   const TaskOptions *opt, Task **out);
void task_free(Task *t);

// Known task names, NULL-terminated, built-ins first. task_is_builtin: needs no path.
extern const char *const TASK_NAMES[];
int task_is_builtin(const char *name);
// One line for `loralab tasks --help`: what path the loader expects ("" for built-ins).
const char *task_path_hint(const char *name);

// ----------------------------------------------------------------------------
// access

const Split *task_split(const Task *t, SplitId s);
int task_split_size(const Task *t, SplitId s);
const Example *task_example(const Task *t, SplitId s, int i);   // asserts 0 <= i < size
// Parses "train" / "validation" / "val" / "dev" / "test". -1 with err_set() otherwise.
int task_split_parse(const char *s, SplitId *out);
// Class counts of a split into counts[n_labels] (TASK_CLS only).
void task_label_counts(const Task *t, SplitId s, int *counts);

// ----------------------------------------------------------------------------
// baselines: what a model that learned nothing but the train split's prior would score

typedef struct {
    const char *name;   // "majority", "mean", "most-frequent", "spelling", "unigram"
    int n;              // number of scores
    const char *metric[TASK_MAX_METRICS];
    double value[TASK_MAX_METRICS];
} Baseline;

// Baselines of task t on split s (validation or test), computed from the train split and
// scored with the task's own metrics (tasks/metrics.h, as the evaluation scores a model):
//   CLS: "majority": the majority train label;
//   REG: "mean": the train mean (Pearson and Spearman of a constant are 0; MSE added);
//   GEN: "most-frequent": the most frequent train target; g2p adds "spelling" (each letter
//        read as one phoneme), the other generation tasks "copy" (the input as the output);
//   LM:  "unigram": the byte-unigram cross-entropy of s under train, nats per byte.
// Fills up to cap baselines; returns how many (0 for an empty split).
int task_baselines(const Task *t, SplitId s, Baseline *out, int cap);

// ----------------------------------------------------------------------------
// building tasks (for the loaders in tasks/*.c)

// FNV-1a 64-bit of bytes.
uint64_t task_fnv1a(const void *data, size_t len);
// The split of a stable key: FNV-1a of "<salt>:<key>", mixed, mod 100 → < 80 train,
// < 90 validation, else test.
SplitId task_split_of_key(const char *salt, const char *key, size_t keylen);

Task *task_new(const char *name, TaskKind kind, const char *description);
// Arena copies owned by t.
char *task_strdup(Task *t, const char *s);
char *task_strndup(Task *t, const char *s, size_t n);
void *task_alloc(Task *t, size_t bytes);   // zeroed, 8-byte aligned
// Appends a copy of the Example struct (its strings must already belong to t's arena);
// returns the stored example.
Example *task_add(Task *t, SplitId s, const Example *ex);
void task_set_labels(Task *t, int n, const char *const *names);
void task_set_metrics(Task *t, int n, const char *const *names);

// Removes from split s every example whose text occurs verbatim inside one of
// docs[0..ndocs) (one Rabin-Karp pass over the documents); keeps the order of the rest and
// returns how many were removed. The built-ins call it with their train material, so that
// a quotation or a forwarded message cannot carry an evaluation example into training.
int task_drop_verbatim(Task *t, SplitId s, const char *const *docs, int ndocs);

// Reads a whole file into a NUL-terminated malloc'd buffer (caller frees). -1 with
// err_set() naming the path (and `make data` when hint_make_data is set).
int task_read_file(const char *path, int hint_make_data, char **out, size_t *len);

#endif
