// core/model.h — the GPT-2 family model, its parameter registry and the paper's methods.
//
// One model, written once against the Backend interface (core/backend.h). Parameters live
// in a registry (name, shape, trainable flag); gradients and AdamW moments exist only for
// trainable tensors. Memory comes from four large allocations sized up front (weights,
// gradients, optimizer moments, activations) plus small per-batch scratch.
//
// Weight layout: every linear weight is stored [out, in] (PyTorch nn.Linear, PEFT ΔW);
// checkpoints store GPT-2's Conv1D layout [in, out] and core/checkpoint.c transposes.
// Base tensors are stacked over layers: "h.attn.c_attn.weight" is (L, 3C, C) and holds
// h.{i}.attn.c_attn.weight (transposed) at slice i. q, k, v are rows [0,C), [C,2C), [2C,3C)
// of the fused c_attn, and LoRA adapts each separately.
#ifndef LORALAB_MODEL_H
#define LORALAB_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"

// ----------------------------------------------------------------------------
// configuration

typedef struct {
    int n_layer;      // L
    int n_head;       // NH
    int n_embd;       // C
    int n_ctx;        // maximum sequence length (wpe rows)
    int vocab_size;   // V
    float ln_eps;     // LayerNorm epsilon (GPT-2: 1e-5)
} ModelConfig;

// Fills cfg from a preset name (nano, micro, small, gpt2, gpt2-medium, gpt2-large);
// vocab_size is the preset's (byte presets: 260 = 256 bytes + 4 specials; gpt2*: 50257).
// Returns 0, or -1 with err_set() naming the valid presets.
int model_preset(const char *name, ModelConfig *cfg);
extern const char *const MODEL_PRESET_NAMES[];   // NULL-terminated

// LoRA sites: the matrices of a block that LoRA can adapt. A set of sites (lora.targets) is
// a bitmask of TARGET_* bits, bit s for site s.
typedef enum { SITE_Q, SITE_K, SITE_V, SITE_O, SITE_FC, SITE_PROJ, SITE_COUNT } LoraSite;
enum { TARGET_Q = 1 << SITE_Q, TARGET_K = 1 << SITE_K, TARGET_V = 1 << SITE_V, TARGET_O = 1 << SITE_O,
       TARGET_FC = 1 << SITE_FC, TARGET_PROJ = 1 << SITE_PROJ };
enum { NUM_TARGETS = SITE_COUNT };
extern const char *const TARGET_NAMES[];   // indexed by LoraSite: "q","k","v","o","c_fc","c_proj"

// The four linears of a block, each stacked over layers as (L, out, in).
typedef enum { LINEAR_QKV, LINEAR_ATTN_PROJ, LINEAR_FC, LINEAR_MLP_PROJ, LINEAR_COUNT } BlockLinear;
extern const char *const BLOCK_LINEAR_NAMES[];   // registry names: "h.attn.c_attn.weight", ...

// The methods. What each one is lives in METHODS (below); a new method goes before
// METHOD_NONE, since the run configuration offers the names before it.
typedef enum { METHOD_FT, METHOD_BITFIT, METHOD_LORA, METHOD_PREFIX_EMBED, METHOD_PREFIX_LAYER,
               METHOD_ADAPTER_H, METHOD_ADAPTER_L, METHOD_ADAPTER_P, METHOD_ADAPTER_D,
               METHOD_NONE /* everything frozen: evaluation only */, METHOD_COUNT } MethodKind;
extern const char *const METHOD_NAMES[];   // indexed by MethodKind, "ft", "bitfit", ...; NULL-terminated
#define METHOD_BIT(k) (1u << (k))   // a MethodKind in a mask of methods

