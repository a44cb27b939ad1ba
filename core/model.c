// core/model.c — GPT-2 forward and backward, written out per op against the Backend table,
// with the paper's methods hooked into fixed places:
//   every linear (LoRA branch on q, k, v, o, c_fc, c_proj; trainable biases for BitFit),
//   after the attention and MLP sublayers (adapters H / L / P / D),
//   the input embeddings (PreEmbed) and each layer's input hidden states (PreLayer).
// Accumulation rule (as the backend): parameter gradients +=, activation gradients =,
// except the residual-stream gradient `dresidual`, which every branch adds into.
#include "core/model.h"

#include <math.h>
#include <string.h>

#include "core/errors.h"
#include "core/rng.h"

// ----------------------------------------------------------------------------
// presets and names

const char *const MODEL_PRESET_NAMES[] = {"nano", "micro", "small", "gpt2", "gpt2-medium",
                                          "gpt2-large", NULL};
static const ModelConfig PRESETS[] = {
    {2, 2, 64, 64, 260, 1e-5f},         // nano: unit tests
    {4, 4, 128, 128, 260, 1e-5f},       // micro: CPU default, quickstart
    {6, 6, 384, 256, 260, 1e-5f},       // small: GPU default
    {12, 12, 768, 1024, 50257, 1e-5f},  // gpt2
    {24, 16, 1024, 1024, 50257, 1e-5f}, // gpt2-medium
    {36, 20, 1280, 1024, 50257, 1e-5f}, // gpt2-large
};
_Static_assert(sizeof PRESETS / sizeof PRESETS[0] + 1 == sizeof MODEL_PRESET_NAMES / sizeof MODEL_PRESET_NAMES[0],
               "PRESETS: one per name of MODEL_PRESET_NAMES");

int model_preset(const char *name, ModelConfig *cfg) {
    for (int i = 0; MODEL_PRESET_NAMES[i]; i++)
        if (!strcmp(name, MODEL_PRESET_NAMES[i])) { *cfg = PRESETS[i]; return 0; }
    return err_set("unknown preset '%s' (expected one of: nano, micro, small, gpt2, gpt2-medium, "
                   "gpt2-large)", name);
}

// ----------------------------------------------------------------------------
// the model struct

enum { MAX_PARAMS = 64 };
typedef enum { ADAPTER_ATTN, ADAPTER_MLP, ADAPTER_SITES } AdapterSite;   // after the sublayer

typedef struct {
    // (L+1, BT, C) residual stream: x[0] embeddings, x[l+1] the output of layer l
    float *residual;
    float *residual_mid;  // (L, BT, C) after the attention sublayer
    float *ln1;           // (L, BT, C)
    float *ln1_mean, *ln1_rstd;   // (L, BT)
    float *qkv;           // (L, BT, 3C); PRECISION_BF16: one layer's (qkv_bf16 keeps all)
    uint16_t *qkv_bf16;   // PRECISION_BF16: (L, BT, 3C) rounded to bf16
    float *att;           // (L, B, NH, T, T); PRECISION_BF16: one layer's scores (scratch)
    uint16_t *att_bf16;   // PRECISION_BF16: (L, B, NH, T, T) the probabilities rounded to bf16
    float *atty;          // (L, BT, C)
    float *ln2;           // (L, BT, C)
    float *ln2_mean, *ln2_rstd;   // (L, BT)
    float *fch;           // (L, BT, 4C) the GELU's input; PRECISION_BF16: one layer's (scratch)
    uint16_t *dgelu_bf16; // PRECISION_BF16: (L, BT, 4C) the GELU's derivative at fch, in bf16
    float *fch_gelu;      // (L, BT, 4C)
    float *sub_out;       // (L, 2, BT, C) sublayer outputs before adapters (adapter inputs)
    float *lora_h;        // (L, SITE_COUNT, BT, r) A x for each target (0 if not targeted)
    float *ad_ln;         // (L, BT, C) adapter_l LayerNorm output
    float *ad_ln_mean, *ad_ln_rstd;   // (L, BT)
    float *ad_down;       // (L, 2, BT, r) adapter down-projection before the nonlinearity
    float *ad_act;        // (L, 2, BT, r) after it
    float *lnf;           // (BT, C)
    float *lnf_mean, *lnf_rstd;   // (BT)
    float *pooled;        // (B, C) last real position per row (heads)
    float *logits;        // (BT, V) LM or (B, n_classes) head; dlogits overwrite it
    float *lse;           // (rows of logits): logsumexp of each row, for the backward
    float *losses;        // (BT)
    // backward scratch
    float *dresidual;     // (BT, C)
    float *dsub;          // (BT, C)
    float *dsub2;         // (BT, C)
    float *dln;           // (BT, C)
    float *dqkv;          // (BT, 3C)
    float *datty;         // (BT, C)
    float *datt;          // (B, NH, T, T)
    float *dfch;          // (BT, 4C): the gradient at the GELU's output, then (in place) at its input
    float *dlora;         // (BT, max(r, adapter r))
    float *dlora2;        // (BT, max(r, adapter r))
    float *lora_x;        // (BT, 4C) dropped LoRA input (recomputed in backward); NULL without dropout
    float *dpooled;       // (B, C)
    // integer inputs on the device
    int *tokens;          // (BT)
    int *targets;         // (BT)
    int *labels;          // (B)
    int *last_index;      // (B) flat row index of each row's last real position
    uint8_t *key_mask;    // (BT)
    // PRECISION_BF16: each block linear's input rounded to bf16, kept per layer when its
    // weight is trained (Model.keep_in_bf16: the weight gradient reads it), else in one slot
    // shared by all; and the output gradient being propagated, rounded to bf16
    uint16_t *in_bf16[LINEAR_COUNT];   // (L, BT, that linear's input width), or NULL
    uint16_t *bf16_x;     // (BT, 4C) the shared slot
    uint16_t *bf16_dy;    // (BT, 4C)
    // PRECISION_BF16 LoRA without LoRA dropout: A rounded to bf16, and dh rounded to bf16
    uint16_t *lora_a_bf16;    // (r, 4C)
    uint16_t *dlora_bf16;     // (BT, r)
} Activations;

struct Model {
    const Backend *be;
    ModelConfig cfg;
    MethodConfig mc;
    Param params[MAX_PARAMS];
    int nparams;
    float *weights_mem, *grads_mem, *m_mem, *v_mem;
    uint16_t *bf16_mem;    // PRECISION_BF16: the block linears' bf16 weights
    size_t n_weights, n_grads, n_bf16;
    // base tensors
    int p_wte, p_wpe, p_ln1w, p_ln1b, p_ln2w, p_ln2b, p_lnfw, p_lnfb;
    int p_linw[LINEAR_COUNT], p_linb[LINEAR_COUNT];   // block linears, by BlockLinear
    // method tensors (-1 when absent)
    int p_lora_a[SITE_COUNT], p_lora_b[SITE_COUNT];
    int p_ad_down_w[ADAPTER_SITES], p_ad_down_b[ADAPTER_SITES], p_ad_up_w[ADAPTER_SITES], p_ad_up_b[ADAPTER_SITES];
    int p_ad_ln_w, p_ad_ln_b;
    int p_prefix;
    int p_score;
    int lora_on, merged, adapter_sites, adapter_first_layer, prefix_kind, n_prefix;
    // Set by model_zero_grad, which leaves the gradients whose first write in a backward is a
    // whole-tensor product as they are (backward_overwrites); that backward's products then
    // overwrite them (beta 0) rather than add to zeros, and clear this at its end.
    int grads_fresh;
    // Linear inputs that only a weight gradient (or a LoRA branch) reads in backward are kept
    // per layer only when that gradient exists; otherwise one layer's buffer is reused, so a
    // LoRA run keeps far fewer activations than FT (as PyTorch's autograd does).
    // keep_in[k]: block linear k's input (ln1, atty, ln2, fch_gelu) is kept per layer in fp32;
    // keep_in_bf16[k]: it is kept per layer in bf16 (under PRECISION_BF16, for a trained
    // weight's gradient or a LoRA branch's, which multiply bf16 operands: the fp32 copy is then
    // not kept for them; LoRA dropout needs the fp32 input, to drop it again in backward).
    int keep_in[LINEAR_COUNT], keep_in_bf16[LINEAR_COUNT];
    // activations for up to B x T (T including prefix/infix positions)
    int cap_B, cap_T;
    void *act_mem;
    size_t act_bytes;
    Activations a;
    // the last forward
    int B, T, Tx;          // Tx: expanded T (with prefix/infix)
    int loss_count;
    ForwardOptions fopt;
    int has_loss;
    float *reg_dlogits_host;   // (B) regression gradient staging
    // key/value cache for decoding: (L, 2, kv_rows, n_ctx, C), keys then values per layer;
    // kv_spare has the same shape (reordering copies into it, then the two swap)
    float *kv_cache, *kv_spare;
    int kv_rows;
    int *kv_pos;               // host: (kv_rows) position of each row's next token
    int *slot_rows, *slot_index, n_slots;   // host: prefix/infix rows of the last batch
    // host staging of one batch, sized by model_reserve so that a step allocates nothing:
    // tokens, targets (B*Tx ints each), per-row losses (B*Tx floats), last rows (B ints),
    // key mask (B*Tx bytes)
    int *stage_tok, *stage_tgt, *stage_last;
    float *stage_loss;
    uint8_t *stage_mask;
};

// ----------------------------------------------------------------------------
// registry

static int add_param(Model *m, const char *name, int ndim, const int *shape, ParamGroup g,
                     int trainable, int decay) {
    LAB_ASSERT(m->nparams < MAX_PARAMS);
    Param *p = &m->params[m->nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) { p->shape[i] = shape[i]; p->numel *= (size_t)shape[i]; }
    p->group = g;
    p->trainable = trainable;
    p->decay = decay;
    return m->nparams++;
}
#define SHAPE(...) ((const int[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))
#define ADD(m, name, g, tr, dec, ...) add_param(m, name, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__), g, tr, dec)

