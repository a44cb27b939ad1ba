// harness/report.c — paper-style tables from the results database. See report.h.
#include "harness/report.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

const char *const REPORT_NAMES = "table6, table5, methods, runs, table7";

// Main-metric names in order of preference when a run did not record runs.metric.
static const char *const METRIC_PREFERENCE[] = {"accuracy", "exact_match", "macro_f1", "per", "loss"};
enum { NUM_PREFERENCE = sizeof METRIC_PREFERENCE / sizeof METRIC_PREFERENCE[0] };

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
    if (!r->metric)
        for (int p = 0; p < NUM_PREFERENCE && !r->metric; p++)
            for (int k = 0; k < nm; k++)
                if (!strcmp(m[k].name, METRIC_PREFERENCE[p])) { r->metric = xstrdup(m[k].name); break; }
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

int report_load(Store *s, const char *sweep, ReportData *out) {
    memset(out, 0, sizeof *out);
    sqlite3 *db = store_db(s);
    int64_t sweep_id = 0;
    if (sweep && store_find_sweep(s, sweep, &sweep_id)) return -1;
    const char *cols = "r.id, r.hash, r.status, r.task, r.metric, r.method, r.targets, r.rank, "
                       "r.seed, r.label, r.trainable_params, r.head_params, r.config, r.error, "
                       "r.wall_seconds";
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
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    for (int k = 0; k < out->n; k++)
        if (out->runs[k].status == RUN_DONE && load_metric(db, &out->runs[k])) goto fail_loaded;
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
    }
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

static int has_value(const ReportRun *r) { return r->status == RUN_DONE && !isnan(r->value); }

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
    int counts[RUN_NSTATUS] = {0}, done_no_value = 0;
    for (int k = 0; k < d->n; k++) {
        counts[d->runs[k].status]++;
        if (d->runs[k].status == RUN_DONE && isnan(d->runs[k].value)) done_no_value++;
    }
    int missing = d->n - counts[RUN_DONE];
    if (missing == 0 && done_no_value == 0) return;
    fprintf(out, "left out:");
    for (int k = 0; k < RUN_NSTATUS; k++)
        if (k != RUN_DONE && counts[k]) fprintf(out, " %d %s", counts[k], store_status_name((RunStatus)k));
    if (done_no_value) fprintf(out, " %d done without a main metric", done_no_value);
    fprintf(out, "\n");
}

// ----------------------------------------------------------------------------
// the reports

// Table 6: rows are target sets, columns ranks.
static int print_table6(FILE *out, const ReportData *d, const char *task) {
    const char **sets;
    int *ranks;
    int nsets = report_target_sets(d, task, &sets), nranks = report_ranks(d, task, &ranks);
    if (nsets == 0) { free(sets); free(ranks); return 0; }
    char title[128], buf[128];
    metric_title(title, sizeof title, d, task);
    fprintf(out, "table6: %s, %s, mean ± std over seeds\n\n", task, title);
    Grid g;
    grid_init(&g, nranks + 1);
    grid_set(&g, 0, 0, "weight type");
    for (int c = 0; c < nranks; c++) {
        snprintf(buf, sizeof buf, "r=%d", ranks[c]);
        grid_set(&g, 0, c + 1, buf);
    }
    int min_n = 1 << 30, max_n = 0, pooled = 0;
    for (int s = 0; s < nsets; s++) {
        report_format_targets(buf, sizeof buf, sets[s]);
        grid_set(&g, s + 1, 0, buf);
        for (int c = 0; c < nranks; c++) {
            int ngroups;
            ReportStat st = report_cell_stat(d, task, sets[s], ranks[c], &ngroups);
            report_format_stat(buf, sizeof buf, st);
            grid_set(&g, s + 1, c + 1, buf);
            if (st.n > 0 && st.n < min_n) min_n = st.n;
            if (st.n > max_n) max_n = st.n;
            pooled += ngroups > 1;
        }
    }
    report_table_print(out, g.rows, g.cols, g.cells, NULL);
    if (min_n == max_n) fprintf(out, "seeds per cell: %d\n", max_n);
    else fprintf(out, "seeds per cell: %d to %d\n", min_n, max_n);
    if (pooled)
        fprintf(out, "note: %d cell(s) pool runs that differ in more than the seed\n", pooled);
    fprintf(out, "\n");
    grid_free(&g);
    free(sets);
    free(ranks);
    return 1;
}

// Table 5: one column per (target set, rank) at a budget; rows: trainable params, metric.
static int print_table5(FILE *out, const ReportData *d, const char *task) {
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
    char title[128], buf[128], t[64];
    metric_title(title, sizeof title, d, task);
    fprintf(out, "table5: %s, %s, mean ± std over seeds\n\n", task, title);
    Grid g;
    grid_init(&g, ncol + 1);
    grid_set(&g, 0, 0, "weight type");
    grid_set(&g, 1, 0, "rank r");
    grid_set(&g, 2, 0, "trainable");
    grid_set(&g, 3, 0, task);
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
        report_format_stat(buf, sizeof buf, report_cell_stat(d, task, set, rank, NULL));
        grid_set(&g, 3, c + 1, buf);
    }
    report_table_print(out, g.rows, g.cols, g.cells, NULL);
    fprintf(out, "\n");
    grid_free(&g);
    free(sets);
    free(ranks);
    free(col);
    return 1;
}

