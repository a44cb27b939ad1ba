// harness/report_repro.c — `loralab report reproduction`: RESULTS.md from the database alone.
// See report_repro.h for the verdict rules.
#include "harness/report_repro.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/model.h"
#include "harness/report.h"
#include "harness/stats.h"
#include "tasks/metrics.h"

// ----------------------------------------------------------------------------
// the paper's numbers (Hu et al., 2021, arXiv 2106.09685 v2), cited as the paper's

typedef enum { VERDICT_REPRODUCED, VERDICT_NOT_REPRODUCED, VERDICT_INCONCLUSIVE, VERDICT_NOT_TESTED, VERDICT_COUNT } Verdict;
static const char *const VERDICT_NAMES[VERDICT_COUNT] = {
    "reproduced", "not reproduced", "inconclusive at this power", "not tested"};

// The paper's setup, for the deviations list.
static const char *const PAPER_SETUP =
    "GPT-3 175B (96 layers, d_model 12,288) for Tables 5-7 and Figures 2-4, on WikiSQL and MultiNLI; "
    "validation accuracy; ranks 1-64 (at most 0.5 % of the width); prefix lengths beyond 256 (Figure 2)";

typedef struct {
    const char *id;       // "T5a"
    const char *item;     // "Table 5"
    const char *claim;    // the claim in words
    const char *paper;    // the paper's own numbers
} Finding;

static const Finding FINDINGS[] = {
    {"T5a", "Table 5", "at one budget, Wq,Wv (r=4) is above Wq alone and Wk alone (r=8)",
     "WikiSQL 73.7 vs 70.4 / 70.0; MNLI 91.3 vs 91.0 / 90.8 (±0.5 / ±0.1 over seeds)"},
    {"T5b", "Table 5", "at one budget, Wq,Wv (r=4) is on par with the best choice of weights",
     "WikiSQL 73.7 (best: 73.7); MNLI 91.3 (best: Wq,Wk,Wv,Wo r=2, 91.7)"},
    {"T6a", "Table 6", "r = 1 is on par with every larger rank for Wq,Wv",
     "WikiSQL 73.4 vs 73.3-73.8; MNLI 91.3 vs 91.3-91.6"},
    {"T6b", "Table 6", "r = 1 is on par with every larger rank for Wq,Wk,Wv,Wo",
     "WikiSQL 74.1 vs 73.7-74.0; MNLI 91.2 vs 91.4-91.7"},
    {"T6c", "Table 6", "Wq alone gains more from r = 1 → 8 than Wq,Wv does",
     "WikiSQL: Wq +1.6 (68.8 → 70.4), Wq,Wv +0.4 (73.4 → 73.8)"},
    {"F2a", "Figure 2", "LoRA is above every other parameter-efficient method (each at its best size)",
     "GPT-3, Table 4, WikiSQL: LoRA 73.4 vs BitFit 71.3, PreEmbed 63.1, PreLayer 70.1, AdapterH 73.2"},
    {"F2b", "Figure 2", "PreEmbed gets worse beyond 256 special tokens",
     "Figure 2: accuracy drops for lp > 256 (prefix-embedding)"},
    {"F2c", "Figure 2", "PreLayer gets worse beyond 32 special tokens",
     "Figure 2: accuracy drops for lp > 32 (prefix-layer)"},
    {"LF", "LoRA ≈ FT", "LoRA is on par with full fine-tuning",
     "GPT-3, Table 4: WikiSQL 73.4 vs 73.8, MNLI 91.7 vs 89.5"},
    {"F3", "Figure 3", "the top direction of A (r=8) is shared with A (r=64) above chance",
     "φ(1,1) > 0.5 for ΔWq and ΔWv (layer 48); Gaussian matrices ≈ 0"},
    {"F4a", "Figure 4", "two seeds at r=64 share their top directions above chance",
     "top directions shared for ΔWq and ΔWv; Gaussian matrices ≈ 0"},
    {"F4b", "Figure 4", "ΔWq shares more directions across seeds than ΔWv",
     "ΔWq has a higher \"intrinsic rank\": more common directions across seeds than ΔWv"},
    {"T7a", "Table 7", "ΔW's top directions are more correlated with W than random directions",
     "r=4: ‖UᵀWqVᵀ‖ 0.32 vs random 0.02; r=64: 1.90 vs 0.33"},
    {"T7b", "Table 7", "ΔW amplifies directions that W does not emphasise (projection below W's own)",
     "r=4: 0.32 vs W's own 21.67; r=64: 1.90 vs 37.71"},
    {"T7c", "Table 7", "the amplification factor ‖ΔW‖/‖UᵀWVᵀ‖ is above 1 at r=4",
     "r=4: 6.91 / 0.32 ≈ 21.5"},
    {"T7d", "Table 7", "the amplification factor is above 1 at r=64",
     "r=64: 3.57 / 1.90 ≈ 1.9"},
};
enum { NUM_FINDINGS = sizeof FINDINGS / sizeof FINDINGS[0] };

typedef struct {
    const Finding *f;
    char task[64];        // "" when the finding is not per task
    char ours[512];
    Verdict verdict;
    char evidence[1536];
} Row;

// Rows live in one fixed allocation, so that pointers to earlier rows stay valid.
enum { MAX_ROWS = 256 };
typedef struct {
    Row *rows;   // [MAX_ROWS]
    int n;
} Rows;

static Row *row_add(Rows *rs, const char *id, const char *task) {
    if (!rs->rows) rs->rows = xcalloc(MAX_ROWS, sizeof *rs->rows);
    LAB_ASSERT(rs->n < MAX_ROWS);
    Row *r = &rs->rows[rs->n++];
    memset(r, 0, sizeof *r);
    for (int i = 0; i < NUM_FINDINGS; i++)
        if (!strcmp(FINDINGS[i].id, id)) r->f = &FINDINGS[i];
    LAB_ASSERT(r->f);
    snprintf(r->task, sizeof r->task, "%s", task ? task : "");
    return r;
}

static void not_tested(Row *r, const char *fmt, const char *arg) {
    r->verdict = VERDICT_NOT_TESTED;
    snprintf(r->ours, sizeof r->ours, "-");
    snprintf(r->evidence, sizeof r->evidence, fmt, arg);
}

// ----------------------------------------------------------------------------
// cells: the runs of one configuration, by seed

enum { MAX_SEEDS = 64 };

typedef struct {
    int n;
    int seed[MAX_SEEDS];
    double value[MAX_SEEDS];      // main metric (test split, best-validation state)
    double validation;            // mean best validation score (higher is better), NAN: none
    char label[160];
} Cell;

typedef struct {
    const char *method;    // NULL: any
    const char *targets;   // NULL: any
    int rank;              // -1: any
} Select;

static int str_eq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static int usable(const ReportRun *r, const char *task) {
    return r->status == RUN_DONE && !isnan(r->value) && !r->tuning_only && str_eq(r->task, task);
}

// Best validation score of a run, signed so that higher is better.
static double validation_score(Store *s, const ReportRun *r) {
    double v;
    int step;
    if (store_best_validation(s, r->id, &v, &step) || isnan(v)) return NAN;
    return metric_score(r->metric, v);
}

