// harness/store.h — the SQLite results store: sweeps, runs, metrics, artifacts, analysis.
//
// One database file (default results/loralab.db) in WAL mode, so a sweep's worker processes
// write while `loralab query/report/plot` read. Every connection sets busy_timeout 10 s and
// foreign_keys on (opening a new file, whose switch to WAL needs a lock the busy handler does
// not wait for, retries within the same 10 s); every write is one BEGIN IMMEDIATE ... COMMIT
// transaction; every value is
// bound with sqlite3_bind_*. The schema version is PRAGMA user_version; store_open applies
// the missing migrations in order, each inside a transaction.
//
// Runs are keyed by the hash of their canonical config: runs.hash is UNIQUE across the
// whole database, and the link table sweep_runs says which sweeps contain a run. The same
// config listed by two sweeps is one run, trained once.
//
// Schema (version 4; open the file with plain sqlite3 to look around):
//   sweeps(id, name UNIQUE, file, yaml, analyze, created)
//   runs(id, hash UNIQUE, config JSON, status pending|running|done|failed|interrupted, error,
//        task, metric, method, targets, rank, alpha, seed, label,
//        trainable_params, total_params, head_params,
//        bytes_weights, bytes_grads, bytes_optimizer, bytes_activations, adapter_bytes,
//        wall_seconds, tokens_per_s, device, host, pid, pid_start, attempts, version,
//        created, started, finished,                       timestamps: ISO 8601 UTC text
//        stop_step, stop_reason,                           patience | cap | failure (NULL: not stopped)
//        heartbeat)                                        a running run's last heartbeat, Unix seconds
//   sweep_runs(sweep_id, run_id, position)                  position: order within the sweep
//   sweep_tune(sweep_id, run_id, variant, setting, position, picked)   a sweep's tuning runs:
//        variant: the config without seed and tuned keys; setting "train.lr=0.001"; picked 0/1
//   metrics(run_id, step, split, name, value)               one row per (run, split, name, step)
//   artifacts(id, run_id, kind, path, bytes, sha256, created)
//   analysis_subspace(run_a, run_b, kind, layer, matrix, i, j, phi)   kind: learned|random
//   analysis_amplification(run, layer, matrix, rank, norm_dw, norm_w, norm_proj_dw,
//        norm_proj_w, norm_proj_random, amplification)
//   analysis_singular(run, layer, matrix, idx, value, effective_rank)
//
// Metric names agreed between the tasks, the runner and the reports: split is "train",
// "validation" or "test"; name is "accuracy", "macro_f1", "exact_match", "per" or "loss";
// the task's baseline (majority class, copy) is stored as split "test", name
// "baseline_<metric>" (e.g. baseline_accuracy). runs.metric names the task's main metric.
//
// Ownership: a Store is opened by store_open and freed by store_close. Strings passed in are
// copied by SQLite; arrays returned (store_runs_todo) are malloc'ed and freed by the caller.
// A Store must not cross fork(): a worker process opens its own.
// Errors: every function returning int returns 0, or -1 with err_set() holding sqlite's
// message, the SQL and the source line.
#ifndef LORALAB_STORE_H
#define LORALAB_STORE_H

#include <stdint.h>
#include <sqlite3.h>

#define STORE_DEFAULT_PATH "results/loralab.db"
#define STORE_SCHEMA_VERSION 4
// The oldest schema a read-only open accepts as it is: version 4 adds only runs.heartbeat,
// which only sweeps (writers, which migrate) read.
#define STORE_READ_MIN_VERSION 3

typedef struct Store Store;

typedef enum {
    RUN_PENDING, RUN_RUNNING, RUN_DONE, RUN_FAILED, RUN_INTERRUPTED, RUN_NSTATUS
} RunStatus;

// "pending", "running", ... (as stored in runs.status).
const char *store_status_name(RunStatus status);
// Parses a stored status name; -1 if unknown.
int store_status_parse(const char *name);

