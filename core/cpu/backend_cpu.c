// core/cpu/backend_cpu.c — the CPU backend: OpenBLAS sgemm, LAPACKE, OpenMP.
//
// Implements every function of the Backend table (core/backend.h) on plain host memory.
// Contracts are those of backend.h; in short:
// - parameter gradients +=, activation gradients = (layernorm_backward's dinp +=);
//   a NULL parameter-gradient pointer skips that gradient.
// - One thread pool: OpenMP's. gemm splits C into blocks of rows (or columns), one
//   single-threaded cblas_sgemm per OpenMP thread. OpenBLAS's OpenMP build (what the
//   Makefile links) runs single-threaded inside an OpenMP region by itself; its pthread
//   build is kept at one thread, because its own pool spinning next to OpenMP's made a
//   micro training step 8x slower on 2 cores.
// - Element-wise and per-row ops run under OpenMP (serially below PAR_MIN elements).
// - Attention runs one OpenMP iteration per (batch, head) pair, each doing its products with
//   sgemm calls.
// - Attention dropout draws element (b, h, i, j) of att as dropout_keep_u01(seed,
//   ((b*NH + h)*T + i)*T + j): the flat index into att. Other backends must do the same.
//
// Scratch: the backend keeps one static buffer (cpu_scratch), grown on demand and never
// freed, for per-thread partial sums (layernorm_backward's dweight/dbias) and, with attention
// dropout, one dropped T x T attention matrix per thread. It makes the backend
// non-reentrant: one calling thread at a time (the training loop), which is how loralab uses
// it (parallel runs are processes). Nothing else is allocated inside the ops, except the
// copy of A that svd hands to LAPACK.
#include "core/backend.h"
#include "core/errors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// ----------------------------------------------------------------------------
// threads and scratch

static int cpu_threads = 0;   // 0: not set yet (OpenMP's default: all cores)

// OpenBLAS must run single-threaded inside our OpenMP threads. The OpenMP build does that
// by itself (and its openblas_set_num_threads also sets OpenMP's thread count, so it must
// not be told 1); the pthread build is pinned to one thread.
static void blas_single(void) {
    if (openblas_get_parallel() == OPENBLAS_THREAD && openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
}

void backend_cpu_set_threads(int threads) {
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_num_procs();
    if (openblas_get_parallel() == OPENBLAS_OPENMP) openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
#else
    threads = 1;
#endif
    blas_single();
    cpu_threads = threads;
}

int backend_cpu_threads(void) {
    if (cpu_threads > 0) return cpu_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Returns a buffer of at least `floats` floats, valid until the next call. Contents undefined.
static float *cpu_scratch(size_t floats) {
    static float *buf = NULL;
    static size_t cap = 0;
    if (floats > cap) {
        free(buf);
        buf = xmalloc(floats * sizeof(float));
        cap = floats;
    }
    return buf;
}

// Splits [0, n) into nt nearly equal chunks; returns chunk `id` as [*lo, *hi).
static void chunk_range(int n, int nt, int id, int *lo, int *hi) {
    int base = n / nt, rem = n % nt;
    *lo = id * base + (id < rem ? id : rem);
    *hi = *lo + base + (id < rem ? 1 : 0);
}

// Work below this many elements (or multiply-adds for gemm) is not worth waking the pool for.
#define PAR_MIN 16384
#define GEMM_PAR_MIN (64.0 * 64.0 * 64.0)

// ----------------------------------------------------------------------------
// fast vectorizable math
//
// glibc's expf/tanhf do not vectorize without -ffast-math; these do, and are accurate to a
// few float ulps (tests/test_ops.c checks GELU and softmax against libm in double precision).

// exp(x) by range reduction x = n ln2 + r, |r| <= ln2/2, and a degree-6 polynomial for e^r.
static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    // n = round(x / ln2) by the 1.5 * 2^23 trick (floorf blocks vectorization)
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;          // ln2 split in a high part ...
    r = r - n * 1.42860682030941723212e-6f;        // ... and a low part
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    n = n == n ? n : 0.0f;   // NaN in, NaN out (through p), without a NaN-to-int conversion
    union { uint32_t i; float f; } scale = { .i = (uint32_t)((int32_t)n + 127) << 23 };   // 2^n
    return p * scale.f;
}

// tanh(x) = sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|}); for small |x| the odd Taylor series
// avoids the cancellation in 1 - e^{-2|x|}.
static inline float fast_tanhf(float x) {
    float ax = fabsf(x);
    float e = fast_expf(-2.0f * ax);
    float big = (1.0f - e) / (1.0f + e);
    float x2 = ax * ax;
    // tanh(x) = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835, exact to float for |x| < 0.25
    float small = ax * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f
                  + x2 * (62.0f / 2835.0f)))));
    float t = ax < 0.25f ? small : big;
    return x < 0.0f ? -t : t;
}