typedef enum { LORA_INIT_KAIMING, LORA_INIT_GAUSSIAN, LORA_INIT_COUNT } LoraInit;
extern const char *const LORA_INIT_NAMES[];   // "kaiming", "gaussian"
// PRECISION_BF16 (mixed precision): the four linears of every block (c_attn, attn.c_proj,
// c_fc, mlp.c_proj) multiply bf16 operands with fp32 accumulation; their frozen weights are
// stored in bf16 only, trainable ones as fp32 masters with a bf16 copy made each forward.
// Everything else (embeddings and LM head, LayerNorms, attention, LoRA and adapter branches,
// activations, gradients, AdamW) stays fp32.
typedef enum { PRECISION_FP32, PRECISION_BF16, PRECISION_COUNT } Precision;
extern const char *const PRECISION_NAMES[];   // "fp32", "bf16"
typedef enum { HEAD_LM, HEAD_CLS, HEAD_REG, HEAD_COUNT } HeadKind;
extern const char *const HEAD_NAMES[];        // "lm", "cls", "reg"

// What is trained: the primary method `kind`, plus combinations such as the paper's
// lora + prefix_embed, lora + prefix_layer, lora + bitfit through `combine`, a mask of
// METHOD_BIT(k) over the combinable methods (bitfit, lora, and at most one of prefix_embed,
// prefix_layer; any primary method can take them). The run configuration's `combine:` key is
// the same mask.
typedef struct {
    MethodKind kind;
    // LoRA (kind == METHOD_LORA or combined)
    int lora_targets;      // TARGET_* mask
    int lora_rank;         // r
    float lora_alpha;      // scale = alpha / r
    float lora_dropout;    // dropout on the LoRA input x
    LoraInit lora_init;
    // adapters
    int adapter_rank;      // bottleneck r
    int adapter_skip;      // adapter_d: no adapters in the lowest `adapter_skip` layers
    // prefix tuning
    int prefix_lp, prefix_li;  // prefix and infix lengths
    unsigned combine;      // METHOD_BIT of each method trained too; never kind's own bit
    // head
    HeadKind head;
    int n_classes;         // HEAD_CLS: number of classes; HEAD_REG: 1
    Precision precision;   // how the block linears compute and store weights (not what trains)
} MethodConfig;

// The defaults of the method settings, for method_defaults and the run configuration's keys.
enum { DEFAULT_LORA_TARGETS = TARGET_Q | TARGET_V, DEFAULT_LORA_RANK = 8, DEFAULT_ADAPTER_RANK = 8,
       DEFAULT_PREFIX_LP = 16, DEFAULT_PREFIX_LI = 0 };
#define DEFAULT_LORA_ALPHA 8.0f   // scale alpha / r = 1 at r = 8

// Defaults: ft, the DEFAULT_* settings above, kaiming init, LM head.
void method_defaults(MethodConfig *mc);

// ----------------------------------------------------------------------------
// the methods: one table (METHODS, core/method.c) says what each method is; every question
// about a method or a combination is answered from it.

typedef enum { FAMILY_FULL, FAMILY_BIAS, FAMILY_LORA, FAMILY_PREFIX, FAMILY_ADAPTER, FAMILY_NONE,
               FAMILY_COUNT } MethodFamily;

// What a method adds to the model or trains in it (MethodInfo.adds).
enum {
    ADDS_LORA = 1 << 0,           // LoRA branches on the lora_targets sites
    ADDS_PREFIX_EMBED = 1 << 1,   // trained vectors at the input embeddings (PreEmbed)
    ADDS_PREFIX_LAYER = 1 << 2,   // trained vectors at every layer's input (PreLayer)
    ADDS_ADAPTER_ATTN = 1 << 3,   // a bottleneck adapter after the attention sublayer
    ADDS_ADAPTER_MLP = 1 << 4,    // a bottleneck adapter after the MLP sublayer
    ADDS_ADAPTER_LN = 1 << 5,     // a LayerNorm before the MLP adapter (adapter_l)
    TRAINS_ALL = 1 << 6,          // every base weight
    TRAINS_BIASES = 1 << 7,       // the base model's biases
    TRAINS_LAYERNORMS = 1 << 8,   // the base model's LayerNorms
    TRAINS_NOTHING = 1 << 9,      // everything frozen, the head included (evaluation only)
};
enum { ADDS_PREFIX = ADDS_PREFIX_EMBED | ADDS_PREFIX_LAYER,
       ADDS_ADAPTER = ADDS_ADAPTER_ATTN | ADDS_ADAPTER_MLP };
