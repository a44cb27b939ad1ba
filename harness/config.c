// harness/config.c — RunConfig: the defaults, the key table, setters, validation, canonical
// JSON and hash. See config.h for the contract.
#include "harness/config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/checkpoint.h"
#include "harness/sha256.h"
#include "tasks/task.h"

const char *const COMBINE_NAMES[] = {
    [METHOD_BITFIT] = "bitfit", [METHOD_LORA] = "lora", [METHOD_PREFIX_EMBED] = "prefix_embed",
    [METHOD_PREFIX_LAYER] = "prefix_layer", [METHOD_COUNT - 1] = NULL};
_Static_assert(sizeof COMBINE_NAMES / sizeof COMBINE_NAMES[0] == METHOD_COUNT, "COMBINE_NAMES: one per MethodKind");

// ----------------------------------------------------------------------------
// defaults: the one place every default lives

static const RunConfig DEFAULTS = {
    .name = "",                   // set by the sweep (file name without .yaml if absent)
    .device = "cpu",              // every machine has one
    .base_checkpoint = "",        // no checkpoint: pretrain the preset
    .base_preset = "micro",       // the CPU default (core/model.c presets)
    .pretrain_task = "pretrain",  // the built-in LM corpus
    .pretrain_steps = 3000,       // enough for micro to learn byte-level English
    .pretrain_batch = 32,
    .pretrain_lr = 1e-3,
    .pretrain_seq = 0,            // the preset's n_ctx
    .pretrain_seed = 1,
    .pretrain_warmup = -1,        // pretrain_steps / 20
    .pretrain_schedule = SCHEDULE_COSINE,
    .pretrain_weight_decay = 0.1,
    .task = "spam",               // the SST-2-like binary task
    .task_path = "",              // built-in data
    .task_max_len = 0,            // the model's n_ctx
    .steps = 600,
    .epochs = 0,                  // train by steps
    .batch = 16,
    .lr = 2e-4,                   // the paper's GPT-2 LoRA learning rate
    .warmup = 0,
    .schedule = SCHEDULE_LINEAR,  // the paper's GPT-2 schedule
    .weight_decay = 0.01,         // the paper's GPT-2 setting
    .grad_clip = 1.0,
    .label_smoothing = 0.0,
    .dropout = 0.1,               // the paper's GPT-2 setting
    .eval_every = 100,
    .eval_batches = 0,            // whole validation split
    .method = METHOD_LORA,        // the method this harness is about
    .combine = 0,                 // nothing combined
    .lora_targets = DEFAULT_LORA_TARGETS,  // the paper's default {Wq, Wv}
    .lora_rank = DEFAULT_LORA_RANK,
    .lora_alpha = DEFAULT_LORA_ALPHA,
    .lora_dropout = 0.0,
    .lora_init = LORA_INIT_KAIMING,        // as loralib
    .adapter_rank = DEFAULT_ADAPTER_RANK,
    .adapter_skip = 0,
    .prefix_lp = DEFAULT_PREFIX_LP,
    .prefix_li = DEFAULT_PREFIX_LI,
    .seed = 1,
};

void config_defaults(RunConfig *c) { *c = DEFAULTS; }

// ----------------------------------------------------------------------------
// the key table

typedef enum { KT_STRING, KT_INT, KT_FLOAT, KT_ENUM, KT_MASK } KeyType;
// When a key is written to the canonical JSON (see config.h).
typedef enum { AP_ALWAYS, AP_NEVER, AP_LORA, AP_ADAPTER, AP_ADAPTER_D, AP_PREFIX,
               AP_CHECKPOINT, AP_PRESET, AP_STEPS, AP_NOT_DEFAULT, AP_PRESET_NOT_DEFAULT } Applies;

typedef struct {
    const char *name;
    KeyType type;
    size_t offset, size;             // field; size for KT_STRING buffers
    double min, max;                 // KT_INT / KT_FLOAT, inclusive
    const char *const *choices;      // KT_ENUM / KT_MASK
    int nchoices;
    const char *noun;                // "target": "unknown target 'x'; valid targets: ..."
    int (*check)(const char *s);     // KT_STRING: extra check (err_set on failure)
    Applies applies;
    const char *help;
} Key;

static int check_device(const char *s);
static int check_preset(const char *s);
static int check_sha256(const char *s);
static int check_task(const char *s);

