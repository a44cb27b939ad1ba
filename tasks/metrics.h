// tasks/metrics.h — evaluation metrics of the tasks: classification (accuracy, F1, macro-F1,
// MCC), regression (Pearson, Spearman), generation (exact match, edit distance / error rate,
// corpus BLEU-4, ROUGE-1/2/L). Pure functions; every score lies in [0, 1] (MCC, Pearson and
// Spearman in [-1, 1]); nothing is scaled by 100. No function keeps or frees its inputs.
//
// Labels are ints in [0, n_classes). Token sequences are int arrays (token ids, phonemes,
// or words interned by MetricWords, which splits strings on whitespace). An example may have
// several references.
#ifndef LORALAB_METRICS_H
#define LORALAB_METRICS_H

#include <stddef.h>

// ---- classification ----
// n > 0 everywhere. A ratio whose denominator is 0 counts as 0 (as scikit-learn does).

double metric_accuracy(const int *pred, const int *gold, size_t n);
// F1 of the class `positive`: 2 TP / (2 TP + FP + FN).
double metric_f1(const int *pred, const int *gold, size_t n, int positive);
// Mean of the per-class F1 over the classes that occur in gold or pred (scikit-learn's
// average="macro").
double metric_f1_macro(const int *pred, const int *gold, size_t n, int n_classes);
// Matthews correlation; for more than two classes Gorodkin's R_K (scikit-learn's
// matthews_corrcoef): (c s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2) (s^2 - sum t_k^2)),
// c correct, s total, p_k predicted and t_k true counts of class k. 0 when undefined.
double metric_mcc(const int *pred, const int *gold, size_t n, int n_classes);

// ---- regression ----
// Pearson's r; 0 when either side is constant (undefined: no linear relation to measure).
double metric_pearson(const double *x, const double *y, size_t n);
// Spearman's rho: Pearson's r of the ranks, tied values getting the average of their ranks.
double metric_spearman(const double *x, const double *y, size_t n);

// ---- generation ----
typedef struct {
    const int *ids;
    size_t n;
} MetricSeq;

typedef struct {
    const MetricSeq *refs;  // (nrefs) the references of one example, nrefs >= 1
    size_t nrefs;
} MetricRefs;

// Fraction of examples whose hypothesis equals one of its references exactly.
double metric_exact_match(const MetricSeq *hyps, const MetricRefs *refs, size_t n);
// Levenshtein distance (insertions, deletions, substitutions, each 1) between two sequences.
size_t metric_edit_distance(const int *a, size_t na, const int *b, size_t nb);
// Corpus error rate (phoneme / word error rate): sum of edits / sum of reference lengths,
// each example scored against its reference with the fewest edits (ties: the longest such
// reference). If every chosen reference is empty: 0 when no edits are needed, else 1.
double metric_error_rate(const MetricSeq *hyps, const MetricRefs *refs, size_t n);

// Corpus BLEU-4 as multi-bleu.perl and sacrebleu (smoothing "none") compute it: clipped
// n-gram matches (each n-gram counted at most its largest count in any one reference) and
// candidate n-gram totals summed over the corpus; brevity penalty from the total hypothesis
// length c and the sum r of each example's closest reference length (ties: the shorter);
// bleu = BP * exp(mean_n log p_n), 0 if any p_n is 0; BP = 1 if c > r else exp(1 - r / c).
typedef struct {
    double bleu;              // in [0, 1]
    double precision[4];      // p_1 .. p_4
    double brevity_penalty;
    size_t hyp_len, ref_len;  // c and r above
} BleuScore;
BleuScore metric_bleu(const MetricSeq *hyps, const MetricRefs *refs, size_t n);

// ROUGE-1, ROUGE-2 (n-gram overlap) and ROUGE-L (longest common subsequence) F1 per example,
// the best over its references, averaged over examples. F1 = 2 P R / (P + R), 0 without
// overlap.
typedef struct {
    double rouge1, rouge2, rougeL;
} RougeScore;
RougeScore metric_rouge(const MetricSeq *hyps, const MetricRefs *refs, size_t n);

// ---- whitespace tokens ----
// Interns whitespace-separated words as ids, so strings can be scored by the functions
// above: the same word gets the same id in every sequence split by one MetricWords.
typedef struct MetricWords MetricWords;
MetricWords *metric_words_new(void);
// Splits text on whitespace (space, tab, newline, CR, FF, VT). The returned ids stay owned by
// w and valid until metric_words_free.
MetricSeq metric_words_split(MetricWords *w, const char *text);
void metric_words_free(MetricWords *w);

// ---- the metric table ----
// Every metric a task can name, with whether a higher value is better, the function that
// scores it (from the head's labels, the head's values, or decoded text against references;
// the loss is the model's own) and its place in the report's choice of a run's headline
// metric. The evaluation (tasks/evaluate.c), the task baselines (tasks/task.c), the runner's
// best-state selection, the sweep's tuning pick and the reports all read it.
typedef enum {
    METRIC_ACCURACY, METRIC_F1, METRIC_MACRO_F1, METRIC_MCC,
    METRIC_PEARSON, METRIC_SPEARMAN, METRIC_MSE,
    METRIC_EXACT_MATCH, METRIC_PER, METRIC_WER, METRIC_ERROR_RATE, METRIC_BLEU,
    METRIC_ROUGE1, METRIC_ROUGE2, METRIC_ROUGEL,
    METRIC_LOSS,
    METRIC_COUNT
} MetricId;

typedef enum { METRIC_OF_LABELS, METRIC_OF_VALUES, METRIC_OF_TEXT, METRIC_OF_LOSS } MetricInput;

typedef struct {
    const char *name;
    int higher_is_better;
    MetricInput input;
    // the formula: the one function of `input` (none for the loss)
    double (*of_labels)(const int *pred, const int *gold, size_t n, int n_classes);
    double (*of_values)(const double *pred, const double *gold, size_t n);
    double (*of_text)(const MetricSeq *hyps, const MetricRefs *refs, size_t n);
    int headline;   // 1, 2, ...: the report's preference for a run's headline metric; 0: never
} MetricInfo;

extern const MetricInfo METRIC_TABLE[];   // (METRIC_COUNT) indexed by MetricId

// The table's entry of a metric name; NULL for a name it lacks.
const MetricInfo *metric_find(const char *name);
// Whether lower values of the named metric are better (loss, error rates, MSE); 0 for a
// name the table lacks (and for NULL).
int metric_lower_is_better(const char *name);
// value signed so that higher is better: -value for a lower-is-better metric.
double metric_score(const char *name, double value);
// Mean squared difference of pred and gold.
double metric_mse(const double *pred, const double *gold, size_t n);

#endif
