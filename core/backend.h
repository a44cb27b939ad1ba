// core/backend.h — the one interface the model code is written against.
//
// A backend is a table of functions over device memory (plain host memory for the CPU
// backend). The model never asks which backend it runs on. Conventions:
// - Row-major, float32, sizes as int (dimensions) and size_t (products of dimensions).
// - Ops come in forward/backward pairs: outputs first, then caches, inputs, weights, sizes.
// - Accumulation rule: parameter gradients are accumulated (+=), activation gradients are
//   written (=), except where a comment says "+=" (inputs that feed the residual stream).
// - A NULL parameter-gradient pointer means "frozen: do not compute it".
// - Dropout is stateless: element i of a dropout with seed s is dropped iff
//   dropout_keep_u01(s, i) < p, so backward recomputes the mask instead of storing it.
#ifndef LORALAB_BACKEND_H
#define LORALAB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct Backend {
    const char *name;   // "cpu", "cuda"

    // ---- memory ----
    void *(*alloc)(size_t bytes);                              // zero-filled
    void (*free)(void *ptr);
    void (*to_device)(void *dst, const void *host_src, size_t bytes);
    void (*to_host)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);     // device to device
    void (*zero)(void *dst, size_t bytes);
    void (*synchronize)(void);

    // ---- dense algebra ----
    // C = alpha * op(A) @ op(B) + beta * C, op(X) = X (trans=0) or X^T (trans=1);
    // op(A) is M x K, op(B) is K x N, C is M x N; lda/ldb/ldc are row strides.
    void (*gemm)(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc);
    // bf16 mixed precision: the same product with bf16 operands and fp32 accumulation and C.
    void (*gemm_bf16)(int trans_a, int trans_b, int M, int N, int K, float alpha,
                      const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta,
                      float *C, int ldc);
    // dst (rows x cols, contiguous) = src rounded to bf16 (nearest even; NaN stays NaN);
    // rows of src are ld apart. With colsum not NULL, also colsum += the column sums of src,
    // as bias_backward(colsum, src, rows, cols, ld) would (a bf16 linear's output gradient
    // is rounded and summed into its bias gradient in one pass).
    void (*to_bf16)(uint16_t *dst, const float *src, int rows, int cols, int ld, float *colsum);
    // dst[i] = src[i] widened to fp32 (exact), i < n.
    void (*from_bf16)(float *dst, const uint16_t *src, size_t n);
    // out[n, :] += bias for n < N; rows of out are ldo apart (ldo >= OC). out_bf16 (or NULL):
    // also the sums rounded to bf16 (N x OC, contiguous, as to_bf16), in the same pass.
    void (*bias_add)(float *out, const float *bias, int N, int OC, int ldo, uint16_t *out_bf16);
    // dbias += sum over rows of dout (N rows of OC, ldd apart).
    void (*bias_backward)(float *dbias, const float *dout, int N, int OC, int ldd);
    // y += alpha * x
    void (*axpy)(float *y, const float *x, float alpha, size_t n);
    // x *= alpha
    void (*scale)(float *x, float alpha, size_t n);
    // out = a + b (out may alias a or b)
    void (*add)(float *out, const float *a, const float *b, size_t n);
    // returns sum of x[i]^2 in double precision (gradient norms)
    double (*sumsq)(const float *x, size_t n);

    // ---- GPT-2 ops ----
    // out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]
    void (*encoder_forward)(float *out, const int *tokens, const float *wte, const float *wpe,
                            int B, int T, int C);
    // dwte[tokens[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:] (either may be NULL)
    void (*encoder_backward)(float *dwte, float *dwpe, const float *dout, const int *tokens,
                             int B, int T, int C);
    // out = (inp - mean) * rstd * weight + bias over the last dim C; mean, rstd: (N).
    // out_bf16 (or NULL): out rounded to bf16 (as to_bf16), written in the same pass, the
    // operand a bf16 linear multiplies; out may then be NULL.
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps,
                              uint16_t *out_bf16);
    // dinp += ...; dweight += ...; dbias += ... (dweight/dbias may be NULL)
    void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C);
    // Causal multi-head attention. qkv: (B, T, 3C) holding q | k | v; out: (B, T, C);
    // att: (B, NH, T, T) post-softmax probabilities (before attention dropout).
    // key_mask: (B, T), 1 = real token, 0 = padding, or NULL for "all real". A query never
    // attends to a padding key; a query whose every visible key is padding outputs zeros.
    // Attention dropout with probability p and seed (p = 0: none) is applied to att when
    // multiplying by v; att itself is stored undropped.
    void (*attention_forward)(float *out, float *att, const float *qkv, const uint8_t *key_mask,
                              int B, int T, int C, int NH, float dropout_p, uint64_t seed);
    // The same from q, k, v in bf16 (qkv_bf16: (B, T, 3C)), as PyTorch's autocast runs it: its
    // products take bf16 operands (fp32 sums), the softmax runs in fp32 on the scores (scores:
    // (B, NH, T, T) scratch) and writes att_bf16, the probabilities rounded to bf16 (as to_bf16),
    // which a bf16 model keeps for the backward; with dropout, v is multiplied by the kept
    // entries of att_bf16 scaled by 1 / (1 - p), each rounded to bf16 again.
    void (*attention_forward_bf16)(float *out, float *scores, uint16_t *att_bf16, const uint16_t *qkv_bf16,
                                   const uint8_t *key_mask, int B, int T, int C, int NH,
                                   float dropout_p, uint64_t seed);
    // dqkv = ...; datt: scratch of (B, NH, T, T).
    void (*attention_backward)(float *dqkv, float *datt, const float *dout, const float *qkv,
                               const float *att, const uint8_t *key_mask,
                               int B, int T, int C, int NH, float dropout_p, uint64_t seed);
    // The same from the bf16 copies a bf16 model keeps of qkv and att; its products may take
    // bf16 operands and give bf16 results (dout, the gradient w.r.t. att and the score gradient
    // rounded to bf16), as under PyTorch's autocast; datt is scratch the backend may not use.
    void (*attention_backward_bf16)(float *dqkv, float *datt, const float *dout,
                                    const uint16_t *qkv_bf16, const uint16_t *att_bf16,
                                    const uint8_t *key_mask, int B, int T, int C, int NH,
                                    float dropout_p, uint64_t seed);
    // Decoding with a key/value cache: one new token per row. qkv: (B, 3C) of the new tokens;
    // kcache, vcache: (B, Tmax, C). Writes each row's new k, v at position positions[b], then
    // attends its q to cache positions 0..positions[b] (causal by construction). out: (B, C).
    void (*attention_decode)(float *out, const float *qkv, float *kcache, float *vcache,
                             const int *positions, int B, int Tmax, int C, int NH);
    // GELU, tanh approximation (GPT-2's "gelu_new").
    void (*gelu_forward)(float *out, const float *inp, size_t n);
    // Fused bias + GELU over N rows of OC (contiguous): x = inp[n, :] + bias (NULL: none), then
    // out = GELU(x). With dgelu_bf16 NULL, inp keeps x for gelu_backward (and out_bf16 must be
    // NULL). Else, for a bf16 model: dgelu_bf16 = GELU'(x) rounded to bf16, what it keeps for
    // the backward; out_bf16 (or NULL) = GELU(x) rounded (as to_bf16), the next linear's
    // operand; out and out_bf16 may be NULL; inp is scratch afterwards.
    void (*bias_gelu_forward)(float *out, float *inp, const float *bias, int N, int OC,
                              uint16_t *out_bf16, uint16_t *dgelu_bf16);
    // Fused residual + LayerNorm: sum = a + b (sum may alias a or b), then
    // layernorm_forward(out, mean, rstd, sum, weight, bias, N, C, eps, out_bf16).
    void (*residual_layernorm_forward)(float *sum, float *out, float *mean, float *rstd,
                                       const float *a, const float *b, const float *weight,
                                       const float *bias, int N, int C, float eps,
                                       uint16_t *out_bf16);
    // dinp = dout * GELU'(inp) (dinp may alias dout); with inp NULL, GELU'(inp) is dgelu_bf16
    // widened (as bias_gelu_forward kept it).
    void (*gelu_backward)(float *dinp, const float *inp, const uint16_t *dgelu_bf16,
                          const float *dout, size_t n);
    // The same from dgelu_bf16 over N rows of OC, straight into the next product's bf16 operand:
    // dinp_bf16 = dout * GELU' rounded to bf16, and dbias (or NULL) += its column sums (fp32).
    void (*gelu_backward_bf16)(uint16_t *dinp_bf16, float *dbias, const uint16_t *dgelu_bf16,
                               const float *dout, int N, int OC);
    // out = inp * keep / (1 - p) (out may alias inp); p = 0 copies.
    void (*dropout_forward)(float *out, const float *inp, size_t n, float p, uint64_t seed);
    void (*dropout_backward)(float *dinp, const float *dout, size_t n, float p, uint64_t seed);
    // Softmax + cross-entropy over rows of V logits (row stride ldl >= V), straight from the
    // logits: no (N, V) probability matrix is stored.
    // targets[n] < 0: row ignored (loss 0, gradient 0). Label smoothing eps: the target
    // distribution is (1 - eps) one-hot + eps / V uniform. losses: (N) per-row loss.
    // lse: (N) per-row logsumexp, kept for the backward pass.
    void (*crossentropy_forward)(float *losses, float *lse, const float *logits, int ldl,
                                 const int *targets, int N, int V, float label_smoothing);
    // In place: logits become dloss * (softmax(logits) - target distribution) for rows not
    // ignored, 0 otherwise (softmax = exp(logits - lse)); columns from V to ldl are untouched.
    // dloss is the gradient of the final loss w.r.t. each row's loss (e.g. 1 / count).
    void (*crossentropy_backward)(float *logits, int ldl, const float *lse,
                                  const int *targets, int N, int V, float label_smoothing,
                                  float dloss);
    // out[i, :] = inp[rows[i], :] for i < n (row length C)
    void (*gather_rows)(float *out, const float *inp, const int *rows, int n, int C);
    // dinp[rows[i], :] += dout[i, :]
    void (*scatter_add_rows)(float *dinp, const float *dout, const int *rows, int n, int C);

    // ---- optimizer ----
    // AdamW with decoupled weight decay and bias correction; step t starts at 1.
    void (*adamw_update)(float *param, const float *grad, float *m, float *v, size_t n,
                         float lr, float beta1, float beta2, float eps, float weight_decay,
                         int t);

    // ---- analysis ----
    // Thin SVD of the row-major M x N matrix A: A = U diag(S) Vt with K = min(M, N),
    // U (M, K), S (K) descending, Vt (K, N). Returns 0, or -1 if the solver failed.
    int (*svd)(const float *A, int M, int N, float *U, float *S, float *Vt);

    // ---- description and counters ----
    // Host threads for the backend's work (the CPU backend: its OpenMP team; <= 0: all cores).
    void (*set_threads)(int threads);
    int (*threads)(void);
    // What runs the products, e.g. "oneDNN 2.6.3, AVX512-BF16 (avx512_core_bf16)".
    const char *(*kernels)(void);
    // Since the process started: GEMM flops (2 M N K per product) and seconds inside GEMMs
    // (0 where the backend does not count).
    void (*gemm_counters)(double *flops, double *seconds);
} Backend;

