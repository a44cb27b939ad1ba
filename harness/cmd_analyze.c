// harness/cmd_analyze.c — `loralab analyze`: the analysis of learned LoRA updates.
//
//   analyze subspace --a RUN --b RUN ...   φ(i, j) between the lora_A of two runs (Figures 3, 4)
//   analyze amplification --run RUN ...    Table 7 numbers, singular values, effective rank
//   analyze sweep NAME                     what the sweep file's `analyze:` block asks for
//
// The math is core/analysis.c; runs are named as harness/run_select.h says and loaded by
// harness/analyze_run.c (adapters, and base weights for Table 7), the analyze: block is
// interpreted by harness/analyze_sweep.c; this file runs the analyses, writes the analysis
// tables, prints a summary and draws the figures (harness/analyze_plot.c). See USAGE.
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/analysis.h"
#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/files.h"
#include "core/model.h"
#include "core/rng.h"
#include "harness/analyze.h"
#include "harness/analyze_plot.h"
#include "harness/analyze_run.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/config.h"
#include "harness/report.h"
#include "harness/run_select.h"
#include "harness/store.h"

static const char USAGE[] =
    "analyze subspace --a RUN --b RUN [--matrix LIST] [--layers all|LIST] [--i N] [--j N]\n"
    "                         [--seed N] [--plot] [--out DIR] [--db PATH]\n"
    "       loralab analyze amplification --run RUN [--matrix LIST] [--layers all|LIST] [--seed N]\n"
    "                         [--plot] [--out DIR] [--db PATH]\n"
    "       loralab analyze sweep NAME [--plot] [--out DIR] [--db PATH]\n"
    "\n"
    "subspace: for each layer and matrix, φ(A1, A2, i, j) = ‖U1^(i)ᵀ U2^(j)‖_F² / min(i, j) for\n"
    "  i = 1..r1, j = 1..r2 (or up to --i / --j), U^(i) the top-i right-singular vectors of the\n"
    "  learned lora_A (r x d_in) of each run (the paper's Figures 3 and 4), and the same grid for\n"
    "  two Gaussian matrices of the same shapes (the random baseline). Both runs must share a base\n"
    "  model. Rows go to analysis_subspace (kind learned / random); the summary shows φ(1,1) and\n"
    "  the mean of φ(i,i), beside the random baseline's (whose expectation is max(i,j)/d_in).\n"
    "amplification: for ΔW = (alpha/r) B A of each layer and matrix and the base weight W of the\n"
    "  same matrix (the q/k/v slice of c_attn, c_proj for o, [d_out, d_in]): ‖ΔW‖_F, ‖W‖_F and\n"
    "  ‖Uᵀ W Vᵀ‖_F with U, V the top-r left/right singular vectors of ΔW, of W, and of a Gaussian\n"
    "  matrix; amplification = ‖ΔW‖_F / ‖Uᵀ W Vᵀ‖_F (ΔW's U, V) (the paper's Table 7; print it\n"
    "  with `loralab report table7`). Also ΔW's r singular values and its effective rank\n"
    "  exp(-Σ p_i ln p_i), p_i = s_i / Σ s (1 for rank one, r for r equal values).\n"
    "  Rows go to analysis_amplification and analysis_singular.\n"
    "\n"
    "RUN: a run id (an integer), a hash or a unique hash prefix, or a selector\n"
    "  'sweep=S,lora.rank=8,seed=1' (config keys compared with each run's stored config; a list\n"
    "  value such as lora.targets=q,v may contain commas) that must match exactly one run.\n"
    "  Or an adapter directory, loralab's or a PEFT LoRA adapter (a fused c_attn gives q, k and v\n"
    "  the same A): its base is --base DIR, else its base_model_name_or_path; its results are\n"
    "  printed and drawn, not stored.\n"
    "LIST: matrices q,k,v,o,c_fc,c_proj (default: every matrix the run(s) adapted); layers are\n"
    "  0-based, 'all' or e.g. 0,2-3.\n"
    "Figures (--plot, PNG + SVG beside each gnuplot script) go to --out or plots/<sweep or run>\n"
    "  beside the database: phi-A-B-M-layerL (one heatmap per layer and matrix), phi-A-B-M-layers\n"
    "  and phi-random-A-B-M-layers (grids over layers), amplification-RUN.\n"
    "\n"
    "sweep NAME: runs the sweep's `analyze:` block (stored from the sweep file), over the sweep's\n"
    "  runs that are done (others are skipped with a note). Format (YAML in the sweep file):\n"
    "    analyze:\n"
    "      subspace:                      # one block, or a list of blocks\n"
    "        pairs:                       # each a: run pattern, b: run pattern\n"
    "          - {a: {lora.rank: 8}, b: {lora.rank: 64}}\n"
    "        matrix: [q, v]               # optional (default: every common matrix)\n"
    "        layers: all                  # optional: all, [0, 3] or \"0-3\"\n"
    "        i: 8                         # optional grid limits (default: the ranks)\n"
    "        j: 64\n"
    "        seed: 1                      # optional: random baseline seed (default 1)\n"
    "      amplification:                 # one block, or a list of blocks\n"
    "        runs: {lora.rank: 4}         # a pattern, a list of patterns, or {} (every LoRA run)\n"
    "        matrix: [q]                  # optional, as layers and seed\n"
    "      plot: true                     # draw the figures (default true)\n"
    "  A pattern is a mapping of config keys (dotted or nested) to values, matched against each\n"
    "  run's stored config. Each run matched by a is paired with each run matched by b whose\n"
    "  config is equal in every key that neither pattern names (so {seed: 1} vs {seed: 2} pairs\n"
    "  the two seeds of every other grid point).\n"
    "\n"
    "exit status: 0 ok; 1 gnuplot failed; 2 bad input (unknown run, a run without LoRA tensors or\n"
    "  adapter, different bases or shapes, a matrix a run did not adapt, --i/--j above the rank)";

