// core/analysis.c — subspace similarity φ and Table 7's amplification. See analysis.h.
#include "core/analysis.h"

#include <math.h>
#include <string.h>

#include "core/errors.h"
#include "core/rng.h"

// ----------------------------------------------------------------------------
// SVD through the backend

int analysis_svd(const Backend *be, const float *A, int M, int N, float *U, float *S, float *Vt) {
    LAB_ASSERT(be && A && U && S && Vt && M > 0 && N > 0);
    int K = M < N ? M : N;
    size_t na = (size_t)M * N, nu = (size_t)M * K, nv = (size_t)K * N;
    float *dA = be->alloc(na * sizeof(float));
    float *dU = be->alloc(nu * sizeof(float));
    float *dS = be->alloc((size_t)K * sizeof(float));
    float *dV = be->alloc(nv * sizeof(float));
    be->to_device(dA, A, na * sizeof(float));
    int rc = be->svd(dA, M, N, dU, dS, dV);
    if (rc == 0) {
        be->to_host(U, dU, nu * sizeof(float));
        be->to_host(S, dS, (size_t)K * sizeof(float));
        be->to_host(Vt, dV, nv * sizeof(float));
        be->synchronize();
    }
    be->free(dA);
    be->free(dU);
    be->free(dS);
    be->free(dV);
    if (rc) return err_set("SVD of a %d x %d matrix failed (%s backend; NaN or Inf in the input?)",
                           M, N, be->name);
    return 0;
}

// ----------------------------------------------------------------------------
// subspace similarity

void analysis_phi_from_vectors(double *phi, const float *V1, int r1, const float *V2, int r2, int k) {
    LAB_ASSERT(phi && V1 && V2 && r1 > 0 && r2 > 0 && k > 0);
    // g2[a][b] = (v1_a · v2_b)²; φ(i, j) sums the top-left i x j block (2-D prefix sums).
    double *g2 = xmalloc((size_t)r1 * r2 * sizeof(double));
    for (int a = 0; a < r1; a++)
        for (int b = 0; b < r2; b++) {
            double dot = 0.0;
            const float *x = V1 + (size_t)a * k, *y = V2 + (size_t)b * k;
            for (int c = 0; c < k; c++) dot += (double)x[c] * y[c];
            g2[(size_t)a * r2 + b] = dot * dot;
        }
    // cumulative sums in place: after this, g2[a][b] = Σ_{a' <= a, b' <= b}
    for (int a = 0; a < r1; a++)
        for (int b = 0; b < r2; b++) {
            double v = g2[(size_t)a * r2 + b];
            if (a > 0) v += g2[(size_t)(a - 1) * r2 + b];
            if (b > 0) v += g2[(size_t)a * r2 + b - 1];
            if (a > 0 && b > 0) v -= g2[(size_t)(a - 1) * r2 + b - 1];
            g2[(size_t)a * r2 + b] = v;
        }
    for (int i = 1; i <= r1; i++)
        for (int j = 1; j <= r2; j++)
            phi[(size_t)(i - 1) * r2 + (j - 1)] = g2[(size_t)(i - 1) * r2 + (j - 1)] / (i < j ? i : j);
    free(g2);
}

// Top-r right-singular vectors of A (n, k) into V (r, k).
static int right_vectors(const Backend *be, float *V, const float *A, int n, int k, int r) {
    int K = n < k ? n : k;
    LAB_ASSERT(r >= 1 && r <= K);
    float *U = xmalloc((size_t)n * K * sizeof(float));
    float *S = xmalloc((size_t)K * sizeof(float));
    float *Vt = xmalloc((size_t)K * k * sizeof(float));
    int rc = analysis_svd(be, A, n, k, U, S, Vt);
    if (rc == 0) memcpy(V, Vt, (size_t)r * k * sizeof(float));
    free(U);
    free(S);
    free(Vt);
    return rc;
}

int analysis_phi(const Backend *be, double *phi, const float *A1, int n1, int r1,
                 const float *A2, int n2, int r2, int k) {
    float *V1 = xmalloc((size_t)r1 * k * sizeof(float));
    float *V2 = xmalloc((size_t)r2 * k * sizeof(float));
    int rc = right_vectors(be, V1, A1, n1, k, r1);
    if (rc == 0) rc = right_vectors(be, V2, A2, n2, k, r2);
    if (rc == 0) analysis_phi_from_vectors(phi, V1, r1, V2, r2, k);
    free(V1);
    free(V2);
    return rc;
}

void analysis_gaussian(float *out, size_t n, uint64_t seed) {
    Rng rng = rng_seeded(seed);
    for (size_t i = 0; i < n; i++) out[i] = (float)rng_normal(&rng);
}

int analysis_phi_random(const Backend *be, double *phi, int n1, int r1, int n2, int r2, int k,
                        uint64_t seed) {
    float *A1 = xmalloc((size_t)n1 * k * sizeof(float));
    float *A2 = xmalloc((size_t)n2 * k * sizeof(float));
    analysis_gaussian(A1, (size_t)n1 * k, seed);
    analysis_gaussian(A2, (size_t)n2 * k, seed + 1);
    int rc = analysis_phi(be, phi, A1, n1, r1, A2, n2, r2, k);
    free(A1);
    free(A2);
    return rc;
}