// ----------------------------------------------------------------------------
// memory

static void *cpu_alloc(size_t bytes) { return xcalloc(1, bytes); }
static void cpu_free(void *ptr) { free(ptr); }
static void cpu_memcpy(void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}
static void cpu_zero(void *dst, size_t bytes) {
    if (bytes) memset(dst, 0, bytes);
}
static void cpu_synchronize(void) {}

// ----------------------------------------------------------------------------
// dense algebra

// Floating-point operations of every sgemm this backend ran (2*M*N*K each), for `bench`'s
// bound on tokens/s from sgemm speed alone. Counted outside parallel regions only.
static double gemm_flops_total;

double backend_cpu_gemm_flops(void) { return gemm_flops_total; }

// OpenBLAS picks its kernels when it loads, from the CPU or from OPENBLAS_CORETYPE.
const char *backend_cpu_blas_core(void) { return openblas_get_corename(); }

static void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc) {
    LAB_ASSERT(M >= 0 && N >= 0 && K >= 0);
    LAB_ASSERT(lda >= (trans_a ? M : K) && lda >= 1);
    LAB_ASSERT(ldb >= (trans_b ? K : N) && ldb >= 1);
    LAB_ASSERT(ldc >= N && ldc >= 1);
    if (M == 0 || N == 0) return;
    gemm_flops_total += 2.0 * M * N * K;
    blas_single();
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    int nt = max_threads();
    if ((double)M * N * K < GEMM_PAR_MIN || nt == 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // Split the longer side of C into blocks of whole 16-row/column units, one per thread.
    int split_rows = M >= N;
    int units = ((split_rows ? M : N) + 15) / 16;
    if (nt > units) nt = units;
    #pragma omp parallel num_threads(nt)
    {
        int lo, hi;
        chunk_range(units, team_size(), thread_id(), &lo, &hi);
        int len = split_rows ? M : N;
        lo *= 16;
        hi = hi * 16 < len ? hi * 16 : len;
        if (lo < hi) {
            if (split_rows) {   // rows lo..hi of op(A) and of C
                const float *a = trans_a ? A + lo : A + (size_t)lo * lda;
                cblas_sgemm(CblasRowMajor, ta, tb, hi - lo, N, K, alpha, a, lda, B, ldb, beta,
                            C + (size_t)lo * ldc, ldc);
            } else {            // columns lo..hi of op(B) and of C
                const float *b = trans_b ? B + (size_t)lo * ldb : B + lo;
                cblas_sgemm(CblasRowMajor, ta, tb, M, hi - lo, K, alpha, A, lda, b, ldb, beta,
                            C + lo, ldc);
            }
        }
    }
}

// Widens a stored rows x cols bf16 matrix (row stride ld) to fp32 with the same stride.
static void bf16_widen(float *dst, const uint16_t *src, int rows, int cols, int ld) {
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)r * ld + c] = bf16_to_float(src[(size_t)r * ld + c]);
}

// Debian's OpenBLAS is built without its bf16 routines (no sbgemm), so the operands are
// widened to fp32 (exactly) and multiplied by sgemm: products of bf16 values are exact in
// fp32 and accumulate in fp32, which is what a bf16 tensor-core GEMM computes.
static void cpu_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta,
                          float *C, int ldc) {
    if (M == 0 || N == 0) return;
    int ra = trans_a ? K : M, ca = trans_a ? M : K, rb = trans_b ? N : K, cb = trans_b ? K : N;
    size_t na = ra ? (size_t)(ra - 1) * lda + ca : 0, nb = rb ? (size_t)(rb - 1) * ldb + cb : 0;
    float *wa = cpu_scratch(na + nb), *wb = wa + na;
    bf16_widen(wa, A, ra, ca, lda);
    bf16_widen(wb, B, rb, cb, ldb);
    cpu_gemm(trans_a, trans_b, M, N, K, alpha, wa, lda, wb, ldb, beta, C, ldc);
}

