// harness/cmd_sweep.c — the verbs `sweep` (a YAML grid, N runs at a time, resumable) and
// `run` (one config), and the worker each run executes in its own process.
#define _GNU_SOURCE   // sched_getaffinity, CPU_COUNT
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/backend_cuda.h"
#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/files.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/config.h"
#include "harness/memcheck.h"
#include "harness/runner.h"
#include "harness/sched.h"
#include "harness/slurm.h"
#include "harness/store.h"
#include "harness/sweepfile.h"
#include "tasks/metrics.h"
#include "tasks/task.h"

enum { MAX_DEVICES = 64 };

typedef struct {
    const char *db_path;
    const char *results_dir;
    int threads_per_run;
    int threads_flag;                 // --threads as given (0: the cores divided among the runs at once)
    int retry_failed;                 // --retry-failed: workers may claim failed runs
    int n_devices;                    // --devices: runs whose device is plain "cuda" take
    char devices[MAX_DEVICES][24];    // devices[slot % n_devices]: "cuda:N", N any int
} WorkerContext;

// The metric a run's report reads first: the task's primary metric.
static const char *primary_metric(const char *task, const char *path) {
    Task *t = NULL;
    if (task_load(task, path[0] ? path : NULL, NULL, &t)) return NULL;
    static char name[32];
    snprintf(name, sizeof name, "%s", t->n_metrics ? t->metrics[0] : "loss");
    task_free(t);
    return name;
}

static void targets_str(int mask, char *buf, size_t cap) {
    buf[0] = '\0';
    for (int t = 0; t < NUM_TARGETS; t++)
        if (mask & (1 << t)) {
            size_t n = strlen(buf);
            snprintf(buf + n, cap - n, "%s%s", n ? "," : "", TARGET_NAMES[t]);
        }
}

// A run's method and size as the store's label column and the sweep's messages show them.
static void run_label(const RunConfig *rc, char *label, size_t cap) {
    label[0] = '\0';
    if (config_uses_adapter(rc)) snprintf(label, cap, "r=%d", rc->adapter_rank);
    else if (config_uses_prefix(rc)) snprintf(label, cap, "lp=%d li=%d", rc->prefix_lp, rc->prefix_li);
    if (rc->precision != PRECISION_FP32)
        snprintf(label + strlen(label), cap - strlen(label), "%s%s", label[0] ? " " : "", PRECISION_NAMES[rc->precision]);
}

// One pending row per run (existing hashes are linked, not duplicated); ids[i] (may be NULL)
// receives each run's id.
static int register_list(Store *st, int64_t sweep_id, const RunConfig *runs, char (*hashes)[65], int n, int64_t *ids) {
    const char *metric_cache_task = "", *metric = NULL;
    for (int i = 0; i < n; i++) {
        const RunConfig *rc = &runs[i];
        if (strcmp(metric_cache_task, rc->task)) { metric = primary_metric(rc->task, rc->task_path); metric_cache_task = rc->task; }
        char *json = config_to_json(rc), targets[64] = "", label[64] = "";
        int lora = config_uses_lora(rc);
        if (lora) targets_str(rc->lora_targets, targets, sizeof targets);
        run_label(rc, label, sizeof label);
        RunSpec spec = {hashes[i], json, rc->task, metric, METHOD_NAMES[rc->method], lora ? targets : NULL,
                        lora ? rc->lora_rank : -1, lora ? rc->lora_alpha : -1, rc->seed, label[0] ? label : NULL};
        int64_t id;
        int rc_ = store_add_run(st, sweep_id, &spec, &id, NULL);
        free(json);
        if (rc_) return -1;
        if (ids) ids[i] = id;
    }
    return 0;
}

static int register_runs(Store *st, int64_t sweep_id, const Sweep *sw) {
    return register_list(st, sweep_id, sw->runs, sw->hashes, sw->nruns, NULL);
}