// Table 4 style: one row per configuration (all methods), with trainable parameters and the
// task's baseline beside the metric.
static int print_methods(FILE *out, const ReportData *d, const char *task) {
    int *first;
    int ng = report_groups(d, task, &first);
    if (ng == 0) { free(first); return 0; }
    char title[128], buf[128];
    metric_title(title, sizeof title, d, task);
    fprintf(out, "methods: %s, %s, mean ± std over seeds\n\n", task, title);
    Grid g;
    grid_init(&g, 7);
    const char *head[7] = {"method", "config", "trainable", "head", title, "seeds", "baseline"};
    for (int c = 0; c < 7; c++) grid_set(&g, 0, c, head[c]);
    for (int k = 0; k < ng; k++) {
        const ReportRun *r = &d->runs[first[k]];
        double baseline;
        ReportStat st = report_group_stat(d, task, r->group, &baseline);
        grid_set(&g, k + 1, 0, r->method ? r->method : "-");
        report_config_label(buf, sizeof buf, r);
        grid_set(&g, k + 1, 1, buf);
        if (r->trainable >= 0) snprintf(buf, sizeof buf, "%lld", (long long)r->trainable);
        else snprintf(buf, sizeof buf, "-");
        grid_set(&g, k + 1, 2, buf);
        if (r->head >= 0) snprintf(buf, sizeof buf, "%lld", (long long)r->head);
        else snprintf(buf, sizeof buf, "-");
        grid_set(&g, k + 1, 3, buf);
        report_format_stat(buf, sizeof buf, st);
        grid_set(&g, k + 1, 4, buf);
        snprintf(buf, sizeof buf, "%d", st.n);
        grid_set(&g, k + 1, 5, buf);
        if (isnan(baseline)) snprintf(buf, sizeof buf, "-");
        else snprintf(buf, sizeof buf, "%.3f", baseline);
        grid_set(&g, k + 1, 6, buf);
    }
    static const int right[7] = {0, 0, 1, 1, 0, 1, 1};
    report_table_print(out, g.rows, g.cols, g.cells, right);
    fprintf(out, "\n");
    grid_free(&g);
    free(first);
    return 1;
}

// Every run, whatever its status.
static int print_runs(FILE *out, const ReportData *d) {
    if (d->n == 0) return 0;
    enum { NC = 13 };
    const char *head[NC] = {"id", "hash", "status", "task", "method", "config", "seed",
                            "trainable", "metric", "value", "baseline", "wall_s", "error"};
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
        // first line of the error, cut to keep the table readable
        snprintf(buf, sizeof buf, "%.60s", r->error ? r->error : "");
        buf[strcspn(buf, "\r\n")] = 0;
        grid_set(&g, row, 12, buf);
    }
    static const int right[NC] = {1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0};
    fprintf(out, "runs: %d\n\n", d->n);
    report_table_print(out, g.rows, g.cols, g.cells, right);
    grid_free(&g);
    return 1;
}

// Table 7: amplification rows of the sweep's runs (analysis_amplification).
static int print_table7(FILE *out, Store *s, const ReportData *d) {
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

int report_print(FILE *out, Store *s, const ReportData *d, const char *name) {
    int printed = 0;
    if (!strcmp(name, "runs")) {
        printed = print_runs(out, d);
    } else if (!strcmp(name, "table7")) {
        printed = print_table7(out, s, d);
        if (printed < 0) return -1;
        if (!printed)
            return err_set("report table7: no amplification results for sweep '%s' (run "
                           "`loralab analyze amplification` first)", d->sweep);
    } else if (!strcmp(name, "table6") || !strcmp(name, "table5") || !strcmp(name, "methods")) {
        const char **tasks;
        int ntasks = report_tasks(d, &tasks);
        for (int t = 0; t < ntasks; t++) {
            if (!strcmp(name, "table6")) printed += print_table6(out, d, tasks[t]);
            else if (!strcmp(name, "table5")) printed += print_table5(out, d, tasks[t]);
            else printed += print_methods(out, d, tasks[t]);
        }
        free(tasks);
        if (!printed)
            return err_set("report %s: sweep '%s' has no done %sruns with a main metric (%d runs in all)",
                           name, d->sweep, strcmp(name, "methods") ? "LoRA " : "", d->n);
    } else {
        return err_set("report: unknown table '%s' (expected one of: %s)", name, REPORT_NAMES);
    }
    if (!printed) return err_set("report %s: sweep '%s' has no runs", name, d->sweep);
    if (strcmp(name, "table7") && strcmp(name, "runs")) print_footer(out, d);
    return 0;
}
