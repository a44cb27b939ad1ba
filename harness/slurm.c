// harness/slurm.c — the Slurm executor: submission, plans, merging, status. See slurm.h.
#include "harness/slurm.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/backend.h"
#include "core/errors.h"
#include "harness/commands.h"
#include "core/files.h"
#include "harness/args.h"
#include "harness/config.h"
#include "harness/runner.h"
#include "harness/shard.h"
#include "tasks/task.h"

#define PLAN_FORMAT "loralab-slurm-plan 1"

int slurm_executor_arg(int argc, char **argv) {
    const char *v = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--executor")) v = i + 1 < argc ? argv[i + 1] : "";
    if (!v || !strcmp(v, "local")) return SLURM_EXECUTOR_LOCAL;
    if (!strcmp(v, "slurm")) return SLURM_EXECUTOR_SLURM;
    err_set("--executor: expected local or slurm, got '%s'", v);
    return -1;
}

// ----------------------------------------------------------------------------
// running Slurm's commands

// Runs argv (found on PATH) with its stdout into *out (malloc'ed, NUL-terminated); its stderr
// passes through unless quiet. The exit status, or 127 when it could not be started.
static int run_capture(char *const argv[], char **out, int quiet) {
    int fds[2];
    *out = NULL;
    if (pipe(fds)) return 127;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return 127; }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        if (quiet) { FILE *n = freopen("/dev/null", "w", stderr); (void)n; }
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0, cap = 4096;
    char *buf = xmalloc(cap);
    ssize_t r;
    while ((r = read(fds[0], buf + len, cap - len - 1)) != 0) {
        if (r < 0) { if (errno == EINTR) continue; break; }
        len += (size_t)r;
        if (cap - len < 2) buf = xrealloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fds[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    *out = buf;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
}

// Slurm's state of one job or array task ("PENDING", "RUNNING", ...) into state; "" when
// squeue no longer knows it (finished long enough ago) or squeue is missing.
typedef struct {
    char id[48];
    char state[24];
} JobState;

// Every element of job `job` that squeue lists (one per array task with -r). *n states.
static int squeue_states(const char *job, JobState **out, int *n) {
    *out = NULL;
    *n = 0;
    char *text;
    char *argv[] = {"squeue", "-h", "-r", "-j", (char *)job, "-o", "%i %T", NULL};
    int rc = run_capture(argv, &text, 1);
    if (rc == 127) { free(text); return -1; }   // no squeue here
    int cap = 0;
    for (char *line = strtok(text ? text : "", "\n"); line && rc == 0; line = strtok(NULL, "\n")) {
        JobState js;
        if (sscanf(line, "%47s %23s", js.id, js.state) != 2) continue;
        if (*n == cap) *out = xrealloc(*out, (size_t)(cap = cap ? cap * 2 : 16) * sizeof **out);
        (*out)[(*n)++] = js;
    }
    free(text);
    return 0;
}

// The state sacct remembers for a finished job, when accounting is on; "" otherwise.
static void sacct_state(const char *job, char *state, size_t cap) {
    state[0] = '\0';
    char *text;
    char *argv[] = {"sacct", "-n", "-P", "-X", "-j", (char *)job, "-o", "State", NULL};
    if (run_capture(argv, &text, 1) == 0 && text && text[0]) {
        text[strcspn(text, "\n")] = '\0';
        snprintf(state, cap, "%s", text);
    }
    free(text);
}

static const char *find_state(const JobState *s, int n, const char *id) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].id, id)) return s[i].state;
    return NULL;
}

// ----------------------------------------------------------------------------
// plans

typedef struct {
    json_t *root;
    char dir[PATH_MAX * 2], path[PATH_MAX * 2 + 16];
    const char *sweep, *db, *results, *loralab, *file;
    json_t *runs;
    int nruns;
} Plan;

static const char *json_str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void plan_free(Plan *p) { json_decref(p->root); p->root = NULL; }

static int plan_load(const char *path, Plan *p) {
    memset(p, 0, sizeof *p);
    char abs[PATH_MAX];
    if (!realpath(path, abs)) return err_set("plan %s: %s", path, strerror(errno));
    json_error_t je;
    p->root = json_load_file(abs, 0, &je);
    if (!p->root) return err_set("plan %s:%d:%d: %s", path, je.line, je.column, je.text);
    const char *fmt = json_str(p->root, "format");
    p->sweep = json_str(p->root, "sweep");
    p->db = json_str(p->root, "db");
    p->results = json_str(p->root, "results");
    p->loralab = json_str(p->root, "loralab");
    p->file = json_str(p->root, "file");
    p->runs = json_object_get(p->root, "runs");
    if (!fmt || strcmp(fmt, PLAN_FORMAT) || !p->sweep || !p->db || !p->results || !json_is_array(p->runs)) {
        plan_free(p);
        return err_set("plan %s: not a loralab plan (expected \"format\": \"" PLAN_FORMAT "\", sweep, db, results, runs)", path);
    }
    p->nruns = (int)json_array_size(p->runs);
    for (int i = 0; i < p->nruns; i++) {
        json_t *r = json_array_get(p->runs, (size_t)i);
        const char *h = json_str(r, "hash");
        if (!h || strlen(h) != 64 || !json_str(r, "config") || !json_is_integer(json_object_get(r, "run_id"))) {
            plan_free(p);
            return err_set("plan %s: runs[%d]: expected hash (64 hex digits), run_id and config", path, i);
        }
    }
    snprintf(p->path, sizeof p->path, "%s", abs);
    snprintf(p->dir, sizeof p->dir, "%s", abs);
    char *slash = strrchr(p->dir, '/');
    if (slash) *slash = '\0';
    return 0;
}

static const char *plan_hash(const Plan *p, int i) { return json_str(json_array_get(p->runs, (size_t)i), "hash"); }
static const char *plan_config(const Plan *p, int i) { return json_str(json_array_get(p->runs, (size_t)i), "config"); }

