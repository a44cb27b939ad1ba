// tests/test_store.c — the SQLite results store: schema and migrations, run state machine,
// dedupe by hash, stale-running detection, metrics, analysis rows, concurrent writers.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errors.h"
#include "harness/store.h"
#include "tests/tmpdir.h"


// One integer from a query on the store's own connection.
static int64_t q_int(Store *s, const char *sql) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static const char *q_text(Store *s, const char *sql) {
    static char buf[512];
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(buf, sizeof buf, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
    return buf;
}

static RunSpec spec_of(const char *hash, int rank, int seed) {
    static char config[8][128];
    static int next;
    char *c = config[next++ % 8];
    snprintf(c, 128, "{\"hash\":\"%s\",\"rank\":%d,\"seed\":%d}", hash, rank, seed);
    RunSpec sp = {.hash = hash, .config_json = c, .task = "spam", .metric = "accuracy",
                  .method = "lora", .targets = "q,v", .rank = rank, .alpha = 8, .seed = seed};
    return sp;
}

static RunStatus status_of(Store *s, int64_t id) {
    RunStatus st;
    assert_int_equal(store_run_status(s, id, &st), 0);
    return st;
}

// ---- schema ----

static void test_schema_created(void **state) {
    (void)state;
    Store *s;
    const char *path = tmp_path("nested/dir/new.db");   // parent directories do not exist yet
    assert_int_equal(store_open(&s, path, 0), 0);
    int v;
    assert_int_equal(store_user_version(s, &v), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    assert_string_equal(q_text(s, "PRAGMA journal_mode"), "wal");
    assert_int_equal(q_int(s, "PRAGMA foreign_keys"), 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                              "('sweeps','runs','sweep_runs','metrics','artifacts','analysis_subspace',"
                              "'analysis_amplification','analysis_singular','sweep_tune')"), 9);
    store_close(s);
    // reopening an up-to-date database changes nothing
    assert_int_equal(store_open(&s, path, 0), 0);
    assert_int_equal(store_user_version(s, &v), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    store_close(s);
    // read-only open of the same file works; of a missing one says so
    assert_int_equal(store_open(&s, path, STORE_READONLY), 0);
    store_close(s);
    assert_int_equal(store_open(&s, tmp_path("missing.db"), STORE_READONLY), -1);
    assert_non_null(strstr(err_msg(), "no such database"));
}

static void test_migration_from_v1(void **state) {
    (void)state;
    const char *path = tmp_path("old.db");
    Store *s;
    assert_int_equal(store_open_at_version(&s, path, 1), 0);
    int v;
    assert_int_equal(store_user_version(s, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM sqlite_master WHERE name = 'analysis_subspace'"), 0);
    int64_t sweep, run;
    RunSpec sp = spec_of("aaaa", 4, 1);
    assert_int_equal(store_add_sweep(s, "old", "old.yaml", "name: old\n", NULL, &sweep), 0);
    assert_int_equal(store_add_run(s, sweep, &sp, &run, NULL), 0);
    store_close(s);

    // read-only verbs refuse an old schema with a hint, then a writer migrates it
    assert_int_equal(store_open(&s, path, STORE_READONLY), -1);
    assert_non_null(strstr(err_msg(), "schema version 1"));
    assert_int_equal(store_open(&s, path, 0), 0);
    assert_int_equal(store_user_version(s, &v), 0);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    assert_int_equal(q_int(s, "SELECT count(*) FROM sqlite_master WHERE name = 'analysis_subspace'"), 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM runs WHERE hash = 'aaaa'"), 1);   // data kept
    // a database from a newer loralab is refused
    assert_int_equal(sqlite3_exec(store_db(s), "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    store_close(s);
    assert_int_equal(store_open(&s, path, 0), -1);
    assert_non_null(strstr(err_msg(), "schema version 99 is newer"));

    // schema 3 differs only in runs.heartbeat, which readers never read: read as it is
    path = tmp_path("v3.db");
    assert_int_equal(store_open_at_version(&s, path, 3), 0);
    store_close(s);
    assert_int_equal(store_open(&s, path, STORE_READONLY), 0);
    assert_int_equal(store_user_version(s, &v), 0);
    assert_int_equal(v, 3);
    store_close(s);
}

static void test_not_a_database(void **state) {
    (void)state;
    const char *path = tmp_path("garbage.db");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int k = 0; k < 200; k++) fputs("this is not sqlite ", f);
    fclose(f);
    Store *s;
    assert_int_equal(store_open(&s, path, 0), -1);
    assert_non_null(strstr(err_msg(), "file is not a database"));
    assert_non_null(strstr(err_msg(), "garbage.db"));
    assert_non_null(strstr(err_msg(), "store.c:"));   // where the call was made
}

// ---- runs ----

static void test_run_transitions(void **state) {
    (void)state;
    Store *s;
    assert_int_equal(store_open(&s, tmp_path("transitions.db"), 0), 0);
    int64_t sweep, a, b;
    int created;
    assert_int_equal(store_add_sweep(s, "t6", "t6.yaml", "name: t6\n", NULL, &sweep), 0);
    RunSpec sa = spec_of("h-a", 4, 1), sb = spec_of("h-b", 8, 1);
    assert_int_equal(store_add_run(s, sweep, &sa, &a, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(store_add_run(s, sweep, &sb, &b, &created), 0);
    assert_int_equal(status_of(s, a), RUN_PENDING);

    int64_t *ids;
    int n;
    assert_int_equal(store_runs_todo(s, sweep, 0, &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_true(ids[0] == a && ids[1] == b);   // sweep order
    free(ids);

    int claimed;
    assert_int_equal(store_claim_run(s, a, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 1);
    assert_int_equal(status_of(s, a), RUN_RUNNING);
    assert_int_equal(store_claim_run(s, a, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 0);   // already running: someone else's
    assert_int_equal(store_set_params(s, a, 1000, 100000, 10), 0);
    assert_int_equal(store_add_metric(s, a, 100, "validation", "accuracy", 0.75), 0);
    RunSummary sum;
    store_summary_init(&sum);
    sum.wall_seconds = 12.5;
    sum.adapter_bytes = 4096;
    assert_int_equal(store_finish_run(s, a, &sum), 0);
    assert_int_equal(status_of(s, a), RUN_DONE);
    // -1 fields kept what store_set_params wrote
    assert_int_equal(q_int(s, "SELECT trainable_params FROM runs WHERE hash = 'h-a'"), 1000);
    assert_int_equal(q_int(s, "SELECT adapter_bytes FROM runs WHERE hash = 'h-a'"), 4096);
    assert_int_equal(q_int(s, "SELECT finished IS NOT NULL AND started IS NOT NULL FROM runs WHERE hash = 'h-a'"), 1);
    assert_int_equal(store_finish_run(s, a, &sum), -1);   // done runs do not finish twice
    assert_non_null(strstr(err_msg(), "is done"));
    assert_int_equal(store_fail_run(s, a, RUN_FAILED, "late"), -1);
    assert_int_equal(store_claim_run(s, a, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 0);

    // b fails; only --retry-failed brings it back, and a new attempt clears its old metrics
    assert_int_equal(store_claim_run(s, b, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(store_add_metric(s, b, 1, "train", "loss", 5.0), 0);
    assert_int_equal(store_fail_run(s, b, RUN_FAILED, "loss became NaN at step 7"), 0);
    assert_int_equal(status_of(s, b), RUN_FAILED);
    assert_string_equal(q_text(s, "SELECT error FROM runs WHERE hash = 'h-b'"), "loss became NaN at step 7");
    assert_int_equal(store_runs_todo(s, sweep, 0, &ids, &n), 0);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(store_runs_todo(s, sweep, 1, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_true(ids[0] == b);
    free(ids);
    assert_int_equal(store_claim_run(s, b, (int)getpid(), NULL, "cpu", 1, &claimed), 0);
    assert_int_equal(claimed, 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM metrics WHERE run_id = (SELECT id FROM runs WHERE hash = 'h-b')"), 0);
    assert_int_equal(q_int(s, "SELECT attempts FROM runs WHERE hash = 'h-b'"), 2);
    assert_string_equal(q_text(s, "SELECT error FROM runs WHERE hash = 'h-b'"), "(null)");
    assert_int_equal(store_fail_run(s, b, RUN_INTERRUPTED, "SIGINT"), 0);
    assert_int_equal(store_runs_todo(s, sweep, 0, &ids, &n), 0);
    assert_int_equal(n, 1);   // interrupted runs are always resumed
    free(ids);

    int counts[RUN_NSTATUS];
    assert_int_equal(store_sweep_counts(s, sweep, counts), 0);
    assert_int_equal(counts[RUN_DONE], 1);
    assert_int_equal(counts[RUN_INTERRUPTED], 1);
    assert_int_equal(counts[RUN_PENDING] + counts[RUN_RUNNING] + counts[RUN_FAILED], 0);

    char *hash, *config;
    assert_int_equal(store_run_config(s, b, &hash, &config), 0);
    assert_string_equal(hash, "h-b");
    assert_string_equal(config, sb.config_json);
    free(hash);
    free(config);
    assert_int_equal(store_run_config(s, 999, &hash, &config), -1);
    RunStatus st;
    assert_int_equal(store_run_status(s, 999, &st), -1);
    assert_non_null(strstr(err_msg(), "no run with id 999"));
    store_close(s);
}

static void test_dedupe_by_hash(void **state) {
    (void)state;
    Store *s;
    assert_int_equal(store_open(&s, tmp_path("dedupe.db"), 0), 0);
    int64_t s1, s2, again, r1, r2;
    int created;
    assert_int_equal(store_add_sweep(s, "one", "one.yaml", "a: 1\n", NULL, &s1), 0);
    assert_int_equal(store_add_sweep(s, "two", "two.yaml", "a: 2\n", NULL, &s2), 0);
    assert_int_equal(store_add_sweep(s, "one", "one.yaml", "a: 3\n", "subspace", &again), 0);
    assert_true(again == s1);   // same name: same sweep, text updated
    assert_string_equal(q_text(s, "SELECT yaml || analyze FROM sweeps WHERE name = 'one'"), "a: 3\nsubspace");
    RunSpec sp = spec_of("same", 8, 2);
    assert_int_equal(store_add_run(s, s1, &sp, &r1, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(store_add_run(s, s2, &sp, &r2, &created), 0);
    assert_int_equal(created, 0);
    assert_true(r1 == r2);
    assert_int_equal(store_add_run(s, s1, &sp, &r2, &created), 0);   // re-adding: no duplicate link
    assert_int_equal(q_int(s, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM sweep_runs"), 2);
    int counts[RUN_NSTATUS];
    assert_int_equal(store_sweep_counts(s, s2, counts), 0);
    assert_int_equal(counts[RUN_PENDING], 1);
    // the same hash with another config is refused, nothing written
    RunSpec other = spec_of("same", 16, 2);
    assert_int_equal(store_add_run(s, s1, &other, &r2, &created), -1);
    assert_non_null(strstr(err_msg(), "different config"));
    assert_int_equal(q_int(s, "SELECT count(*) FROM runs"), 1);
    int64_t id;
    assert_int_equal(store_find_sweep(s, "two", &id), 0);
    assert_true(id == s2);
    assert_int_equal(store_find_sweep(s, "three", &id), -1);
    assert_non_null(strstr(err_msg(), "no sweep named 'three' (sweeps: one, two)"));
    store_close(s);
}

static void test_stale_running(void **state) {
    (void)state;
    Store *s;
    assert_int_equal(store_open(&s, tmp_path("stale.db"), 0), 0);
    int64_t sweep, dead, alive, other_host, reused;
    int claimed, n;
    assert_int_equal(store_add_sweep(s, "st", NULL, NULL, NULL, &sweep), 0);
    RunSpec a = spec_of("dead", 1, 1), b = spec_of("alive", 2, 1), c = spec_of("elsewhere", 4, 1),
            d = spec_of("reused", 8, 1);
    assert_int_equal(store_add_run(s, sweep, &a, &dead, NULL), 0);
    assert_int_equal(store_add_run(s, sweep, &b, &alive, NULL), 0);
    assert_int_equal(store_add_run(s, sweep, &c, &other_host, NULL), 0);
    assert_int_equal(store_add_run(s, sweep, &d, &reused, NULL), 0);

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) _exit(0);
    assert_int_equal(store_claim_run(s, dead, (int)child, NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 1);
    waitpid(child, NULL, 0);   // reaped: the pid no longer exists
    assert_int_equal(store_claim_run(s, alive, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(store_claim_run(s, other_host, (int)child, "another-host", "cpu", 0, &claimed), 0);
    // our own live pid, but recorded with another start time: the pid was reused
    assert_int_equal(store_claim_run(s, reused, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(sqlite3_exec(store_db(s), "UPDATE runs SET pid_start = pid_start + 1 WHERE hash = 'reused'",
                                  NULL, NULL, NULL), SQLITE_OK);

    assert_int_equal(store_reset_stale(s, NULL, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(status_of(s, dead), RUN_INTERRUPTED);
    assert_int_equal(status_of(s, reused), RUN_INTERRUPTED);
    assert_int_equal(status_of(s, alive), RUN_RUNNING);
    assert_int_equal(status_of(s, other_host), RUN_RUNNING);   // cannot check another host
    char want[64];
    snprintf(want, sizeof want, "worker pid %d on ", (int)child);
    assert_non_null(strstr(q_text(s, "SELECT error FROM runs WHERE hash = 'dead'"), want));
    assert_int_equal(store_reset_stale(s, NULL, &n), 0);
    assert_int_equal(n, 0);
    store_close(s);
}

// ---- metrics, artifacts, analysis ----

static void test_metric_rows(void **state) {
    (void)state;
    Store *s;
    assert_int_equal(store_open(&s, tmp_path("metrics.db"), 0), 0);
    int64_t run;
    RunSpec sp = spec_of("m", 4, 1);
    assert_int_equal(store_add_run(s, 0, &sp, &run, NULL), 0);
    const char *names[3] = {"loss", "accuracy", "macro_f1"};
    double values[3] = {0.5, 0.8, NAN};
    assert_int_equal(store_add_metrics(s, run, 100, "validation", 3, names, values), 0);
    assert_int_equal(store_add_metric(s, run, 200, "validation", "loss", 0.25), 0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM metrics"), 4);
    assert_int_equal(q_int(s, "SELECT count(*) FROM metrics WHERE name = 'macro_f1' AND value IS NULL"), 1);
    // the same (run, split, name, step) replaces, never duplicates
    assert_int_equal(store_add_metric(s, run, 100, "validation", "loss", 0.4), 0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM metrics"), 4);
    assert_string_equal(q_text(s, "SELECT value FROM metrics WHERE step = 100 AND name = 'loss'"), "0.4");
    // a metric of a run that does not exist violates the foreign key: nothing written
    assert_int_equal(store_add_metric(s, run + 100, 1, "test", "accuracy", 1.0), -1);
    assert_non_null(strstr(err_msg(), "FOREIGN KEY"));
    assert_int_equal(q_int(s, "SELECT count(*) FROM metrics"), 4);

    assert_int_equal(store_add_artifact(s, run, "adapter", "results/runs/m/adapter.safetensors", 4096,
                                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), 0);
    assert_int_equal(q_int(s, "SELECT bytes FROM artifacts WHERE kind = 'adapter'"), 4096);
    store_close(s);
}

static void test_analysis_rows(void **state) {
    (void)state;
    Store *s;
    assert_int_equal(store_open(&s, tmp_path("analysis.db"), 0), 0);
    int64_t a, b;
    RunSpec sa = spec_of("r8", 8, 1), sb = spec_of("r64", 64, 1);
    assert_int_equal(store_add_run(s, 0, &sa, &a, NULL), 0);
    assert_int_equal(store_add_run(s, 0, &sb, &b, NULL), 0);
    double phi[6] = {1.0, 0.9, 0.8, 0.7, 0.6, 0.5};   // 2 × 3
    assert_int_equal(store_add_subspace(s, a, b, "learned", 0, "q", 2, 3, phi), 0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM analysis_subspace"), 6);
    assert_string_equal(q_text(s, "SELECT phi FROM analysis_subspace WHERE i = 2 AND j = 1"), "0.7");
    // recomputing with a smaller grid leaves no stale cells
    assert_int_equal(store_add_subspace(s, a, b, "learned", 0, "q", 1, 1, phi), 0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM analysis_subspace"), 1);
    assert_int_equal(store_add_subspace(s, a, b, "random", 0, "q", 1, 2, phi), 0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM analysis_subspace"), 3);

    AmplificationRow row = {.run = b, .layer = 3, .matrix = "q", .rank = 4, .norm_dw = 6.0,
                            .norm_w = 50.0, .norm_proj_dw = 0.5, .norm_proj_w = 20.0,
                            .norm_proj_random = 0.3, .amplification = 12.0};
    assert_int_equal(store_add_amplification(s, &row), 0);
    assert_int_equal(store_add_amplification(s, &row), 0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM analysis_amplification"), 1);
    double sv[3] = {3.0, 2.0, 1.0};
    assert_int_equal(store_add_singular(s, b, 3, "q", 3, sv, 2.5), 0);
    assert_int_equal(store_add_singular(s, b, 3, "q", 2, sv, 1.9), 0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM analysis_singular"), 2);
    store_close(s);
}

// ---- concurrency ----

enum { WRITERS = 2, METRICS_EACH = 150, SHARED_RUNS = 20 };

// Two processes, each with its own connection: every metric row of both lands, and every
// shared run is claimed by exactly one of them.
static void test_concurrent_writers(void **state) {
    (void)state;
    const char *path = tmp_path("concurrent.db");
    Store *s;
    assert_int_equal(store_open(&s, path, 0), 0);
    int64_t sweep, runs[SHARED_RUNS], metric_run;
    assert_int_equal(store_add_sweep(s, "c", NULL, NULL, NULL, &sweep), 0);
    RunSpec ms = spec_of("metrics", 1, 99);   // never claimed: a claim clears a run's metrics
    assert_int_equal(store_add_run(s, sweep, &ms, &metric_run, NULL), 0);
    for (int k = 0; k < SHARED_RUNS; k++) {
        char hash[16];
        snprintf(hash, sizeof hash, "c%d", k);
        RunSpec sp = spec_of(hash, 1, k);
        assert_int_equal(store_add_run(s, sweep, &sp, &runs[k], NULL), 0);
    }
    store_close(s);

    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            Store *c;
            int claimed_total = 0, claimed;
            if (store_open(&c, path, 0)) { fprintf(stderr, "%s\n", err_msg()); _exit(255); }
            for (int k = 0; k < METRICS_EACH; k++) {
                if (store_add_metric(c, metric_run, k, w ? "train" : "validation", "loss", k)) {
                    fprintf(stderr, "%s\n", err_msg());
                    _exit(255);
                }
                if (k < SHARED_RUNS) {
                    if (store_claim_run(c, runs[k], (int)getpid(), NULL, "cpu", 0, &claimed)) {
                        fprintf(stderr, "%s\n", err_msg());
                        _exit(255);
                    }
                    claimed_total += claimed;
                }
            }
            store_close(c);
            _exit(claimed_total);
        }
    }
    int claimed_sum = 0;
    for (int w = 0; w < WRITERS; w++) {
        int status;
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 255);
        claimed_sum += WEXITSTATUS(status);
    }
    assert_int_equal(claimed_sum, SHARED_RUNS);
    assert_int_equal(store_open(&s, path, 0), 0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM runs WHERE status = 'running'"), SHARED_RUNS);
    assert_int_equal(q_int(s, "SELECT count(*) FROM metrics"), WRITERS * METRICS_EACH);
    assert_int_equal(q_int(s, "SELECT count(DISTINCT split || step) FROM metrics"), WRITERS * METRICS_EACH);
    assert_int_equal(q_int(s, "SELECT sum(value) FROM metrics"), WRITERS * (METRICS_EACH - 1) * METRICS_EACH / 2);
    store_close(s);
}

// A database at tmp_path(file) holding sweep `name` and one run whose hash is the name.
static Store *open_with_one_run(const char *file, const char *name, int64_t *run) {
    Store *s;
    assert_int_equal(store_open(&s, tmp_path(file), 0), 0);
    int64_t sweep;
    assert_int_equal(store_add_sweep(s, name, NULL, NULL, NULL, &sweep), 0);
    RunSpec sp = spec_of(name, 2, 1);
    assert_int_equal(store_add_run(s, sweep, &sp, run, NULL), 0);
    return s;
}

// A late writer never touches another attempt's row: once the run is failed by its
// supervisor and claimed again, every write of the first attempt fails and changes nothing.
static void test_claim_compare_and_set(void **state) {
    (void)state;
    int64_t r;
    int claimed, changed;
    Store *a = open_with_one_run("cas.db", "cas", &r), *b;
    assert_int_equal(store_open(&b, tmp_path("cas.db"), 0), 0);

    assert_int_equal(store_claim_run(a, r, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 1);
    assert_int_equal(store_claim_run(b, r, (int)getpid(), "host-b", "cpu", 1, &claimed), 0);
    assert_int_equal(claimed, 0);   // running: not even --retry-failed takes it
    RunClaim first;
    assert_int_equal(store_run_claim(b, r, &first), 0);
    assert_int_equal(first.status, RUN_RUNNING);
    assert_int_equal(first.attempts, 1);
    assert_int_equal(first.pid, (int)getpid());
    assert_int_equal(store_claim_alive(&first), 1);

    // the supervisor fails attempt 1 (compare-and-set on its claim); a stale claim changes nothing
    RunClaim stale = first;
    stale.attempts = 0;
    assert_int_equal(store_fail_claim(b, r, &stale, RUN_FAILED, "wrong attempt", &changed), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(store_fail_claim(b, r, &first, RUN_FAILED, "timed out after 5 s", &changed), 0);
    assert_int_equal(changed, 1);
    // a failed run is claimed again only under --retry-failed, and by one claimer only
    assert_int_equal(store_claim_run(b, r, (int)getpid(), "host-b", "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 0);
    assert_int_equal(store_claim_run(b, r, (int)getpid(), "host-b", "cpu", 1, &claimed), 0);
    assert_int_equal(claimed, 1);
    assert_int_equal(store_claim_run(a, r, (int)getpid(), NULL, "cpu", 1, &claimed), 0);
    assert_int_equal(claimed, 0);

    // attempt 1 writes late: every write fails, naming who has the run now
    RunSummary sum;
    store_summary_init(&sum);
    sum.wall_seconds = 1;
    assert_int_equal(store_add_metric(a, r, 5, "train", "loss", 9.0), -1);
    assert_non_null(strstr(err_msg(), "is no longer this attempt's (attempt 1"));
    assert_non_null(strstr(err_msg(), "attempt 2, pid"));
    assert_non_null(strstr(err_msg(), "on host-b"));
    assert_int_equal(store_set_params(a, r, 1, 2, 3), -1);
    assert_int_equal(store_set_memory(a, r, 1, 2, 3, 4), -1);
    assert_int_equal(store_add_artifact(a, r, "adapter", "/x", 10, NULL), -1);
    assert_int_equal(store_finish_run(a, r, &sum), -1);
    assert_int_equal(store_fail_run(a, r, RUN_FAILED, "late"), -1);
    assert_int_equal(q_int(b, "SELECT count(*) FROM metrics"), 0);
    assert_int_equal(q_int(b, "SELECT count(*) FROM artifacts"), 0);
    assert_int_equal(q_int(b, "SELECT trainable_params IS NULL FROM runs"), 1);
    assert_string_equal(q_text(b, "SELECT status || ' ' || attempts || ' ' || host FROM runs"), "running 2 host-b");

    // attempt 2 writes and finishes; afterwards it cannot write either
    assert_int_equal(store_add_metric(b, r, 5, "train", "loss", 1.0), 0);
    assert_int_equal(store_finish_run(b, r, &sum), 0);
    assert_int_equal(store_add_metric(b, r, 6, "train", "loss", 1.0), -1);
    assert_string_equal(q_text(b, "SELECT status || ' ' || coalesce(error, '-') FROM runs"), "done -");
    RunClaim other = first;
    snprintf(other.host, sizeof other.host, "another-host");
    assert_int_equal(store_claim_alive(&other), -1);
    store_close(a);
    store_close(b);
}

// A claim held on another host: its heartbeat is refreshed only by its own host's sweep, and
// it is taken as lost (interrupted by compare-and-set) only once the heartbeat is older than
// the lease.
static void test_heartbeat_lease(void **state) {
    (void)state;
    int64_t r;
    int claimed, changed;
    Store *s = open_with_one_run("beat.db", "beat", &r);
    assert_int_equal(store_claim_run(s, r, 4242, "other-host", "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 1);
    RunClaim c;
    assert_int_equal(store_run_claim(s, r, &c), 0);
    assert_true(c.heartbeat_age >= 0 && c.heartbeat_age < 5);   // the claim is its first heartbeat
    assert_int_equal(store_claim_alive(&c), -1);
    // this host's heartbeat does not touch another host's claim
    assert_int_equal(sqlite3_exec(store_db(s), "UPDATE runs SET heartbeat = heartbeat - 100", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(store_heartbeat(s, r, 4242), 0);
    assert_int_equal(store_run_claim(s, r, &c), 0);
    assert_true(c.heartbeat_age >= 100 && c.heartbeat_age < 105);
    // younger than the lease: live; a claim that changed meanwhile: untouched; older: lost
    assert_int_equal(store_interrupt_lost_claim(s, r, &c, 200, "lost", &changed), 0);
    assert_int_equal(changed, 0);
    RunClaim other = c;
    other.attempts = 2;
    assert_int_equal(store_interrupt_lost_claim(s, r, &other, 30, "lost", &changed), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(store_interrupt_lost_claim(s, r, &c, 30, "lost: no heartbeat", &changed), 0);
    assert_int_equal(changed, 1);
    assert_string_equal(q_text(s, "SELECT status || ' ' || error FROM runs"), "interrupted lost: no heartbeat");
    // claimed here, its heartbeat is refreshed
    assert_int_equal(store_claim_run(s, r, (int)getpid(), NULL, "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 1);
    assert_int_equal(sqlite3_exec(store_db(s), "UPDATE runs SET heartbeat = heartbeat - 100", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(store_heartbeat(s, r, (int)getpid()), 0);
    assert_int_equal(store_run_claim(s, r, &c), 0);
    assert_true(c.heartbeat_age >= 0 && c.heartbeat_age < 5);
    store_close(s);
}

// Many processes opening one new database at the same moment: each waits for the others'
// switch to WAL and migration, none fails with "database is locked".
static void test_concurrent_open_new(void **state) {
    (void)state;
    enum { OPENERS = 8, ROUNDS = 25 };
    for (int round = 0; round < ROUNDS; round++) {
        char name[32];
        snprintf(name, sizeof name, "open%d.db", round);
        const char *path = tmp_path(name);
        int go[2];
        assert_int_equal(pipe(go), 0);
        pid_t pids[OPENERS];
        for (int w = 0; w < OPENERS; w++) {
            pids[w] = fork();
            assert_true(pids[w] >= 0);
            if (pids[w] == 0) {
                close(go[1]);
                char c;
                if (read(go[0], &c, 1) < 0) _exit(3);   // all start together when the pipe closes
                Store *s;
                if (store_open(&s, path, 0)) { fprintf(stderr, "opener %d: %s\n", w, err_msg()); _exit(1); }
                int version = 0;
                int bad = store_user_version(s, &version) || version != STORE_SCHEMA_VERSION;
                store_close(s);
                _exit(bad ? 2 : 0);
            }
        }
        close(go[0]);
        close(go[1]);
        for (int w = 0; w < OPENERS; w++) {
            int status;
            assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_created),
        cmocka_unit_test(test_migration_from_v1),
        cmocka_unit_test(test_not_a_database),
        cmocka_unit_test(test_run_transitions),
        cmocka_unit_test(test_dedupe_by_hash),
        cmocka_unit_test(test_stale_running),
        cmocka_unit_test(test_metric_rows),
        cmocka_unit_test(test_analysis_rows),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_claim_compare_and_set),
        cmocka_unit_test(test_heartbeat_lease),
        cmocka_unit_test(test_concurrent_open_new),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
