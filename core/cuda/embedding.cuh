// core/cuda/embedding.cuh — token + position embeddings and row gather / scatter of the
// CUDA backend. tokens and rows are device int arrays. Contracts: core/backend.h.
#ifndef LORALAB_CUDA_EMBEDDING_CUH
#define LORALAB_CUDA_EMBEDDING_CUH

void cuda_encoder_forward(float *out, const int *tokens, const float *wte, const float *wpe,
                          int B, int T, int C);
void cuda_encoder_backward(float *dwte, float *dwpe, const float *dout, const int *tokens,
                           int B, int T, int C);   // +=, either may be NULL
void cuda_gather_rows(float *out, const float *inp, const int *rows, int n, int C);
void cuda_scatter_add_rows(float *dinp, const float *dout, const int *rows, int n, int C);

#endif
