// tests/test_analysis.c — core/analysis: SVD through the backend, the subspace similarity φ
// and Table 7's amplification, each against a property or a value computed by hand.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/analysis.h"
#include "core/cpu/backend_cpu.h"
#include "core/backend.h"
#include "core/errors.h"

// cmocka 1.1.5 has no assert_double_equal
#define assert_near(a, b, tol) near_((a), (b), (tol), __LINE__)
static void near_(double a, double b, double tol, int line) {
    if (!(fabs(a - b) <= tol)) fail_msg("line %d: %.17g differs from %.17g by more than %g", line, a, b, tol);
}

static float *gaussian(int n, uint64_t seed) {
    float *x = xmalloc((size_t)n * sizeof(float));
    analysis_gaussian(x, (size_t)n, seed);
    return x;
}

// ----------------------------------------------------------------------------
// SVD

static void check_svd(int M, int N, uint64_t seed) {
    const Backend *be = backend_cpu();
    int K = M < N ? M : N;
    float *A = gaussian(M * N, seed);
    float *U = xmalloc((size_t)M * K * sizeof(float)), *S = xmalloc((size_t)K * sizeof(float));
    float *Vt = xmalloc((size_t)K * N * sizeof(float));
    assert_int_equal(analysis_svd(be, A, M, N, U, S, Vt), 0);
    for (int a = 0; a + 1 < K; a++) assert_true(S[a] >= S[a + 1] && S[a + 1] >= 0.0f);
    // A = U diag(S) Vt
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double x = 0.0;
            for (int a = 0; a < K; a++) x += (double)U[m * K + a] * S[a] * Vt[a * N + n];
            assert_near(x, A[m * N + n], 1e-5);
        }
    // UᵀU = I (K x K) and Vt Vtᵀ = I
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            double uu = 0.0, vv = 0.0;
            for (int m = 0; m < M; m++) uu += (double)U[m * K + a] * U[m * K + b];
            for (int n = 0; n < N; n++) vv += (double)Vt[a * N + n] * Vt[b * N + n];
            assert_near(uu, a == b, 1e-5);
            assert_near(vv, a == b, 1e-5);
        }
    free(A);
    free(U);
    free(S);
    free(Vt);
}

static void test_svd(void **state) {
    (void)state;
    check_svd(7, 5, 1);
    check_svd(5, 9, 2);
    check_svd(16, 16, 3);
}

static void test_svd_nan_fails(void **state) {
    (void)state;
    float A[6] = {1, 2, NAN, 4, 5, 6}, U[4], S[2], Vt[6];
    assert_int_equal(analysis_svd(backend_cpu(), A, 2, 3, U, S, Vt), -1);
    assert_non_null(strstr(err_msg(), "SVD of a 2 x 3 matrix failed"));
}

// ----------------------------------------------------------------------------
// φ

static void test_phi_self(void **state) {
    (void)state;
    // U^{(i)} ⊂ U^{(j)} for i <= j, so ‖U^{(i)ᵀ} U^{(j)}‖² = min(i, j): φ(A, A, i, j) = 1
    enum { R = 8, K = 32 };
    float *A = gaussian(R * K, 7);
    double phi[R * R];
    assert_int_equal(analysis_phi(backend_cpu(), phi, A, R, R, A, R, R, K), 0);
    for (int i = 0; i < R * R; i++) assert_near(phi[i], 1.0, 1e-5);
    assert_near(analysis_phi_diag_mean(phi, R, R), 1.0, 1e-5);
    free(A);
}

static void test_phi_orthogonal(void **state) {
    (void)state;
    // rows of A1 in span(e_0..e_3), rows of A2 in span(e_4..e_11): every φ is 0
    enum { R1 = 3, R2 = 5, K = 12 };
    float A1[R1 * K] = {0}, A2[R2 * K] = {0};
    float *g = gaussian(R1 * 4 + R2 * 8, 11);
    for (int a = 0; a < R1; a++)
        for (int c = 0; c < 4; c++) A1[a * K + c] = g[a * 4 + c];
    for (int b = 0; b < R2; b++)
        for (int c = 0; c < 8; c++) A2[b * K + 4 + c] = g[R1 * 4 + b * 8 + c];
    double phi[R1 * R2];
    assert_int_equal(analysis_phi(backend_cpu(), phi, A1, R1, R1, A2, R2, R2, K), 0);
    for (int i = 0; i < R1 * R2; i++) assert_near(phi[i], 0.0, 1e-10);
    free(g);
}

