// tests/test_ops.c — every op of the CPU backend against an independent reference.
//
// - Gradients: central finite differences of a scalar loss L = sum_i w_i * out_i (w random,
//   passed to the backward op as dout). The ops run in float; L is summed in double and the
//   step h is chosen per op (1e-2 for O(1) inputs), so the numeric gradient is good to about
//   1e-4; each check states its tolerance atol + rtol * |numeric|.
// - Accumulation rules are checked too: parameter gradients (and layernorm's dinp) start
//   from random values and the test compares (after - before); activation gradients start
//   as NaN, so an op that forgets to overwrite them fails.
// - Forward passes are compared with straightforward double-precision loops written here.
// - Tests at sizes above the backend's parallel threshold compare the OpenMP paths with the
//   serial ones (row by row calls), which the finite-difference tests cover.
// Every comparison prints its worst element on failure (set LORALAB_TEST_VERBOSE=1 to
// print it always).
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/backend.h"
#include "core/cpu/backend_cpu.h"

static const Backend *be;

// ----------------------------------------------------------------------------
// helpers

static uint64_t rng_state = 1;

static double rand_u01(void) {   // xorshift64*, deterministic across runs
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static void fill(float *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rand_u01());
}

static void fill_nan(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    assert_non_null(p);
    return p;
}

static int verbose(void) {
    const char *v = getenv("LORALAB_TEST_VERBOSE");
    return v && *v && *v != '0';
}

// Compares got[i] with ref[i] under |got - ref| <= atol + rtol * |ref| (NaN fails); prints
// the worst element (largest error / tolerance) on failure. Returns 1 if all pass.
static int close_enough(const char *what, const float *got, const double *ref, size_t n,
                        double atol, double rtol) {
    double worst = -1.0;
    size_t wi = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]), tol = atol + rtol * fabs(ref[i]);
        if (!(err <= tol)) bad = 1;   // NaN fails
        double ratio = isnan(err) ? INFINITY : tol > 0.0 ? err / tol : (err > 0.0 ? INFINITY : 0.0);
        if (ratio > worst) { worst = ratio; wi = i; }
    }
    if (n && (bad || verbose()))
        fprintf(bad ? stderr : stdout,
                "%s %s: worst [%zu] got %.9g ref %.9g |err| %.3g tol %.3g (atol %g rtol %g)\n",
                bad ? "MISMATCH" : "ok", what, wi, (double)got[wi], ref[wi],
                fabs((double)got[wi] - ref[wi]), atol + rtol * fabs(ref[wi]), atol, rtol);
    return !bad;
}

static void assert_close(const char *what, const float *got, const double *ref, size_t n,
                         double atol, double rtol) {
    assert_true(close_enough(what, got, ref, n, atol, rtol));
}

// Same, with a float reference.
static void assert_close_f(const char *what, const float *got, const float *ref, size_t n,
                           double atol, double rtol) {
    double *r = dalloc(n);
    for (size_t i = 0; i < n; i++) r[i] = ref[i];
    int ok = close_enough(what, got, r, n, atol, rtol);
    free(r);
    assert_true(ok);
}

// sum_i w_i * out_i in double
static double dot(const float *w, const float *out, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * out[i];
    return s;
}

typedef double (*LossFn)(void *ctx);

// Central differences of loss(ctx) w.r.t. each x[i]; compares with analytic[i].
static void grad_check(const char *what, float *x, size_t n, const float *analytic,
                       LossFn loss, void *ctx, float h, double atol, double rtol) {
    double *num = dalloc(n);
    for (size_t i = 0; i < n; i++) {
        float save = x[i];
        float xp = save + h, xm = save - h;
        x[i] = xp;
        double lp = loss(ctx);
        x[i] = xm;
        double lm = loss(ctx);
        x[i] = save;
        num[i] = (lp - lm) / ((double)xp - (double)xm);
    }
    int ok = close_enough(what, analytic, num, n, atol, rtol);
    free(num);
    assert_true(ok);
}

// analytic = after - before (for += gradients)
static float *diff(const float *after, const float *before, size_t n) {
    float *d = falloc(n);
    for (size_t i = 0; i < n; i++) d[i] = after[i] - before[i];
    return d;
}

static float *dup(const float *x, size_t n) {
    float *d = falloc(n);
    memcpy(d, x, n * sizeof(float));
    return d;
}

static int setup(void **state) {
    (void)state;
    be = backend_cpu();
    backend_cpu()->set_threads(2);
    rng_state = 0x1234567ull;
    return 0;
}

// ----------------------------------------------------------------------------
// threads and memory

static void test_threads(void **state) {
    (void)state;
    backend_cpu()->set_threads(1);
    assert_int_equal(backend_cpu()->threads(), 1);
    backend_cpu()->set_threads(0);
    assert_true(backend_cpu()->threads() >= 1);
    backend_cpu()->set_threads(2);
    assert_int_equal(backend_cpu()->threads(), 2);
    assert_string_equal(be->name, "cpu");
    // backend_cpu() and gemm (oneDNN, threaded by the same OpenMP) must not shrink OpenMP's
    // team
    float a[4] = {1, 2, 3, 4}, c[4];
    be->gemm(0, 0, 2, 2, 2, 1.0f, a, 2, a, 2, 0.0f, c, 2);
    assert_true(backend_cpu() == be);
    assert_int_equal(backend_cpu()->threads(), 2);
    int team = 0;
    #pragma omp parallel
    {
        #pragma omp atomic
        team++;
    }
    assert_int_equal(team, 2);
}

static void test_memory(void **state) {
    (void)state;
    size_t n = 1000;
    float *d = be->alloc(n * sizeof(float)), *e = be->alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) assert_true(d[i] == 0.0f);
    float *h = falloc(n), *back = falloc(n);
    fill(h, n, -1, 1);
    be->to_device(d, h, n * sizeof(float));
    be->copy(e, d, n * sizeof(float));
    be->synchronize();
    be->to_host(back, e, n * sizeof(float));
    assert_memory_equal(back, h, n * sizeof(float));
    be->zero(e, n * sizeof(float));
    for (size_t i = 0; i < n; i++) assert_true(e[i] == 0.0f);
    be->free(d);
    be->free(e);
    free(h);
    free(back);
}

// Large buffers start on a 2 MiB boundary (cache-line aligned tensors) and come zeroed, also
// after a free and again; past the 64 the backend tracks, they fall back to plain memory.
static void test_memory_large(void **state) {
    (void)state;
    enum { COUNT = 70, BYTES = (5 << 20) + 12 };
    for (int round = 0; round < 2; round++) {
        unsigned char *p[COUNT];
        for (int i = 0; i < COUNT; i++) {
            p[i] = be->alloc(BYTES);
            assert_non_null(p[i]);
            if (i < 32) assert_int_equal((uintptr_t)p[i] % (2u << 20), 0);
            for (size_t k = 0; k < BYTES; k += 4093) assert_int_equal(p[i][k], 0);
            assert_int_equal(p[i][BYTES - 1], 0);
            memset(p[i], 0xab, BYTES);
        }
        for (int i = 0; i < COUNT; i++) be->free(p[i]);
    }
}

// ----------------------------------------------------------------------------
// dense algebra

// C = alpha op(A) op(B) + beta C with row strides wider than the rows, all four transposes;
// a tiny shape (one sgemm call) and two above the threading threshold (C split by rows, and
// by columns, between threads).
// bf16: the same with gemm_bf16 on operands rounded by to_bf16 (the reference multiplies the
// rounded values, so the tolerance stays fp32's).
static void gemm_run(int bf16, int ta, int tb, int M, int N, int K, float alpha, float *A, int lda,
                     int arows, float *B, int ldb, int brows, float beta, float *C, int ldc) {
    if (!bf16) { be->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return; }
    uint16_t *A16 = calloc((size_t)arows * lda, sizeof(uint16_t)), *B16 = calloc((size_t)brows * ldb, sizeof(uint16_t));
    assert_true(A16 && B16);
    be->to_bf16(A16, A, arows, lda, lda, NULL);
    be->to_bf16(B16, B, brows, ldb, ldb, NULL);
    for (size_t i = 0; i < (size_t)arows * lda; i++) A[i] = bf16_to_float(A16[i]);   // what the reference sees
    for (size_t i = 0; i < (size_t)brows * ldb; i++) B[i] = bf16_to_float(B16[i]);
    be->gemm_bf16(ta, tb, M, N, K, alpha, A16, lda, B16, ldb, beta, C, ldc);
    free(A16); free(B16);
}

