// tests/test_report.c — report statistics and tables on hand-made rows, checked by hand.
// The standard deviation is the sample one (divisor n - 1): seeds 0.5, 0.7 → mean 0.6,
// std sqrt(((0.5-0.6)² + (0.7-0.6)²) / 1) = sqrt(0.02) = 0.141421...
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
#include "harness/report.h"
#include "harness/store.h"
#include "tests/tmpdir.h"


// cmocka 1.1.5 has no assert_double_equal
#define assert_near(a, b, tol) near_((a), (b), (tol), __LINE__)
static void near_(double a, double b, double tol, int line) {
    if (!(fabs(a - b) <= tol)) fail_msg("line %d: %.17g differs from %.17g by more than %g", line, a, b, tol);
}


// ---- statistics and formatting ----

static void test_stat_by_hand(void **state) {
    (void)state;
    double two[2] = {0.5, 0.7};
    ReportStat st = report_stat(two, 2);
    assert_int_equal(st.n, 2);
    assert_near(st.mean, 0.6, 1e-12);
    assert_near(st.std, sqrt(0.02), 1e-12);   // 0.1414..., not the population 0.1
    double four[4] = {1, 2, 3, 4};   // Σ(x-2.5)² = 5, /3
    st = report_stat(four, 4);
    assert_near(st.mean, 2.5, 1e-12);
    assert_near(st.std, 1.2909944487358056, 1e-12);
    double with_nan[3] = {NAN, 0.8, NAN};
    st = report_stat(with_nan, 3);
    assert_int_equal(st.n, 1);
    assert_near(st.mean, 0.8, 1e-12);
    assert_near(st.std, 0.0, 0);
    st = report_stat(with_nan, 1);
    assert_int_equal(st.n, 0);
    assert_true(isnan(st.mean));

    char buf[64];
    report_format_stat(buf, sizeof buf, report_stat(two, 2));
    assert_string_equal(buf, "0.600 ± 0.141");
    report_format_stat(buf, sizeof buf, report_stat(with_nan, 3));
    assert_string_equal(buf, "0.800");
    report_format_stat(buf, sizeof buf, report_stat(with_nan, 1));
    assert_string_equal(buf, "-");
    report_format_targets(buf, sizeof buf, "q,k,v,o");
    assert_string_equal(buf, "Wq,Wk,Wv,Wo");
    report_format_targets(buf, sizeof buf, "q");
    assert_string_equal(buf, "Wq");
    report_format_targets(buf, sizeof buf, "c_fc,q");
    assert_string_equal(buf, "c_fc,q");
    // config labels: LoRA part first, then the stored label (other methods, precision)
    ReportRun lora = {.targets = "q,v", .rank = 8}, lora16 = {.targets = "q,v", .rank = 8, .label = "bf16"};
    ReportRun combo = {.targets = "q", .rank = 4, .label = "lp=16 li=0"}, adapter = {.rank = -1, .label = "r=8"};
    ReportRun plain = {.rank = -1};
    report_config_label(buf, sizeof buf, &lora);
    assert_string_equal(buf, "Wq,Wv r=8");
    report_config_label(buf, sizeof buf, &lora16);
    assert_string_equal(buf, "Wq,Wv r=8 bf16");
    report_config_label(buf, sizeof buf, &combo);
    assert_string_equal(buf, "Wq r=4 lp=16 li=0");
    report_config_label(buf, sizeof buf, &adapter);
    assert_string_equal(buf, "r=8");
    report_config_label(buf, sizeof buf, &plain);
    assert_string_equal(buf, "");
}

static void test_table_alignment(void **state) {
    (void)state;
    char *cells[6] = {"a", "long header", "ε", "x", "wide cell", ""};
    int right[2] = {0, 1};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    report_table_print(f, 3, 2, cells, right);
    fclose(f);
    // ε is one character wide though two bytes; the empty last cell leaves no blanks
    assert_string_equal(text, "a          long header\n"
                              "---------  -----------\n"
                              "ε                    x\n"
                              "wide cell\n");
    free(text);
}

// ---- tables from a database ----

typedef struct {
    const char *hash, *config, *targets, *method, *metric;
    int rank, seed;
    int64_t trainable;
    const char *split;
    double value, baseline;
} Row;

