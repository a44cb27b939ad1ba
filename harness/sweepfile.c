// harness/sweepfile.c — sweep files: libyaml document -> base config, grid, variants,
// exclude, analyze -> expanded, validated, deduplicated RunConfigs. See sweepfile.h.
#include "harness/sweepfile.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/errors.h"
#include "core/files.h"

// A RunConfig is ~2.5 KB (paths, origins): 20000 runs stay under 50 MB.
enum { MAX_ITEMS = 16, MAX_COMBINATIONS = 20000 };
// Bounds on the YAML itself, checked on libyaml's event stream before a document is built,
// so that a hostile file fails fast in bounded memory: nesting depth, values in all, and
// the values an `analyze:` block may expand to through aliases (each alias is a copy there).
enum { MAX_DEPTH = 64, MAX_NODES = 500000, MAX_ANALYZE_VALUES = 100000 };
#define MAX_FILE_BYTES (16L << 20)

// One key set to one value, with the value's position.
typedef struct {
    int key;
    int n, is_list;
    const char *items[MAX_ITEMS];      // point into the YAML document
    yaml_mark_t item_marks[MAX_ITEMS];
    yaml_mark_t key_mark, mark;        // the key's and the value's positions
} Assign;

typedef struct { int n, cap; Assign *a; } Partial;          // a partial config
typedef struct { const char *label; int n; Partial *values; } Dim;   // one loop of the product

typedef struct {
    const char *path;
    yaml_document_t doc;
    Partial base;
    int ndims;
    Dim dims[CONFIG_MAX_KEYS + 1];    // variants (if any), then one per grid key
    Dim variants, exclude;            // exclude's values are the entries
    int have_variants;
    char *analyze_json;
    // tune: one Dim per tuned key, the tuning seeds
    int have_tune, ntune_dims, ntune_seeds, tune_seeds[MAX_ITEMS];
    Dim tune_dims[CONFIG_MAX_KEYS];
    yaml_mark_t tune_mark;
    size_t product;                   // grid x variants points so far (1 before any)
    yaml_mark_t product_mark;         // where it first went over MAX_COMBINATIONS
} Parser;

// ----------------------------------------------------------------------------
// messages

static int at(const Parser *ps, yaml_mark_t m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int at(const Parser *ps, yaml_mark_t m, const char *fmt, ...) {
    char msg[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);   // msg may quote err_msg(): format it first
    va_end(ap);
    return err_set("%s:%zu:%zu: %s", ps->path, m.line + 1, m.column + 1, msg);
}

static const char *node_kind(const yaml_node_t *n) {
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

static yaml_node_t *node(Parser *ps, int index) { return yaml_document_get_node(&ps->doc, index); }
static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

// ----------------------------------------------------------------------------
// partial configs

static void partial_free(Partial *p) { free(p->a); *p = (Partial){0}; }

static void dim_free(Dim *d) {
    for (int i = 0; i < d->n; i++) partial_free(&d->values[i]);
    free(d->values);
    *d = (Dim){0};
}

static Partial *dim_push(Dim *d) {
    d->values = xrealloc(d->values, (size_t)(d->n + 1) * sizeof *d->values);
    d->values[d->n] = (Partial){0};
    return &d->values[d->n++];
}

static void partial_apply(const Parser *ps, const Partial *p, RunConfig *c) {
    for (int i = 0; i < p->n; i++) {
        const Assign *a = &p->a[i];
        ConfigValue v = {a->n, a->items, a->is_list};
        int rc = config_set_value(c, a->key, &v, NULL);
        LAB_ASSERT(rc == 0);   // every value was tried on a scratch config while parsing
        c->origin[a->key] = (ConfigOrigin){ps->path, (int)a->mark.line + 1, (int)a->mark.column + 1, NULL};
    }
}

// Adds `key: value` (key written under the dotted prefix) to p. top: the file's top level.
static int walk_pair(Parser *ps, yaml_node_t *keynode, yaml_node_t *value, const char *prefix,
                     Partial *p, int top) {
    if (keynode->type != YAML_SCALAR_NODE)
        return at(ps, keynode->start_mark, "expected a key, got %s", node_kind(keynode));
    char full[256];
    snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", scalar(keynode));
    const char *extra = top ? "grid, variants, exclude, analyze, tune" : NULL;
    int key = config_resolve_key(full);
    if (value->type == YAML_MAPPING_NODE) {
        if (config_is_block(full)) {
            for (yaml_node_pair_t *pr = value->data.mapping.pairs.start; pr < value->data.mapping.pairs.top; pr++)
                if (walk_pair(ps, node(ps, pr->key), node(ps, pr->value), full, p, 0)) return -1;
            return 0;
        }
        if (key >= 0) return at(ps, value->start_mark, "%s: expected a value, got a mapping", full);
        config_unknown_key(full, extra);
        return at(ps, keynode->start_mark, "%s", err_msg());
    }
    if (key < 0) {
        if (config_is_block(full))
            return at(ps, value->start_mark, "%s: expected a mapping of its keys, got %s", full, node_kind(value));
        config_unknown_key(full, extra);
        return at(ps, keynode->start_mark, "%s", err_msg());
    }
    for (int i = 0; i < p->n; i++)
        if (p->a[i].key == key)
            return at(ps, keynode->start_mark, "%s is set twice (first at line %zu, column %zu)",
                      config_key_name(key), p->a[i].key_mark.line + 1, p->a[i].key_mark.column + 1);
    Assign a = {.key = key, .key_mark = keynode->start_mark, .mark = value->start_mark};
    if (value->type == YAML_SCALAR_NODE) {
        a.n = 1;
        a.items[0] = scalar(value);
        a.item_marks[0] = value->start_mark;
    } else {
        a.is_list = 1;
        for (yaml_node_item_t *it = value->data.sequence.items.start; it < value->data.sequence.items.top; it++) {
            yaml_node_t *item = node(ps, *it);
            if (item->type != YAML_SCALAR_NODE)
                return at(ps, item->start_mark, "%s: expected a list of values, got %s in it", full, node_kind(item));
            if (a.n == MAX_ITEMS) return at(ps, item->start_mark, "%s: more than %d items", full, MAX_ITEMS);
            a.item_marks[a.n] = item->start_mark;
            a.items[a.n++] = scalar(item);
        }
    }
    // Try the value now, so that a bad value is reported at its position before expansion.
    RunConfig scratch;
    config_defaults(&scratch);
    ConfigValue v = {a.n, a.items, a.is_list};
    int bad;
    if (config_set_value(&scratch, key, &v, &bad))
        return at(ps, bad >= 0 ? a.item_marks[bad] : a.mark, "%s: %s", full, err_msg());
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 8;
        p->a = xrealloc(p->a, (size_t)p->cap * sizeof *p->a);
    }
    p->a[p->n++] = a;
    return 0;
}

// A mapping node as a partial config (variants and exclude entries).
static int parse_partial(Parser *ps, yaml_node_t *n, const char *what, Partial *p) {
    if (n->type != YAML_MAPPING_NODE)
        return at(ps, n->start_mark, "%s: expected a mapping of config keys, got %s", what, node_kind(n));
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++)
        if (walk_pair(ps, node(ps, pr->key), node(ps, pr->value), "", p, 0)) return -1;
    // `variants: [{}]` is the base config as one variant (no overrides); an empty exclude
    // entry would drop every run.
    if (p->n == 0 && strcmp(what, "variants") != 0) return at(ps, n->start_mark, "%s: empty entry", what);
    return 0;
}

