// tests/test_metrics.c — metrics against values worked out by hand in the comments.
// Every value was also checked once (not at test time) with scikit-learn 1.2.1
// (accuracy_score, f1_score, matthews_corrcoef), scipy 1.10.1 (pearsonr, spearmanr) and
// nltk 3.8 (corpus_bleu), whose outputs agree to the digits written here.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tasks/metrics.h"

#define TOL 1e-9

// ---- classification ----

// Binary, positive class 1:
//   gold 1 1 1 1 0 0 0 0 0 0
//   pred 1 1 1 0 1 1 0 0 0 0      TP 3, FN 1, FP 2, TN 4
// accuracy = (3 + 4) / 10 = 0.7
// F1(1) = 2 TP / (2 TP + FP + FN) = 6 / 9 = 2/3
// F1(0): TP 4, FP 1, FN 2 → 8 / 11; macro-F1 = (2/3 + 8/11) / 2 = 23/33
// MCC = (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (12 - 2) / sqrt(5*4*6*5)
//     = 10 / sqrt(600) = 0.408248290463863
static void test_binary_confusion(void **state) {
    (void)state;
    int gold[] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    int pred[] = {1, 1, 1, 0, 1, 1, 0, 0, 0, 0};
    assert_float_equal(metric_accuracy(pred, gold, 10), 0.7, TOL);
    assert_float_equal(metric_f1(pred, gold, 10, 1), 2.0 / 3.0, TOL);
    assert_float_equal(metric_f1(pred, gold, 10, 0), 8.0 / 11.0, TOL);
    assert_float_equal(metric_f1_macro(pred, gold, 10, 2), 23.0 / 33.0, TOL);
    assert_float_equal(metric_mcc(pred, gold, 10, 2), 10.0 / sqrt(600.0), TOL);
    assert_float_equal(metric_mcc(pred, gold, 10, 2), 0.408248290463863, 1e-12);
    // Swapping the class names changes neither MCC nor macro-F1.
    int g2[10], p2[10];
    for (int i = 0; i < 10; i++) { g2[i] = 1 - gold[i]; p2[i] = 1 - pred[i]; }
    assert_float_equal(metric_mcc(p2, g2, 10, 2), 10.0 / sqrt(600.0), TOL);
    assert_float_equal(metric_f1_macro(p2, g2, 10, 2), 23.0 / 33.0, TOL);
    // Perfect and inverted predictions: MCC 1 and -1.
    assert_float_equal(metric_mcc(gold, gold, 10, 2), 1.0, TOL);
    assert_float_equal(metric_mcc(g2, gold, 10, 2), -1.0, TOL);
}

// Degenerate cases score 0, as scikit-learn does: a constant predictor has MCC 0 (the
// denominator vanishes); F1 of a class never predicted nor present is 0.
static void test_degenerate(void **state) {
    (void)state;
    int gold[] = {0, 1, 0, 1}, pred[] = {1, 1, 1, 1};
    assert_float_equal(metric_mcc(pred, gold, 4, 2), 0.0, TOL);
    assert_float_equal(metric_accuracy(pred, gold, 4), 0.5, TOL);
    int zeros[] = {0, 0, 0, 0};
    assert_float_equal(metric_f1(zeros, zeros, 4, 1), 0.0, TOL);
}