// Runs in the worker process: claim, log to results/runs/<hash>/log.txt, train, record.
static int run_worker(int64_t run_id, int slot, int progress_fd, void *ctx_) {
    const WorkerContext *ctx = ctx_;
    Store *st;
    if (store_open(&st, ctx->db_path, 0)) {
        fprintf(stderr, "loralab: worker: %s\n", err_msg());
        sched_worker_error(progress_fd, err_msg());
        return EXIT_RUN_FAILED;
    }
    char *hash = NULL, *json = NULL;
    RunConfig rc;
    int claimed = 0, status = EXIT_RUN_FAILED;
    if (store_run_config(st, run_id, &hash, &json) || config_from_json(json, &rc)) goto fail;
    if (store_claim_run(st, run_id, (int)getpid(), NULL, rc.device, ctx->retry_failed, &claimed)) goto fail;
    if (!claimed) { status = SCHED_EXIT_TAKEN; goto out; }   // another worker has it, or it is settled
    char run_dir[1024], log_path[1100];
    snprintf(run_dir, sizeof run_dir, "%s/runs/%s", ctx->results_dir, hash);
    if (files_make_dirs(run_dir)) goto fail;
    snprintf(log_path, sizeof log_path, "%s/log.txt", run_dir);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) { dup2(fd, STDOUT_FILENO); dup2(fd, STDERR_FILENO); close(fd); }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const Backend *cpu = backend_open("cpu", &(BackendOptions){.threads = ctx->threads_per_run > 0 ? ctx->threads_per_run : -1});
    // `loralab status` shows it beside the running run
    if (store_add_metric(st, run_id, 0, "train", "threads", cpu->threads())) goto fail;
    // one run per GPU: a plain "cuda" run takes this worker slot's device
    const char *device = !strcmp(rc.device, "cuda") && ctx->n_devices ? ctx->devices[slot % ctx->n_devices] : NULL;
    RunnerOptions ro = {ctx->results_dir, NULL, progress_fd, device};
    if (runner_execute(st, run_id, &rc, hash, &ro)) goto fail;
    status = 0;
    goto out;
fail:
    fprintf(stderr, "loralab: run %lld failed: %s\n", (long long)run_id, err_msg());
    // the parent records it if we cannot (database locked, disk full)
    sched_worker_error(progress_fd, err_msg());
    if (claimed) {
        char why[1024];
        snprintf(why, sizeof why, "%s", err_msg());
        if (store_fail_run(st, run_id, RUN_FAILED, why))
            fprintf(stderr, "loralab: run %lld: could not record the failure: %s\n", (long long)run_id, err_msg());
    }
out:
    free(hash);
    free(json);
    store_close(st);
    return status;
}

// CUDA devices visible, counted in a child process: a parent that initialises CUDA cannot
// hand a usable GPU to the workers it forks.
static int cuda_devices_in_child(void) {
    pid_t pid = fork();
    if (pid == 0) _exit(backend_device_count("cuda") & 0x7f);
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws)) return 0;
    return WEXITSTATUS(ws);
}

// Every run's device must exist before any run starts (exit 2 otherwise); fills ctx->devices.
static int check_devices(const Sweep *sw, const char *devices, WorkerContext *ctx) {
    int need_cuda = 0;
    for (int i = 0; i < sw->nruns; i++) need_cuda |= strcmp(sw->runs[i].device, "cpu") != 0;
    if (strcmp(devices, "cpu")) {   // an explicit list: "cuda:0,cuda:1"
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", devices);
        for (char *tok = strtok(buf, ","); tok && ctx->n_devices < MAX_DEVICES; tok = strtok(NULL, ",")) {
            int index;
            if (strncmp(tok, "cuda:", 5) || sscanf(tok + 5, "%d", &index) != 1 || index < 0)
                return err_set("--devices: expected cpu or a list like cuda:0,cuda:1, got '%s'", tok);
            snprintf(ctx->devices[ctx->n_devices++], sizeof ctx->devices[0], "cuda:%d", index);
        }
        need_cuda = 1;
    }
    if (!need_cuda) return 0;
    int count = cuda_devices_in_child();
    if (count == 0) {
        char why[256];
        backend_open("cuda:0", NULL);   // for its message; the sweep stops here
        snprintf(why, sizeof why, "%s", err_msg());
        return err_set("this sweep asks for a GPU: %s; use device: cpu", why);
    }
    for (int i = 0; i < ctx->n_devices; i++)
        if (atoi(ctx->devices[i] + 5) >= count)
            return err_set("--devices: %s does not exist (%d CUDA devices: cuda:0 .. cuda:%d)", ctx->devices[i], count, count - 1);
    for (int i = 0; i < sw->nruns; i++) {
        const char *d = sw->runs[i].device;
        if (!strncmp(d, "cuda:", 5) && atoi(d + 5) >= count)
            return err_set("device %s does not exist (%d CUDA devices: cuda:0 .. cuda:%d)", d, count, count - 1);
    }
    if (!ctx->n_devices)   // default: every visible GPU, one run each
        for (int i = 0; i < count && i < MAX_DEVICES; i++) snprintf(ctx->devices[ctx->n_devices++], sizeof ctx->devices[0], "cuda:%d", i);
    return 0;
}