static int parse_list_of_partials(Parser *ps, yaml_node_t *n, const char *what, Dim *d) {
    if (n->type != YAML_SEQUENCE_NODE)
        return at(ps, n->start_mark, "%s: expected a list of mappings, got %s", what, node_kind(n));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
        if (parse_partial(ps, node(ps, *it), what, dim_push(d))) return -1;
    return 0;
}

// Multiplies the run count by the length of list n before its values are parsed, so that
// a grid too large to run fails before it takes memory.
static int grow_product(Parser *ps, yaml_node_t *n) {
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    ps->product *= len ? len : 1;
    if (ps->product > MAX_COMBINATIONS)
        return at(ps, n->start_mark, "the grid expands to more than %d runs (at most %d per sweep file)",
                  MAX_COMBINATIONS, MAX_COMBINATIONS);
    return 0;
}

static int parse_grid(Parser *ps, yaml_node_t *n) {
    if (n->type != YAML_MAPPING_NODE)
        return at(ps, n->start_mark, "grid: expected a mapping of key: [values], got %s", node_kind(n));
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(ps, pr->key), *v = node(ps, pr->value);
        if (k->type != YAML_SCALAR_NODE) return at(ps, k->start_mark, "grid: expected a key, got %s", node_kind(k));
        if (v->type != YAML_SEQUENCE_NODE)
            return at(ps, v->start_mark, "grid: %s: expected a list of values, got %s", scalar(k), node_kind(v));
        if (v->data.sequence.items.top == v->data.sequence.items.start)
            return at(ps, v->start_mark, "grid: %s: empty list (the grid would have no runs)", scalar(k));
        if (grow_product(ps, v)) return -1;
        LAB_ASSERT(ps->ndims < CONFIG_MAX_KEYS + 1);
        if (ps->ndims == CONFIG_MAX_KEYS + 1) return at(ps, k->start_mark, "grid: too many keys");
        Dim *d = &ps->dims[ps->ndims++];
        d->label = "the grid";
        // Each value is `key: value` on its own, so block keys take mappings and list keys lists.
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
            if (walk_pair(ps, k, node(ps, *it), "", dim_push(d), 0)) return -1;
    }
    return 0;
}

