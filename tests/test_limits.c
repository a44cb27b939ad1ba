// tests/test_limits.c — bounds that keep hostile or mistaken input from crashing or
// exhausting memory: memory needs computed before allocating (and equal to what is then
// allocated), model dimensions, sweep-file YAML (depth, aliases, list length, documents,
// duplicate analyze keys), non-finite checkpoints, and text written into gnuplot scripts.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/cpu/backend_cpu.h"
#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/files.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "harness/memcheck.h"
#include "harness/plot.h"
#include "harness/sweepfile.h"
#include "tests/tmpdir.h"

// ----------------------------------------------------------------------------
// memory

// model_memory_need must say exactly what model_create + model_reserve then take.
static void check_need(const char *preset, MethodConfig mc, int B, int T) {
    ModelConfig cfg;
    assert_int_equal(model_preset(preset, &cfg), 0);
    MemoryReport need;
    if (model_memory_need(&cfg, &mc, B, T, &need)) fail_msg("%s", err_msg());
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    assert_non_null(m);
    model_reserve(m, B, T);
    MemoryReport got = model_memory(m);
    assert_int_equal(need.weights, got.weights);
    assert_int_equal(need.grads, got.grads);
    assert_int_equal(need.optimizer, got.optimizer);
    assert_int_equal(need.activations, got.activations);
    model_free(m);
}

static void test_memory_need_matches(void **state) {
    (void)state;
    MethodConfig mc;
    method_defaults(&mc);
    check_need("nano", mc, 4, 32);                      // ft
    mc.kind = METHOD_LORA;
    mc.lora_targets = (1 << TARGET_Q) | (1 << TARGET_V);
    check_need("nano", mc, 3, 64);
    mc.precision = PRECISION_BF16;
    check_need("micro", mc, 2, 16);
    mc.precision = PRECISION_FP32;
    mc.kind = METHOD_ADAPTER_H;
    mc.head = HEAD_CLS;
    mc.n_classes = 3;
    check_need("nano", mc, 5, 20);
    method_defaults(&mc);
    mc.kind = METHOD_PREFIX_EMBED;
    mc.prefix_lp = 4;
    mc.prefix_li = 2;
    check_need("nano", mc, 2, 40);   // 40 + 6 prefix positions of n_ctx 64
}

static void test_memory_need_bounds(void **state) {
    (void)state;
    MethodConfig mc;
    method_defaults(&mc);
    ModelConfig cfg;
    assert_int_equal(model_preset("gpt2-large", &cfg), 0);
    MemoryReport need;
    // gpt2-large FT at batch 2 x 1024: 24,014.6 MiB (the figure bench prints)
    assert_int_equal(model_memory_need(&cfg, &mc, 2, 1024, &need), 0);
    assert_true(fabs(memory_report_total(&need) / 1048576.0 - 24014.6) < 0.1);
    // a batch whose activations would wrap size_t around is reported as at least 2^62 bytes
    assert_int_equal(model_memory_need(&cfg, &mc, 1000000000, 1024, &need), 0);
    assert_int_equal(need.activations, (size_t)1 << 62);
    assert_true(memory_report_total(&need) > need.activations);
    // dimensions from a config.json: 1e9 is refused before any size is computed
    cfg.n_embd = 1000000000;
    cfg.n_head = 1;
    assert_int_equal(model_memory_need(&cfg, &mc, 1, 1, &need), -1);
    assert_non_null(strstr(err_msg(), "model dimensions too large (n_layer 36 of at most 1024, n_head 1 of 1024, n_embd 1000000000 of 65536"));
    assert_null(model_create(backend_cpu(), &cfg, &mc));
    // LORALAB_MEMORY_LIMIT lowers what is available; the message has both figures
    setenv("LORALAB_MEMORY_LIMIT", "1G", 1);
    assert_int_equal(memcheck_available(), (size_t)1 << 30);
    MemoryReport small = {1 << 20, 0, 0, 1 << 20};
    assert_int_equal(memcheck_fits("x", &small), 0);
    MemoryReport big = {(size_t)1 << 30, (size_t)1 << 29, (size_t)1 << 30, 0};
    assert_int_equal(memcheck_fits("this run", &big), -1);
    assert_string_equal(err_msg(), "this run needs 2560.0 MiB (weights 1024.0, gradients 512.0, optimizer 1024.0, "
                                   "activations 0.0 MiB); this machine has 1024.0 MiB available");
    unsetenv("LORALAB_MEMORY_LIMIT");
}

