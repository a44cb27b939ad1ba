// tasks/format.c — examples to token rows and batches. See format.h for the layouts and
// truncation rules.
#include "tasks/format.h"

#include <string.h>

#include "core/errors.h"

// ----------------------------------------------------------------------------
// encoding

typedef struct {
    int *p;
    size_t n, cap;
} IntVec;

// Appends the tokens of text to v; returns the offset of the first one.
static size_t encode_into(const Tokenizer *tok, const char *text, IntVec *v, int *count) {
    int *ids;
    size_t n;
    tokenizer_encode(tok, text, strlen(text), &ids, &n);
    if (v->n + n > v->cap) {
        v->cap = 2 * (v->n + n) + 1024;
        v->p = xrealloc(v->p, v->cap * sizeof *v->p);
    }
    memcpy(v->p + v->n, ids, n * sizeof *ids);
    free(ids);
    size_t off = v->n;
    v->n += n;
    *count = (int)n;
    return off;
}

int format_encode(const Task *t, SplitId s, const Tokenizer *tok, Encoded *out) {
    memset(out, 0, sizeof *out);
    const Split *sp = task_split(t, s);
    out->kind = t->kind;
    out->n = sp->n;
    out->eos = tokenizer_eos(tok);
    out->sep = tokenizer_sep(tok);
    out->pad = tokenizer_pad(tok);
    out->ex = xcalloc((size_t)sp->n + 1, sizeof *out->ex);
    // offsets first (the pool moves while it grows), pointers after
    size_t *off = xcalloc(3 * (size_t)sp->n + 1, sizeof *off);
    IntVec v = {0};
    for (int i = 0; i < sp->n; i++) {
        const Example *x = &sp->ex[i];
        EncodedExample *e = &out->ex[i];
        off[3 * i] = encode_into(tok, x->text, &v, &e->nx);
        if (x->text_b) off[3 * i + 1] = encode_into(tok, x->text_b, &v, &e->nx2);
        if (x->target) off[3 * i + 2] = encode_into(tok, x->target, &v, &e->ny);
        e->label = x->label;
        e->value = x->value;
    }
    out->pool = v.p ? v.p : xmalloc(sizeof(int));
    for (int i = 0; i < sp->n; i++) {
        EncodedExample *e = &out->ex[i];
        e->x = out->pool + off[3 * i];
        e->x2 = sp->ex[i].text_b ? out->pool + off[3 * i + 1] : NULL;
        e->y = sp->ex[i].target ? out->pool + off[3 * i + 2] : NULL;
    }
    free(off);
    return 0;
}

void format_encoded_free(Encoded *e) {
    free(e->ex);
    free(e->pool);
    memset(e, 0, sizeof *e);
}

// ----------------------------------------------------------------------------
// rows

int format_cls_row(const Encoded *e, int i, int max_len, int *tokens) {
    LAB_ASSERT(i >= 0 && i < e->n && max_len >= 4);
    const EncodedExample *x = &e->ex[i];
    int pair = x->x2 != NULL;
    int na = x->nx, nb = x->nx2;
    int budget = max_len - 1 - pair;   // room left after EOS (and SEP)
    while (na + nb > budget) {         // longest first
        if (na >= nb) na--;
        else nb--;
    }
    int n = 0;
    if (na) memcpy(tokens, x->x, (size_t)na * sizeof *tokens);
    n += na;
    if (pair) {
        tokens[n++] = e->sep;
        if (nb) memcpy(tokens + n, x->x2, (size_t)nb * sizeof *tokens);
        n += nb;
    }
    tokens[n++] = e->eos;
    return n;
}

// Prompt tokens kept for a target of ny tokens in a row of max_len.
static int prompt_keep(int nx, int ny, int max_len) {
    int floor_half = nx < max_len / 2 ? nx : max_len / 2;
    int keep = max_len - ny - 2;
    if (keep < floor_half) keep = floor_half;
    return keep < nx ? keep : nx;
}

int format_gen_row(const Encoded *e, int i, int max_len, int *tokens, int *targets, int *prompt_len) {
    LAB_ASSERT(i >= 0 && i < e->n && max_len >= 4);
    const EncodedExample *x = &e->ex[i];
    int np = prompt_keep(x->nx, x->ny, max_len);
    int room = max_len - np - 1;             // after the SEP
    int ny = x->ny + 1 <= room ? x->ny : room;
    int with_eos = x->ny + 1 <= room;
    int n = 0;
    if (np) memcpy(tokens, x->x, (size_t)np * sizeof *tokens);
    n += np;
    tokens[n++] = e->sep;
    if (prompt_len) *prompt_len = n;
    if (ny) memcpy(tokens + n, x->y, (size_t)ny * sizeof *tokens);
    n += ny;
    if (with_eos) tokens[n++] = e->eos;
    for (int t = 0; t < n; t++) targets[t] = t >= np && t + 1 < n ? tokens[t + 1] : -1;
    return n;
}

