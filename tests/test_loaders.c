// tests/test_loaders.c — the loaders for users' own data (GLUE TSV, E2E NLG CSV, WikiSQL
// JSONL, SAMSum JSON) on the hand-written fixtures under tests/fixtures, including malformed
// rows (error with file:line, or a counted skip).
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "tasks/task.h"

#define FX "tests/fixtures/"

static Task *load_ok(const char *name, const char *path) {
    Task *t = NULL;
    int rc = task_load(name, path, NULL, &t);
    if (rc) print_message("%s: %s\n", name, err_msg());
    assert_int_equal(rc, 0);
    return t;
}

static void load_fails(const char *name, const char *path, int skip, const char *message) {
    Task *t = (Task *)1;
    TaskOptions opt = {.skip_malformed = skip};
    assert_int_equal(task_load_opts(name, path, NULL, &opt, &t), -1);
    assert_null(t);
    if (!strstr(err_msg(), message)) print_message("expected '%s' in '%s'\n", message, err_msg());
    assert_non_null(strstr(err_msg(), message));
}

static void assert_sizes(const Task *t, int train, int val, int test) {
    assert_int_equal(task_split_size(t, SPLIT_TRAIN), train);
    assert_int_equal(task_split_size(t, SPLIT_VALIDATION), val);
    assert_int_equal(task_split_size(t, SPLIT_TEST), test);
}

// ----------------------------------------------------------------------------
// GLUE

static void test_glue_single_sentence(void **state) {
    (void)state;
    Task *t = load_ok("glue-sst2", FX "glue/SST-2");
    assert_int_equal(t->kind, TASK_CLS);
    assert_sizes(t, 5, 2, 0);
    assert_string_equal(t->label_names[1], "positive");
    assert_string_equal(t->metrics[0], "accuracy");
    const Example *e = task_example(t, SPLIT_TRAIN, 2);
    assert_string_equal(e->text, "that loves its characters ");
    assert_null(e->text_b);
    assert_int_equal(e->label, 1);
    // majority (1: 3 of 5) on dev (1, 0)
    Baseline b[2];
    assert_int_equal(task_baselines(t, SPLIT_VALIDATION, b, 2), 1);
    assert_float_equal(b[0].value[0], 0.5, 1e-12);
    task_free(t);

    t = load_ok("glue-cola", FX "glue/CoLA");   // no header row
    assert_sizes(t, 4, 2, 0);
    assert_string_equal(t->metrics[0], "mcc");
    assert_string_equal(task_example(t, SPLIT_TRAIN, 2)->text, "They drank the pub .");
    assert_int_equal(task_example(t, SPLIT_TRAIN, 2)->label, 0);
    assert_int_equal(task_baselines(t, SPLIT_VALIDATION, b, 2), 1);
    assert_string_equal(b[0].metric[0], "mcc");
    assert_float_equal(b[0].value[0], 0.0, 1e-12);   // a constant prediction: MCC 0
    task_free(t);
}

