// harness/report.c — paper-style tables from the results database. See report.h.
#include "harness/report.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "harness/config.h"
#include "harness/stats.h"
#include "tasks/metrics.h"

const char *const REPORT_NAMES = "table6, table5, methods, runs, table7, tune";

// Main-metric names in order of preference when a run did not record runs.metric.

static char *dup_col(sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? xstrdup((const char *)t) : NULL;
}

static int64_t int_col(sqlite3_stmt *st, int col) {
    return sqlite3_column_type(st, col) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, col);
}

static int str_eq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

// ----------------------------------------------------------------------------
// loading

// Removes every "seed" key, at any depth: what remains identifies the experiment.
static void drop_seeds(json_t *j) {
    if (json_is_object(j)) {
        json_object_del(j, "seed");
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) drop_seeds(v);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) drop_seeds(v);
    }
}

static char *group_key(const char *config) {
    json_t *j = config ? json_loads(config, 0, NULL) : NULL;
    if (!j) return xstrdup(config ? config : "");   // not JSON: the run is its own group
    drop_seeds(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    char *out = xstrdup(s ? s : "");
    free(s);
    return out;
}

// The main metric, its value and baseline from the run's test / validation rows.
static int load_metric(sqlite3 *db, ReportRun *r) {
    const char *sql = "SELECT split, name, value FROM metrics WHERE run_id = ? "
                      "AND split IN ('test', 'validation') ORDER BY step";
    sqlite3_stmt *st = NULL;
    enum { MAXM = 64 };
    struct { char split[16], name[48]; double value; } m[MAXM];
    int nm = 0, rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(st, 1, r->id), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *split = (const char *)sqlite3_column_text(st, 0);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        double v = sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2);
        int k = 0;   // later steps overwrite: the latest value wins
        while (k < nm && !(str_eq(m[k].split, split) && str_eq(m[k].name, name))) k++;
        if (k == nm) {
            if (nm == MAXM || strlen(name) >= sizeof m[0].name) continue;
            snprintf(m[k].split, sizeof m[k].split, "%s", split);
            snprintf(m[k].name, sizeof m[k].name, "%s", name);
            nm++;
        }
        m[k].value = v;
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);

    const char *splits[2] = {"test", "validation"};
    if (!r->metric) {   // the stored metric the table prefers as a headline
        int best = -1, best_rank = 0;
        for (int k = 0; k < nm; k++) {
            const MetricInfo *mi = metric_find(m[k].name);
            if (mi && mi->headline && (best < 0 || mi->headline < best_rank)) { best = k; best_rank = mi->headline; }
        }
        if (best >= 0) r->metric = xstrdup(m[best].name);
    }
    if (!r->metric) return 0;
    for (int sp = 0; sp < 2 && !r->split; sp++)
        for (int k = 0; k < nm; k++)
            if (!strcmp(m[k].split, splits[sp]) && !strcmp(m[k].name, r->metric)) {
                r->value = m[k].value;
                r->split = xstrdup(splits[sp]);
            }
    char base[64];
    snprintf(base, sizeof base, "baseline_%s", r->metric);
    for (int k = 0; k < nm; k++)
        if (!strcmp(m[k].split, "test") && !strcmp(m[k].name, base)) r->baseline = m[k].value;
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// Best and last validation steps of the main metric: the run is not converged when it ran to
// the cap (or recorded no stop) and its best validation was its last one, of at least two.
static int load_convergence(sqlite3 *db, ReportRun *r) {
    if (!r->metric) return 0;
    const char *sql = "SELECT (SELECT max(step) FROM metrics WHERE run_id = ?1 AND split = 'validation' AND name = ?2), "
                      "(SELECT count(*) FROM metrics WHERE run_id = ?1 AND split = 'validation' AND name = ?2), "
                      "(SELECT value FROM metrics WHERE run_id = ?1 AND split = 'test' AND name = 'best_step' "
                      "ORDER BY step DESC LIMIT 1)";
    sqlite3_stmt *st = NULL;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(st, 1, r->id), sql);
    SQL_CHECK(db, sqlite3_bind_text(st, 2, r->metric, -1, SQLITE_TRANSIENT), sql);
    SQL_CHECK(db, sqlite3_step(st), sql);
    r->last_step = (int)int_col(st, 0);
    int nval = (int)int_col(st, 1);
    r->best_step = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : (int)sqlite3_column_double(st, 2);
    sqlite3_finalize(st);
    int at_cap = !r->stop_reason || !strcmp(r->stop_reason, "cap");
    r->not_converged = at_cap && nval >= 2 && r->best_step >= 0 && r->best_step == r->last_step;
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// The sweep's tuned keys, and its tuning runs at settings it did not pick.
static int load_tuning(sqlite3 *db, int64_t sweep_id, ReportData *d) {
    const char *sql = "SELECT run_id, picked, setting FROM sweep_tune WHERE sweep_id = ? ORDER BY position";
    sqlite3_stmt *st = NULL;
    int rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(st, 1, sweep_id), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int picked = sqlite3_column_int(st, 1);
        for (int k = 0; k < d->n; k++)
            if (d->runs[k].id == id && !picked) d->runs[k].tuning_only = 1;
        // "train.lr=0.001 train.dropout=0.1": the keys
        const char *setting = (const char *)sqlite3_column_text(st, 2);
        for (const char *p = setting; p && *p;) {
            size_t klen = strcspn(p, "=");
            int seen = 0;
            for (int t = 0; t < d->ntuned; t++) seen |= strlen(d->tuned[t]) == klen && !strncmp(d->tuned[t], p, klen);
            if (!seen && klen) {
                d->tuned = xrealloc(d->tuned, (size_t)(d->ntuned + 1) * sizeof *d->tuned);
                d->tuned[d->ntuned] = xcalloc(klen + 1, 1);
                memcpy(d->tuned[d->ntuned++], p, klen);
            }
            p += strcspn(p, " ");
            while (*p == ' ') p++;
        }
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

int report_load(Store *s, const char *sweep, ReportData *out) {
    memset(out, 0, sizeof *out);
    sqlite3 *db = store_db(s);
    int64_t sweep_id = 0;
    if (sweep && store_find_sweep(s, sweep, &sweep_id)) return -1;
    const char *cols = "r.id, r.hash, r.status, r.task, r.metric, r.method, r.targets, r.rank, "
                       "r.seed, r.label, r.trainable_params, r.head_params, r.config, r.error, "
                       "r.wall_seconds, r.stop_step, r.stop_reason";
    char sql[512];
    if (sweep)
        snprintf(sql, sizeof sql, "SELECT %s FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id "
                 "WHERE sr.sweep_id = ? ORDER BY sr.position", cols);
    else
        snprintf(sql, sizeof sql, "SELECT %s FROM runs r ORDER BY r.id", cols);
    sqlite3_stmt *st = NULL;
    int cap = 16, rc;
    out->runs = xcalloc((size_t)cap, sizeof *out->runs);
    out->sweep = xstrdup(sweep ? sweep : "all");
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    if (sweep) SQL_CHECK(db, sqlite3_bind_int64(st, 1, sweep_id), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            out->runs = xrealloc(out->runs, (size_t)(cap *= 2) * sizeof *out->runs);
            memset(out->runs + out->n, 0, (size_t)(cap - out->n) * sizeof *out->runs);
        }
        ReportRun *r = &out->runs[out->n++];
        r->id = sqlite3_column_int64(st, 0);
        r->hash = dup_col(st, 1);
        int status = store_status_parse((const char *)sqlite3_column_text(st, 2));
        r->status = status < 0 ? RUN_PENDING : (RunStatus)status;
        r->task = dup_col(st, 3);
        r->metric = dup_col(st, 4);
        r->method = dup_col(st, 5);
        r->targets = dup_col(st, 6);
        r->rank = (int)int_col(st, 7);
        r->seed = (int)int_col(st, 8);
        r->label = dup_col(st, 9);
        r->trainable = int_col(st, 10);
        r->head = int_col(st, 11);
        r->group = group_key((const char *)sqlite3_column_text(st, 12));
        r->error = dup_col(st, 13);
        r->wall_seconds = sqlite3_column_type(st, 14) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 14);
        r->value = r->baseline = NAN;
        r->config = dup_col(st, 12);
        r->stop_step = (int)int_col(st, 15);
        r->stop_reason = dup_col(st, 16);
        r->best_step = r->last_step = -1;
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    for (int k = 0; k < out->n; k++)
        if (out->runs[k].status == RUN_DONE && (load_metric(db, &out->runs[k]) || load_convergence(db, &out->runs[k])))
            goto fail_loaded;
    if (sweep && load_tuning(db, sweep_id, out)) goto fail_loaded;
    return 0;
fail:
    sqlite3_finalize(st);
fail_loaded:
    report_data_free(out);
    return -1;
}