static int validate(const ModelConfig *c, const MethodConfig *mc) {
    if (c->n_layer <= 0 || c->n_head <= 0 || c->n_embd <= 0 || c->n_ctx <= 0 || c->vocab_size <= 0)
        return err_set("model dimensions must be positive (n_layer %d, n_head %d, n_embd %d, "
                       "n_positions %d, vocab_size %d)", c->n_layer, c->n_head, c->n_embd,
                       c->n_ctx, c->vocab_size);
    if (c->n_embd % c->n_head)
        return err_set("n_embd %d is not divisible by n_head %d", c->n_embd, c->n_head);
    if (c->n_layer > MODEL_MAX_LAYERS || c->n_head > MODEL_MAX_HEADS || c->n_embd > MODEL_MAX_EMBD ||
        c->n_ctx > MODEL_MAX_CTX || c->vocab_size > MODEL_MAX_VOCAB)
        return err_set("model dimensions too large (n_layer %d of at most %d, n_head %d of %d, n_embd "
                       "%d of %d, n_positions %d of %d, vocab_size %d of %d)", c->n_layer, MODEL_MAX_LAYERS,
                       c->n_head, MODEL_MAX_HEADS, c->n_embd, MODEL_MAX_EMBD, c->n_ctx, MODEL_MAX_CTX,
                       c->vocab_size, MODEL_MAX_VOCAB);
    int lora = method_uses_lora(mc);
    if (lora && mc->lora_rank <= 0)
        return err_set("lora.rank must be > 0, got %d", mc->lora_rank);
    if (lora) {
        if (!mc->lora_targets) return err_set("lora.targets is empty (expected some of q, k, v, o, c_fc, c_proj)");
        for (int t = 0; t < SITE_COUNT; t++) {
            LoraSlice w = lora_site_slice(c, (LoraSite)t, 0);
            int maxr = w.d_in < w.d_out ? w.d_in : w.d_out;
            if ((mc->lora_targets & (1 << t)) && mc->lora_rank > maxr)
                return err_set("lora.rank %d is larger than the %s matrix allows (at most %d)",
                               mc->lora_rank, TARGET_NAMES[t], maxr);
        }
    }
    int adapter = method_is_adapter(mc);
    if (adapter && (mc->adapter_rank <= 0 || mc->adapter_rank > c->n_embd))
        return err_set("adapter.rank must be in [1, %d], got %d", c->n_embd, mc->adapter_rank);
    if ((METHODS[mc->kind].reads & READS_ADAPTER_SKIP) && (mc->adapter_skip < 0 || mc->adapter_skip >= c->n_layer))
        return err_set("adapter.skip_layers must be in [0, %d), got %d", c->n_layer, mc->adapter_skip);
    if (method_prefix_kind(mc)) {
        if (mc->prefix_lp < 0 || mc->prefix_li < 0 || mc->prefix_lp + mc->prefix_li == 0)
            return err_set("prefix.lp and prefix.li must be >= 0 with lp + li > 0, got %d and %d",
                           mc->prefix_lp, mc->prefix_li);
        if (mc->prefix_lp + mc->prefix_li >= c->n_ctx)
            return err_set("prefix.lp + prefix.li = %d must be < n_ctx = %d",
                           mc->prefix_lp + mc->prefix_li, c->n_ctx);
    }
    if ((mc->head == HEAD_CLS && mc->n_classes < 2) || (mc->head == HEAD_REG && mc->n_classes != 1))
        return err_set("a classification head needs >= 2 classes and a regression head 1 output");
    return 0;
}

static void build_registry(Model *m) {
    const ModelConfig *c = &m->cfg;
    const MethodConfig *mc = &m->mc;
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size, N = c->n_ctx;
    unsigned adds = method_adds(mc);
    int ft = (adds & TRAINS_ALL) != 0;
    int bias = ft || (adds & TRAINS_BIASES);
    int ln = ft || (adds & TRAINS_LAYERNORMS);   // Houlsby adapters also train the LayerNorms
    m->p_wte = ADD(m, "wte", PARAM_BASE, ft, 1, V, C);
    m->p_wpe = ADD(m, "wpe", PARAM_BASE, ft, 1, N, C);
    m->p_ln1w = ADD(m, "h.ln_1.weight", PARAM_BASE, ln, 0, L, C);
    m->p_ln1b = ADD(m, "h.ln_1.bias", PARAM_BASE, ln || bias, 0, L, C);
    m->p_linw[LINEAR_QKV] = ADD(m, BLOCK_LINEAR_NAMES[LINEAR_QKV], PARAM_BASE, ft, 1, L, 3 * C, C);
    m->p_linb[LINEAR_QKV] = ADD(m, "h.attn.c_attn.bias", PARAM_BASE, bias, 0, L, 3 * C);
    m->p_linw[LINEAR_ATTN_PROJ] = ADD(m, BLOCK_LINEAR_NAMES[LINEAR_ATTN_PROJ], PARAM_BASE, ft, 1, L, C, C);
    m->p_linb[LINEAR_ATTN_PROJ] = ADD(m, "h.attn.c_proj.bias", PARAM_BASE, bias, 0, L, C);
    m->p_ln2w = ADD(m, "h.ln_2.weight", PARAM_BASE, ln, 0, L, C);
    m->p_ln2b = ADD(m, "h.ln_2.bias", PARAM_BASE, ln || bias, 0, L, C);
    m->p_linw[LINEAR_FC] = ADD(m, BLOCK_LINEAR_NAMES[LINEAR_FC], PARAM_BASE, ft, 1, L, 4 * C, C);
    m->p_linb[LINEAR_FC] = ADD(m, "h.mlp.c_fc.bias", PARAM_BASE, bias, 0, L, 4 * C);
    m->p_linw[LINEAR_MLP_PROJ] = ADD(m, BLOCK_LINEAR_NAMES[LINEAR_MLP_PROJ], PARAM_BASE, ft, 1, L, C, 4 * C);
    m->p_linb[LINEAR_MLP_PROJ] = ADD(m, "h.mlp.c_proj.bias", PARAM_BASE, bias, 0, L, C);
    m->p_lnfw = ADD(m, "ln_f.weight", PARAM_BASE, ft, 0, C);
    m->p_lnfb = ADD(m, "ln_f.bias", PARAM_BASE, ft || bias, 0, C);

    for (int t = 0; t < SITE_COUNT; t++) m->p_lora_a[t] = m->p_lora_b[t] = -1;
    m->lora_on = (adds & ADDS_LORA) != 0;
    if (m->lora_on) {
        int r = mc->lora_rank;
        for (int t = 0; t < SITE_COUNT; t++) {
            if (!(mc->lora_targets & (1 << t))) continue;
            LoraSlice w = lora_site_slice(c, (LoraSite)t, 0);
            char name[64];
            snprintf(name, sizeof name, "lora.%s.A", TARGET_NAMES[t]);
            m->p_lora_a[t] = ADD(m, name, PARAM_METHOD, 1, 1, L, r, w.d_in);
            snprintf(name, sizeof name, "lora.%s.B", TARGET_NAMES[t]);
            m->p_lora_b[t] = ADD(m, name, PARAM_METHOD, 1, 1, L, w.d_out, r);
        }
    }

    for (int s = 0; s < ADAPTER_SITES; s++) m->p_ad_down_w[s] = m->p_ad_down_b[s] = m->p_ad_up_w[s] = m->p_ad_up_b[s] = -1;
    m->p_ad_ln_w = m->p_ad_ln_b = -1;
    m->adapter_sites = 0;
    m->adapter_first_layer = 0;
    if (adds & ADDS_ADAPTER) {
        int r = mc->adapter_rank;
        m->adapter_first_layer = (method_reads(mc) & READS_ADAPTER_SKIP) ? mc->adapter_skip : 0;
        int La = L - m->adapter_first_layer;
        // bit s: an adapter at AdapterSite s
        m->adapter_sites = ((adds & ADDS_ADAPTER_ATTN) ? 1 << ADAPTER_ATTN : 0) |
                           ((adds & ADDS_ADAPTER_MLP) ? 1 << ADAPTER_MLP : 0);
        static const char *site_name[ADAPTER_SITES] = {"attn", "mlp"};
        for (int s = 0; s < ADAPTER_SITES; s++) {
            if (!(m->adapter_sites & (1 << s))) continue;
            char name[64];
            snprintf(name, sizeof name, "adapter.%s.down.weight", site_name[s]);
            m->p_ad_down_w[s] = ADD(m, name, PARAM_METHOD, 1, 1, La, r, C);
            snprintf(name, sizeof name, "adapter.%s.down.bias", site_name[s]);
            m->p_ad_down_b[s] = ADD(m, name, PARAM_METHOD, 1, 0, La, r);
            snprintf(name, sizeof name, "adapter.%s.up.weight", site_name[s]);
            m->p_ad_up_w[s] = ADD(m, name, PARAM_METHOD, 1, 1, La, C, r);
            snprintf(name, sizeof name, "adapter.%s.up.bias", site_name[s]);
            m->p_ad_up_b[s] = ADD(m, name, PARAM_METHOD, 1, 0, La, C);
        }
        if (adds & ADDS_ADAPTER_LN) {
            m->p_ad_ln_w = ADD(m, "adapter.mlp.ln.weight", PARAM_METHOD, 1, 0, La, C);
            m->p_ad_ln_b = ADD(m, "adapter.mlp.ln.bias", PARAM_METHOD, 1, 0, La, C);
        }
    }

    m->p_prefix = -1;
    m->prefix_kind = method_prefix_kind(mc);
    m->n_prefix = method_prefix_len(mc);
    if (m->prefix_kind == METHOD_PREFIX_EMBED)
        m->p_prefix = ADD(m, "prefix.embed", PARAM_METHOD, 1, 0, m->n_prefix, C);
    else if (m->prefix_kind == METHOD_PREFIX_LAYER)
        m->p_prefix = ADD(m, "prefix.layer", PARAM_METHOD, 1, 0, L, m->n_prefix, C);

    m->p_score = -1;
    if (mc->head != HEAD_LM)
        m->p_score = ADD(m, "score.weight", PARAM_HEAD, !(adds & TRAINS_NOTHING), 1, mc->n_classes, C);
    if (adds & TRAINS_NOTHING)
        for (int i = 0; i < m->nparams; i++) m->params[i].trainable = 0;
}

int model_count_params(const ModelConfig *cfg, const MethodConfig *mc, ParamCounts *out) {
    if (validate(cfg, mc)) return -1;
    Model *m = xcalloc(1, sizeof *m);   // the registry alone: no tensor memory
    m->cfg = *cfg;
    m->mc = *mc;
    build_registry(m);
    *out = model_param_counts(m);
    free(m);
    return 0;
}

static int has_lora(const Model *m, int t) { return m->p_lora_a[t] >= 0; }

// Whether parameter i is a block linear's weight stored in bf16 (PRECISION_BF16).
static int is_bf16(const Model *m, int i) {
    if (m->mc.precision != PRECISION_BF16) return 0;
    for (int k = 0; k < LINEAR_COUNT; k++)
        if (i == m->p_linw[k]) return 1;
    return 0;
}

// Whether LoRA branches multiply the bf16 copy of their input (bf16 without LoRA dropout).
static int lora_reads_bf16(const Model *m) {
    return m->mc.precision == PRECISION_BF16 && m->mc.lora_dropout <= 0.0f;
}

// Whether block linear k's input is read only as its bf16 copy (its producer may then write
// that copy alone): a bf16 weight whose input is not kept in fp32, which decide_kept_inputs
// keeps exactly where something reads it in fp32 (a LoRA branch with LoRA dropout).
static int input_only_bf16(const Model *m, BlockLinear k) {
    return is_bf16(m, m->p_linw[k]) && !m->keep_in[k];
}

static void decide_kept_inputs(Model *m) {
    for (int k = 0; k < LINEAR_COUNT; k++) {
        int trained = m->params[m->p_linw[k]].trainable, half = is_bf16(m, m->p_linw[k]);
        m->keep_in[k] = trained && !half;
        m->keep_in_bf16[k] = trained && half;
    }
    for (int t = 0; t < SITE_COUNT; t++)
        if (has_lora(m, t)) {
            int k = lora_site_slice(&m->cfg, (LoraSite)t, 0).linear;
            if (lora_reads_bf16(m)) m->keep_in_bf16[k] = 1;
            else m->keep_in[k] = 1;
        }
}

