// harness/plot_curves.c — `loralab plot curves`: the loss curves of every run of a sweep in
// one figure (training loss as a line, validation loss as points of the same colour), so
// that runs can be compared as they train. See harness/plot.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/errors.h"
#include "harness/plot.h"
#include "harness/plot_internal.h"

// The single-quoted gnuplot form of s, malloc'ed.
static char *quoted(const char *s) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    LAB_ASSERT(f);
    plot_gp_string(f, s);
    fclose(f);
    return text;
}

static void append(char **cmd, size_t *len, const char *s) {
    size_t n = strlen(s);
    *cmd = xrealloc(*cmd, *len + n + 1);
    memcpy(*cmd + *len, s, n + 1);
    *len += n;
}

int plot_curves_overlay(Store *s, const ReportData *d, const char *dir) {
    sqlite3 *db = store_db(s);
    const char *sql = "SELECT step, value FROM metrics WHERE run_id = ? AND split = ? AND name = 'loss' "
                      "AND value IS NOT NULL ORDER BY step";
    static const char *const splits[2] = {"train", "validation"};
    char safe[128], base[160], what[256];
    safe_name(safe, sizeof safe, d->sweep);
    snprintf(base, sizeof base, "curves-sweep-%s", safe);
    snprintf(what, sizeof what, "loss of every run (lines: training, points: validation)");
    char *text = NULL, *cmd = NULL;
    size_t len = 0, clen = 0;
    FILE *f = script_begin(&text, &len, d, what, base);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL), series = 0;
    if (rc != SQLITE_OK) goto fail;
    append(&cmd, &clen, "plot ");
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        int npoints[2] = {0, 0};
        for (int sp = 0; sp < 2; sp++) {
            sqlite3_reset(st);
            if (sqlite3_bind_int64(st, 1, r->id) != SQLITE_OK ||
                sqlite3_bind_text(st, 2, splits[sp], -1, SQLITE_STATIC) != SQLITE_OK)
                goto fail;
            fprintf(f, "$r%lld_%s << EOD\n", (long long)r->id, splits[sp]);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                fprintf(f, "%lld %.10g\n", (long long)sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1));
                npoints[sp]++;
            }
            if (rc != SQLITE_DONE) goto fail;
            fprintf(f, "EOD\n");
        }
        if (!npoints[0] && !npoints[1]) continue;
        // one colour per run: its training line carries the key entry
        char config[128], label[320], part[512];
        report_config_label(config, sizeof config, r);
        int n = snprintf(label, sizeof label, "run %lld: %s%s%s", (long long)r->id, r->method ? r->method : "-",
                         config[0] ? " " : "", config);
        if (r->seed >= 0 && n > 0 && (size_t)n < sizeof label)
            snprintf(label + n, sizeof label - (size_t)n, ", seed %d", r->seed);
        char *title = quoted(label);
        for (int sp = 0; sp < 2; sp++) {
            if (!npoints[sp]) continue;
            snprintf(part, sizeof part, "%s$r%lld_%s using 1:2 with %s lc %d %s%s", series ? ", " : "",
                     (long long)r->id, splits[sp], sp ? "points pt 7 ps 0.8" : "lines lw 1.5",
                     k % 8 + 1, sp == 0 || !npoints[0] ? "title " : "notitle", sp == 0 || !npoints[0] ? title : "");
            append(&cmd, &clen, part);
            series++;
        }
        free(title);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!series) { fclose(f); free(text); free(cmd); return 0; }
    fprintf(f, "set title ");
    plot_gp_string(f, what);
    fprintf(f, "\nset xlabel 'step'\nset ylabel 'loss'\nset grid\nset key outside right top\n");
    int ok = script_finish(f, &text, &len, dir, base, cmd);
    free(cmd);
    return ok == 0 ? 1 : ok;
fail:
    err_set("plot curves: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    fclose(f);
    free(text);
    free(cmd);
    return -1;
}