double analysis_phi_diag_mean(const double *phi, int r1, int r2) {
    int n = r1 < r2 ? r1 : r2;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += phi[(size_t)i * r2 + i];
    return n > 0 ? sum / n : NAN;
}

// ----------------------------------------------------------------------------
// Table 7

void analysis_delta_w(float *dW, const float *A, const float *B, int d_out, int d_in, int r,
                      float scale) {
    LAB_ASSERT(dW && A && B && d_out > 0 && d_in > 0 && r > 0);
    double *row = xmalloc((size_t)d_in * sizeof(double));
    for (int o = 0; o < d_out; o++) {
        memset(row, 0, (size_t)d_in * sizeof(double));
        for (int a = 0; a < r; a++) {
            double b = B[(size_t)o * r + a];
            const float *arow = A + (size_t)a * d_in;
            for (int i = 0; i < d_in; i++) row[i] += b * arow[i];
        }
        for (int i = 0; i < d_in; i++) dW[(size_t)o * d_in + i] = (float)(scale * row[i]);
    }
    free(row);
}

double analysis_effective_rank(const double *s, int n) {
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        LAB_ASSERT(s[i] >= 0.0);
        total += s[i];
    }
    if (total <= 0.0) return 0.0;
    double h = 0.0;
    for (int i = 0; i < n; i++) {
        double p = s[i] / total;
        if (p > 0.0) h -= p * log(p);
    }
    return exp(h);
}

double analysis_frobenius(const float *x, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    return sqrt(sum);
}

double analysis_proj_norm(const float *U, int ldu, const float *W, const float *Vt,
                          int d_out, int d_in, int r) {
    LAB_ASSERT(U && W && Vt && r >= 1 && r <= ldu);
    // T = U_rᵀ W (r, d_in), then ‖T Vt_rᵀ‖_F
    double *T = xcalloc((size_t)r * d_in, sizeof(double));
    for (int o = 0; o < d_out; o++) {
        const float *wrow = W + (size_t)o * d_in;
        for (int a = 0; a < r; a++) {
            double u = U[(size_t)o * ldu + a];
            double *trow = T + (size_t)a * d_in;
            for (int i = 0; i < d_in; i++) trow[i] += u * wrow[i];
        }
    }
    double sum = 0.0;
    for (int a = 0; a < r; a++)
        for (int b = 0; b < r; b++) {
            double p = 0.0;
            const float *v = Vt + (size_t)b * d_in;
            for (int i = 0; i < d_in; i++) p += T[(size_t)a * d_in + i] * v[i];
            sum += p * p;
        }
    free(T);
    return sqrt(sum);
}

// ‖Uᵀ W Vᵀ‖_F with U, V the top-r singular vectors of X (d_out, d_in); sv (may be NULL)
// receives X's top-r singular values.
static int proj_by(const Backend *be, double *norm, double *sv, const float *X, const float *W,
                   int d_out, int d_in, int r) {
    int K = d_out < d_in ? d_out : d_in;
    float *U = xmalloc((size_t)d_out * K * sizeof(float));
    float *S = xmalloc((size_t)K * sizeof(float));
    float *Vt = xmalloc((size_t)K * d_in * sizeof(float));
    int rc = analysis_svd(be, X, d_out, d_in, U, S, Vt);
    if (rc == 0) {
        *norm = analysis_proj_norm(U, K, W, Vt, d_out, d_in, r);
        if (sv)
            for (int a = 0; a < r; a++) sv[a] = S[a];
    }
    free(U);
    free(S);
    free(Vt);
    return rc;
}

int analysis_amplification(const Backend *be, Amplification *out, double *singular,
                           const float *dW, const float *W, int d_out, int d_in, int r,
                           uint64_t seed) {
    LAB_ASSERT(out && dW && W && r >= 1 && r <= (d_out < d_in ? d_out : d_in));
    size_t n = (size_t)d_out * d_in;
    Amplification a = {.rank = r};
    a.norm_dw = analysis_frobenius(dW, n);
    a.norm_w = analysis_frobenius(W, n);
    double *sv = xmalloc((size_t)r * sizeof(double));
    float *G = xmalloc(n * sizeof(float));
    analysis_gaussian(G, n, seed);
    int rc = proj_by(be, &a.norm_proj_dw, sv, dW, W, d_out, d_in, r);
    if (rc == 0) rc = proj_by(be, &a.norm_proj_w, NULL, W, W, d_out, d_in, r);
    if (rc == 0) rc = proj_by(be, &a.norm_proj_random, NULL, G, W, d_out, d_in, r);
    if (rc == 0) {
        a.amplification = a.norm_proj_dw > 0.0 ? a.norm_dw / a.norm_proj_dw : INFINITY;
        a.effective_rank = analysis_effective_rank(sv, r);
        if (singular) memcpy(singular, sv, (size_t)r * sizeof(double));
        *out = a;
    }
    free(sv);
    free(G);
    return rc;
}
