// core/peft.c — PEFT LoRA adapters for GPT-2. See peft.h.
#include "core/peft.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/files.h"
#include "core/safetensors.h"

// The four GPT-2 modules a LoRA adapter can hold, by their transformers names, and the
// loralab targets each one updates.
// PEFT's module name of each block linear (the LoRA module that adapts it).
static const char *const PM_NAMES[LINEAR_COUNT] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};

// The LoRA sites (TARGET_* mask) inside block linear k: q, k, v for the fused c_attn.
static int pm_targets(int k) {
    ModelConfig any = {0};
    int mask = 0;
    for (int t = 0; t < SITE_COUNT; t++)
        if (lora_site_slice(&any, (LoraSite)t, 0).linear == (BlockLinear)k) mask |= 1 << t;
    return mask;
}

static const char PREFIX[] = "base_model.model.";

// The sublayer a LoRA site is in, as in the adapter's tensor names: h.{i}.attn.q.lora_A, ...
static const char *site_module(int t) { return t <= SITE_O ? "attn" : "mlp"; }

static void join_path(char *buf, size_t cap, const char *dir, const char *file) {
    snprintf(buf, cap, "%s/%s", dir, file);
}

static json_t *load_config(const char *dir, char *path, size_t cap) {
    join_path(path, cap, dir, "adapter_config.json");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        err_set("%s: invalid JSON: %s (line %d, column %d)", path, jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        err_set("%s: expected a JSON object at the top level", path);
        return NULL;
    }
    return root;
}

int peft_is_adapter(const char *dir) {
    char path[4096];
    json_t *root = load_config(dir, path, sizeof path);
    if (!root) return -1;
    int peft = json_object_get(root, "method") == NULL && json_object_get(root, "peft_type") != NULL;
    json_decref(root);
    return peft;
}

// ----------------------------------------------------------------------------
// reading: the config and the tensors of a PEFT adapter

typedef struct {
    int layer, kind;      // kind: the BlockLinear it adapts
    int a, b;             // tensor indices
    int r;
    float alpha, scale;
} PeftModule;

typedef struct {
    char cfg_path[4096], st_path[4096];
    SafeTensors *st;
    PeftModule *mods;
    int nmods;
    int score;            // tensor index of score.weight, or -1
    MethodConfig mc;      // what peft_read_config returns
    int fold;             // scales differ: each B is multiplied by its scale, the model's is 1
} PeftScan;

static void scan_free(PeftScan *s) {
    if (s->st) st_close(s->st);
    free(s->mods);
    memset(s, 0, sizeof *s);
}

// The value of the first key of pattern (a JSON object, may be NULL) that matches module as
// PEFT matches it, re.match(rf"(.*\.)?({key})$", module); *found = 0 when none does.
static int pattern_lookup(const json_t *pattern, const char *module, const char *cfg_path,
                          const char *field, const json_t **value) {
    *value = NULL;
    if (!pattern || json_is_null(pattern)) return 0;
    if (!json_is_object(pattern))
        return err_set("%s: field '%s' must be an object of module name patterns", cfg_path, field);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)pattern, key, v) {
        char re[512];
        snprintf(re, sizeof re, "^(.*\\.)?(%s)$", key);
        regex_t rx;
        if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
            return err_set("%s: %s key \"%s\" is not a regular expression loralab can read", cfg_path,
                           field, key);
        int hit = regexec(&rx, module, 0, NULL, 0) == 0;
        regfree(&rx);
        if (hit) { *value = v; return 0; }
    }
    return 0;
}

static PeftModule *scan_module(PeftScan *s, int layer, int kind) {
    for (int i = 0; i < s->nmods; i++)
        if (s->mods[i].layer == layer && s->mods[i].kind == kind) return &s->mods[i];
    s->mods = xrealloc(s->mods, (size_t)(s->nmods + 1) * sizeof *s->mods);
    PeftModule *pm = &s->mods[s->nmods++];
    memset(pm, 0, sizeof *pm);
    pm->layer = layer;
    pm->kind = kind;
    pm->a = pm->b = -1;
    return pm;
}

