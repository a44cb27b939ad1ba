// tests/test_checkpoint.c — safetensors reader/writer, checkpoint and adapter directories.
//
// Malformed files are generated here, byte by byte, so every error path is exercised and its
// message checked for the file and the tensor or field it names.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/backend.h"
#include "core/cpu/backend_cpu.h"
#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "tests/tmpdir.h"

// ----------------------------------------------------------------------------
// helpers


static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *path) {
    if (mkdir(path, 0777) != 0) {
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
    }
}

static void write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

// A safetensors file by hand: declared header length, header text, then data bytes.
static void write_raw_len(const char *path, uint64_t declared, const char *header,
                          const void *data, size_t data_len) {
    size_t hl = strlen(header);
    size_t total = 8 + hl + data_len;
    uint8_t *buf = malloc(total);
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)(declared >> (8 * k));
    memcpy(buf + 8, header, hl);
    if (data_len) memcpy(buf + 8 + hl, data, data_len);
    write_bytes(path, buf, total);
    free(buf);
}

static void write_raw(const char *path, const char *header, const void *data, size_t data_len) {
    write_raw_len(path, strlen(header), header, data, data_len);
}

// Asserts the last error message contains every given fragment (NULL-terminated).
static void expect_msg(const char *first, ...) {
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        if (!strstr(err_msg(), s)) fail_msg("error message '%s' lacks '%s'", err_msg(), s);
    va_end(ap);
}

// Opening path must fail with a message holding every fragment.
#define EXPECT_OPEN_FAILS(path, ...)                         \
    do {                                                     \
        err_set("%s", "");                                   \
        SafeTensors *st_ = st_open(path);                    \
        if (st_) { st_close(st_); fail_msg("st_open(%s) succeeded", path); } \
        expect_msg(path, __VA_ARGS__, NULL);                 \
    } while (0)

// ----------------------------------------------------------------------------
// safetensors: writing and reading back

static void test_st_round_trip(void **state) {
    (void)state;
    const char *path = tmp_path("rt.safetensors");
    float a[6], b[12], scalar = -0.0f;
    for (int i = 0; i < 6; i++) a[i] = (float)i * 0.1f - 0.25f;
    for (int i = 0; i < 12; i++) b[i] = 1.0f / (float)(i + 1);
    a[5] = INFINITY;
    b[11] = 1e-42f;   // subnormal survives bit-identically
    int sa[2] = {2, 3}, sb[3] = {2, 3, 2}, se[2] = {0, 5};
    StTensorInfo t[4] = {{"a.weight", 2, sa}, {"b", 3, sb}, {"empty", 2, se}, {"scalar", 0, NULL}};
    const float *data[4] = {a, b, NULL, &scalar};
    const char *meta[] = {"format", "pt", "note", "h\"i", NULL};
    assert_int_equal(st_write(path, t, data, 4, meta), 0);

    // the header is padded with spaces to a multiple of 8 bytes
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t lenbuf[8];
    assert_int_equal(fread(lenbuf, 1, 8, f), 8);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | lenbuf[k];
    assert_int_equal(hl % 8, 0);
    char *header = calloc(1, hl + 1);
    assert_int_equal(fread(header, 1, hl, f), hl);
    fclose(f);
    assert_int_equal(header[0], '{');
    size_t end = strlen(header);
    while (end > 0 && header[end - 1] == ' ') end--;
    assert_int_equal(header[end - 1], '}');
    free(header);

    SafeTensors *st = st_open(path);
    if (!st) fail_msg("%s", err_msg());
    assert_int_equal(st_count(st), 4);
    assert_string_equal(st_name(st, 0), "a.weight");
    assert_string_equal(st_name(st, 3), "scalar");
    assert_int_equal(st_find(st, "b"), 1);
    assert_int_equal(st_find(st, "nope"), -1);
    assert_int_equal(st_ndim(st, 1), 3);
    assert_int_equal(st_shape(st, 1)[2], 2);
    assert_int_equal(st_numel(st, 2), 0);
    assert_int_equal(st_numel(st, 3), 1);
    assert_int_equal(st_dtype(st, 0), ST_F32);
    char sbuf[64];
    assert_string_equal(st_shape_str(st, 1, sbuf, sizeof sbuf), "[2, 3, 2]");
    assert_string_equal(st_metadata(st, "format"), "pt");
    assert_string_equal(st_metadata(st, "note"), "h\"i");
    assert_null(st_metadata(st, "absent"));
    float ra[6], rb[12], rs;
    assert_int_equal(st_read_f32(st, 0, ra, 6), 0);
    assert_int_equal(st_read_f32(st, 1, rb, 12), 0);
    assert_int_equal(st_read_f32(st, 3, &rs, 1), 0);
    assert_memory_equal(ra, a, sizeof a);
    assert_memory_equal(rb, b, sizeof b);
    assert_memory_equal(&rs, &scalar, sizeof rs);
    assert_int_equal(st_read_f32(st, 2, ra, 0), 0);
    // a numel mismatch is reported, not overrun
    assert_int_equal(st_read_f32(st, 0, ra, 5), -1);
    expect_msg(path, "'a.weight'", "6 elements", NULL);
    st_close(st);

    // no temporary file left behind
    struct stat sbuf2;
    assert_int_not_equal(stat(tmp_path("rt.safetensors.tmp"), &sbuf2), 0);
}

static void test_st_duplicate_names_refused(void **state) {
    (void)state;
    const char *path = tmp_path("dup.safetensors");
    int s[1] = {1};
    float x = 1;
    StTensorInfo t[2] = {{"x", 1, s}, {"x", 1, s}};
    const float *data[2] = {&x, &x};
    assert_int_equal(st_write(path, t, data, 2, NULL), -1);
    expect_msg(path, "'x'", "duplicated", NULL);
}

