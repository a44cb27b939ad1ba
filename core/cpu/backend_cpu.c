// core/cpu/backend_cpu.c — the CPU backend: oneDNN matmul (core/cpu/matmul.c), OpenMP,
// LAPACKE for the SVD only.
//
// Implements every function of the Backend table (core/backend.h) on plain host memory.
// Contracts are those of backend.h; in short:
// - parameter gradients +=, activation gradients = (layernorm_backward's dinp +=);
//   a NULL parameter-gradient pointer skips that gradient.
// - One thread pool: OpenMP's, which oneDNN (built on OpenMP) threads its products with too.
// - Every matrix product, the attention's included, is a cached oneDNN primitive
//   (core/cpu/matmul.h): fp32, or bf16 operands with fp32 accumulation for gemm_bf16.
//   Attention runs each product as one batched matmul over all (batch, head) pairs.
// - Element-wise and per-row ops run under OpenMP (serially below PAR_MIN elements).
// - Attention dropout draws element (b, h, i, j) of att as dropout_keep_u01(seed,
//   ((b*NH + h)*T + i)*T + j): the flat index into att. Other backends must do the same.
//
// Scratch: the backend keeps one static buffer (cpu_scratch), grown on demand and never
// freed, for per-thread partial sums (layernorm_backward's dweight/dbias) and, with attention
// dropout, the dropped attention matrices. It makes the backend non-reentrant: one calling
// thread at a time (the training loop), which is how loralab uses it (parallel runs are
// processes). Once every shape has been seen (the first step), ops allocate nothing, except
// the copy of A that svd hands to LAPACK and attention_decode's per-thread score rows.
#include "core/backend.h"
#include "core/cpu/backend_cpu.h"
#include "core/cpu/matmul.h"
#include "core/errors.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>
#include <sys/mman.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// ----------------------------------------------------------------------------
// threads and scratch

static int cpu_threads = 0;   // 0: not set yet (OpenMP's default: all cores)

static void cpu_set_threads(int threads) {
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_num_procs();
    omp_set_num_threads(threads);
#else
    threads = 1;
#endif
    cpu_threads = threads;
}

