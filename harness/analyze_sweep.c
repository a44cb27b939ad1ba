// harness/analyze_sweep.c — the interpreter of a sweep file's analyze: block: subspace and
// amplification blocks whose run patterns pick runs of the sweep (the format is in
// `loralab analyze --help`). It checks a block before a sweep runs (analyze_check) and runs
// it once every run is done (analyze_sweep, analyze_sweep_db).
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/errors.h"
#include "harness/analyze.h"
#include "harness/commands.h"
#include "harness/config.h"
#include "harness/run_select.h"
#include "harness/store.h"

// ----------------------------------------------------------------------------
// sweep: the analyze: block

static int check_keys(const json_t *obj, const char *what, const char *const *keys, int n) {
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v) {
        int k = 0;
        while (k < n && strcmp(keys[k], name)) k++;
        if (k == n) {
            char list[256] = "";
            for (int q = 0; q < n; q++) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, "%s%s", q ? ", " : "", keys[q]);
            }
            return err_set("%s: unknown key '%s'; valid keys: %s", what, name, list);
        }
    }
    return 0;
}

// matrix / layers / i / j / seed of a block into o (on top of the command line's).
static int block_options(const json_t *blk, const char *what, Options *o) {
    char text[1024];
    const json_t *v;
    if ((v = json_object_get(blk, "matrix"))) {
        if (selector_value_text(v, text, sizeof text) || analyze_parse_matrices(text, &o->matrices))
            return err_prefix("%s.matrix", what);
    }
    if ((v = json_object_get(blk, "layers"))) {
        if (selector_value_text(v, text, sizeof text) || analyze_parse_layers(text, &o->layers, &o->nlayers))
            return err_prefix("%s.layers", what);
    }
    static const char *const ints[3] = {"i", "j", "seed"};
    int *targets[3] = {&o->i_max, &o->j_max, &o->seed};
    for (int k = 0; k < 3; k++)
        if ((v = json_object_get(blk, ints[k]))) {
            if (!json_is_integer(v) || json_integer_value(v) < (k < 2 ? 1 : 0) || json_integer_value(v) > 1000000)
                return err_set("%s.%s: expected an integer >= %d", what, ints[k], k < 2 ? 1 : 0);
            *targets[k] = (int)json_integer_value(v);
        }
    return 0;
}

// Blocks: one mapping or a list of mappings.
static int block_list(const json_t *v, const char *what, const json_t ***out, int *n) {
    *out = NULL;
    *n = 0;
    if (json_is_object(v)) {
        *out = xmalloc(sizeof **out);
        (*out)[(*n)++] = v;
        return 0;
    }
    if (!json_is_array(v)) return err_set("%s: expected a mapping or a list of mappings", what);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_object(item)) { free(*out); *out = NULL; return err_set("%s[%zu]: expected a mapping", what, i); }
        *out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = item;
    }
    return 0;
}

typedef struct {
    RunRow *rows;
    int n;
    int done, skipped;   // analyses run; runs skipped because they are not done
    int check_only;      // validate keys and patterns against the runs, analyse nothing
} SweepState;

static int run_ready(SweepState *ss, const RunRow *r) {
    if (ss->check_only) return 0;
    if (!strcmp(r->status, "done")) return 1;
    fprintf(stderr, "loralab: analyze: skipping run %lld (status %s)\n", (long long)r->id, r->status);
    ss->skipped++;
    return 0;
}

// Whether a and b hold the same value in every key no selector names.
static int same_except(const RunConfig *a, const RunConfig *b, const Selector *sa, const Selector *sb) {
    for (int k = 0; k < config_num_keys(); k++) {
        int named = 0;
        for (int q = 0; q < sa->n && !named; q++) named = config_resolve_key(sa->key[q]) == k;
        for (int q = 0; q < sb->n && !named; q++) named = config_resolve_key(sb->key[q]) == k;
        if (!named && !config_key_equal(a, b, k)) return 0;
    }
    return 1;
}

