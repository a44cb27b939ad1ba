// core/cuda/elementwise.cu — element-wise and per-column ops (see elementwise.cuh).
//
// Grid-stride loops over size_t indices; one thread per element. bias_backward sums columns
// in 32-column tiles; sumsq reduces in double per block and adds the block partials on the
// host in a fixed order, so it is deterministic.
#include <math.h>

#include <cuda_bf16.h>

#include "core/cuda/common.cuh"
#include "core/cuda/elementwise.cuh"

#define GELU_S 0.7978845608028654f   // sqrt(2 / pi)

// ----------------------------------------------------------------------------
// kernels

__global__ void bias_add_kernel(float *out, const float *bias, int N, int OC, int ldo) {
    size_t n = (size_t)N * OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / OC;
        int c = (int)(i % OC);
        out[r * ldo + c] += bias[c];
    }
}

// Block (32, 16): 32 columns, 16 row lanes; blockIdx.y takes every gridDim.y-th chunk of rows.
// With one row chunk the block adds its column sums directly; with several, atomically.
enum { BB_COLS = 32, BB_ROWS = 16 };
__global__ void bias_backward_kernel(float *dbias, const float *dout, int N, int OC, int ldd) {
    __shared__ float sh[BB_ROWS][BB_COLS + 1];
    int c = blockIdx.x * BB_COLS + threadIdx.x;
    float s = 0.0f;
    if (c < OC)
        for (int r = blockIdx.y * BB_ROWS + threadIdx.y; r < N; r += gridDim.y * BB_ROWS)
            s += dout[(size_t)r * ldd + c];
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < OC) {
        float t = 0.0f;
        for (int k = 0; k < BB_ROWS; k++) t += sh[k][threadIdx.x];
        if (gridDim.y == 1) dbias[c] += t;
        else atomicAdd(&dbias[c], t);
    }
}

__global__ void axpy_kernel(float *y, const float *x, float alpha, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += alpha * x[i];
}

__global__ void scale_kernel(float *x, float alpha, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= alpha;
}

__global__ void add_kernel(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

// partial[blockIdx.x] = sum of x[i]^2 over the block's grid-stride share, in double.
__global__ void sumsq_kernel(double *partial, const float *x, size_t n) {
    __shared__ double sh[32];
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = warp_sum_d(s);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sh[warp] = s;
    __syncthreads();
    if (warp == 0) {
        s = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0;
        s = warp_sum_d(s);
        if (lane == 0) partial[blockIdx.x] = s;
    }
}

// GELU's tanh t = tanh(sqrt(2/pi) (x + 0.044715 x^3)), from which both GELU and GELU' follow.
__device__ inline float gelu_tanh(float x) { return tanhf(GELU_S * (x + 0.044715f * x * x * x)); }
__device__ inline float gelu_grad_at(float x, float t) {
    float du = GELU_S * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

__global__ void gelu_forward_kernel(float *out, const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + gelu_tanh(x));
    }
}

// GELU'(inp), or dgelu_bf16 widened where inp is NULL
__global__ void gelu_backward_kernel(float *dinp, const float *inp, const __nv_bfloat16 *dgelu_bf16,
                                    const float *dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dinp[i] = dout[i] * (inp ? gelu_grad_at(inp[i], gelu_tanh(inp[i])) : __bfloat162float(dgelu_bf16[i]));
}

// GELU(inp) into out (or NULL) and out_bf16 (or NULL), and GELU'(inp) into dgelu_bf16, rounded.
__global__ void gelu_bf16_kernel(float *out, __nv_bfloat16 *out_bf16, __nv_bfloat16 *dgelu_bf16,
                                 const float *inp, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float x = inp[i], t = gelu_tanh(x), y = 0.5f * x * (1.0f + t);
        if (out) out[i] = y;
        if (out_bf16) out_bf16[i] = __float2bfloat16_rn(y);
        dgelu_bf16[i] = __float2bfloat16_rn(gelu_grad_at(x, t));
    }
}

__global__ void dropout_kernel(float *out, const float *inp, size_t n, float p, float inv,
                               uint64_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = dropout_keep_u01(seed, i) < p ? 0.0f : inp[i] * inv;
}

__global__ void adamw_kernel(float *param, const float *grad, float *m, float *v, size_t n,
                             float lr, float beta1, float beta2, float eps, float weight_decay,
                             float bc1, float bc2) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
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
// launchers

void cuda_bias_add(float *out, const float *bias, int N, int OC, int ldo) {
    CUDA_ASSERT(N >= 0 && OC >= 0 && ldo >= OC);
    size_t n = (size_t)N * OC;
    if (!n) return;
    bias_add_kernel<<<grid_for(n), BLOCK>>>(out, bias, N, OC, ldo);
    KERNEL_CHECK();
}