// Adds, claims and finishes one run with its main metric (and baseline when not NaN).
static void add_done(Store *s, int64_t sweep, const Row *row) {
    RunSpec sp = {.hash = row->hash, .config_json = row->config, .task = "spam",
                  .metric = row->metric, .method = row->method, .targets = row->targets,
                  .rank = row->rank, .alpha = -1, .seed = row->seed};
    int64_t id;
    int claimed;
    assert_int_equal(store_add_run(s, sweep, &sp, &id, NULL), 0);
    assert_int_equal(store_claim_run(s, id, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 1);
    // an earlier, worse value at a lower step: the latest step must win
    assert_int_equal(store_add_metric(s, id, 10, row->split, "accuracy", 0.01), 0);
    assert_int_equal(store_add_metric(s, id, 100, row->split, "accuracy", row->value), 0);
    assert_int_equal(store_add_metric(s, id, 100, "train", "accuracy", 0.99), 0);   // ignored split
    if (!isnan(row->baseline))
        assert_int_equal(store_add_metric(s, id, 100, "test", "baseline_accuracy", row->baseline), 0);
    RunSummary sum;
    store_summary_init(&sum);
    sum.trainable_params = row->trainable;
    assert_int_equal(store_finish_run(s, id, &sum), 0);
}

static char *print_report(Store *s, const ReportData *d, const char *name) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(report_print(f, s, d, name), 0);
    fclose(f);
    return text;
}

