// harness/analyze_run.c — a run's LoRA adapter and base weights, loaded for the analyses.
// See analyze_run.h.
#include "harness/analyze_run.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/files.h"

// ----------------------------------------------------------------------------
// a run's LoRA factors (and base weights)

void rundata_free(RunData *r) {
    free(r->adapter);
    if (r->m) model_free(r->m);
    for (int t = 0; t < NUM_TARGETS; t++) free(r->W[t]);
    memset(r, 0, sizeof *r);
}

// base_model_name_or_path of the adapter, or "" (null / missing).
static int adapter_base(const char *adapter, char *out, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", adapter);
    json_error_t e;
    if (files_check_regular(path, "an adapter config")) return -1;
    json_t *root = json_load_file(path, 0, &e);
    if (!root) return err_set("%s: %s", path, e.text);
    const json_t *b = json_object_get(root, "base_model_name_or_path");
    snprintf(out, cap, "%s", json_is_string(b) ? json_string_value(b) : "");
    json_decref(root);
    return 0;
}

// Base weight matrix of target t in layer l, as [d_out, d_in], inside the stacked tensor.
static const float *base_weight(Model *m, int t, int l, int *d_out, int *d_in) {
    LoraSlice w;
    const float *W = model_site_weight(m, (LoraSite)t, l, &w);
    LAB_ASSERT(W);
    *d_out = w.d_out;
    *d_in = w.d_in;
    return W;
}

static int rundata_load(RunData *r, int with_base, int want, const char *base_override);

