// harness/cmd_peft.c — adapters for and from Hugging Face PEFT:
//
//   export --format peft --out DIR SRC      a loralab adapter as a PEFT LoRA adapter
//   merge-adapter --out DIR BASE ADAPTER    base + adapter (loralab's or PEFT's) merged into
//                                           a checkpoint directory that loads as a base
//
// The formats are core/peft.h's and core/checkpoint.h's.
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/model.h"
#include "core/peft.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/store.h"

static int is_adapter_dir(const char *path) {
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%.4000s/adapter_config.json", path);
    return access(cfg, F_OK) == 0;
}

// The adapter directory of the run that spec names, from the database's artifacts.
static int run_adapter(const char *db, const char *spec, char *dir, size_t cap) {
    if (access(db, F_OK) != 0)
        return err_set("'%s' is neither an adapter directory (no adapter_config.json) nor a run: "
                       "results database %s does not exist", spec, db);
    Store *st;
    if (store_open(&st, db, STORE_READONLY)) return -1;
    int64_t id;
    int rc = run_find(st, spec, &id);
    if (!rc) {
        sqlite3_stmt *q = NULL;
        const char *sql = "SELECT path FROM artifacts WHERE run_id = ? AND kind = 'adapter' ORDER BY id DESC LIMIT 1";
        rc = -1;
        if (sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL) == SQLITE_OK &&
            sqlite3_bind_int64(q, 1, id) == SQLITE_OK) {
            int s = sqlite3_step(q);
            if (s == SQLITE_ROW) {
                snprintf(dir, cap, "%s", (const char *)sqlite3_column_text(q, 0));
                rc = 0;
            } else if (s == SQLITE_DONE) {
                err_set("run %lld has no adapter artifact (its adapter is saved when it finishes)", (long long)id);
            } else {
                err_set("%s: %s", db, sqlite3_errmsg(store_db(st)));
            }
        } else {
            err_set("%s: %s", db, sqlite3_errmsg(store_db(st)));
        }
        sqlite3_finalize(q);
    }
    store_close(st);
    return rc;
}

int cmd_export(int argc, char **argv) {
    const char *format = NULL, *out = NULL, *db = STORE_DEFAULT_PATH;
    ArgSpec specs[] = {
        {"--format", ARG_STRING, &format, 0, 0, "output format: peft (required)"},
        {"--out", ARG_STRING, &out, 0, 0, "output adapter directory (required)"},
        {"--db", ARG_STRING, &db, 0, 0, "results database for a run SRC (default " STORE_DEFAULT_PATH ")"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(argc, argv, specs, ns, &ar)) { args_result_free(&ar); return -1; }
    if (ar.help) {
        args_usage(stdout, "export --format peft --out DIR SRC", specs, ns);
        printf("\nSRC: an adapter directory (adapter_config.json + adapter_model.safetensors), or a run:\n"
               "  an id, a hash (prefix) or a selector such as 'sweep=S,lora.rank=8,seed=1'.\n"
               "Writes a LoRA adapter that PEFT's PeftModel.from_pretrained loads on the transformers\n"
               "GPT-2 model of the same shape: factors named base_model.model.transformer.h.{i}.<module>\n"
               ".lora_A.weight [r, d_in] / .lora_B.weight [d_out, r] for the modules attn.c_attn (q, k, v),\n"
               "attn.c_proj (o), mlp.c_fc and mlp.c_proj, fan_in_fan_out true. q, k and v share GPT-2's\n"
               "fused c_attn: their factors become one of the summed rank (A stacked, B block by rows),\n"
               "with rank_pattern / alpha_pattern giving c_attn that rank and an alpha scaled alike, so\n"
               "every update is unchanged. A classification head goes to modules_to_save (score).\n"
               "Refused whole, nothing written: ft and bitfit (use merge-adapter), prefix_embed,\n"
               "prefix_layer, adapter_h/l/p/d, and combinations with bitfit or a prefix.\n");
        args_result_free(&ar);
        return 0;
    }
    if (ar.npositional != 1) {
        args_result_free(&ar);
        err_set("export: expected one SRC (an adapter directory or a run; see --help)");
        return -1;
    }
    char arg[4096], src[4096];
    snprintf(arg, sizeof arg, "%s", ar.positional[0]);
    snprintf(src, sizeof src, "%s", arg);
    args_result_free(&ar);
    if (!format || !out) return err_set("export: --format and --out are required (see --help)");
    if (strcmp(format, "peft")) return err_set("export: --format: unknown format '%s' (expected: peft)", format);
    if (!is_adapter_dir(arg) && run_adapter(db, arg, src, sizeof src)) { err_prefix("export"); return -1; }
    const char *summary = NULL;
    if (peft_export(src, out, &summary)) { err_prefix("export"); return -1; }
    printf("wrote %s: PEFT LoRA adapter, %s\n", out, summary);
    return 0;
}

int cmd_merge_adapter(int argc, char **argv) {
    const char *out = NULL;
    ArgSpec specs[] = {
        {"--out", ARG_STRING, &out, 0, 0, "output checkpoint directory (required)"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(argc, argv, specs, ns, &ar)) { args_result_free(&ar); return -1; }
    if (ar.help) {
        args_usage(stdout, "merge-adapter --out DIR BASE ADAPTER", specs, ns);
        printf("\nBASE: a checkpoint directory (config.json + model.safetensors). ADAPTER: an adapter\n"
               "directory, loralab's or a PEFT LoRA adapter. Writes DIR/config.json and\n"
               "DIR/model.safetensors (F32, GPT-2 names) with W + (alpha / r) B A in every adapted\n"
               "matrix (and the trained tensors of ft / bitfit, and a classification head as\n"
               "score.weight); DIR loads as a base: `base: {checkpoint: DIR}`, eval-lm --checkpoint.\n"
               "Adapters and prefixes add layers a GPT-2 checkpoint cannot hold: refused.\n");
        args_result_free(&ar);
        return 0;
    }
    if (ar.npositional != 2) {
        args_result_free(&ar);
        err_set("merge-adapter: expected BASE and ADAPTER directories (see --help)");
        return -1;
    }
    char base[4096], adapter[4096];
    snprintf(base, sizeof base, "%s", ar.positional[0]);
    snprintf(adapter, sizeof adapter, "%s", ar.positional[1]);
    args_result_free(&ar);
    if (!out) return err_set("merge-adapter: --out is required (see --help)");
    ModelConfig cfg;
    MethodConfig mc;
    if (checkpoint_read_config(base, &cfg) || adapter_read_config(adapter, &mc)) {
        err_prefix("merge-adapter");
        return -1;
    }
    const char *why = method_merge_refusal(&mc);
    if (why) return err_set("merge-adapter: %s: method %s %s", adapter, METHOD_NAMES[mc.kind], why);
    Model *m = model_create(backend_open("cpu", NULL), &cfg, &mc);
    if (!m) { err_prefix("merge-adapter: %s", adapter); return -1; }
    if (checkpoint_load(m, base) || adapter_load(m, adapter) || model_lora_merge(m) ||
        checkpoint_save(m, out)) {
        model_free(m);
        err_prefix("merge-adapter");
        return -1;
    }
    printf("wrote %s: %s merged into %s (method %s)\n", out, adapter, base, METHOD_NAMES[mc.kind]);
    model_free(m);
    return 0;
}
