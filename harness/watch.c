// harness/watch.c — `loralab status --watch`: the progress view of harness/progress.h, read
// from the results database by another process while a sweep runs. The database holds each
// run's training loss every 10 steps and its validation metrics, not its tokens/s, so the
// pace (and the ETAs) come from the time since the run started and the steps it logged.
#include "harness/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "harness/config.h"
#include "harness/progress.h"

// The running runs of sweep (NULL: all) as ProgressRuns, and the sweep's counts.
static int load_view(Store *st, const char *sweep, ProgressRun **out, int *n, ProgressSweep *sw) {
    sqlite3 *db = store_db(st);
    const char *scope = sweep ? " AND r.id IN (SELECT sr.run_id FROM sweep_runs sr JOIN sweeps s ON s.id = sr.sweep_id "
                                "WHERE s.name = ?1)" : "";
    char sql[1024];
    sqlite3_stmt *q = NULL, *m = NULL;
    *out = NULL;
    *n = 0;
    memset(sw, 0, sizeof *sw);
    snprintf(sql, sizeof sql, "SELECT r.status, count(*) FROM runs r WHERE 1%s GROUP BY r.status", scope);
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
    if (sweep) SQL_CHECK(db, sqlite3_bind_text(q, 1, sweep, -1, SQLITE_STATIC), sql);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(q, 0);
        int c = sqlite3_column_int(q, 1);
        sw->total += c;
        if (!s) continue;
        if (!strcmp(s, "done")) sw->done = c;
        else if (!strcmp(s, "failed")) sw->failed = c;
        else if (!strcmp(s, "interrupted")) sw->interrupted = c;
        else if (!strcmp(s, "running")) sw->running = c;
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(q);
    q = NULL;
    snprintf(sql, sizeof sql,
             "SELECT r.id, r.config, coalesce(r.metric, 'loss'), (julianday('now') - julianday(r.started)) * 86400 "
             "FROM runs r WHERE r.status = 'running'%s ORDER BY r.id", scope);
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
    if (sweep) SQL_CHECK(db, sqlite3_bind_text(q, 1, sweep, -1, SQLITE_STATIC), sql);
    const char *msql = "SELECT step, value, name FROM metrics WHERE run_id = ?1 AND split = ?2 AND name = ?3 "
                       "AND value IS NOT NULL ORDER BY step DESC LIMIT 1";
    SQL_CHECK(db, sqlite3_prepare_v2(db, msql, -1, &m, NULL), msql);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        ProgressRun *p = &(*out)[(*n)++];
        progress_start(p, sqlite3_column_int64(q, 0));
        RunConfig c;
        const char *cfg = (const char *)sqlite3_column_text(q, 1);
        if (cfg && !config_from_json(cfg, &c)) p->total = c.steps;
        double since = sqlite3_column_double(q, 3);
        for (int split = 0; split < 2; split++) {
            sqlite3_reset(m);
            SQL_CHECK(db, sqlite3_bind_int64(m, 1, p->run_id), msql);
            SQL_CHECK(db, sqlite3_bind_text(m, 2, split ? "validation" : "train", -1, SQLITE_STATIC), msql);
            SQL_CHECK(db, sqlite3_bind_text(m, 3, split ? (const char *)sqlite3_column_text(q, 2) : "loss", -1,
                                            SQLITE_TRANSIENT), msql);
            int mr = sqlite3_step(m);
            SQL_CHECK(db, mr, msql);
            if (mr != SQLITE_ROW) continue;
            if (!split) {
                p->phase = 'T';
                p->step = sqlite3_column_int(m, 0);
                p->loss = (float)sqlite3_column_double(m, 1);
                if (since > 0) p->sec_per_step = since / (p->step + 1);
            } else {
                snprintf(p->val_name, sizeof p->val_name, "%s", (const char *)sqlite3_column_text(m, 2));
                p->val_value = sqlite3_column_double(m, 1);
            }
        }
        if (since > sw->elapsed) sw->elapsed = since;
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(q);
    sqlite3_finalize(m);
    return 0;
fail:
    sqlite3_finalize(q);
    sqlite3_finalize(m);
    free(*out);
    *out = NULL;
    return -1;
}

int status_watch(Store *st, const char *sweep, double interval) {
    int live = isatty(STDOUT_FILENO), drawn = 0;
    for (;;) {
        ProgressRun *runs;
        int n;
        ProgressSweep sw;
        if (load_view(st, sweep, &runs, &n, &sw)) return -1;
        const ProgressRun **ptrs = xcalloc((size_t)n + 1, sizeof *ptrs);
        for (int i = 0; i < n; i++) ptrs[i] = &runs[i];
        progress_render(stdout, live, ptrs, n, &sw, &drawn);
        free(ptrs);
        free(runs);
        int settled = sw.done + sw.failed + sw.interrupted;
        if (sw.running == 0 && settled >= sw.total) return 0;
        struct timespec ts = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
        nanosleep(&ts, NULL);
    }
}