// The cores this process may run on (taskset, cgroup cpusets), not all the machine's.
static int cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

// What this sweep's workers did, what other workers did with its runs, and then what the
// database holds: the last line is read back from it, so the two cannot disagree unnoticed.
static void sweep_summary(const char *name, const char *db, const SchedStats *st) {
    fprintf(stderr, "sweep %s: %d done, %d failed, %d interrupted this time", name, st->done, st->failed, st->interrupted);
    if (st->done_elsewhere) fprintf(stderr, "; %d done by another sweep", st->done_elsewhere);
    if (st->failed_elsewhere) fprintf(stderr, "; %d failed in another sweep", st->failed_elsewhere);
    if (st->left_elsewhere) fprintf(stderr, "; %d still running in another sweep, not waited for", st->left_elsewhere);
    if (st->unrecorded) fprintf(stderr, "; %d ended but the database could not record it (reasons above)", st->unrecorded);
    if (st->not_started) fprintf(stderr, "; %d not started (the database could not be written)", st->not_started);
    fprintf(stderr, "; results in %s (loralab status %s)\n", db, name);
    Store *s;
    int64_t id;
    int counts[RUN_NSTATUS];
    if (store_open(&s, db, STORE_READONLY) || store_find_sweep(s, name, &id) || store_sweep_counts(s, id, counts)) {
        fprintf(stderr, "sweep %s: cannot read the database back: %s\n", name, err_msg());
    } else {
        fprintf(stderr, "sweep %s: the database holds %d done, %d failed, %d interrupted, %d running, %d pending\n",
                name, counts[RUN_DONE], counts[RUN_FAILED], counts[RUN_INTERRUPTED], counts[RUN_RUNNING],
                counts[RUN_PENDING]);
    }
    store_close(s);
}

