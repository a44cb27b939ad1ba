// harness/cmd_core.c — the training core's own verbs: init, eval-lm, bench.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/model.h"
#include "core/rng.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/config.h"
#include "harness/memcheck.h"
#include "tasks/task.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void print_memory(FILE *out, const MemoryReport *r) {
    const double MiB = 1024.0 * 1024.0;
    fprintf(out, "memory: weights=%.2f MiB grads=%.2f MiB optimizer=%.2f MiB activations=%.2f MiB total=%.2f MiB\n",
            r->weights / MiB, r->grads / MiB, r->optimizer / MiB, r->activations / MiB,
            (r->weights + r->grads + r->optimizer + r->activations) / MiB);
}

// ----------------------------------------------------------------------------
// init

int cmd_init(int argc, char **argv) {
    const char *preset = NULL, *out = NULL;
    int vocab = 0, seed = -1;
    ArgSpec specs[] = {
        {"--preset", ARG_STRING, &preset, 0, 0, "model preset: nano, micro, small, gpt2, gpt2-medium, gpt2-large"},
        {"--vocab", ARG_INT, &vocab, 1, 1 << 24, "vocabulary size (default: the preset's)"},
        {"--seed", ARG_INT, &seed, 0, 2147483647, "random seed (required)"},
        {"--out", ARG_STRING, &out, 0, 0, "output checkpoint directory (required)"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(argc, argv, specs, ns, &ar)) { args_result_free(&ar); return -1; }
    if (ar.help) { args_usage(stdout, "init --preset NAME [--vocab N] --seed S --out DIR", specs, ns); args_result_free(&ar); return 0; }
    int npos = ar.npositional;
    args_result_free(&ar);
    if (npos) return err_set("init: unexpected argument (see --help)");
    if (!preset || !out || seed < 0) return err_set("init: --preset, --seed and --out are required (see --help)");
    ModelConfig cfg;
    if (model_preset(preset, &cfg)) return -1;
    if (vocab) cfg.vocab_size = vocab;
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = METHOD_NONE;
    Model *m = model_create(backend_open("cpu", NULL), &cfg, &mc);
    if (!m) return -1;
    model_init_random(m, (uint64_t)seed);
    if (checkpoint_save(m, out)) { model_free(m); return -1; }
    ParamCounts pc = model_param_counts(m);
    printf("wrote %s: preset %s, %zu parameters, vocab %d\n", out, preset, pc.total, cfg.vocab_size);
    model_free(m);
    return 0;
}

// ----------------------------------------------------------------------------
// eval-lm

// Loads a base checkpoint (and optionally an adapter) for evaluation. NULL + err_set on failure.
Model *load_model_for_eval(const char *checkpoint, const char *adapter, HeadKind head) {
    ModelConfig cfg;
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = METHOD_NONE;
    if (checkpoint_read_config(checkpoint, &cfg)) return NULL;
    if (adapter && adapter_read_config(adapter, &mc)) return NULL;
    // a classification or regression adapter's loss is not a language-model loss
    static const char *const head_names[3] = {"language-model", "classification", "regression"};
    if (adapter && mc.head != head)
        return err_set("%s: a %s adapter (head %s); this needs a %s adapter", adapter,
                       head_names[mc.head], mc.head == HEAD_CLS ? "cls" : "reg", head_names[head]), NULL;
    Model *m = model_create(backend_open("cpu", NULL), &cfg, &mc);
    if (!m) return NULL;
    if (checkpoint_load(m, checkpoint) || (adapter && adapter_load(m, adapter))) { model_free(m); return NULL; }
    return m;
}

// Mean next-token loss over consecutive blocks of at most n_ctx tokens (the first token of
// each block is context only). Returns the mean; *count gets the number of predicted tokens.
static double eval_lm_tokens(Model *m, const int *ids, size_t n, size_t *count) {
    int T = model_config(m)->n_ctx, Bmax = 8;
    model_reserve(m, Bmax, T);
    int *tok = xmalloc(sizeof(int) * Bmax * T), *tgt = xmalloc(sizeof(int) * Bmax * T);
    int *len = xmalloc(sizeof(int) * Bmax);
    ForwardOptions fo = {0, 0.0f, 0.0f, 0};
    double sum = 0.0;
    *count = 0;
    for (size_t start = 0; start < n;) {
        int B = 0, Tb = 0;
        for (; B < Bmax && start < n; B++) {
            size_t l = n - start < (size_t)T ? n - start : (size_t)T;
            len[B] = (int)l;
            if ((int)l > Tb) Tb = (int)l;
            for (int t = 0; t < T; t++) {
                tok[B * T + t] = t < (int)l ? ids[start + t] : 0;
                tgt[B * T + t] = t + 1 < (int)l ? ids[start + t + 1] : -1;
            }
            start += l;
        }
        // repack rows to the batch's own T (all rows but the last are full)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < Tb; t++) { tok[b * Tb + t] = tok[b * T + t]; tgt[b * Tb + t] = tgt[b * T + t]; }
        Batch bt = {B, Tb, tok, tgt, NULL, NULL, len, NULL};
        float loss = model_forward(m, &bt, &fo);
        int c = model_loss_count(m);
        sum += (double)loss * c;
        *count += (size_t)c;
    }
    free(tok); free(tgt); free(len);
    return *count ? sum / (double)*count : 0.0;
}

int cmd_eval_lm(int argc, char **argv) {
    const char *checkpoint = NULL, *text = NULL, *tokenizer = "byte", *adapter = NULL;
    ArgSpec specs[] = {
        {"--checkpoint", ARG_STRING, &checkpoint, 0, 0, "checkpoint directory (config.json + model.safetensors)"},
        {"--adapter", ARG_STRING, &adapter, 0, 0, "adapter directory to apply on top of the checkpoint"},
        {"--text", ARG_STRING, &text, 0, 0, "text file to evaluate"},
        {"--tokenizer", ARG_STRING, &tokenizer, 0, 0, "tokenizer: byte (default)"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(argc, argv, specs, ns, &ar)) { args_result_free(&ar); return -1; }
    if (ar.help) {
        args_usage(stdout, "eval-lm --checkpoint DIR [--adapter DIR] --text FILE [--tokenizer byte]", specs, ns);
        printf("\nprints: loss=<mean cross-entropy over predicted tokens> tokens=<count>\n");
        args_result_free(&ar);
        return 0;
    }
    int npos = ar.npositional;
    args_result_free(&ar);
    if (npos) return err_set("eval-lm: unexpected argument (see --help)");
    if (!checkpoint || !text) return err_set("eval-lm: --checkpoint and --text are required (see --help)");
    if (strcmp(tokenizer, "byte")) return err_set("eval-lm: --tokenizer: unknown tokenizer '%s' (expected: byte)", tokenizer);
    size_t len;
    char *text_bytes;
    if (task_read_file(text, 0, &text_bytes, &len)) return -1;
    if (len < 2) {   // a loss needs one token of context and one to predict
        free(text_bytes);
        err_set("eval-lm: %s holds %zu bytes: no token to predict (at least 2 needed)", text, len);
        return -1;
    }
    if (checkpoint_check(checkpoint)) { free(text_bytes); return -1; }
    const unsigned char *bytes = (const unsigned char *)text_bytes;
    Model *m = load_model_for_eval(checkpoint, adapter, HEAD_LM);
    if (!m) { free(text_bytes); return -1; }
    if (model_config(m)->vocab_size < 256) {
        err_set("eval-lm: the byte tokenizer needs vocab_size >= 256, %s has %d", checkpoint, model_config(m)->vocab_size);
        model_free(m); free(text_bytes); return -1;
    }
    int *ids = xmalloc(sizeof(int) * (len ? len : 1));
    for (size_t i = 0; i < len; i++) ids[i] = bytes[i];
    size_t count;
    double loss = eval_lm_tokens(m, ids, len, &count);
    free(ids); free(text_bytes);
    model_free(m);
    if (!isfinite(loss)) {
        err_set("eval-lm: the loss is %s: %s holds non-finite weights", isnan(loss) ? "NaN" : "infinite",
                adapter ? adapter : checkpoint);
        return -1;
    }
    printf("loss=%.6f tokens=%zu\n", loss, count);
    return 0;
}

// ----------------------------------------------------------------------------
// bench

// B rows of T random tokens of the model's vocabulary, each row's next token as its target;
// free tok and tgt after.
static Batch random_batch(const Model *m, int B, int T, uint64_t seed, int **tok, int **tgt) {
    int V = model_config(m)->vocab_size;
    *tok = xmalloc(sizeof(int) * B * T);
    *tgt = xmalloc(sizeof(int) * B * T);
    Rng rng = rng_seeded(seed);
    for (int i = 0; i < B * T; i++) (*tok)[i] = (int)(rng_u64(&rng) % (uint64_t)V);
    for (int i = 0; i < B * T; i++) (*tgt)[i] = (i + 1) % T ? (*tok)[i + 1] : -1;
    return (Batch){B, T, *tok, *tgt, NULL, NULL, NULL, NULL};
}

// Mean seconds of one forward (and, when train, backward + AdamW) step over `steps` steps,
// after one warm-up step. gemm (may be NULL) gets the mean GEMM seconds and flops of a timed
// step, from the backend's counters.
static double time_steps(Model *m, int B, int T, int steps, int train, uint64_t seed, double gemm[2]) {
    int *tok, *tgt;
    Batch bt = random_batch(m, B, T, seed, &tok, &tgt);
    ForwardOptions fo = {train, 0.0f, 0.0f, seed};
    OptimConfig oc;
    optim_defaults(&oc);
    oc.total_steps = steps + 1;
    const Backend *be = model_backend(m);
    double t0 = 0, f0 = 0, g0 = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) {
            be->synchronize();
            be->gemm_counters(&f0, &g0);
            t0 = now_seconds();
        }
        model_forward(m, &bt, &fo);
        if (train) {
            model_zero_grad(m);
            model_backward(m);
            model_update(m, &oc, s);
        }
    }
    be->synchronize();
    double dt = (now_seconds() - t0) / steps;
    if (gemm) {
        double f1, g1;
        be->gemm_counters(&f1, &g1);
        gemm[0] = (g1 - g0) / steps;
        gemm[1] = (f1 - f0) / steps;
    }
    free(tok); free(tgt);
    return dt;
}

