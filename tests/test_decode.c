// tests/test_decode.c — greedy and beam-search decoding: the model scorer against the
// model's own loss and a naive argmax loop, beam search and the length penalty on a
// hand-made table of probabilities whose answers are worked out below, no-repeat-n-gram,
// batched against one-by-one decoding, max_new / context / EOS stopping, bad options.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/model.h"
#include "core/cpu/backend_cpu.h"
#include "core/rng.h"
#include "tasks/decode.h"

// ----------------------------------------------------------------------------
// a scorer from a table of probabilities

// Tokens of the hand-made tables.
enum { EOS = 0, A = 1, B = 2, C = 3, TV = 4, MAX_ROWS = 256, MAX_LEN = 64 };

// probs(gen, g, p): p[v] = P(v | generated tokens gen[0..g)); the prompt is ignored.
typedef void (*TableFn)(const int *gen, int g, double *p);

typedef struct {
    TableFn probs;
    int plen;                       // every prompt of a table test has this length
    int calls;
    int bad_parent;                 // rows that do not extend their parent by one token
    int prev_n, prev_lens[MAX_ROWS];
    int prev_rows[MAX_ROWS][MAX_LEN];
} TableCtx;

// Also checks the scorer contract a key/value cache will rely on: parent is NULL exactly on
// the first call, and row i is row parent[i] of the previous call plus one token.
static void table_score(void *ctx, const int *const *rows, const int *lens, const int *prompt_lens,
                        const int *parent, int n, double *logp) {
    TableCtx *t = ctx;
    assert_true(n <= MAX_ROWS);
    for (int i = 0; i < n; i++) {
        assert_true(lens[i] >= t->plen && lens[i] <= MAX_LEN);
        assert_int_equal(prompt_lens[i], t->plen);
        if (t->calls == 0) {
            if (parent || lens[i] != t->plen) t->bad_parent++;
        } else {
            int p = parent ? parent[i] : -1;
            if (p < 0 || p >= t->prev_n || lens[i] != t->prev_lens[p] + 1 ||
                memcmp(rows[i], t->prev_rows[p], sizeof(int) * t->prev_lens[p]) != 0)
                t->bad_parent++;
        }
        double p[TV];
        t->probs(rows[i] + t->plen, lens[i] - t->plen, p);
        for (int v = 0; v < TV; v++) logp[(size_t)i * TV + v] = p[v] > 0 ? log(p[v]) : -INFINITY;
    }
    for (int i = 0; i < n; i++) {
        t->prev_lens[i] = lens[i];
        memcpy(t->prev_rows[i], rows[i], sizeof(int) * lens[i]);
    }
    t->prev_n = n;
    t->calls++;
}

static void set4(double *p, double eos, double a, double b, double c) {
    p[EOS] = eos; p[A] = a; p[B] = b; p[C] = c;
}

// Decodes one prompt of plen tokens (all A) with a table; returns the length, tokens in out.
static int run_table(TableFn probs, int plen, int max_len, const DecodeOptions *opt, int *out) {
    TableCtx *t = calloc(1, sizeof(TableCtx));
    t->probs = probs;
    t->plen = plen;
    DecodeScorer s = {table_score, t, TV, max_len};
    int prompt[MAX_LEN];
    for (int i = 0; i < plen; i++) prompt[i] = A;
    const int *prompts[1] = {prompt};
    int *res = NULL, len = -1;
    assert_int_equal(decode_search(&s, prompts, &plen, 1, opt, &res, &len), 0);
    assert_int_equal(t->bad_parent, 0);
    assert_non_null(res);
    memcpy(out, res, sizeof(int) * len);
    free(res);
    free(t);
    return len;
}

static DecodeOptions options(int beam, float lpen, int ngram, int max_new) {
    DecodeOptions o;
    decode_defaults(&o, EOS);
    o.beam = beam;
    o.length_penalty = lpen;
    o.no_repeat_ngram = ngram;
    o.max_new = max_new;
    return o;
}

static void expect_tokens(const int *got, int n_got, const int *want, int n_want) {
    if (n_got != n_want) fail_msg("expected %d tokens, got %d", n_want, n_got);
    for (int i = 0; i < n_want; i++)
        if (got[i] != want[i]) fail_msg("token %d: expected %d, got %d", i, want[i], got[i]);
}

// ----------------------------------------------------------------------------
// (b) beam search and the length penalty on a hand-made table

