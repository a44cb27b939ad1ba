// tests/test_format.c — token rows and batches (tasks/format.h) with the byte tokenizer,
// checked against rows written out by hand (bytes are their ASCII codes; EOS 257, SEP 258,
// PAD 259).
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "tasks/format.h"

enum { EOS = 257, SEP = 258, PAD = 259 };

static Tokenizer *byte_tok(void) {
    Tokenizer *t = tokenizer_open("byte", NULL);
    assert_non_null(t);
    assert_int_equal(tokenizer_eos(t), EOS);
    assert_int_equal(tokenizer_sep(t), SEP);
    assert_int_equal(tokenizer_pad(t), PAD);
    return t;
}

static void add(Task *t, const char *text, const char *text_b, int label, float value, const char *target) {
    Example e = {.text = task_strdup(t, text), .label = label, .value = value};
    if (text_b) e.text_b = task_strdup(t, text_b);
    if (target) {
        const char **r = task_alloc(t, sizeof *r);
        r[0] = task_strdup(t, target);
        e.target = r[0];
        e.refs = r;
        e.nrefs = 1;
    }
    task_add(t, SPLIT_TRAIN, &e);
}

static void assert_ints(const int *got, const int *want, int n) {
    for (int i = 0; i < n; i++) {
        if (got[i] != want[i]) print_message("position %d: got %d, want %d\n", i, got[i], want[i]);
        assert_int_equal(got[i], want[i]);
    }
}

static void test_cls_rows_truncate_longest_first(void **state) {
    (void)state;
    Tokenizer *tok = byte_tok();
    Task *t = task_new("toy", TASK_CLS, "toy");
    add(t, "abcdef", NULL, 1, 0, NULL);
    add(t, "abcdef", "xy", 0, 0, NULL);
    add(t, "abcdef", "uvwxyz", 0, 0, NULL);
    add(t, "", "", 0, 0, NULL);
    Encoded e;
    assert_int_equal(format_encode(t, SPLIT_TRAIN, tok, &e), 0);
    int row[16];
    // single text: budget 5 - 1 (EOS) = 4
    assert_int_equal(format_cls_row(&e, 0, 5, row), 5);
    assert_ints(row, (int[]){'a', 'b', 'c', 'd', EOS}, 5);
    // untruncated
    assert_int_equal(format_cls_row(&e, 0, 16, row), 7);
    assert_ints(row, (int[]){'a', 'b', 'c', 'd', 'e', 'f', EOS}, 7);
    // pair, budget 7 - 2 = 5: the longer text loses 3
    assert_int_equal(format_cls_row(&e, 1, 7, row), 7);
    assert_ints(row, (int[]){'a', 'b', 'c', SEP, 'x', 'y', EOS}, 7);
    // pair of equal lengths, budget 6: 3 + 3
    assert_int_equal(format_cls_row(&e, 2, 8, row), 8);
    assert_ints(row, (int[]){'a', 'b', 'c', SEP, 'u', 'v', 'w', EOS}, 8);
    // empty pair keeps its SEP
    assert_int_equal(format_cls_row(&e, 3, 8, row), 2);
    assert_ints(row, (int[]){SEP, EOS}, 2);
    format_encoded_free(&e);
    task_free(t);
    tokenizer_free(tok);
}

static void test_cls_batch_pads_to_longest(void **state) {
    (void)state;
    Tokenizer *tok = byte_tok();
    Task *t = task_new("toy", TASK_CLS, "toy");
    add(t, "hello", NULL, 1, 0, NULL);
    add(t, "hi", NULL, 0, 0, NULL);
    add(t, "a very long text", NULL, 1, 0, NULL);
    Encoded e;
    format_encode(t, SPLIT_TRAIN, tok, &e);
    BatchBuffer bb;
    batch_buffer_init(&bb, 4, 8);
    const Batch *b = format_batch(&e, (int[]){1, 0}, 2, 8, &bb);
    assert_int_equal(b->B, 2);
    assert_int_equal(b->T, 6);   // "hello" + EOS
    assert_ints(b->tokens, (int[]){'h', 'i', EOS, PAD, PAD, PAD, 'h', 'e', 'l', 'l', 'o', EOS}, 12);
    assert_ints(b->lengths, (int[]){3, 6}, 2);
    assert_ints(b->labels, (int[]){0, 1}, 2);
    assert_null(b->targets);
    assert_null(b->values);
    // a truncated row fills max_len exactly, EOS last
    b = format_batch(&e, (int[]){2, 1}, 2, 8, &bb);
    assert_int_equal(b->T, 8);
    assert_ints(b->tokens, (int[]){'a', ' ', 'v', 'e', 'r', 'y', ' ', EOS, 'h', 'i', EOS, PAD, PAD, PAD, PAD, PAD}, 16);
    batch_buffer_free(&bb);
    format_encoded_free(&e);
    task_free(t);
    // regression: values, no labels
    Task *r = task_new("reg", TASK_REG, "toy");
    add(r, "s1", "s2", -1, 3.5f, NULL);
    format_encode(r, SPLIT_TRAIN, tok, &e);
    batch_buffer_init(&bb, 1, 8);
    b = format_batch(&e, (int[]){0}, 1, 8, &bb);
    assert_ints(b->tokens, (int[]){'s', '1', SEP, 's', '2', EOS}, 6);
    assert_null(b->labels);
    assert_non_null(b->values);
    assert_true(b->values[0] == 3.5f);
    batch_buffer_free(&bb);
    format_encoded_free(&e);
    task_free(r);
    tokenizer_free(tok);
}