// Helpers below compile for the host and, under nvcc, for CUDA kernels too: one definition.
#ifdef __CUDACC__
#define LAB_HOST_DEVICE __host__ __device__
#else
#define LAB_HOST_DEVICE
#endif

// Dropout's stateless uniform draw in [0, 1) for element i of the stream seeded by seed
// (splitmix64 of seed and i). The same on every backend.
LAB_HOST_DEVICE static inline float dropout_keep_u01(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z = z ^ (z >> 31);
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

// bfloat16: the top 16 bits of a float. Rounds to nearest even; NaN stays a (quiet) NaN.
// The rounding of CUDA's __float2bfloat16_rn: every backend stores the same bits (NaN aside).
static inline uint16_t bf16_from_float(float f) {
    union { float f; uint32_t u; } x = {f};
    if ((x.u & 0x7F800000u) == 0x7F800000u && (x.u & 0x007FFFFFu)) return (uint16_t)((x.u >> 16) | 0x0040u);
    return (uint16_t)((x.u + 0x7FFFu + ((x.u >> 16) & 1u)) >> 16);
}
static inline float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } x = {(uint32_t)h << 16};
    return x.f;
}

// ---- the registry ----
// The one way above core/ to get a backend. device: "cpu", "cuda" or "cuda:N". opt may be
// NULL (defaults). Returns NULL with err_set() (the message names the device) when the device
// is malformed or cannot be used. Every table it returns has all members above set.
typedef struct {
    int threads;   // host threads (the CPU backend's OpenMP team): > 0 that many, < 0 all
                   // cores, 0 leaves the count as it is (at start: all cores)
} BackendOptions;
const Backend *backend_open(const char *device, const BackendOptions *opt);
// How many devices of a kind ("cpu": 1, "cuda": the GPUs this process can see; 0 without a
// CUDA build or an unknown kind), without opening any.
int backend_device_count(const char *kind);
// One line about device "cuda:N" (its name and memory) into buf; 0, or -1 if there is none.
int backend_describe(const char *device, char *buf, size_t cap);

#endif