// Settings a method reads (MethodInfo.reads): the run configuration's blocks lora.*,
// adapter.* (adapter.skip_layers on its own), prefix.*.
enum { READS_LORA = 1, READS_ADAPTER = 2, READS_ADAPTER_SKIP = 4, READS_PREFIX = 8 };

typedef struct {
    MethodKind kind;             // its own index (checked by the unit tests)
    MethodFamily family;
    unsigned adds;               // ADDS_* | TRAINS_*
    unsigned reads;              // READS_*
    // Trainable parameters of the method alone on model c (heads excluded), as the registry
    // counts them: the paper's "# trainable parameters".
    size_t (*trainable)(const ModelConfig *c, const MethodConfig *mc);
    // What it exports: why its trained tensors cannot be written as a PEFT LoRA adapter, or
    // merged into a GPT-2 checkpoint ("method X <reason>"); NULL where they can.
    const char *peft_refusal;
    const char *merge_refusal;
} MethodInfo;
extern const MethodInfo METHODS[];   // indexed by MethodKind

// The union of METHODS[k].adds (or .reads) over the primary method and its combinations.
unsigned method_adds(const MethodConfig *mc);
unsigned method_reads(const MethodConfig *mc);
int method_uses_lora(const MethodConfig *mc);      // LoRA branches (lora, or combined)
int method_is_adapter(const MethodConfig *mc);     // one of the bottleneck adapter methods
// The prefix method in use: METHOD_PREFIX_EMBED or METHOD_PREFIX_LAYER (the primary method,
// else the combined one), or 0.
int method_prefix_kind(const MethodConfig *mc);
// Positions the prefix method adds to every row: prefix_lp + prefix_li, or 0.
int method_prefix_len(const MethodConfig *mc);
// Why the trained tensors of mc cannot be merged into a GPT-2 checkpoint, or NULL.
const char *method_merge_refusal(const MethodConfig *mc);

// ----------------------------------------------------------------------------
// LoRA sites and the base weights they adapt

typedef struct {
    BlockLinear linear;   // the block linear whose weight the site adapts
    int d_out, d_in;      // the adapted matrix W (d_out, d_in)
    int row;              // W's first row in the linear's weight, and first column of its output
    size_t offset;        // W's first element in the stacked (L, out, in) weight, at the layer
} LoraSlice;
// Site s's matrix at `layer`: q, k, v are rows [0, C), [C, 2C), [2C, 3C) of c_attn.
LoraSlice lora_site_slice(const ModelConfig *c, LoraSite s, int layer);

// ----------------------------------------------------------------------------
// parameter registry

typedef enum { PARAM_BASE, PARAM_METHOD, PARAM_HEAD } ParamGroup;

typedef struct {
    char name[64];      // registry name, e.g. "h.attn.c_attn.weight" (stacked) or "lora.q.A"
    int ndim;
    int shape[4];
    size_t numel;
    ParamGroup group;
    int trainable;      // gradients and moments exist only if set
    int decay;          // weight decay applies (not to biases, LayerNorm, embeddings-free tensors)
    float *data;        // device pointer into the weights block; NULL for a bf16-only tensor
    uint16_t *bf16;     // PRECISION_BF16 block linears: device bf16 copy (frozen: the only one)
    float *grad;        // device pointer into the gradient block, or NULL if frozen
    float *m, *v;       // AdamW moments, or NULL if frozen
} Param;

typedef struct {
    size_t weights, grads, optimizer, activations;   // bytes
} MemoryReport;