static void test_glue_pairs(void **state) {
    (void)state;
    Task *t = load_ok("glue-mnli", FX "glue/MNLI");
    assert_sizes(t, 5, 2, 1);   // test = dev_mismatched
    assert_int_equal(t->n_labels, 3);
    const Example *e = task_example(t, SPLIT_TRAIN, 4);
    assert_string_equal(e->text, "yeah i tell you what though if you go price some of those tennis shoes");
    assert_string_equal(e->text_b, "The tennis shoes have a range of prices.");
    assert_int_equal(e->label, 2);   // contradiction
    // dev: gold_label is the 16th column, not label1
    assert_int_equal(task_example(t, SPLIT_VALIDATION, 0)->label, 1);   // neutral
    assert_string_equal(t->split_sources[SPLIT_TEST], "dev_mismatched.tsv");
    task_free(t);

    t = load_ok("glue-mrpc", FX "glue/MRPC");
    assert_sizes(t, 3, 2, 0);
    assert_int_equal(task_example(t, SPLIT_TRAIN, 1)->label, 0);
    assert_string_equal(task_example(t, SPLIT_TRAIN, 1)->text_b,
                        "Yucaipa bought Dominick 's in 1995 for $ 693 million and sold it to Safeway for $ 1.8 billion in 1998 .");
    assert_string_equal(t->metrics[1], "f1");
    task_free(t);

    t = load_ok("glue-qqp", FX "glue/QQP");
    assert_sizes(t, 3, 1, 0);
    assert_string_equal(task_example(t, SPLIT_TRAIN, 1)->text, "How do I control my horny emotions?");
    assert_int_equal(task_example(t, SPLIT_TRAIN, 1)->label, 1);
    task_free(t);

    t = load_ok("glue-qnli", FX "glue/QNLI");
    assert_sizes(t, 3, 1, 0);
    assert_int_equal(task_example(t, SPLIT_TRAIN, 2)->label, 0);   // entailment
    assert_int_equal(task_example(t, SPLIT_TRAIN, 0)->label, 1);
    task_free(t);

    t = load_ok("glue-rte", FX "glue/RTE");
    assert_sizes(t, 2, 1, 0);
    assert_string_equal(task_example(t, SPLIT_TRAIN, 0)->text_b, "Weapons of Mass Destruction Found in Iraq.");
    task_free(t);

    t = load_ok("glue-stsb", FX "glue/STS-B");
    assert_int_equal(t->kind, TASK_REG);
    assert_sizes(t, 3, 2, 0);
    assert_true(task_example(t, SPLIT_TRAIN, 1)->value == 3.8f);
    assert_string_equal(t->metrics[0], "pearson");
    Baseline b[1];
    assert_int_equal(task_baselines(t, SPLIT_VALIDATION, b, 1), 1);
    // train mean 4.2; dev 5.0, 4.75: MSE = (0.8^2 + 0.55^2) / 2
    assert_string_equal(b[0].metric[2], "mse");
    assert_float_equal(b[0].value[2], (0.64 + 0.3025) / 2, 1e-5);
    task_free(t);
}

static void test_glue_malformed(void **state) {
    (void)state;
    load_fails("glue-sst2", FX "glue/SST-2-bad", 0,
               "tests/fixtures/glue/SST-2-bad/train.tsv:4: expected a label (0, 1), got 'positive'");
    Task *t = NULL;
    TaskOptions skip = {.skip_malformed = 1};
    assert_int_equal(task_load_opts("glue-sst2", FX "glue/SST-2-bad", NULL, &skip, &t), 0);
    assert_int_equal(t->n_skipped, 2);   // line 4 (label) and line 5 (columns)
    assert_sizes(t, 3, 1, 0);
    assert_string_equal(task_example(t, SPLIT_TRAIN, 2)->text, "fine film ");
    task_free(t);
    load_fails("glue-stsb", FX "glue/STS-B-bad", 0,
               "tests/fixtures/glue/STS-B-bad/train.tsv:2: expected a number in column 'score', got 'five'");
    load_fails("glue-mnli", FX "glue/RTE", 0, "tests/fixtures/glue/RTE/train.tsv:1: header has no column 'gold_label'");
    load_fails("glue-sst2", FX "e2e", 0, "tests/fixtures/e2e/train.tsv: No such file or directory");
    load_fails("glue-sst2", FX "e2e", 0, "expects GLUE SST-2 folder");
}

// ----------------------------------------------------------------------------
// E2E NLG

