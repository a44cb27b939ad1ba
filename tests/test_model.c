// tests/test_model.c — the whole model under every method: gradients against central finite
// differences, frozen tensors untouched by training, LoRA merge/unmerge, parameter formulas,
// memory accounting, and a short training run on real text that must overfit.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <cmocka.h>

#include "core/errors.h"
#include "core/model.h"
#include "core/cpu/backend_cpu.h"
#include "core/rng.h"

enum { B = 2, T = 12 };

static ModelConfig nano(void) {
    ModelConfig c;
    assert_int_equal(model_preset("nano", &c), 0);
    return c;
}

static MethodConfig method(MethodKind kind) {
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = kind;
    mc.lora_rank = 4;
    mc.lora_alpha = 8;
    mc.lora_targets = TARGET_Q | TARGET_K | TARGET_V | TARGET_O | TARGET_FC | TARGET_PROJ;
    mc.adapter_rank = 4;
    mc.adapter_skip = 1;
    mc.prefix_lp = 3;
    mc.prefix_li = 2;
    return mc;
}

// A batch with rows of different lengths, some ignored targets, labels and values.
typedef struct { int tokens[B * T], targets[B * T], labels[B], lengths[B], prompts[B]; float values[B]; } TestBatch;
static Batch make_batch(TestBatch *tb, int V) {
    Rng r = rng_seeded(7);
    for (int i = 0; i < B * T; i++) tb->tokens[i] = (int)(rng_u64(&r) % (uint64_t)V);
    for (int i = 0; i < B * T; i++) tb->targets[i] = (i % 5 == 3) ? -1 : (int)(rng_u64(&r) % (uint64_t)V);
    tb->lengths[0] = T;
    tb->lengths[1] = T - 4;
    tb->prompts[0] = 5;   // prefix methods put their infix after these (and move a target there)
    tb->prompts[1] = 3;
    tb->labels[0] = 1;
    tb->labels[1] = 2;
    tb->values[0] = 0.5f;
    tb->values[1] = -1.25f;
    Batch bt = {B, T, tb->tokens, tb->targets, tb->labels, tb->values, tb->lengths, tb->prompts};
    return bt;
}

// Gives every tensor (including LoRA B and adapter up-projections, which start at zero)
// random non-zero values so that every gradient path is exercised.
static void randomize_all(Model *m, uint64_t seed) {
    Rng r = rng_seeded(seed);
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        float *h = xmalloc(p->numel * sizeof(float));
        int is_ln_w = strstr(p->name, "ln") && strstr(p->name, "weight");
        for (size_t k = 0; k < p->numel; k++) h[k] = (float)((is_ln_w ? 1.0 : 0.0) + 0.1 * rng_normal(&r));
        model_param_upload(m, p, 0, h, p->numel);
        free(h);
    }
}

static double loss_of(Model *m, const Batch *bt) {
    ForwardOptions fo = {0, 0.0f, 0.1f, 0};
    return model_forward(m, bt, &fo);
}

// Gradient checks against central finite differences (L(θ+εd) - L(θ-εd)) / 2ε, with the
// tolerance of a float32 loss: |numeric - analytic| <= ATOL + RTOL |numeric|.
//
// Directional: per trainable tensor, NDIRS directions d = (g/|g| + r/(2|r|)) / |...| with r
// a fresh Gaussian each time: random, yet at least 1/3 of |g| along the gradient (cos >= 1/3
// even in a 4-element tensor), so that |numeric| >= 10 ATOL (asserted) and the check cannot
// pass on two numbers near zero. ATOL 2e-4: a float32 loss near 5 moves by ~5e-7 per ulp,
// ~1e-4 after dividing by 2ε = 0.02 over two evaluations.
// Per element (check_elements): single coordinates, the largest |g| of each tensor and
// seeded random ones, for methods that have no PyTorch fixture.
enum { NDIRS = 3 };
#define ATOL 2e-4
#define RTOL 2e-2
static void check_gradients_mc(MethodConfig mc, HeadKind head);

static void check_gradients(MethodKind kind, HeadKind head) { check_gradients_mc(method(kind), head); }

// A model of mc with head, every tensor randomized, and its gradients on the test batch.
static Model *model_with_grads(MethodConfig mc, HeadKind head, Batch *bt, TestBatch *tb) {
    ModelConfig cfg = nano();
    mc.head = head;
    mc.n_classes = head == HEAD_CLS ? 3 : head == HEAD_REG ? 1 : 0;
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    assert_non_null(m);
    randomize_all(m, 11);
    *bt = make_batch(tb, cfg.vocab_size);
    ForwardOptions fo = {0, 0.0f, 0.1f, 0};
    model_zero_grad(m);
    model_forward(m, bt, &fo);
    model_backward(m);
    return m;
}

static void check_gradients_mc(MethodConfig mc, HeadKind head) {
    MethodKind kind = mc.kind;
    TestBatch tb;
    Batch bt;
    Model *m = model_with_grads(mc, head, &bt, &tb);
    int checked = 0;
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        if (!p->trainable) continue;
        float *g = xmalloc(p->numel * sizeof(float)), *w = xmalloc(p->numel * sizeof(float));
        double *d = xmalloc(p->numel * sizeof(double)), *r = xmalloc(p->numel * sizeof(double));
        memcpy(g, p->grad, p->numel * sizeof(float));
        memcpy(w, p->data, p->numel * sizeof(float));
        double gnorm = 0;
        for (size_t k = 0; k < p->numel; k++) gnorm += (double)g[k] * g[k];
        gnorm = sqrt(gnorm);
        if (!(gnorm > 0)) fail_msg("%s head %d: %s has a zero gradient", METHOD_NAMES[kind], head, p->name);
        Rng rng = rng_seeded(100 + i);
        for (int dir = 0; dir < NDIRS; dir++) {
            double rnorm = 0, norm = 0, analytic = 0;
            for (size_t k = 0; k < p->numel; k++) { r[k] = rng_normal(&rng); rnorm += r[k] * r[k]; }
            rnorm = sqrt(rnorm);
            for (size_t k = 0; k < p->numel; k++) { d[k] = g[k] / gnorm + 0.5 * r[k] / rnorm; norm += d[k] * d[k]; }
            norm = sqrt(norm);
            for (size_t k = 0; k < p->numel; k++) { d[k] /= norm; analytic += g[k] * d[k]; }
            const double eps = 1e-2;
            for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)(w[k] + eps * d[k]);
            double lp = loss_of(m, &bt);
            for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)(w[k] - eps * d[k]);
            double lm = loss_of(m, &bt);
            memcpy(p->data, w, p->numel * sizeof(float));
            double numeric = (lp - lm) / (2 * eps);
            double err = fabs(numeric - analytic), tol = ATOL + RTOL * fabs(numeric);
            if (err > tol)
                fail_msg("%s head %d: gradient of %s, direction %d: analytic %.6g, finite difference %.6g (|err| %.3g > tol %.3g)",
                         METHOD_NAMES[kind], head, p->name, dir, analytic, numeric, err, tol);
            if (fabs(numeric) < 10 * ATOL)
                fail_msg("%s head %d: %s, direction %d: |finite difference| %.3g is under 10x the tolerance %.3g: "
                         "the check would not tell a wrong gradient", METHOD_NAMES[kind], head, p->name, dir, fabs(numeric), ATOL);
            checked++;
        }
        free(g); free(w); free(d); free(r);
    }
    assert_true(checked > 0);
    model_free(m);
}

