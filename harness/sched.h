// harness/sched.h — the crash-safe parallel scheduler: every run in its own process.
//
// sched_run forks up to `jobs` worker processes, one per run. A worker that crashes, aborts,
// returns non-zero or overruns its timeout fails only its own run; the parent records why
// when the worker could not (with the worker's own message when it sent one), by
// compare-and-set on the worker's claim, so it never touches a row another attempt holds.
// Workers die with the parent (PR_SET_PDEATHSIG), so a kill -9 of the sweep leaves no orphan
// writing into the database; their rows stay `running` with a dead pid, which
// store_reset_stale (or a waiting sweep) turns into `interrupted`. SIGINT/SIGTERM stop the
// workers, mark their runs interrupted and return.
//
// Several sweeps may share a database and runs. A run that a live worker of another sweep
// holds is not run again: the scheduler waits for it without taking a slot (its owner on
// this host is watched; if it dies the run becomes interrupted and is run here) and counts
// its outcome as the other worker's. A run held on another host is left to that worker.
// When an outcome cannot be recorded (disk full, database locked beyond its timeout), the
// reason is printed with what the database still says, and no new run starts.
#ifndef LORALAB_SCHED_H
#define LORALAB_SCHED_H

#include <stdint.h>

// Runs in the child process. progress_fd: write progress lines there for the live view
// (harness/progress.h; may be ignored), and sched_worker_error() before failing. Returns the
// child's exit status: 0 = the run is done and recorded; SCHED_EXIT_TAKEN = the worker could
// not claim the run (another worker has it or it is settled) and left it untouched; anything
// else = failed, and the worker should have recorded why.
typedef int (*SchedWorker)(int64_t run_id, int slot, int progress_fd, void *ctx);

enum { SCHED_EXIT_TAKEN = 75 };

// In a worker: sends the reason of its failure to the parent, which records it if the
// worker could not (e.g. the database was locked or the disk full).
void sched_worker_error(int progress_fd, const char *message);

typedef struct {
    int jobs;             // parallel worker processes (>= 1)
    double timeout_s;     // per run; <= 0: none
    const char *db_path;  // the parent opens its own connection to record failures
    int live;             // 1: a live view on stderr, redrawn in place (a terminal); 0: plain lines,
                          // every 30 s (LORALAB_PROGRESS_EVERY=seconds) and when a run settles
    int retry_failed;     // failed runs are run again (workers claim them with retry_failed)
} SchedOptions;

// Outcomes as the database holds them once the sweep ends.
typedef struct {
    int done, failed, interrupted;          // this sweep's own workers
    int done_elsewhere, failed_elsewhere;   // a worker of another sweep had the run and settled it
    int left_elsewhere;                     // still held by another worker when this sweep ended
                                            // (on another host, or this sweep was stopped)
    int unrecorded;                         // outcomes the database could not take (printed)
    int not_started;                        // runs not started: the database could not be written
} SchedStats;

// Runs ids[0..n) through worker. Returns 0 when every run was attempted, 1 when a signal
// stopped the sweep early (runs in flight are marked interrupted), -1 with err_set() when the
// database could not be opened.
int sched_run(const SchedOptions *opt, const int64_t *ids, int n, SchedWorker worker, void *ctx,
              SchedStats *stats);

#endif
