// core/cuda/crossentropy.cuh — softmax + cross-entropy with ignored targets and label
// smoothing, CUDA backend. targets is a device int array. Contracts: core/backend.h.
#ifndef LORALAB_CUDA_CROSSENTROPY_CUH
#define LORALAB_CUDA_CROSSENTROPY_CUH

void cuda_crossentropy_forward(float *losses, float *probs, const float *logits, int ldl,
                               const int *targets, int N, int V, float label_smoothing);
void cuda_crossentropy_backward(float *dlogits, int ldl, const float *probs, const int *targets,
                                int N, int V, float label_smoothing, float dloss);

#endif