// Probabilities (EOS, A, B); C never occurs:
//   start: A .6  B .4          after A: EOS .4  A .3  B .3      after B: EOS .9  A .05 B .05
//   after A A: EOS 1           after A B: EOS .5  A .25  B .25   anything else: EOS .9  A .05 B .05
static void beam_table(const int *gen, int g, double *p) {
    if (g == 0) set4(p, 0, .6, .4, 0);
    else if (g == 1 && gen[0] == A) set4(p, .4, .3, .3, 0);
    else if (g == 2 && gen[0] == A && gen[1] == A) set4(p, 1, 0, 0, 0);
    else if (g == 2 && gen[0] == A && gen[1] == B) set4(p, .5, .25, .25, 0);
    else set4(p, .9, .05, .05, 0);
}

static void test_beam_table(void **state) {
    (void)state;
    int out[MAX_LEN], n;
    // Greedy takes A (.6), then EOS (.4): "A", probability .24.
    DecodeOptions o = options(1, 1.0f, 0, 6);
    n = run_table(beam_table, 2, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A}, 1);
    // Beam 2, no length penalty: step 2 ranks B.EOS .36, A.EOS .24, A.A .18, A.B .18; both
    // EOS finish, and no live hypothesis (.18) can beat .24: "B" (.36) beats greedy's .24.
    o = options(2, 0.0f, 0, 6);
    n = run_table(beam_table, 2, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){B}, 1);
    // Length penalty 1: "B" scores ln .36 / 2 = -0.511; "A A" ln .18 / 3 = -0.572 and
    // "A B A" ln .0405 / 4 = -0.802 lose: still "B".
    o = options(2, 1.0f, 0, 6);
    n = run_table(beam_table, 2, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){B}, 1);
    // Length penalty 2 favours length: "A A" ln .18 / 9 = -0.191 beats "B" ln .36 / 4 =
    // -0.255, "A B A" ln .0405 / 16 = -0.200 and "A B A A" ln .002 / 25 = -0.248.
    o = options(2, 2.0f, 0, 6);
    n = run_table(beam_table, 2, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, A}, 2);
    // Greedy ignores the length penalty (beam 1 is plain argmax decoding).
    o = options(1, 2.0f, 0, 6);
    n = run_table(beam_table, 2, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A}, 1);
}

// Probabilities (EOS, A, B): start A .5  B .5; after A: EOS .9  A .1; after B: EOS .9  B .1;
// after A A...: A 1 (never ends); after B B...: EOS .5  B .5.
static void slow_table(const int *gen, int g, double *p) {
    if (g == 0) set4(p, 0, .5, .5, 0);
    else if (g == 1) set4(p, .9, gen[0] == A ? .1 : 0, gen[0] == B ? .1 : 0, 0);
    else if (gen[0] == A) set4(p, 0, 1, 0, 0);
    else set4(p, .5, 0, .5, 0);
}

// The stopping bound: with length penalty 2, "A" and "B" (ln .45 / 2^2 = -0.200) finish at
// step 2, when "A A" (ln .05 = -3.0) looks worse at its current length (-3.0 / 3^2 = -0.333);
// but it can still run to max_new = 8 at no cost and reach -3.0 / 8^2 = -0.047, so the
// search goes on and returns eight A. (A bound taken at the current length, as Hugging
// Face's default early stopping does, would stop and return "A".)
static void test_beam_bound(void **state) {
    (void)state;
    int out[MAX_LEN];
    DecodeOptions o = options(2, 2.0f, 0, 8);
    int n = run_table(slow_table, 1, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, A, A, A, A, A, A, A}, 8);
    // without a length penalty "A" (.45) wins
    o = options(2, 0.0f, 0, 8);
    n = run_table(slow_table, 1, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A}, 1);
}

// ----------------------------------------------------------------------------
// (c) no-repeat-n-gram

// A table that loves the cycle A B A B ...:
//   start: A .9            after A: B .7  C .2  A .05  EOS .05
//   after B: A .7  C .2  B .05  EOS .05          after C: EOS .6  A .2  B .1  C .1
static void cycle_table(const int *gen, int g, double *p) {
    int last = g ? gen[g - 1] : -1;
    if (last < 0) set4(p, .02, .9, .04, .04);
    else if (last == A) set4(p, .05, .05, .7, .2);
    else if (last == B) set4(p, .05, .7, .05, .2);
    else set4(p, .6, .2, .1, .1);
}