// The best sgemm rate (GFLOP/s) of this backend at the training step's own linear-layer
// shapes (N = B*T rows: c_attn, c_fc, c_proj) and at 1024^3, each timed for >= 0.2 s.
// GEMM flops per step over this rate bounds tokens/s for any program on the same sgemm.
static double sgemm_best_gflops(const Backend *be, int rows, int C) {
    const int shapes[][3] = {{rows, 3 * C, C}, {rows, 4 * C, C}, {rows, C, 4 * C}, {1024, 1024, 1024}};
    double best = 0;
    for (int s = 0; s < 4; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = be->alloc(sizeof(float) * M * K), *B = be->alloc(sizeof(float) * K * N);
        float *Cm = be->alloc(sizeof(float) * M * N);
        be->gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, Cm, N);   // warm-up: packing buffers, threads
        be->synchronize();
        int iters = 0;
        double t0 = now_seconds(), dt;
        do {
            be->gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, Cm, N);
            be->synchronize();
            iters++;
        } while ((dt = now_seconds() - t0) < 0.2);
        double rate = 2.0 * M * N * K * iters / dt * 1e-9;
        if (rate > best) best = rate;
        be->free(A); be->free(B); be->free(Cm);
    }
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The seconds of n forwards of m timed one by one, after a warm-up, into dt.
static void forward_times(Model *m, int B, int T, int n, double *dt) {
    int *tok, *tgt;
    Batch bt = random_batch(m, B, T, 1, &tok, &tgt);
    ForwardOptions fo = {0, 0.0f, 0.0f, 1};
    const Backend *be = model_backend(m);
    model_forward(m, &bt, &fo);
    for (int s = 0; s < n; s++) {
        be->synchronize();
        double t0 = now_seconds();
        model_forward(m, &bt, &fo);
        be->synchronize();
        dt[s] = now_seconds() - t0;
    }
    free(tok); free(tgt);
}

