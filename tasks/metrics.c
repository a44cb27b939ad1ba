// tasks/metrics.c — evaluation metrics. See metrics.h for the definitions.
#include "tasks/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

// ---------------------------------------------------------------------------------------
// classification

double metric_accuracy(const int *pred, const int *gold, size_t n) {
    LAB_ASSERT(n > 0);
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) correct += pred[i] == gold[i];
    return (double)correct / (double)n;
}

static double f1_of(size_t tp, size_t fp, size_t fn) {
    size_t den = 2 * tp + fp + fn;
    return den ? 2.0 * (double)tp / (double)den : 0.0;
}

double metric_f1(const int *pred, const int *gold, size_t n, int positive) {
    LAB_ASSERT(n > 0);
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        int p = pred[i] == positive, g = gold[i] == positive;
        tp += p && g; fp += p && !g; fn += !p && g;
    }
    return f1_of(tp, fp, fn);
}

// Per-class true positives and predicted / true counts.
static void class_counts(const int *pred, const int *gold, size_t n, int k, size_t *tp, size_t *npred, size_t *ntrue) {
    memset(tp, 0, (size_t)k * sizeof *tp);
    memset(npred, 0, (size_t)k * sizeof *npred);
    memset(ntrue, 0, (size_t)k * sizeof *ntrue);
    for (size_t i = 0; i < n; i++) {
        LAB_ASSERT(pred[i] >= 0 && pred[i] < k && gold[i] >= 0 && gold[i] < k);
        npred[pred[i]]++;
        ntrue[gold[i]]++;
        tp[gold[i]] += pred[i] == gold[i];
    }
}

double metric_f1_macro(const int *pred, const int *gold, size_t n, int n_classes) {
    LAB_ASSERT(n > 0 && n_classes > 0);
    size_t *tp = xmalloc(3 * (size_t)n_classes * sizeof *tp), *np = tp + n_classes, *nt = np + n_classes;
    class_counts(pred, gold, n, n_classes, tp, np, nt);
    double sum = 0;
    int present = 0;
    for (int k = 0; k < n_classes; k++) {
        if (!np[k] && !nt[k]) continue;
        sum += f1_of(tp[k], np[k] - tp[k], nt[k] - tp[k]);
        present++;
    }
    free(tp);
    return sum / present;
}

double metric_mcc(const int *pred, const int *gold, size_t n, int n_classes) {
    LAB_ASSERT(n > 0 && n_classes > 0);
    size_t *tp = xmalloc(3 * (size_t)n_classes * sizeof *tp), *np = tp + n_classes, *nt = np + n_classes;
    class_counts(pred, gold, n, n_classes, tp, np, nt);
    double c = 0, s = (double)n, pt = 0, pp = 0, tt = 0;
    for (int k = 0; k < n_classes; k++) {
        c += (double)tp[k];
        pt += (double)np[k] * (double)nt[k];
        pp += (double)np[k] * (double)np[k];
        tt += (double)nt[k] * (double)nt[k];
    }
    free(tp);
    double den = (s * s - pp) * (s * s - tt);
    return den > 0 ? (c * s - pt) / sqrt(den) : 0.0;
}

// ---------------------------------------------------------------------------------------
// regression

double metric_pearson(const double *x, const double *y, size_t n) {
    LAB_ASSERT(n > 0);
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= (double)n; my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
    }
    if (sxx <= 0 || syy <= 0) return 0.0;
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;  // rounding can step just outside
}

typedef struct {
    double value;
    size_t index;
} Ranked;

static int by_value(const void *a, const void *b) {
    double x = ((const Ranked *)a)->value, y = ((const Ranked *)b)->value;
    return (x > y) - (x < y);
}

// Ranks 1..n of v, ties sharing the mean of the ranks they span.
static void ranks_of(const double *v, size_t n, double *rank) {
    Ranked *order = xmalloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = (Ranked){v[i], i};
    qsort(order, n, sizeof *order, by_value);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && order[j + 1].value == order[i].value) j++;
        double mean = (double)(i + j) / 2.0 + 1.0;  // ranks i+1 .. j+1
        for (size_t k = i; k <= j; k++) rank[order[k].index] = mean;
        i = j + 1;
    }
    free(order);
}