// F16 and BF16 against values converted by hand from their bit patterns.
static void test_st_half_precision(void **state) {
    (void)state;
    // F16: sign | 5-bit exponent (bias 15) | 10-bit mantissa
    static const struct { uint16_t bits; float value; } f16[] = {
        {0x3C00, 1.0f},                   // 2^0
        {0xC000, -2.0f},                  // -(2^1)
        {0x3555, 0.333251953125f},        // 2^-2 * (1 + 341/1024)
        {0x7BFF, 65504.0f},               // largest finite: 2^15 * (1 + 1023/1024)
        {0x0400, 6.103515625e-05f},       // smallest normal 2^-14
        {0x0001, 5.9604644775390625e-08f},// smallest subnormal 2^-24
        {0x83FF, -6.097555160522461e-05f},// largest subnormal, negative: -(1023 * 2^-24)
        {0x0000, 0.0f},
    };
    // BF16: the top 16 bits of a float32
    static const struct { uint16_t bits; float value; } bf16[] = {
        {0x3F80, 1.0f},
        {0xC040, -3.0f},
        {0x3EAB, 0.333984375f},           // 2^-2 * (1 + 43/128)
        {0x4780, 65536.0f},               // 2^16
        {0x0001, 9.183549615799121e-41f}, // 2^-133, a float32 subnormal
    };
    enum { N16 = sizeof f16 / sizeof f16[0], NB = sizeof bf16 / sizeof bf16[0] };
    uint8_t data[2 * (N16 + 3 + NB)];
    size_t off = 0;
    for (int i = 0; i < N16; i++) { data[off++] = f16[i].bits & 0xff; data[off++] = f16[i].bits >> 8; }
    static const uint16_t specials[3] = {0x7C00, 0xFC00, 0x7E00};   // +inf, -inf, nan
    for (int i = 0; i < 3; i++) { data[off++] = specials[i] & 0xff; data[off++] = specials[i] >> 8; }
    for (int i = 0; i < NB; i++) { data[off++] = bf16[i].bits & 0xff; data[off++] = bf16[i].bits >> 8; }
    char header[512];
    snprintf(header, sizeof header,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
             "\"s\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[%d,%d]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,%d],\"data_offsets\":[%d,%d]}}",
             N16, 2 * N16, 2 * N16, 2 * N16 + 6, NB, 2 * N16 + 6, 2 * (N16 + 3 + NB));
    const char *path = tmp_path("half.safetensors");
    write_raw(path, header, data, sizeof data);
    SafeTensors *st = st_open(path);
    if (!st) fail_msg("%s", err_msg());
    float out[16];
    assert_int_equal(st_dtype(st, 0), ST_F16);
    assert_int_equal(st_read_f32(st, 0, out, N16), 0);
    for (int i = 0; i < N16; i++)
        if (out[i] != f16[i].value) fail_msg("F16 0x%04x: got %.10g, want %.10g", f16[i].bits, out[i], f16[i].value);
    assert_int_equal(st_read_f32(st, 1, out, 3), 0);
    assert_true(isinf(out[0]) && out[0] > 0);
    assert_true(isinf(out[1]) && out[1] < 0);
    assert_true(isnan(out[2]));
    assert_int_equal(st_dtype(st, 2), ST_BF16);
    assert_int_equal(st_read_f32(st, 2, out, NB), 0);
    for (int i = 0; i < NB; i++)
        if (out[i] != bf16[i].value) fail_msg("BF16 0x%04x: got %.10g, want %.10g", bf16[i].bits, out[i], bf16[i].value);
    st_close(st);
}

// An unaligned data buffer (header length not a multiple of 8) and an F64 tensor still read.
static void test_st_unaligned_and_f64(void **state) {
    (void)state;
    double d[2] = {0.5, -1.25e10};
    const char *path = tmp_path("f64.safetensors");
    write_raw(path, "{\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", d, sizeof d);
    SafeTensors *st = st_open(path);
    if (!st) fail_msg("%s", err_msg());
    float out[2];
    assert_int_equal(st_read_f32(st, 0, out, 2), 0);
    assert_true(out[0] == 0.5f && out[1] == -1.25e10f);
    st_close(st);
}

// ----------------------------------------------------------------------------
// safetensors: malformed files

static const float four[4] = {1, 2, 3, 4};

static void test_st_short_file(void **state) {
    (void)state;
    const char *path = tmp_path("short.safetensors");
    write_bytes(path, "\x10\x00\x00", 3);
    EXPECT_OPEN_FAILS(path, "too short");
    EXPECT_OPEN_FAILS(tmp_path("absent.safetensors"), "cannot open");
}

static void test_st_header_length_past_end(void **state) {
    (void)state;
    const char *path = tmp_path("hlen.safetensors");
    const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    write_raw_len(path, strlen(h) + 17, h, four, sizeof four);   // one byte too many
    EXPECT_OPEN_FAILS(path, "header length", "past the end of the file");
    write_raw_len(path, UINT64_MAX, h, four, sizeof four);       // would overflow size arithmetic
    EXPECT_OPEN_FAILS(path, "header length 18446744073709551615", "past the end");
}

