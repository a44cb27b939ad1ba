// harness/analyze.h — what `loralab analyze` (harness/cmd_analyze.c) and the interpreter of
// a sweep's analyze: block (harness/analyze_sweep.c) share: the options of an analysis and
// the analyses themselves.
#ifndef LORALAB_ANALYZE_H
#define LORALAB_ANALYZE_H

#include <stdint.h>

#include "harness/store.h"

// The analyses return 0, or -1 with err_set() (bad input) or err_raise() (ERR_TOOL: gnuplot
// failed or is missing).

typedef struct {
    int matrices;        // TARGET_* mask; 0: every matrix the run(s) adapted
    int *layers;         // NULL: every layer
    int nlayers;
    int i_max, j_max;    // subspace grid limits; 0: the ranks
    int seed;            // random baselines
    int plot;
    const char *outdir;  // figures; NULL: plots/<sweep or run> beside the database
    const char *db;
    const char *dir_a, *dir_b;   // adapter directories given as RUN (--a / --run, --b), or NULL
    const char *base;            // --base: their base checkpoint
} Options;

// "q,v" → TARGET_* mask (--matrix). 0 or -1 with err_set().
int analyze_parse_matrices(const char *text, int *mask);
// Layers: NULL or "all" → *n = 0 (every layer); "0,2-3" → {0, 2, 3}. *layers malloc'ed.
int analyze_parse_layers(const char *text, int **layers, int *n);
// DIR/plots/<name> where DIR holds the database (or o->outdir); malloc'ed.
char *analyze_plots_dir(const Options *o, const char *name);
// φ between the lora_A of runs ida and idb (or o->dir_a / o->dir_b), stored, printed, drawn.
int analyze_subspace(Store *st, int64_t ida, int64_t idb, const Options *o);
// Amplification, singular values and effective rank of run id (or o->dir_a).
int analyze_amplification(Store *st, int64_t id, const Options *o);
// The analyze: block stored with sweep `name`, over its runs that are done.
int analyze_sweep(Store *st, const char *name, Options o);

#endif