#define F(field) offsetof(RunConfig, field)
#define STR(key, field, chk, ap, help) {key, KT_STRING, F(field), sizeof(((RunConfig *)0)->field), 0, 0, NULL, 0, NULL, chk, ap, help}
#define INT(key, field, lo, hi, ap, help) {key, KT_INT, F(field), 0, lo, hi, NULL, 0, NULL, NULL, ap, help}
#define FLT(key, field, lo, hi, ap, help) {key, KT_FLOAT, F(field), 0, lo, hi, NULL, 0, NULL, NULL, ap, help}
#define ENUM(key, field, ch, n, noun, ap, help) {key, KT_ENUM, F(field), 0, 0, 0, ch, n, noun, NULL, ap, help}
#define MASK(key, field, ch, n, noun, ap, help) {key, KT_MASK, F(field), 0, 0, 0, ch, n, noun, NULL, ap, help}
#define BIG 1e9

static const Key KEYS[] = {
    STR("name", name, NULL, AP_NEVER, "sweep name (not part of the run's hash)"),
    STR("device", device, check_device, AP_ALWAYS, "cpu | cuda | cuda:N"),
    STR("base.checkpoint", base_checkpoint, NULL, AP_CHECKPOINT, "base checkpoint directory (HF-style); replaces preset + pretrain"),
    STR("base.sha256", base_sha256, check_sha256, AP_NOT_DEFAULT, "sha256 that base.checkpoint's model.safetensors must have (pins the base by content)"),
    STR("base.preset", base_preset, check_preset, AP_PRESET, "model preset pretrained once and cached"),
    STR("base.pretrain.task", pretrain_task, check_task, AP_PRESET, "LM task the preset is pretrained on"),
    INT("base.pretrain.steps", pretrain_steps, 1, BIG, AP_PRESET, "pretraining steps"),
    INT("base.pretrain.batch", pretrain_batch, 1, BIG, AP_PRESET, "pretraining batch size"),
    FLT("base.pretrain.lr", pretrain_lr, 0, 10, AP_PRESET, "pretraining learning rate"),
    INT("base.pretrain.seq", pretrain_seq, 0, BIG, AP_PRESET, "pretraining sequence length; 0 = n_ctx"),
    INT("base.pretrain.seed", pretrain_seed, 0, BIG, AP_PRESET, "pretraining seed"),
    STR("task.name", task, check_task, AP_ALWAYS, "task (`task: NAME` is shorthand)"),
    STR("task.path", task_path, NULL, AP_ALWAYS, "user data file or directory for glue-*/e2e/wikisql/samsum"),
    INT("task.max_len", task_max_len, 0, BIG, AP_ALWAYS, "tokens per example; 0 = n_ctx"),
    INT("train.steps", steps, 1, BIG, AP_STEPS, "optimizer steps (ignored when epochs > 0)"),
    INT("train.epochs", epochs, 0, 1e6, AP_ALWAYS, "epochs over the training split; 0 = use steps"),
    INT("train.batch", batch, 1, BIG, AP_ALWAYS, "batch size"),
    FLT("train.lr", lr, 0, 10, AP_ALWAYS, "peak learning rate"),
    INT("train.warmup", warmup, 0, BIG, AP_ALWAYS, "linear warmup steps"),
    ENUM("train.schedule", schedule, SCHEDULE_NAMES, SCHEDULE_COUNT, "schedule", AP_ALWAYS, "constant | linear | cosine"),
    FLT("train.weight_decay", weight_decay, 0, 10, AP_ALWAYS, "AdamW weight decay"),
    FLT("train.grad_clip", grad_clip, 0, 1e9, AP_ALWAYS, "global gradient-norm clip; 0 = none"),
    FLT("train.label_smoothing", label_smoothing, 0, 0.999, AP_ALWAYS, "label smoothing"),
    FLT("train.dropout", dropout, 0, 0.999, AP_ALWAYS, "embedding/attention/residual dropout"),
    INT("train.eval_every", eval_every, 0, BIG, AP_ALWAYS, "validate every N steps; 0 = at the end"),
    INT("train.eval_batches", eval_batches, 0, BIG, AP_ALWAYS, "batches per validation; 0 = whole split"),
    ENUM("method", method, METHOD_NAMES, METHOD_NONE, "method", AP_ALWAYS, NULL),
    MASK("combine", combine, COMBINE_NAMES, METHOD_COUNT, "method to combine", AP_ALWAYS, "extra methods trained too: bitfit, lora, prefix_embed, prefix_layer"),
    MASK("lora.targets", lora_targets, TARGET_NAMES, SITE_COUNT, "target", AP_LORA, "adapted matrices: q, k, v, o, c_fc, c_proj"),
    INT("lora.rank", lora_rank, 1, BIG, AP_LORA, "rank r (<= d_model)"),
    FLT("lora.alpha", lora_alpha, 1e-9, 1e9, AP_LORA, "scale alpha / r"),
    FLT("lora.dropout", lora_dropout, 0, 0.999, AP_LORA, "dropout on the LoRA input"),
    ENUM("lora.init", lora_init, LORA_INIT_NAMES, LORA_INIT_COUNT, "init", AP_LORA, "A's init: kaiming | gaussian"),
    INT("adapter.rank", adapter_rank, 1, BIG, AP_ADAPTER, "adapter bottleneck r (<= d_model)"),
    INT("adapter.skip_layers", adapter_skip, 0, BIG, AP_ADAPTER_D, "adapter_d: lowest layers without adapters"),
    INT("prefix.lp", prefix_lp, 0, BIG, AP_PREFIX, "prefix length l_p"),
    INT("prefix.li", prefix_li, 0, BIG, AP_PREFIX, "infix length l_i"),
    INT("seed", seed, 0, BIG, AP_ALWAYS, "seed of method init, data order and dropout"),
    // Keys added after the first release are hashed only away from their defaults, so the
    // runs of older databases keep their keys.
    ENUM("train.precision", precision, PRECISION_NAMES, PRECISION_COUNT, "precision", AP_NOT_DEFAULT,
         "fp32 | bf16 (block linears in bf16 with fp32 accumulation; frozen ones stored in bf16)"),
    INT("train.patience", patience, 0, BIG, AP_NOT_DEFAULT,
        "early stopping: end after N validations without improvement (train.steps stays the cap); 0 = off"),
    INT("base.pretrain.warmup", pretrain_warmup, -1, BIG, AP_PRESET_NOT_DEFAULT,
        "pretraining linear warmup steps; -1 = base.pretrain.steps / 20"),
    ENUM("base.pretrain.schedule", pretrain_schedule, SCHEDULE_NAMES, 3, "schedule", AP_PRESET_NOT_DEFAULT,
         "pretraining schedule after the warmup: constant | linear | cosine"),
    FLT("base.pretrain.weight_decay", pretrain_weight_decay, 0, 10, AP_PRESET_NOT_DEFAULT, "pretraining AdamW weight decay"),
};
enum { NUM_KEYS = sizeof KEYS / sizeof KEYS[0] };
_Static_assert((int)NUM_KEYS <= (int)CONFIG_MAX_KEYS, "raise CONFIG_MAX_KEYS");

