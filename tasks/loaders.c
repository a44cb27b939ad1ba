// tasks/loaders.c — loaders for users' own copies of the paper's data sets.
//
//   glue-*   GLUE TSV folders as distributed by GLUE (download_glue_data.py): a header row
//            (columns found by name) except CoLA (fixed columns: source, label, *, sentence).
//            Splits: train.tsv → train, dev.tsv → validation, test empty (GLUE's test labels
//            are hidden); MNLI: dev_matched.tsv → validation, dev_mismatched.tsv → test.
//   e2e      E2E NLG CSV (header with columns mr and ref, RFC 4180 quoting): trainset.csv,
//            devset.csv, testset_w_refs.csv. The train split has one example per (mr, ref)
//            row; validation and test group every ref of an mr into one example.
//   wikisql  WikiSQL JSONL: {train,dev,test}.jsonl questions with their "sql" dict, tables
//            from {train,dev,test}.tables.jsonl; the target is the SQL string built from
//            sel / agg / conds with WikiSQL's agg_ops and cond_ops and the column names.
//   samsum   SAMSum JSON arrays train.json, val.json, test.json of {id, dialogue, summary}.
// A malformed row fails with "file:line: ..." unless TaskOptions.skip_malformed, which skips
// and counts it (Task.n_skipped).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/errors.h"
#include "core/files.h"
#include "tasks/loaders.h"

// A malformed row: fail, or count it when skipping. Returns 0 to continue, -1 to stop.
static int malformed(Task *t, const TaskOptions *opt) {
    if (opt->skip_malformed) { t->n_skipped++; return 0; }
    return -1;
}

static void join_path(char *out, size_t cap, const char *dir, const char *file) {
    snprintf(out, cap, "%s/%s", dir, file);
}

// Reads path/file; on failure the message names what the task expects in the folder.
static int read_task_file(const Task *t, const char *path, const char *file, char **buf, size_t *len) {
    char full[4096];
    join_path(full, sizeof full, path, file);
    if (task_read_file(full, 0, buf, len) != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", err_msg());
        return err_set("%s (task %s expects %s)", msg, t->name, task_path_hint(t->name));
    }
    return 0;
}

// ----------------------------------------------------------------------------
// GLUE

typedef struct {
    const char *name;
    const char *files[NUM_SPLITS];   // NULL: split left empty
    int header;                      // 0: fixed columns (CoLA)
    const char *col_a, *col_b, *col_label;   // header names (col_b NULL: single sentence)
    int idx_a, idx_label, ncols;             // fixed columns when header == 0
    TaskKind kind;
    int n_labels;
    const char *label_names[3];
    const char *label_values[3];     // spelling in the file
    int n_metrics;
    const char *metrics[2];
} GlueSpec;

static const GlueSpec GLUE[] = {
    {"glue-sst2", {"train.tsv", "dev.tsv", NULL}, 1, "sentence", NULL, "label", 0, 0, 0, TASK_CLS, 2,
     {"negative", "positive"}, {"0", "1"}, 1, {"accuracy"}},
    {"glue-mnli", {"train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"}, 1, "sentence1", "sentence2", "gold_label",
     0, 0, 0, TASK_CLS, 3, {"entailment", "neutral", "contradiction"}, {"entailment", "neutral", "contradiction"},
     1, {"accuracy"}},
    {"glue-cola", {"train.tsv", "dev.tsv", NULL}, 0, NULL, NULL, NULL, 3, 1, 4, TASK_CLS, 2,
     {"unacceptable", "acceptable"}, {"0", "1"}, 2, {"mcc", "accuracy"}},
    {"glue-stsb", {"train.tsv", "dev.tsv", NULL}, 1, "sentence1", "sentence2", "score", 0, 0, 0, TASK_REG, 0,
     {0}, {0}, 2, {"pearson", "spearman"}},
    {"glue-mrpc", {"train.tsv", "dev.tsv", NULL}, 1, "#1 String", "#2 String", "Quality", 0, 0, 0, TASK_CLS, 2,
     {"not_equivalent", "equivalent"}, {"0", "1"}, 2, {"accuracy", "f1"}},
    {"glue-qqp", {"train.tsv", "dev.tsv", NULL}, 1, "question1", "question2", "is_duplicate", 0, 0, 0, TASK_CLS, 2,
     {"not_duplicate", "duplicate"}, {"0", "1"}, 2, {"accuracy", "f1"}},
    {"glue-qnli", {"train.tsv", "dev.tsv", NULL}, 1, "question", "sentence", "label", 0, 0, 0, TASK_CLS, 2,
     {"entailment", "not_entailment"}, {"entailment", "not_entailment"}, 1, {"accuracy"}},
    {"glue-rte", {"train.tsv", "dev.tsv", NULL}, 1, "sentence1", "sentence2", "label", 0, 0, 0, TASK_CLS, 2,
     {"entailment", "not_entailment"}, {"entailment", "not_entailment"}, 1, {"accuracy"}},
};