// config.json with a dimension of 1e9: refused while reading, naming the file.
static void test_config_json_dims(void **state) {
    (void)state;
    const char *dir = tmp_path("big");
    assert_int_equal(files_make_dirs(dir), 0);
    FILE *f = fopen(tmp_path("big/config.json"), "w");
    assert_non_null(f);
    fputs("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 1000000000, \"n_positions\": 64, \"vocab_size\": 256, "
          "\"layer_norm_epsilon\": 1e-5}", f);
    fclose(f);
    ModelConfig cfg;
    assert_int_equal(checkpoint_read_config(dir, &cfg), -1);
    assert_non_null(strstr(err_msg(), "big/config.json: field 'n_embd' must be an integer in [1, 65536], got 1000000000"));
}

// ----------------------------------------------------------------------------
// checkpoints

static void test_nonfinite(void **state) {
    (void)state;
    float a[4] = {1, 2, 3, 4}, b[3] = {0, NAN, 1};
    int sa[1] = {4}, sb[1] = {3};
    StTensorInfo info[2] = {{"a", 1, sa}, {"b", 1, sb}};
    const float *data[2] = {a, b};
    const char *path = tmp_path("nan.safetensors");
    assert_int_equal(st_write(path, info, data, 2, NULL), 0);
    SafeTensors *st = st_open(path);
    assert_non_null(st);
    assert_int_equal(st_find_nonfinite(st, st_find(st, "a")), -1);
    assert_int_equal(st_find_nonfinite(st, st_find(st, "b")), 1);
    st_close(st);
    b[1] = INFINITY;
    assert_int_equal(st_write(path, info, data, 2, NULL), 0);
    st = st_open(path);
    assert_int_equal(st_find_nonfinite(st, st_find(st, "b")), 1);
    st_close(st);
}

// ----------------------------------------------------------------------------
// sweep files

static void expect_refused(const char *yaml, const char *message) {
    Sweep s;
    if (sweep_load_string(yaml, "h.yaml", 0, NULL, &s) == 0) {
        sweep_free(&s);
        fail_msg("accepted: %.60s", yaml);
    }
    if (!strstr(err_msg(), message)) fail_msg("got '%s', expected '%s'", err_msg(), message);
}

static void test_yaml_bounds(void **state) {
    (void)state;
    expect_refused("analyze: &r {x: *r}\n", "h.yaml:1:10: analyze: nested more than 64 levels deep");
    expect_refused("analyze: &r [a, *r]\n", "analyze: nested more than 64 levels deep");
    char bomb[2048] = "analyze:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i < 8; i++) {
        char line[160];
        snprintf(line, sizeof line, "  a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                 i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        strcat(bomb, line);
    }
    expect_refused(bomb, "analyze: expands to more than 100000 values");
    char *deep = malloc(200010);
    strcpy(deep, "analyze: ");
    memset(deep + 9, '[', 100000);
    memset(deep + 100009, ']', 100000);
    deep[200009] = 0;
    expect_refused(deep, "h.yaml:1:73: nested more than 64 levels deep");
    free(deep);
    char *list = malloc(200000);
    strcpy(list, "grid:\n  seed: [");
    for (int i = 1; i <= 20001; i++) sprintf(list + strlen(list), "%d,", i);
    strcat(list, "0]\n");
    expect_refused(list, "a list of more than 20000 values (a sweep file runs at most 20000)");
    free(list);
    expect_refused("method: ft\n---\nmethod: lora\n", "h.yaml:2:1: a second YAML document ('---'); a sweep file holds one");
    expect_refused("analyze:\n  plot: true\n  plot: false\n", "h.yaml:3:3: analyze: key 'plot' is set twice in one mapping");
    expect_refused("analyze:\n  ? [a]\n  : 1\n", "analyze: expected a key, got a list");
    // one document with the explicit markers is fine
    Sweep s;
    if (sweep_load_string("---\nmethod: ft\n...\n", "h.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    sweep_free(&s);
}

// ----------------------------------------------------------------------------
// gnuplot text

static char *written(void (*fn)(FILE *, const char *), const char *s) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fn(f, s);
    fclose(f);
    return text;
}

static void test_gnuplot_text(void **state) {
    (void)state;
    char *t = written(plot_gp_string, "a'b\nsystem('x')\r\t#\x1b[31m");
    assert_string_equal(t, "'a''b system(''x'')  # [31m'");
    free(t);
    t = written(plot_gp_comment, "run\nsystem('touch x')\\");
    assert_string_equal(t, "run system('touch x') ");
    free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_need_matches),
        cmocka_unit_test(test_memory_need_bounds),
        cmocka_unit_test(test_config_json_dims),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_yaml_bounds),
        cmocka_unit_test(test_gnuplot_text),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
