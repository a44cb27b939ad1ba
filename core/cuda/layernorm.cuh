// core/cuda/layernorm.cuh — LayerNorm over the last dimension, CUDA backend.
// Contracts: core/backend.h (backward: dinp +=, dweight += and dbias += unless NULL).
#ifndef LORALAB_CUDA_LAYERNORM_CUH
#define LORALAB_CUDA_LAYERNORM_CUH

void cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, int N, int C, float eps);
void cuda_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *mean,
                             const float *rstd, int N, int C);

#endif