static int cpu_get_threads(void) {
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

// Buffers of 2 MiB and more (weights, gradients, optimizer state, activations, scratch) start
// on a 2 MiB boundary, advised for transparent huge pages. malloc puts a large block 16 bytes
// into its first page, so every tensor carved from it straddled cache lines and each 64-byte
// vector load touched two: small FT fp32 on 2 threads ran 548-577 ms a step that way and
// 440-488 ms aligned (5 alternating runs of `bench --preset small --batch 8 --seq 256`).
// Fresh anonymous pages are zero, so no memset; they are backed when first touched.
enum { HUGE_PAGE = 2 << 20, MAX_MAPPINGS = 64 };
static struct { void *ptr; size_t bytes; } mappings[MAX_MAPPINGS];

static void *cpu_alloc(size_t bytes) {
    int slot = 0;
    while (slot < MAX_MAPPINGS && mappings[slot].ptr) slot++;
    if (bytes < HUGE_PAGE || slot == MAX_MAPPINGS) return xcalloc(1, bytes);
    size_t len = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    // map one huge page more than needed and trim both ends to a 2 MiB-aligned range
    char *base = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return xcalloc(1, bytes);   // out of memory: xcalloc's message
    char *p = (char *)(((uintptr_t)base + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (p > base) munmap(base, (size_t)(p - base));
    munmap(p + len, (size_t)(base + HUGE_PAGE - p));
    madvise(p, len, MADV_HUGEPAGE);   // advice only: without THP the pages stay 4 KiB
    mappings[slot].ptr = p;
    mappings[slot].bytes = len;
    return p;
}

static void cpu_free(void *ptr) {
    for (int i = 0; i < MAX_MAPPINGS; i++)
        if (ptr && mappings[i].ptr == ptr) {
            munmap(ptr, mappings[i].bytes);
            mappings[i].ptr = NULL;
            return;
        }
    free(ptr);
}

// Returns a buffer of at least `floats` floats, valid until the next call. Contents undefined.
static float *cpu_scratch(size_t floats) {
    static float *buf = NULL;
    static size_t cap = 0;
    if (floats > cap) {
        cpu_free(buf);
        buf = cpu_alloc(floats * sizeof(float));
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

// ----------------------------------------------------------------------------
// fast vectorizable math
//
// glibc's expf does not vectorize without -ffast-math; these do, and are accurate to a
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

// Row sums in LANES running accumulators that stay in one vector register, added pairwise
// at the end. gcc finishes an `omp simd` sum by adding its 16 lanes one after another: 16
// dependent adds per row, a large part of a row of 64 or 128 elements. The order of the
// additions differs from a serial sum's, as it did under `omp simd`; it is fixed per row, so
// results still do not depend on the thread count.
#define LANES 16
static inline float lanes_total(float *acc) {
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++) acc[k] += acc[k + w];
    return acc[0];
}

// Mean and 1/sqrt(variance + eps) of a row of C, the two-pass way (no cancellation).
static inline void row_moments(const float *x, int C, float eps, float *mean, float *rstd) {
    float acc[LANES] = {0};
    int c = 0;
    for (; c + LANES <= C; c += LANES) {
        #pragma omp simd
        for (int k = 0; k < LANES; k++) acc[k] += x[c + k];
    }
    for (int k = 0; c + k < C; k++) acc[k] += x[c + k];
    float m = lanes_total(acc) / C;
    float vacc[LANES] = {0};
    for (c = 0; c + LANES <= C; c += LANES) {
        #pragma omp simd
        for (int k = 0; k < LANES; k++) { float d = x[c + k] - m; vacc[k] += d * d; }
    }
    for (int k = 0; c + k < C; k++) { float d = x[c + k] - m; vacc[k] += d * d; }
    *mean = m;
    *rstd = 1.0f / sqrtf(lanes_total(vacc) / C + eps);
}

// ----------------------------------------------------------------------------
// memory

static void cpu_memcpy(void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}
static void cpu_zero(void *dst, size_t bytes) {
    if (bytes) memset(dst, 0, bytes);
}
static void cpu_synchronize(void) {}

// ----------------------------------------------------------------------------
// dense algebra

static void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta,
                     float *C, int ldc) {
    cpu_matmul_2d(0, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// bf16 operands go to oneDNN's bf16 kernels as they are (fp32 accumulation and C).
static void cpu_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha,
                          const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta,
                          float *C, int ldc) {
    cpu_matmul_2d(1, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// bf16_from_float without a branch, so that it vectorizes: NaN (|x| above infinity's bits)
// keeps its top bits and becomes quiet, everything else rounds to nearest even.
static inline uint16_t bf16_round(uint32_t u) {
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16, quiet = (u >> 16) | 0x0040u;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? quiet : rounded);
}

static inline uint16_t bf16_round_float(float f) {
    union { float f; uint32_t u; } x = {f};
    return bf16_round(x.u);
}

// colsum += the column sums of x (N rows of OC, ldx apart) and, when xh is not NULL, xh (N x OC,
// contiguous) = x rounded to bf16, in the same pass; with mul not NULL (N x OC bf16, contiguous)
// x stands for x * mul (in fp32) throughout. Columns are split between threads, so each colsum
// element has one writer; 64 columns at a time are summed in registers, one store per column
// rather than one per row.
static void column_sums(float *colsum, const float *x, int N, int OC, int ldx, uint16_t *xh,
                        const uint16_t *mul) {
    LAB_ASSERT(ldx >= OC);
    int nt = (size_t)N * OC > PAR_MIN ? max_threads() : 1;
    if (nt > OC / 16) nt = OC / 16 > 0 ? OC / 16 : 1;   // at least 16 columns per thread
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int lo, hi;
        chunk_range(OC, team_size(), thread_id(), &lo, &hi);
        for (int c0 = lo; c0 < hi; c0 += 64) {
            int w = hi - c0 < 64 ? hi - c0 : 64;
            float acc[64] = {0}, prod[64];
            for (int n = 0; n < N; n++) {
                const float *d = x + (size_t)n * ldx + c0;
                if (mul) {
                    const uint16_t *g = mul + (size_t)n * OC + c0;
                    #pragma omp simd
                    for (int c = 0; c < w; c++) prod[c] = d[c] * bf16_to_float(g[c]);
                    d = prod;
                }
                if (w == 64) {
                    #pragma omp simd
                    for (int c = 0; c < 64; c++) acc[c] += d[c];
                } else {
                    for (int c = 0; c < w; c++) acc[c] += d[c];
                }
                if (xh) {
                    const uint32_t *u = (const uint32_t *)d;
                    uint16_t *h = xh + (size_t)n * OC + c0;
                    #pragma omp simd
                    for (int c = 0; c < w; c++) h[c] = bf16_round(u[c]);
                }
            }
            for (int c = 0; c < w; c++) colsum[c0 + c] += acc[c];
        }
    }
}

static void cpu_to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld, float *colsum) {
    LAB_ASSERT(rows >= 0 && cols >= 0 && ld >= cols);
    if (colsum) { column_sums(colsum, src, rows, cols, ld, dst, NULL); return; }
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const uint32_t *x = (const uint32_t *)(src + (size_t)r * ld);
        uint16_t *d = dst + (size_t)r * cols;
        #pragma omp simd
        for (int c = 0; c < cols; c++) d[c] = bf16_round(x[c]);
    }
}

static void cpu_from_bf16(float *dst, const uint16_t *src, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(src[i]);
}

static void cpu_bias_add(float *out, const float *bias, int N, int OC, int ldo, uint16_t *out_bf16) {
    LAB_ASSERT(ldo >= OC);
    #pragma omp parallel for schedule(static) if ((size_t)N * OC > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * ldo;
        if (!out_bf16) {
            #pragma omp simd
            for (int c = 0; c < OC; c++) o[c] += bias[c];
            continue;
        }
        uint16_t *h = out_bf16 + (size_t)n * OC;
        #pragma omp simd
        for (int c = 0; c < OC; c++) {
            o[c] += bias[c];
            h[c] = bf16_round_float(o[c]);
        }
    }
}

static void cpu_bias_backward(float *dbias, const float *dout, int N, int OC, int ldd) {
    column_sums(dbias, dout, N, OC, ldd, NULL, NULL);
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

// Row n's output from its mean m and 1/std s, into o (or NULL) and h rounded (or NULL).
static inline void layernorm_row_out(float *o, uint16_t *h, const float *x, float m, float s,
                                     const float *weight, const float *bias, int C) {
    if (!h) {
        #pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
        return;
    }
    #pragma omp simd
    for (int c = 0; c < C; c++) {
        float y = (x[c] - m) * s * weight[c] + bias[c];
        h[c] = bf16_round_float(y);
        if (o) o[c] = y;
    }
}

static void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int N, int C,
                                  float eps, uint16_t *out_bf16) {
    LAB_ASSERT(out || out_bf16);
    #pragma omp parallel for schedule(static) if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m, s;
        row_moments(x, C, eps, &m, &s);
        layernorm_row_out(out ? out + (size_t)n * C : NULL, out_bf16 ? out_bf16 + (size_t)n * C : NULL,
                          x, m, s, weight, bias, C);
        mean[n] = m;
        rstd[n] = s;
    }
}

