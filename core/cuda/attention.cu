// core/cuda/attention.cu — causal multi-head attention (see attention.cuh).
//
// A straightforward kernel set, not a fused FlashAttention kernel: per batch row b, one
// strided-batched cuBLAS gemm over the NH heads for each product (q, k and v are read in
// place from qkv with row stride 3C), and warp-per-row kernels for the masked softmax and
// its backward. Like the CPU backend, the products cover the whole T x T square (the upper
// triangle is computed and then zeroed).
//
// Attention dropout: the dropped matrix D = att * keep / (1 - p) is written for one batch
// row at a time into a scratch buffer of NH * T * T floats (SCRATCH_ATTN_DROP); element
// (b, h, i, j) draws dropout_keep_u01(seed, ((b*NH + h)*T + i)*T + j), as on the CPU.
#include <assert.h>

#include "core/cuda/attention.cuh"
#include "core/cuda/common.cuh"

// ----------------------------------------------------------------------------
// kernels

// Rows r = (b*NH + h)*T + i of att (rows of length T), one warp each: softmax over the keys
// j <= i with key_mask[b, j] != 0 of the scaled scores already in att; zeros elsewhere, and a
// row of zeros when no key is visible.
__global__ void attention_softmax_kernel(float *att, const uint8_t *key_mask, int B, int NH, int T) {
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= (size_t)B * NH * T) return;
    int i = (int)(row % T), b = (int)(row / ((size_t)NH * T));
    float *a = att + row * T;
    const uint8_t *mask = key_mask ? key_mask + (size_t)b * T : NULL;
    float mx = -INFINITY;
    int any = 0;
    for (int j = lane; j <= i; j += 32)
        if (!mask || mask[j]) { any = 1; mx = fmaxf(mx, a[j]); }
    any = __any_sync(0xffffffffu, any);
    if (!any) {
        for (int j = lane; j < T; j += 32) a[j] = 0.0f;
        return;
    }
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j <= i; j += 32) {
        float e = (!mask || mask[j]) ? expf(a[j] - mx) : 0.0f;
        a[j] = e;
        sum += e;
    }
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < T; j += 32) a[j] = j <= i ? a[j] * inv : 0.0f;
}

// dst (NH, T, T) = att rows of batch row b with dropout applied; base = b * NH * T * T.
__global__ void attention_dropout_kernel(float *dst, const float *att, int T, size_t n, float p,
                                         float inv, uint64_t seed, uint64_t base) {
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(k % T), i = (int)((k / T) % T);
        dst[k] = j > i ? 0.0f : dropout_keep_u01(seed, base + k) < p ? 0.0f : att[k] * inv;
    }
}

// Through the dropout and the softmax, one warp per row of batch row b (rows of (NH, T, T)):
// g holds the gradient w.r.t. D = dropped(att); with d = D's row and a = att's row,
// dscore_j = d_j g_j - a_j sum_k d_k g_k for j <= i, 0 above the diagonal.
// (d_j = a_j keep_j / (1 - p), computed here from a and the hash; d = a when p = 0.)
__global__ void attention_softmax_backward_kernel(float *g, const float *att, int NH, int T,
                                                  float p, float inv, uint64_t seed,
                                                  uint64_t base) {
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= (size_t)NH * T) return;
    int i = (int)(row % T);
    const float *a = att + row * T;
    float *gr = g + row * T;
    uint64_t off = base + (uint64_t)row * T;
    float s = 0.0f;
    for (int j = lane; j <= i; j += 32) {
        float d = p > 0.0f ? (dropout_keep_u01(seed, off + j) < p ? 0.0f : a[j] * inv) : a[j];
        s += d * gr[j];
    }
    s = warp_sum(s);
    for (int j = lane; j < T; j += 32) {
        if (j > i) { gr[j] = 0.0f; continue; }
        float d = p > 0.0f ? (dropout_keep_u01(seed, off + j) < p ? 0.0f : a[j] * inv) : a[j];
        gr[j] = d * gr[j] - a[j] * s;
    }
}

