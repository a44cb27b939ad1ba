// harness/plot.h — the paper's figures from the results database, drawn by gnuplot
// (`loralab plot`).
//
// Each figure is a self-contained gnuplot script (its data inline as datablocks) written to
// DIR/<figure>.gp beside the DIR/<figure>.png (pngcairo) and DIR/<figure>.svg it draws, so
// a user can restyle it and rerun `gnuplot <figure>.gp` in DIR. Figures:
//   params   main metric vs trainable parameters, log x, one series per method and for LoRA
//            per target set (a line joins the ranks of one target set), error bars = sample
//            std over seeds, the majority baseline dashed and inside the y-range (Figure 2);
//            per task: params-<task>
//   rank     main metric vs LoRA rank, log2 x, one series per target set; rank-<task>
//   curves   training (lines) and validation (points) loss vs step of every run in one
//            figure, one colour per run: curves-sweep-<sweep>; with per_run also one figure
//            per run: curves-<id> (`loralab plot --runs SELECTOR` keeps the runs a selector
//            matches; the sweep's name is then <sweep>-<selector>)
//   all      the three above, with the per-run figures
#ifndef LORALAB_PLOT_H
#define LORALAB_PLOT_H

#include "harness/report.h"
#include "harness/store.h"

extern const char *const PLOT_NAMES;   // "params, rank, curves, all"

// Draws figure `name` of the runs in d into outdir (created if missing), printing the path
// of each image written. Returns 0, or -1 with err_set() (ERR_INPUT: unknown name, nothing
// to plot, unwritable directory) or err_raise() (ERR_TOOL: gnuplot's exit status and stderr,
// or that gnuplot could not be started; ERR_INTERNAL: pipe, fork or wait failed).
int plot_draw(Store *s, const ReportData *d, const char *name, const char *outdir, int per_run);

// Runs `gnuplot script` inside dir, stdin from /dev/null; warnings it prints are passed on
// to stderr. 0, or -1 with err_raise() (ERR_TOOL or ERR_INTERNAL, as plot_draw).
int plot_run_gnuplot(const char *dir, const char *script);
// Text from the database reaches gnuplot only through these two. A control character
// (a newline would end the line and start a command) becomes a space.
// Writes s as a gnuplot single-quoted string (quotes doubled, control characters as spaces).
void plot_gp_string(FILE *f, const char *s);
// Writes s as the rest of a '#' comment line: control characters and backslashes (a
// trailing one would continue the comment onto the next line) as spaces.
void plot_gp_comment(FILE *f, const char *s);

#endif
