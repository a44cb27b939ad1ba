// core/cuda/crossentropy.cu — softmax + cross-entropy (see crossentropy.cuh).
//
// One block per row. Forward: the row's max, then the sums of exp(l - max) and of l, and
//   loss = logsumexp(l) - (1 - eps) l_target - (eps / V) sum_v l_v
// (logsumexp in double, as on the CPU); only the logsumexp is kept. Backward overwrites the
// logits with their gradient, exp(l - lse) - target. A target < 0 gives loss 0; a target >= V
// is a programming error and traps the kernel (device assert), which the next CUDA call
// reports.
#include <assert.h>

#include "core/cuda/common.cuh"
#include "core/cuda/crossentropy.cuh"

enum { CE_BLOCK = 512 };

// ----------------------------------------------------------------------------
// kernels

__global__ void crossentropy_forward_kernel(float *losses, float *lse, const float *logits,
                                            int ldl, const int *targets, int V, float eps) {
    __shared__ float sh[32];
    int n = blockIdx.x;
    const float *l = logits + (size_t)n * ldl;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, l[v]);
    mx = block_max(mx, sh);
    float sum = 0.0f, lsum = 0.0f;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        sum += expf(l[v] - mx);
        lsum += l[v];
    }
    sum = block_sum(sum, sh);
    lsum = block_sum(lsum, sh);
    if (threadIdx.x == 0) {
        double row_lse = (double)mx + log((double)sum);
        lse[n] = (float)row_lse;
        int t = targets[n];
        if (t < 0) {
            losses[n] = 0.0f;
        } else {
            assert(t < V);
            losses[n] = (float)(row_lse - (1.0 - eps) * l[t] - (double)eps / V * lsum);
        }
    }
}

__global__ void crossentropy_backward_kernel(float *logits, int ldl, const float *lse,
                                             const int *targets, int V, float eps, float dloss) {
    int n = blockIdx.x;
    float *d = logits + (size_t)n * ldl;
    float s = lse[n];
    int t = targets[n];
    assert(t < V);
    float u = eps / V;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        if (t < 0) { d[v] = 0.0f; continue; }
        float g = dloss * (expf(d[v] - s) - u);
        if (v == t) g -= dloss * (1.0f - eps);
        d[v] = g;
    }
}

// ----------------------------------------------------------------------------
// launchers

void cuda_crossentropy_forward(float *losses, float *lse, const float *logits, int ldl,
                               const int *targets, int N, int V, float label_smoothing) {
    CUDA_ASSERT(N >= 0 && V > 0 && ldl >= V);
    if (!N) return;
    crossentropy_forward_kernel<<<N, CE_BLOCK>>>(losses, lse, logits, ldl, targets, V,
                                                 label_smoothing);
    KERNEL_CHECK();
}

void cuda_crossentropy_backward(float *logits, int ldl, const float *lse, const int *targets,
                                int N, int V, float label_smoothing, float dloss) {
    CUDA_ASSERT(N >= 0 && V > 0 && ldl >= V);
    if (!N) return;
    crossentropy_backward_kernel<<<N, CE_BLOCK>>>(logits, ldl, lse, targets, V,
                                                  label_smoothing, dloss);
    KERNEL_CHECK();
}