static int has_repeated_ngram(const int *x, int n, int k) {
    for (int i = 0; i + k <= n; i++)
        for (int j = i + 1; j + k <= n; j++)
            if (memcmp(x + i, x + j, sizeof(int) * k) == 0) return 1;
    return 0;
}

static void test_no_repeat_ngram(void **state) {
    (void)state;
    int out[MAX_LEN], n;
    // Without the rule greedy cycles until max_new.
    DecodeOptions o = options(1, 1.0f, 0, 6);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, B, A, B, A, B}, 6);
    // Bigrams: after "A B A" the B would repeat "A B"; the next best is C, then EOS (.6).
    o = options(1, 1.0f, 2, 6);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, B, A, C}, 4);
    // Trigrams: "A B A B" is fine; then A would complete "A B A" a second time: C instead,
    // then EOS.
    o = options(1, 1.0f, 3, 6);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, B, A, B, C}, 5);
    // Unigrams: no token twice: A, B, then C (A and B banned), then EOS.
    o = options(1, 1.0f, 1, 6);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, B, C}, 3);
    // Beam search under the rule: no bigram twice in the result (and the table would give
    // one: without the rule beam 3 returns a cycle).
    o = options(3, 0.9f, 0, 8);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    assert_true(has_repeated_ngram(out, n, 2));
    o = options(3, 0.9f, 2, 8);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    assert_true(n > 0);
    assert_false(has_repeated_ngram(out, n, 2));
}

// The prompt is not part of the n-gram history (as in the paper's gpt2_beam.py): after a
// prompt "A B", the continuation "A B A C" is the same as above; with the prompt in the
// history, "A B" would already be banned at the second token and give "A C".
static void test_no_repeat_excludes_prompt(void **state) {
    (void)state;
    TableCtx *t = calloc(1, sizeof(TableCtx));
    t->probs = cycle_table;
    t->plen = 2;
    DecodeScorer s = {table_score, t, TV, MAX_LEN};
    int prompt[2] = {A, B}, plen = 2, *res, len;
    const int *prompts[1] = {prompt};
    DecodeOptions o = options(1, 1.0f, 2, 6);
    assert_int_equal(decode_search(&s, prompts, &plen, 1, &o, &res, &len), 0);
    expect_tokens(res, len, (int[]){A, B, A, C}, 4);
    free(res);
    free(t);
}

// Every choice a tie: start A .4 B .4; after A: B .45 C .45; after B: A .5 C .5; after C: EOS.
static void tie_table(const int *gen, int g, double *p) {
    int last = g ? gen[g - 1] : -1;
    if (last < 0) set4(p, .1, .4, .4, .1);
    else if (last == A) set4(p, .1, 0, .45, .45);
    else if (last == B) set4(p, 0, .5, 0, .5);
    else set4(p, 1, 0, 0, 0);
}

// ----------------------------------------------------------------------------
// (e) stopping: max_new, the context, EOS

static void test_stopping(void **state) {
    (void)state;
    int out[MAX_LEN], n;
    // max_new counts generated tokens
    DecodeOptions o = options(1, 1.0f, 0, 3);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, B, A}, 3);
    o = options(3, 1.0f, 0, 1);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A}, 1);
    // the scorer's context: a prompt of 3 in a context of 5 leaves 3 tokens (the third is
    // predicted from the full 5-token row)
    o = options(1, 1.0f, 0, 10);
    n = run_table(cycle_table, 3, 5, &o, out);
    expect_tokens(out, n, (int[]){A, B, A}, 3);
    o = options(4, 1.0f, 0, 10);
    n = run_table(cycle_table, 3, 5, &o, out);
    assert_true(n <= 3);
    // EOS stops and is not returned
    o = options(1, 1.0f, 2, 10);
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, B, A, C}, 4);
    // ties go to the lower token id (as an argmax that keeps the first maximum)
    o = options(1, 1.0f, 0, 4);
    n = run_table(tie_table, 3, MAX_LEN, &o, out);
    expect_tokens(out, n, (int[]){A, B, A, B}, 4);
    // EOS as the very first token: an empty continuation
    o = options(1, 1.0f, 0, 10);
    o.eos = A;
    n = run_table(cycle_table, 3, MAX_LEN, &o, out);
    assert_int_equal(n, 0);
}

