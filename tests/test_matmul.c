// tests/test_matmul.c — the CPU backend's oneDNN products (core/cpu/matmul.h) against a
// double-precision naive reference.
//
// Every variant the backend uses: each transpose of A and B, accumulate (beta != 0) or
// overwrite (beta = 0, C holding NaN first), alpha != 1, row strides wider than the rows,
// batched over two dimensions through strided views (the attention's heads of a (B, T, 3C)
// tensor), K = 0, and the linear layers' own shapes (N = 2048 rows). fp32 and bf16 operands.
// Tolerance: |got - ref| <= 1e-5 * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|), i.e. 1e-5
// relative to the size of the terms summed (an element that cancels to ~0 is still checked).
// bf16 cases round the inputs with bf16_from_float first and the reference multiplies the
// rounded values: bf16 x bf16 products are exact in fp32, so fp32's tolerance holds.
// Also: a repeated product creates no new primitive, the flop counter counts 2 M N K per
// product and batch, and the ISA line names what oneDNN runs (under ONEDNN_MAX_CPU_ISA=AVX2:
// AVX2, with bf16 widened to fp32).
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
#include "core/cpu/matmul.h"

static uint64_t rng_state = 7;

static double rand_u01(void) {   // xorshift64*
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

// Fills n floats in [-1, 1); bf16: rounded to bf16 values, and the bf16 bits in h.
static void fill(float *x, uint16_t *h, size_t n, int bf16) {
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(2.0 * rand_u01() - 1.0);
        if (bf16) {
            h[i] = bf16_from_float(x[i]);
            x[i] = bf16_to_float(h[i]);
        }
    }
}

// The extent (in elements) a view with these dimensions and strides reaches, plus one.
static size_t extent(const Matmul *mm, int rows, int cols, const int64_t *st) {
    return (size_t)((mm->batch[0] - 1) * st[0] + (mm->batch[1] - 1) * st[1] + (rows - 1) * st[2] +
                    (cols - 1) * st[3]) + 1;
}