// Per-element finite differences: in each trainable tensor the NTOP coordinates of largest
// |g| (the largest must reach 10 ATOL) and NRAND seeded random ones.
enum { NTOP = 2, NRAND = 3 };
static void check_elements(MethodConfig mc, HeadKind head) {
    TestBatch tb;
    Batch bt;
    Model *m = model_with_grads(mc, head, &bt, &tb);
    int checked = 0;
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        if (!p->trainable) continue;
        size_t idx[NTOP + NRAND];
        for (int t = 0; t < NTOP; t++) {   // the largest |g|, then the next largest
            size_t best = 0;
            double bv = -1;
            for (size_t k = 0; k < p->numel; k++) {
                int taken = 0;
                for (int u = 0; u < t; u++) taken |= idx[u] == k;
                if (!taken && fabs(p->grad[k]) > bv) { bv = fabs(p->grad[k]); best = k; }
            }
            idx[t] = best;
        }
        Rng rng = rng_seeded(500 + i);
        for (int t = 0; t < NRAND; t++) idx[NTOP + t] = (size_t)(rng_u64(&rng) % p->numel);
        for (int t = 0; t < NTOP + NRAND && (size_t)t < p->numel + NRAND; t++) {
            size_t k = idx[t];
            float w = p->data[k];
            double analytic = p->grad[k];
            const double eps = 1e-2;
            p->data[k] = (float)(w + eps);
            double lp = loss_of(m, &bt);
            p->data[k] = (float)(w - eps);
            double lm = loss_of(m, &bt);
            p->data[k] = w;
            double numeric = (lp - lm) / (2 * eps), err = fabs(numeric - analytic), tol = ATOL + RTOL * fabs(numeric);
            if (err > tol)
                fail_msg("%s head %d: d loss / d %s[%zu]: analytic %.6g, finite difference %.6g (|err| %.3g > tol %.3g)",
                         METHOD_NAMES[mc.kind], head, p->name, k, analytic, numeric, err, tol);
            if (t == 0 && fabs(numeric) < 10 * ATOL)
                fail_msg("%s head %d: the largest element gradient of %s, %.3g, is under 10x the tolerance %.3g",
                         METHOD_NAMES[mc.kind], head, p->name, fabs(numeric), ATOL);
            checked++;
        }
    }
    assert_true(checked > 0);
    model_free(m);
}

// Every method without a PyTorch fixture (tests/test_parity.c covers FT and LoRA), the
// combinations and the regression head, element by element.
static void test_grad_elements(void **s) {
    (void)s;
    check_elements(method(METHOD_BITFIT), HEAD_LM);
    check_elements(method(METHOD_PREFIX_EMBED), HEAD_CLS);
    check_elements(method(METHOD_PREFIX_LAYER), HEAD_LM);
    check_elements(method(METHOD_ADAPTER_L), HEAD_LM);
    check_elements(method(METHOD_ADAPTER_P), HEAD_CLS);
    check_elements(method(METHOD_ADAPTER_D), HEAD_LM);
    check_elements(method(METHOD_FT), HEAD_REG);
    check_elements(method(METHOD_LORA), HEAD_REG);
    MethodConfig mc = method(METHOD_LORA);
    mc.combine = METHOD_BIT(METHOD_PREFIX_EMBED);
    check_elements(mc, HEAD_LM);
    mc.combine = METHOD_BIT(METHOD_PREFIX_LAYER);
    check_elements(mc, HEAD_CLS);
    mc.combine = METHOD_BIT(METHOD_BITFIT);
    check_elements(mc, HEAD_LM);
    mc = method(METHOD_BITFIT);
    mc.combine = METHOD_BIT(METHOD_LORA);
    check_elements(mc, HEAD_CLS);
}

static void test_grad_ft_lm(void **s) { (void)s; check_gradients(METHOD_FT, HEAD_LM); }
static void test_grad_ft_cls(void **s) { (void)s; check_gradients(METHOD_FT, HEAD_CLS); }
static void test_grad_ft_reg(void **s) { (void)s; check_gradients(METHOD_FT, HEAD_REG); }
static void test_grad_bitfit(void **s) { (void)s; check_gradients(METHOD_BITFIT, HEAD_LM); }
static void test_grad_lora(void **s) { (void)s; check_gradients(METHOD_LORA, HEAD_LM); check_gradients(METHOD_LORA, HEAD_CLS); }
static void test_grad_prefix_embed(void **s) { (void)s; check_gradients(METHOD_PREFIX_EMBED, HEAD_LM); check_gradients(METHOD_PREFIX_EMBED, HEAD_CLS); }
static void test_grad_prefix_layer(void **s) { (void)s; check_gradients(METHOD_PREFIX_LAYER, HEAD_LM); }
static void test_grad_adapters(void **s) {
    (void)s;
    check_gradients(METHOD_ADAPTER_H, HEAD_LM);
    check_gradients(METHOD_ADAPTER_L, HEAD_LM);
    check_gradients(METHOD_ADAPTER_P, HEAD_CLS);
    check_gradients(METHOD_ADAPTER_D, HEAD_LM);
}

