// harness/memcheck.h — does it fit? A run's or a benchmark's memory need (weights, gradients,
// AdamW moments, activations: model_memory_need, computed before anything is allocated)
// against the host memory this machine has available now.
//
// Available memory is MemAvailable of /proc/meminfo, lowered to the cgroup's memory.max less
// its memory.current when the process runs under a limit, and to LORALAB_MEMORY_LIMIT
// (bytes, with an optional K, M or G suffix) when that is set: a way to keep loralab under a
// budget on a shared machine. A CUDA run is checked against its GPU's free memory
// (cudaMemGetInfo) instead.
#ifndef LORALAB_MEMCHECK_H
#define LORALAB_MEMCHECK_H

#include <stddef.h>

#include "core/model.h"
#include "harness/config.h"

// Bytes available now; 0 when nothing could be read (then every check passes).
size_t memcheck_available(void);

// 0 when need fits in what is available, or -1 with err_set("WHAT needs N MiB (weights ...,
// gradients ..., optimizer ..., activations ...); this machine has M MiB available").
int memcheck_fits(const char *what, const MemoryReport *need);

// As memcheck_fits, on `device` ("cpu", "cuda" or "cuda:N"): a GPU's free memory for CUDA.
int memcheck_fits_on(const char *what, const MemoryReport *need, const char *device);

// The memory a run of rc needs, before its task is loaded: the LM head's logits are counted
// (an upper bound for classification and regression heads). 0 or -1 with err_set().
int memcheck_run_need(const RunConfig *rc, MemoryReport *need);

// How many of these runs may train at once, at most jobs and at least 1: runs are taken
// from the largest need down until their sum passes what is available (host memory: CUDA
// runs count as nothing here). *largest gets the
// largest need (bytes), for the message.
int memcheck_parallel(const RunConfig *runs, int n, int jobs, size_t *largest);

#endif