// Splits line (modified in place) at tabs into cols; returns the column count.
static int split_tabs(char *line, char **cols, int cap) {
    int n = 0;
    for (char *p = line;;) {
        if (n < cap) cols[n] = p;
        n++;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

static int find_column(char **cols, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(cols[i], name)) return i;
    return -1;
}

static int glue_read_split(Task *t, const GlueSpec *g, const char *path, const char *file, SplitId split,
                           const TaskOptions *opt) {
    char *buf;
    size_t len;
    if (read_task_file(t, path, file, &buf, &len) != 0) return -1;
    char full[4096];
    join_path(full, sizeof full, path, file);
    enum { MAX_COLS = 32 };
    char *cols[MAX_COLS];
    int ia = g->idx_a, ib = -1, il = g->idx_label, need = g->ncols, lineno = 0, status = 0;
    for (char *p = buf; *p && status == 0;) {
        char *eol = strchr(p, '\n');
        char *next = eol ? eol + 1 : p + strlen(p);
        if (eol) *eol = '\0';
        if (eol > p && eol[-1] == '\r') eol[-1] = '\0';
        lineno++;
        char *line = p;
        p = next;
        if (!*line) continue;
        int nc = split_tabs(line, cols, MAX_COLS);
        if (nc > MAX_COLS) nc = MAX_COLS;
        if (g->header && lineno == 1) {
            ia = find_column(cols, nc, g->col_a);
            ib = g->col_b ? find_column(cols, nc, g->col_b) : -1;
            il = find_column(cols, nc, g->col_label);
            const char *missing = ia < 0 ? g->col_a : (g->col_b && ib < 0) ? g->col_b : il < 0 ? g->col_label : NULL;
            if (missing) { status = err_set("%s:1: header has no column '%s' (is this %s's %s?)", full, missing, g->name, file); break; }
            need = (ia > ib ? ia : ib) + 1;
            if (il + 1 > need) need = il + 1;
            continue;
        }
        if (nc < need) {
            err_set("%s:%d: expected at least %d tab-separated columns, got %d", full, lineno, need, nc);
            if ((status = malformed(t, opt)) != 0) break;
            continue;
        }
        Example ex = {.label = -1};
        ex.text = task_strdup(t, cols[ia]);
        if (ib >= 0) ex.text_b = task_strdup(t, cols[ib]);
        if (g->kind == TASK_REG) {
            char *end;
            errno = 0;
            double v = strtod(cols[il], &end);
            if (end == cols[il] || *end || errno) {
                err_set("%s:%d: expected a number in column '%s', got '%s'", full, lineno, g->col_label, cols[il]);
                if ((status = malformed(t, opt)) != 0) break;
                continue;
            }
            ex.value = (float)v;
        } else {
            for (int c = 0; c < g->n_labels; c++)
                if (!strcmp(cols[il], g->label_values[c])) ex.label = c;
            if (ex.label < 0) {
                char want[128] = "";
                for (int c = 0; c < g->n_labels; c++)
                    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", c ? ", " : "", g->label_values[c]);
                err_set("%s:%d: expected a label (%s), got '%s'", full, lineno, want, cols[il]);
                if ((status = malformed(t, opt)) != 0) break;
                continue;
            }
        }
        task_add(t, split, &ex);
    }
    free(buf);
    return status;
}

int load_glue(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out) {
    const GlueSpec *g = NULL;
    for (size_t i = 0; i < sizeof GLUE / sizeof GLUE[0]; i++)
        if (!strcmp(GLUE[i].name, name)) g = &GLUE[i];
    LAB_ASSERT(g);
    char desc[256];
    snprintf(desc, sizeof desc, "GLUE %s from %s", name + 5, path);
    Task *t = task_new(name, g->kind, desc);
    if (g->kind == TASK_CLS) task_set_labels(t, g->n_labels, g->label_names);
    task_set_metrics(t, g->n_metrics, g->metrics);
    for (int s = 0; s < NUM_SPLITS; s++) {
        t->split_sources[s] = g->files[s] ? g->files[s] : "(none: GLUE test labels are not public)";
        if (g->files[s] && glue_read_split(t, g, path, g->files[s], (SplitId)s, opt) != 0) { task_free(t); return -1; }
    }
    *out = t;
    return 0;
}

// ----------------------------------------------------------------------------
// CSV (RFC 4180) and E2E

// Reads one record starting at *pos into fields (arena copies of t); advances *pos and
// *line. Returns the field count, 0 at the end of input, -1 on an unterminated quote.
static int csv_record(Task *t, const char *s, size_t *pos, int *line, char **fields, int cap) {
    size_t i = *pos;
    if (!s[i]) return 0;
    int n = 0;
    size_t fcap = 256, flen = 0;
    char *f = xmalloc(fcap);
    for (;;) {
        flen = 0;
        int quoted = s[i] == '"';
        if (quoted) i++;
        for (;;) {
            char c = s[i];
            if (quoted) {
                if (!c) { free(f); return -1; }
                if (c == '"' && s[i + 1] == '"') { c = '"'; i++; }
                else if (c == '"') { quoted = 0; i++; continue; }
                else if (c == '\n') (*line)++;
            } else if (!c || c == ',' || c == '\n' || (c == '\r' && s[i + 1] == '\n')) {
                break;
            }
            if (flen + 2 > fcap) { fcap *= 2; f = xrealloc(f, fcap); }
            f[flen++] = c;
            i++;
        }
        if (n < cap) fields[n] = task_strndup(t, f, flen);
        n++;
        if (s[i] == ',') { i++; continue; }
        if (s[i] == '\r') i++;
        if (s[i] == '\n') { i++; (*line)++; }
        break;
    }
    free(f);
    *pos = i;
    return n;
}

typedef struct {
    const char *mr;
    int first_ref, nrefs;
} MrGroup;

static int e2e_read_split(Task *t, const char *path, const char *file, SplitId split, const TaskOptions *opt) {
    char *buf;
    size_t len;
    if (read_task_file(t, path, file, &buf, &len) != 0) return -1;
    char full[4096];
    join_path(full, sizeof full, path, file);
    enum { MAX_FIELDS = 16 };
    char *fields[MAX_FIELDS];
    size_t pos = 0;
    int line = 1, status = 0, imr = -1, iref = -1;
    int start = line, nf = csv_record(t, buf, &pos, &line, fields, MAX_FIELDS);
    if (nf < 0) status = err_set("%s:%d: unterminated quoted field", full, start);
    else if (nf == 0) status = err_set("%s: empty file (expected a header row: mr,ref)", full);
    for (int i = 0; status == 0 && i < nf && i < MAX_FIELDS; i++) {
        if (!strcasecmp(fields[i], "mr")) imr = i;
        if (!strcasecmp(fields[i], "ref")) iref = i;
    }
    if (status == 0 && (imr < 0 || iref < 0)) status = err_set("%s:1: expected a header row with columns mr and ref", full);
    // rows, grouped by mr in order of first appearance (train: one example per row)
    const char **mrs = NULL, **refs = NULL;
    int n = 0, cap = 0, need = (imr > iref ? imr : iref) + 1;
    while (status == 0) {
        start = line;
        nf = csv_record(t, buf, &pos, &line, fields, MAX_FIELDS);
        if (nf == 0) break;
        if (nf < 0) { status = err_set("%s:%d: unterminated quoted field", full, start); break; }
        if (nf == 1 && !fields[0][0]) continue;   // blank line
        if (nf < need || !fields[imr][0] || !fields[iref][0]) {
            err_set("%s:%d: expected %d comma-separated fields with a non-empty mr and ref, got %d", full, start, need, nf);
            status = malformed(t, opt);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            mrs = xrealloc(mrs, (size_t)cap * sizeof *mrs);
            refs = xrealloc(refs, (size_t)cap * sizeof *refs);
        }
        mrs[n] = fields[imr];
        refs[n] = fields[iref];
        n++;
    }
    free(buf);
    if (status == 0 && split == SPLIT_TRAIN) {
        for (int i = 0; i < n; i++) {
            const char **r = task_alloc(t, sizeof *r);
            r[0] = refs[i];
            Example ex = {.text = mrs[i], .label = -1, .target = refs[i], .refs = r, .nrefs = 1};
            task_add(t, split, &ex);
        }
    } else if (status == 0) {
        // group: a hash map from mr to group index
        size_t hcap = 1;
        while (hcap < 2 * (size_t)n + 2) hcap *= 2;
        int *slot = xcalloc(hcap, sizeof *slot);   // group index + 1
        MrGroup *groups = xcalloc((size_t)n + 1, sizeof *groups);
        int *group_of = xmalloc(((size_t)n + 1) * sizeof *group_of);
        int ng = 0;
        for (int i = 0; i < n; i++) {
            size_t h = task_fnv1a(mrs[i], strlen(mrs[i])) & (hcap - 1);
            while (slot[h] && strcmp(groups[slot[h] - 1].mr, mrs[i])) h = (h + 1) & (hcap - 1);
            if (!slot[h]) { groups[ng].mr = mrs[i]; slot[h] = ++ng; }
            group_of[i] = slot[h] - 1;
            groups[slot[h] - 1].nrefs++;
        }
        const char ***r = xcalloc((size_t)ng + 1, sizeof *r);
        for (int g = 0; g < ng; g++) r[g] = task_alloc(t, (size_t)groups[g].nrefs * sizeof **r);
        for (int i = 0; i < n; i++) {
            MrGroup *g = &groups[group_of[i]];
            r[group_of[i]][g->first_ref++] = refs[i];
        }
        for (int g = 0; g < ng; g++) {
            Example ex = {.text = groups[g].mr, .label = -1, .target = r[g][0], .refs = r[g], .nrefs = groups[g].nrefs};
            task_add(t, split, &ex);
        }
        free(r);
        free(slot);
        free(groups);
        free(group_of);
    }
    free(mrs);
    free(refs);
    return status;
}

int load_e2e(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out) {
    Task *t = task_new(name, TASK_GEN, "E2E NLG meaning representation -> restaurant description (several references)");
    static const char *const METRICS[] = {"bleu", "rougeL"};
    static const char *const FILES[NUM_SPLITS] = {"trainset.csv", "devset.csv", "testset_w_refs.csv"};
    task_set_metrics(t, 2, METRICS);
    for (int s = 0; s < NUM_SPLITS; s++) {
        t->split_sources[s] = FILES[s];
        if (e2e_read_split(t, path, FILES[s], (SplitId)s, opt) != 0) { task_free(t); return -1; }
    }
    *out = t;
    return 0;
}

// ----------------------------------------------------------------------------
// WikiSQL

static const char *const AGG_OPS[] = {"", "MAX", "MIN", "COUNT", "SUM", "AVG"};
static const char *const COND_OPS[] = {"=", ">", "<", "OP"};

// Appends printf output to a growable string.
static void str_appendf(char **s, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void str_appendf(char **s, size_t *len, size_t *cap, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(*s + *len, *cap - *len, fmt, ap);
        va_end(ap);
        LAB_ASSERT(w >= 0);
        if ((size_t)w < *cap - *len) { *len += (size_t)w; return; }
        *cap = 2 * (*len + (size_t)w + 1);
        *s = xrealloc(*s, *cap);
    }
}

// Reads a tables file into an object: table id → header array.
static int wikisql_tables(Task *t, const char *path, const char *file, json_t **out) {
    char *buf;
    size_t len;
    if (read_task_file(t, path, file, &buf, &len) != 0) return -1;
    char full[4096];
    join_path(full, sizeof full, path, file);
    json_t *tables = json_object();
    int lineno = 0, status = 0;
    for (char *p = buf; *p;) {
        char *eol = strchr(p, '\n');
        char *next = eol ? eol + 1 : p + strlen(p);
        if (eol) *eol = '\0';
        lineno++;
        char *line = p;
        p = next;
        if (!*line || (line[0] == '\r' && !line[1])) continue;
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        json_t *id = j ? json_object_get(j, "id") : NULL, *header = j ? json_object_get(j, "header") : NULL;
        if (!j) status = err_set("%s:%d: %s", full, lineno, jerr.text);
        else if (!json_is_string(id) || !json_is_array(header))
            status = err_set("%s:%d: expected a table with \"id\" (string) and \"header\" (array)", full, lineno);
        else json_object_set(tables, json_string_value(id), header);
        json_decref(j);
        if (status) break;
    }
    free(buf);
    if (status) { json_decref(tables); return -1; }
    *out = tables;
    return 0;
}

// Builds "SELECT AGG(col) FROM table WHERE col op value AND ..." from a "sql" dict, or
// returns NULL with err_set() (no location; the caller prefixes it).
static char *wikisql_sql(json_t *sql, json_t *header) {
    json_t *sel = json_object_get(sql, "sel"), *agg = json_object_get(sql, "agg"), *conds = json_object_get(sql, "conds");
    int ncol = (int)json_array_size(header);
    if (!json_is_integer(sel) || !json_is_integer(agg) || !json_is_array(conds)) {
        err_set("\"sql\" needs integer \"sel\", integer \"agg\" and array \"conds\"");
        return NULL;
    }
    long long s = json_integer_value(sel), a = json_integer_value(agg);
    if (s < 0 || s >= ncol) { err_set("\"sel\" is %lld, the table has %d columns", s, ncol); return NULL; }
    if (a < 0 || a >= 6) { err_set("\"agg\" is %lld, expected 0..5 (agg_ops)", a); return NULL; }
    const char *sel_name = json_string_value(json_array_get(header, (size_t)s));
    if (!sel_name) { err_set("table header entry %lld is not a string", s); return NULL; }
    size_t len = 0, cap = 256;
    char *out = xmalloc(cap);
    if (a) str_appendf(&out, &len, &cap, "SELECT %s(%s) FROM table", AGG_OPS[a], sel_name);
    else str_appendf(&out, &len, &cap, "SELECT %s FROM table", sel_name);
    for (size_t k = 0; k < json_array_size(conds); k++) {
        json_t *c = json_array_get(conds, k);
        json_t *ci = json_array_get(c, 0), *oi = json_array_get(c, 1), *v = json_array_get(c, 2);
        if (!json_is_array(c) || json_array_size(c) != 3 || !json_is_integer(ci) || !json_is_integer(oi) ||
            !(json_is_string(v) || json_is_number(v))) {
            err_set("condition %zu: expected [column, operator, value]", k);
            free(out);
            return NULL;
        }
        long long col = json_integer_value(ci), op = json_integer_value(oi);
        const char *cname = col >= 0 && col < ncol ? json_string_value(json_array_get(header, (size_t)col)) : NULL;
        if (!cname || op < 0 || op >= 4) {
            err_set("condition %zu: column %lld / operator %lld out of range (%d columns, 4 cond_ops)", k, col, op, ncol);
            free(out);
            return NULL;
        }
        str_appendf(&out, &len, &cap, "%s %s %s ", k ? " AND" : " WHERE", cname, COND_OPS[op]);
        if (json_is_string(v)) str_appendf(&out, &len, &cap, "%s", json_string_value(v));
        else if (json_is_integer(v)) str_appendf(&out, &len, &cap, "%lld", (long long)json_integer_value(v));
        else str_appendf(&out, &len, &cap, "%g", json_real_value(v));
    }
    return out;
}

static int wikisql_read_split(Task *t, const char *path, const char *split_name, SplitId split, const TaskOptions *opt) {
    char qfile[256], tfile[256], full[4096];
    snprintf(qfile, sizeof qfile, "%s.jsonl", split_name);
    snprintf(tfile, sizeof tfile, "%s.tables.jsonl", split_name);
    json_t *tables;
    if (wikisql_tables(t, path, tfile, &tables) != 0) return -1;
    char *buf;
    size_t len;
    if (read_task_file(t, path, qfile, &buf, &len) != 0) { json_decref(tables); return -1; }
    join_path(full, sizeof full, path, qfile);
    int lineno = 0, status = 0;
    for (char *p = buf; *p && status == 0;) {
        char *eol = strchr(p, '\n');
        char *next = eol ? eol + 1 : p + strlen(p);
        if (eol) *eol = '\0';
        lineno++;
        char *line = p;
        p = next;
        if (!*line || (line[0] == '\r' && !line[1])) continue;
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        json_t *q = j ? json_object_get(j, "question") : NULL, *tid = j ? json_object_get(j, "table_id") : NULL;
        json_t *sql = j ? json_object_get(j, "sql") : NULL;
        json_t *header = json_is_string(tid) ? json_object_get(tables, json_string_value(tid)) : NULL;
        char *target = NULL;
        if (!j) err_set("%s:%d: %s", full, lineno, jerr.text);
        else if (!json_is_string(q) || !json_is_string(tid) || !json_is_object(sql))
            err_set("%s:%d: expected \"question\" (string), \"table_id\" (string) and \"sql\" (object)", full, lineno);
        else if (!header) err_set("%s:%d: table '%s' is not in %s", full, lineno, json_string_value(tid), tfile);
        else if (!(target = wikisql_sql(sql, header))) err_prefix("%s:%d", full, lineno);
        if (!target) {
            json_decref(j);
            status = malformed(t, opt);
            continue;
        }
        // prompt: the question, then the table's columns
        size_t plen = 0, pcap = 256;
        char *prompt = xmalloc(pcap);
        str_appendf(&prompt, &plen, &pcap, "%s\ncolumns:", json_string_value(q));
        for (size_t c = 0; c < json_array_size(header); c++) {
            const char *h = json_string_value(json_array_get(header, c));
            str_appendf(&prompt, &plen, &pcap, "%s %s", c ? " |" : "", h ? h : "");
        }
        const char **refs = task_alloc(t, sizeof *refs);
        refs[0] = task_strdup(t, target);
        Example ex = {.text = task_strdup(t, prompt), .label = -1, .target = refs[0], .refs = refs, .nrefs = 1};
        task_add(t, split, &ex);
        free(prompt);
        free(target);
        json_decref(j);
    }
    free(buf);
    json_decref(tables);
    return status;
}

int load_wikisql(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out) {
    Task *t = task_new(name, TASK_GEN, "WikiSQL question + table columns -> SQL (logical-form exact match)");
    static const char *const METRICS[] = {"exact_match"};
    static const char *const NAMES[NUM_SPLITS] = {"train", "dev", "test"};
    static const char *const SOURCES[NUM_SPLITS] = {"train.jsonl", "dev.jsonl", "test.jsonl"};
    task_set_metrics(t, 1, METRICS);
    for (int s = 0; s < NUM_SPLITS; s++) {
        t->split_sources[s] = SOURCES[s];
        if (wikisql_read_split(t, path, NAMES[s], (SplitId)s, opt) != 0) { task_free(t); return -1; }
    }
    *out = t;
    return 0;
}

// ----------------------------------------------------------------------------
// SAMSum

static int samsum_read_split(Task *t, const char *path, const char *file, SplitId split, const TaskOptions *opt) {
    char full[4096];
    join_path(full, sizeof full, path, file);
    json_error_t jerr;
    if (files_check_regular(full, "a SAMSum split")) return -1;
    json_t *arr = json_load_file(full, 0, &jerr);
    if (!arr) {
        if (jerr.line <= 0) return err_set("%s: %s (task samsum expects %s)", full, jerr.text, task_path_hint("samsum"));
        return err_set("%s:%d: %s", full, jerr.line, jerr.text);
    }
    if (!json_is_array(arr)) { json_decref(arr); return err_set("%s: expected a JSON array of {id, dialogue, summary}", full); }
    int status = 0;
    for (size_t i = 0; i < json_array_size(arr) && status == 0; i++) {
        json_t *o = json_array_get(arr, i);
        json_t *d = json_object_get(o, "dialogue"), *s = json_object_get(o, "summary"), *id = json_object_get(o, "id");
        const char *dv = json_string_value(d), *sv = json_string_value(s);
        if (!dv || !sv || !*dv || !*sv) {
            err_set("%s: item %zu (id %s): expected non-empty strings \"dialogue\" and \"summary\"", full, i,
                    json_is_string(id) ? json_string_value(id) : "?");
            status = malformed(t, opt);
            continue;
        }
        const char **refs = task_alloc(t, sizeof *refs);
        refs[0] = task_strdup(t, sv);
        Example ex = {.text = task_strdup(t, dv), .label = -1, .target = refs[0], .refs = refs, .nrefs = 1};
        task_add(t, split, &ex);
    }
    json_decref(arr);
    return status;
}

int load_samsum(const char *name, const char *path, const char *data_dir, const TaskOptions *opt, Task **out) {
    Task *t = task_new(name, TASK_GEN, "SAMSum dialogue -> summary");
    static const char *const METRICS[] = {"rouge1", "rouge2", "rougeL"};
    static const char *const FILES[NUM_SPLITS] = {"train.json", "val.json", "test.json"};
    task_set_metrics(t, 3, METRICS);
    for (int s = 0; s < NUM_SPLITS; s++) {
        t->split_sources[s] = FILES[s];
        if (samsum_read_split(t, path, FILES[s], (SplitId)s, opt) != 0) { task_free(t); return -1; }
    }
    *out = t;
    return 0;
}
