// core/method.c — what each method is (METHODS), the name tables of core/model.h, the
// method defaults and the LoRA sites. Every table is sized by its enum's *_COUNT member and
// checked at compile time, so adding a method, site or precision fails to compile until
// every table knows it.
#include "core/model.h"

#include <string.h>

#include "core/errors.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

// ----------------------------------------------------------------------------
// names

const char *const METHOD_NAMES[] = {"ft", "bitfit", "lora", "prefix_embed", "prefix_layer",
                                    "adapter_h", "adapter_l", "adapter_p", "adapter_d", "none",
                                    NULL};
_Static_assert(COUNT_OF(METHOD_NAMES) == METHOD_COUNT + 1, "METHOD_NAMES: one name per MethodKind");

const char *const TARGET_NAMES[] = {"q", "k", "v", "o", "c_fc", "c_proj"};
_Static_assert(COUNT_OF(TARGET_NAMES) == SITE_COUNT, "TARGET_NAMES: one name per LoraSite");

const char *const BLOCK_LINEAR_NAMES[] = {"h.attn.c_attn.weight", "h.attn.c_proj.weight",
                                          "h.mlp.c_fc.weight", "h.mlp.c_proj.weight"};
_Static_assert(COUNT_OF(BLOCK_LINEAR_NAMES) == LINEAR_COUNT, "BLOCK_LINEAR_NAMES: one per BlockLinear");

const char *const LORA_INIT_NAMES[] = {"kaiming", "gaussian"};
_Static_assert(COUNT_OF(LORA_INIT_NAMES) == LORA_INIT_COUNT, "LORA_INIT_NAMES: one name per LoraInit");

const char *const PRECISION_NAMES[] = {"fp32", "bf16"};
_Static_assert(COUNT_OF(PRECISION_NAMES) == PRECISION_COUNT, "PRECISION_NAMES: one name per Precision");

const char *const HEAD_NAMES[] = {"lm", "cls", "reg"};
_Static_assert(COUNT_OF(HEAD_NAMES) == HEAD_COUNT, "HEAD_NAMES: one name per HeadKind");

void method_defaults(MethodConfig *mc) {
    memset(mc, 0, sizeof *mc);
    mc->kind = METHOD_FT;
    mc->lora_targets = DEFAULT_LORA_TARGETS;
    mc->lora_rank = DEFAULT_LORA_RANK;
    mc->lora_alpha = DEFAULT_LORA_ALPHA;
    mc->lora_init = LORA_INIT_KAIMING;
    mc->adapter_rank = DEFAULT_ADAPTER_RANK;
    mc->prefix_lp = DEFAULT_PREFIX_LP;
    mc->prefix_li = DEFAULT_PREFIX_LI;
    mc->head = HEAD_LM;
    mc->n_classes = 0;
}

// ----------------------------------------------------------------------------
// LoRA sites

LoraSlice lora_site_slice(const ModelConfig *c, LoraSite s, int layer) {
    size_t C = (size_t)c->n_embd, l = (size_t)layer;
    LoraSlice r;
    switch (s) {
    case SITE_Q: case SITE_K: case SITE_V:
        r = (LoraSlice){LINEAR_QKV, (int)C, (int)C, (int)(s - SITE_Q) * (int)C, l * 3 * C * C + (size_t)(s - SITE_Q) * C * C};
        return r;
    case SITE_O: r = (LoraSlice){LINEAR_ATTN_PROJ, (int)C, (int)C, 0, l * C * C}; return r;
    case SITE_FC: r = (LoraSlice){LINEAR_FC, 4 * (int)C, (int)C, 0, l * 4 * C * C}; return r;
    case SITE_PROJ: r = (LoraSlice){LINEAR_MLP_PROJ, (int)C, 4 * (int)C, 0, l * C * 4 * C}; return r;
    case SITE_COUNT: break;
    }
    LAB_ASSERT(!"lora_site_slice: not a site");
    return (LoraSlice){LINEAR_QKV, 0, 0, 0, 0};
}

