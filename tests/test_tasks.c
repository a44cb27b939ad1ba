// tests/test_tasks.c — the task interface, split hashing, the built-in tasks on the pinned
// data (skipped when `make data` has not run), the pretrain-contamination check, the email
// decoders and the baselines.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "tasks/email.h"
#include "tasks/loaders.h"
#include "tasks/task.h"

static const char *data_dir(void) {
    const char *d = getenv("LORALAB_DATA");
    return d && *d ? d : "data";
}

static int have_data(void) {
    char p[4096];
    struct stat st;
    const char *pk[] = {"sotu", "moby-dick", "spam-assassin", "cmudict"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s/.sha256", data_dir(), pk[i]);
        if (stat(p, &st) != 0) return 0;
    }
    return 1;
}

#define NEED_DATA()                                                                        \
    do {                                                                                   \
        if (!have_data()) {                                                                \
            print_message("data/ not fetched (run `make data`); skipping\n");              \
            skip();                                                                        \
        }                                                                                  \
    } while (0)

static Task *load(const char *name) {
    Task *t = NULL;
    int rc = task_load(name, NULL, data_dir(), &t);
    if (rc != 0) print_message("task_load(%s): %s\n", name, err_msg());
    assert_int_equal(rc, 0);
    return t;
}

// ----------------------------------------------------------------------------
// a set of strings (for disjointness checks)

typedef struct {
    const char **s;
    size_t cap;
} StrSet;

static void set_init(StrSet *set, size_t n) {
    set->cap = 1;
    while (set->cap < 2 * n + 2) set->cap *= 2;
    set->s = calloc(set->cap, sizeof *set->s);
}

static size_t set_slot(const StrSet *set, const char *s, size_t len) {
    size_t i = task_fnv1a(s, len) & (set->cap - 1);
    while (set->s[i] && !(strlen(set->s[i]) == len && !memcmp(set->s[i], s, len))) i = (i + 1) & (set->cap - 1);
    return i;
}

static void set_add(StrSet *set, const char *s) { set->s[set_slot(set, s, strlen(s))] = s; }
static int set_has(const StrSet *set, const char *s, size_t len) { return set->s[set_slot(set, s, len)] != NULL; }

// ----------------------------------------------------------------------------
// split hashing: values from an independent Python implementation