// Adds run r to cell c: one value per seed, the first run in sweep order. Its validation score
// goes into *vsum / *vn (for the cell's mean). Returns 1 when added.
static int cell_add(Store *s, Cell *c, const ReportRun *r, double *vsum, int *vn) {
    for (int i = 0; i < c->n; i++)
        if (c->seed[i] == r->seed) return 0;
    if (c->n == MAX_SEEDS) return 0;
    c->seed[c->n] = r->seed;
    c->value[c->n++] = r->value;
    double v = validation_score(s, r);
    if (!isnan(v)) { *vsum += v; (*vn)++; }
    return 1;
}

static void cell_collect(Store *s, const ReportData *d, const char *task, Select sel, Cell *c) {
    memset(c, 0, sizeof *c);
    double vsum = 0;
    int vn = 0;
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (!usable(r, task)) continue;
        if (sel.method && !str_eq(r->method, sel.method)) continue;
        if (sel.targets && !str_eq(r->targets, sel.targets)) continue;
        if (sel.rank >= 0 && r->rank != sel.rank) continue;
        if (cell_add(s, c, r, &vsum, &vn) && !c->label[0]) report_config_label(c->label, sizeof c->label, r);
    }
    c->validation = vn ? vsum / vn : NAN;
}

static StatsSummary cell_summary(const Cell *c) { return stats_summary(c->value, c->n); }

// a - b paired by seed.
static StatsPaired cell_paired(const Cell *a, const Cell *b) {
    double x[MAX_SEEDS], y[MAX_SEEDS];
    int n = 0;
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++)
            if (a->seed[i] == b->seed[j]) { x[n] = a->value[i]; y[n++] = b->value[j]; }
    return stats_paired(x, y, n);
}

// ----------------------------------------------------------------------------
// formatting

static void fmt_summary(char *buf, size_t cap, StatsSummary st) {
    if (st.n == 0) snprintf(buf, cap, "-");
    else if (st.n == 1) snprintf(buf, cap, "%.3f (n=1)", st.mean);
    else snprintf(buf, cap, "%.3f [%.3f, %.3f] n=%d", st.mean, st.lo, st.hi, st.n);
}

static void fmt_p(char *buf, size_t cap, double p) {
    if (isnan(p)) snprintf(buf, cap, "-");
    else if (p < 0.001) snprintf(buf, cap, "<0.001");
    else snprintf(buf, cap, "%.3f", p);
}

// "a - b = +0.030 [-0.010, 0.070] n=3, p 0.120, Holm p 0.240"
static void fmt_paired(char *buf, size_t cap, const char *what, StatsPaired pr, double padj, int holm) {
    char p[16], pa[16];
    fmt_p(p, sizeof p, pr.p);
    fmt_p(pa, sizeof pa, padj);
    if (pr.n < 2)
        snprintf(buf, cap, "%s: %d paired seed(s), no test", what, pr.n);
    else if (holm)
        snprintf(buf, cap, "%s %+.3f [%+.3f, %+.3f] n=%d, p %s, Holm p %s", what, pr.mean, pr.lo, pr.hi, pr.n, p, pa);
    else
        snprintf(buf, cap, "%s %+.3f [%+.3f, %+.3f] n=%d, p %s", what, pr.mean, pr.lo, pr.hi, pr.n, p);
}

static void append(char *buf, size_t cap, const char *sep, const char *text) {
    size_t len = strlen(buf);
    if (len + 1 >= cap) return;
    snprintf(buf + len, cap - len, "%s%s", len ? sep : "", text);
}

// ----------------------------------------------------------------------------
// verdict rules (report_repro.h)

// Directional: every diff[i] > 0 claimed.
static Verdict rule_directional(const StatsPaired *pr, int m, double *adjusted) {
    double p[32] = {0};
    LAB_ASSERT(m <= 32);
    for (int i = 0; i < m; i++) p[i] = pr[i].p;
    stats_holm(p, m, adjusted);
    int all = m > 0, against = 0;
    for (int i = 0; i < m; i++) {
        int sig = !isnan(adjusted[i]) && adjusted[i] < REPRO_ALPHA;
        if (!(sig && pr[i].mean > 0)) all = 0;
        if (sig && pr[i].mean < 0) against = 1;
    }
    return against ? VERDICT_NOT_REPRODUCED : all ? VERDICT_REPRODUCED : VERDICT_INCONCLUSIVE;
}

// On par: every diff[i] >= -margin claimed.
static Verdict rule_on_par(const StatsPaired *pr, int m) {
    int all = m > 0, against = 0;
    for (int i = 0; i < m; i++) {
        if (!(pr[i].n >= 2 && pr[i].lo > -REPRO_MARGIN)) all = 0;
        if (pr[i].n >= 2 && pr[i].hi < -REPRO_MARGIN) against = 1;
    }
    return against ? VERDICT_NOT_REPRODUCED : all ? VERDICT_REPRODUCED : VERDICT_INCONCLUSIVE;
}

static Verdict rule_above(StatsSummary st, double level) {
    if (st.n < 2) return VERDICT_INCONCLUSIVE;
    return st.lo > level ? VERDICT_REPRODUCED : st.hi < level ? VERDICT_NOT_REPRODUCED : VERDICT_INCONCLUSIVE;
}

// Compares cell a against each of bs (a - b), directional or on par; fills ours and evidence.
static void compare_cells(Row *row, const Cell *a, const Cell *bs, int nb, int on_par) {
    StatsPaired pr[32];
    double adj[32];
    LAB_ASSERT(nb <= 32);
    for (int i = 0; i < nb; i++) pr[i] = cell_paired(a, &bs[i]);
    row->verdict = on_par ? rule_on_par(pr, nb) : rule_directional(pr, nb, adj);
    char s[128];
    fmt_summary(s, sizeof s, cell_summary(a));
    snprintf(row->ours, sizeof row->ours, "%s: %s", a->label, s);
    for (int i = 0; i < nb; i++) {
        char what[400], line[640];
        fmt_summary(s, sizeof s, cell_summary(&bs[i]));
        append(row->ours, sizeof row->ours, "; ", bs[i].label);
        size_t len = strlen(row->ours);
        snprintf(row->ours + len, sizeof row->ours - len, ": %s", s);
        snprintf(what, sizeof what, "%s − %s", a->label, bs[i].label);
        fmt_paired(line, sizeof line, what, pr[i], on_par ? NAN : adj[i], !on_par && nb > 1);
        append(row->evidence, sizeof row->evidence, "; ", line);
    }
    append(row->evidence, sizeof row->evidence, " ",
           on_par ? "(paired by seed; on par: interval above −0.01)" : "(paired t-test by seed)");
}

// ----------------------------------------------------------------------------
// Tables 5 and 6