// The paper's combinations: LoRA with PreEmbed, PreLayer and BitFit (Table 15's LoRA+PE,
// LoRA+PL), every trainable tensor checked.
static void test_grad_combinations(void **s) {
    (void)s;
    MethodConfig mc = method(METHOD_LORA);
    mc.combine = METHOD_BIT(METHOD_PREFIX_EMBED);
    check_gradients_mc(mc, HEAD_LM);
    mc.combine = METHOD_BIT(METHOD_PREFIX_LAYER);
    check_gradients_mc(mc, HEAD_CLS);
    mc.combine = METHOD_BIT(METHOD_BITFIT);
    check_gradients_mc(mc, HEAD_LM);
    mc = method(METHOD_BITFIT);   // LoRA added to another method
    mc.combine = METHOD_BIT(METHOD_LORA);
    check_gradients_mc(mc, HEAD_CLS);
}

static void test_grad_lora_dropout(void **s) {
    (void)s;
    // LoRA dropout: the backward recomputes the stateless mask; check against finite
    // differences of the same (seeded) dropped forward.
    ModelConfig cfg = nano();
    MethodConfig mc = method(METHOD_LORA);
    mc.lora_dropout = 0.3f;
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    randomize_all(m, 5);
    TestBatch tb;
    Batch bt = make_batch(&tb, cfg.vocab_size);
    ForwardOptions fo = {1, 0.2f, 0.0f, 42};
    model_zero_grad(m);
    model_forward(m, &bt, &fo);
    model_backward(m);
    Param *p = model_find_param(m, "lora.v.A");
    assert_non_null(p);
    double analytic = 0;
    const double eps = 1e-2;
    float *w = xmalloc(p->numel * sizeof(float));
    memcpy(w, p->data, p->numel * sizeof(float));
    for (size_t k = 0; k < p->numel; k++) analytic += p->grad[k] * (k % 3 == 0 ? 1.0 : -0.5);
    for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)(w[k] + eps * (k % 3 == 0 ? 1.0 : -0.5));
    double lp = model_forward(m, &bt, &fo);
    for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)(w[k] - eps * (k % 3 == 0 ? 1.0 : -0.5));
    double lm = model_forward(m, &bt, &fo);
    double numeric = (lp - lm) / (2 * eps);
    if (fabs(numeric - analytic) > 2e-3 + 2e-2 * fabs(numeric))
        fail_msg("dropout gradient: analytic %.6g numeric %.6g", analytic, numeric);
    free(w);
    model_free(m);
}

// Training changes only trainable tensors; frozen ones stay bit-identical.
static void check_frozen(MethodKind kind, Precision precision) {
    ModelConfig cfg = nano();
    MethodConfig mc = method(kind);
    mc.precision = precision;
    mc.head = HEAD_CLS;
    mc.n_classes = 3;
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    model_init_random(m, 3);
    randomize_all(m, 3);
    int n = model_num_params(m);
    float **before = xcalloc((size_t)n, sizeof(float *));
    for (int i = 0; i < n; i++) {
        Param *p = model_param(m, i);
        before[i] = xmalloc(p->numel * sizeof(float));
        model_param_download(m, p, 0, before[i], p->numel);
    }
    TestBatch tb;
    Batch bt = make_batch(&tb, cfg.vocab_size);
    OptimConfig oc;
    optim_defaults(&oc);
    oc.lr = 1e-2f;
    oc.total_steps = 3;
    for (int step = 0; step < 3; step++) {
        ForwardOptions fo = {1, 0.1f, 0.0f, (uint64_t)step};
        model_zero_grad(m);
        model_forward(m, &bt, &fo);
        model_backward(m);
        model_update(m, &oc, step);
    }
    int changed_trainable = 0;
    for (int i = 0; i < n; i++) {
        Param *p = model_param(m, i);
        float *after = xmalloc(p->numel * sizeof(float));
        model_param_download(m, p, 0, after, p->numel);
        int same = !memcmp(before[i], after, p->numel * sizeof(float));
        free(after);
        if (!p->trainable && !same) fail_msg("%s: frozen tensor %s changed", METHOD_NAMES[kind], p->name);
        if (p->trainable && (p->grad == NULL || p->m == NULL)) fail_msg("%s has no gradient memory", p->name);
        if (!p->trainable && (p->grad || p->m || p->v)) fail_msg("frozen %s has gradient memory", p->name);
        if (kind == METHOD_BITFIT && p->trainable && p->group == PARAM_BASE && !strstr(p->name, "bias"))
            fail_msg("bitfit: %s is trainable but is not a bias", p->name);
        changed_trainable += p->trainable && !same;
        free(before[i]);
    }
    free(before);
    assert_true(changed_trainable > 0);
    // memory: gradients and moments exist for trainable tensors only
    ParamCounts pc = model_param_counts(m);
    MemoryReport mr = model_memory(m);
    assert_int_equal(mr.grads, (pc.trainable + pc.head) * sizeof(float));
    assert_int_equal(mr.optimizer, 2 * mr.grads);
    model_free(m);
}

static void test_frozen(void **s) {
    (void)s;
    MethodKind kinds[] = {METHOD_BITFIT, METHOD_LORA, METHOD_PREFIX_EMBED, METHOD_PREFIX_LAYER,
                          METHOD_ADAPTER_H, METHOD_ADAPTER_L, METHOD_ADAPTER_P, METHOD_ADAPTER_D};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) check_frozen(kinds[i], PRECISION_FP32);
    check_frozen(METHOD_LORA, PRECISION_BF16);     // bf16-only base weights
    check_frozen(METHOD_BITFIT, PRECISION_BF16);
}

