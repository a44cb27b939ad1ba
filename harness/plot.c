// harness/plot.c — gnuplot figures from the results database. See plot.h.
#include "harness/plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/files.h"
#include "harness/plot_internal.h"

const char *const PLOT_NAMES = "params, rank, curves, all";

// ----------------------------------------------------------------------------
// files and gnuplot

// A file name part from a task or sweep name: anything but [A-Za-z0-9._-] becomes '_'.
void safe_name(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s", name);
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            *p = '_';
}

static int is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

// A gnuplot single-quoted string: nothing is special inside but the quote, written twice
// (backquotes and @macros are not expanded there), and the end of the line.
void plot_gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(is_control((unsigned char)*s) ? ' ' : *s, f);
    }
    fputc('\'', f);
}

void plot_gp_comment(FILE *f, const char *s) {
    for (; *s; s++) fputc(is_control((unsigned char)*s) || *s == '\\' ? ' ' : *s, f);
}

int plot_run_gnuplot(const char *dir, const char *script) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return err_raise(ERR_INTERNAL, "plot: pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return err_raise(ERR_INTERNAL, "plot: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) { dup2(null, 0); dup2(null, 1); }
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        if (chdir(dir) != 0) {
            fprintf(stderr, "cannot enter %s: %s\n", dir, strerror(errno));
            _exit(126);
        }
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        fprintf(stderr, "cannot run gnuplot: %s (install gnuplot-nox: scripts/setup.sh)\n", strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    char err[4096];
    size_t len = 0;
    ssize_t got;
    char chunk[1024];
    while ((got = read(pipefd[0], chunk, sizeof chunk)) > 0 || (got < 0 && errno == EINTR)) {
        if (got <= 0) continue;
        size_t take = (size_t)got < sizeof err - 1 - len ? (size_t)got : sizeof err - 1 - len;
        memcpy(err + len, chunk, take);
        len += take;
    }
    close(pipefd[0]);
    err[len] = 0;
    while (len && (err[len - 1] == '\n' || err[len - 1] == ' ')) err[--len] = 0;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return err_raise(ERR_INTERNAL, "plot: waitpid: %s", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (len) fprintf(stderr, "loralab: gnuplot %s/%s: %s\n", dir, script, err);
        return 0;
    }
    if (WIFSIGNALED(status))
        return err_raise(ERR_TOOL, "gnuplot %s/%s was killed by signal %d: %s", dir, script, WTERMSIG(status), err);
    return err_raise(ERR_TOOL, "gnuplot %s/%s failed (exit status %d): %s", dir, script, WEXITSTATUS(status), err);
}

// Starts a script in memory: the header comment and the common settings.
FILE *script_begin(char **text, size_t *len, const ReportData *d, const char *what,
                   const char *base) {
    FILE *f = open_memstream(text, len);
    LAB_ASSERT(f);
    char sweep[128];
    safe_name(sweep, sizeof sweep, d->sweep);
    fprintf(f, "# ");
    plot_gp_comment(f, what);
    fprintf(f, ", sweep %s\n# written by `loralab plot`; edit and rerun in this directory: gnuplot %s.gp\n",
            sweep, base);
    return f;
}

// Ends the script (PNG then SVG of the same plot), writes DIR/BASE.gp, runs gnuplot.
// text and len belong to the open_memstream of f: they are valid only after fclose(f).
int script_finish(FILE *f, char **textp, size_t *lenp, const char *dir, const char *base,
                  const char *plot_cmd) {
    fprintf(f, "set terminal pngcairo noenhanced size 960,600 font ',11'\n");
    fprintf(f, "set output '%s.png'\n%s\n", base, plot_cmd);
    fprintf(f, "set terminal svg noenhanced size 960,600 dynamic font 'sans,11'\n");
    fprintf(f, "set output '%s.svg'\nreplot\nunset output\n", base);
    fclose(f);
    char *text = *textp;
    size_t len = *lenp;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gp", dir, base);
    FILE *out = fopen(path, "w");
    if (!out) {
        int e = errno;
        free(text);
        return err_set("plot: cannot write %s: %s", path, strerror(e));
    }
    fwrite(text, 1, len, out);
    free(text);
    if (fclose(out) != 0) return err_set("plot: cannot write %s: %s", path, strerror(errno));
    char script[512];
    snprintf(script, sizeof script, "%s.gp", base);
    int rc = plot_run_gnuplot(dir, script);
    if (rc == 0) printf("%s/%s.png\n%s/%s.svg\n", dir, base, dir, base);
    return rc;
}