Model *model_create(const Backend *be, const ModelConfig *cfg, const MethodConfig *mc) {
    if (validate(cfg, mc)) return NULL;
    Model *m = xcalloc(1, sizeof *m);
    m->be = be;
    m->cfg = *cfg;
    m->mc = *mc;
    build_registry(m);
    decide_kept_inputs(m);
    size_t nw = 0, ng = 0, nh = 0;
    for (int i = 0; i < m->nparams; i++) {
        int half = is_bf16(m, i);
        nh += half ? m->params[i].numel : 0;
        nw += half && !m->params[i].trainable ? 0 : m->params[i].numel;   // frozen: bf16 only
        if (m->params[i].trainable) ng += m->params[i].numel;
    }
    m->n_weights = nw;
    m->n_grads = ng;
    m->n_bf16 = nh;
    m->weights_mem = be->alloc(nw * sizeof(float));
    if (nh) m->bf16_mem = be->alloc(nh * sizeof(uint16_t));
    if (ng) {
        m->grads_mem = be->alloc(ng * sizeof(float));
        m->m_mem = be->alloc(ng * sizeof(float));
        m->v_mem = be->alloc(ng * sizeof(float));
    }
    size_t ow = 0, og = 0, oh = 0;
    for (int i = 0; i < m->nparams; i++) {
        Param *p = &m->params[i];
        if (is_bf16(m, i)) { p->bf16 = m->bf16_mem + oh; oh += p->numel; }
        if (!p->bf16 || p->trainable) { p->data = m->weights_mem + ow; ow += p->numel; }
        if (p->trainable) {
            p->grad = m->grads_mem + og;
            p->m = m->m_mem + og;
            p->v = m->v_mem + og;
            og += p->numel;
        }
    }
    return m;
}

void model_free(Model *m) {
    if (!m) return;
    m->be->free(m->weights_mem);
    if (m->bf16_mem) m->be->free(m->bf16_mem);
    if (m->grads_mem) { m->be->free(m->grads_mem); m->be->free(m->m_mem); m->be->free(m->v_mem); }
    if (m->act_mem) m->be->free(m->act_mem);
    if (m->kv_cache) { m->be->free(m->kv_cache); m->be->free(m->kv_spare); }
    free(m->kv_pos);
    free(m->reg_dlogits_host);
    free(m->slot_rows);
    free(m->slot_index);
    free(m->stage_tok);
    free(m);
}

const ModelConfig *model_config(const Model *m) { return &m->cfg; }
const MethodConfig *model_method(const Model *m) { return &m->mc; }
const Backend *model_backend(const Model *m) { return m->be; }
int model_num_params(const Model *m) { return m->nparams; }
Param *model_param(Model *m, int index) { LAB_ASSERT(index >= 0 && index < m->nparams); return &m->params[index]; }

Param *model_find_param(Model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

void model_param_upload(Model *m, Param *p, size_t offset, const float *host, size_t n) {
    LAB_ASSERT(offset + n <= p->numel);
    if (p->data) { m->be->to_device(p->data + offset, host, n * sizeof(float)); return; }
    uint16_t *h = xmalloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) h[i] = bf16_from_float(host[i]);
    m->be->to_device(p->bf16 + offset, h, n * sizeof(uint16_t));
    free(h);
}

void model_param_download(Model *m, const Param *p, size_t offset, float *host, size_t n) {
    LAB_ASSERT(offset + n <= p->numel);
    if (p->data) { m->be->to_host(host, p->data + offset, n * sizeof(float)); return; }
    uint16_t *h = xmalloc(n * sizeof(uint16_t));
    m->be->to_host(h, p->bf16 + offset, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) host[i] = bf16_to_float(h[i]);
    free(h);
}

float *model_site_weight(Model *m, LoraSite s, int layer, LoraSlice *slice) {
    LAB_ASSERT(layer >= 0 && layer < m->cfg.n_layer);
    LoraSlice w = lora_site_slice(&m->cfg, s, layer);
    if (slice) *slice = w;
    const Param *p = &m->params[m->p_linw[w.linear]];
    return p->data ? p->data + w.offset : NULL;
}

// The bf16 copies of trainable block linears, from their fp32 masters (each forward: the
// masters change at every update, and a snapshot restore or a load writes them directly).
static void refresh_bf16(Model *m) {
    for (int i = 0; i < m->nparams; i++) {
        Param *p = &m->params[i];
        if (p->bf16 && p->data) m->be->to_bf16(p->bf16, p->data, p->shape[0], (int)(p->numel / p->shape[0]),
                                                (int)(p->numel / p->shape[0]), NULL);
    }
}

ParamCounts model_param_counts(const Model *m) {
    ParamCounts pc = {0, 0, 0};
    for (int i = 0; i < m->nparams; i++) {
        const Param *p = &m->params[i];
        if (p->group == PARAM_HEAD) { pc.head += p->numel; continue; }
        pc.total += p->numel;
        if (p->trainable) pc.trainable += p->numel;
    }
    return pc;
}

// ----------------------------------------------------------------------------
// initialisation

static void fill_host(float *h, size_t n, Rng *rng, int kind, double scale) {
    // kind 0: zeros, 1: ones, 2: normal(0, scale), 3: uniform(-scale, scale)
    for (size_t i = 0; i < n; i++)
        h[i] = kind == 0 ? 0.0f : kind == 1 ? 1.0f
             : kind == 2 ? (float)(rng_normal(rng) * scale)
                         : (float)((2.0 * rng_uniform(rng) - 1.0) * scale);
}

static void init_param(Model *m, int idx, Rng *rng, int kind, double scale) {
    if (idx < 0) return;
    Param *p = &m->params[idx];
    float *h = xmalloc(p->numel * sizeof(float));
    fill_host(h, p->numel, rng, kind, scale);
    model_param_upload(m, p, 0, h, p->numel);
    free(h);
}

void model_init_method(Model *m, uint64_t seed) {
    Rng rng = rng_seeded(seed ^ 0xA5A5A5A5ull);
    const MethodConfig *mc = &m->mc;
    for (int t = 0; t < SITE_COUNT; t++) {
        if (m->p_lora_a[t] < 0) continue;
        int din = m->params[m->p_lora_a[t]].shape[2];
        if (mc->lora_init == LORA_INIT_KAIMING)   // loralib: kaiming_uniform_(a=sqrt(5)): bound 1/sqrt(fan_in)
            init_param(m, m->p_lora_a[t], &rng, 3, 1.0 / sqrt((double)din));
        else                                      // Gaussian, std 1/r as PEFT's "gaussian"
            init_param(m, m->p_lora_a[t], &rng, 2, 1.0 / mc->lora_rank);
        init_param(m, m->p_lora_b[t], &rng, 0, 0);   // B = 0: the update starts at zero
    }
    for (int s = 0; s < ADAPTER_SITES; s++) {
        init_param(m, m->p_ad_down_w[s], &rng, 2, 0.02);
        init_param(m, m->p_ad_down_b[s], &rng, 0, 0);
        init_param(m, m->p_ad_up_w[s], &rng, 0, 0);    // up = 0: the adapter starts as identity
        init_param(m, m->p_ad_up_b[s], &rng, 0, 0);
    }
    init_param(m, m->p_ad_ln_w, &rng, 1, 0);
    init_param(m, m->p_ad_ln_b, &rng, 0, 0);
    init_param(m, m->p_prefix, &rng, 2, 0.02);
    init_param(m, m->p_score, &rng, 2, 0.02);
    m->merged = 0;
}

void model_init_random(Model *m, uint64_t seed) {
    Rng rng = rng_seeded(seed);
    double resid = 0.02 / sqrt(2.0 * m->cfg.n_layer);   // GPT-2: residual projections scaled
    init_param(m, m->p_wte, &rng, 2, 0.02);
    init_param(m, m->p_wpe, &rng, 2, 0.01);
    init_param(m, m->p_ln1w, &rng, 1, 0);
    init_param(m, m->p_ln1b, &rng, 0, 0);
    init_param(m, m->p_linw[LINEAR_QKV], &rng, 2, 0.02);
    init_param(m, m->p_linb[LINEAR_QKV], &rng, 0, 0);
    init_param(m, m->p_linw[LINEAR_ATTN_PROJ], &rng, 2, resid);
    init_param(m, m->p_linb[LINEAR_ATTN_PROJ], &rng, 0, 0);
    init_param(m, m->p_ln2w, &rng, 1, 0);
    init_param(m, m->p_ln2b, &rng, 0, 0);
    init_param(m, m->p_linw[LINEAR_FC], &rng, 2, 0.02);
    init_param(m, m->p_linb[LINEAR_FC], &rng, 0, 0);
    init_param(m, m->p_linw[LINEAR_MLP_PROJ], &rng, 2, resid);
    init_param(m, m->p_linb[LINEAR_MLP_PROJ], &rng, 0, 0);
    init_param(m, m->p_lnfw, &rng, 1, 0);
    init_param(m, m->p_lnfb, &rng, 0, 0);
    model_init_method(m, seed);
}

// ----------------------------------------------------------------------------
// activations: one allocation sized for B x T

static int max_branch_rank(const Model *m) {
    int r = m->lora_on ? m->mc.lora_rank : 0;
    if (m->adapter_sites && m->mc.adapter_rank > r) r = m->mc.adapter_rank;
    return r;
}

// The input width of block linear k: C, except c_proj's 4C.
static size_t linear_in_width(const ModelConfig *c, int k) {
    return (size_t)c->n_embd * (k == LINEAR_MLP_PROJ ? 4 : 1);
}