double metric_spearman(const double *x, const double *y, size_t n) {
    LAB_ASSERT(n > 0);
    double *rx = xmalloc(2 * n * sizeof *rx), *ry = rx + n;
    ranks_of(x, n, rx);
    ranks_of(y, n, ry);
    double r = metric_pearson(rx, ry, n);
    free(rx);
    return r;
}

// ---------------------------------------------------------------------------------------
// sequences

static int seq_equal(const MetricSeq *a, const MetricSeq *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->ids, b->ids, a->n * sizeof *a->ids));
}

double metric_exact_match(const MetricSeq *hyps, const MetricRefs *refs, size_t n) {
    LAB_ASSERT(n > 0);
    size_t hits = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < refs[i].nrefs; r++)
            if (seq_equal(&hyps[i], &refs[i].refs[r])) { hits++; break; }
    return (double)hits / (double)n;
}

size_t metric_edit_distance(const int *a, size_t na, const int *b, size_t nb) {
    size_t *row = xmalloc((nb + 1) * sizeof *row);  // row[j]: distance of a[0..i) to b[0..j)
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];  // distance of a[0..i-1) to b[0..j-1)
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[nb];
    free(row);
    return d;
}

double metric_error_rate(const MetricSeq *hyps, const MetricRefs *refs, size_t n) {
    LAB_ASSERT(n > 0);
    size_t edits = 0, length = 0;
    for (size_t i = 0; i < n; i++) {
        LAB_ASSERT(refs[i].nrefs > 0);
        size_t best = SIZE_MAX, best_len = 0;
        for (size_t r = 0; r < refs[i].nrefs; r++) {
            const MetricSeq *ref = &refs[i].refs[r];
            size_t d = metric_edit_distance(hyps[i].ids, hyps[i].n, ref->ids, ref->n);
            if (d < best || (d == best && ref->n > best_len)) { best = d; best_len = ref->n; }
        }
        edits += best;
        length += best_len;
    }
    if (length == 0) return edits ? 1.0 : 0.0;
    return (double)edits / (double)length;
}

// An n-gram of at most 4 word ids, the unused tail zero; ordered lexicographically.
typedef struct {
    int w[4];
} Gram;

static int gram_cmp(const void *a, const void *b) {
    const Gram *x = a, *y = b;
    for (int k = 0; k < 4; k++)
        if (x->w[k] != y->w[k]) return x->w[k] < y->w[k] ? -1 : 1;
    return 0;
}

// The *n n-grams of s of the given order, sorted (the caller frees).
static Gram *sorted_grams(const MetricSeq *s, size_t order, size_t *n) {
    *n = s->n >= order ? s->n - order + 1 : 0;
    Gram *g = xcalloc(*n ? *n : 1, sizeof *g);
    for (size_t i = 0; i < *n; i++) memcpy(g[i].w, s->ids + i, order * sizeof *s->ids);
    qsort(g, *n, sizeof *g, gram_cmp);
    return g;
}

// End of the run of n-grams equal to g[i] in sorted g[0..n).
static size_t gram_run_end(const Gram *g, size_t n, size_t i) {
    size_t e = i + 1;
    while (e < n && !gram_cmp(&g[e], &g[i])) e++;
    return e;
}