// ---- opening ----
enum {
    STORE_READONLY = 1,  // SQLITE_OPEN_READONLY; the file must exist with schema STORE_READ_MIN_VERSION..current
    STORE_RAW = 2,       // with STORE_READONLY: any SQLite file, no schema check (loralab query)
};
// Opens path (NULL → STORE_DEFAULT_PATH). Read-write: creates the file and its parent
// directories, sets WAL, applies migrations. 0 or -1 (err_set).
int store_open(Store **out, const char *path, int flags);
// As store_open (read-write), but migrates only up to `version` (tests of migrations).
int store_open_at_version(Store **out, const char *path, int version);
// A private copy in memory of the database at path, migrated to the current schema: a reader
// of any older database that never writes the original and needs no writable directory.
// 0, or -1 with err_set (missing file, not a loralab database).
int store_open_copy(Store **out, const char *path);
void store_close(Store *s);
// 1 when path exists and this process cannot write it, or the directory where SQLite keeps
// its -wal and -shm files: such a database can only be opened with STORE_READONLY.
int store_read_only_file(const char *path);
// The connection, for verbs that run their own read queries (query, report, plot).
sqlite3 *store_db(Store *s);
const char *store_path(const Store *s);
// PRAGMA user_version of the open database.
int store_user_version(Store *s, int *version);

// ---- sweeps ----
// Creates the sweep `name`, or updates file/yaml/analyze of the existing one and unlinks its
// runs (store_add_run links the runs its file lists now); its id.
int store_add_sweep(Store *s, const char *name, const char *file, const char *yaml,
                    const char *analyze, int64_t *id);
// The id of sweep `name`; -1 with err_set listing the known sweeps if there is none.
int store_find_sweep(Store *s, const char *name, int64_t *id);

// ---- runs ----
// What is known about a run before it starts. NULL strings and negative numbers are
// stored as NULL. Strings are copied.
typedef struct {
    const char *hash;         // hash of the canonical config (required)
    const char *config_json;  // canonical config (required)
    const char *task;         // "sotu-party"
    const char *metric;       // the task's main metric: "accuracy", "exact_match", ...
    const char *method;       // "lora", "ft", "bitfit", "adapter_h", ...
    const char *targets;      // LoRA target set in canonical order, "q,v"
    int rank;                 // LoRA r (-1: none)
    double alpha;             // LoRA alpha (-1: none)
    int seed;                 // (-1: none)
    const char *label;        // other methods' sizes and a non-fp32 precision, "lp=16 li=0 bf16"
} RunSpec;

// Inserts the run (status pending) unless its hash exists; either way links it to
// sweep_id (if > 0) and returns its id. *created (may be NULL) says whether it was new.
int store_add_run(Store *s, int64_t sweep_id, const RunSpec *spec, int64_t *id, int *created);
// Ids of the sweep's runs that are not settled yet, in sweep order: pending and
// interrupted, failed when retry_failed, and running (claimed by a worker elsewhere, which
// the scheduler waits for). *ids is malloc'ed (caller frees), *n ≥ 0.
int store_runs_todo(Store *s, int64_t sweep_id, int retry_failed, int64_t **ids, int *n);

// ---- claims: which attempt owns a run ----
// A run's claim is the (status, pid, pid_start, host, attempts) of its row. store_claim_run
// takes it in one compare-and-set; the Store that claimed then holds the claim, and every
// later write of that Store about the run (parameters, memory, metrics, artifacts, finish,
// fail) happens only while the row still holds exactly this claim. An attempt that lost its
// run (reset as stale, failed by its sweep, claimed again by --retry-failed) can therefore
// never write into another attempt's row: its writes fail with "run N is no longer this
// attempt's". A Store that holds no claim on a run writes as before (tests, tools).
typedef struct {
    RunStatus status;
    int pid;             // the worker that claimed it last (0: never claimed)
    int64_t pid_start;   // that process's start time, clock ticks since boot (-1: unknown)
    char host[256];      // its host ("" if never claimed)
    int attempts;        // claims so far
    double heartbeat_age;   // seconds since its sweep last refreshed runs.heartbeat (-1: none)
} RunClaim;
// Atomically moves the run to running if it is pending or interrupted (or failed, when
// retry_failed), recording pid (the process that runs it), host (NULL: this host), device
// and the start time; clears metrics and artifacts left by an earlier attempt. *claimed = 0
// when the row was in any other state (another worker has it, or it is settled).
int store_claim_run(Store *s, int64_t run_id, int pid, const char *host, const char *device,
                    int retry_failed, int *claimed);