static void test_e2e(void **state) {
    (void)state;
    Task *t = load_ok("e2e", FX "e2e");
    assert_int_equal(t->kind, TASK_GEN);
    assert_sizes(t, 3, 2, 1);   // train: one example per row; dev: grouped by mr
    const Example *e = task_example(t, SPLIT_TRAIN, 1);
    assert_string_equal(e->text, "name[The Vaults], eatType[pub], priceRange[more than \xC2\xA3" "30], customer rating[5 out of 5], near[Caf\xC3\xA9 Adriatic]");
    assert_string_equal(e->target, "Close to Caf\xC3\xA9 Adriatic, The Vaults pub is rated 5 stars, \"expensive\", and serves food.");
    assert_int_equal(e->nrefs, 1);
    e = task_example(t, SPLIT_VALIDATION, 0);
    assert_string_equal(e->text, "name[Blue Spice], eatType[coffee shop], area[city centre]");
    assert_int_equal(e->nrefs, 3);
    assert_string_equal(e->refs[0], "A coffee shop in the city centre area called Blue Spice.");
    assert_string_equal(e->refs[1], "Blue Spice is a coffee shop in city centre.");
    assert_string_equal(e->refs[2], "There is a coffee shop Blue Spice in the riverside area,\nsays the second line.");
    assert_ptr_equal(e->target, e->refs[0]);
    assert_int_equal(task_example(t, SPLIT_VALIDATION, 1)->nrefs, 1);
    Baseline b[2];
    assert_int_equal(task_baselines(t, SPLIT_VALIDATION, b, 2), 2);
    assert_string_equal(b[0].name, "most-frequent");
    assert_string_equal(b[1].name, "copy");
    assert_string_equal(b[1].metric[0], "bleu");
    task_free(t);
    load_fails("e2e", FX "e2e-bad", 0,
               "tests/fixtures/e2e-bad/trainset.csv:3: expected 2 comma-separated fields with a non-empty mr and ref, got 1");
    // skipping gets past the short row, but an unterminated quote cannot be skipped
    load_fails("e2e", FX "e2e-bad", 1, "tests/fixtures/e2e-bad/devset.csv:2: unterminated quoted field");
}

// ----------------------------------------------------------------------------
// WikiSQL

static void test_wikisql(void **state) {
    (void)state;
    Task *t = load_ok("wikisql", FX "wikisql");
    assert_sizes(t, 2, 1, 1);
    const Example *e = task_example(t, SPLIT_TRAIN, 0);
    assert_string_equal(e->text, "Tell me what the notes are for South Australia \ncolumns: State/territory | Text/background colour | "
                                 "Format | Current slogan | Current series | Notes");
    assert_string_equal(e->target, "SELECT Notes FROM table WHERE Current slogan = SOUTH AUSTRALIA");
    assert_string_equal(task_example(t, SPLIT_TRAIN, 1)->target,
                        "SELECT COUNT(Model) FROM table WHERE Order Year = 2005 AND Manufacturer > 1.5");
    assert_string_equal(task_example(t, SPLIT_VALIDATION, 0)->target, "SELECT Format FROM table WHERE State/territory = South Australia");
    assert_string_equal(task_example(t, SPLIT_TEST, 0)->target, "SELECT MAX(Order Year) FROM table");
    assert_string_equal(t->metrics[0], "exact_match");
    task_free(t);
    load_fails("wikisql", FX "wikisql-bad", 0, "tests/fixtures/wikisql-bad/train.jsonl:2: \"sel\" is 9, the table has 6 columns");
    Task *s = NULL;
    TaskOptions skip = {.skip_malformed = 1};
    assert_int_equal(task_load_opts("wikisql", FX "wikisql-bad", NULL, &skip, &s), 0);
    assert_int_equal(s->n_skipped, 3);   // bad column, broken JSON, unknown table
    assert_sizes(s, 1, 0, 0);
    task_free(s);
    load_fails("wikisql", FX "e2e", 0, "tests/fixtures/e2e/train.tables.jsonl: No such file or directory");
}

// ----------------------------------------------------------------------------
// SAMSum

static void test_samsum(void **state) {
    (void)state;
    Task *t = load_ok("samsum", FX "samsum");
    assert_sizes(t, 2, 1, 1);
    const Example *e = task_example(t, SPLIT_TRAIN, 0);
    assert_string_equal(e->text, "Amanda: I baked  cookies. Do you want some?\r\nJerry: Sure!\r\nAmanda: I'll bring you tomorrow :-)");
    assert_string_equal(e->target, "Amanda baked cookies and will bring Jerry some tomorrow.");
    assert_string_equal(t->metrics[0], "rouge1");
    task_free(t);
    load_fails("samsum", FX "samsum-bad", 0,
               "tests/fixtures/samsum-bad/train.json: item 1 (id 13828807): expected non-empty strings \"dialogue\" and \"summary\"");
    load_fails("samsum", FX "samsum-bad", 1, "tests/fixtures/samsum-bad/val.json:3:");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glue_single_sentence),
        cmocka_unit_test(test_glue_pairs),
        cmocka_unit_test(test_glue_malformed),
        cmocka_unit_test(test_e2e),
        cmocka_unit_test(test_wikisql),
        cmocka_unit_test(test_samsum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