static void cpu_to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld) {
    LAB_ASSERT(rows >= 0 && cols >= 0 && ld >= cols);
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)r * cols + c] = bf16_from_float(src[(size_t)r * ld + c]);
}

static void cpu_bias_add(float *out, const float *bias, int N, int OC, int ldo) {
    LAB_ASSERT(ldo >= OC);
    #pragma omp parallel for schedule(static) if ((size_t)N * OC > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * ldo;
        #pragma omp simd
        for (int c = 0; c < OC; c++) o[c] += bias[c];
    }
}

// Columns are split between threads, so each dbias element has one writer.
static void cpu_bias_backward(float *dbias, const float *dout, int N, int OC, int ldd) {
    LAB_ASSERT(ldd >= OC);
    int nt = (size_t)N * OC > PAR_MIN ? max_threads() : 1;
    if (nt > OC / 16) nt = OC / 16 > 0 ? OC / 16 : 1;   // at least 16 columns per thread
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int lo, hi;
        chunk_range(OC, team_size(), thread_id(), &lo, &hi);
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * ldd;
            #pragma omp simd
            for (int c = lo; c < hi; c++) dbias[c] += d[c];
        }
    }
}

static void cpu_axpy(float *y, const float *x, float alpha, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

static void cpu_scale(float *x, float alpha, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= alpha;
}

static void cpu_add(float *out, const float *a, const float *b, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static double cpu_sumsq(const float *x, size_t n) {
    double s = 0.0;
    #pragma omp parallel for simd schedule(static) reduction(+:s) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

// ----------------------------------------------------------------------------
// encoder

static void cpu_encoder_forward(float *out, const int *tokens, const float *wte,
                                const float *wpe, int B, int T, int C) {
    #pragma omp parallel for schedule(static) if ((size_t)B * T * C > PAR_MIN)
    for (int bt = 0; bt < B * T; bt++) {
        float *o = out + (size_t)bt * C;
        const float *e = wte + (size_t)tokens[bt] * C;
        const float *p = wpe + (size_t)(bt % T) * C;
        #pragma omp simd
        for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
    }
}

// Tokens repeat, so dwte is split by columns: each thread owns a slice of every row.
static void cpu_encoder_backward(float *dwte, float *dwpe, const float *dout, const int *tokens,
                                 int B, int T, int C) {
    int par = (size_t)B * T * C > PAR_MIN;
    if (dwte) {
        int nt = par ? max_threads() : 1;
        if (nt > C / 16) nt = C / 16 > 0 ? C / 16 : 1;
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int lo, hi;
            chunk_range(C, team_size(), thread_id(), &lo, &hi);
            for (int bt = 0; bt < B * T; bt++) {
                float *dw = dwte + (size_t)tokens[bt] * C;
                const float *d = dout + (size_t)bt * C;
                #pragma omp simd
                for (int c = lo; c < hi; c++) dw[c] += d[c];
            }
        }
    }
    if (dwpe) {
        #pragma omp parallel for schedule(static) if (par)
        for (int t = 0; t < T; t++) {
            float *dp = dwpe + (size_t)t * C;
            for (int b = 0; b < B; b++) {
                const float *d = dout + ((size_t)b * T + t) * C;
                #pragma omp simd
                for (int c = 0; c < C; c++) dp[c] += d[c];
            }
        }
    }
}

// ----------------------------------------------------------------------------
// layernorm

static void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int N, int C,
                                  float eps) {
    #pragma omp parallel for schedule(static) if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = 0.0f;
        #pragma omp simd reduction(+:m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float v = 0.0f;
        #pragma omp simd reduction(+:v)
        for (int c = 0; c < C; c++) { float d = x[c] - m; v += d * d; }
        v /= C;
        float s = 1.0f / sqrtf(v + eps);
        #pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

// dweight/dbias: each thread sums its rows into its own slice of the scratch buffer; the
// slices are added into dweight/dbias afterwards (one writer per element).
static void cpu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int N, int C) {
    int nt = (size_t)N * C > PAR_MIN ? max_threads() : 1;
    int want_param = dweight != NULL || dbias != NULL;
    float *part = want_param ? cpu_scratch((size_t)nt * 2 * C) : NULL;
    if (part) memset(part, 0, (size_t)nt * 2 * C * sizeof(float));
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int id = thread_id(), lo, hi;   // the team may be smaller than nt, never larger
        chunk_range(N, team_size(), id, &lo, &hi);
        float *pw = part ? part + (size_t)id * 2 * C : NULL, *pb = pw ? pw + C : NULL;
        for (int n = lo; n < hi; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            // dnorm = dout * weight; dx = s * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
            float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
            #pragma omp simd reduction(+:dnorm_mean, dnorm_norm_mean)
            for (int c = 0; c < C; c++) {
                float norm = (x[c] - m) * s;
                float dn = weight[c] * d[c];
                dnorm_mean += dn;
                dnorm_norm_mean += dn * norm;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            #pragma omp simd
            for (int c = 0; c < C; c++) {
                float norm = (x[c] - m) * s;
                float dn = weight[c] * d[c];
                dx[c] += s * (dn - dnorm_mean - norm * dnorm_norm_mean);
            }
            if (pw) {
                #pragma omp simd
                for (int c = 0; c < C; c++) {
                    pw[c] += (x[c] - m) * s * d[c];
                    pb[c] += d[c];
                }
            }
        }
    }
    if (!want_param) return;
    for (int t = 0; t < nt; t++) {
        const float *pw = part + (size_t)t * 2 * C, *pb = pw + C;
        if (dweight) for (int c = 0; c < C; c++) dweight[c] += pw[c];
        if (dbias) for (int c = 0; c < C; c++) dbias[c] += pb[c];
    }
}

// ----------------------------------------------------------------------------
// attention

// Softmax of row i of the scaled scores `a` (length T) over the keys it may see: j <= i and
// key_mask[j] != 0 (mask NULL: all). Invisible entries become 0; a row with no visible key
// becomes all zeros.
static void softmax_causal_row(float *a, int i, const uint8_t *mask, int T) {
    int any = !mask;
    for (int j = 0; j <= i && !any; j++) any = mask[j] != 0;
    if (!any) {
        memset(a, 0, (size_t)T * sizeof(float));
        return;
    }
    // (NaN scores are skipped by the max but reach the sum, so they propagate)
    float mx = -INFINITY;
    for (int j = 0; j <= i; j++)
        if ((!mask || mask[j]) && a[j] > mx) mx = a[j];
    float sum = 0.0f;
    if (mask) {
        #pragma omp simd reduction(+:sum)
        for (int j = 0; j <= i; j++) {
            float e = mask[j] ? fast_expf(a[j] - mx) : 0.0f;
            a[j] = e;
            sum += e;
        }
    } else {
        #pragma omp simd reduction(+:sum)
        for (int j = 0; j <= i; j++) {
            float e = fast_expf(a[j] - mx);
            a[j] = e;
            sum += e;
        }
    }
    float inv = 1.0f / sum;
    #pragma omp simd
    for (int j = 0; j <= i; j++) a[j] *= inv;
    if (i + 1 < T) memset(a + i + 1, 0, (size_t)(T - 1 - i) * sizeof(float));
}

// dst = att with attention dropout applied (entries j > i stay 0, as they are in att).
static void attention_dropout_apply(float *dst, const float *a, int T, float p, uint64_t seed,
                                    uint64_t base) {
    float inv = 1.0f / (1.0f - p);
    for (int i = 0; i < T; i++) {
        const float *ar = a + (size_t)i * T;
        float *dr = dst + (size_t)i * T;
        uint64_t row = base + (uint64_t)i * T;
        for (int j = 0; j <= i; j++)
            dr[j] = dropout_keep_u01(seed, row + j) < p ? 0.0f : ar[j] * inv;
        for (int j = i + 1; j < T; j++) dr[j] = 0.0f;
    }
}

// What attention forward and backward share: checks, head size and score scale, one T x T
// dropout buffer per thread (p > 0), and the flops of its `products` per-head sgemms
// (T x T x hs each); single-threaded BLAS, since the (batch, head) loop is the parallel one.
typedef struct { int hs, nt; float scale; size_t TT; float *drop; } AttentionSetup;

static AttentionSetup attention_setup(int B, int T, int C, int NH, float dropout_p, int products) {
    LAB_ASSERT(NH > 0 && C % NH == 0);
    LAB_ASSERT(dropout_p >= 0.0f && dropout_p < 1.0f);
    AttentionSetup as;
    as.hs = C / NH;
    as.scale = 1.0f / sqrtf((float)as.hs);
    as.TT = (size_t)T * T;
    as.nt = max_threads();
    as.drop = dropout_p > 0.0f ? cpu_scratch((size_t)as.nt * as.TT) : NULL;
    gemm_flops_total += products * (double)B * NH * (2.0 * T * T * as.hs);
    blas_single();
    return as;
}

static void cpu_attention_forward(float *out, float *att, const float *qkv,
                                  const uint8_t *key_mask, int B, int T, int C, int NH,
                                  float dropout_p, uint64_t seed) {
    AttentionSetup as = attention_setup(B, T, C, NH, dropout_p, 2);   // scores, scores @ v
    int hs = as.hs, C3 = 3 * C, nt = as.nt;
    float scale = as.scale, *drop = as.drop;
    size_t TT = as.TT;
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hs;
        const float *k = q + C, *v = q + 2 * C;
        float *a = att + (size_t)bh * TT;
        const uint8_t *mask = key_mask ? key_mask + (size_t)b * T : NULL;
        // scores = scale * q k^T (the upper triangle is computed and then discarded: one
        // sgemm is faster than T small ones)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, C3, k, C3,
                    0.0f, a, T);
        for (int i = 0; i < T; i++) softmax_causal_row(a + (size_t)i * T, i, mask, T);
        const float *use = a;
        if (drop) {
            float *d = drop + (size_t)thread_id() * TT;
            attention_dropout_apply(d, a, T, dropout_p, seed, (uint64_t)bh * TT);
            use = d;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, use, T, v, C3,
                    0.0f, out + (size_t)b * T * C + (size_t)h * hs, C);
    }
}

