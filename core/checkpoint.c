// core/checkpoint.c — checkpoint and adapter directories. See checkpoint.h.
//
// The registry (core/model.c) stacks per-layer tensors: "h.attn.c_attn.weight" is (L, 3C, C)
// in [out, in] layout. Files hold one tensor per layer with GPT-2's names and, for the base
// linear weights, Conv1D's [in, out] layout. The NAME MAP tables below are the one place
// that relates the two; a new registry tensor needs one line there.
#include "core/checkpoint.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"
#include "core/files.h"
#include "core/peft.h"
#include "core/safetensors.h"

// ----------------------------------------------------------------------------
// name map

typedef struct {
    const char *reg;    // registry name (core/model.c)
    const char *file;   // name in the file; "%d" = layer index, the registry stacks over dim 0
    int transpose;      // registry [out, in] <-> file Conv1D [in, out]
    int skip_offset;    // slice s is layer s + adapter_skip (adapter_d stacks only upper layers)
} NameMap;

// Base tensors: model.safetensors, GPT-2 names.
static const NameMap BASE_MAP[] = {
    {"wte", "wte.weight", 0, 0},
    {"wpe", "wpe.weight", 0, 0},
    {"h.ln_1.weight", "h.%d.ln_1.weight", 0, 0},
    {"h.ln_1.bias", "h.%d.ln_1.bias", 0, 0},
    {"h.attn.c_attn.weight", "h.%d.attn.c_attn.weight", 1, 0},
    {"h.attn.c_attn.bias", "h.%d.attn.c_attn.bias", 0, 0},
    {"h.attn.c_proj.weight", "h.%d.attn.c_proj.weight", 1, 0},
    {"h.attn.c_proj.bias", "h.%d.attn.c_proj.bias", 0, 0},
    {"h.ln_2.weight", "h.%d.ln_2.weight", 0, 0},
    {"h.ln_2.bias", "h.%d.ln_2.bias", 0, 0},
    {"h.mlp.c_fc.weight", "h.%d.mlp.c_fc.weight", 1, 0},
    {"h.mlp.c_fc.bias", "h.%d.mlp.c_fc.bias", 0, 0},
    {"h.mlp.c_proj.weight", "h.%d.mlp.c_proj.weight", 1, 0},
    {"h.mlp.c_proj.bias", "h.%d.mlp.c_proj.bias", 0, 0},
    {"ln_f.weight", "ln_f.weight", 0, 0},
    {"ln_f.bias", "ln_f.bias", 0, 0},
    {"score.weight", "score.weight", 0, 0},   // head (GPT2ForSequenceClassification's name)
};

// Method tensors: adapter_model.safetensors. LoRA A (L, r, d_in) and B (L, d_out, r) are
// already [out, in]-shaped per layer, PEFT's layout, so nothing is transposed. A method
// tensor missing here is saved whole under its registry name.
static const NameMap METHOD_MAP[] = {
    {"lora.q.A", "h.%d.attn.q.lora_A", 0, 0},
    {"lora.q.B", "h.%d.attn.q.lora_B", 0, 0},
    {"lora.k.A", "h.%d.attn.k.lora_A", 0, 0},
    {"lora.k.B", "h.%d.attn.k.lora_B", 0, 0},
    {"lora.v.A", "h.%d.attn.v.lora_A", 0, 0},
    {"lora.v.B", "h.%d.attn.v.lora_B", 0, 0},
    {"lora.o.A", "h.%d.attn.o.lora_A", 0, 0},
    {"lora.o.B", "h.%d.attn.o.lora_B", 0, 0},
    {"lora.c_fc.A", "h.%d.mlp.c_fc.lora_A", 0, 0},
    {"lora.c_fc.B", "h.%d.mlp.c_fc.lora_B", 0, 0},
    {"lora.c_proj.A", "h.%d.mlp.c_proj.lora_A", 0, 0},
    {"lora.c_proj.B", "h.%d.mlp.c_proj.lora_B", 0, 0},
    {"adapter.attn.down.weight", "h.%d.attn.adapter.down.weight", 0, 1},
    {"adapter.attn.down.bias", "h.%d.attn.adapter.down.bias", 0, 1},
    {"adapter.attn.up.weight", "h.%d.attn.adapter.up.weight", 0, 1},
    {"adapter.attn.up.bias", "h.%d.attn.adapter.up.bias", 0, 1},
    {"adapter.mlp.down.weight", "h.%d.mlp.adapter.down.weight", 0, 1},
    {"adapter.mlp.down.bias", "h.%d.mlp.adapter.down.bias", 0, 1},
    {"adapter.mlp.up.weight", "h.%d.mlp.adapter.up.weight", 0, 1},
    {"adapter.mlp.up.bias", "h.%d.mlp.adapter.up.bias", 0, 1},
    {"adapter.mlp.ln.weight", "h.%d.mlp.adapter.ln.weight", 0, 1},
    {"adapter.mlp.ln.bias", "h.%d.mlp.adapter.ln.bias", 0, 1},
    {"prefix.layer", "h.%d.prefix", 0, 0},    // (L, lp + li, C); "prefix.embed" is saved whole
};