// ----------------------------------------------------------------------------
// small parsers

// "q,v" → TARGET_* mask.
int analyze_parse_matrices(const char *text, int *mask) {
    *mask = 0;
    char *copy = xstrdup(text), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int t = 0;
        while (t < NUM_TARGETS && strcmp(TARGET_NAMES[t], tok)) t++;
        if (t == NUM_TARGETS) {
            err_set("--matrix: unknown matrix '%s'; valid: q, k, v, o, c_fc, c_proj", tok);
            free(copy);
            return -1;
        }
        *mask |= 1 << t;
    }
    free(copy);
    if (!*mask) return err_set("--matrix: empty list; valid: q, k, v, o, c_fc, c_proj");
    return 0;
}

// Layers: NULL or "all" → *n = 0 (every layer); "0,2-3" → {0, 2, 3}. *layers malloc'ed.
int analyze_parse_layers(const char *text, int **layers, int *n) {
    *layers = NULL;
    *n = 0;
    if (!text || !strcmp(text, "all")) return 0;
    char *copy = xstrdup(text), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int lo = 0, hi = 0;
        char *dash = strchr(tok + 1, '-');
        if (dash) *dash = 0;
        int bad = args_to_int(tok, "--layers", 0, 100000, &lo) ||
                  (dash ? args_to_int(dash + 1, "--layers", 0, 100000, &hi) : (hi = lo, 0));
        if (bad || hi < lo) {
            if (!bad) err_set("--layers: range %d-%d is empty", lo, hi);
            free(copy);
            free(*layers);
            *layers = NULL;
            return -1;
        }
        for (int l = lo; l <= hi; l++) {
            *layers = xrealloc(*layers, (size_t)(*n + 1) * sizeof(int));
            (*layers)[(*n)++] = l;
        }
    }
    free(copy);
    if (!*n) return err_set("--layers: empty list (use 'all' or e.g. 0,2-3)");
    return 0;
}

static const char *targets_str(int mask, char *buf, size_t cap) {
    buf[0] = 0;
    for (int t = 0; t < NUM_TARGETS; t++)
        if (mask & (1 << t)) {
            size_t len = strlen(buf);
            snprintf(buf + len, cap - len, "%s%s", len ? "," : "", TARGET_NAMES[t]);
        }
    return buf;
}