static void test_merge(void **s) {
    (void)s;
    ModelConfig cfg = nano();
    MethodConfig mc = method(METHOD_LORA);
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    randomize_all(m, 9);
    TestBatch tb;
    Batch bt = make_batch(&tb, cfg.vocab_size);
    size_t n = (size_t)B * T * cfg.vocab_size;
    float *a = xmalloc(n * sizeof(float)), *b = xmalloc(n * sizeof(float)), *c = xmalloc(n * sizeof(float));
    Param *w = model_find_param(m, "h.attn.c_attn.weight");
    float *w0 = xmalloc(w->numel * sizeof(float));
    memcpy(w0, w->data, w->numel * sizeof(float));
    loss_of(m, &bt);
    model_copy_logits(m, a, n);
    model_lora_merge(m);
    assert_true(model_lora_merged(m));
    assert_true(memcmp(w0, w->data, w->numel * sizeof(float)) != 0);
    loss_of(m, &bt);
    model_copy_logits(m, b, n);
    model_lora_unmerge(m);
    loss_of(m, &bt);
    model_copy_logits(m, c, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double scale = fmax(1.0, fabs(a[i]));
        worst = fmax(worst, fabs(a[i] - b[i]) / scale);
        worst = fmax(worst, fabs(a[i] - c[i]) / scale);
    }
    if (worst > 1e-5) fail_msg("merged/unmerged logits differ by %.3g relative (> 1e-5)", worst);
    double wworst = 0;
    for (size_t i = 0; i < w->numel; i++) wworst = fmax(wworst, fabs(w0[i] - w->data[i]));
    if (wworst > 1e-5) fail_msg("unmerge did not restore W0 (max diff %.3g)", wworst);
    free(a); free(b); free(c); free(w0);
    model_free(m);
}

static size_t trainable_of(const char *preset, const MethodConfig *mc) {
    ModelConfig cfg;
    assert_int_equal(model_preset(preset, &cfg), 0);
    ParamCounts pc;
    assert_int_equal(model_count_params(&cfg, mc, &pc), 0);
    return pc.trainable;
}

static void test_param_formulas(void **s) {
    (void)s;
    MethodConfig mc;
    method_defaults(&mc);
    // LoRA: 2 x L^ x d_model x r. gpt2-medium, r = 4 on q, v: 2 x 48 x 1024 x 4.
    mc.kind = METHOD_LORA; mc.lora_rank = 4; mc.lora_targets = TARGET_Q | TARGET_V;
    assert_int_equal(trainable_of("gpt2-medium", &mc), 393216);
    // GPT-3 175B shape: 96 layers, d_model 12288, r_q = r_v = 4: 2 x 192 x 12288 x 4.
    ModelConfig g3 = {96, 96, 12288, 2048, 50257, 1e-5f};
    ParamCounts pc;
    assert_int_equal(model_count_params(&g3, &mc, &pc), 0);
    assert_int_equal(pc.trainable, 18874368);
    // and its full size: 12 L d^2 + 13 L d + (V + n_ctx) d + 2 d
    size_t L = 96, d = 12288;
    assert_int_equal(pc.total - pc.trainable, 12 * L * d * d + 13 * L * d + (50257 + 2048) * d + 2 * d);
    // Adapters: L^_Adpt (2 d r + r + d) + 2 L^_LN d.
    mc.kind = METHOD_ADAPTER_P; mc.adapter_rank = 8;   // one adapter per layer, no LayerNorm
    assert_int_equal(trainable_of("gpt2-medium", &mc), 24 * (2 * 1024 * 8 + 8 + 1024));
    mc.kind = METHOD_ADAPTER_L;                        // + its LayerNorm per layer
    assert_int_equal(trainable_of("gpt2-medium", &mc), 24 * (2 * 1024 * 8 + 8 + 1024) + 2 * 24 * 1024);
    mc.kind = METHOD_ADAPTER_H;                        // two per layer + ln_1, ln_2 of every layer
    assert_int_equal(trainable_of("gpt2-medium", &mc), 48 * (2 * 1024 * 8 + 8 + 1024) + 2 * 48 * 1024);
    mc.kind = METHOD_ADAPTER_D; mc.adapter_skip = 6;   // none in the lowest 6 layers
    assert_int_equal(trainable_of("gpt2-medium", &mc), 36 * (2 * 1024 * 8 + 8 + 1024) + 2 * 48 * 1024);
    // PreEmbed d (lp + li); PreLayer L d (lp + li).
    mc.kind = METHOD_PREFIX_EMBED; mc.prefix_lp = 256; mc.prefix_li = 8;
    assert_int_equal(trainable_of("gpt2-medium", &mc), 1024 * 264);
    mc.kind = METHOD_PREFIX_LAYER; mc.prefix_lp = 8; mc.prefix_li = 8;
    assert_int_equal(trainable_of("gpt2-medium", &mc), 24 * 1024 * 16);
    // BitFit: every bias. Per layer: c_attn 3d, c_proj d, c_fc 4d, mlp c_proj d, ln_1 d, ln_2 d; + ln_f d.
    mc.kind = METHOD_BITFIT;
    assert_int_equal(trainable_of("gpt2-medium", &mc), 24 * 11 * 1024 + 1024);
    // FT: everything; gpt2 (124M) has 124,439,808 parameters.
    mc.kind = METHOD_FT;
    assert_int_equal(trainable_of("gpt2", &mc), 124439808);
    // heads are counted apart
    mc.head = HEAD_CLS; mc.n_classes = 3;
    ModelConfig g2;
    model_preset("gpt2", &g2);
    assert_int_equal(model_count_params(&g2, &mc, &pc), 0);
    assert_int_equal(pc.head, 3 * 768);
    assert_int_equal(pc.trainable, 124439808);
}

// The method table: each entry at its own index, and each method's parameter formula equal to
// what the registry creates, on every preset (method alone, heads apart).
static void test_method_table(void **s) {
    (void)s;
    for (int k = 0; k < METHOD_COUNT; k++) {
        assert_int_equal(METHODS[k].kind, k);
        assert_non_null(METHOD_NAMES[k]);
        assert_non_null(METHODS[k].trainable);
    }
    assert_null(METHOD_NAMES[METHOD_COUNT]);
    for (int p = 0; MODEL_PRESET_NAMES[p]; p++) {
        ModelConfig cfg;
        assert_int_equal(model_preset(MODEL_PRESET_NAMES[p], &cfg), 0);
        for (int k = 0; k < METHOD_COUNT; k++) {
            MethodConfig mc = method((MethodKind)k);
            mc.lora_targets = TARGET_Q | TARGET_V | TARGET_FC | TARGET_PROJ;
            mc.head = HEAD_CLS;
            mc.n_classes = 2;
            ParamCounts pc;
            assert_int_equal(model_count_params(&cfg, &mc, &pc), 0);
            size_t want = METHODS[k].trainable(&cfg, &mc);
            if (pc.trainable != want)
                fail_msg("%s on %s: the registry trains %zu parameters, METHODS says %zu", METHOD_NAMES[k],
                         MODEL_PRESET_NAMES[p], pc.trainable, want);
        }
    }
    // predicates over combinations
    MethodConfig mc = method(METHOD_BITFIT);
    assert_false(method_uses_lora(&mc));
    assert_int_equal(method_prefix_len(&mc), 0);
    mc.combine = METHOD_BIT(METHOD_LORA) | METHOD_BIT(METHOD_PREFIX_LAYER);
    assert_true(method_uses_lora(&mc));
    assert_int_equal(method_prefix_kind(&mc), METHOD_PREFIX_LAYER);
    assert_int_equal(method_prefix_len(&mc), 5);
    assert_true(method_adds(&mc) & TRAINS_BIASES);
    assert_false(method_is_adapter(&mc));
    assert_string_equal(method_merge_refusal(&mc), METHODS[METHOD_PREFIX_LAYER].merge_refusal);
    mc = method(METHOD_ADAPTER_D);
    assert_true(method_is_adapter(&mc));
    assert_true(method_reads(&mc) & READS_ADAPTER_SKIP);
    assert_null(method_merge_refusal(&(MethodConfig){.kind = METHOD_LORA}));
}