static const NameMap *map_lookup(const NameMap *map, size_t n, const char *reg) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(map[i].reg, reg)) return &map[i];
    return NULL;
}

// The map entry for p: the base table for base and head tensors, the method table for
// method tensors; otherwise *fallback, which saves p whole under its registry name.
static const NameMap *param_map(const Param *p, NameMap *fallback) {
    const NameMap *nm = p->group == PARAM_METHOD
        ? map_lookup(METHOD_MAP, sizeof METHOD_MAP / sizeof METHOD_MAP[0], p->name)
        : map_lookup(BASE_MAP, sizeof BASE_MAP / sizeof BASE_MAP[0], p->name);
    if (nm) return nm;
    fallback->reg = p->name;
    fallback->file = p->name;
    fallback->transpose = 0;
    fallback->skip_offset = 0;
    return fallback;
}

// One tensor as it appears in a file: slice s of a registry tensor.
typedef struct {
    char name[128];
    int ndim;
    int shape[4];
    size_t numel;
} FileTensor;

static int map_per_layer(const NameMap *nm) { return strstr(nm->file, "%d") != NULL; }

static int map_slices(const Param *p, const NameMap *nm) {
    return map_per_layer(nm) ? p->shape[0] : 1;
}

// skip: the model's adapter_skip (layers below it have no adapter tensors).
static void map_file_tensor(const Param *p, const NameMap *nm, int s, int skip, FileTensor *ft) {
    const char *pct = strstr(nm->file, "%d");
    if (pct) {
        LAB_ASSERT(p->ndim >= 2);
        int layer = s + (nm->skip_offset ? skip : 0);
        snprintf(ft->name, sizeof ft->name, "%.*s%d%s", (int)(pct - nm->file), nm->file, layer, pct + 2);
        ft->ndim = p->ndim - 1;
        for (int k = 0; k < ft->ndim; k++) ft->shape[k] = p->shape[k + 1];
    } else {
        snprintf(ft->name, sizeof ft->name, "%s", nm->file);
        ft->ndim = p->ndim;
        for (int k = 0; k < ft->ndim; k++) ft->shape[k] = p->shape[k];
    }
    if (nm->transpose) {
        LAB_ASSERT(ft->ndim == 2);
        int t = ft->shape[0]; ft->shape[0] = ft->shape[1]; ft->shape[1] = t;
    }
    ft->numel = 1;
    for (int k = 0; k < ft->ndim; k++) ft->numel *= (size_t)ft->shape[k];
}

// dst (cols, rows) = src (rows, cols) transposed.
static void transpose(float *dst, const float *src, int rows, int cols) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