void cuda_bias_backward(float *dbias, const float *dout, int N, int OC, int ldd) {
    CUDA_ASSERT(N >= 0 && OC >= 0 && ldd >= OC);
    if (!N || !OC) return;
    // Enough blocks to fill the GPU: split rows when the columns alone give too few.
    int col_blocks = (OC + BB_COLS - 1) / BB_COLS;
    int want = 4 * cuda_ctx.num_sms, row_chunks = 1;
    if (col_blocks < want) row_chunks = (want + col_blocks - 1) / col_blocks;
    int max_chunks = (N + 4 * BB_ROWS - 1) / (4 * BB_ROWS);   // at least 4 rows per thread
    if (row_chunks > max_chunks) row_chunks = max_chunks > 0 ? max_chunks : 1;
    if (row_chunks > 65535) row_chunks = 65535;
    dim3 grid(col_blocks, row_chunks), block(BB_COLS, BB_ROWS);
    bias_backward_kernel<<<grid, block>>>(dbias, dout, N, OC, ldd);
    KERNEL_CHECK();
}

void cuda_axpy(float *y, const float *x, float alpha, size_t n) {
    if (!n) return;
    axpy_kernel<<<grid_for(n), BLOCK>>>(y, x, alpha, n);
    KERNEL_CHECK();
}

void cuda_scale(float *x, float alpha, size_t n) {
    if (!n) return;
    scale_kernel<<<grid_for(n), BLOCK>>>(x, alpha, n);
    KERNEL_CHECK();
}

void cuda_add(float *out, const float *a, const float *b, size_t n) {
    if (!n) return;
    add_kernel<<<grid_for(n), BLOCK>>>(out, a, b, n);
    KERNEL_CHECK();
}

double cuda_sumsq(const float *x, size_t n) {
    if (!n) return 0.0;
    enum { MAX_BLOCKS = 1024 };
    unsigned blocks = grid_for(n);
    if (blocks > MAX_BLOCKS) blocks = MAX_BLOCKS;
    double *partial = (double *)cuda_scratch(SCRATCH_REDUCE, MAX_BLOCKS * sizeof(double));
    sumsq_kernel<<<blocks, BLOCK>>>(partial, x, n);
    KERNEL_CHECK();
    double host[MAX_BLOCKS];
    CUDA_CHECK(cudaMemcpy(host, partial, blocks * sizeof(double), cudaMemcpyDeviceToHost));
    double s = 0.0;
    for (unsigned i = 0; i < blocks; i++) s += host[i];
    return s;
}

void cuda_gelu_forward(float *out, const float *inp, size_t n) {
    if (!n) return;
    gelu_forward_kernel<<<grid_for(n), BLOCK>>>(out, inp, n);
    KERNEL_CHECK();
}

void cuda_gelu_backward(float *dinp, const float *inp, const uint16_t *dgelu_bf16, const float *dout, size_t n) {
    if (!n) return;
    gelu_backward_kernel<<<grid_for(n), BLOCK>>>(dinp, inp, (const __nv_bfloat16 *)dgelu_bf16, dout, n);
    KERNEL_CHECK();
}

void cuda_gelu_bf16(float *out, uint16_t *out_bf16, uint16_t *dgelu_bf16, const float *inp, size_t n) {
    if (!n) return;
    gelu_bf16_kernel<<<grid_for(n), BLOCK>>>(out, (__nv_bfloat16 *)out_bf16, (__nv_bfloat16 *)dgelu_bf16, inp, n);
    KERNEL_CHECK();
}

void cuda_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed) {
    CUDA_ASSERT(p >= 0.0f && p < 1.0f);
    if (!n) return;
    if (p == 0.0f) {
        if (out != inp) CUDA_CHECK(cudaMemcpy(out, inp, n * sizeof(float), cudaMemcpyDeviceToDevice));
        return;
    }
    dropout_kernel<<<grid_for(n), BLOCK>>>(out, inp, n, p, 1.0f / (1.0f - p), seed);
    KERNEL_CHECK();
}

void cuda_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed) {
    cuda_dropout_forward(dinp, dout, n, p, seed);   // the same linear map
}

void cuda_adamw_update(float *param, const float *grad, float *m, float *v, size_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay, int t) {
    CUDA_ASSERT(t >= 1);
    if (!n) return;
    float bc1 = (float)(1.0 - pow(beta1, t)), bc2 = (float)(1.0 - pow(beta2, t));
    adamw_kernel<<<grid_for(n), BLOCK>>>(param, grad, m, v, n, lr, beta1, beta2, eps,
                                         weight_decay, bc1, bc2);
    KERNEL_CHECK();
}