// Largest model dimensions accepted (config.json, presets): with them every tensor's size
// fits in size_t with room to spare (GPT-3 175B: 96 layers, 96 heads, d_model 12288,
// n_ctx 2048, vocab 50257).
enum { MODEL_MAX_LAYERS = 1024, MODEL_MAX_HEADS = 1024, MODEL_MAX_EMBD = 65536,
       MODEL_MAX_CTX = 65536, MODEL_MAX_VOCAB = 4194304 };

// ----------------------------------------------------------------------------
// the model

typedef struct Model Model;

// Creates the model's registry and weights for cfg and mc on backend be (weights zeroed;
// call model_init_random or load a checkpoint). Returns NULL with err_set() on bad
// combinations (rank <= 0 or larger than the matrix, lp + li >= n_ctx, ...).
Model *model_create(const Backend *be, const ModelConfig *cfg, const MethodConfig *mc);
void model_free(Model *m);

// GPT-2 init: N(0, 0.02) weights, residual projections scaled 1/sqrt(2 L), zero biases, unit
// LayerNorm weights; method tensors initialised as their method says (LoRA B = 0, ...).
void model_init_random(Model *m, uint64_t seed);
// (Re)initialises only the method and head tensors (after loading a base checkpoint).
void model_init_method(Model *m, uint64_t seed);

const ModelConfig *model_config(const Model *m);
const MethodConfig *model_method(const Model *m);
const Backend *model_backend(const Model *m);
int model_num_params(const Model *m);
Param *model_param(Model *m, int index);
Param *model_find_param(Model *m, const char *name);   // NULL if absent
// Host <-> device copies of n elements of p from element `offset`, for any storage: a
// bf16-only tensor is rounded to bf16 on the way in and widened (exactly) on the way out.
void model_param_upload(Model *m, Param *p, size_t offset, const float *host, size_t n);
void model_param_download(Model *m, const Param *p, size_t offset, float *host, size_t n);
// Device pointer to the fp32 base matrix that LoRA site s adapts at `layer`, with its shape
// in *slice (may be NULL); NULL when that weight is stored in bf16 only.
float *model_site_weight(Model *m, LoraSite s, int layer, LoraSlice *slice);

// Parameter counts: trainable excludes the head; head is the head's own count.
typedef struct { size_t trainable, total, head; } ParamCounts;
ParamCounts model_param_counts(const Model *m);
// The same counts without allocating any tensor (for shapes that do not fit in memory,
// e.g. GPT-3 175B). 0, or -1 with err_set() as model_create.
int model_count_params(const ModelConfig *cfg, const MethodConfig *mc, ParamCounts *out);

// The memory model_create + model_reserve(B, T) would take (what model_memory then says),
// computed without allocating anything, so that a run that cannot fit fails before it starts.
// A need past 2^62 bytes (huge batches) is reported as a lower bound of at least 2^62 bytes.
// 0, or -1 with err_set() as model_create.
int model_memory_need(const ModelConfig *cfg, const MethodConfig *mc, int B, int T, MemoryReport *out);
size_t memory_report_total(const MemoryReport *r);

// Sizes activations for batches of up to B x T tokens (T <= n_ctx). Must be called before
// forward; calling again with a larger size reallocates.
void model_reserve(Model *m, int B, int T);
MemoryReport model_memory(const Model *m);

// A batch on the host. Rows are right-padded to T; lengths[b] real tokens (NULL: all T).
typedef struct {
    int B, T;
    const int *tokens;    // (B, T)
    const int *targets;   // (B, T) next-token targets, < 0 = no loss here; or NULL
    const int *labels;    // (B) class labels (HEAD_CLS), or NULL
    const float *values;  // (B) regression targets (HEAD_REG), or NULL
    const int *lengths;   // (B) or NULL
    // (B) or NULL: prefix tuning's infix positions (prefix.li) follow the first
    // prompt_lengths[b] tokens ("x SEP" of a generation row), and the target of the last
    // prompt token moves to the last infix position, which then predicts it (the infix sits
    // between input and output, as in the paper). NULL: the infix follows all real tokens.
    // A prompt longer than the row (a prompt still being read) puts the infix after it.
    const int *prompt_lengths;
} Batch;