// Lays out the activation block; with base == NULL only measures it. Returns bytes.
static size_t layout_activations(Model *m, char *base, int B, int T) {
    const ModelConfig *c = &m->cfg;
    size_t L = c->n_layer, C = c->n_embd, NH = c->n_head, V = c->vocab_size;
    size_t BT = (size_t)B * T, TT = (size_t)T * T, r = m->lora_on ? m->mc.lora_rank : 0;
    size_t ra = m->adapter_sites ? m->mc.adapter_rank : 0, rmax = max_branch_rank(m);
    int head = m->mc.head != HEAD_LM;
    size_t nlogits = head ? (size_t)B * m->mc.n_classes : BT * V;
    size_t off = 0;
    Activations *a = &m->a;
#define TAKE(field, count, type)                                              \
    do {                                                                      \
        size_t n_ = (size_t)(count);                                          \
        size_t bytes_ = (n_ * sizeof(type) + 63) & ~(size_t)63;               \
        a->field = base && n_ > 0 ? (type *)(void *)(base + off) : NULL;      \
        off += bytes_;                                                        \
    } while (0)
    TAKE(residual, (L + 1) * BT * C, float);
    TAKE(residual_mid, L * BT * C, float);
    TAKE(ln1, (m->keep_in[LINEAR_QKV] ? L : 1) * BT * C, float);
    TAKE(ln1_mean, L * BT, float);
    TAKE(ln1_rstd, L * BT, float);
    // under bf16, q, k, v, the attention probabilities and the GELU's derivative, which the
    // backward reads, are kept per layer in bf16 only (as PyTorch's autocast keeps them); the
    // fp32 buffers hold one layer's intermediates for the forward (c_attn's product, the scores,
    // c_fc's output), and the backward reads the bf16 copies
    size_t Lh = m->n_bf16 ? 1 : L;
    TAKE(qkv, Lh * BT * 3 * C, float);
    TAKE(qkv_bf16, m->n_bf16 ? L * BT * 3 * C : 0, uint16_t);
    TAKE(att, Lh * B * NH * TT, float);
    TAKE(att_bf16, m->n_bf16 ? L * B * NH * TT : 0, uint16_t);
    TAKE(atty, (m->keep_in[LINEAR_ATTN_PROJ] ? L : 1) * BT * C, float);
    TAKE(ln2, (m->keep_in[LINEAR_FC] ? L : 1) * BT * C, float);
    TAKE(ln2_mean, L * BT, float);
    TAKE(ln2_rstd, L * BT, float);
    TAKE(fch, Lh * BT * 4 * C, float);
    TAKE(dgelu_bf16, m->n_bf16 ? L * BT * 4 * C : 0, uint16_t);
    TAKE(fch_gelu, (m->keep_in[LINEAR_MLP_PROJ] ? L : 1) * BT * 4 * C, float);
    TAKE(sub_out, m->adapter_sites ? L * 2 * BT * C : 0, float);
    TAKE(lora_h, L * SITE_COUNT * BT * r, float);   // r = 0 without LoRA
    TAKE(ad_ln, m->p_ad_ln_w >= 0 ? L * BT * C : 0, float);
    TAKE(ad_ln_mean, m->p_ad_ln_w >= 0 ? L * BT : 0, float);
    TAKE(ad_ln_rstd, m->p_ad_ln_w >= 0 ? L * BT : 0, float);
    TAKE(ad_down, L * 2 * BT * ra, float);
    TAKE(ad_act, L * 2 * BT * ra, float);
    TAKE(lnf, BT * C, float);
    TAKE(lnf_mean, BT, float);
    TAKE(lnf_rstd, BT, float);
    TAKE(pooled, head ? (size_t)B * C : 0, float);
    TAKE(logits, nlogits, float);
    TAKE(lse, head ? (size_t)B : BT, float);
    TAKE(losses, head ? (size_t)B : BT, float);
    TAKE(dresidual, BT * C, float);
    TAKE(dsub, BT * C, float);
    TAKE(dsub2, m->adapter_sites ? BT * C : 0, float);
    TAKE(dln, BT * C, float);
    TAKE(dqkv, BT * 3 * C, float);
    TAKE(datty, BT * C, float);
    TAKE(datt, (size_t)B * NH * TT, float);
    TAKE(dfch, BT * 4 * C, float);
    TAKE(dlora, BT * rmax, float);
    TAKE(dlora2, BT * rmax, float);
    // the widest LoRA input, dropped: only with LoRA dropout
    TAKE(lora_x, !m->lora_on || m->mc.lora_dropout <= 0 ? 0 : has_lora(m, SITE_PROJ) ? BT * 4 * C : BT * C, float);
    TAKE(dpooled, head ? (size_t)B * C : 0, float);
    TAKE(tokens, BT, int);
    TAKE(targets, BT, int);
    TAKE(labels, B, int);
    TAKE(last_index, B, int);
    TAKE(key_mask, BT, uint8_t);
    int shared_slot = 0;
    for (int k = 0; k < LINEAR_COUNT; k++) {
        TAKE(in_bf16[k], m->keep_in_bf16[k] ? L * BT * linear_in_width(c, k) : 0, uint16_t);
        shared_slot |= m->n_bf16 && !m->keep_in_bf16[k];
    }
    TAKE(bf16_x, shared_slot ? BT * 4 * C : 0, uint16_t);
    TAKE(bf16_dy, m->n_bf16 ? BT * 4 * C : 0, uint16_t);
    int lora16 = m->lora_on && lora_reads_bf16(m);
    TAKE(lora_a_bf16, lora16 ? r * 4 * C : 0, uint16_t);
    TAKE(dlora_bf16, lora16 ? BT * r : 0, uint16_t);
#undef TAKE
    return off;
}

size_t memory_report_total(const MemoryReport *r) {
    return r->weights + r->grads + r->optimizer + r->activations;
}

int model_memory_need(const ModelConfig *cfg, const MethodConfig *mc, int B, int T, MemoryReport *out) {
    if (validate(cfg, mc)) return -1;
    LAB_ASSERT(B > 0 && T > 0);
    Model *m = xcalloc(1, sizeof *m);   // the registry alone: no tensor memory
    m->cfg = *cfg;
    m->mc = *mc;
    build_registry(m);
    decide_kept_inputs(m);
    size_t nw = 0, ng = 0, nh = 0;   // as model_create counts them
    for (int i = 0; i < m->nparams; i++) {
        int half = is_bf16(m, i);
        nh += half ? m->params[i].numel : 0;
        nw += half && !m->params[i].trainable ? 0 : m->params[i].numel;
        if (m->params[i].trainable) ng += m->params[i].numel;
    }
    m->n_bf16 = nh;   // layout_activations sizes the bf16 operand buffers by it
    out->weights = nw * sizeof(float) + nh * sizeof(uint16_t);
    out->grads = ng * sizeof(float);
    out->optimizer = 2 * ng * sizeof(float);
    // Dimensions are bounded (validate), but B is not: bound the largest activations in
    // double first, so that layout_activations' size_t products cannot wrap around.
    double Tx = (double)T + m->n_prefix, L1 = cfg->n_layer + 1.0, C = cfg->n_embd;
    double r = mc->lora_rank > mc->adapter_rank ? mc->lora_rank : mc->adapter_rank;
    double bound = 64.0 * (double)B * Tx * (L1 * (16.0 * C + 8.0 * r + cfg->n_head * Tx) + 2.0 * cfg->vocab_size + 64.0);
    if (bound < 0x1p62) {
        out->activations = layout_activations(m, NULL, B, (int)Tx);
    } else {
        out->activations = (size_t)1 << 62;   // at least this much
    }
    free(m);
    return 0;
}

void model_reserve(Model *m, int B, int T) {
    int Tx = T + m->n_prefix;
    LAB_ASSERT(B > 0 && T > 0 && Tx <= m->cfg.n_ctx);
    if (m->act_mem && B <= m->cap_B && Tx <= m->cap_T) return;
    if (m->act_mem) m->be->free(m->act_mem);
    m->act_bytes = layout_activations(m, NULL, B, Tx);
    m->act_mem = m->be->alloc(m->act_bytes);
    layout_activations(m, m->act_mem, B, Tx);
    m->cap_B = B;
    m->cap_T = Tx;
    free(m->slot_rows);
    free(m->slot_index);
    m->slot_rows = xmalloc(sizeof(int) * (size_t)B * (m->n_prefix + 1));
    m->slot_index = xmalloc(sizeof(int) * (size_t)B * (m->n_prefix + 1));
    size_t BTx = (size_t)B * Tx;
    free(m->stage_tok);   // one block: tok | tgt | loss | last | mask
    m->stage_tok = xmalloc(BTx * (2 * sizeof(int) + sizeof(float) + 1) + (size_t)B * sizeof(int));
    m->stage_tgt = m->stage_tok + BTx;
    m->stage_loss = (float *)(m->stage_tgt + BTx);
    m->stage_last = (int *)(m->stage_loss + BTx);
    m->stage_mask = (uint8_t *)(m->stage_last + B);
}

MemoryReport model_memory(const Model *m) {
    MemoryReport r;
    r.weights = m->n_weights * sizeof(float) + m->n_bf16 * sizeof(uint16_t);
    r.grads = m->n_grads * sizeof(float);
    r.optimizer = 2 * m->n_grads * sizeof(float);
    r.activations = m->act_bytes;
    return r;
}

// ----------------------------------------------------------------------------
// helpers over the backend

static float *P(Model *m, int idx) { return idx >= 0 ? m->params[idx].data : NULL; }
static float *G(Model *m, int idx) { return idx >= 0 ? m->params[idx].grad : NULL; }
static float *offset_or_null(float *p, size_t off) { return p ? p + off : NULL; }

// out (N, OC, row stride ldo) = inp (N, IC) @ W^T (W: OC x IC) [+ bias]; beta 1 accumulates.
static void linear_forward(const Backend *be, float *out, int ldo, const float *inp, const float *w,
                           const float *bias, int N, int IC, int OC, float beta) {
    be->gemm(0, 1, N, OC, IC, 1.0f, inp, IC, w, IC, beta, out, ldo);
    if (bias) be->bias_add(out, bias, N, OC, ldo, NULL);
}

// dinp (=, or += when accumulate) = dout @ W; dW = dout^T @ inp + dw_beta dW; dbias +=
// colsum(dout).
static void linear_backward(const Backend *be, float *dinp, float *dw, float *dbias,
                            const float *dout, int ldd, const float *inp, const float *w,
                            int N, int IC, int OC, int accumulate, float dw_beta) {
    if (dinp) be->gemm(0, 0, N, IC, OC, 1.0f, dout, ldd, w, IC, accumulate ? 1.0f : 0.0f, dinp, IC);
    if (dw) be->gemm(1, 0, OC, IC, N, 1.0f, dout, ldd, inp, IC, dw_beta, dw, IC);
    if (dbias) be->bias_backward(dbias, dout, N, OC, ldd);
}

// Whether parameter idx's gradient is written first, whole, by one product in every backward:
// the block linears' weights (one product per layer slice) and, under the LM head, the tied
// wte (its product comes before the embedding's scatter-add).
static int backward_overwrites(const Model *m, int idx) {
    for (int k = 0; k < LINEAR_COUNT; k++)
        if (idx == m->p_linw[k]) return 1;
    return idx == m->p_wte && m->mc.head == HEAD_LM;
}

// The beta of that first product into parameter idx's gradient.
static float grad_beta(const Model *m, int idx) {
    return m->grads_fresh && backward_overwrites(m, idx) ? 0.0f : 1.0f;
}

// Where block linear k's bf16 input at layer l lives: that layer's slot when kept per layer,
// else the one shared slot.
static uint16_t *input_bf16(Model *m, BlockLinear k, int l, int N, int IC) {
    return m->keep_in_bf16[k] ? m->a.in_bf16[k] + (size_t)l * N * IC : m->a.bf16_x;
}

// Block linear w (a stacked [L, OC, IC] weight) at layer l: out = inp @ W_l^T + bias, in
// fp32 or, for a bf16 weight, with bf16 operands and fp32 accumulation. inp NULL (bf16 only):
// its producer already wrote the rounded input into input_bf16's slot.
static void block_linear_forward(Model *m, BlockLinear k, int l, float *out, int ldo, const float *inp,
                                 const float *bias, int N, int IC, int OC) {
    const Param *p = &m->params[m->p_linw[k]];
    size_t at = (size_t)l * OC * IC;
    LAB_ASSERT(inp || p->bf16);
    if (!p->bf16) { linear_forward(m->be, out, ldo, inp, p->data + at, bias, N, IC, OC, 0.0f); return; }
    uint16_t *xh = input_bf16(m, k, l, N, IC);
    if (inp) m->be->to_bf16(xh, inp, N, IC, IC, NULL);
    m->be->gemm_bf16(0, 1, N, OC, IC, 1.0f, xh, IC, p->bf16 + at, IC, 0.0f, out, ldo);
    if (bias) m->be->bias_add(out, bias, N, OC, ldo, NULL);
}

// Its backward: dinp = dout @ W_l; dW_l += dout^T @ inp (trainable W); dbias += colsum(dout).
// dout NULL (bf16 only): its producer already wrote it rounded into bf16_dy and summed dbias.
static void block_linear_backward(Model *m, BlockLinear k, int l, float *dinp, float *dbias,
                                  const float *dout, int ldd, const float *inp, int N, int IC, int OC) {
    const Param *p = &m->params[m->p_linw[k]];
    size_t at = (size_t)l * OC * IC;
    float *dw = p->grad ? p->grad + at : NULL;
    LAB_ASSERT(dout || p->bf16);
    float dw_beta = grad_beta(m, m->p_linw[k]);
    if (!p->bf16) {
        linear_backward(m->be, dinp, dw, dbias, dout, ldd, inp, p->data + at, N, IC, OC, 0, dw_beta);
        return;
    }
    const Backend *be = m->be;
    if (dout) be->to_bf16(m->a.bf16_dy, dout, N, OC, ldd, dbias);   // and dbias += colsum(dout)
    be->gemm_bf16(0, 0, N, IC, OC, 1.0f, m->a.bf16_dy, OC, p->bf16 + at, IC, 0.0f, dinp, IC);
    if (dw) {   // the input as the forward rounded it, kept for this layer
        LAB_ASSERT(m->keep_in_bf16[k]);
        be->gemm_bf16(1, 0, OC, IC, N, 1.0f, m->a.bf16_dy, OC, input_bf16(m, k, l, N, IC), IC, dw_beta, dw, IC);
    }
}

