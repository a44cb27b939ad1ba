// harness/analyze_plot.h — gnuplot figures of `loralab analyze`: φ heatmaps (the paper's
// Figures 3 and 4), grids of them over layers (Figures 6 and 7), and the amplification
// factor per layer (Table 7 as a figure).
//
// Like harness/plot.h, each figure is a self-contained gnuplot script (data inline as
// datablocks) written to DIR/<base>.gp beside the DIR/<base>.png and DIR/<base>.svg it
// draws; DIR is created if missing. The path of each image is printed to stdout.
// Returns 0, or -1 with err_set() (ERR_INPUT: unwritable directory or file) or err_raise()
// (ERR_TOOL: gnuplot failed or is missing). Nothing returned is owned.
#ifndef LORALAB_ANALYZE_PLOT_H
#define LORALAB_ANALYZE_PLOT_H

#include "harness/plot.h"

// One φ grid: phi[(i-1) * r2 + (j-1)], i = 1..r1 on the y axis, j = 1..r2 on the x axis,
// colour scale fixed to [0, 1].
int analyze_plot_phi(const char *dir, const char *base, const char *title, const double *phi,
                     int r1, int r2);

// n φ grids of the same size side by side (gnuplot multiplot), panel k titled with
// panel_titles[k]; one shared colour scale [0, 1].
int analyze_plot_phi_grid(const char *dir, const char *base, const char *title, int n,
                          const char *const *panel_titles, const double *const *phis, int r1, int r2);

// One series per matrix: values[s * nlayers + k] at x = layers[k], for series s named
// names[s] (NaN: no point). ylabel names the quantity.
int analyze_plot_layers(const char *dir, const char *base, const char *title, const char *ylabel,
                        int nseries, const char *const *names, int nlayers, const int *layers,
                        const double *values);

#endif
