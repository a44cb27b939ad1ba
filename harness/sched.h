// harness/sched.h — the crash-safe parallel scheduler: every run in its own process.
//
// sched_run forks up to `jobs` worker processes, one per run. A worker that crashes, aborts,
// returns non-zero or overruns its timeout fails only its own run; the parent records why
// when the worker could not. Workers die with the parent (PR_SET_PDEATHSIG), so a kill -9 of
// the sweep leaves no orphan writing into the database; their rows stay `running` with a dead
// pid, which store_reset_stale turns into `interrupted` on the next sweep. SIGINT/SIGTERM stop
// the workers, mark their runs interrupted and return.
#ifndef LORALAB_SCHED_H
#define LORALAB_SCHED_H

#include <stdint.h>

// Runs in the child process. progress_fd: write progress lines there for the live view
// (harness/progress.h; may be ignored). Returns the child's exit status (0 = the run is done and
// recorded; non-zero = failed, and the worker should have recorded why).
typedef int (*SchedWorker)(int64_t run_id, int slot, int progress_fd, void *ctx);

typedef struct {
    int jobs;             // parallel worker processes (>= 1)
    double timeout_s;     // per run; <= 0: none
    const char *db_path;  // the parent opens its own connection to record failures
    int live;             // 1: a live view on stderr, redrawn in place (a terminal); 0: plain lines,
                          // every 30 s (LORALAB_PROGRESS_EVERY=seconds) and when a run settles
} SchedOptions;

typedef struct {
    int done, failed, interrupted;
} SchedStats;

// Runs ids[0..n) through worker. Returns 0 when every run was attempted, 1 when a signal
// stopped the sweep early (runs in flight are marked interrupted), -1 with err_set() when the
// database could not be opened.
int sched_run(const SchedOptions *opt, const int64_t *ids, int n, SchedWorker worker, void *ctx,
              SchedStats *stats);

#endif
