// tests/test_cuda_ops.c — the CUDA backend against the CPU backend (the reference, itself
// tested against independent references in tests/test_ops.c and tests/test_model.c).
//
// - Every op of the Backend table runs on the same random inputs on both backends; outputs
//   are compared element-wise under |gpu - cpu| <= atol + rtol * |cpu| (NaN fails), with the
//   tolerance stated at each check. Accumulating outputs start from the same random values
//   on both sides, so += versus = is checked too; ignored rows and NULL gradients as well.
//   Dropout masks must match exactly (the same stateless hash on both sides).
// - Full training steps of nano (and micro for ft and lora) under every method: loss,
//   every trainable gradient, and the loss after one AdamW update.
// - Decoding with the key/value cache: attention_decode alone, and prefill, steps and row
//   reordering of whole models; a position outside the cache must stop the process.
// - fp32 with TF32 off, except where a test says otherwise (the TF32 gemm test, whose
//   teardown turns TF32 off again even when it fails, and the bf16 test).
// Without a GPU (no device, no driver, or a build without nvcc) every test calls cmocka's
// skip() and main prints "test_cuda_ops: skipped: no GPU (<reason>)"; the binary passes.
//
// Modes (used by scripts/gpu_check.sh, not by make test):
//   test_cuda_ops --list                            the names of the tests, one a line
//   test_cuda_ops --only NAME                       that test alone (its own process)
//   test_cuda_ops --bench PRESET METHOD B T STEPS [PRECISION]   training steps on random
//                      tokens (METHOD: ft, or lora = q,v r=8 alpha=8; PRECISION: fp32, tf32
//                      or bf16), after one step's loss was checked against the CPU
//   test_cuda_ops --bench-svd L C R                 SVD of 2L matrices C x C of rank R
//   test_cuda_ops --decode-oob                      attention_decode at position Tmax (must abort)
// Each bench prints one line of key=value measurements; see bench_train / bench_svd.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/analysis.h"
#include "core/cpu/backend_cpu.h"
#include "core/backend.h"
#include "core/backend_cuda.h"
#include "core/errors.h"
#include "core/model.h"
#include "core/rng.h"

static const Backend *cpu, *gpu;
static char gpu_why[512];

#define NEED_GPU() do { if (!gpu) skip(); } while (0)

// ----------------------------------------------------------------------------
// helpers

static Rng rng;

static void fill(float *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rng_uniform(&rng));
}

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static float *frand(size_t n, double lo, double hi) {
    float *p = falloc(n);
    fill(p, n, lo, hi);
    return p;
}

// A device copy of host data (any type).
static void *up(const void *host, size_t bytes) {
    void *d = gpu->alloc(bytes);
    gpu->to_device(d, host, bytes);
    return d;
}

static float *down(const float *dev, size_t n) {
    float *h = falloc(n);
    gpu->to_host(h, dev, n * sizeof(float));
    return h;
}

static int verbose(void) {
    const char *v = getenv("LORALAB_TEST_VERBOSE");
    return v && *v && *v != '0';
}

// |got - ref| <= atol + rtol * |ref| for every element; prints the worst one on failure.
static void check_close(const char *what, const float *got, const float *ref, size_t n,
                        double atol, double rtol) {
    double worst = -1.0;
    size_t wi = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]), tol = atol + rtol * fabs((double)ref[i]);
        if (!(err <= tol)) bad = 1;
        double ratio = isnan(err) ? INFINITY : tol > 0 ? err / tol : (err > 0 ? INFINITY : 0);
        if (ratio > worst) { worst = ratio; wi = i; }
    }
    if (n && (bad || verbose()))
        printf("  %s: worst [%zu] gpu %.9g cpu %.9g (err/tol %.3g, atol %g rtol %g)\n", what, wi,
               got[wi], ref[wi], worst, atol, rtol);
    if (bad) fail_msg("%s: GPU differs from CPU beyond tolerance", what);
}

