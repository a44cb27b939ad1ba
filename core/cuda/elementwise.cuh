// core/cuda/elementwise.cuh — element-wise and per-column ops of the CUDA backend: bias,
// axpy / scale / add, sum of squares, GELU, dropout, AdamW. Contracts: core/backend.h.
#ifndef LORALAB_CUDA_ELEMENTWISE_CUH
#define LORALAB_CUDA_ELEMENTWISE_CUH

#include <stddef.h>
#include <stdint.h>

void cuda_bias_add(float *out, const float *bias, int N, int OC, int ldo);
void cuda_bias_backward(float *dbias, const float *dout, int N, int OC, int ldd);   // +=
void cuda_axpy(float *y, const float *x, float alpha, size_t n);
void cuda_scale(float *x, float alpha, size_t n);
void cuda_add(float *out, const float *a, const float *b, size_t n);
double cuda_sumsq(const float *x, size_t n);   // double accumulation; waits for the result
void cuda_gelu_forward(float *out, const float *inp, size_t n);
void cuda_gelu_backward(float *dinp, const float *inp, const uint16_t *dgelu_bf16, const float *dout, size_t n);
// out (or NULL) and out_bf16 (or NULL) = GELU(inp); dgelu_bf16 = GELU'(inp) rounded to bf16.
void cuda_gelu_bf16(float *out, uint16_t *out_bf16, uint16_t *dgelu_bf16, const float *inp, size_t n);
void cuda_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed);
void cuda_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed);
void cuda_adamw_update(float *param, const float *grad, float *m, float *v, size_t n,
                       float lr, float beta1, float beta2, float eps, float weight_decay, int t);

#endif