// Runs mm on random A, B, C (C's untouched elements hold a sentinel) and checks every
// element of the buffer C against the reference.
static void check(const char *what, const Matmul *mm) {
    size_t na = extent(mm, mm->M, mm->K > 0 ? mm->K : 1, mm->sa);
    size_t nb = extent(mm, mm->K > 0 ? mm->K : 1, mm->N, mm->sb);
    size_t nc = extent(mm, mm->M, mm->N, mm->sc);
    float *A = calloc(na, sizeof(float)), *B = calloc(nb, sizeof(float));
    float *C = calloc(nc, sizeof(float)), *C0 = calloc(nc, sizeof(float));
    uint16_t *Ah = calloc(na, sizeof(uint16_t)), *Bh = calloc(nb, sizeof(uint16_t));
    double *ref = calloc(nc, sizeof(double)), *mag = calloc(nc, sizeof(double));
    assert_true(A && B && C && C0 && Ah && Bh && ref && mag);
    fill(A, Ah, na, mm->bf16);
    fill(B, Bh, nb, mm->bf16);
    fill(C0, NULL, nc, 0);
    for (size_t i = 0; i < nc; i++) {   // what the product must leave alone stays C0
        ref[i] = C0[i];
        mag[i] = fabs(C0[i]);
    }
    for (int b0 = 0; b0 < mm->batch[0]; b0++)
        for (int b1 = 0; b1 < mm->batch[1]; b1++)
            for (int i = 0; i < mm->M; i++)
                for (int j = 0; j < mm->N; j++) {
                    double s = 0.0, m = 0.0;
                    for (int k = 0; k < mm->K; k++) {
                        double a = A[b0 * mm->sa[0] + b1 * mm->sa[1] + i * mm->sa[2] + k * mm->sa[3]];
                        double b = B[b0 * mm->sb[0] + b1 * mm->sb[1] + k * mm->sb[2] + j * mm->sb[3]];
                        s += a * b;
                        m += fabs(a * b);
                    }
                    size_t c = (size_t)(b0 * mm->sc[0] + b1 * mm->sc[1] + i * mm->sc[2] + j * mm->sc[3]);
                    ref[c] = mm->alpha * s + (mm->beta != 0.0f ? mm->beta * (double)C0[c] : 0.0);
                    mag[c] = fabs(mm->alpha) * m + fabs(mm->beta * (double)C0[c]);
                    if (mm->beta == 0.0f) C0[c] = NAN;   // overwrite means overwrite, NaN too
                }
    memcpy(C, C0, nc * sizeof(float));
    uint16_t *Ch = NULL;
    if (mm->c_bf16) {   // a bf16 C: what is left alone holds C0's bf16 bits, the rest NaN
        Ch = calloc(nc, sizeof(uint16_t));
        assert_true(Ch != NULL);
        for (size_t i = 0; i < nc; i++) {
            Ch[i] = bf16_from_float(C0[i]);
            if (!isnan(C0[i])) ref[i] = bf16_to_float(Ch[i]);
        }
    }
    cpu_matmul(mm, mm->bf16 ? (const void *)Ah : A, mm->bf16 ? (const void *)Bh : B, Ch ? (void *)Ch : C);
    if (Ch)
        for (size_t i = 0; i < nc; i++) C[i] = bf16_to_float(Ch[i]);
    size_t worst = 0;
    double worst_ratio = -1;
    for (size_t i = 0; i < nc; i++) {
        // a bf16 C adds its rounding: half a bf16 ulp, at most 2^-8 of the value
        double err = fabs(C[i] - ref[i]), tol = 1e-5 * mag[i] + (Ch ? fabs(ref[i]) / 256 : 0) + 1e-30;
        double ratio = isnan(err) ? INFINITY : err / tol;
        if (ratio > worst_ratio) { worst_ratio = ratio; worst = i; }
    }
    if (worst_ratio > 1.0 || getenv("LORALAB_TEST_VERBOSE"))
        fprintf(worst_ratio > 1.0 ? stderr : stdout,
                "%s %s (%s): worst [%zu] got %.9g ref %.9g, error/tolerance %.3g\n",
                worst_ratio > 1.0 ? "MISMATCH" : "ok", what,
                mm->c_bf16 ? "bf16, bf16 C" : mm->bf16 ? "bf16" : "fp32", worst,
                (double)C[worst], ref[worst], worst_ratio);
    assert_true(worst_ratio <= 1.0);
    free(A); free(B); free(C); free(C0); free(Ah); free(Bh); free(ref); free(mag); free(Ch);
}

static Matmul plain(int bf16, int ta, int tb, int M, int N, int K, float alpha, float beta,
                    int lda, int ldb, int ldc) {
    Matmul mm;
    memset(&mm, 0, sizeof mm);
    mm.bf16 = bf16;
    mm.batch[0] = mm.batch[1] = 1;
    mm.M = M; mm.N = N; mm.K = K;
    mm.alpha = alpha; mm.beta = beta;
    mm.sa[2] = ta ? 1 : lda; mm.sa[3] = ta ? lda : 1;
    mm.sb[2] = tb ? 1 : ldb; mm.sb[3] = tb ? ldb : 1;
    mm.sc[2] = ldc;          mm.sc[3] = 1;
    return mm;
}

// Each transpose, accumulate and overwrite, padded row strides, odd sizes.
static void test_2d_variants(void **state) {
    (void)state;
    static const int shapes[][3] = {{5, 7, 3}, {203, 70, 31}, {70, 203, 31}, {64, 48, 1}};
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (int s = 0; s < 4; s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int acc = 0; acc < 2; acc++) {
                        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                        Matmul mm = plain(bf16, ta, tb, M, N, K, 0.7f, acc ? -1.3f : 0.0f,
                                          (ta ? M : K) + 2, (tb ? K : N) + 3, N + 4);
                        char what[96];
                        snprintf(what, sizeof what, "%dx%dx%d ta=%d tb=%d %s", M, N, K, ta, tb,
                                 acc ? "beta=-1.3" : "beta=0");
                        check(what, &mm);
                    }
}