static void gemm_case(int M, int N, int K, int bf16) {
    const float alpha = 0.7f, beta = -1.3f;
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 3, ldc = N + 4;
            int arows = ta ? K : M, brows = tb ? N : K;
            float *A = falloc((size_t)arows * lda), *B = falloc((size_t)brows * ldb);
            float *C = falloc((size_t)M * ldc), *C0 = falloc((size_t)M * ldc);
            fill(A, (size_t)arows * lda, -1, 1);
            fill(B, (size_t)brows * ldb, -1, 1);
            fill(C0, (size_t)M * ldc, -1, 1);
            memcpy(C, C0, (size_t)M * ldc * sizeof(float));
            gemm_run(bf16, ta, tb, M, N, K, alpha, A, lda, arows, B, ldb, brows, beta, C, ldc);
            double *ref = dalloc((size_t)M * ldc);
            for (int i = 0; i < M; i++) {
                for (int j = 0; j < ldc; j++) {
                    size_t ij = (size_t)i * ldc + j;
                    if (j >= N) { ref[ij] = C0[ij]; continue; }   // padding untouched
                    double s = 0.0;
                    for (int k = 0; k < K; k++) {
                        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                        s += a * b;
                    }
                    ref[ij] = alpha * s + beta * (double)C0[ij];
                }
            }
            char what[96];
            snprintf(what, sizeof what, "gemm%s %dx%dx%d ta=%d tb=%d", bf16 ? "_bf16" : "", M, N, K, ta, tb);
            assert_close(what, C, ref, (size_t)M * ldc, 1e-5, 1e-5);
            // beta = 0: C is overwritten, even if it held NaN
            for (int i = 0; i < M; i++) fill_nan(C + (size_t)i * ldc, N);
            gemm_run(bf16, ta, tb, M, N, K, alpha, A, lda, arows, B, ldb, brows, 0.0f, C, ldc);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) ref[(size_t)i * ldc + j] -= beta * (double)C0[(size_t)i * ldc + j];
            snprintf(what, sizeof what, "gemm%s %dx%dx%d beta=0 ta=%d tb=%d", bf16 ? "_bf16" : "", M, N, K, ta, tb);
            assert_close(what, C, ref, (size_t)M * ldc, 1e-5, 1e-5);
            free(A); free(B); free(C); free(C0); free(ref);
        }
    }
}

static void test_gemm_vs_naive(void **state) {
    (void)state;
    for (int bf16 = 0; bf16 < 2; bf16++) {
        gemm_case(5, 7, 3, bf16);
        gemm_case(203, 70, 31, bf16);
        gemm_case(70, 203, 31, bf16);
    }
}

// Rounding to bf16 by hand: ties go to the even mantissa, overflow to infinity, NaN stays
// NaN; to_bf16 reads rows ld apart and writes them contiguously.
static void test_bf16_rounding(void **state) {
    (void)state;
    static const struct { uint32_t in; uint16_t out; } cases[] = {
        {0x3F800000u, 0x3F80},   // 1.0
        {0x3F808000u, 0x3F80},   // 1 + 2^-8: a tie, mantissa 0 is even -> down
        {0x3F818000u, 0x3F82},   // 1 + 3 * 2^-8: a tie, mantissa 1 is odd -> up
        {0x3F808001u, 0x3F81},   // just above the tie -> up
        {0x3F807FFFu, 0x3F80},   // just below the tie -> down
        {0xC0200000u, 0xC020},   // -2.5
        {0x7F7FFFFFu, 0x7F80},   // the largest float rounds to +inf
        {0xFF800000u, 0xFF80},   // -inf
        {0x00000001u, 0x0000},   // the smallest subnormal rounds to +0
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    float src[2 * (NC + 1)];
    for (int i = 0; i < NC; i++) {
        union { uint32_t u; float f; } x = {cases[i].in};
        if (bf16_from_float(x.f) != cases[i].out)
            fail_msg("bf16_from_float(0x%08x) = 0x%04x, expected 0x%04x", cases[i].in, bf16_from_float(x.f), cases[i].out);
        src[i] = x.f;                 // row 0, then one padding column
        src[NC + 1 + i] = -x.f;       // row 1: the negated values
    }
    src[NC] = src[2 * NC + 1] = 123.0f;   // padding, never read
    uint16_t dst[2 * NC];
    be->to_bf16(dst, src, 2, NC, NC + 1, NULL);
    for (int i = 0; i < NC; i++) {
        assert_int_equal(dst[i], cases[i].out);
        assert_int_equal(dst[NC + i], cases[i].out ^ 0x8000);
    }
    float nan = NAN;
    assert_true(isnan(bf16_to_float(bf16_from_float(nan))));
    be->to_bf16(dst, &nan, 1, 1, 1, NULL);
    assert_true(isnan(bf16_to_float(dst[0])));
}

// to_bf16 with colsum: the same bits as without, and colsum += the column sums, bit for bit
// those of bias_backward and within fp32 summation error of a double sum.
static void test_bf16_colsum(void **state) {
    (void)state;
    int rows = 300, cols = 200, ld = 211;   // above the parallel threshold; a partial 64-block
    float *src = falloc((size_t)rows * ld), *start = falloc(cols), *sum = falloc(cols), *ref = falloc(cols);
    fill(src, (size_t)rows * ld, -3, 3);
    fill(start, cols, -1, 1);
    memcpy(sum, start, cols * sizeof(float));
    memcpy(ref, start, cols * sizeof(float));
    uint16_t *plain = calloc((size_t)rows * cols, 2), *fused = calloc((size_t)rows * cols, 2);
    be->to_bf16(plain, src, rows, cols, ld, NULL);
    be->to_bf16(fused, src, rows, cols, ld, sum);
    be->bias_backward(ref, src, rows, cols, ld);
    assert_memory_equal(plain, fused, (size_t)rows * cols * 2);
    assert_memory_equal(sum, ref, cols * sizeof(float));
    for (int c = 0; c < cols; c++) {
        double d = start[c];
        for (int r = 0; r < rows; r++) d += src[(size_t)r * ld + c];
        assert_true(fabs(sum[c] - d) <= 1e-5 * rows);
    }
    free(src); free(start); free(sum); free(ref); free(plain); free(fused);
}

static void test_vector_ops(void **state) {
    (void)state;
    size_t n = 100003;   // above the parallel threshold, odd length
    float *x = falloc(n), *y = falloc(n), *y0 = falloc(n), *out = falloc(n);
    double *ref = dalloc(n);
    fill(x, n, -2, 2);
    fill(y0, n, -2, 2);

    memcpy(y, y0, n * sizeof(float));
    be->axpy(y, x, -0.37f, n);
    for (size_t i = 0; i < n; i++) ref[i] = (double)y0[i] + -0.37 * (double)x[i];
    assert_close("axpy", y, ref, n, 1e-6, 1e-6);

    memcpy(y, y0, n * sizeof(float));
    be->scale(y, 1.7f, n);
    for (size_t i = 0; i < n; i++) ref[i] = 1.7 * (double)y0[i];
    assert_close("scale", y, ref, n, 1e-6, 1e-6);

    be->add(out, x, y0, n);
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] + y0[i];
    assert_close("add", out, ref, n, 1e-6, 1e-6);
    memcpy(y, y0, n * sizeof(float));
    be->add(y, y, x, n);   // out aliases a
    assert_close("add aliased", y, ref, n, 1e-6, 1e-6);

    // sumsq returns a double: compared in double (the summation order differs by thread)
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    double got = be->sumsq(x, n);
    if (!(fabs(got - s) <= 1e-12 * s)) fprintf(stderr, "MISMATCH sumsq: got %.17g ref %.17g\n", got, s);
    assert_true(fabs(got - s) <= 1e-12 * s);
    float small[3] = {3.0f, -4.0f, 12.0f};
    assert_true(be->sumsq(small, 3) == 169.0);
    free(x); free(y); free(y0); free(out); free(ref);
}

// ----------------------------------------------------------------------------
// encoder

typedef struct {
    int B, T, C;
    const int *tokens;
    float *wte, *wpe, *out, *w;
} EncCtx;

static double enc_loss(void *p) {
    EncCtx *c = p;
    be->encoder_forward(c->out, c->tokens, c->wte, c->wpe, c->B, c->T, c->C);
    return dot(c->w, c->out, (size_t)c->B * c->T * c->C);
}