// tune: {KEY: [values], ..., seeds: [ints], by: validation}
static int parse_tune(Parser *ps, yaml_node_t *n) {
    if (n->type != YAML_MAPPING_NODE)
        return at(ps, n->start_mark, "tune: expected a mapping of key: [values], seeds and by, got %s", node_kind(n));
    ps->have_tune = 1;
    ps->tune_mark = n->start_mark;
    int have_seeds = 0;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(ps, pr->key), *v = node(ps, pr->value);
        if (k->type != YAML_SCALAR_NODE) return at(ps, k->start_mark, "tune: expected a key, got %s", node_kind(k));
        const char *name = scalar(k);
        if (!strcmp(name, "by")) {
            if (v->type != YAML_SCALAR_NODE || strcmp(scalar(v), "validation"))
                return at(ps, v->start_mark, "tune: by: expected validation (the task's validation metric at "
                          "each run's best-validation step)");
            continue;
        }
        if (v->type != YAML_SEQUENCE_NODE)
            return at(ps, v->start_mark, "tune: %s: expected a list of values, got %s", name, node_kind(v));
        if (v->data.sequence.items.top == v->data.sequence.items.start)
            return at(ps, v->start_mark, "tune: %s: empty list", name);
        if (!strcmp(name, "seeds")) {
            have_seeds = 1;
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                yaml_node_t *item = node(ps, *it);
                char *end = NULL;
                long seed = item->type == YAML_SCALAR_NODE ? strtol(scalar(item), &end, 10) : -1;
                if (item->type != YAML_SCALAR_NODE || !*scalar(item) || *end || seed < 0 || seed > 1000000000)
                    return at(ps, item->start_mark, "tune: seeds: expected an integer >= 0");
                if (ps->ntune_seeds == MAX_ITEMS) return at(ps, item->start_mark, "tune: seeds: more than %d items", MAX_ITEMS);
                for (int i = 0; i < ps->ntune_seeds; i++)
                    if (ps->tune_seeds[i] == (int)seed) return at(ps, item->start_mark, "tune: seeds: %ld is listed twice", seed);
                ps->tune_seeds[ps->ntune_seeds++] = (int)seed;
            }
            continue;
        }
        if (!strcmp(name, "seed"))
            return at(ps, k->start_mark, "tune: the seed is not tuned; list the tuning runs' seeds under seeds:");
        Dim *d = &ps->tune_dims[ps->ntune_dims++];
        d->label = "tune";
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
            if (walk_pair(ps, k, node(ps, *it), "", dim_push(d), 0)) return -1;
        if (ps->ntune_dims == CONFIG_MAX_KEYS) return at(ps, k->start_mark, "tune: too many keys");
    }
    if (!have_seeds) return at(ps, n->start_mark, "tune: seeds: missing (the tuning runs' seeds, e.g. seeds: [1])");
    if (ps->ntune_dims == 0) return at(ps, n->start_mark, "tune: no key to tune (e.g. train.lr: [1.0e-4, 1.0e-3])");
    return 0;
}

// ----------------------------------------------------------------------------
// analyze: YAML -> JSON

// NULL with at() when the block nests deeper than MAX_DEPTH (an alias to an enclosing node
// would recurse forever), expands to more than MAX_ANALYZE_VALUES values (nested aliases
// grow exponentially), or repeats a key. *budget counts the values still allowed.
static json_t *yaml_to_json(Parser *ps, yaml_node_t *n, int depth, long *budget) {
    if (depth > MAX_DEPTH)
        return at(ps, n->start_mark, "analyze: nested more than %d levels deep (an alias to an "
                  "enclosing block?)", MAX_DEPTH), NULL;
    if (--*budget < 0)
        return at(ps, n->start_mark, "analyze: expands to more than %d values (aliases are copied "
                  "where they are used)", MAX_ANALYZE_VALUES), NULL;
    if (n->type == YAML_SCALAR_NODE) {
        const char *s = scalar(n);
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_string(s);
        if (!*s || !strcmp(s, "~") || !strcmp(s, "null")) return json_null();
        if (!strcmp(s, "true")) return json_true();
        if (!strcmp(s, "false")) return json_false();
        char *end;
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (!errno && !*end) return json_integer(i);
        double d = strtod(s, &end);
        if (!errno && !*end) return json_real(d);
        return json_string(s);
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            json_t *v = yaml_to_json(ps, node(ps, *it), depth + 1, budget);
            if (!v) { json_decref(a); return NULL; }
            json_array_append_new(a, v);
        }
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(ps, pr->key);
        if (k->type != YAML_SCALAR_NODE) {
            json_decref(o);
            return at(ps, k->start_mark, "analyze: expected a key, got %s", node_kind(k)), NULL;
        }
        if (json_object_get(o, scalar(k))) {
            json_decref(o);
            return at(ps, k->start_mark, "analyze: key '%s' is set twice in one mapping", scalar(k)), NULL;
        }
        json_t *v = yaml_to_json(ps, node(ps, pr->value), depth + 1, budget);
        if (!v) { json_decref(o); return NULL; }
        json_object_set_new(o, scalar(k), v);
    }
    return o;
}

