// core/cuda/common.cuh — what every file of the CUDA backend shares: one check macro per
// library, the backend's context (device, cuBLAS and cuSOLVER handles), scratch buffers,
// launch sizes, warp/block reductions and the device copy of dropout's uniform draw.
//
// Failures of CUDA, cuBLAS and cuSOLVER calls are fatal (see core/backend_cuda.h): the
// macro prints library, error, expression, function, file and line, and aborts.
#ifndef LORALAB_CUDA_COMMON_CUH
#define LORALAB_CUDA_COMMON_CUH

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include "core/backend.h"

// ----------------------------------------------------------------------------
// checks

[[noreturn]] void cuda_fatal(const char *lib, const char *what, int code, const char *expr,
                             const char *func, const char *file, int line);
const char *cusolver_status_string(cusolverStatus_t s);

#define LAB_CHECK_STATUS(lib, expr, ok, describe)                                         \
    do {                                                                                  \
        auto lab_status_ = (expr);                                                        \
        if (lab_status_ != (ok))                                                          \
            cuda_fatal(lib, describe(lab_status_), (int)lab_status_, #expr, __func__,     \
                       __FILE__, __LINE__);                                               \
    } while (0)

#define CUDA_CHECK(expr) LAB_CHECK_STATUS("CUDA", expr, cudaSuccess, cudaGetErrorString)
#define CUBLAS_CHECK(expr) LAB_CHECK_STATUS("cuBLAS", expr, CUBLAS_STATUS_SUCCESS, cublasGetStatusString)
#define CUSOLVER_CHECK(expr) LAB_CHECK_STATUS("cuSOLVER", expr, CUSOLVER_STATUS_SUCCESS, cusolver_status_string)
// After every kernel launch: a bad configuration shows up here, at its launch site.
#define KERNEL_CHECK() CUDA_CHECK(cudaGetLastError())

// Programming errors (bad dimensions), as LAB_ASSERT in core/errors.h.
#define CUDA_ASSERT(cond)                                                                 \
    do {                                                                                  \
        if (!(cond))                                                                      \
            cuda_fatal("loralab", "assertion failed", 0, #cond, __func__, __FILE__,       \
                       __LINE__);                                                         \
    } while (0)

// ----------------------------------------------------------------------------
// context and scratch

typedef struct {
    int device;                   // -1 until backend_cuda() succeeds
    int num_sms;
    cublasHandle_t cublas;
    cusolverDnHandle_t cusolver;  // created by the first svd
} CudaContext;

extern CudaContext cuda_ctx;

// Device scratch buffers, one per purpose, grown on demand and kept (counted in
// backend_cuda_memory). Contents are undefined; valid until the next call for that slot.
enum { SCRATCH_ATTN_DROP, SCRATCH_REDUCE, SCRATCH_SVD_A, SCRATCH_SVD_WORK, SCRATCH_WIDE_QKV, SCRATCH_WIDE_ATT, SCRATCH_GELU_GRAD, SCRATCH_LN_OUT,
       NUM_SCRATCH };
void *cuda_scratch(int slot, size_t bytes);

// ----------------------------------------------------------------------------
// row-major gemm helpers (core/cuda/backend_cuda.cu)

// The backend's gemm (see core/backend.h).
void cuda_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc);
// `batch` row-major gemms: matrix i uses A + i*sa, B + i*sb, C + i*sc.
void cuda_gemm_strided(int trans_a, int trans_b, int M, int N, int K, float alpha,
                       const float *A, int lda, long long sa, const float *B, int ldb,
                       long long sb, float beta, float *C, int ldc, long long sc, int batch);

// ----------------------------------------------------------------------------
// launch sizes

enum { BLOCK = 256, WARPS_PER_BLOCK = BLOCK / 32 };

// Blocks for a grid-stride loop over n items, BLOCK threads each (at least 1; capped, since
// the loop covers the rest).
static inline unsigned grid_for(size_t n) {
    size_t g = (n + BLOCK - 1) / BLOCK;
    if (g > 65535u * 8u) g = 65535u * 8u;
    return g ? (unsigned)g : 1u;
}

// ----------------------------------------------------------------------------
// device helpers

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// fmaxf ignores NaN; the caller's sums carry NaN on (as the CPU backend does).
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum / max over the whole block (blockDim.x a multiple of 32, at most 1024); every thread
// gets the result. `sh` is 32 floats of shared memory, reusable after the call.
__device__ __forceinline__ float block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();   // sh may still be read from a previous call
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    return warp_max(v);
}

#endif