static void test_encoder(void **state) {
    (void)state;
    enum { B = 2, T = 3, C = 4, V = 5 };
    const int tokens[B * T] = {1, 3, 1, 4, 1, 0};   // token 1 repeats: its gradient sums
    float *wte = falloc(V * C), *wpe = falloc(T * C), *out = falloc(B * T * C), *w = falloc(B * T * C);
    fill(wte, V * C, -1, 1);
    fill(wpe, T * C, -1, 1);
    fill(w, B * T * C, -1, 1);
    EncCtx ctx = {B, T, C, tokens, wte, wpe, out, w};
    enc_loss(&ctx);
    double ref[B * T * C];
    for (int bt = 0; bt < B * T; bt++)
        for (int c = 0; c < C; c++)
            ref[bt * C + c] = (double)wte[tokens[bt] * C + c] + wpe[(bt % T) * C + c];
    assert_close("encoder forward", out, ref, B * T * C, 0.0, 1e-7);

    float *dwte0 = falloc(V * C), *dwpe0 = falloc(T * C);
    fill(dwte0, V * C, -1, 1);
    fill(dwpe0, T * C, -1, 1);
    float *dwte = dup(dwte0, V * C), *dwpe = dup(dwpe0, T * C);
    be->encoder_backward(dwte, dwpe, w, tokens, B, T, C);
    float *gte = diff(dwte, dwte0, V * C), *gpe = diff(dwpe, dwpe0, T * C);
    grad_check("encoder dwte", wte, V * C, gte, enc_loss, &ctx, 1e-2f, 1e-4, 1e-3);
    grad_check("encoder dwpe", wpe, T * C, gpe, enc_loss, &ctx, 1e-2f, 1e-4, 1e-3);
    // frozen wpe: NULL is skipped, dwte the same
    memcpy(dwte, dwte0, V * C * sizeof(float));
    be->encoder_backward(dwte, NULL, w, tokens, B, T, C);
    float *gte2 = diff(dwte, dwte0, V * C);
    assert_close_f("encoder dwte (dwpe NULL)", gte2, gte, V * C, 0.0, 0.0);
    free(wte); free(wpe); free(out); free(w); free(dwte0); free(dwpe0); free(dwte);
    free(dwpe); free(gte); free(gpe); free(gte2);
}

// ----------------------------------------------------------------------------
// layernorm

typedef struct {
    int N, C;
    float *inp, *weight, *bias, *out, *mean, *rstd, *w;
} LnCtx;

static const float LN_EPS = 1e-5f;

static double ln_loss(void *p) {
    LnCtx *c = p;
    be->layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->weight, c->bias, c->N, c->C, LN_EPS, NULL);
    return dot(c->w, c->out, (size_t)c->N * c->C);
}

static void test_layernorm(void **state) {
    (void)state;
    enum { N = 3, C = 24 };   // one full 16-lane block of the row sums and a tail
    float *inp = falloc(N * C), *weight = falloc(C), *bias = falloc(C), *out = falloc(N * C);
    float *mean = falloc(N), *rstd = falloc(N), *w = falloc(N * C);
    fill(inp, N * C, -2, 2);
    fill(weight, C, 0.5, 1.5);
    fill(bias, C, -1, 1);
    fill(w, N * C, -1, 1);
    LnCtx ctx = {N, C, inp, weight, bias, out, mean, rstd, w};
    ln_loss(&ctx);
    double ref[N * C], rmean[N], rrstd[N];
    for (int n = 0; n < N; n++) {
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += inp[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (inp[n * C + c] - m) * (inp[n * C + c] - m);
        v /= C;
        rmean[n] = m;
        rrstd[n] = 1.0 / sqrt(v + LN_EPS);
        for (int c = 0; c < C; c++)
            ref[n * C + c] = (inp[n * C + c] - m) * rrstd[n] * weight[c] + bias[c];
    }
    assert_close("layernorm forward", out, ref, N * C, 1e-6, 1e-5);
    assert_close("layernorm mean", mean, rmean, N, 1e-6, 1e-5);
    assert_close("layernorm rstd", rstd, rrstd, N, 1e-6, 1e-5);

    float *dinp0 = falloc(N * C), *dw0 = falloc(C), *db0 = falloc(C);
    fill(dinp0, N * C, -1, 1);
    fill(dw0, C, -1, 1);
    fill(db0, C, -1, 1);
    float *dinp = dup(dinp0, N * C), *dw = dup(dw0, C), *db = dup(db0, C);
    be->layernorm_backward(dinp, dw, db, w, inp, weight, mean, rstd, N, C);
    float *gi = diff(dinp, dinp0, N * C), *gw = diff(dw, dw0, C), *gb = diff(db, db0, C);
    grad_check("layernorm dinp", inp, N * C, gi, ln_loss, &ctx, 1e-2f, 1e-3, 1e-2);
    grad_check("layernorm dweight", weight, C, gw, ln_loss, &ctx, 1e-2f, 1e-4, 1e-3);
    grad_check("layernorm dbias", bias, C, gb, ln_loss, &ctx, 1e-2f, 1e-4, 1e-3);
    // frozen weight and bias: dinp unchanged
    memcpy(dinp, dinp0, N * C * sizeof(float));
    be->layernorm_backward(dinp, NULL, NULL, w, inp, weight, mean, rstd, N, C);
    float *gi2 = diff(dinp, dinp0, N * C);
    assert_close_f("layernorm dinp (frozen)", gi2, gi, N * C, 0.0, 0.0);
    free(inp); free(weight); free(bias); free(out); free(mean); free(rstd); free(w);
    free(dinp0); free(dw0); free(db0); free(dinp); free(dw); free(db); free(gi); free(gw);
    free(gb); free(gi2);
}

// ----------------------------------------------------------------------------
// linear layer: gemm + bias_add forward, gemm + bias_backward backward

typedef struct {
    int N, IC, OC, ldo;
    float *inp, *weight, *bias, *out, *w;   // weight (OC, IC); out rows ldo apart
} LinCtx;

static double lin_loss(void *p) {
    LinCtx *c = p;
    be->gemm(0, 1, c->N, c->OC, c->IC, 1.0f, c->inp, c->IC, c->weight, c->IC, 0.0f, c->out, c->ldo);
    be->bias_add(c->out, c->bias, c->N, c->OC, c->ldo, NULL);
    double s = 0.0;
    for (int n = 0; n < c->N; n++) s += dot(c->w + (size_t)n * c->ldo, c->out + (size_t)n * c->ldo, c->OC);
    return s;
}

static void test_linear(void **state) {
    (void)state;
    enum { N = 5, IC = 6, OC = 7, LDO = OC + 3 };
    float *inp = falloc(N * IC), *weight = falloc(OC * IC), *bias = falloc(OC);
    float *out = falloc(N * LDO), *w = falloc(N * LDO);
    fill(inp, N * IC, -1, 1);
    fill(weight, OC * IC, -1, 1);
    fill(bias, OC, -1, 1);
    fill(w, N * LDO, -1, 1);
    for (int n = 0; n < N; n++) fill_nan(w + n * LDO + OC, LDO - OC);   // padding: never read
    LinCtx ctx = {N, IC, OC, LDO, inp, weight, bias, out, w};
    lin_loss(&ctx);
    double ref[N * OC];
    float got[N * OC];
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias[o];
            for (int i = 0; i < IC; i++) s += (double)inp[n * IC + i] * weight[o * IC + i];
            ref[n * OC + o] = s;
            got[n * OC + o] = out[n * LDO + o];
        }
    assert_close("linear forward", got, ref, N * OC, 1e-6, 1e-5);

    float *dinp = falloc(N * IC), *dw0 = falloc(OC * IC), *db0 = falloc(OC);
    fill_nan(dinp, N * IC);
    fill(dw0, OC * IC, -1, 1);
    fill(db0, OC, -1, 1);
    float *dw = dup(dw0, OC * IC), *db = dup(db0, OC);
    be->gemm(0, 0, N, IC, OC, 1.0f, w, LDO, weight, IC, 0.0f, dinp, IC);     // dinp = dout W
    be->gemm(1, 0, OC, IC, N, 1.0f, w, LDO, inp, IC, 1.0f, dw, IC);          // dW += dout^T x
    be->bias_backward(db, w, N, OC, LDO);
    float *gw = diff(dw, dw0, OC * IC), *gb = diff(db, db0, OC);
    grad_check("linear dinp", inp, N * IC, dinp, lin_loss, &ctx, 1e-2f, 1e-4, 1e-3);
    grad_check("linear dweight", weight, OC * IC, gw, lin_loss, &ctx, 1e-2f, 1e-4, 1e-3);
    grad_check("linear dbias", bias, OC, gb, lin_loss, &ctx, 1e-2f, 1e-4, 1e-3);
    free(inp); free(weight); free(bias); free(out); free(w); free(dinp); free(dw0); free(db0);
    free(dw); free(db); free(gw); free(gb);
}

// ----------------------------------------------------------------------------
// attention

typedef struct {
    int B, T, C, NH;
    const uint8_t *mask;
    float p;
    uint64_t seed;
    float *qkv, *out, *att, *w;
} AttCtx;

static double att_loss(void *ptr) {
    AttCtx *c = ptr;
    be->attention_forward(c->out, c->att, c->qkv, c->mask, c->B, c->T, c->C, c->NH, c->p, c->seed);
    return dot(c->w, c->out, (size_t)c->B * c->T * c->C);
}