// ----------------------------------------------------------------------------
// the file

static int parse_root(Parser *ps) {
    yaml_node_t *root = yaml_document_get_root_node(&ps->doc);
    if (!root) return err_set("%s:1:1: empty sweep file; expected a mapping of config keys", ps->path);
    if (root->type != YAML_MAPPING_NODE)
        return at(ps, root->start_mark, "expected a mapping of config keys at the top level, got %s", node_kind(root));
    yaml_mark_t seen[3];
    int have[3] = {0, 0, 0};   // grid, variants, exclude
    static const char *const special[3] = {"grid", "variants", "exclude"};
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(ps, pr->key), *v = node(ps, pr->value);
        const char *name = k->type == YAML_SCALAR_NODE ? scalar(k) : "";
        int s = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(name, special[i])) s = i;
        if (s >= 0) {
            if (have[s]) return at(ps, k->start_mark, "%s is set twice (first at line %zu, column %zu)",
                                   name, seen[s].line + 1, seen[s].column + 1);
            have[s] = 1;
            seen[s] = k->start_mark;
        }
        int rc = 0;
        if (s == 0) rc = parse_grid(ps, v);
        else if (s == 1) {
            if (v->type == YAML_SEQUENCE_NODE && grow_product(ps, v)) return -1;
            rc = parse_list_of_partials(ps, v, "variants", &ps->variants);
            ps->have_variants = 1;
        }
        else if (s == 2) rc = parse_list_of_partials(ps, v, "exclude", &ps->exclude);
        else if (!strcmp(name, "tune")) {
            if (ps->have_tune) return at(ps, k->start_mark, "tune is set twice");
            rc = parse_tune(ps, v);
        } else if (!strcmp(name, "analyze")) {
            if (ps->analyze_json) return at(ps, k->start_mark, "analyze is set twice");
            long budget = MAX_ANALYZE_VALUES;
            json_t *j = yaml_to_json(ps, v, 0, &budget);
            if (!j) return -1;
            char *txt = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
            json_decref(j);
            LAB_ASSERT(txt);
            ps->analyze_json = xstrdup(txt);
            free(txt);
        } else rc = walk_pair(ps, k, v, "", &ps->base, 1);
        if (rc) return -1;
    }
    if (ps->have_variants && ps->variants.n == 0)
        return at(ps, seen[1], "variants: empty list (the sweep would have no runs)");
    return 0;
}

// A key set by two loops of the product is ambiguous: refuse it.
static int check_conflicts(Parser *ps) {
    for (int d1 = 0; d1 < ps->ndims; d1++)
        for (int d2 = d1 + 1; d2 < ps->ndims; d2++)
            for (int i = 0; i < ps->dims[d1].n; i++)
                for (int j = 0; j < ps->dims[d2].n; j++) {
                    const Partial *p = &ps->dims[d1].values[i], *q = &ps->dims[d2].values[j];
                    for (int x = 0; x < p->n; x++)
                        for (int y = 0; y < q->n; y++)
                            if (p->a[x].key == q->a[y].key)
                                return at(ps, q->a[y].key_mark, "%s is set both by %s (line %zu) and by %s",
                                          config_key_name(q->a[y].key), ps->dims[d1].label,
                                          p->a[x].key_mark.line + 1, ps->dims[d2].label);
                }
    return 0;
}

static int excluded(const Parser *ps, const RunConfig *c) {
    for (int e = 0; e < ps->exclude.n; e++) {
        const Partial *p = &ps->exclude.values[e];
        RunConfig probe = *c;
        partial_apply(ps, p, &probe);
        int all = 1;
        for (int i = 0; i < p->n && all; i++) all = config_key_equal(c, &probe, p->a[i].key);
        if (all) return 1;
    }
    return 0;
}

// Open-addressing set of hashes for dedupe.
static int seen_insert(char (*table)[65], size_t cap, const char *hex) {
    size_t h = strtoull((char[17]){hex[0], hex[1], hex[2], hex[3], hex[4], hex[5], hex[6], hex[7], hex[8],
                                   hex[9], hex[10], hex[11], hex[12], hex[13], hex[14], hex[15], 0}, NULL, 16);
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (!table[i][0]) { memcpy(table[i], hex, 65); return 1; }
        if (!strcmp(table[i], hex)) return 0;
    }
}