// Three classes, Gorodkin's R_K = (c s - Σ p_k t_k) / sqrt((s² - Σ p_k²)(s² - Σ t_k²)).
// Case A: gold 0 0 0 1 1 1 2 2 2, pred 0 0 1 1 1 2 2 2 0:
//   c = 6, s = 9, t = (3,3,3), p = (3,3,3): (54 - 27) / sqrt(54 * 54) = 0.5
//   each class TP 2, FP 1, FN 1 → F1 2/3; macro 2/3
// Case B: gold 0 1 2 0 1 2 0 0, pred 0 2 2 0 1 1 1 0:
//   c = 5, s = 8, t = (4,2,2), p = (3,3,2): Σpt = 22, Σp² = 22, Σt² = 24
//   (40 - 22) / sqrt(42 * 40) = 18 / sqrt(1680) = 0.43915503282684
//   F1: class 0 TP 3 FP 0 FN 1 → 6/7; class 1 TP 1 FP 2 FN 1 → 2/5; class 2 TP 1 FP 1 FN 1
//   → 1/2; macro = (6/7 + 2/5 + 1/2) / 3 = 0.585714285714286; accuracy 5/8
static void test_multiclass(void **state) {
    (void)state;
    int ga[] = {0, 0, 0, 1, 1, 1, 2, 2, 2}, pa[] = {0, 0, 1, 1, 1, 2, 2, 2, 0};
    assert_float_equal(metric_mcc(pa, ga, 9, 3), 0.5, TOL);
    assert_float_equal(metric_f1_macro(pa, ga, 9, 3), 2.0 / 3.0, TOL);
    int gb[] = {0, 1, 2, 0, 1, 2, 0, 0}, pb[] = {0, 2, 2, 0, 1, 1, 1, 0};
    assert_float_equal(metric_mcc(pb, gb, 8, 3), 18.0 / sqrt(1680.0), TOL);
    assert_float_equal(metric_mcc(pb, gb, 8, 3), 0.43915503282684, 1e-12);
    assert_float_equal(metric_f1_macro(pb, gb, 8, 3), (6.0 / 7 + 0.4 + 0.5) / 3, TOL);
    assert_float_equal(metric_accuracy(pb, gb, 8), 5.0 / 8.0, TOL);
    // A class absent from gold and pred (3 of 4) is left out of the macro average:
    // gold 0 1 1 0, pred 0 1 2 2: F1 = 2/3, 2/3, 0 for classes 0, 1, 2 → 4/9.
    int gc[] = {0, 1, 1, 0}, pc[] = {0, 1, 2, 2};
    assert_float_equal(metric_f1_macro(pc, gc, 4, 4), 4.0 / 9.0, TOL);
}

// ---- regression ----

// x = 1 2 3 4 5, y = 2 4 5 4 5: means 3 and 4; dx = -2 -1 0 1 2, dy = -2 0 1 0 1
// Pearson = Σdxdy / sqrt(Σdx² Σdy²) = 6 / sqrt(10 * 6) = 0.774596669241483
// Spearman: ranks of y with ties averaged: 2→1, (4,4)→2.5, (5,5)→4.5 → 1 2.5 4.5 2.5 4.5;
// dy = -2 -0.5 1.5 -0.5 1.5; Σdxdy = 4 + 0.5 + 0 - 0.5 + 3 = 7; Σdy² = 9
// → 7 / sqrt(10 * 9) = 0.737864787372622
static void test_pearson_spearman(void **state) {
    (void)state;
    double x[] = {1, 2, 3, 4, 5}, y[] = {2, 4, 5, 4, 5};
    assert_float_equal(metric_pearson(x, y, 5), 6.0 / sqrt(60.0), TOL);
    assert_float_equal(metric_spearman(x, y, 5), 7.0 / sqrt(90.0), TOL);
    assert_float_equal(metric_spearman(x, y, 5), 0.737864787372622, 1e-12);
    // Spearman only sees order: a monotone transform of x changes nothing.
    double x3[] = {1, 8, 27, 64, 125};
    assert_float_equal(metric_spearman(x3, y, 5), 7.0 / sqrt(90.0), TOL);
    assert_true(fabs(metric_pearson(x3, y, 5) - 6.0 / sqrt(60.0)) > 1e-3);
    // Ties on both sides, unsorted (scipy.stats: pearsonr 0.2096553190730122,
    // spearmanr 0.19885368120992467).
    double a[] = {3, 1, 4, 1, 5, 9, 2, 6}, b[] = {2, 7, 1, 8, 2, 8, 1, 8};
    assert_float_equal(metric_pearson(a, b, 8), 0.2096553190730122, 1e-12);
    assert_float_equal(metric_spearman(a, b, 8), 0.19885368120992467, 1e-12);
    // Perfectly anti-correlated; a constant side gives 0.
    double d[] = {5, 4, 3, 2, 1}, c[] = {2, 2, 2, 2, 2};
    assert_float_equal(metric_pearson(x, d, 5), -1.0, TOL);
    assert_float_equal(metric_pearson(x, c, 5), 0.0, TOL);
    assert_float_equal(metric_spearman(x, c, 5), 0.0, TOL);
}

// ---- sequences ----

static MetricSeq seq_of(const char *s) {  // characters as token ids
    static int pool[4096];
    static size_t used;
    size_t n = strlen(s);
    if (used + n > 4096) used = 0;
    int *ids = pool + used;
    for (size_t i = 0; i < n; i++) ids[i] = (unsigned char)s[i];
    used += n;
    return (MetricSeq){ids, n};
}

