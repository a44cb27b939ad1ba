// core/cuda/embedding.cu — embeddings and row gather / scatter (see embedding.cuh).
//
// Repeated tokens (and repeated rows) make dwte (dinp) a scatter with collisions: atomicAdd,
// so the order of the additions, and the last bits of the sums, vary between runs. dwpe has
// one writer per element (a thread per (t, c) sums over the batch) and is deterministic.
#include "core/cuda/common.cuh"
#include "core/cuda/embedding.cuh"

// ----------------------------------------------------------------------------
// kernels

__global__ void encoder_forward_kernel(float *out, const int *tokens, const float *wte,
                                       const float *wpe, int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t bt = i / C;
        int c = (int)(i % C), t = (int)(bt % T);
        out[i] = wte[(size_t)tokens[bt] * C + c] + wpe[(size_t)t * C + c];
    }
}

__global__ void encoder_backward_wte_kernel(float *dwte, const float *dout, const int *tokens,
                                            int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t bt = i / C;
        int c = (int)(i % C);
        atomicAdd(&dwte[(size_t)tokens[bt] * C + c], dout[i]);
    }
}

__global__ void encoder_backward_wpe_kernel(float *dwpe, const float *dout, int B, int T, int C) {
    size_t n = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int b = 0; b < B; b++) s += dout[(size_t)b * T * C + i];
        dwpe[i] += s;
    }
}

__global__ void gather_rows_kernel(float *out, const float *inp, const int *rows, int n, int C) {
    size_t total = (size_t)n * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C;
        int c = (int)(i % C);
        out[i] = inp[(size_t)rows[r] * C + c];
    }
}

__global__ void scatter_add_rows_kernel(float *dinp, const float *dout, const int *rows, int n,
                                        int C) {
    size_t total = (size_t)n * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / C;
        int c = (int)(i % C);
        atomicAdd(&dinp[(size_t)rows[r] * C + c], dout[i]);
    }
}

// ----------------------------------------------------------------------------
// launchers

void cuda_encoder_forward(float *out, const int *tokens, const float *wte, const float *wpe,
                          int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    if (!n) return;
    encoder_forward_kernel<<<grid_for(n), BLOCK>>>(out, tokens, wte, wpe, B, T, C);
    KERNEL_CHECK();
}

void cuda_encoder_backward(float *dwte, float *dwpe, const float *dout, const int *tokens,
                           int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    if (!n) return;
    if (dwte) {
        encoder_backward_wte_kernel<<<grid_for(n), BLOCK>>>(dwte, dout, tokens, B, T, C);
        KERNEL_CHECK();
    }
    if (dwpe) {
        encoder_backward_wpe_kernel<<<grid_for((size_t)T * C), BLOCK>>>(dwpe, dout, B, T, C);
        KERNEL_CHECK();
    }
}

void cuda_gather_rows(float *out, const float *inp, const int *rows, int n, int C) {
    size_t total = (size_t)n * C;
    if (!total) return;
    gather_rows_kernel<<<grid_for(total), BLOCK>>>(out, inp, rows, n, C);
    KERNEL_CHECK();
}

void cuda_scatter_add_rows(float *dinp, const float *dout, const int *rows, int n, int C) {
    size_t total = (size_t)n * C;
    if (!total) return;
    scatter_add_rows_kernel<<<grid_for(total), BLOCK>>>(dinp, dout, rows, n, C);
    KERNEL_CHECK();
}
