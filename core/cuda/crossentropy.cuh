// core/cuda/crossentropy.cuh — softmax + cross-entropy with ignored targets and label
// smoothing, CUDA backend. targets is a device int array. Contracts: core/backend.h.
#ifndef LORALAB_CUDA_CROSSENTROPY_CUH
#define LORALAB_CUDA_CROSSENTROPY_CUH

void cuda_crossentropy_forward(float *losses, float *lse, const float *logits, int ldl,
                               const int *targets, int N, int V, float label_smoothing);
void cuda_crossentropy_backward(float *logits, int ldl, const float *lse, const int *targets,
                                int N, int V, float label_smoothing, float dloss);

#endif