// Splits "base_model.model.[transformer.]h.{i}.<module>.lora_{A,B}.weight"; returns 1 and
// fills layer, kind, is_b; 0 for any other name.
static int parse_lora_name(const char *rest, int *layer, int *kind, int *is_b) {
    if (!strncmp(rest, "transformer.", 12)) rest += 12;
    if (strncmp(rest, "h.", 2) || rest[2] < '0' || rest[2] > '9') return 0;
    char *end;
    long l = strtol(rest + 2, &end, 10);
    if (*end != '.' || l > 100000) return 0;
    for (int k = 0; k < LINEAR_COUNT; k++) {
        size_t n = strlen(PM_NAMES[k]);
        if (strncmp(end + 1, PM_NAMES[k], n)) continue;
        const char *tail = end + 1 + n;
        if (!strcmp(tail, ".lora_A.weight") || !strcmp(tail, ".lora_B.weight")) {
            *layer = (int)l;
            *kind = k;
            *is_b = tail[6] == 'B';
            return 1;
        }
    }
    return 0;
}

static int get_number(const json_t *v, const char *cfg_path, const char *what, double *out) {
    if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1e30)
        return err_set("%s: %s must be a positive number", cfg_path, what);
    *out = json_number_value(v);
    return 0;
}

static int peft_scan(const char *dir, PeftScan *s) {
    memset(s, 0, sizeof *s);
    s->score = -1;
    json_t *root = load_config(dir, s->cfg_path, sizeof s->cfg_path);
    if (!root) return -1;
    const char *path = s->cfg_path;
    int rc = -1;
    const json_t *v = json_object_get(root, "peft_type");
    if (!json_is_string(v) || strcmp(json_string_value(v), "LORA")) {
        err_set("%s: peft_type is %s%s%s; loralab reads PEFT LoRA adapters only (peft_type \"LORA\")",
                path, json_is_string(v) ? "\"" : "", json_is_string(v) ? json_string_value(v) : "not a string",
                json_is_string(v) ? "\"" : "");
        goto done;
    }
    // Options that change what the factors mean: refused rather than read wrongly.
    static const char *const must_be_false[] = {"use_dora", "lora_bias", NULL};
    for (int i = 0; must_be_false[i]; i++)
        if (json_is_true(json_object_get(root, must_be_false[i]))) {
            err_set("%s: %s is true; loralab reads plain LoRA only", path, must_be_false[i]);
            goto done;
        }
    v = json_object_get(root, "bias");
    if (v && !json_is_null(v) && !(json_is_string(v) && !strcmp(json_string_value(v), "none"))) {
        err_set("%s: bias is %s%s%s; loralab reads adapters with bias \"none\" (trained biases are "
                "not LoRA factors)", path, json_is_string(v) ? "\"" : "",
                json_is_string(v) ? json_string_value(v) : "not a string", json_is_string(v) ? "\"" : "");
        goto done;
    }
    v = json_object_get(root, "layer_replication");
    if (v && !json_is_null(v)) {
        err_set("%s: layer_replication is set; loralab reads adapters on the model's own layers only", path);
        goto done;
    }
    int rslora = json_is_true(json_object_get(root, "use_rslora"));
    double alpha0 = 0;
    v = json_object_get(root, "lora_alpha");
    if (!v) { err_set("%s: missing field 'lora_alpha'", path); goto done; }
    if (get_number(v, path, "field 'lora_alpha'", &alpha0)) goto done;
    const json_t *r0 = json_object_get(root, "r");
    if (r0 && !(json_is_integer(r0) && json_integer_value(r0) > 0)) {
        err_set("%s: field 'r' must be a positive integer", path);
        goto done;
    }
    int head = HEAD_LM;
    v = json_object_get(root, "task_type");
    if (v && !json_is_null(v)) {
        const char *tt = json_is_string(v) ? json_string_value(v) : "";
        if (!strcmp(tt, "SEQ_CLS")) head = HEAD_CLS;
        else if (strcmp(tt, "CAUSAL_LM") && strcmp(tt, "FEATURE_EXTRACTION")) {
            err_set("%s: task_type is \"%s\"; loralab reads CAUSAL_LM, SEQ_CLS and FEATURE_EXTRACTION "
                    "adapters of GPT-2", path, tt);
            goto done;
        }
    }

    join_path(s->st_path, sizeof s->st_path, dir, "adapter_model.safetensors");
    if (!(s->st = st_open(s->st_path))) goto done;
    for (int i = 0; i < st_count(s->st); i++) {
        const char *name = st_name(s->st, i);
        const char *rest = !strncmp(name, PREFIX, sizeof PREFIX - 1) ? name + sizeof PREFIX - 1 : NULL;
        int layer, kind, is_b;
        if (rest && !strcmp(rest, "score.weight")) {
            s->score = i;
        } else if (rest && parse_lora_name(rest, &layer, &kind, &is_b)) {
            PeftModule *pm = scan_module(s, layer, kind);
            *(is_b ? &pm->b : &pm->a) = i;
        } else {
            err_set("%s: unexpected tensor '%s': loralab reads %sh.{i}.{attn.c_attn, attn.c_proj, "
                    "mlp.c_fc, mlp.c_proj}.lora_A.weight / lora_B.weight and %sscore.weight", s->st_path,
                    name, PREFIX, PREFIX);
            goto done;
        }
    }
    if (!s->nmods) { err_set("%s: no LoRA factors (lora_A / lora_B tensors)", s->st_path); goto done; }

    // per module: rank from the tensors, checked against r / rank_pattern; alpha; scale
    const json_t *rank_pattern = json_object_get(root, "rank_pattern");
    const json_t *alpha_pattern = json_object_get(root, "alpha_pattern");
    int has_prefix = 0;   // the file's names carry "transformer." (a model with a head)
    for (int i = 0; i < st_count(s->st); i++)
        if (!strncmp(st_name(s->st, i) + sizeof PREFIX - 1, "transformer.", 12)) has_prefix = 1;
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = METHOD_LORA;
    mc.lora_targets = 0;
    mc.lora_rank = 0;
    int same_scale = 1, same_rank = 1;
    for (int i = 0; i < s->nmods; i++) {
        PeftModule *pm = &s->mods[i];
        char module[128], tname[160];
        snprintf(module, sizeof module, "%sh.%d.%s", has_prefix ? "transformer." : "", pm->layer,
                 PM_NAMES[pm->kind]);
        snprintf(tname, sizeof tname, "%s%s.lora_%c.weight", PREFIX, module, pm->a < 0 ? 'A' : 'B');
        if (pm->a < 0 || pm->b < 0) {
            err_set("%s: missing tensor '%s' (its other factor is there)", s->st_path, tname);
            goto done;
        }
        if (st_ndim(s->st, pm->a) != 2 || st_ndim(s->st, pm->b) != 2 ||
            st_shape(s->st, pm->a)[0] != st_shape(s->st, pm->b)[1]) {
            char sa[64], sb[64];
            err_set("%s: %s: lora_A %s and lora_B %s are not [r, d_in] and [d_out, r]", s->st_path,
                    module, st_shape_str(s->st, pm->a, sa, sizeof sa), st_shape_str(s->st, pm->b, sb, sizeof sb));
            goto done;
        }
        pm->r = (int)st_shape(s->st, pm->a)[0];
        const json_t *pv;
        if (pattern_lookup(rank_pattern, module, path, "rank_pattern", &pv)) goto done;
        const json_t *want = pv ? pv : r0;
        if (want && !(json_is_integer(want) && json_integer_value(want) == pm->r)) {
            char have[64];
            snprintf(have, sizeof have, "%lld", json_is_integer(want) ? (long long)json_integer_value(want) : -1LL);
            err_set("%s: %s has rank %d in adapter_model.safetensors, but %s gives %s", path, module,
                    pm->r, pv ? "rank_pattern" : "r", json_is_integer(want) ? have : "a non-integer");
            goto done;
        }
        double alpha = alpha0;
        if (pattern_lookup(alpha_pattern, module, path, "alpha_pattern", &pv)) goto done;
        if (pv && get_number(pv, path, "an alpha_pattern value", &alpha)) goto done;
        pm->alpha = (float)alpha;
        pm->scale = (float)(rslora ? alpha / sqrt((double)pm->r) : alpha / pm->r);
        if (pm->scale != s->mods[0].scale) same_scale = 0;
        if (pm->r != s->mods[0].r || pm->alpha != s->mods[0].alpha) same_rank = 0;
        if (pm->r > mc.lora_rank) mc.lora_rank = pm->r;
        mc.lora_targets |= pm_targets(pm->kind);
    }
    // one rank and alpha as PEFT wrote them, or the largest rank with the common scale, or
    // scale 1 with each module's scale folded into its B
    s->fold = !same_scale;
    if (same_rank && !rslora) mc.lora_alpha = s->mods[0].alpha;
    else if (same_scale) mc.lora_alpha = s->mods[0].scale * (float)mc.lora_rank;
    else mc.lora_alpha = (float)mc.lora_rank;
    v = json_object_get(root, "lora_dropout");
    if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < 1)
        mc.lora_dropout = (float)json_number_value(v);
    if (s->score >= 0) {
        if (st_ndim(s->st, s->score) != 2) {
            err_set("%s: tensor '%sscore.weight' must be [num_labels, n_embd]", s->st_path, PREFIX);
            goto done;
        }
        mc.n_classes = (int)st_shape(s->st, s->score)[0];
        mc.head = mc.n_classes == 1 ? HEAD_REG : HEAD_CLS;
    } else if (head == HEAD_CLS) {
        err_set("%s: task_type is \"SEQ_CLS\", but %s has no '%sscore.weight' (the head in "
                "modules_to_save)", path, s->st_path, PREFIX);
        goto done;
    }
    s->mc = mc;
    rc = 0;
