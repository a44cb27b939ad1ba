// harness/cmd_query.c — `loralab status` (run counts per sweep, failed runs with their
// errors) and `loralab query` (read-only SQL on the results database).
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/errors.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/report.h"
#include "harness/slurm.h"
#include "harness/store.h"
#include "harness/watch.h"

// ----------------------------------------------------------------------------
// status

// Failed and interrupted runs of a sweep with the first line of their error.
static int print_failures(Store *s, int64_t sweep_id, const char *sweep) {
    sqlite3 *db = store_db(s);
    const char *sql = "SELECT r.id, substr(r.hash, 1, 8), r.status, coalesce(r.method, '-'), "
                      "coalesce(r.targets, ''), r.rank, r.seed, coalesce(r.error, '') "
                      "FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id "
                      "WHERE sr.sweep_id = ? AND r.status IN ('failed', 'interrupted') ORDER BY sr.position";
    sqlite3_stmt *st = NULL;
    int rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(st, 1, sweep_id), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char what[128] = "", error[240];
        const char *targets = (const char *)sqlite3_column_text(st, 4);
        size_t len = (size_t)snprintf(what, sizeof what, "%s", sqlite3_column_text(st, 3));
        if (*targets && len < sizeof what) len += (size_t)snprintf(what + len, sizeof what - len, " %s", targets);
        if (sqlite3_column_type(st, 5) != SQLITE_NULL && len < sizeof what)
            len += (size_t)snprintf(what + len, sizeof what - len, " r=%d", sqlite3_column_int(st, 5));
        if (sqlite3_column_type(st, 6) != SQLITE_NULL && len < sizeof what)
            snprintf(what + len, sizeof what - len, " seed=%d", sqlite3_column_int(st, 6));
        snprintf(error, sizeof error, "%s", sqlite3_column_text(st, 7));
        error[strcspn(error, "\r\n")] = 0;
        printf("  %s  run %lld (%s) %s, %s: %s\n", sweep, (long long)sqlite3_column_int64(st, 0),
               sqlite3_column_text(st, 1), sqlite3_column_text(st, 2), what, *error ? error : "(no message)");
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// Running runs of a sweep: who runs them (pid, host), on what (device, CPU threads) and how far.
static int print_running(Store *s, int64_t sweep_id, const char *sweep) {
    sqlite3 *db = store_db(s);
    const char *sql = "SELECT r.id, substr(r.hash, 1, 8), coalesce(r.method, '-'), coalesce(r.targets, ''), r.rank, "
                      "r.seed, coalesce(r.pid, 0), coalesce(r.host, '-'), coalesce(r.device, '-'), "
                      "(SELECT value FROM metrics m WHERE m.run_id = r.id AND m.split = 'train' AND m.name = 'threads'), "
                      "(SELECT max(step) FROM metrics m WHERE m.run_id = r.id AND m.split = 'train' AND m.name = 'loss'), "
                      "coalesce(r.started, '-') "
                      "FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id "
                      "WHERE sr.sweep_id = ? AND r.status = 'running' ORDER BY sr.position";
    sqlite3_stmt *st = NULL;
    int rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(st, 1, sweep_id), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char what[128] = "", threads[32] = "threads ?", step[32] = "no step yet";
        const char *targets = (const char *)sqlite3_column_text(st, 3);
        size_t len = (size_t)snprintf(what, sizeof what, "%s", sqlite3_column_text(st, 2));
        if (*targets && len < sizeof what) len += (size_t)snprintf(what + len, sizeof what - len, " %s", targets);
        if (sqlite3_column_type(st, 4) != SQLITE_NULL && len < sizeof what)
            len += (size_t)snprintf(what + len, sizeof what - len, " r=%d", sqlite3_column_int(st, 4));
        if (sqlite3_column_type(st, 5) != SQLITE_NULL && len < sizeof what)
            snprintf(what + len, sizeof what - len, " seed=%d", sqlite3_column_int(st, 5));
        if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
            int t = sqlite3_column_int(st, 9);
            snprintf(threads, sizeof threads, "%d thread%s", t, t == 1 ? "" : "s");
        }
        if (sqlite3_column_type(st, 10) != SQLITE_NULL) snprintf(step, sizeof step, "step %d", sqlite3_column_int(st, 10));
        printf("  %s  run %lld (%s) %s: pid %d on %s, %s, %s, %s, since %s\n", sweep, (long long)sqlite3_column_int64(st, 0),
               sqlite3_column_text(st, 1), what, sqlite3_column_int(st, 6), sqlite3_column_text(st, 7),
               sqlite3_column_text(st, 8), threads, step, sqlite3_column_text(st, 11));
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    return 0;
fail:
    sqlite3_finalize(st);
    return -1;
}

