// tasks/format.h — turning a task's examples into token batches for core/model.h.
//
// A split is encoded once (format_encode: every text, text_b and target tokenized), then
// batches are cut from it. Row layouts (x = text, x2 = text_b, y = target; no BOS):
//
//   classification / regression   x [SEP x2] EOS  PAD ...      label / value for the head
//       Truncation to max_len: the EOS (and SEP) always stay; tokens are cut from the end of
//       the longer of x and x2 until the row fits ("longest first"). The head reads the last
//       real token, the EOS, at lengths[b] - 1.
//   generation                    x SEP y EOS  PAD ...
//       targets[t] = token[t + 1] for t from the SEP to the token before EOS (the model
//       predicts y and then EOS); -1 elsewhere, so the loss falls on y + EOS only.
//       Truncation to max_len: the prompt keeps its first max(max_len - |y| - 2,
//       min(|x|, max_len / 2)) tokens; the target then keeps what fits after the SEP, and
//       if y + EOS does not fit, y is cut and the EOS dropped (the model is never taught to
//       stop where the target did not end).
//   language model                documents joined as d0 EOS d1 EOS ... into one stream;
//       a row is T consecutive tokens from a start s, targets = the stream from s + 1.
//
// Batches are padded to the longest row of the batch (T <= max_len), lengths[b] = real
// tokens, padding carries PAD and target -1.
//
// Ownership: Encoded and LmStream own their arrays (free with format_encoded_free /
// format_lm_free); a BatchBuffer owns its arrays and its `batch` points into them.
#ifndef LORALAB_FORMAT_H
#define LORALAB_FORMAT_H

#include <stddef.h>

#include "core/model.h"
#include "tasks/task.h"
#include "tasks/tokenizer.h"

typedef struct {
    const int *x;  int nx;    // text
    const int *x2; int nx2;   // text_b (x2 == NULL: a single text)
    const int *y;  int ny;    // target (TASK_GEN)
    int label;
    float value;
} EncodedExample;

typedef struct {
    TaskKind kind;
    int n;
    EncodedExample *ex;
    int *pool;                // every id of every example
    int eos, sep, pad;
} Encoded;

typedef struct {
    int *tokens;              // d0 EOS d1 EOS ...
    size_t n;
} LmStream;

typedef struct {
    int cap_B, cap_T;
    int *tokens;              // (cap_B, cap_T)
    int *targets;             // (cap_B, cap_T)
    int *labels;              // (cap_B)
    float *values;            // (cap_B)
    int *lengths;             // (cap_B)
    int *prompt_lengths;      // (cap_B) generation rows: |x| + 1 ("x SEP"), where an infix goes
    Batch batch;              // the last batch made: pointers into the arrays above
} BatchBuffer;

// Tokenizes split s of t (text, text_b, target) with tok. Returns 0 (encoding cannot fail
// for valid input).
int format_encode(const Task *t, SplitId s, const Tokenizer *tok, Encoded *out);
void format_encoded_free(Encoded *e);

// One row of example i into tokens[max_len] (and targets[max_len] for generation, and the
// length of its "x SEP" prompt in *prompt_len unless NULL); returns its length. max_len >= 4.
int format_cls_row(const Encoded *e, int i, int max_len, int *tokens);
int format_gen_row(const Encoded *e, int i, int max_len, int *tokens, int *targets, int *prompt_len);
// The prompt of example i for decoding, "x SEP", truncated so that the prompt leaves room
// for max_new generated tokens within max_len (the prompt keeps its first tokens and at
// least one); returns its length.
int format_prompt(const Encoded *e, int i, int max_len, int max_new, int *tokens);

void batch_buffer_init(BatchBuffer *bb, int B, int T);
void batch_buffer_free(BatchBuffer *bb);

// Fills bb->batch with the examples idx[0..B) of e (B <= cap_B, max_len <= cap_T):
// classification / regression rows with labels or values, or generation rows with targets,
// following e->kind.
const Batch *format_batch(const Encoded *e, const int *idx, int B, int max_len, BatchBuffer *bb);

// The LM stream of split s (documents joined by EOS).
int format_lm_stream(const Task *t, SplitId s, const Tokenizer *tok, LmStream *out);
void format_lm_free(LmStream *s);
// Number of consecutive, non-overlapping rows of T tokens (with their next-token targets):
// row k starts at k * T. Evaluation uses these; training may use any starts.
size_t format_lm_num_rows(const LmStream *s, int T);
// Fills bb->batch with rows of T tokens starting at starts[0..B) (each start + T < s->n).
const Batch *format_lm_batch(const LmStream *s, const size_t *starts, int B, int T, BatchBuffer *bb);

#endif