static void test_edit_distance(void **state) {
    (void)state;
    // kitten → sitting: k→s, e→i, insert g = 3
    MetricSeq a = seq_of("kitten"), b = seq_of("sitting");
    assert_int_equal(metric_edit_distance(a.ids, a.n, b.ids, b.n), 3);
    assert_int_equal(metric_edit_distance(b.ids, b.n, a.ids, a.n), 3);
    // flaw → lawn: delete f, insert n = 2; empty → abc = 3; equal = 0
    MetricSeq c = seq_of("flaw"), d = seq_of("lawn"), e = seq_of("abc");
    assert_int_equal(metric_edit_distance(c.ids, c.n, d.ids, d.n), 2);
    assert_int_equal(metric_edit_distance(NULL, 0, e.ids, e.n), 3);
    assert_int_equal(metric_edit_distance(e.ids, e.n, NULL, 0), 3);
    assert_int_equal(metric_edit_distance(e.ids, e.n, e.ids, e.n), 0);
}

// Exact match against any reference; error rate = Σ edits / Σ reference lengths with the
// reference of fewest edits per example (ties: the longer one).
//   ex 1: hyp 1 2 3, refs {1 2 4 (1 edit, length 3), 1 2 3 4 (1 edit, length 4)} → 1 / 4
//   ex 2: hyp 5,     refs {6 7}  → substitute + insert = 2 / 2
//   ex 3: hyp 8 9,   refs {0, 8 9} → 0 / 2 (exact)
//   error rate = (1 + 2 + 0) / (4 + 2 + 2) = 3/8; exact match = 1/3
static void test_exact_match_error_rate(void **state) {
    (void)state;
    int h1[] = {1, 2, 3}, h2[] = {5}, h3[] = {8, 9};
    int r1a[] = {1, 2, 4}, r1b[] = {1, 2, 3, 4}, r2[] = {6, 7}, r3a[] = {0}, r3b[] = {8, 9};
    MetricSeq hyps[] = {{h1, 3}, {h2, 1}, {h3, 2}};
    MetricSeq refs1[] = {{r1a, 3}, {r1b, 4}}, refs2[] = {{r2, 2}}, refs3[] = {{r3a, 1}, {r3b, 2}};
    MetricRefs refs[] = {{refs1, 2}, {refs2, 1}, {refs3, 2}};
    assert_float_equal(metric_error_rate(hyps, refs, 3), 3.0 / 8.0, TOL);
    assert_float_equal(metric_exact_match(hyps, refs, 3), 1.0 / 3.0, TOL);
    // Empty hypothesis vs empty reference: a match with no edits.
    MetricSeq empty = {NULL, 0};
    MetricRefs er = {&empty, 1};
    assert_float_equal(metric_exact_match(&empty, &er, 1), 1.0, TOL);
    assert_float_equal(metric_error_rate(&empty, &er, 1), 0.0, TOL);
}