static char *shape_str(const int *shape, int ndim, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < ndim && len < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", k ? ", " : "", shape[k]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

// ----------------------------------------------------------------------------
// small file helpers

static void join_path(char *buf, size_t cap, const char *dir, const char *file) {
    snprintf(buf, cap, "%s/%s", dir, file);
}

// Loads a JSON object from path; NULL with err_set() naming the file.
static json_t *load_json_object(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (files_check_regular(path, "a JSON file")) return NULL;
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

// Writes root to path through a temporary file; steals root.
static int dump_json(json_t *root, const char *path) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(root, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (rc != 0) {
        remove(tmp);
        return err_set("%s: cannot write", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return err_set("%s: cannot rename from %s: %s", path, tmp, strerror(errno));
    }
    return 0;
}

// Required integer field >= min.
static int get_int_in(const json_t *o, const char *path, const char *key, int min, int max, int *out) {
    const json_t *v = json_object_get(o, key);
    if (!v) return err_set("%s: missing field '%s'", path, key);
    if (!json_is_integer(v))
        return err_set("%s: field '%s' must be an integer, got %s", path, key, st_json_type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return err_set("%s: field '%s' must be an integer in [%d, %d], got %lld", path, key,
                       min, max, (long long)x);
    *out = (int)x;
    return 0;
}

static int get_int(const json_t *o, const char *path, const char *key, int min, int *out) {
    return get_int_in(o, path, key, min, 1000000000, out);
}

// Required number field (integer or real) >= min.
static int get_float(const json_t *o, const char *path, const char *key, double min, float *out) {
    const json_t *v = json_object_get(o, key);
    if (!v) return err_set("%s: missing field '%s'", path, key);
    if (!json_is_number(v))
        return err_set("%s: field '%s' must be a number, got %s", path, key, st_json_type_name(v));
    double x = json_number_value(v);
    if (!(x >= min) || x > 1e30)
        return err_set("%s: field '%s' must be a number >= %g, got %g", path, key, min, x);
    *out = (float)x;
    return 0;
}

// Required string field.
static int get_str(const json_t *o, const char *path, const char *key, const char **out) {
    const json_t *v = json_object_get(o, key);
    if (!v) return err_set("%s: missing field '%s'", path, key);
    if (!json_is_string(v))
        return err_set("%s: field '%s' must be a string, got %s", path, key, st_json_type_name(v));
    *out = json_string_value(v);
    return 0;
}

// The shortest decimal that reads back as f, as a double, so that JSON shows 1e-05 for
// 1e-5f rather than 9.99999975e-06.
static json_t *json_float(float f) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

// ----------------------------------------------------------------------------
// loading tensors

typedef struct {
    const SafeTensors *st;
    const char *label;      // message prefix: the file path, or "adapter <path>"
    int allow_prefix;       // accept "transformer.<name>"
    int skip;               // the model's adapter_skip, see map_file_tensor
    unsigned char *used;    // (st_count) tensors consumed
    float *host, *tmp;      // scratch, each of the largest slice
} Loader;

static int loader_find(Loader *ld, const char *name) {
    int i = st_find(ld->st, name);
    if (i < 0 && ld->allow_prefix) {
        char buf[160];
        snprintf(buf, sizeof buf, "transformer.%s", name);
        i = st_find(ld->st, buf);
    }
    return i;
}

// Largest slice over the parameters that will be loaded or saved (only_transposed: over
// those that are transposed, which need a second buffer).
static size_t max_slice(Model *m, int (*wanted)(const Param *), int only_transposed) {
    size_t best = 1;
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        if (!wanted(p)) continue;
        NameMap fb;
        const NameMap *nm = param_map(p, &fb);
        if (only_transposed && !nm->transpose) continue;
        size_t n = p->numel / (size_t)map_slices(p, nm);
        if (n > best) best = n;
    }
    return best;
}

// Reads every slice of p from the file, checking names and shapes.
static int load_param(Loader *ld, Model *m, Param *p, const char *expect_by) {
    NameMap fb;
    const NameMap *nm = param_map(p, &fb);
    for (int s = 0; s < map_slices(p, nm); s++) {
        FileTensor ft;
        map_file_tensor(p, nm, s, ld->skip, &ft);
        char want[80], have[80];
        shape_str(ft.shape, ft.ndim, want, sizeof want);
        int idx = loader_find(ld, ft.name);
        if (idx < 0)
            return err_set("%s: missing tensor '%s' (expected shape %s)", ld->label, ft.name, want);
        int same = st_ndim(ld->st, idx) == ft.ndim;
        for (int k = 0; same && k < ft.ndim; k++) same = st_shape(ld->st, idx)[k] == ft.shape[k];
        if (!same)
            return err_set("%s: tensor '%s' has shape %s, %s expects %s", ld->label, st_name(ld->st, idx),
                           st_shape_str(ld->st, idx, have, sizeof have), expect_by, want);
        if (st_read_f32(ld->st, idx, nm->transpose ? ld->tmp : ld->host, ft.numel))
            return -1;
        if (nm->transpose) transpose(ld->host, ld->tmp, ft.shape[0], ft.shape[1]);
        model_param_upload(m, p, (size_t)s * ft.numel, ld->host, ft.numel);
        ld->used[idx] = 1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// saving tensors

typedef struct {
    FileTensor *ft;     // (n) file tensors in order
    Param **param;      // (n) the registry tensor each comes from
    int *slice;         // (n) its slice index
    int *transpose;     // (n)
    int n;
} SavePlan;

static void plan_add(SavePlan *plan, Param *p, int skip) {
    NameMap fb;
    const NameMap *nm = param_map(p, &fb);
    int slices = map_slices(p, nm);
    plan->ft = xrealloc(plan->ft, (size_t)(plan->n + slices) * sizeof(FileTensor));
    plan->param = xrealloc(plan->param, (size_t)(plan->n + slices) * sizeof(Param *));
    plan->slice = xrealloc(plan->slice, (size_t)(plan->n + slices) * sizeof(int));
    plan->transpose = xrealloc(plan->transpose, (size_t)(plan->n + slices) * sizeof(int));
    for (int s = 0; s < slices; s++, plan->n++) {
        map_file_tensor(p, nm, s, skip, &plan->ft[plan->n]);
        plan->param[plan->n] = p;
        plan->slice[plan->n] = s;
        plan->transpose[plan->n] = nm->transpose;
    }
}

static void plan_free(SavePlan *plan) {
    free(plan->ft);
    free(plan->param);
    free(plan->slice);
    free(plan->transpose);
}

// Streams the planned tensors into path (F32), one slice on the host at a time.
static int plan_write(const SavePlan *plan, Model *m, const char *path) {
    StTensorInfo *info = xcalloc((size_t)plan->n + 1, sizeof(StTensorInfo));
    size_t biggest = 1, biggest_t = 1;   // largest slice, largest transposed slice
    for (int i = 0; i < plan->n; i++) {
        info[i].name = plan->ft[i].name;
        info[i].ndim = plan->ft[i].ndim;
        info[i].shape = plan->ft[i].shape;
        if (plan->ft[i].numel > biggest) biggest = plan->ft[i].numel;
        if (plan->transpose[i] && plan->ft[i].numel > biggest_t) biggest_t = plan->ft[i].numel;
    }
    static const char *const meta[] = {"format", "pt", NULL};
    StWriter *w = st_writer_open(path, info, plan->n, meta);
    free(info);
    if (!w) return -1;
    float *host = xmalloc(biggest * sizeof(float));
    float *tmp = xmalloc(biggest_t * sizeof(float));
    for (int i = 0; i < plan->n; i++) {
        const FileTensor *ft = &plan->ft[i];
        size_t at = (size_t)plan->slice[i] * ft->numel;
        if (plan->transpose[i]) {
            // registry slice is [out, in] = [shape[1], shape[0]] of the file tensor
            model_param_download(m, plan->param[i], at, tmp, ft->numel);
            transpose(host, tmp, ft->shape[1], ft->shape[0]);
        } else {
            model_param_download(m, plan->param[i], at, host, ft->numel);
        }
        st_writer_put(w, host, ft->numel);   // errors are sticky; close reports them
    }
    free(host);
    free(tmp);
    return st_writer_close(w);
}

// ----------------------------------------------------------------------------
// config.json

int checkpoint_read_config(const char *dir, ModelConfig *cfg) {
    char path[4096];
    join_path(path, sizeof path, dir, "config.json");
    json_t *root = load_json_object(path);
    if (!root) return -1;
    ModelConfig c = {0};
    int rc = -1;
    const json_t *mt = json_object_get(root, "model_type");
    if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), "gpt2") != 0)) {
        err_set("%s: field 'model_type' is %s%s%s, loralab reads only \"gpt2\" models", path,
                json_is_string(mt) ? "\"" : "", json_is_string(mt) ? json_string_value(mt) : st_json_type_name(mt),
                json_is_string(mt) ? "\"" : "");
        goto done;
    }
    // bounded so that no tensor size can overflow (core/model.h)
    if (get_int_in(root, path, "n_layer", 1, MODEL_MAX_LAYERS, &c.n_layer) ||
        get_int_in(root, path, "n_head", 1, MODEL_MAX_HEADS, &c.n_head) ||
        get_int_in(root, path, "n_embd", 1, MODEL_MAX_EMBD, &c.n_embd))
        goto done;
    // n_positions is the wpe size; very old configs only carry n_ctx
    if (!json_object_get(root, "n_positions") && json_object_get(root, "n_ctx")) {
        if (get_int_in(root, path, "n_ctx", 1, MODEL_MAX_CTX, &c.n_ctx)) goto done;
    } else if (get_int_in(root, path, "n_positions", 1, MODEL_MAX_CTX, &c.n_ctx)) {
        goto done;
    }
    if (get_int_in(root, path, "vocab_size", 1, MODEL_MAX_VOCAB, &c.vocab_size) ||
        get_float(root, path, "layer_norm_epsilon", 0.0, &c.ln_eps))
        goto done;
    if (c.n_embd % c.n_head != 0) {
        err_set("%s: n_embd=%d is not divisible by n_head=%d", path, c.n_embd, c.n_head);
        goto done;
    }
    const json_t *inner = json_object_get(root, "n_inner");
    if (inner && !json_is_null(inner) &&
        !(json_is_integer(inner) && json_integer_value(inner) == 4 * (json_int_t)c.n_embd)) {
        err_set("%s: field 'n_inner' must be null or 4 * n_embd = %d (loralab's MLP width)", path,
                4 * c.n_embd);
        goto done;
    }
    const json_t *act = json_object_get(root, "activation_function");
    if (act) {
        const char *a = json_is_string(act) ? json_string_value(act) : "";
        if (strcmp(a, "gelu_new") && strcmp(a, "gelu_pytorch_tanh") && strcmp(a, "gelu_fast")) {
            err_set("%s: field 'activation_function' must be a tanh GELU (\"gelu_new\"), got %s%s%s",
                    path, *a ? "\"" : "", *a ? a : st_json_type_name(act), *a ? "\"" : "");
            goto done;
        }
    }
    *cfg = c;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static json_t *config_json(const ModelConfig *c, const MethodConfig *mc) {
    json_t *o = json_object();
    json_t *arch = json_array();
    json_array_append_new(arch, json_string(mc->head == HEAD_LM ? "GPT2LMHeadModel"
                                                                : "GPT2ForSequenceClassification"));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "model_type", json_string("gpt2"));
    json_object_set_new(o, "activation_function", json_string("gelu_new"));
    json_object_set_new(o, "n_layer", json_integer(c->n_layer));
    json_object_set_new(o, "n_head", json_integer(c->n_head));
    json_object_set_new(o, "n_embd", json_integer(c->n_embd));
    json_object_set_new(o, "n_positions", json_integer(c->n_ctx));
    json_object_set_new(o, "n_ctx", json_integer(c->n_ctx));
    json_object_set_new(o, "n_inner", json_null());
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "layer_norm_epsilon", json_float(c->ln_eps));
    json_object_set_new(o, "tie_word_embeddings", json_true());
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    if (mc->head != HEAD_LM) {
        json_object_set_new(o, "num_labels", json_integer(mc->n_classes));
        if (mc->head == HEAD_REG) json_object_set_new(o, "problem_type", json_string("regression"));
    }
    return o;
}