// The shapes of a micro training step's linear layers (N = B*T = 2048 rows, C = 128):
// forward x W^T, input gradient dy W, weight gradient dy^T x (accumulating).
static void test_linear_shapes(void **state) {
    (void)state;
    enum { N = 2048, C = 128 };
    for (int bf16 = 0; bf16 < 2; bf16++) {
        Matmul f = plain(bf16, 0, 1, N, 3 * C, C, 1.0f, 0.0f, C, C, 3 * C);
        check("c_attn forward", &f);
        Matmul d = plain(bf16, 0, 0, N, C, 4 * C, 1.0f, 0.0f, 4 * C, C, C);
        check("mlp c_proj input gradient", &d);
        Matmul w = plain(bf16, 1, 0, 4 * C, C, N, 1.0f, 1.0f, 4 * C, C, C);
        check("c_fc weight gradient", &w);
    }
}

// Attention's batched products over (batch, head) views of a (B, T, 3C) tensor.
static void test_batched_heads(void **state) {
    (void)state;
    enum { B = 3, T = 19, C = 24, NH = 3, hs = C / NH, C3 = 3 * C };
    for (int bf16 = 0; bf16 < 2; bf16++) {
        for (int tq = 0; tq < 2; tq++) {
            // scores = scale q k^T (tq: the other side transposed, as dk = da^T q reads)
            Matmul mm;
            memset(&mm, 0, sizeof mm);
            mm.bf16 = bf16;
            mm.batch[0] = B; mm.batch[1] = NH;
            mm.M = T; mm.N = T; mm.K = hs;
            mm.alpha = 0.35f; mm.beta = tq ? 0.5f : 0.0f;
            int64_t q[4] = {(int64_t)T * C3, hs, C3, 1}, kt[4] = {(int64_t)T * C3, hs, 1, C3};
            int64_t sq[4] = {(int64_t)NH * T * T, (int64_t)T * T, T, 1};
            memcpy(mm.sa, q, sizeof q);
            memcpy(mm.sb, kt, sizeof kt);
            memcpy(mm.sc, sq, sizeof sq);
            check(tq ? "q k^T accumulate" : "q k^T", &mm);
            // out = att v (tq: att^T v, the dv product)
            mm.M = T; mm.N = hs; mm.K = T;
            int64_t sqt[4] = {(int64_t)NH * T * T, (int64_t)T * T, 1, T};
            int64_t o[4] = {(int64_t)T * C, hs, C, 1};
            memcpy(mm.sa, tq ? sqt : sq, sizeof sq);
            memcpy(mm.sb, q, sizeof q);
            memcpy(mm.sc, o, sizeof o);
            check(tq ? "att^T v accumulate" : "att v", &mm);
        }
    }
}

// C in bf16 (bf16 operands, beta 0): each transpose, padded strides, the attention's
// batched view, and K = 0 (zeros).
static void test_bf16_output(void **state) {
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            Matmul mm = plain(1, ta, tb, 203, 70, 31, 0.7f, 0.0f, (ta ? 203 : 31) + 2, (tb ? 31 : 70) + 3, 74);
            mm.c_bf16 = 1;
            check(ta || tb ? "bf16 C, transposed" : "bf16 C", &mm);
        }
    enum { B = 3, T = 19, C = 24, NH = 3, hs = C / NH, C3 = 3 * C };
    Matmul mm;
    memset(&mm, 0, sizeof mm);
    mm.bf16 = mm.c_bf16 = 1;
    mm.batch[0] = B; mm.batch[1] = NH;
    mm.M = T; mm.N = T; mm.K = hs;
    mm.alpha = 1.0f;
    int64_t dy[4] = {(int64_t)T * C, hs, C, 1}, vt[4] = {(int64_t)T * C3, hs, 1, C3};
    int64_t sq[4] = {(int64_t)NH * T * T, (int64_t)T * T, T, 1};
    memcpy(mm.sa, dy, sizeof dy);
    memcpy(mm.sb, vt, sizeof vt);
    memcpy(mm.sc, sq, sizeof sq);
    check("dy v^T into bf16", &mm);
    Matmul z = plain(1, 0, 0, 4, 5, 0, 1.0f, 0.0f, 1, 5, 5);
    z.c_bf16 = 1;
    check("K=0 into bf16", &z);
}

