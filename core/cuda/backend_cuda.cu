// core/cuda/backend_cuda.cu — the CUDA backend: device selection, memory, cuBLAS gemm,
// cuSOLVER SVD, the Backend table and the C surface of core/backend_cuda.h.
//
// The ops live one family per file (elementwise, embedding, layernorm, attention,
// crossentropy .cu/.cuh); this file binds them into the table. Everything runs on the
// legacy default stream, so ops are ordered with each other and with cudaMemcpy.
//
// gemm: the interface is row-major; cuBLAS is column-major. A row-major X with row stride
// ld is the column-major X^T with leading dimension ld, so C = op(A) op(B) becomes
// C^T = op(B)^T op(A)^T: cublasSgemm(opB, opA, N, M, K, B, ldb, A, lda, C, ldc).
//
// svd: cusolverDnSgesvd factors column-major m x n matrices with m >= n only. The row-major
// M x N matrix A is the column-major A^T (N x M); when M <= N that is already tall, and
// A^T = U' S V'^T gives A = V' S U'^T: gesvd's VT output (K x M, ld K) is exactly the
// row-major U of A and its U output (N x K, ld N) exactly the row-major Vt. When M > N, A is
// transposed into a column-major copy first and gesvd's U and VT are transposed back
// (cublasSgeam). Non-finite input returns -1 without calling the solver (LAPACKE's sgesdd
// on the CPU refuses it too).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_bf16.h>

#include "core/backend_cuda.h"
#include "core/cuda/attention.cuh"
#include "core/cuda/common.cuh"
#include "core/cuda/crossentropy.cuh"
#include "core/cuda/elementwise.cuh"
#include "core/cuda/embedding.cuh"
#include "core/cuda/layernorm.cuh"

CudaContext cuda_ctx = {-1, 0, NULL, NULL};
static Backend cuda_table;
static int cuda_tf32_on = 0;

// ----------------------------------------------------------------------------
// errors

void cuda_fatal(const char *lib, const char *what, int code, const char *expr, const char *func,
                const char *file, int line) {
    fprintf(stderr, "loralab: %s error %d (%s) in %s: %s (%s:%d)\n", lib, code,
            what ? what : "?", func, expr, file, line);
    abort();
}

const char *cusolver_status_string(cusolverStatus_t s) {
    switch (s) {
    case CUSOLVER_STATUS_SUCCESS: return "success";
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUSOLVER_STATUS_INVALID_VALUE: return "invalid value";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "internal error";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED: return "matrix type not supported";
    default: return "other cuSOLVER error";
    }
}

// ----------------------------------------------------------------------------
// memory: every device allocation of the backend is recorded (pointer, size) so that
// backend_cuda_memory can say what is held and the peak.

typedef struct { void *ptr; size_t bytes; } Allocation;
static Allocation *allocs = NULL;
static size_t n_allocs = 0, cap_allocs = 0;
static size_t mem_in_use = 0, mem_peak = 0;

static void *device_malloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        fprintf(stderr, "loralab: cuda:%d: out of device memory allocating %.1f MiB (%.1f MiB free of "
                "%.1f MiB; %.1f MiB held by loralab): %s\n", cuda_ctx.device, bytes / 1048576.0,
                free_b / 1048576.0, total_b / 1048576.0, mem_in_use / 1048576.0, cudaGetErrorString(e));
        abort();
    }
    if (n_allocs == cap_allocs) {
        cap_allocs = cap_allocs ? 2 * cap_allocs : 64;
        allocs = (Allocation *)realloc(allocs, cap_allocs * sizeof(Allocation));
        if (!allocs) { fprintf(stderr, "loralab: out of host memory\n"); abort(); }
    }
    allocs[n_allocs].ptr = p;
    allocs[n_allocs].bytes = bytes;
    n_allocs++;
    mem_in_use += bytes;
    if (mem_in_use > mem_peak) mem_peak = mem_in_use;
    return p;
}