static void test_st_invalid_json(void **state) {
    (void)state;
    const char *path = tmp_path("json.safetensors");
    write_raw(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "not valid JSON");
    write_raw(path, "[1, 2]", NULL, 0);
    EXPECT_OPEN_FAILS(path, "header must be a JSON object");
    write_raw(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", four, 8);
    EXPECT_OPEN_FAILS(path, "not valid JSON", "duplicate");
    write_raw(path, "{\"__metadata__\":{\"format\":3}}", NULL, 0);
    EXPECT_OPEN_FAILS(path, "__metadata__", "'format'", "must be a string");
}

static void test_st_bad_fields(void **state) {
    (void)state;
    const char *path = tmp_path("fields.safetensors");
    write_raw(path, "{\"w\":[1]}", NULL, 0);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "expected an object");
    write_raw(path, "{\"w\":{\"shape\":[4],\"data_offsets\":[0,16]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "missing 'dtype'");
    write_raw(path, "{\"w\":{\"dtype\":32,\"shape\":[4],\"data_offsets\":[0,16]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "'dtype' must be a string");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "missing 'shape'");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "shape[1]", "non-negative");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "shape[0]", "got a string");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "missing 'data_offsets'");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "'data_offsets' must be an array of two integers");
    write_raw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'w'", "begin <= end");
}

static void test_st_unknown_dtype(void **state) {
    (void)state;
    const char *path = tmp_path("dtype.safetensors");
    write_raw(path, "{\"h.0.ln_1.weight\":{\"dtype\":\"F31\",\"shape\":[4],\"data_offsets\":[0,16]}}",
              four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'h.0.ln_1.weight'", "unknown dtype 'F31'", "BF16");
}

static void test_st_offsets_past_end(void **state) {
    (void)state;
    const char *path = tmp_path("offs.safetensors");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}}",
              four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'wte.weight'", "[8, 20]", "past the end of the data buffer (16 bytes)");
}

static void test_st_overlapping_offsets(void **state) {
    (void)state;
    const char *path = tmp_path("overlap.safetensors");
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'b'", "overlap tensor 'a'");
    // empty tensors overlap nothing; adjacent tensors are fine
    write_raw(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              four, sizeof four);
    SafeTensors *st = st_open(path);
    if (!st) fail_msg("%s", err_msg());
    st_close(st);
}

static void test_st_size_mismatch(void **state) {
    (void)state;
    const char *path = tmp_path("size.safetensors");
    write_raw(path, "{\"h.1.attn.c_attn.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}",
              four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'h.1.attn.c_attn.weight'", "[2, 3]", "needs 24 bytes", "hold 16");
    write_raw(path, "{\"x\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,16]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'x'", "F16 needs 8 bytes");
    write_raw(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],"
                    "\"data_offsets\":[0,16]}}", four, sizeof four);
    EXPECT_OPEN_FAILS(path, "tensor 'x'", "too large");
}

static void test_st_integer_not_readable(void **state) {
    (void)state;
    const char *path = tmp_path("int.safetensors");
    write_raw(path, "{\"ids\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}}", four, sizeof four);
    SafeTensors *st = st_open(path);
    if (!st) fail_msg("%s", err_msg());
    float out[4];
    assert_int_equal(st_read_f32(st, 0, out, 4), -1);
    expect_msg(path, "tensor 'ids'", "I32 cannot be read as floats", NULL);
    st_close(st);
}

// ----------------------------------------------------------------------------
// config.json

static const char *const CONFIG_FIELDS[] = {"n_layer", "n_head", "n_embd", "n_positions",
                                             "vocab_size", "layer_norm_epsilon"};
static const char *const CONFIG_VALUES[] = {"2", "2", "4", "8", "10", "1e-05"};

// config.json with every field but `skip`, plus `extra` ("key": value pairs; when its first
// key is one of the six fields, it replaces that field).
static void write_config(const char *dir, const char *skip, const char *extra) {
    char text[1024] = "{", path[512];
    for (int k = 0; k < 6; k++) {
        if (skip && !strcmp(skip, CONFIG_FIELDS[k])) continue;
        if (extra && !strncmp(extra + 1, CONFIG_FIELDS[k], strlen(CONFIG_FIELDS[k])) &&
            extra[1 + strlen(CONFIG_FIELDS[k])] == '"')
            continue;   // replaced by extra
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s\"%s\": %s",
                 strlen(text) > 1 ? ", " : "", CONFIG_FIELDS[k], CONFIG_VALUES[k]);
    }
    if (extra) snprintf(text + strlen(text), sizeof text - strlen(text), ", %s", extra);
    strcat(text, "}");
    make_dir(dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, text);
}

static void test_config_read(void **state) {
    (void)state;
    const char *dir = tmp_path("cfg_ok");
    write_config(dir, NULL, "\"model_type\": \"gpt2\", \"n_inner\": null, \"activation_function\": \"gelu_new\"");
    ModelConfig c;
    if (checkpoint_read_config(dir, &c)) fail_msg("%s", err_msg());
    assert_int_equal(c.n_layer, 2);
    assert_int_equal(c.n_head, 2);
    assert_int_equal(c.n_embd, 4);
    assert_int_equal(c.n_ctx, 8);
    assert_int_equal(c.vocab_size, 10);
    assert_true(c.ln_eps == 1e-5f);
    // n_inner may be given as 4 * n_embd; another epsilon is read as written
    write_config(dir, NULL, "\"layer_norm_epsilon\": 0.001, \"n_inner\": 16");
    if (checkpoint_read_config(dir, &c)) fail_msg("%s", err_msg());
    assert_true(c.ln_eps == 1e-3f);
}

static void test_config_missing_fields(void **state) {
    (void)state;
    const char *dir = tmp_path("cfg_missing");
    ModelConfig c;
    for (int k = 0; k < 6; k++) {
        write_config(dir, CONFIG_FIELDS[k], NULL);
        err_set("%s", "");
        assert_int_equal(checkpoint_read_config(dir, &c), -1);
        char want[64];
        snprintf(want, sizeof want, "missing field '%s'", CONFIG_FIELDS[k]);
        expect_msg(dir, "config.json", want, NULL);
    }
    assert_int_equal(checkpoint_read_config(tmp_path("no_such_dir"), &c), -1);
    expect_msg("no_such_dir/config.json", "cannot open", NULL);
}