void report_data_free(ReportData *d) {
    for (int k = 0; k < d->n; k++) {
        ReportRun *r = &d->runs[k];
        free(r->hash); free(r->task); free(r->method); free(r->targets); free(r->label);
        free(r->metric); free(r->split); free(r->group); free(r->error);
        free(r->config); free(r->stop_reason);
    }
    for (int t = 0; t < d->ntuned; t++) free(d->tuned[t]);
    free(d->tuned);
    free(d->runs);
    free(d->sweep);
    memset(d, 0, sizeof *d);
}

// ----------------------------------------------------------------------------
// statistics and formatting

ReportStat report_stat(const double *x, int n) {
    ReportStat st = {0, NAN, NAN};
    double sum = 0;
    for (int k = 0; k < n; k++)
        if (!isnan(x[k])) { sum += x[k]; st.n++; }
    if (st.n == 0) return st;
    st.mean = sum / st.n;
    double ss = 0;
    for (int k = 0; k < n; k++)
        if (!isnan(x[k])) ss += (x[k] - st.mean) * (x[k] - st.mean);
    st.std = st.n > 1 ? sqrt(ss / (st.n - 1)) : 0.0;
    return st;
}

void report_format_stat(char *buf, size_t size, ReportStat st) {
    if (st.n == 0) snprintf(buf, size, "-");
    else if (st.n == 1) snprintf(buf, size, "%.3f", st.mean);
    else snprintf(buf, size, "%.3f ± %.3f", st.mean, st.std);
}

void report_format_targets(char *buf, size_t size, const char *targets) {
    if (!targets) { snprintf(buf, size, "-"); return; }
    // only the attention projections q, k, v, o get the paper's W prefix
    int paper = 1;
    for (const char *p = targets; *p; p++)
        if (!(strchr("qkvo", *p) && (p[1] == ',' || p[1] == 0)) && *p != ',') paper = 0;
    if (!paper) { snprintf(buf, size, "%s", targets); return; }
    size_t len = 0;
    buf[0] = 0;
    for (const char *p = targets; *p && len + 4 < size; p++) {
        if (*p == ',') buf[len++] = ',';
        else { buf[len++] = 'W'; buf[len++] = *p; }
        buf[len] = 0;
    }
}

void report_config_label(char *buf, size_t size, const ReportRun *r) {
    char t[64] = "", lora[96] = "";
    if (r->targets) report_format_targets(t, sizeof t, r->targets);
    if (r->targets && r->rank > 0) snprintf(lora, sizeof lora, "%s r=%d", t, r->rank);
    else if (r->targets) snprintf(lora, sizeof lora, "%s", t);
    else if (r->rank > 0) snprintf(lora, sizeof lora, "r=%d", r->rank);
    // the label (other methods' sizes, precision) follows the LoRA part: "Wq,Wv r=8 lp=16 li=0"
    snprintf(buf, size, "%s%s%s", lora, lora[0] && r->label ? " " : "", r->label ? r->label : "");
}

// ----------------------------------------------------------------------------
// grouping

static int has_value(const ReportRun *r) { return r->status == RUN_DONE && !isnan(r->value) && !r->tuning_only; }

int report_tasks(const ReportData *d, const char ***tasks) {
    const char **out = xcalloc((size_t)d->n + 1, sizeof *out);
    int n = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (!has_value(r)) continue;
        const char *t = r->task ? r->task : "-";
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= !strcmp(out[i], t);
        if (!seen) out[n++] = t;
    }
    *tasks = out;
    return n;
}

static int task_match(const ReportRun *r, const char *task) {
    return !strcmp(r->task ? r->task : "-", task);
}

int report_groups(const ReportData *d, const char *task, int **first) {
    int *out = xcalloc((size_t)d->n + 1, sizeof *out);
    int n = 0;
    for (int k = 0; k < d->n; k++) {
        if (!has_value(&d->runs[k]) || !task_match(&d->runs[k], task)) continue;
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= !strcmp(d->runs[out[i]].group, d->runs[k].group);
        if (!seen) out[n++] = k;
    }
    *first = out;
    return n;
}

ReportStat report_group_stat(const ReportData *d, const char *task, const char *group, double *baseline) {
    double *v = xcalloc((size_t)d->n + 1, sizeof *v), *b = xcalloc((size_t)d->n + 1, sizeof *b);
    int n = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (!has_value(r) || !task_match(r, task) || strcmp(r->group, group)) continue;
        v[n] = r->value;
        b[n++] = r->baseline;
    }
    ReportStat st = report_stat(v, n);
    if (baseline) *baseline = report_stat(b, n).mean;
    free(v);
    free(b);
    return st;
}

static int is_lora_cell(const ReportRun *r, const char *task) {
    return has_value(r) && task_match(r, task) && str_eq(r->method, "lora") && r->targets && r->rank > 0;
}

ReportStat report_cell_stat(const ReportData *d, const char *task, const char *targets, int rank,
                            int *ngroups) {
    double *v = xcalloc((size_t)d->n + 1, sizeof *v);
    const char **groups = xcalloc((size_t)d->n + 1, sizeof *groups);
    int n = 0, ng = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (!is_lora_cell(r, task) || strcmp(r->targets, targets) || r->rank != rank) continue;
        v[n++] = r->value;
        int seen = 0;
        for (int i = 0; i < ng; i++) seen |= !strcmp(groups[i], r->group);
        if (!seen) groups[ng++] = r->group;
    }
    ReportStat st = report_stat(v, n);
    if (ngroups) *ngroups = ng;
    free(v);
    free(groups);
    return st;
}

int report_target_sets(const ReportData *d, const char *task, const char ***sets) {
    const char **out = xcalloc((size_t)d->n + 1, sizeof *out);
    int n = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (!is_lora_cell(r, task)) continue;
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= !strcmp(out[i], r->targets);
        if (!seen) out[n++] = r->targets;
    }
    *sets = out;
    return n;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int report_ranks(const ReportData *d, const char *task, int **ranks) {
    int *out = xcalloc((size_t)d->n + 1, sizeof *out);
    int n = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (!is_lora_cell(r, task)) continue;
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= out[i] == r->rank;
        if (!seen) out[n++] = r->rank;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_int);
    *ranks = out;
    return n;
}

// ----------------------------------------------------------------------------
// text tables