static void test_bad_options(void **state) {
    (void)state;
    TableCtx t = {0};
    t.probs = cycle_table;
    t.plen = 2;
    DecodeScorer s = {table_score, &t, TV, 8};
    int prompt[10] = {A, B}, plen = 2, *res = NULL, len = -1;
    const int *prompts[1] = {prompt};
    DecodeOptions o = options(0, 1.0f, 0, 5);
    assert_int_equal(decode_search(&s, prompts, &plen, 1, &o, &res, &len), -1);
    assert_non_null(strstr(err_msg(), "beam"));
    o = options(2, 1.0f, 0, 0);
    assert_int_equal(decode_search(&s, prompts, &plen, 1, &o, &res, &len), -1);
    assert_non_null(strstr(err_msg(), "max_new"));
    o = options(2, 1.0f, -1, 5);
    assert_int_equal(decode_search(&s, prompts, &plen, 1, &o, &res, &len), -1);
    o = options(2, 1.0f, 0, 5);
    o.eos = TV;
    assert_int_equal(decode_search(&s, prompts, &plen, 1, &o, &res, &len), -1);
    assert_non_null(strstr(err_msg(), "eos"));
    o = options(2, 1.0f, 0, 5);
    plen = 9;   // longer than the context of 8
    assert_int_equal(decode_search(&s, prompts, &plen, 1, &o, &res, &len), -1);
    assert_non_null(strstr(err_msg(), "prompt 0 has 9 tokens"));
    plen = 0;
    assert_int_equal(decode_search(&s, prompts, &plen, 1, &o, &res, &len), -1);
    plen = 2;
    prompt[1] = -3;
    assert_int_equal(decode_search(&s, prompts, &plen, 1, &o, &res, &len), -1);
    assert_null(res);
    assert_int_equal(t.calls, 0);
}

// ----------------------------------------------------------------------------
// the real model

enum { BYTE_EOS = 257 };

// nano with every tensor random (weights 0.1 N(0,1), LayerNorm weights 1 + that), so that
// next-token distributions are far from uniform and prefix / infix positions matter.
static Model *nano_model_at(MethodKind kind, uint64_t seed, int li, Precision precision) {
    ModelConfig cfg;
    assert_int_equal(model_preset("nano", &cfg), 0);
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = kind;
    mc.precision = precision;
    mc.prefix_lp = 3;
    mc.prefix_li = li;
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    assert_non_null(m);
    model_init_random(m, seed);
    Rng r = rng_seeded(seed);
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        float *h = xmalloc(p->numel * sizeof(float));
        int is_ln_w = strstr(p->name, "ln") && strstr(p->name, "weight");
        for (size_t k = 0; k < p->numel; k++) h[k] = (float)((is_ln_w ? 1.0 : 0.0) + 0.1 * rng_normal(&r));
        model_backend(m)->to_device(p->data, h, p->numel * sizeof(float));
        free(h);
    }
    return m;
}

static Model *nano_model_li(MethodKind kind, uint64_t seed, int li) {
    return nano_model_at(kind, seed, li, PRECISION_FP32);
}

static Model *nano_model(MethodKind kind, uint64_t seed) { return nano_model_li(kind, seed, 2); }

static void random_tokens(int *x, int n, uint64_t seed) {
    Rng r = rng_seeded(seed);
    for (int i = 0; i < n; i++) x[i] = (int)(rng_u64(&r) % 256);
}

