// harness/analyze_run.h — a run's LoRA factors and base weights for `loralab analyze`: a
// stored run (its config and adapter artifact) or an adapter directory (loralab's or PEFT's),
// its base checkpoint, and host copies of the factors.
#ifndef LORALAB_ANALYZE_RUN_H
#define LORALAB_ANALYZE_RUN_H

#include <stdint.h>

#include "core/model.h"
#include "harness/config.h"
#include "harness/store.h"

typedef struct {
    int64_t id;              // 0: an adapter directory given on the command line
    char hash[65];
    char status[16];
    char label[4200];        // "run 3", or "adapter DIR"
    char tag[64];            // in figure names: "3", or the directory's name
    RunConfig rc;
    char *adapter;           // adapter directory (artifact kind "adapter")
    char base[4096];         // base checkpoint directory; "" when unknown
    MethodConfig mc;
    ModelConfig cfg;
    Model *m;                // the adapter loaded (base weights only when with_base)
    float *W[NUM_TARGETS];   // with_base: host (L, d_out, d_in) base weights of the wanted targets
} RunData;

void rundata_free(RunData *r);
// Loads run id: config, adapter, and (with_base) the base weights of the targets in `want`
// (a TARGET_* mask). 0, or -1 with err_set() (no LoRA tensors, no adapter, no base).
int rundata_open(Store *st, int64_t id, int with_base, int want, RunData *r);
// An adapter directory given as RUN (loralab's or PEFT's): its base is `base` (--base), else
// the directory base_model_name_or_path names. 0 or -1.
int rundata_open_dir(const char *dir, const char *base, int with_base, int want, RunData *r);
// Host copies of target t's factors: A (L, r, d_in), B (L, d_out, r); caller frees.
void lora_factors(RunData *r, int t, float **A, float **B, int *rank, int *d_out, int *d_in);

#endif