// Runs the sweep's runs still to do (only those in keep[0..nkeep) when keep is given),
// adding to *stats. Returns sched_run's 0 / 1 (a signal stopped it) / -1.
static int run_phase(const SchedOptions *so, WorkerContext *ctx, const char *name, const char *what, int planned,
                     int64_t sweep_id, int retry, int max_runs, const int64_t *keep, int nkeep, SchedStats *stats) {
    Store *st;
    int64_t *ids = NULL;
    int n = 0, stale = 0, counts[RUN_NSTATUS];
    if (store_open(&st, ctx->db_path, 0)) return -1;
    if (store_reset_stale(st, NULL, &stale) || store_runs_todo(st, sweep_id, retry, &ids, &n) ||
        store_sweep_counts(st, sweep_id, counts)) {
        store_close(st);
        free(ids);
        return -1;
    }
    store_close(st);
    if (keep) {   // this phase's runs only
        int m = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < nkeep; j++)
                if (ids[i] == keep[j]) { ids[m++] = ids[i]; break; }
        n = m;
    }
    if (stale) fprintf(stderr, "sweep %s: %d run(s) left running by a stopped sweep are marked interrupted and will run again\n", name, stale);
    if (max_runs > 0 && n > max_runs) n = max_runs;
    // cores divided among the runs that go at once (never more runs than there are)
    int at_once = so->jobs < n ? so->jobs : n > 0 ? n : 1;
    ctx->threads_per_run = ctx->threads_flag > 0 ? ctx->threads_flag : cpu_count() / at_once > 0 ? cpu_count() / at_once : 1;
    char held[64] = "";
    if (counts[RUN_RUNNING]) snprintf(held, sizeof held, ", %d running in another sweep", counts[RUN_RUNNING]);
    fprintf(stderr, "sweep %s: %s%d runs (%d done, %d failed%s%s in the sweep), %d to run now, %d at a time, %d thread%s each\n",
            name, what, planned, counts[RUN_DONE], counts[RUN_FAILED], retry ? ", retried" : "", held,
            n - counts[RUN_RUNNING] > 0 ? n - counts[RUN_RUNNING] : 0, so->jobs, ctx->threads_per_run,
            ctx->threads_per_run == 1 ? "" : "s");
    SchedStats s;
    int rc = sched_run(so, ids, n, run_worker, ctx, &s);
    free(ids);
    if (rc < 0) return -1;
    stats->done += s.done;
    stats->failed += s.failed;
    stats->interrupted += s.interrupted;
    stats->done_elsewhere += s.done_elsewhere;
    stats->failed_elsewhere += s.failed_elsewhere;
    stats->left_elsewhere += s.left_elsewhere;
    stats->unrecorded += s.unrecorded;
    stats->not_started += s.not_started;
    return rc;
}

// Whether every run linked to the sweep is done.
static int sweep_all_done(const char *db, int64_t sweep_id) {
    Store *st;
    int counts[RUN_NSTATUS], total = 0;
    if (store_open(&st, db, 0)) return 0;
    int ok = store_sweep_counts(st, sweep_id, counts) == 0;
    store_close(st);
    for (int k = 0; k < RUN_NSTATUS; k++) total += counts[k];
    return ok && counts[RUN_DONE] == total;
}

