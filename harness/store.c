// harness/store.c — the SQLite results store. See store.h for the schema and the contract.
#include "harness/store.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/files.h"

#ifndef LORALAB_VERSION
#define LORALAB_VERSION "unknown"
#endif

enum { BUSY_TIMEOUT_MS = 10000 };

struct Store {
    sqlite3 *db;
    char *path;
    int64_t claim_run;   // the run this Store claimed last (0: none), and its claim
    RunClaim claim;
};

static const char *const STATUS_NAMES[RUN_NSTATUS] = {"pending", "running", "done", "failed",
                                                      "interrupted"};

const char *store_status_name(RunStatus status) {
    LAB_ASSERT(status >= 0 && status < RUN_NSTATUS);
    return STATUS_NAMES[status];
}

int store_status_parse(const char *name) {
    for (int i = 0; i < RUN_NSTATUS; i++)
        if (name && !strcmp(name, STATUS_NAMES[i])) return i;
    return -1;
}

// ----------------------------------------------------------------------------
// errors and small statement helpers

int store_sql_error(sqlite3 *db, const char *sql, const char *file, int line) {
    const char *fname = db ? sqlite3_db_filename(db, "main") : NULL;
    return err_set("%s: %s (SQL: %s) [%s:%d]", fname && *fname ? fname : "database",
                   db ? sqlite3_errmsg(db) : "out of memory", sql, file, line);
}

// Binds the variadic values described by fmt, one letter per '?':
//   i int, I int64_t, n int64_t (< 0 → NULL), d double, D double (< 0 → NULL),
//   t const char * (NULL → NULL).
static int bind_values(sqlite3_stmt *st, const char *fmt, va_list ap) {
    int rc = SQLITE_OK;
    for (int k = 0; fmt[k] && rc == SQLITE_OK; k++) {
        int col = k + 1;
        switch (fmt[k]) {
        case 'i': rc = sqlite3_bind_int(st, col, va_arg(ap, int)); break;
        case 'I': rc = sqlite3_bind_int64(st, col, va_arg(ap, int64_t)); break;
        case 'n': {
            int64_t v = va_arg(ap, int64_t);
            rc = v < 0 ? sqlite3_bind_null(st, col) : sqlite3_bind_int64(st, col, v);
            break;
        }
        case 'd': rc = sqlite3_bind_double(st, col, va_arg(ap, double)); break;
        case 'D': {
            double v = va_arg(ap, double);
            rc = v < 0 ? sqlite3_bind_null(st, col) : sqlite3_bind_double(st, col, v);
            break;
        }
        case 't': {
            const char *v = va_arg(ap, const char *);
            rc = v ? sqlite3_bind_text(st, col, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, col);
            break;
        }
        default: LAB_ASSERT(!"unknown bind format letter");
        }
    }
    return rc;
}

