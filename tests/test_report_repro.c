// tests/test_report_repro.c — `report reproduction` verdicts on hand-made databases, where the
// answer is known: a clear effect the paper's way is "reproduced", the same effect reversed is
// "not reproduced", noise larger than the effect is "inconclusive at this power", a missing
// sweep is "not tested"; amplification factors far above / below 1; φ far above the Gaussian
// baseline. And the report reads an old-schema database without writing it.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "harness/report_repro.h"
#include "harness/store.h"
#include "tests/tmpdir.h"

// Adds one done LoRA run with test and validation accuracy at step 100 (its best step).
static int64_t add_run(Store *s, int64_t sweep, const char *targets, int rank, int seed, double acc) {
    char hash[64], config[256];
    snprintf(hash, sizeof hash, "%s-%d-%d", targets, rank, seed);
    snprintf(config, sizeof config, "{\"lora\":{\"rank\":%d,\"targets\":\"%s\"},\"method\":\"lora\",\"seed\":%d}",
             rank, targets, seed);
    RunSpec sp = {.hash = hash, .config_json = config, .task = "spam", .metric = "accuracy", .method = "lora",
                  .targets = targets, .rank = rank, .alpha = 8, .seed = seed};
    int64_t id;
    int claimed;
    assert_int_equal(store_add_run(s, sweep, &sp, &id, NULL), 0);
    assert_int_equal(store_claim_run(s, id, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(store_add_metric(s, id, 100, "validation", "accuracy", acc), 0);
    assert_int_equal(store_add_metric(s, id, 100, "test", "accuracy", acc), 0);
    assert_int_equal(store_add_metric(s, id, 100, "test", "best_step", 100), 0);
    RunSummary sum;
    store_summary_init(&sum);
    sum.wall_seconds = 10;
    assert_int_equal(store_finish_run(s, id, &sum), 0);
    return id;
}

// Table 5's seven cells at five seeds: Wq,Wv r=4 at qv + noise, Wq r=8 and Wk r=8 at 0.80 + noise,
// the others at 0.85 + noise. Seed k's noise is noise * (k - 3) for Wq,Wv and its negative for
// the others, so the paired differences vary by 2 * noise per seed.
static void build_table5(const char *path, double qv, double noise) {
    Store *s;
    unlink(path);
    assert_int_equal(store_open(&s, path, 0), 0);
    int64_t sweep;
    assert_int_equal(store_add_sweep(s, "table5-budget", NULL, NULL, NULL, &sweep), 0);
    static const struct { const char *t; int r; double v; } CELLS[] = {
        {"q", 8, 0.80}, {"k", 8, 0.80}, {"v", 8, 0.85}, {"o", 8, 0.85}, {"q,k", 4, 0.85}, {"q,k,v,o", 2, 0.85}};
    for (int seed = 1; seed <= 5; seed++) {
        add_run(s, sweep, "q,v", 4, seed, qv + noise * (seed - 3));
        for (int c = 0; c < 6; c++) add_run(s, sweep, CELLS[c].t, CELLS[c].r, seed, CELLS[c].v - noise * (seed - 3) * (c + 1) / 3.0);
    }
    store_close(s);
}

// (not inlined: GCC 12 then takes the memstream's buffer for a dangling local)
__attribute__((noinline)) static char *report_text(const char *path) {
    Store *s;
    assert_int_equal(store_open_copy(&s, path), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(report_reproduction(f, s), 0);
    fclose(f);
    store_close(s);
    return text;
}

// The findings row of `id` ("| Table 5 T5a |..."), copied into buf.
static const char *row_of(const char *text, const char *id, char *buf, size_t cap) {
    const char *p = strstr(text, id);
    assert_non_null(p);
    const char *end = strchr(p, '\n');
    size_t n = (size_t)(end - p) < cap - 1 ? (size_t)(end - p) : cap - 1;
    memcpy(buf, p, n);
    buf[n] = 0;
    return buf;
}

static void assert_verdict(const char *text, const char *id, const char *verdict) {
    char row[8192], want[64];
    row_of(text, id, row, sizeof row);
    snprintf(want, sizeof want, "| **%s** |", verdict);
    if (!strstr(row, want)) fail_msg("%s: expected verdict '%s' in: %s", id, verdict, row);
}

static void test_table5_verdicts(void **state) {
    (void)state;
    const char *path = tmp_path("t5.db");
    // clear: Wq,Wv 0.92 against 0.80, small noise
    build_table5(path, 0.92, 0.002);
    char *text = report_text(path);
    assert_verdict(text, "Table 5 T5a |", "reproduced");
    assert_verdict(text, "Table 5 T5b |", "reproduced");   // every interval above -0.01
    // the hand-checked paired difference against Wq r=8: Wq,Wv 0.92 + 0.002 (k - 3), Wq 0.80 -
    // 0.002 (k - 3)/3, so the differences are 0.12 + (8/3) 0.001 (k - 3): mean 0.120
    char row[8192];
    row_of(text, "Table 5 T5a |", row, sizeof row);
    assert_non_null(strstr(row, "Wq,Wv r=4 − Wq r=8 +0.120 ["));
    assert_non_null(strstr(row, "Wq,Wv r=4: 0.920 ["));
    assert_non_null(strstr(row, "n=5"));
    // the other findings have no sweep or analysis here
    assert_verdict(text, "Table 6 T6a |", "not tested");
    assert_verdict(text, "Figure 3 F3 |", "not tested");
    assert_non_null(strstr(text, "35 done runs, 350.0 s"));
    free(text);

    // reversed: Wq,Wv 0.70, below Wq and Wk
    build_table5(path, 0.70, 0.002);
    text = report_text(path);
    assert_verdict(text, "Table 5 T5a |", "not reproduced");
    assert_verdict(text, "Table 5 T5b |", "not reproduced");
    free(text);

    // noise far larger than the effect
    build_table5(path, 0.81, 0.05);
    text = report_text(path);
    assert_verdict(text, "Table 5 T5a |", "inconclusive at this power");
    free(text);
}

static void test_analysis_verdicts(void **state) {
    (void)state;
    const char *path = tmp_path("an.db");
    unlink(path);
    Store *s;
    assert_int_equal(store_open(&s, path, 0), 0);
    int64_t sweep;
    assert_int_equal(store_add_sweep(s, "fig3-subspace", NULL, NULL, NULL, &sweep), 0);
    int64_t r8 = add_run(s, sweep, "q,v", 8, 1, 0.9), r64 = add_run(s, sweep, "q,v", 64, 1, 0.9);
    int64_t r4 = add_run(s, sweep, "q,v", 4, 1, 0.9);
    // φ(1,1) of the r = 8 / r = 64 pair: learned 0.6 + 0.01 layer, Gaussian 0.01, 4 layers, q and v
    for (int layer = 0; layer < 4; layer++)
        for (int m = 0; m < 2; m++) {
            double learned[4] = {0.6 + 0.01 * layer, 0.1, 0.1, 0.1}, random[4] = {0.01 + 0.001 * layer, 0.01, 0.01, 0.01};
            const char *mat = m ? "v" : "q";
            assert_int_equal(store_add_subspace(s, r8, r64, "learned", layer, mat, 2, 2, learned), 0);
            assert_int_equal(store_add_subspace(s, r8, r64, "random", layer, mat, 2, 2, random), 0);
        }
    // amplification: r = 4 far above 1, r = 64 far below 1
    for (int layer = 0; layer < 4; layer++) {
        AmplificationRow a = {r4, layer, "q", 4, 6.9, 60, 0.3 + 0.01 * layer, 21, 0.02, 0};
        a.amplification = a.norm_dw / a.norm_proj_dw;
        assert_int_equal(store_add_amplification(s, &a), 0);
        AmplificationRow b = {r64, layer, "q", 64, 0.5, 60, 2.0 + 0.1 * layer, 37, 0.3, 0};
        b.amplification = b.norm_dw / b.norm_proj_dw;
        assert_int_equal(store_add_amplification(s, &b), 0);
    }
    store_close(s);
    char *text = report_text(path);
    assert_verdict(text, "Figure 3 F3 |", "reproduced");
    assert_verdict(text, "Figure 4 F4a |", "not tested");   // no pair of seeds
    assert_verdict(text, "Table 7 T7a |", "reproduced");    // ΔW's projection above random
    assert_verdict(text, "Table 7 T7b |", "reproduced");    // and below W's own
    assert_verdict(text, "Table 7 T7c |", "reproduced");
    assert_verdict(text, "Table 7 T7d |", "not reproduced");
    char row[8192];
    row_of(text, "Table 7 T7d |", row, sizeof row);
    assert_non_null(strstr(row, "4 of 4 rows below 1"));
    free(text);
}

// An old-schema database: read through a migrated copy, the file itself untouched.
// Tuned values at an end of their list are counted per sweep: of three variants tuned over
// three learning rates, one picked the first value, one the middle and one the last.
static void test_tune_edges(void **state) {
    (void)state;
    const char *path = tmp_path("tune.db");
    build_table5(path, 0.92, 0.002);
    Store *s;
    assert_int_equal(store_open(&s, path, 0), 0);
    int64_t sweep = 1;   // table5-budget, the only sweep
    static const char *const VARIANT[3] = {"v-first", "v-middle", "v-last"};
    static const char *const SETTING[3] = {"train.lr=0.0003", "train.lr=0.001", "train.lr=0.003"};
    int position = 0;
    for (int v = 0; v < 3; v++) {
        for (int k = 0; k < 3; k++) {
            char targets[32];
            snprintf(targets, sizeof targets, "tune-%d-%d", v, k);
            int64_t id = add_run(s, sweep, targets, 8, 1, 0.9);
            assert_int_equal(store_add_tune(s, sweep, id, VARIANT[v], SETTING[k], position++), 0);
        }
        assert_int_equal(store_pick_tune(s, sweep, VARIANT[v], SETTING[v]), 0);
    }
    store_close(s);
    char *text = report_text(path);
    assert_non_null(strstr(text, "- tuned values that are the first or the last of their tuning list, where the best "
                                 "value may lie outside the list: table5-budget 2 of 3 variants (1 at the first value, "
                                 "1 at the last)\n"));
    free(text);
    // without tuning runs there is no such line
    build_table5(path, 0.92, 0.002);
    text = report_text(path);
    assert_null(strstr(text, "tuned values that are"));
    free(text);
}

static void test_old_schema_untouched(void **state) {
    (void)state;
    const char *path = tmp_path("v2.db");
    unlink(path);
    Store *s;
    assert_int_equal(store_open_at_version(&s, path, 2), 0);
    store_close(s);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char before[65536], after[65536];
    size_t nb = fread(before, 1, sizeof before, f);
    fclose(f);
    char *text = report_text(path);
    assert_non_null(strstr(text, "0 done runs"));
    free(text);
    f = fopen(path, "rb");
    size_t na = fread(after, 1, sizeof after, f);
    fclose(f);
    assert_int_equal(na, nb);
    assert_memory_equal(before, after, nb);
    // a missing database is an input error naming the file
    Store *none;
    assert_int_equal(store_open_copy(&none, tmp_path("missing.db")), -1);
    assert_non_null(strstr(err_msg(), "missing.db"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table5_verdicts),
        cmocka_unit_test(test_analysis_verdicts),
        cmocka_unit_test(test_tune_edges),
        cmocka_unit_test(test_old_schema_untouched),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