done:
    json_decref(root);
    if (rc) scan_free(s);
    return rc;
}

int peft_read_config(const char *dir, MethodConfig *mc) {
    PeftScan s;
    if (peft_scan(dir, &s)) return -1;
    *mc = s.mc;
    scan_free(&s);
    return 0;
}

int peft_load(Model *m, const char *dir) {
    PeftScan s;
    if (peft_scan(dir, &s)) return -1;
    const MethodConfig *mmc = model_method(m);
    const ModelConfig *cfg = model_config(m);
    int rc = -1;
    float *host[NUM_TARGETS][2] = {{0}};
    float *tmp = NULL;
    if (!method_uses_lora(mmc) || mmc->lora_rank != s.mc.lora_rank ||
        mmc->lora_alpha != s.mc.lora_alpha || (mmc->lora_targets & s.mc.lora_targets) != s.mc.lora_targets ||
        mmc->head != s.mc.head) {
        err_set("%s: the model was not created for this adapter (lora rank %d, alpha %g, head %d)",
                s.cfg_path, s.mc.lora_rank, (double)s.mc.lora_alpha, (int)s.mc.head);
        goto done;
    }
    int L = cfg->n_layer, C = cfg->n_embd, R = mmc->lora_rank;
    for (int t = 0; t < NUM_TARGETS; t++) {
        if (!(mmc->lora_targets & (1 << t))) continue;
        LoraSlice w = lora_site_slice(cfg, (LoraSite)t, 0);
        int din = w.d_in, dout = w.d_out;
        host[t][0] = xcalloc((size_t)L * R * din, sizeof(float));
        host[t][1] = xcalloc((size_t)L * dout * R, sizeof(float));
    }
    for (int i = 0; i < s.nmods; i++) {
        PeftModule *pm = &s.mods[i];
        int din = pm->kind == LINEAR_MLP_PROJ ? 4 * C : C;
        int dout = pm->kind == LINEAR_QKV ? 3 * C : pm->kind == LINEAR_FC ? 4 * C : C;
        if (pm->layer >= L) {
            err_set("%s: tensor '%s' is for layer %d, but the model has %d layers", s.st_path,
                    st_name(s.st, pm->a), pm->layer, L);
            goto done;
        }
        const int64_t *sa = st_shape(s.st, pm->a), *sb = st_shape(s.st, pm->b);
        if (sa[1] != din || sb[0] != dout) {
            char ha[64], hb[64];
            err_set("%s: %s: lora_A %s and lora_B %s do not fit the model (expected [%d, %d] and [%d, %d])",
                    s.st_path, st_name(s.st, pm->a), st_shape_str(s.st, pm->a, ha, sizeof ha),
                    st_shape_str(s.st, pm->b, hb, sizeof hb), pm->r, din, dout, pm->r);
            goto done;
        }
        int r = pm->r;
        float f = s.fold ? pm->scale : 1.0f;
        tmp = xrealloc(tmp, ((size_t)r * din + (size_t)dout * r) * sizeof(float));
        float *A = tmp, *Bm = tmp + (size_t)r * din;
        if (st_read_f32(s.st, pm->a, A, (size_t)r * din) || st_read_f32(s.st, pm->b, Bm, (size_t)dout * r))
            goto done;
        // the fused c_attn updates q, k and v: rows [tC, (t+1)C) of B go to target t
        for (int t = 0; t < NUM_TARGETS; t++) {
            if (!(pm_targets(pm->kind) & (1 << t))) continue;
            int row0 = lora_site_slice(cfg, (LoraSite)t, 0).row, rows = pm->kind == LINEAR_QKV ? C : dout;
            float *At = host[t][0] + (size_t)pm->layer * R * din;
            float *Bt = host[t][1] + (size_t)pm->layer * rows * R;
            memcpy(At, A, (size_t)r * din * sizeof(float));
            for (int o = 0; o < rows; o++)
                for (int j = 0; j < r; j++) Bt[(size_t)o * R + j] = f * Bm[(size_t)(row0 + o) * r + j];
        }
    }
    for (int t = 0; t < NUM_TARGETS; t++) {
        if (!host[t][0]) continue;
        for (int k = 0; k < 2; k++) {
            char name[32];
            snprintf(name, sizeof name, "lora.%s.%c", TARGET_NAMES[t], k ? 'B' : 'A');
            Param *p = model_find_param(m, name);
            LAB_ASSERT(p);
            model_param_upload(m, p, 0, host[t][k], p->numel);
        }
    }
    if (s.score >= 0) {
        Param *p = model_find_param(m, "score.weight");
        LAB_ASSERT(p);
        if (st_shape(s.st, s.score)[1] != C) {
            err_set("%s: tensor '%sscore.weight' has %lld columns, the model's n_embd is %d", s.st_path,
                    PREFIX, (long long)st_shape(s.st, s.score)[1], C);
            goto done;
        }
        tmp = xrealloc(tmp, p->numel * sizeof(float));
        if (st_read_f32(s.st, s.score, tmp, p->numel)) goto done;
        model_param_upload(m, p, 0, tmp, p->numel);
    }
    rc = 0;
done:
    for (int t = 0; t < NUM_TARGETS; t++) { free(host[t][0]); free(host[t][1]); }
    free(tmp);
    scan_free(&s);
    return rc;
}