static void device_free(void *p) {
    if (!p) return;
    for (size_t i = 0; i < n_allocs; i++) {
        if (allocs[i].ptr != p) continue;
        mem_in_use -= allocs[i].bytes;
        allocs[i] = allocs[--n_allocs];
        CUDA_CHECK(cudaFree(p));
        return;
    }
    CUDA_ASSERT(!"free of a pointer the CUDA backend did not allocate");
}

static void *cuda_alloc(size_t bytes) {
    void *p = device_malloc(bytes);
    CUDA_CHECK(cudaMemset(p, 0, bytes ? bytes : 1));
    return p;
}

static void cuda_free(void *ptr) { device_free(ptr); }

static void cuda_to_device(void *dst, const void *host_src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

static void cuda_to_host(void *host_dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

static void cuda_zero(void *dst, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemset(dst, 0, bytes));
}

static void cuda_synchronize(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

void *cuda_scratch(int slot, size_t bytes) {
    static void *buf[NUM_SCRATCH];
    static size_t cap[NUM_SCRATCH];
    CUDA_ASSERT(slot >= 0 && slot < NUM_SCRATCH);
    if (bytes > cap[slot]) {
        // the old buffer may still be read by queued work: free waits for the device
        device_free(buf[slot]);
        buf[slot] = device_malloc(bytes);
        cap[slot] = bytes;
    }
    return buf[slot];
}

// ----------------------------------------------------------------------------
// gemm

static cublasOperation_t cublas_op(int trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

// C = beta * C for the row-major M x N matrix C (gemm with K = 0).
static void scale_matrix(float *C, int M, int N, int ldc, float beta) {
    if (beta == 0.0f) {
        CUDA_CHECK(cudaMemset2D(C, (size_t)ldc * sizeof(float), 0, (size_t)N * sizeof(float), M));
    } else if (beta != 1.0f) {
        for (int i = 0; i < M; i++)
            CUBLAS_CHECK(cublasSscal(cuda_ctx.cublas, N, &beta, C + (size_t)i * ldc, 1));
    }
}

// Checks a gemm's shapes and handles the empty cases; returns 1 if a product remains to do.
static int gemm_needed(int trans_a, int trans_b, int M, int N, int K, int lda, int ldb,
                       float beta, float *C, int ldc) {
    CUDA_ASSERT(M >= 0 && N >= 0 && K >= 0);
    CUDA_ASSERT(lda >= (trans_a ? M : K) && lda >= 1);
    CUDA_ASSERT(ldb >= (trans_b ? K : N) && ldb >= 1);
    CUDA_ASSERT(ldc >= N && ldc >= 1);
    if (M == 0 || N == 0) return 0;
    if (K == 0) { scale_matrix(C, M, N, ldc, beta); return 0; }
    return 1;
}

void cuda_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (!gemm_needed(trans_a, trans_b, M, N, K, lda, ldb, beta, C, ldc)) return;
    CUBLAS_CHECK(cublasSgemm(cuda_ctx.cublas, cublas_op(trans_b), cublas_op(trans_a), N, M, K,
                             &alpha, B, ldb, A, lda, &beta, C, ldc));
}

// bf16 operands, fp32 accumulation (tensor cores) and fp32 C.
static void cuda_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const uint16_t *A,
                    int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc) {
    if (!gemm_needed(trans_a, trans_b, M, N, K, lda, ldb, beta, C, ldc)) return;
    CUBLAS_CHECK(cublasGemmEx(cuda_ctx.cublas, cublas_op(trans_b), cublas_op(trans_a), N, M, K,
                              &alpha, B, CUDA_R_16BF, ldb, A, CUDA_R_16BF, lda, &beta,
                              C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// Round to nearest even, as bf16_from_float in core/backend.h.
__global__ void to_bf16_kernel(__nv_bfloat16 *dst, const float *src, int rows, int cols, int ld) {
    size_t n = (size_t)rows * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols, c = i % cols;
        dst[i] = __float2bfloat16_rn(src[r * ld + c]);
    }
}

// With colsum: the bias gradient's kernel, then the rounding (fused on the CPU only).
static void cuda_to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld, float *colsum) {
    CUDA_ASSERT(rows >= 0 && cols >= 0 && ld >= cols);
    size_t n = (size_t)rows * cols;
    if (!n) return;
    if (colsum) cuda_bias_backward(colsum, src, rows, cols, ld);
    to_bf16_kernel<<<grid_for(n), BLOCK>>>((__nv_bfloat16 *)dst, src, rows, cols, ld);
    KERNEL_CHECK();
}

__global__ void from_bf16_kernel(float *dst, const __nv_bfloat16 *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __bfloat162float(src[i]);
}

static void cuda_from_bf16(float *dst, const uint16_t *src, size_t n) {
    if (!n) return;
    from_bf16_kernel<<<grid_for(n), BLOCK>>>(dst, (const __nv_bfloat16 *)src, n);
    KERNEL_CHECK();
}

void cuda_gemm_strided(int trans_a, int trans_b, int M, int N, int K, float alpha,
                       const float *A, int lda, long long sa, const float *B, int ldb,
                       long long sb, float beta, float *C, int ldc, long long sc, int batch) {
    CUDA_ASSERT(M >= 0 && N >= 0 && K > 0 && batch >= 0);
    CUDA_ASSERT(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldc >= N);
    if (M == 0 || N == 0 || batch == 0) return;
    CUBLAS_CHECK(cublasSgemmStridedBatched(cuda_ctx.cublas, cublas_op(trans_b), cublas_op(trans_a),
                                           N, M, K, &alpha, B, ldb, sb, A, lda, sa, &beta, C, ldc,
                                           sc, batch));
}

// ----------------------------------------------------------------------------
// svd

__global__ void count_nonfinite_kernel(int *count, const float *x, size_t n) {
    int bad = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        bad |= !isfinite(x[i]);
    if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) atomicAdd(count, 1);
}

static int all_finite(const float *x, size_t n) {
    int *count = (int *)cuda_scratch(SCRATCH_REDUCE, sizeof(int));
    CUDA_CHECK(cudaMemset(count, 0, sizeof(int)));
    count_nonfinite_kernel<<<grid_for(n), BLOCK>>>(count, x, n);
    KERNEL_CHECK();
    int host = 0;
    CUDA_CHECK(cudaMemcpy(&host, count, sizeof(int), cudaMemcpyDeviceToHost));
    return host == 0;
}

// dst (column-major rows x cols, ld rows) = transpose of src (column-major cols x rows, ld cols).
// geam's second operand is dst itself with beta = 0; dst is zeroed first so that stale NaNs
// in a scratch buffer cannot leak through 0 * NaN.
static void transpose(float *dst, const float *src, int rows, int cols) {
    const float one = 1.0f, zero = 0.0f;
    CUDA_CHECK(cudaMemset(dst, 0, (size_t)rows * cols * sizeof(float)));
    CUBLAS_CHECK(cublasSgeam(cuda_ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, rows, cols, &one, src,
                             cols, &zero, dst, rows, dst, rows));
}

static int cuda_svd(const float *A, int M, int N, float *U, float *S, float *Vt) {
    CUDA_ASSERT(M > 0 && N > 0);
    int K = M < N ? M : N;
    size_t MN = (size_t)M * N;
    if (!all_finite(A, MN)) return -1;
    if (!cuda_ctx.cusolver) CUSOLVER_CHECK(cusolverDnCreate(&cuda_ctx.cusolver));
    int tall = M > N;                   // the column-major problem: m x n with m >= n
    int m = tall ? M : N, n = tall ? N : M;
    int lwork = 0;
    CUSOLVER_CHECK(cusolverDnSgesvd_bufferSize(cuda_ctx.cusolver, m, n, &lwork));
    // a (m x n) | gesvd's U (m x K) | gesvd's VT (K x n); the last two only when transposing
    size_t a_floats = MN + (tall ? (size_t)M * K + (size_t)K * N : 0);
    float *a = (float *)cuda_scratch(SCRATCH_SVD_A, a_floats * sizeof(float));
    // work (lwork) | rwork (K) | info (one int, as a float slot)
    float *work = (float *)cuda_scratch(SCRATCH_SVD_WORK, ((size_t)lwork + K + 1) * sizeof(float));
    float *rwork = work + lwork;
    int *info = (int *)(rwork + K);
    if (tall) {
        float *u = a + MN, *vt = u + (size_t)M * K;
        transpose(a, A, M, N);   // row-major A (col-major N x M) -> col-major M x N
        CUSOLVER_CHECK(cusolverDnSgesvd(cuda_ctx.cusolver, 'S', 'S', M, N, a, M, S, u, M, vt, K,
                                        work, lwork, rwork, info));
        transpose(U, u, K, M);    // col-major M x K -> row-major M x K (col-major K x M)
        transpose(Vt, vt, N, K);  // col-major K x N -> row-major K x N (col-major N x K)
    } else {
        CUDA_CHECK(cudaMemcpy(a, A, MN * sizeof(float), cudaMemcpyDeviceToDevice));
        CUSOLVER_CHECK(cusolverDnSgesvd(cuda_ctx.cusolver, 'S', 'S', N, M, a, N, S, Vt, N, U, K,
                                        work, lwork, rwork, info));
    }
    int host_info = 0;
    CUDA_CHECK(cudaMemcpy(&host_info, info, sizeof(int), cudaMemcpyDeviceToHost));
    return host_info == 0 ? 0 : -1;
}

// ----------------------------------------------------------------------------
// the C surface

static void set_message(char *err, size_t cap, const char *fmt, ...) {
    if (!err || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

// The fused ops as their steps, on the GPU's own kernels.
static void cuda_bias_gelu_forward(float *out, float *inp, const float *bias, int N, int OC,
                                   uint16_t *out_bf16, uint16_t *dgelu_bf16) {
    size_t n = (size_t)N * OC;
    if (bias) cuda_bias_add(inp, bias, N, OC, OC);
    if (dgelu_bf16) cuda_gelu_bf16(out, out_bf16, dgelu_bf16, inp, n);
    else cuda_gelu_forward(out, inp, n);
}

// The product in fp32 scratch, then to_bf16 with the bias gradient.
static void cuda_gelu_backward_bf16(uint16_t *dinp_bf16, float *dbias, const uint16_t *dgelu_bf16,
                                    const float *dout, int N, int OC) {
    size_t n = (size_t)N * OC;
    float *g = (float *)cuda_scratch(SCRATCH_GELU_GRAD, n * sizeof(float));
    cuda_gelu_backward(g, NULL, dgelu_bf16, dout, n);
    cuda_to_bf16(dinp_bf16, g, N, OC, OC, dbias);
}

// From the bf16 copies: widened into scratch, then the fp32 backward (exact inputs, fp32 products).
static void cuda_attention_backward_bf16(float *dqkv, float *datt, const float *dout,
                                         const uint16_t *qkv_bf16, const uint16_t *att_bf16,
                                         const uint8_t *key_mask, int B, int T, int C, int NH,
                                         float dropout_p, uint64_t seed) {
    size_t nqkv = (size_t)B * T * 3 * C, natt = (size_t)B * NH * T * T;
    float *qkv = (float *)cuda_scratch(SCRATCH_WIDE_QKV, nqkv * sizeof(float));
    float *att = (float *)cuda_scratch(SCRATCH_WIDE_ATT, natt * sizeof(float));
    cuda_from_bf16(qkv, qkv_bf16, nqkv);
    cuda_from_bf16(att, att_bf16, natt);
    cuda_attention_backward(dqkv, datt, dout, qkv, att, key_mask, B, T, C, NH, dropout_p, seed);
}

// From bf16 q, k, v: widened into scratch, the fp32 forward (exact inputs, fp32 products), then
// the probabilities rounded (dropout applied to the fp32 ones: the CUDA backward drops the
// widened bf16 copy again, so forward and backward agree to bf16's rounding).
static void cuda_attention_forward_bf16(float *out, float *scores, uint16_t *att_bf16, const uint16_t *qkv_bf16,
                                        const uint8_t *key_mask, int B, int T, int C, int NH,
                                        float dropout_p, uint64_t seed) {
    size_t nqkv = (size_t)B * T * 3 * C;
    float *qkv = (float *)cuda_scratch(SCRATCH_WIDE_QKV, nqkv * sizeof(float));
    cuda_from_bf16(qkv, qkv_bf16, nqkv);
    cuda_attention_forward(out, scores, qkv, key_mask, B, T, C, NH, dropout_p, seed);
    cuda_to_bf16(att_bf16, scores, B * NH * T, T, T, NULL);
}

// bias_add, then the bf16 copy when asked for.
static void cuda_bias_add_copy(float *out, const float *bias, int N, int OC, int ldo, uint16_t *out_bf16) {
    cuda_bias_add(out, bias, N, OC, ldo);
    if (out_bf16) cuda_to_bf16(out_bf16, out, N, OC, ldo, NULL);
}

// The LayerNorm kernel (into scratch when out is NULL), then the bf16 copy when asked for.
static void cuda_layernorm_forward_copy(float *out, float *mean, float *rstd, const float *inp,
                                        const float *weight, const float *bias, int N, int C, float eps,
                                        uint16_t *out_bf16) {
    if (!out) out = (float *)cuda_scratch(SCRATCH_LN_OUT, (size_t)N * C * sizeof(float));
    cuda_layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
    if (out_bf16) cuda_to_bf16(out_bf16, out, N, C, C, NULL);
}

static void cuda_residual_layernorm_forward(float *sum, float *out, float *mean, float *rstd,
                                            const float *a, const float *b, const float *weight,
                                            const float *bias, int N, int C, float eps, uint16_t *out_bf16) {
    cuda_add(sum, a, b, (size_t)N * C);
    cuda_layernorm_forward_copy(out, mean, rstd, sum, weight, bias, N, C, eps, out_bf16);
}

static void fill_table(Backend *t) {
    memset(t, 0, sizeof *t);
    t->name = "cuda";
    t->alloc = cuda_alloc;
    t->free = cuda_free;
    t->to_device = cuda_to_device;
    t->to_host = cuda_to_host;
    t->copy = cuda_copy;
    t->zero = cuda_zero;
    t->synchronize = cuda_synchronize;
    t->gemm = cuda_gemm;
    t->gemm_bf16 = cuda_gemm_bf16;
    t->to_bf16 = cuda_to_bf16;
    t->from_bf16 = cuda_from_bf16;
    t->bias_add = cuda_bias_add_copy;
    t->bias_backward = cuda_bias_backward;
    t->axpy = cuda_axpy;
    t->scale = cuda_scale;
    t->add = cuda_add;
    t->sumsq = cuda_sumsq;
    t->encoder_forward = cuda_encoder_forward;
    t->encoder_backward = cuda_encoder_backward;
    t->layernorm_forward = cuda_layernorm_forward_copy;
    t->layernorm_backward = cuda_layernorm_backward;
    t->attention_forward = cuda_attention_forward;
    t->attention_forward_bf16 = cuda_attention_forward_bf16;
    t->attention_backward = cuda_attention_backward;
    t->attention_backward_bf16 = cuda_attention_backward_bf16;
    t->attention_decode = cuda_attention_decode;
    t->gelu_forward = cuda_gelu_forward;
    t->bias_gelu_forward = cuda_bias_gelu_forward;
    t->residual_layernorm_forward = cuda_residual_layernorm_forward;
    t->gelu_backward = cuda_gelu_backward;
    t->gelu_backward_bf16 = cuda_gelu_backward_bf16;
    t->dropout_forward = cuda_dropout_forward;
    t->dropout_backward = cuda_dropout_backward;
    t->crossentropy_forward = cuda_crossentropy_forward;
    t->crossentropy_backward = cuda_crossentropy_backward;
    t->gather_rows = cuda_gather_rows;
    t->scatter_add_rows = cuda_scatter_add_rows;
    t->adamw_update = cuda_adamw_update;
    t->svd = cuda_svd;
}

extern "C" int backend_cuda_device_count(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();   // clear it: no driver / no device is an answer, not a failure
        return 0;
    }
    return count;
}

extern "C" int backend_cuda_free_memory(int device, size_t *free_b, size_t *total_b) {
    *free_b = *total_b = 0;
    if (device < 0 || device >= backend_cuda_device_count()) return -1;
    int prev = 0;
    cudaGetDevice(&prev);
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaMemGetInfo(free_b, total_b);
    cudaSetDevice(prev);
    if (e != cudaSuccess) { cudaGetLastError(); return -1; }
    return 0;
}

extern "C" const Backend *backend_cuda(int device, char *err, size_t errcap) {
    if (cuda_ctx.device >= 0) {
        if (device == cuda_ctx.device) return &cuda_table;
        set_message(err, errcap, "cuda:%d: this process already runs on cuda:%d (one GPU per process)",
                    device, cuda_ctx.device);
        return NULL;
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        set_message(err, errcap, "cuda:%d: no CUDA device found (cudaGetDeviceCount: %s)", device,
                    cudaGetErrorString(e));
        return NULL;
    }
    if (count == 0) {
        set_message(err, errcap, "cuda:%d: no CUDA device found (cudaGetDeviceCount: 0 devices)", device);
        return NULL;
    }
    if (device < 0 || device >= count) {
        if (count == 1)
            set_message(err, errcap, "cuda:%d: no such device (1 CUDA device: cuda:0)", device);
        else
            set_message(err, errcap, "cuda:%d: no such device (%d CUDA devices: cuda:0 .. cuda:%d)",
                        device, count, count - 1);
        return NULL;
    }
    if ((e = cudaSetDevice(device)) != cudaSuccess || (e = cudaFree(0)) != cudaSuccess) {
        cudaGetLastError();
        set_message(err, errcap, "cuda:%d: cannot start a CUDA context: %s", device, cudaGetErrorString(e));
        return NULL;
    }
    cublasStatus_t s = cublasCreate(&cuda_ctx.cublas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        set_message(err, errcap, "cuda:%d: cannot start cuBLAS: %s", device, cublasGetStatusString(s));
        return NULL;
    }
    CUDA_CHECK(cudaDeviceGetAttribute(&cuda_ctx.num_sms, cudaDevAttrMultiProcessorCount, device));
    cuda_ctx.device = device;
    const char *tf32 = getenv("LORALAB_TF32");
    backend_cuda_set_tf32(tf32 && strcmp(tf32, "1") == 0);
    fill_table(&cuda_table);
    return &cuda_table;
}

extern "C" int backend_cuda_describe(int device, char *buf, size_t cap) {
    int count = backend_cuda_device_count();
    if (device < 0 || device >= count) {
        if (count == 0) set_message(buf, cap, "cuda:%d: no CUDA device found", device);
        else set_message(buf, cap, "cuda:%d: no such device (%d found)", device, count);
        return -1;
    }
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, device);
    if (e != cudaSuccess) {
        cudaGetLastError();
        set_message(buf, cap, "cuda:%d: cannot read its properties: %s", device, cudaGetErrorString(e));
        return -1;
    }
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    set_message(buf, cap, "cuda:%d %s (sm_%d%d, %d SMs, %.1f GiB, CUDA runtime %d.%d, driver %d.%d)",
                device, prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                prop.totalGlobalMem / 1073741824.0, rt / 1000, rt % 1000 / 10, drv / 1000,
                drv % 1000 / 10);
    return 0;
}

extern "C" void backend_cuda_set_tf32(int on) {
    CUDA_ASSERT(cuda_ctx.cublas != NULL);
    CUBLAS_CHECK(cublasSetMathMode(cuda_ctx.cublas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    cuda_tf32_on = on != 0;
}

extern "C" int backend_cuda_tf32(void) { return cuda_tf32_on; }

extern "C" void backend_cuda_memory(size_t *in_use, size_t *peak) {
    if (in_use) *in_use = mem_in_use;
    if (peak) *peak = mem_peak;
}

extern "C" void backend_cuda_memory_reset_peak(void) { mem_peak = mem_in_use; }
