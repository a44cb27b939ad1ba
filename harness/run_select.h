// harness/run_select.h — the run-selector language: a run named by its id, a hash (prefix) or
// a selector 'sweep=S,lora.rank=8,seed=1' (config keys compared with each run's stored
// config; a list value such as lora.targets=q,v may contain commas), and the same patterns
// written as YAML/JSON mappings ({lora.rank: 8} or {lora: {rank: 8}}) in a sweep file's
// analyze: block. `analyze`, `export`, `merge-adapter` and `plot --runs` name runs this way.
#ifndef LORALAB_RUN_SELECT_H
#define LORALAB_RUN_SELECT_H

#include <jansson.h>
#include <stdint.h>

#include "harness/config.h"
#include "harness/store.h"

enum { SELECTOR_MAX_KEYS = 32 };

// A pattern: config keys and the values a run must hold.
typedef struct {
    int n;
    char *key[SELECTOR_MAX_KEYS], *value[SELECTOR_MAX_KEYS];
    char *sweep;          // sweep=S (CLI selectors), or NULL
} Selector;

void selector_free(Selector *s);
// "sweep=S,lora.rank=8,lora.targets=q,v": a piece without '=' continues the previous value.
// 0, or -1 with err_set() (an unknown key names the valid ones).
int selector_parse(const char *text, Selector *s);
// A pattern {lora.rank: 8} or {lora: {rank: 8}} (nested blocks flattened) added to s; `what`
// names it in messages. 0 or -1 with err_set().
int selector_from_json(const json_t *obj, const char *prefix, const char *what, Selector *s);
// *match = whether rc has every key's value (keys that do not apply to rc do not match).
// 0, or -1 with err_set() when a value is not one the key takes.
int selector_match(const Selector *s, const RunConfig *rc, const char *what, int *match);
// A JSON value as the text config_set takes: scalars as text, lists joined with commas; -1
// for a nested list or a mapping.
int selector_value_text(const json_t *v, char *buf, size_t cap);

// A stored run: its id, its config and its status.
typedef struct {
    int64_t id;
    RunConfig rc;
    char status[16];
} RunRow;

// Runs of sweep_id (0: every run), in sweep order / by id. *rows malloc'ed. 0 or -1.
int runs_load(Store *st, int64_t sweep_id, RunRow **rows, int *n);

// run_find and runs_select are declared in harness/commands.h.

#endif