// ----------------------------------------------------------------------------
// parameter formulas: what the registry (core/model.c build_registry) creates trainable

static size_t base_biases(const ModelConfig *c) {   // ln_1.b, c_attn.b, attn.c_proj.b, ln_2.b, c_fc.b, mlp.c_proj.b; ln_f.b
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd;
    return L * (C + 3 * C + C + C + 4 * C + C) + C;
}

static size_t trainable_ft(const ModelConfig *c, const MethodConfig *mc) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd;
    size_t weights = (size_t)c->vocab_size * C + (size_t)c->n_ctx * C   // wte, wpe
                   + L * (2 * C + 3 * C * C + C * C + 4 * C * C + 4 * C * C)   // ln_1.w, ln_2.w, linears
                   + C;                                                // ln_f.w
    return weights + base_biases(c);
}

static size_t trainable_bitfit(const ModelConfig *c, const MethodConfig *mc) { return base_biases(c); }

static size_t trainable_lora(const ModelConfig *c, const MethodConfig *mc) {
    size_t n = 0;
    for (int s = 0; s < SITE_COUNT; s++) {
        if (!(mc->lora_targets & (1 << s))) continue;
        LoraSlice w = lora_site_slice(c, (LoraSite)s, 0);
        n += (size_t)mc->lora_rank * (size_t)(w.d_in + w.d_out);
    }
    return (size_t)c->n_layer * n;
}

static size_t trainable_prefix_embed(const ModelConfig *c, const MethodConfig *mc) {
    return (size_t)(mc->prefix_lp + mc->prefix_li) * (size_t)c->n_embd;
}

static size_t trainable_prefix_layer(const ModelConfig *c, const MethodConfig *mc) {
    return (size_t)c->n_layer * trainable_prefix_embed(c, mc);
}

// Adapters (down C -> r with bias, up r -> C with bias) at the sites METHODS[kind] adds,
// in the layers from adapter_skip (READS_ADAPTER_SKIP) up, plus what it trains of the base.
static size_t trainable_adapter(const ModelConfig *c, const MethodConfig *mc) {
    const MethodInfo *mi = &METHODS[mc->kind];
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, r = (size_t)mc->adapter_rank;
    size_t La = L - (size_t)((mi->reads & READS_ADAPTER_SKIP) ? mc->adapter_skip : 0);
    size_t sites = !!(mi->adds & ADDS_ADAPTER_ATTN) + !!(mi->adds & ADDS_ADAPTER_MLP);
    size_t n = La * sites * (r * C + r + C * r + C);
    if (mi->adds & ADDS_ADAPTER_LN) n += La * 2 * C;
    if (mi->adds & TRAINS_LAYERNORMS) n += L * 4 * C;   // ln_1, ln_2: weight and bias
    return n;
}

static size_t trainable_none(const ModelConfig *c, const MethodConfig *mc) { return 0; }

// ----------------------------------------------------------------------------
// the table

static const char FULL_PEFT[] = "trains every weight of the model, which a PEFT LoRA adapter cannot hold; "
                                "write a full checkpoint with `loralab merge-adapter` instead";
static const char BIAS_PEFT[] = "trains the base model's biases, which a PEFT LoRA adapter cannot hold; "
                                "write a full checkpoint with `loralab merge-adapter` instead";
static const char ADAPTER_PEFT[] = "inserts bottleneck layers, which PEFT's LoRA cannot express";
static const char ADAPTER_MERGE[] = "inserts bottleneck layers that a GPT-2 checkpoint cannot hold";
static const char PREFIX_MERGE[] = "trains prefixes that a GPT-2 checkpoint cannot hold";
static const char NONE_EXPORT[] = "has no trained tensors";

