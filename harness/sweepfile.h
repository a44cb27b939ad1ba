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
} Sweep;

// Parses, expands, applies the overrides (argv-style strings "key=value", borrowed: they
// must outlive the Sweep if its runs' origins are used), validates every run and dedupes.
// Returns 0, or -1 with err_set() and *out left empty (nothing to free).
int sweep_load(const char *path, int noverrides, char *const *overrides, Sweep *out);
// The same from YAML text; `name` is used as the file name in messages.
int sweep_load_string(const char *text, const char *name, int noverrides, char *const *overrides,
                      Sweep *out);
void sweep_free(Sweep *s);

// Prints the expanded runs for --dry-run: a summary line, then one line per run with its
// hash prefix and the keys whose values differ between runs ("lora.rank=4 seed=2").
void sweep_print(const Sweep *s, FILE *out);

#endif