static int expand(Parser *ps, int noverrides, char *const *overrides, Sweep *out) {
    RunConfig base;
    config_defaults(&base);
    partial_apply(ps, &ps->base, &base);
    if (!base.name[0]) snprintf(base.name, sizeof base.name, "%s", out->name);
    else snprintf(out->name, sizeof out->name, "%s", base.name);
    size_t total = 1;
    for (int d = 0; d < ps->ndims; d++) {
        total *= (size_t)ps->dims[d].n;
        if (total > MAX_COMBINATIONS)
            return err_set("%s: the grid expands to more than %d runs", ps->path, MAX_COMBINATIONS);
    }
    out->ncombinations = (int)total;
    out->runs = xcalloc(total, sizeof *out->runs);
    out->hashes = xcalloc(total, sizeof *out->hashes);
    size_t cap = 16;
    while (cap < 2 * total) cap *= 2;
    char (*seen)[65] = xcalloc(cap, sizeof *seen);
    int rc = 0;
    for (size_t idx = 0; idx < total && rc == 0; idx++) {
        RunConfig c = base;
        size_t rem = idx, digit[CONFIG_MAX_KEYS + 1];
        for (int d = ps->ndims - 1; d >= 0; d--) { digit[d] = rem % (size_t)ps->dims[d].n; rem /= (size_t)ps->dims[d].n; }
        for (int d = 0; d < ps->ndims; d++) partial_apply(ps, &ps->dims[d].values[digit[d]], &c);
        for (int i = 0; i < noverrides; i++) {
            int ok = config_apply_override(&c, overrides[i]);
            LAB_ASSERT(ok == 0);   // checked before expansion
        }
        if (excluded(ps, &c)) { out->nexcluded++; continue; }
        if (config_validate(&c)) { rc = -1; break; }
        char hex[65];
        config_hash(&c, hex);
        if (!seen_insert(seen, cap, hex)) { out->nduplicates++; continue; }
        out->runs[out->nruns] = c;
        memcpy(out->hashes[out->nruns], hex, 65);
        out->nruns++;
    }
    free(seen);
    return rc;
}

// ----------------------------------------------------------------------------
// tune: variants, settings, tuning runs

// Copies the tuned keys' values of setting into c (as text, which config_set reads back).
static void apply_setting(const Sweep *sw, int setting, RunConfig *c) {
    for (int k = 0; k < sw->ntune_keys; k++) {
        char v[600];
        config_key_str(&sw->tune_settings[setting], sw->tune_keys[k], v, sizeof v);
        int rc = config_set(c, config_key_name(sw->tune_keys[k]), v);
        LAB_ASSERT(rc == 0);   // a value this key held already
    }
}

// Ties go to the smaller value: settings compared key by key, as numbers where both are.
static int setting_less(const Sweep *sw, int a, int b) {
    for (int k = 0; k < sw->ntune_keys; k++) {
        char va[600], vb[600];
        config_key_str(&sw->tune_settings[a], sw->tune_keys[k], va, sizeof va);
        config_key_str(&sw->tune_settings[b], sw->tune_keys[k], vb, sizeof vb);
        if (!strcmp(va, vb)) continue;
        char *ea, *eb;
        double x = strtod(va, &ea), y = strtod(vb, &eb);
        if (!*ea && !*eb && *va && *vb && x != y) return x < y;
        return a < b;   // not numbers: the order of the tune: lists
    }
    return a < b;
}

