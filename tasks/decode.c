// tasks/decode.c — greedy and beam search over a pluggable next-token scorer (see decode.h).
#include "tasks/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

void decode_defaults(DecodeOptions *opt, int eos) {
    opt->beam = 1;
    opt->length_penalty = 1.0f;
    opt->no_repeat_ngram = 0;
    opt->max_new = 64;
    opt->eos = eos;
}

// ----------------------------------------------------------------------------
// the model scorer (recomputes every prefix; the key/value-cached scorer below does not)

// Prefix and infix positions the model adds to every row (core/model.c stage_batch: row b
// holds lp prefix positions, the real tokens at lp + t, then li infix positions, then
// padding). Mirrors model_create: only prefix methods (primary or combined) add them.
static void model_prefix(const Model *m, int *lp, int *li) {
    const MethodConfig *mc = model_method(m);
    int on = method_prefix_kind(mc) != 0;
    *lp = on ? mc->prefix_lp : 0;
    *li = on ? mc->prefix_li : 0;
}

int decode_model_max_len(const Model *m) {
    int lp, li;
    model_prefix(m, &lp, &li);
    return model_config(m)->n_ctx - lp - li;
}

// One forward call holds at most this many positions (B * (T + prefix)) and this many
// logits (the whole (B, T, V) block is copied back to the host).
enum { SCORE_MAX_POSITIONS = 4096 };
static const size_t SCORE_MAX_LOGITS = (size_t)1 << 24;   // 64 MiB of floats

// log-softmax of x[0..V) in double
static void log_softmax(double *out, const float *x, int V) {
    double mx = x[0], sum = 0.0;
    for (int v = 1; v < V; v++) if (x[v] > mx) mx = x[v];
    for (int v = 0; v < V; v++) sum += exp((double)x[v] - mx);
    double lse = mx + log(sum);
    for (int v = 0; v < V; v++) out[v] = (double)x[v] - lse;
}

void decode_model_logprobs(Model *m, const int *const *rows, const int *lens, const int *prompt_lens,
                           int n, double *logp) {
    LAB_ASSERT(model_method(m)->head == HEAD_LM);
    int V = model_config(m)->vocab_size, lp, li, max_len = decode_model_max_len(m);
    model_prefix(m, &lp, &li);
    ForwardOptions fo = {0};   // training off: no dropout
    for (int start = 0; start < n;) {
        // grow the chunk while the padded batch stays within the budget
        int count = 0, T = 0;
        while (start + count < n) {
            int len = lens[start + count];
            LAB_ASSERT(len >= 1 && len <= max_len);
            int T2 = len > T ? len : T;
            size_t pos = (size_t)(count + 1) * (T2 + lp + li);
            if (count > 0 && (pos > SCORE_MAX_POSITIONS || pos * V > SCORE_MAX_LOGITS)) break;
            T = T2;
            count++;
        }
        int Tx = T + lp + li;
        int *tok = xcalloc((size_t)count * T, sizeof(int));   // padding: token 0, masked
        for (int b = 0; b < count; b++)
            memcpy(tok + (size_t)b * T, rows[start + b], sizeof(int) * lens[start + b]);
        Batch bt = {count, T, tok, NULL, NULL, NULL, lens + start, prompt_lens ? prompt_lens + start : NULL};
        model_forward(m, &bt, &fo);
        size_t nl = (size_t)count * Tx * V;
        float *logits = xmalloc(nl * sizeof(float));
        LAB_ASSERT(model_copy_logits(m, logits, nl) == nl);
        // The token after row b is predicted where training puts the target of its last
        // token (core/model.c stage_batch): after the infix once the prompt is complete
        // (lp + li + len - 1), at the token itself while the prompt is still being read.
        for (int b = 0; b < count; b++) {
            int len = lens[start + b], p = prompt_lens ? prompt_lens[start + b] : len;
            size_t at = (size_t)b * Tx + (len >= p ? lp + li + len - 1 : lp + len - 1);
            log_softmax(logp + (size_t)(start + b) * V, logits + at * V, V);
        }
        free(logits);
        free(tok);
        start += count;
    }
}

static void model_score(void *ctx, const int *const *rows, const int *lens, const int *prompt_lens,
                        const int *parent, int n, double *logp) {
    (void)parent;   // every prefix is recomputed in full
    decode_model_logprobs((Model *)ctx, rows, lens, prompt_lens, n, logp);
}

