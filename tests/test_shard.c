// tests/test_shard.c — per-run result shards (the Slurm executor's workers write them, the
// submitting side merges them): a shard written and finished is one self-contained file,
// merges into the results database with its metrics, leaves a done run alone, writes nothing
// when the merge fails, and shard_check names what is wrong with a damaged file.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "harness/shard.h"
#include "harness/store.h"
#include "tests/tmpdir.h"

#define HASH "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static int64_t q_int(Store *s, const char *sql) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int file_exists(const char *p) { struct stat sb; return stat(p, &sb) == 0; }

// A finished shard of run HASH at path: claimed, two metrics, done (or failed with error).
static void make_shard(const char *name, const char *path, double acc, const char *error) {
    ShardPlace place;
    memset(&place, 0, sizeof place);
    snprintf(place.job_id, sizeof place.job_id, "41");
    snprintf(place.array_task, sizeof place.array_task, "40_1");
    snprintf(place.node, sizeof place.node, "node7");
    snprintf(place.gpus, sizeof place.gpus, "0");
    const char *tmp = tmp_path(name);
    int64_t id;
    assert_int_equal(shard_create(tmp, HASH, "{\"seed\":1}", 1, &place, &id), 0);
    Store *st;
    assert_int_equal(store_open(&st, tmp, 0), 0);
    int claimed = 0;
    assert_int_equal(store_claim_run(st, id, (int)getpid(), "node7", "cpu", 0, &claimed), 0);
    assert_int_equal(claimed, 1);
    assert_int_equal(store_add_metric(st, id, 3, "validation", "accuracy", acc), 0);
    assert_int_equal(store_add_metric(st, id, 6, "test", "accuracy", acc + 0.01), 0);
    if (error) {
        assert_int_equal(store_fail_run(st, id, RUN_FAILED, error), 0);
    } else {
        RunSummary sum;
        store_summary_init(&sum);
        sum.wall_seconds = 1.5;
        assert_int_equal(store_finish_run(st, id, &sum), 0);
    }
    store_close(st);
    assert_int_equal(shard_finish(tmp, path), 0);
}

static Store *main_store(const char *name) {
    Store *st;
    assert_int_equal(store_open(&st, tmp_path(name), 0), 0);
    int64_t sweep, run;
    assert_int_equal(store_add_sweep(st, "s", "s.yaml", "", NULL, &sweep), 0);
    RunSpec spec = {HASH, "{\"seed\":1}", "glue-sst2", "accuracy", "lora", "q,v", 2, 4, 1, NULL};
    assert_int_equal(store_add_run(st, sweep, &spec, &run, NULL), 0);
    assert_int_equal(shard_tables(st), 0);
    assert_int_equal(sqlite3_exec(store_db(st), "INSERT INTO slurm_plans (id, sweep_id, dir) VALUES (1, 1, '/p')", NULL, NULL, NULL),
                     SQLITE_OK);
    return st;
}

static void test_merge_once(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("a.41.db"));
    make_shard(".a.tmp", path, 0.75, NULL);
    // one file: the WAL was folded in
    assert_true(file_exists(path));
    assert_false(file_exists(tmp_path(".a.tmp")));
    assert_false(file_exists(tmp_path("a.41.db-wal")));
    assert_int_equal(shard_check(path), 0);

    Store *st = main_store("m1.db");
    RunStatus rs;
    int applied = 0;
    assert_int_equal(shard_merge(st, 1, "a.41.db", path, &rs, &applied), 0);
    assert_int_equal(rs, RUN_DONE);
    assert_int_equal(applied, 1);
    assert_int_equal(q_int(st, "SELECT count(*) FROM runs WHERE status = 'done' AND attempts = 1 AND host = 'node7' "
                               "AND method = 'lora' AND rank = 2"), 1);
    assert_int_equal(q_int(st, "SELECT count(*) FROM metrics"), 2);
    assert_int_equal(q_int(st, "SELECT count(*) FROM slurm_shards WHERE job_id = '41' AND array_task = '40_1' "
                               "AND node = 'node7' AND gpus = '0' AND applied = 1"), 1);
    // the same shard again: refused, and nothing written
    assert_int_equal(shard_merge(st, 1, "a.41.db", path, &rs, &applied), -1);
    assert_int_equal(q_int(st, "SELECT count(*) FROM metrics"), 2);
    assert_int_equal(q_int(st, "SELECT count(*) FROM slurm_shards"), 1);
    assert_int_equal(q_int(st, "SELECT attempts FROM runs"), 1);

    // a later shard of a done run (a failed attempt elsewhere) is recorded but changes nothing
    char path2[512];
    snprintf(path2, sizeof path2, "%s", tmp_path("a.42.db"));
    make_shard(".b.tmp", path2, 0.5, "crashed: signal 6 (Aborted)");
    assert_int_equal(shard_merge(st, 1, "a.42.db", path2, &rs, &applied), 0);
    assert_int_equal(rs, RUN_FAILED);
    assert_int_equal(applied, 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM runs WHERE status = 'done' AND error IS NULL"), 1);
    assert_int_equal(q_int(st, "SELECT count(*) FROM metrics WHERE value = 0.5"), 0);
    assert_int_equal(q_int(st, "SELECT count(*) FROM slurm_shards WHERE applied = 0 AND status = 'failed'"), 1);
    store_close(st);
}