// Block shorthands: `task: spam` sets task.name.
static const struct { const char *block, *key; } SHORTHANDS[] = {{"task", "task.name"}};

int config_num_keys(void) { return NUM_KEYS; }
const char *config_key_name(int key) { LAB_ASSERT(key >= 0 && key < NUM_KEYS); return KEYS[key].name; }

int config_find_key(const char *dotted) {
    for (int i = 0; i < NUM_KEYS; i++)
        if (!strcmp(KEYS[i].name, dotted)) return i;
    return -1;
}

int config_resolve_key(const char *dotted) {
    int k = config_find_key(dotted);
    if (k >= 0) return k;
    for (size_t i = 0; i < sizeof SHORTHANDS / sizeof SHORTHANDS[0]; i++)
        if (!strcmp(SHORTHANDS[i].block, dotted)) return config_find_key(SHORTHANDS[i].key);
    return -1;
}

int config_is_block(const char *dotted) {
    size_t n = strlen(dotted);
    for (int i = 0; i < NUM_KEYS; i++)
        if (!strncmp(KEYS[i].name, dotted, n) && KEYS[i].name[n] == '.') return 1;
    return 0;
}

// Appends "a, b, c" (the names directly under block, "" = top level) to buf.
static void list_children(const char *block, char *buf, size_t cap) {
    size_t n = strlen(block), len = strlen(buf);
    const char *seen[CONFIG_MAX_KEYS];
    size_t seen_len[CONFIG_MAX_KEYS];
    int nseen = 0;
    for (int i = 0; i < NUM_KEYS; i++) {
        const char *name = KEYS[i].name;
        if (n > 0 && (strncmp(name, block, n) || name[n] != '.')) continue;
        const char *child = n > 0 ? name + n + 1 : name;
        size_t clen = strcspn(child, ".");
        int dup = 0;
        for (int s = 0; s < nseen; s++)
            if (seen_len[s] == clen && !strncmp(seen[s], child, clen)) dup = 1;
        if (dup) continue;
        seen[nseen] = child; seen_len[nseen] = clen; nseen++;
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%.*s", nseen > 1 ? ", " : "", (int)clen, child);
        if (len >= cap) return;
    }
}