const MethodInfo METHODS[] = {
    {METHOD_FT, FAMILY_FULL, TRAINS_ALL, 0, trainable_ft, FULL_PEFT, NULL},
    {METHOD_BITFIT, FAMILY_BIAS, TRAINS_BIASES, 0, trainable_bitfit, BIAS_PEFT, NULL},
    {METHOD_LORA, FAMILY_LORA, ADDS_LORA, READS_LORA, trainable_lora, NULL, NULL},
    {METHOD_PREFIX_EMBED, FAMILY_PREFIX, ADDS_PREFIX_EMBED, READS_PREFIX, trainable_prefix_embed,
     "trains prefix embeddings, which PEFT's LoRA cannot express", PREFIX_MERGE},
    {METHOD_PREFIX_LAYER, FAMILY_PREFIX, ADDS_PREFIX_LAYER, READS_PREFIX, trainable_prefix_layer,
     "trains per-layer prefix activations, which PEFT's LoRA cannot express", PREFIX_MERGE},
    // Houlsby: adapters after both sublayers, LayerNorms trained too
    {METHOD_ADAPTER_H, FAMILY_ADAPTER, ADDS_ADAPTER_ATTN | ADDS_ADAPTER_MLP | TRAINS_LAYERNORMS, READS_ADAPTER,
     trainable_adapter, ADAPTER_PEFT, ADAPTER_MERGE},
    // Lin: one adapter after the MLP, with its own LayerNorm
    {METHOD_ADAPTER_L, FAMILY_ADAPTER, ADDS_ADAPTER_MLP | ADDS_ADAPTER_LN, READS_ADAPTER, trainable_adapter,
     ADAPTER_PEFT, ADAPTER_MERGE},
    // Pfeiffer: one adapter after the MLP
    {METHOD_ADAPTER_P, FAMILY_ADAPTER, ADDS_ADAPTER_MLP, READS_ADAPTER, trainable_adapter, ADAPTER_PEFT,
     ADAPTER_MERGE},
    // AdapterDrop: Houlsby without the lowest adapter.skip_layers layers
    {METHOD_ADAPTER_D, FAMILY_ADAPTER, ADDS_ADAPTER_ATTN | ADDS_ADAPTER_MLP | TRAINS_LAYERNORMS,
     READS_ADAPTER | READS_ADAPTER_SKIP, trainable_adapter, ADAPTER_PEFT, ADAPTER_MERGE},
    {METHOD_NONE, FAMILY_NONE, TRAINS_NOTHING, 0, trainable_none, NONE_EXPORT, NONE_EXPORT},
};
_Static_assert(COUNT_OF(METHODS) == METHOD_COUNT, "METHODS: one entry per MethodKind");

// ----------------------------------------------------------------------------
// predicates

// The methods mc trains: the primary one and its combinations, as a bitmask over MethodKind.
static unsigned methods_of(const MethodConfig *mc) {
    return METHOD_BIT(mc->kind) | mc->combine;
}

unsigned method_adds(const MethodConfig *mc) {
    unsigned u = 0, k = methods_of(mc);
    for (int i = 0; i < METHOD_COUNT; i++)
        if (k & (1u << i)) u |= METHODS[i].adds;
    return u;
}

unsigned method_reads(const MethodConfig *mc) {
    unsigned u = 0, k = methods_of(mc);
    for (int i = 0; i < METHOD_COUNT; i++)
        if (k & (1u << i)) u |= METHODS[i].reads;
    return u;
}

int method_uses_lora(const MethodConfig *mc) { return (method_adds(mc) & ADDS_LORA) != 0; }
int method_is_adapter(const MethodConfig *mc) { return METHODS[mc->kind].family == FAMILY_ADAPTER; }

int method_prefix_kind(const MethodConfig *mc) {
    unsigned k = methods_of(mc);
    for (int i = 0; i < METHOD_COUNT; i++)
        if ((k & METHOD_BIT(i)) && (METHODS[i].adds & ADDS_PREFIX)) return i;
    return 0;
}

int method_prefix_len(const MethodConfig *mc) {
    return method_prefix_kind(mc) ? mc->prefix_lp + mc->prefix_li : 0;
}

const char *method_merge_refusal(const MethodConfig *mc) {
    if (METHODS[mc->kind].merge_refusal) return METHODS[mc->kind].merge_refusal;
    int prefix = method_prefix_kind(mc);
    return prefix ? METHODS[prefix].merge_refusal : NULL;
}