// Compares the device array d_gpu with the host reference.
static void check_dev(const char *what, const float *d_gpu, const float *ref, size_t n,
                      double atol, double rtol) {
    float *h = down(d_gpu, n);
    check_close(what, h, ref, n, atol, rtol);
    free(h);
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

// ----------------------------------------------------------------------------
// dense algebra

static void gemm_case(int ta, int tb, int M, int N, int K, float alpha, float beta, double atol) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = frand(na, -1, 1), *B = frand(nb, -1, 1), *C = frand(nc, -1, 1);
    float *dA = up(A, na * 4), *dB = up(B, nb * 4), *dC = up(C, nc * 4);
    if (K > 0) {
        cpu->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else {   // an empty sum: C = beta C, written out here (BLAS libraries differ on K = 0)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
    }
    gpu->gemm(ta, tb, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
    char what[96];
    snprintf(what, sizeof what, "gemm ta=%d tb=%d %dx%dx%d beta=%g", ta, tb, M, N, K, beta);
    check_dev(what, dC, C, nc, atol, 1e-5);   // the padding columns of C must be untouched too
    gpu->free(dA); gpu->free(dB); gpu->free(dC);
    free(A); free(B); free(C);
}

static void test_gemm(void **s) {
    (void)s;
    NEED_GPU();
    backend_cuda_set_tf32(0);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case(ta, tb, 37, 53, 71, 0.7f, 0.0f, 1e-5);
            gemm_case(ta, tb, 130, 66, 300, 1.0f, 0.5f, 2e-5);
            gemm_case(ta, tb, 5, 3, 0, 1.0f, 0.25f, 1e-6);   // K = 0: C = beta C
            gemm_case(ta, tb, 5, 3, 0, 1.0f, 0.0f, 0);
        }
}

// TF32: inputs rounded to a 10-bit mantissa, fp32 sums. Each product of [-1, 1] values is off
// by about 4e-4 |ab| (rms |ab| = 1/3), so a sum of K = 256 is off by about 2e-3 (one standard
// deviation); the tolerance, 3e-2, is far above the largest of some 10^4 elements and still
// far below what an fp32-vs-wrong-operand error would give.
static void test_gemm_tf32(void **s) {
    (void)s;
    NEED_GPU();
    backend_cuda_set_tf32(1);
    assert_int_equal(backend_cuda_tf32(), 1);
    gemm_case(0, 1, 128, 96, 256, 1.0f, 0.0f, 3e-2);
    gemm_case(1, 0, 64, 160, 256, 1.0f, 1.0f, 3e-2);
}

// Runs after test_gemm_tf32 whether it passed or not (a failed check leaves the test
// function by longjmp), so no later test runs with TF32.
static int tf32_off(void **s) {
    (void)s;
    if (gpu) {
        backend_cuda_set_tf32(0);
        if (backend_cuda_tf32() != 0) return -1;
    }
    return 0;
}

static void test_bias(void **s) {
    (void)s;
    NEED_GPU();
    int sizes[][2] = {{7, 5}, {4100, 70}, {300, 2304}};
    for (int k = 0; k < 3; k++) {
        int N = sizes[k][0], OC = sizes[k][1], ld = OC + 3;
        size_t n = (size_t)N * ld;
        float *out = frand(n, -1, 1), *bias = frand(OC, -1, 1), *dbias = frand(OC, -1, 1);
        float *dout = frand(n, -1, 1);
        float *d_out = up(out, n * 4), *d_bias = up(bias, OC * 4), *d_dbias = up(dbias, OC * 4);
        float *d_dout = up(dout, n * 4);
        cpu->bias_add(out, bias, N, OC, ld, NULL);
        gpu->bias_add(d_out, d_bias, N, OC, ld, NULL);
        check_dev("bias_add", d_out, out, n, 1e-6, 1e-6);
        cpu->bias_backward(dbias, dout, N, OC, ld);   // += onto random values
        gpu->bias_backward(d_dbias, d_dout, N, OC, ld);
        // sums of N values in [-1, 1] in a different order: ~ 1e-7 * sqrt(N) * N relative worst
        check_dev("bias_backward", d_dbias, dbias, OC, 1e-5 * sqrt((double)N), 1e-5);
        gpu->free(d_out); gpu->free(d_bias); gpu->free(d_dbias); gpu->free(d_dout);
        free(out); free(bias); free(dbias); free(dout);
    }
}

static void test_vector_ops(void **s) {
    (void)s;
    NEED_GPU();
    size_t sizes[] = {1, 1000, 3000001};
    for (int k = 0; k < 3; k++) {
        size_t n = sizes[k];
        float *x = frand(n, -2, 2), *y = frand(n, -2, 2), *z = falloc(n);
        float *dx = up(x, n * 4), *dy = up(y, n * 4), *dz = gpu->alloc(n * 4);
        cpu->axpy(y, x, 0.3f, n);
        gpu->axpy(dy, dx, 0.3f, n);
        check_dev("axpy", dy, y, n, 1e-6, 1e-6);
        cpu->scale(y, -1.7f, n);
        gpu->scale(dy, -1.7f, n);
        check_dev("scale", dy, y, n, 1e-6, 1e-6);
        cpu->add(z, x, y, n);
        gpu->add(dz, dx, dy, n);
        check_dev("add", dz, z, n, 1e-6, 1e-6);
        cpu->add(x, x, y, n);   // aliasing
        gpu->add(dx, dx, dy, n);
        check_dev("add (out = a)", dx, x, n, 1e-6, 1e-6);
        double sc = cpu->sumsq(x, n), sg = gpu->sumsq(dx, n);
        if (!(fabs(sg - sc) <= 1e-12 * sc + 1e-30))
            fail_msg("sumsq n=%zu: gpu %.17g cpu %.17g", n, sg, sc);
        gpu->free(dx); gpu->free(dy); gpu->free(dz);
        free(x); free(y); free(z);
    }
    assert_true(gpu->sumsq(NULL, 0) == 0.0);
}

// ----------------------------------------------------------------------------
// GPT-2 ops

static void test_encoder(void **s) {
    (void)s;
    NEED_GPU();
    int B = 3, T = 17, C = 40, V = 11;   // few tokens: repeats collide in dwte
    int tokens[3 * 17];
    for (int i = 0; i < B * T; i++) tokens[i] = (int)(rng_u64(&rng) % V);
    size_t nbt = (size_t)B * T * C;
    float *wte = frand((size_t)V * C, -1, 1), *wpe = frand((size_t)T * C, -1, 1);
    float *out = falloc(nbt), *dout = frand(nbt, -1, 1);
    float *dwte = frand((size_t)V * C, -1, 1), *dwpe = frand((size_t)T * C, -1, 1);
    int *d_tok = up(tokens, sizeof tokens);
    float *d_wte = up(wte, V * C * 4), *d_wpe = up(wpe, T * C * 4), *d_out = gpu->alloc(nbt * 4);
    float *d_dout = up(dout, nbt * 4), *d_dwte = up(dwte, V * C * 4), *d_dwpe = up(dwpe, T * C * 4);
    cpu->encoder_forward(out, tokens, wte, wpe, B, T, C);
    gpu->encoder_forward(d_out, d_tok, d_wte, d_wpe, B, T, C);
    check_dev("encoder_forward", d_out, out, nbt, 1e-6, 1e-6);
    cpu->encoder_backward(dwte, dwpe, dout, tokens, B, T, C);
    gpu->encoder_backward(d_dwte, d_dwpe, d_dout, d_tok, B, T, C);
    check_dev("encoder_backward dwte", d_dwte, dwte, (size_t)V * C, 1e-5, 1e-5);
    check_dev("encoder_backward dwpe", d_dwpe, dwpe, (size_t)T * C, 1e-5, 1e-5);
    // frozen embeddings: NULL skips
    cpu->encoder_backward(NULL, dwpe, dout, tokens, B, T, C);
    gpu->encoder_backward(NULL, d_dwpe, d_dout, d_tok, B, T, C);
    check_dev("encoder_backward dwpe (dwte NULL)", d_dwpe, dwpe, (size_t)T * C, 1e-5, 1e-5);
    cpu->encoder_backward(dwte, NULL, dout, tokens, B, T, C);
    gpu->encoder_backward(d_dwte, NULL, d_dout, d_tok, B, T, C);
    check_dev("encoder_backward dwte (dwpe NULL)", d_dwte, dwte, (size_t)V * C, 1e-5, 1e-5);
    gpu->free(d_tok); gpu->free(d_wte); gpu->free(d_wpe); gpu->free(d_out);
    gpu->free(d_dout); gpu->free(d_dwte); gpu->free(d_dwpe);
    free(wte); free(wpe); free(out); free(dout); free(dwte); free(dwpe);
}

static void layernorm_case(int N, int C, int with_params) {
    size_t n = (size_t)N * C;
    float *x = frand(n, -2, 3), *w = frand(C, 0.5, 1.5), *b = frand(C, -1, 1);
    float *out = falloc(n), *mean = falloc(N), *rstd = falloc(N);
    float *dout = frand(n, -1, 1), *dinp = frand(n, -1, 1);
    float *dw = frand(C, -1, 1), *db = frand(C, -1, 1);
    float *d_x = up(x, n * 4), *d_w = up(w, C * 4), *d_b = up(b, C * 4);
    float *d_out = gpu->alloc(n * 4), *d_mean = gpu->alloc(N * 4), *d_rstd = gpu->alloc(N * 4);
    float *d_dout = up(dout, n * 4), *d_dinp = up(dinp, n * 4);
    float *d_dw = up(dw, C * 4), *d_db = up(db, C * 4);
    cpu->layernorm_forward(out, mean, rstd, x, w, b, N, C, 1e-5f, NULL);
    gpu->layernorm_forward(d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C, 1e-5f, NULL);
    check_dev("layernorm_forward out", d_out, out, n, 1e-5, 1e-5);
    check_dev("layernorm_forward mean", d_mean, mean, N, 1e-6, 1e-5);
    check_dev("layernorm_forward rstd", d_rstd, rstd, N, 1e-6, 1e-5);
    // backward from the CPU's statistics on both sides
    gpu->to_device(d_mean, mean, N * 4);
    gpu->to_device(d_rstd, rstd, N * 4);
    cpu->layernorm_backward(dinp, with_params ? dw : NULL, with_params ? db : NULL, dout, x, w,
                            mean, rstd, N, C);
    gpu->layernorm_backward(d_dinp, with_params ? d_dw : NULL, with_params ? d_db : NULL, d_dout,
                            d_x, d_w, d_mean, d_rstd, N, C);
    check_dev("layernorm_backward dinp (+=)", d_dinp, dinp, n, 1e-5, 1e-4);
    // column sums over N rows (values up to ~3): absolute tolerance grows like sqrt(N)
    check_dev("layernorm_backward dweight", d_dw, dw, C, 1e-5 * sqrt((double)N) * 4, 1e-4);
    check_dev("layernorm_backward dbias", d_db, db, C, 1e-5 * sqrt((double)N), 1e-4);
    gpu->free(d_x); gpu->free(d_w); gpu->free(d_b); gpu->free(d_out); gpu->free(d_mean);
    gpu->free(d_rstd); gpu->free(d_dout); gpu->free(d_dinp); gpu->free(d_dw); gpu->free(d_db);
    free(x); free(w); free(b); free(out); free(mean); free(rstd); free(dout); free(dinp);
    free(dw); free(db);
}

static void test_layernorm(void **s) {
    (void)s;
    NEED_GPU();
    layernorm_case(5, 7, 1);
    layernorm_case(700, 384, 1);
    layernorm_case(700, 384, 0);      // frozen LayerNorm: dinp only, dw/db untouched
    layernorm_case(33, 7000, 1);      // 2C floats over 48 KiB: global accumulation path
    // With parameter gradients the backward grid is capped at 2 blocks per SM (8 warps, one
    // row each), so each warp strides over several rows when N > 16 * SMs (2,112 on 132 SMs):
    // 6,000 rows cover devices of up to 375 SMs.
    layernorm_case(6000, 768, 1);
    layernorm_case(3000, 6200, 1);    // the strided rows with global accumulation
    layernorm_case(6000, 64, 0);      // no cap without parameter gradients
}

static void attention_case(int B, int T, int C, int NH, int masked, float p) {
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = frand(nqkv, -1.5, 1.5), *out = falloc(nout), *att = falloc(natt);
    float *dout = frand(nout, -1, 1), *dqkv = falloc(nqkv), *datt = falloc(natt);
    uint8_t *mask = NULL, *d_mask = NULL;
    if (masked) {
        mask = calloc((size_t)B * T, 1);
        for (int i = 0; i < B * T; i++) mask[i] = rng_uniform(&rng) < 0.8;
        for (int t = 0; t < 4 && t < T; t++) mask[t] = 0;   // batch row 0 starts with padding:
        d_mask = up(mask, (size_t)B * T);                   // queries 0..3 see no key
    }
    float *d_qkv = up(qkv, nqkv * 4), *d_out = gpu->alloc(nout * 4), *d_att = gpu->alloc(natt * 4);
    float *d_dout = up(dout, nout * 4), *d_dqkv = gpu->alloc(nqkv * 4), *d_datt = gpu->alloc(natt * 4);
    uint64_t seed = 1234;
    cpu->attention_forward(out, att, qkv, mask, B, T, C, NH, p, seed);
    gpu->attention_forward(d_out, d_att, d_qkv, d_mask, B, T, C, NH, p, seed);
    char what[128];
    snprintf(what, sizeof what, "attention_forward att B=%d T=%d C=%d NH=%d mask=%d p=%g", B, T, C, NH, masked, p);
    check_dev(what, d_att, att, natt, 1e-6, 1e-4);
    snprintf(what, sizeof what, "attention_forward out B=%d T=%d C=%d NH=%d mask=%d p=%g", B, T, C, NH, masked, p);
    check_dev(what, d_out, out, nout, 2e-6, 1e-4);
    // NaN in dqkv beforehand: every element must be written (=)
    float *nan = falloc(nqkv);
    for (size_t i = 0; i < nqkv; i++) nan[i] = NAN;
    gpu->to_device(d_dqkv, nan, nqkv * 4);
    free(nan);
    cpu->attention_backward(dqkv, datt, dout, qkv, att, mask, B, T, C, NH, p, seed);
    gpu->to_device(d_att, att, natt * 4);   // the CPU's probabilities on both sides
    gpu->attention_backward(d_dqkv, d_datt, d_dout, d_qkv, d_att, d_mask, B, T, C, NH, p, seed);
    snprintf(what, sizeof what, "attention_backward dqkv B=%d T=%d C=%d NH=%d mask=%d p=%g", B, T, C, NH, masked, p);
    check_dev(what, d_dqkv, dqkv, nqkv, 1e-5, 1e-3);
    gpu->free(d_qkv); gpu->free(d_out); gpu->free(d_att); gpu->free(d_dout); gpu->free(d_dqkv);
    gpu->free(d_datt);
    if (d_mask) gpu->free(d_mask);
    free(qkv); free(out); free(att); free(dout); free(dqkv); free(datt); free(mask);
}

static void test_attention(void **s) {
    (void)s;
    NEED_GPU();
    attention_case(2, 37, 48, 3, 0, 0.0f);
    attention_case(2, 37, 48, 3, 1, 0.0f);
    attention_case(2, 37, 48, 3, 1, 0.25f);   // dropout: the same mask on both sides
    attention_case(1, 130, 64, 2, 1, 0.1f);   // rows longer than a warp's stride several times
}

// One decoding step of attention_decode on random caches: each row writes its new k, v at
// positions[b] and attends to 0..positions[b]. The whole caches must match exactly (the
// new entries, and nothing written elsewhere), the outputs within fp32 sums in another order.
static void decode_case(int B, int Tmax, int C, int NH, const int *positions) {
    size_t nc = (size_t)B * Tmax * C, nq = (size_t)B * 3 * C, no = (size_t)B * C;
    float *kc = frand(nc, -1, 1), *vc = frand(nc, -1, 1), *qkv = frand(nq, -1, 1);
    float *out = frand(no, -1, 1);
    float *d_kc = up(kc, nc * 4), *d_vc = up(vc, nc * 4), *d_qkv = up(qkv, nq * 4);
    float *d_out = up(out, no * 4);
    int *d_pos = up(positions, sizeof(int) * B);
    cpu->attention_decode(out, qkv, kc, vc, positions, B, Tmax, C, NH);
    gpu->attention_decode(d_out, d_qkv, d_kc, d_vc, d_pos, B, Tmax, C, NH);
    char what[128];
    snprintf(what, sizeof what, "attention_decode out B=%d Tmax=%d C=%d NH=%d", B, Tmax, C, NH);
    check_dev(what, d_out, out, no, 1e-6, 1e-4);
    snprintf(what, sizeof what, "attention_decode kcache B=%d Tmax=%d C=%d NH=%d", B, Tmax, C, NH);
    check_dev(what, d_kc, kc, nc, 0, 0);
    snprintf(what, sizeof what, "attention_decode vcache B=%d Tmax=%d C=%d NH=%d", B, Tmax, C, NH);
    check_dev(what, d_vc, vc, nc, 0, 0);
    gpu->free(d_kc); gpu->free(d_vc); gpu->free(d_qkv); gpu->free(d_out); gpu->free(d_pos);
    free(kc); free(vc); free(qkv); free(out);
}

static void test_attention_decode(void **s) {
    (void)s;
    NEED_GPU();
    int p3[] = {0, 17, 39};            // first position, middle, last of the cache
    decode_case(3, 40, 48, 3, p3);
    int p2[] = {1023, 500};            // gpt2 shapes: head size 64, n_ctx 1024
    decode_case(2, 1024, 768, 12, p2);
    int p1[] = {299};                  // head size 256: more than the 128 threads of a block
    decode_case(1, 300, 512, 2, p1);
    int p4[] = {4095, 0, 130, 4000};   // 4,096 scores of shared memory
    decode_case(4, 4096, 64, 2, p4);
}

// The child of test_decode_bounds (--decode-oob): row 1 asks for position Tmax, one past the
// cache. The process must not come back from synchronize: the device-side assert is fatal.
static int decode_out_of_bounds(void) {
    int B = 2, Tmax = 16, C = 32, NH = 2, pos[2] = {3, 16};
    float *d_kc = gpu->alloc((size_t)B * Tmax * C * 4), *d_vc = gpu->alloc((size_t)B * Tmax * C * 4);
    float *d_qkv = gpu->alloc((size_t)B * 3 * C * 4), *d_out = gpu->alloc((size_t)B * C * 4);
    int *d_pos = gpu->alloc(sizeof pos);
    gpu->to_device(d_pos, pos, sizeof pos);
    gpu->attention_decode(d_out, d_qkv, d_kc, d_vc, d_pos, B, Tmax, C, NH);
    gpu->synchronize();
    printf("test_cuda_ops --decode-oob: position %d of a %d-position cache went unnoticed\n", pos[1], Tmax);
    return 0;
}

// positions[b] >= Tmax: the CPU backend's LAB_ASSERT aborts; the GPU's kernels must stop the
// process too (in a child: a device-side assert leaves the CUDA context unusable).
static void test_decode_bounds(void **s) {
    (void)s;
    NEED_GPU();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {   // a fresh process (exec): CUDA cannot be used across fork
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        close(fd[0]);
        execl(self, self, "--decode-oob", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char out[8192];
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd[0], out + got, sizeof out - 1 - got)) > 0) got += (size_t)r;
    out[got] = 0;
    close(fd[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (verbose()) printf("  --decode-oob said: %s", out);
    if (!WIFSIGNALED(st))
        fail_msg("attention_decode at position Tmax: the process exited with %d instead of aborting: %s",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
    if (!strstr(out, "assert"))
        fail_msg("attention_decode at position Tmax: killed by signal %d without naming the assert: %s",
                 WTERMSIG(st), out);
}

static void test_gelu(void **s) {
    (void)s;
    NEED_GPU();
    size_t n = 100003;
    float *x = frand(n, -8, 8), *y = falloc(n), *dy = frand(n, -1, 1), *dx = falloc(n);
    float *d_x = up(x, n * 4), *d_y = gpu->alloc(n * 4), *d_dy = up(dy, n * 4), *d_dx = gpu->alloc(n * 4);
    cpu->gelu_forward(y, x, n);
    gpu->gelu_forward(d_y, d_x, n);
    check_dev("gelu_forward", d_y, y, n, 1e-6, 1e-5);   // CPU fast tanh vs CUDA tanhf: a few ulps
    cpu->gelu_backward(dx, x, NULL, dy, n);
    gpu->gelu_backward(d_dx, d_x, NULL, d_dy, n);
    // for x near -8, 1 - t^2 is below float resolution and the two tanh round differently:
    // x (1 - t^2) du can differ by ~ 30 * 1.2e-7
    check_dev("gelu_backward", d_dx, dx, n, 1e-5, 1e-5);
    gpu->free(d_x); gpu->free(d_y); gpu->free(d_dy); gpu->free(d_dx);
    free(x); free(y); free(dy); free(dx);
}

static void test_dropout(void **s) {
    (void)s;
    NEED_GPU();
    size_t n = 200001;
    float *x = frand(n, 0.5, 1.5), *y = falloc(n), *d_y;   // no zeros in x: zeros are drops
    float *d_x = up(x, n * 4);
    float ps[] = {0.0f, 0.1f, 0.5f};
    for (int k = 0; k < 3; k++) {
        d_y = gpu->alloc(n * 4);
        cpu->dropout_forward(y, x, n, ps[k], 99 + k);
        gpu->dropout_forward(d_y, d_x, n, ps[k], 99 + k);
        float *h = down(d_y, n);
        for (size_t i = 0; i < n; i++)
            if ((h[i] == 0.0f) != (y[i] == 0.0f))
                fail_msg("dropout p=%g: element %zu dropped on one backend only (gpu %g, cpu %g)", ps[k], i, h[i], y[i]);
        check_close("dropout_forward", h, y, n, 0, 1e-6);
        free(h);
        // backward is the same map; in place
        cpu->dropout_backward(y, y, n, ps[k], 7);
        gpu->dropout_backward(d_y, d_y, n, ps[k], 7);
        check_dev("dropout_backward (in place)", d_y, y, n, 0, 1e-6);
        gpu->free(d_y);
    }
    gpu->free(d_x);
    free(x); free(y);
}

static void crossentropy_case(int N, int V, int ldl, float eps) {
    size_t nl = (size_t)N * ldl;
    float *logits = frand(nl, -4, 4), *lse = falloc(N), *losses = falloc(N);
    int *targets = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) targets[i] = i % 4 == 1 ? -1 : (int)(rng_u64(&rng) % V);
    float *d_logits = up(logits, nl * 4), *d_lse = gpu->alloc(N * 4), *d_losses = gpu->alloc(N * 4);
    int *d_t = up(targets, sizeof(int) * N);
    cpu->crossentropy_forward(losses, lse, logits, ldl, targets, N, V, eps);
    gpu->crossentropy_forward(d_losses, d_lse, d_logits, ldl, d_t, N, V, eps);
    // the softmax denominators are float sums of up to 50257 terms in different orders
    check_dev("crossentropy_forward logsumexp", d_lse, lse, N, 1e-5, 1e-5);
    check_dev("crossentropy_forward losses", d_losses, losses, N, 1e-4, 1e-5);
    // backward in place from the same logsumexp; padding columns must stay as they are
    for (size_t i = 0; i < nl; i++) if ((int)(i % ldl) >= V) logits[i] = 7.0f;
    gpu->to_device(d_logits, logits, nl * 4);
    gpu->to_device(d_lse, lse, N * 4);
    cpu->crossentropy_backward(logits, ldl, lse, targets, N, V, eps, 0.37f);
    gpu->crossentropy_backward(d_logits, ldl, d_lse, d_t, N, V, eps, 0.37f);
    check_dev("crossentropy_backward", d_logits, logits, nl, 1e-7, 1e-5);
    gpu->free(d_logits); gpu->free(d_lse); gpu->free(d_losses); gpu->free(d_t);
    free(logits); free(lse); free(losses); free(targets);
}

static void test_crossentropy(void **s) {
    (void)s;
    NEED_GPU();
    crossentropy_case(9, 3, 3, 0.0f);
    crossentropy_case(33, 260, 263, 0.1f);
    crossentropy_case(6, 50257, 50257, 0.1f);
}

static void test_rows(void **s) {
    (void)s;
    NEED_GPU();
    int n = 9, R = 5, C = 33;
    int rows[9] = {4, 0, 4, 2, 2, 2, 1, 3, 0};   // repeats collide in the scatter
    float *inp = frand((size_t)R * C, -1, 1), *out = falloc((size_t)n * C);
    float *dout = frand((size_t)n * C, -1, 1), *dinp = frand((size_t)R * C, -1, 1);
    int *d_rows = up(rows, sizeof rows);
    float *d_inp = up(inp, R * C * 4), *d_out = gpu->alloc(n * C * 4);
    float *d_dout = up(dout, n * C * 4), *d_dinp = up(dinp, R * C * 4);
    cpu->gather_rows(out, inp, rows, n, C);
    gpu->gather_rows(d_out, d_inp, d_rows, n, C);
    check_dev("gather_rows", d_out, out, (size_t)n * C, 0, 0);
    cpu->scatter_add_rows(dinp, dout, rows, n, C);
    gpu->scatter_add_rows(d_dinp, d_dout, d_rows, n, C);
    check_dev("scatter_add_rows", d_dinp, dinp, (size_t)R * C, 1e-6, 1e-6);
    gpu->free(d_rows); gpu->free(d_inp); gpu->free(d_out); gpu->free(d_dout); gpu->free(d_dinp);
    free(inp); free(out); free(dout); free(dinp);
}

static void test_adamw(void **s) {
    (void)s;
    NEED_GPU();
    size_t n = 70001;
    float *p = frand(n, -1, 1), *m = falloc(n), *v = falloc(n), *g = falloc(n);
    float *d_p = up(p, n * 4), *d_m = gpu->alloc(n * 4), *d_v = gpu->alloc(n * 4), *d_g = gpu->alloc(n * 4);
    for (int t = 1; t <= 3; t++) {
        fill(g, n, -1, 1);
        gpu->to_device(d_g, g, n * 4);
        cpu->adamw_update(p, g, m, v, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
        gpu->adamw_update(d_p, d_g, d_m, d_v, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
    }
    check_dev("adamw param", d_p, p, n, 1e-6, 1e-6);
    check_dev("adamw m", d_m, m, n, 1e-7, 1e-6);
    check_dev("adamw v", d_v, v, n, 1e-8, 1e-5);
    gpu->free(d_p); gpu->free(d_m); gpu->free(d_v); gpu->free(d_g);
    free(p); free(m); free(v); free(g);
}

// ----------------------------------------------------------------------------
// SVD

// Singular values against the CPU's; U diag(S) Vt against A; U and Vt orthonormal; each
// singular vector equal to the CPU's up to sign (the test matrix has well-separated values).
static void svd_case(int M, int N) {
    int K = M < N ? M : N;
    // A = Q1 diag(s) Q2 with separated s: build from random matrices via the CPU SVD
    float *A = frand((size_t)M * N, -1, 1);
    float *U = falloc((size_t)M * K), *S = falloc(K), *Vt = falloc((size_t)K * N);
    assert_int_equal(cpu->svd(A, M, N, U, S, Vt), 0);
    for (int k = 0; k < K; k++) S[k] = (float)(K - k);   // 1..K, gaps of 1
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double a = 0;
            for (int k = 0; k < K; k++) a += (double)U[(size_t)i * K + k] * S[k] * Vt[(size_t)k * N + j];
            A[(size_t)i * N + j] = (float)a;
        }
    float *cU = falloc((size_t)M * K), *cS = falloc(K), *cVt = falloc((size_t)K * N);
    assert_int_equal(cpu->svd(A, M, N, cU, cS, cVt), 0);
    float *d_A = up(A, (size_t)M * N * 4), *d_U = gpu->alloc((size_t)M * K * 4);
    float *d_S = gpu->alloc(K * 4), *d_Vt = gpu->alloc((size_t)K * N * 4);
    assert_int_equal(gpu->svd(d_A, M, N, d_U, d_S, d_Vt), 0);
    float *gU = down(d_U, (size_t)M * K), *gS = down(d_S, K), *gVt = down(d_Vt, (size_t)K * N);
    char what[64];
    snprintf(what, sizeof what, "svd %dx%d S", M, N);
    check_close(what, gS, cS, K, 1e-4 * K, 1e-5);
    // A is untouched and reconstructed
    float *A2 = down(d_A, (size_t)M * N), *R = falloc((size_t)M * N);
    snprintf(what, sizeof what, "svd %dx%d input untouched", M, N);
    check_close(what, A2, A, (size_t)M * N, 0, 0);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double a = 0;
            for (int k = 0; k < K; k++) a += (double)gU[(size_t)i * K + k] * gS[k] * gVt[(size_t)k * N + j];
            R[(size_t)i * N + j] = (float)a;
        }
    snprintf(what, sizeof what, "svd %dx%d U S Vt = A", M, N);
    check_close(what, R, A, (size_t)M * N, 1e-4 * K, 1e-4);
    // vectors up to sign: flip the GPU's to the CPU's sign, then compare
    for (int k = 0; k < K; k++) {
        double dot = 0;
        for (int i = 0; i < M; i++) dot += (double)gU[(size_t)i * K + k] * cU[(size_t)i * K + k];
        float sg = dot < 0 ? -1.0f : 1.0f;
        for (int i = 0; i < M; i++) gU[(size_t)i * K + k] *= sg;
        for (int j = 0; j < N; j++) gVt[(size_t)k * N + j] *= sg;
    }
    snprintf(what, sizeof what, "svd %dx%d U (up to sign)", M, N);
    check_close(what, gU, cU, (size_t)M * K, 1e-4, 1e-3);
    snprintf(what, sizeof what, "svd %dx%d Vt (up to sign)", M, N);
    check_close(what, gVt, cVt, (size_t)K * N, 1e-4, 1e-3);
    gpu->free(d_A); gpu->free(d_U); gpu->free(d_S); gpu->free(d_Vt);
    free(A); free(U); free(S); free(Vt); free(cU); free(cS); free(cVt); free(gU); free(gS);
    free(gVt); free(A2); free(R);
}

static void test_svd(void **s) {
    (void)s;
    NEED_GPU();
    svd_case(40, 12);   // tall: transposed path
    svd_case(12, 40);   // wide: direct path
    svd_case(24, 24);
    svd_case(1, 5);
    svd_case(5, 1);
    float bad[6] = {1, 2, NAN, 4, 5, 6};
    float *d_A = up(bad, sizeof bad), *d_U = gpu->alloc(4 * 4), *d_S = gpu->alloc(2 * 4), *d_V = gpu->alloc(6 * 4);
    assert_int_equal(gpu->svd(d_A, 2, 3, d_U, d_S, d_V), -1);
    gpu->free(d_A); gpu->free(d_U); gpu->free(d_S); gpu->free(d_V);
}

// ----------------------------------------------------------------------------
// full training steps

enum { TB = 2, TT = 12 };

static MethodConfig method_of(MethodKind kind, HeadKind head) {
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = kind;
    mc.lora_rank = 4;
    mc.lora_alpha = 8;
    mc.lora_dropout = 0.1f;
    mc.lora_targets = TARGET_Q | TARGET_K | TARGET_V | TARGET_O | TARGET_FC | TARGET_PROJ;
    mc.adapter_rank = 4;
    mc.adapter_skip = 1;
    mc.prefix_lp = 3;
    mc.prefix_li = 2;
    mc.head = head;
    mc.n_classes = head == HEAD_CLS ? 3 : head == HEAD_REG ? 1 : 0;
    return mc;
}

// The same random non-zero values in every tensor of both models (LoRA B and adapter
// up-projections included, so that every gradient path carries signal).
static void randomize_both(Model *mc, Model *mg, uint64_t seed) {
    Rng r = rng_seeded(seed);
    for (int i = 0; i < model_num_params(mc); i++) {
        Param *pc = model_param(mc, i), *pg = model_param(mg, i);
        assert_string_equal(pc->name, pg->name);
        float *h = falloc(pc->numel);
        int ln_w = strstr(pc->name, "ln") && strstr(pc->name, "weight");
        for (size_t k = 0; k < pc->numel; k++) h[k] = (float)((ln_w ? 1.0 : 0.0) + 0.1 * rng_normal(&r));
        model_param_upload(mc, pc, 0, h, pc->numel);
        model_param_upload(mg, pg, 0, h, pc->numel);
        free(h);
    }
}

// bf16 (precision 1): both sides round the same operands to bf16, but an fp32 value that
// the two backends summed in a different order can round to a neighbouring bf16 value
// (2^-8 apart), so the tolerances are 25x fp32's.
static void train_step_case_at(const char *preset, MethodKind kind, HeadKind head, Precision precision) {
    ModelConfig cfg;
    assert_int_equal(model_preset(preset, &cfg), 0);
    MethodConfig mc = method_of(kind, head);
    mc.precision = precision;
    const float k = precision == PRECISION_BF16 ? 25.0f : 1.0f;
    Model *mc_cpu = model_create(cpu, &cfg, &mc), *mc_gpu = model_create(gpu, &cfg, &mc);
    assert_non_null(mc_cpu);
    assert_non_null(mc_gpu);
    randomize_both(mc_cpu, mc_gpu, 17);
    int tokens[TB * TT], targets[TB * TT], labels[TB] = {1, 2}, lengths[TB] = {TT, TT - 4};
    float values[TB] = {0.5f, -1.25f};
    Rng r = rng_seeded(5);
    for (int i = 0; i < TB * TT; i++) tokens[i] = (int)(rng_u64(&r) % (uint64_t)cfg.vocab_size);
    for (int i = 0; i < TB * TT; i++) targets[i] = i % 5 == 3 ? -1 : (int)(rng_u64(&r) % (uint64_t)cfg.vocab_size);
    Batch bt = {TB, TT, tokens, targets, labels, values, lengths, NULL};
    ForwardOptions fo = {1, 0.1f, 0.1f, 42};   // training: every dropout on
    OptimConfig oc;
    optim_defaults(&oc);
    oc.lr = 1e-3f;
    oc.warmup = 0;
    oc.total_steps = 10;
    char what[160];
    const char *mname = METHOD_NAMES[kind];
    model_zero_grad(mc_cpu);
    model_zero_grad(mc_gpu);
    float lc = model_forward(mc_cpu, &bt, &fo), lg = model_forward(mc_gpu, &bt, &fo);
    if (!(fabsf(lg - lc) <= k * (1e-4f * fabsf(lc) + 1e-5f)))
        fail_msg("%s %s %s head %d: loss gpu %.8g cpu %.8g", preset, PRECISION_NAMES[precision], mname, head, lg, lc);
    model_backward(mc_cpu);
    model_backward(mc_gpu);
    int checked = 0;
    for (int i = 0; i < model_num_params(mc_cpu); i++) {
        Param *pc = model_param(mc_cpu, i), *pg = model_param(mc_gpu, i);
        if (!pc->trainable) continue;
        assert_non_null(pg->grad);
        float *g = down(pg->grad, pg->numel);
        // relative to the tensor's largest gradient: fp32 sums in another order
        double scale = max_abs(pc->grad, pc->numel);
        snprintf(what, sizeof what, "%s %s %s head %d: gradient of %s", preset, PRECISION_NAMES[precision], mname, head, pc->name);
        check_close(what, g, pc->grad, pc->numel, k * (1e-7 + 2e-4 * scale), k * 1e-3);
        free(g);
        checked++;
    }
    assert_true(checked > 0);
    float nc = model_update(mc_cpu, &oc, 0), ng = model_update(mc_gpu, &oc, 0);
    if (!(fabsf(ng - nc) <= k * (1e-4f * nc + 1e-6f)))
        fail_msg("%s %s head %d: gradient norm gpu %.8g cpu %.8g", preset, mname, head, ng, nc);
    // after the update: the loss of the updated models (no dropout) must agree
    ForwardOptions eval = {0, 0.0f, 0.0f, 0};
    lc = model_forward(mc_cpu, &bt, &eval);
    lg = model_forward(mc_gpu, &bt, &eval);
    if (!(fabsf(lg - lc) <= k * (2e-4f * fabsf(lc) + 1e-5f)))
        fail_msg("%s %s head %d: loss after one AdamW step gpu %.8g cpu %.8g", preset, mname, head, lg, lc);
    if (verbose()) printf("  %s %s head %d: loss after step gpu %.8g cpu %.8g\n", preset, mname, head, lg, lc);
    model_free(mc_cpu);
    model_free(mc_gpu);
}

static void train_step_case(const char *preset, MethodKind kind, HeadKind head) {
    train_step_case_at(preset, kind, head, PRECISION_FP32);
}

static void test_train_step_nano(void **s) {
    (void)s;
    NEED_GPU();
    for (int k = METHOD_FT; k <= METHOD_ADAPTER_D; k++) train_step_case("nano", (MethodKind)k, HEAD_LM);
    train_step_case("nano", METHOD_LORA, HEAD_CLS);
    train_step_case("nano", METHOD_FT, HEAD_REG);
}

static void test_train_step_micro(void **s) {
    (void)s;
    NEED_GPU();
    train_step_case("micro", METHOD_FT, HEAD_LM);
    train_step_case("micro", METHOD_LORA, HEAD_LM);
}

// Cached decoding, CPU against GPU: prefill of prompts of different lengths, then steps
// that append each row's CPU argmax, with a reordering in the middle that repeats a row and
// grows the cache (as beam search does). The next-token logits must agree at every call.
static void decode_model_case(const char *preset, MethodKind kind, const int *lens, int B, int T) {
    ModelConfig cfg;
    assert_int_equal(model_preset(preset, &cfg), 0);
    MethodConfig mc = method_of(kind, HEAD_LM);
    Model *mc_cpu = model_create(cpu, &cfg, &mc), *mc_gpu = model_create(gpu, &cfg, &mc);
    assert_non_null(mc_cpu);
    assert_non_null(mc_gpu);
    assert_true(model_decode_supported(mc_gpu));
    randomize_both(mc_cpu, mc_gpu, 23);
    int V = cfg.vocab_size, n = B, rows = B + 1;
    int *tokens = calloc((size_t)B * T, sizeof(int));
    Rng r = rng_seeded(9);
    for (int i = 0; i < B * T; i++) tokens[i] = (int)(rng_u64(&r) % (uint64_t)V);
    float *lc = falloc((size_t)rows * V), *lg = falloc((size_t)rows * V);
    Batch bt = {B, T, tokens, NULL, NULL, NULL, lens, NULL};
    model_decode_prefill(mc_cpu, &bt, lc);
    model_decode_prefill(mc_gpu, &bt, lg);
    char what[160];
    snprintf(what, sizeof what, "%s %s decode prefill logits", preset, METHOD_NAMES[kind]);
    check_close(what, lg, lc, (size_t)n * V, 1e-5 + 1e-4 * max_abs(lc, (size_t)n * V), 1e-4);
    for (int step = 0; step < 6; step++) {
        if (step == 3) {   // row i becomes old row parent[i]: B + 1 rows, the last row twice
            int parent[16];
            for (int i = 0; i < rows; i++) parent[i] = i < B ? B - 1 - i : 0;
            model_decode_reorder(mc_cpu, parent, rows);
            model_decode_reorder(mc_gpu, parent, rows);
            float *t = falloc((size_t)rows * V);
            for (int i = 0; i < rows; i++) memcpy(t + (size_t)i * V, lc + (size_t)parent[i] * V, sizeof(float) * V);
            memcpy(lc, t, sizeof(float) * rows * V);
            free(t);
            n = rows;
        }
        int next[16];
        for (int i = 0; i < n; i++) {
            int best = 0;
            for (int v = 1; v < V; v++) if (lc[(size_t)i * V + v] > lc[(size_t)i * V + best]) best = v;
            next[i] = best;
        }
        model_decode_step(mc_cpu, next, n, lc);
        model_decode_step(mc_gpu, next, n, lg);
        snprintf(what, sizeof what, "%s %s decode step %d logits", preset, METHOD_NAMES[kind], step);
        check_close(what, lg, lc, (size_t)n * V, 1e-5 + 1e-4 * max_abs(lc, (size_t)n * V), 1e-4);
    }
    model_free(mc_cpu);
    model_free(mc_gpu);
    free(tokens); free(lc); free(lg);
}

static void test_decode_model(void **s) {
    (void)s;
    NEED_GPU();
    int lens[3] = {5, 12, 1};
    MethodKind kinds[] = {METHOD_FT, METHOD_LORA, METHOD_ADAPTER_H, METHOD_PREFIX_EMBED, METHOD_PREFIX_LAYER};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) decode_model_case("nano", kinds[i], lens, 3, 12);
    int long_lens[2] = {100, 37};   // micro: 128 positions, prompts up to 100
    decode_model_case("micro", METHOD_LORA, long_lens, 2, 100);
}

// bf16 mixed precision: to_bf16 gives CPU's bits for finite values (rows ld apart), gemm_bf16
// matches the CPU's (fp32 sums of exact bf16 products, in another order), and full training
// steps of nano and micro under FT, LoRA and BitFit agree within the bf16 tolerances.
// Downloads n bf16 values from dev and compares them, widened, with the CPU's host16.
static void check_dev_bf16(const char *what, const void *dev, const uint16_t *host16, size_t n,
                           double atol, double rtol) {
    uint16_t *g16 = calloc(n ? n : 1, 2);
    float *g = falloc(n), *c = falloc(n);
    gpu->to_host(g16, dev, n * 2);
    for (size_t i = 0; i < n; i++) { g[i] = bf16_to_float(g16[i]); c[i] = bf16_to_float(host16[i]); }
    check_close(what, g, c, n, atol, rtol);
    free(g16); free(g); free(c);
}

// The ops a bf16 model fuses its roundings into, CPU vs GPU. Where both round the same fp32
// value the bits must agree; where the fp32 values differ by a float ulp (GELU's exponential,
// LayerNorm's sums, the attention's products) the bf16 results may differ by one bf16 ulp.
static void test_bf16_fused(void **s) {
    (void)s;
    NEED_GPU();
    enum { N = 300, OC = 96, B = 2, T = 40, C = 32, NH = 2 };
    size_t n = (size_t)N * OC;
    const double ulp = 1.0 / 128;   // one bf16 ulp, relative
    // bias + GELU: out in bf16 and GELU' in bf16
    float *x = frand(n, -4, 4), *bias = frand(OC, -1, 1), *xc = falloc(n);
    uint16_t *o16 = calloc(n, 2), *g16 = calloc(n, 2);
    memcpy(xc, x, n * 4);
    void *dx = up(x, n * 4), *dbias = up(bias, OC * 4), *do16 = gpu->alloc(n * 2), *dg16 = gpu->alloc(n * 2);
    cpu->bias_gelu_forward(NULL, xc, bias, N, OC, o16, g16);
    gpu->bias_gelu_forward(NULL, dx, dbias, N, OC, do16, dg16);
    check_dev_bf16("bias_gelu_forward out_bf16", do16, o16, n, 1e-6, ulp);
    check_dev_bf16("bias_gelu_forward dgelu_bf16", dg16, g16, n, 1e-6, ulp);
    // its backward from the same kept derivative: the same bits, and the bias sums
    float *dy = frand(n, -1, 1), *db = frand(OC, -1, 1);
    uint16_t *dx16 = calloc(n, 2);
    void *ddy = up(dy, n * 4), *ddb = up(db, OC * 4), *ddx16 = gpu->alloc(n * 2);
    gpu->to_device(dg16, g16, n * 2);
    cpu->gelu_backward_bf16(dx16, db, g16, dy, N, OC);
    gpu->gelu_backward_bf16(ddx16, ddb, dg16, ddy, N, OC);
    check_dev_bf16("gelu_backward_bf16 dinp", ddx16, dx16, n, 0, 0);
    check_dev("gelu_backward_bf16 dbias", ddb, db, OC, 1e-5 * sqrt((double)N), 1e-5);
    // bias_add's copy: the same sums, the same bits
    float *y = frand(n, -2, 2);
    void *dy2 = up(y, n * 4);
    cpu->bias_add(y, bias, N, OC, OC, o16);
    gpu->bias_add(dy2, dbias, N, OC, OC, do16);
    check_dev_bf16("bias_add out_bf16", do16, o16, n, 0, 0);
    check_dev("bias_add out", dy2, y, n, 0, 0);
    // LayerNorm into bf16 only
    float *w = frand(OC, 0.5, 1.5), *mean = falloc(N), *rstd = falloc(N);
    void *dw = up(w, OC * 4), *dmean = gpu->alloc(N * 4), *drstd = gpu->alloc(N * 4);
    gpu->to_device(dx, x, n * 4);
    cpu->layernorm_forward(NULL, mean, rstd, x, w, bias, N, OC, 1e-5f, o16);
    gpu->layernorm_forward(NULL, dmean, drstd, dx, dw, dbias, N, OC, 1e-5f, do16);
    check_dev_bf16("layernorm_forward out_bf16", do16, o16, n, 1e-6, ulp);
    check_dev("layernorm_forward mean (bf16 out)", dmean, mean, N, 1e-6, 1e-5);
    // the bf16 attention forward from the same rounded q, k, v
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = frand(nqkv, -1.5, 1.5), *out = falloc(nout), *scores = falloc(natt);
    uint16_t *q16 = calloc(nqkv, 2), *a16 = calloc(natt, 2);
    cpu->to_bf16(q16, qkv, 1, (int)nqkv, (int)nqkv, NULL);
    void *dq16 = up(q16, nqkv * 2), *da16 = gpu->alloc(natt * 2);
    float *dout = gpu->alloc(nout * 4), *dscores = gpu->alloc(natt * 4);
    cpu->attention_forward_bf16(out, scores, a16, q16, NULL, B, T, C, NH, 0.0f, 3);
    gpu->attention_forward_bf16(dout, dscores, da16, dq16, NULL, B, T, C, NH, 0.0f, 3);
    check_dev_bf16("attention_forward_bf16 att", da16, a16, natt, 1e-6, ulp);
    check_dev("attention_forward_bf16 out", dout, out, nout, 1e-2 * max_abs(out, nout), 0);
    gpu->free(dx); gpu->free(dbias); gpu->free(do16); gpu->free(dg16); gpu->free(ddy); gpu->free(ddb);
    gpu->free(ddx16); gpu->free(dy2); gpu->free(dw); gpu->free(dmean); gpu->free(drstd); gpu->free(dq16);
    gpu->free(da16); gpu->free(dout); gpu->free(dscores);
    free(x); free(bias); free(xc); free(o16); free(g16); free(dy); free(db); free(dx16); free(y); free(w);
    free(mean); free(rstd); free(qkv); free(out); free(scores); free(q16); free(a16);
}

static void test_bf16(void **s) {
    (void)s;
    NEED_GPU();
    int rows = 37, cols = 300, ld = 311;
    float *x = frand((size_t)rows * ld, -3, 3);
    uint16_t *hc = calloc((size_t)rows * cols, 2), *hg = calloc((size_t)rows * cols, 2);
    void *dx = up(x, (size_t)rows * ld * 4), *dh = gpu->alloc((size_t)rows * cols * 2);
    cpu->to_bf16(hc, x, rows, cols, ld, NULL);
    gpu->to_bf16(dh, dx, rows, cols, ld, NULL);
    gpu->to_host(hg, dh, (size_t)rows * cols * 2);
    assert_memory_equal(hc, hg, (size_t)rows * cols * 2);
    // with colsum: the same bits, and the column sums as the CPU's
    float *sum = frand(cols, -1, 1);
    float *dsum = up(sum, (size_t)cols * 4);
    cpu->to_bf16(hc, x, rows, cols, ld, sum);
    gpu->to_bf16(dh, dx, rows, cols, ld, dsum);
    gpu->to_host(hg, dh, (size_t)rows * cols * 2);
    assert_memory_equal(hc, hg, (size_t)rows * cols * 2);
    check_dev("to_bf16 colsum", dsum, sum, cols, 1e-5 * sqrt((double)rows), 1e-5);
    gpu->free(dsum);
    free(sum);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int M = 64, N = 96, K = 256, lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2;
            size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
            float *A = frand(na, -1, 1), *B = frand(nb, -1, 1), *C = falloc((size_t)M * N);
            uint16_t *A16 = calloc(na, 2), *B16 = calloc(nb, 2);
            cpu->to_bf16(A16, A, 1, (int)na, (int)na, NULL);
            cpu->to_bf16(B16, B, 1, (int)nb, (int)nb, NULL);
            void *dA = up(A16, na * 2), *dB = up(B16, nb * 2);
            float *dC = gpu->alloc((size_t)M * N * 4);
            cpu->gemm_bf16(ta, tb, M, N, K, 1.0f, A16, lda, B16, ldb, 0.0f, C, N);
            gpu->gemm_bf16(ta, tb, M, N, K, 1.0f, dA, lda, dB, ldb, 0.0f, dC, N);
            char what[64];
            snprintf(what, sizeof what, "gemm_bf16 ta=%d tb=%d", ta, tb);
            check_dev(what, dC, C, (size_t)M * N, 2e-5, 1e-5);
            gpu->free(dA); gpu->free(dB); gpu->free(dC);
            free(A); free(B); free(C); free(A16); free(B16);
        }
    gpu->free(dx); gpu->free(dh);
    free(x); free(hc); free(hg);
    MethodKind kinds[] = {METHOD_FT, METHOD_LORA, METHOD_BITFIT};
    for (int i = 0; i < 3; i++) train_step_case_at("nano", kinds[i], HEAD_LM, PRECISION_BF16);
    train_step_case_at("micro", METHOD_LORA, HEAD_LM, PRECISION_BF16);
}