static size_t utf8_width(const char *s) {
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void report_table_print(FILE *out, int nrows, int ncols, char *const *cells, const int *right_align) {
    size_t *width = xcalloc((size_t)ncols, sizeof *width);
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < ncols; c++) {
            const char *cell = cells[(size_t)r * ncols + c];
            size_t w = utf8_width(cell ? cell : "");
            if (w > width[c]) width[c] = w;
        }
    // Each line is built in a buffer so that its trailing blanks (empty last cells) go.
    char *line = NULL;
    size_t cap = 0;
    for (int r = 0; r < nrows; r++) {
        for (int pass = 0; pass < (r == 0 ? 2 : 1); pass++) {
            size_t len = 0;
            for (int c = 0; c < ncols; c++) {
                const char *cell = pass == 1 ? "" : cells[(size_t)r * ncols + c];
                if (!cell) cell = "";
                size_t cell_len = strlen(cell), pad = width[c] - utf8_width(cell);
                size_t need = len + width[c] + cell_len + 3;
                if (need > cap) line = xrealloc(line, cap = need * 2);
                if (pass == 1) {   // the header's underline
                    memset(line + len, '-', width[c]);
                    len += width[c];
                } else {
                    int right = right_align && right_align[c];
                    if (right) { memset(line + len, ' ', pad); len += pad; }
                    memcpy(line + len, cell, cell_len);
                    len += cell_len;
                    if (!right) { memset(line + len, ' ', pad); len += pad; }
                }
                if (c < ncols - 1) { memcpy(line + len, "  ", 2); len += 2; }
            }
            while (len > 0 && line[len - 1] == ' ') len--;
            fwrite(line, 1, len, out);
            fputc('\n', out);
        }
    }
    free(line);
    free(width);
}

// A growable grid of malloc'ed cells.
typedef struct {
    char **cells;
    int rows, cols, cap;
} Grid;

static void grid_init(Grid *g, int cols) {
    g->cols = cols;
    g->rows = 0;
    g->cap = 8;
    g->cells = xcalloc((size_t)g->cap * cols, sizeof *g->cells);
}

static void grid_set(Grid *g, int row, int col, const char *text) {
    LAB_ASSERT(col < g->cols);
    while (row >= g->cap) {
        g->cells = xrealloc(g->cells, (size_t)g->cap * 2 * g->cols * sizeof *g->cells);
        memset(g->cells + (size_t)g->cap * g->cols, 0, (size_t)g->cap * g->cols * sizeof *g->cells);
        g->cap *= 2;
    }
    if (row >= g->rows) g->rows = row + 1;
    char **cell = &g->cells[(size_t)row * g->cols + col];
    free(*cell);
    *cell = xstrdup(text);
}

static void grid_free(Grid *g) {
    for (size_t k = 0; k < (size_t)g->cap * g->cols; k++) free(g->cells[k]);
    free(g->cells);
}

// "test accuracy" when every counted run took it from the same split, else "accuracy".
static void metric_title(char *buf, size_t size, const ReportData *d, const char *task) {
    const char *metric = NULL, *split = NULL;
    int mixed_metric = 0, mixed_split = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (!has_value(r) || !task_match(r, task)) continue;
        if (metric && strcmp(metric, r->metric)) mixed_metric = 1;
        if (split && strcmp(split, r->split)) mixed_split = 1;
        metric = r->metric;
        split = r->split;
    }
    if (!metric) snprintf(buf, size, "-");
    else if (mixed_metric) snprintf(buf, size, "main metric (differs between runs)");
    else if (mixed_split) snprintf(buf, size, "%s (test where recorded, else validation)", metric);
    else snprintf(buf, size, "%s %s", split, metric);
}

static void print_footer(FILE *out, const ReportData *d) {
    int counts[RUN_NSTATUS] = {0}, done_no_value = 0, tuning = 0, not_converged = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (r->tuning_only) { tuning++; continue; }
        counts[r->status]++;
        if (r->status == RUN_DONE && isnan(r->value)) done_no_value++;
        not_converged += has_value(r) && r->not_converged;
    }
    if (not_converged)
        fprintf(out, "not converged (*): %d run(s) stopped at train.steps while their validation metric still "
                "improved (best at the last evaluation); a longer train.steps with train.patience lets them finish\n",
                not_converged);
    int missing = d->n - tuning - counts[RUN_DONE];
    if (missing == 0 && done_no_value == 0 && tuning == 0) return;
    fprintf(out, "left out:");
    for (int k = 0; k < RUN_NSTATUS; k++)
        if (k != RUN_DONE && counts[k]) fprintf(out, " %d %s", counts[k], store_status_name((RunStatus)k));
    if (done_no_value) fprintf(out, " %d done without a main metric", done_no_value);
    if (tuning) fprintf(out, "%s %d tuning run(s) at settings not picked (loralab report tune --sweep %s)",
                        missing || done_no_value ? "," : "", tuning, d->sweep);
    fprintf(out, "\n");
}

// ----------------------------------------------------------------------------
// cells with n, interval and convergence; columns for keys that vary

void report_format_cell(char *buf, size_t size, const double *values, int n, int not_converged) {
    StatsSummary st = stats_summary(values, n);
    if (st.n == 0) snprintf(buf, size, "-");
    else if (st.n == 1) snprintf(buf, size, "%.3f n=1", st.mean);
    else snprintf(buf, size, "%.3f ± %.3f n=%d [%.3f, %.3f]", st.mean, st.std, st.n, st.lo, st.hi);
    if (st.n > 0 && not_converged > 0) snprintf(buf + strlen(buf), size - strlen(buf), " *");
}

// The values (and not-converged count) of task's rows in one group, or in one LoRA cell
// (group NULL: targets and rank).
static int gather(const ReportData *d, const char *task, const char *group, const char *targets, int rank,
                  double *v, int *not_converged) {
    int n = 0;
    *not_converged = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        int in = group ? has_value(r) && task_match(r, task) && !strcmp(r->group, group)
                       : targets && is_lora_cell(r, task) && !strcmp(r->targets, targets) && r->rank == rank;
        if (!in) continue;
        v[n++] = r->value;
        *not_converged += r->not_converged;
    }
    return n;
}

static json_t *num_or_null(double x) { return isnan(x) || isinf(x) ? json_null() : json_real(x); }

// Adds mean, std, n, ci_lo, ci_hi, not_converged of values to a record.
static void record_stats(json_t *o, const double *v, int n, int not_converged) {
    StatsSummary st = stats_summary(v, n);
    json_object_set_new(o, "mean", num_or_null(st.mean));
    json_object_set_new(o, "std", num_or_null(st.std));
    json_object_set_new(o, "n", json_integer(st.n));
    json_object_set_new(o, "ci_lo", num_or_null(st.lo));
    json_object_set_new(o, "ci_hi", num_or_null(st.hi));
    json_object_set_new(o, "not_converged", json_integer(not_converged));
}

// Keys the row labels already show (method, sizes, precision) or that tell runs of one row
// apart (seeds, the sweep's name).
static int label_key(const char *key) {
    static const char *const keys[] = {"name", "method", "combine", "task.name", "lora.targets", "lora.rank",
                                       "adapter.rank", "prefix.lp", "prefix.li", "train.precision"};
    const char *last = strrchr(key, '.');
    if (!strcmp(last ? last + 1 : key, "seed")) return 1;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(key, keys[i])) return 1;
    return 0;
}

// A JSON value as the text a column shows: strings bare, lists joined by commas.
static void value_text(json_t *v, char *buf, size_t cap) {
    if (json_is_string(v)) snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_integer(v)) snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, cap, "%.9g", json_real_value(v));
    else if (json_is_array(v)) {
        size_t i, len = 0;
        json_t *x;
        buf[0] = 0;
        json_array_foreach(v, i, x) {
            char item[128];
            value_text(x, item, sizeof item);
            len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s", i ? "," : "", item);
        }
    } else {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(buf, cap, "%s", t ? t : "");
        free(t);
    }
}

enum { MAX_COLS = 24 };
typedef struct { int n; char names[MAX_COLS][96]; int tuned[MAX_COLS]; } Columns;

// Finds dotted key in config (NULL when absent).
static json_t *json_dotted(json_t *j, const char *key) {
    char buf[96];
    snprintf(buf, sizeof buf, "%s", key);
    for (char *part = buf, *dot; j; part = dot + 1) {
        dot = strchr(part, '.');
        if (dot) *dot = 0;
        j = json_is_object(j) ? json_object_get(j, part) : NULL;
        if (!dot) return j;
    }
    return NULL;
}