static void test_tables(void **state) {
    (void)state;
    const char *path = tmp_path("r.db");
    Store *s;
    assert_int_equal(store_open(&s, path, 0), 0);
    int64_t sweep, other;
    assert_int_equal(store_add_sweep(s, "t6", NULL, NULL, NULL, &sweep), 0);
    assert_int_equal(store_add_sweep(s, "other", NULL, NULL, NULL, &other), 0);
    const Row rows[] = {
        // Wq r=1: seeds 0.5, 0.7 → 0.600 ± 0.141; the config differs only in the seeds
        {"a1", "{\"lora\":{\"rank\":1,\"targets\":\"q\"},\"seed\":1,\"train\":{\"seed\":1}}", "q", "lora",
         "accuracy", 1, 1, 100, "test", 0.5, 0.55},
        {"a2", "{\"lora\":{\"rank\":1,\"targets\":\"q\"},\"seed\":2,\"train\":{\"seed\":2}}", "q", "lora",
         "accuracy", 1, 2, 100, "test", 0.7, 0.55},
        // Wq r=4: one seed, taken from validation (no test rows); metric inferred (NULL)
        {"a3", "{\"lora\":{\"rank\":4,\"targets\":\"q\"},\"seed\":1}", "q", "lora", NULL, 4, 1, 400,
         "validation", 0.9, NAN},
        // Wq,Wv r=1: two seeds, but the second also changes lr: the cell pools 2 groups
        {"a4", "{\"lora\":{\"rank\":1,\"targets\":\"q,v\"},\"seed\":1,\"lr\":1}", "q,v", "lora",
         "accuracy", 1, 1, 200, "test", 0.8, 0.55},
        {"a5", "{\"lora\":{\"rank\":1,\"targets\":\"q,v\"},\"seed\":2,\"lr\":2}", "q,v", "lora",
         "accuracy", 1, 2, 200, "test", 0.6, 0.55},
        // a baseline method: full fine-tuning, seeds 0.75, 0.85 → 0.800 ± 0.071
        {"f1", "{\"method\":\"ft\",\"seed\":1}", NULL, "ft", "accuracy", -1, 1, 5000, "test", 0.75, 0.55},
        {"f2", "{\"method\":\"ft\",\"seed\":2}", NULL, "ft", "accuracy", -1, 2, 5000, "test", 0.85, 0.55},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) add_done(s, sweep, &rows[k]);
    // a failed run and a run of another sweep are left out
    RunSpec failed = {.hash = "x1", .config_json = "{\"x\":1}", .task = "spam", .method = "lora",
                      .targets = "q", .rank = 64, .alpha = -1, .seed = 1};
    int64_t id;
    assert_int_equal(store_add_run(s, sweep, &failed, &id, NULL), 0);
    assert_int_equal(store_fail_run(s, id, RUN_FAILED, "boom"), 0);
    Row elsewhere = {"o1", "{\"o\":1}", "q", "lora", "accuracy", 8, 1, 800, "test", 0.1, NAN};
    add_done(s, other, &elsewhere);

    ReportData d;
    assert_int_equal(report_load(s, "t6", &d), 0);
    assert_int_equal(d.n, 8);
    assert_string_equal(d.runs[2].metric, "accuracy");   // inferred
    assert_string_equal(d.runs[2].split, "validation");
    assert_near(d.runs[2].value, 0.9, 1e-12);
    assert_string_equal(d.runs[0].group, d.runs[1].group);   // seeds removed at every depth
    assert_string_not_equal(d.runs[3].group, d.runs[4].group);

    int ngroups;
    ReportStat st = report_cell_stat(&d, "spam", "q", 1, &ngroups);
    assert_int_equal(st.n, 2);
    assert_near(st.mean, 0.6, 1e-12);
    assert_near(st.std, 0.1414213562373095, 1e-12);
    assert_int_equal(ngroups, 1);
    report_cell_stat(&d, "spam", "q,v", 1, &ngroups);
    assert_int_equal(ngroups, 2);

    char *t6 = print_report(s, &d, "table6");
    assert_string_equal(t6,
        "table6: spam, accuracy (test where recorded, else validation), mean ± std, n, 95% t interval over seeds\n"
        "\n"
        "weight type  r=1                                r=4\n"
        "-----------  ---------------------------------  ---------\n"
        "Wq           0.600 ± 0.141 n=2 [-0.671, 1.871]  0.900 n=1\n"
        "Wq,Wv        0.700 ± 0.141 n=2 [-0.571, 1.971]  -\n"
        "note: 1 cell(s) pool runs that differ in more than the seed\n"
        "\n"
        "left out: 1 failed\n");
    free(t6);

    char *t5 = print_report(s, &d, "table5");
    assert_string_equal(t5,
        "table5: spam, accuracy (test where recorded, else validation), mean ± std, n, 95% t interval over seeds\n"
        "\n"
        "weight type  Wq                                 Wq         Wq,Wv\n"
        "-----------  ---------------------------------  ---------  ---------------------------------\n"
        "rank r       1                                  4          1\n"
        "trainable    100                                400        200\n"
        "spam         0.600 ± 0.141 n=2 [-0.671, 1.871]  0.900 n=1  0.700 ± 0.141 n=2 [-0.571, 1.971]\n"
        "\n"
        "left out: 1 failed\n");
    free(t5);

    char *m = print_report(s, &d, "methods");
    // the two Wq,Wv r=1 rows differ in "lr": a column shows it, so they never look alike
    const char *title = "accuracy (test where recorded, else validation)";
    char want[2048];
    snprintf(want, sizeof want,
             "methods: spam, %s, mean ± std, 95%% t interval over seeds\n\n"
             "method  config     lr  trainable  head  %s  95%% CI           n  baseline  not converged\n"
             "------  ---------  --  ---------  ----  -----------------------------------------------  ---------------  -  --------  -------------\n"
             "lora    Wq r=1     -         100     -  0.600 ± 0.141                                    [-0.671, 1.871]  2     0.550\n"
             "lora    Wq r=4     -         400     -  0.900                                            -                1         -\n"
             "lora    Wq,Wv r=1  1         200     -  0.800                                            -                1     0.550\n"
             "lora    Wq,Wv r=1  2         200     -  0.600                                            -                1     0.550\n"
             "ft                 -        5000     -  0.800 ± 0.071                                    [0.165, 1.435]   2     0.550\n"
             "\nleft out: 1 failed\n", title, title);
    assert_string_equal(m, want);
    free(m);

    char *runs = print_report(s, &d, "runs");
    assert_non_null(strstr(runs, "runs: 8\n"));
    assert_non_null(strstr(runs, "failed"));
    assert_non_null(strstr(runs, "boom"));
    free(runs);

    FILE *null = fopen("/dev/null", "w");
    assert_int_equal(report_print(null, s, &d, "table9"), -1);
    assert_non_null(strstr(err_msg(), "unknown table 'table9' (expected one of: table6, table5, methods, runs, table7, tune)"));
    assert_int_equal(report_print(null, s, &d, "table7"), -1);
    assert_non_null(strstr(err_msg(), "no amplification results"));
    fclose(null);
    report_data_free(&d);

    // every run in the database when no sweep is named; an unknown sweep is an error
    assert_int_equal(report_load(s, NULL, &d), 0);
    assert_int_equal(d.n, 9);
    assert_string_equal(d.sweep, "all");
    report_data_free(&d);
    assert_int_equal(report_load(s, "nope", &d), -1);
    assert_non_null(strstr(err_msg(), "no sweep named 'nope' (sweeps: t6, other)"));
    store_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_by_hand),
        cmocka_unit_test(test_table_alignment),
        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