static void findings_table5(Rows *rs, Store *s, const ReportData *d, const char *task) {
    Cell qv, q, k, others[6];
    cell_collect(s, d, task, (Select){"lora", "q,v", 4}, &qv);
    cell_collect(s, d, task, (Select){"lora", "q", 8}, &q);
    cell_collect(s, d, task, (Select){"lora", "k", 8}, &k);
    Row *a = row_add(rs, "T5a", task), *b = row_add(rs, "T5b", task);
    if (!qv.n || !q.n || !k.n) {
        not_tested(a, "sweep %s lacks Wq,Wv r=4, Wq r=8 or Wk r=8", REPRO_SWEEP_TABLE5);
        not_tested(b, "sweep %s lacks Wq,Wv r=4", REPRO_SWEEP_TABLE5);
        return;
    }
    Cell two[2] = {q, k};
    compare_cells(a, &qv, two, 2, 0);
    static const Select OTHER[6] = {{"lora", "q", 8}, {"lora", "k", 8}, {"lora", "v", 8},
                                    {"lora", "o", 8}, {"lora", "q,k", 4}, {"lora", "q,k,v,o", 2}};
    int n = 0;
    for (int i = 0; i < 6; i++) {
        cell_collect(s, d, task, OTHER[i], &others[n]);
        if (others[n].n) n++;
    }
    compare_cells(b, &qv, others, n, 1);
}

static void findings_table6(Rows *rs, Store *s, const ReportData *d, const char *task) {
    int *ranks;
    int nr = report_ranks(d, task, &ranks);
    const char *sets[2] = {"q,v", "q,k,v,o"};
    const char *ids[2] = {"T6a", "T6b"};
    for (int t = 0; t < 2; t++) {
        Row *row = row_add(rs, ids[t], task);
        Cell r1, rest[32];
        cell_collect(s, d, task, (Select){"lora", sets[t], 1}, &r1);
        int n = 0;
        for (int i = 0; i < nr && n < 32; i++) {
            if (ranks[i] == 1) continue;
            cell_collect(s, d, task, (Select){"lora", sets[t], ranks[i]}, &rest[n]);
            if (rest[n].n) n++;
        }
        if (!r1.n || !n) { not_tested(row, "sweep %s lacks r = 1 or a larger rank for this target set", REPRO_SWEEP_TABLE6); continue; }
        compare_cells(row, &r1, rest, n, 1);
    }
    free(ranks);
    Row *row = row_add(rs, "T6c", task);
    Cell q1, q8, qv1, qv8;
    cell_collect(s, d, task, (Select){"lora", "q", 1}, &q1);
    cell_collect(s, d, task, (Select){"lora", "q", 8}, &q8);
    cell_collect(s, d, task, (Select){"lora", "q,v", 1}, &qv1);
    cell_collect(s, d, task, (Select){"lora", "q,v", 8}, &qv8);
    if (!q1.n || !q8.n || !qv1.n || !qv8.n) { not_tested(row, "sweep %s lacks Wq or Wq,Wv at r = 1 and r = 8", REPRO_SWEEP_TABLE6); return; }
    // the gain of Wq minus the gain of Wq,Wv, paired by seed
    double x[MAX_SEEDS], y[MAX_SEEDS];
    int n = 0;
    for (int a = 0; a < q1.n; a++)
        for (int b = 0; b < q8.n; b++)
            for (int c = 0; c < qv1.n; c++)
                for (int e = 0; e < qv8.n; e++)
                    if (q1.seed[a] == q8.seed[b] && q1.seed[a] == qv1.seed[c] && q1.seed[a] == qv8.seed[e]) {
                        x[n] = q8.value[b] - q1.value[a];
                        y[n++] = qv8.value[e] - qv1.value[c];
                    }
    StatsPaired pr = stats_paired(x, y, n);
    double adj;
    row->verdict = rule_directional(&pr, 1, &adj);
    StatsSummary gq = stats_summary(x, n), gqv = stats_summary(y, n);
    char s1[96], s2[96];
    fmt_summary(s1, sizeof s1, gq);
    fmt_summary(s2, sizeof s2, gqv);
    snprintf(row->ours, sizeof row->ours, "gain r=1 → 8: Wq %s; Wq,Wv %s", s1, s2);
    fmt_paired(row->evidence, sizeof row->evidence, "gain(Wq) − gain(Wq,Wv)", pr, adj, 0);
    append(row->evidence, sizeof row->evidence, " ", "(paired t-test by seed)");
}

// ----------------------------------------------------------------------------
// Figure 2 and LoRA ≈ FT: each method at its best size, picked on validation

typedef struct {
    int n;
    Cell *cells;
    char (*method)[32];
    int *lp;          // prefix length of the cell's runs (-1: none)
} Configs;

static int config_lp(const ReportRun *r) {
    json_t *j = r->config ? json_loads(r->config, 0, NULL) : NULL;
    json_t *lp = j ? json_object_get(json_object_get(j, "prefix"), "lp") : NULL;
    int v = json_is_integer(lp) ? (int)json_integer_value(lp) : -1;
    json_decref(j);
    return v;
}

// "lora Wq,Wv r=8", "prefix_embed lp=16 li=0", "ft".
static void full_label(const ReportRun *r, char *buf, size_t cap) {
    char label[100];
    report_config_label(label, sizeof label, r);
    snprintf(buf, cap, "%.30s%s%s", r->method ? r->method : "-", label[0] ? " " : "", label);
}

// Every configuration of the task (runs that differ only in seed and tuned keys).
static void configs_collect(Store *s, const ReportData *d, const char *task, Configs *cf) {
    memset(cf, 0, sizeof *cf);
    for (int k = 0; k < d->n; k++) {
        const ReportRun *r = &d->runs[k];
        if (!usable(r, task)) continue;
        char label[140];
        full_label(r, label, sizeof label);
        int seen = 0;
        for (int i = 0; i < cf->n; i++) seen |= !strcmp(cf->cells[i].label, label);
        if (seen) continue;
        cf->cells = xrealloc(cf->cells, (size_t)(cf->n + 1) * sizeof *cf->cells);
        cf->method = xrealloc(cf->method, (size_t)(cf->n + 1) * sizeof *cf->method);
        cf->lp = xrealloc(cf->lp, (size_t)(cf->n + 1) * sizeof *cf->lp);
        Cell *c = &cf->cells[cf->n];
        memset(c, 0, sizeof *c);
        double vsum = 0;
        int vn = 0;
        for (int q = 0; q < d->n; q++) {
            const ReportRun *o = &d->runs[q];
            char l2[140];
            if (!usable(o, task)) continue;
            full_label(o, l2, sizeof l2);
            if (!strcmp(l2, label)) cell_add(s, c, o, &vsum, &vn);
        }
        c->validation = vn ? vsum / vn : NAN;
        snprintf(c->label, sizeof c->label, "%s", label);
        snprintf(cf->method[cf->n], sizeof cf->method[0], "%s", r->method ? r->method : "-");
        cf->lp[cf->n] = config_lp(r);
        cf->n++;
    }
}

static void configs_free(Configs *cf) {
    free(cf->cells);
    free(cf->method);
    free(cf->lp);
}

// Index of the method's configuration with the best mean validation score (lp in (lo, hi]
// when lo >= 0), or -1.
static int configs_best(const Configs *cf, const char *method, int lo, int hi) {
    int best = -1;
    for (int i = 0; i < cf->n; i++) {
        if (strcmp(cf->method[i], method)) continue;
        if (lo >= 0 && !(cf->lp[i] > lo && cf->lp[i] <= hi)) continue;
        if (best < 0 || (!isnan(cf->cells[i].validation) &&
                         (isnan(cf->cells[best].validation) || cf->cells[i].validation > cf->cells[best].validation)))
            best = i;
    }
    return best;
}