static void test_config_bad_values(void **state) {
    (void)state;
    const char *dir = tmp_path("cfg_bad");
    ModelConfig c;
    static const struct { const char *extra, *msg; } cases[] = {
        {"\"n_head\": \"2\"", "field 'n_head' must be an integer, got a string"},
        {"\"n_layer\": 0", "field 'n_layer' must be an integer in [1"},
        {"\"n_embd\": 2.5", "field 'n_embd' must be an integer, got a real number"},
        {"\"layer_norm_epsilon\": \"small\"", "field 'layer_norm_epsilon' must be a number"},
        {"\"n_head\": 3", "n_embd=4 is not divisible by n_head=3"},
        {"\"model_type\": \"llama\"", "field 'model_type' is \"llama\""},
        {"\"n_inner\": 20", "field 'n_inner' must be null or 4 * n_embd = 16"},
        {"\"activation_function\": \"relu\"", "field 'activation_function'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_config(dir, NULL, cases[k].extra);
        err_set("%s", "");
        assert_int_equal(checkpoint_read_config(dir, &c), -1);
        expect_msg(dir, "config.json", cases[k].msg, NULL);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, "{\"n_layer\": 2,");
    assert_int_equal(checkpoint_read_config(dir, &c), -1);
    expect_msg(path, "invalid JSON", NULL);
}

// ----------------------------------------------------------------------------
// checkpoints built by hand: the GPT-2 names, shapes and Conv1D layout, written out here
// independently of core/checkpoint.c's own table.

enum { HL = 2, HC = 4, HN = 8, HV = 10 };   // layers, n_embd, n_positions, vocab

typedef struct {
    const char *file;   // GPT-2 name ("%d" = layer)
    const char *reg;    // registry name
    int rows, cols;     // file shape (cols = 0: 1-D)
    int transpose;      // Conv1D: registry slice is the transpose
} SpecEntry;

static const SpecEntry SPEC[] = {
    {"wte.weight", "wte", HV, HC, 0},
    {"wpe.weight", "wpe", HN, HC, 0},
    {"h.%d.ln_1.weight", "h.ln_1.weight", HC, 0, 0},
    {"h.%d.ln_1.bias", "h.ln_1.bias", HC, 0, 0},
    {"h.%d.attn.c_attn.weight", "h.attn.c_attn.weight", HC, 3 * HC, 1},
    {"h.%d.attn.c_attn.bias", "h.attn.c_attn.bias", 3 * HC, 0, 0},
    {"h.%d.attn.c_proj.weight", "h.attn.c_proj.weight", HC, HC, 1},
    {"h.%d.attn.c_proj.bias", "h.attn.c_proj.bias", HC, 0, 0},
    {"h.%d.ln_2.weight", "h.ln_2.weight", HC, 0, 0},
    {"h.%d.ln_2.bias", "h.ln_2.bias", HC, 0, 0},
    {"h.%d.mlp.c_fc.weight", "h.mlp.c_fc.weight", HC, 4 * HC, 1},
    {"h.%d.mlp.c_fc.bias", "h.mlp.c_fc.bias", 4 * HC, 0, 0},
    {"h.%d.mlp.c_proj.weight", "h.mlp.c_proj.weight", 4 * HC, HC, 1},
    {"h.%d.mlp.c_proj.bias", "h.mlp.c_proj.bias", HC, 0, 0},
    {"ln_f.weight", "ln_f.weight", HC, 0, 0},
    {"ln_f.bias", "ln_f.bias", HC, 0, 0},
};
enum { NSPEC = sizeof SPEC / sizeof SPEC[0] };

// Element j of spec entry k, layer l: distinct, exact in F32 (and in BF16 for ln_f.weight,
// which the file stores as BF16).
static float spec_value(int k, int l, int j) {
    if (!strcmp(SPEC[k].file, "ln_f.weight")) return 1.0f + 0.25f * (float)j;
    return (float)(k * 1000 + l * 100 + j) * 0.5f;
}

typedef struct {
    int prefix;              // every name prefixed with "transformer."
    const char *skip;        // a tensor left out
    const char *bad_shape;   // a tensor written with its two dimensions swapped
    int extra_layer;         // h.<HL>.ln_1.weight added
} BuildOpts;

// Writes config.json and model.safetensors (with the attention mask buffers and the tied
// lm_head.weight, as hub checkpoints have them) into dir.
static void build_checkpoint(const char *dir, const BuildOpts *o) {
    write_config(dir, NULL, "\"model_type\": \"gpt2\"");
    char *header = calloc(1, 1 << 16);
    uint8_t *data = calloc(1, 1 << 16);
    size_t off = 0;
    strcat(header, "{\"__metadata__\":{\"format\":\"pt\"}");
    const char *pre = o->prefix ? "transformer." : "";
    for (int k = 0; k < NSPEC; k++) {
        int layers = strstr(SPEC[k].file, "%d") ? HL + (o->extra_layer && k == 2) : 1;
        for (int l = 0; l < layers; l++) {
            char name[96], full[128];
            snprintf(name, sizeof name, SPEC[k].file, l);
            snprintf(full, sizeof full, "%s%s", pre, name);
            if (o->skip && !strcmp(o->skip, name)) continue;
            int r = SPEC[k].rows, c = SPEC[k].cols;
            if (o->bad_shape && !strcmp(o->bad_shape, name)) { int t = r; r = c; c = t; }
            int n = r * (c ? c : 1);
            int bf16 = !strcmp(name, "ln_f.weight");
            size_t bytes = (size_t)n * (bf16 ? 2 : 4);
            char shape[32];
            if (c) snprintf(shape, sizeof shape, "[%d,%d]", r, c);
            else snprintf(shape, sizeof shape, "[%d]", r);
            snprintf(header + strlen(header), 512, ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                     full, bf16 ? "BF16" : "F32", shape, off, off + bytes);
            for (int j = 0; j < n; j++) {
                float v = spec_value(k, l, j);
                if (bf16) {
                    uint32_t bits;
                    memcpy(&bits, &v, 4);
                    uint16_t h = (uint16_t)(bits >> 16);
                    memcpy(data + off + 2 * (size_t)j, &h, 2);
                } else {
                    memcpy(data + off + 4 * (size_t)j, &v, 4);
                }
            }
            off += bytes;
        }
    }
    // buffers a hub checkpoint carries: the causal mask per layer (U8 here) and lm_head
    for (int l = 0; l < HL; l++) {
        snprintf(header + strlen(header), 512, ",\"%sh.%d.attn.bias\":{\"dtype\":\"U8\",\"shape\":[1,1,%d,%d],"
                 "\"data_offsets\":[%zu,%zu]}", pre, l, HN, HN, off, off + HN * HN);
        off += HN * HN;
    }
    snprintf(header + strlen(header), 512, ",\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],"
             "\"data_offsets\":[%zu,%zu]}}", HV, HC, off, off + 4 * HV * HC);
    off += 4 * HV * HC;
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_raw(path, header, data, off);
    free(header);
    free(data);
}

static const ModelConfig HAND_CFG = {HL, 2, HC, HN, HV, 1e-5f};

static Model *new_model(const ModelConfig *cfg, const MethodConfig *mc) {
    Model *m = model_create(backend_cpu(), cfg, mc);
    if (!m) fail_msg("model_create: %s", err_msg());
    return m;
}

static Model *new_eval_model(const ModelConfig *cfg) {
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = METHOD_NONE;
    return new_model(cfg, &mc);
}

// Host copy of a registry tensor (caller frees).
static float *param_host(Model *m, const char *name) {
    Param *p = model_find_param(m, name);
    if (!p) fail_msg("no registry tensor '%s'", name);
    float *h = malloc(p->numel * sizeof(float));
    model_backend(m)->to_host(h, p->data, p->numel * sizeof(float));
    return h;
}

static void check_hand_built_loaded(Model *m) {
    for (int k = 0; k < NSPEC; k++) {
        float *reg = param_host(m, SPEC[k].reg);
        int per_layer = strstr(SPEC[k].file, "%d") != NULL;
        int r = SPEC[k].rows, c = SPEC[k].cols ? SPEC[k].cols : 1;
        for (int l = 0; l < (per_layer ? HL : 1); l++)
            for (int i = 0; i < r; i++)
                for (int j = 0; j < c; j++) {
                    // file element [i][j]; a Conv1D weight is [in, out], the registry [out, in]
                    size_t at = (size_t)l * r * c + (SPEC[k].transpose ? (size_t)j * r + i : (size_t)i * c + j);
                    float want = spec_value(k, l, i * c + j);
                    if (reg[at] != want)
                        fail_msg("%s (layer %d) [%d][%d]: registry %s holds %g, want %g", SPEC[k].file,
                                 l, i, j, SPEC[k].reg, reg[at], want);
                }
        free(reg);
    }
}

static void test_checkpoint_load_hand_built(void **state) {
    (void)state;
    for (int prefix = 0; prefix < 2; prefix++) {
        const char *dir = tmp_path(prefix ? "hand_prefixed" : "hand");
        BuildOpts o = {.prefix = prefix};
        build_checkpoint(dir, &o);
        ModelConfig cfg;
        if (checkpoint_read_config(dir, &cfg)) fail_msg("%s", err_msg());
        Model *m = new_eval_model(&cfg);
        if (checkpoint_load(m, dir)) fail_msg("%s", err_msg());
        check_hand_built_loaded(m);

        // saving writes the same names, shapes and values, unprefixed, in F32
        const char *out = tmp_path("hand_resaved/sub");
        if (checkpoint_save(m, out)) fail_msg("%s", err_msg());
        char path[512];
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        SafeTensors *st = st_open(path);
        if (!st) fail_msg("%s", err_msg());
        assert_string_equal(st_metadata(st, "format"), "pt");
        int count = 0;
        for (int k = 0; k < NSPEC; k++) {
            int per_layer = strstr(SPEC[k].file, "%d") != NULL;
            for (int l = 0; l < (per_layer ? HL : 1); l++, count++) {
                char name[96];
                snprintf(name, sizeof name, SPEC[k].file, l);
                int idx = st_find(st, name);
                if (idx < 0) fail_msg("saved checkpoint lacks '%s'", name);
                assert_int_equal(st_dtype(st, idx), ST_F32);
                assert_int_equal(st_ndim(st, idx), SPEC[k].cols ? 2 : 1);
                assert_int_equal(st_shape(st, idx)[0], SPEC[k].rows);
                if (SPEC[k].cols) assert_int_equal(st_shape(st, idx)[1], SPEC[k].cols);
                size_t n = st_numel(st, idx);
                float *v = malloc(n * sizeof(float));
                assert_int_equal(st_read_f32(st, idx, v, n), 0);
                for (size_t j = 0; j < n; j++)
                    if (v[j] != spec_value(k, l, (int)j)) fail_msg("saved %s[%zu] = %g", name, j, v[j]);
                free(v);
            }
        }
        assert_int_equal(st_count(st), count);   // no lm_head, no mask buffers
        st_close(st);
        model_free(m);
    }
}

// Each malformed directory fails with a message naming the file and the tensor.
static void test_checkpoint_malformed(void **state) {
    (void)state;
    static const struct { BuildOpts o; const char *msg; } cases[] = {
        {{.skip = "h.1.ln_2.bias"}, "missing tensor 'h.1.ln_2.bias' (expected shape [4])"},
        {{.skip = "wte.weight", .prefix = 1}, "missing tensor 'wte.weight' (expected shape [10, 4])"},
        {{.bad_shape = "h.0.attn.c_attn.weight"},
         "tensor 'h.0.attn.c_attn.weight' has shape [12, 4], config.json expects [4, 12]"},
        {{.bad_shape = "h.1.mlp.c_proj.weight", .prefix = 1},
         "tensor 'transformer.h.1.mlp.c_proj.weight' has shape [4, 16], config.json expects [16, 4]"},
        {{.extra_layer = 1}, "unexpected tensor 'h.2.ln_1.weight' (config.json says n_layer=2)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu", k);
        const char *dir = tmp_path(name);
        build_checkpoint(dir, &cases[k].o);
        Model *m = new_eval_model(&HAND_CFG);
        err_set("%s", "");
        assert_int_equal(checkpoint_load(m, dir), -1);
        char file[512];
        snprintf(file, sizeof file, "%s/model.safetensors", dir);
        expect_msg(file, cases[k].msg, NULL);
        model_free(m);
    }
    // config.json and the model disagree
    const char *dir = tmp_path("bad0");
    ModelConfig other = HAND_CFG;
    other.n_head = 1;
    Model *m = new_eval_model(&other);
    assert_int_equal(checkpoint_load(m, dir), -1);
    expect_msg("bad0/config.json", "n_head is 2, but the model was created with 1", NULL);
    model_free(m);
    // no weights at all
    const char *empty = tmp_path("weightless");
    write_config(empty, NULL, NULL);
    m = new_eval_model(&HAND_CFG);
    assert_int_equal(checkpoint_load(m, empty), -1);
    expect_msg("weightless/model.safetensors", "cannot open", NULL);
    model_free(m);
}

// Every tensor of m1 equals the same-named tensor of m2 bit for bit (groups in mask).
static void expect_same_tensors(Model *m1, Model *m2, int groups_mask) {
    int checked = 0;
    for (int i = 0; i < model_num_params(m1); i++) {
        Param *p = model_param(m1, i);
        if (!(groups_mask & (1 << p->group))) continue;
        Param *q = model_find_param(m2, p->name);
        if (!q) fail_msg("second model lacks '%s'", p->name);
        assert_int_equal(p->numel, q->numel);
        float *a = param_host(m1, p->name), *b = param_host(m2, p->name);
        if (memcmp(a, b, p->numel * sizeof(float))) fail_msg("tensor '%s' differs after reload", p->name);
        free(a);
        free(b);
        checked++;
    }
    assert_true(checked > 0);
}

static void test_checkpoint_model_round_trip(void **state) {
    (void)state;
    ModelConfig cfg;
    assert_int_equal(model_preset("nano", &cfg), 0);
    MethodConfig mc;
    method_defaults(&mc);
    mc.head = HEAD_CLS;
    mc.n_classes = 3;
    Model *m = new_model(&cfg, &mc);
    model_init_random(m, 7);
    const char *dir = tmp_path("nano_ckpt");
    if (checkpoint_save(m, dir)) fail_msg("%s", err_msg());

    ModelConfig back;
    if (checkpoint_read_config(dir, &back)) fail_msg("%s", err_msg());
    assert_int_equal(back.n_layer, cfg.n_layer);
    assert_int_equal(back.n_head, cfg.n_head);
    assert_int_equal(back.n_embd, cfg.n_embd);
    assert_int_equal(back.n_ctx, cfg.n_ctx);
    assert_int_equal(back.vocab_size, cfg.vocab_size);
    assert_true(back.ln_eps == cfg.ln_eps);

    // config.json carries what transformers needs to build the model
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "model_type")), "gpt2");
    assert_string_equal(json_string_value(json_array_get(json_object_get(root, "architectures"), 0)),
                        "GPT2ForSequenceClassification");
    assert_true(json_is_null(json_object_get(root, "n_inner")));
    assert_string_equal(json_string_value(json_object_get(root, "activation_function")), "gelu_new");
    assert_int_equal(json_integer_value(json_object_get(root, "num_labels")), 3);
    assert_true(json_real_value(json_object_get(root, "layer_norm_epsilon")) == 1e-5);
    json_decref(root);

    Model *m2 = new_model(&back, &mc);
    model_init_random(m2, 8);   // different values everywhere before loading
    if (checkpoint_load(m2, dir)) fail_msg("%s", err_msg());
    expect_same_tensors(m, m2, 1 << PARAM_BASE | 1 << PARAM_HEAD);
    model_free(m2);
    model_free(m);
}

