// harness/stats.c — Student's t, confidence intervals, paired t-test, Holm. See stats.h.
#include "harness/stats.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "core/errors.h"

// The continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1) / (a + b + 2).
static double betacf(double a, double b, double x) {
    const double tiny = 1e-300, eps = 1e-16;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));   // even step
        d = 1 + aa * d; if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c; if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));   // odd step
        d = 1 + aa * d; if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c; if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < eps) break;
    }
    return h;
}

double stats_betainc(double a, double b, double x) {
    LAB_ASSERT(a > 0 && b > 0);
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    // x^a (1-x)^b / (a B(a, b)), in logs so that large a, b do not overflow
    double lfront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2)) return exp(lfront) * betacf(a, b, x) / a;
    return 1 - exp(lfront) * betacf(b, a, 1 - x) / b;   // the symmetry I_x(a,b) = 1 - I_{1-x}(b,a)
}

double stats_t_cdf(double t, double df) {
    LAB_ASSERT(df > 0);
    if (isnan(t)) return NAN;
    if (isinf(t)) return t > 0 ? 1 : 0;
    // P(|T| > |t|) = I_{df / (df + t²)}(df / 2, 1 / 2)
    double tail = 0.5 * stats_betainc(df / 2, 0.5, df / (df + t * t));
    return t > 0 ? 1 - tail : tail;
}

double stats_t_quantile(double p, double df) {
    LAB_ASSERT(p > 0 && p < 1 && df > 0);
    if (p == 0.5) return 0;
    if (p < 0.5) return -stats_t_quantile(1 - p, df);
    // bisection on the monotone cdf: bracket, then halve to the last bit
    double lo = 0, hi = 1;
    while (stats_t_cdf(hi, df) < p) { lo = hi; hi *= 2; }
    for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (stats_t_cdf(mid, df) < p) lo = mid; else hi = mid;
    }
    return 0.5 * (lo + hi);
}

StatsSummary stats_summary(const double *x, int n) {
    StatsSummary s = {0, NAN, NAN, NAN, NAN};
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) { sum += x[i]; s.n++; }
    if (s.n == 0) return s;
    s.mean = sum / s.n;
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) ss += (x[i] - s.mean) * (x[i] - s.mean);
    s.std = s.n > 1 ? sqrt(ss / (s.n - 1)) : 0.0;
    if (s.n > 1) {
        double half = stats_t_quantile(0.975, s.n - 1) * s.std / sqrt(s.n);
        s.lo = s.mean - half;
        s.hi = s.mean + half;
    }
    return s;
}

StatsPaired stats_paired(const double *a, const double *b, int n) {
    double *d = xmalloc(sizeof(double) * (size_t)(n + 1));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(a[i]) && !isnan(b[i])) d[m++] = a[i] - b[i];
    // the differences' spread, below what rounding a - b leaves (a few ulps of the values'
    // size), is none: 0.95 - 0.85 and 0.55 - 0.45 are one difference, not a t of 1e15
    double scale = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(a[i]) && !isnan(b[i])) scale = fmax(scale, fmax(fabs(a[i]), fabs(b[i])));
    StatsSummary s = stats_summary(d, m);
    free(d);
    if (s.n >= 2 && s.std <= 64 * DBL_EPSILON * scale) { s.std = 0; s.lo = s.hi = s.mean; }
    StatsPaired r = {s.n, s.mean, s.std, s.lo, s.hi, NAN, NAN};
    if (s.n < 2) return r;
    if (s.std == 0) {   // every pair differs by the same amount
        r.t = s.mean == 0 ? 0 : s.mean > 0 ? INFINITY : -INFINITY;
        r.p = s.mean == 0 ? 1 : 0;
        return r;
    }
    r.t = s.mean / (s.std / sqrt(s.n));
    r.p = 2 * stats_t_cdf(-fabs(r.t), s.n - 1);
    return r;
}

void stats_holm(const double *p, int m, double *adjusted) {
    int *order = xmalloc(sizeof(int) * (size_t)(m + 1)), k = 0;
    for (int i = 0; i < m; i++) {
        adjusted[i] = NAN;
        if (!isnan(p[i])) order[k++] = i;
    }
    // insertion sort by p (m is a handful of comparisons); ties keep their input order
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && p[order[j]] < p[order[j - 1]]; j--) { int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t; }
    double running = 0;
    for (int j = 0; j < k; j++) {
        double v = (k - j) * p[order[j]];
        if (v > 1) v = 1;
        if (v > running) running = v;
        adjusted[order[j]] = running;
    }
    free(order);
}