int config_unknown_key(const char *dotted, const char *extra_top) {
    // The innermost enclosing block that exists names the list of valid keys.
    char block[128];
    snprintf(block, sizeof block, "%s", dotted);
    for (;;) {
        char *dot = strrchr(block, '.');
        if (!dot) { block[0] = '\0'; break; }
        *dot = '\0';
        if (config_is_block(block)) break;
    }
    char list[1024] = "";
    list_children(block, list, sizeof list);
    if (!block[0]) {
        if (extra_top) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, ", %s", extra_top);
        }
        return err_set("unknown key '%s'; valid keys: %s", dotted, list);
    }
    return err_set("unknown key '%s'; valid keys in %s: %s", dotted, block, list);
}

static void list_choices(const Key *k, const char *sep, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < k->nchoices && len < cap; i++)
        if (k->choices[i]) len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? sep : "", k->choices[i]);
}

static int find_choice(const Key *k, const char *s) {
    for (int i = 0; i < k->nchoices; i++)
        if (k->choices[i] && !strcmp(k->choices[i], s)) return i;
    return -1;
}

static int unknown_choice(const Key *k, const char *s) {
    char list[512];
    list_choices(k, ", ", list, sizeof list);
    return err_set("unknown %s '%s'; valid choices: %s", k->noun, s, list);
}

// ----------------------------------------------------------------------------
// string checks

static int check_device(const char *s) {
    if (!strcmp(s, "cpu") || !strcmp(s, "cuda")) return 0;
    if (!strncmp(s, "cuda:", 5) && s[5]) {
        const char *p = s + 5;
        while (*p >= '0' && *p <= '9') p++;
        if (!*p && p - (s + 5) <= 3) return 0;
    }
    return err_set("unknown device '%s'; valid choices: cpu, cuda, cuda:N", s);
}

static int check_in_list(const char *s, const char *const *names, const char *noun) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], s)) return 0;
    char list[1024];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; names[i] && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    return err_set("unknown %s '%s'; valid choices: %s", noun, s, list);
}

static int check_preset(const char *s) { return check_in_list(s, MODEL_PRESET_NAMES, "preset"); }
static int check_sha256(const char *s) {   // "" (the default): no pin
    size_t n = strlen(s);
    if (n == 0) return 0;
    if (n != 64 || strspn(s, "0123456789abcdef") != n)
        return err_set("'%s' is not a sha256: expected 64 lowercase hex digits", s);
    return 0;
}
static int check_task(const char *s) { return check_in_list(s, TASK_NAMES, "task"); }

// ----------------------------------------------------------------------------
// setting values

static void *field_of(RunConfig *c, const Key *k) { return (char *)c + k->offset; }
static const void *cfield_of(const RunConfig *c, const Key *k) { return (const char *)c + k->offset; }

static int parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int range_error(const Key *k, const char *kind, const char *s) {
    if (k->max >= BIG) return err_set("expected %s >= %g, got %s", kind, k->min, s);
    return err_set("expected %s in [%g, %g], got %s", kind, k->min, k->max, s);
}

int config_set_value(RunConfig *c, int key, const ConfigValue *v, int *bad_item) {
    LAB_ASSERT(key >= 0 && key < NUM_KEYS);
    const Key *k = &KEYS[key];
    void *field = field_of(c, k);
    if (bad_item) *bad_item = -1;
    if (k->type == KT_MASK) {
        int mask = 0;
        for (int i = 0; i < v->n; i++) {
            int j = find_choice(k, v->items[i]);
            if (j < 0) { if (bad_item) *bad_item = i; return unknown_choice(k, v->items[i]); }
            mask |= 1 << j;
        }
        *(int *)field = mask;
        return 0;
    }
    if (v->is_list || v->n != 1) return err_set("expected a single value, got a list");
    const char *s = v->items[0];
    switch (k->type) {
    case KT_STRING:
        if (strlen(s) >= k->size) return err_set("expected at most %zu characters, got %zu", k->size - 1, strlen(s));
        if (k->check && k->check(s)) return -1;
        memcpy(field, s, strlen(s) + 1);
        return 0;
    case KT_INT: {
        long x;
        if (parse_long(s, &x)) return err_set("expected an integer, got '%s'", s);
        if (x < k->min || x > k->max) return range_error(k, "an integer", s);
        *(int *)field = (int)x;
        return 0;
    }
    case KT_FLOAT: {
        double x;
        if (parse_double(s, &x)) return err_set("expected a number, got '%s'", s);
        if (x < k->min || x > k->max) return range_error(k, "a number", s);
        *(double *)field = x;
        return 0;
    }
    case KT_ENUM: {
        int j = find_choice(k, s);
        if (j < 0) return unknown_choice(k, s);
        *(int *)field = j;
        return 0;
    }
    case KT_MASK: break;
    }
    LAB_ASSERT(0);
    return -1;
}