// ----------------------------------------------------------------------------
// adapters

static void fill_method_tensors(Model *m, float offset) {
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        if (p->group == PARAM_BASE) continue;
        float *h = malloc(p->numel * sizeof(float));
        for (size_t j = 0; j < p->numel; j++) h[j] = offset + (float)(i * 100000 + (int)j) * 1e-3f;
        model_backend(m)->to_device(p->data, h, p->numel * sizeof(float));
        free(h);
    }
}

static void test_adapter_lora_round_trip(void **state) {
    (void)state;
    ModelConfig cfg;
    assert_int_equal(model_preset("nano", &cfg), 0);
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = METHOD_LORA;
    mc.lora_targets = TARGET_Q | TARGET_V | TARGET_FC | TARGET_PROJ;
    mc.lora_rank = 2;
    mc.lora_alpha = 4.0f;
    mc.lora_dropout = 0.1f;
    mc.lora_init = LORA_INIT_GAUSSIAN;
    mc.head = HEAD_CLS;
    mc.n_classes = 3;
    Model *m = new_model(&cfg, &mc);
    model_init_random(m, 1);
    fill_method_tensors(m, 0.5f);   // B = 0 after init; make every factor distinct
    const char *dir = tmp_path("lora_adapter");
    if (adapter_save(m, dir, "results/base/nano")) fail_msg("%s", err_msg());

    MethodConfig back;
    if (adapter_read_config(dir, &back)) fail_msg("%s", err_msg());
    assert_int_equal(back.kind, METHOD_LORA);
    assert_int_equal(back.lora_targets, mc.lora_targets);
    assert_int_equal(back.lora_rank, 2);
    assert_true(back.lora_alpha == 4.0f);
    assert_true(back.lora_dropout == 0.1f);
    assert_int_equal(back.lora_init, LORA_INIT_GAUSSIAN);
    assert_int_equal(back.head, HEAD_CLS);
    assert_int_equal(back.n_classes, 3);
    assert_int_equal(back.combine, 0);

    // PEFT names and shapes: lora_A [r, d_in], lora_B [d_out, r], one per layer
    char path[512];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    SafeTensors *st = st_open(path);
    if (!st) fail_msg("%s", err_msg());
    static const struct { const char *name; int r, c; } want[] = {
        {"h.0.attn.q.lora_A", 2, 64}, {"h.1.attn.q.lora_B", 64, 2}, {"h.1.attn.v.lora_A", 2, 64},
        {"h.0.mlp.c_fc.lora_A", 2, 64}, {"h.0.mlp.c_fc.lora_B", 256, 2},
        {"h.1.mlp.c_proj.lora_A", 2, 256}, {"h.1.mlp.c_proj.lora_B", 64, 2}, {"score.weight", 3, 64},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        int idx = st_find(st, want[k].name);
        if (idx < 0) fail_msg("adapter lacks '%s'", want[k].name);
        assert_int_equal(st_shape(st, idx)[0], want[k].r);
        assert_int_equal(st_shape(st, idx)[1], want[k].c);
    }
    assert_int_equal(st_count(st), 2 * 4 * 2 + 1);   // trainable tensors only
    assert_int_equal(st_find(st, "h.0.attn.k.lora_A"), -1);
    assert_int_equal(st_find(st, "wte.weight"), -1);
    // slice 1 of the stacked lora.v.B is layer 1's lora_B
    float *reg = param_host(m, "lora.v.B");
    float file[128];
    assert_int_equal(st_read_f32(st, st_find(st, "h.1.attn.v.lora_B"), file, 128), 0);
    assert_memory_equal(file, reg + 128, sizeof file);
    free(reg);
    st_close(st);

    Model *m2 = new_model(&cfg, &back);
    model_init_random(m2, 2);
    if (adapter_load(m2, dir)) fail_msg("%s", err_msg());
    expect_same_tensors(m, m2, 1 << PARAM_METHOD | 1 << PARAM_HEAD);
    model_free(m2);
    model_free(m);
}