static void cpu_attention_decode(float *out, const float *qkv, float *kcache, float *vcache,
                                 const int *positions, int B, int Tmax, int C, int NH) {
    int hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++) {
        LAB_ASSERT(positions[b] >= 0 && positions[b] < Tmax);
        size_t at = ((size_t)b * Tmax + positions[b]) * C;
        memcpy(kcache + at, qkv + (size_t)b * 3 * C + C, (size_t)C * sizeof(float));
        memcpy(vcache + at, qkv + (size_t)b * 3 * C + 2 * C, (size_t)C * sizeof(float));
    }
    #pragma omp parallel
    {
        float *p = xmalloc((size_t)Tmax * sizeof(float));   // scores of one (row, head)
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                const float *q = qkv + (size_t)b * 3 * C + h * hs;
                const float *kb = kcache + (size_t)b * Tmax * C + h * hs, *vb = vcache + (size_t)b * Tmax * C + h * hs;
                int n = positions[b] + 1;
                float mx = -INFINITY, sum = 0.0f;
                for (int t = 0; t < n; t++) {
                    float s = 0.0f;
                    for (int i = 0; i < hs; i++) s += q[i] * kb[(size_t)t * C + i];
                    p[t] = s * scale;
                    if (p[t] > mx) mx = p[t];
                }
                for (int t = 0; t < n; t++) { p[t] = expf(p[t] - mx); sum += p[t]; }
                float *o = out + (size_t)b * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0.0f;
                for (int t = 0; t < n; t++) {
                    float w = p[t] / sum;
                    for (int i = 0; i < hs; i++) o[i] += w * vb[(size_t)t * C + i];
                }
            }
        free(p);
    }
}