// The residual add and the LayerNorm after it in one pass: each row of the sum is normalized
// while it is still in cache (add's pass plus layernorm_forward's, fused). Same arithmetic.
static void cpu_residual_layernorm_forward(float *sum, float *out, float *mean, float *rstd,
                                           const float *a, const float *b, const float *weight,
                                           const float *bias, int N, int C, float eps,
                                           uint16_t *out_bf16) {
    LAB_ASSERT(out || out_bf16);
    #pragma omp parallel for schedule(static) if ((size_t)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *ra = a + (size_t)n * C, *rb = b + (size_t)n * C;
        float *x = sum + (size_t)n * C;
        #pragma omp simd
        for (int c = 0; c < C; c++) x[c] = ra[c] + rb[c];
        float m, s;
        row_moments(x, C, eps, &m, &s);
        layernorm_row_out(out ? out + (size_t)n * C : NULL, out_bf16 ? out_bf16 + (size_t)n * C : NULL,
                          x, m, s, weight, bias, C);
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
            float acc[LANES] = {0}, nacc[LANES] = {0};
            int c = 0;
            for (; c + LANES <= C; c += LANES) {
                #pragma omp simd
                for (int k = 0; k < LANES; k++) {
                    float dn = weight[c + k] * d[c + k];
                    acc[k] += dn;
                    nacc[k] += dn * (x[c + k] - m) * s;
                }
            }
            for (int k = 0; c + k < C; k++) {
                float dn = weight[c + k] * d[c + k];
                acc[k] += dn;
                nacc[k] += dn * (x[c + k] - m) * s;
            }
            float dnorm_mean = lanes_total(acc) / C, dnorm_norm_mean = lanes_total(nacc) / C;
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

// Rows of the causal attention are processed to the next multiple of 16 (at most T): the
// vector loops then have no scalar remainder, which dominated rows of a few dozen keys.
static inline int causal_span(int i, int T) {
    int n = (i + 16) & ~15;
    return n < T ? n : T;
}

// Softmax of row i of the scaled scores `a` (length T) over the keys it may see: j <= i and
// key_mask[j] != 0 (mask NULL: all). Invisible entries become 0; a row with no visible key
// becomes all zeros. h not NULL: the row goes to h alone, rounded to bf16 in the normalizing
// pass, and a is scratch afterwards.
static void softmax_causal_row(float *a, uint16_t *h, int i, const uint8_t *mask, int T) {
    int any = !mask;
    for (int j = 0; j <= i && !any; j++) any = mask[j] != 0;
    if (!any) {
        memset(a, 0, (size_t)T * sizeof(float));
        if (h) memset(h, 0, (size_t)T * sizeof(uint16_t));
        return;
    }
    int n = causal_span(i, T);
    if (mask) {
        for (int j = 0; j <= i; j++) a[j] = mask[j] ? a[j] : -INFINITY;
    }
    for (int j = i + 1; j < n; j++) a[j] = -INFINITY;
    // (NaN scores are skipped by the max but reach the sum, so they propagate)
    float mx = -INFINITY;
    #pragma omp simd reduction(max:mx)
    for (int j = 0; j < n; j++) mx = a[j] > mx ? a[j] : mx;
    float acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= n; j += LANES) {
        #pragma omp simd
        for (int k = 0; k < LANES; k++) {
            float e = a[j + k] == -INFINITY ? 0.0f : fast_expf(a[j + k] - mx);
            a[j + k] = e;
            acc[k] += e;
        }
    }
    for (int k = 0; j + k < n; k++) {
        float e = a[j + k] == -INFINITY ? 0.0f : fast_expf(a[j + k] - mx);
        a[j + k] = e;
        acc[k] += e;
    }
    float inv = 1.0f / lanes_total(acc);
    if (h) {
        #pragma omp simd
        for (int j = 0; j < n; j++) h[j] = bf16_round_float(a[j] * inv);
        if (n < T) memset(h + n, 0, (size_t)(T - n) * sizeof(uint16_t));
        return;
    }
    #pragma omp simd
    for (int j = 0; j < n; j++) a[j] *= inv;
    if (n < T) memset(a + n, 0, (size_t)(T - n) * sizeof(float));
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

// The matrix attention multiplies v by: att itself or, with dropout, its dropped copy in
// scratch (B, NH, T, T). Forward and backward both start here, with the shapes' checks.
static const float *attention_dropped(const float *att, int B, int T, int C, int NH,
                                      float dropout_p, uint64_t seed) {
    LAB_ASSERT(NH > 0 && C % NH == 0);
    LAB_ASSERT(dropout_p >= 0.0f && dropout_p < 1.0f);
    if (dropout_p == 0.0f) return att;
    size_t TT = (size_t)T * T;
    float *drop = cpu_scratch((size_t)B * NH * TT);
    #pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++)
        attention_dropout_apply(drop + (size_t)bh * TT, att + (size_t)bh * TT, T, dropout_p, seed,
                                (uint64_t)bh * TT);
    return drop;
}

// A head's T x hs slice of a (B, T, ld) tensor, columns from h * hs: strides of the batched
// product over (batch, head); trans views it as hs x T.
static void head_view(int64_t *st, int T, int ld, int hs, int trans) {
    st[0] = (int64_t)T * ld;
    st[1] = hs;
    st[2] = trans ? 1 : ld;
    st[3] = trans ? ld : 1;
}

// A (B, NH, T, T) tensor of contiguous T x T matrices; trans views each transposed.
static void square_view(int64_t *st, int T, int NH, int trans) {
    st[0] = (int64_t)NH * T * T;
    st[1] = (int64_t)T * T;
    st[2] = trans ? 1 : T;
    st[3] = trans ? T : 1;
}

static Matmul attention_product(int B, int NH, int M, int N, int K, float alpha) {
    Matmul mm;
    memset(&mm, 0, sizeof mm);
    mm.batch[0] = B;
    mm.batch[1] = NH;
    mm.M = M; mm.N = N; mm.K = K;
    mm.alpha = alpha;
    mm.beta = 0.0f;
    return mm;
}

// The causal products skip the blocks above the diagonal. Queries are taken CAUSAL_BLOCK rows
// at a time, and a block of queries [r0, r1) multiplies only the keys it sees, [0, r1); a block
// of keys [k0, k1) is seen only by the queries [k0, T). Inside a diagonal block the upper
// triangle is still computed and then masked, as one product is faster than many small ones.
// A multiple of 16, so that causal_span never reads past a block's keys. With T = 256 this
// does 10/16 of the full products' work.
enum { CAUSAL_BLOCK = 64 };

// mm (batch strides and views set) once per block of query rows: A's and C's rows from r0
// (a_row, c_row: bytes per row), B from its start; M = r1 - r0, and the key dimension (N when
// keys_in_n, else K) r1.
static void causal_query_blocks(Matmul mm, int keys_in_n, int T, const void *A, size_t a_row,
                                const void *Bm, void *Cm, size_t c_row) {
    for (int r0 = 0; r0 < T; r0 += CAUSAL_BLOCK) {
        int r1 = r0 + CAUSAL_BLOCK < T ? r0 + CAUSAL_BLOCK : T;
        mm.M = r1 - r0;
        if (keys_in_n) mm.N = r1; else mm.K = r1;
        cpu_matmul(&mm, (const char *)A + r0 * a_row, Bm, (char *)Cm + r0 * c_row);
    }
}

// mm once per block of keys [k0, k1), over the queries [k0, T) that see them: A (a transposed
// T x T view) from its diagonal entry (k0, k0) (a_diag: bytes per step along the diagonal),
// B's and C's rows from k0; M = k1 - k0, K = T - k0.
static void causal_key_blocks(Matmul mm, int T, const void *A, size_t a_diag, const void *Bm, size_t b_row,
                              void *Cm, size_t c_row) {
    for (int k0 = 0; k0 < T; k0 += CAUSAL_BLOCK) {
        int k1 = k0 + CAUSAL_BLOCK < T ? k0 + CAUSAL_BLOCK : T;
        mm.M = k1 - k0;
        mm.K = T - k0;
        cpu_matmul(&mm, (const char *)A + k0 * a_diag, (const char *)Bm + k0 * b_row, (char *)Cm + k0 * c_row);
    }
}

// The forward's steps on fp32 or bf16 q, k, v (el 4 or 2 bytes). Every (batch, head) product
// is a batched oneDNN matmul over strided views of qkv, by causal blocks; the softmax between
// them runs under OpenMP over rows. scores = scale q k^T, then each row's softmax, in place
// or, with att16, into att16 alone.
static void attention_scores(int bf16, const void *qkv, float *scores, uint16_t *att16,
                             const uint8_t *key_mask, int B, int T, int C, int NH) {
    LAB_ASSERT(NH > 0 && C % NH == 0);
    int hs = C / NH, C3 = 3 * C;
    size_t el = bf16 ? 2 : 4;
    Matmul mm = attention_product(B, NH, T, T, hs, 1.0f / sqrtf((float)hs));
    mm.bf16 = bf16;
    head_view(mm.sa, T, C3, hs, 0);
    head_view(mm.sb, T, C3, hs, 1);
    square_view(mm.sc, T, NH, 0);
    causal_query_blocks(mm, 1, T, qkv, C3 * el, (const char *)qkv + C * el, scores, T * sizeof(float));
    #pragma omp parallel for schedule(static)
    for (int row = 0; row < B * NH * T; row++)
        softmax_causal_row(scores + (size_t)row * T, att16 ? att16 + (size_t)row * T : NULL, row % T,
                           key_mask ? key_mask + (size_t)(row / (NH * T)) * T : NULL, T);
}

// out = d v, d the (dropped) probabilities (0 above the diagonal).
static void attention_apply(int bf16, const void *d, const void *qkv, float *out, int B, int T, int C,
                            int NH) {
    int hs = C / NH, C3 = 3 * C;
    size_t el = bf16 ? 2 : 4;
    Matmul mm = attention_product(B, NH, T, hs, T, 1.0f);
    mm.bf16 = bf16;
    square_view(mm.sa, T, NH, 0);
    head_view(mm.sb, T, C3, hs, 0);
    head_view(mm.sc, T, C, hs, 0);
    causal_query_blocks(mm, 0, T, d, T * el, (const char *)qkv + 2 * C * el, out, C * sizeof(float));
}

static void cpu_attention_forward(float *out, float *att, const float *qkv, const uint8_t *key_mask,
                                  int B, int T, int C, int NH, float dropout_p, uint64_t seed) {
    attention_scores(0, qkv, att, NULL, key_mask, B, T, C, NH);
    attention_apply(0, attention_dropped(att, B, T, C, NH, dropout_p, seed), qkv, out, B, T, C, NH);
}

// d = dropped(att) from the bf16 probabilities, each kept entry rounded to bf16 again: the
// matrix the bf16 forward multiplies v by and the bf16 backward differentiates (att16 itself
// without dropout; else written to drop16, (B, NH, T, T)).
static const uint16_t *attention_dropped_bf16(uint16_t *drop16, const uint16_t *att16, int B, int T,
                                              int NH, float dropout_p, uint64_t seed) {
    LAB_ASSERT(dropout_p >= 0.0f && dropout_p < 1.0f);
    if (dropout_p == 0.0f) return att16;
    float inv = 1.0f / (1.0f - dropout_p);
    #pragma omp parallel for schedule(static)
    for (size_t row = 0; row < (size_t)B * NH * T; row++) {
        size_t i = row % T, base = row * T;
        for (size_t j = 0; j < (size_t)T; j++)
            drop16[base + j] = j <= i && dropout_keep_u01(seed, base + j) >= dropout_p
                                   ? bf16_round_float(bf16_to_float(att16[base + j]) * inv) : 0;
    }
    return drop16;
}

// The forward on bf16 q, k, v, as autocast runs it: both products take bf16 operands (fp32
// sums), the softmax runs in fp32 on the scores and writes the probabilities in bf16 only.
static void cpu_attention_forward_bf16(float *out, float *scores, uint16_t *att16, const uint16_t *qkv16,
                                       const uint8_t *key_mask, int B, int T, int C, int NH,
                                       float dropout_p, uint64_t seed) {
    attention_scores(1, qkv16, scores, att16, key_mask, B, T, C, NH);
    size_t natt = (size_t)B * NH * T * T;
    uint16_t *drop16 = dropout_p > 0.0f ? (uint16_t *)cpu_scratch((natt + 1) / 2) : NULL;
    attention_apply(1, attention_dropped_bf16(drop16, att16, B, T, NH, dropout_p, seed), qkv16, out, B, T, C,
                    NH);
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

// The attention backward's products, on fp32 or bf16 operands (el: 4 or 2 bytes); d and g are
// (B, NH, T, T), dy (B, T, C), qkv and dqkv (B, T, 3C).
// dv = d^T dy into dqkv's v columns, and g = dy v^T (the gradient w.r.t. d; bf16 with bf16
// operands, the precision the softmax's backward rounds its result to anyway).
static void attention_dv_dd(int bf16, const void *d, const void *dy, const void *qkv, float *dqkv,
                            void *g, int B, int T, int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    size_t el = bf16 ? 2 : 4;
    Matmul mm = attention_product(B, NH, T, hs, T, 1.0f);
    mm.bf16 = bf16;
    square_view(mm.sa, T, NH, 1);
    head_view(mm.sb, T, C, hs, 0);
    head_view(mm.sc, T, C3, hs, 0);
    causal_key_blocks(mm, T, d, (T + 1) * el, dy, C * el, dqkv + 2 * C, C3 * sizeof(float));
    mm = attention_product(B, NH, T, T, hs, 1.0f);
    mm.bf16 = mm.c_bf16 = bf16;
    head_view(mm.sa, T, C, hs, 0);
    head_view(mm.sb, T, C3, hs, 1);
    square_view(mm.sc, T, NH, 0);
    causal_query_blocks(mm, 1, T, dy, C * el, (const char *)qkv + 2 * C * el, g, T * el);
}

// dq = scale * ds k and dk = scale * ds^T q into dqkv, ds being the scores' gradient (0 above
// the diagonal).
static void attention_dq_dk(int bf16, const void *ds, const void *qkv, float *dqkv, int B, int T,
                            int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    size_t el = bf16 ? 2 : 4;
    Matmul mm = attention_product(B, NH, T, hs, T, 1.0f / sqrtf((float)hs));
    mm.bf16 = bf16;
    square_view(mm.sa, T, NH, 0);
    head_view(mm.sb, T, C3, hs, 0);
    head_view(mm.sc, T, C3, hs, 0);
    causal_query_blocks(mm, 0, T, ds, T * el, (const char *)qkv + C * el, dqkv, C3 * sizeof(float));
    square_view(mm.sa, T, NH, 1);
    causal_key_blocks(mm, T, ds, (T + 1) * el, qkv, C3 * el, dqkv + C, C3 * sizeof(float));
}

static void cpu_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                   const float *att, const uint8_t *key_mask,
                                   int B, int T, int C, int NH, float dropout_p, uint64_t seed) {
    (void)key_mask;   // masked entries of att are 0, which zeroes their gradient below
    // d = dropped(att) = att * keep / (1 - p), the matrix the forward multiplied v by
    const float *d = attention_dropped(att, B, T, C, NH, dropout_p, seed);
    attention_dv_dd(0, d, dout, qkv, dqkv, datt, B, T, C, NH);
    // Through the dropout and the softmax: datt_j = datt_d_j keep_j / (1 - p), and
    // dscore_j = a_j (datt_j - sum_k a_k datt_k); since a_j keep_j / (1 - p) = d_j,
    // dscore_j = d_j datt_d_j - a_j sum_k d_k datt_d_k. The scale is folded in below.
    #pragma omp parallel for schedule(static)
    for (int row = 0; row < B * NH * T; row++) {
        int i = row % T;
        const float *ar = att + (size_t)row * T, *dr = d + (size_t)row * T;
        float *g = datt + (size_t)row * T;
        int n = causal_span(i, T);   // d and a are 0 above the diagonal
        float acc[LANES] = {0};
        int j = 0;
        for (; j + LANES <= n; j += LANES) {
            #pragma omp simd
            for (int k = 0; k < LANES; k++) acc[k] += dr[j + k] * g[j + k];
        }
        for (int k = 0; j + k < n; k++) acc[k] += dr[j + k] * g[j + k];
        float s = lanes_total(acc);
        #pragma omp simd
        for (int j = 0; j < n; j++) g[j] = dr[j] * g[j] - ar[j] * s;
        if (i + 1 < T) memset(g + i + 1, 0, (size_t)(T - 1 - i) * sizeof(float));
    }
    attention_dq_dk(0, datt, qkv, dqkv, B, T, C, NH);
}

// The backward from the bf16 copies: every product takes bf16 operands (dy and the score
// gradient are rounded to bf16 on the way, g = dy v^T comes out in bf16), as PyTorch's
// autocast runs them; the softmax's backward reads the bf16 probabilities and sums in fp32.
// Its steps are the fp32 backward's.
static void cpu_attention_backward_bf16(float *dqkv, float *datt, const float *dout,
                                        const uint16_t *qkv16, const uint16_t *att16,
                                        const uint8_t *key_mask, int B, int T, int C, int NH,
                                        float dropout_p, uint64_t seed) {
    (void)key_mask;   // masked entries of att are 0, which zeroes their gradient below
    (void)datt;       // the score gradient stays in bf16 scratch here
    LAB_ASSERT(NH > 0 && C % NH == 0);
    LAB_ASSERT(dropout_p >= 0.0f && dropout_p < 1.0f);
    size_t TT = (size_t)T * T, natt = (size_t)B * NH * TT, nout = (size_t)B * T * C;
    size_t nout_pad = (nout + 31) & ~(size_t)31, natt_pad = (natt + 31) & ~(size_t)31;
    // scratch: dy and the score gradient in bf16 and, with dropout, the dropped probabilities
    uint16_t *dout16 = (uint16_t *)cpu_scratch((nout_pad + 2 * natt_pad) / 2);
    uint16_t *ds16 = dout16 + nout_pad, *drop16 = ds16 + natt_pad;
    cpu_to_bf16(dout16, dout, B * T, C, C, NULL);
    const uint16_t *d16 = attention_dropped_bf16(drop16, att16, B, T, NH, dropout_p, seed);
    attention_dv_dd(1, d16, dout16, qkv16, dqkv, ds16, B, T, C, NH);   // g into ds16, in bf16
    // dscore_j = d_j g_j - a_j sum_k d_k g_k (see cpu_attention_backward), over g in place
    #pragma omp parallel for schedule(static)
    for (int row = 0; row < B * NH * T; row++) {
        int i = row % T;
        const uint16_t *ar = att16 + (size_t)row * T, *dr = d16 + (size_t)row * T;
        uint16_t *h = ds16 + (size_t)row * T;
        int n = causal_span(i, T);   // d and a are 0 above the diagonal
        float acc[LANES] = {0};
        int j = 0;
        for (; j + LANES <= n; j += LANES) {
            #pragma omp simd
            for (int k = 0; k < LANES; k++) acc[k] += bf16_to_float(dr[j + k]) * bf16_to_float(h[j + k]);
        }
        for (int k = 0; j + k < n; k++) acc[k] += bf16_to_float(dr[j + k]) * bf16_to_float(h[j + k]);
        float s = lanes_total(acc);
        #pragma omp simd
        for (int j = 0; j < n; j++)
            h[j] = bf16_round_float(bf16_to_float(dr[j]) * bf16_to_float(h[j]) - bf16_to_float(ar[j]) * s);
        if (i + 1 < T) memset(h + i + 1, 0, (size_t)(T - 1 - i) * sizeof(uint16_t));
    }
    attention_dq_dk(1, ds16, qkv16, dqkv, B, T, C, NH);
}

// ----------------------------------------------------------------------------
// GELU (tanh approximation) and dropout

#define GELU_S 0.7978845608028654f   // sqrt(2 / pi)

// 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): one exponential and
// one division, and no cancellation for either sign of u. GELU(x) = x sg and GELU'(x) below
// share sg = sigmoid(2u), so a pass that needs both pays for one exponential.
static inline float gelu_sigmoid(float x) {
    float u = GELU_S * (x + 0.044715f * x * x * x);
    return 1.0f / (1.0f + fast_expf(-2.0f * u));
}

// GELU'(x) from sg = gelu_sigmoid(x), with sigmoid(2u) = (1 + tanh u) / 2.
static inline float gelu_grad_at(float x, float sg) {
    float du = GELU_S * (1.0f + 3.0f * 0.044715f * x * x);
    return sg + 2.0f * x * sg * (1.0f - sg) * du;
}

static inline float gelu(float x) { return x * gelu_sigmoid(x); }

static void cpu_gelu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        out[i] = gelu(inp[i]);
    }
}

