// tasks/evaluate.c — metric names to metric functions (the metric table), and generation scoring. See evaluate.h.
#include "tasks/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "tasks/metrics.h"

double evaluate_classification(const char *metric, const int *pred, const int *gold, int n, int n_classes) {
    const MetricInfo *m = metric_find(metric);
    if (n <= 0 || !m || m->input != METRIC_OF_LABELS) return NAN;
    return m->of_labels(pred, gold, (size_t)n, n_classes);
}

double evaluate_regression(const char *metric, const double *pred, const double *gold, int n) {
    const MetricInfo *m = metric_find(metric);
    if (n <= 0 || !m || m->input != METRIC_OF_VALUES) return NAN;
    return m->of_values(pred, gold, (size_t)n);
}

int evaluate_generation(Model *m, const Task *task, SplitId s, const Encoded *e, const Tokenizer *tok,
                        int max_len, const int *rows, int n, const DecodeOptions *opt, double *values) {
    for (int k = 0; k < task->n_metrics; k++) values[k] = NAN;
    if (n <= 0) return 0;
    int *prompt_buf = xmalloc(sizeof(int) * (size_t)n * max_len), *plen = xmalloc(sizeof(int) * n);
    const int **prompts = xmalloc(sizeof(int *) * n);
    int **out = xcalloc((size_t)n, sizeof(int *)), *out_lens = xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        plen[i] = format_prompt(e, rows[i], max_len, opt->max_new, prompt_buf + (size_t)i * max_len);
        prompts[i] = prompt_buf + (size_t)i * max_len;
    }
    int status = -1;
    // decode in chunks so the search's log-probability tables stay small
    enum { CHUNK = 64 };
    for (int i = 0; i < n; i += CHUNK) {
        int nc = n - i < CHUNK ? n - i : CHUNK;
        if (decode_batch(m, prompts + i, plen + i, nc, opt, out + i, out_lens + i)) goto done;
    }
    // compare as whitespace-separated words of the decoded text (phonemes for g2p)
    MetricWords *w = metric_words_new();
    MetricSeq *hyps = xmalloc(sizeof(MetricSeq) * n);
    MetricRefs *refs = xmalloc(sizeof(MetricRefs) * n);
    MetricSeq *ref_pool = NULL;
    size_t nref = 0;
    for (int i = 0; i < n; i++) nref += (size_t)task_example(task, s, rows[i])->nrefs;
    ref_pool = xmalloc(sizeof(MetricSeq) * (nref ? nref : 1));
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        char *text = tokenizer_decode(tok, out[i], (size_t)out_lens[i]);
        hyps[i] = metric_words_split(w, text);
        free(text);
        const Example *ex = task_example(task, s, rows[i]);
        refs[i].refs = ref_pool + at;
        refs[i].nrefs = (size_t)ex->nrefs;
        for (int r = 0; r < ex->nrefs; r++) ref_pool[at++] = metric_words_split(w, ex->refs[r]);
    }
    for (int k = 0; k < task->n_metrics; k++) {
        const MetricInfo *m = metric_find(task->metrics[k]);
        if (m && m->input == METRIC_OF_TEXT) values[k] = m->of_text(hyps, refs, (size_t)n);
    }
    metric_words_free(w);
    free(hyps); free(refs); free(ref_pool);
    status = 0;
done:
    for (int i = 0; i < n; i++) free(out[i]);
    free(out); free(out_lens); free(prompts); free(plen); free(prompt_buf);
    return status;
}