// The run's current claim.
int store_run_claim(Store *s, int64_t run_id, RunClaim *c);
// Whether c's worker still lives: 1 alive, 0 gone (pid exited or reused), -1 unknown (c is on
// another host). Only meaningful for a running claim.
int store_claim_alive(const RunClaim *c);
// ---- heartbeats: claims held on other hosts ----
// A pid says nothing on another host, so while a run is running the sweep that started it
// refreshes runs.heartbeat every store_heartbeat_period() seconds (LORALAB_HEARTBEAT_SECONDS,
// default 10). A claim from another host is live while its heartbeat is younger than
// store_heartbeat_lease() (3 periods), and lost after. The hosts' clocks must agree to well
// within the lease (NTP).
double store_heartbeat_period(void);
double store_heartbeat_lease(void);
// Refreshes the heartbeat of run_id if its row is still running for pid on this host.
int store_heartbeat(Store *s, int64_t run_id, int pid);
// Compare-and-set for a lost claim: the run moves to interrupted with error only if its row
// still holds *expect (status, pid, host, attempts) and its heartbeat is still older than
// lease seconds (or absent). *changed (may be NULL): whether it did.
int store_interrupt_lost_claim(Store *s, int64_t run_id, const RunClaim *expect, double lease,
                               const char *error, int *changed);
// Compare-and-set for a supervisor (the scheduler) that did not claim the run itself: the
// run moves to `to` (failed or interrupted) with error only if its row still holds *expect
// (status, pid, host, attempts). *changed (may be NULL): whether it did.
int store_fail_claim(Store *s, int64_t run_id, const RunClaim *expect, RunStatus to, const char *error,
                     int *changed);

// Numbers measured by a run. Fields < 0 mean "not measured": they leave the column as it is.
typedef struct {
    int64_t trainable_params, total_params, head_params;
    int64_t bytes_weights, bytes_grads, bytes_optimizer, bytes_activations;
    int64_t adapter_bytes;
    double wall_seconds, tokens_per_s;
} RunSummary;
// Every field -1.
void store_summary_init(RunSummary *sum);
// Records parameter counts / memory while the run goes (so a failed run keeps them).
int store_set_params(Store *s, int64_t run_id, int64_t trainable, int64_t total, int64_t head);
int store_set_memory(Store *s, int64_t run_id, int64_t weights, int64_t grads, int64_t optimizer,
                     int64_t activations);
// running → done, with the summary numbers and the finish time (compare-and-set on this
// Store's claim, when it holds one).
int store_finish_run(Store *s, int64_t run_id, const RunSummary *sum);
// → failed or interrupted (status must be one of the two) with the error text (compare-and-set
// on this Store's claim, when it holds one; otherwise any run not done).
int store_fail_run(Store *s, int64_t run_id, RunStatus status, const char *error);
int store_run_status(Store *s, int64_t run_id, RunStatus *status);
// The run's hash and canonical config JSON (malloc'ed; the caller frees both).
int store_run_config(Store *s, int64_t run_id, char **hash, char **config_json);
// Rows `running` on host (NULL: this host) whose pid is gone (or reused by another
// process: its start time differs) become interrupted. *n (may be NULL): how many.
int store_reset_stale(Store *s, const char *host, int *n);