static void collect_keys(json_t *j, const char *prefix, Columns *c) {
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        char full[96];
        snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", key);
        if (json_is_object(v)) { collect_keys(v, full, c); continue; }
        int seen = 0;
        for (int i = 0; i < c->n; i++) seen |= !strcmp(c->names[i], full);
        if (!seen && c->n < MAX_COLS && !label_key(full)) snprintf(c->names[c->n++], sizeof c->names[0], "%s", full);
    }
}

// The columns of rows[0..n) (run indices): tuned keys, and keys whose values differ
// between two rows that both have them.
static void varying_columns(const ReportData *d, const int *rows, int n, Columns *out) {
    Columns all = {0};
    json_t **cfg = xcalloc((size_t)n + 1, sizeof *cfg);
    for (int i = 0; i < n; i++) {
        cfg[i] = d->runs[rows[i]].config ? json_loads(d->runs[rows[i]].config, 0, NULL) : NULL;
        if (cfg[i]) collect_keys(cfg[i], "", &all);
    }
    out->n = 0;
    for (int c = 0; c < all.n; c++) {
        int tuned = 0, differ = 0;
        for (int t = 0; t < d->ntuned; t++) tuned |= !strcmp(d->tuned[t], all.names[c]);
        char first[256] = "", v[256];
        int have = 0;
        for (int i = 0; i < n && !differ; i++) {
            json_t *x = cfg[i] ? json_dotted(cfg[i], all.names[c]) : NULL;
            if (!x) continue;
            value_text(x, v, sizeof v);
            if (have && strcmp(v, first)) differ = 1;
            if (!have) snprintf(first, sizeof first, "%s", v);
            have = 1;
        }
        if (tuned || differ) {
            snprintf(out->names[out->n], sizeof out->names[0], "%s", all.names[c]);
            out->tuned[out->n++] = tuned;
        }
    }
    for (int i = 0; i < n; i++) json_decref(cfg[i]);
    free(cfg);
}

// Column c's value for run r, "-" when its config has no such key.
static void column_value(const ReportRun *r, const Columns *c, int col, char *buf, size_t cap) {
    json_t *j = r->config ? json_loads(r->config, 0, NULL) : NULL;
    json_t *x = j ? json_dotted(j, c->names[col]) : NULL;
    if (x) value_text(x, buf, cap);
    else snprintf(buf, cap, "-");
    json_decref(j);
}

static void column_header(const Columns *c, int col, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s", c->names[col], c->tuned[col] ? " (tuned)" : "");
}

// ----------------------------------------------------------------------------
// the reports

// Table 6: rows are target sets, columns ranks.
static int print_table6(FILE *out, const ReportData *d, const char *task, json_t *rec) {
    const char **sets;
    int *ranks;
    int nsets = report_target_sets(d, task, &sets), nranks = report_ranks(d, task, &ranks);
    if (nsets == 0) { free(sets); free(ranks); return 0; }
    char title[128], buf[160];
    metric_title(title, sizeof title, d, task);
    if (!rec) fprintf(out, "table6: %s, %s, mean ± std, n, 95%% t interval over seeds\n\n", task, title);
    Grid g;
    grid_init(&g, nranks + 1);
    grid_set(&g, 0, 0, "weight type");
    for (int c = 0; c < nranks; c++) {
        snprintf(buf, sizeof buf, "r=%d", ranks[c]);
        grid_set(&g, 0, c + 1, buf);
    }
    double *v = xcalloc((size_t)d->n + 1, sizeof *v);
    int pooled = 0;
    for (int s = 0; s < nsets; s++) {
        report_format_targets(buf, sizeof buf, sets[s]);
        grid_set(&g, s + 1, 0, buf);
        for (int c = 0; c < nranks; c++) {
            int ngroups, nc;
            report_cell_stat(d, task, sets[s], ranks[c], &ngroups);
            int n = gather(d, task, NULL, sets[s], ranks[c], v, &nc);
            report_format_cell(buf, sizeof buf, v, n, nc);
            grid_set(&g, s + 1, c + 1, buf);
            pooled += ngroups > 1;
            if (rec && n > 0) {
                json_t *o = json_object();
                json_object_set_new(o, "task", json_string(task));
                json_object_set_new(o, "targets", json_string(sets[s]));
                json_object_set_new(o, "rank", json_integer(ranks[c]));
                json_object_set_new(o, "metric", json_string(title));
                record_stats(o, v, n, nc);
                json_object_set_new(o, "configurations", json_integer(ngroups));
                json_array_append_new(rec, o);
            }
        }
    }
    if (!rec) {
        report_table_print(out, g.rows, g.cols, g.cells, NULL);
        if (pooled) fprintf(out, "note: %d cell(s) pool runs that differ in more than the seed\n", pooled);
        fprintf(out, "\n");
    }
    free(v);
    grid_free(&g);
    free(sets);
    free(ranks);
    return 1;
}

// Table 5: one column per (target set, rank) at a budget; rows: trainable params, metric.
static int print_table5(FILE *out, const ReportData *d, const char *task, json_t *rec) {
    const char **sets;
    int *ranks;
    int nsets = report_target_sets(d, task, &sets), nranks = report_ranks(d, task, &ranks);
    // columns: (set, rank) pairs that have runs, set by set
    int ncol = 0, (*col)[2] = xcalloc((size_t)(nsets * nranks) + 1, sizeof *col);
    for (int s = 0; s < nsets; s++)
        for (int r = 0; r < nranks; r++)
            if (report_cell_stat(d, task, sets[s], ranks[r], NULL).n > 0) {
                col[ncol][0] = s;
                col[ncol++][1] = r;
            }
    if (ncol == 0) { free(sets); free(ranks); free(col); return 0; }
    char title[128], buf[160], t[64];
    metric_title(title, sizeof title, d, task);
    if (!rec) fprintf(out, "table5: %s, %s, mean ± std, n, 95%% t interval over seeds\n\n", task, title);
    Grid g;
    grid_init(&g, ncol + 1);
    grid_set(&g, 0, 0, "weight type");
    grid_set(&g, 1, 0, "rank r");
    grid_set(&g, 2, 0, "trainable");
    grid_set(&g, 3, 0, task);
    double *v = xcalloc((size_t)d->n + 1, sizeof *v);
    for (int c = 0; c < ncol; c++) {
        const char *set = sets[col[c][0]];
        int rank = ranks[col[c][1]];
        report_format_targets(t, sizeof t, set);
        grid_set(&g, 0, c + 1, t);
        snprintf(buf, sizeof buf, "%d", rank);
        grid_set(&g, 1, c + 1, buf);
        int64_t trainable = -1;
        for (int k = 0; k < d->n && trainable < 0; k++)
            if (is_lora_cell(&d->runs[k], task) && !strcmp(d->runs[k].targets, set) && d->runs[k].rank == rank)
                trainable = d->runs[k].trainable;
        if (trainable >= 0) snprintf(buf, sizeof buf, "%lld", (long long)trainable);
        else snprintf(buf, sizeof buf, "-");
        grid_set(&g, 2, c + 1, buf);
        int nc, n = gather(d, task, NULL, set, rank, v, &nc);
        report_format_cell(buf, sizeof buf, v, n, nc);
        grid_set(&g, 3, c + 1, buf);
        if (rec) {
            json_t *o = json_object();
            json_object_set_new(o, "task", json_string(task));
            json_object_set_new(o, "targets", json_string(set));
            json_object_set_new(o, "rank", json_integer(rank));
            json_object_set_new(o, "trainable", trainable >= 0 ? json_integer(trainable) : json_null());
            json_object_set_new(o, "metric", json_string(title));
            record_stats(o, v, n, nc);
            json_array_append_new(rec, o);
        }
    }
    if (!rec) {
        report_table_print(out, g.rows, g.cols, g.cells, NULL);
        fprintf(out, "\n");
    }
    free(v);
    grid_free(&g);
    free(sets);
    free(ranks);
    free(col);
    return 1;
}

