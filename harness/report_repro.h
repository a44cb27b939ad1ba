// harness/report_repro.h — `loralab report reproduction`: the reproduction's RESULTS.md,
// written from the results database alone.
//
// For each finding of the paper that the reproduction tests (Table 5, Table 6, Table 7,
// Figures 2, 3 and 4, LoRA ≈ FT) one row: the paper's claim and its own numbers (a table in
// report_repro.c, cited as the paper's), ours with a 95 % t interval and n, a verdict by a
// coded rule, and the evidence. Then the detail tables, every deviation from the paper's
// setup derived from the stored configs, and the compute time summed from the runs.
//
// Where the numbers come from: the runs of the sweeps named in REPRO_SWEEPS (tuning runs at
// settings that were not picked are left out, as in every report), and the analysis tables
// (analysis_subspace, analysis_amplification) of those runs.
//
// Verdicts (REPRO_ALPHA = 0.05, REPRO_MARGIN = 0.01 of the main metric):
//   directional claim ("A above B"): paired t-test over seeds (φ and amplification: over
//     layers and run pairs), Holm-adjusted across the claim's comparisons. Reproduced when every
//     comparison goes the paper's way with adjusted p < alpha; not reproduced when one goes the
//     other way with adjusted p < alpha; otherwise inconclusive at this power.
//   "on par" claim ("A is not worse than B"): reproduced when the 95 % t interval of every paired
//     difference A - B lies above -margin; not reproduced when one lies wholly below -margin;
//     otherwise inconclusive at this power.
//   amplification > 1: reproduced when the 95 % t interval of the mean factor lies above 1, not
//     reproduced when it lies below 1, otherwise inconclusive.
//   not tested: the database lacks the runs or analysis rows the claim needs (said which).
#ifndef LORALAB_REPORT_REPRO_H
#define LORALAB_REPORT_REPRO_H

#include <stdio.h>

#include "harness/store.h"

#define REPRO_ALPHA 0.05
#define REPRO_MARGIN 0.01

// The sweeps the reproduction reads, by role.
#define REPRO_SWEEP_TABLE5 "table5-budget"
#define REPRO_SWEEP_TABLE6 "table6-rank"
#define REPRO_SWEEP_METHODS "fig2-methods"

// Writes RESULTS.md for the database s to out. The text depends on the database's contents only,
// not on its file's name or path (a copy gives the same document). 0, or -1 (err_set).
int report_reproduction(FILE *out, Store *s);

#endif