// ----------------------------------------------------------------------------
// launchers

static unsigned warp_rows_grid(size_t rows) {
    return (unsigned)((rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK);
}

// D for batch row b: att itself without dropout, else the dropped copy in scratch.
static const float *dropped_att(const float *att_b, int b, int NH, int T, float p, uint64_t seed) {
    if (p == 0.0f) return att_b;
    size_t n = (size_t)NH * T * T;
    float *d = (float *)cuda_scratch(SCRATCH_ATTN_DROP, n * sizeof(float));
    attention_dropout_kernel<<<grid_for(n), BLOCK>>>(d, att_b, T, n, p, 1.0f / (1.0f - p), seed,
                                                     (uint64_t)b * n);
    KERNEL_CHECK();
    return d;
}

// Decoding: row b's new k, v go to cache position positions[b] (one thread per element).
// A position outside the cache is a caller's bug, as on the CPU (LAB_ASSERT): a device-side
// assert, which the next synchronizing call reports as fatal, and no write out of bounds.
__global__ void attention_cache_append_kernel(float *kcache, float *vcache, const float *qkv,
                                              const int *positions, int B, int Tmax, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * C) return;
    int b = (int)(i / C), c = (int)(i % C);
    if (positions[b] < 0 || positions[b] >= Tmax) {
        assert(positions[b] >= 0 && positions[b] < Tmax);
        return;
    }
    size_t at = ((size_t)b * Tmax + positions[b]) * C + c;
    kcache[at] = qkv[(size_t)b * 3 * C + C + c];
    vcache[at] = qkv[(size_t)b * 3 * C + 2 * C + c];
}

// Decoding: one block per (row, head); scores of the new query against cache positions
// 0..positions[b] in shared memory (Tmax floats), softmax, then the weighted sum of values.
__global__ void attention_decode_kernel(float *out, const float *qkv, const float *kcache,
                                        const float *vcache, const int *positions, int Tmax,
                                        int C, int NH) {
    extern __shared__ float scores[];
    __shared__ float red[32];
    int b = blockIdx.x / NH, h = blockIdx.x % NH, hs = C / NH, n = positions[b] + 1;
    if (n < 1 || n > Tmax) {   // scores[] holds Tmax floats (see the append kernel)
        assert(positions[b] >= 0 && positions[b] < Tmax);
        return;
    }
    const float *q = qkv + (size_t)b * 3 * C + h * hs;
    const float *kb = kcache + (size_t)b * Tmax * C + h * hs, *vb = vcache + (size_t)b * Tmax * C + h * hs;
    float scale = rsqrtf((float)hs), mx = -INFINITY;
    for (int t = threadIdx.x; t < n; t += blockDim.x) {
        float s = 0.0f;
        for (int i = 0; i < hs; i++) s += q[i] * kb[(size_t)t * C + i];
        scores[t] = s * scale;
        mx = fmaxf(mx, scores[t]);
    }
    // block max, then block sum of exponentials (warp shuffles, one slot per warp)
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int t = threadIdx.x; t < n; t += blockDim.x) { scores[t] = expf(scores[t] - mx); sum += scores[t]; }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++) sum += red[w];
    for (int i = threadIdx.x; i < hs; i += blockDim.x) {
        float acc = 0.0f;
        for (int t = 0; t < n; t++) acc += scores[t] * vb[(size_t)t * C + i];
        out[(size_t)b * C + h * hs + i] = acc / sum;
    }
}