typedef struct {
    int training;          // dropout on; 0 for evaluation
    float dropout;         // embedding, attention and residual dropout probability
    float label_smoothing;
    uint64_t seed;         // dropout stream seed (vary per step)
} ForwardOptions;

// Runs the model on batch; returns the mean loss over counted targets/labels (0 if none).
// The loss kind follows the head: LM targets, class labels, or regression values.
float model_forward(Model *m, const Batch *batch, const ForwardOptions *opt);
// Backpropagates the last forward's loss; accumulates into trainable gradients.
void model_backward(Model *m);
// Gradients to zero for the next backward (which overwrites the largest rather than adding to
// zeros: only a backward reads them as zero).
void model_zero_grad(Model *m);
// Host copy of the last forward's outputs: LM logits (B, T, V) or head outputs (B, n_classes).
// Returns the number of floats written (<= cap).
size_t model_copy_logits(const Model *m, float *host, size_t cap);
// Number of loss terms counted by the last forward (tokens with targets, or rows).
int model_loss_count(const Model *m);

// ----------------------------------------------------------------------------
// decoding with a key/value cache (LM head)
//
// The prompts run once (prefill) and leave every layer's keys and values in a cache of
// (L, 2, rows, n_ctx, C); each step then runs one new token per row against its row of the
// cache, so a continuation of g tokens costs g single-token passes instead of g passes over
// the whole prefix. Beam search rearranges rows between steps (model_decode_reorder).

// Whether the cache applies: an LM head.
int model_decode_supported(const Model *m);
// Runs the prompts (rows right-padded, lengths set, no targets) and fills the cache; writes
// each row's next-token logits (B, V) to host.
void model_decode_prefill(Model *m, const Batch *prompts, float *logits);
// Row i of the cache becomes the old row parent[i], i < n (n may exceed the rows held).
void model_decode_reorder(Model *m, const int *parent, int n);
// Appends tokens[i] to row i (i < n) and writes the next-token logits (n, V) to host.
void model_decode_step(Model *m, const int *tokens, int n, float *logits);

// ----------------------------------------------------------------------------
// optimisation

typedef enum { SCHEDULE_CONSTANT, SCHEDULE_LINEAR, SCHEDULE_COSINE, SCHEDULE_COUNT } Schedule;
extern const char *const SCHEDULE_NAMES[];   // "constant", "linear", "cosine"
typedef struct {
    float lr, beta1, beta2, eps, weight_decay, grad_clip;   // grad_clip <= 0: none
    Schedule schedule;
    int warmup, total_steps;
} OptimConfig;
void optim_defaults(OptimConfig *oc);
// Learning rate at step (0-based) under the schedule: linear warmup to lr over `warmup`
// steps, then constant / linear decay to 0 / cosine decay to 0 at total_steps.
float optim_lr(const OptimConfig *oc, int step);
// Global L2 norm of trainable gradients.
float model_grad_norm(Model *m);
// Clips (if configured) and applies one AdamW step to every trainable tensor; step is
// 0-based; returns the gradient norm before clipping.
float model_update(Model *m, const OptimConfig *oc, int step);

// ----------------------------------------------------------------------------
// LoRA merge

// W0 += (alpha/r) B A for every LoRA target (merge) or -= (unmerge). After merging, the
// forward skips the LoRA branch, so a merged model costs what the base costs. Merging needs
// fp32 base weights: under PRECISION_BF16 it returns -1 with err_set() and changes nothing.
int model_lora_merge(Model *m);
void model_lora_unmerge(Model *m);
int model_lora_merged(const Model *m);

#endif