// ----------------------------------------------------------------------------
// checkpoints

static int is_base_or_head(const Param *p) { return p->group == PARAM_BASE || p->group == PARAM_HEAD; }

// Leftover tensors: attention mask buffers, the tied LM head and other architectures' heads
// are ignored; a leftover transformer block tensor means config.json and the weights
// disagree (e.g. more layers in the file than n_layer says).
static int check_leftovers(const Loader *ld, const ModelConfig *cfg) {
    for (int i = 0; i < st_count(ld->st); i++) {
        if (ld->used[i]) continue;
        const char *name = st_name(ld->st, i);
        if (!strncmp(name, "transformer.", 12)) name += 12;
        size_t len = strlen(name);
        if (strncmp(name, "h.", 2) != 0) continue;
        if ((len > 10 && !strcmp(name + len - 10, ".attn.bias")) ||
            (len > 17 && !strcmp(name + len - 17, ".attn.masked_bias")))
            continue;
        return err_set("%s: unexpected tensor '%s' (config.json says n_layer=%d)", ld->label,
                       st_name(ld->st, i), cfg->n_layer);
    }
    return 0;
}

int checkpoint_check(const char *dir) {
    ModelConfig cfg;
    if (checkpoint_read_config(dir, &cfg)) return -1;
    char path[4096];
    join_path(path, sizeof path, dir, "model.safetensors");
    SafeTensors *st = st_open(path);
    if (!st) return -1;
    int rc = 0;
    for (int i = 0; i < st_count(st) && !rc; i++) {
        int64_t k = st_find_nonfinite(st, i);
        if (k >= 0)
            rc = err_set("%s: tensor '%s' holds NaN or infinity at element %lld (a corrupt or "
                         "diverged checkpoint)", path, st_name(st, i), (long long)k);
    }
    st_close(st);
    return rc;
}