// ----------------------------------------------------------------------------
// figures

typedef struct { double x, mean, std; } Point;

static int cmp_point(const void *a, const void *b) {
    double x = ((const Point *)a)->x, y = ((const Point *)b)->x;
    return (x > y) - (x < y);
}

static void datablock(FILE *f, int k, Point *pts, int n) {
    qsort(pts, (size_t)n, sizeof *pts, cmp_point);
    fprintf(f, "$d%d << EOD\n", k);
    for (int i = 0; i < n; i++) fprintf(f, "%.10g %.10g %.10g\n", pts[i].x, pts[i].mean, pts[i].std);
    fprintf(f, "EOD\n");
}

// Appends to a growing plot command.
static void cmd_append(char **cmd, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cmd_append(char **cmd, size_t *len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *cmd = xrealloc(*cmd, *len + (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(*cmd + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
}

// The single-quoted form of s, for titles inside a plot command.
static char *gp_quoted(const char *s) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    LAB_ASSERT(f);
    plot_gp_string(f, s);
    fclose(f);
    return text;
}

static const char *run_metric(const ReportData *d, const char *task) {
    for (int k = 0; k < d->n; k++)
        if (d->runs[k].status == RUN_DONE && !isnan(d->runs[k].value) && d->runs[k].task &&
            !strcmp(d->runs[k].task, task))
            return d->runs[k].metric;
    return "metric";
}

// The series a run belongs to in Figure 2: its method, and for LoRA its target set, so that
// a line joins the ranks of one target set only ("lora Wq,Wv").
static void params_series(char *buf, size_t cap, const ReportRun *r) {
    char set[64] = "";
    if (r->targets && r->rank > 0) report_format_targets(set, sizeof set, r->targets);
    snprintf(buf, cap, "%s%s%s", r->method ? r->method : "-", set[0] ? " " : "", set);
}

// Figure 2: metric vs trainable parameters, one series per method (per target set for LoRA).
// Returns figures drawn (0 or 1) or -1 with the error's class set.
static int plot_params(const ReportData *d, const char *task, const char *dir) {
    int *first;
    int ng = report_groups(d, task, &first);
    char (*methods)[96] = xcalloc((size_t)ng + 1, sizeof *methods);
    Point *pts = xcalloc((size_t)ng + 1, sizeof *pts);
    int nm = 0, npoints = 0;
    double xmin = INFINITY, xmax = -INFINITY;
    for (int g = 0; g < ng; g++) {
        const ReportRun *r = &d->runs[first[g]];
        if (r->trainable < 0) continue;
        char m[96];
        params_series(m, sizeof m, r);
        int seen = 0;
        for (int i = 0; i < nm; i++) seen |= !strcmp(methods[i], m);
        if (!seen) snprintf(methods[nm++], sizeof methods[0], "%s", m);
        npoints++;
        if (r->trainable < xmin) xmin = (double)r->trainable;
        if (r->trainable > xmax) xmax = (double)r->trainable;
    }
    if (npoints == 0) { free(first); free(methods); free(pts); return 0; }
    char safe[128], base[160], what[256];
    safe_name(safe, sizeof safe, task);
    snprintf(base, sizeof base, "params-%s", safe);
    snprintf(what, sizeof what, "%s vs trainable parameters, task %s (Figure 2)", run_metric(d, task), safe);
    char *text;
    size_t len;
    FILE *f = script_begin(&text, &len, d, what, base);
    char *cmd = NULL;
    size_t clen = 0;
    cmd_append(&cmd, &clen, "plot ");
    double bsum = 0;
    int bn = 0;
    for (int m = 0; m < nm; m++) {
        int n = 0;
        for (int g = 0; g < ng; g++) {
            const ReportRun *r = &d->runs[first[g]];
            char series[96];
            params_series(series, sizeof series, r);
            if (r->trainable < 0 || strcmp(series, methods[m])) continue;
            double baseline;
            ReportStat st = report_group_stat(d, task, r->group, &baseline);
            if (!isnan(baseline)) { bsum += baseline; bn++; }
            pts[n++] = (Point){(double)r->trainable, st.mean, st.std};
        }
        datablock(f, m, pts, n);
        char *title = gp_quoted(methods[m]);
        cmd_append(&cmd, &clen, "%s$d%d using 1:2:3 with yerrorlines pt 7 title %s", m ? ", " : "", m, title);
        free(title);
    }
    if (bn) {
        // an arrow spans the whole width (a function would be sampled over the data's x only);
        // the two-point series gives it its key entry and brings it into the y autoscale
        fprintf(f, "baseline = %.10g\n", bsum / bn);
        fprintf(f, "set arrow from graph 0, first baseline to graph 1, first baseline nohead dt 2 lc rgb 'gray40'\n");
        fprintf(f, "$baseline << EOD\n%.10g %.10g\n%.10g %.10g\nEOD\n", xmin, bsum / bn, xmax, bsum / bn);
        cmd_append(&cmd, &clen, ", $baseline using 1:2 with lines dt 2 lc rgb 'gray40' title 'baseline'");
    }
    fprintf(f, "set title ");
    plot_gp_string(f, what);
    fprintf(f, "\nset xlabel 'trainable parameters'\nset ylabel ");
    plot_gp_string(f, run_metric(d, task));
    fprintf(f, "\nset logscale x\nset grid\nset key outside right top\nset offsets 0, 0, graph 0.05, graph 0.05\n");
    int rc = script_finish(f, &text, &len, dir, base, cmd);
    free(cmd);
    free(first);
    free(methods);
    free(pts);
    return rc == 0 ? 1 : rc;
}

// Metric vs LoRA rank, one series per target set.
static int plot_rank(const ReportData *d, const char *task, const char *dir) {
    const char **sets;
    int *ranks;
    int nsets = report_target_sets(d, task, &sets), nranks = report_ranks(d, task, &ranks);
    if (nsets == 0) { free(sets); free(ranks); return 0; }
    char safe[128], base[160], what[256], label[64];
    safe_name(safe, sizeof safe, task);
    snprintf(base, sizeof base, "rank-%s", safe);
    snprintf(what, sizeof what, "%s vs LoRA rank r, task %s (Table 6)", run_metric(d, task), safe);
    char *text;
    size_t len;
    FILE *f = script_begin(&text, &len, d, what, base);
    char *cmd = NULL;
    size_t clen = 0;
    cmd_append(&cmd, &clen, "plot ");
    Point *pts = xcalloc((size_t)nranks + 1, sizeof *pts);
    for (int s = 0; s < nsets; s++) {
        int n = 0;
        for (int r = 0; r < nranks; r++) {
            ReportStat st = report_cell_stat(d, task, sets[s], ranks[r], NULL);
            if (st.n) pts[n++] = (Point){ranks[r], st.mean, st.std};
        }
        datablock(f, s, pts, n);
        report_format_targets(label, sizeof label, sets[s]);
        char *title = gp_quoted(label);
        cmd_append(&cmd, &clen, "%s$d%d using 1:2:3 with yerrorlines pt 7 title %s", s ? ", " : "", s, title);
        free(title);
    }
    fprintf(f, "set title ");
    plot_gp_string(f, what);
    fprintf(f, "\nset xlabel 'rank r'\nset ylabel ");
    plot_gp_string(f, run_metric(d, task));
    fprintf(f, "\nset logscale x 2\nset xtics (");
    for (int r = 0; r < nranks; r++) fprintf(f, "%s%d", r ? ", " : "", ranks[r]);
    fprintf(f, ")\nset xrange [%g:%g]\n", ranks[0] / 1.5, ranks[nranks - 1] * 1.5);
    fprintf(f, "set grid\nset key outside right top\nset offsets 0, 0, graph 0.05, graph 0.05\n");
    int rc = script_finish(f, &text, &len, dir, base, cmd);
    free(cmd);
    free(pts);
    free(sets);
    free(ranks);
    return rc == 0 ? 1 : rc;
}

// Training and validation loss of one run. 0 when the run recorded no loss.
static int plot_curve(Store *s, const ReportRun *r, const ReportData *d, const char *dir) {
    sqlite3 *db = store_db(s);
    const char *sql = "SELECT step, value FROM metrics WHERE run_id = ? AND split = ? AND name = 'loss' "
                      "AND value IS NOT NULL ORDER BY step";
    const char *splits[2] = {"train", "validation"};
    char *text = NULL;
    size_t len = 0;
    char base[64], what[512], config[128];
    snprintf(base, sizeof base, "curves-%lld", (long long)r->id);
    report_config_label(config, sizeof config, r);
    int wl = snprintf(what, sizeof what, "loss, run %lld (%.8s): %s %s, task %s", (long long)r->id,
                      r->hash ? r->hash : "", r->method ? r->method : "-", config, r->task ? r->task : "-");
    if (r->seed >= 0 && wl > 0 && (size_t)wl < sizeof what)
        snprintf(what + wl, sizeof what - (size_t)wl, ", seed %d", r->seed);
    sqlite3_stmt *st = NULL;
    FILE *f = NULL;
    int npoints[2] = {0, 0}, rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    f = script_begin(&text, &len, d, what, base);
    for (int k = 0; k < 2; k++) {
        sqlite3_reset(st);
        SQL_CHECK(db, sqlite3_bind_int64(st, 1, r->id), sql);
        SQL_CHECK(db, sqlite3_bind_text(st, 2, splits[k], -1, SQLITE_STATIC), sql);
        fprintf(f, "$%s << EOD\n", splits[k]);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            fprintf(f, "%lld %.10g\n", (long long)sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1));
            npoints[k]++;
        }
        SQL_CHECK(db, rc, sql);
        fprintf(f, "EOD\n");
    }
    sqlite3_finalize(st);
    st = NULL;
    if (npoints[0] + npoints[1] == 0) { fclose(f); free(text); return 0; }
    fprintf(f, "set title ");
    plot_gp_string(f, what);
    fprintf(f, "\nset xlabel 'step'\nset ylabel 'loss'\nset grid\nset key top right\n");
    char cmd[256] = "plot ";
    if (npoints[0]) strcat(cmd, "$train using 1:2 with lines lw 1.5 title 'train'");
    if (npoints[0] && npoints[1]) strcat(cmd, ", ");
    if (npoints[1]) strcat(cmd, "$validation using 1:2 with linespoints pt 7 lw 2 title 'validation'");
    int ok = script_finish(f, &text, &len, dir, base, cmd);
    return ok == 0 ? 1 : ok;
fail:
    sqlite3_finalize(st);
    if (f) { fclose(f); free(text); }
    return -1;
}

int plot_draw(Store *s, const ReportData *d, const char *name, const char *outdir, int per_run) {
    int want_params = !strcmp(name, "params"), want_rank = !strcmp(name, "rank"),
        want_curves = !strcmp(name, "curves"), all = !strcmp(name, "all");
    if (!want_params && !want_rank && !want_curves && !all)
        return err_set("plot: unknown figure '%s' (expected one of: %s)", name, PLOT_NAMES);
    if (files_make_dirs(outdir)) return -1;
    int drawn = 0, rc = 0;
    const char **tasks;
    int ntasks = report_tasks(d, &tasks);
    for (int t = 0; t < ntasks && rc >= 0; t++) {
        if (want_params || all) { rc = plot_params(d, tasks[t], outdir); drawn += rc > 0; }
        if (rc >= 0 && (want_rank || all)) { rc = plot_rank(d, tasks[t], outdir); drawn += rc > 0; }
    }
    free(tasks);
    if (rc >= 0 && (want_curves || all)) {
        rc = plot_curves_overlay(s, d, outdir);
        drawn += rc > 0;
    }
    if ((per_run && want_curves) || all)
        for (int k = 0; k < d->n && rc >= 0; k++) {
            rc = plot_curve(s, &d->runs[k], d, outdir);
            drawn += rc > 0;
        }
    if (rc < 0) return rc;
    if (!drawn) {
        const char *need = want_params ? "done runs with a main metric and trainable parameters"
                         : want_rank   ? "done LoRA runs with a main metric"
                         : want_curves ? "runs with loss metrics"
                                       : "done runs with metrics";
        return err_set("plot %s: sweep '%s' has no %s (%d runs in all)", name, d->sweep, need, d->n);
    }
    return 0;
}