// Sum over the distinct n-grams of hyp of min(count in hyp, limit), where limit is the
// largest count in any of refs[0..nrefs) (BLEU's clipping; with one reference, ROUGE-N's
// overlap). The n-grams of each sequence are sorted and the runs of equal ones merged, so
// the cost is O(L log L) in the lengths.
static size_t clipped_matches(const MetricSeq *hyp, const MetricSeq *refs, size_t nrefs, size_t order) {
    LAB_ASSERT(order >= 1 && order <= 4);
    size_t nh, matches = 0;
    Gram *h = sorted_grams(hyp, order, &nh);
    size_t *limit = xcalloc(nh ? nh : 1, sizeof *limit);   // at the first n-gram of each run
    for (size_t r = 0; r < nrefs; r++) {
        size_t ng, j = 0;
        Gram *g = sorted_grams(&refs[r], order, &ng);
        for (size_t i = 0; i < nh; i = gram_run_end(h, nh, i)) {
            while (j < ng && gram_cmp(&g[j], &h[i]) < 0) j++;
            size_t e = j < ng && !gram_cmp(&g[j], &h[i]) ? gram_run_end(g, ng, j) : j;
            if (e - j > limit[i]) limit[i] = e - j;
            j = e;
        }
        free(g);
    }
    for (size_t i = 0, e; i < nh; i = e) {
        e = gram_run_end(h, nh, i);
        matches += e - i < limit[i] ? e - i : limit[i];
    }
    free(h);
    free(limit);
    return matches;
}

BleuScore metric_bleu(const MetricSeq *hyps, const MetricRefs *refs, size_t n) {
    LAB_ASSERT(n > 0);
    BleuScore s = {0};
    size_t match[4] = {0}, total[4] = {0};
    for (size_t i = 0; i < n; i++) {
        const MetricSeq *h = &hyps[i];
        LAB_ASSERT(refs[i].nrefs > 0);
        for (size_t o = 1; o <= 4; o++) {
            match[o - 1] += clipped_matches(h, refs[i].refs, refs[i].nrefs, o);
            total[o - 1] += h->n >= o ? h->n - o + 1 : 0;
        }
        size_t closest = refs[i].refs[0].n;
        for (size_t r = 1; r < refs[i].nrefs; r++) {
            size_t len = refs[i].refs[r].n;
            size_t d = len > h->n ? len - h->n : h->n - len, dc = closest > h->n ? closest - h->n : h->n - closest;
            if (d < dc || (d == dc && len < closest)) closest = len;
        }
        s.hyp_len += h->n;
        s.ref_len += closest;
    }
    double log_sum = 0;
    int zero = 0;
    for (int o = 0; o < 4; o++) {
        s.precision[o] = total[o] ? (double)match[o] / (double)total[o] : 0.0;
        if (match[o] == 0) zero = 1;
        else log_sum += log(s.precision[o]);
    }
    if (s.hyp_len == 0) s.brevity_penalty = 0.0;
    else if (s.hyp_len > s.ref_len) s.brevity_penalty = 1.0;
    else s.brevity_penalty = exp(1.0 - (double)s.ref_len / (double)s.hyp_len);
    s.bleu = zero ? 0.0 : s.brevity_penalty * exp(log_sum / 4.0);
    return s;
}

static double f1_ratio(size_t overlap, size_t hyp_total, size_t ref_total) {
    if (!overlap) return 0.0;
    double p = (double)overlap / (double)hyp_total, r = (double)overlap / (double)ref_total;
    return 2 * p * r / (p + r);
}

static size_t lcs_length(const MetricSeq *a, const MetricSeq *b) {
    size_t *row = xcalloc(b->n + 1, sizeof *row);  // row[j]: LCS of a[0..i) and b[0..j)
    for (size_t i = 1; i <= a->n; i++) {
        size_t diag = 0;
        for (size_t j = 1; j <= b->n; j++) {
            size_t up = row[j];
            row[j] = a->ids[i - 1] == b->ids[j - 1] ? diag + 1 : (up > row[j - 1] ? up : row[j - 1]);
            diag = up;
        }
    }
    size_t l = row[b->n];
    free(row);
    return l;
}