DecodeScorer decode_model_scorer(Model *m) {
    DecodeScorer s = {model_score, m, model_config(m)->vocab_size, decode_model_max_len(m)};
    return s;
}

// The key/value-cached scorer: the first call (bare prompts) fills the model's cache; every
// later call reorders the cache by parent and runs one new token per row.
static void cached_score(void *ctx, const int *const *rows, const int *lens, const int *prompt_lens,
                         const int *parent, int n, double *logp) {
    (void)prompt_lens;   // the first call's rows are the prompts; the cache keeps the infix after them
    Model *m = ctx;
    int V = model_config(m)->vocab_size;
    float *logits = xmalloc(sizeof(float) * (size_t)n * V);
    if (!parent) {
        int T = 0;
        for (int i = 0; i < n; i++) T = lens[i] > T ? lens[i] : T;
        int *tok = xcalloc((size_t)n * T, sizeof(int));
        for (int i = 0; i < n; i++) memcpy(tok + (size_t)i * T, rows[i], sizeof(int) * lens[i]);
        Batch bt = {n, T, tok, NULL, NULL, NULL, lens, NULL};
        model_decode_prefill(m, &bt, logits);
        free(tok);
    } else {
        int *last = xmalloc(sizeof(int) * n);
        for (int i = 0; i < n; i++) last[i] = rows[i][lens[i] - 1];
        model_decode_reorder(m, parent, n);
        model_decode_step(m, last, n, logits);
        free(last);
    }
    for (int i = 0; i < n; i++) log_softmax(logp + (size_t)i * V, logits + (size_t)i * V, V);
    free(logits);
}

DecodeScorer decode_cached_scorer(Model *m) {
    LAB_ASSERT(model_decode_supported(m));
    DecodeScorer s = {cached_score, m, model_config(m)->vocab_size, decode_model_max_len(m)};
    return s;
}

int decode_batch(Model *m, const int *const *prompts, const int *prompt_lens, int n,
                 const DecodeOptions *opt, int **out, int *out_lens) {
    DecodeScorer s = model_decode_supported(m) ? decode_cached_scorer(m) : decode_model_scorer(m);
    return decode_search(&s, prompts, prompt_lens, n, opt, out, out_lens);
}

// ----------------------------------------------------------------------------
// the search

typedef struct {
    int *tok;       // (max_steps) generated tokens
    double sum;     // sum of their log-probabilities
    int row;        // its row in the last scorer call: the parent of its extensions
} Hyp;

typedef struct {
    int *tok;       // (max_steps) generated tokens, without the EOS
    int len;
    double norm;    // sum / len_with_eos^length_penalty
} Finished;

typedef struct {
    const int *prompt;
    int plen;
    int max_steps;          // min(max_new, max_len - plen + 1)
    Hyp *live, *next;       // (beam) each, swapped every step
    int n_live;
    Finished *fin;          // (beam)
    int n_fin;
    int done;
} Search;

typedef struct { double s; int h, v; } Candidate;

// Keeps fin as the `beam` best finished hypotheses; a tie keeps the earlier one.
static void finish(Search *se, int beam, double lpen, const int *tok, int len, int len_norm,
                   double sum) {
    double norm = len_norm > 0 ? sum / pow((double)len_norm, lpen) : sum;
    int slot = se->n_fin;
    if (se->n_fin == beam) {
        slot = 0;
        for (int i = 1; i < beam; i++) if (se->fin[i].norm < se->fin[slot].norm) slot = i;
        if (!(norm > se->fin[slot].norm)) return;
    } else {
        se->n_fin++;
    }
    memcpy(se->fin[slot].tok, tok, sizeof(int) * len);
    se->fin[slot].len = len;
    se->fin[slot].norm = norm;
}

// no-repeat-n-gram: -inf for every token that would complete an n-gram already present in
// gen[0..g) (fairseq / gpt2_beam.py: the n-grams whose first n-1 tokens equal the last n-1).
static void ban_ngrams(double *logp, const int *gen, int g, int ngram) {
    if (ngram <= 0 || g < ngram - 1) return;
    int k = ngram - 1;
    for (int i = 0; i + k < g; i++) {
        if (memcmp(gen + i, gen + g - k, sizeof(int) * k) == 0) logp[gen[i + k]] = -INFINITY;
    }
}