// Save and reload for the other methods; checks the per-layer names they produce.
static void test_adapter_layouts(void **state) {
    (void)state;
    ModelConfig cfg;
    assert_int_equal(model_preset("nano", &cfg), 0);
    static const struct { MethodKind kind; int skip, lp, li; const char *present, *absent; int shape0; } cases[] = {
        {METHOD_ADAPTER_D, 1, 0, 0, "h.1.attn.adapter.down.weight", "h.0.attn.adapter.down.weight", 8},
        {METHOD_ADAPTER_H, 0, 0, 0, "h.0.ln_1.weight", "h.0.attn.c_attn.weight", 64},
        {METHOD_ADAPTER_L, 0, 0, 0, "h.1.mlp.adapter.ln.weight", "h.0.attn.adapter.up.weight", 64},
        {METHOD_BITFIT, 0, 0, 0, "h.0.attn.c_attn.bias", "h.0.attn.c_attn.weight", 192},
        {METHOD_PREFIX_LAYER, 0, 3, 2, "h.1.prefix", "prefix.layer", 5},
        {METHOD_PREFIX_EMBED, 0, 3, 2, "prefix.embed", "h.0.prefix", 5},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        MethodConfig mc;
        method_defaults(&mc);
        mc.kind = cases[k].kind;
        mc.adapter_skip = cases[k].skip;
        mc.prefix_lp = cases[k].lp;
        mc.prefix_li = cases[k].li;
        Model *m = new_model(&cfg, &mc);
        model_init_random(m, 3);
        fill_method_tensors(m, -0.25f);
        char name[32];
        snprintf(name, sizeof name, "layout%zu", k);
        const char *dir = tmp_path(name);
        if (adapter_save(m, dir, NULL)) fail_msg("%s: %s", METHOD_NAMES[mc.kind], err_msg());
        char path[512];
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        SafeTensors *st = st_open(path);
        if (!st) fail_msg("%s", err_msg());
        int idx = st_find(st, cases[k].present);
        if (idx < 0) fail_msg("%s adapter lacks '%s'", METHOD_NAMES[mc.kind], cases[k].present);
        assert_int_equal(st_shape(st, idx)[0], cases[k].shape0);
        if (st_find(st, cases[k].absent) >= 0) fail_msg("%s adapter has '%s'", METHOD_NAMES[mc.kind], cases[k].absent);
        st_close(st);

        MethodConfig back;
        if (adapter_read_config(dir, &back)) fail_msg("%s", err_msg());
        assert_int_equal(back.kind, mc.kind);
        assert_int_equal(back.adapter_skip, mc.adapter_skip);
        assert_int_equal(back.prefix_lp, mc.prefix_lp);
        assert_int_equal(back.prefix_li, mc.prefix_li);
        Model *m2 = new_model(&cfg, &back);
        model_init_random(m2, 4);
        if (adapter_load(m2, dir)) fail_msg("%s: %s", METHOD_NAMES[mc.kind], err_msg());
        int groups = 1 << PARAM_METHOD;
        if (mc.kind == METHOD_BITFIT) {
            float *a = param_host(m, "h.attn.c_attn.bias"), *b = param_host(m2, "h.attn.c_attn.bias");
            assert_memory_equal(a, b, (size_t)cfg.n_layer * 3 * cfg.n_embd * sizeof(float));
            free(a);
            free(b);
        } else {
            expect_same_tensors(m, m2, groups);
        }
        model_free(m2);
        model_free(m);
    }
}