// The model scorer reads the right position: the log-probabilities it gives each prefix of a
// sequence add up to minus the model's own training loss on that sequence (targets placed by
// core/model.c), with and without prefix / infix positions. Every prefix appears twice, so
// the rows need two forward calls (more than 4096 positions).
static void check_logprobs_match_loss(MethodKind kind) {
    Model *m = nano_model(kind, 3);
    int V = model_config(m)->vocab_size, T = decode_model_max_len(m);
    int seq[64], targets[64];
    assert_true(T <= 64);
    random_tokens(seq, T, 5);
    for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? seq[t + 1] : -1;
    int P = 4;   // the first 4 tokens are the prompt: an infix goes after them
    Batch bt = {1, T, seq, targets, NULL, NULL, NULL, &P};
    ForwardOptions fo = {0};
    double loss = model_forward(m, &bt, &fo);
    assert_int_equal(model_loss_count(m), T - 1);

    int n = 2 * (T - 1);
    const int **rows = xmalloc(sizeof(int *) * n);
    int *lens = xmalloc(sizeof(int) * n), *plens = xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) { rows[i] = seq; lens[i] = i % (T - 1) + 1; plens[i] = P; }
    double *logp = xmalloc(sizeof(double) * n * V);
    decode_model_logprobs(m, rows, lens, plens, n, logp);
    for (int copy = 0; copy < 2; copy++) {
        double sum = 0;
        for (int i = copy * (T - 1); i < (copy + 1) * (T - 1); i++) {
            double z = 0;
            for (int v = 0; v < V; v++) z += exp(logp[(size_t)i * V + v]);
            assert_true(fabs(z - 1.0) < 1e-9);
            sum += logp[(size_t)i * V + seq[lens[i]]];
        }
        double want = -loss * (T - 1);
        if (fabs(sum - want) > 1e-4 * fabs(want))
            fail_msg("%s copy %d: sum of next-token log-probs %.6f, model loss gives %.6f",
                     METHOD_NAMES[kind], copy, sum, want);
    }
    free(logp); free(lens); free(plens); free(rows);
    model_free(m);
}

static void test_logprobs_match_loss(void **state) {
    (void)state;
    check_logprobs_match_loss(METHOD_FT);
    check_logprobs_match_loss(METHOD_PREFIX_LAYER);
    check_logprobs_match_loss(METHOD_PREFIX_EMBED);
}

// Naive greedy decoding: one row, full forward each step, argmax of the last logits.
static int naive_greedy(Model *m, const int *prompt, int plen, int max_new, int eos, int *out) {
    int V = model_config(m)->vocab_size, row[64], n = 0;
    memcpy(row, prompt, sizeof(int) * plen);
    float *logits = xmalloc(sizeof(float) * 64 * V);
    ForwardOptions fo = {0};
    while (n < max_new) {
        int T = plen + n;
        Batch bt = {1, T, row, NULL, NULL, NULL, NULL, NULL};
        model_forward(m, &bt, &fo);
        model_copy_logits(m, logits, (size_t)T * V);
        const float *last = logits + (size_t)(T - 1) * V;
        int best = 0;
        for (int v = 1; v < V; v++) if (last[v] > last[best]) best = v;
        if (best == eos) break;
        row[T] = best;
        out[n++] = best;
    }
    free(logits);
    return n;
}

enum { NP = 4 };
static const int PLENS[NP] = {3, 9, 14, 6};

// (a) greedy (beam 1, any length penalty) equals the naive loop, for prompts decoded together.
static void test_greedy_matches_naive(void **state) {
    (void)state;
    Model *m = nano_model(METHOD_FT, 7);
    int prompt[NP][16], *out[NP], lens[NP];
    const int *prompts[NP];
    for (int i = 0; i < NP; i++) { random_tokens(prompt[i], PLENS[i], 20 + i); prompts[i] = prompt[i]; }
    DecodeOptions o;
    decode_defaults(&o, BYTE_EOS);
    o.max_new = 12;
    o.length_penalty = 0.9f;
    assert_int_equal(decode_batch(m, prompts, PLENS, NP, &o, out, lens), 0);
    for (int i = 0; i < NP; i++) {
        int want[16];
        int n = naive_greedy(m, prompt[i], PLENS[i], o.max_new, BYTE_EOS, want);
        expect_tokens(out[i], lens[i], want, n);
        free(out[i]);
    }
    model_free(m);
}

// (d) several prompts of different lengths decoded in one batch give what each gives alone;
// greedy, beam search, and the paper's E2E setting.
static void check_batched_equals_alone(Model *m, const DecodeOptions *o) {
    int prompt[NP][16], *out[NP], lens[NP];
    const int *prompts[NP];
    for (int i = 0; i < NP; i++) { random_tokens(prompt[i], PLENS[i], 40 + i); prompts[i] = prompt[i]; }
    assert_int_equal(decode_batch(m, prompts, PLENS, NP, o, out, lens), 0);
    for (int i = 0; i < NP; i++) {
        int *one, len;
        assert_int_equal(decode_batch(m, &prompts[i], &PLENS[i], 1, o, &one, &len), 0);
        assert_true(len >= 1 && len <= o->max_new);
        expect_tokens(out[i], lens[i], one, len);
        if (o->no_repeat_ngram > 0) assert_false(has_repeated_ngram(one, len, o->no_repeat_ngram));
        free(one);
        free(out[i]);
    }
}