// One pass instead of bias_add's, gelu_forward's and to_bf16's. A bf16 model keeps GELU'(x)
// rather than x: it comes from the forward's own exponential, and the backward only multiplies.
static void cpu_bias_gelu_forward(float *out, float *inp, const float *bias, int N, int OC,
                                  uint16_t *out_bf16, uint16_t *dgelu_bf16) {
    LAB_ASSERT(dgelu_bf16 || (out && !out_bf16));
    #pragma omp parallel for schedule(static) if ((size_t)N * OC > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *x = inp + (size_t)n * OC, *o = out ? out + (size_t)n * OC : NULL;
        if (dgelu_bf16) {   // inp is scratch afterwards: the sums stay in registers
            uint16_t *h = out_bf16 ? out_bf16 + (size_t)n * OC : NULL, *g = dgelu_bf16 + (size_t)n * OC;
            #pragma omp simd
            for (int c = 0; c < OC; c++) {
                float v = bias ? x[c] + bias[c] : x[c], sg = gelu_sigmoid(v), y = v * sg;
                g[c] = bf16_round_float(gelu_grad_at(v, sg));
                if (h) h[c] = bf16_round_float(y);
                if (o) o[c] = y;
            }
            continue;
        }
        if (bias) {
            #pragma omp simd
            for (int c = 0; c < OC; c++) x[c] += bias[c];
        }
        #pragma omp simd
        for (int c = 0; c < OC; c++) o[c] = gelu(x[c]);
    }
}