// ----------------------------------------------------------------------------
// writing: a loralab adapter as a PEFT adapter

// Why a combination cannot be written as a PEFT LoRA adapter; NULL when it can (the primary
// method's own reason is METHODS[kind].peft_refusal).
static const char *combination_refusal(const MethodConfig *mc) {
    if (mc->combine & METHOD_BIT(METHOD_BITFIT))
        return "the combination with bitfit trains the base model's biases, which a PEFT LoRA adapter "
               "cannot hold; write a full checkpoint with `loralab merge-adapter` instead";
    if (mc->combine & (METHOD_BIT(METHOD_PREFIX_EMBED) | METHOD_BIT(METHOD_PREFIX_LAYER)))
        return "the combination with a prefix method trains prefixes, which PEFT's LoRA cannot express";
    return NULL;
}

typedef struct {
    char name[160];
    int shape[2];
} OutTensor;

// The shortest decimal that reads back as f (8 rather than 8.0000000001, 0.1 rather than
// 0.100000001).
static json_t *json_float(double f) {
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, f);
        if ((float)strtod(buf, NULL) == (float)f) break;
    }
    return json_real(strtod(buf, NULL));
}

int peft_export(const char *src, const char *out, const char **summary) {
    static char sum[512];
    int is_peft = peft_is_adapter(src);
    if (is_peft < 0) return -1;
    if (is_peft) return err_set("%s: already a PEFT adapter", src);
    MethodConfig mc;
    if (adapter_read_config(src, &mc)) return -1;
    if (METHODS[mc.kind].peft_refusal)
        return err_set("%s: method %s %s; nothing written", src, METHOD_NAMES[mc.kind], METHODS[mc.kind].peft_refusal);
    const char *why = combination_refusal(&mc);
    if (why) return err_set("%s: %s; nothing written", src, why);

    char cfg_path[4096], st_path[4096];
    json_t *own = load_config(src, cfg_path, sizeof cfg_path);
    if (!own) return -1;
    const json_t *bv = json_object_get(own, "base_model_name_or_path");
    json_t *base = json_is_string(bv) ? json_string(json_string_value(bv)) : json_null();
    json_decref(own);

    join_path(st_path, sizeof st_path, src, "adapter_model.safetensors");
    SafeTensors *st = st_open(st_path);
    if (!st) { json_decref(base); return -1; }
    int rc = -1, r = mc.lora_rank, L = 0, C = 0;
    int score = -1;
    OutTensor *ot = NULL;
    int nt = 0;
    StWriter *w = NULL;
    float *buf = NULL, *tmp = NULL;
    // the layers and the width from the file: every tensor is a LoRA factor or the head
    for (int i = 0; i < st_count(st); i++) {
        const char *name = st_name(st, i);
        if (!strcmp(name, "score.weight")) { score = i; continue; }
        int layer = -1, t, n = 0;
        char which[8];
        for (t = 0; t < NUM_TARGETS; t++) {
            char fmt[64];
            snprintf(fmt, sizeof fmt, "h.%%d.%s.%s.lora_%%1[AB]%%n", site_module(t), TARGET_NAMES[t]);
            n = 0;
            if (sscanf(name, fmt, &layer, which, &n) == 2 && n > 0 && !name[n] && (mc.lora_targets & (1 << t))) break;
        }
        if (t == NUM_TARGETS || layer < 0) {
            err_set("%s: unexpected tensor '%s': a LoRA adapter holds h.{i}.attn.{q,k,v,o}.lora_A/B, "
                    "h.{i}.mlp.{c_fc,c_proj}.lora_A/B of its targets and score.weight", st_path, name);
            goto done;
        }
        if (layer + 1 > L) L = layer + 1;
        if (which[0] == 'A' && st_ndim(st, i) == 2) {
            int din = (int)st_shape(st, i)[1];
            int c = t == SITE_PROJ ? din / 4 : din;
            if (C && c != C) { err_set("%s: tensor '%s': d_in %d does not fit n_embd %d", st_path, name, din, C); goto done; }
            C = c;
        }
    }
    if (!L || !C) { err_set("%s: no LoRA factors", st_path); goto done; }

    // the output tensors, layer by layer
    int nqkv = 0;
    for (int t = SITE_Q; t <= SITE_V; t++) nqkv += !!(mc.lora_targets & (1 << t));
    ot = xcalloc((size_t)L * 8 + 1, sizeof *ot);
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < LINEAR_COUNT; k++) {
            if (!(mc.lora_targets & pm_targets(k))) continue;
            int rk = k == LINEAR_QKV ? nqkv * r : r;
            int din = k == LINEAR_MLP_PROJ ? 4 * C : C;
            int dout = k == LINEAR_QKV ? 3 * C : k == LINEAR_FC ? 4 * C : C;
            snprintf(ot[nt].name, sizeof ot[nt].name, "%stransformer.h.%d.%s.lora_A.weight", PREFIX, l, PM_NAMES[k]);
            ot[nt].shape[0] = rk; ot[nt].shape[1] = din; nt++;
            snprintf(ot[nt].name, sizeof ot[nt].name, "%stransformer.h.%d.%s.lora_B.weight", PREFIX, l, PM_NAMES[k]);
            ot[nt].shape[0] = dout; ot[nt].shape[1] = rk; nt++;
        }
    }
    if (score >= 0) {
        if (st_ndim(st, score) != 2 || st_shape(st, score)[1] != C) {
            err_set("%s: tensor 'score.weight' must be [n_classes, %d]", st_path, C);
            goto done;
        }
        snprintf(ot[nt].name, sizeof ot[nt].name, "%sscore.weight", PREFIX);
        ot[nt].shape[0] = (int)st_shape(st, score)[0]; ot[nt].shape[1] = C; nt++;
    } else if (mc.head != HEAD_LM) {
        err_set("%s: head %s but no score.weight", st_path, mc.head == HEAD_CLS ? "cls" : "reg");
        goto done;
    }

    if (files_make_dirs(out)) goto done;
    StTensorInfo *info = xcalloc((size_t)nt, sizeof *info);
    for (int i = 0; i < nt; i++) { info[i].name = ot[i].name; info[i].ndim = 2; info[i].shape = ot[i].shape; }
    static const char *const meta[] = {"format", "pt", NULL};
    char out_st[4096];
    join_path(out_st, sizeof out_st, out, "adapter_model.safetensors");
    w = st_writer_open(out_st, info, nt, meta);
    free(info);
    if (!w) goto done;
    // largest tensor in or out: a fused c_attn B (3C x 3r), an MLP factor (4C x r), the head
    size_t biggest = (size_t)9 * C * r + (size_t)4 * C * r + (score >= 0 ? st_numel(st, score) : 0);
    buf = xmalloc(biggest * sizeof(float));
    tmp = xmalloc(biggest * sizeof(float));
    int ti = 0;
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < LINEAR_COUNT; k++) {
            if (!(mc.lora_targets & pm_targets(k))) continue;
            int rk = ot[ti].shape[0], din = ot[ti].shape[1], dout = ot[ti + 1].shape[0];
            memset(buf, 0, (size_t)rk * din * sizeof(float));
            int block = 0;   // fused c_attn: target t's A rows and B columns are block `block`
            for (int half = 0; half < 2; half++) {
                if (half) memset(buf, 0, (size_t)dout * rk * sizeof(float));
                block = 0;
                for (int t = 0; t < NUM_TARGETS; t++) {
                    if (!(pm_targets(k) & mc.lora_targets & (1 << t))) continue;
                    char name[96];
                    snprintf(name, sizeof name, "h.%d.%s.%s.lora_%c", l, site_module(t),
                             TARGET_NAMES[t], half ? 'B' : 'A');
                    int idx = st_find(st, name);
                    int rows = half ? (k == LINEAR_QKV ? C : dout) : r, cols = half ? r : din;
                    if (idx < 0 || st_ndim(st, idx) != 2 || st_shape(st, idx)[0] != rows ||
                        st_shape(st, idx)[1] != cols) {
                        err_set("%s: %s tensor '%s' (expected shape [%d, %d])", st_path,
                                idx < 0 ? "missing" : "wrong shape of", name, rows, cols);
                        goto done;
                    }
                    if (st_read_f32(st, idx, tmp, (size_t)rows * cols)) goto done;
                    if (!half) {
                        memcpy(buf + (size_t)block * r * din, tmp, (size_t)r * din * sizeof(float));
                    } else {
                        int row0 = k == LINEAR_QKV ? t * C : 0;
                        for (int o = 0; o < rows; o++)
                            memcpy(buf + (size_t)(row0 + o) * rk + (size_t)block * r, tmp + (size_t)o * r,
                                   (size_t)r * sizeof(float));
                    }
                    block++;
                }
                st_writer_put(w, buf, half ? (size_t)dout * rk : (size_t)rk * din);
            }
            ti += 2;
        }
    }
    if (score >= 0) {
        size_t n = st_numel(st, score);
        if (st_read_f32(st, score, tmp, n)) goto done;
        st_writer_put(w, tmp, n);
    }
    int wrc = st_writer_close(w);
    w = NULL;
    if (wrc) goto done;

    // adapter_config.json: the fields LoraConfig reads; rank_pattern / alpha_pattern give the
    // fused c_attn its summed rank and an alpha scaled alike, so alpha / r is unchanged
    json_t *o = json_object();
    json_object_set_new(o, "peft_type", json_string("LORA"));
    json_object_set_new(o, "task_type", json_string(mc.head == HEAD_LM ? "CAUSAL_LM" : "SEQ_CLS"));
    json_object_set_new(o, "base_model_name_or_path", base);
    base = NULL;
    json_object_set_new(o, "revision", json_null());
    json_object_set_new(o, "inference_mode", json_true());
    json_object_set_new(o, "r", json_integer(r));
    json_object_set_new(o, "lora_alpha", json_float(mc.lora_alpha));
    json_object_set_new(o, "lora_dropout", json_float(mc.lora_dropout));
    json_t *tm = json_array();
    for (int k = 0; k < LINEAR_COUNT; k++)
        if (mc.lora_targets & pm_targets(k)) json_array_append_new(tm, json_string(PM_NAMES[k]));
    json_object_set_new(o, "target_modules", tm);
    json_object_set_new(o, "fan_in_fan_out", json_true());   // GPT-2's Conv1D stores [in, out]
    json_object_set_new(o, "bias", json_string("none"));
    json_object_set_new(o, "use_rslora", json_false());
    json_object_set_new(o, "use_dora", json_false());
    json_object_set_new(o, "init_lora_weights", json_true());
    json_object_set_new(o, "layers_to_transform", json_null());
    json_object_set_new(o, "layers_pattern", json_null());
    json_t *rp = json_object(), *ap = json_object();
    if (nqkv > 1) {
        json_object_set_new(rp, "attn.c_attn", json_integer(nqkv * r));
        json_object_set_new(ap, "attn.c_attn", json_float((double)mc.lora_alpha * nqkv));
    }
    json_object_set_new(o, "rank_pattern", rp);
    json_object_set_new(o, "alpha_pattern", ap);
    if (mc.head == HEAD_LM) {
        json_object_set_new(o, "modules_to_save", json_null());
    } else {
        json_t *ms = json_array();
        json_array_append_new(ms, json_string("score"));
        json_object_set_new(o, "modules_to_save", ms);
    }
    char out_cfg[4096], out_tmp[4200];
    join_path(out_cfg, sizeof out_cfg, out, "adapter_config.json");
    snprintf(out_tmp, sizeof out_tmp, "%s.tmp", out_cfg);
    int jrc = json_dump_file(o, out_tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (jrc || rename(out_tmp, out_cfg)) {
        remove(out_tmp);
        err_set("%s: cannot write", out_cfg);
        goto done;
    }
    size_t len = (size_t)snprintf(sum, sizeof sum, "%d layers, target_modules", L);
    for (int k = 0; k < LINEAR_COUNT; k++)
        if (mc.lora_targets & pm_targets(k))
            len += (size_t)snprintf(sum + len, len < sizeof sum ? sizeof sum - len : 0, " %s", PM_NAMES[k]);
    if (len < sizeof sum)
        len += (size_t)snprintf(sum + len, sizeof sum - len, ", r=%d lora_alpha=%g", r, (double)mc.lora_alpha);
    if (nqkv > 1 && len < sizeof sum)
        snprintf(sum + len, sizeof sum - len, " (attn.c_attn: r=%d lora_alpha=%g, %d fused matrices)",
                 nqkv * r, (double)mc.lora_alpha * nqkv, nqkv);
    if (summary) *summary = sum;
    rc = 0;
done:
    if (w) {   // an error above: the writer removes its temporary file; keep the first message
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", err_msg());
        st_writer_close(w);
        err_set("%s", keep);
    }
    json_decref(base);
    free(ot);
    free(buf);
    free(tmp);
    st_close(st);
    return rc;
}