static int sweep_subspace(Store *st, SweepState *ss, const json_t *blk, const char *what, Options o) {
    static const char *const keys[] = {"pairs", "matrix", "layers", "i", "j", "seed"};
    if (check_keys(blk, what, keys, 6) || block_options(blk, what, &o)) { free(o.layers); return -1; }
    const json_t *pairs = json_object_get(blk, "pairs");
    if (!json_is_array(pairs) || !json_array_size(pairs)) {
        free(o.layers);
        return err_set("%s.pairs: expected a list of {a: PATTERN, b: PATTERN}", what);
    }
    int rc = 0;
    for (size_t p = 0; p < json_array_size(pairs) && !rc; p++) {
        char pw[300], wa[320], wb[320];
        snprintf(pw, sizeof pw, "%s.pairs[%zu]", what, p);
        snprintf(wa, sizeof wa, "%s.a", pw);
        snprintf(wb, sizeof wb, "%s.b", pw);
        const json_t *pr = json_array_get(pairs, p);
        Selector sa = {0}, sb = {0};
        static const char *const pkeys[] = {"a", "b"};
        if (!json_is_object(pr) || !json_object_get(pr, "a") || !json_object_get(pr, "b")) {
            err_set("%s: expected {a: PATTERN, b: PATTERN}", pw);
            rc = -1;
        } else if (check_keys(pr, pw, pkeys, 2) || selector_from_json(json_object_get(pr, "a"), "", wa, &sa) ||
                   selector_from_json(json_object_get(pr, "b"), "", wb, &sb)) {
            rc = -1;
        }
        int na = 0, nb = 0, npairs = 0;
        for (int x = 0; x < ss->n && !rc; x++) {
            int ma, mb;
            if (selector_match(&sa, &ss->rows[x].rc, wa, &ma)) { rc = -1; break; }
            if (!ma || !config_uses_lora(&ss->rows[x].rc)) continue;
            na++;
            for (int y = 0; y < ss->n && !rc; y++) {
                if (y == x) continue;
                if (selector_match(&sb, &ss->rows[y].rc, wb, &mb)) { rc = -1; break; }
                if (!mb || !config_uses_lora(&ss->rows[y].rc) || !same_except(&ss->rows[x].rc, &ss->rows[y].rc, &sa, &sb))
                    continue;
                npairs++;
                if (!run_ready(ss, &ss->rows[x]) || !run_ready(ss, &ss->rows[y])) continue;
                rc = analyze_subspace(st, ss->rows[x].id, ss->rows[y].id, &o);
                if (rc == 0) ss->done++;
            }
        }
        for (int y = 0; y < ss->n && !rc; y++) {
            int mb;
            if (selector_match(&sb, &ss->rows[y].rc, wb, &mb)) { rc = -1; break; }
            nb += mb && config_uses_lora(&ss->rows[y].rc);
        }
        if (rc == 0 && (!na || !nb)) {
            err_set("%s: pattern %s matches no LoRA run of the sweep", !na ? wa : wb, !na ? "a" : "b");
            rc = -1;
        } else if (rc == 0 && !npairs) {
            err_set("%s: no run matched by a has a partner matched by b that differs only in the keys "
                    "the patterns name", pw);
            rc = -1;
        }
        selector_free(&sa);
        selector_free(&sb);
    }
    if (o.layers) free(o.layers);
    return rc;
}

static int sweep_amplification(Store *st, SweepState *ss, const json_t *blk, const char *what, Options o) {
    static const char *const keys[] = {"runs", "matrix", "layers", "seed"};
    if (check_keys(blk, what, keys, 4) || block_options(blk, what, &o)) { free(o.layers); return -1; }
    const json_t *runs = json_object_get(blk, "runs");
    const json_t **pats = NULL;
    int npat = 0, rc = 0;
    char rw[300];
    snprintf(rw, sizeof rw, "%s.runs", what);
    if (!runs) { err_set("%s: expected runs: PATTERN (or a list of patterns; {} = every LoRA run)", what); rc = -1; }
    else if (json_is_object(runs)) { pats = xmalloc(sizeof *pats); pats[npat++] = runs; }
    else if (block_list(runs, rw, &pats, &npat)) rc = -1;
    for (int p = 0; p < npat && !rc; p++) {
        char pw[320];
        snprintf(pw, sizeof pw, npat > 1 || json_is_array(runs) ? "%s[%d]" : "%s", rw, p);
        Selector s = {0};
        if (selector_from_json(pats[p], "", pw, &s)) { selector_free(&s); rc = -1; break; }
        int matched = 0;
        for (int x = 0; x < ss->n && !rc; x++) {
            int m;
            if (selector_match(&s, &ss->rows[x].rc, pw, &m)) { rc = -1; break; }
            if (!m || !config_uses_lora(&ss->rows[x].rc)) continue;
            matched++;
            if (!run_ready(ss, &ss->rows[x])) continue;
            rc = analyze_amplification(st, ss->rows[x].id, &o);
            if (rc == 0) ss->done++;
        }
        if (rc == 0 && !matched) { err_set("%s: pattern matches no LoRA run of the sweep", pw); rc = -1; }
        selector_free(&s);
    }
    free(pats);
    if (o.layers) free(o.layers);
    return rc;
}

static int sweep_blocks(Store *st, const char *name, const char *text, SweepState *ss, Options o);