static void cpu_gelu_backward(float *dinp, const float *inp, const uint16_t *dgelu_bf16,
                              const float *dout, size_t n) {
    if (inp) {
        #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * gelu_grad_at(inp[i], gelu_sigmoid(inp[i]));
        return;
    }
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * bf16_to_float(dgelu_bf16[i]);
}

// The gradient straight into the bf16 operand of the next product, and the bias gradient.
static void cpu_gelu_backward_bf16(uint16_t *dinp_bf16, float *dbias, const uint16_t *dgelu_bf16,
                                   const float *dout, int N, int OC) {
    if (dbias) { column_sums(dbias, dout, N, OC, OC, dinp_bf16, dgelu_bf16); return; }
    size_t n = (size_t)N * OC;
    #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp_bf16[i] = bf16_round_float(dout[i] * bf16_to_float(dgelu_bf16[i]));
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
// -sum_v q_v log p_v for q = (1 - eps) onehot + eps / V. Reads the logits; writes nothing of
// size V.
static void cpu_crossentropy_forward(float *losses, float *lse, const float *logits, int ldl,
                                     const int *targets, int N, int V, float label_smoothing) {
    LAB_ASSERT(ldl >= V);
    float eps = label_smoothing;
    #pragma omp parallel for schedule(static) if ((size_t)N * V > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * ldl;
        float mx = -INFINITY;
        #pragma omp simd reduction(max:mx)
        for (int v = 0; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        float sum = 0.0f, lsum = 0.0f;
        #pragma omp simd reduction(+:sum, lsum)
        for (int v = 0; v < V; v++) {
            sum += fast_expf(l[v] - mx);
            lsum += l[v];
        }
        double row_lse = (double)mx + log((double)sum);
        lse[n] = (float)row_lse;
        int t = targets[n];
        if (t < 0) {
            losses[n] = 0.0f;
            continue;
        }
        LAB_ASSERT(t < V);
        losses[n] = (float)(row_lse - (1.0 - eps) * l[t] - (double)eps / V * lsum);
    }
}

static void cpu_crossentropy_backward(float *logits, int ldl, const float *lse,
                                      const int *targets, int N, int V, float label_smoothing,
                                      float dloss) {
    LAB_ASSERT(ldl >= V);
    float u = label_smoothing / V;
    #pragma omp parallel for schedule(static) if ((size_t)N * V > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *d = logits + (size_t)n * ldl;
        int t = targets[n];
        if (t < 0) {
            memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        LAB_ASSERT(t < V);
        float s = lse[n];
        #pragma omp simd
        for (int v = 0; v < V; v++) d[v] = dloss * (fast_expf(d[v] - s) - u);
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
    .from_bf16 = cpu_from_bf16,
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
    .attention_forward_bf16 = cpu_attention_forward_bf16,
    .attention_backward_bf16 = cpu_attention_backward_bf16,
    .attention_decode = cpu_attention_decode,
    .gelu_forward = cpu_gelu_forward,
    .bias_gelu_forward = cpu_bias_gelu_forward,
    .residual_layernorm_forward = cpu_residual_layernorm_forward,
    .gelu_backward = cpu_gelu_backward,
    .gelu_backward_bf16 = cpu_gelu_backward_bf16,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .crossentropy_forward = cpu_crossentropy_forward,
    .crossentropy_backward = cpu_crossentropy_backward,
    .gather_rows = cpu_gather_rows,
    .scatter_add_rows = cpu_scatter_add_rows,
    .adamw_update = cpu_adamw_update,
    .svd = cpu_svd,
    .set_threads = cpu_set_threads,
    .threads = cpu_get_threads,
    .kernels = cpu_matmul_isa,
    .gemm_counters = cpu_matmul_counters,
};

const Backend *backend_cpu(void) { return &cpu_backend; }
