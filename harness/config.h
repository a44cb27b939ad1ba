// harness/config.h — one run's resolved configuration (RunConfig): defaults, dotted-key
// setters (YAML, key=value overrides, stored JSON), validation, canonical JSON and its hash.
//
// One table of keys (config.c, CONFIG_KEYS) drives everything: YAML parsing
// (harness/sweepfile.c), `key=value` overrides, validation, JSON output and the --help
// listing. A key is a dotted path: "seed", "lora.rank", "base.pretrain.lr".
//
// Methods and combinations: `method:` names the primary method (ft, bitfit, lora,
// prefix_embed, prefix_layer, adapter_h, adapter_l, adapter_p, adapter_d); `combine:` is a
// list of extra methods trained alongside it, as in the paper's appendix: any of bitfit,
// lora, prefix_embed, prefix_layer (e.g. `method: lora` + `combine: [prefix_embed]`).
// Each method reads its own block (lora:, adapter:, prefix:).
//
// Canonical JSON (config_to_json): keys sorted, compact, every applicable key written with
// its resolved value (defaults filled in), floats printed with %.9g (values are held as
// doubles, so 2e-4 and 0.0002 in YAML give the same text). Keys that do not apply to the run
// are left out, so that runs that cannot differ hash the same: lora.* only when LoRA is
// used, adapter.* only for adapter methods (adapter.skip_layers only for adapter_d),
// prefix.* only with a prefix method, base.checkpoint or base.preset + base.pretrain.*,
// train.steps only when train.epochs is 0. Keys added after the first release (base.sha256,
// train.precision, train.patience, base.pretrain.warmup/schedule/weight_decay) only when
// they are not their defaults, so the runs of older databases keep their hashes.
// What is hashed: the canonical JSON. `name` (the sweep's name) is NOT in it: the same run
// in two sweeps is one run. `device` IS in it: results on cpu and cuda differ in the last
// bits (different reductions), so a cpu run and a cuda run are different runs. Scheduling
// options (jobs, devices list, database) are not config keys at all.
#ifndef LORALAB_CONFIG_H
#define LORALAB_CONFIG_H

#include <stdio.h>

#include "core/model.h"

enum { CONFIG_MAX_KEYS = 64 };

// Where a key's value came from, for messages. file == NULL and override == NULL: default.
// The pointers are borrowed (the sweep's file name, the caller's argv string).
typedef struct {
    const char *file;       // YAML/JSON file, or NULL
    int line, col;          // 1-based (file only)
    const char *override;   // "lora.rank=4" as given on the command line, or NULL
} ConfigOrigin;

// combine: the names of the methods a run may combine, indexed by MethodKind (NULL: not
// combinable); the key's value is MethodConfig.combine's mask of METHOD_BIT(kind).
extern const char *const COMBINE_NAMES[];        // "bitfit", "lora", "prefix_embed", "prefix_layer"

typedef struct {
    char name[64];              // name: the sweep's name (not hashed)
    char device[16];            // device: cpu | cuda | cuda:N
    // base: a checkpoint directory, or a preset + the spec that pretrains it once
    char base_checkpoint[512];  // base.checkpoint: HF-style directory; "" = use the preset
    char base_sha256[65];       // base.sha256: the checkpoint's model.safetensors must hash to this; "" = any
    char base_preset[32];       // base.preset: MODEL_PRESET_NAMES
    char pretrain_task[32];     // base.pretrain.task: LM task the preset is pretrained on
    int pretrain_steps;         // base.pretrain.steps
    int pretrain_batch;         // base.pretrain.batch
    double pretrain_lr;         // base.pretrain.lr
    int pretrain_seq;           // base.pretrain.seq: tokens per sequence; 0 = n_ctx
    int pretrain_seed;          // base.pretrain.seed
    int pretrain_warmup;        // base.pretrain.warmup: linear warmup steps; -1 = pretrain_steps / 20
    int pretrain_schedule;      // base.pretrain.schedule: Schedule
    double pretrain_weight_decay;   // base.pretrain.weight_decay: AdamW decoupled decay
    // task
    char task[32];              // task.name (`task: NAME` is shorthand)
    char task_path[512];        // task.path: user data (GLUE TSV, E2E CSV, ...); "" = built-in
    int task_max_len;           // task.max_len: tokens per example; 0 = the model's n_ctx
    // train
    int steps;                  // train.steps (ignored when epochs > 0)
    int epochs;                 // train.epochs: 0 = train for `steps`
    int batch;                  // train.batch
    double lr;                  // train.lr: peak learning rate
    int warmup;                 // train.warmup: linear warmup steps
    int schedule;               // train.schedule: Schedule (constant | linear | cosine)
    double weight_decay;        // train.weight_decay: AdamW decoupled decay
    double grad_clip;           // train.grad_clip: global-norm clip; 0 = none
    double label_smoothing;     // train.label_smoothing
    double dropout;             // train.dropout: embedding/attention/residual dropout
    int eval_every;             // train.eval_every: validation every N steps; 0 = at the end only
    int eval_batches;           // train.eval_batches: batches per validation; 0 = whole split
    // method
    int method;                 // method: MethodKind (not METHOD_NONE)
    int combine;                // combine: METHOD_BIT mask of extra methods (as MethodConfig's)
    int lora_targets;           // lora.targets: TARGET_* mask
    int lora_rank;              // lora.rank: r
    double lora_alpha;          // lora.alpha: scale alpha / r
    double lora_dropout;        // lora.dropout: dropout on the LoRA input
    int lora_init;              // lora.init: LoraInit (kaiming | gaussian)
    int adapter_rank;           // adapter.rank: bottleneck r
    int adapter_skip;           // adapter.skip_layers: adapter_d: lowest layers without adapters
    int prefix_lp;              // prefix.lp: prefix length
    int prefix_li;              // prefix.li: infix length
    int seed;                   // seed: method init, data order and dropout
    int precision;              // train.precision: Precision (core/model.h)
    int patience;               // train.patience: stop after N validations without improvement; 0 = off
    ConfigOrigin origin[CONFIG_MAX_KEYS];   // per key (index in the key table); not hashed
} RunConfig;

