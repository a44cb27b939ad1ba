// core/cuda/attention.cuh — causal multi-head attention, CUDA backend. key_mask is a device
// (B, T) byte array or NULL. Contracts: core/backend.h (att stored before dropout, dropout
// element index = flat index into att, a query with no visible key outputs zeros).
#ifndef LORALAB_CUDA_ATTENTION_CUH
#define LORALAB_CUDA_ATTENTION_CUH

#include <stdint.h>

void cuda_attention_forward(float *out, float *att, const float *qkv, const uint8_t *key_mask,
                            int B, int T, int C, int NH, float dropout_p, uint64_t seed);
void cuda_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                             const float *att, const uint8_t *key_mask, int B, int T, int C,
                             int NH, float dropout_p, uint64_t seed);

// Decoding with a key/value cache (backend.h attention_decode): positions is a device array.
void cuda_attention_decode(float *out, const float *qkv, float *kcache, float *vcache,
                           const int *positions, int B, int Tmax, int C, int NH);

#endif