// Double-precision reference of the forward pass, written from the definition.
static void att_reference(double *out, double *att, const float *qkv, const uint8_t *mask,
                          int B, int T, int C, int NH, float p, uint64_t seed) {
    int hs = C / NH;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double *a = att + (((size_t)b * NH + h) * T + i) * T;
                const float *q = qkv + ((size_t)b * T + i) * 3 * C + h * hs;
                double mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    const float *k = qkv + ((size_t)b * T + j) * 3 * C + C + h * hs;
                    double s = 0.0;
                    for (int d = 0; d < hs; d++) s += (double)q[d] * k[d];
                    a[j] = s / sqrt((double)hs);
                    int visible = j <= i && (!mask || mask[b * T + j]);
                    if (visible && a[j] > mx) mx = a[j];
                }
                double sum = 0.0;
                for (int j = 0; j < T; j++) {
                    int visible = j <= i && (!mask || mask[b * T + j]);
                    a[j] = visible ? exp(a[j] - mx) : 0.0;
                    sum += a[j];
                }
                for (int j = 0; j < T; j++) a[j] = sum > 0.0 ? a[j] / sum : 0.0;
                double *o = out + ((size_t)b * T + i) * C + h * hs;
                for (int d = 0; d < hs; d++) {
                    double s = 0.0;
                    for (int j = 0; j < T; j++) {
                        double aj = a[j];
                        if (p > 0.0f) {
                            uint64_t idx = (((uint64_t)b * NH + h) * T + i) * T + j;
                            aj = dropout_keep_u01(seed, idx) < p ? 0.0 : aj / (1.0 - p);
                        }
                        s += aj * qkv[((size_t)b * T + j) * 3 * C + 2 * C + h * hs + d];
                    }
                    o[d] = s;
                }
            }
}

// B = 2, C = 8, two heads, sequence length T.
static void attention_case(const char *name, int T, const uint8_t *mask, float p) {
    enum { B = 2, C = 8, NH = 2 };
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = falloc(nqkv), *out = falloc(nout), *att = falloc(natt), *w = falloc(nout);
    fill(qkv, nqkv, -1.5, 1.5);
    fill(w, nout, -1, 1);
    AttCtx ctx = {B, T, C, NH, mask, p, 99, qkv, out, att, w};
    fill_nan(att, natt);   // the forward writes every entry, the blocks it skips included
    att_loss(&ctx);
    double *rout = dalloc(nout), *ratt = dalloc(natt);
    att_reference(rout, ratt, qkv, mask, B, T, C, NH, p, 99);
    char what[96];
    snprintf(what, sizeof what, "attention %s forward out", name);
    assert_close(what, out, rout, nout, 1e-6, 1e-5);
    snprintf(what, sizeof what, "attention %s forward att", name);
    assert_close(what, att, ratt, natt, 1e-6, 1e-5);

    float *dqkv = falloc(nqkv), *datt = falloc(natt);
    fill_nan(dqkv, nqkv);
    fill_nan(datt, natt);
    be->attention_backward(dqkv, datt, w, qkv, att, mask, B, T, C, NH, p, 99);
    snprintf(what, sizeof what, "attention %s dqkv", name);
    grad_check(what, qkv, nqkv, dqkv, att_loss, &ctx, 1e-2f, 1e-3, 1e-2);
    free(qkv); free(out); free(att); free(w); free(rout); free(ratt); free(dqkv); free(datt);
}

// The bf16 attention against the fp32 one run on its bf16 inputs widened. Forward: the same
// exact products, so the probabilities differ by their rounding to bf16 (half an ulp, 2^-9
// relative) and out by that rounding's effect; the probabilities' buffer starts as NaN bits,
// every entry must be written. Backward: they differ by the rounding of dy and of the score
// gradient to bf16 (relative 2^-9 each).
static void attention_bf16_case(const char *name, int T, const uint8_t *mask, float p) {
    enum { B = 2, C = 32, NH = 2 };
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = falloc(nqkv), *out = falloc(nout), *att = falloc(natt), *dout = falloc(nout);
    float *qkvw = falloc(nqkv), *attw = falloc(natt), *datt = falloc(natt), *scores = falloc(natt);
    float *ref = falloc(nqkv), *got = falloc(nqkv), *out16 = falloc(nout);
    uint16_t *qkv16 = malloc(nqkv * 2), *att16 = malloc(natt * 2);
    fill(qkv, nqkv, -1.5, 1.5);
    fill(dout, nout, -1, 1);
    be->to_bf16(qkv16, qkv, 1, (int)nqkv, (int)nqkv, NULL);
    be->from_bf16(qkvw, qkv16, nqkv);
    be->attention_forward(out, att, qkvw, mask, B, T, C, NH, p, 7);
    memset(att16, 0xff, natt * 2);
    fill_nan(scores, natt);
    be->attention_forward_bf16(out16, scores, att16, qkv16, mask, B, T, C, NH, p, 7);
    be->from_bf16(attw, att16, natt);
    for (size_t i = 0; i < natt; i++)
        if (!(fabs((double)attw[i] - att[i]) <= fabs((double)att[i]) / 256 + 1e-7))
            fail_msg("attention bf16 %s: att[%zu] = %g, fp32 %g", name, i, attw[i], att[i]);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < nout; i++) {
        worst = fmax(worst, fabs((double)out16[i] - out[i]));
        scale = fmax(scale, fabs((double)out[i]));
        if (isnan(out16[i])) fail_msg("attention bf16 %s: out[%zu] is NaN", name, i);
    }
    if (!(worst <= 1e-2 * scale)) fail_msg("attention bf16 %s: max |out - fp32| = %g, max |out| = %g", name, worst, scale);
    fill_nan(datt, natt);
    be->attention_backward(ref, datt, dout, qkvw, attw, mask, B, T, C, NH, p, 7);
    fill_nan(datt, natt);
    fill_nan(got, nqkv);
    be->attention_backward_bf16(got, datt, dout, qkv16, att16, mask, B, T, C, NH, p, 7);
    worst = 0, scale = 0;
    for (size_t i = 0; i < nqkv; i++) {
        worst = fmax(worst, fabs((double)got[i] - ref[i]));   // a NaN fails below
        scale = fmax(scale, fabs((double)ref[i]));
        if (isnan(got[i])) fail_msg("attention bf16 %s: dqkv[%zu] is NaN", name, i);
    }
    if (!(worst <= 1e-2 * scale)) fail_msg("attention bf16 %s: max |dqkv - fp32| = %g, max |dqkv| = %g", name, worst, scale);
    free(qkv); free(out); free(att); free(dout); free(qkvw); free(attw); free(datt); free(ref); free(got);
    free(qkv16); free(att16); free(scores); free(out16);
}

static void test_attention_bf16(void **state) {
    (void)state;
    const uint8_t mask[2 * 5] = {1, 1, 1, 1, 0,
                                 0, 1, 1, 0, 1};
    attention_bf16_case("causal", 40, NULL, 0.0f);
    attention_bf16_case("dropout", 40, NULL, 0.2f);
    attention_bf16_case("padded", 5, mask, 0.0f);
    // three causal blocks of queries and keys, the last one short
    attention_bf16_case("causal, 150 positions", 150, NULL, 0.0f);
    attention_bf16_case("dropout, 150 positions", 150, NULL, 0.2f);
}

static void test_attention(void **state) {
    (void)state;
    attention_case("causal", 5, NULL, 0.0f);
}

// A longer sequence (T = 150: rows of up to 150 keys, each padded to a multiple of 16 in the
// softmax; three causal blocks of the products, the last one short), gradients checked by
// finite differences; the backward's scratch starts as NaN.
static void test_attention_long(void **state) {
    (void)state;
    attention_case("causal, 150 positions", 150, NULL, 0.0f);
    attention_case("dropout, 150 positions", 150, NULL, 0.2f);
}

static void test_attention_padding(void **state) {
    (void)state;
    // batch 1: query 0 sees only key 0, which is padding: a fully padded row
    const uint8_t mask[2 * 5] = {1, 1, 1, 1, 0,
                                 0, 1, 1, 0, 1};
    attention_case("padded", 5, mask, 0.0f);

    enum { B = 2, T = 5, C = 8, NH = 2 };
    float qkv[B * T * 3 * C], out[B * T * C], att[B * NH * T * T];
    fill(qkv, B * T * 3 * C, -1.5, 1.5);
    be->attention_forward(out, att, qkv, mask, B, T, C, NH, 0.0f, 0);
    for (int c = 0; c < C; c++) assert_true(out[(1 * T + 0) * C + c] == 0.0f);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                const float *a = att + (((size_t)b * NH + h) * T + i) * T;
                double sum = 0.0;
                int any = 0;
                for (int j = 0; j < T; j++) {
                    int visible = j <= i && mask[b * T + j];
                    any |= visible;
                    if (!visible) assert_true(a[j] == 0.0f);
                    sum += a[j];
                }
                assert_true(fabs(sum - (any ? 1.0 : 0.0)) < 1e-6);
            }
}