static void test_memory_accounting(void **s) {
    (void)s;
    NEED_GPU();
    size_t before, peak;
    backend_cuda_memory(&before, &peak);
    float *p = gpu->alloc(1 << 20);
    size_t now;
    backend_cuda_memory(&now, &peak);
    assert_true(now == before + (1 << 20));
    assert_true(peak >= now);
    float h[4] = {1, 2, 3, 4}, z[4];
    gpu->to_device(p, h, sizeof h);
    gpu->zero(p, 2 * sizeof(float));
    gpu->to_host(z, p, sizeof z);
    assert_true(z[0] == 0 && z[1] == 0 && z[2] == 3 && z[3] == 4);
    float *q = gpu->alloc(16);   // zero-filled
    gpu->to_host(z, q, 16);
    assert_true(z[0] == 0 && z[1] == 0 && z[2] == 0 && z[3] == 0);
    gpu->copy(q, p, 16);
    gpu->synchronize();
    gpu->to_host(z, q, 16);
    assert_true(z[2] == 3 && z[3] == 4);
    gpu->free(p);
    gpu->free(q);
    backend_cuda_memory(&now, NULL);
    assert_true(now == before);
}

// Asking for a device that does not exist gives a message, not a crash (with or without GPU).
static void test_no_such_device(void **s) {
    (void)s;
    char err[256] = "";
    int n = backend_cuda_device_count();
    assert_true(n >= 0);
    assert_null(backend_cuda(n + 7, err, sizeof err));
    assert_true(strncmp(err, "cuda:", 5) == 0);
    char desc[256];
    assert_int_equal(backend_cuda_describe(n + 7, desc, sizeof desc), -1);
    if (n > 0) {
        assert_int_equal(backend_cuda_describe(0, desc, sizeof desc), 0);
        printf("  %s\n", desc);
    }
}