// The first sweep that holds run a (and run b, if b > 0), into name; "" if none.
static int common_sweep(Store *st, int64_t a, int64_t b, char *name, size_t cap) {
    sqlite3 *db = store_db(st);
    const char *sql = "SELECT s.name FROM sweeps s JOIN sweep_runs x ON x.sweep_id = s.id AND x.run_id = ? "
                      "WHERE ? <= 0 OR EXISTS (SELECT 1 FROM sweep_runs y WHERE y.sweep_id = s.id "
                      "AND y.run_id = ?) ORDER BY s.id LIMIT 1";
    sqlite3_stmt *q = NULL;
    name[0] = 0;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(q, 1, a), sql);
    SQL_CHECK(db, sqlite3_bind_int64(q, 2, b), sql);
    SQL_CHECK(db, sqlite3_bind_int64(q, 3, b), sql);
    int rc = sqlite3_step(q);
    SQL_CHECK(db, rc, sql);
    if (rc == SQLITE_ROW) snprintf(name, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return 0;
fail:
    sqlite3_finalize(q);
    return -1;
}

// ----------------------------------------------------------------------------
// options shared by the subcommands

// RUN given as an adapter directory (dir set) or a run id.
static int rundata_open_ref(Store *st, int64_t id, const char *dir, const Options *o, int with_base,
                            int want, RunData *r) {
    return dir ? rundata_open_dir(dir, o->base, with_base, want, r) : rundata_open(st, id, with_base, want, r);
}

static int check_layers(const Options *o, const RunData *r, int **layers, int *n) {
    int L = r->cfg.n_layer;
    if (!o->layers) {
        *n = L;
        *layers = xmalloc((size_t)L * sizeof(int));
        for (int l = 0; l < L; l++) (*layers)[l] = l;
        return 0;
    }
    for (int k = 0; k < o->nlayers; k++)
        if (o->layers[k] >= L)
            return err_set("--layers: layer %d does not exist: %s's model has %d layers (0-%d)",
                           o->layers[k], r->label, L, L - 1);
    *n = o->nlayers;
    *layers = xmalloc((size_t)o->nlayers * sizeof(int));
    memcpy(*layers, o->layers, (size_t)o->nlayers * sizeof(int));
    return 0;
}

// "runs 1 and 4", or "run 1 and adapter DIR" when one is an adapter directory.
static const char *pair_label(const RunData *a, const RunData *b, char *buf, size_t cap) {
    if (a->id > 0 && b->id > 0) snprintf(buf, cap, "runs %lld and %lld", (long long)a->id, (long long)b->id);
    else snprintf(buf, cap, "%.4000s and %.4000s", a->label, b->label);
    return buf;
}

// Which matrices to analyse: the requested ones (each adapted by every run), or every
// matrix adapted by all of them.
static int pick_matrices(const Options *o, RunData *const *runs, int nruns, int *mask) {
    LAB_ASSERT(nruns == 1 || nruns == 2);
    char buf[64];
    int common = (1 << NUM_TARGETS) - 1;
    for (int k = 0; k < nruns; k++) common &= runs[k]->mc.lora_targets;
    if (!o->matrices) {
        if (!common && nruns == 2) {
            char buf2[64];
            char both[8500];
            return err_set("%s adapted no common matrix (LoRA targets %s vs %s)",
                           pair_label(runs[0], runs[1], both, sizeof both),
                           targets_str(runs[0]->mc.lora_targets, buf, sizeof buf),
                           targets_str(runs[1]->mc.lora_targets, buf2, sizeof buf2));
        }
        *mask = common;
        return 0;
    }
    for (int t = 0; t < NUM_TARGETS; t++)
        for (int k = 0; k < nruns; k++)
            if ((o->matrices & (1 << t)) && !(runs[k]->mc.lora_targets & (1 << t)))
                return err_set("%s did not adapt matrix '%s' (its LoRA targets: %s)",
                               runs[k]->label, TARGET_NAMES[t],
                               targets_str(runs[k]->mc.lora_targets, buf, sizeof buf));
    *mask = o->matrices;
    return 0;
}

// DIR/plots/<name> where DIR holds the database; name made safe for a file name.
char *analyze_plots_dir(const Options *o, const char *name) {
    if (o->outdir) return xstrdup(o->outdir);
    const char *slash = strrchr(o->db, '/');
    size_t dirlen = slash ? (size_t)(slash - o->db) : 0;
    size_t size = dirlen + strlen(name) + 16;
    char *out = xmalloc(size);
    if (slash) snprintf(out, size, "%.*s/plots/", (int)dirlen, o->db);
    else snprintf(out, size, "plots/");
    size_t len = strlen(out);
    for (const char *p = name; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '_' || *p == '-' || (*p == '.' && p != name);
        out[len++] = ok ? *p : '_';
    }
    out[len] = 0;
    return out;
}

