// harness/analyze_plot.c — φ heatmaps and per-layer figures with gnuplot. See analyze_plot.h.
#include "harness/analyze_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/files.h"

// Writes DIR/BASE.gp: header, body (the caller's settings and datablocks, which end with the
// plot commands in `draw`), then the same drawing as PNG and SVG; runs gnuplot.
static int finish(const char *dir, const char *base, const char *body, const char *draw,
                  int width, int height) {
    if (files_make_dirs(dir)) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gp", dir, base);
    FILE *f = fopen(path, "w");
    if (!f) return err_set("analyze: cannot write %s: %s", path, strerror(errno));
    fprintf(f, "# written by `loralab analyze`; edit and rerun in this directory: gnuplot %s.gp\n", base);
    fputs(body, f);
    fprintf(f, "set terminal pngcairo noenhanced size %d,%d font ',11'\nset output '%s.png'\n%s",
            width, height, base, draw);
    fprintf(f, "set terminal svg noenhanced size %d,%d dynamic font 'sans,11'\nset output '%s.svg'\n%s"
               "unset output\n", width, height, base, draw);
    if (fclose(f) != 0) return err_set("analyze: cannot write %s: %s", path, strerror(errno));
    char script[512];
    snprintf(script, sizeof script, "%s.gp", base);
    int rc = plot_run_gnuplot(dir, script);
    if (rc == 0) printf("%s/%s.png\n%s/%s.svg\n", dir, base, dir, base);
    return rc;
}

// Settings shared by the heatmaps: viridis-like palette on [0, 1], cells centred on integers.
static void heat_settings(FILE *f, int r1, int r2) {
    fprintf(f, "set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')\n"
               "set cbrange [0:1]\nset cblabel 'φ(i, j)'\n"
               "set xrange [0.5:%g]\nset yrange [%g:0.5]\n"   // i grows downwards, as in the paper
               "set xlabel 'j'\nset ylabel 'i'\nset tics out\nset xtics 1,%d\nset ytics 1,%d\n",
            r2 + 0.5, r1 + 0.5, r2 <= 16 ? 1 : r2 / 8, r1 <= 16 ? 1 : r1 / 8);
}

static void phi_block(FILE *f, int k, const double *phi, int r1, int r2) {
    fprintf(f, "$phi%d << EOD\n", k);
    for (int i = 1; i <= r1; i++)
        for (int j = 1; j <= r2; j++) fprintf(f, "%d %d %.6f\n", j, i, phi[(size_t)(i - 1) * r2 + (j - 1)]);
    fprintf(f, "EOD\n");
}

// Figure size for an r1 x r2 heatmap: wide grids (8 x 64) get a wide figure.
static void heat_size(int r1, int r2, int *w, int *h) {
    double aspect = (double)r2 / r1;
    if (aspect > 4) aspect = 4;
    if (aspect < 1) aspect = 1;
    *h = 420;
    *w = (int)(160 + 340 * aspect);
}

int analyze_plot_phi(const char *dir, const char *base, const char *title, const double *phi,
                     int r1, int r2) {
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    LAB_ASSERT(f);
    phi_block(f, 0, phi, r1, r2);
    heat_settings(f, r1, r2);
    fprintf(f, "set title ");
    plot_gp_string(f, title);
    fprintf(f, "\n");
    fclose(f);
    int w, h;
    heat_size(r1, r2, &w, &h);
    int rc = finish(dir, base, body, "plot $phi0 using 1:2:3 with image notitle\n", w, h);
    free(body);
    return rc;
}

int analyze_plot_phi_grid(const char *dir, const char *base, const char *title, int n,
                          const char *const *panel_titles, const double *const *phis, int r1, int r2) {
    LAB_ASSERT(n > 0);
    // wide grids (8 x 64) stack vertically; square ones go up to 4 per row
    int cols = r2 >= 2 * r1 ? 1 : (n < 4 ? n : 4), rows = (n + cols - 1) / cols;
    char *body = NULL, *draw = NULL;
    size_t len = 0, dlen = 0;
    FILE *f = open_memstream(&body, &len);
    LAB_ASSERT(f);
    for (int k = 0; k < n; k++) phi_block(f, k, phis[k], r1, r2);
    heat_settings(f, r1, r2);
    fclose(f);
    FILE *d = open_memstream(&draw, &dlen);
    LAB_ASSERT(d);
    fprintf(d, "set multiplot layout %d,%d title ", rows, cols);
    plot_gp_string(d, title);
    fprintf(d, "\n");
    for (int k = 0; k < n; k++) {
        fprintf(d, "set title ");
        plot_gp_string(d, panel_titles[k]);
        fprintf(d, "\nplot $phi%d using 1:2:3 with image notitle\n", k);
    }
    fprintf(d, "unset multiplot\n");
    fclose(d);
    int w, h;
    heat_size(r1, r2, &w, &h);
    w = w * cols * 3 / 4 + 40;
    h = h * rows * 3 / 4 + 60;
    int rc = finish(dir, base, body, draw, w, h);
    free(body);
    free(draw);
    return rc;
}

int analyze_plot_layers(const char *dir, const char *base, const char *title, const char *ylabel,
                        int nseries, const char *const *names, int nlayers, const int *layers,
                        const double *values) {
    char *body = NULL, *draw = NULL;
    size_t len = 0, dlen = 0;
    FILE *f = open_memstream(&body, &len);
    LAB_ASSERT(f);
    int lo = layers[0], hi = layers[0];
    for (int s = 0; s < nseries; s++) {
        fprintf(f, "$s%d << EOD\n", s);
        for (int k = 0; k < nlayers; k++) {
            double v = values[(size_t)s * nlayers + k];
            if (layers[k] < lo) lo = layers[k];
            if (layers[k] > hi) hi = layers[k];
            if (isfinite(v)) fprintf(f, "%d %.10g\n", layers[k], v);
        }
        fprintf(f, "EOD\n");
    }
    fprintf(f, "set title ");
    plot_gp_string(f, title);
    fprintf(f, "\nset xlabel 'layer'\nset ylabel ");
    plot_gp_string(f, ylabel);
    fprintf(f, "\nset xrange [%g:%g]\n%sset grid\nset key outside right\n", lo - 0.5, hi + 0.5,
            hi - lo <= 24 ? "set xtics 1\n" : "");
    fclose(f);
    FILE *d = open_memstream(&draw, &dlen);
    LAB_ASSERT(d);
    fprintf(d, "plot ");
    for (int s = 0; s < nseries; s++) {
        fprintf(d, "%s$s%d using 1:2 with linespoints lw 2 title ", s ? ", " : "", s);
        plot_gp_string(d, names[s]);
    }
    fprintf(d, "\n");
    fclose(d);
    int rc = finish(dir, base, body, draw, 960, 540);
    free(body);
    free(draw);
    return rc;
}