static void test_attention_dropout(void **state) {
    (void)state;
    const uint8_t mask[2 * 5] = {1, 1, 1, 1, 1,
                                 1, 1, 0, 1, 1};
    attention_case("dropout", 5, mask, 0.3f);
}

// Larger shapes: forward against the reference, and 1 thread == 2 threads bit for bit.
static void test_attention_larger(void **state) {
    (void)state;
    enum { B = 3, T = 37, C = 24, NH = 3 };
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = falloc(nqkv), *out = falloc(nout), *att = falloc(natt);
    float *out1 = falloc(nout), *att1 = falloc(natt), *dout = falloc(nout);
    float *dqkv = falloc(nqkv), *dqkv1 = falloc(nqkv), *datt = falloc(natt);
    uint8_t mask[B * T];
    for (int i = 0; i < B * T; i++) mask[i] = (i % 7) != 3;
    fill(qkv, nqkv, -2, 2);
    fill(dout, nout, -1, 1);
    be->attention_forward(out, att, qkv, mask, B, T, C, NH, 0.1f, 5);
    double *rout = dalloc(nout), *ratt = dalloc(natt);
    att_reference(rout, ratt, qkv, mask, B, T, C, NH, 0.1f, 5);
    assert_close("attention larger out", out, rout, nout, 1e-5, 1e-4);
    assert_close("attention larger att", att, ratt, natt, 1e-6, 1e-4);
    be->attention_backward(dqkv, datt, dout, qkv, att, mask, B, T, C, NH, 0.1f, 5);
    backend_cpu()->set_threads(1);
    be->attention_forward(out1, att1, qkv, mask, B, T, C, NH, 0.1f, 5);
    be->attention_backward(dqkv1, datt, dout, qkv, att1, mask, B, T, C, NH, 0.1f, 5);
    backend_cpu()->set_threads(2);
    // oneDNN may split a product's work (and so its sums) differently for another team size:
    // one thread agrees with two to float rounding, not bit for bit.
    double *r1 = dalloc(nqkv);
    for (size_t i = 0; i < nout; i++) r1[i] = out1[i];
    assert_close("attention larger out, 1 vs 2 threads", out, r1, nout, 1e-6, 1e-5);
    for (size_t i = 0; i < nqkv; i++) r1[i] = dqkv1[i];
    assert_close("attention larger dqkv, 1 vs 2 threads", dqkv, r1, nqkv, 1e-6, 1e-5);
    free(qkv); free(out); free(att); free(out1); free(att1); free(dout); free(dqkv);
    free(dqkv1); free(datt); free(rout); free(ratt); free(r1);
}

// ----------------------------------------------------------------------------
// fused ops: bias + GELU, residual + LayerNorm, against double-precision references of the
// unfused steps, at a size above the parallel threshold (N = 300 rows)

static double gelu_ref(double x);
static double gelu_grad_ref(double x);

static void test_bias_gelu(void **state) {
    (void)state;
    enum { N = 300, OC = 96 };
    size_t n = (size_t)N * OC;
    float *x = falloc(n), *x0 = falloc(n), *out = falloc(n), *bias = falloc(OC);
    double *rpre = dalloc(n), *rout = dalloc(n);
    fill(x0, n, -4, 4);
    fill(bias, OC, -1, 1);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        memcpy(x, x0, n * sizeof(float));
        fill_nan(out, n);
        for (size_t i = 0; i < n; i++) {
            float pre = with_bias ? x0[i] + bias[i % OC] : x0[i];   // the float sum, as bias_add
            rpre[i] = pre;
            rout[i] = gelu_ref(pre);
        }
        be->bias_gelu_forward(out, x, with_bias ? bias : NULL, N, OC, NULL, NULL);
        assert_close(with_bias ? "bias_gelu pre-activation" : "gelu (no bias) input kept", x, rpre, n, 0, 0);
        assert_close(with_bias ? "bias_gelu out" : "gelu (no bias) out", out, rout, n, 1e-6, 1e-6);
    }
    // the bf16 outputs: GELU's bits as above (and their to_bf16), and GELU' rounded, within bf16's
    // half ulp of the double-precision derivative; out may be left out
    uint16_t *out16 = calloc(n, 2), *want16 = calloc(n, 2), *dg16 = calloc(n, 2), *dg16b = calloc(n, 2);
    float *out2 = falloc(n), *dgw = falloc(n);
    double *rdg = dalloc(n);
    for (size_t i = 0; i < n; i++) rdg[i] = gelu_grad_ref((float)rpre[i]);
    memcpy(x, x0, n * sizeof(float));
    be->bias_gelu_forward(out2, x, bias, N, OC, out16, dg16);
    assert_memory_equal(out2, out, n * sizeof(float));
    be->to_bf16(want16, out, N, OC, OC, NULL);
    assert_memory_equal(out16, want16, n * 2);
    be->from_bf16(dgw, dg16, n);
    assert_close("bias_gelu GELU' in bf16", dgw, rdg, n, 1e-5, 1.0 / 256);
    memcpy(x, x0, n * sizeof(float));
    memset(out16, 0, n * 2);
    be->bias_gelu_forward(NULL, x, bias, N, OC, out16, dg16b);
    assert_memory_equal(out16, want16, n * 2);
    assert_memory_equal(dg16b, dg16, n * 2);
    free(out16); free(want16); free(dg16); free(dg16b); free(out2); free(dgw); free(rdg);
    free(x); free(x0); free(out); free(bias); free(rpre); free(rout);
}

// bias_add's bf16 copy: to_bf16 of the sums it writes, rows ldo apart.
static void test_bias_add_bf16(void **state) {
    (void)state;
    enum { N = 300, OC = 96, LD = 100 };
    size_t n = (size_t)N * LD;
    float *x = falloc(n), *y = falloc(n), *bias = falloc(OC);
    uint16_t *h = calloc((size_t)N * OC, 2), *want = calloc((size_t)N * OC, 2);
    fill(x, n, -4, 4);
    fill(bias, OC, -1, 1);
    memcpy(y, x, n * sizeof(float));
    be->bias_add(x, bias, N, OC, LD, NULL);
    be->bias_add(y, bias, N, OC, LD, h);
    assert_memory_equal(y, x, n * sizeof(float));
    be->to_bf16(want, x, N, OC, LD, NULL);
    assert_memory_equal(h, want, (size_t)N * OC * 2);
    free(x); free(y); free(bias); free(h); free(want);
}

// The backward from the kept bf16 derivative: gelu_backward multiplies by it exactly, and
// gelu_backward_bf16 rounds that product (to_bf16's bits) and sums its columns into dbias.
static void test_gelu_backward_bf16(void **state) {
    (void)state;
    enum { N = 300, OC = 96 };
    size_t n = (size_t)N * OC;
    float *x = falloc(n), *dy = falloc(n), *dx = falloc(n), *dbias = falloc(OC);
    uint16_t *dg16 = calloc(n, 2), *dx16 = calloc(n, 2), *want16 = calloc(n, 2);
    double *rsum = dalloc(OC);
    fill(x, n, -4, 4);
    fill(dy, n, -1, 1);
    fill(dbias, OC, -1, 1);
    be->bias_gelu_forward(NULL, x, NULL, N, OC, NULL, dg16);
    be->gelu_backward(dx, NULL, dg16, dy, n);
    for (size_t i = 0; i < n; i++) assert_true(dx[i] == dy[i] * bf16_to_float(dg16[i]));
    for (int c = 0; c < OC; c++) {
        rsum[c] = dbias[c];
        for (int r = 0; r < N; r++) rsum[c] += dx[(size_t)r * OC + c];
    }
    be->to_bf16(want16, dx, N, OC, OC, NULL);
    be->gelu_backward_bf16(dx16, dbias, dg16, dy, N, OC);
    assert_memory_equal(dx16, want16, n * 2);
    assert_close("gelu_backward_bf16 dbias", dbias, rsum, OC, 1e-5, 1e-5);
    memset(dx16, 0, n * 2);
    be->gelu_backward_bf16(dx16, NULL, dg16, dy, N, OC);   // a frozen bias
    assert_memory_equal(dx16, want16, n * 2);
    free(x); free(dy); free(dx); free(dbias); free(dg16); free(dx16); free(want16); free(rsum);
}

