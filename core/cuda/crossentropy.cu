// core/cuda/crossentropy.cu — softmax + cross-entropy (see crossentropy.cuh).
//
// One block per row. Forward: the row's max, then e = exp(l - max) into probs with the sums
// of e and of l, then probs /= sum, and
//   loss = logsumexp(l) - (1 - eps) l_target - (eps / V) sum_v l_v
// (logsumexp in double, as on the CPU). A target < 0 gives loss 0; a target >= V is a
// programming error and traps the kernel (device assert), which the next CUDA call reports.
#include <assert.h>

#include "core/cuda/common.cuh"
#include "core/cuda/crossentropy.cuh"

enum { CE_BLOCK = 512 };

// ----------------------------------------------------------------------------
// kernels

__global__ void crossentropy_forward_kernel(float *losses, float *probs, const float *logits,
                                            int ldl, const int *targets, int V, float eps) {
    __shared__ float sh[32];
    int n = blockIdx.x;
    const float *l = logits + (size_t)n * ldl;
    float *p = probs + (size_t)n * V;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, l[v]);
    mx = block_max(mx, sh);
    float sum = 0.0f, lsum = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float e = expf(l[v] - mx);
        p[v] = e;
        sum += e;
        lsum += l[v];
    }
    sum = block_sum(sum, sh);
    lsum = block_sum(lsum, sh);
    float inv = 1.0f / sum;
    for (int v = threadIdx.x; v < V; v += blockDim.x) p[v] *= inv;
    if (threadIdx.x == 0) {
        int t = targets[n];
        if (t < 0) {
            losses[n] = 0.0f;
        } else {
            assert(t < V);
            double lse = (double)mx + log((double)sum);
            losses[n] = (float)(lse - (1.0 - eps) * l[t] - (double)eps / V * lsum);
        }
    }
}

__global__ void crossentropy_backward_kernel(float *dlogits, int ldl, const float *probs,
                                             const int *targets, int V, float eps, float dloss) {
    int n = blockIdx.x;
    float *d = dlogits + (size_t)n * ldl;
    const float *p = probs + (size_t)n * V;
    int t = targets[n];
    assert(t < V);
    float u = eps / V;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        if (t < 0) { d[v] = 0.0f; continue; }
        float g = dloss * (p[v] - u);
        if (v == t) g -= dloss * (1.0f - eps);
        d[v] = g;
    }
}

// ----------------------------------------------------------------------------
// launchers

void cuda_crossentropy_forward(float *losses, float *probs, const float *logits, int ldl,
                               const int *targets, int N, int V, float label_smoothing) {
    CUDA_ASSERT(N >= 0 && V > 0 && ldl >= V);
    if (!N) return;
    crossentropy_forward_kernel<<<N, CE_BLOCK>>>(losses, probs, logits, ldl, targets, V,
                                                 label_smoothing);
    KERNEL_CHECK();
}

void cuda_crossentropy_backward(float *dlogits, int ldl, const float *probs, const int *targets,
                                int N, int V, float label_smoothing, float dloss) {
    CUDA_ASSERT(N >= 0 && V > 0 && ldl >= V);
    if (!N) return;
    crossentropy_backward_kernel<<<N, CE_BLOCK>>>(dlogits, ldl, probs, targets, V,
                                                  label_smoothing, dloss);
    KERNEL_CHECK();
}