static void test_failed_run_keeps_error(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("f.41.db"));
    make_shard(".f.tmp", path, 0.25, "crashed: signal 6 (Aborted)");
    Store *st = main_store("m2.db");
    RunStatus rs;
    int applied;
    assert_int_equal(shard_merge(st, 1, "f.41.db", path, &rs, &applied), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(q_int(st, "SELECT count(*) FROM runs WHERE status = 'failed' AND error = 'crashed: signal 6 (Aborted)'"), 1);
    store_close(st);
}

static void test_run_not_in_database(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("n.41.db"));
    make_shard(".n.tmp", path, 0.25, NULL);
    Store *st;
    assert_int_equal(store_open(&st, tmp_path("m3.db"), 0), 0);
    assert_int_equal(shard_tables(st), 0);
    assert_int_equal(sqlite3_exec(store_db(st), "INSERT INTO sweeps (id, name) VALUES (1, 's');"
                                                "INSERT INTO slurm_plans (id, sweep_id, dir) VALUES (1, 1, '/p')", NULL, NULL, NULL),
                     SQLITE_OK);
    RunStatus rs;
    int applied;
    assert_int_equal(shard_merge(st, 1, "n.41.db", path, &rs, &applied), -1);
    assert_non_null(strstr(err_msg(), "is not in"));
    assert_int_equal(q_int(st, "SELECT count(*) FROM slurm_shards"), 0);
    store_close(st);
}

static void write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_check_names_the_damage(void **state) {
    (void)state;
    char good[512];
    snprintf(good, sizeof good, "%s", tmp_path("g.41.db"));
    make_shard(".g.tmp", good, 0.75, NULL);
    struct stat sb;
    assert_int_equal(stat(good, &sb), 0);

    const char *tiny = tmp_path("tiny.db");
    write_bytes(tiny, "SQLite format 3", 16);
    assert_int_equal(shard_check(tiny), -1);
    assert_non_null(strstr(err_msg(), "truncated: 16 bytes, shorter than a SQLite header"));

    const char *text = tmp_path("text.db");
    char junk[200];
    memset(junk, 'x', sizeof junk);
    write_bytes(text, junk, sizeof junk);
    assert_int_equal(shard_check(text), -1);
    assert_non_null(strstr(err_msg(), "not a SQLite file"));

    // cut at half: the header still says the whole size
    char cmd[1200];
    const char *half = tmp_path("half.db");
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && truncate -s %lld '%s'", good, half, (long long)sb.st_size / 2, half);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(shard_check(half), -1);
    char want[128];
    snprintf(want, sizeof want, "truncated: %lld bytes, its header says %lld", (long long)sb.st_size / 2, (long long)sb.st_size);
    assert_non_null(strstr(err_msg(), want));

    // a SQLite file that is no shard
    const char *other = tmp_path("other.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(shard_check(other), -1);
    assert_non_null(strstr(err_msg(), "no such table: runs"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_once),
        cmocka_unit_test(test_failed_run_keeps_error),
        cmocka_unit_test(test_run_not_in_database),
        cmocka_unit_test(test_check_names_the_damage),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
