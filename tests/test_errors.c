// tests/test_errors.c — the class an error carries (core/errors.h): err_set records ERR_INPUT,
// err_raise another class, err_prefix keeps it; gnuplot failing or missing is ERR_TOOL, a bad
// figure name or directory ERR_INPUT; a verb that fails returns -1 to its caller instead of
// ending the process.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "harness/analyze_plot.h"
#include "harness/commands.h"
#include "harness/plot.h"
#include "tests/tmpdir.h"

static void test_set_is_input(void **state) {
    (void)state;
    assert_int_equal(err_raise(ERR_TOOL, "first"), -1);
    assert_int_equal(err_set("bad value %d", 7), -1);
    assert_string_equal(err_msg(), "bad value 7");
    assert_int_equal(err_class(), ERR_INPUT);
}

static void test_raise_keeps_class(void **state) {
    (void)state;
    const ErrClass classes[] = {ERR_INPUT, ERR_RUN, ERR_TOOL, ERR_INTERNAL};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(err_raise(classes[i], "failed: %s", "why"), -1);
        assert_string_equal(err_msg(), "failed: why");
        assert_int_equal(err_class(), classes[i]);
    }
}

static void test_prefix_keeps_class(void **state) {
    (void)state;
    err_raise(ERR_RUN, "loss became nan");
    assert_int_equal(err_prefix("run %d", 3), -1);
    assert_string_equal(err_msg(), "run 3: loss became nan");
    assert_int_equal(err_class(), ERR_RUN);
    err_set("no such file");
    err_prefix("sweep.yaml");
    assert_int_equal(err_class(), ERR_INPUT);
}

// A new message may quote the current one.
static void test_raise_quotes_current(void **state) {
    (void)state;
    err_set("cannot open base.safetensors");
    err_raise(ERR_RUN, "worker: pretraining failed: %s", err_msg());
    assert_string_equal(err_msg(), "worker: pretraining failed: cannot open base.safetensors");
    assert_int_equal(err_class(), ERR_RUN);
}

static void write_text(const char *path, const char *text, int mode) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

// PATH is set to dir while fn runs.
static int with_path(const char *dir, int (*fn)(void)) {
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("PATH", dir, 1);
    int rc = fn();
    if (saved) setenv("PATH", saved, 1); else unsetenv("PATH");
    free(saved);
    return rc;
}

static int run_script(void) { return plot_run_gnuplot(tmpdir, "fig.gp"); }

static int plot_layers(void) {
    const char *names[] = {"q"};
    const int layers[] = {0};
    const double values[] = {1.0};
    return analyze_plot_layers(tmp_path("figs"), "amp", "title", "y", 1, names, 1, layers, values);
}

static void test_gnuplot_is_tool(void **state) {
    (void)state;
    write_text(tmp_path("fig.gp"), "set output 'x'\n", 0644);
    // no gnuplot on PATH
    mkdir(tmp_path("empty"), 0755);
    assert_int_equal(with_path(tmp_path("empty"), run_script), -1);
    assert_int_equal(err_class(), ERR_TOOL);
    assert_non_null(strstr(err_msg(), "failed (exit status 127): cannot run gnuplot"));
    assert_int_equal(with_path(tmp_path("empty"), plot_layers), -1);
    assert_int_equal(err_class(), ERR_TOOL);
    // a gnuplot that fails
    mkdir(tmp_path("fake"), 0755);
    write_text(tmp_path("fake/gnuplot"), "#!/bin/sh\necho 'line 1: no' >&2\nexit 3\n", 0755);
    assert_int_equal(with_path(tmp_path("fake"), run_script), -1);
    assert_int_equal(err_class(), ERR_TOOL);
    assert_non_null(strstr(err_msg(), "failed (exit status 3): line 1: no"));
}

static void test_plot_input(void **state) {
    (void)state;
    ReportData d;
    memset(&d, 0, sizeof d);
    err_raise(ERR_TOOL, "stale");
    assert_int_equal(plot_draw(NULL, &d, "pie", tmpdir, 0), -1);
    assert_int_equal(err_class(), ERR_INPUT);
    assert_non_null(strstr(err_msg(), "unknown figure 'pie'"));
    const char *names[] = {"q"};
    const int layers[] = {0};
    const double values[] = {1.0};
    err_raise(ERR_TOOL, "stale");
    assert_int_equal(analyze_plot_layers("/proc/loralab/x", "amp", "t", "y", 1, names, 1, layers, values), -1);
    assert_int_equal(err_class(), ERR_INPUT);
}

// A verb returns its failure to main (harness/main.c) with the class set: the test process
// is still here to look at it.
static void test_verb_returns(void **state) {
    (void)state;
    char *bad_flag[] = {"params", "--no-such-flag", NULL};
    assert_int_equal(cmd_params(2, bad_flag), -1);
    assert_int_equal(err_class(), ERR_INPUT);
    assert_non_null(strstr(err_msg(), "--no-such-flag"));
    char *bad_figure[] = {"plot", "pie", "--db", (char *)tmp_path("none.db"), NULL};
    assert_int_equal(cmd_plot(4, bad_figure), -1);
    assert_int_equal(err_class(), ERR_INPUT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_is_input),
        cmocka_unit_test(test_raise_keeps_class),
        cmocka_unit_test(test_prefix_keeps_class),
        cmocka_unit_test(test_raise_quotes_current),
        cmocka_unit_test(test_gnuplot_is_tool),
        cmocka_unit_test(test_plot_input),
        cmocka_unit_test(test_verb_returns),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