// A partial overlap computed by hand: A1's rows span e_0, e_1 (singular values 2, 1), A2's
// span (e_0 + e_2)/√2 (the only direction). φ(1, 1) = (e_0 · (e_0 + e_2)/√2)² = 1/2,
// φ(2, 1) = (1/2 + 0) / 1 = 1/2.
static void test_phi_hand(void **state) {
    (void)state;
    float A1[2 * 3] = {2, 0, 0, 0, 1, 0}, A2[1 * 3] = {3, 0, 3};
    double phi[2];
    assert_int_equal(analysis_phi(backend_cpu(), phi, A1, 2, 2, A2, 1, 1, 3), 0);
    assert_near(phi[0], 0.5, 1e-6);
    assert_near(phi[1], 0.5, 1e-6);
    // A1 with the larger singular value on e_1: φ(1, 1) = 0, φ(2, 1) = 1/2
    float A1b[2 * 3] = {1, 0, 0, 0, 2, 0};
    assert_int_equal(analysis_phi(backend_cpu(), phi, A1b, 2, 2, A2, 1, 1, 3), 0);
    assert_near(phi[0], 0.0, 1e-6);
    assert_near(phi[1], 0.5, 1e-6);
}

static void assert_phi_equal(const double *x, const double *y, int n, double tol) {
    for (int i = 0; i < n; i++) assert_near(x[i], y[i], tol);
}

// AᵀA determines the right-singular vectors (up to sign, which φ squares away): scaling A by
// c ≠ 0, flipping the signs of rows, or mixing rows by an orthogonal Q leaves AᵀA ∝ itself
// and every φ(i, j) unchanged. Scaling rows by different factors keeps the row space only:
// φ(r1, r2) (whole spans) is unchanged.
static void test_phi_invariance(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    enum { R1 = 4, R2 = 6, K = 20 };
    float *A1 = gaussian(R1 * K, 21), *A2 = gaussian(R2 * K, 22);
    double ref[R1 * R2], got[R1 * R2];
    assert_int_equal(analysis_phi(be, ref, A1, R1, R1, A2, R2, R2, K), 0);
    float B[R1 * K];
    // c = -3.5
    for (int i = 0; i < R1 * K; i++) B[i] = -3.5f * A1[i];
    assert_int_equal(analysis_phi(be, got, B, R1, R1, A2, R2, R2, K), 0);
    assert_phi_equal(ref, got, R1 * R2, 1e-5);
    // sign flips of rows 0 and 2
    for (int a = 0; a < R1; a++)
        for (int c = 0; c < K; c++) B[a * K + c] = (a % 2 == 0 ? -1.0f : 1.0f) * A1[a * K + c];
    assert_int_equal(analysis_phi(be, got, B, R1, R1, A2, R2, R2, K), 0);
    assert_phi_equal(ref, got, R1 * R2, 1e-5);
    // an orthogonal mix of rows 0 and 1 (rotation by 0.7 rad)
    memcpy(B, A1, sizeof B);
    float cs = cosf(0.7f), sn = sinf(0.7f);
    for (int c = 0; c < K; c++) {
        B[0 * K + c] = cs * A1[0 * K + c] - sn * A1[1 * K + c];
        B[1 * K + c] = sn * A1[0 * K + c] + cs * A1[1 * K + c];
    }
    assert_int_equal(analysis_phi(be, got, B, R1, R1, A2, R2, R2, K), 0);
    assert_phi_equal(ref, got, R1 * R2, 1e-5);
    // different positive scales per row: only the whole-span value survives
    for (int a = 0; a < R1; a++)
        for (int c = 0; c < K; c++) B[a * K + c] = (float)(a + 1) * 10.0f * A1[a * K + c];
    assert_int_equal(analysis_phi(be, got, B, R1, R1, A2, R2, R2, K), 0);
    assert_near(got[R1 * R2 - 1], ref[R1 * R2 - 1], 1e-5);
    free(A1);
    free(A2);
}

// φ depends on A's row space alone, not on B: for ΔW = B A with B of full column rank, the
// top-r right-singular vectors of ΔW span A's row space, so φ(ΔW1, ΔW2, r1, r2) =
// φ(A1, A2, r1, r2) for any such B1, B2.
static void test_phi_independent_of_b(void **state) {
    (void)state;
    const Backend *be = backend_cpu();
    enum { R1 = 3, R2 = 5, K = 16, D = 10 };
    float *A1 = gaussian(R1 * K, 31), *A2 = gaussian(R2 * K, 32);
    float *B1 = gaussian(D * R1, 33), *B2 = gaussian(D * R2, 34), *B3 = gaussian(D * R2, 35);
    float dW1[D * K], dW2[D * K], dW3[D * K];
    analysis_delta_w(dW1, A1, B1, D, K, R1, 0.5f);
    analysis_delta_w(dW2, A2, B2, D, K, R2, 2.0f);
    analysis_delta_w(dW3, A2, B3, D, K, R2, 0.1f);
    double ref[R1 * R2], got[R1 * R2], got3[R1 * R2];
    assert_int_equal(analysis_phi(be, ref, A1, R1, R1, A2, R2, R2, K), 0);
    assert_int_equal(analysis_phi(be, got, dW1, D, R1, dW2, D, R2, K), 0);
    assert_int_equal(analysis_phi(be, got3, dW1, D, R1, dW3, D, R2, K), 0);
    assert_near(got[R1 * R2 - 1], ref[R1 * R2 - 1], 1e-4);
    assert_near(got3[R1 * R2 - 1], ref[R1 * R2 - 1], 1e-4);
    free(A1);
    free(A2);
    free(B1);
    free(B2);
    free(B3);
}

