// harness/shard.h — one run's result as a SQLite file of its own (a "shard").
//
// A Slurm array task must not write the results database: SQLite's locking (and WAL) does
// not work over the network filesystems clusters share. So a task trains its run against a
// shard: a fresh database with the same schema, holding that one run, written under a
// temporary name and renamed into <plan dir>/shards/<hash>.<job id>.db once the run has
// settled (done, failed or interrupted). Only the submitting side merges shards into the
// results database, one transaction per shard, and records each merged shard in the table
// slurm_shards, so merging twice adds nothing.
#ifndef LORALAB_SHARD_H
#define LORALAB_SHARD_H

#include <stdint.h>

#include "harness/store.h"

// Where a task ran, from Slurm's environment (empty strings outside Slurm).
typedef struct {
    char job_id[32];          // SLURM_JOB_ID: unique per array task
    char array_task[48];      // "ARRAYJOB_TASK", or "" outside an array
    char node[128];           // SLURMD_NODENAME, else the host name
    char gpus[128];           // CUDA_VISIBLE_DEVICES / SLURM_JOB_GPUS as Slurm set them, or ""
} ShardPlace;
void shard_place(ShardPlace *p);

// Creates (replacing any) the temporary shard tmp_path holding the pending run hash/config,
// its place and plan index; *run_id: the run's id inside the shard. 0 or -1 (err_set).
int shard_create(const char *tmp_path, const char *hash, const char *config_json, int plan_index,
                 const ShardPlace *place, int64_t *run_id);
// Turns the shard into one self-contained file (no -wal / -shm beside it) and renames it to
// final_path. 0 or -1 (err_set).
int shard_finish(const char *tmp_path, const char *final_path);

// Checks a shard file before merging: a whole SQLite file (not truncated: its size matches
// the page count its header gives), passing quick_check, holding exactly one settled run.
// 0, or -1 with err_set() naming the file and what is wrong.
int shard_check(const char *path);

// The tables the Slurm executor keeps in the results database (created if missing).
int shard_tables(Store *st);

// Merges the shard at path (already checked) into st, recording it under (plan_id, name).
// A run already done in st keeps its result (the shard is recorded, *applied = 0). *status:
// the shard's run status. 0 or -1 (err_set; nothing written).
int shard_merge(Store *st, int64_t plan_id, const char *name, const char *path, RunStatus *status,
                int *applied);

#endif