// fmt REPORT_TEXT: the table of counts per sweep, then the running and the failed runs;
// REPORT_CSV / REPORT_JSON: the counts alone, one record per sweep (report's emitters).
static int status_report(Store *s, const char *only, ReportFormat fmt) {
    sqlite3 *db = store_db(s);
    int64_t only_id = 0;
    if (only && store_find_sweep(s, only, &only_id)) return -1;
    const char *sql = "SELECT id, name FROM sweeps WHERE ? = 0 OR id = ? ORDER BY id";
    sqlite3_stmt *st = NULL;
    int rc, nsweeps = 0, cap = 8;
    int64_t *ids = xmalloc((size_t)cap * sizeof *ids);
    char **names = xmalloc((size_t)cap * sizeof *names);
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(st, 1, only_id), sql);
    SQL_CHECK(db, sqlite3_bind_int64(st, 2, only_id), sql);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (nsweeps == cap) {
            ids = xrealloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            names = xrealloc(names, (size_t)cap * sizeof *names);
        }
        ids[nsweeps] = sqlite3_column_int64(st, 0);
        names[nsweeps++] = xstrdup((const char *)sqlite3_column_text(st, 1));
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    st = NULL;

    enum { NC = 7 };
    static const char *const head[NC] = {"sweep", "total", "done", "failed", "running", "pending", "interrupted"};
    static const RunStatus order[5] = {RUN_DONE, RUN_FAILED, RUN_RUNNING, RUN_PENDING, RUN_INTERRUPTED};
    if (fmt != REPORT_TEXT) {
        json_t *rec = json_array();
        int err = 0;
        for (int k = 0; k < nsweeps && !err; k++) {
            int counts[RUN_NSTATUS], total = 0;
            if (store_sweep_counts(s, ids[k], counts)) { err = 1; break; }
            for (int j = 0; j < RUN_NSTATUS; j++) total += counts[j];
            json_t *o = json_object();
            json_object_set_new(o, head[0], json_string(names[k]));
            json_object_set_new(o, head[1], json_integer(total));
            for (int j = 0; j < 5; j++) json_object_set_new(o, head[2 + j], json_integer(counts[order[j]]));
            json_array_append_new(rec, o);
        }
        if (!err) report_emit_records(stdout, rec, head, NC, fmt);
        json_decref(rec);
        if (err) goto fail;
    } else if (nsweeps == 0) {
        printf("%s: no sweeps yet\n", store_path(s));
    } else {
        char **cells = xcalloc((size_t)(nsweeps + 1) * NC, sizeof *cells);
        for (int c = 0; c < NC; c++) cells[c] = xstrdup(head[c]);
        int failures = 0, running = 0, err = 0;
        for (int k = 0; k < nsweeps && !err; k++) {
            int counts[RUN_NSTATUS], total = 0;
            if (store_sweep_counts(s, ids[k], counts)) { err = 1; break; }
            char buf[32];
            for (int j = 0; j < RUN_NSTATUS; j++) total += counts[j];
            cells[(k + 1) * NC] = xstrdup(names[k]);
            snprintf(buf, sizeof buf, "%d", total);
            cells[(k + 1) * NC + 1] = xstrdup(buf);
            for (int j = 0; j < 5; j++) {
                snprintf(buf, sizeof buf, "%d", counts[order[j]]);
                cells[(k + 1) * NC + 2 + j] = xstrdup(buf);
            }
            failures += counts[RUN_FAILED] + counts[RUN_INTERRUPTED];
            running += counts[RUN_RUNNING];
        }
        if (!err) {
            static const int right[NC] = {0, 1, 1, 1, 1, 1, 1};
            report_table_print(stdout, nsweeps + 1, NC, cells, right);
            if (running) {
                printf("\nrunning runs:\n");
                for (int k = 0; k < nsweeps && !err; k++) err = print_running(s, ids[k], names[k]) != 0;
            }
            if (failures && !err) {
                printf("\nfailed and interrupted runs:\n");
                for (int k = 0; k < nsweeps && !err; k++) err = print_failures(s, ids[k], names[k]) != 0;
            }
        }
        for (int k = 0; k < (nsweeps + 1) * NC; k++) free(cells[k]);
        free(cells);
        if (err) goto fail;
    }
    for (int k = 0; k < nsweeps; k++) free(names[k]);
    free(names);
    free(ids);
    return 0;
fail:
    sqlite3_finalize(st);
    for (int k = 0; k < nsweeps; k++) free(names[k]);
    free(names);
    free(ids);
    return -1;
}