int analyze_sweep(Store *st, const char *name, Options o) {
    int64_t sid;
    if (store_find_sweep(st, name, &sid)) return -1;
    sqlite3 *db = store_db(st);
    const char *sql = "SELECT analyze FROM sweeps WHERE id = ?";
    sqlite3_stmt *q = NULL;
    char *text = NULL;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(q, 1, sid), sql);
    int src = sqlite3_step(q);
    SQL_CHECK(db, src, sql);
    if (src == SQLITE_ROW && sqlite3_column_text(q, 0)) text = xstrdup((const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (!text || !strcmp(text, "null"))
        return free(text), err_set("sweep '%s' has no analyze: block (see `loralab analyze --help` for its format)", name);
    SweepState ss = {0};
    int rc = runs_load(st, sid, &ss.rows, &ss.n) ? -1 : sweep_blocks(st, name, text, &ss, o);
    free(text);
    free(ss.rows);
    return rc;
fail:
    sqlite3_finalize(q);
    return -1;
}

int analyze_check(const char *json, const char *sweep, const RunConfig *runs, int n) {
    SweepState ss = {.n = n, .check_only = 1};
    ss.rows = xcalloc((size_t)n + 1, sizeof *ss.rows);
    for (int i = 0; i < n; i++) {
        ss.rows[i].id = i + 1;
        ss.rows[i].rc = runs[i];
        snprintf(ss.rows[i].status, sizeof ss.rows[i].status, "pending");
    }
    Options o = {.seed = 1};
    int rc = sweep_blocks(NULL, sweep, json, &ss, o);
    free(ss.rows);
    return rc;
}

// The blocks of an analyze: block (JSON text) over the runs in ss; with ss->check_only, st
// may be NULL and nothing is analysed.
static int sweep_blocks(Store *st, const char *name, const char *text, SweepState *ss, Options o) {
    json_error_t e;
    json_t *root = json_loads(text, JSON_DECODE_ANY, &e);
    char what[200];
    snprintf(what, sizeof what, "sweep '%s': analyze", name);
    static const char *const keys[] = {"subspace", "amplification", "plot"};
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return err_set("%s: expected a mapping with subspace, amplification, plot", what);
    }
    if (check_keys(root, what, keys, 3)) { json_decref(root); return -1; }
    const json_t *pl = json_object_get(root, "plot");
    if (pl && !json_is_boolean(pl)) { json_decref(root); return err_set("%s.plot: expected true or false", what); }
    if (!pl || json_is_true(pl)) o.plot = 1;
    int rc = 0;
    static const char *const kinds[2] = {"subspace", "amplification"};
    int nblocks = 0;
    char *dir = ss->check_only ? NULL : analyze_plots_dir(&o, name);   // every figure of the sweep in one directory
    o.outdir = dir;
    for (int k = 0; k < 2 && !rc; k++) {
        const json_t *v = json_object_get(root, kinds[k]);
        if (!v) continue;
        const json_t **blocks;
        int nb;
        char kw[240];
        snprintf(kw, sizeof kw, "%s.%s", what, kinds[k]);
        if (block_list(v, kw, &blocks, &nb)) { rc = -1; break; }
        for (int b = 0; b < nb && !rc; b++) {
            char bw[260];
            snprintf(bw, sizeof bw, json_is_array(v) ? "%s[%d]" : "%s", kw, b);
            rc = k == 0 ? sweep_subspace(st, ss, blocks[b], bw, o) : sweep_amplification(st, ss, blocks[b], bw, o);
            nblocks++;
        }
        free(blocks);
    }
    if (rc == 0 && !nblocks) { err_set("%s: nothing to do (expected subspace: or amplification:)", what); rc = -1; }
    if (rc == 0 && !ss->check_only && !ss->done) {
        err_set("%s: nothing analysed: %d run(s) skipped because they are not done", what, ss->skipped);
        rc = -1;
    }
    if (rc == 0 && !ss->check_only)
        printf("analyze sweep %s: %d analyses, %d run(s) skipped\n", name, ss->done, ss->skipped);
    free(dir);
    json_decref(root);
    return rc;
}

int analyze_sweep_db(const char *db, const char *name) {
    // one thread for the SVDs, as `loralab analyze` by default
    backend_open("cpu", &(BackendOptions){.threads = 1});
    if (access(db, F_OK) != 0) return err_set("results database %s does not exist", db);
    Store *st;
    if (store_open(&st, db, 0)) return -1;
    Options o = {.seed = 1, .db = db};
    int rc = analyze_sweep(st, name, o);
    store_close(st);
    return rc;
}