static uint64_t site_seed(const Model *m, int layer, int site) {
    return rng_mix(m->fopt.seed, (uint64_t)layer * 64 + (uint64_t)site);
}
enum { DROP_EMBED = 1, DROP_ATTN, DROP_RESID_ATTN, DROP_RESID_MLP, DROP_LORA /* + target */ };

// LoRA branch of site t at layer l: out[:, row:row+dout] += s * B (A drop(x)), where out is
// the output of the site's block linear.
static void lora_forward(Model *m, int l, LoraSite t, float *out, int ldo, const float *x, int N) {
    if (m->p_lora_a[t] < 0 || m->merged) return;
    const Backend *be = m->be;
    LoraSlice w = lora_site_slice(&m->cfg, t, l);
    int r = m->mc.lora_rank, din = w.d_in, dout = w.d_out;
    float s = m->mc.lora_alpha / r, p = m->fopt.training ? m->mc.lora_dropout : 0.0f;
    const float *A = P(m, m->p_lora_a[t]) + (size_t)l * r * din;
    const float *Bm = P(m, m->p_lora_b[t]) + (size_t)l * dout * r;
    float *h = m->a.lora_h + ((size_t)l * SITE_COUNT + t) * N * r;
    if (lora_reads_bf16(m)) {   // h = x A^T on bf16 operands: the block linear's rounded input
        be->to_bf16(m->a.lora_a_bf16, A, r, din, din, NULL);
        be->gemm_bf16(0, 1, N, r, din, 1.0f, input_bf16(m, w.linear, l, N, din), din, m->a.lora_a_bf16, din,
                      0.0f, h, r);
    } else {
        const float *xin = x;
        if (p > 0) {
            be->dropout_forward(m->a.lora_x, x, (size_t)N * din, p, site_seed(m, l, DROP_LORA + t));
            xin = m->a.lora_x;
        }
        linear_forward(be, h, r, xin, A, NULL, N, din, r, 0.0f);
    }
    be->gemm(0, 1, N, dout, r, s, h, r, Bm, r, 1.0f, out + w.row, ldo);
}

// dx (+=) and dA, dB for the LoRA branch of site t given dout (the block linear's output grad).
static void lora_backward(Model *m, int l, LoraSite t, float *dx, const float *dout, int ldd,
                          const float *x, int N) {
    if (m->p_lora_a[t] < 0) return;
    const Backend *be = m->be;
    LoraSlice w = lora_site_slice(&m->cfg, t, l);
    int r = m->mc.lora_rank, din = w.d_in, dout_dim = w.d_out;
    float s = m->mc.lora_alpha / r, p = m->fopt.training ? m->mc.lora_dropout : 0.0f;
    size_t a_off = (size_t)l * r * din, b_off = (size_t)l * dout_dim * r;
    const float *A = P(m, m->p_lora_a[t]) + a_off, *Bm = P(m, m->p_lora_b[t]) + b_off;
    float *dA = G(m, m->p_lora_a[t]), *dB = G(m, m->p_lora_b[t]);
    const float *h = m->a.lora_h + ((size_t)l * SITE_COUNT + t) * N * r;
    const float *d = dout + w.row;
    const float *xin = x;
    if (p > 0) {   // recompute the dropped input from its stateless mask
        be->dropout_forward(m->a.lora_x, x, (size_t)N * din, p, site_seed(m, l, DROP_LORA + t));
        xin = m->a.lora_x;
    }
    if (dB) be->gemm(1, 0, dout_dim, r, N, s, d, ldd, h, r, 1.0f, dB + b_off, r);   // dB += s d^T h
    be->gemm(0, 0, N, r, dout_dim, s, d, ldd, Bm, r, 0.0f, m->a.dlora, r);       // dh = s d B
    if (dA && lora_reads_bf16(m)) {   // dA += dh^T x on bf16 operands, x as the forward rounded it
        be->to_bf16(m->a.dlora_bf16, m->a.dlora, N, r, r, NULL);
        be->gemm_bf16(1, 0, r, din, N, 1.0f, m->a.dlora_bf16, r, input_bf16(m, w.linear, l, N, din), din, 1.0f,
                      dA + a_off, din);
    } else if (dA) {
        be->gemm(1, 0, r, din, N, 1.0f, m->a.dlora, r, xin, din, 1.0f, dA + a_off, din);
    }
    if (!dx) return;
    if (p > 0) {   // dx += dropout_backward(dh A)
        be->gemm(0, 0, N, din, r, 1.0f, m->a.dlora, r, A, din, 0.0f, m->a.lora_x, din);
        be->dropout_backward(m->a.lora_x, m->a.lora_x, (size_t)N * din, p, site_seed(m, l, DROP_LORA + t));
        be->axpy(dx, m->a.lora_x, 1.0f, (size_t)N * din);
    } else {
        be->gemm(0, 0, N, din, r, 1.0f, m->a.dlora, r, A, din, 1.0f, dx, din);
    }
}

// The adapter at `site` of layer l, named once: its weights at the layer (stored from
// adapter_first_layer up), their gradients (NULL where frozen) and its activations.
typedef struct {
    const float *down_w, *down_b, *up_w, *up_b;   // (r, C), (r), (C, r), (C)
    const float *ln_w, *ln_b;                     // (C) adapter_l's LayerNorm at the MLP site, else NULL
    float *gdown_w, *gdown_b, *gup_w, *gup_b, *gln_w, *gln_b;
    float *down, *act;                            // (N, r) before and after the nonlinearity
    float *ln, *ln_mean, *ln_rstd;                // (N, C), (N), (N) when ln_w
} AdapterView;

static AdapterView adapter_view(Model *m, int l, AdapterSite site, int N) {
    size_t C = (size_t)m->cfg.n_embd, r = (size_t)m->mc.adapter_rank;
    size_t la = (size_t)(l - m->adapter_first_layer), at = ((size_t)l * ADAPTER_SITES + site) * N * r;
    AdapterView v;
    v.down_w = P(m, m->p_ad_down_w[site]) + la * r * C;
    v.down_b = P(m, m->p_ad_down_b[site]) + la * r;
    v.up_w = P(m, m->p_ad_up_w[site]) + la * C * r;
    v.up_b = P(m, m->p_ad_up_b[site]) + la * C;
    v.gdown_w = offset_or_null(G(m, m->p_ad_down_w[site]), la * r * C);
    v.gdown_b = offset_or_null(G(m, m->p_ad_down_b[site]), la * r);
    v.gup_w = offset_or_null(G(m, m->p_ad_up_w[site]), la * C * r);
    v.gup_b = offset_or_null(G(m, m->p_ad_up_b[site]), la * C);
    v.down = m->a.ad_down + at;
    v.act = m->a.ad_act + at;
    int has_ln = site == ADAPTER_MLP && m->p_ad_ln_w >= 0;
    v.ln_w = has_ln ? P(m, m->p_ad_ln_w) + la * C : NULL;
    v.ln_b = has_ln ? P(m, m->p_ad_ln_b) + la * C : NULL;
    v.gln_w = has_ln ? offset_or_null(G(m, m->p_ad_ln_w), la * C) : NULL;
    v.gln_b = has_ln ? offset_or_null(G(m, m->p_ad_ln_b), la * C) : NULL;
    v.ln = has_ln ? m->a.ad_ln + (size_t)l * N * C : NULL;
    v.ln_mean = has_ln ? m->a.ad_ln_mean + (size_t)l * N : NULL;
    v.ln_rstd = has_ln ? m->a.ad_ln_rstd + (size_t)l * N : NULL;
    return v;
}

// Adapter at `site` of layer l: y = a + up(gelu(down(a'))) with a' = a, or LN(a) for adapter_l.
// Writes y into `out` (may not alias a).
static void adapter_forward(Model *m, int l, AdapterSite site, float *out, const float *a_in, int N) {
    const Backend *be = m->be;
    int C = m->cfg.n_embd, r = m->mc.adapter_rank;
    AdapterView v = adapter_view(m, l, site, N);
    const float *x = a_in;
    if (v.ln_w) {
        be->layernorm_forward(v.ln, v.ln_mean, v.ln_rstd, a_in, v.ln_w, v.ln_b, N, C, m->cfg.ln_eps, NULL);
        x = v.ln;
    }
    linear_forward(be, v.down, r, x, v.down_w, v.down_b, N, C, r, 0.0f);
    be->gelu_forward(v.act, v.down, (size_t)N * r);
    be->copy(out, a_in, (size_t)N * C * sizeof(float));
    linear_forward(be, out, C, v.act, v.up_w, v.up_b, N, r, C, 1.0f);
}

// da (=) from dy through the adapter; parameter grads +=.
static void adapter_backward(Model *m, int l, AdapterSite site, float *da, const float *dy, const float *a_in, int N) {
    const Backend *be = m->be;
    int C = m->cfg.n_embd, r = m->mc.adapter_rank;
    AdapterView v = adapter_view(m, l, site, N);
    const float *x = v.ln_w ? v.ln : a_in;
    linear_backward(be, m->a.dlora, v.gup_w, v.gup_b, dy, C, v.act, v.up_w, N, r, C, 0, 1.0f);
    be->gelu_backward(m->a.dlora2, v.down, NULL, m->a.dlora, (size_t)N * r);
    be->copy(da, dy, (size_t)N * C * sizeof(float));   // the adapter's skip connection
    float *dx = v.ln_w ? m->a.dln : da;
    linear_backward(be, dx, v.gdown_w, v.gdown_b, m->a.dlora2, r, x, v.down_w, N, C, r, !v.ln_w, 1.0f);
    if (v.ln_w)   // layernorm_backward accumulates into da
        be->layernorm_backward(da, v.gln_w, v.gln_b, m->a.dln, a_in, v.ln_w, v.ln_mean, v.ln_rstd, N, C);
}

static int has_adapter(const Model *m, int l, int site) {
    return (m->adapter_sites & (1 << site)) && l >= m->adapter_first_layer;
}

// Overwrites the prefix/infix rows of x (BT, C) with prefix vectors (layer l of prefix.layer,
// or prefix.embed plus the position embedding when l < 0).
static void prefix_write(Model *m, float *x, int l) {
    const Backend *be = m->be;
    int C = m->cfg.n_embd;
    const float *src = P(m, m->p_prefix) + (l >= 0 ? (size_t)l * m->n_prefix * C : 0);
    for (int i = 0; i < m->n_slots; i++) {
        float *row = x + (size_t)m->slot_rows[i] * C;
        be->copy(row, src + (size_t)m->slot_index[i] * C, C * sizeof(float));
        if (l < 0) {   // PreEmbed vectors are token embeddings: they get positions like any token
            int t = m->slot_rows[i] % m->Tx;
            be->axpy(row, P(m, m->p_wpe) + (size_t)t * C, 1.0f, C);
        }
    }
}