static void findings_methods(Rows *rs, Store *s, const ReportData *d, const char *task) {
    Configs cf;
    configs_collect(s, d, task, &cf);
    Row *a = row_add(rs, "F2a", task);
    int lora = configs_best(&cf, "lora", -1, 0);
    Cell others[METHOD_COUNT];
    int n = 0;
    for (int k = 0; k < METHOD_COUNT; k++) {   // every other parameter-efficient method
        if (k == METHOD_LORA || (METHODS[k].adds & (TRAINS_ALL | TRAINS_NOTHING))) continue;
        int b = configs_best(&cf, METHOD_NAMES[k], -1, 0);
        if (b >= 0) others[n++] = cf.cells[b];
    }
    if (lora < 0 || !n) not_tested(a, "sweep %s lacks LoRA or another parameter-efficient method", REPRO_SWEEP_METHODS);
    else {
        compare_cells(a, &cf.cells[lora], others, n, 0);
        append(a->evidence, sizeof a->evidence, " ", "each method at its size with the best mean validation score");
    }

    // prefix lengths: best at lp <= threshold against best beyond it
    const char *ids[2] = {"F2b", "F2c"}, *methods[2] = {"prefix_embed", "prefix_layer"};
    int thresholds[2] = {256, 32};
    for (int m = 0; m < 2; m++) {
        Row *row = row_add(rs, ids[m], task);
        int longest = -1;
        for (int i = 0; i < cf.n; i++)
            if (!strcmp(cf.method[i], methods[m]) && cf.lp[i] > longest) longest = cf.lp[i];
        int in = configs_best(&cf, methods[m], 0, thresholds[m]), beyond = configs_best(&cf, methods[m], thresholds[m], 1 << 30);
        if (in < 0 || beyond < 0) {
            char msg[200];
            if (longest < 0) snprintf(msg, sizeof msg, "no %s runs", methods[m]);
            else snprintf(msg, sizeof msg, "longest %s prefix here lp = %d, not beyond %d", methods[m], longest, thresholds[m]);
            not_tested(row, "%s", msg);
            continue;
        }
        compare_cells(row, &cf.cells[in], &cf.cells[beyond], 1, 0);
    }

    Row *ft = row_add(rs, "LF", task);
    int f = configs_best(&cf, "ft", -1, 0);
    if (lora < 0 || f < 0) not_tested(ft, "sweep %s lacks LoRA or FT", REPRO_SWEEP_METHODS);
    else compare_cells(ft, &cf.cells[lora], &cf.cells[f], 1, 1);
    configs_free(&cf);
}

// ----------------------------------------------------------------------------
// Figures 3 and 4: φ from analysis_subspace, learned against the Gaussian baseline

// Per (pair, layer) unit of the matrix: the learned and random values of statistic `stat`:
// "phi11" = φ(1,1), "diag8" = mean φ(i,i) for i <= 8. same_rank: Figure 4 pairs (two seeds at
// one rank), else Figure 3 pairs (a smaller rank against a larger one).
static int phi_units(sqlite3 *db, int same_rank, const char *matrix, const char *stat, double *learned,
                     double *random, int cap) {
    const char *sql =
        "SELECT s.run_a, s.run_b, s.layer, s.kind, "
        "avg(CASE WHEN ?3 = 'phi11' THEN (CASE WHEN s.i = 1 AND s.j = 1 THEN s.phi END) "
        "         ELSE (CASE WHEN s.i = s.j AND s.i <= 8 THEN s.phi END) END) "
        "FROM analysis_subspace s JOIN runs a ON a.id = s.run_a JOIN runs b ON b.id = s.run_b "
        "WHERE s.matrix = ?2 AND ((?1 = 1 AND a.rank = b.rank AND a.seed <> b.seed) OR (?1 = 0 AND a.rank < b.rank)) "
        "GROUP BY s.run_a, s.run_b, s.layer, s.kind ORDER BY s.run_a, s.run_b, s.layer, s.kind";
    sqlite3_stmt *st = NULL;
    int n = 0, rc;
    int64_t last_a = -1, last_b = -1;
    int last_layer = -1;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int(st, 1, same_rank), sql);
    SQL_CHECK(db, sqlite3_bind_text(st, 2, matrix, -1, SQLITE_TRANSIENT), sql);
    SQL_CHECK(db, sqlite3_bind_text(st, 3, stat, -1, SQLITE_TRANSIENT), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t a = sqlite3_column_int64(st, 0), b = sqlite3_column_int64(st, 1);
        int layer = sqlite3_column_int(st, 2);
        const char *kind = (const char *)sqlite3_column_text(st, 3);
        double v = sqlite3_column_type(st, 4) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 4);
        if (a != last_a || b != last_b || layer != last_layer) {
            if (n == cap) break;
            learned[n] = random[n] = NAN;
            n++;
            last_a = a, last_b = b, last_layer = layer;
        }
        if (str_eq(kind, "learned")) learned[n - 1] = v;
        else random[n - 1] = v;
    }
    SQL_CHECK(db, rc == SQLITE_ROW ? SQLITE_DONE : rc, sql);
    sqlite3_finalize(st);
    return n;
fail:
    sqlite3_finalize(st);
    return -1;
}

enum { MAX_UNITS = 512 };

static int findings_phi(Rows *rs, Store *s) {
    sqlite3 *db = store_db(s);
    static const char *const MATRICES[2] = {"q", "v"};
    static double l[2][MAX_UNITS], r[2][MAX_UNITS];
    // Figure 3 and Figure 4a: learned above random, per matrix, Holm over the two matrices
    for (int fig = 0; fig < 2; fig++) {
        Row *row = row_add(rs, fig == 0 ? "F3" : "F4a", NULL);
        const char *stat = fig == 0 ? "phi11" : "diag8";
        StatsPaired pr[2];
        int n[2];
        for (int m = 0; m < 2; m++) {
            if ((n[m] = phi_units(db, fig, MATRICES[m], stat, l[m], r[m], MAX_UNITS)) < 0) return -1;
            pr[m] = stats_paired(l[m], r[m], n[m]);
        }
        if (!n[0] && !n[1]) {
            not_tested(row, "%s", fig == 0 ? "no φ rows for a pair of runs at two ranks (loralab analyze subspace)"
                                           : "no φ rows for a pair of seeds at one rank (loralab analyze subspace)");
            continue;
        }
        double adj[2];
        row->verdict = rule_directional(pr, 2, adj);
        for (int m = 0; m < 2; m++) {
            char a[96], b[96], line[400], what[64];
            fmt_summary(a, sizeof a, stats_summary(l[m], n[m]));
            fmt_summary(b, sizeof b, stats_summary(r[m], n[m]));
            snprintf(line, sizeof line, "W%s %s: learned %s, Gaussian %s", MATRICES[m],
                     fig == 0 ? "φ(1,1)" : "mean φ(i,i), i ≤ 8", a, b);
            append(row->ours, sizeof row->ours, "; ", line);
            snprintf(what, sizeof what, "W%s learned − Gaussian", MATRICES[m]);
            fmt_paired(line, sizeof line, what, pr[m], adj[m], 1);
            append(row->evidence, sizeof row->evidence, "; ", line);
            if (fig == 0) {   // the paper's "> 0.5", told apart from "above chance"
                int above = 0;
                for (int u = 0; u < n[m]; u++) above += l[m][u] > 0.5;
                snprintf(line, sizeof line, "W%s φ(1,1) > 0.5 in %d of %d", MATRICES[m], above, n[m]);
                append(row->evidence, sizeof row->evidence, "; ", line);
            }
        }
        append(row->evidence, sizeof row->evidence, " ", "(paired over layers and run pairs)");
    }
    // Figure 4b: q above v, paired by (pair, layer)
    Row *row = row_add(rs, "F4b", NULL);
    int nq = phi_units(db, 1, "q", "diag8", l[0], r[0], MAX_UNITS);
    int nv = phi_units(db, 1, "v", "diag8", l[1], r[1], MAX_UNITS);
    if (nq < 0 || nv < 0) return -1;
    if (!nq || nq != nv) {
        not_tested(row, "%s", "no φ rows for Wq and Wv of the same seed pairs");
        return 0;
    }
    StatsPaired pr = stats_paired(l[0], l[1], nq);
    double adj;
    row->verdict = rule_directional(&pr, 1, &adj);
    char a[96], b[96];
    fmt_summary(a, sizeof a, stats_summary(l[0], nq));
    fmt_summary(b, sizeof b, stats_summary(l[1], nv));
    snprintf(row->ours, sizeof row->ours, "mean φ(i,i), i ≤ 8, across seeds: Wq %s; Wv %s", a, b);
    fmt_paired(row->evidence, sizeof row->evidence, "Wq − Wv", pr, adj, 0);
    append(row->evidence, sizeof row->evidence, " ", "(paired over layers and seed pairs)");
    return 0;
}

