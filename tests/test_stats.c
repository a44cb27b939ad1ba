// tests/test_stats.c — the statistics behind the reports, against values computed without
// this code: closed forms (I_x(2,3) as a binomial sum, the Cauchy cdf 1/2 + atan(t)/π for one
// degree of freedom), the t table's 97.5 % quantiles, and values computed independently with
// mpmath (numeric integration of the t density, mpmath.betainc) at 30 digits.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "harness/stats.h"

#define assert_near(a, b, tol) near_((a), (b), (tol), __LINE__)
static void near_(double a, double b, double tol, int line) {
    if (!(fabs(a - b) <= tol)) fail_msg("line %d: %.17g differs from %.17g by more than %g", line, a, b, tol);
}

static void test_betainc(void **state) {
    (void)state;
    // I_0.4(2, 3) = Σ_{j=2..4} C(4,j) 0.4^j 0.6^(4-j) = 0.3456 + 0.1536 + 0.0256
    assert_near(stats_betainc(2, 3, 0.4), 0.5248, 1e-14);
    assert_near(stats_betainc(0.5, 5, 0.2), 0.85507239459591959, 1e-13);
    assert_near(stats_betainc(30, 40, 0.45), 0.64474800855856811, 1e-12);   // the symmetric branch
    assert_near(stats_betainc(2, 3, 0), 0, 0);
    assert_near(stats_betainc(2, 3, 1), 1, 0);
}

static void test_t_cdf(void **state) {
    (void)state;
    assert_near(stats_t_cdf(0.3, 1), 0.5 + atan(0.3) / M_PI, 1e-14);   // Cauchy
    assert_near(stats_t_cdf(2.0, 10), 0.96330598261462982, 1e-13);
    assert_near(stats_t_cdf(-1.5, 3), 0.11529193262241153, 1e-13);
    assert_near(stats_t_cdf(0, 7), 0.5, 1e-15);
}

static void test_t_quantile(void **state) {
    (void)state;
    // two-sided 95 % critical values (any t table)
    static const struct { double df, q; } table[] = {
        {1, 12.706204736174705}, {2, 4.3026527297494639}, {4, 2.7764451051977944},
        {9, 2.2621571627982055}, {29, 2.0452296421327043}};
    for (int i = 0; i < 5; i++) {
        assert_near(stats_t_quantile(0.975, table[i].df), table[i].q, 1e-9 * table[i].q);
        assert_near(stats_t_quantile(0.025, table[i].df), -table[i].q, 1e-9 * table[i].q);
    }
    assert_near(stats_t_quantile(0.5, 3), 0, 0);
}

static void test_summary(void **state) {
    (void)state;
    double x[5] = {1, 2, NAN, 3, 4};   // mean 2.5, s = sqrt(5/3), CI 2.5 ± 3.182446 s / 2
    StatsSummary s = stats_summary(x, 5);
    assert_int_equal(s.n, 4);
    assert_near(s.mean, 2.5, 1e-15);
    assert_near(s.std, sqrt(5.0 / 3.0), 1e-14);
    double half = 3.1824463052837096 * sqrt(5.0 / 3.0) / 2;
    assert_near(s.lo, 2.5 - half, 1e-9);
    assert_near(s.hi, 2.5 + half, 1e-9);
    s = stats_summary(x, 1);   // one value: no interval
    assert_int_equal(s.n, 1);
    assert_near(s.std, 0, 0);
    assert_true(isnan(s.lo) && isnan(s.hi));
    s = stats_summary(x + 2, 1);
    assert_int_equal(s.n, 0);
    assert_true(isnan(s.mean));
}

static void test_paired(void **state) {
    (void)state;
    // differences 0.03, 0.02, 0.04, 0.01: mean 0.025, s 0.0129099, t 3.8729833, df 3
    double a[5] = {0.81, 0.79, 0.84, 0.80, NAN}, b[5] = {0.78, 0.77, 0.80, 0.79, 0.5};
    StatsPaired p = stats_paired(a, b, 5);
    assert_int_equal(p.n, 4);
    assert_near(p.mean, 0.025, 1e-12);
    assert_near(p.std, 0.012909944487358026, 1e-12);
    assert_near(p.t, 3.8729833462074252, 1e-9);
    assert_near(p.p, 0.030466291662170821, 1e-9);
    assert_near(p.lo, 0.004457397432394823, 1e-9);
    assert_near(p.hi, 0.045542602567605166, 1e-9);
    // the same difference in every pair: no spread, p 0; no difference at all: p 1
    double c[3] = {0.5, 0.6, 0.7}, e[3] = {0.4, 0.5, 0.6};
    p = stats_paired(c, e, 3);
    assert_near(p.std, 0, 1e-15);
    assert_true(isinf(p.t) && p.t > 0);
    assert_near(p.p, 0, 0);
    // one difference up to rounding: 0.95 - 0.85 and 0.55 - 0.45 differ by 5.6e-17 in
    // doubles, which is no spread, not t = 3.6e15
    double f[2] = {0.95, 0.55}, g[2] = {0.85, 0.45};
    p = stats_paired(f, g, 2);
    assert_near(p.std, 0, 0);
    assert_true(isinf(p.t) && p.t > 0);
    assert_near(p.p, 0, 0);
    assert_near(p.lo, p.mean, 0);
    assert_near(p.hi, p.mean, 0);
    p = stats_paired(c, c, 3);
    assert_near(p.t, 0, 0);
    assert_near(p.p, 1, 0);
    p = stats_paired(c, e, 1);   // one pair: nothing to test
    assert_true(isnan(p.p) && isnan(p.lo));
}

static void test_holm(void **state) {
    (void)state;
    // sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → kept monotone: 0.06
    double p[5] = {0.01, 0.04, 0.03, 0.005, NAN}, adj[5];
    stats_holm(p, 5, adj);
    assert_near(adj[0], 0.03, 1e-15);
    assert_near(adj[1], 0.06, 1e-15);
    assert_near(adj[2], 0.06, 1e-15);
    assert_near(adj[3], 0.02, 1e-15);
    assert_true(isnan(adj[4]));
    double big[2] = {0.6, 0.7};   // capped at 1
    stats_holm(big, 2, adj);
    assert_near(adj[0], 1, 0);
    assert_near(adj[1], 1, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_betainc), cmocka_unit_test(test_t_cdf), cmocka_unit_test(test_t_quantile),
        cmocka_unit_test(test_summary), cmocka_unit_test(test_paired), cmocka_unit_test(test_holm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