// ----------------------------------------------------------------------------
// benchmark mode (scripts/gpu_check.sh)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Dense bf16 tensor-core peak of the device in TFLOP/s (vendor data sheets, without
// sparsity), or 0 if unknown; GPU_PEAK_TFLOPS overrides.
static double peak_tflops(const char *desc) {
    const char *e = getenv("GPU_PEAK_TFLOPS");
    if (e && *e) return atof(e);
    if (strstr(desc, "H100 PCIe")) return 756.0;
    if (strstr(desc, "H100") || strstr(desc, "H200")) return 989.4;   // SXM
    if (strstr(desc, "A100")) return 312.0;
    return 0.0;
}

// Before timing, one training step (forward, backward, AdamW with clipping) of the same
// configuration on one row of the batch, on the CPU and on the GPU from the same weights: the
// losses before and after the update must agree (fp32: sums in another order; TF32 and bf16:
// operands rounded to 10 and 7 mantissa bits). Returns 0, or 1 with the reason on stderr.
static int bench_check_loss(const ModelConfig *cfg, const MethodConfig *mc, int T, int tf32,
                            const char *precision, float *loss_gpu, float *loss_cpu) {
    int *tok = malloc(sizeof(int) * T), *tgt = malloc(sizeof(int) * T);
    Rng r = rng_seeded(3);   // the first row of the timed batch
    for (int i = 0; i < T; i++) tok[i] = (int)(rng_u64(&r) % (uint64_t)cfg->vocab_size);
    Batch bt = {1, T, tok, NULL, NULL, NULL, NULL, NULL};
    r = rng_seeded(4);
    for (int i = 0; i < T; i++) tgt[i] = (int)(rng_u64(&r) % (uint64_t)cfg->vocab_size);
    bt.targets = tgt;
    ForwardOptions fo = {1, 0.0f, 0.0f, 1};
    OptimConfig oc;
    optim_defaults(&oc);
    oc.grad_clip = 1.0f;
    float before[2], after[2];
    const Backend *bes[2] = {gpu, cpu};
    int tf = backend_cuda_tf32();
    backend_cuda_set_tf32(tf32);
    for (int k = 0; k < 2; k++) {
        Model *m = model_create(bes[k], cfg, mc);
        if (!m) { fprintf(stderr, "%s\n", err_msg()); free(tok); free(tgt); return 1; }
        model_init_random(m, 1);
        model_zero_grad(m);
        before[k] = model_forward(m, &bt, &fo);
        model_backward(m);
        model_update(m, &oc, 0);
        after[k] = model_forward(m, &bt, &fo);
        model_free(m);
    }
    backend_cuda_set_tf32(tf);
    free(tok); free(tgt);
    double rtol = !strcmp(precision, "fp32") ? 2e-4 : 3e-3;
    *loss_gpu = after[0];
    *loss_cpu = after[1];
    for (int k = 0; k < 2; k++) {
        float g = k ? after[0] : before[0], c = k ? after[1] : before[1];
        if (!(fabsf(g - c) <= rtol * fabsf(c) + 1e-5)) {
            fprintf(stderr, "bench: the loss %s one step differs from the CPU's: gpu %.8g cpu %.8g (rtol %g)\n",
                    k ? "after" : "before", g, c, rtol);
            return 1;
        }
    }
    return 0;
}

