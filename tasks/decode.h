// tasks/decode.h — greedy and beam-search decoding for generation tasks.
//
// decode_batch continues n prompts at once: every step, the live hypotheses of every prompt
// that is not finished go to the model as one batch of right-padded rows (model_forward,
// training off), and each row's next-token log-probabilities come from its last real
// position (log-softmax on the host, in double).
//
// Search (as the LoRA paper's examples/NLG/src/gpt2_beam.py, fairseq and Hugging Face do):
//   - A hypothesis's score is the sum of its tokens' log-probabilities. Each step, every live
//     hypothesis of a prompt is extended by every token; the 2*beam best extensions are read
//     in order (ties: lower hypothesis, then lower token id): an EOS finishes its hypothesis
//     (kept aside), other tokens make the next live hypotheses until there are `beam`.
//   - Finished hypotheses are compared by sum / len^length_penalty, len = generated tokens
//     including the EOS (the paper's code: cur_len of the history that ends with the EOS).
//     At most `beam` are kept (a better one replaces the worst).
//   - A prompt stops when `beam` hypotheses are finished and no live one can still beat the
//     worst of them (log-probabilities are <= 0, so a live score can only fall; the bound
//     takes the most favourable length it could still finish with), or when no live one is
//     left. At max_new generated tokens (or when the row would outgrow the model's context,
//     n_ctx minus prefix positions) the live hypotheses are finished as they are, without
//     EOS, with len = their length.
//   - beam == 1 is greedy decoding: the argmax token each step, stop at EOS; the length
//     penalty then has no effect (as in Hugging Face, where num_beams=1 ignores it).
//   - no_repeat_ngram = n > 0: a token that would complete an n-gram already present in the
//     hypothesis's generated tokens gets log-probability -inf. The prompt is excluded, as in
//     the paper's gpt2_beam.py (its history holds generated tokens only; Hugging Face would
//     include the prompt of a decoder-only model). n == 1 forbids repeating any token.
//   The paper's E2E setting: beam 10, length_penalty 0.9, no_repeat_ngram 4.
//
// Where the model comes in: one scorer function, "log p(next token | prefix) for these rows"
// (DecodeScoreFn). decode_batch uses decode_model_logprobs, which recomputes every prefix in
// full at every step (O(T^2) per hypothesis), or, when the model allows it, the key/value-
// cached scorer: each call says, for every row, which row of the previous call it extends
// by one token (parent), so the cache is reordered and extended.
//
// Ownership: decode_batch / decode_search fill out[i] with a malloc'd array (never NULL,
// even for an empty continuation) of out_lens[i] tokens, without the EOS; the caller frees
// each out[i]. Memory during a search: n * beam rows of vocab doubles of log-probabilities.
#ifndef LORALAB_DECODE_H
#define LORALAB_DECODE_H

#include "core/model.h"

typedef struct {
    int beam;               // hypotheses kept per prompt; 1 = greedy
    float length_penalty;   // finished hypotheses ranked by sum log p / len^length_penalty
    int no_repeat_ngram;    // n > 0: no n-gram twice in a continuation; 0 = off
    int max_new;            // at most this many generated tokens per prompt, the EOS included
    int eos;                // end-of-sequence token id
} DecodeOptions;

// Greedy, length_penalty 1, no_repeat_ngram 0, max_new 64, the given eos.
void decode_defaults(DecodeOptions *opt, int eos);

// Next-token log-probabilities for n prefixes: rows[i][0..lens[i]) is prompt i's tokens
// followed by the tokens generated so far; writes logp[i * vocab + v] = log p(v | rows[i])
// (-inf allowed). parent[i] is the index, in the previous call of the same search, of the
// row that rows[i] extends by exactly one token; parent is NULL on the first call (every
// row is a bare prompt). Rows of one call may have different lengths. prompt_lens[i] is the
// length of row i's prompt (a prefix-tuning model puts its infix after it).
typedef void (*DecodeScoreFn)(void *ctx, const int *const *rows, const int *lens,
                              const int *prompt_lens, const int *parent, int n, double *logp);

typedef struct {
    DecodeScoreFn score;
    void *ctx;
    int vocab;      // V
    int max_len;    // longest row the scorer accepts (the model: n_ctx - prefix positions)
} DecodeScorer;

// Decodes n prompts (prompts[i][0..prompt_lens[i]), each 1..max_len tokens) with the model
// m (LM head) and writes each best continuation to out[i] / out_lens[i]. Returns 0, or -1
// with err_set() on bad options (beam < 1, max_new < 1, no_repeat_ngram < 0, eos outside
// the vocabulary) or a prompt that is empty or longer than the model's context; nothing is
// allocated then.
int decode_batch(Model *m, const int *const *prompts, const int *prompt_lens, int n,
                 const DecodeOptions *opt, int **out, int *out_lens);

// The same search with any scorer (decode_batch = decode_search with the model scorer).
int decode_search(const DecodeScorer *s, const int *const *prompts, const int *prompt_lens,
                  int n, const DecodeOptions *opt, int **out, int *out_lens);

// The recomputing model scorer: runs the model on rows (in as few forward calls as the
// memory budget allows, B rows right-padded) and writes log-softmax of the logits that
// predict each row's next token into logp (n, V). Rows hold 1..decode_model_max_len(m)
// tokens; prompt_lens (NULL: each whole row) places an infix as Batch.prompt_lengths does.
void decode_model_logprobs(Model *m, const int *const *rows, const int *lens, const int *prompt_lens,
                           int n, double *logp);
// Longest row the model takes: n_ctx minus its prefix and infix positions.
int decode_model_max_len(const Model *m);
// A DecodeScorer over decode_model_logprobs (ctx = m; parent ignored).
DecodeScorer decode_model_scorer(Model *m);
// The key/value-cached scorer (core/model.h model_decode_*): same log-probabilities, one
// token per row per step. Requires model_decode_supported(m) (an LM head); decode_batch
// uses it then, and the recomputing scorer otherwise.
DecodeScorer decode_cached_scorer(Model *m);

#endif