// LoRA sites: each names its rows of the block linear it adapts, and model_site_weight points
// there in the stacked weight.
static void test_lora_sites(void **s) {
    (void)s;
    ModelConfig cfg = nano();
    int C = cfg.n_embd;
    assert_int_equal(TARGET_Q | TARGET_K | TARGET_V | TARGET_O | TARGET_FC | TARGET_PROJ, (1 << SITE_COUNT) - 1);
    static const struct { LoraSite s; BlockLinear linear; int d_out, d_in, row; } want[SITE_COUNT] = {
        {SITE_Q, LINEAR_QKV, 64, 64, 0},        {SITE_K, LINEAR_QKV, 64, 64, 64},
        {SITE_V, LINEAR_QKV, 64, 64, 128},      {SITE_O, LINEAR_ATTN_PROJ, 64, 64, 0},
        {SITE_FC, LINEAR_FC, 256, 64, 0},       {SITE_PROJ, LINEAR_MLP_PROJ, 64, 256, 0},
    };
    MethodConfig mc = method(METHOD_LORA);
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    assert_non_null(m);
    for (int t = 0; t < SITE_COUNT; t++) {
        LoraSlice w = lora_site_slice(&cfg, want[t].s, 1);
        assert_int_equal(w.linear, want[t].linear);
        assert_int_equal(w.d_out, want[t].d_out);
        assert_int_equal(w.d_in, want[t].d_in);
        assert_int_equal(w.row, want[t].row);
        Param *p = model_find_param(m, BLOCK_LINEAR_NAMES[w.linear]);
        assert_non_null(p);
        size_t layer = (size_t)p->shape[1] * p->shape[2];
        assert_int_equal(w.offset, layer + (size_t)w.row * p->shape[2]);
        LoraSlice got;
        assert_ptr_equal(model_site_weight(m, want[t].s, 1, &got), p->data + layer + (size_t)w.row * C);
        assert_int_equal(got.offset, w.offset);
    }
    model_free(m);
}

static void test_bad_methods(void **s) {
    (void)s;
    ModelConfig cfg = nano();
    MethodConfig mc = method(METHOD_LORA);
    ParamCounts pc;
    mc.lora_rank = 0;
    assert_int_equal(model_count_params(&cfg, &mc, &pc), -1);
    assert_non_null(strstr(err_msg(), "lora.rank must be > 0"));
    mc.lora_rank = 65;
    assert_int_equal(model_count_params(&cfg, &mc, &pc), -1);
    assert_non_null(strstr(err_msg(), "larger than"));
    mc = method(METHOD_PREFIX_EMBED);
    mc.prefix_lp = 60; mc.prefix_li = 4;
    assert_int_equal(model_count_params(&cfg, &mc, &pc), -1);
    assert_non_null(strstr(err_msg(), "must be < n_ctx"));
}

static void test_schedules(void **s) {
    (void)s;
    OptimConfig oc;
    optim_defaults(&oc);
    oc.lr = 1.0f; oc.warmup = 10; oc.total_steps = 110;
    oc.schedule = SCHEDULE_LINEAR;
    assert_float_equal(optim_lr(&oc, 0), 0.1, 1e-6);
    assert_float_equal(optim_lr(&oc, 9), 1.0, 1e-6);
    assert_float_equal(optim_lr(&oc, 60), 0.5, 1e-6);
    assert_float_equal(optim_lr(&oc, 110), 0.0, 1e-6);
    oc.schedule = SCHEDULE_COSINE;
    assert_float_equal(optim_lr(&oc, 60), 0.5, 1e-6);
    assert_float_equal(optim_lr(&oc, 35), 0.5 * (1 + cos(M_PI * 0.25)), 1e-6);
    oc.schedule = SCHEDULE_CONSTANT;
    assert_float_equal(optim_lr(&oc, 100), 1.0, 1e-6);
}

static void test_grad_clip(void **s) {
    (void)s;
    ModelConfig cfg = nano();
    MethodConfig mc = method(METHOD_FT);
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    model_init_random(m, 1);
    TestBatch tb;
    Batch bt = make_batch(&tb, cfg.vocab_size);
    model_zero_grad(m);
    loss_of(m, &bt);
    model_backward(m);
    float norm = model_grad_norm(m);
    OptimConfig oc;
    optim_defaults(&oc);
    oc.grad_clip = norm / 4;
    oc.lr = 0.0f;   // only the clipping is observed
    float before = model_update(m, &oc, 0);
    assert_float_equal(before, norm, 1e-6 * norm);
    assert_float_equal(model_grad_norm(m), norm / 4, 1e-4 * norm);
    model_free(m);
}