int cmd_status(int argc, char **argv) {
    const char *db = STORE_DEFAULT_PATH;
    int watch = 0, csv = 0, json = 0;
    float every = 2.0f;
    ArgSpec specs[] = {
        {"--db", ARG_STRING, &db, 0, 0, "results database (default " STORE_DEFAULT_PATH "; created if missing)"},
        {"--watch", ARG_FLAG, &watch, 0, 0, "the running runs (step k/N, loss, validation metric, ETA) and the sweep line, redrawn until nothing runs"},
        {"--every", ARG_FLOAT, &every, 0.05, 3600, "--watch: seconds between views (default 2)"},
        {"--csv", ARG_FLAG, &csv, 0, 0, "the runs per sweep by status as CSV (RFC 4180, CRLF line ends); per-run detail: report runs --csv"},
        {"--json", ARG_FLAG, &json, 0, 0, "the runs per sweep by status as a JSON array of one object per sweep"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    const char *usage = "status [SWEEP] [--watch | --csv | --json] [--db PATH]   runs per sweep by status; running runs with their\n"
                        "       pid, host, device, CPU threads (sweep --threads) and last step; why runs failed";
    ArgResult args;
    if (args_parse(argc, argv, specs, NSPECS, &args)) { args_result_free(&args); return -1; }
    if (args.help) { args_usage(stdout, usage, specs, NSPECS); args_result_free(&args); return EXIT_OK; }
    if (args.npositional > 1) {
        err_set("status: expected at most one sweep name, got %d arguments", args.npositional);
        args_result_free(&args);
        return -1;
    }
    if (csv + json + watch > 1) {
        err_set("status: --watch, --csv and --json exclude each other");
        args_result_free(&args);
        return -1;
    }
    ReportFormat fmt = csv ? REPORT_CSV : json ? REPORT_JSON : REPORT_TEXT;
    const char *sweep = args.npositional ? args.positional[0] : NULL;
    Store *s;
    int status = EXIT_OK;
    // a database we cannot write (shared read-only, or in a read-only directory) is read as it is
    int read_only = store_read_only_file(db);
    if (store_open(&s, db, read_only ? STORE_READONLY : 0)) { args_result_free(&args); return -1; }
    // Slurm results come in first (on the submitting host, when it may write), then the sweep's Slurm jobs
    int64_t slurm_sweep_id = 0;
    if (sweep && store_find_sweep(s, sweep, &slurm_sweep_id)) status = -1;
    else if ((!read_only && slurm_status_merge(s, slurm_sweep_id)) || (watch ? status_watch(s, sweep, every) : status_report(s, sweep, fmt)) ||
             (!watch && fmt == REPORT_TEXT && slurm_status_report(s, slurm_sweep_id)))
        status = -1;
    store_close(s);
    args_result_free(&args);
    return status;
}

// ----------------------------------------------------------------------------
// query

typedef enum { OUT_TABLE, OUT_CSV, OUT_JSON } OutFormat;

// RFC 4180: a field holding a comma, quote, CR or LF is quoted, inner quotes doubled.
static void csv_field(FILE *out, const char *s) {
    if (!s[strcspn(s, ",\"\r\n")]) { fputs(s, out); return; }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static json_t *json_value(sqlite3_stmt *st, int c) {
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, c));
    case SQLITE_FLOAT: {
        json_t *v = json_real(sqlite3_column_double(st, c));   // NULL for inf: JSON has none
        return v ? v : json_null();
    }
    case SQLITE_TEXT: {
        json_t *v = json_stringn((const char *)sqlite3_column_text(st, c), (size_t)sqlite3_column_bytes(st, c));
        return v ? v : json_null();   // NULL from jansson: the text was not UTF-8
    }
    case SQLITE_BLOB: {   // lowercase hex
        const unsigned char *b = sqlite3_column_blob(st, c);
        int n = sqlite3_column_bytes(st, c);
        char *hex = xmalloc((size_t)n * 2 + 1);
        for (int i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", b[i]);
        hex[2 * n] = 0;
        json_t *v = json_string(hex);
        free(hex);
        return v ? v : json_null();
    }
    default: return json_null();
    }
}

// Columns that hold JSON text (runs.config, sweeps.analyze), by their origin, so that an
// alias keeps them: --json embeds them as JSON values rather than strings.
static int is_json_column(sqlite3_stmt *st, int c) {
    const char *t = sqlite3_column_table_name(st, c), *o = sqlite3_column_origin_name(st, c);
    return t && o && ((!strcmp(t, "runs") && !strcmp(o, "config")) || (!strcmp(t, "sweeps") && !strcmp(o, "analyze")));
}

static json_t *json_cell(sqlite3_stmt *st, int c) {
    json_t *v = json_value(st, c);
    if (json_is_string(v) && is_json_column(st, c)) {
        json_t *parsed = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
        if (parsed) { json_decref(v); return parsed; }   // not JSON after all: stays a string
    }
    return v;
}

// ----------------------------------------------------------------------------
// query: reads only

// The authorizer that `query` runs under: reading tables and columns, SELECT itself, WITH
// RECURSIVE and SQL functions, but none of the two that reach outside the database
// (fts3_tokenizer with two arguments installs a tokenizer from a pointer; load_extension).
// Everything else (PRAGMA, ATTACH, writes, transactions, ANALYZE) is denied.
static int query_authorizer(void *user, int action, const char *a, const char *b, const char *c,
                            const char *d) {
    (void)user; (void)c; (void)d;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE: return SQLITE_OK;
    case SQLITE_FUNCTION:
        return b && (!sqlite3_stricmp(b, "fts3_tokenizer") || !sqlite3_stricmp(b, "load_extension"))
                   ? SQLITE_DENY : SQLITE_OK;
    default: (void)a; return SQLITE_DENY;
    }
}