// ----------------------------------------------------------------------------
// Table 7: analysis_amplification of ΔWq

// Rows of matrix q at rank r: their projections and amplification factors. Returns the count.
static int amp_rows(sqlite3 *db, int rank, double *dw, double *w, double *rnd, double *amp, int cap) {
    const char *sql = "SELECT norm_proj_dw, norm_proj_w, norm_proj_random, amplification FROM analysis_amplification "
                      "WHERE matrix = 'q' AND rank = ? ORDER BY run, layer";
    sqlite3_stmt *st = NULL;
    int n = 0, rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int(st, 1, rank), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < cap) {
        dw[n] = sqlite3_column_double(st, 0);
        w[n] = sqlite3_column_double(st, 1);
        rnd[n] = sqlite3_column_double(st, 2);
        amp[n++] = sqlite3_column_double(st, 3);
    }
    SQL_CHECK(db, rc == SQLITE_ROW ? SQLITE_DONE : rc, sql);
    sqlite3_finalize(st);
    return n;
fail:
    sqlite3_finalize(st);
    return -1;
}

static int amp_ranks(sqlite3 *db, int *ranks, int cap) {
    const char *sql = "SELECT DISTINCT rank FROM analysis_amplification WHERE matrix = 'q' ORDER BY rank";
    sqlite3_stmt *st = NULL;
    int n = 0, rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < cap) ranks[n++] = sqlite3_column_int(st, 0);
    SQL_CHECK(db, rc == SQLITE_ROW ? SQLITE_DONE : rc, sql);
    sqlite3_finalize(st);
    return n;
fail:
    sqlite3_finalize(st);
    return -1;
}

static int findings_table7(Rows *rs, Store *s) {
    sqlite3 *db = store_db(s);
    int ranks[16];
    int nr = amp_ranks(db, ranks, 16);
    if (nr < 0) return -1;
    static double dw[MAX_UNITS], w[MAX_UNITS], rnd[MAX_UNITS], amp[MAX_UNITS];
    Row *a = row_add(rs, "T7a", NULL), *b = row_add(rs, "T7b", NULL);
    if (!nr) {
        not_tested(a, "%s", "no amplification rows for Wq (loralab analyze amplification)");
        not_tested(b, "%s", "no amplification rows for Wq (loralab analyze amplification)");
    } else {
        // T7a/T7b: every analysed rank is one comparison; Holm across them
        StatsPaired pa[16], pb[16];
        int n[16];
        for (int i = 0; i < nr; i++) {
            if ((n[i] = amp_rows(db, ranks[i], dw, w, rnd, amp, MAX_UNITS)) < 0) return -1;
            pa[i] = stats_paired(dw, rnd, n[i]);
            pb[i] = stats_paired(w, dw, n[i]);
        }
        double adja[16], adjb[16];
        a->verdict = rule_directional(pa, nr, adja);
        b->verdict = rule_directional(pb, nr, adjb);
        for (int i = 0; i < nr; i++) {
            char x[96], y[96], z[96], line[400], what[64];
            amp_rows(db, ranks[i], dw, w, rnd, amp, MAX_UNITS);
            fmt_summary(x, sizeof x, stats_summary(dw, n[i]));
            fmt_summary(y, sizeof y, stats_summary(rnd, n[i]));
            fmt_summary(z, sizeof z, stats_summary(w, n[i]));
            snprintf(line, sizeof line, "Wq r=%d: ΔW's U,V %s, random %s", ranks[i], x, y);
            append(a->ours, sizeof a->ours, "; ", line);
            snprintf(line, sizeof line, "Wq r=%d: ΔW's U,V %s, W's own %s", ranks[i], x, z);
            append(b->ours, sizeof b->ours, "; ", line);
            snprintf(what, sizeof what, "r=%d ΔW − random", ranks[i]);
            fmt_paired(line, sizeof line, what, pa[i], adja[i], nr > 1);
            append(a->evidence, sizeof a->evidence, "; ", line);
            snprintf(what, sizeof what, "r=%d W − ΔW", ranks[i]);
            fmt_paired(line, sizeof line, what, pb[i], adjb[i], nr > 1);
            append(b->evidence, sizeof b->evidence, "; ", line);
        }
        append(a->evidence, sizeof a->evidence, " ", "(‖UᵀWqVᵀ‖_F, paired over layers and runs)");
        append(b->evidence, sizeof b->evidence, " ", "(‖UᵀWqVᵀ‖_F, paired over layers and runs)");
    }
    // T7c (the paper's r = 4) and T7d (r = 64); other analysed ranks are shown with T7c
    int want[2] = {4, 64};
    const char *ids[2] = {"T7c", "T7d"};
    for (int k = 0; k < 2; k++) {
        Row *row = row_add(rs, ids[k], NULL);
        int n = amp_rows(db, want[k], dw, w, rnd, amp, MAX_UNITS);
        if (n < 0) return -1;
        char other[256] = "";
        for (int i = 0; i < nr && k == 0; i++) {
            if (ranks[i] == 4 || ranks[i] == 64) continue;
            int m = amp_rows(db, ranks[i], dw, w, rnd, amp, MAX_UNITS);
            char sbuf[96], line[160];
            fmt_summary(sbuf, sizeof sbuf, stats_summary(amp, m));
            snprintf(line, sizeof line, "analysed instead: r=%d amplification %s", ranks[i], sbuf);
            append(other, sizeof other, "; ", line);
        }
        if (!n) {
            char msg[400];
            snprintf(msg, sizeof msg, "no Wq amplification rows at r=%d%s%s", want[k], other[0] ? "; " : "", other);
            not_tested(row, "%s", msg);
            continue;
        }
        n = amp_rows(db, want[k], dw, w, rnd, amp, MAX_UNITS);
        StatsSummary st = stats_summary(amp, n);
        row->verdict = rule_above(st, 1.0);
        char sbuf[96];
        fmt_summary(sbuf, sizeof sbuf, st);
        snprintf(row->ours, sizeof row->ours, "Wq r=%d amplification %s", want[k], sbuf);
        int below = 0;
        for (int i = 0; i < n; i++) below += amp[i] < 1;
        snprintf(row->evidence, sizeof row->evidence, "95 %% t interval of the mean factor over layers and runs against 1; "
                 "%d of %d rows below 1", below, n);
        if (other[0]) append(row->evidence, sizeof row->evidence, "; ", other);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// the reproduction's runs: sweeps, deviations, compute

// The findings' sweeps (0-2), the analysis sweeps (3-5: their configs count in the deviations),
// and the controls and checks (6-7: shown, not part of a finding).
static const char *const SWEEPS[] = {REPRO_SWEEP_TABLE5, REPRO_SWEEP_TABLE6, REPRO_SWEEP_METHODS,
                                     "fig3-subspace", "fig4-seeds", "table7-amplification",
                                     "control-random-init", "sotu-era-check"};
enum { NUM_SWEEPS = sizeof SWEEPS / sizeof SWEEPS[0], NUM_FINDING_SWEEPS = 3, NUM_SETUP_SWEEPS = 6 };

static int sweep_exists(Store *s, const char *name) {
    const char *sql = "SELECT count(*) FROM sweeps WHERE name = ?";
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    int n = 0;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT), sql);
    SQL_CHECK(db, sqlite3_step(st), sql);
    n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n > 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// Distinct values, as text, of one config key path over the runs of d (done, usable).
typedef struct { int n; char v[32][96]; } Distinct;

static void distinct_add(Distinct *ds, const char *v) {
    for (int i = 0; i < ds->n; i++) if (!strcmp(ds->v[i], v)) return;
    if (ds->n < 32) snprintf(ds->v[ds->n++], sizeof ds->v[0], "%s", v);
}

static int cmp_numeric(const void *a, const void *b) {
    double x = atof((const char *)a), y = atof((const char *)b);
    return (x > y) - (x < y);
}

static void distinct_str(const Distinct *ds, char *buf, size_t cap) {
    buf[0] = 0;
    for (int i = 0; i < ds->n; i++) append(buf, cap, ", ", ds->v[i]);
    if (!ds->n) snprintf(buf, cap, "-");
}

static json_t *json_path(json_t *j, const char *path) {
    char key[64];
    while (j && *path) {
        size_t len = strcspn(path, ".");
        if (len >= sizeof key) return NULL;
        memcpy(key, path, len);
        key[len] = 0;
        j = json_object_get(j, key);
        path += len + (path[len] == '.');
    }
    return j;
}

static void json_text(json_t *v, char *buf, size_t cap) {
    if (!v) snprintf(buf, cap, "unset");
    else if (json_is_integer(v)) snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, cap, "%g", json_real_value(v));
    else if (json_is_string(v)) snprintf(buf, cap, "%s", json_string_value(v));
    else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, cap, "%s", t ? t : "?");
        free(t);
    }
}