// A short run on real text overfits: nano, one repeated paragraph, loss must fall from
// ~ln(260) = 5.56 to below 1.0 within 150 steps (measured: 0.003).
static void check_overfit_text(Precision precision) {
    static const char text[] =
        "Call me Ishmael. Some years ago - never mind how long precisely - having little or no money "
        "in my purse, and nothing particular to interest me on shore, I thought I would sail about a "
        "little and see the watery part of the world.";
    ModelConfig cfg = nano();
    MethodConfig mc = method(METHOD_FT);
    mc.precision = precision;
    Model *m = model_create(backend_cpu(), &cfg, &mc);
    model_init_random(m, 1);
    enum { TB = 4, TT = 48 };
    int tok[TB * TT], tgt[TB * TT];
    size_t n = strlen(text);
    for (int b = 0; b < TB; b++)
        for (int t = 0; t < TT; t++) {
            size_t at = (size_t)(b * 37 + t) % (n - 1);
            tok[b * TT + t] = (unsigned char)text[at];
            tgt[b * TT + t] = (unsigned char)text[at + 1];
        }
    Batch bt = {TB, TT, tok, tgt, NULL, NULL, NULL, NULL};
    OptimConfig oc;
    optim_defaults(&oc);
    oc.lr = 3e-3f; oc.schedule = SCHEDULE_CONSTANT; oc.weight_decay = 0.0f;
    float first = 0, last = 0;
    for (int step = 0; step < 150; step++) {
        ForwardOptions fo = {1, 0.0f, 0.0f, (uint64_t)step};
        model_zero_grad(m);
        last = model_forward(m, &bt, &fo);
        if (step == 0) first = last;
        model_backward(m);
        model_update(m, &oc, step);
    }
    print_message("overfit (%s): loss %.3f -> %.3f\n", PRECISION_NAMES[precision], first, last);
    assert_true(first > 5.0f);
    assert_true(last < 1.0f);
    model_free(m);
}

static void test_overfit_text(void **s) { (void)s; check_overfit_text(PRECISION_FP32); }

// bf16 training follows the fp32 loss curve: the same init, data and steps (micro, 80 AdamW
// steps on one paragraph; FT at lr 3e-4, LoRA on every target at r=4 and lr 3e-3). Stated
// tolerance: at every step the bf16 loss is within 0.05 nats + 2 % of the fp32 loss (bf16's
// 8-bit mantissa, compounded over the steps; the worst step is printed: 0.41 of it for FT,
// 0.65 for LoRA when written), and both curves fall by more than a quarter.
static void check_bf16_curve(MethodKind kind) {
    static const char text[] =
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
        "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity.";
    ModelConfig cfg;
    assert_int_equal(model_preset("micro", &cfg), 0);
    enum { TB = 4, TT = 64, STEPS = 80 };
    int tok[TB * TT], tgt[TB * TT];
    size_t n = strlen(text);
    for (int b = 0; b < TB; b++)
        for (int t = 0; t < TT; t++) {
            size_t at = (size_t)(b * 29 + t) % (n - 1);
            tok[b * TT + t] = (unsigned char)text[at];
            tgt[b * TT + t] = (unsigned char)text[at + 1];
        }
    Batch bt = {TB, TT, tok, tgt, NULL, NULL, NULL, NULL};
    float loss[2][STEPS];
    for (int k = 0; k < 2; k++) {
        MethodConfig mc = method(kind);
        mc.precision = k ? PRECISION_BF16 : PRECISION_FP32;
        Model *m = model_create(backend_cpu(), &cfg, &mc);
        model_init_random(m, 3);
        OptimConfig oc;
        optim_defaults(&oc);
        oc.lr = kind == METHOD_LORA ? 3e-3f : 3e-4f;
        oc.schedule = SCHEDULE_CONSTANT;
        for (int step = 0; step < STEPS; step++) {
            ForwardOptions fo = {1, 0.0f, 0.0f, (uint64_t)step};
            model_zero_grad(m);
            loss[k][step] = model_forward(m, &bt, &fo);
            model_backward(m);
            model_update(m, &oc, step);
        }
        model_free(m);
    }
    double worst = 0;
    int worst_step = 0;
    for (int s = 0; s < STEPS; s++) {
        double d = fabs((double)loss[1][s] - loss[0][s]), tol = 0.05 + 0.02 * loss[0][s];
        if (d / tol > worst) { worst = d / tol; worst_step = s; }
    }
    print_message("%s bf16 curve: fp32 %.4f -> %.4f, bf16 %.4f -> %.4f; worst step %d: %.4f vs %.4f "
                  "(%.2f of the tolerance)\n", METHOD_NAMES[kind], loss[0][0], loss[0][STEPS - 1],
                  loss[1][0], loss[1][STEPS - 1], worst_step, loss[1][worst_step], loss[0][worst_step], worst);
    assert_true(worst <= 1.0);
    assert_true(loss[0][STEPS - 1] < 0.75f * loss[0][0] && loss[1][STEPS - 1] < 0.75f * loss[1][0]);
}

// A training step touches no fresh memory once the first steps have seen every shape: no
// buffer is allocated (and returned to the system) inside a step, oneDNN's included. Large
// allocations come from mmap and fault their pages in on first use, so page faults over five
// steps catch them (one 2048 x 128 activation buffer alone would be 256 faults per step).
// oneDNN's execute still makes a few hundred small C++ allocations (at most 304 bytes) per
// step for its own bookkeeping, which malloc recycles; AddressSanitizer's quarantine hands out
// fresh memory for each, so the check does not apply under it.
static void test_step_touches_no_new_memory(void **s) {
    (void)s;
#ifdef __SANITIZE_ADDRESS__
    skip();
#endif
    ModelConfig cfg;
    assert_int_equal(model_preset("micro", &cfg), 0);
    for (int prec = 0; prec < 2; prec++) {
        MethodConfig mc = method(METHOD_FT);
        mc.precision = prec ? PRECISION_BF16 : PRECISION_FP32;
        Model *m = model_create(backend_cpu(), &cfg, &mc);
        model_init_random(m, 1);
        enum { TB = 16, TT = 128 };
        static int tok[TB * TT], tgt[TB * TT];
        for (int i = 0; i < TB * TT; i++) { tok[i] = (i * 7) % 256; tgt[i] = (i * 11) % 256; }
        Batch bt = {TB, TT, tok, tgt, NULL, NULL, NULL, NULL};
        OptimConfig oc;
        optim_defaults(&oc);
        long before = 0;
        for (int step = 0; step < 7; step++) {
            if (step == 2) {
                struct rusage ru;
                getrusage(RUSAGE_SELF, &ru);
                before = ru.ru_minflt;
            }
            ForwardOptions fo = {1, 0.1f, 0.0f, (uint64_t)step};
            model_zero_grad(m);
            model_forward(m, &bt, &fo);
            model_backward(m);
            model_update(m, &oc, step);
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        print_message("%s: %ld page faults in 5 steps\n", PRECISION_NAMES[mc.precision], ru.ru_minflt - before);
        assert_true(ru.ru_minflt - before < 64);
        model_free(m);
    }
}

// The trainable gradients, concatenated (a fresh copy).
static float *copy_grads(Model *m, size_t *n) {
    *n = 0;
    for (int i = 0; i < model_num_params(m); i++)
        if (model_param(m, i)->trainable) *n += model_param(m, i)->numel;
    float *g = xmalloc(*n * sizeof(float)), *at = g;
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        if (!p->trainable) continue;
        memcpy(at, p->grad, p->numel * sizeof(float));
        at += p->numel;
    }
    return g;
}