enum { MAX_ITEMS = 64 };

int config_set(RunConfig *c, const char *dotted, const char *value) {
    int key = config_resolve_key(dotted);
    if (key < 0 && config_is_block(dotted)) {
        char list[1024] = "";
        list_children(dotted, list, sizeof list);
        return err_set("%s is a block; set one of its keys (%s.KEY): %s", dotted, dotted, list);
    }
    if (key < 0) return config_unknown_key(dotted, NULL);
    // Split "q,v" into items for list keys; other keys take the whole string.
    char buf[1024];
    const char *items[MAX_ITEMS];
    ConfigValue v = {1, items, 0};
    items[0] = value;
    if (KEYS[key].type == KT_MASK) {
        if (strlen(value) >= sizeof buf) return err_set("value too long");
        snprintf(buf, sizeof buf, "%s", value);
        v.n = 0; v.is_list = 1;
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            if (!*tok) continue;
            if (v.n == MAX_ITEMS) return err_set("too many list items");
            items[v.n++] = tok;
        }
    }
    if (config_set_value(c, key, &v, NULL)) return -1;
    c->origin[key] = (ConfigOrigin){0};
    return 0;
}

int config_apply_override(RunConfig *c, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return err_set("override '%s': expected key=value", arg);
    char key[128];
    if ((size_t)(eq - arg) >= sizeof key) return err_set("override '%s': key too long", arg);
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    if (config_set(c, key, eq + 1)) return err_prefix("override '%s'", arg);
    c->origin[config_resolve_key(key)] = (ConfigOrigin){.override = arg};
    return 0;
}

void config_key_str(const RunConfig *c, int key, char *buf, size_t cap) {
    LAB_ASSERT(key >= 0 && key < NUM_KEYS && cap > 0);
    const Key *k = &KEYS[key];
    const void *f = cfield_of(c, k);
    switch (k->type) {
    case KT_STRING: snprintf(buf, cap, "%s", (const char *)f); return;
    case KT_INT: snprintf(buf, cap, "%d", *(const int *)f); return;
    case KT_FLOAT: snprintf(buf, cap, "%.9g", *(const double *)f); return;
    case KT_ENUM: snprintf(buf, cap, "%s", k->choices[*(const int *)f]); return;
    case KT_MASK: {
        size_t len = 0;
        buf[0] = '\0';
        for (int i = 0; i < k->nchoices && len < cap; i++)
            if (*(const int *)f & (1 << i))
                len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "," : "", k->choices[i]);
        return;
    }
    }
}