static void test_batched_equals_alone(void **state) {
    (void)state;
    Model *m = nano_model(METHOD_FT, 9);
    DecodeOptions o;
    decode_defaults(&o, BYTE_EOS);
    o.max_new = 8;
    check_batched_equals_alone(m, &o);
    o.beam = 3; o.length_penalty = 0.9f; o.no_repeat_ngram = 2;
    check_batched_equals_alone(m, &o);
    o.beam = 10; o.length_penalty = 0.9f; o.no_repeat_ngram = 4; o.max_new = 6;   // E2E
    check_batched_equals_alone(m, &o);
    model_free(m);
    // prefix tuning with an infix: rows carry extra positions
    m = nano_model(METHOD_PREFIX_LAYER, 9);
    o.beam = 3; o.max_new = 6;
    check_batched_equals_alone(m, &o);
    model_free(m);
}

// The key/value cache changes nothing: with the cached scorer and with the recomputing
// one, every step's log-probabilities agree (to float rounding) and the decoded tokens are
// the same, for greedy and beam search (which reorders the cache), under several methods.
// Under bf16 the prefill caches k and v as the forward kept them, rounded to bf16, so the
// two scorers agree to bf16 rounding (tol) and only the log-probabilities are compared.
static void check_cached_equals_recomputed(MethodKind kind, int li, Precision precision, double tol) {
    ModelConfig cfg;
    assert_int_equal(model_preset("nano", &cfg), 0);
    Model *m = nano_model_at(kind, 21, li, precision);
    assert_true(model_decode_supported(m));
    enum { NP = 3 };
    int p0[7], p1[3], p2[11];
    random_tokens(p0, 7, 1); random_tokens(p1, 3, 2); random_tokens(p2, 11, 3);
    const int *prompts[NP] = {p0, p1, p2};
    int lens[NP] = {7, 3, 11};
    // step by step: both scorers see the same rows; compare the log-probabilities
    DecodeScorer cached = decode_cached_scorer(m), full = decode_model_scorer(m);
    int V = cfg.vocab_size;
    double *a = xmalloc(sizeof(double) * NP * 2 * V), *b = xmalloc(sizeof(double) * NP * 2 * V);
    int rows_buf[NP * 2][32], rlen[NP * 2], plen[NP * 2];
    const int *rows[NP * 2];
    for (int i = 0; i < NP; i++) {
        memcpy(rows_buf[i], prompts[i], sizeof(int) * lens[i]);
        rlen[i] = plen[i] = lens[i];
        rows[i] = rows_buf[i];
    }
    cached.score(cached.ctx, rows, rlen, plen, NULL, NP, a);
    full.score(full.ctx, rows, rlen, plen, NULL, NP, b);
    int n = NP;
    for (int step = 0; step < 5; step++) {
        double worst = 0;
        for (size_t k = 0; k < (size_t)n * V; k++) worst = fmax(worst, fabs(a[k] - b[k]));
        if (worst > tol) fail_msg("%s step %d: cached and recomputed log-probabilities differ by %g", METHOD_NAMES[kind], step, worst);
        // next rows: every row doubles into its argmax and its second choice (a reordering
        // with repeated parents), capped at 2 NP rows
        int parent[NP * 2], nn = 0, nrow[NP * 2][32], nlen[NP * 2], nplen[NP * 2];
        for (int i = 0; i < n && nn < NP * 2; i++)
            for (int c = 0; c < 2 && nn < NP * 2; c++) {
                int best = 0, second = -1;
                for (int v = 1; v < V; v++) if (a[(size_t)i * V + v] > a[(size_t)i * V + best]) best = v;
                for (int v = 0; v < V; v++) if (v != best && (second < 0 || a[(size_t)i * V + v] > a[(size_t)i * V + second])) second = v;
                memcpy(nrow[nn], rows_buf[i], sizeof(int) * rlen[i]);
                nrow[nn][rlen[i]] = c ? second : best;
                nlen[nn] = rlen[i] + 1;
                nplen[nn] = plen[i];
                parent[nn++] = i;
            }
        n = nn;
        for (int i = 0; i < n; i++) {
            memcpy(rows_buf[i], nrow[i], sizeof(int) * nlen[i]);
            rlen[i] = nlen[i];
            plen[i] = nplen[i];
            rows[i] = rows_buf[i];
        }
        cached.score(cached.ctx, rows, rlen, plen, parent, n, a);
        full.score(full.ctx, rows, rlen, plen, parent, n, b);
    }
    free(a); free(b);
    if (precision == PRECISION_BF16) { model_free(m); return; }
    // whole searches: the same tokens
    DecodeOptions o;
    decode_defaults(&o, BYTE_EOS);
    o.max_new = 8;
    for (int pass = 0; pass < 2; pass++) {
        if (pass) { o.beam = 4; o.length_penalty = 0.9f; o.no_repeat_ngram = 2; }
        int *oc[NP], ocl[NP], *of[NP], ofl[NP];
        assert_int_equal(decode_search(&cached, prompts, lens, NP, &o, oc, ocl), 0);
        assert_int_equal(decode_search(&full, prompts, lens, NP, &o, of, ofl), 0);
        for (int i = 0; i < NP; i++) {
            assert_int_equal(ocl[i], ofl[i]);
            assert_memory_equal(oc[i], of[i], sizeof(int) * ocl[i]);
            free(oc[i]); free(of[i]);
        }
    }
    model_free(m);
}

