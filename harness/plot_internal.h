// harness/plot_internal.h — helpers shared by the figure files (harness/plot.c,
// harness/plot_curves.c); not part of the plot interface.
#ifndef LORALAB_PLOT_INTERNAL_H
#define LORALAB_PLOT_INTERNAL_H

#include <stdio.h>

#include "harness/report.h"
#include "harness/store.h"

// A file name part from a task or sweep name: anything but [A-Za-z0-9._-] becomes '_'.
void safe_name(char *buf, size_t size, const char *name);
// Starts a script in memory (open_memstream on *text, *len): header comment and settings.
FILE *script_begin(char **text, size_t *len, const ReportData *d, const char *what, const char *base);
// Ends the script with plot_cmd (PNG, then SVG), writes DIR/BASE.gp and runs gnuplot;
// 0, or -1 with the error's class set (harness/plot.h).
int script_finish(FILE *f, char **textp, size_t *lenp, const char *dir, const char *base,
                  const char *plot_cmd);
// Every run of d in one figure (harness/plot_curves.c): 1 drawn, 0 nothing to draw, or -1
// with the error's class set.
int plot_curves_overlay(Store *s, const ReportData *d, const char *dir);

#endif