// The K best (h, v) extensions by score, best first; ties go to the smaller (h, v).
static int top_candidates(Candidate *top, int K, const Search *se, const double *logp, int V) {
    int nt = 0;
    for (int h = 0; h < se->n_live; h++) {
        const double *lp = logp + (size_t)se->live[h].row * V;
        for (int v = 0; v < V; v++) {
            double s = se->live[h].sum + lp[v];
            if (s == -INFINITY || (nt == K && !(s > top[K - 1].s))) continue;
            int i = nt < K ? nt++ : K - 1;
            while (i > 0 && s > top[i - 1].s) { top[i] = top[i - 1]; i--; }
            top[i].s = s; top[i].h = h; top[i].v = v;
        }
    }
    return nt;
}

// One step of one prompt, g tokens generated so far: extend, finish EOS, decide whether done.
static void search_step(Search *se, const DecodeOptions *opt, double lpen, const double *logp,
                        int V, int g, Candidate *top, int *next_rows) {
    int beam = opt->beam;
    int nt = top_candidates(top, 2 * beam, se, logp, V);
    int n_next = 0;
    for (int r = 0; r < nt && n_next < beam; r++) {
        const Hyp *h = &se->live[top[r].h];
        if (top[r].v == opt->eos) {
            // (Hugging Face skips an EOS ranked below the first `beam` candidates; that cannot
            // change the result: a better EOS of the same length is always ranked above it.)
            finish(se, beam, lpen, h->tok, g, g + 1, top[r].s);
            continue;
        }
        Hyp *nh = &se->next[n_next];
        memcpy(nh->tok, h->tok, sizeof(int) * g);
        nh->tok[g] = top[r].v;
        nh->sum = top[r].s;
        next_rows[n_next++] = h->row;   // parent row, remapped by the caller
    }
    Hyp *t = se->live; se->live = se->next; se->next = t;
    se->n_live = n_next;
    g++;
    if (n_next == 0) { se->done = 1; return; }
    if (g == se->max_steps) {
        for (int i = 0; i < n_next; i++) finish(se, beam, lpen, se->live[i].tok, g, g, se->live[i].sum);
        se->done = 1;
        return;
    }
    if (se->n_fin < beam) return;
    // Can a live hypothesis still beat the worst finished one? Its sum can only fall; its
    // normalised score is best at its shortest (g + 1) or longest (max_steps) finish.
    double best = -INFINITY, worst = INFINITY;
    for (int i = 0; i < n_next; i++) if (se->live[i].sum > best) best = se->live[i].sum;
    for (int i = 0; i < se->n_fin; i++) if (se->fin[i].norm < worst) worst = se->fin[i].norm;
    double b1 = best / pow((double)(g + 1), lpen), b2 = best / pow((double)se->max_steps, lpen);
    if ((b1 > b2 ? b1 : b2) <= worst) se->done = 1;
}

static int check_inputs(const DecodeScorer *s, const int *const *prompts, const int *prompt_lens,
                        int n, const DecodeOptions *opt) {
    if (opt->beam < 1) return err_set("decode: beam must be >= 1, got %d", opt->beam);
    if (opt->max_new < 1) return err_set("decode: max_new must be >= 1, got %d", opt->max_new);
    if (opt->no_repeat_ngram < 0)
        return err_set("decode: no_repeat_ngram must be >= 0, got %d", opt->no_repeat_ngram);
    if (!isfinite(opt->length_penalty))
        return err_set("decode: length_penalty must be a finite number, got %g", opt->length_penalty);
    if (opt->eos < 0 || opt->eos >= s->vocab)
        return err_set("decode: eos must be a token id in [0, %d), got %d", s->vocab, opt->eos);
    for (int i = 0; i < n; i++) {
        if (prompt_lens[i] < 1 || prompt_lens[i] > s->max_len)
            return err_set("decode: prompt %d has %d tokens; expected 1 to %d (the model's context)",
                           i, prompt_lens[i], s->max_len);
        for (int t = 0; t < prompt_lens[i]; t++)
            if (prompts[i][t] < 0 || prompts[i][t] >= s->vocab)
                return err_set("decode: prompt %d token %d is %d, outside the vocabulary [0, %d)",
                               i, t, prompts[i][t], s->vocab);
    }
    return 0;
}

