// core/analysis.h — analysis of learned low-rank updates: the subspace
// similarity φ of the paper's Figures 3 and 4, and the amplification numbers of Table 7.
//
// Matrices are row-major float32 on the host; results are double. Every SVD goes through
// the backend's svd (inputs are copied to device memory and back), so this math is written
// once for every backend. Nothing here reads files or the store.
//
// Definitions (the paper's Section 7):
//   φ(A1, A2, i, j) = ‖U1^{(i)ᵀ} U2^{(j)}‖_F² / min(i, j) ∈ [0, 1], where U^{(i)} holds the
//     top-i right-singular vectors of A (A is r x k, so the vectors lie in R^k). It is 1 when
//     one span contains the other and 0 when they are orthogonal.
//     Expectation for independent uniformly random subspaces of dimensions i and j in R^k:
//     E‖P_i Q_j‖_F² = i j / k (each of the j orthonormal columns of Q keeps, in expectation,
//     the fraction i / k of its unit norm in the i-dimensional span), so E φ = max(i, j) / k.
//   Table 7, for ΔW and the base weight W of the same matrix (both d_out x d_in, [out, in]):
//     ‖ΔW‖_F, ‖W‖_F, and ‖Uᵀ W Vᵀ‖_F where U (d_out x r) and Vᵀ (r x d_in) are the top-r
//     left / right singular vectors of ΔW, of W, or of a random Gaussian matrix of the same
//     shape; amplification = ‖ΔW‖_F / ‖Uᵀ W Vᵀ‖_F with ΔW's own U, V.
//   Effective rank of singular values s_1..s_n (Roy & Vetterli 2007): exp(H(p)) with
//     p_i = s_i / Σ s and H(p) = -Σ p_i log p_i (0 log 0 = 0). 1 for a rank-1 matrix, n for n
//     equal singular values.
//
// Errors: a failed SVD (NaN or Inf input) returns -1 with err_set() naming the shape; shapes
// that break the definitions (rank 0, more vectors than the matrix has) are LAB_ASSERTs.
#ifndef LORALAB_ANALYSIS_H
#define LORALAB_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"

// Thin SVD of the host M x N matrix A through be->svd: A = U diag(S) Vt, K = min(M, N),
// U (M, K), S (K) descending, Vt (K, N), all host arrays of the caller. 0 or -1 (err_set).
int analysis_svd(const Backend *be, const float *A, int M, int N, float *U, float *S, float *Vt);

// φ(i, j) for i = 1..r1, j = 1..r2 from orthonormal rows: V1 (r1, k) and V2 (r2, k) hold the
// singular vectors in descending order. phi[(i-1) * r2 + (j-1)] = φ(i, j).
void analysis_phi_from_vectors(double *phi, const float *V1, int r1, const float *V2, int r2, int k);

// φ grid of two matrices A1 (n1, k) and A2 (n2, k) for i = 1..r1, j = 1..r2, where
// r1 <= min(n1, k) and r2 <= min(n2, k); phi as above (r1 * r2 values). 0 or -1 (err_set).
int analysis_phi(const Backend *be, double *phi, const float *A1, int n1, int r1,
                 const float *A2, int n2, int r2, int k);

// out[0..n) ~ N(0, 1), deterministic for seed (core/rng.h).
void analysis_gaussian(float *out, size_t n, uint64_t seed);

// The random baseline: the φ grid (i <= r1, j <= r2) of two Gaussian matrices (n1, k) and
// (n2, k), the first drawn from seed, the second from seed + 1. 0 or -1 (err_set).
int analysis_phi_random(const Backend *be, double *phi, int n1, int r1, int n2, int r2, int k,
                        uint64_t seed);

// Mean of φ(i, i) for i = 1..min(r1, r2).
double analysis_phi_diag_mean(const double *phi, int r1, int r2);

// dW (d_out, d_in) = scale * B A, with A (r, d_in) and B (d_out, r) as PEFT stores them.
void analysis_delta_w(float *dW, const float *A, const float *B, int d_out, int d_in, int r,
                      float scale);

// exp(entropy) of s[0..n) normalised to sum 1 (s_i >= 0). 0 when every s_i is 0.
double analysis_effective_rank(const double *s, int n);

// Frobenius norm of a host array, accumulated in double.
double analysis_frobenius(const float *x, size_t n);

// ‖Uᵀ W Vᵀ‖_F with U the first r columns of the row-major (d_out, ldu) matrix U and Vᵀ the
// first r rows of the row-major (·, d_in) matrix Vt; W is (d_out, d_in).
double analysis_proj_norm(const float *U, int ldu, const float *W, const float *Vt,
                          int d_out, int d_in, int r);

typedef struct {
    int rank;                  // r: singular directions used for U, V
    double norm_dw, norm_w;    // ‖ΔW‖_F, ‖W‖_F
    double norm_proj_dw;       // ‖Uᵀ W Vᵀ‖_F, U, V from ΔW
    double norm_proj_w;        // ... from W (= the norm of W's top-r singular values)
    double norm_proj_random;   // ... from a Gaussian matrix of W's shape
    double amplification;      // norm_dw / norm_proj_dw (INFINITY when the projection is 0)
    double effective_rank;     // of ΔW's top-r singular values
} Amplification;

// Table 7 numbers for dW and W (both d_out x d_in) at rank r <= min(d_out, d_in); the
// random matrix is drawn from seed. singular (may be NULL) receives ΔW's top-r singular
// values, descending. 0 or -1 (err_set).
int analysis_amplification(const Backend *be, Amplification *out, double *singular,
                           const float *dW, const float *W, int d_out, int d_in, int r,
                           uint64_t seed);

#endif
