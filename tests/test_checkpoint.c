// tests/test_checkpoint.c — safetensors reader/writer, checkpoint and adapter directories.
//
// Malformed files are generated here, byte by byte, so every error path is exercised and its
// message checked for the file and the tensor or field it names.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/safetensors.h"

// ----------------------------------------------------------------------------
// helpers

static char tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loralab_test_checkpoint_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
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
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
