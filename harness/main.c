// harness/main.c — loralab's entry point: dispatches to one verb (harness/cmd_*.c).
// Exit status: 0 ok, 1 a run failed, 2 usage or input error.
#include <stdio.h>
#include <string.h>

#include "core/backend.h"
#include "harness/commands.h"

static const Command COMMANDS[] = {
    {"sweep", cmd_sweep, "run a YAML grid of experiments, N at a time; resumes where it stopped"},
    {"run", cmd_run, "run one experiment config (a sweep file that expands to one run)"},
    {"init", cmd_init, "write a randomly initialised checkpoint of a preset"},
    {"eval-lm", cmd_eval_lm, "language-model loss of a checkpoint on a text file"},
    {"bench", cmd_bench, "training-step throughput and memory on random tokens"},
    {"params", cmd_params, "trainable / total / head parameter counts of a method on a model shape"},
    {"tasks", cmd_tasks, "list the tasks: split sizes, labels, metrics, baselines"},
    {"status", cmd_status, "runs per sweep by status, and why runs failed"},
    {"query", cmd_query, "read-only SQL on the results database (table, --csv, --json)"},
    {"report", cmd_report, "paper-style tables: table6, table5, methods, runs, table7"},
    {"plot", cmd_plot, "gnuplot figures: params (Figure 2), rank, curves"},
    {"tokenize", cmd_tokenize, "token ids of a file or stdin (byte or gpt2 tokenizer)"},
    {"export", cmd_export, "write a run's adapter (or an adapter directory) as a Hugging Face PEFT adapter"},
    {"merge-adapter", cmd_merge_adapter, "merge an adapter (loralab's or PEFT's) into its base: a checkpoint directory"},
    {"analyze", cmd_analyze, "subspace similarity (Figures 3, 4) and amplification (Table 7) of learned LoRA updates"},
};
enum { NUM_COMMANDS = sizeof COMMANDS / sizeof COMMANDS[0] };

static void usage(FILE *out) {
    fprintf(out, "usage: loralab <command> [options]   (loralab <command> --help for details)\n\n"
                 "commands:\n");
    for (int i = 0; i < NUM_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "\n  --version    version, build configuration and backends\n"
                 "exit status: 0 ok, 1 a run failed, 2 usage or input error\n");
}

static void version(void) {
    const Backend *cpu = backend_open("cpu", NULL);
    printf("loralab %s\nbuild: %s\nbackends: cpu (%s, %d threads)", LORALAB_VERSION,
           LORALAB_BUILD, cpu->kernels(), cpu->threads());
#ifdef LORALAB_CUDA
    printf(", cuda (cuBLAS, cuSOLVER)");
#endif
    printf("\n");
    int n = backend_device_count("cuda");
    for (int i = 0; i < n; i++) {
        char line[256], device[32];
        snprintf(device, sizeof device, "cuda:%d", i);
        if (!backend_describe(device, line, sizeof line)) printf("gpu: %s\n", line);
    }
    if (!n) printf("gpus: none visible\n");
}

int main(int argc, char **argv) {
    int status = 2;
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout); status = 0; goto done;
    }
    if (!strcmp(argv[1], "--version")) { version(); status = 0; goto done; }
    for (int i = 0; i < NUM_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) { status = COMMANDS[i].run(argc - 1, argv + 1); goto done; }
    fprintf(stderr, "loralab: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
done:
    if (fflush(stdout) != 0 || ferror(stdout)) { fprintf(stderr, "loralab: error writing output\n"); return 2; }
    return status;
}