static void cpu_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                   const float *att, const uint8_t *key_mask,
                                   int B, int T, int C, int NH, float dropout_p, uint64_t seed) {
    (void)key_mask;   // masked entries of att are 0, which zeroes their gradient below
    AttentionSetup as = attention_setup(B, T, C, NH, dropout_p, 4);   // dv, datt, dq, dk
    int hs = as.hs, C3 = 3 * C, nt = as.nt;
    float scale = as.scale, *drop = as.drop;
    size_t TT = as.TT;
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hs;
        const float *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + (size_t)b * T * C3 + (size_t)h * hs;
        float *dk = dq + C, *dv = dq + 2 * C;
        const float *a = att + (size_t)bh * TT;
        const float *dy = dout + (size_t)b * T * C + (size_t)h * hs;
        float *da = datt + (size_t)bh * TT;
        // d = dropped(att) = att * keep / (1 - p), the matrix the forward multiplied v by
        const float *d = a;
        if (drop) {
            float *dd = drop + (size_t)thread_id() * TT;
            attention_dropout_apply(dd, a, T, dropout_p, seed, (uint64_t)bh * TT);
            d = dd;
        }
        // dv = d^T dy; datt_d = dy v^T (gradient w.r.t. d)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, d, T, dy, C,
                    0.0f, dv, C3);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dy, C, v, C3,
                    0.0f, da, T);
        // Through the dropout and the softmax: datt_j = datt_d_j keep_j / (1 - p), and
        // dscore_j = a_j (datt_j - sum_k a_k datt_k); since a_j keep_j / (1 - p) = d_j,
        // dscore_j = d_j datt_d_j - a_j sum_k d_k datt_d_k. The scale is folded in below.
        for (int i = 0; i < T; i++) {
            const float *ar = a + (size_t)i * T, *dr = d + (size_t)i * T;
            float *g = da + (size_t)i * T;
            float s = 0.0f;
            #pragma omp simd reduction(+:s)
            for (int j = 0; j <= i; j++) s += dr[j] * g[j];
            #pragma omp simd
            for (int j = 0; j <= i; j++) g[j] = dr[j] * g[j] - ar[j] * s;
            if (i + 1 < T) memset(g + i + 1, 0, (size_t)(T - 1 - i) * sizeof(float));
        }
        // dq = scale * dscores k; dk = scale * dscores^T q
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, scale, da, T, k, C3,
                    0.0f, dq, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, scale, da, T, q, C3,
                    0.0f, dk, C3);
    }
}