// Where and why a finished or failed run stopped: reason "patience", "cap" or "failure".
// (store_fail_run records "failure" itself; the step is known only to the runner.)
int store_set_stop(Store *s, int64_t run_id, int step, const char *reason);

// ---- sweeps: membership kept, tuning runs ----
// As store_add_sweep, but the sweep keeps the runs it already has (a rerun with overrides
// adds to its run set); *nlinked: how many it has now.
int store_add_sweep_keep(Store *s, const char *name, const char *file, const char *yaml, const char *analyze,
                         int64_t *id, int *nlinked);
// Runs linked to the sweep.
int store_sweep_size(Store *s, int64_t sweep_id, int *n);
// Records run_id as a tuning run of the sweep (picked cleared); position: order in the tuning grid.
int store_add_tune(Store *s, int64_t sweep_id, int64_t run_id, const char *variant, const char *setting, int position);
// Forgets the sweep's tuning runs (its file's tune: block is the truth on each sweep).
int store_clear_tune(Store *s, int64_t sweep_id);
// Marks the variant's tuning runs at setting picked, the others not.
int store_pick_tune(Store *s, int64_t sweep_id, const char *variant, const char *setting);
// The run's validation main metric at its best-validation step, and that step; NAN and -1
// when the run is not done or did not record them.
int store_best_validation(Store *s, int64_t run_id, double *value, int *best_step);

// ---- metrics and artifacts ----
// One value (replaces an existing row with the same run, split, name, step).
int store_add_metric(Store *s, int64_t run_id, int step, const char *split, const char *name,
                     double value);
// n values of one step in one transaction.
int store_add_metrics(Store *s, int64_t run_id, int step, const char *split, int n,
                      const char *const *names, const double *values);
// sha256: lowercase hex or NULL.
int store_add_artifact(Store *s, int64_t run_id, const char *kind, const char *path, int64_t bytes,
                       const char *sha256);

// ---- status ----
// Run counts of a sweep by status (counts[RUN_DONE], ...).
int store_sweep_counts(Store *s, int64_t sweep_id, int counts[RUN_NSTATUS]);

// ---- analysis results; each call replaces earlier rows with the same key ----
// phi[(i-1)*r2 + (j-1)] = φ(i, j), i = 1..r1, j = 1..r2; kind "learned" or "random".
int store_add_subspace(Store *s, int64_t run_a, int64_t run_b, const char *kind, int layer,
                       const char *matrix, int r1, int r2, const double *phi);
typedef struct {
    int64_t run;
    int layer;
    const char *matrix;   // "q", "k", "v", "o"
    int rank;             // r used for U, V
    double norm_dw, norm_w;                                 // ‖ΔW‖_F, ‖W‖_F
    double norm_proj_dw, norm_proj_w, norm_proj_random;     // ‖Uᵀ W Vᵀ‖_F, U,V from ΔW / W / random
    double amplification;                                   // norm_dw / norm_proj_dw
} AmplificationRow;
int store_add_amplification(Store *s, const AmplificationRow *row);
// The n singular values of ΔW (descending) and its effective rank.
int store_add_singular(Store *s, int64_t run, int layer, const char *matrix, int n,
                       const double *values, double effective_rank);

// ---- errors from SQLite, shared by the reading verbs ----
// err_set("<db file>: <sqlite message> (SQL: <sql>) [file:line]"); returns -1.
int store_sql_error(sqlite3 *db, const char *sql, const char *file, int line);
// Checks an sqlite3_* call: anything but OK / ROW / DONE records the error and jumps to the
// enclosing function's `fail` label.
#define SQL_CHECK(db, call, sql)                                                          \
    do {                                                                                  \
        int sql_rc_ = (call);                                                             \
        if (sql_rc_ != SQLITE_OK && sql_rc_ != SQLITE_ROW && sql_rc_ != SQLITE_DONE) {    \
            store_sql_error((db), (sql), __FILE__, __LINE__);                             \
            goto fail;                                                                    \
        }                                                                                 \
    } while (0)

#endif
