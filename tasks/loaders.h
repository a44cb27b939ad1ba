// tasks/loaders.h — the functions behind task_load's table of names (tasks/task.c).
//
// Each loader builds one Task (task_new / task_add) and returns 0, or -1 with err_set().
// `name` is the task name asked for (one loader serves several names: the GLUE tasks, the
// two SOTU tasks). Built-ins read data_dir (never NULL here); loaders read path.
//   built-ins: tasks/data_sotu.c, data_spam.c, data_cmudict.c, data_pretrain.c
//   user data: tasks/loaders.c (GLUE TSV, E2E NLG CSV, WikiSQL JSONL, SAMSum JSON)
#ifndef LORALAB_LOADERS_H
#define LORALAB_LOADERS_H

#include "tasks/task.h"

typedef int (*TaskLoader)(const char *name, const char *path, const char *data_dir,
                          const TaskOptions *opt, Task **out);

int load_sotu(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out);
int load_spam(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out);
int load_g2p(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out);
int load_pretrain(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out);
int load_glue(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out);
int load_e2e(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out);
int load_wikisql(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out);
int load_samsum(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out);

// ----------------------------------------------------------------------------
// shared by the built-ins (defined where noted)

// SOTU passages: addresses cut at word boundaries into passages of at most
// SOTU_PASSAGE_BYTES bytes (so that a passage plus EOS fits the micro preset's 128 byte
// tokens); a trailing piece shorter than SOTU_MIN_PASSAGE_BYTES is dropped.
enum { SOTU_PASSAGE_BYTES = 120, SOTU_MIN_PASSAGE_BYTES = 40 };

typedef struct {
    int year;
    const char *name;    // president
    const char *party;   // as the package spells it: "Democratic", "Whig", ...
    const char *text;    // the whole address
    SplitId split;       // by "<year> <name>"
} SotuAddress;

// Reads every address of data_dir/sotu into t's arena (sorted by year, then name).
// data_sotu.c. Returns the count, or -1 with err_set().
int sotu_read(Task *t, const char *data_dir, SotuAddress **out);
// Cuts text into passages (arena strings of t); calls emit(ctx, passage) for each.
void sotu_passages(Task *t, const char *text, void (*emit)(void *ctx, const char *p), void *ctx);

// SpamAssassin: each message cleaned (tasks/email.h) into "Subject: ...\n\n<body>",
// exact duplicates dropped, split by a hash of the cleaned text. data_spam.c.
typedef struct {
    const char *text;
    int spam;            // 1 spam, 0 ham
    SplitId split;
} SpamMessage;
int spam_read(Task *t, const char *data_dir, SpamMessage **out, int *n_duplicates);

// CMUdict: entries grouped by word (alternatives "WORD(1)" join their word), split by
// word. data_cmudict.c.
typedef struct {
    const char *word;
    const char **prons;   // "AH0 B AE1 N D AH0 N", ... in dictionary order
    int nprons;
    SplitId split;
} CmuWord;
int cmudict_read(Task *t, const char *data_dir, CmuWord **out);

// Checks that data_dir/<package> exists; otherwise err_set() naming `make data`.
int task_require_data(const char *data_dir, const char *package);

#endif