// For independent Gaussian A1 (r, k) and A2 (r, k) the top-i right-singular span of each is
// a uniformly random subspace (the distribution of A Q equals that of A for orthogonal Q),
// so E‖U1^{(i)ᵀ} U2^{(j)}‖² = i j / k and E φ(i, j) = max(i, j) / k (see analysis.h).
// Over 400 seeds each cell's mean must lie within 5 standard errors of that (standard error
// from the sample itself); for φ(1, 1) the variance is known exactly,
// Var (u·v)² = 3/(k(k+2)) - 1/k² ≈ 0.00184 at k = 32, standard error 0.0021.
static void test_phi_random_expectation(void **state) {
    (void)state;
    enum { R = 8, K = 32, NSEED = 400 };
    double sum[R * R] = {0}, sumsq[R * R] = {0}, phi[R * R];
    for (int s = 0; s < NSEED; s++) {
        assert_int_equal(analysis_phi_random(backend_cpu(), phi, R, R, R, R, K, 1000 + 2 * (uint64_t)s), 0);
        for (int c = 0; c < R * R; c++) { sum[c] += phi[c]; sumsq[c] += phi[c] * phi[c]; }
    }
    for (int i = 1; i <= R; i++)
        for (int j = 1; j <= R; j++) {
            int c = (i - 1) * R + (j - 1);
            double mean = sum[c] / NSEED;
            double var = (sumsq[c] - NSEED * mean * mean) / (NSEED - 1);
            double se = sqrt(var / NSEED);
            double expect = (double)(i > j ? i : j) / K;
            if (fabs(mean - expect) > 5.0 * se)
                fail_msg("φ(%d, %d): mean %.5f over %d seeds, expected %.5f ± 5 x %.5f", i, j, mean,
                         NSEED, expect, se);
        }
    double var11 = 3.0 / (K * (K + 2.0)) - 1.0 / ((double)K * K);
    assert_near(sum[0] / NSEED, 1.0 / K, 5.0 * sqrt(var11 / NSEED));
    // the random baseline is the φ of the two Gaussian matrices drawn from seed and seed + 1
    float *A1 = gaussian(R * K, 5), *A2 = gaussian(R * K, 6);
    double direct[R * R];
    assert_int_equal(analysis_phi(backend_cpu(), direct, A1, R, R, A2, R, R, K), 0);
    assert_int_equal(analysis_phi_random(backend_cpu(), phi, R, R, R, R, K, 5), 0);
    assert_phi_equal(direct, phi, R * R, 0.0);
    free(A1);
    free(A2);
}

// A grid smaller than the matrices: the first rows of a bigger grid.
static void test_phi_subgrid(void **state) {
    (void)state;
    enum { N1 = 6, N2 = 9, K = 24 };
    float *A1 = gaussian(N1 * K, 41), *A2 = gaussian(N2 * K, 42);
    double full[N1 * N2], part[3 * 4];
    assert_int_equal(analysis_phi(backend_cpu(), full, A1, N1, N1, A2, N2, N2, K), 0);
    assert_int_equal(analysis_phi(backend_cpu(), part, A1, N1, 3, A2, N2, 4, K), 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) assert_near(part[i * 4 + j], full[i * N2 + j], 1e-12);
    free(A1);
    free(A2);
}

// ----------------------------------------------------------------------------
// effective rank and Table 7

static void test_effective_rank(void **state) {
    (void)state;
    double one[3] = {5, 0, 0}, flat[4] = {2, 2, 2, 2}, two[2] = {3, 1}, zero[2] = {0, 0};
    assert_near(analysis_effective_rank(one, 3), 1.0, 1e-12);
    assert_near(analysis_effective_rank(flat, 4), 4.0, 1e-12);
    // p = (3/4, 1/4): exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = exp(0.562335) = 1.754765
    assert_near(analysis_effective_rank(two, 2), 1.754765, 1e-6);
    assert_near(analysis_effective_rank(zero, 2), 0.0, 0.0);
}

