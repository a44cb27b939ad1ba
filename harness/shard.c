// harness/shard.c — per-run result shards and their merge. See shard.h.
#include "harness/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"

static void env_copy(char *dst, size_t cap, const char *name) {
    const char *v = getenv(name);
    snprintf(dst, cap, "%s", v ? v : "");
}

void shard_place(ShardPlace *p) {
    memset(p, 0, sizeof *p);
    env_copy(p->job_id, sizeof p->job_id, "SLURM_JOB_ID");
    const char *aj = getenv("SLURM_ARRAY_JOB_ID"), *at = getenv("SLURM_ARRAY_TASK_ID");
    if (aj && at) snprintf(p->array_task, sizeof p->array_task, "%s_%s", aj, at);
    env_copy(p->node, sizeof p->node, "SLURMD_NODENAME");
    if (!p->node[0] && gethostname(p->node, sizeof p->node - 1)) p->node[0] = '\0';
    // the GPUs Slurm bound to this task, as it numbered them
    env_copy(p->gpus, sizeof p->gpus, "SLURM_JOB_GPUS");
    if (!p->gpus[0]) env_copy(p->gpus, sizeof p->gpus, "SLURM_STEP_GPUS");
    if (!p->gpus[0]) env_copy(p->gpus, sizeof p->gpus, "CUDA_VISIBLE_DEVICES");
}

static int exec_sql(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set("%s: %s (SQL: %.80s)", sqlite3_db_filename(db, "main"), msg ? msg : sqlite3_errmsg(db), sql);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static const char SHARD_TASK_TABLE[] =
    "CREATE TABLE IF NOT EXISTS slurm_task (\n"
    "  hash TEXT NOT NULL, plan_index INTEGER NOT NULL, job_id TEXT, array_task TEXT,\n"
    "  node TEXT, gpus TEXT)";

int shard_create(const char *tmp_path, const char *hash, const char *config_json, int plan_index,
                 const ShardPlace *place, int64_t *run_id) {
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {   // a task restarted by Slurm (requeue) starts over
        char p[1200];
        snprintf(p, sizeof p, "%s%s", tmp_path, sfx[i]);
        if (unlink(p) && errno != ENOENT) return err_set("%s: cannot remove: %s", p, strerror(errno));
    }
    Store *st;
    if (store_open(&st, tmp_path, 0)) return -1;
    RunSpec spec = {hash, config_json, NULL, NULL, NULL, NULL, -1, -1, -1, NULL};
    sqlite3 *db = store_db(st);
    sqlite3_stmt *ins = NULL;
    const char *sql = "INSERT INTO slurm_task VALUES (?, ?, ?, ?, ?, ?)";
    if (store_add_run(st, 0, &spec, run_id, NULL) || exec_sql(db, SHARD_TASK_TABLE)) goto fail;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &ins, NULL), sql);
    sqlite3_bind_text(ins, 1, hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(ins, 2, plan_index);
    sqlite3_bind_text(ins, 3, place->job_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 4, place->array_task, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 5, place->node, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 6, place->gpus, -1, SQLITE_TRANSIENT);
    SQL_CHECK(db, sqlite3_step(ins), sql);
    sqlite3_finalize(ins);
    store_close(st);
    return 0;
fail:
    sqlite3_finalize(ins);
    store_close(st);
    return -1;
}