// Loads run id: config, adapter, and (with_base) the base weights of the targets in `want`.
int rundata_open(Store *st, int64_t id, int with_base, int want, RunData *r) {
    memset(r, 0, sizeof *r);
    r->id = id;
    sqlite3 *db = store_db(st);
    const char *sql = "SELECT hash, config, status, method FROM runs WHERE id = ?";
    sqlite3_stmt *q = NULL;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(q, 1, id), sql);
    int rc = sqlite3_step(q);
    SQL_CHECK(db, rc, sql);
    if (rc != SQLITE_ROW) { sqlite3_finalize(q); return err_set("no run with id %lld", (long long)id); }
    snprintf(r->hash, sizeof r->hash, "%s", sqlite3_column_text(q, 0) ? (const char *)sqlite3_column_text(q, 0) : "");
    snprintf(r->status, sizeof r->status, "%s", sqlite3_column_text(q, 2) ? (const char *)sqlite3_column_text(q, 2) : "?");
    const char *cfg = (const char *)sqlite3_column_text(q, 1);
    if (config_from_json(cfg ? cfg : "{}", &r->rc)) {
        sqlite3_finalize(q);
        return err_prefix("run %lld", (long long)id);
    }
    sqlite3_finalize(q);
    q = NULL;
    if (!config_uses_lora(&r->rc))
        return err_set("run %lld (%.8s) has no LoRA tensors: its method is %s; only runs with method "
                       "lora or combine: [lora] can be analysed", (long long)id, r->hash,
                       METHOD_NAMES[r->rc.method]);
    sql = "SELECT path FROM artifacts WHERE run_id = ? AND kind = 'adapter' ORDER BY id DESC LIMIT 1";
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(q, 1, id), sql);
    rc = sqlite3_step(q);
    SQL_CHECK(db, rc, sql);
    if (rc == SQLITE_ROW) r->adapter = xstrdup((const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    q = NULL;
    if (!r->adapter)
        return err_set("run %lld (%.8s, status %s) has no adapter artifact: its LoRA tensors are saved "
                       "when it finishes", (long long)id, r->hash, r->status);
    snprintf(r->label, sizeof r->label, "run %lld", (long long)id);
    snprintf(r->tag, sizeof r->tag, "%lld", (long long)id);
    return rundata_load(r, with_base, want, NULL);
fail:
    sqlite3_finalize(q);
    return -1;
}

// An adapter directory given as RUN (loralab's or PEFT's): its base is `base` (--base), else
// the directory base_model_name_or_path names.
int rundata_open_dir(const char *dir, const char *base, int with_base, int want, RunData *r) {
    memset(r, 0, sizeof *r);
    config_defaults(&r->rc);
    snprintf(r->status, sizeof r->status, "done");
    snprintf(r->label, sizeof r->label, "adapter %s", dir);
    const char *name = strrchr(dir, '/');
    name = name && name[1] ? name + 1 : dir;
    size_t k = 0;
    for (; name[k] && k + 1 < sizeof r->tag; k++) {
        char c = name[k];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        r->tag[k] = ok ? c : '_';
    }
    r->tag[k] = 0;
    r->adapter = xstrdup(dir);
    return rundata_load(r, with_base, want, base);
}

// The adapter of r (r->adapter set) and, with_base, the base weights of the targets in want.
static int rundata_load(RunData *r, int with_base, int want, const char *base_override) {
    if (adapter_read_config(r->adapter, &r->mc)) return err_prefix("%s", r->label);
    if (!method_uses_lora(&r->mc) || !r->mc.lora_targets)
        return err_set("%s: adapter %s has no LoRA tensors (method %s)", r->label, r->adapter,
                       METHOD_NAMES[r->mc.kind]);
    if (base_override) snprintf(r->base, sizeof r->base, "%s", base_override);
    else if (adapter_base(r->adapter, r->base, sizeof r->base)) return err_prefix("%s", r->label);
    if (!r->base[0]) snprintf(r->base, sizeof r->base, "%s", r->rc.base_checkpoint);
    if (r->base[0] && access(r->base, F_OK) == 0) {
        if (checkpoint_read_config(r->base, &r->cfg)) return err_prefix("%s: base", r->label);
    } else if (with_base || r->id == 0) {
        return err_set("%s: base checkpoint '%s' (%s) not found: %s", r->label,
                       r->base[0] ? r->base : "(none recorded)",
                       base_override ? "--base" : "adapter_config.json base_model_name_or_path",
                       r->id ? "Table 7 needs the base weights"
                             : "give the checkpoint directory the adapter applies to with --base DIR");
    } else if (config_to_model(&r->rc, &r->cfg)) {
        return err_prefix("%s", r->label);
    }
    r->m = model_create(backend_open("cpu", NULL), &r->cfg, &r->mc);
    if (!r->m) return err_prefix("%s: adapter %s", r->label, r->adapter);
    if (with_base) {
        if (checkpoint_load(r->m, r->base)) return err_prefix("%s", r->label);
        // copied before adapter_load: a trainable base tensor (combinations) would be overwritten
        const Backend *be = model_backend(r->m);
        for (int t = 0; t < NUM_TARGETS; t++) {
            if (!(want & r->mc.lora_targets & (1 << t))) continue;
            int d_out, d_in, L = r->cfg.n_layer;
            base_weight(r->m, t, 0, &d_out, &d_in);
            r->W[t] = xmalloc((size_t)L * d_out * d_in * sizeof(float));
            for (int l = 0; l < L; l++)
                be->to_host(r->W[t] + (size_t)l * d_out * d_in, base_weight(r->m, t, l, &d_out, &d_in),
                            (size_t)d_out * d_in * sizeof(float));
        }
    }
    if (adapter_load(r->m, r->adapter)) return err_prefix("%s", r->label);
    return 0;
}

// Host copies of target t's factors: A (L, r, d_in), B (L, d_out, r); caller frees.
void lora_factors(RunData *r, int t, float **A, float **B, int *rank, int *d_out, int *d_in) {
    char name[64];
    snprintf(name, sizeof name, "lora.%s.A", TARGET_NAMES[t]);
    Param *pa = model_find_param(r->m, name);
    snprintf(name, sizeof name, "lora.%s.B", TARGET_NAMES[t]);
    Param *pb = model_find_param(r->m, name);
    LAB_ASSERT(pa && pb && pa->ndim == 3 && pb->ndim == 3);
    const Backend *be = model_backend(r->m);
    *rank = pa->shape[1];
    *d_in = pa->shape[2];
    *d_out = pb->shape[1];
    *A = xmalloc(pa->numel * sizeof(float));
    *B = xmalloc(pb->numel * sizeof(float));
    be->to_host(*A, pa->data, pa->numel * sizeof(float));
    be->to_host(*B, pb->data, pb->numel * sizeof(float));
    be->synchronize();
}