static void print_deviations(FILE *out, const ReportData *ds, int nd) {
    static const struct { const char *key, *what; } KEYS[] = {
        {"base.preset", "base model preset"},
        {"base.checkpoint", "base checkpoint"},
        {"base.pretrain.steps", "base pretraining steps"},
        {"task.name", "tasks"},
        {"task.max_len", "max_len (tokens per example)"},
        {"train.steps", "training steps per run"},
        {"train.patience", "early stopping (train.patience)"},
        {"train.lr", "learning rates (the picked ones where tuned)"},
    };
    enum { NK = sizeof KEYS / sizeof KEYS[0] };
    Distinct val[NK];
    memset(val, 0, sizeof val);
    int max_rank = 0, width = 0, min_seeds = 1 << 30, max_seeds = 0;
    char tuned[512] = "", fixed[512] = "";
    Distinct lp_embed = {0}, lp_layer = {0}, ranks = {0};
    for (int i = 0; i < nd; i++) {
        const ReportData *d = &ds[i];
        int lr_tuned = 0;
        for (int t = 0; t < d->ntuned; t++) lr_tuned |= !strcmp(d->tuned[t], "train.lr");
        append(lr_tuned ? tuned : fixed, sizeof tuned, ", ", d->sweep);
        for (int k = 0; k < d->n; k++) {
            const ReportRun *r = &d->runs[k];
            if (r->status != RUN_DONE || r->tuning_only) continue;
            json_t *j = r->config ? json_loads(r->config, 0, NULL) : NULL;
            if (!j) continue;
            char buf[96];
            for (int q = 0; q < NK; q++) {
                json_t *v = json_path(j, KEYS[q].key);
                if (!v && strcmp(KEYS[q].key, "train.patience")) continue;   // not applicable
                json_text(v, buf, sizeof buf);
                distinct_add(&val[q], buf);
            }
            json_t *preset = json_path(j, "base.preset");
            ModelConfig mc;
            if (json_is_string(preset) && !model_preset(json_string_value(preset), &mc)) width = mc.n_embd;
            if (r->rank > max_rank) max_rank = r->rank;
            if (r->rank > 0) { snprintf(buf, sizeof buf, "%d", r->rank); distinct_add(&ranks, buf); }
            int lp = config_lp(r);
            if (lp >= 0 && str_eq(r->method, "prefix_embed")) { snprintf(buf, sizeof buf, "%d", lp); distinct_add(&lp_embed, buf); }
            if (lp >= 0 && str_eq(r->method, "prefix_layer")) { snprintf(buf, sizeof buf, "%d", lp); distinct_add(&lp_layer, buf); }
            json_decref(j);
        }
        // seeds per configuration
        int *first;
        const char **tasks;
        int nt = report_tasks(d, &tasks);
        for (int t = 0; t < nt; t++) {
            int ng = report_groups(d, tasks[t], &first);
            for (int g = 0; g < ng; g++) {
                ReportStat st = report_group_stat(d, tasks[t], d->runs[first[g]].group, NULL);
                if (st.n < min_seeds) min_seeds = st.n;
                if (st.n > max_seeds) max_seeds = st.n;
            }
            free(first);
        }
        free(tasks);
    }
    fprintf(out, "## Deviations from the paper's setup\n\n"
                 "The paper: %s. Here, read from the stored configs of the sweeps above:\n\n", PAPER_SETUP);
    for (int q = 0; q < NK; q++) {
        char buf[1024];
        if (!val[q].n) continue;
        distinct_str(&val[q], buf, sizeof buf);
        fprintf(out, "- %s: %s", KEYS[q].what, buf);
        if (!strcmp(KEYS[q].key, "task.max_len") && val[q].n > 1) fprintf(out, " (not one max_len everywhere)");
        if (!strcmp(KEYS[q].key, "train.patience") && val[q].n == 1 && !strcmp(val[q].v[0], "unset"))
            fprintf(out, " (no early stopping: every run trains its full step count)");
        if (!strcmp(KEYS[q].key, "train.lr"))
            fprintf(out, "; tuned on validation (`tune:`) in: %s; fixed in the sweep file in: %s", tuned[0] ? tuned : "none",
                    fixed[0] ? fixed : "none");
        fprintf(out, "\n");
    }
    if (width > 0) {
        char buf[512];
        fprintf(out, "- model width d_model = %d", width);
        qsort(ranks.v, (size_t)ranks.n, sizeof ranks.v[0], cmp_numeric);
        distinct_str(&ranks, buf, sizeof buf);
        fprintf(out, "; LoRA ranks %s", buf);
        if (max_rank * 2 >= width)
            fprintf(out, "; r = %d is %s the width, not a low rank (the paper's r = 64 is 0.5 %% of 12,288)",
                    max_rank, max_rank * 2 == width ? "half" : "more than half of");
        fprintf(out, "\n");
    }
    if (max_seeds > 0) fprintf(out, "- seeds per configuration: %d to %d\n", min_seeds, max_seeds);
    char e[256], l[256];
    qsort(lp_embed.v, (size_t)lp_embed.n, sizeof lp_embed.v[0], cmp_numeric);
    qsort(lp_layer.v, (size_t)lp_layer.n, sizeof lp_layer.v[0], cmp_numeric);
    distinct_str(&lp_embed, e, sizeof e);
    distinct_str(&lp_layer, l, sizeof l);
    fprintf(out, "- prefix lengths: PreEmbed lp %s, PreLayer lp %s (the paper's Figure 2 reaches lp 256 and beyond)\n", e, l);
    fprintf(out, "- metric: each task's main metric on its test split, from the best-validation state (the paper reports validation accuracy)\n");
}