static void test_gen_rows_loss_on_target(void **state) {
    (void)state;
    Tokenizer *tok = byte_tok();
    Task *t = task_new("toy", TASK_GEN, "toy");
    add(t, "AB", NULL, -1, 0, "xyz");
    add(t, "ABCDEFGH", NULL, -1, 0, "xyz");
    add(t, "AB", NULL, -1, 0, "uvwxyz0123");
    Encoded e;
    format_encode(t, SPLIT_TRAIN, tok, &e);
    int row[16], tgt[16], plen = 0;
    // A B SEP x y z EOS; the SEP predicts x, ..., z predicts EOS; the prompt is "A B SEP"
    assert_int_equal(format_gen_row(&e, 0, 16, row, tgt, &plen), 7);
    assert_int_equal(plen, 3);
    assert_ints(row, (int[]){'A', 'B', SEP, 'x', 'y', 'z', EOS}, 7);
    assert_ints(tgt, (int[]){-1, -1, 'x', 'y', 'z', EOS, -1}, 7);
    // max_len 8, prompt 8, target 3: the prompt keeps max(8 - 3 - 2, min(8, 4)) = 4 tokens;
    // 3 left after SEP cannot hold y + EOS: y is kept, EOS dropped
    assert_int_equal(format_gen_row(&e, 1, 8, row, tgt, &plen), 8);
    assert_int_equal(plen, 5);
    assert_ints(row, (int[]){'A', 'B', 'C', 'D', SEP, 'x', 'y', 'z'}, 8);
    assert_ints(tgt, (int[]){-1, -1, -1, -1, 'x', 'y', 'z', -1}, 8);
    // max_len 8, long target: the prompt stays whole (2 <= 4), the target is cut to 5
    assert_int_equal(format_gen_row(&e, 2, 8, row, tgt, &plen), 8);
    assert_ints(row, (int[]){'A', 'B', SEP, 'u', 'v', 'w', 'x', 'y'}, 8);
    assert_ints(tgt, (int[]){-1, -1, 'u', 'v', 'w', 'x', 'y', -1}, 8);
    // prompts for decoding: room for max_new tokens
    assert_int_equal(format_prompt(&e, 1, 8, 3, row), 5);
    assert_ints(row, (int[]){'A', 'B', 'C', 'D', SEP}, 5);
    assert_int_equal(format_prompt(&e, 0, 64, 16, row), 3);
    assert_ints(row, (int[]){'A', 'B', SEP}, 3);
    // a batch pads targets with -1
    BatchBuffer bb;
    batch_buffer_init(&bb, 2, 16);
    const Batch *b = format_batch(&e, (int[]){0, 2}, 2, 10, &bb);
    assert_int_equal(b->T, 10);
    assert_ints(b->tokens, (int[]){'A', 'B', SEP, 'x', 'y', 'z', EOS, PAD, PAD, PAD}, 10);
    assert_ints(b->targets, (int[]){-1, -1, 'x', 'y', 'z', EOS, -1, -1, -1, -1}, 10);
    assert_ints(b->tokens + 10, (int[]){'A', 'B', SEP, 'u', 'v', 'w', 'x', 'y', 'z', '0'}, 10);
    assert_ints(b->targets + 10, (int[]){-1, -1, 'u', 'v', 'w', 'x', 'y', 'z', '0', -1}, 10);
    assert_ints(b->prompt_lengths, (int[]){3, 3}, 2);   // where an infix goes
    assert_null(b->labels);
    batch_buffer_free(&bb);
    format_encoded_free(&e);
    task_free(t);
    tokenizer_free(tok);
}

static void test_lm_stream_blocks(void **state) {
    (void)state;
    Tokenizer *tok = byte_tok();
    Task *t = task_new("toy", TASK_LM, "toy");
    add(t, "ab", NULL, -1, 0, NULL);
    add(t, "c", NULL, -1, 0, NULL);
    LmStream s;
    format_lm_stream(t, SPLIT_TRAIN, tok, &s);
    assert_int_equal(s.n, 5);
    assert_ints(s.tokens, (int[]){'a', 'b', EOS, 'c', EOS}, 5);
    assert_int_equal(format_lm_num_rows(&s, 2), 2);
    assert_int_equal(format_lm_num_rows(&s, 4), 1);
    assert_int_equal(format_lm_num_rows(&s, 5), 0);
    BatchBuffer bb;
    batch_buffer_init(&bb, 2, 4);
    const Batch *b = format_lm_batch(&s, (size_t[]){0, 2}, 2, 2, &bb);
    assert_int_equal(b->B, 2);
    assert_int_equal(b->T, 2);
    assert_ints(b->tokens, (int[]){'a', 'b', EOS, 'c'}, 4);
    assert_ints(b->targets, (int[]){'b', EOS, 'c', EOS}, 4);
    assert_ints(b->lengths, (int[]){2, 2}, 2);
    batch_buffer_free(&bb);
    format_lm_free(&s);
    task_free(t);
    tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cls_rows_truncate_longest_first),
        cmocka_unit_test(test_cls_batch_pads_to_longest),
        cmocka_unit_test(test_gen_rows_loss_on_target),
        cmocka_unit_test(test_lm_stream_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