// One line: step time, tokens/s, FLOPs and MFU, memory. FLOPs per step as executed:
// matmuls 2 * (12 L C^2 + V C) per token forward (weights of every linear, and the tied LM
// head), attention 4 L T C per token forward (q k^T and att v over the full T x T square, as
// the kernels compute them); training = forward + input gradients (same again) + weight
// gradients (same again, only for trainable weights: FT yes, LoRA no; LoRA's own r-sized
// products are left out). precision: fp32, tf32 (fp32 with TF32 gemms) or bf16.
static int bench_train(const char *preset, const char *method, int B, int T, int steps, const char *precision) {
    ModelConfig cfg;
    if (model_preset(preset, &cfg)) { fprintf(stderr, "%s\n", err_msg()); return 2; }
    MethodConfig mc;
    method_defaults(&mc);
    if (!strcmp(method, "ft")) mc.kind = METHOD_FT;
    else if (!strcmp(method, "lora")) { mc.kind = METHOD_LORA; mc.lora_targets = TARGET_Q | TARGET_V; mc.lora_rank = 8; mc.lora_alpha = 8; }
    else { fprintf(stderr, "bench: method must be ft or lora, got %s\n", method); return 2; }
    int tf32 = 0;
    if (!strcmp(precision, "bf16")) mc.precision = PRECISION_BF16;
    else if (!strcmp(precision, "tf32")) tf32 = 1;
    else if (strcmp(precision, "fp32")) { fprintf(stderr, "bench: precision must be fp32, tf32 or bf16, got %s\n", precision); return 2; }
    if (B < 1 || T < 1 || T > cfg.n_ctx || steps < 1) {
        fprintf(stderr, "bench: need B >= 1, 1 <= T <= %d (n_ctx of %s), STEPS >= 1\n", cfg.n_ctx, preset);
        return 2;
    }
    float check_gpu, check_cpu;
    if (bench_check_loss(&cfg, &mc, T, tf32, precision, &check_gpu, &check_cpu)) return 1;
    backend_cuda_set_tf32(tf32);
    backend_cuda_memory_reset_peak();   // the check's models are freed: the peak is the bench's own
    Model *m = model_create(gpu, &cfg, &mc);
    if (!m) { fprintf(stderr, "%s\n", err_msg()); return 2; }
    model_init_random(m, 1);
    int *tok = malloc(sizeof(int) * B * T), *tgt = malloc(sizeof(int) * B * T);
    Rng r = rng_seeded(3);
    for (int i = 0; i < B * T; i++) tok[i] = (int)(rng_u64(&r) % (uint64_t)cfg.vocab_size);
    r = rng_seeded(4);
    for (int i = 0; i < B * T; i++) tgt[i] = (int)(rng_u64(&r) % (uint64_t)cfg.vocab_size);
    Batch bt = {B, T, tok, tgt, NULL, NULL, NULL, NULL};
    ForwardOptions fo = {1, 0.0f, 0.0f, 1};
    OptimConfig oc;
    optim_defaults(&oc);
    oc.grad_clip = 1.0f;
    float loss = 0;
    double t0 = 0;
    for (int s = 0; s <= steps; s++) {   // step 0 warms up (cuBLAS heuristics, scratch)
        if (s == 1) { gpu->synchronize(); t0 = now_s(); }
        model_zero_grad(m);
        loss = model_forward(m, &bt, &fo);
        model_backward(m);
        model_update(m, &oc, s);
    }
    gpu->synchronize();
    double dt = (now_s() - t0) / steps;
    double L = cfg.n_layer, C = cfg.n_embd, V = cfg.vocab_size;
    double mm = 2.0 * (12.0 * L * C * C + V * C), attn = 4.0 * L * T * C;
    double per_tok = mc.kind == METHOD_FT ? 3.0 * (mm + attn) : 2.0 * mm + 3.0 * attn;
    double flops = per_tok * B * T, tflops = flops / dt / 1e12;
    char desc[256];
    backend_cuda_describe(0, desc, sizeof desc);
    double peak = peak_tflops(desc);
    size_t in_use, peak_mem;
    backend_cuda_memory(&in_use, &peak_mem);
    MemoryReport mr = model_memory(m);
    ParamCounts pc = model_param_counts(m);
    printf("bench preset=%s method=%s B=%d T=%d steps=%d precision=%s tf32=%d step_ms=%.2f tokens_per_s=%.0f "
           "tflops=%.2f mfu_bf16=", preset, method, B, T, steps, precision, backend_cuda_tf32(), dt * 1e3,
           B * T / dt, tflops);
    if (peak > 0) printf("%.2f%%", 100.0 * tflops / peak);
    else printf("n/a");
    printf(" peak_tflops=%.1f loss=%.4f check_loss_gpu=%.6f check_loss_cpu=%.6f trainable=%zu total=%zu "
           "peak_mem_mib=%.1f weights_mib=%.1f grads_mib=%.1f optimizer_mib=%.1f activations_mib=%.1f\n",
           peak, loss, check_gpu, check_cpu, pc.trainable, pc.total, peak_mem / 1048576.0,
           mr.weights / 1048576.0, mr.grads / 1048576.0, mr.optimizer / 1048576.0,
           mr.activations / 1048576.0);
    model_free(m);
    free(tok); free(tgt);
    return 0;
}

