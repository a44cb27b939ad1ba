// tests/test_progress.c — the sweep's progress view: the worker's lines parsed, the pace and
// ETAs worked out by hand, and the plain and live renderings.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/progress.h"

static void test_parse_and_eta(void **state) {
    (void)state;
    ProgressRun p;
    progress_start(&p, 7);
    assert_int_equal(p.phase, 0);
    assert_true(progress_eta(&p) < 0);
    // pretraining: steps 0 and 10 of 100, 10 s apart → 1 s per step, 89 steps left
    progress_parse(&p, "P 0 100 5.5000 90.0", 100.0);
    assert_int_equal(p.phase, 'P');
    assert_true(progress_eta(&p) < 0);   // one line: no pace yet
    progress_parse(&p, "P 10 100 4.2500 180.0", 110.0);
    assert_int_equal(p.step, 10);
    assert_int_equal(p.total, 100);
    assert_true(fabs(p.sec_per_step - 1.0) < 1e-12);
    assert_true(fabs(progress_eta(&p) - 89.0) < 1e-9);
    // training starts a new phase and a new pace: 20 steps in 4 s → 0.2 s per step
    progress_parse(&p, "T 0 50 0.7000 1000.0", 200.0);
    assert_int_equal(p.phase, 'T');
    assert_true(progress_eta(&p) < 0);
    progress_parse(&p, "V 20 accuracy 0.8125", 204.0);
    progress_parse(&p, "T 20 50 0.5000 1200.0", 204.0);
    assert_string_equal(p.val_name, "accuracy");
    assert_true(fabs(p.val_value - 0.8125) < 1e-12);
    assert_true(fabs(progress_eta(&p) - 29 * 0.2) < 1e-9);
    // the older "step loss" form and garbage
    progress_parse(&p, "30 0.4000", 206.0);
    assert_int_equal(p.step, 30);
    assert_true(fabs(p.loss - 0.4f) < 1e-6);
    progress_parse(&p, "nonsense", 207.0);
    assert_int_equal(p.step, 30);
}

static char *render(int live, const ProgressRun *const *runs, int n, const ProgressSweep *sw, int *drawn) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    progress_render(f, live, runs, n, sw, drawn);
    fclose(f);
    return buf;
}

static void test_render(void **state) {
    (void)state;
    ProgressRun a, b;
    progress_start(&a, 3);
    progress_parse(&a, "T 0 100 0.9000 500.0", 0.0);
    progress_parse(&a, "V 50 accuracy 0.75", 10.0);
    progress_parse(&a, "T 49 100 0.6000 800.0", 10.0);   // 49 steps in 10 s; 50 left
    progress_start(&b, 4);
    const ProgressRun *runs[2] = {&a, &b};
    // 1 settled of 4, 2 running, 1 pending: steps left 50 + 100 (the pending run at the mean
    // length of the runs seen; the starting run is not counted), at 10/49 s per step over 2
    // workers
    ProgressSweep sw = {4, 1, 0, 0, 2, 12.0, 0, 0};
    int drawn = 0;
    char *out = render(0, runs, 2, &sw, &drawn);
    char want[512];
    snprintf(want, sizeof want,
             "run 3: train step 50/100 loss 0.6000 | validation accuracy 0.7500 | 800 tok/s | eta 10s\n"
             "run 4: starting\n"
             "sweep: 1/4 settled (done 1, failed 0), 2 running, elapsed 12s, eta %.0fs\n", (50 + 100) * (10.0 / 49) / 2);
    assert_string_equal(out, want);
    assert_int_equal(drawn, 0);
    free(out);
    // live: lines cleared and redrawn; the next frame moves the cursor up over them
    out = render(1, runs, 2, &sw, &drawn);
    assert_int_equal(drawn, 3);
    assert_non_null(strstr(out, "\r\033[Krun 3: train step 50/100"));
    assert_null(strstr(out, "\033[3A"));
    free(out);
    out = render(1, runs, 1, &sw, &drawn);   // one run less: a line to clear below
    assert_true(!strncmp(out, "\033[3A", 4));
    assert_int_equal(drawn, 2);
    free(out);
}

// Between runs (one worker, its next run not past its first step) the ETA comes from the runs
// that ended: 2 pending at their mean 120 steps of 0.25 s, one worker.
static void test_eta_from_ended_runs(void **state) {
    (void)state;
    ProgressRun b;
    progress_start(&b, 5);
    const ProgressRun *runs[1] = {&b};
    ProgressSweep sw = {4, 1, 0, 0, 1, 40.0, 0, 0};
    int drawn = 0;
    char *out = render(0, runs, 1, &sw, &drawn);
    assert_string_equal(out, "run 5: starting\nsweep: 1/4 settled (done 1, failed 0), 1 running, elapsed 40s, eta ?\n");
    free(out);
    sw.past_sec_per_step = 0.25;
    sw.past_steps = 120;
    out = render(0, runs, 1, &sw, &drawn);
    assert_string_equal(out, "run 5: starting\nsweep: 1/4 settled (done 1, failed 0), 1 running, elapsed 40s, eta 60s\n");
    free(out);
    // with a running run's pace: the mean of both paces (0.25 and 0.15 s), lengths 100 and 120
    progress_parse(&b, "T 0 100 0.9000 500.0", 0.0);
    progress_parse(&b, "T 20 100 0.8000 500.0", 3.0);
    out = render(0, runs, 1, &sw, &drawn);
    char want[256];
    snprintf(want, sizeof want, "run 5: train step 21/100 loss 0.8000 | 500 tok/s | eta 12s\n"
             "sweep: 1/4 settled (done 1, failed 0), 1 running, elapsed 40s, eta %.0fs\n", (79 + 2 * 110) * 0.2);
    assert_string_equal(out, want);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_eta),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_eta_from_ended_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