int checkpoint_load(Model *m, const char *dir) {
    const ModelConfig *mcfg = model_config(m);
    ModelConfig fcfg;
    if (checkpoint_read_config(dir, &fcfg)) return -1;
    char path[4096];
    join_path(path, sizeof path, dir, "config.json");
    const struct { const char *key; int file, model; } dims[] = {
        {"n_layer", fcfg.n_layer, mcfg->n_layer}, {"n_head", fcfg.n_head, mcfg->n_head},
        {"n_embd", fcfg.n_embd, mcfg->n_embd}, {"n_positions", fcfg.n_ctx, mcfg->n_ctx},
        {"vocab_size", fcfg.vocab_size, mcfg->vocab_size}};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++)
        if (dims[k].file != dims[k].model)
            return err_set("%s: %s is %d, but the model was created with %d", path, dims[k].key,
                           dims[k].file, dims[k].model);
    if (fcfg.ln_eps != mcfg->ln_eps)
        return err_set("%s: layer_norm_epsilon is %g, but the model was created with %g", path,
                       (double)fcfg.ln_eps, (double)mcfg->ln_eps);

    join_path(path, sizeof path, dir, "model.safetensors");
    SafeTensors *st = st_open(path);
    if (!st) return -1;
    Loader ld = {.st = st, .label = path, .allow_prefix = 1};
    ld.used = xcalloc((size_t)st_count(st) + 1, 1);
    ld.host = xmalloc(max_slice(m, is_base_or_head, 0) * sizeof(float));
    ld.tmp = xmalloc(max_slice(m, is_base_or_head, 1) * sizeof(float));
    int rc = 0;
    for (int i = 0; i < model_num_params(m) && !rc; i++) {
        Param *p = model_param(m, i);
        if (p->group == PARAM_BASE) {
            rc = load_param(&ld, m, p, "config.json");
        } else if (p->group == PARAM_HEAD) {
            // a base checkpoint has no head: the caller initialises it
            NameMap fb;
            FileTensor ft;
            map_file_tensor(p, param_map(p, &fb), 0, 0, &ft);
            if (loader_find(&ld, ft.name) >= 0) rc = load_param(&ld, m, p, "the model's head");
        }
    }
    if (!rc) rc = check_leftovers(&ld, mcfg);
    free(ld.used);
    free(ld.host);
    free(ld.tmp);
    st_close(st);
    return rc;
}

