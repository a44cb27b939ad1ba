// harness/main.c — loralab's entry point: dispatches to one verb (harness/cmd_*.c).
// Exit status: 0 ok, 1 a run failed, 2 usage or input error. A verb that fails returns -1 with
// a message and its class (core/errors.h); main is the one place that turns it into a status.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/errors.h"
#include "harness/commands.h"

// OpenMP threads must not spin long while they wait: two loralab processes (two sweeps, or a
// sweep beside a bench) each spinning on every core (libgomp's default: 300000 turns) slowed
// each other down about 50x. Sleeping at once (OMP_WAIT_POLICY=passive alone) costs a futex
// wake-up at each of a step's parallel regions (about 190 on micro). A 1000-turn spin before sleeping keeps
// most of both (micro bf16 on 2 cores: 31-35 ms per step alone against passive's 36-48, and
// two processes at 58-61 ms each against passive's 52-62).
// libgomp reads its environment once, in its constructor, before main() runs, and has no
// call to change it later (and glibc resets the environment after an executable's
// .preinit_array runs), so when the user set neither variable main() sets both and runs the
// program again, once. If that exec fails the program goes on with libgomp's defaults.
#define OMP_SPIN_TURNS "1000"
static void omp_wait_default(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0 || setenv("GOMP_SPINCOUNT", OMP_SPIN_TURNS, 1) != 0) return;
    execv("/proc/self/exe", argv);
}

static const Command COMMANDS[] = {
    {"sweep", cmd_sweep, "run a YAML grid of experiments, --jobs N at a time, --threads T each; resumes where it stopped"},
    {"run", cmd_run, "run one experiment config (a sweep file that expands to one run)"},
    {"pretrain", cmd_pretrain, "pretrain a preset until its validation loss flattens, resumably, with provenance"},
    {"init", cmd_init, "write a randomly initialised checkpoint of a preset"},
    {"eval-lm", cmd_eval_lm, "language-model loss of a checkpoint on a text file"},
    {"bench", cmd_bench, "training-step throughput and memory on random tokens"},
    {"params", cmd_params, "trainable / total / head parameter counts of a method on a model shape"},
    {"tasks", cmd_tasks, "list the tasks: split sizes, labels, metrics, baselines"},
    {"status", cmd_status, "runs per sweep by status, running runs with their CPU threads, why runs failed"},
    {"query", cmd_query, "read-only SQL on the results database (table, --csv, --json)"},
    {"report", cmd_report, "paper-style tables: table6, table5, methods, runs, table7"},
    {"plot", cmd_plot, "gnuplot figures: params (Figure 2), rank, curves"},
    {"tokenize", cmd_tokenize, "token ids of a file or stdin (byte or gpt2 tokenizer)"},
    {"export", cmd_export, "write a run's adapter (or an adapter directory) as a Hugging Face PEFT adapter"},
    {"merge-adapter", cmd_merge_adapter, "merge an adapter (loralab's or PEFT's) into its base: a checkpoint directory"},
    {"analyze", cmd_analyze, "subspace similarity (Figures 3, 4) and amplification (Table 7) of learned LoRA updates"},
    {"worker", cmd_worker, "one Slurm array task: train one run of a plan into its own result shard"},
    {"merge", cmd_merge, "fold finished Slurm result shards into the database (idempotent)"},
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

// The exit status of a failure of class cls: bad usage or input 2; a failed run, a failed
// external program (gnuplot) or a failed system call 1.
static int exit_status(ErrClass cls) {
    switch (cls) {
    case ERR_INPUT: return EXIT_INPUT;
    case ERR_RUN: return EXIT_RUN_FAILED;
    case ERR_TOOL: return EXIT_RUN_FAILED;
    case ERR_INTERNAL: return EXIT_RUN_FAILED;
    }
    return EXIT_INPUT;
}

int main(int argc, char **argv) {
    int status = 2;
    omp_wait_default(argv);
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout); status = 0; goto done;
    }
    if (!strcmp(argv[1], "--version")) { version(); status = 0; goto done; }
    for (int i = 0; i < NUM_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) {
            status = COMMANDS[i].run(argc - 1, argv + 1);
            if (status >= 0) goto done;
            fprintf(stderr, "loralab: %s\n", err_msg()[0] ? err_msg() : "error");
            return exit_status(err_class());
        }
    fprintf(stderr, "loralab: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
done:
    if (fflush(stdout) != 0 || ferror(stdout)) { fprintf(stderr, "loralab: error writing output\n"); return 2; }
    return status;
}
