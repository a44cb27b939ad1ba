// harness/runner.h — one run, start to finish: base model (cached pretraining), method, task,
// training with validation, test metrics from the best-validation state, adapter file, and
// every number recorded in the store as it comes.
#ifndef LORALAB_RUNNER_H
#define LORALAB_RUNNER_H

#include <stdint.h>

#include "harness/config.h"
#include "harness/store.h"

typedef struct {
    const char *results_dir;   // "results": bases/ and runs/ go under it
    const char *data_dir;      // where `make data` unpacked the packages (NULL: default)
    int progress_fd;           // "step loss\n" lines for the scheduler's progress line; -1: none
    const char *device;        // the device this worker was given ("cuda:1"), or NULL: the config's
} RunnerOptions;

// The backend of a device name: "cpu", "cuda" (cuda:0) or "cuda:N". NULL with err_set() when
// the name is malformed or the GPU is missing.
const Backend *runner_backend(const char *device);

// Runs run_id (already claimed by this process) with config rc and hash. Returns 0 after
// store_finish_run, or -1 with err_set(); the caller records the failure.
int runner_execute(Store *st, int64_t run_id, const RunConfig *rc, const char *hash,
                   const RunnerOptions *opt);

// The checkpoint directory of rc's base model: base.checkpoint as given, or
// <results>/bases/<hash of the pretraining spec>, pretrained once (under a file lock, so
// concurrent runs wait for one pretraining). 0, or -1 with err_set().
int runner_resolve_base(const Backend *be, const RunConfig *rc, const RunnerOptions *opt, char *dir, size_t cap);
// <results_dir>/bases/<preset>-<16 hex digits of the pretraining spec's hash>: where a preset
// base is cached. The spec: preset, base.pretrain.{task, steps, batch, lr, seq, seed}, and
// base.pretrain.{warmup, schedule, weight_decay} when they are not their defaults.
void runner_base_dir(const RunConfig *rc, const char *results_dir, char *dir, size_t cap);
// 1 when rc's base needs no pretraining under results_dir (a checkpoint, or cached), else 0.
int runner_base_cached(const RunConfig *rc, const char *results_dir);

#endif