int config_key_equal(const RunConfig *a, const RunConfig *b, int key) {
    LAB_ASSERT(key >= 0 && key < NUM_KEYS);
    const Key *k = &KEYS[key];
    const void *x = cfield_of(a, k), *y = cfield_of(b, k);
    switch (k->type) {
    case KT_STRING: return !strcmp(x, y);
    case KT_FLOAT: return *(const double *)x == *(const double *)y;
    case KT_INT: case KT_ENUM: case KT_MASK: return *(const int *)x == *(const int *)y;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// which methods a run uses

// The union of METHODS[k].reads, or of .adds, over the method and the combined ones.
static unsigned run_reads(const RunConfig *c) {
    unsigned u = METHODS[c->method].reads;
    for (int i = 0; i < METHOD_COUNT; i++)
        if (c->combine & METHOD_BIT(i)) u |= METHODS[i].reads;
    return u;
}
static int run_prefixes(const RunConfig *c) {   // how many prefix methods it names
    int n = !!(METHODS[c->method].adds & ADDS_PREFIX);
    for (int i = 0; i < METHOD_COUNT; i++)
        if (c->combine & METHOD_BIT(i)) n += !!(METHODS[i].adds & ADDS_PREFIX);
    return n;
}

int config_uses_lora(const RunConfig *c) { return (run_reads(c) & READS_LORA) != 0; }
int config_uses_adapter(const RunConfig *c) { return (run_reads(c) & READS_ADAPTER) != 0; }
int config_uses_prefix(const RunConfig *c) { return (run_reads(c) & READS_PREFIX) != 0; }

static int key_applies(const RunConfig *c, const Key *k) {
    switch (k->applies) {
    case AP_ALWAYS: return 1;
    case AP_NEVER: return 0;
    case AP_LORA: return config_uses_lora(c);
    case AP_ADAPTER: return config_uses_adapter(c);
    case AP_ADAPTER_D: return (run_reads(c) & READS_ADAPTER_SKIP) != 0;
    case AP_PREFIX: return config_uses_prefix(c);
    case AP_CHECKPOINT: return c->base_checkpoint[0] != '\0';
    case AP_PRESET: return c->base_checkpoint[0] == '\0';
    case AP_STEPS: return c->epochs == 0;
    case AP_NOT_DEFAULT: return !config_key_equal(c, &DEFAULTS, (int)(k - KEYS));
    case AP_PRESET_NOT_DEFAULT: return c->base_checkpoint[0] == '\0' && !config_key_equal(c, &DEFAULTS, (int)(k - KEYS));
    }
    return 1;
}

int config_key_applies(const RunConfig *c, int key) {
    LAB_ASSERT(key >= 0 && key < NUM_KEYS);
    return key_applies(c, &KEYS[key]);
}

// ----------------------------------------------------------------------------
// validation

void config_origin_str(const RunConfig *c, int key, char *buf, size_t cap) {
    const ConfigOrigin *o = &c->origin[key];
    if (o->override) snprintf(buf, cap, "override '%s': ", o->override);
    else if (o->file) snprintf(buf, cap, "%s:%d:%d: ", o->file, o->line, o->col);
    else buf[0] = '\0';
}

// err_set with the origin of `key` in front.
static int key_error(const RunConfig *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int key_error(const RunConfig *c, const char *key, const char *fmt, ...) {
    char where[700], msg[1024];
    int k = config_find_key(key);
    LAB_ASSERT(k >= 0);
    config_origin_str(c, k, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set("%s%s: %s", where, key, msg);
}

// Of two keys, the one the user set (for the position of a message about both).
static const char *set_key(const RunConfig *c, const char *a, const char *b) {
    int ka = config_find_key(a);
    return (c->origin[ka].file || c->origin[ka].override) ? a : b;
}

static int check_methods(const RunConfig *c) {
    const char *name = METHOD_NAMES[c->method];
    if (c->combine && (METHODS[c->method].adds & TRAINS_ALL))
        return key_error(c, "combine", "%s already trains every parameter; nothing to combine", name);
    if (c->combine & METHOD_BIT(c->method))
        return key_error(c, "combine", "'%s' is already the method", name);
    if (run_prefixes(c) > 1) return key_error(c, "combine", "at most one of prefix_embed, prefix_layer");
    return 0;
}

// base.sha256 against the checkpoint's weights. The hash of the last file checked is kept (by
// path, size and mtime), so a sweep of hundreds of runs on one base reads it once.
static int check_base_sha256(const RunConfig *c) {
    static char cached_path[600], cached_hex[65];
    static struct stat cached_st;
    if (!c->base_sha256[0]) return 0;
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", c->base_checkpoint);
    struct stat st;
    if (stat(path, &st) != 0)
        return key_error(c, "base.sha256", "%s: cannot open: %s", path, strerror(errno));
    if (strcmp(path, cached_path) != 0 || st.st_size != cached_st.st_size ||
        st.st_mtim.tv_sec != cached_st.st_mtim.tv_sec || st.st_mtim.tv_nsec != cached_st.st_mtim.tv_nsec) {
        cached_path[0] = '\0';
        if (sha256_file_hex(path, cached_hex)) return key_error(c, "base.sha256", "%s", err_msg());
        snprintf(cached_path, sizeof cached_path, "%s", path);
        cached_st = st;
    }
    if (strcmp(cached_hex, c->base_sha256) != 0)
        return key_error(c, "base.sha256", "%s has sha256 %s, expected %s", path, cached_hex, c->base_sha256);
    return 0;
}

int config_validate(const RunConfig *c) {
    if (check_methods(c)) return -1;
    if (c->patience > 0 && c->eval_every == 0)
        return key_error(c, "train.patience", "%d needs validations during training: set train.eval_every > 0",
                         c->patience);
    if (config_uses_lora(c) && c->lora_targets == 0)
        return key_error(c, "lora.targets", "empty; choose from q, k, v, o, c_fc, c_proj");
    // Shape checks need the model's dimensions: the preset's, or the checkpoint's config.json.
    ModelConfig mc;
    if (!c->base_checkpoint[0]) {
        if (model_preset(c->base_preset, &mc))
            return key_error(c, "base.preset", "%s", err_msg());
        if (c->pretrain_seq > mc.n_ctx)
            return key_error(c, "base.pretrain.seq", "%d is larger than n_ctx %d of preset %s",
                             c->pretrain_seq, mc.n_ctx, c->base_preset);
    } else {
        if (checkpoint_read_config(c->base_checkpoint, &mc))
            return key_error(c, "base.checkpoint", "%s", err_msg());
        if (check_base_sha256(c)) return -1;
    }
    if (c->base_sha256[0] && !c->base_checkpoint[0])
        return key_error(c, "base.sha256", "pins a checkpoint's content: set base.checkpoint too");
    if (!task_is_builtin(c->task) && !c->task_path[0])
        return key_error(c, "task.name", "%s reads your copy of its data: set task.path (%s)", c->task,
                         task_path_hint(c->task));
    const char *model = c->base_checkpoint[0] ? c->base_checkpoint : c->base_preset;
    if (c->task_max_len > mc.n_ctx)
        return key_error(c, "task.max_len", "%d is larger than n_ctx %d of %s", c->task_max_len, mc.n_ctx, model);
    // Every LoRA target and adapter maps between d_model and d_model or 4 d_model, so the
    // largest useful rank is d_model.
    if (config_uses_lora(c) && c->lora_rank > mc.n_embd)
        return key_error(c, "lora.rank", "%d is larger than d_model %d of %s; r must be in [1, %d]",
                         c->lora_rank, mc.n_embd, model, mc.n_embd);
    if (config_uses_adapter(c) && c->adapter_rank > mc.n_embd)
        return key_error(c, "adapter.rank", "%d is larger than d_model %d of %s; r must be in [1, %d]",
                         c->adapter_rank, mc.n_embd, model, mc.n_embd);
    if ((run_reads(c) & READS_ADAPTER_SKIP) && c->adapter_skip >= mc.n_layer)
        return key_error(c, "adapter.skip_layers", "%d leaves no adapter in a %d-layer model (%s)",
                         c->adapter_skip, mc.n_layer, model);
    if (config_uses_prefix(c)) {
        int n = c->prefix_lp + c->prefix_li;
        const char *k = set_key(c, "prefix.lp", "prefix.li");
        if (n < 1) return key_error(c, k, "prefix.lp + prefix.li must be >= 1, got 0");
        if (n >= mc.n_ctx)
            return key_error(c, k, "prefix.lp + prefix.li = %d must be < n_ctx %d of %s", n, mc.n_ctx, model);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// mapping to the core

int config_to_model(const RunConfig *c, ModelConfig *mc) {
    if (c->base_checkpoint[0]) return checkpoint_read_config(c->base_checkpoint, mc);
    return model_preset(c->base_preset, mc);
}

int config_to_method(const RunConfig *c, MethodConfig *mc) {
    if (check_methods(c)) return -1;
    method_defaults(mc);
    mc->kind = (MethodKind)c->method;
    if (config_uses_lora(c)) {
        mc->lora_targets = c->lora_targets;
        mc->lora_rank = c->lora_rank;
        mc->lora_alpha = (float)c->lora_alpha;
        mc->lora_dropout = (float)c->lora_dropout;
        mc->lora_init = (LoraInit)c->lora_init;
    }
    if (config_uses_adapter(c)) {
        mc->adapter_rank = c->adapter_rank;
        mc->adapter_skip = (run_reads(c) & READS_ADAPTER_SKIP) ? c->adapter_skip : 0;
    }
    if (config_uses_prefix(c)) {
        mc->prefix_lp = c->prefix_lp;
        mc->prefix_li = c->prefix_li;
    }
    mc->combine = (unsigned)c->combine;   // the same mask (check_methods: not the method's own bit)
    mc->precision = (Precision)c->precision;
    return 0;
}

void config_to_optim(const RunConfig *c, OptimConfig *oc) {
    optim_defaults(oc);
    oc->lr = (float)c->lr;
    oc->weight_decay = (float)c->weight_decay;
    oc->grad_clip = (float)c->grad_clip;
    oc->schedule = (Schedule)c->schedule;
    oc->warmup = c->warmup;
    oc->total_steps = c->steps;
}

// ----------------------------------------------------------------------------
// canonical JSON and hash

// The object at the dotted prefix of name (creating objects on the way); *leaf = last part.
static json_t *json_parent(json_t *root, const char *name, char *leaf, size_t cap) {
    json_t *obj = root;
    const char *p = name;
    for (const char *dot; (dot = strchr(p, '.')); p = dot + 1) {
        char part[64];
        snprintf(part, sizeof part, "%.*s", (int)(dot - p), p);
        json_t *child = json_object_get(obj, part);
        if (!child) { child = json_object(); json_object_set_new(obj, part, child); }
        obj = child;
    }
    snprintf(leaf, cap, "%s", p);
    return obj;
}

static json_t *key_to_json(const RunConfig *c, const Key *k) {
    const void *f = cfield_of(c, k);
    switch (k->type) {
    case KT_STRING: return json_string(f);
    case KT_INT: return json_integer(*(const int *)f);
    case KT_FLOAT: return json_real(*(const double *)f);
    case KT_ENUM: return json_string(k->choices[*(const int *)f]);
    case KT_MASK: {
        json_t *a = json_array();
        for (int i = 0; i < k->nchoices; i++)
            if (*(const int *)f & (1 << i)) json_array_append_new(a, json_string(k->choices[i]));
        return a;
    }
    }
    return json_null();
}

char *config_to_json(const RunConfig *c) {
    json_t *root = json_object();
    for (int i = 0; i < NUM_KEYS; i++) {
        if (!key_applies(c, &KEYS[i])) continue;
        char leaf[64];
        json_t *obj = json_parent(root, KEYS[i].name, leaf, sizeof leaf);
        json_object_set_new(obj, leaf, key_to_json(c, &KEYS[i]));
    }
    char *s = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    LAB_ASSERT(s);
    char *out = xstrdup(s);   // callers free() it; jansson may use its own allocator
    free(s);
    return out;
}

void config_hash(const RunConfig *c, char hex[65]) {
    char *json = config_to_json(c);
    sha256_hex(json, strlen(json), hex);
    free(json);
}

// A JSON scalar as the text a setter takes.
static int json_scalar_text(json_t *v, char *buf, size_t cap) {
    if (json_is_string(v)) { snprintf(buf, cap, "%s", json_string_value(v)); return 0; }
    if (json_is_integer(v)) { snprintf(buf, cap, "%lld", (long long)json_integer_value(v)); return 0; }
    if (json_is_real(v)) { snprintf(buf, cap, "%.17g", json_real_value(v)); return 0; }
    return -1;
}

static int json_apply(RunConfig *c, json_t *obj, const char *prefix) {
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char full[256];
        snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (json_is_object(v)) {
            if (!config_is_block(full)) return config_unknown_key(full, NULL);
            if (json_apply(c, v, full)) return -1;
            continue;
        }
        int key = config_find_key(full);
        if (key < 0) return config_unknown_key(full, NULL);
        char texts[MAX_ITEMS][600];
        const char *items[MAX_ITEMS];
        ConfigValue cv = {0, items, json_is_array(v)};
        if (json_is_array(v)) {
            if (json_array_size(v) > MAX_ITEMS) return err_set("%s: too many items", full);
            for (size_t i = 0; i < json_array_size(v); i++) {
                if (json_scalar_text(json_array_get(v, i), texts[i], sizeof texts[i]))
                    return err_set("%s: expected a list of strings", full);
                items[cv.n++] = texts[i];
            }
        } else {
            if (json_scalar_text(v, texts[0], sizeof texts[0]))
                return err_set("%s: expected a string or a number", full);
            items[cv.n++] = texts[0];
        }
        if (config_set_value(c, key, &cv, NULL)) return err_prefix("%s", full);
    }
    return 0;
}

int config_from_json(const char *json, RunConfig *c) {
    config_defaults(c);
    json_error_t e;
    json_t *root = json_loads(json, 0, &e);
    if (!root) return err_set("config JSON:%d:%d: %s", e.line, e.column, e.text);
    int rc = json_is_object(root) ? json_apply(c, root, "") : err_set("expected a JSON object");
    json_decref(root);
    if (rc) return err_prefix("config JSON");
    return 0;
}

// ----------------------------------------------------------------------------
// --help listing

void config_print_keys(FILE *out) {
    RunConfig d;
    config_defaults(&d);
    fprintf(out, "config keys (YAML blocks or key=value; lists as a,b):\n");
    for (int i = 0; i < NUM_KEYS; i++) {
        const Key *k = &KEYS[i];
        json_t *v = key_to_json(&d, k);
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(9));
        char choices[512] = "";
        if (!k->help) list_choices(k, " | ", choices, sizeof choices);   // help NULL: the choices
        // a name as long as the column still leaves two spaces before its help
        fprintf(out, "  %-24s %s%s (default %s)\n", k->name, strlen(k->name) >= 24 ? " " : "",
                k->help ? k->help : choices, s ? s : "?");
        free(s);
        json_decref(v);
    }
}
