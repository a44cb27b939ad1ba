// core/backend_cuda.h — the CUDA backend's C-callable surface (core/cuda/*.cu).
//
// backend_cuda() returns the Backend table (core/backend.h) bound to one GPU: cuBLAS sgemm
// (TF32 tensor cores when LORALAB_TF32=1 at initialisation, or backend_cuda_set_tf32(1)),
// the project's own kernels, and cuSOLVER's gesvd for the SVD. Every pointer the table's
// functions take is device memory, including the integer inputs (tokens, targets, rows) and
// the key mask; only to_device's source and to_host's destination are host memory.
// Work is issued in order on the default stream; to_host, sumsq and svd wait for it.
//
// One process drives one GPU (a run is one process): the first successful backend_cuda(N)
// binds the process to device N, and asking for another device afterwards fails.
// Errors: backend_cuda() reports "no GPU" and "no such device" as a message (returns NULL);
// a CUDA, cuBLAS or cuSOLVER failure inside an op (out of memory, a launch error) is fatal:
// it prints the library, the error, the call, function, file and line, and aborts.
//
// Built without nvcc (or with NO_CUDA=1), LORALAB_CUDA is undefined and the inline versions
// below stand in: no devices, and backend_cuda() says that the build has no CUDA backend.
// Callers therefore need no #ifdef.
#ifndef LORALAB_BACKEND_CUDA_H
#define LORALAB_BACKEND_CUDA_H

#include <stddef.h>
#include <stdio.h>

#include "core/backend.h"

// (the .cu files see the real declarations: nvcc does not get the Makefile's -DLORALAB_CUDA)
#if defined(LORALAB_CUDA) || defined(__CUDACC__)

#ifdef __cplusplus
extern "C" {
#endif

// The table for GPU `device` (cuda:N), or NULL with a one-line message in err (errcap
// bytes, always terminated) when the machine has no CUDA device, the driver is missing, the
// index is out of range or cuBLAS cannot start. The table is static: nothing to free.
const Backend *backend_cuda(int device, char *err, size_t errcap);

// Number of CUDA devices this process sees; 0 when there is no driver or no GPU (never
// fails, never aborts).
int backend_cuda_device_count(void);

// One line describing GPU `device` for --version, e.g.
// "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB, CUDA runtime 13.0, driver 13.0)".
// Returns 0, or -1 with the reason written to buf instead (no device, bad index).
int backend_cuda_describe(int device, char *buf, size_t cap);

// TF32 tensor-core math for gemm (cuBLAS CUBLAS_TF32_TENSOR_OP_MATH) on or off. Initially
// on iff the environment variable LORALAB_TF32 is "1" when backend_cuda() first succeeds.
// Call after backend_cuda().
void backend_cuda_set_tf32(int on);
int backend_cuda_tf32(void);

// Bytes of device memory held through the backend (alloc plus the backend's own scratch
// buffers) now, and the most held at once since the first backend_cuda() or the last
// reset. cuBLAS/cuSOLVER workspaces and the CUDA context are not included.
void backend_cuda_memory(size_t *in_use, size_t *peak);
void backend_cuda_memory_reset_peak(void);

// Free and total memory of GPU `device` now (cudaMemGetInfo): 0, or -1 (no such device).
int backend_cuda_free_memory(int device, size_t *free_b, size_t *total_b);

#ifdef __cplusplus
}
#endif

#else   // a CPU-only build

static inline const Backend *backend_cuda(int device, char *err, size_t errcap) {
    if (err && errcap)
        snprintf(err, errcap, "cuda:%d: this build has no CUDA backend (built without nvcc, or with NO_CUDA=1)", device);
    return NULL;
}
static inline int backend_cuda_device_count(void) { return 0; }
static inline int backend_cuda_describe(int device, char *buf, size_t cap) {
    if (buf && cap) snprintf(buf, cap, "cuda:%d: this build has no CUDA backend", device);
    return -1;
}
static inline void backend_cuda_set_tf32(int on) { (void)on; }
static inline int backend_cuda_tf32(void) { return 0; }
static inline void backend_cuda_memory(size_t *in_use, size_t *peak) {
    if (in_use) *in_use = 0;
    if (peak) *peak = 0;
}
static inline void backend_cuda_memory_reset_peak(void) {}
static inline int backend_cuda_free_memory(int device, size_t *free_b, size_t *total_b) {
    (void)device;
    *free_b = *total_b = 0;
    return -1;
}

#endif
#endif