int decode_search(const DecodeScorer *s, const int *const *prompts, const int *prompt_lens,
                  int n, const DecodeOptions *opt, int **out, int *out_lens) {
    if (check_inputs(s, prompts, prompt_lens, n, opt)) return -1;
    if (n == 0) return 0;
    int beam = opt->beam, V = s->vocab;
    double lpen = beam == 1 ? 0.0 : opt->length_penalty;

    // per prompt: 3 * beam token arrays of max_steps (live, next, finished)
    Search *se = xcalloc((size_t)n, sizeof(Search));
    int steps_max = 0;
    size_t pool_n = 0;
    for (int i = 0; i < n; i++) {
        int room = s->max_len - prompt_lens[i] + 1;
        se[i].prompt = prompts[i];
        se[i].plen = prompt_lens[i];
        se[i].max_steps = opt->max_new < room ? opt->max_new : room;
        if (se[i].max_steps > steps_max) steps_max = se[i].max_steps;
        pool_n += (size_t)3 * beam * se[i].max_steps;
    }
    int *pool = xmalloc(sizeof(int) * pool_n), *p = pool;
    Hyp *hyps = xcalloc((size_t)2 * n * beam, sizeof(Hyp));
    Finished *fins = xcalloc((size_t)n * beam, sizeof(Finished));
    for (int i = 0; i < n; i++) {
        se[i].live = hyps + (size_t)2 * i * beam;
        se[i].next = se[i].live + beam;
        se[i].fin = fins + (size_t)i * beam;
        for (int k = 0; k < beam; k++) {
            se[i].live[k].tok = p; p += se[i].max_steps;
            se[i].next[k].tok = p; p += se[i].max_steps;
            se[i].fin[k].tok = p; p += se[i].max_steps;
        }
        se[i].n_live = 1;   // the empty continuation
        se[i].live[0].sum = 0.0;
    }

    size_t rows_cap = (size_t)n * beam;
    const int **rows = xmalloc(sizeof(int *) * rows_cap);
    int *lens = xmalloc(sizeof(int) * rows_cap), *parent = xmalloc(sizeof(int) * rows_cap);
    int *plens = xmalloc(sizeof(int) * rows_cap);
    int *next_rows = xmalloc(sizeof(int) * beam);
    int *row_tok = NULL;
    double *logp = xmalloc(sizeof(double) * rows_cap * V);
    Candidate *top = xmalloc(sizeof(Candidate) * 2 * beam);

    for (int g = 0; g < steps_max; g++) {
        // rows: prompt + generated tokens of every live hypothesis of every open prompt
        int nr = 0;
        size_t ntok = 0;
        for (int i = 0; i < n; i++)
            if (!se[i].done) ntok += (size_t)se[i].n_live * (se[i].plen + g);
        if (ntok == 0) break;
        row_tok = xrealloc(row_tok, sizeof(int) * ntok);
        int *q = row_tok;
        for (int i = 0; i < n; i++) {
            if (se[i].done) continue;
            for (int h = 0; h < se[i].n_live; h++) {
                Hyp *hy = &se[i].live[h];
                memcpy(q, se[i].prompt, sizeof(int) * se[i].plen);
                memcpy(q + se[i].plen, hy->tok, sizeof(int) * g);
                rows[nr] = q;
                lens[nr] = se[i].plen + g;
                plens[nr] = se[i].plen;
                parent[nr] = hy->row;   // the row it extends in the previous call
                hy->row = nr++;
                q += se[i].plen + g;
            }
        }
        s->score(s->ctx, rows, lens, plens, g == 0 ? NULL : parent, nr, logp);
        for (int i = 0; i < n; i++) {
            if (se[i].done) continue;
            for (int h = 0; h < se[i].n_live; h++)
                ban_ngrams(logp + (size_t)se[i].live[h].row * V, se[i].live[h].tok, g,
                           opt->no_repeat_ngram);
            search_step(&se[i], opt, lpen, logp, V, g, top, next_rows);
            for (int h = 0; h < se[i].n_live; h++) se[i].live[h].row = next_rows[h];
        }
    }

    for (int i = 0; i < n; i++) {
        int best = -1;
        for (int k = 0; k < se[i].n_fin; k++)
            if (best < 0 || se[i].fin[k].norm > se[i].fin[best].norm) best = k;
        int len = best < 0 ? 0 : se[i].fin[best].len;
        out[i] = xmalloc(sizeof(int) * (len > 0 ? len : 1));
        if (len > 0) memcpy(out[i], se[i].fin[best].tok, sizeof(int) * len);
        out_lens[i] = len;
    }
    free(top); free(logp); free(row_tok); free(next_rows); free(parent); free(lens); free(plens); free(rows);
    free(fins); free(hyps); free(pool); free(se);
    return 0;
}