// Table 4 style: one row per configuration (all methods), with trainable parameters and the
// task's baseline beside the metric; a column per key that varies between the rows.
static int print_methods(FILE *out, const ReportData *d, const char *task, json_t *rec) {
    int *first;
    int ng = report_groups(d, task, &first);
    if (ng == 0) { free(first); return 0; }
    char title[128], buf[256];
    metric_title(title, sizeof title, d, task);
    if (!rec) fprintf(out, "methods: %s, %s, mean ± std, 95%% t interval over seeds\n\n", task, title);
    Columns cols;
    varying_columns(d, first, ng, &cols);
    int nc = 9 + cols.n, c0 = 2 + cols.n;   // c0: the first column after the varying keys
    Grid g;
    grid_init(&g, nc);
    grid_set(&g, 0, 0, "method");
    grid_set(&g, 0, 1, "config");
    for (int c = 0; c < cols.n; c++) {
        column_header(&cols, c, buf, sizeof buf);
        grid_set(&g, 0, 2 + c, buf);
    }
    const char *head[7] = {"trainable", "head", title, "95% CI", "n", "baseline", "not converged"};
    for (int c = 0; c < 7; c++) grid_set(&g, 0, c0 + c, head[c]);
    double *v = xcalloc((size_t)d->n + 1, sizeof *v);
    for (int k = 0; k < ng; k++) {
        const ReportRun *r = &d->runs[first[k]];
        double baseline;
        report_group_stat(d, task, r->group, &baseline);
        int nconv, n = gather(d, task, r->group, NULL, 0, v, &nconv);
        StatsSummary st = stats_summary(v, n);
        json_t *o = rec ? json_object() : NULL;
        if (o) json_object_set_new(o, "task", json_string(task));
        grid_set(&g, k + 1, 0, r->method ? r->method : "-");
        if (o) json_object_set_new(o, "method", r->method ? json_string(r->method) : json_null());
        report_config_label(buf, sizeof buf, r);
        grid_set(&g, k + 1, 1, buf);
        if (o) json_object_set_new(o, "config", json_string(buf));
        for (int c = 0; c < cols.n; c++) {
            column_value(r, &cols, c, buf, sizeof buf);
            grid_set(&g, k + 1, 2 + c, buf);
            if (o) json_object_set_new(o, cols.names[c], json_string(buf));
        }
        if (r->trainable >= 0) snprintf(buf, sizeof buf, "%lld", (long long)r->trainable);
        else snprintf(buf, sizeof buf, "-");
        grid_set(&g, k + 1, c0, buf);
        if (r->head >= 0) snprintf(buf, sizeof buf, "%lld", (long long)r->head);
        else snprintf(buf, sizeof buf, "-");
        grid_set(&g, k + 1, c0 + 1, buf);
        report_format_stat(buf, sizeof buf, (ReportStat){st.n, st.mean, st.std});
        grid_set(&g, k + 1, c0 + 2, buf);
        if (st.n > 1) snprintf(buf, sizeof buf, "[%.3f, %.3f]", st.lo, st.hi);
        else snprintf(buf, sizeof buf, "-");
        grid_set(&g, k + 1, c0 + 3, buf);
        snprintf(buf, sizeof buf, "%d", st.n);
        grid_set(&g, k + 1, c0 + 4, buf);
        if (isnan(baseline)) snprintf(buf, sizeof buf, "-");
        else snprintf(buf, sizeof buf, "%.3f", baseline);
        grid_set(&g, k + 1, c0 + 5, buf);
        if (nconv) snprintf(buf, sizeof buf, "%d of %d", nconv, n);
        else buf[0] = 0;
        grid_set(&g, k + 1, c0 + 6, buf);
        if (o) {
            json_object_set_new(o, "trainable", r->trainable >= 0 ? json_integer(r->trainable) : json_null());
            json_object_set_new(o, "head", r->head >= 0 ? json_integer(r->head) : json_null());
            json_object_set_new(o, "metric", json_string(title));
            record_stats(o, v, n, nconv);
            json_object_set_new(o, "baseline", num_or_null(baseline));
            json_array_append_new(rec, o);
        }
    }
    free(v);
    if (!rec) {
        int right[9 + MAX_COLS] = {0};
        right[c0] = right[c0 + 1] = right[c0 + 4] = right[c0 + 5] = 1;
        report_table_print(out, g.rows, g.cols, g.cells, right);
        fprintf(out, "\n");
    }
    grid_free(&g);
    free(first);
    return 1;
}

// Every run, whatever its status.
// captured (may be NULL): takes the grid instead of printing it (other formats).
static int print_runs(FILE *out, const ReportData *d, Grid **captured) {
    if (d->n == 0) return 0;
    enum { NC = 14 };
    const char *head[NC] = {"id", "hash", "status", "task", "method", "config", "seed",
                            "trainable", "metric", "value", "baseline", "wall_s", "stopped", "error"};
    Grid g;
    grid_init(&g, NC);
    for (int c = 0; c < NC; c++) grid_set(&g, 0, c, head[c]);
    char buf[128];
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        int row = k + 1;
        snprintf(buf, sizeof buf, "%lld", (long long)r->id);
        grid_set(&g, row, 0, buf);
        snprintf(buf, sizeof buf, "%.8s", r->hash ? r->hash : "");
        grid_set(&g, row, 1, buf);
        grid_set(&g, row, 2, store_status_name(r->status));
        grid_set(&g, row, 3, r->task ? r->task : "-");
        grid_set(&g, row, 4, r->method ? r->method : "-");
        report_config_label(buf, sizeof buf, r);
        grid_set(&g, row, 5, buf);
        if (r->seed >= 0) snprintf(buf, sizeof buf, "%d", r->seed); else snprintf(buf, sizeof buf, "-");
        grid_set(&g, row, 6, buf);
        if (r->trainable >= 0) snprintf(buf, sizeof buf, "%lld", (long long)r->trainable);
        else snprintf(buf, sizeof buf, "-");
        grid_set(&g, row, 7, buf);
        grid_set(&g, row, 8, r->metric && r->split ? r->metric : "-");
        if (!isnan(r->value)) snprintf(buf, sizeof buf, "%.4f", r->value); else snprintf(buf, sizeof buf, "-");
        grid_set(&g, row, 9, buf);
        if (!isnan(r->baseline)) snprintf(buf, sizeof buf, "%.4f", r->baseline); else snprintf(buf, sizeof buf, "-");
        grid_set(&g, row, 10, buf);
        if (!isnan(r->wall_seconds)) snprintf(buf, sizeof buf, "%.1f", r->wall_seconds); else snprintf(buf, sizeof buf, "-");
        grid_set(&g, row, 11, buf);
        // where and why it stopped: "cap 300", "patience 120 *" (* not converged), "tuning" marks
        // a tuning run at a setting not picked
        if (r->stop_reason && r->stop_step >= 0) snprintf(buf, sizeof buf, "%s %d", r->stop_reason, r->stop_step);
        else snprintf(buf, sizeof buf, "%s", r->stop_reason ? r->stop_reason : "-");
        if (r->not_converged) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " *");
        if (r->tuning_only) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " (tuning)");
        grid_set(&g, row, 12, buf);
        // first line of the error, cut to keep the table readable
        snprintf(buf, sizeof buf, "%.60s", r->error ? r->error : "");
        buf[strcspn(buf, "\r\n")] = 0;
        grid_set(&g, row, 13, buf);
    }
    if (captured) {
        *captured = xmalloc(sizeof **captured);
        **captured = g;
        return 1;
    }
    static const int right[NC] = {1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0};
    fprintf(out, "runs: %d\n\n", d->n);
    report_table_print(out, g.rows, g.cols, g.cells, right);
    grid_free(&g);
    return 1;
}