static void test_residual_layernorm(void **state) {
    (void)state;
    enum { N = 300, C = 72 };
    size_t n = (size_t)N * C;
    float *a = falloc(n), *b = falloc(n), *sum = falloc(n), *out = falloc(n);
    float *mean = falloc(N), *rstd = falloc(N), *w = falloc(C), *bias = falloc(C);
    double *rsum = dalloc(n), *rout = dalloc(n), *rmean = dalloc(N), *rrstd = dalloc(N);
    fill(a, n, -2, 2);
    fill(b, n, -2, 2);
    fill(w, C, 0.5, 1.5);
    fill(bias, C, -0.5, 0.5);
    fill_nan(sum, n);
    fill_nan(out, n);
    for (int r = 0; r < N; r++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) {
            float s = a[(size_t)r * C + c] + b[(size_t)r * C + c];   // the float sum, as add
            rsum[(size_t)r * C + c] = s;
            m += s;
        }
        m /= C;
        for (int c = 0; c < C; c++) v += (rsum[(size_t)r * C + c] - m) * (rsum[(size_t)r * C + c] - m);
        v /= C;
        double s = 1.0 / sqrt(v + 1e-5);
        for (int c = 0; c < C; c++) rout[(size_t)r * C + c] = (rsum[(size_t)r * C + c] - m) * s * w[c] + bias[c];
        rmean[r] = m;
        rrstd[r] = s;
    }
    be->residual_layernorm_forward(sum, out, mean, rstd, a, b, w, bias, N, C, 1e-5f, NULL);
    assert_close("residual_layernorm sum", sum, rsum, n, 0, 0);
    assert_close("residual_layernorm out", out, rout, n, 1e-5, 1e-5);
    assert_close("residual_layernorm mean", mean, rmean, N, 1e-6, 1e-5);
    assert_close("residual_layernorm rstd", rstd, rrstd, N, 1e-6, 1e-5);
    // the sum may overwrite an input (the model writes the residual stream in place)
    memcpy(sum, a, n * sizeof(float));
    be->residual_layernorm_forward(sum, out, mean, rstd, sum, b, w, bias, N, C, 1e-5f, NULL);
    assert_close("residual_layernorm sum in place", sum, rsum, n, 0, 0);
    // the bf16 output: to_bf16 of the same out, with out or without it; layernorm_forward too
    uint16_t *h = calloc(n, 2), *want = calloc(n, 2);
    float *out2 = falloc(n);
    be->residual_layernorm_forward(sum, out, mean, rstd, a, b, w, bias, N, C, 1e-5f, NULL);
    be->to_bf16(want, out, N, C, C, NULL);
    be->residual_layernorm_forward(sum, out2, mean, rstd, a, b, w, bias, N, C, 1e-5f, h);
    assert_memory_equal(out2, out, n * sizeof(float));
    assert_memory_equal(h, want, n * 2);
    memset(h, 0, n * 2);
    be->residual_layernorm_forward(sum, NULL, mean, rstd, a, b, w, bias, N, C, 1e-5f, h);
    assert_memory_equal(h, want, n * 2);
    assert_close("residual_layernorm sum (bf16 out only)", sum, rsum, n, 0, 0);
    memset(h, 0, n * 2);
    be->layernorm_forward(out, mean, rstd, sum, w, bias, N, C, 1e-5f, NULL);
    be->to_bf16(want, out, N, C, C, NULL);
    be->layernorm_forward(NULL, mean, rstd, sum, w, bias, N, C, 1e-5f, h);
    assert_memory_equal(h, want, n * 2);
    assert_close("layernorm mean (bf16 out only)", mean, rmean, N, 1e-6, 1e-5);
    free(h); free(want); free(out2);
    free(a); free(b); free(sum); free(out); free(mean); free(rstd); free(w); free(bias);
    free(rsum); free(rout); free(rmean); free(rrstd);
}

// ----------------------------------------------------------------------------
// GELU

typedef struct {
    size_t n;
    float *inp, *out, *w;
} EwCtx;

static double gelu_loss(void *p) {
    EwCtx *c = p;
    be->gelu_forward(c->out, c->inp, c->n);
    return dot(c->w, c->out, c->n);
}