// model_zero_grad leaves the gradients a backward overwrites (the block linears', the tied
// wte's under the LM head) as they are. After a step has filled every gradient, zero_grad and
// backward give that step's gradients again, bit for bit; a backward without zero_grad adds to
// them (a forward and backward again: twice the gradients). FT, LM and classification heads,
// fp32 and bf16.
static void test_zero_grad_then_backward(void **s) {
    (void)s;
    for (int prec = 0; prec < 2; prec++)
        for (int cls = 0; cls < 2; cls++) {
            MethodConfig mc = method(METHOD_FT);
            mc.precision = prec ? PRECISION_BF16 : PRECISION_FP32;
            TestBatch tb;
            Batch bt;
            Model *m = model_with_grads(mc, cls ? HEAD_CLS : HEAD_LM, &bt, &tb);
            ForwardOptions fo = {0, 0.0f, 0.1f, 0};   // model_with_grads' options
            size_t n, n2, n3;
            float *g1 = copy_grads(m, &n);
            model_zero_grad(m);
            model_forward(m, &bt, &fo);
            model_backward(m);
            float *g2 = copy_grads(m, &n2);
            assert_int_equal(n2, n);
            for (size_t i = 0; i < n; i++)
                if (memcmp(&g1[i], &g2[i], sizeof(float)))
                    fail_msg("%s head %d: grad[%zu] %g after zero_grad + backward, first backward %g",
                             PRECISION_NAMES[mc.precision], cls, i, g2[i], g1[i]);
            model_forward(m, &bt, &fo);   // the backward consumed the logits
            model_backward(m);
            float *g3 = copy_grads(m, &n3);
            // The tied wte adds two terms per backward (the LM head's, the embedding's): its
            // ((a + b) + a) + b is 2 (a + b) only to within the rounding of terms that may
            // nearly cancel, so the bound also scales with the largest gradient.
            float gmax = 0.0f;
            for (size_t i = 0; i < n; i++) gmax = fmaxf(gmax, fabsf(g1[i]));
            for (size_t i = 0; i < n; i++)
                if (!(fabsf(g3[i] - 2.0f * g1[i]) <= 1e-6f * (2.0f * fabsf(g1[i]) + gmax) + 1e-30f))
                    fail_msg("%s head %d: grad[%zu] %g after a second backward, expected %g",
                             PRECISION_NAMES[mc.precision], cls, i, g3[i], 2.0f * g1[i]);
            free(g1); free(g2); free(g3);
            model_free(m);
        }
}

static void test_bf16_loss_curve(void **s) {
    (void)s;
    check_bf16_curve(METHOD_FT);
    check_bf16_curve(METHOD_LORA);
}
static void test_overfit_text_bf16(void **s) { (void)s; check_overfit_text(PRECISION_BF16); }

// bf16 mixed precision against fp32 on the same weights: loss and every gradient agree to
// bf16's resolution (8 mantissa bits: ~0.4 % per rounded operand) but are not identical;
// the weights block shrinks by 2 bytes per frozen block-linear element (LoRA) and grows by
// 2 per trainable one (FT: fp32 master + bf16 copy); a merge is refused. With dropout both
// precisions draw the same masks (they hash the element's index).
static void check_bf16_vs_fp32(MethodConfig mc0, float dropout) {
    MethodKind kind = mc0.kind;
    ModelConfig cfg = nano();
    TestBatch tb;
    Batch bt = make_batch(&tb, cfg.vocab_size);
    Model *m[2];
    double loss[2];
    for (int k = 0; k < 2; k++) {
        MethodConfig mc = mc0;
        mc.precision = k ? PRECISION_BF16 : PRECISION_FP32;
        m[k] = model_create(backend_cpu(), &cfg, &mc);
        randomize_all(m[k], 21);
        ForwardOptions fo = {dropout > 0.0f, dropout, 0.1f, 7};
        model_zero_grad(m[k]);
        loss[k] = model_forward(m[k], &bt, &fo);
        model_backward(m[k]);
    }
    double rel = fabs(loss[1] - loss[0]) / fabs(loss[0]);
    print_message("%s bf16, dropout %.1f: loss %.6f vs fp32 %.6f (rel %.2e)\n", METHOD_NAMES[kind], dropout,
                  loss[1], loss[0], rel);
    assert_true(rel > 0.0 && rel < 1e-2);
    double worst = 0;
    for (int i = 0; i < model_num_params(m[0]); i++) {
        Param *p = model_param(m[0], i), *q = model_param(m[1], i);
        if (!p->trainable) continue;
        double d2 = 0, n2 = 0;
        for (size_t e = 0; e < p->numel; e++) {
            d2 += ((double)q->grad[e] - p->grad[e]) * ((double)q->grad[e] - p->grad[e]);
            n2 += (double)p->grad[e] * p->grad[e];
        }
        if (n2 > 0 && sqrt(d2 / n2) > worst) worst = sqrt(d2 / n2);
        if (!(sqrt(d2) <= 3e-2 * sqrt(n2)))
            fail_msg("%s bf16: gradient of %s differs from fp32 by %.3g relative", METHOD_NAMES[kind], p->name, sqrt(d2 / n2));
    }
    print_message("%s bf16: worst relative gradient difference %.2e\n", METHOD_NAMES[kind], worst);
    size_t L = cfg.n_layer, C = cfg.n_embd, linear = L * 12 * C * C;   // c_attn 3C^2 + c_proj C^2 + MLP 8C^2
    MemoryReport r32 = model_memory(m[0]), r16 = model_memory(m[1]);
    if (kind == METHOD_FT) assert_int_equal(r16.weights, r32.weights + 2 * linear);
    else assert_int_equal(r16.weights, r32.weights - 2 * linear);
    assert_int_equal(r16.grads, r32.grads);
    if (kind == METHOD_LORA) {
        assert_int_equal(model_lora_merge(m[1]), -1);
        assert_string_equal(err_msg(), "LoRA merge needs precision fp32: under bf16 the frozen base weights are stored in bf16 only");
        assert_int_equal(model_lora_merged(m[1]), 0);
    }
    model_free(m[0]);
    model_free(m[1]);
}