// Corpus BLEU-4 (whitespace words):
//   hyp 1 "the cat sat on the mat" (6); refs "the cat is on the mat" (6),
//         "there is a cat on the mat" (7)
//     1-grams: the×2 (clip 2: ref 1 has two), cat, on, mat; sat unmatched → 5/6
//     2-grams: the cat, on the, the mat; not cat sat, sat on → 3/5
//     3-grams: on the mat → 1/4;  4-grams: none → 0/3;  closest ref length 6
//   hyp 2 "we like green eggs and ham" (6); refs "we like green eggs and ham too" (7),
//         "i do not like them" (5): every n-gram is in ref 1 → 6/6, 5/5, 4/4, 3/3;
//         closest length: 7 and 5 are both 1 away → the shorter, 5
//   corpus: p = 11/12, 8/10, 5/8, 3/6; c = 12 > r = 11 → BP 1
//   BLEU = (11/12 · 0.8 · 0.625 · 0.5)^(1/4) = 0.2291667^(1/4) = 0.691891287615453
static void test_bleu(void **state) {
    (void)state;
    MetricWords *w = metric_words_new();
    MetricSeq hyps[2] = {metric_words_split(w, "the cat sat on the mat"),
                         metric_words_split(w, "  we like green\teggs and ham\n")};
    MetricSeq r1[2] = {metric_words_split(w, "the cat is on the mat"), metric_words_split(w, "there is a cat on the mat")};
    MetricSeq r2[2] = {metric_words_split(w, "we like green eggs and ham too"), metric_words_split(w, "i do not like them")};
    MetricRefs refs[2] = {{r1, 2}, {r2, 2}};
    BleuScore s = metric_bleu(hyps, refs, 2);
    assert_float_equal(s.precision[0], 11.0 / 12.0, TOL);
    assert_float_equal(s.precision[1], 8.0 / 10.0, TOL);
    assert_float_equal(s.precision[2], 5.0 / 8.0, TOL);
    assert_float_equal(s.precision[3], 3.0 / 6.0, TOL);
    assert_int_equal(s.hyp_len, 12);
    assert_int_equal(s.ref_len, 11);
    assert_float_equal(s.brevity_penalty, 1.0, TOL);
    assert_float_equal(s.bleu, pow(11.0 / 12.0 * 0.8 * 0.625 * 0.5, 0.25), TOL);
    assert_float_equal(s.bleu, 0.691891287615453, 1e-12);
    // The first sentence alone has no 4-gram match: BLEU 0 (no smoothing).
    assert_float_equal(metric_bleu(hyps, refs, 1).bleu, 0.0, TOL);

    // Brevity: hyp "a b c d" (4) vs "a b c d e f" (6): all p_n = 1, BP = exp(1 - 6/4).
    MetricSeq h3 = metric_words_split(w, "a b c d"), r3 = metric_words_split(w, "a b c d e f");
    MetricRefs refs3 = {&r3, 1};
    s = metric_bleu(&h3, &refs3, 1);
    assert_float_equal(s.brevity_penalty, exp(-0.5), TOL);
    assert_float_equal(s.bleu, 0.606530659712633, 1e-12);
    // Closest length tie (5 and 3 are both 1 from 4) takes the shorter: r = 3 < c, BP 1.
    MetricSeq r4[2] = {metric_words_split(w, "a b c d e"), metric_words_split(w, "a b c")};
    MetricRefs refs4 = {r4, 2};
    s = metric_bleu(&h3, &refs4, 1);
    assert_int_equal(s.ref_len, 3);
    assert_float_equal(s.bleu, 1.0, TOL);
    // Clipping: "the the the the" vs "the cat": p1 = 1/4 (the clipped to 1), no 2-gram → 0.
    MetricSeq h5 = metric_words_split(w, "the the the the"), r5 = metric_words_split(w, "the cat");
    MetricRefs refs5 = {&r5, 1};
    s = metric_bleu(&h5, &refs5, 1);
    assert_float_equal(s.precision[0], 0.25, TOL);
    assert_float_equal(s.bleu, 0.0, TOL);
    metric_words_free(w);
}

// ROUGE F1, averaged over examples:
//   ex 1: hyp "the cat sat on the mat", ref "the cat is on the mat" (6 words each)
//     R1: overlap the×2, cat, on, mat = 5 → P = R = 5/6 → F 5/6
//     R2: bigrams the cat, on the, the mat shared of 5 each → 3/5
//     RL: LCS "the cat on the mat" = 5 → 5/6
//   ex 2: hyp "a b", refs {"b a c", "x y"}: the first is the best for every measure
//     R1: overlap 2, P = 1, R = 2/3 → F = 0.8;  R2: "a b" not in {"b a", "a c"} → 0
//     RL: LCS 1, P = 1/2, R = 1/3 → F = 0.4
//   averages: R1 (5/6 + 0.8) / 2, R2 0.3, RL (5/6 + 0.4) / 2
static void test_rouge(void **state) {
    (void)state;
    MetricWords *w = metric_words_new();
    MetricSeq hyps[2] = {metric_words_split(w, "the cat sat on the mat"), metric_words_split(w, "a b")};
    MetricSeq r1 = metric_words_split(w, "the cat is on the mat");
    MetricSeq r2[2] = {metric_words_split(w, "x y"), metric_words_split(w, "b a c")};
    MetricRefs refs[2] = {{&r1, 1}, {r2, 2}};
    RougeScore s = metric_rouge(hyps, refs, 1);
    assert_float_equal(s.rouge1, 5.0 / 6.0, TOL);
    assert_float_equal(s.rouge2, 0.6, TOL);
    assert_float_equal(s.rougeL, 5.0 / 6.0, TOL);
    s = metric_rouge(hyps, refs, 2);
    assert_float_equal(s.rouge1, (5.0 / 6.0 + 0.8) / 2, TOL);
    assert_float_equal(s.rouge2, 0.3, TOL);
    assert_float_equal(s.rougeL, (5.0 / 6.0 + 0.4) / 2, TOL);
    metric_words_free(w);
}