static void test_delta_w(void **state) {
    (void)state;
    // A (2, 3), B (2, 2), scale 0.5: ΔW = 0.5 B A by hand
    float A[6] = {1, 2, 3, 4, 5, 6}, B[4] = {1, -1, 2, 0}, dW[6];
    analysis_delta_w(dW, A, B, 2, 3, 2, 0.5f);
    float want[6] = {0.5f * (1 - 4), 0.5f * (2 - 5), 0.5f * (3 - 6), 1, 2, 3};
    for (int i = 0; i < 6; i++) assert_near(dW[i], want[i], 1e-7);
}

// ΔW = 2 B A = 3 e0 f0ᵀ + 1 e1 f1ᵀ with f0 = (0.6, 0.8, 0, 0, 0), f1 = (-0.8, 0.6, 0, 0, 0)
// (d_out 6, d_in 5, r 2). W is block diagonal: M = [[2, -1], [0.5, 1]] in the top-left
// corner, then 4, 3, 0.1 on the diagonal (row 5 zero).
//   ‖ΔW‖_F = √(9 + 1) = √10
//   ‖W‖_F = √(4 + 1 + 0.25 + 1 + 16 + 9 + 0.01) = √31.26
//   U = [e0 e1], Vᵀ = [f0; f1]: UᵀWVᵀ = M Rᵀ with R orthogonal, so ‖UᵀWVᵀ‖_F = ‖M‖_F = 2.5
//   W's own top-2 singular values are 4 and 3 (M's are √5 and √1.25): ‖UᵀWVᵀ‖_F = 5
//   amplification = √10 / 2.5 = 1.264911; singular values of ΔW: 3, 1
static void test_amplification_hand(void **state) {
    (void)state;
    enum { DO = 6, DI = 5, R = 2 };
    float A[R * DI] = {0.6f, 0.8f, 0, 0, 0, -0.8f, 0.6f, 0, 0, 0};
    float B[DO * R] = {0};
    B[0 * R + 0] = 1.5f;
    B[1 * R + 1] = 0.5f;
    float dW[DO * DI], W[DO * DI] = {0};
    analysis_delta_w(dW, A, B, DO, DI, R, 2.0f);
    W[0 * DI + 0] = 2;
    W[0 * DI + 1] = -1;
    W[1 * DI + 0] = 0.5f;
    W[1 * DI + 1] = 1;
    W[2 * DI + 2] = 4;
    W[3 * DI + 3] = 3;
    W[4 * DI + 4] = 0.1f;
    Amplification a;
    double sv[R];
    assert_int_equal(analysis_amplification(backend_cpu(), &a, sv, dW, W, DO, DI, R, 9), 0);
    assert_int_equal(a.rank, 2);
    assert_near(a.norm_dw, sqrt(10.0), 1e-6);
    assert_near(a.norm_w, sqrt(31.26), 1e-6);
    assert_near(a.norm_proj_dw, 2.5, 1e-6);
    assert_near(a.norm_proj_w, 5.0, 1e-6);
    assert_near(a.amplification, sqrt(10.0) / 2.5, 1e-6);
    assert_near(sv[0], 3.0, 1e-6);
    assert_near(sv[1], 1.0, 1e-6);
    assert_near(a.effective_rank, 1.754765, 1e-5);
    // a projection never exceeds the whole, nor W's best rank-2 projection
    assert_true(a.norm_proj_random > 0.0 && a.norm_proj_random <= a.norm_proj_w + 1e-9);
    // r = 1: U = e0, V = f0: |e0ᵀ W f0| = |2 * 0.6 - 1 * 0.8| = 0.4; W's top: 4
    assert_int_equal(analysis_amplification(backend_cpu(), &a, sv, dW, W, DO, DI, 1, 9), 0);
    assert_near(a.norm_proj_dw, 0.4, 1e-6);
    assert_near(a.norm_proj_w, 4.0, 1e-6);
    assert_near(a.amplification, sqrt(10.0) / 0.4, 1e-5);
    assert_near(a.effective_rank, 1.0, 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_svd),
        cmocka_unit_test(test_svd_nan_fails),
        cmocka_unit_test(test_phi_self),
        cmocka_unit_test(test_phi_orthogonal),
        cmocka_unit_test(test_phi_hand),
        cmocka_unit_test(test_phi_invariance),
        cmocka_unit_test(test_phi_independent_of_b),
        cmocka_unit_test(test_phi_random_expectation),
        cmocka_unit_test(test_phi_subgrid),
        cmocka_unit_test(test_effective_rank),
        cmocka_unit_test(test_delta_w),
        cmocka_unit_test(test_amplification_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