static uint64_t baseline_seed(int seed, int layer, int t) {
    return rng_mix((uint64_t)seed, (uint64_t)layer * NUM_TARGETS + (uint64_t)t);
}

// Prints a table built as rows of cells (row 0: header).
typedef struct {
    int rows, cols;
    char **cells;
} Table;

static void table_add(Table *tb, const char *const *row) {
    tb->cells = xrealloc(tb->cells, (size_t)(tb->rows + 1) * tb->cols * sizeof(char *));
    for (int c = 0; c < tb->cols; c++) tb->cells[(size_t)tb->rows * tb->cols + c] = xstrdup(row[c]);
    tb->rows++;
}

static void table_print_free(Table *tb, const int *right) {
    report_table_print(stdout, tb->rows, tb->cols, tb->cells, right);
    for (int k = 0; k < tb->rows * tb->cols; k++) free(tb->cells[k]);
    free(tb->cells);
}

// ----------------------------------------------------------------------------
// subspace

static int same_base(const RunData *a, const RunData *b) {
    char both[8500];
    if (a->cfg.n_layer != b->cfg.n_layer || a->cfg.n_embd != b->cfg.n_embd ||
        a->cfg.n_head != b->cfg.n_head || a->cfg.vocab_size != b->cfg.vocab_size)
        return err_set("%s have different model shapes (%d layers, d_model %d vs %d "
                       "layers, d_model %d)", pair_label(a, b, both, sizeof both), a->cfg.n_layer,
                       a->cfg.n_embd, b->cfg.n_layer, b->cfg.n_embd);
    if (a->base[0] && b->base[0]) {
        char ra[4096], rb[4096];
        const char *pa = realpath(a->base, ra) ? ra : a->base, *pb = realpath(b->base, rb) ? rb : b->base;
        if (strcmp(pa, pb))
            return err_set("%s were trained on different bases (%s vs %s): their "
                           "subspaces are not comparable", pair_label(a, b, both, sizeof both), a->base, b->base);
        return 0;
    }
    for (int k = 0; k < config_num_keys(); k++)
        if (!strncmp(config_key_name(k), "base.", 5) && !config_key_equal(&a->rc, &b->rc, k))
            return err_set("%s were trained on different bases (%s differs): their "
                           "subspaces are not comparable", pair_label(a, b, both, sizeof both),
                           config_key_name(k));
    return 0;
}