// K = 0: C = beta C (beta = 0: zeros), for fp32 and bf16.
static void test_empty_sum(void **state) {
    (void)state;
    for (int bf16 = 0; bf16 < 2; bf16++) {
        Matmul a = plain(bf16, 0, 0, 4, 5, 0, 1.0f, 0.5f, 1, 5, 5);
        check("K=0 beta=0.5", &a);
        Matmul z = plain(bf16, 0, 0, 4, 5, 0, 1.0f, 0.0f, 1, 5, 5);
        check("K=0 beta=0", &z);
    }
}

// A repeated product reuses its primitive; another alpha is another primitive. The flop
// counter counts 2 M N K per batch.
static void test_cache_and_counters(void **state) {
    (void)state;
    enum { M = 33, N = 17, K = 9 };
    float A[M * K], B[K * N], C[M * N];
    for (int i = 0; i < M * K; i++) A[i] = (float)(i % 5) - 2.0f;
    for (int i = 0; i < K * N; i++) B[i] = (float)(i % 3) - 1.0f;
    cpu_matmul_2d(0, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    int n0 = cpu_matmul_primitives();
    double f0, s0, f1, s1;
    cpu_matmul_counters(&f0, &s0);
    for (int r = 0; r < 5; r++) cpu_matmul_2d(0, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    cpu_matmul_counters(&f1, &s1);
    assert_int_equal(cpu_matmul_primitives(), n0);
    assert_true(f1 - f0 == 5.0 * 2 * M * N * K);
    assert_true(s1 >= s0);
    cpu_matmul_2d(0, 0, 0, M, N, K, 2.0f, A, K, B, N, 0.0f, C, N);
    assert_int_equal(cpu_matmul_primitives(), n0 + 1);
    // another thread count is another primitive (oneDNN partitions work at creation)
    const Backend *be = backend_cpu();
    be->set_threads(1);
    cpu_matmul_2d(0, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    assert_int_equal(cpu_matmul_primitives(), n0 + 2);
    be->set_threads(2);
    cpu_matmul_2d(0, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    assert_int_equal(cpu_matmul_primitives(), n0 + 2);
}

// The ISA line names a known instruction set; capped at AVX2, it says AVX2 and that bf16
// operands are widened (oneDNN 2.x has no bf16 matmul below AVX-512).
static void test_isa_named(void **state) {
    (void)state;
    const char *isa = cpu_matmul_isa();
    printf("kernels: %s\n", isa);
    assert_non_null(strstr(isa, "oneDNN "));
    assert_null(strstr(isa, "unknown"));
    assert_string_equal(backend_cpu()->kernels(), isa);
    const char *cap = getenv("ONEDNN_MAX_CPU_ISA");
    if (cap && !strcmp(cap, "AVX2")) {
        assert_non_null(strstr(isa, "AVX2 (avx2)"));
        assert_non_null(strstr(isa, "bf16 widened to fp32"));
    }
}

int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    backend_cpu()->set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_2d_variants),     cmocka_unit_test(test_linear_shapes),
        cmocka_unit_test(test_batched_heads),   cmocka_unit_test(test_empty_sum),
        cmocka_unit_test(test_bf16_output),
        cmocka_unit_test(test_cache_and_counters), cmocka_unit_test(test_isa_named),
    };
    return cmocka_run_group_tests_name("matmul", tests, NULL, NULL);
}