// Locks the connection down before the user's SQL is prepared: defensive mode (no writes to
// the schema or shadow tables), no FTS3 tokenizer pointers, no extensions, no triggers or
// views from the file itself running functions, and the authorizer above.
static void query_lockdown(sqlite3 *db) {
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    sqlite3_set_authorizer(db, query_authorizer, NULL);
}

// query's time limit: a progress handler that interrupts the statement once the monotonic
// clock passes the deadline (sqlite3_step then returns SQLITE_INTERRUPT).
typedef struct {
    struct timespec deadline;
    int expired;
} QueryClock;

static int query_progress(void *user) {
    QueryClock *qc = user;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > qc->deadline.tv_sec ||
        (now.tv_sec == qc->deadline.tv_sec && now.tv_nsec >= qc->deadline.tv_nsec))
        qc->expired = 1;
    return qc->expired;
}

// Runs one statement and prints its rows in the chosen format. timeout_s > 0 bounds its time
// (preparing included), reported with the limit when it runs past it.
static int run_query(Store *s, const char *sql, OutFormat format, double timeout_s) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    char **cells = NULL;
    int *numeric = NULL;
    size_t ncells = 0, cap = 0;
    json_t *rows = NULL;
    QueryClock clock = {{0, 0}, 0};
    if (timeout_s > 0) {
        clock_gettime(CLOCK_MONOTONIC, &clock.deadline);
        double whole = floor(timeout_s);
        clock.deadline.tv_sec += (time_t)whole;
        clock.deadline.tv_nsec += (long)((timeout_s - whole) * 1e9);
        if (clock.deadline.tv_nsec >= 1000000000L) { clock.deadline.tv_sec++; clock.deadline.tv_nsec -= 1000000000L; }
        // every 1000 virtual-machine instructions: well under a millisecond each
        sqlite3_progress_handler(db, 1000, query_progress, &clock);
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
        if (sqlite3_errcode(db) == SQLITE_AUTH || !strncmp(sqlite3_errmsg(db), "not authorized", 14))
            return err_set("query: only reading statements are allowed (SELECT, WITH, functions): %s",
                           sqlite3_errmsg(db));
        SQL_CHECK(db, SQLITE_ERROR, sql);
    }
    if (!st) return err_set("query: empty SQL statement");
    // VACUUM INTO writes a new file without asking the authorizer
    if (!sqlite3_stmt_readonly(st)) {
        sqlite3_finalize(st);
        return err_set("query: only reading statements are allowed (SELECT, WITH, functions): "
                       "'%.40s' writes", sql);
    }
    while (tail && (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r' || *tail == ';')) tail++;
    if (tail && *tail) {
        sqlite3_finalize(st);
        return err_set("query: one SQL statement expected, found more: '%.40s'", tail);
    }
    int ncols = sqlite3_column_count(st), rc;
    if (format == OUT_JSON) rows = json_array();
    if (format == OUT_CSV) {
        for (int c = 0; c < ncols; c++) {
            if (c) fputc(',', stdout);
            csv_field(stdout, sqlite3_column_name(st, c));
        }
        if (ncols) fputs("\r\n", stdout);
    }
    if (format == OUT_TABLE) {
        cap = (size_t)(ncols ? ncols : 1) * 16;
        cells = xcalloc(cap, sizeof *cells);
        numeric = xcalloc((size_t)ncols + 1, sizeof *numeric);
        for (int c = 0; c < ncols; c++) cells[ncells++] = xstrdup(sqlite3_column_name(st, c));
        for (int c = 0; c < ncols; c++) numeric[c] = 1;
    }
    int nrows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        nrows++;
        if (format == OUT_JSON) {
            json_t *row = json_object();
            for (int c = 0; c < ncols; c++) json_object_set_new(row, sqlite3_column_name(st, c), json_cell(st, c));
            json_array_append_new(rows, row);
        } else if (format == OUT_CSV) {
            for (int c = 0; c < ncols; c++) {
                if (c) fputc(',', stdout);
                const unsigned char *t = sqlite3_column_text(st, c);   // NULL → empty field
                csv_field(stdout, t ? (const char *)t : "");
            }
            fputs("\r\n", stdout);
        } else {
            if (ncells + (size_t)ncols > cap) cells = xrealloc(cells, (cap *= 2) * sizeof *cells);
            for (int c = 0; c < ncols; c++) {
                int type = sqlite3_column_type(st, c);
                if (type != SQLITE_INTEGER && type != SQLITE_FLOAT && type != SQLITE_NULL) numeric[c] = 0;
                const unsigned char *t = sqlite3_column_text(st, c);
                cells[ncells++] = xstrdup(t ? (const char *)t : "");
            }
        }
    }
    if (rc == SQLITE_INTERRUPT && clock.expired) {
        err_set("query: the statement ran past the time limit of %g s and was stopped (--timeout SECONDS raises it)",
                timeout_s);
        goto fail;
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(st);
    st = NULL;
    if (timeout_s > 0) sqlite3_progress_handler(db, 0, NULL, NULL);
    if (format == OUT_JSON) {
        // 15 significant digits: what sqlite3 itself prints, so 0.1 stays 0.1
        json_dumpf(rows, stdout, JSON_COMPACT | JSON_REAL_PRECISION(15));
        fputc('\n', stdout);
        json_decref(rows);
    }
    if (format == OUT_TABLE) {
        if (ncols) report_table_print(stdout, nrows + 1, ncols, cells, numeric);
        for (size_t k = 0; k < ncells; k++) free(cells[k]);
        free(cells);
        free(numeric);
    }
    return 0;
fail:
    sqlite3_finalize(st);
    if (timeout_s > 0) sqlite3_progress_handler(db, 0, NULL, NULL);
    json_decref(rows);
    for (size_t k = 0; k < ncells; k++) free(cells[k]);
    free(cells);
    free(numeric);
    return -1;
}

int query_exec(Store *s, const char *sql, int format, double timeout_s) {
    LAB_ASSERT(format >= OUT_TABLE && format <= OUT_JSON);
    query_lockdown(store_db(s));
    return run_query(s, sql, (OutFormat)format, timeout_s);
}

int cmd_query(int argc, char **argv) {
    const char *db = STORE_DEFAULT_PATH;
    int csv = 0, json = 0;
    float timeout = 30.0f;
    ArgSpec specs[] = {
        {"--csv", ARG_FLAG, &csv, 0, 0, "CSV (RFC 4180: quoted where needed, CRLF line ends)"},
        {"--json", ARG_FLAG, &json, 0, 0, "a JSON array of objects, one per row (runs.config and sweeps.analyze as JSON objects)"},
        {"--db", ARG_STRING, &db, 0, 0, "results database (default " STORE_DEFAULT_PATH ")"},
        {"--timeout", ARG_FLOAT, &timeout, 0.01, 86400, "seconds the statement may run before it is stopped, exit 2 (default 30)"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    const char *usage = "query \"SQL\" [--csv|--json] [--timeout SECONDS] [--db PATH]   one read-only SQL statement; "
                        "the default output is an aligned table";
    ArgResult args;
    if (args_parse(argc, argv, specs, NSPECS, &args)) { args_result_free(&args); return -1; }
    if (args.help) { args_usage(stdout, usage, specs, NSPECS); args_result_free(&args); return EXIT_OK; }
    if (args.npositional != 1) {
        err_set("query: expected one SQL statement in quotes, got %d arguments (see --help)", args.npositional);
        args_result_free(&args);
        return -1;
    }
    if (csv && json) { args_result_free(&args); err_set("query: --csv and --json exclude each other"); return -1; }
    Store *s;
    if (store_open(&s, db, STORE_READONLY | STORE_RAW)) { args_result_free(&args); return -1; }
    int status = query_exec(s, args.positional[0], csv ? OUT_CSV : json ? OUT_JSON : OUT_TABLE, timeout);
    store_close(s);
    args_result_free(&args);
    return status ? -1 : EXIT_OK;
}