// Combinations (a primary method with combine: [lora], [bitfit], a prefix): the adapter config
// records every part, so the config read back builds the same model and the adapter loads.
static void test_adapter_combined_round_trip(void **state) {
    (void)state;
    ModelConfig cfg;
    assert_int_equal(model_preset("nano", &cfg), 0);
    static const struct { MethodKind kind; unsigned combine; } cases[] = {
        {METHOD_PREFIX_EMBED, METHOD_BIT(METHOD_LORA)},
        {METHOD_PREFIX_LAYER, METHOD_BIT(METHOD_LORA) | METHOD_BIT(METHOD_BITFIT)},
        {METHOD_BITFIT, METHOD_BIT(METHOD_LORA)},
        {METHOD_ADAPTER_H, METHOD_BIT(METHOD_LORA)},
        {METHOD_LORA, METHOD_BIT(METHOD_BITFIT) | METHOD_BIT(METHOD_PREFIX_EMBED)},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        MethodConfig mc;
        method_defaults(&mc);
        mc.kind = cases[k].kind;
        mc.combine = cases[k].combine;
        mc.lora_targets = TARGET_Q | TARGET_O;
        mc.lora_rank = 3;
        mc.lora_alpha = 6.0f;
        mc.prefix_lp = 2;
        mc.head = HEAD_CLS;
        mc.n_classes = 2;
        Model *m = new_model(&cfg, &mc);
        model_init_random(m, 5);
        fill_method_tensors(m, 0.125f);
        char name[32];
        snprintf(name, sizeof name, "combined%zu", k);
        const char *dir = tmp_path(name);
        if (adapter_save(m, dir, NULL)) fail_msg("%s: %s", METHOD_NAMES[mc.kind], err_msg());

        MethodConfig back;
        if (adapter_read_config(dir, &back)) fail_msg("%s", err_msg());
        assert_int_equal(back.kind, mc.kind);
        assert_int_equal(back.combine, mc.combine);
        assert_int_equal(back.lora_targets, mc.lora_targets);
        assert_int_equal(back.lora_rank, 3);
        assert_true(back.lora_alpha == 6.0f);
        Model *m2 = new_model(&cfg, &back);
        model_init_random(m2, 6);
        if (adapter_load(m2, dir)) fail_msg("%s + lora: %s", METHOD_NAMES[mc.kind], err_msg());
        expect_same_tensors(m, m2, 1 << PARAM_METHOD | 1 << PARAM_HEAD);
        model_free(m2);
        model_free(m);
    }
    // also_lora must be a boolean
    char path[512];
    snprintf(path, sizeof path, "%s/adapter_config.json", tmp_path("combined0"));
    write_text(path, "{\"method\": \"prefix_embed\", \"prefix_lp\": 2, \"prefix_li\": 0, \"also_lora\": 1}");
    MethodConfig back;
    assert_int_equal(adapter_read_config(tmp_path("combined0"), &back), -1);
    expect_msg(path, "field 'also_lora' must be true or false", NULL);
    // a LoRA part needs its rank, scale and targets
    write_text(path, "{\"method\": \"prefix_embed\", \"prefix_lp\": 2, \"prefix_li\": 0, \"also_lora\": true}");
    assert_int_equal(adapter_read_config(tmp_path("combined0"), &back), -1);
    expect_msg(path, "missing field 'r'", NULL);
}