// Moves the gradient at the prefix rows of dx into the prefix gradient and zeroes it there
// (those rows were overwritten, so nothing below them sees it).
static void prefix_backward(Model *m, float *dx, int l) {
    const Backend *be = m->be;
    int C = m->cfg.n_embd;
    float *g = G(m, m->p_prefix);
    for (int i = 0; i < m->n_slots; i++) {
        float *row = dx + (size_t)m->slot_rows[i] * C;
        if (g) be->axpy(g + ((l >= 0 ? (size_t)l * m->n_prefix : 0) + m->slot_index[i]) * C, row, 1.0f, C);
        if (l < 0 && G(m, m->p_wpe)) {
            int t = m->slot_rows[i] % m->Tx;
            be->axpy(G(m, m->p_wpe) + (size_t)t * C, row, 1.0f, C);
        }
        be->zero(row, C * sizeof(float));
    }
}

// ----------------------------------------------------------------------------
// forward

// Expands the host batch into device inputs: prefix rows first, then the prompt's tokens,
// then infix rows, then the rest of the tokens, then padding (see Batch.prompt_lengths).
// Fills tokens, targets, key_mask, last_index and the slot list.
static void stage_batch(Model *m, const Batch *bt) {
    int B = bt->B, T = bt->T, Tx = T + m->n_prefix, lp = m->mc.prefix_lp, li = m->n_prefix ? m->mc.prefix_li : 0;
    if (!m->n_prefix) lp = 0;
    size_t BTx = (size_t)B * Tx;
    int *tok = m->stage_tok, *tgt = m->stage_tgt, *last = m->stage_last;
    uint8_t *mask = m->stage_mask;
    memset(tok, 0, BTx * sizeof(int));
    memset(mask, 0, BTx);
    m->n_slots = 0;
    m->loss_count = 0;
    for (size_t i = 0; i < BTx; i++) tgt[i] = -1;
    for (int b = 0; b < B; b++) {
        int len = bt->lengths ? bt->lengths[b] : T;
        int p = bt->prompt_lengths ? bt->prompt_lengths[b] : len;   // the infix follows token p - 1
        LAB_ASSERT(len >= 1 && len <= T && p >= 1 && p <= T);
        for (int k = 0; k < lp; k++) {
            m->slot_rows[m->n_slots] = b * Tx + k; m->slot_index[m->n_slots++] = k; mask[b * Tx + k] = 1;
        }
        for (int t = 0; t < T; t++) {
            int pos = t < p ? lp + t : lp + li + t;
            tok[b * Tx + pos] = bt->tokens[(size_t)b * T + t];
            mask[b * Tx + pos] = t < len;
            if (bt->targets && t < len && bt->targets[(size_t)b * T + t] >= 0) {
                // the last prompt token's successor is predicted after the infix
                int at = li > 0 && t == p - 1 ? lp + p + li - 1 : pos;
                tgt[b * Tx + at] = bt->targets[(size_t)b * T + t];
                m->loss_count++;
            }
        }
        for (int k = 0; k < li; k++) {
            int pos = lp + p + k;
            m->slot_rows[m->n_slots] = b * Tx + pos; m->slot_index[m->n_slots++] = lp + k; mask[b * Tx + pos] = 1;
        }
        last[b] = b * Tx + (len >= p ? lp + li + len - 1 : lp + len - 1);
    }
    const Backend *be = m->be;
    be->to_device(m->a.tokens, tok, BTx * sizeof(int));
    be->to_device(m->a.targets, tgt, BTx * sizeof(int));
    be->to_device(m->a.key_mask, mask, BTx);
    be->to_device(m->a.last_index, last, B * sizeof(int));
    if (m->mc.head == HEAD_CLS && bt->labels) {
        be->to_device(m->a.labels, bt->labels, B * sizeof(int));
        m->loss_count = 0;
        for (int b = 0; b < B; b++) m->loss_count += bt->labels[b] >= 0;
    }
    if (m->mc.head == HEAD_REG) m->loss_count = bt->values ? B : 0;
}

// One layer's slices, named once: its LayerNorm and bias vectors, their gradients (NULL where
// frozen), and the activations of a forward over B x Tx rows. Inputs that only a weight
// gradient reads live in one shared buffer unless kept per layer (Model.keep_in).
typedef struct {
    const float *ln1w, *ln1b, *ln2w, *ln2b;   // (C)
    const float *bias[LINEAR_COUNT];          // block linear biases: (3C), (C), (4C), (C)
    float *gln1w, *gln1b, *gln2w, *gln2b, *gbias[LINEAR_COUNT];
    float *x, *xmid, *xout;                   // (N, C) residual stream: in, after attention, out
    float *ln1, *ln1_mean, *ln1_rstd;         // (N, C), (N), (N)
    float *qkv;                               // (N, 3C)
    uint16_t *qkv_bf16;                       // its bf16 copy kept for backward, or NULL
    float *att;                               // (B, NH, Tx, Tx)
    uint16_t *att_bf16;                       // its bf16 copy kept for backward, or NULL
    float *atty;                              // (N, C)
    float *ln2, *ln2_mean, *ln2_rstd;         // (N, C), (N), (N)
    float *fch, *fchg;                        // (N, 4C) before and after GELU
    uint16_t *dgelu_bf16;                     // GELU'(fch) in bf16 kept for backward, or NULL
    float *sub_out[ADAPTER_SITES];            // (N, C) an adapter's input, NULL where none
} LayerView;

static LayerView layer_view(Model *m, int l, int B, int Tx) {
    const ModelConfig *c = &m->cfg;
    size_t C = (size_t)c->n_embd, N = (size_t)B * Tx, NC = N * C, L = (size_t)l;
    Activations *a = &m->a;
    LayerView v;
    v.ln1w = P(m, m->p_ln1w) + L * C;
    v.ln1b = P(m, m->p_ln1b) + L * C;
    v.ln2w = P(m, m->p_ln2w) + L * C;
    v.ln2b = P(m, m->p_ln2b) + L * C;
    v.gln1w = offset_or_null(G(m, m->p_ln1w), L * C);
    v.gln1b = offset_or_null(G(m, m->p_ln1b), L * C);
    v.gln2w = offset_or_null(G(m, m->p_ln2w), L * C);
    v.gln2b = offset_or_null(G(m, m->p_ln2b), L * C);
    for (int k = 0; k < LINEAR_COUNT; k++) {
        size_t out = (size_t)m->params[m->p_linb[k]].shape[1];   // (L, out)
        v.bias[k] = P(m, m->p_linb[k]) + L * out;
        v.gbias[k] = offset_or_null(G(m, m->p_linb[k]), L * out);
    }
    v.x = a->residual + L * NC;
    v.xmid = a->residual_mid + L * NC;
    v.xout = a->residual + (L + 1) * NC;
    v.ln1 = a->ln1 + (m->keep_in[LINEAR_QKV] ? L : 0) * NC;
    v.ln1_mean = a->ln1_mean + L * N;
    v.ln1_rstd = a->ln1_rstd + L * N;
    size_t natt = (size_t)B * c->n_head * Tx * Tx, Lf = m->n_bf16 ? 0 : L;   // fp32: one layer under bf16
    v.qkv = a->qkv + Lf * N * 3 * C;
    v.qkv_bf16 = a->qkv_bf16 ? a->qkv_bf16 + L * N * 3 * C : NULL;
    v.att = a->att + Lf * natt;
    v.att_bf16 = a->att_bf16 ? a->att_bf16 + L * natt : NULL;
    v.atty = a->atty + (m->keep_in[LINEAR_ATTN_PROJ] ? L : 0) * NC;
    v.ln2 = a->ln2 + (m->keep_in[LINEAR_FC] ? L : 0) * NC;
    v.ln2_mean = a->ln2_mean + L * N;
    v.ln2_rstd = a->ln2_rstd + L * N;
    v.fch = a->fch + Lf * N * 4 * C;
    v.dgelu_bf16 = a->dgelu_bf16 ? a->dgelu_bf16 + L * N * 4 * C : NULL;
    v.fchg = a->fch_gelu + (m->keep_in[LINEAR_MLP_PROJ] ? L : 0) * N * 4 * C;
    for (int s = 0; s < ADAPTER_SITES; s++)
        v.sub_out[s] = has_adapter(m, l, s) ? a->sub_out + (L * ADAPTER_SITES + s) * NC : NULL;
    return v;
}

// Transformer block l over the B x Tx rows of the residual stream: x[l] -> x[l+1].
// decode: each row is one new token attending to its row of the key/value cache.
// pending not NULL: block l-1 left its last add, x[l] = xmid[l-1] + pending, to this block's
// first LayerNorm, which forms the sum in its own pass. Returns the output this block leaves
// the same way to the next LayerNorm (the next block's, or ln_f), or NULL when it added it:
// in decoding and with prefix-layer, whose prefix_write must change x[l+1] before it is read.
static const float *block_forward(Model *m, int l, int B, int Tx, int decode, const float *pending) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    int C = c->n_embd, NH = c->n_head, N = B * Tx;
    size_t NC = (size_t)N * C;
    float pd = m->fopt.dropout;
    Activations *a = &m->a;
    LayerView v = layer_view(m, l, B, Tx);
    if (m->prefix_kind == METHOD_PREFIX_LAYER && !decode) prefix_write(m, v.x, l);
    // bf16: the LayerNorms (and the GELU below) write the next linear's rounded input themselves
    // where nothing reads it in fp32
    float *ln1 = input_only_bf16(m, LINEAR_QKV) ? NULL : v.ln1;
    uint16_t *ln1_bf16 = ln1 ? NULL : input_bf16(m, LINEAR_QKV, l, N, C);
    if (pending)
        be->residual_layernorm_forward(v.x, ln1, v.ln1_mean, v.ln1_rstd, layer_view(m, l - 1, B, Tx).xmid, pending,
                                       v.ln1w, v.ln1b, N, C, c->ln_eps, ln1_bf16);
    else
        be->layernorm_forward(ln1, v.ln1_mean, v.ln1_rstd, v.x, v.ln1w, v.ln1b, N, C, c->ln_eps, ln1_bf16);
    // bf16: c_attn's bias joins the rounding of q, k, v (after the LoRA branches add theirs)
    block_linear_forward(m, LINEAR_QKV, l, v.qkv, 3 * C, ln1, v.qkv_bf16 ? NULL : v.bias[LINEAR_QKV], N, C, 3 * C);
    for (LoraSite t = SITE_Q; t <= SITE_V; t++) lora_forward(m, l, t, v.qkv, 3 * C, v.ln1, N);
    if (v.qkv_bf16) be->bias_add(v.qkv, v.bias[LINEAR_QKV], N, 3 * C, 3 * C, v.qkv_bf16);
    if (decode) {
        size_t layer = (size_t)m->kv_rows * c->n_ctx * C;
        float *kc = m->kv_cache + (size_t)l * 2 * layer;
        be->attention_decode(v.atty, v.qkv, kc, kc + layer, a->last_index, B, c->n_ctx, C, NH);
    } else if (v.att_bf16) {   // bf16: from the rounded q, k, v; v.att is the scores' scratch
        be->attention_forward_bf16(v.atty, v.att, v.att_bf16, v.qkv_bf16, a->key_mask, B, Tx, C, NH, pd,
                                   site_seed(m, l, DROP_ATTN));
    } else {
        be->attention_forward(v.atty, v.att, v.qkv, a->key_mask, B, Tx, C, NH, pd, site_seed(m, l, DROP_ATTN));
    }
    // attention output projection (o) into dsub, then adapter, dropout, residual add
    float *o = v.sub_out[ADAPTER_ATTN] ? v.sub_out[ADAPTER_ATTN] : a->dsub;
    block_linear_forward(m, LINEAR_ATTN_PROJ, l, o, C, v.atty, v.bias[LINEAR_ATTN_PROJ], N, C, C);
    lora_forward(m, l, SITE_O, o, C, v.atty, N);
    if (v.sub_out[ADAPTER_ATTN]) { adapter_forward(m, l, ADAPTER_ATTN, a->dsub, o, N); o = a->dsub; }
    if (pd > 0) be->dropout_forward(o, o, NC, pd, site_seed(m, l, DROP_RESID_ATTN));
    // MLP: xmid = x + o and ln2 = LN(xmid) in one pass; c_fc's bias joins its GELU
    float *ln2 = input_only_bf16(m, LINEAR_FC) ? NULL : v.ln2;
    be->residual_layernorm_forward(v.xmid, ln2, v.ln2_mean, v.ln2_rstd, v.x, o, v.ln2w, v.ln2b, N, C, c->ln_eps,
                                   ln2 ? NULL : input_bf16(m, LINEAR_FC, l, N, C));
    block_linear_forward(m, LINEAR_FC, l, v.fch, 4 * C, ln2, NULL, N, C, 4 * C);
    lora_forward(m, l, SITE_FC, v.fch, 4 * C, v.ln2, N);
    int rounded = input_only_bf16(m, LINEAR_MLP_PROJ);
    be->bias_gelu_forward(rounded ? NULL : v.fchg, v.fch, v.bias[LINEAR_FC], N, 4 * C,
                          rounded ? input_bf16(m, LINEAR_MLP_PROJ, l, N, 4 * C) : NULL, v.dgelu_bf16);
    o = v.sub_out[ADAPTER_MLP] ? v.sub_out[ADAPTER_MLP] : a->dsub;
    block_linear_forward(m, LINEAR_MLP_PROJ, l, o, C, rounded ? NULL : v.fchg, v.bias[LINEAR_MLP_PROJ], N,
                         4 * C, C);
    lora_forward(m, l, SITE_PROJ, o, C, v.fchg, N);
    if (v.sub_out[ADAPTER_MLP]) { adapter_forward(m, l, ADAPTER_MLP, a->dsub, o, N); o = a->dsub; }
    if (pd > 0) be->dropout_forward(o, o, NC, pd, site_seed(m, l, DROP_RESID_MLP));
    if (!decode && m->prefix_kind != METHOD_PREFIX_LAYER) return o;
    be->add(v.xout, v.xmid, o, NC);
    return NULL;
}