// Table 7: amplification rows of the sweep's runs (analysis_amplification).
static int print_table7(FILE *out, Store *s, const ReportData *d, Grid **captured) {
    sqlite3 *db = store_db(s);
    const char *sql = "SELECT run, layer, matrix, rank, norm_dw, norm_w, norm_proj_dw, norm_proj_w, "
                      "norm_proj_random, amplification FROM analysis_amplification "
                      "ORDER BY run, matrix, layer, rank";
    enum { NC = 10 };
    const char *head[NC] = {"run", "layer", "matrix", "r", "‖ΔW‖", "‖W‖", "‖UᵀWVᵀ‖ ΔW",
                            "‖UᵀWVᵀ‖ W", "‖UᵀWVᵀ‖ random", "amplification"};
    Grid g;
    grid_init(&g, NC);
    for (int c = 0; c < NC; c++) grid_set(&g, 0, c, head[c]);
    sqlite3_stmt *st = NULL;
    int rows = 0, rc;
    char buf[64];
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t run = sqlite3_column_int64(st, 0);
        int in_sweep = 0;
        for (int k = 0; k < d->n && !in_sweep; k++) in_sweep = d->runs[k].id == run;
        if (!in_sweep) continue;
        rows++;
        for (int c = 0; c < NC; c++) {
            if (c < 4) snprintf(buf, sizeof buf, "%s", sqlite3_column_text(st, c) ? (const char *)sqlite3_column_text(st, c) : "-");
            else if (sqlite3_column_type(st, c) == SQLITE_NULL) snprintf(buf, sizeof buf, "-");
            else snprintf(buf, sizeof buf, "%.4g", sqlite3_column_double(st, c));
            grid_set(&g, rows, c, buf);
        }
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    if (rows && captured) {
        *captured = xmalloc(sizeof **captured);
        **captured = g;
        return 1;
    }
    if (rows) {
        fprintf(out, "table7: ‖UᵀWVᵀ‖_F with U, V the top-r singular vectors of ΔW, W or a random "
                     "matrix; amplification = ‖ΔW‖_F / ‖UᵀWVᵀ‖_F (ΔW's U, V)\n\n");
        static const int right[NC] = {1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
        report_table_print(out, g.rows, g.cols, g.cells, right);
    }
    grid_free(&g);
    return rows > 0;
fail:
    sqlite3_finalize(st);
    grid_free(&g);
    return -1;
}

// The tuning table: one row per variant and setting, with its tuning runs' validation metric
// at their best step (mean over the tuning seeds) and the pick.
static int print_tune(FILE *out, Store *s, const ReportData *d, json_t *rec) {
    if (!strcmp(d->sweep, "all")) return err_set("report tune: name the tuned sweep with --sweep");
    sqlite3 *db = store_db(s);
    const char *sql = "SELECT t.run_id, t.variant, t.setting, t.picked FROM sweep_tune t JOIN sweeps w "
                      "ON w.id = t.sweep_id WHERE w.name = ? ORDER BY t.position";
    sqlite3_stmt *st = NULL;
    enum { NC = 10 };
    const char *head[NC] = {"method", "config", "setting", "seeds", "validation", "best step", "n", "stopped",
                            "picked", "not converged"};
    Grid g;
    grid_init(&g, NC);
    for (int c = 0; c < NC; c++) grid_set(&g, 0, c, head[c]);
    int rows = 0, rc;
    char metric[64] = "", buf[256];
    // rows accumulate (variant, setting) pairs in order
    typedef struct { char variant[65], setting[256]; int picked, n, nc, nrun, row; double sum; char seeds[128], steps[128], stops[128]; } Acc;
    Acc *acc = NULL;
    int nacc = 0;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_text(st, 1, d->sweep, -1, SQLITE_TRANSIENT), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *variant = (const char *)sqlite3_column_text(st, 1), *setting = (const char *)sqlite3_column_text(st, 2);
        int a = 0;
        while (a < nacc && !(str_eq(acc[a].variant, variant) && str_eq(acc[a].setting, setting))) a++;
        if (a == nacc) {
            acc = xrealloc(acc, (size_t)(nacc + 1) * sizeof *acc);
            memset(&acc[a], 0, sizeof acc[a]);
            snprintf(acc[a].variant, sizeof acc[a].variant, "%s", variant ? variant : "");
            snprintf(acc[a].setting, sizeof acc[a].setting, "%s", setting ? setting : "");
            acc[a].row = -1;
            nacc++;
        }
        acc[a].picked |= sqlite3_column_int(st, 3);
        const ReportRun *r = NULL;
        for (int k = 0; k < d->n && !r; k++)
            if (d->runs[k].id == id) r = &d->runs[k];
        if (!r) continue;
        if (acc[a].row < 0) acc[a].row = (int)(r - d->runs);
        acc[a].nrun++;
        double value;
        int best_step;
        if (store_best_validation(s, id, &value, &best_step)) goto fail;
        if (r->metric && !metric[0]) snprintf(metric, sizeof metric, "%s", r->metric);
        size_t l;
        if (r->seed >= 0) { l = strlen(acc[a].seeds); snprintf(acc[a].seeds + l, sizeof acc[a].seeds - l, "%s%d", l ? "," : "", r->seed); }
        l = strlen(acc[a].stops);
        snprintf(acc[a].stops + l, sizeof acc[a].stops - l, "%s%s", l ? "," : "",
                 r->status != RUN_DONE ? store_status_name(r->status) : r->stop_reason ? r->stop_reason : "-");
        if (!isnan(value)) {
            acc[a].sum += value;
            acc[a].n++;
            l = strlen(acc[a].steps);
            snprintf(acc[a].steps + l, sizeof acc[a].steps - l, "%s%d", l ? "," : "", best_step);
        }
        acc[a].nc += r->status == RUN_DONE && r->not_converged;
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    st = NULL;
    for (int a = 0; a < nacc; a++) {
        if (acc[a].row < 0) continue;
        const ReportRun *r = &d->runs[acc[a].row];
        double mean = acc[a].n ? acc[a].sum / acc[a].n : NAN;
        rows++;
        grid_set(&g, rows, 0, r->method ? r->method : "-");
        report_config_label(buf, sizeof buf, r);
        grid_set(&g, rows, 1, buf);
        json_t *o = rec ? json_object() : NULL;
        if (o) {
            json_object_set_new(o, "method", r->method ? json_string(r->method) : json_null());
            json_object_set_new(o, "config", json_string(buf));
            json_object_set_new(o, "setting", json_string(acc[a].setting));
            json_object_set_new(o, "seeds", json_string(acc[a].seeds));
            json_object_set_new(o, "metric", json_string(metric));
            json_object_set_new(o, "validation", num_or_null(mean));
            json_object_set_new(o, "best_step", json_string(acc[a].steps));
            json_object_set_new(o, "n", json_integer(acc[a].n));
            json_object_set_new(o, "stopped", json_string(acc[a].stops));
            json_object_set_new(o, "picked", json_boolean(acc[a].picked));
            json_object_set_new(o, "not_converged", json_integer(acc[a].nc));
            json_array_append_new(rec, o);
        }
        grid_set(&g, rows, 2, acc[a].setting);
        grid_set(&g, rows, 3, acc[a].seeds);
        if (isnan(mean)) snprintf(buf, sizeof buf, "-"); else snprintf(buf, sizeof buf, "%.4f", mean);
        grid_set(&g, rows, 4, buf);
        grid_set(&g, rows, 5, acc[a].steps[0] ? acc[a].steps : "-");
        snprintf(buf, sizeof buf, "%d", acc[a].n);
        grid_set(&g, rows, 6, buf);
        grid_set(&g, rows, 7, acc[a].stops);
        grid_set(&g, rows, 8, acc[a].picked ? "*" : "");
        if (acc[a].nc) snprintf(buf, sizeof buf, "%d of %d", acc[a].nc, acc[a].nrun); else buf[0] = 0;
        grid_set(&g, rows, 9, buf);
    }
    free(acc);
    if (rows == 0) {
        grid_free(&g);
        return err_set("report tune: sweep '%s' has no tuning runs (its file has no tune: block)", d->sweep);
    }
    if (!rec) {
        snprintf(buf, sizeof buf, "validation %s", metric[0] ? metric : "metric");
        grid_set(&g, 0, 4, buf);
        fprintf(out, "tune: %s, validation %s at each run's best-validation step, mean over the tuning seeds; "
                "picked (*): the best, ties to the smaller value\n\n", d->sweep, metric[0] ? metric : "metric");
        static const int right[NC] = {0, 0, 0, 0, 1, 1, 1, 0, 0, 0};
        report_table_print(out, g.rows, g.cols, g.cells, right);
    }
    grid_free(&g);
    return 1;
fail:
    sqlite3_finalize(st);
    free(acc);
    grid_free(&g);
    return -1;
}

// A text grid (runs, table7) as records: header cells are the keys; numbers stay numbers.
static void grid_records(const Grid *g, json_t *rec) {
    for (int r = 1; r < g->rows; r++) {
        json_t *o = json_object();
        for (int c = 0; c < g->cols; c++) {
            const char *cell = g->cells[(size_t)r * g->cols + c], *key = g->cells[c];
            char *end;
            double x = cell && *cell ? strtod(cell, &end) : 0;
            if (!cell || !*cell || !strcmp(cell, "-")) json_object_set_new(o, key ? key : "", json_null());
            else if (!*end) json_object_set_new(o, key ? key : "", json_real(x));
            else json_object_set_new(o, key ? key : "", json_string(cell));
        }
        json_array_append_new(rec, o);
    }
}

// CSV field: quoted when it holds a comma, quote or line break (RFC 4180).
static void csv_field(FILE *out, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, out); return; }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

