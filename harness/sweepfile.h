// harness/sweepfile.h — a sweep file (YAML, the format is docs/sweep-files.md) parsed with
// libyaml and expanded into resolved RunConfigs.
//
// File format. The top level holds the base config (the keys of harness/config.h, as nested
// blocks `lora: {rank: 4}` or dotted keys `lora.rank: 4`; `task: NAME` is short for
// task.name) and four special keys:
//   grid:     dotted key -> list of values. The runs are the cartesian product, in file
//             order: the first key is the outermost loop, the last varies fastest. A value
//             may itself be a list (lora.targets: [[q], [q, v]]) or, for a block key, a
//             mapping (lora: [{rank: 4}, {rank: 8, alpha: 16}]).
//   variants: list of partial configs; each is crossed with the grid (variants are the
//             outermost loop). A key may not be set both by a variant and by the grid.
//             An empty entry ({}) is the base config itself.
//   exclude:  list of partial configs; a run whose values equal every key of one entry is
//             dropped (before validation, so exclude can remove invalid corners).
//   analyze:  anything; carried as JSON text for the analysis step.
//   tune:     values to pick on validation, per variant:
//               tune:
//                 train.lr: [1.0e-4, 3.0e-4, 1.0e-3]   # any config key(s); several: their product
//                 seeds: [1]                            # the tuning runs' seeds (required)
//                 by: validation                        # the only criterion
//             A variant is a run of the grid with its seed set aside. Each variant runs at every
//             setting on each tuning seed (the tuning runs); the sweep then picks, per variant,
//             the setting with the best mean validation metric at each run's best-validation
//             step (ties: the smaller value, compared key by key, numerically where both are
//             numbers) and runs the grid's seeds at it (sweep_picked_runs). A tuned key may not
//             also be set by the grid, the variants or an override.
// Expansion order for each combination: base, variant, grid values, then the command-line
// overrides (`key=value`, which win over everything), then exclude, then validation
// (config_validate). Runs with the same canonical JSON collapse into the first one.
// At most 20000 grid points per file.
//
// Errors: every problem in the file is reported as "FILE:LINE:COLUMN: message" (1-based,
// from libyaml's marks), before any run exists; overrides as "override 'k=v': message".
#ifndef LORALAB_SWEEPFILE_H
#define LORALAB_SWEEPFILE_H

#include <stdio.h>

#include "harness/config.h"

typedef struct {
    char *path;             // the file name used in messages (owned)
    char name[64];          // the sweep's name: `name:` or the file's base name without .yaml
    int nruns;
    RunConfig *runs;        // expanded runs, in expansion order (owned). Their origins point
                            // into path and the caller's override strings.
    char (*hashes)[65];     // hashes[i] = config_hash(&runs[i]) (owned)
    int ncombinations;      // grid x variants points before exclude and dedupe
    int nexcluded;          // dropped by exclude
    int nduplicates;        // collapsed into an earlier identical run
    char *analyze_json;     // the analyze: block as compact JSON, or NULL (owned)
    // the tune: block; ntune_settings == 0: none. Then runs[] are the grid's runs before
    // the pick (their tuned keys hold the base value) and are not trained as they are.
    int ntune_keys, tune_keys[CONFIG_MAX_KEYS];
    int ntune_settings;
    RunConfig *tune_settings;   // [ntune_settings]: defaults with one setting's values (owned)
    char (*tune_labels)[256];   // "train.lr=0.0001" (owned)
    int *tune_order;            // tie-break rank of each setting: 0 = the smallest values (owned)
    int ntune_seeds, tune_seeds[16];
    int nvariants;
    char (*variant_ids)[65];    // hash of a variant's config with seed and tuned keys reset (owned)
    int *run_variant;           // run_variant[i]: variant of runs[i] (owned)
    int ntune;                  // tuning runs: variant x setting x tuning seed, deduplicated
    RunConfig *tune_runs;       // (owned)
    char (*tune_hashes)[65];    // (owned)
    int *tune_variant, *tune_setting;   // per tuning run (owned)
} Sweep;

// Parses, expands, applies the overrides (argv-style strings "key=value", borrowed: they
// must outlive the Sweep if its runs' origins are used), validates every run and dedupes.
// Returns 0, or -1 with err_set() and *out left empty (nothing to free).
int sweep_load(const char *path, int noverrides, char *const *overrides, Sweep *out);
// The same from YAML text; `name` is used as the file name in messages.
int sweep_load_string(const char *text, const char *name, int noverrides, char *const *overrides,
                      Sweep *out);
void sweep_free(Sweep *s);

// The grid's runs at the picked settings: pick[v] is the setting index of variant v, or -1
// (its runs are left out). *runs and *hashes are malloc'ed (caller frees), deduplicated, in
// grid order; returns their count.
int sweep_picked_runs(const Sweep *s, const int *pick, RunConfig **runs, char (**hashes)[65]);

// Prints the expanded runs for --dry-run: a summary line, then one line per run with its
// hash prefix and the keys whose values differ between runs ("lora.rank=4 seed=2").
void sweep_print(const Sweep *s, FILE *out);

#endif