static int expand_tune(Parser *ps, int noverrides, char *const *overrides, Sweep *out) {
    // the tuned keys, and no other loop or override may set them
    for (int d = 0; d < ps->ntune_dims; d++)
        for (int i = 0; i < ps->tune_dims[d].n; i++)
            for (int x = 0; x < ps->tune_dims[d].values[i].n; x++) {
                const Assign *a = &ps->tune_dims[d].values[i].a[x];
                int seen = 0;
                for (int k = 0; k < out->ntune_keys; k++) seen |= out->tune_keys[k] == a->key;
                if (seen) continue;
                if (out->ntune_keys == CONFIG_MAX_KEYS) return at(ps, a->key_mark, "tune: too many keys");
                for (int e = 0; e < ps->ndims; e++)
                    for (int j = 0; j < ps->dims[e].n; j++)
                        for (int y = 0; y < ps->dims[e].values[j].n; y++)
                            if (ps->dims[e].values[j].a[y].key == a->key)
                                return at(ps, ps->dims[e].values[j].a[y].key_mark, "%s is tuned by the tune: block "
                                          "(line %zu) and set by %s too", config_key_name(a->key),
                                          a->key_mark.line + 1, ps->dims[e].label);
                for (int o = 0; o < noverrides; o++) {
                    char key[256];
                    snprintf(key, sizeof key, "%.*s", (int)strcspn(overrides[o], "="), overrides[o]);
                    if (config_resolve_key(key) == a->key)
                        return err_set("override '%s': %s is tuned by the tune: block of %s (line %zu); "
                                       "change its list there", overrides[o], config_key_name(a->key), ps->path,
                                       a->key_mark.line + 1);
                }
                out->tune_keys[out->ntune_keys++] = a->key;
            }
    // settings: the product of the tuned lists, the first key outermost
    size_t total = 1;
    for (int d = 0; d < ps->ntune_dims; d++) {
        total *= (size_t)ps->tune_dims[d].n;
        if (total > 4096) return at(ps, ps->tune_mark, "tune: more than 4096 settings");
    }
    out->ntune_settings = (int)total;
    out->tune_settings = xcalloc(total, sizeof *out->tune_settings);
    out->tune_labels = xcalloc(total, sizeof *out->tune_labels);
    out->tune_order = xcalloc(total, sizeof *out->tune_order);
    size_t (*digits)[CONFIG_MAX_KEYS] = xcalloc(total, sizeof *digits);
    for (size_t s = 0; s < total; s++) {
        size_t rem = s;
        for (int d = ps->ntune_dims - 1; d >= 0; d--) { digits[s][d] = rem % (size_t)ps->tune_dims[d].n; rem /= (size_t)ps->tune_dims[d].n; }
        config_defaults(&out->tune_settings[s]);
        for (int d = 0; d < ps->ntune_dims; d++) partial_apply(ps, &ps->tune_dims[d].values[digits[s][d]], &out->tune_settings[s]);
        size_t len = 0;
        for (int k = 0; k < out->ntune_keys; k++) {
            char v[600];
            config_key_str(&out->tune_settings[s], out->tune_keys[k], v, sizeof v);
            len += (size_t)snprintf(out->tune_labels[s] + len, len < 256 ? 256 - len : 0, "%s%s=%s", k ? " " : "",
                                    config_key_name(out->tune_keys[k]), v);
        }
    }
    for (size_t s = 0; s < total; s++)
        for (size_t t = 0; t < total; t++)
            if (t != s && setting_less(out, (int)t, (int)s)) out->tune_order[s]++;
    out->ntune_seeds = ps->ntune_seeds;
    memcpy(out->tune_seeds, ps->tune_seeds, sizeof(int) * (size_t)ps->ntune_seeds);

    // variants: the grid's runs with their seed and tuned keys reset
    out->variant_ids = xcalloc((size_t)out->nruns + 1, sizeof *out->variant_ids);
    out->run_variant = xcalloc((size_t)out->nruns + 1, sizeof *out->run_variant);
    int *first = xcalloc((size_t)out->nruns + 1, sizeof *first);
    for (int i = 0; i < out->nruns; i++) {
        RunConfig c = out->runs[i];
        c.seed = 0;
        apply_setting(out, 0, &c);
        char hex[65];
        config_hash(&c, hex);
        int v = 0;
        while (v < out->nvariants && strcmp(out->variant_ids[v], hex)) v++;
        if (v == out->nvariants) { memcpy(out->variant_ids[v], hex, 65); first[v] = i; out->nvariants++; }
        out->run_variant[i] = v;
    }
    // tuning runs: variant x setting x tuning seed
    size_t cap_runs = (size_t)out->nvariants * total * (size_t)ps->ntune_seeds;
    if (cap_runs > MAX_COMBINATIONS) {
        free(digits); free(first);
        return at(ps, ps->tune_mark, "tune: %zu tuning runs, more than %d", cap_runs, MAX_COMBINATIONS);
    }
    out->tune_runs = xcalloc(cap_runs + 1, sizeof *out->tune_runs);
    out->tune_hashes = xcalloc(cap_runs + 1, sizeof *out->tune_hashes);
    out->tune_variant = xcalloc(cap_runs + 1, sizeof *out->tune_variant);
    out->tune_setting = xcalloc(cap_runs + 1, sizeof *out->tune_setting);
    size_t cap = 16;
    while (cap < 2 * cap_runs) cap *= 2;
    char (*seen)[65] = xcalloc(cap, sizeof *seen);
    int seed_key = config_find_key("seed"), rc = 0;
    for (int v = 0; v < out->nvariants && rc == 0; v++)
        for (size_t s = 0; s < total && rc == 0; s++)
            for (int k = 0; k < ps->ntune_seeds && rc == 0; k++) {
                RunConfig c = out->runs[first[v]];
                for (int d = 0; d < ps->ntune_dims; d++) partial_apply(ps, &ps->tune_dims[d].values[digits[s][d]], &c);
                c.seed = ps->tune_seeds[k];
                c.origin[seed_key] = (ConfigOrigin){ps->path, (int)ps->tune_mark.line + 1, (int)ps->tune_mark.column + 1, NULL};
                if (config_validate(&c)) { rc = -1; break; }
                char hex[65];
                config_hash(&c, hex);
                if (!seen_insert(seen, cap, hex)) continue;
                out->tune_runs[out->ntune] = c;
                memcpy(out->tune_hashes[out->ntune], hex, 65);
                out->tune_variant[out->ntune] = v;
                out->tune_setting[out->ntune] = (int)s;
                out->ntune++;
            }
    free(seen);
    free(digits);
    free(first);
    return rc;
}