int analyze_subspace(Store *st, int64_t ida, int64_t idb, const Options *o) {
    RunData a, b;
    int rc = -1;
    int *layers = NULL, nl = 0, mask = 0;
    if (rundata_open_ref(st, ida, o->dir_a, o, 0, 0, &a)) { rundata_free(&a); return -1; }
    if (rundata_open_ref(st, idb, o->dir_b, o, 0, 0, &b)) { rundata_free(&a); rundata_free(&b); return -1; }
    int stored = ida > 0 && idb > 0;   // adapter directories have no rows to attach results to
    RunData *both[2] = {&a, &b};
    if (same_base(&a, &b) || pick_matrices(o, both, 2, &mask) || check_layers(o, &a, &layers, &nl)) goto done;
    char sweep[128] = "";
    if (stored && common_sweep(st, ida, idb, sweep, sizeof sweep)) goto done;
    char fallback[160];
    snprintf(fallback, sizeof fallback, "runs-%s-%s", a.tag, b.tag);
    char *dir = o->plot ? analyze_plots_dir(o, sweep[0] ? sweep : fallback) : NULL;
    const Backend *be = backend_open("cpu", NULL);
    rc = 0;
    for (int t = 0; t < NUM_TARGETS && !rc; t++) {
        if (!(mask & (1 << t))) continue;
        float *A1, *B1, *A2, *B2;
        int r1, r2, k1, k2, o1, o2;
        lora_factors(&a, t, &A1, &B1, &r1, &o1, &k1);
        lora_factors(&b, t, &A2, &B2, &r2, &o2, &k2);
        int I = o->i_max ? o->i_max : r1, J = o->j_max ? o->j_max : r2;
        if (k1 != k2) rc = err_set("matrix %s: lora_A of %s is %d x %d but %s's is %d x %d",
                                   TARGET_NAMES[t], a.label, r1, k1, b.label, r2, k2);
        else if (I > r1) rc = err_set("--i %d is larger than %s's rank %d (matrix %s)", I, a.label, r1, TARGET_NAMES[t]);
        else if (J > r2) rc = err_set("--j %d is larger than %s's rank %d (matrix %s)", J, b.label, r2, TARGET_NAMES[t]);
        if (rc) { rc = -1; free(A1); free(B1); free(A2); free(B2); break; }
        int k = k1;
        printf("φ(i, j) of lora_A, matrix %s: %s (%.8s%sr=%d) vs %s (%.8s%sr=%d), i = 1..%d, j = 1..%d;\n"
               "random baseline: Gaussian %d x %d vs %d x %d (seed %d; expected φ(i,i) = i/%d)\n\n",
               TARGET_NAMES[t], a.label, a.hash, a.hash[0] ? ", " : "", r1, b.label, b.hash,
               b.hash[0] ? ", " : "", r2, I, J, r1, k, r2, k, o->seed, k);
        Table tb = {0, 6, NULL};
        const char *head[6] = {"layer", "matrix", "φ(1,1)", "mean φ(i,i)", "random φ(1,1)", "random mean φ(i,i)"};
        table_add(&tb, head);
        double **phis = xcalloc((size_t)nl, sizeof *phis), **rands = xcalloc((size_t)nl, sizeof *rands);
        for (int q = 0; q < nl && !rc; q++) {
            int l = layers[q];
            phis[q] = xmalloc((size_t)I * J * sizeof(double));
            rands[q] = xmalloc((size_t)I * J * sizeof(double));
            if (analysis_phi(be, phis[q], A1 + (size_t)l * r1 * k, r1, I, A2 + (size_t)l * r2 * k, r2, J, k) ||
                analysis_phi_random(be, rands[q], r1, I, r2, J, k, baseline_seed(o->seed, l, t))) {
                err_prefix("layer %d matrix %s", l, TARGET_NAMES[t]);
                rc = -1;
                break;
            }
            if (stored && (store_add_subspace(st, ida, idb, "learned", l, TARGET_NAMES[t], I, J, phis[q]) ||
                           store_add_subspace(st, ida, idb, "random", l, TARGET_NAMES[t], I, J, rands[q]))) {
                rc = -1;
                break;
            }
            char c[6][32];
            snprintf(c[0], 32, "%d", l);
            snprintf(c[1], 32, "%s", TARGET_NAMES[t]);
            snprintf(c[2], 32, "%.4f", phis[q][0]);
            snprintf(c[3], 32, "%.4f", analysis_phi_diag_mean(phis[q], I, J));
            snprintf(c[4], 32, "%.4f", rands[q][0]);
            snprintf(c[5], 32, "%.4f", analysis_phi_diag_mean(rands[q], I, J));
            const char *row[6] = {c[0], c[1], c[2], c[3], c[4], c[5]};
            table_add(&tb, row);
        }
        static const int right[6] = {1, 0, 1, 1, 1, 1};
        table_print_free(&tb, right);
        printf("\n");
        if (rc == 0 && dir) {
            char base[160], title[256];
            const char **titles = xcalloc((size_t)nl, sizeof *titles);
            char (*tbuf)[32] = xcalloc((size_t)nl, sizeof *tbuf);
            for (int q = 0; q < nl && !rc; q++) {
                snprintf(base, sizeof base, "phi-%s-%s-%s-layer%d", a.tag, b.tag, TARGET_NAMES[t], layers[q]);
                snprintf(title, sizeof title, "φ(i, j): W%s layer %d, %.80s (r=%d) vs %.80s (r=%d)",
                         TARGET_NAMES[t], layers[q], a.label, r1, b.label, r2);
                int pr = analyze_plot_phi(dir, base, title, phis[q], I, J);
                if (pr) rc = -1;
                snprintf(tbuf[q], 32, "layer %d", layers[q]);
                titles[q] = tbuf[q];
            }
            for (int pass = 0; pass < 2 && !rc; pass++) {
                snprintf(base, sizeof base, "phi%s-%s-%s-%s-layers", pass ? "-random" : "",
                         a.tag, b.tag, TARGET_NAMES[t]);
                snprintf(title, sizeof title, "%s W%s: %.80s (r=%d) vs %.80s (r=%d)",
                         pass ? "φ(i, j) of Gaussian matrices of the shapes of" : "φ(i, j)",
                         TARGET_NAMES[t], a.label, r1, b.label, r2);
                int pr = analyze_plot_phi_grid(dir, base, title, nl, titles,
                                               (const double *const *)(pass ? rands : phis), I, J);
                if (pr) rc = -1;
            }
            free(titles);
            free(tbuf);
        }
        for (int q = 0; q < nl; q++) { free(phis[q]); free(rands[q]); }
        free(phis);
        free(rands);
        free(A1); free(B1); free(A2); free(B2);
    }
    free(dir);
done:
    free(layers);
    rundata_free(&a);
    rundata_free(&b);
    return rc;
}