// The SVD of the analysis for 2L (q and v) rank-R updates dW = B A of size C x C, host to
// host through analysis_svd (as the analyze verb does), on the GPU and on the CPU.
static int bench_svd(int L, int C, int R) {
    int n = 2 * L;
    size_t cc = (size_t)C * C;
    float *A = malloc(sizeof(float) * R * C), *Bm = malloc(sizeof(float) * C * R);
    float *dW = malloc(sizeof(float) * cc * n), *U = malloc(sizeof(float) * cc), *S = malloc(sizeof(float) * C);
    float *Vt = malloc(sizeof(float) * cc);
    for (int i = 0; i < n; i++) {
        analysis_gaussian(A, (size_t)R * C, 10 + i);
        analysis_gaussian(Bm, (size_t)C * R, 100 + i);
        analysis_delta_w(dW + i * cc, A, Bm, C, C, R, 1.0f);
    }
    double times[2];
    const Backend *bes[2] = {gpu, cpu};
    for (int k = 0; k < 2; k++) {
        if (analysis_svd(bes[k], dW, C, C, U, S, Vt)) { fprintf(stderr, "%s\n", err_msg()); return 1; }   // warm-up
        double t0 = now_s();
        for (int i = 0; i < n; i++)
            if (analysis_svd(bes[k], dW + i * cc, C, C, U, S, Vt)) { fprintf(stderr, "%s\n", err_msg()); return 1; }
        times[k] = now_s() - t0;
    }
    printf("bench-svd matrices=%d shape=%dx%d rank=%d gpu_total_s=%.3f gpu_per_matrix_ms=%.1f "
           "cpu_total_s=%.3f cpu_threads=%d\n", n, C, C, R, times[0], times[0] / n * 1e3, times[1],
           backend_cpu()->threads());
    free(A); free(Bm); free(dW); free(U); free(S); free(Vt);
    return 0;
}