int sweep_picked_runs(const Sweep *s, const int *pick, RunConfig **runs, char (**hashes)[65]) {
    *runs = xcalloc((size_t)s->nruns + 1, sizeof **runs);
    *hashes = xcalloc((size_t)s->nruns + 1, sizeof **hashes);
    size_t cap = 16;
    while (cap < 2 * (size_t)s->nruns) cap *= 2;
    char (*seen)[65] = xcalloc(cap, sizeof *seen);
    int n = 0;
    for (int i = 0; i < s->nruns; i++) {
        int setting = pick[s->run_variant[i]];
        if (setting < 0) continue;
        RunConfig c = s->runs[i];
        apply_setting(s, setting, &c);
        char hex[65];
        config_hash(&c, hex);
        if (!seen_insert(seen, cap, hex)) continue;
        (*runs)[n] = c;
        memcpy((*hashes)[n++], hex, 65);
    }
    free(seen);
    return n;
}

// bounds, on the event stream

static int syntax_error(const yaml_parser_t *parser, const char *path) {
    yaml_mark_t m = parser->problem_mark;
    return err_set("%s:%zu:%zu: YAML syntax error: %s%s%s", path, m.line + 1, m.column + 1,
                   parser->problem ? parser->problem : "unreadable", parser->context ? " " : "",
                   parser->context ? parser->context : "");
}

// Reads the whole event stream once, holding only the open lists' lengths: refuses a second
// document, nesting deeper than MAX_DEPTH, a list longer than the most runs a sweep may have
// (no grid could use it) and more than MAX_NODES values in all. libyaml builds a document
// only after this passed.
static int check_events(yaml_parser_t *parser, const char *path) {
    size_t items[MAX_DEPTH + 1] = {0};
    int is_list[MAX_DEPTH + 1] = {0}, depth = 0, docs = 0, rc = 0;
    long nodes = 0;
    for (int done = 0; !done && rc == 0;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev)) return syntax_error(parser, path);
        yaml_mark_t m = ev.start_mark;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = err_set("%s:%zu:%zu: a second YAML document ('---'); a sweep file holds one",
                             path, m.line + 1, m.column + 1);
            break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (++nodes > MAX_NODES) {
                rc = err_set("%s:%zu:%zu: more than %d values in one sweep file", path, m.line + 1,
                             m.column + 1, MAX_NODES);
                break;
            }
            if (is_list[depth] && ++items[depth] > MAX_COMBINATIONS) {
                rc = err_set("%s:%zu:%zu: a list of more than %d values (a sweep file runs at most %d)",
                             path, m.line + 1, m.column + 1, MAX_COMBINATIONS, MAX_COMBINATIONS);
                break;
            }
            if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
                if (depth == MAX_DEPTH) {
                    rc = err_set("%s:%zu:%zu: nested more than %d levels deep", path, m.line + 1,
                                 m.column + 1, MAX_DEPTH);
                    break;
                }
                depth++;
                is_list[depth] = ev.type == YAML_SEQUENCE_START_EVENT;
                items[depth] = 0;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    return rc;
}

static int load(yaml_parser_t *parser, const char *path, int noverrides, char *const *overrides, Sweep *out) {
    memset(out, 0, sizeof *out);
    out->path = xstrdup(path);
    // Default name: the file's base name without its extension.
    const char *slash = strrchr(path, '/');
    snprintf(out->name, sizeof out->name, "%s", slash ? slash + 1 : path);
    char *dot = strrchr(out->name, '.');
    if (dot && dot != out->name) *dot = '\0';

    Parser ps = {.path = out->path, .product = 1};
    int rc = 0;
    // Overrides first: a typo on the command line is reported before the file is read.
    RunConfig scratch;
    config_defaults(&scratch);
    for (int i = 0; i < noverrides && rc == 0; i++) rc = config_apply_override(&scratch, overrides[i]);
    if (rc == 0 && !yaml_parser_load(parser, &ps.doc)) {
        rc = syntax_error(parser, out->path);
        memset(&ps.doc, 0, sizeof ps.doc);
    } else if (rc == 0) {
        rc = parse_root(&ps);
        if (rc == 0) {
            // variants are the outermost loop
            if (ps.have_variants) {
                memmove(&ps.dims[1], &ps.dims[0], (size_t)ps.ndims * sizeof ps.dims[0]);
                ps.dims[0] = ps.variants;
                ps.dims[0].label = "variants";
                ps.variants = (Dim){0};
                ps.ndims++;
            }
            rc = check_conflicts(&ps);
        }
        if (rc == 0) rc = expand(&ps, noverrides, overrides, out);
        if (rc == 0 && ps.have_tune) rc = expand_tune(&ps, noverrides, overrides, out);
        yaml_document_delete(&ps.doc);
    }
    partial_free(&ps.base);
    for (int d = 0; d < ps.ntune_dims; d++) dim_free(&ps.tune_dims[d]);
    for (int d = 0; d < ps.ndims; d++) dim_free(&ps.dims[d]);
    dim_free(&ps.variants);
    dim_free(&ps.exclude);
    out->analyze_json = ps.analyze_json;
    if (rc) sweep_free(out);
    return rc;
}