static double gelu_ref(double x) {
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

static double gelu_grad_ref(double x) {
    double s = sqrt(2.0 / M_PI), u = s * (x + 0.044715 * x * x * x), t = tanh(u);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * s * (1.0 + 3.0 * 0.044715 * x * x);
}

static void test_gelu(void **state) {
    (void)state;
    // finite differences on a small set that crosses the tanh approximation's branches
    enum { N = 24 };
    float inp[N] = {-6.0f, -4.0f, -3.0f, -2.2f, -1.5f, -1.0f, -0.6f, -0.31f, -0.3f, -0.29f,
                    -0.05f, -1e-3f, 0.0f, 1e-3f, 0.05f, 0.29f, 0.3f, 0.31f, 0.7f, 1.0f, 1.7f,
                    2.5f, 4.0f, 6.0f};
    float out[N], w[N], dinp[N];
    fill(w, N, -1, 1);
    fill_nan(dinp, N);
    EwCtx ctx = {N, inp, out, w};
    gelu_loss(&ctx);
    be->gelu_backward(dinp, inp, NULL, w, N);
    grad_check("gelu dinp", inp, N, dinp, gelu_loss, &ctx, 1e-2f, 1e-4, 1e-3);

    // a dense sweep against the double-precision formula and its derivative
    size_t n = 40001;
    float *x = falloc(n), *y = falloc(n), *g = falloc(n), *ones = falloc(n);
    double *ry = dalloc(n), *rg = dalloc(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(-10.0 + 20.0 * i / (n - 1));
        ones[i] = 1.0f;
        ry[i] = gelu_ref(x[i]);
        rg[i] = gelu_grad_ref(x[i]);
    }
    be->gelu_forward(y, x, n);
    be->gelu_backward(g, x, NULL, ones, n);
    assert_close("gelu forward sweep", y, ry, n, 1e-6, 1e-6);
    // For x << 0, 1 + tanh(u) and 1 - tanh(u)^2 lose their digits in float (the ulp of 1
    // is 6e-8), so the derivative is good to about 1e-6 absolute there, as in any float GELU.
    assert_close("gelu backward sweep", g, rg, n, 2e-6, 1e-5);
    free(x); free(y); free(g); free(ones); free(ry); free(rg);
}

// ----------------------------------------------------------------------------
// dropout

typedef struct {
    size_t n;
    float p;
    uint64_t seed;
    float *inp, *out, *w;
} DropCtx;

static double drop_loss(void *ptr) {
    DropCtx *c = ptr;
    be->dropout_forward(c->out, c->inp, c->n, c->p, c->seed);
    return dot(c->w, c->out, c->n);
}

static void test_dropout(void **state) {
    (void)state;
    const float p = 0.3f;
    size_t n = 100000;
    float *inp = falloc(n), *out = falloc(n), *dout = falloc(n), *dinp = falloc(n);
    fill(inp, n, 0.5, 1.5);   // nonzero, so a zero output means dropped
    fill(dout, n, -1, 1);
    be->dropout_forward(out, inp, n, p, 42);
    fill_nan(dinp, n);
    be->dropout_backward(dinp, dout, n, p, 42);
    size_t dropped = 0, mismatched = 0;
    double *ref = dalloc(n), *rgrad = dalloc(n);
    for (size_t i = 0; i < n; i++) {
        int drop = dropout_keep_u01(42, i) < p;
        dropped += out[i] == 0.0f;
        mismatched += (out[i] == 0.0f) != (dinp[i] == 0.0f);
        ref[i] = drop ? 0.0 : inp[i] / (1.0 - p);
        rgrad[i] = drop ? 0.0 : dout[i] / (1.0 - p);
    }
    assert_close("dropout forward", out, ref, n, 0.0, 1e-6);
    assert_close("dropout backward", dinp, rgrad, n, 0.0, 1e-6);
    assert_int_equal(mismatched, 0);   // the backward mask is the forward mask
    double frac = (double)dropped / n;   // std of frac is sqrt(p(1-p)/n) = 0.0014
    if (fabs(frac - p) > 0.01) fprintf(stderr, "MISMATCH dropout fraction %.4f, p %.2f\n", frac, p);
    assert_true(fabs(frac - p) <= 0.01);

    // another seed, another mask
    float *out2 = falloc(n);
    be->dropout_forward(out2, inp, n, p, 43);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += (out[i] == 0.0f) != (out2[i] == 0.0f);
    assert_true(differ > n / 4);

    // in place, and p = 0 copies
    memcpy(out2, inp, n * sizeof(float));
    be->dropout_forward(out2, out2, n, p, 42);
    assert_memory_equal(out2, out, n * sizeof(float));
    be->dropout_forward(out2, inp, n, 0.0f, 42);
    assert_memory_equal(out2, inp, n * sizeof(float));

    // finite differences on a small case
    enum { M = 16 };
    float x[M], y[M], w[M], dx[M];
    fill(x, M, -1, 1);
    fill(w, M, -1, 1);
    DropCtx ctx = {M, 0.5f, 7, x, y, w};
    be->dropout_backward(dx, w, M, 0.5f, 7);
    grad_check("dropout dinp", x, M, dx, drop_loss, &ctx, 1e-2f, 1e-5, 1e-4);
    free(inp); free(out); free(dout); free(dinp); free(ref); free(rgrad); free(out2);
}

// ----------------------------------------------------------------------------
// softmax + cross-entropy

typedef struct {
    int N, V, ldl;
    const int *targets;
    float eps, dloss;
    float *logits, *losses, *lse;
} CeCtx;

static double ce_loss(void *p) {
    CeCtx *c = p;
    be->crossentropy_forward(c->losses, c->lse, c->logits, c->ldl, c->targets, c->N, c->V, c->eps);
    double s = 0.0;
    for (int n = 0; n < c->N; n++) s += c->losses[n];
    return c->dloss * s;
}

static void test_crossentropy_hand(void **state) {
    (void)state;
    // logits (1, 2, 3): logsumexp = 3 + log(1 + e^-1 + e^-2) = 3.40760596444438.
    // target 0, eps 0.1: loss = lse - 0.9 * 1 - (0.1 / 3) * (1 + 2 + 3) = 2.30760596444438
    // target 2, eps 0:   loss = lse - 3 = 0.40760596444438
    // target -1: ignored, loss 0
    const float logits[3 * 3] = {1, 2, 3, 1, 2, 3, 1, 2, 3};
    float losses[3], lse[3];
    const int t_smooth[3] = {0, 2, -1};
    be->crossentropy_forward(losses, lse, logits, 3, t_smooth, 3, 3, 0.1f);
    const double want_smooth = 2.30760596444438;
    assert_close("crossentropy hand eps=0.1", &losses[0], &want_smooth, 1, 1e-6, 1e-6);
    assert_true(losses[2] == 0.0f);
    const double want_lse[3] = {3.40760596444438, 3.40760596444438, 3.40760596444438};
    assert_close("crossentropy hand logsumexp", lse, want_lse, 3, 1e-6, 1e-6);
    be->crossentropy_forward(losses, lse, logits, 3, t_smooth, 3, 3, 0.0f);
    const double want_plain = 0.40760596444438;
    assert_close("crossentropy hand eps=0", &losses[1], &want_plain, 1, 1e-6, 1e-6);
    // in place, dloss 1, eps 0, target 2: softmax (1, 2, 3) - onehot(2)
    //   = (0.09003057, 0.24472847, 0.66524096 - 1); an ignored row becomes 0
    float d[9];
    memcpy(d, logits, sizeof d);
    be->crossentropy_backward(d, 3, lse, t_smooth, 3, 3, 0.0f, 1.0f);
    const double want_d[6] = {0.0900305731703805, 0.244728471054798, 0.665240955774822 - 1.0, 0, 0, 0};
    assert_close("crossentropy hand gradient", d + 3, want_d, 6, 1e-6, 1e-6);
}

static void test_crossentropy(void **state) {
    (void)state;
    enum { N = 6, V = 7, LDL = 10 };
    const int targets[N] = {3, -1, 0, 6, -5, 2};
    float logits[N * LDL], losses[N], lse[N], dlogits[N * LDL];
    fill(logits, N * LDL, -3, 3);
    for (int eps_i = 0; eps_i < 2; eps_i++) {
        float eps = eps_i ? 0.1f : 0.0f;
        CeCtx ctx = {N, V, LDL, targets, eps, 0.25f, logits, losses, lse};
        ce_loss(&ctx);
        double rloss[N], rlse[N];
        for (int n = 0; n < N; n++) {
            const float *l = logits + n * LDL;
            double mx = -INFINITY, sum = 0.0;
            for (int v = 0; v < V; v++) mx = fmax(mx, l[v]);
            for (int v = 0; v < V; v++) sum += exp(l[v] - mx);
            rlse[n] = mx + log(sum);
            double loss = 0.0;
            for (int v = 0; v < V; v++) {
                double q = eps / V + (v == targets[n] ? 1.0 - eps : 0.0);
                loss -= q * (l[v] - rlse[n]);
            }
            rloss[n] = targets[n] < 0 ? 0.0 : loss;
        }
        assert_close("crossentropy losses", losses, rloss, N, 1e-6, 1e-6);
        assert_close("crossentropy logsumexp", lse, rlse, N, 1e-6, 1e-6);

        // in place over a copy of the logits whose padding columns hold a marker
        for (int i = 0; i < N * LDL; i++) dlogits[i] = (i % LDL) < V ? logits[i] : 123.0f;
        be->crossentropy_backward(dlogits, LDL, lse, targets, N, V, eps, 0.25f);
        float g[N * V];
        for (int n = 0; n < N; n++) {
            for (int v = 0; v < V; v++) g[n * V + v] = dlogits[n * LDL + v];
            for (int v = V; v < LDL; v++) assert_true(dlogits[n * LDL + v] == 123.0f);
            if (targets[n] < 0)
                for (int v = 0; v < V; v++) assert_true(g[n * V + v] == 0.0f);
        }
        // perturb only the V real columns of each row
        float *gg = falloc(N * V);
        double *num = dalloc(N * V);
        for (int n = 0; n < N; n++)
            for (int v = 0; v < V; v++) {
                float *x = &logits[n * LDL + v], save = *x, h = 1e-2f;
                float xp = save + h, xm = save - h;
                *x = xp;
                double lp = ce_loss(&ctx);
                *x = xm;
                double lm = ce_loss(&ctx);
                *x = save;
                num[n * V + v] = (lp - lm) / ((double)xp - (double)xm);
                gg[n * V + v] = g[n * V + v];
            }
        assert_close(eps_i ? "crossentropy dlogits eps=0.1" : "crossentropy dlogits eps=0", gg,
                     num, N * V, 1e-4, 1e-3);
        free(gg); free(num);
    }
}

// ----------------------------------------------------------------------------
// gather / scatter

typedef struct {
    int n, C;
    const int *rows;
    float *inp, *out, *w;
} GatherCtx;

static double gather_loss(void *p) {
    GatherCtx *c = p;
    be->gather_rows(c->out, c->inp, c->rows, c->n, c->C);
    return dot(c->w, c->out, (size_t)c->n * c->C);
}

static void test_gather_scatter(void **state) {
    (void)state;
    enum { R = 4, C = 3, n = 5 };
    const int rows[n] = {2, 0, 2, 3, 2};
    float inp[R * C], out[n * C], w[n * C];
    fill(inp, R * C, -1, 1);
    fill(w, n * C, -1, 1);
    GatherCtx ctx = {n, C, rows, inp, out, w};
    gather_loss(&ctx);
    for (int i = 0; i < n; i++)
        assert_memory_equal(out + i * C, inp + rows[i] * C, C * sizeof(float));
    float d0[R * C], d[R * C];
    fill(d0, R * C, -1, 1);
    memcpy(d, d0, sizeof d);
    be->scatter_add_rows(d, w, rows, n, C);
    double ref[R * C];
    for (int i = 0; i < R * C; i++) ref[i] = d0[i];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) ref[rows[i] * C + c] += w[i * C + c];
    assert_close("scatter_add_rows", d, ref, R * C, 1e-6, 1e-6);
    float *g = diff(d, d0, R * C);
    grad_check("gather dinp (scatter_add)", inp, R * C, g, gather_loss, &ctx, 1e-2f, 1e-5, 1e-4);
    free(g);
}

// ----------------------------------------------------------------------------
// AdamW

