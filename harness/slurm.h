// harness/slurm.h — the Slurm executor: a sweep as a Slurm job array, results merged once.
//
// `loralab sweep FILE --executor slurm` resolves, hashes and deduplicates the runs as a local
// sweep does, registers them in the results database, and writes a plan directory next to the
// database, <db dir>/slurm/<sweep>-<UTC time>/: plan.json (the runs to do, their ids and
// canonical configs, frozen at submission), the sbatch scripts (pretrain.sbatch when the base
// is not cached, array.sbatch, merge.sbatch), logs/ and shards/. It submits a pretraining job,
// a job array of one task per run (afterok on the pretraining) and a merge job (afterany on
// the array). Each task runs `loralab worker --plan PLAN --index N`, which trains its run
// against a shard (harness/shard.h), never the database; `loralab merge` folds the shards in.
#ifndef LORALAB_SLURM_H
#define LORALAB_SLURM_H

#include "harness/sched.h"
#include "harness/store.h"
#include "harness/sweepfile.h"

enum { SLURM_EXECUTOR_LOCAL = 0, SLURM_EXECUTOR_SLURM = 1 };
// The value of --executor in argv: local (also when absent) or slurm; -1 with err_set otherwise.
int slurm_executor_arg(int argc, char **argv);
// `loralab sweep FILE --executor slurm ...` (argv[0] is "sweep").
int slurm_sweep(int argc, char **argv);
// `loralab worker` and `loralab merge`.
int cmd_worker(int argc, char **argv);
int cmd_merge(int argc, char **argv);
// For `loralab status`: merges the finished shards of sweep's plans (sweep_id 0: every sweep)
// quietly but for problems, then prints their Slurm jobs and the runs pending in Slurm or
// lost. Prints nothing for databases that never used the Slurm executor. 0 or -1 (err_set).
int slurm_status_merge(Store *st, int64_t sweep_id);
int slurm_status_report(Store *st, int64_t sweep_id);

// From harness/cmd_sweep.c: what a local sweep does, for the Slurm side to share.
int sweep_register(Store *st, int64_t sweep_id, const Sweep *sw);
// Runs one run of the database db_path through the local scheduler (one worker process,
// the same worker as `loralab sweep`): returns sched_run's status.
int sweep_run_one(const char *db_path, const char *results_dir, int threads, int64_t run_id, SchedStats *stats);

#endif