// Checks the events of text (or of f, which is rewound), then loads and expands.
static int check_and_load(const char *text, FILE *f, const char *name, int noverrides,
                          char *const *overrides, Sweep *out) {
    memset(out, 0, sizeof *out);
    size_t len = text ? strlen(text) : 0;
    yaml_parser_t parser;
    for (int pass = 0; pass < 2; pass++) {
        LAB_ASSERT(yaml_parser_initialize(&parser));
        if (text) yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        else { rewind(f); yaml_parser_set_input_file(&parser, f); }
        int rc = pass == 0 ? check_events(&parser, name) : load(&parser, name, noverrides, overrides, out);
        yaml_parser_delete(&parser);
        if (rc) return rc;
    }
    return 0;
}

int sweep_load_string(const char *text, const char *name, int noverrides, char *const *overrides, Sweep *out) {
    if (strlen(text) > MAX_FILE_BYTES)
        return memset(out, 0, sizeof *out), err_set("%s: more than %ld bytes; a sweep file is smaller", name, MAX_FILE_BYTES);
    return check_and_load(text, NULL, name, noverrides, overrides, out);
}

int sweep_load(const char *path, int noverrides, char *const *overrides, Sweep *out) {
    memset(out, 0, sizeof *out);
    if (files_check_regular(path, "the sweep file")) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open sweep file: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && sb.st_size > MAX_FILE_BYTES) {
        fclose(f);
        return err_set("%s: %lld bytes; a sweep file is at most %ld", path, (long long)sb.st_size, MAX_FILE_BYTES);
    }
    int rc = check_and_load(NULL, f, path, noverrides, overrides, out);
    fclose(f);
    return rc;
}

void sweep_free(Sweep *s) {
    free(s->path);
    free(s->runs);
    free(s->hashes);
    free(s->analyze_json);
    free(s->tune_settings); free(s->tune_labels); free(s->tune_order); free(s->variant_ids);
    free(s->run_variant); free(s->tune_runs); free(s->tune_hashes); free(s->tune_variant); free(s->tune_setting);
    memset(s, 0, sizeof *s);
}

// ----------------------------------------------------------------------------
// --dry-run listing

void sweep_print(const Sweep *s, FILE *out) {
    fprintf(out, "sweep %s: %d runs (%d combinations, %d excluded, %d duplicates)\n", s->name, s->nruns,
            s->ncombinations, s->nexcluded, s->nduplicates);
    int nkeys = config_num_keys(), varies[CONFIG_MAX_KEYS] = {0}, any = 0;
    int name_key = config_find_key("name");
    for (int k = 0; k < nkeys; k++)
        for (int i = 1; i < s->nruns && !varies[k] && k != name_key; i++)
            if (!config_key_equal(&s->runs[0], &s->runs[i], k)) varies[k] = any = 1;
    if (!any) {   // one run, or runs that differ in nothing shown: name the essentials
        varies[config_find_key("method")] = 1;
        varies[config_find_key("task.name")] = 1;
    }
    if (s->ntune_settings) {   // the tuning runs first; the grid's runs wait for the pick
        fprintf(out, "tune: %d settings x %d seeds on %d variants: %d tuning runs; then the %d runs below at "
                "each variant's picked setting\n", s->ntune_settings, s->ntune_seeds, s->nvariants, s->ntune, s->nruns);
        for (int k = 0; k < s->ntune_keys; k++) varies[s->tune_keys[k]] = 0;
        for (int i = 0; i < s->ntune; i++) {
            fprintf(out, "%.12s  tune %s seed=%d", s->tune_hashes[i], s->tune_labels[s->tune_setting[i]], s->tune_runs[i].seed);
            for (int k = 0; k < nkeys; k++) {
                if (!varies[k] || k == config_find_key("seed") || !config_key_applies(&s->tune_runs[i], k)) continue;
                char v[600];
                config_key_str(&s->tune_runs[i], k, v, sizeof v);
                fprintf(out, " %s=%s", config_key_name(k), v);
            }
            fputc('\n', out);
        }
    }
    for (int i = 0; i < s->nruns; i++) {
        if (s->ntune_settings) fprintf(out, "(picked) ");
        else fprintf(out, "%.12s ", s->hashes[i]);
        for (int k = 0; k < nkeys; k++) {
            if (!varies[k] || !config_key_applies(&s->runs[i], k)) continue;
            char v[600];
            config_key_str(&s->runs[i], k, v, sizeof v);
            fprintf(out, " %s=%s", config_key_name(k), v);
        }
        fputc('\n', out);
    }
}