static void test_adamw_two_steps(void **state) {
    (void)state;
    // lr 0.01, beta1 0.9, beta2 0.999, eps 1e-8, weight decay 0.1.
    // Step 1: mhat = g, vhat = g^2, so p -= 0.01 * (g / (|g| + 1e-8) + 0.1 p):
    //   p0 =  1.0, g =  0.1: 1.0 - 0.01 * (0.9999999 + 0.1)      = 0.989000001
    //   p1 = -0.5, g = -0.2: -0.5 - 0.01 * (-0.99999995 - 0.05)  = -0.4895000005
    //   p2 =  2.0, g =  0.0: 2.0 - 0.01 * (0 + 0.2)              = 1.998
    // Step 2 (g = 0.3, 0.1, -0.4): m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g^2,
    //   mhat = m / 0.19, vhat = v / 0.001999. For p0: m = 0.039, v = 9.999e-5,
    //   mhat = 0.2052632, sqrt(vhat) = 0.2236522, p0 = 0.989 - 0.01 (0.9177829 + 0.0989)
    //   = 0.9788332; likewise p1 = -0.4863471, p2 = 2.0034434.
    float p[3] = {1.0f, -0.5f, 2.0f}, m[3] = {0}, v[3] = {0};
    const float g1[3] = {0.1f, -0.2f, 0.0f}, g2[3] = {0.3f, 0.1f, -0.4f};
    be->adamw_update(p, g1, m, v, 3, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 1);
    const double want1[3] = {0.989000001, -0.4895000005, 1.998};
    assert_close("adamw step 1", p, want1, 3, 1e-7, 1e-6);
    be->adamw_update(p, g2, m, v, 3, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 2);
    const double want2[3] = {0.978833190219559, -0.48634713027136756, 2.0034433679726433};
    assert_close("adamw step 2", p, want2, 3, 1e-7, 1e-6);
    const double want_m[3] = {0.039, -0.008, -0.04}, want_v[3] = {9.999e-5, 4.996e-5, 1.6e-4};
    assert_close("adamw m", m, want_m, 3, 1e-9, 1e-5);
    // v's tolerance is looser: 1 - 0.999f = 0.00099998713, a relative error of 1.3e-5 that
    // is in the float beta2 itself, not in the update.
    assert_close("adamw v", v, want_v, 3, 1e-12, 5e-5);
}

// ----------------------------------------------------------------------------
// SVD

static void svd_case(int M, int N) {
    int K = M < N ? M : N;
    float *A = falloc((size_t)M * N), *U = falloc((size_t)M * K), *S = falloc(K);
    float *Vt = falloc((size_t)K * N);
    fill(A, (size_t)M * N, -1, 1);
    assert_int_equal(be->svd(A, M, N, U, S, Vt), 0);
    for (int k = 0; k < K; k++) {
        assert_true(S[k] >= 0.0f);
        if (k > 0) assert_true(S[k] <= S[k - 1]);
    }
    double *rec = dalloc((size_t)M * N), *eye = dalloc((size_t)K * K);
    float *got = falloc((size_t)M * N), *uu = falloc((size_t)K * K), *vv = falloc((size_t)K * K);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)U[(size_t)i * K + k] * S[k] * Vt[(size_t)k * N + j];
            got[(size_t)i * N + j] = (float)s;
            rec[(size_t)i * N + j] = A[(size_t)i * N + j];
        }
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            double su = 0.0, sv = 0.0;
            for (int i = 0; i < M; i++) su += (double)U[(size_t)i * K + a] * U[(size_t)i * K + b];
            for (int j = 0; j < N; j++) sv += (double)Vt[(size_t)a * N + j] * Vt[(size_t)b * N + j];
            uu[a * K + b] = (float)su;
            vv[a * K + b] = (float)sv;
            eye[a * K + b] = a == b;
        }
    assert_close("svd reconstruction", got, rec, (size_t)M * N, 1e-5, 1e-5);
    assert_close("svd U^T U = I", uu, eye, (size_t)K * K, 1e-5, 0.0);
    assert_close("svd Vt Vt^T = I", vv, eye, (size_t)K * K, 1e-5, 0.0);
    free(A); free(U); free(S); free(Vt); free(rec); free(eye); free(got); free(uu); free(vv);
}

static void test_svd(void **state) {
    (void)state;
    svd_case(9, 4);
    svd_case(3, 8);
    svd_case(6, 6);
}

// ----------------------------------------------------------------------------
// NaN propagates (a diverged run must show a NaN loss, not a plausible number)

static void test_nan_propagates(void **state) {
    (void)state;
    const float logits[4] = {0.5f, NAN, 1.0f, 2.0f};
    const int target = 2;
    float loss, probs[4];
    be->crossentropy_forward(&loss, probs, logits, 4, &target, 1, 4, 0.1f);
    assert_true(isnan(loss));
    float x[2] = {NAN, 1.0f}, y[2];
    be->gelu_forward(y, x, 2);
    assert_true(isnan(y[0]) && !isnan(y[1]));

    enum { B = 1, T = 3, C = 4, NH = 1 };
    float qkv[B * T * 3 * C], out[B * T * C], att[B * NH * T * T];
    fill(qkv, B * T * 3 * C, -1, 1);
    for (int c = 0; c < C; c++) qkv[2 * 3 * C + c] = NAN;   // q of token 2: all its scores NaN
    be->attention_forward(out, att, qkv, NULL, B, T, C, NH, 0.0f, 0);
    for (int c = 0; c < C; c++) {
        assert_false(isnan(out[0 * C + c]) || isnan(out[1 * C + c]));
        assert_true(isnan(out[2 * C + c]));
    }
}

// ----------------------------------------------------------------------------
// parallel paths == serial paths (sizes above the backend's threshold)

static void test_parallel_reductions(void **state) {
    (void)state;
    // bias_backward: one call over all rows vs one call per row
    enum { N = 300, OC = 96 };
    float *dout = falloc(N * OC), *db = falloc(OC), *db_rows = falloc(OC);
    fill(dout, N * OC, -1, 1);
    be->bias_backward(db, dout, N, OC, OC);
    for (int n = 0; n < N; n++) be->bias_backward(db_rows, dout + n * OC, 1, OC, OC);
    assert_close_f("bias_backward parallel", db, db_rows, OC, 1e-5, 1e-5);

    // layernorm_backward: all rows vs row by row
    float *inp = falloc(N * OC), *weight = falloc(OC), *bias = falloc(OC), *out = falloc(N * OC);
    float *mean = falloc(N), *rstd = falloc(N);
    fill(inp, N * OC, -2, 2);
    fill(weight, OC, 0.5, 1.5);
    fill(bias, OC, -1, 1);
    be->layernorm_forward(out, mean, rstd, inp, weight, bias, N, OC, 1e-5f, NULL);
    float *dinp = falloc(N * OC), *dw = falloc(OC), *dbl = falloc(OC);
    float *dinp_r = falloc(N * OC), *dw_r = falloc(OC), *dbl_r = falloc(OC);
    be->layernorm_backward(dinp, dw, dbl, dout, inp, weight, mean, rstd, N, OC);
    for (int n = 0; n < N; n++)
        be->layernorm_backward(dinp_r + n * OC, dw_r, dbl_r, dout + n * OC, inp + n * OC, weight,
                               mean + n, rstd + n, 1, OC);
    assert_close_f("layernorm_backward parallel dinp", dinp, dinp_r, N * OC, 0.0, 0.0);
    assert_close_f("layernorm_backward parallel dweight", dw, dw_r, OC, 1e-5, 1e-5);
    assert_close_f("layernorm_backward parallel dbias", dbl, dbl_r, OC, 1e-5, 1e-5);

    // encoder_backward: all batches vs batch by batch
    enum { B = 8, T = 16, C = 512, V = 11 };
    int tokens[B * T];
    for (int i = 0; i < B * T; i++) tokens[i] = (i * 7) % V;
    float *d = falloc((size_t)B * T * C), *dwte = falloc(V * C), *dwpe = falloc(T * C);
    float *dwte_r = falloc(V * C), *dwpe_r = falloc(T * C);
    fill(d, (size_t)B * T * C, -1, 1);
    be->encoder_backward(dwte, dwpe, d, tokens, B, T, C);
    for (int b = 0; b < B; b++)
        be->encoder_backward(dwte_r, dwpe_r, d + (size_t)b * T * C, tokens + b * T, 1, T, C);
    assert_close_f("encoder_backward parallel dwte", dwte, dwte_r, V * C, 1e-5, 1e-5);
    assert_close_f("encoder_backward parallel dwpe", dwpe, dwpe_r, T * C, 1e-5, 1e-5);
    free(dout); free(db); free(db_rows); free(inp); free(weight); free(bias); free(out);
    free(mean); free(rstd); free(dinp); free(dw); free(dbl); free(dinp_r); free(dw_r);
    free(dbl_r); free(d); free(dwte); free(dwpe); free(dwte_r); free(dwpe_r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_memory_large),
        cmocka_unit_test(test_gemm_vs_naive),
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_bf16_colsum),
        cmocka_unit_test(test_vector_ops),
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_long),
        cmocka_unit_test(test_attention_bf16),
        cmocka_unit_test(test_attention_padding),
        cmocka_unit_test(test_attention_dropout),
        cmocka_unit_test(test_attention_larger),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_bias_gelu),
        cmocka_unit_test(test_gelu_backward_bf16),
        cmocka_unit_test(test_bias_add_bf16),
        cmocka_unit_test(test_residual_layernorm),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_crossentropy_hand),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_gather_scatter),
        cmocka_unit_test(test_adamw_two_steps),
        cmocka_unit_test(test_svd),
        cmocka_unit_test(test_nan_propagates),
        cmocka_unit_test(test_parallel_reductions),
    };
    return cmocka_run_group_tests_name("ops", tests, setup, NULL);
}