// A run config holding every default (see the table in config.c).
void config_defaults(RunConfig *c);

// ---- the key table ----
int config_num_keys(void);
const char *config_key_name(int key);          // "lora.rank"
int config_find_key(const char *dotted);       // index, or -1
// Prints every key with its type, default and help (for --help).
void config_print_keys(FILE *out);

// ---- setting values ----
// A value as given: one scalar, or a list (YAML sequence, or comma-separated on the
// command line). items are borrowed.
typedef struct {
    int n;
    const char *const *items;
    int is_list;
} ConfigValue;

// Sets one key from a value. Returns 0, or -1 with err_set() saying what was expected
// ("expected an integer >= 1, got 'abc'", "unknown target 'x'; valid targets: q, k, ...");
// *bad_item (may be NULL) receives the index of the offending list item or -1. The message
// does not name the key or position: the caller prefixes them.
int config_set_value(RunConfig *c, int key, const ConfigValue *v, int *bad_item);
// Sets one key from a string ("q,v" is a list for list keys). Block shorthands apply:
// "task" means "task.name". Errors: "unknown key ..." with the valid keys of its block.
int config_set(RunConfig *c, const char *dotted, const char *value);
// Applies one command-line override "key=value", recording it as the key's origin (arg
// is borrowed). Errors read "override 'lora.rank=abc': expected an integer ...".
int config_apply_override(RunConfig *c, const char *arg);
// "unknown key 'lora.rnk'; valid keys in lora: targets, rank, ..." (err_set); returns -1.
// extra_top (may be NULL) is appended to the list of top-level keys ("grid, variants").
int config_unknown_key(const char *dotted, const char *extra_top);
// Resolves a dotted key or block shorthand to a key index; -1 if unknown (no err_set).
int config_resolve_key(const char *dotted);
// Whether `dotted` names a block ("lora", "base", "base.pretrain").
int config_is_block(const char *dotted);
// The key's value as text that config_set accepts ("q,v", "0.0002", "lora"), into buf.
void config_key_str(const RunConfig *c, int key, char *buf, size_t cap);
// Whether key is written to c's canonical JSON (lora.* only when LoRA is used, ...).
int config_key_applies(const RunConfig *c, int key);
// 1 if key holds the same value in a and b.
int config_key_equal(const RunConfig *a, const RunConfig *b, int key);

// ---- validation ----
// Cross-field checks for one resolved run: rank in [1, d_model], lp + li < n_ctx, task and
// preset names, combine rules, base.checkpoint xor base.preset, ... Messages start with the
// origin of the offending key ("FILE:LINE:COL: " or "override '...': "). 0 or -1.
int config_validate(const RunConfig *c);
// "FILE:LINE:COL: ", "override 'k=v': " or "" for key's origin, into buf.
void config_origin_str(const RunConfig *c, int key, char *buf, size_t cap);

// ---- mapping to the core ----
// Model shape: from base.preset (model_preset), or base.checkpoint's config.json when the
// checkpoint module can read it. 0 or -1 with err_set().
int config_to_model(const RunConfig *c, ModelConfig *mc);
// Method: kind, LoRA (also when combined), adapter, prefix, bitfit. Head is left as
// method_defaults sets it (HEAD_LM): the task decides the head. 0 or -1.
int config_to_method(const RunConfig *c, MethodConfig *mc);
// Optimiser: lr, weight decay, grad clip, schedule, warmup; total_steps = train.steps (the
// caller sets it when training by epochs).
void config_to_optim(const RunConfig *c, OptimConfig *oc);
// Whether the run uses LoRA / an adapter / a prefix (primary or combined).
int config_uses_lora(const RunConfig *c);
int config_uses_adapter(const RunConfig *c);
int config_uses_prefix(const RunConfig *c);

// ---- canonical JSON and hash ----
// Canonical JSON text (see the top of this file); caller frees.
char *config_to_json(const RunConfig *c);
// SHA-256 of config_to_json, lowercase hex.
void config_hash(const RunConfig *c, char hex[65]);
// Reads a stored config back: defaults, then every key in the JSON (unknown keys are an
// error). 0 or -1 with err_set().
int config_from_json(const char *json, RunConfig *c);

#endif