// Picks each variant's setting from its finished tuning runs, records the pick, then runs
// the grid's seeds at it. While tuning runs are still to run, nothing is picked.
static int tune_and_run(const SchedOptions *so, WorkerContext *ctx, const Sweep *sw, int64_t sweep_id,
                        const int64_t *tune_ids, int retry, int max_runs, SchedStats *stats) {
    Store *st;
    if (store_open(&st, ctx->db_path, 0)) return -1;
    int waiting = 0;
    for (int i = 0; i < sw->ntune; i++) {
        RunStatus status;
        if (store_run_status(st, tune_ids[i], &status)) { store_close(st); return -1; }
        waiting += status != RUN_DONE && status != RUN_FAILED;
    }
    if (waiting) {
        store_close(st);
        fprintf(stderr, "sweep %s: tuning: %d of %d tuning runs still to run; the pick waits for them (run the sweep again)\n",
                sw->name, waiting, sw->ntune);
        return 0;
    }
    int *pick = xcalloc((size_t)sw->nvariants + 1, sizeof *pick), lost = 0;
    double *sum = xcalloc((size_t)sw->ntune_settings + 1, sizeof *sum);
    int *cnt = xcalloc((size_t)sw->ntune_settings + 1, sizeof *cnt), rc = 0;
    for (int v = 0; v < sw->nvariants && rc == 0; v++) {
        memset(sum, 0, sizeof *sum * (size_t)sw->ntune_settings);
        memset(cnt, 0, sizeof *cnt * (size_t)sw->ntune_settings);
        const RunConfig *rep = NULL;
        for (int i = 0; i < sw->ntune && rc == 0; i++) {
            if (sw->tune_variant[i] != v) continue;
            rep = &sw->tune_runs[i];
            double value;
            int best_step;
            rc = store_best_validation(st, tune_ids[i], &value, &best_step);
            if (!isnan(value)) { sum[sw->tune_setting[i]] += value; cnt[sw->tune_setting[i]]++; }
        }
        if (!rep) { pick[v] = -1; continue; }   // every tuning run of it collapsed into another variant's
        const char *metric = primary_metric(rep->task, rep->task_path);
        int lower = metric_lower_is_better(metric), best = -1;
        double best_mean = 0;
        for (int s = 0; s < sw->ntune_settings; s++) {
            if (!cnt[s]) continue;
            double mean = sum[s] / cnt[s];
            if (best < 0 || (lower ? mean < best_mean : mean > best_mean) ||
                (mean == best_mean && sw->tune_order[s] < sw->tune_order[best])) { best = s; best_mean = mean; }
        }
        pick[v] = best;
        char label[64], targets[64] = "", what[200];
        run_label(rep, label, sizeof label);
        if (config_uses_lora(rep)) targets_str(rep->lora_targets, targets, sizeof targets);
        snprintf(what, sizeof what, "%s%s%s%s%s", METHOD_NAMES[rep->method], targets[0] ? " " : "", targets,
                 label[0] ? " " : "", label);
        if (config_uses_lora(rep)) snprintf(what + strlen(what), sizeof what - strlen(what), " r=%d", rep->lora_rank);
        if (best < 0) {
            lost++;
            fprintf(stderr, "sweep %s: tune: %s: no tuning run finished with a validation metric; its runs are left out\n",
                    sw->name, what);
            continue;
        }
        fprintf(stderr, "sweep %s: tune: %s: picked %s (validation %s %.4f at the best step, mean over %d seed%s)\n",
                sw->name, what, sw->tune_labels[best], metric ? metric : "?", best_mean, cnt[best], cnt[best] == 1 ? "" : "s");
        if (!rc) rc = store_pick_tune(st, sweep_id, sw->variant_ids[v], sw->tune_labels[best]);
    }
    free(sum);
    free(cnt);
    RunConfig *runs = NULL;
    char (*hashes)[65] = NULL;
    int n = rc ? 0 : sweep_picked_runs(sw, pick, &runs, &hashes);
    int64_t *ids = xcalloc((size_t)n + 1, sizeof *ids);
    if (!rc) rc = register_list(st, sweep_id, runs, hashes, n, ids);
    store_close(st);
    free(pick);
    free(runs);
    free(hashes);
    if (rc) { free(ids); return -1; }
    rc = run_phase(so, ctx, sw->name, "at the picked settings: ", n, sweep_id, retry, max_runs, ids, n, stats);
    free(ids);
    stats->failed += lost;
    return rc;
}