RougeScore metric_rouge(const MetricSeq *hyps, const MetricRefs *refs, size_t n) {
    LAB_ASSERT(n > 0);
    RougeScore s = {0};
    for (size_t i = 0; i < n; i++) {
        const MetricSeq *h = &hyps[i];
        LAB_ASSERT(refs[i].nrefs > 0);
        double best1 = 0, best2 = 0, bestl = 0;
        for (size_t r = 0; r < refs[i].nrefs; r++) {
            const MetricSeq *ref = &refs[i].refs[r];
            double f1 = f1_ratio(clipped_matches(h, ref, 1, 1), h->n, ref->n);
            double f2 = h->n >= 2 && ref->n >= 2 ? f1_ratio(clipped_matches(h, ref, 1, 2), h->n - 1, ref->n - 1) : 0.0;
            double fl = f1_ratio(lcs_length(h, ref), h->n, ref->n);
            if (f1 > best1) best1 = f1;
            if (f2 > best2) best2 = f2;
            if (fl > bestl) bestl = fl;
        }
        s.rouge1 += best1; s.rouge2 += best2; s.rougeL += bestl;
    }
    s.rouge1 /= (double)n; s.rouge2 /= (double)n; s.rougeL /= (double)n;
    return s;
}

// ---------------------------------------------------------------------------------------
// whitespace tokens

struct MetricWords {
    char **words;      // (count) interned words, id = index
    size_t count, cap;
    int *slots;        // (slot_cap) word → id, -1 when free
    size_t slot_cap;
    int **seqs;        // (nseqs) id arrays handed out by metric_words_split
    size_t nseqs, seqs_cap;
};