static void test_cached_equals_recomputed(void **state) {
    (void)state;
    MethodKind kinds[] = {METHOD_FT, METHOD_LORA, METHOD_ADAPTER_H, METHOD_ADAPTER_L, METHOD_PREFIX_EMBED,
                          METHOD_PREFIX_LAYER};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        check_cached_equals_recomputed(kinds[i], 0, PRECISION_FP32, 1e-4);
    check_cached_equals_recomputed(METHOD_PREFIX_EMBED, 2, PRECISION_FP32, 1e-4);   // with an infix after the prompt
    check_cached_equals_recomputed(METHOD_PREFIX_LAYER, 2, PRECISION_FP32, 1e-4);
    check_cached_equals_recomputed(METHOD_FT, 0, PRECISION_BF16, 3e-2);   // observed up to 0.014
}

// (e) with the model: max_new bounds the length, and an EOS ends the continuation where it
// is the argmax (the EOS is taken to be the first new token of an unconstrained run).
static void test_model_stopping(void **state) {
    (void)state;
    Model *m = nano_model(METHOD_FT, 11);
    int prompt[8], plen = 8, *out, len;
    random_tokens(prompt, plen, 77);
    const int *prompts[1] = {prompt};
    DecodeOptions o;
    decode_defaults(&o, BYTE_EOS);
    o.max_new = 10;
    assert_int_equal(decode_batch(m, prompts, &plen, 1, &o, &out, &len), 0);
    assert_int_equal(len, 10);   // this model never prefers byte EOS
    int k = 1;
    while (k < len) {
        int seen = 0;
        for (int j = 0; j < k; j++) seen |= out[j] == out[k];
        if (!seen) break;
        k++;
    }
    assert_true(k < len);
    int *full = out;
    o.eos = full[k];
    assert_int_equal(decode_batch(m, prompts, &plen, 1, &o, &out, &len), 0);
    expect_tokens(out, len, full, k);
    free(out);
    o.eos = BYTE_EOS;
    o.max_new = 4;
    o.beam = 4;
    assert_int_equal(decode_batch(m, prompts, &plen, 1, &o, &out, &len), 0);
    assert_true(len >= 1 && len <= 4);
    free(out);
    // the context: a prompt filling n_ctx gets exactly one token
    int longp[64];
    random_tokens(longp, 64, 78);
    int ll = 64;
    const int *lp[1] = {longp};
    o.max_new = 10;
    assert_int_equal(decode_batch(m, lp, &ll, 1, &o, &out, &len), 0);
    assert_int_equal(len, 1);
    free(out);
    ll = 65;
    assert_int_equal(decode_batch(m, lp, &ll, 1, &o, &out, &len), -1);
    free(full);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beam_table),          cmocka_unit_test(test_beam_bound),
        cmocka_unit_test(test_no_repeat_ngram),
        cmocka_unit_test(test_no_repeat_excludes_prompt), cmocka_unit_test(test_stopping),
        cmocka_unit_test(test_bad_options),         cmocka_unit_test(test_logprobs_match_loss),
        cmocka_unit_test(test_greedy_matches_naive), cmocka_unit_test(test_batched_equals_alone),
        cmocka_unit_test(test_model_stopping),      cmocka_unit_test(test_cached_equals_recomputed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
