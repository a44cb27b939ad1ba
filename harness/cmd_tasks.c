// harness/cmd_tasks.c — `loralab tasks`: every task with its kind, split sizes, label
// distribution, metrics and baseline scores, so that reported numbers can be read against it.
#include <stdio.h>
#include <string.h>

#include "core/errors.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "tasks/task.h"

// ----------------------------------------------------------------------------
// a small text table: rows of cells, printed aligned or as Markdown

enum { TABLE_COLS = 10, TABLE_ROWS = 128, CELL = 192 };

typedef struct {
    int nrows;
    char cell[TABLE_ROWS][TABLE_COLS][CELL];
} Table;

static void table_row(Table *tb, const char *const *cells) {
    if (tb->nrows == TABLE_ROWS) return;
    for (int c = 0; c < TABLE_COLS; c++) snprintf(tb->cell[tb->nrows][c], CELL, "%s", cells[c] ? cells[c] : "");
    tb->nrows++;
}

// Display width of UTF-8 text (code points; the labels are ASCII anyway).
static int width(const char *s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void table_print(const Table *tb, int markdown) {
    int w[TABLE_COLS] = {0};
    for (int r = 0; r < tb->nrows; r++)
        for (int c = 0; c < TABLE_COLS; c++)
            if (width(tb->cell[r][c]) > w[c]) w[c] = width(tb->cell[r][c]);
    for (int r = 0; r < tb->nrows; r++) {
        for (int c = 0; c < TABLE_COLS; c++) {
            const char *s = tb->cell[r][c];
            if (markdown) printf("| %s%*s ", s, w[c] - width(s), "");
            else printf("%s%*s%s", s, c == TABLE_COLS - 1 ? 0 : w[c] - width(s), "", c == TABLE_COLS - 1 ? "" : "  ");
        }
        printf(markdown ? "|\n" : "\n");
        if (markdown && r == 0) {
            for (int c = 0; c < TABLE_COLS; c++) {
                printf("|");
                for (int k = 0; k < w[c] + 2; k++) putchar('-');
            }
            printf("|\n");
        }
    }
}

// ----------------------------------------------------------------------------

static void size_text(const Task *t, SplitId s, char *out, size_t cap) {
    int n = task_split_size(t, s);
    if (t->kind != TASK_LM) { snprintf(out, cap, "%d", n); return; }
    double bytes = 0;
    for (int i = 0; i < n; i++) bytes += (double)strlen(task_example(t, s, i)->text);
    snprintf(out, cap, "%d (%.1f MB)", n, bytes / 1e6);
}

static void labels_text(const Task *t, char *out, size_t cap) {
    out[0] = '\0';
    if (t->kind == TASK_CLS) {
        int counts[TASK_MAX_LABELS], n = task_split_size(t, SPLIT_TRAIN);
        task_label_counts(t, SPLIT_TRAIN, counts);
        for (int c = 0; c < t->n_labels; c++)
            snprintf(out + strlen(out), cap - strlen(out), "%s%s %.1f%%", c ? ", " : "", t->label_names[c],
                     n ? 100.0 * counts[c] / n : 0.0);
    } else if (t->kind == TASK_REG) {
        snprintf(out, cap, "real-valued");
    } else if (t->kind == TASK_GEN) {
        double refs = 0;
        int n = task_split_size(t, SPLIT_VALIDATION);
        for (int i = 0; i < n; i++) refs += task_example(t, SPLIT_VALIDATION, i)->nrefs;
        snprintf(out, cap, "%.2f refs/example (validation)", n ? refs / n : 0.0);
    } else {
        snprintf(out, cap, "documents");
    }
}

static void baseline_text(const Baseline *b, char *out, size_t cap) {
    out[0] = '\0';
    for (int k = 0; k < b->n; k++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s %.3f", k ? ", " : "", b->metric[k], b->value[k]);
}

static void add_task_rows(Table *tb, const Task *t) {
    char sizes[NUM_SPLITS][64], labels[CELL], metrics[CELL] = "";
    for (int s = 0; s < NUM_SPLITS; s++) size_text(t, (SplitId)s, sizes[s], sizeof sizes[s]);
    labels_text(t, labels, sizeof labels);
    for (int m = 0; m < t->n_metrics; m++)
        snprintf(metrics + strlen(metrics), sizeof metrics - strlen(metrics), "%s%s", m ? ", " : "", t->metrics[m]);
    Baseline bv[4], bt[4];
    int nv = task_baselines(t, SPLIT_VALIDATION, bv, 4), nt = task_baselines(t, SPLIT_TEST, bt, 4);
    int nb = nv > nt ? nv : nt;
    for (int b = 0; b < (nb ? nb : 1); b++) {
        char val[CELL] = "-", test[CELL] = "-";
        if (b < nv) baseline_text(&bv[b], val, sizeof val);
        if (b < nt) baseline_text(&bt[b], test, sizeof test);
        const char *name = b < nv ? bv[b].name : b < nt ? bt[b].name : "-";
        const char *first[TABLE_COLS] = {t->name, TASK_KIND_NAMES[t->kind], sizes[0], sizes[1], sizes[2], labels, metrics, name, val, test};
        const char *more[TABLE_COLS] = {"", "", "", "", "", "", "", name, val, test};
        table_row(tb, b == 0 ? first : more);
    }
}

static void print_examples(const Task *t, int show) {
    for (int s = 0; s < NUM_SPLITS; s++) {
        int n = task_split_size(t, (SplitId)s);
        printf("\n%s / %s (%s): %d examples\n", t->name, SPLIT_NAMES[s], t->split_sources[s] ? t->split_sources[s] : "", n);
        for (int i = 0; i < n && i < show; i++) {
            const Example *e = task_example(t, (SplitId)s, i);
            printf("  [%d] text: %.200s%s\n", i, e->text, strlen(e->text) > 200 ? " ..." : "");
            if (e->text_b) printf("      text_b: %.200s\n", e->text_b);
            if (t->kind == TASK_CLS) printf("      label: %s\n", t->label_names[e->label]);
            if (t->kind == TASK_REG) printf("      value: %g\n", e->value);
            for (int k = 0; t->kind == TASK_GEN && k < e->nrefs; k++) printf("      ref %d: %.200s\n", k, e->refs[k]);
        }
    }
}

int cmd_tasks(int argc, char **argv) {
    const char *data = NULL, *path = NULL;
    int show = 0, markdown = 0, skip = 0;
    const ArgSpec specs[] = {
        {"--data", ARG_STRING, &data, 0, 0, "folder of the built-in data (default: $LORALAB_DATA or data/, from `make data`)"},
        {"--path", ARG_STRING, &path, 0, 0, "your data folder for a loader task (glue-*, e2e, wikisql, samsum)"},
        {"--show", ARG_INT, &show, 0, 1000000, "also print the first N examples of each split"},
        {"--markdown", ARG_FLAG, &markdown, 0, 0, "print the table as Markdown"},
        {"--skip-malformed", ARG_FLAG, &skip, 0, 0, "skip (and count) malformed rows instead of failing"},
    };
    const int nspecs = sizeof specs / sizeof specs[0];
    const char *usage = "tasks [TASK...] [--path DIR] [--data DIR] [--show N] [--markdown]\n"
                        "  lists the built-in tasks (or the named ones) with split sizes, label distribution (train),\n"
                        "  metrics and baselines (computed from the train split) on validation and test";
    ArgResult ar;
    if (args_parse(argc, argv, specs, nspecs, &ar) != 0) return -1;
    if (ar.help) {
        args_usage(stdout, usage, specs, nspecs);
        printf("\ntasks:");
        for (int i = 0; TASK_NAMES[i]; i++) printf(" %s", TASK_NAMES[i]);
        printf("\nloader tasks read --path DIR:\n");
        for (int i = 0; TASK_NAMES[i]; i++)
            if (!task_is_builtin(TASK_NAMES[i])) printf("  %-11s %s\n", TASK_NAMES[i], task_path_hint(TASK_NAMES[i]));
        args_result_free(&ar);
        return 0;
    }
    const char *names[64];
    int n = 0;
    if (ar.npositional == 0) {
        if (path) { args_result_free(&ar); err_set("--path needs a task name (e.g. loralab tasks glue-sst2 --path DIR)"); return -1; }
        for (int i = 0; TASK_NAMES[i]; i++)
            if (task_is_builtin(TASK_NAMES[i])) names[n++] = TASK_NAMES[i];
    } else {
        for (int i = 0; i < ar.npositional && n < 64; i++) names[n++] = ar.positional[i];
    }
    Table *tb = xcalloc(1, sizeof *tb);
    const char *header[TABLE_COLS] = {"task", "kind", "train", "validation", "test", "labels (train)", "metrics",
                                      "baseline", "baseline on validation", "baseline on test"};
    table_row(tb, header);
    TaskOptions opt = {.skip_malformed = skip};
    Task **tasks = xcalloc((size_t)n, sizeof *tasks);
    int status = 0;
    for (int i = 0; i < n && status == 0; i++) {
        if (task_load_opts(names[i], task_is_builtin(names[i]) ? NULL : path, data, &opt, &tasks[i]) != 0) status = 2;
        else add_task_rows(tb, tasks[i]);
    }
    if (status == 0) {
        table_print(tb, markdown);
        for (int i = 0; i < n; i++) {
            if (tasks[i]->n_skipped) printf("%s: skipped %d malformed rows\n", tasks[i]->name, tasks[i]->n_skipped);
            if (tasks[i]->n_duplicates) printf("%s: dropped %d exact duplicate messages\n", tasks[i]->name, tasks[i]->n_duplicates);
            if (tasks[i]->n_decontaminated)
                printf("%s: dropped %d validation/test examples found verbatim in train material\n", tasks[i]->name,
                       tasks[i]->n_decontaminated);
            if (show) print_examples(tasks[i], show);
        }
    }
    for (int i = 0; i < n; i++) task_free(tasks[i]);
    free(tasks);
    free(tb);
    args_result_free(&ar);
    return status ? -1 : 0;
}