float model_forward(Model *m, const Batch *bt, const ForwardOptions *opt) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size, B = bt->B;
    int Tx = bt->T + m->n_prefix;
    model_reserve(m, B, bt->T);
    m->B = B; m->T = bt->T; m->Tx = Tx;
    m->fopt = *opt;
    if (!opt->training) m->fopt.dropout = 0.0f;
    float pd = m->fopt.dropout;
    int N = B * Tx;
    size_t NC = (size_t)N * C;
    Activations *a = &m->a;
    stage_batch(m, bt);
    refresh_bf16(m);

    be->encoder_forward(a->residual, a->tokens, P(m, m->p_wte), P(m, m->p_wpe), B, Tx, C);
    if (m->prefix_kind == METHOD_PREFIX_EMBED) prefix_write(m, a->residual, -1);
    if (pd > 0) be->dropout_forward(a->residual, a->residual, NC, pd, site_seed(m, 0, DROP_EMBED));

    const float *pending = NULL;
    for (int l = 0; l < L; l++) pending = block_forward(m, l, B, Tx, 0, pending);
    float *xL = a->residual + (size_t)L * NC;
    if (pending)
        be->residual_layernorm_forward(xL, a->lnf, a->lnf_mean, a->lnf_rstd, layer_view(m, L - 1, B, Tx).xmid,
                                       pending, P(m, m->p_lnfw), P(m, m->p_lnfb), N, C, c->ln_eps, NULL);
    else
        be->layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, xL, P(m, m->p_lnfw), P(m, m->p_lnfb), N, C,
                              c->ln_eps, NULL);

    m->has_loss = m->loss_count > 0;
    double loss = 0.0;
    if (m->mc.head == HEAD_LM) {
        linear_forward(be, a->logits, V, a->lnf, P(m, m->p_wte), NULL, N, C, V, 0.0f);
        if (!m->has_loss) return 0.0f;
        be->crossentropy_forward(a->losses, a->lse, a->logits, V, a->targets, N, V, opt->label_smoothing);
        float *h = m->stage_loss;
        be->to_host(h, a->losses, (size_t)N * sizeof(float));
        for (int i = 0; i < N; i++) loss += h[i];
    } else {
        int K = m->mc.n_classes;
        be->gather_rows(a->pooled, a->lnf, a->last_index, B, C);
        linear_forward(be, a->logits, K, a->pooled, P(m, m->p_score), NULL, B, C, K, 0.0f);
        if (!m->has_loss) return 0.0f;
        if (m->mc.head == HEAD_CLS) {
            be->crossentropy_forward(a->losses, a->lse, a->logits, K, a->labels, B, K, opt->label_smoothing);
            float h[4096];
            LAB_ASSERT(B <= 4096);
            be->to_host(h, a->losses, (size_t)B * sizeof(float));
            for (int b = 0; b < B; b++) loss += h[b];
        } else {   // regression: mean squared error, gradient staged on the host
            m->reg_dlogits_host = xrealloc(m->reg_dlogits_host, (size_t)B * sizeof(float));
            be->to_host(m->reg_dlogits_host, a->logits, (size_t)B * sizeof(float));
            for (int b = 0; b < B; b++) {
                float e = m->reg_dlogits_host[b] - bt->values[b];
                loss += (double)e * e;
                m->reg_dlogits_host[b] = 2.0f * e / B;
            }
        }
    }
    return (float)(loss / m->loss_count);
}

int model_loss_count(const Model *m) { return m->loss_count; }

size_t model_copy_logits(const Model *m, float *host, size_t cap) {
    size_t n = m->mc.head == HEAD_LM ? (size_t)m->B * m->Tx * m->cfg.vocab_size
                                     : (size_t)m->B * m->mc.n_classes;
    if (n > cap) n = cap;
    m->be->to_host(host, m->a.logits, n * sizeof(float));
    return n;
}

// ----------------------------------------------------------------------------
// decoding with a key/value cache

int model_decode_supported(const Model *m) { return m->mc.head == HEAD_LM; }

// Sizes the cache for `rows` rows (keeping the rows it holds).
static void kv_reserve(Model *m, int rows) {
    if (rows <= m->kv_rows) return;
    const Backend *be = m->be;
    size_t per_row = (size_t)m->cfg.n_ctx * m->cfg.n_embd, blocks = (size_t)m->cfg.n_layer * 2;
    size_t bytes = blocks * rows * per_row * sizeof(float);
    float *cache = be->alloc(bytes), *spare = be->alloc(bytes);
    if (m->kv_cache) {
        for (size_t k = 0; k < blocks; k++)
            be->copy(cache + k * rows * per_row, m->kv_cache + k * m->kv_rows * per_row,
                     m->kv_rows * per_row * sizeof(float));
        be->free(m->kv_cache);
        be->free(m->kv_spare);
    }
    m->kv_cache = cache;
    m->kv_spare = spare;
    m->kv_pos = xrealloc(m->kv_pos, sizeof(int) * rows);
    for (int i = m->kv_rows; i < rows; i++) m->kv_pos[i] = 0;
    m->kv_rows = rows;
}

void model_decode_prefill(Model *m, const Batch *prompts, float *logits) {
    LAB_ASSERT(model_decode_supported(m) && !prompts->targets && !prompts->prompt_lengths);
    ForwardOptions fo = {0, 0.0f, 0.0f, 0};
    model_forward(m, prompts, &fo);   // the infix follows each whole prompt
    const Backend *be = m->be;
    int B = prompts->B, Tx = m->Tx, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    kv_reserve(m, B);
    size_t per_row = (size_t)m->cfg.n_ctx * C, layer = (size_t)m->kv_rows * per_row;
    for (int b = 0; b < B; b++) {
        int len = m->n_prefix + (prompts->lengths ? prompts->lengths[b] : prompts->T);   // + prefix and infix
        m->kv_pos[b] = len;
        for (int l = 0; l < m->cfg.n_layer; l++) {   // k and v of every real position, from qkv
            size_t at = (size_t)l * B * Tx * 3 * C + (size_t)b * Tx * 3 * C;
            const float *qkv = m->a.qkv + at;
            const uint16_t *qkv16 = m->a.qkv_bf16 ? m->a.qkv_bf16 + at : NULL;   // bf16: the kept copy
            float *kc = m->kv_cache + (size_t)l * 2 * layer + b * per_row;
            for (int t = 0; t < len; t++) {
                size_t k = (size_t)t * 3 * C + C, v = k + C;
                if (qkv16) {
                    be->from_bf16(kc + (size_t)t * C, qkv16 + k, C);
                    be->from_bf16(kc + layer + (size_t)t * C, qkv16 + v, C);
                } else {
                    be->copy(kc + (size_t)t * C, qkv + k, C * sizeof(float));
                    be->copy(kc + layer + (size_t)t * C, qkv + v, C * sizeof(float));
                }
            }
        }
        be->to_host(logits + (size_t)b * V, m->a.logits + ((size_t)b * Tx + len - 1) * V, V * sizeof(float));
    }
}

void model_decode_reorder(Model *m, const int *parent, int n) {
    const Backend *be = m->be;
    kv_reserve(m, n);
    int C = m->cfg.n_embd;
    size_t per_row = (size_t)m->cfg.n_ctx * C, blocks = (size_t)m->cfg.n_layer * 2;
    int *pos = xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        LAB_ASSERT(parent[i] >= 0 && parent[i] < m->kv_rows);
        pos[i] = m->kv_pos[parent[i]];
        for (size_t k = 0; k < blocks; k++)   // only the positions in use
            be->copy(m->kv_spare + (k * m->kv_rows + i) * per_row, m->kv_cache + (k * m->kv_rows + parent[i]) * per_row,
                     (size_t)pos[i] * C * sizeof(float));
    }
    float *t = m->kv_cache;
    m->kv_cache = m->kv_spare;
    m->kv_spare = t;
    memcpy(m->kv_pos, pos, sizeof(int) * n);
    free(pos);
}

void model_decode_step(Model *m, const int *tokens, int n, float *logits) {
    const Backend *be = m->be;
    int L = m->cfg.n_layer, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    LAB_ASSERT(n <= m->kv_rows);
    model_reserve(m, n, 1);
    m->fopt = (ForwardOptions){0, 0.0f, 0.0f, 0};
    m->n_slots = 0;
    m->has_loss = 0;
    Activations *a = &m->a;
    size_t NC = (size_t)n * C;
    // embeddings at each row's own position; positions also tell attention_decode where to write
    be->to_device(a->tokens, tokens, sizeof(int) * n);
    be->to_device(a->last_index, m->kv_pos, sizeof(int) * n);
    be->gather_rows(a->residual, P(m, m->p_wte), a->tokens, n, C);
    be->gather_rows(a->dsub, P(m, m->p_wpe), a->last_index, n, C);
    be->add(a->residual, a->residual, a->dsub, NC);
    for (int l = 0; l < L; l++) block_forward(m, l, n, 1, 1, NULL);
    be->layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, a->residual + (size_t)L * NC, P(m, m->p_lnfw),
                          P(m, m->p_lnfb), n, C, m->cfg.ln_eps, NULL);
    linear_forward(be, a->logits, V, a->lnf, P(m, m->p_wte), NULL, n, C, V, 0.0f);
    be->to_host(logits, a->logits, (size_t)n * V * sizeof(float));
    for (int i = 0; i < n; i++) m->kv_pos[i]++;
}