int format_prompt(const Encoded *e, int i, int max_len, int max_new, int *tokens) {
    LAB_ASSERT(i >= 0 && i < e->n && max_new >= 0 && max_len >= 2);
    const EncodedExample *x = &e->ex[i];
    int np = max_len - 1 - max_new;
    if (np < 1) np = 1;
    if (np > x->nx) np = x->nx;
    if (np) memcpy(tokens, x->x, (size_t)np * sizeof *tokens);
    tokens[np] = e->sep;
    return np + 1;
}

// ----------------------------------------------------------------------------
// batches

void batch_buffer_init(BatchBuffer *bb, int B, int T) {
    LAB_ASSERT(B > 0 && T > 0);
    memset(bb, 0, sizeof *bb);
    bb->cap_B = B;
    bb->cap_T = T;
    bb->tokens = xmalloc((size_t)B * T * sizeof *bb->tokens);
    bb->targets = xmalloc((size_t)B * T * sizeof *bb->targets);
    bb->labels = xmalloc((size_t)B * sizeof *bb->labels);
    bb->values = xmalloc((size_t)B * sizeof *bb->values);
    bb->lengths = xmalloc((size_t)B * sizeof *bb->lengths);
    bb->prompt_lengths = xmalloc((size_t)B * sizeof *bb->prompt_lengths);
}

void batch_buffer_free(BatchBuffer *bb) {
    free(bb->tokens);
    free(bb->targets);
    free(bb->labels);
    free(bb->values);
    free(bb->lengths);
    free(bb->prompt_lengths);
    memset(bb, 0, sizeof *bb);
}

const Batch *format_batch(const Encoded *e, const int *idx, int B, int max_len, BatchBuffer *bb) {
    LAB_ASSERT(B > 0 && B <= bb->cap_B && max_len <= bb->cap_T && e->kind != TASK_LM);
    int gen = e->kind == TASK_GEN;
    // rows are written at stride max_len first, then packed to the batch's longest row
    int T = 1;
    for (int b = 0; b < B; b++) {
        int *row = bb->tokens + (size_t)b * max_len, *trow = bb->targets + (size_t)b * max_len;
        int n = gen ? format_gen_row(e, idx[b], max_len, row, trow, &bb->prompt_lengths[b])
                    : format_cls_row(e, idx[b], max_len, row);
        bb->lengths[b] = n;
        if (n > T) T = n;
        bb->labels[b] = e->ex[idx[b]].label;
        bb->values[b] = e->ex[idx[b]].value;
    }
    for (int b = 0; b < B; b++) {   // forward order is safe: row b moves to b*T <= b*max_len
        int n = bb->lengths[b];
        memmove(bb->tokens + (size_t)b * T, bb->tokens + (size_t)b * max_len, (size_t)n * sizeof(int));
        if (gen) memmove(bb->targets + (size_t)b * T, bb->targets + (size_t)b * max_len, (size_t)n * sizeof(int));
        for (int t = n; t < T; t++) {
            bb->tokens[(size_t)b * T + t] = e->pad;
            if (gen) bb->targets[(size_t)b * T + t] = -1;
        }
    }
    bb->batch = (Batch){.B = B, .T = T, .tokens = bb->tokens, .lengths = bb->lengths,
                        .targets = gen ? bb->targets : NULL,
                        .prompt_lengths = gen ? bb->prompt_lengths : NULL,
                        .labels = e->kind == TASK_CLS ? bb->labels : NULL,
                        .values = e->kind == TASK_REG ? bb->values : NULL};
    return &bb->batch;
}

// ----------------------------------------------------------------------------
// language modelling

int format_lm_stream(const Task *t, SplitId s, const Tokenizer *tok, LmStream *out) {
    memset(out, 0, sizeof *out);
    const Split *sp = task_split(t, s);
    IntVec v = {0};
    int eos = tokenizer_eos(tok), count;
    for (int i = 0; i < sp->n; i++) {
        encode_into(tok, sp->ex[i].text, &v, &count);
        if (v.n + 1 > v.cap) { v.cap = 2 * v.n + 1024; v.p = xrealloc(v.p, v.cap * sizeof *v.p); }
        v.p[v.n++] = eos;
    }
    out->tokens = v.p ? v.p : xmalloc(sizeof(int));
    out->n = v.n;
    return 0;
}

void format_lm_free(LmStream *s) {
    free(s->tokens);
    memset(s, 0, sizeof *s);
}

size_t format_lm_num_rows(const LmStream *s, int T) {
    LAB_ASSERT(T > 0);
    return s->n > 1 ? (s->n - 1) / (size_t)T : 0;
}

const Batch *format_lm_batch(const LmStream *s, const size_t *starts, int B, int T, BatchBuffer *bb) {
    LAB_ASSERT(B > 0 && B <= bb->cap_B && T > 0 && T <= bb->cap_T);
    for (int b = 0; b < B; b++) {
        LAB_ASSERT(starts[b] + (size_t)T < s->n);
        memcpy(bb->tokens + (size_t)b * T, s->tokens + starts[b], (size_t)T * sizeof(int));
        memcpy(bb->targets + (size_t)b * T, s->tokens + starts[b] + 1, (size_t)T * sizeof(int));
        bb->lengths[b] = T;
    }
    bb->batch = (Batch){.B = B, .T = T, .tokens = bb->tokens, .targets = bb->targets, .lengths = bb->lengths};
    return &bb->batch;
}