// Prepares sql and binds the values; *out is finalized by the caller.
static int sql_prepare(Store *s, sqlite3_stmt **out, const char *sql, const char *fmt, ...) {
    *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, out, NULL);
    if (rc == SQLITE_OK) rc = bind_values(*out, fmt, ap);
    va_end(ap);
    if (rc != SQLITE_OK) {
        store_sql_error(s->db, sql, __FILE__, __LINE__);
        sqlite3_finalize(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

// Runs one statement that returns no rows we need. *changes (may be NULL): rows changed.
static int sql_run(Store *s, int *changes, const char *sql, const char *fmt, ...) {
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = bind_values(st, fmt, ap);
    va_end(ap);
    SQL_CHECK(s->db, rc, sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
    SQL_CHECK(s->db, rc, sql);
    if (changes) *changes = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// One integer from the first row of a query; *found = 0 if no row.
static int sql_int64(Store *s, int64_t *out, int *found, const char *sql, const char *fmt, ...) {
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = bind_values(st, fmt, ap);
    va_end(ap);
    SQL_CHECK(s->db, rc, sql);
    rc = sqlite3_step(st);
    SQL_CHECK(s->db, rc, sql);
    if (found) *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// BEGIN IMMEDIATE takes the write lock up front, so two writers wait (busy_timeout)
// instead of deadlocking on a read→write upgrade.
static int tx_begin(Store *s) { return sql_run(s, NULL, "BEGIN IMMEDIATE", ""); }
static int tx_commit(Store *s) { return sql_run(s, NULL, "COMMIT", ""); }
// Keeps the error message of what failed, not of the rollback.
static int tx_rollback(Store *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

// Inside a write transaction: 0 if this Store holds no claim on run_id or the row still holds
// it; otherwise -1 with err_set() saying who has the run now.
static int claim_check(Store *s, int64_t run_id);
static int select_run(Store *s, const char *sql, int64_t run_id, sqlite3_stmt **out);
static int pid_is_gone(int pid, int64_t recorded_start);

// ----------------------------------------------------------------------------
// schema

// MIGRATIONS[v] takes the schema from user_version v to v + 1. Append only: a released
// migration is never edited, since databases in the field have already applied it.
static const char *const MIGRATIONS[STORE_SCHEMA_VERSION] = {
    // 0 → 1: sweeps, runs, metrics, artifacts
    "CREATE TABLE sweeps (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  file TEXT,\n"
    "  yaml TEXT,\n"
    "  analyze TEXT,\n"
    "  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));\n"
    "CREATE TABLE runs (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  hash TEXT NOT NULL UNIQUE,\n"
    "  config TEXT NOT NULL,\n"
    "  status TEXT NOT NULL DEFAULT 'pending'\n"
    "    CHECK (status IN ('pending','running','done','failed','interrupted')),\n"
    "  error TEXT,\n"
    "  task TEXT, metric TEXT, method TEXT, targets TEXT, rank INTEGER, alpha REAL,\n"
    "  seed INTEGER, label TEXT,\n"
    "  trainable_params INTEGER, total_params INTEGER, head_params INTEGER,\n"
    "  bytes_weights INTEGER, bytes_grads INTEGER, bytes_optimizer INTEGER,\n"
    "  bytes_activations INTEGER, adapter_bytes INTEGER,\n"
    "  wall_seconds REAL, tokens_per_s REAL,\n"
    "  device TEXT, host TEXT, pid INTEGER, pid_start INTEGER,\n"
    "  attempts INTEGER NOT NULL DEFAULT 0,\n"
    "  version TEXT,\n"
    "  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),\n"
    "  started TEXT, finished TEXT);\n"
    "CREATE INDEX runs_status ON runs(status);\n"
    "CREATE TABLE sweep_runs (\n"
    "  sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  position INTEGER NOT NULL,\n"
    "  PRIMARY KEY (sweep_id, run_id));\n"
    "CREATE INDEX sweep_runs_run ON sweep_runs(run_id);\n"
    "CREATE TABLE metrics (\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  step INTEGER NOT NULL,\n"
    "  split TEXT NOT NULL,\n"
    "  name TEXT NOT NULL,\n"
    "  value REAL,\n"
    "  PRIMARY KEY (run_id, split, name, step));\n"
    "CREATE TABLE artifacts (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  kind TEXT NOT NULL,\n"
    "  path TEXT NOT NULL,\n"
    "  bytes INTEGER,\n"
    "  sha256 TEXT,\n"
    "  created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),\n"
    "  UNIQUE (run_id, kind, path));\n",
    // 1 → 2: results of `loralab analyze`
    "CREATE TABLE analysis_subspace (\n"
    "  run_a INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  run_b INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  kind TEXT NOT NULL DEFAULT 'learned' CHECK (kind IN ('learned','random')),\n"
    "  layer INTEGER NOT NULL,\n"
    "  matrix TEXT NOT NULL,\n"
    "  i INTEGER NOT NULL,\n"
    "  j INTEGER NOT NULL,\n"
    "  phi REAL NOT NULL,\n"
    "  PRIMARY KEY (run_a, run_b, kind, layer, matrix, i, j));\n"
    "CREATE TABLE analysis_amplification (\n"
    "  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  layer INTEGER NOT NULL,\n"
    "  matrix TEXT NOT NULL,\n"
    "  rank INTEGER NOT NULL,\n"
    "  norm_dw REAL, norm_w REAL,\n"
    "  norm_proj_dw REAL, norm_proj_w REAL, norm_proj_random REAL,\n"
    "  amplification REAL,\n"
    "  PRIMARY KEY (run, layer, matrix, rank));\n"
    "CREATE TABLE analysis_singular (\n"
    "  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  layer INTEGER NOT NULL,\n"
    "  matrix TEXT NOT NULL,\n"
    "  idx INTEGER NOT NULL,\n"
    "  value REAL NOT NULL,\n"
    "  effective_rank REAL,\n"
    "  PRIMARY KEY (run, layer, matrix, idx));\n",
    // 2 → 3: where and why a run stopped (early stopping), and a sweep's tuning runs
    "ALTER TABLE runs ADD COLUMN stop_step INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN stop_reason TEXT CHECK (stop_reason IN ('patience','cap','failure'));\n"
    "CREATE TABLE sweep_tune (\n"
    "  sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  variant TEXT NOT NULL,\n"
    "  setting TEXT NOT NULL,\n"
    "  position INTEGER NOT NULL,\n"
    "  picked INTEGER NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY (sweep_id, run_id));\n",
    // 3 → 4: a running run's heartbeat (Unix seconds), refreshed by its sweep
    "ALTER TABLE runs ADD COLUMN heartbeat REAL;\n",
};

int store_user_version(Store *s, int *version) {
    int64_t v = 0;
    if (sql_int64(s, &v, NULL, "PRAGMA user_version", "")) return -1;
    *version = (int)v;
    return 0;
}

// Applies MIGRATIONS[from..target) in one transaction. The version is read again inside the
// transaction: another process may have migrated between our check and our lock.
static int store_migrate(Store *s, int target) {
    if (tx_begin(s)) return -1;
    int version;
    if (store_user_version(s, &version)) return tx_rollback(s);
    if (version > STORE_SCHEMA_VERSION) {
        tx_rollback(s);
        return err_set("%s: schema version %d is newer than this loralab's (%d); use a newer "
                       "loralab or another --db", s->path, version, STORE_SCHEMA_VERSION);
    }
    for (int v = version; v < target; v++) {
        SQL_CHECK(s->db, sqlite3_exec(s->db, MIGRATIONS[v], NULL, NULL, NULL), MIGRATIONS[v]);
        // PRAGMA takes no bound parameters; v + 1 is our own integer, not outside input.
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if (sql_run(s, NULL, sql, "")) return tx_rollback(s);
    }
    return tx_commit(s) ? tx_rollback(s) : 0;
fail:
    return tx_rollback(s);
}

// The directory part of path, "." when it has none.
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    if (slash == path) return xstrdup("/");
    char *dir = xmalloc((size_t)(slash - path) + 1);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = 0;
    return dir;
}

int store_read_only_file(const char *path) {
    if (!path) path = STORE_DEFAULT_PATH;
    if (access(path, F_OK) != 0) return 0;
    char *dir = dir_of(path);
    int ro = access(path, W_OK) != 0 || access(dir, W_OK) != 0;
    free(dir);
    return ro;
}

// Opens a WAL database in a directory we cannot write and that holds no -shm or -wal file:
// SQLite cannot create its shared-memory file there, so the file is opened as immutable
// (nobody can be writing it: a writer would have created the -wal file).
static int open_immutable(sqlite3 **db, const char *path) {
    size_t len = strlen(path);
    char *uri = xmalloc(3 * len + 32), *o = uri;
    o += sprintf(o, "file:");
    for (const char *p = path; *p; p++) {   // percent-encode all but unreserved characters and '/'
        unsigned char ch = (unsigned char)*p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("/-._~", ch))
            *o++ = (char)ch;
        else
            o += sprintf(o, "%%%02X", ch);
    }
    sprintf(o, "?immutable=1");
    int rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    return rc;
}

static int wal_side_files(const char *path) {
    size_t len = strlen(path) + 8;
    char *side = xmalloc(len);
    snprintf(side, len, "%s-shm", path);
    int any = access(side, F_OK) == 0;
    snprintf(side, len, "%s-wal", path);
    any |= access(side, F_OK) == 0;
    free(side);
    return any;
}

// Switching a new file to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY at once
// (no busy handler) when another process is opening the same new file: retry for as long as
// the busy timeout would have waited.
static int set_wal(Store *s) {
    const char *sql = "PRAGMA journal_mode = WAL";
    for (int waited_ms = 0;; waited_ms += 10) {
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK) return 0;
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) break;
        if (waited_ms >= BUSY_TIMEOUT_MS) break;
        usleep(10000);
    }
    return store_sql_error(s->db, sql, __FILE__, __LINE__);
}

static int store_open_impl(Store **out, const char *path, int flags, int target) {
    *out = NULL;
    if (!path) path = STORE_DEFAULT_PATH;
    int readonly = flags & STORE_READONLY;
    if (readonly && access(path, F_OK) != 0)
        return err_set("%s: no such database (run a sweep first, or pass --db PATH)", path);
    if (!readonly && files_make_parent_dirs(path)) return -1;
    Store *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    int oflags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    char *dir = dir_of(path);
    int immutable = readonly && access(dir, W_OK) != 0 && !wal_side_files(path);
    free(dir);
    if ((immutable ? open_immutable(&s->db, path) : sqlite3_open_v2(path, &s->db, oflags, NULL)) != SQLITE_OK) {
        err_set("%s: cannot open database: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    int version = 0;
    if (sql_run(s, NULL, "PRAGMA foreign_keys = ON", "")) goto fail;
    if (!readonly) {
        // WAL: readers never block the writer; NORMAL sync is durable across process
        // crashes (kill -9), only a power cut may lose the last commits.
        if (set_wal(s)) goto fail;
        if (sql_run(s, NULL, "PRAGMA synchronous = NORMAL", "")) goto fail;
        if (store_migrate(s, target)) goto fail;
    } else {
        if (store_user_version(s, &version)) goto fail;
        if (!(flags & STORE_RAW) && (version < STORE_READ_MIN_VERSION || version > STORE_SCHEMA_VERSION)) {
            if (version == 0)
                err_set("%s: not a loralab database (schema version 0)", path);
            else
                err_set("%s: schema version %d, this loralab reads version %d (any writing "
                        "command, e.g. `loralab status --db %s`, migrates it)",
                        path, version, STORE_SCHEMA_VERSION, path);
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return -1;
}

int store_open(Store **out, const char *path, int flags) {
    return store_open_impl(out, path, flags, STORE_SCHEMA_VERSION);
}

int store_open_at_version(Store **out, const char *path, int version) {
    LAB_ASSERT(version >= 0 && version <= STORE_SCHEMA_VERSION);
    return store_open_impl(out, path, 0, version);
}

int store_open_copy(Store **out, const char *path) {
    *out = NULL;
    Store *src;
    if (store_open(&src, path, STORE_READONLY | STORE_RAW)) return -1;
    Store *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    int rc = sqlite3_open(":memory:", &s->db);
    sqlite3_backup *bk = rc == SQLITE_OK ? sqlite3_backup_init(s->db, "main", src->db, "main") : NULL;
    if (bk) {
        rc = sqlite3_backup_step(bk, -1);
        sqlite3_backup_finish(bk);
    }
    int ok = bk && rc == SQLITE_DONE;
    if (!ok) err_set("%s: cannot copy the database: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
    store_close(src);
    if (!ok || sql_run(s, NULL, "PRAGMA foreign_keys = ON", "") || store_migrate(s, STORE_SCHEMA_VERSION)) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(Store *s) {
    if (!s) return;
    sqlite3_close(s->db);   // NULL-safe; all statements are finalized by their functions
    free(s->path);
    free(s);
}

sqlite3 *store_db(Store *s) { return s->db; }
const char *store_path(const Store *s) { return s->path; }

// ----------------------------------------------------------------------------
// sweeps

int store_add_sweep(Store *s, const char *name, const char *file, const char *yaml,
                    const char *analyze, int64_t *id) {
    LAB_ASSERT(name);
    if (tx_begin(s)) return -1;
    if (sql_run(s, NULL,
                "INSERT INTO sweeps (name, file, yaml, analyze) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET file = excluded.file, yaml = excluded.yaml, "
                "analyze = excluded.analyze",
                "tttt", name, file, yaml, analyze))
        return tx_rollback(s);
    if (sql_int64(s, id, NULL, "SELECT id FROM sweeps WHERE name = ?", "t", name)) return tx_rollback(s);
    // the sweep's membership is what its file says now: the store_add_run calls that follow
    // link its runs again (runs dropped from the file stay in the database, unlinked)
    if (sql_run(s, NULL, "DELETE FROM sweep_runs WHERE sweep_id = ?", "I", *id)) return tx_rollback(s);
    return tx_commit(s) ? tx_rollback(s) : 0;
}

int store_find_sweep(Store *s, const char *name, int64_t *id) {
    int found = 0;
    if (sql_int64(s, id, &found, "SELECT id FROM sweeps WHERE name = ?", "t", name)) return -1;
    if (found) return 0;
    const char *sql = "SELECT coalesce(group_concat(name, ', '), '') FROM (SELECT name FROM sweeps ORDER BY id)";
    sqlite3_stmt *st = NULL;
    SQL_CHECK(s->db, sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), sql);
    SQL_CHECK(s->db, sqlite3_step(st), sql);
    const char *names = (const char *)sqlite3_column_text(st, 0);
    if (names && *names)
        err_set("%s: no sweep named '%s' (sweeps: %s)", s->path, name, names);
    else
        err_set("%s: no sweep named '%s' (the database holds no sweeps)", s->path, name);
    sqlite3_finalize(st);
    return -1;
fail:
    sqlite3_finalize(st);
    return -1;
}

// ----------------------------------------------------------------------------
// runs

int store_add_run(Store *s, int64_t sweep_id, const RunSpec *spec, int64_t *id, int *created) {
    LAB_ASSERT(spec->hash && spec->config_json);
    if (tx_begin(s)) return -1;
    int changes = 0;
    if (sql_run(s, &changes,
                "INSERT INTO runs (hash, config, task, metric, method, targets, rank, alpha, "
                "seed, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
                "ttttttnDnt", spec->hash, spec->config_json, spec->task, spec->metric,
                spec->method, spec->targets, (int64_t)spec->rank, spec->alpha,
                (int64_t)spec->seed, spec->label))
        return tx_rollback(s);
    if (sql_int64(s, id, NULL, "SELECT id FROM runs WHERE hash = ?", "t", spec->hash))
        return tx_rollback(s);
    if (!changes) {
        // Same hash, other config: a hash collision or a canonicalisation bug. Refuse rather
        // than silently merging two experiments.
        int64_t same = 0;
        if (sql_int64(s, &same, NULL, "SELECT config = ? FROM runs WHERE id = ?", "tI",
                      spec->config_json, *id))
            return tx_rollback(s);
        if (!same) {
            tx_rollback(s);
            return err_set("%s: run %lld has hash %s but a different config; refusing to merge",
                           s->path, (long long)*id, spec->hash);
        }
    }
    if (sweep_id > 0 &&
        sql_run(s, NULL,
                "INSERT INTO sweep_runs (sweep_id, run_id, position) VALUES (?, ?, "
                "(SELECT coalesce(max(position), 0) + 1 FROM sweep_runs WHERE sweep_id = ?)) "
                "ON CONFLICT DO NOTHING",
                "III", sweep_id, *id, sweep_id))
        return tx_rollback(s);
    if (tx_commit(s)) return tx_rollback(s);
    if (created) *created = changes > 0;
    return 0;
}

int store_runs_todo(Store *s, int64_t sweep_id, int retry_failed, int64_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    const char *sql =
        "SELECT r.id FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id "
        "WHERE sr.sweep_id = ? AND (r.status IN ('pending', 'interrupted', 'running') "
        "OR (? AND r.status = 'failed')) ORDER BY sr.position";
    sqlite3_stmt *st = NULL;
    if (sql_prepare(s, &st, sql, "Ii", sweep_id, retry_failed ? 1 : 0)) return -1;
    int cap = 16, rc;
    int64_t *out = xmalloc((size_t)cap * sizeof *out);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) out = xrealloc(out, (size_t)(cap *= 2) * sizeof *out);
        out[(*n)++] = sqlite3_column_int64(st, 0);
    }
    SQL_CHECK(s->db, rc, sql);
    sqlite3_finalize(st);
    *ids = out;
    return 0;
fail:
    sqlite3_finalize(st);
    free(out);
    *n = 0;
    return -1;
}

// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or -1;
// *zombie (may be NULL) says whether it has exited and waits to be reaped (state Z or X).
// With the pid it identifies a process even after the pid number is reused.
static int64_t proc_stat(int pid, int *zombie) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strrchr(buf, ')');   // the command name may contain spaces and ')'
    if (!p) return -1;
    long long start = -1;
    char state = '?';
    // after ") ": state(3) then fields 4..21, then starttime(22)
    if (sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %lld",
               &state, &start) != 2)
        return -1;
    if (zombie) *zombie = state == 'Z' || state == 'X';
    return start;
}

static const char *this_host(char *buf, size_t size) {
    if (gethostname(buf, size) != 0) snprintf(buf, size, "localhost");
    buf[size - 1] = 0;
    return buf;
}

// The current time in Unix seconds, fractional, as SQLite computes it.
#define SQL_UNIX_NOW "((julianday('now') - 2440587.5) * 86400.0)"

int store_claim_run(Store *s, int64_t run_id, int pid, const char *host, const char *device,
                    int retry_failed, int *claimed) {
    char hostbuf[256];
    if (!host) host = this_host(hostbuf, sizeof hostbuf);
    *claimed = 0;
    int64_t start = proc_stat(pid, NULL);
    if (tx_begin(s)) return -1;
    int changes = 0;
    if (sql_run(s, &changes,
                "UPDATE runs SET status = 'running', pid = ?, pid_start = ?, host = ?, device = ?, "
                "version = ?, error = NULL, wall_seconds = NULL, tokens_per_s = NULL, "
                "attempts = attempts + 1, finished = NULL, "
                "started = strftime('%Y-%m-%dT%H:%M:%fZ','now'), heartbeat = " SQL_UNIX_NOW " "
                "WHERE id = ? AND (status IN ('pending', 'interrupted') OR (? AND status = 'failed'))",
                "intttIi", pid, start, host, device, LORALAB_VERSION, run_id, retry_failed ? 1 : 0))
        return tx_rollback(s);
    int64_t attempts = 0;
    if (changes == 1) {
        // A fresh attempt: rows of an interrupted or failed earlier one would mix two curves.
        if (sql_run(s, NULL, "DELETE FROM metrics WHERE run_id = ?", "I", run_id) ||
            sql_run(s, NULL, "DELETE FROM artifacts WHERE run_id = ?", "I", run_id) ||
            sql_int64(s, &attempts, NULL, "SELECT attempts FROM runs WHERE id = ?", "I", run_id))
            return tx_rollback(s);
    }
    if (tx_commit(s)) return tx_rollback(s);
    *claimed = changes == 1;
    if (*claimed) {   // this Store now writes about the run only while the row holds this claim
        s->claim_run = run_id;
        s->claim.status = RUN_RUNNING;
        s->claim.pid = pid;
        s->claim.pid_start = start;
        snprintf(s->claim.host, sizeof s->claim.host, "%s", host);
        s->claim.attempts = (int)attempts;
    }
    return 0;
}

int store_run_claim(Store *s, int64_t run_id, RunClaim *c) {
    sqlite3_stmt *st;
    if (select_run(s, "SELECT status, coalesce(pid, 0), coalesce(pid_start, -1), coalesce(host, ''), "
                      "attempts, max(" SQL_UNIX_NOW " - heartbeat, 0) FROM runs WHERE id = ?", run_id, &st))
        return -1;
    int v = store_status_parse((const char *)sqlite3_column_text(st, 0));
    LAB_ASSERT(v >= 0);   // the CHECK constraint allows nothing else
    c->status = (RunStatus)v;
    c->pid = sqlite3_column_int(st, 1);
    c->pid_start = sqlite3_column_int64(st, 2);
    snprintf(c->host, sizeof c->host, "%s", (const char *)sqlite3_column_text(st, 3));
    c->attempts = sqlite3_column_int(st, 4);
    c->heartbeat_age = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 5);
    sqlite3_finalize(st);
    return 0;
}

int store_claim_alive(const RunClaim *c) {
    char hostbuf[256];
    if (strcmp(c->host, this_host(hostbuf, sizeof hostbuf))) return -1;
    return !pid_is_gone(c->pid, c->pid_start);
}

// The WHERE clause of a compare-and-set on a claim; binds status, pid, host, attempts.
#define CLAIM_MATCH "status = ? AND coalesce(pid, 0) = ? AND coalesce(host, '') = ? AND attempts = ?"

int store_fail_claim(Store *s, int64_t run_id, const RunClaim *expect, RunStatus to, const char *error,
                     int *changed) {
    LAB_ASSERT(to == RUN_FAILED || to == RUN_INTERRUPTED);
    int changes = 0;
    if (changed) *changed = 0;
    if (tx_begin(s)) return -1;
    if (sql_run(s, &changes,
                "UPDATE runs SET status = ?, error = ?, finished = strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                "WHERE id = ? AND " CLAIM_MATCH,
                "ttItiti", store_status_name(to), error, run_id, store_status_name(expect->status),
                expect->pid, expect->host, expect->attempts))
        return tx_rollback(s);
    if (tx_commit(s)) return tx_rollback(s);
    if (changed) *changed = changes == 1;
    return 0;
}

double store_heartbeat_period(void) {
    const char *e = getenv("LORALAB_HEARTBEAT_SECONDS");
    double v = e ? atof(e) : 0;
    return v > 0 ? v : 10.0;
}

double store_heartbeat_lease(void) { return 3 * store_heartbeat_period(); }

int store_heartbeat(Store *s, int64_t run_id, int pid) {
    char hostbuf[256];
    const char *host = this_host(hostbuf, sizeof hostbuf);
    if (tx_begin(s)) return -1;
    if (sql_run(s, NULL,
                "UPDATE runs SET heartbeat = " SQL_UNIX_NOW " WHERE id = ? AND status = 'running' AND pid = ? "
                "AND host = ?",
                "Iit", run_id, pid, host))
        return tx_rollback(s);
    return tx_commit(s) ? tx_rollback(s) : 0;
}

int store_interrupt_lost_claim(Store *s, int64_t run_id, const RunClaim *expect, double lease,
                               const char *error, int *changed) {
    int changes = 0;
    if (changed) *changed = 0;
    if (tx_begin(s)) return -1;
    if (sql_run(s, &changes,
                "UPDATE runs SET status = 'interrupted', error = ?, "
                "finished = strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                "WHERE id = ? AND " CLAIM_MATCH " AND (heartbeat IS NULL OR heartbeat < " SQL_UNIX_NOW " - ?)",
                "tItitid", error, run_id, store_status_name(expect->status), expect->pid, expect->host,
                expect->attempts, lease))
        return tx_rollback(s);
    if (tx_commit(s)) return tx_rollback(s);
    if (changed) *changed = changes == 1;
    return 0;
}

static int claim_check(Store *s, int64_t run_id) {
    if (s->claim_run != run_id) return 0;
    const RunClaim *c = &s->claim;
    int64_t match = 0;
    if (sql_int64(s, &match, NULL, "SELECT count(*) FROM runs WHERE id = ? AND " CLAIM_MATCH, "Ititi", run_id,
                  store_status_name(c->status), c->pid, c->host, c->attempts))
        return -1;
    if (match) return 0;
    RunClaim now;
    if (store_run_claim(s, run_id, &now)) return -1;
    return err_set("%s: run %lld is no longer this attempt's (attempt %d, pid %d on %s): it is %s, "
                   "attempt %d, pid %d on %s", s->path, (long long)run_id, c->attempts, c->pid, c->host,
                   store_status_name(now.status), now.attempts, now.pid, now.host[0] ? now.host : "-");
}

void store_summary_init(RunSummary *sum) {
    sum->trainable_params = sum->total_params = sum->head_params = -1;
    sum->bytes_weights = sum->bytes_grads = sum->bytes_optimizer = sum->bytes_activations = -1;
    sum->adapter_bytes = -1;
    sum->wall_seconds = sum->tokens_per_s = -1;
}

// One UPDATE in its own transaction; an error if no row matched (names what was expected).
static int update_run(Store *s, int64_t run_id, const char *what, const char *sql, const char *fmt, ...) {
    if (tx_begin(s)) return -1;
    if (claim_check(s, run_id)) return tx_rollback(s);
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = bind_values(st, fmt, ap);
    va_end(ap);
    SQL_CHECK(s->db, rc, sql);
    SQL_CHECK(s->db, sqlite3_step(st), sql);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_changes(s->db) != 1) {
        RunStatus status;
        int have = store_run_status(s, run_id, &status) == 0;
        tx_rollback(s);
        if (have)
            return err_set("%s: run %lld is %s, cannot %s", s->path, (long long)run_id,
                           store_status_name(status), what);
        return -1;   // store_run_status said why
    }
    return tx_commit(s) ? tx_rollback(s) : 0;
fail:
    sqlite3_finalize(st);
    return tx_rollback(s);
}

// COALESCE(?, col): a NULL (field < 0) keeps what the column holds.
int store_set_params(Store *s, int64_t run_id, int64_t trainable, int64_t total, int64_t head) {
    return update_run(s, run_id, "set its parameter counts",
                      "UPDATE runs SET trainable_params = coalesce(?, trainable_params), "
                      "total_params = coalesce(?, total_params), "
                      "head_params = coalesce(?, head_params) WHERE id = ?",
                      "nnnI", trainable, total, head, run_id);
}

int store_set_memory(Store *s, int64_t run_id, int64_t weights, int64_t grads, int64_t optimizer,
                     int64_t activations) {
    return update_run(s, run_id, "set its memory",
                      "UPDATE runs SET bytes_weights = coalesce(?, bytes_weights), "
                      "bytes_grads = coalesce(?, bytes_grads), "
                      "bytes_optimizer = coalesce(?, bytes_optimizer), "
                      "bytes_activations = coalesce(?, bytes_activations) WHERE id = ?",
                      "nnnnI", weights, grads, optimizer, activations, run_id);
}

int store_finish_run(Store *s, int64_t run_id, const RunSummary *sum) {
    return update_run(s, run_id, "mark it done (only a running run can finish)",
                      "UPDATE runs SET status = 'done', error = NULL, "
                      "trainable_params = coalesce(?, trainable_params), "
                      "total_params = coalesce(?, total_params), "
                      "head_params = coalesce(?, head_params), "
                      "bytes_weights = coalesce(?, bytes_weights), "
                      "bytes_grads = coalesce(?, bytes_grads), "
                      "bytes_optimizer = coalesce(?, bytes_optimizer), "
                      "bytes_activations = coalesce(?, bytes_activations), "
                      "adapter_bytes = coalesce(?, adapter_bytes), "
                      "wall_seconds = coalesce(?, wall_seconds), "
                      "tokens_per_s = coalesce(?, tokens_per_s), "
                      "finished = strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                      "WHERE id = ? AND status = 'running'",
                      "nnnnnnnnDDI", sum->trainable_params, sum->total_params, sum->head_params,
                      sum->bytes_weights, sum->bytes_grads, sum->bytes_optimizer,
                      sum->bytes_activations, sum->adapter_bytes, sum->wall_seconds,
                      sum->tokens_per_s, run_id);
}

int store_fail_run(Store *s, int64_t run_id, RunStatus status, const char *error) {
    LAB_ASSERT(status == RUN_FAILED || status == RUN_INTERRUPTED);
    return update_run(s, run_id, "mark it failed or interrupted (it is done)",
                      "UPDATE runs SET status = ?, error = ?, stop_reason = ?, "
                      "finished = strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                      "WHERE id = ? AND status != 'done'",
                      "tttI", store_status_name(status), error, status == RUN_FAILED ? "failure" : NULL, run_id);
}

int store_set_stop(Store *s, int64_t run_id, int step, const char *reason) {
    LAB_ASSERT(!strcmp(reason, "patience") || !strcmp(reason, "cap") || !strcmp(reason, "failure"));
    return update_run(s, run_id, "record where it stopped", "UPDATE runs SET stop_step = ?, stop_reason = ? WHERE id = ?",
                      "itI", step, reason, run_id);
}

int store_add_sweep_keep(Store *s, const char *name, const char *file, const char *yaml, const char *analyze,
                         int64_t *id, int *nlinked) {
    LAB_ASSERT(name);
    if (tx_begin(s)) return -1;
    if (sql_run(s, NULL,
                "INSERT INTO sweeps (name, file, yaml, analyze) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET file = excluded.file, yaml = excluded.yaml, "
                "analyze = excluded.analyze",
                "tttt", name, file, yaml, analyze))
        return tx_rollback(s);
    int64_t n = 0;
    if (sql_int64(s, id, NULL, "SELECT id FROM sweeps WHERE name = ?", "t", name) ||
        sql_int64(s, &n, NULL, "SELECT count(*) FROM sweep_runs WHERE sweep_id = ?", "I", *id))
        return tx_rollback(s);
    *nlinked = (int)n;
    return tx_commit(s) ? tx_rollback(s) : 0;
}

int store_sweep_size(Store *s, int64_t sweep_id, int *n) {
    int64_t v = 0;
    if (sql_int64(s, &v, NULL, "SELECT count(*) FROM sweep_runs WHERE sweep_id = ?", "I", sweep_id)) return -1;
    *n = (int)v;
    return 0;
}

int store_add_tune(Store *s, int64_t sweep_id, int64_t run_id, const char *variant, const char *setting, int position) {
    return sql_run(s, NULL,
                   "INSERT INTO sweep_tune (sweep_id, run_id, variant, setting, position) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT (sweep_id, run_id) DO UPDATE SET variant = excluded.variant, "
                   "setting = excluded.setting, position = excluded.position, picked = 0",
                   "IIttI", sweep_id, run_id, variant, setting, (int64_t)position);
}

int store_clear_tune(Store *s, int64_t sweep_id) {
    return sql_run(s, NULL, "DELETE FROM sweep_tune WHERE sweep_id = ?", "I", sweep_id);
}

int store_pick_tune(Store *s, int64_t sweep_id, const char *variant, const char *setting) {
    return sql_run(s, NULL, "UPDATE sweep_tune SET picked = (setting = ?) WHERE sweep_id = ? AND variant = ?",
                   "tIt", setting, sweep_id, variant);
}

int store_best_validation(Store *s, int64_t run_id, double *value, int *best_step) {
    *value = NAN;
    *best_step = -1;
    sqlite3_stmt *st = NULL;
    // the validation value of the run's main metric at the step the runner kept (best_step)
    const char *sql = "SELECT v.value, b.value FROM runs r "
                      "JOIN metrics b ON b.run_id = r.id AND b.split = 'test' AND b.name = 'best_step' "
                      "JOIN metrics v ON v.run_id = r.id AND v.split = 'validation' AND v.name = r.metric "
                      "AND v.step = CAST(b.value AS INTEGER) WHERE r.id = ? AND r.status = 'done'";
    if (sql_prepare(s, &st, sql, "I", run_id)) return -1;
    int rc = sqlite3_step(st);
    SQL_CHECK(s->db, rc, sql);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *value = sqlite3_column_double(st, 0);
        *best_step = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// Steps `sql` (one "?" for the run id) to the run's row: 0 with *out on the row (the caller
// finalizes it), or -1 with err_set() when sqlite fails or there is no such run.
static int select_run(Store *s, const char *sql, int64_t run_id, sqlite3_stmt **out) {
    sqlite3_stmt *st = NULL;
    if (sql_prepare(s, &st, sql, "I", run_id)) return -1;
    int rc = sqlite3_step(st);
    SQL_CHECK(s->db, rc, sql);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return err_set("%s: no run with id %lld", s->path, (long long)run_id);
    }
    *out = st;
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

int store_run_status(Store *s, int64_t run_id, RunStatus *status) {
    sqlite3_stmt *st;
    if (select_run(s, "SELECT status FROM runs WHERE id = ?", run_id, &st)) return -1;
    int v = store_status_parse((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    LAB_ASSERT(v >= 0);   // the CHECK constraint allows nothing else
    *status = (RunStatus)v;
    return 0;
}

int store_run_config(Store *s, int64_t run_id, char **hash, char **config_json) {
    *hash = *config_json = NULL;
    sqlite3_stmt *st;
    if (select_run(s, "SELECT hash, config FROM runs WHERE id = ?", run_id, &st)) return -1;
    *hash = xstrdup((const char *)sqlite3_column_text(st, 0));
    *config_json = xstrdup((const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    return 0;
}

// A process is gone if kill(pid, 0) says ESRCH, if it is a zombie (a worker killed with its
// sweep waits for a reaper that may be slow, e.g. in a container), or if the pid now names
// a process that started at another time than the one recorded at claim.
static int pid_is_gone(int pid, int64_t recorded_start) {
    if (pid <= 0) return 1;
    if (kill(pid, 0) != 0 && errno == ESRCH) return 1;
    int zombie = 0;
    int64_t now = proc_stat(pid, &zombie);
    if (zombie) return 1;
    if (recorded_start < 0) return 0;   // start unknown: trust kill()
    return now >= 0 && now != recorded_start;
}

int store_reset_stale(Store *s, const char *host, int *n) {
    char hostbuf[256];
    if (!host) host = this_host(hostbuf, sizeof hostbuf);
    if (n) *n = 0;
    const char *sql = "SELECT id, pid, pid_start FROM runs WHERE status = 'running' AND host = ?";
    sqlite3_stmt *st = NULL;
    if (sql_prepare(s, &st, sql, "t", host)) return -1;
    int count = 0, cap = 16, rc;
    int64_t(*gone)[2] = xmalloc((size_t)cap * sizeof *gone);   // (run id, pid)
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int pid = sqlite3_column_int(st, 1);
        int64_t start = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
        if (!pid_is_gone(pid, start)) continue;
        if (count == cap) gone = xrealloc(gone, (size_t)(cap *= 2) * sizeof *gone);
        gone[count][0] = sqlite3_column_int64(st, 0);
        gone[count][1] = pid;
        count++;
    }
    SQL_CHECK(s->db, rc, sql);
    sqlite3_finalize(st);
    st = NULL;
    if (count == 0) { free(gone); return 0; }
    if (tx_begin(s)) { free(gone); return -1; }
    int reset = 0;
    for (int k = 0; k < count; k++) {
        char error[512];   // host names reach 255 bytes
        snprintf(error, sizeof error, "interrupted: worker pid %lld on %s vanished while running",
                 (long long)gone[k][1], host);
        int changes = 0;
        // pid in the WHERE: a run reclaimed since our SELECT is someone else's now
        if (sql_run(s, &changes,
                    "UPDATE runs SET status = 'interrupted', error = ?, "
                    "finished = strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                    "WHERE id = ? AND status = 'running' AND pid = ?",
                    "tII", error, gone[k][0], gone[k][1])) {
            free(gone);
            return tx_rollback(s);
        }
        reset += changes;
    }
    free(gone);
    if (tx_commit(s)) return tx_rollback(s);
    if (n) *n = reset;
    return 0;
fail:
    sqlite3_finalize(st);
    free(gone);
    return -1;
}

// ----------------------------------------------------------------------------
// metrics and artifacts

static const char *const SQL_METRIC =
    "INSERT OR REPLACE INTO metrics (run_id, step, split, name, value) VALUES (?, ?, ?, ?, ?)";

int store_add_metric(Store *s, int64_t run_id, int step, const char *split, const char *name,
                     double value) {
    return store_add_metrics(s, run_id, step, split, 1, &name, &value);
}

int store_add_metrics(Store *s, int64_t run_id, int step, const char *split, int n,
                      const char *const *names, const double *values) {
    LAB_ASSERT(split && n >= 0);
    if (tx_begin(s)) return -1;
    if (claim_check(s, run_id)) return tx_rollback(s);
    sqlite3_stmt *st = NULL;
    if (sql_prepare(s, &st, SQL_METRIC, "")) return tx_rollback(s);
    for (int k = 0; k < n; k++) {
        LAB_ASSERT(names[k]);
        sqlite3_reset(st);
        SQL_CHECK(s->db, sqlite3_bind_int64(st, 1, run_id), SQL_METRIC);
        SQL_CHECK(s->db, sqlite3_bind_int(st, 2, step), SQL_METRIC);
        SQL_CHECK(s->db, sqlite3_bind_text(st, 3, split, -1, SQLITE_TRANSIENT), SQL_METRIC);
        SQL_CHECK(s->db, sqlite3_bind_text(st, 4, names[k], -1, SQLITE_TRANSIENT), SQL_METRIC);
        // NaN is stored as NULL by SQLite; keep it explicit.
        SQL_CHECK(s->db, values[k] == values[k] ? sqlite3_bind_double(st, 5, values[k])
                                                : sqlite3_bind_null(st, 5), SQL_METRIC);
        SQL_CHECK(s->db, sqlite3_step(st), SQL_METRIC);
    }
    sqlite3_finalize(st);
    return tx_commit(s) ? tx_rollback(s) : 0;
fail:
    sqlite3_finalize(st);
    return tx_rollback(s);
}

int store_add_artifact(Store *s, int64_t run_id, const char *kind, const char *path, int64_t bytes,
                       const char *sha256) {
    LAB_ASSERT(kind && path);
    if (tx_begin(s)) return -1;
    if (claim_check(s, run_id)) return tx_rollback(s);
    if (sql_run(s, NULL,
                "INSERT OR REPLACE INTO artifacts (run_id, kind, path, bytes, sha256) "
                "VALUES (?, ?, ?, ?, ?)",
                "Ittnt", run_id, kind, path, bytes, sha256))
        return tx_rollback(s);
    return tx_commit(s) ? tx_rollback(s) : 0;
}

// ----------------------------------------------------------------------------
// status

int store_sweep_counts(Store *s, int64_t sweep_id, int counts[RUN_NSTATUS]) {
    for (int k = 0; k < RUN_NSTATUS; k++) counts[k] = 0;
    const char *sql = "SELECT r.status, count(*) FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id "
                      "WHERE sr.sweep_id = ? GROUP BY r.status";
    sqlite3_stmt *st = NULL;
    if (sql_prepare(s, &st, sql, "I", sweep_id)) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int k = store_status_parse((const char *)sqlite3_column_text(st, 0));
        LAB_ASSERT(k >= 0);
        counts[k] = sqlite3_column_int(st, 1);
    }
    SQL_CHECK(s->db, rc, sql);
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// ----------------------------------------------------------------------------
// analysis results

int store_add_subspace(Store *s, int64_t run_a, int64_t run_b, const char *kind, int layer,
                       const char *matrix, int r1, int r2, const double *phi) {
    LAB_ASSERT(kind && matrix && r1 > 0 && r2 > 0 && phi);
    const char *sql = "INSERT OR REPLACE INTO analysis_subspace "
                      "(run_a, run_b, kind, layer, matrix, i, j, phi) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    if (tx_begin(s)) return -1;
    // a smaller grid than before must not leave stale (i, j) rows behind
    if (sql_run(s, NULL, "DELETE FROM analysis_subspace WHERE run_a = ? AND run_b = ? AND kind = ? "
                "AND layer = ? AND matrix = ?", "IItit", run_a, run_b, kind, layer, matrix))
        return tx_rollback(s);
    sqlite3_stmt *st = NULL;
    if (sql_prepare(s, &st, sql, "IItit", run_a, run_b, kind, layer, matrix)) return tx_rollback(s);
    for (int i = 1; i <= r1; i++)
        for (int j = 1; j <= r2; j++) {
            sqlite3_reset(st);
            SQL_CHECK(s->db, sqlite3_bind_int(st, 6, i), sql);
            SQL_CHECK(s->db, sqlite3_bind_int(st, 7, j), sql);
            SQL_CHECK(s->db, sqlite3_bind_double(st, 8, phi[(size_t)(i - 1) * (size_t)r2 + (size_t)(j - 1)]), sql);
            SQL_CHECK(s->db, sqlite3_step(st), sql);
        }
    sqlite3_finalize(st);
    return tx_commit(s) ? tx_rollback(s) : 0;
fail:
    sqlite3_finalize(st);
    return tx_rollback(s);
}

int store_add_amplification(Store *s, const AmplificationRow *row) {
    LAB_ASSERT(row->matrix);
    if (tx_begin(s)) return -1;
    if (sql_run(s, NULL,
                "INSERT OR REPLACE INTO analysis_amplification (run, layer, matrix, rank, norm_dw, "
                "norm_w, norm_proj_dw, norm_proj_w, norm_proj_random, amplification) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                "Iitidddddd", row->run, row->layer, row->matrix, row->rank, row->norm_dw, row->norm_w,
                row->norm_proj_dw, row->norm_proj_w, row->norm_proj_random, row->amplification))
        return tx_rollback(s);
    return tx_commit(s) ? tx_rollback(s) : 0;
}

int store_add_singular(Store *s, int64_t run, int layer, const char *matrix, int n,
                       const double *values, double effective_rank) {
    LAB_ASSERT(matrix && n >= 0);
    const char *sql = "INSERT INTO analysis_singular (run, layer, matrix, idx, value, effective_rank) "
                      "VALUES (?, ?, ?, ?, ?, ?)";
    if (tx_begin(s)) return -1;
    if (sql_run(s, NULL, "DELETE FROM analysis_singular WHERE run = ? AND layer = ? AND matrix = ?",
                "Iit", run, layer, matrix))
        return tx_rollback(s);
    sqlite3_stmt *st = NULL;
    if (sql_prepare(s, &st, sql, "Iit", run, layer, matrix)) return tx_rollback(s);
    for (int k = 0; k < n; k++) {
        sqlite3_reset(st);
        SQL_CHECK(s->db, sqlite3_bind_int(st, 4, k + 1), sql);
        SQL_CHECK(s->db, sqlite3_bind_double(st, 5, values[k]), sql);
        SQL_CHECK(s->db, sqlite3_bind_double(st, 6, effective_rank), sql);
        SQL_CHECK(s->db, sqlite3_step(st), sql);
    }
    sqlite3_finalize(st);
    return tx_commit(s) ? tx_rollback(s) : 0;
fail:
    sqlite3_finalize(st);
    return tx_rollback(s);
}