// ----------------------------------------------------------------------------
// backward

// Zeroes the gradients the next backward adds to; those it overwrites (nearly all of FT's
// gradient memory) are left for it, so a step makes no pass over them first.
void model_zero_grad(Model *m) {
    for (int i = 0; i < m->nparams; i++) {
        const Param *p = &m->params[i];
        if (p->grad && !backward_overwrites(m, i)) m->be->zero(p->grad, p->numel * sizeof(float));
    }
    m->grads_fresh = 1;
}

// The backward of block_forward at layer l over the last forward's B x Tx rows: takes the
// gradient of x[l+1] in dresidual and leaves that of x[l] there; parameter gradients +=.
static void block_backward(Model *m, int l) {
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    int C = c->n_embd, NH = c->n_head, B = m->B, Tx = m->Tx, N = B * Tx;
    size_t NC = (size_t)N * C;
    float pd = m->fopt.dropout;
    Activations *a = &m->a;
    LayerView v = layer_view(m, l, B, Tx);
    // ---- MLP sublayer: xout = xmid + drop(adapter(c_proj(gelu(c_fc(ln2(xmid)))))) ----
    const float *d = a->dresidual;
    if (pd > 0) { be->dropout_backward(a->dsub, d, NC, pd, site_seed(m, l, DROP_RESID_MLP)); d = a->dsub; }
    if (v.sub_out[ADAPTER_MLP]) {
        adapter_backward(m, l, ADAPTER_MLP, a->dsub2, d, v.sub_out[ADAPTER_MLP], N);
        d = a->dsub2;
    }
    block_linear_backward(m, LINEAR_MLP_PROJ, l, a->dfch, v.gbias[LINEAR_MLP_PROJ], d, C, v.fchg, N, 4 * C, C);
    lora_backward(m, l, SITE_PROJ, a->dfch, d, C, v.fchg, N);
    if (v.dgelu_bf16 && !has_lora(m, SITE_FC)) {   // straight into c_fc's bf16 operand, with its dbias
        be->gelu_backward_bf16(a->bf16_dy, v.gbias[LINEAR_FC], v.dgelu_bf16, a->dfch, N, 4 * C);
        block_linear_backward(m, LINEAR_FC, l, a->dln, NULL, NULL, 4 * C, v.ln2, N, C, 4 * C);
    } else {
        be->gelu_backward(a->dfch, v.dgelu_bf16 ? NULL : v.fch, v.dgelu_bf16, a->dfch, (size_t)N * 4 * C);
        block_linear_backward(m, LINEAR_FC, l, a->dln, v.gbias[LINEAR_FC], a->dfch, 4 * C, v.ln2, N, C, 4 * C);
    }
    lora_backward(m, l, SITE_FC, a->dln, a->dfch, 4 * C, v.ln2, N);
    be->layernorm_backward(a->dresidual, v.gln2w, v.gln2b, a->dln, v.xmid, v.ln2w, v.ln2_mean, v.ln2_rstd, N, C);
    // ---- attention sublayer: xmid = x + drop(adapter(c_proj(attn(c_attn(ln1(x)))))) ----
    d = a->dresidual;
    if (pd > 0) { be->dropout_backward(a->dsub, d, NC, pd, site_seed(m, l, DROP_RESID_ATTN)); d = a->dsub; }
    if (v.sub_out[ADAPTER_ATTN]) {
        adapter_backward(m, l, ADAPTER_ATTN, a->dsub2, d, v.sub_out[ADAPTER_ATTN], N);
        d = a->dsub2;
    }
    block_linear_backward(m, LINEAR_ATTN_PROJ, l, a->datty, v.gbias[LINEAR_ATTN_PROJ], d, C, v.atty, N, C, C);
    lora_backward(m, l, SITE_O, a->datty, d, C, v.atty, N);
    if (v.att_bf16)
        be->attention_backward_bf16(a->dqkv, a->datt, a->datty, v.qkv_bf16, v.att_bf16, a->key_mask, B, Tx, C,
                                    NH, pd, site_seed(m, l, DROP_ATTN));
    else
        be->attention_backward(a->dqkv, a->datt, a->datty, v.qkv, v.att, a->key_mask, B, Tx, C, NH, pd,
                               site_seed(m, l, DROP_ATTN));
    block_linear_backward(m, LINEAR_QKV, l, a->dln, v.gbias[LINEAR_QKV], a->dqkv, 3 * C, v.ln1, N, C, 3 * C);
    for (LoraSite t = SITE_Q; t <= SITE_V; t++) lora_backward(m, l, t, a->dln, a->dqkv, 3 * C, v.ln1, N);
    be->layernorm_backward(a->dresidual, v.gln1w, v.gln1b, a->dln, v.x, v.ln1w, v.ln1_mean, v.ln1_rstd, N, C);
    if (m->prefix_kind == METHOD_PREFIX_LAYER) prefix_backward(m, a->dresidual, l);
}

void model_backward(Model *m) {
    LAB_ASSERT(m->has_loss);
    const Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, V = c->vocab_size, B = m->B, Tx = m->Tx;
    int N = B * Tx;
    size_t NC = (size_t)N * C;
    float pd = m->fopt.dropout, ls = m->fopt.label_smoothing;
    Activations *a = &m->a;
    float dloss = 1.0f / m->loss_count;

    // heads: dlogits overwrite logits; dlnf into dln
    if (m->mc.head == HEAD_LM) {
        be->crossentropy_backward(a->logits, V, a->lse, a->targets, N, V, ls, dloss);
        linear_backward(be, a->dln, G(m, m->p_wte), NULL, a->logits, V, a->lnf, P(m, m->p_wte), N, C, V, 0,
                        grad_beta(m, m->p_wte));
    } else {
        int K = m->mc.n_classes;
        if (m->mc.head == HEAD_CLS)
            be->crossentropy_backward(a->logits, K, a->lse, a->labels, B, K, ls, dloss);
        else
            be->to_device(a->logits, m->reg_dlogits_host, (size_t)B * sizeof(float));
        linear_backward(be, a->dpooled, G(m, m->p_score), NULL, a->logits, K, a->pooled, P(m, m->p_score), B, C, K, 0,
                        1.0f);
        be->zero(a->dln, NC * sizeof(float));
        be->scatter_add_rows(a->dln, a->dpooled, a->last_index, B, C);
    }
    be->zero(a->dresidual, NC * sizeof(float));
    be->layernorm_backward(a->dresidual, G(m, m->p_lnfw), G(m, m->p_lnfb), a->dln, a->residual + (size_t)L * NC,
                           P(m, m->p_lnfw), a->lnf_mean, a->lnf_rstd, N, C);

    for (int l = L - 1; l >= 0; l--) block_backward(m, l);
    if (pd > 0) be->dropout_backward(a->dresidual, a->dresidual, NC, pd, site_seed(m, 0, DROP_EMBED));
    if (m->prefix_kind == METHOD_PREFIX_EMBED) prefix_backward(m, a->dresidual, -1);
    if (G(m, m->p_wte) || G(m, m->p_wpe))
        be->encoder_backward(G(m, m->p_wte), G(m, m->p_wpe), a->dresidual, a->tokens, B, Tx, C);
    m->grads_fresh = 0;   // a further backward without model_zero_grad adds to these
}

// ----------------------------------------------------------------------------
// optimisation

const char *const SCHEDULE_NAMES[] = {"constant", "linear", "cosine"};
_Static_assert(sizeof SCHEDULE_NAMES / sizeof SCHEDULE_NAMES[0] == SCHEDULE_COUNT, "SCHEDULE_NAMES: one per Schedule");

void optim_defaults(OptimConfig *oc) {
    oc->lr = 2e-4f;
    oc->beta1 = 0.9f;
    oc->beta2 = 0.999f;
    oc->eps = 1e-8f;
    oc->weight_decay = 0.01f;
    oc->grad_clip = 1.0f;
    oc->schedule = SCHEDULE_LINEAR;
    oc->warmup = 0;
    oc->total_steps = 1;
}

float optim_lr(const OptimConfig *oc, int step) {
    if (oc->warmup > 0 && step < oc->warmup) return oc->lr * (float)(step + 1) / (float)oc->warmup;
    if (oc->schedule == SCHEDULE_CONSTANT) return oc->lr;
    int decay_steps = oc->total_steps - oc->warmup;
    if (decay_steps <= 0) return oc->lr;
    double frac = (double)(step - oc->warmup) / decay_steps;
    if (frac > 1.0) frac = 1.0;
    if (oc->schedule == SCHEDULE_LINEAR) return (float)(oc->lr * (1.0 - frac));
    return (float)(oc->lr * 0.5 * (1.0 + cos(3.14159265358979323846 * frac)));
}

float model_grad_norm(Model *m) {
    double ss = 0.0;
    if (m->n_grads) ss = m->be->sumsq(m->grads_mem, m->n_grads);
    return (float)sqrt(ss);
}

float model_update(Model *m, const OptimConfig *oc, int step) {
    float norm = model_grad_norm(m);
    if (oc->grad_clip > 0 && norm > oc->grad_clip && m->n_grads)
        m->be->scale(m->grads_mem, oc->grad_clip / norm, m->n_grads);
    float lr = optim_lr(oc, step);
    // One AdamW pass per run of trainable tensors that lie back to back in the weights and
    // gradient blocks with the same weight decay (FT: a handful of passes, not one per tensor).
    for (int i = 0; i < m->nparams; i++) {
        Param *p = &m->params[i];
        if (!p->trainable) continue;
        size_t n = p->numel;
        int j = i + 1;
        for (; j < m->nparams; j++) {
            const Param *q = &m->params[j];
            if (!q->trainable || q->decay != p->decay || q->data != p->data + n || q->grad != p->grad + n) break;
            n += q->numel;
        }
        m->be->adamw_update(p->data, p->grad, p->m, p->v, n, lr, oc->beta1, oc->beta2, oc->eps,
                            p->decay ? oc->weight_decay : 0.0f, step + 1);
        i = j - 1;
    }
    return norm;
}

// ----------------------------------------------------------------------------
// LoRA merge: W0 (d_out x d_in) += sign * (alpha / r) B A, per layer and target

static void lora_fold(Model *m, float sign) {
    const Backend *be = m->be;
    int r = m->mc.lora_rank;
    for (int t = 0; t < SITE_COUNT; t++) {
        if (m->p_lora_a[t] < 0) continue;
        float s = sign * m->mc.lora_alpha / r;
        for (int l = 0; l < m->cfg.n_layer; l++) {
            LoraSlice w;
            float *W = model_site_weight(m, (LoraSite)t, l, &w);
            int din = w.d_in, dout = w.d_out;
            const float *A = P(m, m->p_lora_a[t]) + (size_t)l * r * din;
            const float *Bm = P(m, m->p_lora_b[t]) + (size_t)l * dout * r;
            be->gemm(0, 0, dout, din, r, s, Bm, r, A, din, 1.0f, W, din);
        }
    }
}

int model_lora_merge(Model *m) {
    if (!m->lora_on || m->merged) return 0;
    if (m->n_bf16)
        return err_set("LoRA merge needs precision fp32: under bf16 the frozen base weights are stored in bf16 only");
    lora_fold(m, 1.0f);
    m->merged = 1;
    return 0;
}

void model_lora_unmerge(Model *m) {
    if (!m->lora_on || !m->merged) return;
    lora_fold(m, -1.0f);
    m->merged = 0;
}

int model_lora_merged(const Model *m) { return m->merged; }