// Per sweep with a tune: block, how many variants' picked values are the first or the last of
// their tuning list: there the best value may lie outside the list.
static int print_tune_edges(FILE *out, Store *s, const ReportData *ds, int nd) {
    sqlite3 *db = store_db(s);
    const char *sql =
        "WITH v AS (SELECT sweep_id, variant, min(position) lo, max(position) hi FROM sweep_tune GROUP BY 1, 2),"
        " e AS (SELECT v.sweep_id, v.variant, a.setting first, b.setting last FROM v"
        "  JOIN sweep_tune a ON a.sweep_id = v.sweep_id AND a.position = v.lo"
        "  JOIN sweep_tune b ON b.sweep_id = v.sweep_id AND b.position = v.hi),"
        " p AS (SELECT DISTINCT sweep_id, variant, setting FROM sweep_tune WHERE picked)"
        " SELECT s.name, count(*), sum(p.setting = e.first AND e.first != e.last),"
        "  sum(p.setting = e.last AND e.first != e.last)"
        " FROM p JOIN e USING (sweep_id, variant) JOIN sweeps s ON s.id = p.sweep_id GROUP BY s.name ORDER BY s.name";
    sqlite3_stmt *st = NULL;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    char line[1024] = "";
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int ours = 0;
        for (int i = 0; i < nd; i++) ours |= str_eq(ds[i].sweep, name);
        if (!ours) continue;
        char item[256];
        snprintf(item, sizeof item, "%s %d of %d variants (%d at the first value, %d at the last)", name,
                 sqlite3_column_int(st, 2) + sqlite3_column_int(st, 3), sqlite3_column_int(st, 1),
                 sqlite3_column_int(st, 2), sqlite3_column_int(st, 3));
        append(line, sizeof line, "; ", item);
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    if (line[0])
        fprintf(out, "- tuned values that are the first or the last of their tuning list, where the best value may "
                     "lie outside the list: %s\n", line);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// Compute time: wall seconds of the done runs linked to the sweeps (grid and tuning runs).
static int print_compute(FILE *out, Store *s) {
    sqlite3 *db = store_db(s);
    const char *sql =
        "SELECT count(*), coalesce(sum(wall_seconds), 0), coalesce(max(wall_seconds), 0) FROM runs WHERE status = 'done' AND id IN ("
        "SELECT run_id FROM sweep_runs UNION SELECT run_id FROM sweep_tune)";
    sqlite3_stmt *st = NULL;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_step(st), sql);
    int n = sqlite3_column_int(st, 0);
    double total = sqlite3_column_double(st, 1);
    sqlite3_finalize(st);
    fprintf(out, "## Compute\n\n"
                 "%d done runs, %.1f s (%.2f h) of run wall time in all (`runs.wall_seconds` summed: runs that ran at the same "
                 "time overlap in wall-clock time, and a base pretrained inside a run counts in that run's time).\n\n", n, total, total / 3600);
    const char *per = "SELECT s.name, coalesce(s.file, '-'), count(*), sum(r.wall_seconds) FROM sweeps s "
                      "JOIN sweep_runs sr ON sr.sweep_id = s.id "
                      "JOIN runs r ON r.id = sr.run_id WHERE r.status = 'done' GROUP BY s.id ORDER BY s.id";
    int rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, per, -1, &st, NULL), per);
    fprintf(out, "| sweep | file | done runs | run wall time (s) |\n|---|---|---|---|\n");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fprintf(out, "| %s | %s | %d | %.1f |\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                sqlite3_column_int(st, 2), sqlite3_column_double(st, 3));
    SQL_CHECK(db, rc, per);
    sqlite3_finalize(st);
    fprintf(out, "\nA run shared by two sweeps (same config hash) is trained once and listed under both. The text of each "
                 "sweep file as it was run is in the database (`sweeps.yaml`); the files in experiments/ may have changed since.\n");
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// ----------------------------------------------------------------------------
// φ detail table

static int print_phi_table(FILE *out, Store *s, int same_rank) {
    sqlite3 *db = store_db(s);
    const char *sql =
        "SELECT s.run_a, s.run_b, a.rank, b.rank, a.seed, b.seed, s.layer, s.matrix, "
        "max(CASE WHEN s.kind = 'learned' AND s.i = 1 AND s.j = 1 THEN s.phi END), "
        "avg(CASE WHEN s.kind = 'learned' AND s.i = s.j AND s.i <= 8 THEN s.phi END), "
        "max(CASE WHEN s.kind = 'random' AND s.i = 1 AND s.j = 1 THEN s.phi END), "
        "avg(CASE WHEN s.kind = 'random' AND s.i = s.j AND s.i <= 8 THEN s.phi END) "
        "FROM analysis_subspace s JOIN runs a ON a.id = s.run_a JOIN runs b ON b.id = s.run_b "
        "WHERE (?1 = 1 AND a.rank = b.rank AND a.seed <> b.seed) OR (?1 = 0 AND a.rank < b.rank) "
        "GROUP BY s.run_a, s.run_b, s.matrix, s.layer ORDER BY s.run_a, s.run_b, s.matrix, s.layer";
    sqlite3_stmt *st = NULL;
    int rc, n = 0;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int(st, 1, same_rank), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!n++) fprintf(out, "| runs | ranks | seeds | layer | matrix | φ(1,1) | mean φ(i,i), i ≤ 8 | Gaussian φ(1,1) | Gaussian mean φ(i,i), i ≤ 8 |\n"
                               "|---|---|---|---|---|---|---|---|---|\n");
        fprintf(out, "| %lld, %lld | %d, %d | %d, %d | %d | W%s | %.4f | %.4f | %.4f | %.4f |\n",
                (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2),
                sqlite3_column_int(st, 3), sqlite3_column_int(st, 4), sqlite3_column_int(st, 5), sqlite3_column_int(st, 6),
                sqlite3_column_text(st, 7), sqlite3_column_double(st, 8), sqlite3_column_double(st, 9),
                sqlite3_column_double(st, 10), sqlite3_column_double(st, 11));
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    if (!n) fprintf(out, "No φ rows.\n");
    fprintf(out, "\n");
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// ----------------------------------------------------------------------------
// the document

static void md_cell(FILE *out, const char *text) {
    // a Markdown table cell: no pipes, no newlines
    for (const char *p = text; *p; p++) fputc(*p == '|' ? '/' : *p == '\n' ? ' ' : *p, out);
}

static int print_detail(FILE *out, Store *s, const ReportData *d, const char *name, const char *title) {
    fprintf(out, "### %s (sweep %s)\n\n```\n", title, d->sweep);
    if (report_print(out, s, d, name)) { fprintf(out, "(nothing to report: %s)\n", err_msg()); }
    fprintf(out, "```\n\n");
    return 0;
}

int report_reproduction(FILE *out, Store *s) {
    ReportData ds[NUM_SWEEPS];
    int loaded[NUM_SWEEPS] = {0};
    Rows rs = {0};
    int status = -1;
    for (int i = 0; i < NUM_SWEEPS; i++) {
        int e = sweep_exists(s, SWEEPS[i]);
        if (e < 0) goto done;
        if (e && report_load(s, SWEEPS[i], &ds[i])) goto done;
        loaded[i] = e;
    }
    // findings per task of each sweep
    for (int i = 0; i < NUM_FINDING_SWEEPS; i++) {
        if (!loaded[i]) {
            const char *ids5[] = {"T5a", "T5b"}, *ids6[] = {"T6a", "T6b", "T6c"}, *idsm[] = {"F2a", "F2b", "F2c", "LF"};
            const char **ids = i == 0 ? ids5 : i == 1 ? ids6 : idsm;
            int n = i == 0 ? 2 : i == 1 ? 3 : 4;
            for (int k = 0; k < n; k++) not_tested(row_add(&rs, ids[k], NULL), "no sweep %s in the database", SWEEPS[i]);
            continue;
        }
        const char **tasks;
        int nt = report_tasks(&ds[i], &tasks);
        for (int t = 0; t < nt; t++) {
            if (i == 0) findings_table5(&rs, s, &ds[i], tasks[t]);
            else if (i == 1) findings_table6(&rs, s, &ds[i], tasks[t]);
            else findings_methods(&rs, s, &ds[i], tasks[t]);
        }
        free(tasks);
    }
    if (findings_phi(&rs, s) || findings_table7(&rs, s)) goto done;

    fprintf(out, "# loralab's reproduction of the LoRA paper's findings\n\n"
                 "Generated by `loralab report reproduction` from its results database alone; do not edit by hand. "
                 "The paper: Hu et al., 2021, \"LoRA: Low-Rank Adaptation of Large Language Models\", arXiv 2106.09685 (v2); "
                 "its numbers below are the paper's, quoted from its tables and text.\n\n");
    int count[VERDICT_COUNT] = {0};
    for (int i = 0; i < rs.n; i++) count[rs.rows[i].verdict]++;
    fprintf(out, "Verdicts: %d reproduced, %d not reproduced, %d inconclusive at this power, %d not tested (of %d).\n\n",
            count[0], count[1], count[2], count[3], rs.n);
    fprintf(out, "## Findings\n\n"
                 "Ours: the main metric (test split, best-validation state), mean [95 %% t interval] and n seeds, or the "
                 "analysis statistic over layers and run pairs. Differences are paired by seed (or by layer and run pair).\n\n"
                 "| finding | paper's claim | paper's numbers | task | ours | verdict | evidence |\n"
                 "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < rs.n; i++) {
        const Row *r = &rs.rows[i];
        fprintf(out, "| %s %s | ", r->f->item, r->f->id);
        md_cell(out, r->f->claim);
        fprintf(out, " | ");
        md_cell(out, r->f->paper);
        fprintf(out, " | %s | ", r->task[0] ? r->task : "-");
        md_cell(out, r->ours);
        fprintf(out, " | **%s** | ", VERDICT_NAMES[r->verdict]);
        md_cell(out, r->evidence);
        fprintf(out, " |\n");
    }
    fprintf(out, "\nVerdict rules (coded in harness/report_repro.c, α = %.2f, margin δ = %.2f of the metric):\n\n"
                 "- \"above\" claims: paired t-test, Holm-adjusted over the claim's comparisons. **reproduced** when every "
                 "comparison goes the paper's way with adjusted p < α; **not reproduced** when one goes the other way with "
                 "adjusted p < α; otherwise **inconclusive at this power**.\n"
                 "- \"on par\" claims: **reproduced** when the 95 %% t interval of every paired difference lies above −δ; "
                 "**not reproduced** when one lies wholly below −δ; otherwise inconclusive.\n"
                 "- amplification above 1: the 95 %% t interval of the mean factor against 1.\n"
                 "- **not tested**: the database lacks the runs or analysis rows the claim needs.\n\n",
            REPRO_ALPHA, REPRO_MARGIN);

    fprintf(out, "## Detail tables\n\nCells: mean ± sample std, n, 95 %% t interval; * marks runs that stopped at their "
                 "step cap while validation still improved.\n\n");
    static const char *const TITLES[NUM_FINDING_SWEEPS] = {"Table 5: which weight matrices, at one budget",
                                                           "Table 6: rank r", "Figure 2: methods and sizes"};
    static const char *const NAMES[NUM_FINDING_SWEEPS] = {"table5", "table6", "methods"};
    for (int i = 0; i < NUM_FINDING_SWEEPS; i++)
        if (loaded[i]) print_detail(out, s, &ds[i], NAMES[i], TITLES[i]);
    fprintf(out, "### Figure 3: φ between A of two ranks (same seed)\n\n");
    if (print_phi_table(out, s, 0)) goto done;
    fprintf(out, "### Figure 4: φ between A of two seeds (same rank)\n\n");
    if (print_phi_table(out, s, 1)) goto done;
    fprintf(out, "### Table 7: amplification\n\n```\n");
    ReportData all;
    if (report_load(s, NULL, &all)) goto done;
    if (report_print(out, s, &all, "table7")) fprintf(out, "(nothing to report: %s)\n", err_msg());
    report_data_free(&all);
    fprintf(out, "```\n\n");

    int ncontrols = 0;
    for (int i = NUM_SETUP_SWEEPS; i < NUM_SWEEPS; i++) ncontrols += loaded[i];
    if (ncontrols) fprintf(out, "## Controls and checks\n\n");
    for (int i = NUM_SETUP_SWEEPS; i < NUM_SWEEPS; i++)
        if (loaded[i]) print_detail(out, s, &ds[i], "methods", SWEEPS[i]);

    int nd = 0;
    ReportData dl[NUM_SWEEPS];
    for (int i = 0; i < NUM_SETUP_SWEEPS; i++) if (loaded[i]) dl[nd++] = ds[i];
    print_deviations(out, dl, nd);
    if (print_tune_edges(out, s, dl, nd)) goto done;
    fprintf(out, "\n");
    if (print_compute(out, s)) goto done;
    status = 0;
done:
    for (int i = 0; i < NUM_SWEEPS; i++) if (loaded[i]) report_data_free(&ds[i]);
    free(rs.rows);
    return status;
}

