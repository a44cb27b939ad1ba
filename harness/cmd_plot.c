// harness/cmd_plot.c — `loralab plot NAME [--sweep S] [--db PATH] [--out DIR]`: the paper's
// figures with gnuplot (see harness/plot.h). Exit status 1 when gnuplot fails.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/plot.h"
#include "harness/report.h"
#include "harness/store.h"

// DIR/plots/<sweep> where DIR holds the database: results/loralab.db → results/plots/<sweep>.
static char *default_outdir(const char *db, const char *sweep) {
    const char *slash = strrchr(db, '/');
    size_t dirlen = slash ? (size_t)(slash - db) : 0;
    size_t size = dirlen + strlen(sweep) + 16;
    char *out = xmalloc(size);
    if (slash) snprintf(out, size, "%.*s/plots/", (int)dirlen, db);
    else snprintf(out, size, "plots/");
    size_t len = strlen(out);
    for (const char *p = sweep; *p; p++)   // a sweep name is one path component
        out[len++] = (*p == '/' || (*p == '.' && p == sweep)) ? '_' : *p;
    out[len] = 0;
    return out;
}

// Moves the runs that spec selects to the front of d and sets d->n to their count (the
// caller restores it before report_data_free); names the figures' sweep "<sweep>-<spec>".
static int keep_selected(Store *s, const char *spec, ReportData *d) {
    int64_t *ids;
    int n;
    if (runs_select(s, spec, &ids, &n)) return -1;
    int k = 0;
    for (int i = 0; i < d->n; i++) {
        int hit = 0;
        for (int j = 0; j < n && !hit; j++) hit = d->runs[i].id == ids[j];
        if (!hit) continue;
        ReportRun t = d->runs[k];
        d->runs[k++] = d->runs[i];
        d->runs[i] = t;
    }
    free(ids);
    if (!k) return err_set("plot: run selector '%s' matches no run of sweep '%s'", spec, d->sweep);
    d->n = k;
    size_t len = strlen(d->sweep) + strlen(spec) + 2;
    char *name = xmalloc(len);
    snprintf(name, len, "%s-%s", d->sweep, spec);
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            *p = '_';
    free(d->sweep);
    d->sweep = name;
    return 0;
}

int cmd_plot(int argc, char **argv) {
    const char *db = STORE_DEFAULT_PATH, *sweep = NULL, *outdir = NULL;
    int per_run = 0;
    const char *selector = NULL;
    ArgSpec specs[] = {
        {"--runs", ARG_STRING, &selector, 0, 0, "only the runs a selector matches, e.g. 'lora.rank=8' or 'sweep=S,seed=1'"},
        {"--per-run", ARG_FLAG, &per_run, 0, 0, "curves: also one figure per run"},
        {"--sweep", ARG_STRING, &sweep, 0, 0, "only this sweep's runs (default: every run, directory 'all')"},
        {"--db", ARG_STRING, &db, 0, 0, "results database (default " STORE_DEFAULT_PATH ")"},
        {"--out", ARG_STRING, &outdir, 0, 0, "output directory (default: plots/<sweep> beside the database)"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    const char *usage =
        "plot NAME [--sweep S] [--runs SELECTOR] [--per-run] [--db PATH] [--out DIR]\n\n"
        "figures (PNG and SVG, each beside the gnuplot script that draws it):\n"
        "  params   main metric vs trainable parameters, log x, one series per method (Figure 2)\n"
        "  rank     main metric vs LoRA rank, one series per target set\n"
        "  curves   training and validation loss vs step, every run of the sweep in one figure\n"
        "           (--per-run: also one figure per run)\n"
        "  all      all of the above, with the per-run figures";
    ArgResult args;
    if (args_parse(argc, argv, specs, NSPECS, &args)) { args_result_free(&args); return -1; }
    if (args.help) { args_usage(stdout, usage, specs, NSPECS); args_result_free(&args); return EXIT_OK; }
    if (args.npositional != 1) {
        err_set("plot: expected one figure name (%s), got %d arguments", PLOT_NAMES, args.npositional);
        args_result_free(&args);
        return -1;
    }
    Store *s;
    if (store_open(&s, db, STORE_READONLY)) { args_result_free(&args); return -1; }
    ReportData d;
    int rc = report_load(s, sweep, &d), loaded = rc == 0, all_n = loaded ? d.n : 0;
    if (rc == 0 && selector) rc = keep_selected(s, selector, &d);
    if (rc == 0) {
        char *dir = outdir ? xstrdup(outdir) : default_outdir(db, d.sweep);
        rc = plot_draw(s, &d, args.positional[0], dir, per_run);
        free(dir);
    }
    if (loaded) {
        d.n = all_n;   // keep_selected only reordered: every run is freed
        report_data_free(&d);
    }
    store_close(s);
    args_result_free(&args);
    return rc ? -1 : EXIT_OK;
}