int checkpoint_save(const Model *cm, const char *dir) {
    Model *m = (Model *)cm;   // the registry accessors are not const; nothing is modified
    if (files_make_dirs(dir)) return -1;
    char path[4096];
    join_path(path, sizeof path, dir, "config.json");
    if (dump_json(config_json(model_config(m), model_method(m)), path)) return -1;
    SavePlan plan = {0};
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        if (is_base_or_head(p)) plan_add(&plan, p, 0);
    }
    join_path(path, sizeof path, dir, "model.safetensors");
    int rc = plan_write(&plan, m, path);
    plan_free(&plan);
    return rc;
}

// ----------------------------------------------------------------------------
// adapters

static int adapter_skip(const Model *m) {
    const MethodConfig *mc = model_method(m);
    return (method_reads(mc) & READS_ADAPTER_SKIP) ? mc->adapter_skip : 0;
}

static int adapter_wanted(const Param *p) {
    return p->group == PARAM_METHOD || p->group == PARAM_HEAD || p->trainable;
}

static int lookup_name(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

static json_t *adapter_config_json(const MethodConfig *mc, const char *base_desc) {
    json_t *o = json_object();
    char peft[32];
    snprintf(peft, sizeof peft, "%s", METHOD_NAMES[mc->kind]);
    for (char *c = peft; *c; c++) *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
    json_object_set_new(o, "peft_type", json_string(peft));
    json_object_set_new(o, "method", json_string(METHOD_NAMES[mc->kind]));
    json_object_set_new(o, "task_type", json_string(mc->head == HEAD_LM ? "CAUSAL_LM" : "SEQ_CLS"));
    json_object_set_new(o, "base_model_name_or_path", base_desc ? json_string(base_desc) : json_null());
    json_object_set_new(o, "r", json_integer(mc->lora_rank));
    json_object_set_new(o, "lora_alpha", json_float(mc->lora_alpha));
    json_object_set_new(o, "lora_dropout", json_float(mc->lora_dropout));
    json_t *targets = json_array();
    for (int t = 0; t < NUM_TARGETS; t++)
        if (mc->lora_targets & (1 << t)) json_array_append_new(targets, json_string(TARGET_NAMES[t]));
    json_object_set_new(o, "target_modules", targets);
    json_object_set_new(o, "lora_init", json_string(LORA_INIT_NAMES[mc->lora_init]));
    json_object_set_new(o, "fan_in_fan_out", json_false());   // lora_A [r, in], lora_B [out, r]
    json_object_set_new(o, "bias", json_string(method_adds(mc) & TRAINS_BIASES ? "all" : "none"));
    json_object_set_new(o, "adapter_r", json_integer(mc->adapter_rank));
    json_object_set_new(o, "adapter_skip", json_integer(mc->adapter_skip));
    json_object_set_new(o, "prefix_lp", json_integer(mc->prefix_lp));
    json_object_set_new(o, "prefix_li", json_integer(mc->prefix_li));
    // the combination, as three fields (the file format predates the mask)
    int also_prefix = mc->combine & METHOD_BIT(METHOD_PREFIX_EMBED) ? METHOD_PREFIX_EMBED
                    : mc->combine & METHOD_BIT(METHOD_PREFIX_LAYER) ? METHOD_PREFIX_LAYER : 0;
    json_object_set_new(o, "also_lora", json_boolean(mc->combine & METHOD_BIT(METHOD_LORA)));
    json_object_set_new(o, "also_bitfit", json_boolean(mc->combine & METHOD_BIT(METHOD_BITFIT)));
    json_object_set_new(o, "also_prefix", also_prefix ? json_string(METHOD_NAMES[also_prefix]) : json_null());
    json_object_set_new(o, "head", json_string(HEAD_NAMES[mc->head]));
    json_object_set_new(o, "n_classes", json_integer(mc->n_classes));
    return o;
}

// Optional fields: absent keeps the default; present must be valid.
static int has(const json_t *o, const char *key) { return json_object_get(o, key) != NULL; }

int adapter_read_config(const char *dir, MethodConfig *out) {
    int peft = peft_is_adapter(dir);
    if (peft < 0) return -1;
    if (peft) return peft_read_config(dir, out);
    char path[4096];
    join_path(path, sizeof path, dir, "adapter_config.json");
    json_t *root = load_json_object(path);
    if (!root) return -1;
    MethodConfig mc;
    method_defaults(&mc);
    int rc = -1;
    const char *s = NULL;
    int k;
    // Only the fields that shape the model or its outputs are needed; training-time fields
    // (lora_dropout, lora_init, ...) are read when present.
    if (get_str(root, path, "method", &s)) goto done;
    if ((k = lookup_name(METHOD_NAMES, METHOD_COUNT, s)) < 0) {
        err_set("%s: field 'method' is \"%s\", not a loralab method", path, s);
        goto done;
    }
    mc.kind = (MethodKind)k;
    // a combination's LoRA part (method prefix_embed with combine [lora], say) is "also_lora"
    const json_t *al = json_object_get(root, "also_lora");
    if (al && !json_is_boolean(al)) {
        err_set("%s: field 'also_lora' must be true or false", path);
        goto done;
    }
    int own_lora = (METHODS[mc.kind].reads & READS_LORA) != 0;
    if (!own_lora && json_is_true(al)) mc.combine |= METHOD_BIT(METHOD_LORA);
    int lora = own_lora || (mc.combine & METHOD_BIT(METHOD_LORA));
    if (((lora || has(root, "r")) && get_int(root, path, "r", 0, &mc.lora_rank)) ||
        ((lora || has(root, "lora_alpha")) && get_float(root, path, "lora_alpha", 0.0, &mc.lora_alpha)) ||
        (has(root, "lora_dropout") && get_float(root, path, "lora_dropout", 0.0, &mc.lora_dropout)))
        goto done;
    const json_t *targets = json_object_get(root, "target_modules");
    if ((lora || targets) && (!targets || !json_is_array(targets))) {
        err_set("%s: field 'target_modules' must be an array of target names", path);
        goto done;
    }
    if (targets) mc.lora_targets = 0;
    for (size_t i = 0; i < json_array_size(targets); i++) {
        const json_t *t = json_array_get(targets, i);
        int ti = json_is_string(t) ? lookup_name(TARGET_NAMES, SITE_COUNT, json_string_value(t)) : -1;
        if (ti < 0) {
            err_set("%s: target_modules[%zu] must be one of q, k, v, o, c_fc, c_proj", path, i);
            goto done;
        }
        mc.lora_targets |= 1 << ti;
    }
    if (has(root, "lora_init")) {
        if (get_str(root, path, "lora_init", &s)) goto done;
        if ((k = lookup_name(LORA_INIT_NAMES, LORA_INIT_COUNT, s)) < 0) {
            err_set("%s: field 'lora_init' must be \"kaiming\" or \"gaussian\", got \"%s\"", path, s);
            goto done;
        }
        mc.lora_init = (LoraInit)k;
    }
    const json_t *ab = json_object_get(root, "also_bitfit");
    if (ab && !json_is_boolean(ab)) {
        err_set("%s: field 'also_bitfit' must be true or false", path);
        goto done;
    }
    if (json_is_true(ab)) mc.combine |= METHOD_BIT(METHOD_BITFIT);
    const json_t *ap = json_object_get(root, "also_prefix");
    if (ap && !(json_is_null(ap) || json_is_string(ap))) {
        err_set("%s: field 'also_prefix' must be null, \"prefix_embed\" or \"prefix_layer\"", path);
        goto done;
    }
    if (json_is_string(ap)) {
        k = lookup_name(METHOD_NAMES, METHOD_COUNT, json_string_value(ap));
        if (k < 0 || !(METHODS[k].adds & ADDS_PREFIX)) {
            err_set("%s: field 'also_prefix' must be null, \"prefix_embed\" or \"prefix_layer\"", path);
            goto done;
        }
        mc.combine |= METHOD_BIT(k);
    }
    unsigned reads = method_reads(&mc);
    int adapter = (reads & READS_ADAPTER) != 0, prefix = (reads & READS_PREFIX) != 0;
    if (((adapter || has(root, "adapter_r")) && get_int(root, path, "adapter_r", 0, &mc.adapter_rank)) ||
        (((reads & READS_ADAPTER_SKIP) || has(root, "adapter_skip")) &&
         get_int(root, path, "adapter_skip", 0, &mc.adapter_skip)) ||
        ((prefix || has(root, "prefix_lp")) && get_int(root, path, "prefix_lp", 0, &mc.prefix_lp)) ||
        ((prefix || has(root, "prefix_li")) && get_int(root, path, "prefix_li", 0, &mc.prefix_li)))
        goto done;
    if (has(root, "head")) {
        if (get_str(root, path, "head", &s)) goto done;
        if ((k = lookup_name(HEAD_NAMES, HEAD_COUNT, s)) < 0) {
            err_set("%s: field 'head' must be \"lm\", \"cls\" or \"reg\", got \"%s\"", path, s);
            goto done;
        }
        mc.head = (HeadKind)k;
    }
    if ((mc.head != HEAD_LM || has(root, "n_classes")) && get_int(root, path, "n_classes", 0, &mc.n_classes))
        goto done;
    *out = mc;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

int adapter_save(const Model *cm, const char *dir, const char *base_desc) {
    Model *m = (Model *)cm;   // the registry accessors are not const; nothing is modified
    if (files_make_dirs(dir)) return -1;
    char path[4096];
    join_path(path, sizeof path, dir, "adapter_config.json");
    if (dump_json(adapter_config_json(model_method(m), base_desc), path)) return -1;
    SavePlan plan = {0};
    for (int i = 0; i < model_num_params(m); i++) {
        Param *p = model_param(m, i);
        if (adapter_wanted(p)) plan_add(&plan, p, adapter_skip(m));
    }
    join_path(path, sizeof path, dir, "adapter_model.safetensors");
    int rc = plan_write(&plan, m, path);
    plan_free(&plan);
    return rc;
}

int adapter_load(Model *m, const char *dir) {
    LAB_ASSERT(!model_lora_merged(m));   // loading factors under merged weights would double-count
    int peft = peft_is_adapter(dir);
    if (peft < 0) return -1;
    if (peft) return peft_load(m, dir);
    MethodConfig fmc;
    if (adapter_read_config(dir, &fmc)) return -1;
    const MethodConfig *mmc = model_method(m);
    char path[4096];
    join_path(path, sizeof path, dir, "adapter_config.json");
    // Shapes and the set of tensors are checked below; these fields change the outputs
    // without changing any shape.
    if (fmc.kind != mmc->kind)
        return err_set("%s: method is %s, but the model was created with %s", path,
                       METHOD_NAMES[fmc.kind], METHOD_NAMES[mmc->kind]);
    if (fmc.head != mmc->head)
        return err_set("%s: head is %s, but the model was created with %s", path,
                       HEAD_NAMES[fmc.head], HEAD_NAMES[mmc->head]);
    int has_lora = 0;
    for (int i = 0; i < model_num_params(m); i++)
        if (!strncmp(model_param(m, i)->name, "lora.", 5)) has_lora = 1;
    if (has_lora && fmc.lora_alpha != mmc->lora_alpha)
        return err_set("%s: lora_alpha is %g, but the model was created with %g", path,
                       (double)fmc.lora_alpha, (double)mmc->lora_alpha);

    join_path(path, sizeof path, dir, "adapter_model.safetensors");
    SafeTensors *st = st_open(path);
    if (!st) return -1;
    char label[4200];
    snprintf(label, sizeof label, "adapter %s", path);
    Loader ld = {.st = st, .label = label, .allow_prefix = 0, .skip = adapter_skip(m)};
    ld.used = xcalloc((size_t)st_count(st) + 1, 1);
    ld.host = xmalloc(max_slice(m, adapter_wanted, 0) * sizeof(float));
    ld.tmp = xmalloc(max_slice(m, adapter_wanted, 1) * sizeof(float));
    int rc = 0;
    for (int i = 0; i < model_num_params(m) && !rc; i++) {
        Param *p = model_param(m, i);
        if (adapter_wanted(p)) rc = load_param(&ld, m, p, "this model");
    }
    for (int i = 0; i < st_count(st) && !rc; i++)
        if (!ld.used[i])
            rc = err_set("%s: unexpected tensor '%s': the model (method %s) has no such trainable "
                         "tensor", label, st_name(st, i), METHOD_NAMES[mmc->kind]);
    free(ld.used);
    free(ld.host);
    free(ld.tmp);
    st_close(st);
    return rc;
}