// ----------------------------------------------------------------------------

int main(int argc, char **argv) {
    cpu = backend_cpu();
    rng = rng_seeded(2024);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_such_device),
        cmocka_unit_test(test_memory_accounting),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test_teardown(test_gemm_tf32, tf32_off),
        cmocka_unit_test(test_bias),
        cmocka_unit_test(test_vector_ops),
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_decode),
        cmocka_unit_test(test_decode_bounds),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_svd),
        cmocka_unit_test(test_train_step_nano),
        cmocka_unit_test(test_train_step_micro),
        cmocka_unit_test(test_decode_model),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_bf16_fused),
    };
    size_t ntests = sizeof tests / sizeof tests[0];
    if (argc == 2 && !strcmp(argv[1], "--list")) {   // before any CUDA call: instant
        for (size_t i = 0; i < ntests; i++) printf("%s\n", tests[i].name);
        return 0;
    }
    int device = 0;
    const char *dev = getenv("LORALAB_TEST_CUDA_DEVICE");
    if (dev && *dev) device = atoi(dev);
    if (backend_cuda_device_count() > 0) {
        gpu = backend_cuda(device, gpu_why, sizeof gpu_why);
    } else {
        backend_cuda(device, gpu_why, sizeof gpu_why);   // for its message
    }
    if (argc > 1 && !strncmp(argv[1], "--bench", 7)) {   // TF32 as the bench's precision says
        if (!gpu) { fprintf(stderr, "test_cuda_ops: %s\n", gpu_why); return 2; }
        if (!strcmp(argv[1], "--bench") && (argc == 7 || argc == 8))
            return bench_train(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), argc == 8 ? argv[7] : "fp32");
        if (!strcmp(argv[1], "--bench-svd") && argc == 5)
            return bench_svd(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
        fprintf(stderr, "usage: test_cuda_ops [--list | --only TEST | --bench PRESET ft|lora B T STEPS [fp32|tf32|bf16] | --bench-svd L C R | --decode-oob]\n");
        return 2;
    }
    if (gpu) backend_cuda_set_tf32(0);   // the tests compare fp32 against the CPU
    if (argc == 2 && !strcmp(argv[1], "--decode-oob")) {
        if (!gpu) { fprintf(stderr, "test_cuda_ops: %s\n", gpu_why); return 2; }
        return decode_out_of_bounds();
    }
    struct CMUnitTest only[1];
    const struct CMUnitTest *run = tests;
    if (argc == 3 && !strcmp(argv[1], "--only")) {
        size_t i = 0;
        while (i < ntests && strcmp(tests[i].name, argv[2])) i++;
        if (i == ntests) { fprintf(stderr, "test_cuda_ops: no test named '%s' (see --list)\n", argv[2]); return 2; }
        only[0] = tests[i];
        run = only;
        ntests = 1;
    } else if (argc > 1) {
        fprintf(stderr, "usage: test_cuda_ops [--list | --only TEST | --bench PRESET ft|lora B T STEPS [fp32|tf32|bf16] | --bench-svd L C R | --decode-oob]\n");
        return 2;
    }
    if (!gpu) printf("test_cuda_ops: skipped: no GPU (%s)\n", gpu_why);
    else {
        char desc[256];
        backend_cuda_describe(device, desc, sizeof desc);
        printf("test_cuda_ops: %s\n", desc);
    }
    return _cmocka_run_group_tests("test_cuda_ops", run, ntests, NULL, NULL);
}