// Writes text to path through a temporary name and a rename.
static int write_file_atomic(const char *path, const char *text, mode_t mode) {
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return err_set("%s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || chmod(tmp, mode) || rename(tmp, path)) {
        unlink(tmp);
        return err_set("%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

// ----------------------------------------------------------------------------
// merging

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The finished shards of a plan directory (names ending in .db), sorted.
static int list_shards(const char *plan_dir, char ***names, int *n) {
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/shards", plan_dir);
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : err_set("%s: %s", dir, strerror(errno));
    struct dirent *e;
    int cap = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 4 || strcmp(e->d_name + len - 3, ".db")) continue;
        if (*n == cap) *names = xrealloc(*names, (size_t)(cap = cap ? cap * 2 : 16) * sizeof **names);
        (*names)[(*n)++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (*n) qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return 0;
}

static int shard_known(Store *st, int64_t plan_id, const char *name, int *known) {
    sqlite3 *db = store_db(st);
    sqlite3_stmt *s = NULL;
    const char *sql = "SELECT count(*) FROM slurm_shards WHERE plan_id = ? AND name = ?";
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    sqlite3_bind_int64(s, 1, plan_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    SQL_CHECK(db, sqlite3_step(s), sql);
    *known = sqlite3_column_int(s, 0) > 0;
    sqlite3_finalize(s);
    return 0;
fail:
    sqlite3_finalize(s);
    return -1;
}

typedef struct {
    int merged, done, failed, interrupted, already, bad;
} MergeCounts;

// A shard that cannot be read: moved aside (kept for a look) and its run, unless done,
// marked interrupted with the reason, so the next submission runs it again.
static void quarantine(Store *st, const char *path, const char *name, const char *why) {
    char aside[PATH_MAX * 2 + 16], hash[65] = "";
    snprintf(aside, sizeof aside, "%s.corrupt", path);
    fprintf(stderr, "loralab: %s; moved to %s, and its run will run again on the next `loralab sweep --executor slurm`\n", why, aside);
    if (rename(path, aside)) fprintf(stderr, "loralab: %s: cannot rename: %s\n", path, strerror(errno));
    if (strlen(name) > 64 && name[64] == '.') memcpy(hash, name, 64), hash[64] = '\0';
    sqlite3 *db = store_db(st);
    sqlite3_stmt *s = NULL;
    const char *sql = "SELECT id FROM runs WHERE hash = ?";
    if (!hash[0] || sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) { sqlite3_finalize(s); return; }
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW) {
        char msg[1024];
        snprintf(msg, sizeof msg, "result shard unreadable (%s)", why);
        store_fail_run(st, sqlite3_column_int64(s, 0), RUN_INTERRUPTED, msg);
    }
    sqlite3_finalize(s);
}

static int merge_plan_dir(Store *st, int64_t plan_id, const char *plan_dir, MergeCounts *mc) {
    char **names;
    int n;
    if (list_shards(plan_dir, &names, &n)) return -1;
    int status = 0;
    for (int i = 0; i < n && !status; i++) {
        int known;
        if (shard_known(st, plan_id, names[i], &known)) { status = -1; break; }
        if (known) { mc->already++; continue; }
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/shards/%s", plan_dir, names[i]);
        if (shard_check(path)) {
            quarantine(st, path, names[i], err_msg());
            mc->bad++;
            continue;
        }
        RunStatus rs;
        int applied;
        if (shard_merge(st, plan_id, names[i], path, &rs, &applied)) { status = -1; break; }
        mc->merged++;
        if (rs == RUN_DONE) mc->done++;
        else if (rs == RUN_FAILED) mc->failed++;
        else mc->interrupted++;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return status;
}

// Merges every plan of sweep_id (0: all) recorded in the database.
static int merge_recorded(Store *st, int64_t sweep_id, MergeCounts *mc) {
    sqlite3 *db = store_db(st);
    sqlite3_stmt *s = NULL;
    const char *sql = "SELECT id, dir FROM slurm_plans WHERE ? = 0 OR sweep_id = ? ORDER BY id";
    int n = 0, cap = 0, status = 0;
    int64_t *ids = NULL;
    char **dirs = NULL;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    sqlite3_bind_int64(s, 1, sweep_id);
    sqlite3_bind_int64(s, 2, sweep_id);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ids = xrealloc(ids, (size_t)cap * sizeof *ids);
            dirs = xrealloc(dirs, (size_t)cap * sizeof *dirs);
        }
        ids[n] = sqlite3_column_int64(s, 0);
        dirs[n++] = xstrdup((const char *)sqlite3_column_text(s, 1));
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(s);
    s = NULL;
    for (int i = 0; i < n && !status; i++) status = merge_plan_dir(st, ids[i], dirs[i], mc);
    goto out;
fail:
    status = -1;
out:
    sqlite3_finalize(s);
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
    free(ids);
    return status;
}

static void print_merge(const char *what, const MergeCounts *mc) {
    fprintf(stderr, "merge %s: %d shard(s) merged (%d done, %d failed, %d interrupted), %d merged before%s\n", what,
            mc->merged, mc->done, mc->failed, mc->interrupted, mc->already, mc->bad ? ", some unreadable (above)" : "");
}

// Does the database hold the Slurm tables? (Databases that never used Slurm do not.)
static int has_slurm_tables(Store *st) {
    sqlite3_stmt *s = NULL;
    int yes = 0;
    if (sqlite3_prepare_v2(store_db(st), "SELECT 1 FROM sqlite_master WHERE name = 'slurm_plans'", -1, &s, NULL) == SQLITE_OK)
        yes = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return yes;
}

// The plan's id in the database, registering it (and its tasks) when merged by hand.
// Checks that the plan belongs to this database: its sweep and every run are there.
static int plan_register(Store *st, const Plan *p, int64_t *plan_id) {
    int64_t sweep_id;
    if (store_find_sweep(st, p->sweep, &sweep_id))
        return err_set("plan %s does not match database %s: it has no sweep '%s'", p->path, store_path(st), p->sweep);
    sqlite3 *db = store_db(st);
    sqlite3_stmt *s = NULL;
    int64_t *run_ids = xcalloc((size_t)p->nruns + 1, sizeof *run_ids);
    const char *sql = "SELECT id FROM runs WHERE hash = ?";
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    for (int i = 0; i < p->nruns; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, plan_hash(p, i), -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        SQL_CHECK(db, rc, sql);
        if (rc != SQLITE_ROW) {
            err_set("plan %s does not match database %s: its run %d (%.12s) is not in it", p->path, store_path(st), i, plan_hash(p, i));
            goto fail;
        }
        run_ids[i] = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    s = NULL;
    sql = "SELECT id FROM slurm_plans WHERE dir = ?";
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    sqlite3_bind_text(s, 1, p->dir, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    SQL_CHECK(db, rc, sql);
    if (rc == SQLITE_ROW) {
        *plan_id = sqlite3_column_int64(s, 0);
    } else {
        sqlite3_finalize(s);
        s = NULL;
        sql = "INSERT INTO slurm_plans (sweep_id, dir) VALUES (?, ?)";
        SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
        sqlite3_bind_int64(s, 1, sweep_id);
        sqlite3_bind_text(s, 2, p->dir, -1, SQLITE_STATIC);
        SQL_CHECK(db, sqlite3_step(s), sql);
        *plan_id = sqlite3_last_insert_rowid(db);
        sqlite3_finalize(s);
        s = NULL;
        sql = "INSERT INTO slurm_tasks (plan_id, idx, run_id) VALUES (?, ?, ?)";
        SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
        for (int i = 0; i < p->nruns; i++) {
            sqlite3_reset(s);
            sqlite3_bind_int64(s, 1, *plan_id);
            sqlite3_bind_int(s, 2, i);
            sqlite3_bind_int64(s, 3, run_ids[i]);
            SQL_CHECK(db, sqlite3_step(s), sql);
        }
    }
    sqlite3_finalize(s);
    free(run_ids);
    return 0;
fail:
    sqlite3_finalize(s);
    free(run_ids);
    return -1;
}

int cmd_merge(int argc, char **argv) {
    const char *db = NULL, *plan_path = NULL;
    ArgSpec specs[] = {
        {"--plan", ARG_STRING, &plan_path, 0, 0, "merge this plan's shards (default: every plan recorded in the database)"},
        {"--db", ARG_STRING, &db, 0, 0, "results database (default: the plan's, else " STORE_DEFAULT_PATH ")"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(argc, argv, specs, ns, &ar)) { args_result_free(&ar); return -1; }
    if (ar.help) {
        args_usage(stdout, "merge [--plan PLAN] [--db PATH]   fold finished Slurm result shards into the database "
                           "(idempotent)", specs, ns);
        args_result_free(&ar);
        return 0;
    }
    if (ar.npositional) { err_set("merge: unexpected argument '%s'", ar.positional[0]); args_result_free(&ar); return -1; }
    args_result_free(&ar);
    Plan p = {0};
    if (plan_path && plan_load(plan_path, &p)) return -1;
    if (!db) db = p.root ? p.db : STORE_DEFAULT_PATH;
    Store *st;
    if (store_open(&st, db, 0)) { plan_free(&p); return -1; }
    MergeCounts mc = {0};
    int status = -1;
    if (shard_tables(st)) goto out;
    if (p.root) {
        int64_t plan_id = 0;
        if (plan_register(st, &p, &plan_id) || merge_plan_dir(st, plan_id, p.dir, &mc)) goto out;
        print_merge(p.path, &mc);
    } else {
        if (merge_recorded(st, 0, &mc)) goto out;
        print_merge(store_path(st), &mc);
    }
    status = 0;
out:
    store_close(st);
    plan_free(&p);
    if (status) return -1;
    return mc.bad ? EXIT_INPUT : EXIT_OK;   // each bad shard's message is printed
}

// ----------------------------------------------------------------------------
// status

int slurm_status_merge(Store *st, int64_t sweep_id) {
    if (!has_slurm_tables(st)) return 0;
    MergeCounts mc = {0};
    if (merge_recorded(st, sweep_id, &mc)) return -1;
    if (mc.merged) print_merge("of finished Slurm tasks", &mc);
    return 0;
}

// Per plan of the sweep: its jobs with their states, and each run not done: queued in
// Slurm (its array task is pending or running) or lost (gone from Slurm without a result).
int slurm_status_report(Store *st, int64_t sweep_id) {
    if (!has_slurm_tables(st)) return 0;
    sqlite3 *db = store_db(st);
    sqlite3_stmt *s = NULL, *t = NULL;
    const char *sql = "SELECT p.id, p.dir, p.pretrain_job, p.array_job, p.merge_job, w.name FROM slurm_plans p "
                      "JOIN sweeps w ON w.id = p.sweep_id WHERE ? = 0 OR p.sweep_id = ? ORDER BY p.id";
    // per task: the run's status now, and this plan's latest shard of it (where, how it ended)
    const char *tsql = "SELECT k.idx, r.id, r.status, r.error, "
                       "(SELECT coalesce(h.array_task, h.job_id) || ' on ' || h.node || "
                       "   CASE WHEN h.gpus != '' THEN ' (gpus ' || h.gpus || ')' ELSE '' END || "
                       "   CASE WHEN h.status != 'done' THEN ': ' || h.status || ', ' || coalesce(h.error, '') ELSE '' END "
                       "   FROM slurm_shards h WHERE h.plan_id = k.plan_id AND h.run_id = r.id ORDER BY h.merged DESC LIMIT 1), "
                       "(SELECT max(k2.plan_id) FROM slurm_tasks k2 WHERE k2.run_id = r.id) > k.plan_id "
                       "FROM slurm_tasks k JOIN runs r ON r.id = k.run_id WHERE k.plan_id = ? ORDER BY k.idx";
    int queued = 0, lost = 0, rc;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    SQL_CHECK(db, sqlite3_prepare_v2(db, tsql, -1, &t, NULL), tsql);
    sqlite3_bind_int64(s, 1, sweep_id);
    sqlite3_bind_int64(s, 2, sweep_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *dir = (const char *)sqlite3_column_text(s, 1);
        const char *jobs[3], *kinds[3] = {"pretrain", "array", "merge"};
        printf("\nslurm plan %s/plan.json (sweep %s):\n  jobs:", dir, (const char *)sqlite3_column_text(s, 5));
        JobState *arr = NULL;
        int narr = 0, have_squeue = 1;
        for (int j = 0; j < 3; j++) {
            jobs[j] = (const char *)sqlite3_column_text(s, 2 + j);
            if (!jobs[j]) continue;
            JobState *js;
            int n;
            char state[64] = "";
            if (squeue_states(jobs[j], &js, &n)) have_squeue = 0;
            if (j == 1) {   // the array: one state per task
                int pending = 0, running = 0;
                for (int i = 0; i < n; i++) pending += !strcmp(js[i].state, "PENDING"), running += !strcmp(js[i].state, "RUNNING");
                if (n) snprintf(state, sizeof state, "%d pending, %d running", pending, running);
                arr = js, narr = n;
            } else {
                if (n) snprintf(state, sizeof state, "%s", js[0].state);
                free(js);
            }
            if (!state[0]) sacct_state(jobs[j], state, sizeof state);
            printf(" %s %s (%s)", kinds[j], jobs[j], state[0] ? state : have_squeue ? "no longer in squeue" : "squeue not found");
        }
        printf("%s\n", jobs[0] || jobs[1] || jobs[2] ? "" : " none recorded (plan merged by hand)");
        sqlite3_reset(t);
        sqlite3_bind_int64(t, 1, sqlite3_column_int64(s, 0));
        int rt;
        while ((rt = sqlite3_step(t)) == SQLITE_ROW) {
            int idx = sqlite3_column_int(t, 0);
            const char *rs = (const char *)sqlite3_column_text(t, 2), *err = (const char *)sqlite3_column_text(t, 3),
                       *where = (const char *)sqlite3_column_text(t, 4);
            char task[64] = "";
            if (jobs[1]) snprintf(task, sizeof task, "%s_%d", jobs[1], idx);
            const char *state = task[0] ? find_state(arr, narr, task) : NULL;
            printf("  task %-4d run %-5lld %-11s ", idx, (long long)sqlite3_column_int64(t, 1), rs);
            if (where) printf("%s", where);
            else if (state) { printf("queued in Slurm: %s %s", task, state); queued++; }
            else if (sqlite3_column_int(t, 5)) printf("submitted again by a later plan");
            else if (!strcmp(rs, "done")) printf("done elsewhere");
            else if (err) printf("%s", err);
            else if (have_squeue && task[0]) { printf("lost: %s left Slurm without a result", task); lost++; }
            else printf("no Slurm state (squeue not found)");
            printf("\n");
        }
        SQL_CHECK(db, rt, tsql);
        free(arr);
    }
    SQL_CHECK(db, rc, sql);
    if (queued || lost)
        printf("slurm: %d run(s) queued in Slurm, %d lost%s\n", queued, lost,
               lost ? " (`loralab sweep FILE --executor slurm` submits the lost ones again)" : "");
    sqlite3_finalize(s);
    sqlite3_finalize(t);
    return 0;
fail:
    sqlite3_finalize(s);
    sqlite3_finalize(t);
    return -1;
}

// ----------------------------------------------------------------------------
// submission

typedef struct {
    const char *partition, *account, *time, *mem;
    int cpus, gpus, parallel;
    const char **extra;   // --sbatch-arg values, one #SBATCH line each
    int nextra;
} SbatchOptions;

// Single quotes for the shell.
static void sh_quote(char *dst, size_t cap, const char *s) {
    size_t n = 0;
    if (n + 1 < cap) dst[n++] = '\'';
    for (; *s && n + 5 < cap; s++) {
        if (*s == '\'') { memcpy(dst + n, "'\\''", 4); n += 4; }
        else dst[n++] = *s;
    }
    if (n + 1 < cap) dst[n++] = '\'';
    dst[n] = '\0';
}

// One sbatch script. kind: "pretrain", "array" (ntasks > 0) or "merge".
static char *sbatch_script(const char *kind, const char *sweep, const Plan *p, const SbatchOptions *o, int ntasks,
                           const char *loralab, const char *cwd) {
    size_t cap = 8192;
    char *s = xmalloc(cap), q_bin[PATH_MAX * 2], q_plan[PATH_MAX * 2];
    int n = 0;
#define ADD(...) (n += snprintf(s + n, cap - (size_t)n, __VA_ARGS__), n = n < (int)cap ? n : (int)cap - 1)
    ADD("#!/bin/bash\n# loralab %s job of sweep %s, written by `loralab sweep --executor slurm`.\n", kind, sweep);
    ADD("# Plan: %s (the runs, frozen at submission). Edit and submit by hand if you like.\n", p->path);
    ADD("#SBATCH --job-name=loralab-%s-%s\n", kind, sweep);
    ADD("#SBATCH --output=%s/logs/%s-%s.out\n", p->dir, kind, ntasks ? "%A_%a" : "%j");
    ADD("#SBATCH --ntasks=1\n");
    if (ntasks) {
        ADD("#SBATCH --array=0-%d", ntasks - 1);
        if (o->parallel > 0) ADD("%%%d", o->parallel);
        ADD("\n");
    }
    if (o->partition) ADD("#SBATCH --partition=%s\n", o->partition);
    if (o->account) ADD("#SBATCH --account=%s\n", o->account);
    if (o->time) ADD("#SBATCH --time=%s\n", o->time);
    int merge = !strcmp(kind, "merge");
    if (!merge) {
        if (o->cpus > 0) ADD("#SBATCH --cpus-per-task=%d\n", o->cpus);
        if (o->gpus > 0) ADD("#SBATCH --gpus-per-task=%d\n", o->gpus);
        if (o->mem) ADD("#SBATCH --mem=%s\n", o->mem);
    }
    for (int i = 0; i < o->nextra; i++) ADD("#SBATCH %s\n", o->extra[i]);
    ADD("#SBATCH --chdir=%s\n", cwd);
    sh_quote(q_bin, sizeof q_bin, loralab);
    sh_quote(q_plan, sizeof q_plan, p->path);
    // exec: the worker itself receives Slurm's SIGTERM at a time limit and records it
    if (ntasks) ADD("exec %s worker --plan %s --index \"$SLURM_ARRAY_TASK_ID\"\n", q_bin, q_plan);
    else if (merge) ADD("exec %s merge --plan %s\n", q_bin, q_plan);
    else ADD("exec %s worker --plan %s --pretrain\n", q_bin, q_plan);
#undef ADD
    return s;
}

// sbatch --parsable [--dependency=DEP] SCRIPT: the job id, or -1 (sbatch's message on stderr).
static int submit(const char *script, const char *dep, char *job, size_t cap) {
    char depbuf[128], *out;
    char *argv[6] = {"sbatch", "--parsable", NULL, NULL, NULL, NULL};
    int k = 2;
    if (dep) { snprintf(depbuf, sizeof depbuf, "--dependency=%s", dep); argv[k++] = depbuf; }
    argv[k++] = (char *)script;
    int rc = run_capture(argv, &out, 0);
    if (rc == 127) { free(out); return err_set("sbatch: not found; --executor slurm runs on a Slurm submit host (sbatch, squeue on PATH)"); }
    if (rc) { free(out); return err_set("sbatch refused %s (exit %d; its message is above): nothing was submitted", script, rc); }
    out[strcspn(out, ";\n")] = '\0';   // "123" or "123;cluster"
    snprintf(job, cap, "%s", out);
    free(out);
    if (!job[0]) return err_set("sbatch printed no job id for %s", script);
    return 0;
}

static void cancel_jobs(char jobs[][32], int n) {
    for (int i = 0; i < n; i++) {
        if (!jobs[i][0]) continue;
        char *out, *argv[] = {"scancel", jobs[i], NULL};
        run_capture(argv, &out, 0);
        free(out);
    }
}

static void remove_plan_dir(const char *dir) {
    const char *files[] = {"plan.json", "pretrain.sbatch", "array.sbatch", "merge.sbatch", "logs", "shards", ""};
    char p[PATH_MAX * 3];
    for (int i = 0; files[i][0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        if (unlink(p)) rmdir(p);
    }
    rmdir(dir);
}

// Run ids of sweep_id's runs whose array task is still pending or running in Slurm.
static int queued_runs(Store *st, int64_t sweep_id, int64_t **ids, int *n) {
    sqlite3 *db = store_db(st);
    sqlite3_stmt *s = NULL, *t = NULL;
    const char *sql = "SELECT id, array_job FROM slurm_plans WHERE sweep_id = ? AND array_job IS NOT NULL";
    const char *tsql = "SELECT run_id FROM slurm_tasks WHERE plan_id = ? AND idx = ?";
    int cap = 0, rc;
    *ids = NULL;
    *n = 0;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    SQL_CHECK(db, sqlite3_prepare_v2(db, tsql, -1, &t, NULL), tsql);
    sqlite3_bind_int64(s, 1, sweep_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *job = (const char *)sqlite3_column_text(s, 1);
        JobState *js;
        int nj;
        if (squeue_states(job, &js, &nj)) {
            fprintf(stderr, "loralab: squeue not found: cannot tell which runs are still queued; submitting every run not done\n");
            break;
        }
        for (int i = 0; i < nj; i++) {
            const char *us = strchr(js[i].id, '_');
            if (!us || strchr(us, '[')) continue;
            sqlite3_reset(t);
            sqlite3_bind_int64(t, 1, sqlite3_column_int64(s, 0));
            sqlite3_bind_int(t, 2, atoi(us + 1));
            if (sqlite3_step(t) == SQLITE_ROW) {
                if (*n == cap) *ids = xrealloc(*ids, (size_t)(cap = cap ? cap * 2 : 16) * sizeof **ids);
                (*ids)[(*n)++] = sqlite3_column_int64(t, 0);
            }
        }
        free(js);
    }
    sqlite3_finalize(s);
    sqlite3_finalize(t);
    return 0;
fail:
    sqlite3_finalize(s);
    sqlite3_finalize(t);
    return -1;
}

static int record_plan(Store *st, int64_t sweep_id, const Plan *p, const int64_t *run_ids, char jobs[3][32]) {
    sqlite3 *db = store_db(st);
    sqlite3_stmt *s = NULL;
    const char *sql = "INSERT INTO slurm_plans (sweep_id, dir, pretrain_job, array_job, merge_job) VALUES (?, ?, ?, ?, ?)";
    SQL_CHECK(db, sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), "BEGIN IMMEDIATE");
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    sqlite3_bind_int64(s, 1, sweep_id);
    sqlite3_bind_text(s, 2, p->dir, -1, SQLITE_STATIC);
    for (int j = 0; j < 3; j++)
        if (jobs[j][0]) sqlite3_bind_text(s, 3 + j, jobs[j], -1, SQLITE_STATIC);
    SQL_CHECK(db, sqlite3_step(s), sql);
    int64_t plan_id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(s);
    s = NULL;
    sql = "INSERT INTO slurm_tasks (plan_id, idx, run_id) VALUES (?, ?, ?)";
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
    for (int i = 0; i < p->nruns; i++) {
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, plan_id);
        sqlite3_bind_int(s, 2, i);
        sqlite3_bind_int64(s, 3, run_ids[i]);
        SQL_CHECK(db, sqlite3_step(s), sql);
    }
    sqlite3_finalize(s);
    SQL_CHECK(db, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), "COMMIT");
    return 0;
fail:
    sqlite3_finalize(s);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

// An absolute directory for path's parent (created if missing).
static int abs_parent(const char *path, char *out, size_t cap) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else snprintf(dir, sizeof dir, ".");
    if (files_make_dirs(dir)) return -1;
    char real[PATH_MAX];
    if (!realpath(dir, real)) return err_set("%s: %s", dir, strerror(errno));
    snprintf(out, cap, "%s", real);
    return 0;
}

int slurm_sweep(int argc, char **argv) {
    // --sbatch-arg may repeat: take those out before the flag table sees the rest
    const char **extra = xcalloc((size_t)argc + 1, sizeof *extra);
    char **av = xcalloc((size_t)argc + 1, sizeof *av);
    int nextra = 0, ac = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--sbatch-arg")) {
            if (i + 1 >= argc) return err_set("--sbatch-arg: missing value");
            extra[nextra++] = argv[++i];
        } else av[ac++] = argv[i];
    }
    const char *db = STORE_DEFAULT_PATH, *results = NULL, *executor = "slurm", *unused = NULL;
    SbatchOptions so = {0};
    so.extra = extra;
    so.nextra = nextra;
    int dry = 0, retry = 0;
    ArgSpec specs[] = {
        {"--executor", ARG_STRING, &executor, 0, 0, "slurm: one job array task per run (local: see loralab sweep --help)"},
        {"--db", ARG_STRING, &db, 0, 0, "results database (default " STORE_DEFAULT_PATH "); plans go to its folder's slurm/"},
        {"--results", ARG_STRING, &results, 0, 0, "results folder for bases/ and runs/ (default: the database's folder)"},
        {"--partition", ARG_STRING, &so.partition, 0, 0, "sbatch --partition"},
        {"--account", ARG_STRING, &so.account, 0, 0, "sbatch --account"},
        {"--time", ARG_STRING, &so.time, 0, 0, "sbatch --time per task, e.g. 2:00:00 (at the limit the run is interrupted)"},
        {"--cpus-per-task", ARG_INT, &so.cpus, 1, 4096, "sbatch --cpus-per-task; a run uses that many threads"},
        {"--gpus-per-task", ARG_INT, &so.gpus, 1, 64, "sbatch --gpus-per-task, for `device: cuda` runs"},
        {"--mem", ARG_STRING, &so.mem, 0, 0, "sbatch --mem, e.g. 8G"},
        {"--array-parallelism", ARG_INT, &so.parallel, 1, 1000000, "at most K array tasks at a time (--array=0-N%K)"},
        {"--sbatch-arg", ARG_STRING, &unused, 0, 0, "one more #SBATCH line, e.g. --sbatch-arg --qos=long (repeatable)"},
        {"--dry-run", ARG_FLAG, &dry, 0, 0, "write the plan and print the sbatch scripts; submit nothing"},
        {"--retry-failed", ARG_FLAG, &retry, 0, 0, "submit failed runs again"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(ac, av, specs, ns, &ar)) return -1;
    if (ar.help) {
        args_usage(stdout, "sweep FILE.yaml --executor slurm [options] [key=value ...]", specs, ns);
        args_result_free(&ar);
        free(av);
        free(extra);
        return 0;
    }
    if (ar.npositional < 1) return err_set("sweep: give a sweep file (see --help)");
    const char *file = ar.positional[0];
    Sweep sw;
    if (sweep_load(file, ar.npositional - 1, ar.positional + 1, &sw)) return -1;
    char *yaml = NULL;
    if (task_read_file(file, 0, &yaml, NULL)) return -1;
    char dbdir[PATH_MAX], dbabs[PATH_MAX * 2], resabs[PATH_MAX], cwd[PATH_MAX], self[PATH_MAX], fileabs[PATH_MAX];
    if (abs_parent(db, dbdir, sizeof dbdir)) return -1;
    const char *base = strrchr(db, '/');
    snprintf(dbabs, sizeof dbabs, "%s/%s", dbdir, base ? base + 1 : db);
    if (results) {
        if (files_make_dirs(results) || !realpath(results, resabs)) return err_set("--results %s: cannot use it", results);
    } else snprintf(resabs, sizeof resabs, "%s", dbdir);
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0 || !getcwd(cwd, sizeof cwd) || !realpath(file, fileabs)) return err_set("cannot resolve this program's path or the working directory");
    self[sl] = '\0';

    Store *st;
    if (store_open(&st, dbabs, 0)) return -1;
    int64_t sweep_id, *ids = NULL, *queued = NULL;
    int n = 0, nq = 0, status = -1;
    json_t *plan = NULL;
    char **scripts = NULL;
    char plandir[PATH_MAX * 2] = "";
    if (shard_tables(st) || store_add_sweep(st, sw.name, fileabs, yaml, sw.analyze_json, &sweep_id) ||
        sweep_register(st, sweep_id, &sw))
        goto out;
    if (!dry) {   // results already back come in first, so they are not submitted again
        MergeCounts mc = {0};
        if (merge_recorded(st, sweep_id, &mc)) goto out;
        if (mc.merged || mc.bad) print_merge("of finished Slurm tasks", &mc);
    }
    if (store_runs_todo(st, sweep_id, retry, &ids, &n) || queued_runs(st, sweep_id, &queued, &nq)) goto out;
    int k = 0;
    for (int i = 0; i < n; i++) {
        int q = 0;
        for (int j = 0; j < nq; j++) q |= queued[j] == ids[i];
        if (!q) ids[k++] = ids[i];
    }
    int counts[RUN_NSTATUS];
    store_sweep_counts(st, sweep_id, counts);
    fprintf(stderr, "sweep %s: %d runs (%d done, %d failed%s), %d queued in Slurm, %d to submit\n", sw.name, sw.nruns,
            counts[RUN_DONE], counts[RUN_FAILED], retry ? ", retried" : "", nq, k);
    n = k;
    if (n == 0) { status = EXIT_OK; goto out; }

    // the plan: the runs to do with their ids and canonical configs, frozen now
    char safe[64];
    snprintf(safe, sizeof safe, "%s", sw.name);
    for (char *c = safe; *c; c++)
        if (!(('a' <= *c && *c <= 'z') || ('A' <= *c && *c <= 'Z') || ('0' <= *c && *c <= '9') || strchr("._-", *c))) *c = '_';
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    for (int tries = 1;; tries++) {
        snprintf(plandir, sizeof plandir, "%s/slurm/%s-%s%s%.0d", dbdir, safe, stamp, tries > 1 ? "-" : "", tries > 1 ? tries : 0);
        struct stat sb;
        if (stat(plandir, &sb)) break;
    }
    char sub[PATH_MAX * 2 + 16];
    snprintf(sub, sizeof sub, "%s/logs", plandir);
    if (files_make_dirs(sub)) goto out_clean;
    snprintf(sub, sizeof sub, "%s/shards", plandir);
    if (files_make_dirs(sub)) goto out_clean;
    plan = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[]}", "format", PLAN_FORMAT, "sweep", sw.name, "file", fileabs,
                     "db", dbabs, "results", resabs, "loralab", self, "runs");
    json_t *runs = json_object_get(plan, "runs");
    int need_pretrain = 0;
    for (int i = 0; i < n; i++) {
        char *hash = NULL, *cfg = NULL;
        RunConfig rc;
        if (store_run_config(st, ids[i], &hash, &cfg) || config_from_json(cfg, &rc)) { free(hash); free(cfg); goto out_clean; }
        need_pretrain |= !runner_base_cached(&rc, resabs);
        json_array_append_new(runs, json_pack("{s:i, s:I, s:s, s:s}", "index", i, "run_id", (json_int_t)ids[i], "hash", hash,
                                              "config", cfg));
        free(hash);
        free(cfg);
    }
    Plan p = {0};
    p.root = plan;
    p.nruns = n;
    snprintf(p.dir, sizeof p.dir, "%s", plandir);
    snprintf(p.path, sizeof p.path, "%s/plan.json", plandir);
    char *text = json_dumps(plan, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    int bad = write_file_atomic(p.path, text, 0644);
    free(text);
    if (bad) goto out_clean;
    const char *kinds[3] = {"pretrain", "array", "merge"};
    char paths[3][PATH_MAX * 2 + 32];
    scripts = xcalloc(3, sizeof *scripts);
    for (int j = 0; j < 3; j++) {
        if (j == 0 && !need_pretrain) continue;
        scripts[j] = sbatch_script(kinds[j], safe, &p, &so, j == 1 ? n : 0, self, cwd);
        snprintf(paths[j], sizeof paths[j], "%s/%s.sbatch", plandir, kinds[j]);
        if (write_file_atomic(paths[j], scripts[j], 0755)) goto out_clean;
    }
    if (dry) {
        for (int j = 0; j < 3; j++)
            if (scripts[j]) printf("# ---- %s ----\n%s\n", paths[j], scripts[j]);
        printf("# submit with:\n");
        if (scripts[0]) printf("#   pre=$(sbatch --parsable %s)\n", paths[0]);
        printf("#   arr=$(sbatch --parsable %s%s)\n", scripts[0] ? "--dependency=afterok:$pre " : "", paths[1]);
        printf("#   sbatch --dependency=afterany:$arr %s\n", paths[2]);
        fprintf(stderr, "sweep %s: dry run, nothing submitted; plan and scripts in %s\n", sw.name, plandir);
        status = EXIT_OK;
        goto out;
    }
    char jobs[3][32] = {"", "", ""}, dep[64];
    if (scripts[0] && submit(paths[0], NULL, jobs[0], sizeof jobs[0])) goto out_cancel;
    if (jobs[0][0]) snprintf(dep, sizeof dep, "afterok:%s", jobs[0]);
    if (submit(paths[1], jobs[0][0] ? dep : NULL, jobs[1], sizeof jobs[1])) goto out_cancel;
    snprintf(dep, sizeof dep, "afterany:%s", jobs[1]);
    if (submit(paths[2], dep, jobs[2], sizeof jobs[2])) goto out_cancel;
    if (record_plan(st, sweep_id, &p, ids, jobs)) goto out_cancel;
    fprintf(stderr, "sweep %s: submitted %s%s%sarray job %s (%d tasks), merge job %s; plan %s (loralab status %s)\n", sw.name,
            jobs[0][0] ? "pretraining job " : "", jobs[0], jobs[0][0] ? ", " : "", jobs[1], n, jobs[2], p.path, sw.name);
    status = EXIT_OK;
    goto out;
out_cancel:
    cancel_jobs(jobs, 3);
out_clean:
    if (plandir[0]) remove_plan_dir(plandir);
out:
    if (scripts) for (int j = 0; j < 3; j++) free(scripts[j]);
    free(scripts);
    json_decref(plan);
    free(ids);
    free(queued);
    free(yaml);
    store_close(st);
    sweep_free(&sw);
    args_result_free(&ar);
    free(av);
    free(extra);
    return status;
}

// ----------------------------------------------------------------------------
// the worker: one array task

static int env_int(const char *name) {
    const char *v = getenv(name);
    return v ? atoi(v) : 0;
}

static int worker_pretrain(const Plan *p, int threads) {
    for (int i = 0; i < p->nruns; i++) {
        RunConfig rc;
        if (config_from_json(plan_config(p, i), &rc)) return -1;
        if (runner_base_cached(&rc, p->results)) continue;
        const Backend *be = runner_backend(rc.device);
        if (!be) return -1;
        backend_open("cpu", &(BackendOptions){.threads = threads > 0 ? threads : -1});
        RunnerOptions ro = {p->results, NULL, -1, NULL};
        char dir[PATH_MAX];
        if (runner_resolve_base(be, &rc, &ro, dir, sizeof dir)) return -1;
        printf("base of run %d ready: %s\n", i, dir);
    }
    return 0;
}

int cmd_worker(int argc, char **argv) {
    const char *plan_path = NULL;
    int index = -1, pre = 0, threads = 0;
    ArgSpec specs[] = {
        {"--plan", ARG_STRING, &plan_path, 0, 0, "the plan.json written by `loralab sweep --executor slurm`"},
        {"--index", ARG_INT, &index, 0, 100000000, "the run to do: its index in the plan ($SLURM_ARRAY_TASK_ID)"},
        {"--pretrain", ARG_FLAG, &pre, 0, 0, "pretrain (and cache) the bases the plan's runs need, then stop"},
        {"--threads", ARG_INT, &threads, 1, 1024, "CPU threads (default: $SLURM_CPUS_PER_TASK, else every core)"},
    };
    int ns = sizeof specs / sizeof specs[0];
    ArgResult ar;
    if (args_parse(argc, argv, specs, ns, &ar)) { args_result_free(&ar); return -1; }
    if (ar.help) {
        args_usage(stdout, "worker --plan PLAN (--index N | --pretrain)   one Slurm array task: train one run into its own "
                           "result shard", specs, ns);
        args_result_free(&ar);
        return 0;
    }
    args_result_free(&ar);
    if (!plan_path || (index < 0) == !pre) return err_set("worker: give --plan PLAN and one of --index N, --pretrain");
    Plan p;
    if (plan_load(plan_path, &p)) return -1;
    if (!threads) threads = env_int("SLURM_CPUS_PER_TASK");
    if (!threads) { long c = sysconf(_SC_NPROCESSORS_ONLN); threads = c > 0 ? (int)c : 1; }
    if (pre) {
        int rc = worker_pretrain(&p, threads);
        plan_free(&p);
        return rc ? err_raise(ERR_RUN, "worker: pretraining failed: %s", err_msg()) : EXIT_OK;
    }
    if (index >= p.nruns) { err_set("worker: --index %d: plan %s has %d runs (0 .. %d)", index, p.path, p.nruns, p.nruns - 1); plan_free(&p); return -1; }
    ShardPlace place;
    shard_place(&place);
    char job[48], tmp[PATH_MAX * 3], final[PATH_MAX * 3];
    if (place.job_id[0]) snprintf(job, sizeof job, "%s", place.job_id);
    else snprintf(job, sizeof job, "local%d", (int)getpid());
    const char *hash = plan_hash(&p, index);
    snprintf(tmp, sizeof tmp, "%s/shards/.%s.%s.tmp", p.dir, hash, job);
    snprintf(final, sizeof final, "%s/shards/%s.%s.db", p.dir, hash, job);
    int64_t run_id;
    SchedStats stats;
    if (files_make_parent_dirs(tmp) || shard_create(tmp, hash, plan_config(&p, index), index, &place, &run_id)) goto fail;
    printf("run %.12s (plan index %d) on %s%s%s, job %s, %d threads\n", hash, index, place.node, place.gpus[0] ? ", gpus " : "",
           place.gpus, job, threads);
    fflush(stdout);
    int stopped = sweep_run_one(tmp, p.results, threads, run_id, &stats);
    if (stopped < 0) goto fail;
    // from here to the rename the shard must be written whole: hold off Slurm's SIGTERM
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    Store *st;
    if (store_open(&st, tmp, 0)) goto fail;
    RunStatus rs = RUN_FAILED;
    char *err = NULL;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(store_db(st), "SELECT status, error FROM runs WHERE id = ?", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, run_id);
        if (sqlite3_step(q) == SQLITE_ROW) {
            rs = store_status_parse((const char *)sqlite3_column_text(q, 0));
            if (sqlite3_column_text(q, 1)) err = xstrdup((const char *)sqlite3_column_text(q, 1));
        }
    }
    sqlite3_finalize(q);
    // Slurm's SIGTERM (time limit, preemption, scancel) reaches the training process too;
    // either way it is an interruption to run again, not a failure of the run
    int by_term = stopped == 1 || (rs == RUN_FAILED && err && strstr(err, "signal 15"));
    if (rs != RUN_DONE && by_term) {
        char why[512];
        snprintf(why, sizeof why, "interrupted by SIGTERM from Slurm (time limit, preemption or scancel) in job %s on %s; "
                 "`loralab sweep FILE --executor slurm` runs it again", job, place.node);
        store_fail_run(st, run_id, RUN_INTERRUPTED, why);
        rs = RUN_INTERRUPTED;
    }
    free(err);
    store_close(st);
    if (shard_finish(tmp, final)) goto fail;
    printf("run %.12s: %s; result shard %s\n", hash, store_status_name(rs), final);
    plan_free(&p);
    return rs == RUN_DONE ? EXIT_OK : EXIT_RUN_FAILED;
fail:
    err_raise(ERR_RUN, "worker: plan %s index %d: %s", p.path, index, err_msg());
    plan_free(&p);
    return -1;
}