void cuda_attention_decode(float *out, const float *qkv, float *kcache, float *vcache,
                           const int *positions, int B, int Tmax, int C, int NH) {
    CUDA_ASSERT(NH > 0 && C % NH == 0 && B >= 0 && Tmax > 0);
    if (!B) return;
    attention_cache_append_kernel<<<grid_for((size_t)B * C), BLOCK>>>(kcache, vcache, qkv, positions, B, Tmax, C);
    KERNEL_CHECK();
    attention_decode_kernel<<<B * NH, 128, (size_t)Tmax * sizeof(float)>>>(out, qkv, kcache, vcache, positions,
                                                                          Tmax, C, NH);
    KERNEL_CHECK();
}

void cuda_attention_forward(float *out, float *att, const float *qkv, const uint8_t *key_mask,
                            int B, int T, int C, int NH, float dropout_p, uint64_t seed) {
    CUDA_ASSERT(NH > 0 && C % NH == 0 && B >= 0 && T >= 0);
    CUDA_ASSERT(dropout_p >= 0.0f && dropout_p < 1.0f);
    if (!B || !T) return;
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    long long TT = (long long)T * T;
    // scores = scale * q k^T for every (b, h)
    for (int b = 0; b < B; b++) {
        const float *q = qkv + (size_t)b * T * C3, *k = q + C;
        cuda_gemm_strided(0, 1, T, T, hs, scale, q, C3, hs, k, C3, hs, 0.0f,
                          att + (size_t)b * NH * TT, T, TT, NH);
    }
    attention_softmax_kernel<<<warp_rows_grid((size_t)B * NH * T), BLOCK>>>(att, key_mask, B, NH, T);
    KERNEL_CHECK();
    // out = D v
    for (int b = 0; b < B; b++) {
        const float *v = qkv + (size_t)b * T * C3 + 2 * C;
        const float *d = dropped_att(att + (size_t)b * NH * TT, b, NH, T, dropout_p, seed);
        cuda_gemm_strided(0, 0, T, hs, T, 1.0f, d, T, TT, v, C3, hs, 0.0f,
                          out + (size_t)b * T * C, C, hs, NH);
    }
}

void cuda_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                             const float *att, const uint8_t *key_mask, int B, int T, int C,
                             int NH, float dropout_p, uint64_t seed) {
    (void)key_mask;   // masked entries of att are 0, which zeroes their gradient
    CUDA_ASSERT(NH > 0 && C % NH == 0 && B >= 0 && T >= 0);
    CUDA_ASSERT(dropout_p >= 0.0f && dropout_p < 1.0f);
    if (!B || !T) return;
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    float inv = dropout_p > 0.0f ? 1.0f / (1.0f - dropout_p) : 1.0f;
    long long TT = (long long)T * T;
    for (int b = 0; b < B; b++) {
        const float *q = qkv + (size_t)b * T * C3, *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + (size_t)b * T * C3, *dk = dq + C, *dv = dq + 2 * C;
        const float *a = att + (size_t)b * NH * TT;
        const float *dy = dout + (size_t)b * T * C;
        float *g = datt + (size_t)b * NH * TT;
        const float *d = dropped_att(a, b, NH, T, dropout_p, seed);
        // dv = D^T dy; g = dy v^T (the gradient w.r.t. D)
        cuda_gemm_strided(1, 0, T, hs, T, 1.0f, d, T, TT, dy, C, hs, 0.0f, dv, C3, hs, NH);
        cuda_gemm_strided(0, 1, T, T, hs, 1.0f, dy, C, hs, v, C3, hs, 0.0f, g, T, TT, NH);
        attention_softmax_backward_kernel<<<warp_rows_grid((size_t)NH * T), BLOCK>>>(
            g, a, NH, T, dropout_p, inv, seed, (uint64_t)b * NH * TT);
        KERNEL_CHECK();
        // dq = scale * dscores k; dk = scale * dscores^T q
        cuda_gemm_strided(0, 0, T, hs, T, scale, g, T, TT, k, C3, hs, 0.0f, dq, C3, hs, NH);
        cuda_gemm_strided(1, 0, T, hs, T, scale, g, T, TT, q, C3, hs, 0.0f, dk, C3, hs, NH);
    }
}