static void test_adapter_mismatch(void **state) {
    (void)state;
    ModelConfig nano;
    assert_int_equal(model_preset("nano", &nano), 0);
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = METHOD_LORA;
    mc.lora_targets = TARGET_Q | TARGET_V;
    mc.lora_rank = 2;
    Model *m = new_model(&nano, &mc);
    model_init_random(m, 1);
    const char *dir = tmp_path("mismatch_adapter");
    if (adapter_save(m, dir, NULL)) fail_msg("%s", err_msg());
    model_free(m);

    // another base width
    ModelConfig wide = nano;
    wide.n_embd = 128;
    m = new_model(&wide, &mc);
    assert_int_equal(adapter_load(m, dir), -1);
    expect_msg("adapter ", "mismatch_adapter/adapter_model.safetensors",
               "tensor 'h.0.attn.q.lora_A' has shape [2, 64], this model expects [2, 128]", NULL);
    model_free(m);

    // the model lacks a target the adapter has
    MethodConfig q_only = mc;
    q_only.lora_targets = TARGET_Q;
    m = new_model(&nano, &q_only);
    assert_int_equal(adapter_load(m, dir), -1);
    expect_msg("unexpected tensor 'h.0.attn.v.lora_A'", NULL);
    model_free(m);

    // the model has a target the adapter lacks
    MethodConfig qkv = mc;
    qkv.lora_targets = TARGET_Q | TARGET_K | TARGET_V;
    m = new_model(&nano, &qkv);
    assert_int_equal(adapter_load(m, dir), -1);
    expect_msg("missing tensor 'h.0.attn.k.lora_A' (expected shape [2, 64])", NULL);
    model_free(m);

    // same shapes, different scale or method
    MethodConfig alpha = mc;
    alpha.lora_alpha = 16.0f;
    m = new_model(&nano, &alpha);
    assert_int_equal(adapter_load(m, dir), -1);
    expect_msg("adapter_config.json", "lora_alpha is 8, but the model was created with 16", NULL);
    model_free(m);
    MethodConfig ad = mc;
    ad.kind = METHOD_ADAPTER_H;
    m = new_model(&nano, &ad);
    assert_int_equal(adapter_load(m, dir), -1);
    expect_msg("method is lora, but the model was created with adapter_h", NULL);
    model_free(m);

    // a broken adapter_config.json names the field
    char path[512];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    write_text(path, "{\"method\": \"lora\", \"lora_alpha\": 8}");
    MethodConfig back;
    assert_int_equal(adapter_read_config(dir, &back), -1);
    expect_msg(path, "missing field 'r'", NULL);
    write_text(path, "{\"method\": \"lorax\"}");
    assert_int_equal(adapter_read_config(dir, &back), -1);
    expect_msg(path, "field 'method' is \"lorax\"", NULL);
}

// ----------------------------------------------------------------------------

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_st_round_trip),
        cmocka_unit_test(test_st_duplicate_names_refused),
        cmocka_unit_test(test_st_half_precision),
        cmocka_unit_test(test_st_unaligned_and_f64),
        cmocka_unit_test(test_st_short_file),
        cmocka_unit_test(test_st_header_length_past_end),
        cmocka_unit_test(test_st_invalid_json),
        cmocka_unit_test(test_st_bad_fields),
        cmocka_unit_test(test_st_unknown_dtype),
        cmocka_unit_test(test_st_offsets_past_end),
        cmocka_unit_test(test_st_overlapping_offsets),
        cmocka_unit_test(test_st_size_mismatch),
        cmocka_unit_test(test_st_integer_not_readable),
        cmocka_unit_test(test_config_read),
        cmocka_unit_test(test_config_missing_fields),
        cmocka_unit_test(test_config_bad_values),
        cmocka_unit_test(test_checkpoint_load_hand_built),
        cmocka_unit_test(test_checkpoint_malformed),
        cmocka_unit_test(test_checkpoint_model_round_trip),
        cmocka_unit_test(test_adapter_lora_round_trip),
        cmocka_unit_test(test_adapter_layouts),
        cmocka_unit_test(test_adapter_combined_round_trip),
        cmocka_unit_test(test_adapter_mismatch),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