int shard_finish(const char *tmp_path, const char *final_path) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(tmp_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        err_set("%s: %s", tmp_path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 10000);
    // out of WAL: the checkpoint folds the log into the file, and closing removes -wal/-shm
    int rc = exec_sql(db, "PRAGMA journal_mode = DELETE");
    sqlite3_close(db);
    if (rc) return -1;
    if (rename(tmp_path, final_path)) return err_set("%s: cannot rename to %s: %s", tmp_path, final_path, strerror(errno));
    return 0;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int shard_check(const char *path) {
    struct stat sb;
    if (stat(path, &sb)) return err_set("shard %s: %s", path, strerror(errno));
    unsigned char h[100];
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("shard %s: %s", path, strerror(errno));
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    if (got < sizeof h)
        return err_set("shard %s: truncated: %lld bytes, shorter than a SQLite header", path, (long long)sb.st_size);
    if (memcmp(h, "SQLite format 3", 16)) return err_set("shard %s: not a SQLite file", path);
    uint32_t page = (uint32_t)h[16] << 8 | h[17];
    if (page == 1) page = 65536;
    uint32_t pages = be32(h + 28);
    // the header's page count holds when its change counter matches "version valid for"
    if (be32(h + 24) == be32(h + 92) && pages && (long long)sb.st_size < (long long)page * pages)
        return err_set("shard %s: truncated: %lld bytes, its header says %lld", path, (long long)sb.st_size,
                       (long long)page * pages);
    if (sb.st_size % page)
        return err_set("shard %s: truncated: %lld bytes, not a whole number of %u-byte pages", path,
                       (long long)sb.st_size, page);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int status = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        err_set("shard %s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        goto out;
    }
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        err_set("shard %s: unreadable: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    if (strcmp((const char *)sqlite3_column_text(st, 0), "ok")) {
        err_set("shard %s: damaged: %s", path, (const char *)sqlite3_column_text(st, 0));
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*), sum(status IN ('done','failed','interrupted')) FROM runs", -1, &st, NULL) !=
            SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        err_set("shard %s: unreadable: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    if (sqlite3_column_int(st, 0) != 1 || sqlite3_column_int(st, 1) != 1) {
        err_set("shard %s: expected one settled run, found %d run(s), %d settled", path, sqlite3_column_int(st, 0),
                sqlite3_column_int(st, 1));
        goto out;
    }
    status = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return status;
}

// Kept in the results database; created on first use of the Slurm executor, so databases
// that never used it are unchanged.
static const char SLURM_TABLES[] =
    "CREATE TABLE IF NOT EXISTS slurm_plans (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,\n"
    "  dir TEXT NOT NULL UNIQUE,\n"
    "  pretrain_job TEXT, array_job TEXT, merge_job TEXT,\n"
    "  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));\n"
    "CREATE TABLE IF NOT EXISTS slurm_tasks (\n"
    "  plan_id INTEGER NOT NULL REFERENCES slurm_plans(id) ON DELETE CASCADE,\n"
    "  idx INTEGER NOT NULL,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  PRIMARY KEY (plan_id, idx));\n"
    "CREATE TABLE IF NOT EXISTS slurm_shards (\n"
    "  plan_id INTEGER NOT NULL REFERENCES slurm_plans(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL,\n"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  status TEXT, error TEXT, job_id TEXT, array_task TEXT, node TEXT, gpus TEXT,\n"
    "  applied INTEGER NOT NULL DEFAULT 0,\n"
    "  merged TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),\n"
    "  PRIMARY KEY (plan_id, name));\n";

int shard_tables(Store *st) { return exec_sql(store_db(st), SLURM_TABLES); }

// Registration columns the submitting side wrote (the shard leaves them NULL), and keys.
static int kept_column(const char *c) {
    static const char *keep[] = {"id", "hash", "config", "created", "task", "metric", "method",
                                 "targets", "rank", "alpha", "seed", "label", "attempts"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (!strcmp(c, keep[i])) return 1;
    return 0;
}

// "a = sh.a, b = sh.b, ..." over the run columns both databases have, but the kept ones.
static int result_columns(sqlite3 *db, char *buf, size_t cap) {
    const char *sql = "SELECT m.name FROM pragma_table_info('runs', 'main') m "
                      "JOIN pragma_table_info('runs', 'sh') s ON s.name = m.name ORDER BY m.cid";
    sqlite3_stmt *st = NULL;
    buf[0] = '\0';
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        if (kept_column(c)) continue;
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s\"%s\" = s.\"%s\"", n ? ", " : "", c, c);
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

int shard_merge(Store *store, int64_t plan_id, const char *name, const char *path, RunStatus *status, int *applied) {
    sqlite3 *db = store_db(store);
    sqlite3_stmt *st = NULL;
    char *sql = NULL;
    int in_tx = 0, attached = 0, ok = -1;
    *applied = 0;
    const char *q = "ATTACH DATABASE ? AS sh";
    SQL_CHECK(db, sqlite3_prepare_v2(db, q, -1, &st, NULL), q);
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    SQL_CHECK(db, sqlite3_step(st), q);
    sqlite3_finalize(st);
    st = NULL;
    attached = 1;
    if (exec_sql(db, "BEGIN IMMEDIATE")) goto out;
    in_tx = 1;
    q = "SELECT r.hash, r.status, r.error, t.job_id, t.array_task, t.node, t.gpus, m.id, m.status "
        "FROM sh.runs r LEFT JOIN sh.slurm_task t ON t.hash = r.hash LEFT JOIN main.runs m ON m.hash = r.hash";
    SQL_CHECK(db, sqlite3_prepare_v2(db, q, -1, &st, NULL), q);
    if (sqlite3_step(st) != SQLITE_ROW) { err_set("shard %s: %s", path, sqlite3_errmsg(db)); goto out; }
    char hash[65], *error = NULL, *job = NULL, *atask = NULL, *node = NULL, *gpus = NULL;
    snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(st, 0));
    *status = store_status_parse((const char *)sqlite3_column_text(st, 1));
    if (sqlite3_column_type(st, 7) == SQLITE_NULL) {
        err_set("shard %s: run %.12s is not in %s (the plan belongs to another database)", path, hash, store_path(store));
        goto out;
    }
    int64_t run_id = sqlite3_column_int64(st, 7);
    int main_done = !strcmp((const char *)sqlite3_column_text(st, 8), "done");
#define DUP(c) (sqlite3_column_type(st, c) == SQLITE_NULL ? NULL : xstrdup((const char *)sqlite3_column_text(st, c)))
    error = DUP(2); job = DUP(3); atask = DUP(4); node = DUP(5); gpus = DUP(6);
#undef DUP
    sqlite3_finalize(st);
    st = NULL;
    int step_rc = 0;
    if (!main_done) {   // a result already merged (or run locally) stays; this attempt is only recorded
        char cols[4096];
        if (result_columns(db, cols, sizeof cols)) goto free_strings;
        size_t cap = strlen(cols) + 512;
        sql = xmalloc(cap);
        snprintf(sql, cap, "UPDATE main.runs AS m SET %s, attempts = m.attempts + s.attempts FROM sh.runs AS s WHERE m.id = %lld",
                 cols, (long long)run_id);
        char del[256], ins_m[256], ins_a[320];
        snprintf(del, sizeof del, "DELETE FROM main.metrics WHERE run_id = %lld; DELETE FROM main.artifacts WHERE run_id = %lld",
                 (long long)run_id, (long long)run_id);
        snprintf(ins_m, sizeof ins_m, "INSERT INTO main.metrics (run_id, step, split, name, value) "
                 "SELECT %lld, step, split, name, value FROM sh.metrics", (long long)run_id);
        snprintf(ins_a, sizeof ins_a, "INSERT INTO main.artifacts (run_id, kind, path, bytes, sha256, created) "
                 "SELECT %lld, kind, path, bytes, sha256, created FROM sh.artifacts", (long long)run_id);
        if (exec_sql(db, sql) || exec_sql(db, del) || exec_sql(db, ins_m) || exec_sql(db, ins_a)) goto free_strings;
        *applied = 1;
    }
    q = "INSERT INTO main.slurm_shards (plan_id, name, run_id, status, error, job_id, array_task, node, gpus, applied) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    step_rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
    if (step_rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, plan_id);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, run_id);
        sqlite3_bind_text(st, 4, store_status_name(*status), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, error, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, job, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 7, atask, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 8, node, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 9, gpus, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 10, *applied);
        step_rc = sqlite3_step(st);
    }
    if (step_rc != SQLITE_DONE) { store_sql_error(db, q, __FILE__, __LINE__); goto free_strings; }
    if (exec_sql(db, "COMMIT")) goto free_strings;
    in_tx = 0;
    ok = 0;
free_strings:
    free(error); free(job); free(atask); free(node); free(gpus);
    goto out;
fail:
out:
    sqlite3_finalize(st);
    free(sql);
    if (in_tx) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (attached) sqlite3_exec(db, "DETACH DATABASE sh", NULL, NULL, NULL);
    if (ok) *applied = 0;
    return ok;
}