// ----------------------------------------------------------------------------
// GELU (tanh approximation) and dropout

#define GELU_S 0.7978845608028654f   // sqrt(2 / pi)

static void cpu_gelu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + fast_tanhf(GELU_S * (x + 0.044715f * x * x * x)));
    }
}

static void cpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float t = fast_tanhf(GELU_S * (x + 0.044715f * x * x * x));
        float du = GELU_S * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
}

static void cpu_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed) {
    LAB_ASSERT(p >= 0.0f && p < 1.0f);
    if (p == 0.0f) {
        if (out != inp) memcpy(out, inp, n * sizeof(float));
        return;
    }
    float inv = 1.0f / (1.0f - p);
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = dropout_keep_u01(seed, i) < p ? 0.0f : inp[i] * inv;
}

static void cpu_dropout_backward(float *dinp, const float *dout, size_t n, float p,
                                 uint64_t seed) {
    cpu_dropout_forward(dinp, dout, n, p, seed);   // the same linear map
}

// ----------------------------------------------------------------------------
// softmax + cross-entropy

// loss = logsumexp(l) - (1 - eps) l_target - (eps / V) sum_v l_v, which is
// -sum_v q_v log p_v for q = (1 - eps) onehot + eps / V.
static void cpu_crossentropy_forward(float *losses, float *probs, const float *logits, int ldl,
                                     const int *targets, int N, int V, float label_smoothing) {
    LAB_ASSERT(ldl >= V);
    float eps = label_smoothing;
    #pragma omp parallel for schedule(static) if ((size_t)N * V > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * ldl;
        float *p = probs + (size_t)n * V;
        float mx = -INFINITY;
        for (int v = 0; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        float sum = 0.0f, lsum = 0.0f;
        #pragma omp simd reduction(+:sum, lsum)
        for (int v = 0; v < V; v++) {
            float e = fast_expf(l[v] - mx);
            p[v] = e;
            sum += e;
            lsum += l[v];
        }
        float inv = 1.0f / sum;
        #pragma omp simd
        for (int v = 0; v < V; v++) p[v] *= inv;
        int t = targets[n];
        if (t < 0) {
            losses[n] = 0.0f;
            continue;
        }
        LAB_ASSERT(t < V);
        double lse = (double)mx + log((double)sum);
        losses[n] = (float)(lse - (1.0 - eps) * l[t] - (double)eps / V * lsum);
    }
}