// ----------------------------------------------------------------------------
// amplification

int analyze_amplification(Store *st, int64_t id, const Options *o) {
    RunData r;
    int rc = -1, mask = 0, *layers = NULL, nl = 0;
    int want = o->matrices ? o->matrices : (1 << NUM_TARGETS) - 1;
    if (rundata_open_ref(st, id, o->dir_a, o, 1, want, &r)) { rundata_free(&r); return -1; }
    RunData *one[1] = {&r};
    if (pick_matrices(o, one, 1, &mask) || check_layers(o, &r, &layers, &nl)) goto done;
    const Backend *be = backend_open("cpu", NULL);
    float scale = r.mc.lora_alpha / (float)r.mc.lora_rank;
    printf("Table 7, %s%s%.8s%s: ΔW = (alpha/r) B A with alpha %g, r %d; U, V = top-%d singular "
           "vectors of ΔW, W or a Gaussian matrix (seed %d)\n\n", r.label, r.hash[0] ? " (" : "", r.hash,
           r.hash[0] ? ")" : "",
           (double)r.mc.lora_alpha, r.mc.lora_rank, r.mc.lora_rank, o->seed);
    Table tb = {0, 10, NULL};
    const char *head[10] = {"layer", "matrix", "r", "‖ΔW‖", "‖W‖", "‖UᵀWVᵀ‖ ΔW", "‖UᵀWVᵀ‖ W",
                            "‖UᵀWVᵀ‖ random", "amplification", "eff. rank"};
    table_add(&tb, head);
    int nm = 0;
    const char *names[NUM_TARGETS];
    double *amp = xmalloc((size_t)NUM_TARGETS * nl * sizeof(double));
    double *eff = xmalloc((size_t)NUM_TARGETS * nl * sizeof(double));
    rc = 0;
    for (int t = 0; t < NUM_TARGETS && !rc; t++) {
        if (!(mask & (1 << t))) continue;
        float *A, *B;
        int rank, d_out, d_in;
        lora_factors(&r, t, &A, &B, &rank, &d_out, &d_in);
        float *dW = xmalloc((size_t)d_out * d_in * sizeof(float));
        double *sv = xmalloc((size_t)rank * sizeof(double));
        for (int q = 0; q < nl && !rc; q++) {
            int l = layers[q];
            analysis_delta_w(dW, A + (size_t)l * rank * d_in, B + (size_t)l * d_out * rank, d_out, d_in, rank, scale);
            Amplification am;
            if (analysis_amplification(be, &am, sv, dW, r.W[t] + (size_t)l * d_out * d_in, d_out, d_in, rank,
                                       baseline_seed(o->seed, l, t))) {
                err_prefix("%s layer %d matrix %s", r.label, l, TARGET_NAMES[t]);
                rc = -1;
                break;
            }
            AmplificationRow row = {id, l, TARGET_NAMES[t], rank, am.norm_dw, am.norm_w, am.norm_proj_dw,
                                    am.norm_proj_w, am.norm_proj_random, am.amplification};
            if (id > 0 && (store_add_amplification(st, &row) ||
                           store_add_singular(st, id, l, TARGET_NAMES[t], rank, sv, am.effective_rank))) {
                rc = -1;
                break;
            }
            amp[(size_t)nm * nl + q] = am.amplification;
            eff[(size_t)nm * nl + q] = am.effective_rank;
            char c[10][32];
            snprintf(c[0], 32, "%d", l);
            snprintf(c[1], 32, "%s", TARGET_NAMES[t]);
            snprintf(c[2], 32, "%d", rank);
            snprintf(c[3], 32, "%.4g", am.norm_dw);
            snprintf(c[4], 32, "%.4g", am.norm_w);
            snprintf(c[5], 32, "%.4g", am.norm_proj_dw);
            snprintf(c[6], 32, "%.4g", am.norm_proj_w);
            snprintf(c[7], 32, "%.4g", am.norm_proj_random);
            snprintf(c[8], 32, "%.4g", am.amplification);
            snprintf(c[9], 32, "%.3f", am.effective_rank);
            const char *cells[10] = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]};
            table_add(&tb, cells);
        }
        names[nm++] = TARGET_NAMES[t];
        free(A);
        free(B);
        free(dW);
        free(sv);
    }
    static const int right[10] = {1, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    table_print_free(&tb, right);
    printf("\n");
    if (rc == 0 && o->plot) {
        char sweep[128] = "", fallback[96], base[128], title[256];
        if (id > 0 && common_sweep(st, id, 0, sweep, sizeof sweep)) rc = -1;
        snprintf(fallback, sizeof fallback, "%s-%s", id > 0 ? "run" : "adapter", r.tag);
        char *dir = analyze_plots_dir(o, sweep[0] ? sweep : fallback);
        snprintf(base, sizeof base, "amplification-%s", r.tag);
        snprintf(title, sizeof title, "amplification ‖ΔW‖_F / ‖UᵀWVᵀ‖_F per layer, %.100s (r=%d)",
                 r.label, r.mc.lora_rank);
        int pr = rc ? 0 : analyze_plot_layers(dir, base, title, "amplification factor", nm, names, nl, layers, amp);
        if (!pr && !rc) {
            snprintf(base, sizeof base, "effective-rank-%s", r.tag);
            snprintf(title, sizeof title, "effective rank of ΔW per layer, %.100s (r=%d)", r.label, r.mc.lora_rank);
            pr = analyze_plot_layers(dir, base, title, "effective rank exp(H(s/Σs))", nm, names, nl, layers, eff);
        }
        if (pr) rc = -1;
        free(dir);
    }
    free(amp);
    free(eff);
done:
    free(layers);
    rundata_free(&r);
    return rc;
}