static uint64_t word_hash(const char *s, size_t n) {  // FNV-1a
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

MetricWords *metric_words_new(void) {
    MetricWords *w = xcalloc(1, sizeof *w);
    w->slot_cap = 1024;
    w->slots = xmalloc(w->slot_cap * sizeof *w->slots);
    for (size_t i = 0; i < w->slot_cap; i++) w->slots[i] = -1;
    return w;
}

static size_t words_slot(const MetricWords *w, const char *s, size_t n) {
    size_t i = word_hash(s, n) & (w->slot_cap - 1);
    while (w->slots[i] >= 0) {
        const char *x = w->words[w->slots[i]];
        if (strlen(x) == n && !memcmp(x, s, n)) break;
        i = (i + 1) & (w->slot_cap - 1);
    }
    return i;
}

static int words_intern(MetricWords *w, const char *s, size_t n) {
    size_t i = words_slot(w, s, n);
    if (w->slots[i] >= 0) return w->slots[i];
    if (2 * (w->count + 1) > w->slot_cap) {  // grow, then find the free slot again
        free(w->slots);
        w->slot_cap *= 2;
        w->slots = xmalloc(w->slot_cap * sizeof *w->slots);
        for (size_t k = 0; k < w->slot_cap; k++) w->slots[k] = -1;
        for (size_t id = 0; id < w->count; id++)
            w->slots[words_slot(w, w->words[id], strlen(w->words[id]))] = (int)id;
        i = words_slot(w, s, n);
    }
    if (w->count == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 256;
        w->words = xrealloc(w->words, w->cap * sizeof *w->words);
    }
    char *copy = xmalloc(n + 1);
    memcpy(copy, s, n);
    copy[n] = 0;
    w->words[w->count] = copy;
    w->slots[i] = (int)w->count;
    return (int)w->count++;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

MetricSeq metric_words_split(MetricWords *w, const char *text) {
    size_t cap = 8, n = 0;
    int *ids = xmalloc(cap * sizeof *ids);
    for (const char *p = text; *p;) {
        while (*p && is_space(*p)) p++;
        if (!*p) break;
        const char *start = p;
        while (*p && !is_space(*p)) p++;
        if (n == cap) ids = xrealloc(ids, (cap *= 2) * sizeof *ids);
        ids[n++] = words_intern(w, start, (size_t)(p - start));
    }
    if (w->nseqs == w->seqs_cap) {
        w->seqs_cap = w->seqs_cap ? 2 * w->seqs_cap : 64;
        w->seqs = xrealloc(w->seqs, w->seqs_cap * sizeof *w->seqs);
    }
    w->seqs[w->nseqs++] = ids;
    return (MetricSeq){ids, n};
}

void metric_words_free(MetricWords *w) {
    if (!w) return;
    for (size_t i = 0; i < w->count; i++) free(w->words[i]);
    for (size_t i = 0; i < w->nseqs; i++) free(w->seqs[i]);
    free(w->words); free(w->slots); free(w->seqs);
    free(w);
}

// ----------------------------------------------------------------------------
// the metric table

double metric_mse(const double *pred, const double *gold, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (gold[i] - pred[i]) * (gold[i] - pred[i]);
    return sum / (double)n;
}

static double f1_positive(const int *pred, const int *gold, size_t n, int n_classes) {
    (void)n_classes;
    return metric_f1(pred, gold, n, 1);
}
static double accuracy_of(const int *pred, const int *gold, size_t n, int n_classes) {
    (void)n_classes;
    return metric_accuracy(pred, gold, n);
}
static double bleu_of(const MetricSeq *h, const MetricRefs *r, size_t n) { return metric_bleu(h, r, n).bleu; }
static double rouge1_of(const MetricSeq *h, const MetricRefs *r, size_t n) { return metric_rouge(h, r, n).rouge1; }
static double rouge2_of(const MetricSeq *h, const MetricRefs *r, size_t n) { return metric_rouge(h, r, n).rouge2; }
static double rougeL_of(const MetricSeq *h, const MetricRefs *r, size_t n) { return metric_rouge(h, r, n).rougeL; }

#define OF_LABELS(f) METRIC_OF_LABELS, f, NULL, NULL
#define OF_VALUES(f) METRIC_OF_VALUES, NULL, f, NULL
#define OF_TEXT(f) METRIC_OF_TEXT, NULL, NULL, f
const MetricInfo METRIC_TABLE[] = {
    [METRIC_ACCURACY]    = {"accuracy",    1, OF_LABELS(accuracy_of), 1},
    [METRIC_F1]          = {"f1",          1, OF_LABELS(f1_positive), 0},
    [METRIC_MACRO_F1]    = {"macro_f1",    1, OF_LABELS(metric_f1_macro), 3},
    [METRIC_MCC]         = {"mcc",         1, OF_LABELS(metric_mcc), 0},
    [METRIC_PEARSON]     = {"pearson",     1, OF_VALUES(metric_pearson), 0},
    [METRIC_SPEARMAN]    = {"spearman",    1, OF_VALUES(metric_spearman), 0},
    [METRIC_MSE]         = {"mse",         0, OF_VALUES(metric_mse), 0},
    [METRIC_EXACT_MATCH] = {"exact_match", 1, OF_TEXT(metric_exact_match), 2},
    [METRIC_PER]         = {"per",         0, OF_TEXT(metric_error_rate), 4},
    [METRIC_WER]         = {"wer",         0, OF_TEXT(metric_error_rate), 0},
    [METRIC_ERROR_RATE]  = {"error_rate",  0, OF_TEXT(metric_error_rate), 0},
    [METRIC_BLEU]        = {"bleu",        1, OF_TEXT(bleu_of), 0},
    [METRIC_ROUGE1]      = {"rouge1",      1, OF_TEXT(rouge1_of), 0},
    [METRIC_ROUGE2]      = {"rouge2",      1, OF_TEXT(rouge2_of), 0},
    [METRIC_ROUGEL]      = {"rougeL",      1, OF_TEXT(rougeL_of), 0},
    [METRIC_LOSS]        = {"loss",        0, METRIC_OF_LOSS, NULL, NULL, NULL, 5},
};
#undef OF_LABELS
#undef OF_VALUES
#undef OF_TEXT
_Static_assert(sizeof METRIC_TABLE / sizeof METRIC_TABLE[0] == METRIC_COUNT, "METRIC_TABLE lacks a MetricId");

const MetricInfo *metric_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < METRIC_COUNT; i++)
        if (!strcmp(METRIC_TABLE[i].name, name)) return &METRIC_TABLE[i];
    return NULL;
}

int metric_lower_is_better(const char *name) {
    const MetricInfo *m = metric_find(name);
    return m && !m->higher_is_better;
}

double metric_score(const char *name, double value) { return metric_lower_is_better(name) ? -value : value; }