static void cpu_crossentropy_backward(float *dlogits, int ldl, const float *probs,
                                      const int *targets, int N, int V, float label_smoothing,
                                      float dloss) {
    LAB_ASSERT(ldl >= V);
    float u = label_smoothing / V;
    #pragma omp parallel for schedule(static) if ((size_t)N * V > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *d = dlogits + (size_t)n * ldl;
        const float *p = probs + (size_t)n * V;
        int t = targets[n];
        if (t < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        LAB_ASSERT(t < V);
        #pragma omp simd
        for (int v = 0; v < V; v++) d[v] = dloss * (p[v] - u);
        d[t] -= dloss * (1.0f - label_smoothing);
    }
}

// ----------------------------------------------------------------------------
// row gather / scatter

static void cpu_gather_rows(float *out, const float *inp, const int *rows, int n, int C) {
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * C, inp + (size_t)rows[i] * C, (size_t)C * sizeof(float));
}

static void cpu_scatter_add_rows(float *dinp, const float *dout, const int *rows, int n, int C) {
    for (int i = 0; i < n; i++) {
        float *d = dinp + (size_t)rows[i] * C;
        const float *s = dout + (size_t)i * C;
        #pragma omp simd
        for (int c = 0; c < C; c++) d[c] += s[c];
    }
}

// ----------------------------------------------------------------------------
// AdamW

static void cpu_adamw_update(float *param, const float *grad, float *m, float *v, size_t n,
                             float lr, float beta1, float beta2, float eps, float weight_decay,
                             int t) {
    LAB_ASSERT(t >= 1);
    float bc1 = (float)(1.0 - pow(beta1, t)), bc2 = (float)(1.0 - pow(beta2, t));
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        param[i] -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * param[i]);
    }
}

// ----------------------------------------------------------------------------
// SVD

static int cpu_svd(const float *A, int M, int N, float *U, float *S, float *Vt) {
    LAB_ASSERT(M > 0 && N > 0);
    int K = M < N ? M : N;
    float *a = xmalloc((size_t)M * N * sizeof(float));   // sgesdd destroys its input
    memcpy(a, A, (size_t)M * N * sizeof(float));
    lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', M, N, a, N, S, U, K, Vt, N);
    free(a);
    return info == 0 ? 0 : -1;
}

// ----------------------------------------------------------------------------
// the table

static const Backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_memcpy,
    .to_host = cpu_memcpy,
    .copy = cpu_memcpy,
    .zero = cpu_zero,
    .synchronize = cpu_synchronize,
    .gemm = cpu_gemm,
    .gemm_bf16 = cpu_gemm_bf16,
    .to_bf16 = cpu_to_bf16,
    .bias_add = cpu_bias_add,
    .bias_backward = cpu_bias_backward,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
    .add = cpu_add,
    .sumsq = cpu_sumsq,
    .encoder_forward = cpu_encoder_forward,
    .encoder_backward = cpu_encoder_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .attention_decode = cpu_attention_decode,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .crossentropy_forward = cpu_crossentropy_forward,
    .crossentropy_backward = cpu_crossentropy_backward,
    .gather_rows = cpu_gather_rows,
    .scatter_add_rows = cpu_scatter_add_rows,
    .adamw_update = cpu_adamw_update,
    .svd = cpu_svd,
};

const Backend *backend_cpu(void) {
    blas_single();
    return &cpu_backend;
}
