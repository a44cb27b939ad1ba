// core/cuda/layernorm.cu — LayerNorm (see layernorm.cuh).
//
// One warp per row. Forward: mean, then the variance around it (two passes over the row,
// like the CPU backend, rather than E[x^2] - E[x]^2). Backward: a fixed grid of blocks whose
// warps stride over the rows; each block sums its rows' dweight / dbias contributions in
// shared memory (2 C floats; straight into global memory when that does not fit) and adds
// them to dweight / dbias with atomicAdd, so their last bits vary between runs.
#include "core/cuda/common.cuh"
#include "core/cuda/layernorm.cuh"

// ----------------------------------------------------------------------------
// kernels

__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                         const float *weight, const float *bias, int N, int C,
                                         float eps) {
    int lane = threadIdx.x & 31;
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    float *o = out + (size_t)row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) { float d = x[c] - m; v += d * d; }
    v = warp_sum(v) / C;
    float r = 1.0f / sqrtf(v + eps);
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * weight[c] + bias[c];
    if (lane == 0) { mean[row] = m; rstd[row] = r; }
}

// shared_acc: accumulate dweight / dbias in dynamic shared memory (2 C floats) first.
__global__ void layernorm_backward_kernel(float *dinp, float *dweight, float *dbias,
                                          const float *dout, const float *inp,
                                          const float *weight, const float *mean,
                                          const float *rstd, int N, int C, int shared_acc) {
    extern __shared__ float acc[];   // (2, C) when shared_acc
    int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    int want = dweight != NULL || dbias != NULL;
    float *acc_w = dweight, *acc_b = dbias;
    if (want && shared_acc) {
        for (int i = threadIdx.x; i < 2 * C; i += blockDim.x) acc[i] = 0.0f;
        __syncthreads();
        acc_w = dweight ? acc : NULL;
        acc_b = dbias ? acc + C : NULL;
    }
    for (int row = blockIdx.x * warps + (threadIdx.x >> 5); row < N; row += gridDim.x * warps) {
        const float *x = inp + (size_t)row * C, *d = dout + (size_t)row * C;
        float *dx = dinp + (size_t)row * C;
        float m = mean[row], s = rstd[row];
        // dnorm = dout * weight; dx += s * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
        float dn_mean = 0.0f, dnn_mean = 0.0f;
        for (int c = lane; c < C; c += 32) {
            float norm = (x[c] - m) * s, dn = weight[c] * d[c];
            dn_mean += dn;
            dnn_mean += dn * norm;
        }
        dn_mean = warp_sum(dn_mean) / C;
        dnn_mean = warp_sum(dnn_mean) / C;
        for (int c = lane; c < C; c += 32) {
            float norm = (x[c] - m) * s, dn = weight[c] * d[c];
            dx[c] += s * (dn - dn_mean - norm * dnn_mean);
            if (acc_w) atomicAdd(&acc_w[c], norm * d[c]);
            if (acc_b) atomicAdd(&acc_b[c], d[c]);
        }
    }
    if (want && shared_acc) {
        __syncthreads();
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            if (dweight) atomicAdd(&dweight[c], acc[c]);
            if (dbias) atomicAdd(&dbias[c], acc[C + c]);
        }
    }
}

// ----------------------------------------------------------------------------
// launchers

void cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, int N, int C, float eps) {
    CUDA_ASSERT(N >= 0 && C > 0);
    if (!N) return;
    unsigned blocks = (unsigned)((N + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK);
    layernorm_forward_kernel<<<blocks, BLOCK>>>(out, mean, rstd, inp, weight, bias, N, C, eps);
    KERNEL_CHECK();
}

void cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *mean,
                             const float *rstd, int N, int C) {
    CUDA_ASSERT(N >= 0 && C > 0);
    if (!N) return;
    int want = dweight != NULL || dbias != NULL;
    size_t shmem = 2 * (size_t)C * sizeof(float);
    int shared_acc = want && shmem <= 48 * 1024;   // the default limit, no opt-in needed
    int blocks = (N + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
    // With parameter gradients, fewer blocks that each cover many rows: fewer global atomics.
    if (want && blocks > 2 * cuda_ctx.num_sms) blocks = 2 * cuda_ctx.num_sms;
    layernorm_backward_kernel<<<blocks, BLOCK, shared_acc ? shmem : 0>>>(
        dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, shared_acc);
    KERNEL_CHECK();
}
