// harness/commands.h — one entry point per CLI verb. Each prints its own --help to stdout and
// returns to main() (harness/main.c), the only place that exits:
//   EXIT_OK;
//   -1 with err_set() or err_raise(): main() prints "loralab: <message>" and exits with the
//      status of the message's class (err_class());
//   EXIT_RUN_FAILED, EXIT_INPUT or EXIT_INTERRUPTED after the verb printed why itself (a
//      sweep's summary of failed runs, a merge's bad shards, an interrupted sweep).
#ifndef LORALAB_COMMANDS_H
#define LORALAB_COMMANDS_H

// Exit statuses. A child process that runs one run exits with them too (harness/sched.h).
enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_INPUT = 2, EXIT_INTERRUPTED = 130 };

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);   // argv[0] is the verb
    const char *summary;
} Command;

int cmd_sweep(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_eval_lm(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_params(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_report_reproduction(int argc, char **argv);   // `report reproduction` (harness/cmd_report_repro.c)
int cmd_plot(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_merge_adapter(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);

// The id of the run that spec names: an id, a hash (prefix) or a selector such as
// 'sweep=S,lora.rank=8,seed=1' that must match one run (harness/run_select.c).
#include <stdint.h>
struct Store;
int run_find(struct Store *st, const char *spec, int64_t *id);
// Every run that a selector such as 'sweep=S,lora.rank=8' matches; *ids malloc'ed; -1 with
// err_set() when none does (harness/run_select.c).
int runs_select(struct Store *st, const char *spec, int64_t **ids, int *n);
int cmd_worker(int argc, char **argv);
int cmd_merge(int argc, char **argv);

#include "harness/config.h"
#include "harness/store.h"
// Runs one SQL statement on s as `loralab query` does, under its lockdown (an authorizer
// that allows reads only, statements that write refused), printing the rows to stdout:
// format 0 table, 1 CSV, 2 JSON. timeout_s > 0 stops the statement after that many seconds
// (an error naming the limit); 0 leaves the connection's own progress handler alone.
// 0, or -1 with err_set().
int query_exec(Store *s, const char *sql, int format, double timeout_s);
// Checks a sweep file's analyze: block (JSON text) against its expanded runs without
// analysing anything: keys, values and that every pattern matches a LoRA run. The sweep
// calls it before its first run (and for --dry-run). 0, or -1 with err_set().
int analyze_check(const char *json, const char *sweep, const RunConfig *runs, int n);
// Runs the analyze: block stored with sweep `name` in database db, as `loralab analyze sweep
// NAME --db DB` does (harness/analyze_sweep.c). 0, or -1 with err_set() (bad input) or
// err_raise(ERR_TOOL) (gnuplot failed or is missing).
int analyze_sweep_db(const char *db, const char *name);

#endif