// ----------------------------------------------------------------------------
// the verb

// spec itself when it names an adapter directory (it holds adapter_config.json), else NULL.
static const char *adapter_dir_arg(const char *spec) {
    if (!spec) return NULL;
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/adapter_config.json", spec);
    return access(path, F_OK) == 0 ? spec : NULL;
}

int cmd_analyze(int argc, char **argv) {
    const char *db = STORE_DEFAULT_PATH, *ra = NULL, *rb = NULL, *run = NULL, *matrix = NULL,
               *layers = NULL, *outdir = NULL, *base = NULL;
    int i_max = 0, j_max = 0, seed = 1, plot = 0, threads = 1;
    ArgSpec specs[] = {
        {"--a", ARG_STRING, &ra, 0, 0, "subspace: the first run (its rank r1 indexes i)"},
        {"--b", ARG_STRING, &rb, 0, 0, "subspace: the second run (its rank r2 indexes j)"},
        {"--run", ARG_STRING, &run, 0, 0, "amplification: the run"},
        {"--matrix", ARG_STRING, &matrix, 0, 0, "matrices, e.g. q or q,v (default: every adapted one)"},
        {"--layers", ARG_STRING, &layers, 0, 0, "layers, 0-based: all (default), or e.g. 0,2-3"},
        {"--i", ARG_INT, &i_max, 1, 1 << 20, "subspace: i = 1..N (default: r1)"},
        {"--j", ARG_INT, &j_max, 1, 1 << 20, "subspace: j = 1..N (default: r2)"},
        {"--seed", ARG_INT, &seed, 0, 2147483647, "seed of the Gaussian baselines (default 1)"},
        {"--plot", ARG_FLAG, &plot, 0, 0, "draw the figures (gnuplot PNG + SVG)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "CPU threads for the SVDs (default 1; 0: all cores)"},
        {"--out", ARG_STRING, &outdir, 0, 0, "figure directory (default: plots/<sweep or run> beside the database)"},
        {"--db", ARG_STRING, &db, 0, 0, "results database (default " STORE_DEFAULT_PATH ")"},
        {"--base", ARG_STRING, &base, 0, 0, "base checkpoint of a RUN given as an adapter directory"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    ArgResult args;
    if (args_parse(argc, argv, specs, NSPECS, &args)) { args_result_free(&args); return -1; }
    if (args.help) { args_usage(stdout, USAGE, specs, NSPECS); args_result_free(&args); return EXIT_OK; }
    const char *sub = args.npositional > 0 ? args.positional[0] : "";
    int is_sub = !strcmp(sub, "subspace"), is_amp = !strcmp(sub, "amplification"), is_sweep = !strcmp(sub, "sweep");
    Options o = {.i_max = i_max, .j_max = j_max, .seed = seed, .plot = plot, .outdir = outdir, .db = db,
                 .base = base};
    // RUN may be an adapter directory (loralab's or PEFT's): analysed, printed and drawn, with
    // no database rows to attach the results to
    if (is_sub) { o.dir_a = adapter_dir_arg(ra); o.dir_b = adapter_dir_arg(rb); }
    if (is_amp) o.dir_a = adapter_dir_arg(run);
    int need_db = is_sweep || (is_sub && (!o.dir_a || !o.dir_b)) || (is_amp && !o.dir_a);
    int bad = 0;
    if (!is_sub && !is_amp && !is_sweep)
        bad = err_set("analyze: expected a subcommand: subspace, amplification or sweep%s%s%s",
                      *sub ? " (got '" : "", sub, *sub ? "')" : "");
    else if (args.npositional != (is_sweep ? 2 : 1))
        bad = err_set(is_sweep ? "analyze sweep: expected one sweep name" : "analyze %s: unexpected argument '%s'",
                      sub, args.npositional > 1 ? args.positional[1] : "");
    else if (is_sub && (!ra || !rb)) bad = err_set("analyze subspace: --a RUN and --b RUN are required");
    else if (is_sub && run) bad = err_set("analyze subspace: --run does not apply (use --a and --b)");
    else if (is_amp && !run) bad = err_set("analyze amplification: --run RUN is required");
    else if (is_amp && (ra || rb || i_max || j_max)) bad = err_set("analyze amplification: --a, --b, --i and --j do not apply");
    else if (is_sweep && (ra || rb || run || matrix || layers || i_max || j_max))
        bad = err_set("analyze sweep: runs, matrices, layers and grid limits come from the sweep's analyze: block");
    if (!bad && matrix) bad = analyze_parse_matrices(matrix, &o.matrices);
    if (!bad && layers) bad = analyze_parse_layers(layers, &o.layers, &o.nlayers);
    if (!bad && base && (is_sweep || !(o.dir_a || o.dir_b)))
        bad = err_set("analyze: --base applies to a RUN given as an adapter directory");
    if (!bad && need_db && access(db, F_OK) != 0) bad = err_set("results database %s does not exist", db);
    if (bad) { free(o.layers); args_result_free(&args); return -1; }
    // The matrices are small (d_model at most 1280): one thread avoids OpenMP barriers that
    // spin against other processes on a busy machine (seconds instead of a fraction of one).
    backend_open("cpu", &(BackendOptions){.threads = threads > 0 ? threads : -1});
    Store *st = NULL;
    if (need_db && store_open(&st, db, 0)) { free(o.layers); args_result_free(&args); return -1; }
    int rc;
    if (is_sweep) {
        rc = analyze_sweep(st, args.positional[1], o);
    } else if (is_sub) {
        int64_t a = 0, b = 0;
        rc = (!o.dir_a && run_find(st, ra, &a)) || (!o.dir_b && run_find(st, rb, &b)) ? -1
                                                                                      : analyze_subspace(st, a, b, &o);
    } else {
        int64_t id = 0;
        rc = !o.dir_a && run_find(st, run, &id) ? -1 : analyze_amplification(st, id, &o);
    }
    if (st) store_close(st);
    free(o.layers);
    args_result_free(&args);
    return rc ? -1 : EXIT_OK;
}