// Interning: same word, same id, across sequences; any whitespace separates.
static void test_words(void **state) {
    (void)state;
    MetricWords *w = metric_words_new();
    MetricSeq a = metric_words_split(w, "  HH AH0\tL OW1\n");
    MetricSeq b = metric_words_split(w, "OW1 HH");
    MetricSeq e = metric_words_split(w, " \t\n");
    assert_int_equal(a.n, 4);
    assert_int_equal(b.n, 2);
    assert_int_equal(e.n, 0);
    assert_int_equal(b.ids[0], a.ids[3]);
    assert_int_equal(b.ids[1], a.ids[0]);
    assert_int_not_equal(a.ids[0], a.ids[1]);
    // Many distinct words (the map grows) keep distinct, stable ids.
    char buf[32];
    int first = -1;
    for (int i = 0; i < 5000; i++) {
        snprintf(buf, sizeof buf, "w%d", i);
        MetricSeq s = metric_words_split(w, buf);
        if (i == 0) first = s.ids[0];
    }
    MetricSeq again = metric_words_split(w, "w0 w4999 HH");
    assert_int_equal(again.ids[0], first);
    assert_int_equal(again.ids[2], a.ids[0]);
    assert_int_not_equal(again.ids[1], first);
    metric_words_free(w);
}

// ---- the metric table ----

// Every MetricId has its entry, found by its name, with exactly the function its input takes.
static void test_table_complete(void **state) {
    (void)state;
    for (int i = 0; i < METRIC_COUNT; i++) {
        const MetricInfo *m = &METRIC_TABLE[i];
        assert_non_null(m->name);
        assert_ptr_equal(metric_find(m->name), m);
        assert_int_equal(m->of_labels != NULL, m->input == METRIC_OF_LABELS);
        assert_int_equal(m->of_values != NULL, m->input == METRIC_OF_VALUES);
        assert_int_equal(m->of_text != NULL, m->input == METRIC_OF_TEXT);
    }
    assert_null(metric_find("no_such_metric"));
    assert_null(metric_find(NULL));
}

// Error rates (wer included), MSE and the loss rank lower-is-better: of two validation
// values the smaller one is kept as the best state; every other metric keeps the larger.
static void test_lower_is_better(void **state) {
    (void)state;
    const char *lower[] = {"wer", "per", "error_rate", "mse", "loss"};
    for (int i = 0; i < 5; i++) {
        assert_true(metric_lower_is_better(lower[i]));
        assert_true(metric_score(lower[i], 0.1) > metric_score(lower[i], 0.2));
    }
    const char *higher[] = {"accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman",
                            "exact_match", "bleu", "rouge1", "rouge2", "rougeL"};
    for (int i = 0; i < 11; i++) {
        assert_false(metric_lower_is_better(higher[i]));
        assert_true(metric_score(higher[i], 0.2) > metric_score(higher[i], 0.1));
    }
    assert_false(metric_lower_is_better("no_such_metric"));
    assert_false(metric_lower_is_better(NULL));
    // wer and per score a hypothesis the same way: one substitution in four reference words
    int ref[] = {1, 2, 3, 4}, hyp[] = {1, 2, 9, 4};
    MetricSeq r = {ref, 4}, h = {hyp, 4};
    MetricRefs rs = {&r, 1};
    assert_float_equal(metric_find("wer")->of_text(&h, &rs, 1), 0.25, TOL);
    assert_float_equal(metric_find("per")->of_text(&h, &rs, 1), 0.25, TOL);
    double gold[] = {1, 2, 3}, pred[] = {2, 2, 1};   // MSE = (1 + 0 + 4) / 3
    assert_float_equal(metric_mse(pred, gold, 3), 5.0 / 3.0, TOL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_confusion),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_multiclass),
        cmocka_unit_test(test_pearson_spearman),
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_exact_match_error_rate),
        cmocka_unit_test(test_bleu),
        cmocka_unit_test(test_rouge),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_table_complete),
        cmocka_unit_test(test_lower_is_better),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