void report_emit_records(FILE *out, json_t *rec, const char *const *columns, int ncolumns, ReportFormat fmt) {
    if (fmt == REPORT_JSON) {
        char *t = json_dumps(rec, JSON_COMPACT);
        fprintf(out, "%s\n", t ? t : "[]");
        free(t);
        return;
    }
    // the header: the given columns, then every other key of every record, in order of first appearance
    json_t *keys = json_array();
    for (int c = 0; c < ncolumns; c++) json_array_append_new(keys, json_string(columns[c]));
    size_t i;
    json_t *o;
    json_array_foreach(rec, i, o) {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
            int seen = 0;
            size_t j;
            json_t *x;
            json_array_foreach(keys, j, x) seen |= !strcmp(json_string_value(x), k);
            if (!seen) json_array_append_new(keys, json_string(k));
        }
    }
    size_t j;
    json_t *x;
    json_array_foreach(keys, j, x) {
        if (j) fputc(',', out);
        csv_field(out, json_string_value(x));
    }
    fputs("\r\n", out);
    json_array_foreach(rec, i, o) {
        json_array_foreach(keys, j, x) {
            if (j) fputc(',', out);
            json_t *v = json_object_get(o, json_string_value(x));
            if (!v || json_is_null(v)) continue;
            if (json_is_string(v)) { csv_field(out, json_string_value(v)); continue; }
            char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            fputs(t ? t : "", out);
            free(t);
        }
        fputs("\r\n", out);
    }
    json_decref(keys);
}

int report_print(FILE *out, Store *s, const ReportData *d, const char *name) {
    return report_print_as(out, s, d, name, REPORT_TEXT);
}

int report_print_as(FILE *out, Store *s, const ReportData *d, const char *name, ReportFormat fmt) {
    int printed = 0;
    json_t *rec = fmt == REPORT_TEXT ? NULL : json_array();
    if (!strcmp(name, "runs") || !strcmp(name, "table7")) {
        // these print as text; the other formats take the same grid as records
        FILE *sink = out;
        char *text = NULL;
        size_t len = 0;
        if (rec) sink = open_memstream(&text, &len);
        Grid *captured = NULL;
        printed = !strcmp(name, "runs") ? print_runs(sink, d, rec ? &captured : NULL)
                                        : print_table7(sink, s, d, rec ? &captured : NULL);
        if (rec) { fclose(sink); free(text); }
        if (captured) { grid_records(captured, rec); grid_free(captured); free(captured); }
        if (printed < 0) { json_decref(rec); return -1; }
        if (!printed && !strcmp(name, "table7")) {
            json_decref(rec);
            return err_set("report table7: no amplification results for sweep '%s' (run "
                           "`loralab analyze amplification` first)", d->sweep);
        }
    } else if (!strcmp(name, "tune")) {
        printed = print_tune(out, s, d, rec);
        if (printed < 0) { json_decref(rec); return -1; }
    } else if (!strcmp(name, "table6") || !strcmp(name, "table5") || !strcmp(name, "methods")) {
        const char **tasks;
        int ntasks = report_tasks(d, &tasks);
        for (int t = 0; t < ntasks; t++) {
            if (!strcmp(name, "table6")) printed += print_table6(out, d, tasks[t], rec);
            else if (!strcmp(name, "table5")) printed += print_table5(out, d, tasks[t], rec);
            else printed += print_methods(out, d, tasks[t], rec);
        }
        free(tasks);
        if (!printed) {
            json_decref(rec);
            return err_set("report %s: sweep '%s' has no done %sruns with a main metric (%d runs in all)",
                           name, d->sweep, strcmp(name, "methods") ? "LoRA " : "", d->n);
        }
    } else {
        json_decref(rec);
        return err_set("report: unknown table '%s' (expected one of: %s)", name, REPORT_NAMES);
    }
    if (!printed) { json_decref(rec); return err_set("report %s: sweep '%s' has no runs", name, d->sweep); }
    if (rec) {
        report_emit_records(out, rec, NULL, 0, fmt);
        json_decref(rec);
    } else if (strcmp(name, "table7") && strcmp(name, "runs") && strcmp(name, "tune")) {
        print_footer(out, d);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// paired comparisons

typedef struct { int nkeys, keys[CONFIG_MAX_KEYS]; RunConfig want; } Selector;

// "key=value key=value" → keys and their values in a scratch config.
static int selector_parse(const char *text, const char *flag, Selector *sel) {
    sel->nkeys = 0;
    config_defaults(&sel->want);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) return err_set("report compare: %s '%s': expected key=value pairs, got '%s'", flag, text, tok);
        *eq = 0;
        int key = config_resolve_key(tok);
        if (key < 0) {
            config_unknown_key(tok, NULL);
            return err_prefix("report compare: %s '%s'", flag, text);
        }
        if (config_set(&sel->want, tok, eq + 1)) return err_prefix("report compare: %s '%s': %s", flag, text, tok);
        if (sel->nkeys < CONFIG_MAX_KEYS) sel->keys[sel->nkeys++] = key;
    }
    if (sel->nkeys == 0) return err_set("report compare: %s: empty selector (give key=value pairs)", flag);
    return 0;
}

static int selector_match(const Selector *sel, const ReportRun *r) {
    RunConfig rc;
    if (!r->config || config_from_json(r->config, &rc)) return 0;
    for (int k = 0; k < sel->nkeys; k++)
        if (!config_key_equal(&rc, &sel->want, sel->keys[k])) return 0;
    return 1;
}

// First runs of the distinct groups of done runs the selector matches.
static int selector_groups(const ReportData *d, const Selector *sel, int *first) {
    int n = 0;
    for (int k = 0; k < d->n; k++) {
        if (!has_value(&d->runs[k]) || !selector_match(sel, &d->runs[k])) continue;
        int seen = 0;
        for (int i = 0; i < n; i++) seen |= !strcmp(d->runs[first[i]].group, d->runs[k].group);
        if (!seen) first[n++] = k;
    }
    return n;
}

// A group's label: method, config and the values of the columns that tell the groups apart.
static void group_label(const ReportRun *r, const Columns *cols, char *buf, size_t cap) {
    char cfg[128];
    report_config_label(cfg, sizeof cfg, r);
    snprintf(buf, cap, "%s%s%s", r->method ? r->method : "-", cfg[0] ? " " : "", cfg);
    for (int c = 0; c < cols->n; c++) {
        char v[128];
        column_value(r, cols, c, v, sizeof v);
        snprintf(buf + strlen(buf), cap - strlen(buf), " %s=%s", cols->names[c], v);
    }
}