static void test_bf16_vs_fp32(void **s) {
    (void)s;
    check_bf16_vs_fp32(method(METHOD_LORA), 0.0f);   // its branches on bf16 inputs
    MethodConfig lora_drop = method(METHOD_LORA);
    lora_drop.lora_dropout = 0.1f;                   // its branches on fp32 inputs, dropped
    check_bf16_vs_fp32(lora_drop, 0.1f);
    check_bf16_vs_fp32(method(METHOD_FT), 0.0f);
    check_bf16_vs_fp32(method(METHOD_FT), 0.1f);    // attention and residual dropout in the bf16 backward
    check_bf16_vs_fp32(method(METHOD_ADAPTER_H), 0.0f);
    check_bf16_vs_fp32(method(METHOD_PREFIX_LAYER), 0.0f);
}

// The backend's sgemm flop counter (what `bench` bounds tokens/s with) against the count by
// hand: per layer the four linears 24 N C^2 (N = B*T rows) and attention 4 B H T^2 hs, then
// the LM head 2 N V C. Backward repeats every product once for the input gradient and once
// for the weight gradient (FT: 2x forward); frozen weights (BitFit) get no weight product.
static double gemm_flops(void) {
    double f;
    backend_cpu()->gemm_counters(&f, NULL);
    return f;
}

// The GEMM flops of one training forward and of one backward of a randomly initialized model
// of cfg and method kind, on a batch x seq batch of fixed tokens.
static void step_flops(const ModelConfig *cfg, MethodKind kind, int batch, int seq, double *fwd, double *bwd) {
    int *tok = xmalloc(sizeof(int) * batch * seq), *tgt = xmalloc(sizeof(int) * batch * seq);
    for (int i = 0; i < batch * seq; i++) { tok[i] = (i * 7) % cfg->vocab_size; tgt[i] = (i * 3) % cfg->vocab_size; }
    Batch bt = {batch, seq, tok, tgt, NULL, NULL, NULL, NULL};
    ForwardOptions fo = {1, 0.0f, 0.0f, 1};
    MethodConfig mc = method(kind);
    Model *m = model_create(backend_cpu(), cfg, &mc);
    model_init_random(m, 1);
    double f0 = gemm_flops();
    model_forward(m, &bt, &fo);
    double f1 = gemm_flops();
    model_zero_grad(m);
    model_backward(m);
    *fwd = f1 - f0;
    *bwd = gemm_flops() - f1;
    model_free(m);
    free(tok); free(tgt);
}

static void test_gemm_flops(void **s) {
    (void)s;
    ModelConfig cfg = nano();
    double N = (double)B * T, C = cfg.n_embd, hs = C / cfg.n_head;
    double linear = cfg.n_layer * 24.0 * N * C * C, attn = cfg.n_layer * 4.0 * B * cfg.n_head * T * T * hs;
    double head = 2.0 * N * cfg.vocab_size * C;
    MethodKind kinds[] = {METHOD_FT, METHOD_BITFIT};
    double want_backward[] = {2 * (linear + attn + head), linear + 2 * attn + head};
    for (int k = 0; k < 2; k++) {
        double fwd, bwd;
        step_flops(&cfg, kinds[k], B, T, &fwd, &bwd);
        assert_int_equal((long long)fwd, (long long)(linear + attn + head));   // exact integers
        assert_int_equal((long long)bwd, (long long)want_backward[k]);
    }
}

// At 128 positions the attention's products run in two causal blocks of 64 and skip the one
// above the diagonal: query block 0 sees 64 keys, block 1 all 128 (3/4 of the square), in the
// forward's two products and the backward's four; the counters hold the work done.
static void test_gemm_flops_causal_blocks(void **s) {
    (void)s;
    ModelConfig cfg;
    assert_int_equal(model_preset("micro", &cfg), 0);
    enum { CB = 1, CT = 128 };
    double N = (double)CB * CT, C = cfg.n_embd, hs = C / cfg.n_head;
    double linear = cfg.n_layer * 24.0 * N * C * C, head = 2.0 * N * cfg.vocab_size * C;
    double seen = 64.0 * 64 + 64.0 * 128;   // query rows x the keys they see, over both blocks
    double attn = cfg.n_layer * 4.0 * CB * cfg.n_head * seen * hs;
    double fwd, bwd;
    step_flops(&cfg, METHOD_FT, CB, CT, &fwd, &bwd);
    assert_int_equal((long long)fwd, (long long)(linear + attn + head));
    assert_int_equal((long long)bwd, (long long)(2 * (linear + attn + head)));
}

int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);   // e.g. test_model 'test_grad_*'
    backend_cpu()->set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_ft_lm),        cmocka_unit_test(test_grad_ft_cls),
        cmocka_unit_test(test_grad_ft_reg),       cmocka_unit_test(test_grad_bitfit),
        cmocka_unit_test(test_grad_lora),         cmocka_unit_test(test_grad_lora_dropout),
        cmocka_unit_test(test_grad_combinations), cmocka_unit_test(test_grad_elements),
        cmocka_unit_test(test_grad_prefix_embed), cmocka_unit_test(test_grad_prefix_layer),
        cmocka_unit_test(test_grad_adapters),     cmocka_unit_test(test_frozen),
        cmocka_unit_test(test_merge),             cmocka_unit_test(test_param_formulas),
        cmocka_unit_test(test_method_table),      cmocka_unit_test(test_lora_sites),
        cmocka_unit_test(test_bad_methods),       cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_grad_clip),         cmocka_unit_test(test_overfit_text),
        cmocka_unit_test(test_gemm_flops),        cmocka_unit_test(test_gemm_flops_causal_blocks),
        cmocka_unit_test(test_bf16_vs_fp32),      cmocka_unit_test(test_overfit_text_bf16),
        cmocka_unit_test(test_bf16_loss_curve),   cmocka_unit_test(test_step_touches_no_new_memory),
        cmocka_unit_test(test_zero_grad_then_backward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