// sweep and run share everything but the one-run check.
static int sweep_main(int argc, char **argv, int single) {
    // --executor slurm hands the whole sweep to Slurm (harness/slurm.c); local is this code
    int executor = slurm_executor_arg(argc, argv);
    if (executor < 0) return -1;
    if (single && executor == SLURM_EXECUTOR_SLURM) return err_set("run: --executor slurm is for `loralab sweep`");
    if (executor == SLURM_EXECUTOR_SLURM) return slurm_sweep(argc, argv);
    const char *db = STORE_DEFAULT_PATH, *devices = "cpu", *results = NULL;
    int jobs = 1, dry = 0, retry = 0, max_runs = 0, timeout = 0, threads = 0;
    const char *executor_name = "local";
    ArgSpec specs[] = {
        {"--jobs", ARG_INT, &jobs, 1, 256, "runs at a time, each in its own process (default 1)"},
        {"--threads", ARG_INT, &threads, 0, 1024, "CPU threads per run (default: this process's cores divided among the runs at a time)"},
        {"--devices", ARG_STRING, &devices, 0, 0, "GPUs for `device: cuda` runs, one run each: cuda:0,cuda:1 (default: all)"},
        {"--db", ARG_STRING, &db, 0, 0, "results database (default " STORE_DEFAULT_PATH ")"},
        {"--results", ARG_STRING, &results, 0, 0, "results folder for bases/ and runs/ (default: the database's folder)"},
        {"--dry-run", ARG_FLAG, &dry, 0, 0, "print the expanded runs and stop"},
        {"--retry-failed", ARG_FLAG, &retry, 0, 0, "run failed runs again"},
        {"--max-runs", ARG_INT, &max_runs, 0, 1000000, "run at most N runs now (0: all)"},
        {"--timeout", ARG_INT, &timeout, 0, 100000000, "seconds per run before it is killed and failed (0: none)"},
        {"--executor", ARG_STRING, &executor_name, 0, 0, "local (default) or slurm: a job array (loralab sweep --executor slurm --help)"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(argc, argv, specs, ns, &ar)) { args_result_free(&ar); return -1; }
    const char *verb = single ? "run" : "sweep";
    if (ar.help) {
        args_usage(stdout, single ? "run FILE.yaml [options] [key=value ...]"
                                  : "sweep FILE.yaml [options] [key=value ...]", specs, ns);
        printf("\nThe sweep file format (grid, variants, exclude, analyze, and every key with its\n"
               "default and meaning) is docs/sweep-files.md in loralab's source tree.\n");
        printf("\nkey=value overrides use the sweep file's dotted keys:\n");
        config_print_keys(stdout);
        args_result_free(&ar);
        return 0;
    }
    if (ar.npositional < 1) { args_result_free(&ar); err_set("%s: give a sweep file (see --help)", verb); return -1; }
    const char *file = ar.positional[0];
    Sweep sw;
    if (sweep_load(file, ar.npositional - 1, ar.positional + 1, &sw)) { args_result_free(&ar); return -1; }
    // the analyze: block is checked now: a typo in it must not wait until every run has trained
    if (sw.analyze_json && analyze_check(sw.analyze_json, sw.name, sw.runs, sw.nruns)) {
        err_prefix("%s", file);
        sweep_free(&sw); args_result_free(&ar); return -1;
    }
    // a base checkpoint directory that cannot load would fail every run: check each one once
    for (int i = 0; i < sw.nruns; i++) {
        const char *dir = sw.runs[i].base_checkpoint;
        int seen = !dir[0];
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(dir, sw.runs[j].base_checkpoint);
        if (!seen && checkpoint_check(dir)) {
            err_prefix("%s: base.checkpoint", file);
            sweep_free(&sw); args_result_free(&ar); return -1;
        }
    }
    if (single && sw.nruns != 1) {
        err_set("%s: expands to %d runs; `run` takes exactly one (use `loralab sweep`, or key=value to pick one)", file, sw.nruns);
        sweep_free(&sw); args_result_free(&ar); return -1;
    }
    if (dry) { sweep_print(&sw, stdout); sweep_free(&sw); args_result_free(&ar); return 0; }
    WorkerContext ctx;
    memset(&ctx, 0, sizeof ctx);
    if (check_devices(&sw, devices, &ctx)) { sweep_free(&sw); args_result_free(&ar); return -1; }

    char results_buf[1024];
    if (!results) {   // bases/ and runs/ live next to the database
        snprintf(results_buf, sizeof results_buf, "%s", db);
        char *slash = strrchr(results_buf, '/');
        if (slash) *slash = '\0'; else snprintf(results_buf, sizeof results_buf, ".");
        results = results_buf;
    }
    Store *st;
    int status = -1;
    int64_t sweep_id;
    char *yaml = NULL;
    if (task_read_file(file, 0, &yaml, NULL)) { sweep_free(&sw); args_result_free(&ar); return -1; }
    if (store_open(&st, db, 0)) { free(yaml); sweep_free(&sw); args_result_free(&ar); return -1; }
    // Without overrides the file says what the sweep holds; with overrides the runs add to
    // the ones it has (a rerun at other settings must not orphan the earlier runs).
    int noverrides = ar.npositional - 1, nbefore = 0, nafter = 0;
    int64_t *tune_ids = NULL;
    int reg = noverrides ? store_add_sweep_keep(st, sw.name, file, yaml, sw.analyze_json, &sweep_id, &nbefore)
                         : store_add_sweep(st, sw.name, file, yaml, sw.analyze_json, &sweep_id);
    if (!reg && sw.ntune_settings) {   // the tuning runs come first; the grid's runs after the pick
        tune_ids = xcalloc((size_t)sw.ntune + 1, sizeof *tune_ids);
        reg = store_clear_tune(st, sweep_id) ||
              register_list(st, sweep_id, sw.tune_runs, sw.tune_hashes, sw.ntune, tune_ids);
        for (int i = 0; i < sw.ntune && !reg; i++)
            reg = store_add_tune(st, sweep_id, tune_ids[i], sw.variant_ids[sw.tune_variant[i]],
                                 sw.tune_labels[sw.tune_setting[i]], i);
    } else if (!reg) {
        reg = register_runs(st, sweep_id, &sw);
    }
    if (reg || store_sweep_size(st, sweep_id, &nafter)) { store_close(st); free(tune_ids); goto out; }
    if (noverrides && nbefore > 0)
        fprintf(stderr, "sweep %s: the overrides add %d runs to the sweep's %d earlier ones (%d in all; "
                "without overrides the file's runs replace them)\n", sw.name, nafter - nbefore, nbefore, nafter);
    store_close(st);
    // no more runs at once than fit in memory together (each run still checks itself at start)
    size_t largest;
    int fit = memcheck_parallel(sw.runs, sw.nruns, jobs, &largest);
    if (fit < jobs) {
        fprintf(stderr, "sweep %s: %d runs at a time fit in the %.1f MiB available (the largest needs %.1f MiB); "
                "running %d at a time, not %d\n", sw.name, fit, memcheck_available() / 1048576.0,
                largest / 1048576.0, fit, jobs);
        jobs = fit;
    }
    ctx.db_path = db;
    ctx.results_dir = results;
    ctx.threads_flag = threads;
    ctx.retry_failed = retry;
    SchedOptions so = {jobs, timeout, db, isatty(STDERR_FILENO), retry};
    SchedStats stats;
    memset(&stats, 0, sizeof stats);
    int planned = sw.ntune_settings ? sw.ntune : sw.nruns;
    int rc = run_phase(&so, &ctx, sw.name, sw.ntune_settings ? "tuning: " : "", planned, sweep_id, retry, max_runs,
                       NULL, 0, &stats);
    if (rc < 0) { free(tune_ids); goto out; }
    if (rc == 0 && sw.ntune_settings) {
        rc = tune_and_run(&so, &ctx, &sw, sweep_id, tune_ids, retry, max_runs, &stats);
        if (rc < 0) { free(tune_ids); goto out; }
    }
    free(tune_ids);
    sweep_summary(sw.name, db, &stats);
    status = rc == 1 ? EXIT_INTERRUPTED
           : stats.failed || stats.failed_elsewhere || stats.unrecorded || stats.not_started ? EXIT_RUN_FAILED
           : EXIT_OK;
    // the sweep file's analyze: block (Figures 3/4, Table 7) runs once every run is done
    if (status == EXIT_OK && sw.analyze_json && sweep_all_done(db, sweep_id)) {
        fprintf(stderr, "sweep %s: every run is done; running its analyze: block (loralab analyze sweep %s)\n",
                sw.name, sw.name);
        status = analyze_sweep_db(db, sw.name);
    }
out:
    free(yaml);
    sweep_free(&sw);
    args_result_free(&ar);
    return status;
}

int cmd_sweep(int argc, char **argv) { return sweep_main(argc, argv, 0); }
int cmd_run(int argc, char **argv) { return sweep_main(argc, argv, 1); }

// ---- the pieces a Slurm array task and a Slurm submission share with a local sweep ----

int sweep_register(Store *st, int64_t sweep_id, const Sweep *sw) { return register_runs(st, sweep_id, sw); }

int sweep_run_one(const char *db_path, const char *results_dir, int threads, int64_t run_id, SchedStats *stats) {
    WorkerContext ctx;
    memset(&ctx, 0, sizeof ctx);   // no device list: a plain "cuda" run takes cuda:0 of those visible
    ctx.db_path = db_path;
    ctx.results_dir = results_dir;
    ctx.threads_per_run = threads > 0 ? threads : cpu_count();
    SchedOptions so = {.jobs = 1, .db_path = db_path};   // no timeout: Slurm's --time is the limit
    return sched_run(&so, &run_id, 1, run_worker, &ctx, stats);
}
