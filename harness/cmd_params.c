// harness/cmd_params.c — `loralab params`: trainable / total / head parameter counts of a
// method on a model shape, from the registry alone (no weights are allocated, so GPT-3-sized
// shapes given by a config.json count instantly).
//
//   loralab params --preset gpt2-medium method=lora lora.targets=q,v lora.rank=4
//   trainable=393216 total=354823168 head=0
#include <stdio.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/model.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/config.h"

static const char *USAGE = "params (--preset NAME | --config DIR) [--classes N] [method=M] [key=value ...]";

int cmd_params(int argc, char **argv) {
    const char *preset = NULL, *config_dir = NULL;
    int classes = 0;
    ArgSpec specs[] = {
        {"--preset", ARG_STRING, &preset, 0, 0, "model preset (nano, micro, small, gpt2, gpt2-medium, gpt2-large)"},
        {"--config", ARG_STRING, &config_dir, 0, 0, "directory whose config.json gives the shape (no weights read)"},
        {"--classes", ARG_INT, &classes, 0, 1 << 20, "classification head with N classes (1: regression); 0: LM head"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    ArgResult ar;
    int status = -1;
    if (args_parse(argc, argv, specs, NSPECS, &ar)) { args_result_free(&ar); return -1; }
    if (ar.help) {
        args_usage(stdout, USAGE, specs, NSPECS);
        printf("\nprints: trainable=<n> total=<n> head=<n> (trainable excludes the head; total is the base\n"
               "model plus the method's tensors; head is the task head alone)\n\n");
        config_print_keys(stdout);
        status = EXIT_OK;
        goto done;
    }
    if (!preset == !config_dir) { err_set("params: give exactly one of --preset NAME or --config DIR"); goto fail; }

    // The shape goes into the RunConfig so that validation names the model.
    RunConfig c;
    config_defaults(&c);
    if (preset && config_set(&c, "base.preset", preset)) { err_prefix("--preset"); goto fail; }
    if (config_dir && config_set(&c, "base.checkpoint", config_dir)) { err_prefix("--config"); goto fail; }
    for (int i = 0; i < ar.npositional; i++) {
        if (!strchr(ar.positional[i], '=')) {
            err_set("params: unexpected argument '%s' (expected key=value, e.g. method=lora)", ar.positional[i]);
            goto fail;
        }
        if (config_apply_override(&c, ar.positional[i])) goto fail;
    }
    if (config_validate(&c)) goto fail;

    ModelConfig mcfg;
    MethodConfig mc;
    if (config_to_model(&c, &mcfg) || config_to_method(&c, &mc)) goto fail;
    if (classes == 1) { mc.head = HEAD_REG; mc.n_classes = 1; }
    else if (classes > 1) { mc.head = HEAD_CLS; mc.n_classes = classes; }
    ParamCounts pc;
    if (model_count_params(&mcfg, &mc, &pc)) goto fail;
    printf("trainable=%zu total=%zu head=%zu\n", pc.trainable, pc.total, pc.head);
    status = EXIT_OK;
    goto done;
fail:
    args_result_free(&ar);
    return -1;
done:
    args_result_free(&ar);
    return status;
}