int report_compare(FILE *out, const ReportData *d, const char *sel_a, const char *sel_b, ReportFormat fmt) {
    Selector a, b;
    if (selector_parse(sel_a, "--a", &a) || selector_parse(sel_b, "--b", &b)) return -1;
    int *ga = xcalloc((size_t)d->n + 1, sizeof *ga), *gb = xcalloc((size_t)d->n + 1, sizeof *gb);
    int na = selector_groups(d, &a, ga), nb = selector_groups(d, &b, gb), status = -1;
    int *all = xcalloc((size_t)(na + nb) + 1, sizeof *all);
    double *va = xcalloc((size_t)d->n + 1, sizeof *va), *vb = xcalloc((size_t)d->n + 1, sizeof *vb);
    int ncmp = na > nb ? na : nb;
    StatsPaired *res = xcalloc((size_t)ncmp + 1, sizeof *res);
    double *p = xcalloc((size_t)ncmp + 1, sizeof *p), *holm = xcalloc((size_t)ncmp + 1, sizeof *holm);
    int unpaired = 0, not_converged = 0;
    if (na == 0 || nb == 0) {
        err_set("report compare: %s '%s' matches no done run of sweep '%s'", na == 0 ? "--a" : "--b",
                na == 0 ? sel_a : sel_b, d->sweep);
        goto done;
    }
    if (na > 1 && nb > 1) {
        err_set("report compare: --a matches %d configurations and --b %d; one of them must pick one "
                "(add key=value pairs)", na, nb);
        goto done;
    }
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (!strcmp(d->runs[ga[i]].group, d->runs[gb[j]].group)) {
                err_set("report compare: --a and --b both match the configuration of run %lld",
                        (long long)d->runs[ga[i]].id);
                goto done;
            }
    const char *task = d->runs[ga[0]].task ? d->runs[ga[0]].task : "-";
    for (int j = 0; j < na + nb; j++) {
        const ReportRun *r = &d->runs[j < na ? ga[j] : gb[j - na]];
        if (!task_match(r, task)) { err_set("report compare: the selected runs belong to different tasks (%s, %s)", task, r->task ? r->task : "-"); goto done; }
        all[j] = j < na ? ga[j] : gb[j - na];
    }
    Columns cols;
    varying_columns(d, all, na + nb, &cols);
    char title[128];
    metric_title(title, sizeof title, d, task);
    Grid g;
    int holm_col = ncmp > 1;
    grid_init(&g, 10 + holm_col);
    const char *head[11] = {"a", "b", "pairs", "mean a", "mean b", "a - b", "95% CI", "t", "p", "p (Holm)"};
    for (int c = 0; c < 9 + holm_col; c++) grid_set(&g, 0, c, head[c]);
    json_t *rec = fmt == REPORT_TEXT ? NULL : json_array();
    for (int k = 0; k < ncmp; k++) {
        const ReportRun *ra = &d->runs[ga[na > 1 ? k : 0]], *rb = &d->runs[gb[nb > 1 ? k : 0]];
        // pairs: the seeds both configurations ran
        int n = 0, nc_a = 0, nc_b = 0;
        for (int x = 0; x < d->n; x++) {
            const ReportRun *r = &d->runs[x];
            if (!has_value(r) || strcmp(r->group, ra->group)) continue;
            int found = 0;
            for (int y = 0; y < d->n && !found; y++) {
                const ReportRun *s = &d->runs[y];
                if (has_value(s) && !strcmp(s->group, rb->group) && s->seed == r->seed) {
                    va[n] = r->value;
                    vb[n++] = s->value;
                    nc_a += r->not_converged;
                    nc_b += s->not_converged;
                    found = 1;
                }
            }
            unpaired += !found;
        }
        res[k] = stats_paired(va, vb, n);
        p[k] = res[k].p;
        StatsSummary sa = stats_summary(va, n), sb = stats_summary(vb, n);
        char la[256], lb[256], buf[128];
        group_label(ra, &cols, la, sizeof la);
        group_label(rb, &cols, lb, sizeof lb);
        grid_set(&g, k + 1, 0, la);
        grid_set(&g, k + 1, 1, lb);
        snprintf(buf, sizeof buf, "%d", n);
        grid_set(&g, k + 1, 2, buf);
        snprintf(buf, sizeof buf, "%.4f%s", sa.mean, nc_a ? " *" : "");
        grid_set(&g, k + 1, 3, n ? buf : "-");
        snprintf(buf, sizeof buf, "%.4f%s", sb.mean, nc_b ? " *" : "");
        grid_set(&g, k + 1, 4, n ? buf : "-");
        not_converged += nc_a + nc_b;
        snprintf(buf, sizeof buf, "%+.4f", res[k].mean);
        grid_set(&g, k + 1, 5, n ? buf : "-");
        if (n > 1) snprintf(buf, sizeof buf, "[%+.4f, %+.4f]", res[k].lo, res[k].hi); else snprintf(buf, sizeof buf, "-");
        grid_set(&g, k + 1, 6, buf);
        if (n > 1) snprintf(buf, sizeof buf, "%.3f", res[k].t); else snprintf(buf, sizeof buf, "-");
        grid_set(&g, k + 1, 7, buf);
        if (n > 1) snprintf(buf, sizeof buf, "%.4f", res[k].p); else snprintf(buf, sizeof buf, "-");
        grid_set(&g, k + 1, 8, buf);
        if (rec) {
            json_t *o = json_object();
            json_object_set_new(o, "task", json_string(task));
            json_object_set_new(o, "metric", json_string(title));
            json_object_set_new(o, "a", json_string(la));
            json_object_set_new(o, "b", json_string(lb));
            json_object_set_new(o, "pairs", json_integer(n));
            json_object_set_new(o, "mean_a", num_or_null(sa.mean));
            json_object_set_new(o, "mean_b", num_or_null(sb.mean));
            json_object_set_new(o, "diff", num_or_null(res[k].mean));
            json_object_set_new(o, "ci_lo", num_or_null(res[k].lo));
            json_object_set_new(o, "ci_hi", num_or_null(res[k].hi));
            json_object_set_new(o, "t", num_or_null(res[k].t));
            json_object_set_new(o, "p", num_or_null(res[k].p));
            json_object_set_new(o, "not_converged_a", json_integer(nc_a));
            json_object_set_new(o, "not_converged_b", json_integer(nc_b));
            json_array_append_new(rec, o);
        }
    }
    if (holm_col) {
        stats_holm(p, ncmp, holm);
        for (int k = 0; k < ncmp; k++) {
            char buf[32];
            if (isnan(holm[k])) snprintf(buf, sizeof buf, "-"); else snprintf(buf, sizeof buf, "%.4f", holm[k]);
            grid_set(&g, k + 1, 9, buf);
            if (rec) json_object_set_new(json_array_get(rec, (size_t)k), "p_holm", num_or_null(holm[k]));
        }
    }
    if (rec) {
        report_emit_records(out, rec, NULL, 0, fmt);
        json_decref(rec);
    } else {
        fprintf(out, "compare: %s, %s, paired by seed: mean difference a - b, 95%% t interval, paired t-test "
                "(two-sided)%s\n\n", task, title, holm_col ? ", Holm-adjusted p over the comparisons" : "");
        static const int right[11] = {0, 0, 1, 1, 1, 1, 0, 1, 1, 1};
        report_table_print(out, g.rows, g.cols, g.cells, right);
        if (unpaired) fprintf(out, "unpaired: %d run(s) whose seed the other configuration did not run are left out\n", unpaired);
        if (not_converged)
            fprintf(out, "not converged (*): the mean includes runs that stopped at train.steps while their validation "
                    "metric still improved\n");
    }
    grid_free(&g);
    status = 0;
done:
    free(ga); free(gb); free(all); free(va); free(vb); free(res); free(p); free(holm);
    return status;
}
