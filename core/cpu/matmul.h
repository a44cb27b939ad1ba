// core/cpu/matmul.h — every matrix product of the CPU backend, through oneDNN's matmul.
//
// One product is C = alpha * A @ B + beta * C over up to two batch dimensions, with A (M x K),
// B (K x N) and C (M x N) given by element strides, so a transpose is a stride swap and a
// head of a (B, T, 3C) tensor is a strided view. A and B are both fp32 or both bf16
// (uint16_t, round-to-nearest-even as bf16_from_float); accumulation is fp32, and C is fp32
// or, for bf16 operands and beta = 0, bf16 (the fp32 sums rounded to nearest even).
//
// oneDNN picks its kernels from the CPU's feature bits at run time (AVX2, AVX-512,
// AVX512-BF16, AMX; ONEDNN_MAX_CPU_ISA caps it). A primitive is created the first time a
// (shape, strides, alpha, beta, type, threads) is seen and kept for the life of the process,
// with its own memory objects and a shared user scratchpad, so a repeated product allocates
// nothing. Not thread-safe: call from one thread at a time (oneDNN threads inside with
// OpenMP, from the team size at the call).
#ifndef LORALAB_CPU_MATMUL_H
#define LORALAB_CPU_MATMUL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int bf16;          // A and B are bf16 (uint16_t); else fp32
    int c_bf16;        // C is bf16 (needs bf16 operands and beta = 0); else fp32
    int batch[2];      // batch dimensions (1 when unused)
    int M, N, K;
    float alpha, beta;
    // element strides {batch0, batch1, row, column} of A (M x K), B (K x N) and C (M x N)
    int64_t sa[4], sb[4], sc[4];
} Matmul;

// Runs the product (M, N > 0; K == 0 gives beta * C).
void cpu_matmul(const Matmul *mm, const void *A, const void *B, void *C);

// The 2-D case with BLAS conventions: op(A) M x K, op(B) K x N, row-major with row strides
// lda, ldb, ldc; trans_x = 1 reads X transposed.
void cpu_matmul_2d(int bf16, int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const void *A, int lda, const void *B, int ldb, float beta, float *C, int ldc);

// Counters since the process started: flops (2 M N K per product and batch) and seconds of
// wall time spent inside products.
void cpu_matmul_counters(double *flops, double *seconds);

// oneDNN's version and the instruction set its kernels use here, e.g. "oneDNN 2.6.3,
// AVX512-BF16 (avx512_core_bf16)". Static storage.
const char *cpu_matmul_isa(void);

// Primitives created so far (the cache's size; tests check that a repeated shape adds none).
int cpu_matmul_primitives(void);

#endif
