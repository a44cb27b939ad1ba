// harness/stats.h — the statistics the reports print: Student's t distribution (through the
// regularized incomplete beta function), per-cell summaries with a 95 % t confidence
// interval, the paired t-test, and Holm's step-down adjustment for several comparisons.
//
// Conventions: standard deviations are sample ones (divisor n - 1); confidence intervals are
// two-sided, mean ± t(0.975, n - 1) · s / √n; p-values are two-sided. NaN inputs are skipped.
// Where a quantity is undefined (n < 2 for a CI) it is NAN.
#ifndef LORALAB_STATS_H
#define LORALAB_STATS_H

// I_x(a, b), the regularized incomplete beta function, a, b > 0, 0 <= x <= 1.
double stats_betainc(double a, double b, double x);
// P(T <= t) for Student's t with df > 0 degrees of freedom.
double stats_t_cdf(double t, double df);
// The p-quantile of Student's t (0 < p < 1): stats_t_cdf(q, df) = p.
double stats_t_quantile(double p, double df);

typedef struct {
    int n;              // values that were not NaN
    double mean, std;   // std: sample (n - 1); 0 when n == 1; NAN when n == 0
    double lo, hi;      // 95 % t confidence interval of the mean; NAN when n < 2
} StatsSummary;
StatsSummary stats_summary(const double *x, int n);

typedef struct {
    int n;              // pairs where both values are present
    double mean, std;   // of the differences a - b
    double lo, hi;      // 95 % t confidence interval of the mean difference (NAN: n < 2)
    double t, p;        // paired t statistic and its two-sided p-value (NAN: n < 2)
} StatsPaired;
// a[i] and b[i] are one pair (the same seed); a pair with a NaN is skipped. When every
// difference is the same (up to the rounding of a - b: a spread of at most 64 ulps of the
// largest |a|, |b|), the std is 0: t is ±inf and p 0 (or t 0, p 1 for no difference).
StatsPaired stats_paired(const double *a, const double *b, int n);

// Holm's step-down adjusted p-values of m tests: the i-th smallest p becomes
// max over j <= i of min(1, (m - j) · p_(j)) (j from 0). NaN p-values stay NaN and do not
// count in m.
void stats_holm(const double *p, int m, double *adjusted);

#endif