// The median and the minimum of n > 0 values (sorts them).
static void median_min(double *x, int n, double *median, double *min) {
    qsort(x, n, sizeof(double), cmp_double);
    *median = n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
    *min = x[0];
}

// Table 1 of the paper: forward latency of the base model, merged LoRA and two adapters, each
// the median of `steps` forwards: a latency, which a stall of the machine during one forward
// does not move as it moves a mean. The forwards are timed in INFERENCE_ROUNDS rounds that
// take the methods in turn (each round builds its model anew, so only one is in memory), so
// that a slow spell of the machine reaches every method rather than the one it falls on.
// The minimum is printed too: the same work runs no faster than it, so a slow spell that
// still moved a median (merged LoRA runs exactly base's products) cannot move it.
enum { INFERENCE_ROUNDS = 4 };
static int bench_inference(const ModelConfig *cfg, int steps) {
    static const int shapes[][2] = {{1, 128}, {16, 256}, {32, 512}};
    enum { METHODS = 4 };
    static const MethodKind kinds[METHODS] = {METHOD_NONE, METHOD_LORA, METHOD_ADAPTER_H, METHOD_ADAPTER_L};
    static const char *labels[METHODS] = {"base", "lora (merged)", "adapter_h", "adapter_l"};
    printf("inference latency (forward only), n_layer=%d n_embd=%d, median and minimum of %d forwards in %d rounds "
           "alternating the methods, adapter/lora r=8\n", cfg->n_layer, cfg->n_embd, steps, INFERENCE_ROUNDS);
    printf("%-8s %-8s %-16s %12s %10s %10s %10s\n", "batch", "seq", "method", "median_ms", "min_ms", "overhead",
           "(by min)");
    double *dt = xmalloc(sizeof(double) * METHODS * steps);
    for (int s = 0; s < 3; s++) {
        int B = shapes[s][0], T = shapes[s][1];
        if (T > cfg->n_ctx) { printf("%-8d %-8d (skipped: seq > n_ctx %d)\n", B, T, cfg->n_ctx); continue; }
        for (int r = 0; r < INFERENCE_ROUNDS; r++) {
            int from = steps * r / INFERENCE_ROUNDS, count = steps * (r + 1) / INFERENCE_ROUNDS - from;
            for (int k = 0; k < METHODS && count > 0; k++) {
                MethodConfig mc;
                method_defaults(&mc);
                mc.kind = kinds[k];
                Model *m = model_create(backend_open("cpu", NULL), cfg, &mc);
                if (!m) { free(dt); return -1; }
                model_init_random(m, 1);
                if (kinds[k] == METHOD_LORA && model_lora_merge(m)) { model_free(m); free(dt); return -1; }
                forward_times(m, B, T, count, dt + (size_t)k * steps + from);
                model_free(m);
            }
        }
        double base, base_min;
        median_min(dt, steps, &base, &base_min);
        for (int k = 0; k < METHODS; k++) {
            double t, t_min;
            median_min(dt + (size_t)k * steps, steps, &t, &t_min);
            printf("%-8d %-8d %-16s %12.3f %10.3f %9.1f%% %9.1f%%\n", B, T, labels[k], t * 1e3, t_min * 1e3,
                   100.0 * (t - base) / base, 100.0 * (t_min - base_min) / base_min);
        }
    }
    free(dt);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *preset = "micro";
    int batch = 16, seq = 128, steps = 10, threads = 0, inference = 0, ctx = 0;
    ArgSpec specs[] = {
        {"--preset", ARG_STRING, &preset, 0, 0, "model preset (default micro)"},
        {"--batch", ARG_INT, &batch, 1, 4096, "batch size (default 16)"},
        {"--seq", ARG_INT, &seq, 1, 1 << 20, "sequence length (default 128)"},
        {"--steps", ARG_INT, &steps, 1, 1000000, "timed steps after one warm-up step (default 10)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "CPU threads (default: all cores)"},
        {"--inference", ARG_FLAG, &inference, 0, 0, "forward latency at the paper's Table 1 shapes instead"},
        {"--ctx", ARG_INT, &ctx, 1, 1 << 16, "override the preset's n_ctx (random weights: e.g. micro at 512 for seq 512)"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(argc, argv, specs, ns, &ar)) { args_result_free(&ar); return -1; }
    if (ar.help) {
        args_usage(stdout, "bench [--preset NAME] [--batch B] [--seq T] [--steps N] [--threads K] [--ctx N] [--inference] [method=M key=value ...]",
                   specs, ns);
        printf("\ntraining steps (forward, backward, AdamW) on random tokens; prints tokens_per_s=<value>\n"
               "and the memory report. key=value options select the method, e.g. method=lora lora.rank=8 lora.targets=q,v\n");
        args_result_free(&ar);
        return 0;
    }
    // method options as the sweep file's dotted keys: method=lora lora.rank=8 ...
    RunConfig rc;
    config_defaults(&rc);
    rc.method = METHOD_FT;
    for (int i = 0; i < ar.npositional; i++)
        if (config_apply_override(&rc, ar.positional[i])) { args_result_free(&ar); return -1; }
    args_result_free(&ar);
    MethodConfig mc;
    if (config_to_method(&rc, &mc)) return -1;
    const Backend *be = backend_open("cpu", &(BackendOptions){.threads = threads > 0 ? threads : -1});
    ModelConfig cfg;
    if (model_preset(preset, &cfg)) return -1;
    if (ctx) cfg.n_ctx = ctx;
    if (inference) return bench_inference(&cfg, steps) ? -1 : 0;
    if (seq > cfg.n_ctx) return err_set("bench: --seq %d is larger than the preset's n_ctx %d", seq, cfg.n_ctx);
    // before allocating: a step that cannot fit fails now with the figures, not by the OOM killer
    MemoryReport need;
    char what[160];
    snprintf(what, sizeof what, "bench: preset %s, method %s, batch %d x seq %d", preset, METHOD_NAMES[mc.kind], batch, seq);
    if (model_memory_need(&cfg, &mc, batch, seq, &need) || memcheck_fits(what, &need)) return -1;
    Model *m = model_create(be, &cfg, &mc);
    if (!m) return -1;
    model_init_random(m, 1);
    double gemm[2];   // seconds, flops
    double dt = time_steps(m, batch, seq, steps, 1, 1, gemm);
    double gemm_flops = gemm[1], gemm_ms = gemm[0] * 1e3;
    double sgemm = sgemm_best_gflops(be, batch * seq, cfg.n_embd);
    ParamCounts pc = model_param_counts(m);
    printf("preset=%s method=%s precision=%s batch=%d seq=%d threads=%d trainable=%zu total=%zu\n", preset,
           METHOD_NAMES[mc.kind], PRECISION_NAMES[mc.precision], batch, seq, be->threads(), pc.trainable, pc.total);
    printf("kernels: %s\n", be->kernels());
    printf("step_ms=%.3f\n", dt * 1e3);
    printf("tokens_per_s=%.1f\n", batch * seq / dt);
    // Where a step goes: inside the GEMMs, and everything else (element-wise ops, softmax,
    // layernorm, AdamW), as means over the timed steps.
    double step_all_ms = dt * 1e3;
    printf("gemm_ms=%.3f other_ms=%.3f other_share=%.3f\n", gemm_ms, step_all_ms - gemm_ms,
           (step_all_ms - gemm_ms) / step_all_ms);
    // Upper bound: every GEMM at sgemm's best measured rate and every other op free.
    printf("gemm_flops_per_step=%.0f sgemm_gflops=%.1f gemm_bound_tokens_per_s=%.1f\n",
           gemm_flops, sgemm, batch * seq / (gemm_flops / (sgemm * 1e9)));
    MemoryReport mr = model_memory(m);
    print_memory(stdout, &mr);
    model_free(m);
    return 0;
}