static void test_fnv1a_vectors(void **state) {
    (void)state;
    assert_true(task_fnv1a("", 0) == 0xcbf29ce484222325ULL);
    assert_true(task_fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(task_fnv1a("foobar", 6) == 0x85944171f73967e8ULL);
}

static void test_split_of_key_reference(void **state) {
    (void)state;
    static const struct { const char *salt, *key; SplitId want; } CASES[] = {
        {"sotu", "1790 George Washington", SPLIT_TRAIN},   {"sotu", "1793 George Washington", SPLIT_TEST},
        {"sotu", "1794 George Washington", SPLIT_VALIDATION}, {"sotu", "1801 Thomas Jefferson", SPLIT_VALIDATION},
        {"sotu", "1797 John Adams", SPLIT_TEST},           {"cmudict", "ABBREVIATE", SPLIT_VALIDATION},
        {"cmudict", "AAA", SPLIT_TEST},                    {"cmudict", "CAT", SPLIT_TEST},
        {"cmudict", "DOG", SPLIT_TRAIN},                   {"moby-dick", "chapter_1.txt", SPLIT_TRAIN},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        assert_int_equal(task_split_of_key(CASES[i].salt, CASES[i].key, strlen(CASES[i].key)), CASES[i].want);
}

static void test_split_fractions(void **state) {
    (void)state;
    int count[NUM_SPLITS] = {0};
    char key[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        count[task_split_of_key("x", key, (size_t)n)]++;
    }
    assert_in_range(count[SPLIT_TRAIN], 79000, 81000);
    assert_in_range(count[SPLIT_VALIDATION], 9500, 10500);
    assert_in_range(count[SPLIT_TEST], 9500, 10500);
}

// ----------------------------------------------------------------------------
// loading errors

static void test_unknown_task_lists_known(void **state) {
    (void)state;
    Task *t = (Task *)1;
    assert_int_equal(task_load("sst-3", NULL, data_dir(), &t), -1);
    assert_null(t);
    assert_non_null(strstr(err_msg(), "unknown task 'sst-3'"));
    assert_non_null(strstr(err_msg(), "spam, sotu-era, sotu-party, g2p"));
    assert_non_null(strstr(err_msg(), "glue-sst2"));
}

static void test_missing_data_names_make_data(void **state) {
    (void)state;
    const char *names[] = {"spam", "sotu-era", "g2p", "pretrain"};
    for (int i = 0; i < 4; i++) {
        Task *t = NULL;
        assert_int_equal(task_load(names[i], NULL, "/nonexistent/loralab-data", &t), -1);
        assert_null(t);
        assert_non_null(strstr(err_msg(), "/nonexistent/loralab-data/"));
        assert_non_null(strstr(err_msg(), "make data"));
    }
}

static void test_path_rules(void **state) {
    (void)state;
    Task *t = NULL;
    assert_int_equal(task_load("glue-sst2", NULL, NULL, &t), -1);
    assert_non_null(strstr(err_msg(), "give its path"));
    assert_int_equal(task_load("spam", "/tmp", NULL, &t), -1);
    assert_non_null(strstr(err_msg(), "takes no path"));
}

// ----------------------------------------------------------------------------
// built-in tasks on the pinned data

static void test_builtin_sizes(void **state) {
    (void)state;
    NEED_DATA();
    // The data are pinned by sha256 and the splits by hash: these numbers are the same on
    // every machine; a change means the splits changed.
    static const struct { const char *name; int n[NUM_SPLITS]; } SIZES[] = {
        {"spam", {4704, 606, 598}},
        {"sotu-era", {76941, 6913, 7532}},
        {"sotu-party", {76941, 6913, 7532}},
        {"g2p", {100079, 12492, 12434}},
        {"pretrain", {5104, 658, 645}},
    };
    for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++) {
        Task *t = load(SIZES[i].name);
        for (int s = 0; s < NUM_SPLITS; s++) {
            if (task_split_size(t, (SplitId)s) != SIZES[i].n[s])
                print_message("%s %s: %d\n", SIZES[i].name, SPLIT_NAMES[s], task_split_size(t, (SplitId)s));
            assert_int_equal(task_split_size(t, (SplitId)s), SIZES[i].n[s]);
        }
        task_free(t);
    }
}

static void test_spam_and_g2p_disjoint(void **state) {
    (void)state;
    NEED_DATA();
    const char *names[] = {"spam", "g2p", "sotu-era"};
    for (int k = 0; k < 3; k++) {
        Task *t = load(names[k]);
        StrSet train;
        set_init(&train, (size_t)task_split_size(t, SPLIT_TRAIN));
        for (int i = 0; i < task_split_size(t, SPLIT_TRAIN); i++) set_add(&train, task_example(t, SPLIT_TRAIN, i)->text);
        for (int s = SPLIT_VALIDATION; s < NUM_SPLITS; s++)
            for (int i = 0; i < task_split_size(t, (SplitId)s); i++) {
                const char *x = task_example(t, (SplitId)s, i)->text;
                if (set_has(&train, x, strlen(x))) print_message("%s: '%.60s' in train and %s\n", names[k], x, SPLIT_NAMES[s]);
                assert_false(set_has(&train, x, strlen(x)));
            }
        free(train.s);
        task_free(t);
    }
}

// Every passage of an address lies in the address's split: rebuild the passages address by
// address and find each in exactly its split.
static void collect(void *ctx, const char *p) {
    const char ***out = ctx;
    *(*out)++ = p;
}

static void test_sotu_split_by_address(void **state) {
    (void)state;
    NEED_DATA();
    Task *t = load("sotu-party");
    Task *scratch = task_new("scratch", TASK_CLS, "");
    SotuAddress *addr;
    int n = sotu_read(scratch, data_dir(), &addr);
    assert_int_equal(n, 233);
    StrSet in[NUM_SPLITS];
    for (int s = 0; s < NUM_SPLITS; s++) {
        set_init(&in[s], (size_t)task_split_size(t, (SplitId)s));
        for (int i = 0; i < task_split_size(t, (SplitId)s); i++) set_add(&in[s], task_example(t, (SplitId)s, i)->text);
    }
    int addresses[NUM_SPLITS] = {0};
    const char **buf = malloc(20000 * sizeof *buf);
    for (int a = 0; a < n; a++) {
        char key[256];
        int kl = snprintf(key, sizeof key, "%d %s", addr[a].year, addr[a].name);
        assert_int_equal(addr[a].split, task_split_of_key("sotu", key, (size_t)kl));
        addresses[addr[a].split]++;
        const char **end = buf;
        sotu_passages(scratch, addr[a].text, collect, &end);
        assert_true(end - buf > 0 && end - buf < 20000);
        for (const char **p = buf; p < end; p++) {
            assert_true(strlen(*p) <= SOTU_PASSAGE_BYTES);
            // present in its own split (unless dropped as a duplicate of a train passage)
            if (addr[a].split == SPLIT_TRAIN) assert_true(set_has(&in[SPLIT_TRAIN], *p, strlen(*p)));
            for (int s = 0; s < NUM_SPLITS; s++)
                if (s != (int)addr[a].split && s != SPLIT_TRAIN) assert_false(set_has(&in[s], *p, strlen(*p)));
        }
    }
    print_message("sotu addresses: train %d, validation %d, test %d\n", addresses[0], addresses[1], addresses[2]);
    free(buf);
    for (int s = 0; s < NUM_SPLITS; s++) free(in[s].s);
    free(addr);
    task_free(scratch);
    task_free(t);
}

// ----------------------------------------------------------------------------
// pretrain contamination: search the pretrain train corpus for every validation / test
// passage (sotu), message (spam) and dictionary word (g2p)

enum { PROBE = 32 };
static const uint64_t BASE = 1099511628211ULL;

typedef struct {
    const char *text;
    size_t len;
    uint64_t h;   // rolling hash of the first PROBE bytes
} Probe;

static uint64_t window_hash(const unsigned char *s) {
    uint64_t h = 0;
    for (int i = 0; i < PROBE; i++) h = h * BASE + s[i];
    return h;
}

static int cmp_probe(const void *a, const void *b) {
    uint64_t x = ((const Probe *)a)->h, y = ((const Probe *)b)->h;
    return x < y ? -1 : x > y;
}

// Number of probes found verbatim anywhere in corpus (Rabin-Karp over one pass).
static int count_found(const char *corpus, size_t n, Probe *probes, int np, int verbose) {
    qsort(probes, (size_t)np, sizeof *probes, cmp_probe);
    size_t cap = 1;
    while (cap < 4 * (size_t)np) cap *= 2;
    int *first = malloc(cap * sizeof *first);   // hash slot → index of first probe with that hash, -1
    for (size_t i = 0; i < cap; i++) first[i] = -1;
    for (int i = 0; i < np; i++) {
        if (i > 0 && probes[i].h == probes[i - 1].h) continue;
        size_t j = probes[i].h & (cap - 1);
        while (first[j] >= 0) j = (j + 1) & (cap - 1);
        first[j] = i;
    }
    char *found = calloc((size_t)np, 1);
    uint64_t top = 1;
    for (int i = 1; i < PROBE; i++) top *= BASE;
    const unsigned char *s = (const unsigned char *)corpus;
    uint64_t h = n >= PROBE ? window_hash(s) : 0;
    for (size_t pos = 0; pos + PROBE <= n; pos++) {
        if (pos > 0) h = (h - s[pos - 1] * top) * BASE + s[pos + PROBE - 1];
        for (size_t j = h & (cap - 1); first[j] >= 0; j = (j + 1) & (cap - 1)) {
            if (probes[first[j]].h != h) continue;
            for (int k = first[j]; k < np && probes[k].h == h; k++)
                if (!found[k] && probes[k].len <= n - pos && !memcmp(corpus + pos, probes[k].text, probes[k].len)) {
                    found[k] = 1;
                    if (verbose) print_message("found in pretrain train: '%.70s'\n", probes[k].text);
                }
            break;
        }
    }
    int count = 0;
    for (int i = 0; i < np; i++) count += found[i];
    free(found);
    free(first);
    return count;
}

static void test_pretrain_has_no_eval_data(void **state) {
    (void)state;
    NEED_DATA();
    Task *pre = load("pretrain"), *spam = load("spam"), *sotu = load("sotu-era"), *g2p = load("g2p");
    // the corpus: every train document, separated by a byte that occurs in none
    size_t n = 0;
    for (int i = 0; i < task_split_size(pre, SPLIT_TRAIN); i++) n += strlen(task_example(pre, SPLIT_TRAIN, i)->text) + 1;
    char *corpus = malloc(n + 1);
    size_t o = 0;
    for (int i = 0; i < task_split_size(pre, SPLIT_TRAIN); i++) {
        const char *x = task_example(pre, SPLIT_TRAIN, i)->text;
        size_t l = strlen(x);
        assert_null(memchr(x, 1, l));
        memcpy(corpus + o, x, l);
        o += l;
        corpus[o++] = 1;
    }
    corpus[o] = '\0';
    // probes: every validation / test sotu passage and spam text of at least PROBE bytes
    int np = 0, short_texts = 0;
    Probe *probes = malloc(40000 * sizeof *probes);
    Task *by_text[2] = {sotu, spam};
    for (int k = 0; k < 2; k++)
        for (int s = SPLIT_VALIDATION; s < NUM_SPLITS; s++)
            for (int i = 0; i < task_split_size(by_text[k], (SplitId)s); i++) {
                const char *x = task_example(by_text[k], (SplitId)s, i)->text;
                size_t l = strlen(x);
                if (l < PROBE) { short_texts++; continue; }
                assert_true(np < 40000);
                probes[np++] = (Probe){x, l, window_hash((const unsigned char *)x)};
            }
    print_message("%d passages / messages searched (%d shorter than %d bytes not searched)\n", np, short_texts, PROBE);
    assert_true(np > 15000);
    assert_int_equal(count_found(corpus, o, probes, np, 1), 0);
    // sanity of the search itself: train passages are found
    int nt = 0;
    for (int i = 0; i < 200; i++) {
        const char *x = task_example(sotu, SPLIT_TRAIN, i * 300)->text;
        if (strlen(x) >= PROBE) probes[nt++] = (Probe){x, strlen(x), window_hash((const unsigned char *)x)};
    }
    assert_int_equal(count_found(corpus, o, probes, nt, 0), nt);
    // g2p: no validation / test word is the head of a dictionary line in the corpus
    StrSet heads;
    set_init(&heads, 200000);
    for (char *line = corpus; *line;) {
        char *eol = line;
        while (*eol && *eol != '\n' && *eol != 1) eol++;
        char *sep = line;
        while (sep + 1 < eol && !(sep[0] == ' ' && sep[1] == ' ')) sep++;
        if (sep + 1 < eol) {
            char *paren = memchr(line, '(', (size_t)(sep - line));
            *(paren ? paren : sep) = '\0';   // the word, without "(1)"
            set_add(&heads, line);
        }
        line = *eol ? eol + 1 : eol;
    }
    int words = 0;
    for (int s = SPLIT_VALIDATION; s < NUM_SPLITS; s++)
        for (int i = 0; i < task_split_size(g2p, (SplitId)s); i++, words++) {
            const char *w = task_example(g2p, (SplitId)s, i)->text;
            if (set_has(&heads, w, strlen(w))) print_message("g2p word '%s' in pretrain train\n", w);
            assert_false(set_has(&heads, w, strlen(w)));
        }
    assert_true(words > 20000);
    // ... while the train words are there
    for (int i = 0; i < task_split_size(g2p, SPLIT_TRAIN); i += 97) {
        const char *w = task_example(g2p, SPLIT_TRAIN, i)->text;
        assert_true(set_has(&heads, w, strlen(w)));
    }
    free(heads.s);
    free(probes);
    free(corpus);
    task_free(pre); task_free(spam); task_free(sotu); task_free(g2p);
}

static void test_deterministic_reload(void **state) {
    (void)state;
    NEED_DATA();
    Task *a = load("spam"), *b = load("spam");
    for (int s = 0; s < NUM_SPLITS; s++) {
        assert_int_equal(task_split_size(a, (SplitId)s), task_split_size(b, (SplitId)s));
        for (int i = 0; i < task_split_size(a, (SplitId)s); i++) {
            assert_string_equal(task_example(a, (SplitId)s, i)->text, task_example(b, (SplitId)s, i)->text);
            assert_int_equal(task_example(a, (SplitId)s, i)->label, task_example(b, (SplitId)s, i)->label);
        }
    }
    task_free(a);
    task_free(b);
}

static void test_builtin_contents(void **state) {
    (void)state;
    NEED_DATA();
    Task *g = load("g2p");
    // "ABBREVIATE" (validation by hash) and a word with alternatives
    int found = 0;
    for (int i = 0; i < task_split_size(g, SPLIT_VALIDATION); i++) {
        const Example *e = task_example(g, SPLIT_VALIDATION, i);
        if (!strcmp(e->text, "ABBREVIATE")) {
            found = 1;
            assert_string_equal(e->target, "AH0 B R IY1 V IY0 EY2 T");
            assert_int_equal(e->nrefs, 1);
        }
    }
    assert_true(found);
    const Example *a = task_example(g, SPLIT_TRAIN, 0);   // dict.txt: "A  AH0", "A(1)  EY1"
    assert_string_equal(a->text, "A");
    assert_int_equal(a->nrefs, 2);
    assert_string_equal(a->refs[0], "AH0");
    assert_string_equal(a->refs[1], "EY1");
    task_free(g);
    Task *s = load("spam");
    for (int i = 0; i < task_split_size(s, SPLIT_TRAIN); i++)
        assert_int_equal(strncmp(task_example(s, SPLIT_TRAIN, i)->text, "Subject: ", 9), 0);
    assert_int_equal(s->n_duplicates, 130);
    task_free(s);
    // the first spam: an HTML body in quoted-printable
    char path[4096], *raw;
    size_t len;
    snprintf(path, sizeof path, "%s/spam-assassin/data/spam-1/00001.7848dde101aa985090474a91ec93fcf0.txt", data_dir());
    assert_int_equal(task_read_file(path, 0, &raw, &len), 0);
    char *clean = email_clean(raw, len);
    assert_int_equal(strncmp(clean, "Subject: Life Insurance - Why Pay More?\n\n", 41), 0);
    assert_null(strchr(clean, '<'));
    assert_null(strstr(clean, "=3D"));
    assert_null(strstr(clean, "Return-Path"));
    assert_non_null(strstr(clean, "Save up to 70% on Life Insurance."));
    free(clean);
    free(raw);
}

// ----------------------------------------------------------------------------
// email decoders on hand-made strings

static void test_qp_decode(void **state) {
    (void)state;
    char out[128];
    const char *in = "caf=C3=A9 =3D ok=\nnext=\r\nline trailing=  \nend =XY =";
    size_t n = email_qp_decode(in, strlen(in), out);
    assert_string_equal(out, "caf\xC3\xA9 = oknextline trailingend =XY ");
    assert_int_equal(n, strlen(out));
}

static void test_base64_decode(void **state) {
    (void)state;
    char out[64];
    const char *in = "SGVs\nbG8s\r\nIHdv cmxkIQ==";
    assert_int_equal(email_base64_decode(in, strlen(in), out), 13);
    assert_string_equal(out, "Hello, world!");
    assert_int_equal(email_base64_decode("TWE=", 4, out), 2);
    assert_string_equal(out, "Ma");
    assert_int_equal(email_base64_decode("", 0, out), 0);
}

static void test_html_strip(void **state) {
    (void)state;
    char out[256];
    const char *in = "<HTML><head><style>p {color:red}</style><SCRIPT>var x = '<b>';</Script></head>"
                     "<body>Buy <b>NOW</b>&nbsp;&amp; save&#33;<br>Line&#x32;<!-- hidden <p> -->"
                     "<table><tr><td>a</td><td>b</td></tr></table>x &lt; y &bogus; 3 < 4</body></HTML>";
    email_html_strip(in, strlen(in), out);
    assert_string_equal(out, "Buy NOW & save!\nLine2\n\n a  b \n\nx < y &bogus; 3 < 4");
}

static void test_decode_header(void **state) {
    (void)state;
    char out[128];
    const char *in = "=?iso-8859-1?Q?Caf=E9_au_lait?= =?utf-8?B?w6k=?= plain";
    email_decode_header(in, strlen(in), out);
    assert_string_equal(out, "Caf\xE9 au lait\xC3\xA9 plain");
}

static void test_normalize_text(void **state) {
    (void)state;
    const char in[] = "  a \t b\r\n\n\n\n  c\x93quoted\x94 \xE9t\xC3\xA9  \n";
    char *out = email_normalize_text(in, sizeof in - 1);
    assert_string_equal(out, "a b\n\nc\xE2\x80\x9Cquoted\xE2\x80\x9D \xC3\xA9t\xC3\xA9");
    free(out);
}

static void test_email_clean_multipart(void **state) {
    (void)state;
    const char *msg =
        "From someone@example.com  Thu Aug 22 13:17:22 2002\n"
        "Received: from x\n\tby y\n"
        "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\n  from here\n"
        "Content-Type: multipart/mixed; boundary=\"OUTER\"\n"
        "\n"
        "preamble\n"
        "--OUTER\n"
        "Content-Type: multipart/alternative; boundary=INNER\n"
        "\n"
        "--INNER\n"
        "Content-Type: text/html\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "<p>html =3D version</p>\n"
        "--INNER\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "cGxhaW4gdmVyc2lvbg==\n"
        "--INNER--\n"
        "--OUTER\n"
        "Content-Type: image/gif\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "R0lGODlhAQABAAAAACw=\n"
        "--OUTER\n"
        "Content-Type: text/html\n"
        "\n"
        "<b>second</b> part\n"
        "--OUTER--\n"
        "epilogue\n";
    char *out = email_clean(msg, strlen(msg));
    assert_string_equal(out, "Subject: Gr\xC3\xBC\xC3\x9F" "e from here\n\nplain version\nsecond part");
    free(out);
    const char *simple = "Subject: hi\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nA=\nB\n";
    out = email_clean(simple, strlen(simple));
    assert_string_equal(out, "Subject: hi\n\nAB");
    free(out);
    const char *nosubject = "X-Header: 1\n\nbody only\n";
    out = email_clean(nosubject, strlen(nosubject));
    assert_string_equal(out, "Subject: \n\nbody only");
    free(out);
}

// ----------------------------------------------------------------------------
// baselines on hand-made tasks

static void add_cls(Task *t, SplitId s, const char *text, int label) {
    Example e = {.text = task_strdup(t, text), .label = label};
    task_add(t, s, &e);
}

static void test_majority_baseline(void **state) {
    (void)state;
    Task *t = task_new("toy", TASK_CLS, "toy");
    const char *labels[] = {"a", "b", "c"};
    const char *metrics[] = {"accuracy", "f1", "macro_f1", "mcc"};
    task_set_labels(t, 3, labels);
    task_set_metrics(t, 4, metrics);
    // train: b is the majority (3 of 5)
    int tl[] = {0, 1, 1, 1, 2};
    for (int i = 0; i < 5; i++) add_cls(t, SPLIT_TRAIN, "x", tl[i]);
    // validation: 2 of 4 are b
    int vl[] = {1, 0, 1, 2};
    for (int i = 0; i < 4; i++) add_cls(t, SPLIT_VALIDATION, "y", vl[i]);
    Baseline b[2];
    assert_int_equal(task_baselines(t, SPLIT_VALIDATION, b, 2), 1);
    assert_string_equal(b[0].name, "majority");
    assert_int_equal(b[0].n, 4);
    assert_float_equal(b[0].value[0], 0.5, 1e-12);            // accuracy 2/4
    // class 1 (b): tp 2, predicted 4, gold 2 -> F1 = 2*2/(4+2) = 2/3
    assert_float_equal(b[0].value[1], 2.0 / 3.0, 1e-12);
    assert_float_equal(b[0].value[2], (2.0 / 3.0) / 3.0, 1e-12);   // macro: (0 + 2/3 + 0) / 3
    assert_float_equal(b[0].value[3], 0.0, 1e-12);
    assert_int_equal(task_baselines(t, SPLIT_TEST, b, 2), 0);   // empty split
    task_free(t);
}

static void test_g2p_baselines(void **state) {
    (void)state;
    Task *t = task_new("g2p", TASK_GEN, "toy");
    const char *metrics[] = {"exact_match", "per"};
    task_set_metrics(t, 2, metrics);
    const char *train[][2] = {{"AT", "AE1 T"}, {"TAT", "T AE1 T"}, {"IT", "AE1 T"}};
    for (int i = 0; i < 3; i++) {
        const char **r = task_alloc(t, sizeof *r);
        r[0] = task_strdup(t, train[i][1]);
        Example e = {.text = task_strdup(t, train[i][0]), .target = r[0], .refs = r, .nrefs = 1};
        task_add(t, SPLIT_TRAIN, &e);
    }
    // validation: BAT (B AE1 T), MIX (M IH1 K S, alt M IY1 K S)
    const char **r1 = task_alloc(t, sizeof *r1), **r2 = task_alloc(t, 2 * sizeof *r2);
    r1[0] = task_strdup(t, "B AE1 T");
    r2[0] = task_strdup(t, "M IY1 K S");
    r2[1] = task_strdup(t, "M IH1 K S");
    Example e1 = {.text = task_strdup(t, "BAT"), .target = r1[0], .refs = r1, .nrefs = 1};
    Example e2 = {.text = task_strdup(t, "MIX"), .target = r2[0], .refs = r2, .nrefs = 2};
    task_add(t, SPLIT_VALIDATION, &e1);
    task_add(t, SPLIT_VALIDATION, &e2);
    Baseline b[2];
    assert_int_equal(task_baselines(t, SPLIT_VALIDATION, b, 2), 2);
    // most frequent train target "AE1 T": BAT: 1 edit / 3; MIX: 4 edits vs either ref (len 4)
    assert_string_equal(b[0].name, "most-frequent");
    assert_float_equal(b[0].value[0], 0.0, 1e-12);
    assert_float_equal(b[0].value[1], (1.0 + 4.0) / (3 + 4), 1e-12);
    // spelling: BAT -> "B AE1 T" (exact), MIX -> "M IH1 K S" (exact, the second reference)
    assert_string_equal(b[1].name, "spelling");
    assert_float_equal(b[1].value[0], 1.0, 1e-12);
    assert_float_equal(b[1].value[1], 0.0, 1e-12);
    task_free(t);
}

static void test_unigram_baseline(void **state) {
    (void)state;
    Task *t = task_new("lm", TASK_LM, "toy");
    add_cls(t, SPLIT_TRAIN, "aab", -1);
    add_cls(t, SPLIT_VALIDATION, "ab", -1);
    Baseline b[1];
    assert_int_equal(task_baselines(t, SPLIT_VALIDATION, b, 1), 1);
    // add-one counts: a 3, b 2, others 1; total 256 + 3 = 259
    double want = -(log(3.0 / 259) + log(2.0 / 259)) / 2;
    assert_float_equal(b[0].value[0], want, 1e-9);
    task_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a_vectors),
        cmocka_unit_test(test_split_of_key_reference),
        cmocka_unit_test(test_split_fractions),
        cmocka_unit_test(test_unknown_task_lists_known),
        cmocka_unit_test(test_missing_data_names_make_data),
        cmocka_unit_test(test_path_rules),
        cmocka_unit_test(test_builtin_sizes),
        cmocka_unit_test(test_spam_and_g2p_disjoint),
        cmocka_unit_test(test_sotu_split_by_address),
        cmocka_unit_test(test_pretrain_has_no_eval_data),
        cmocka_unit_test(test_deterministic_reload),
        cmocka_unit_test(test_builtin_contents),
        cmocka_unit_test(test_qp_decode),
        cmocka_unit_test(test_base64_decode),
        cmocka_unit_test(test_html_strip),
        cmocka_unit_test(test_decode_header),
        cmocka_unit_test(test_normalize_text),
        cmocka_unit_test(test_email_clean_multipart),
        cmocka_unit_test(test_majority_baseline),
        cmocka_unit_test(test_g2p_baselines),
        cmocka_unit_test(test_unigram_baseline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
