// harness/sched.c — worker processes for runs. See sched.h for the contract.
#include "harness/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "harness/commands.h"
#include "harness/progress.h"
#include "harness/store.h"

static volatile sig_atomic_t stop_requested = 0;
static void on_stop_signal(int sig) { (void)sig; stop_requested = 1; }

typedef struct {
    pid_t pid;          // 0: free slot
    int64_t run_id;
    int progress_fd;    // read end of the worker's progress pipe
    double started;
    char line[1100];    // partial progress line
    int line_len;
    ProgressRun prog;   // what the worker last reported (harness/progress.h)
    char error[1024];   // the worker's own failure message (sched_worker_error), or ""
} Slot;

// An outcome the database could not take yet: tried again when the sweep ends.
typedef struct {
    int64_t run_id;
    RunClaim expect;
    RunStatus to;
    char why[1024];
} Unrecorded;

typedef struct {
    const SchedOptions *opt;
    Store *st;
    SchedStats *stats;
    char host[256];
    int64_t *queue;     // runs to start, queue[head..tail)
    int head, tail, cap;
    int64_t *watch;     // runs held by another sweep's live worker on this host
    int nwatch;
    Unrecorded *unrec;
    int nunrec;
    int db_broken;      // an outcome could not be recorded: no new run starts
    double past_pace, past_steps;   // sums over the runs that ended after training steps
    int npast;
} Sched;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sched_worker_error(int progress_fd, const char *message) {
    if (progress_fd < 0) return;
    char line[1024];
    int n = snprintf(line, sizeof line, "error %s", message);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    for (int i = 6; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';   // one line
    line[n++] = '\n';
    if (write(progress_fd, line, (size_t)n) < 0) { /* the parent may be gone; nothing to do */ }
}

static void queue_push(Sched *sc, int64_t id) {
    if (sc->tail == sc->cap) sc->queue = xrealloc(sc->queue, (size_t)(sc->cap *= 2) * sizeof *sc->queue);
    sc->queue[sc->tail++] = id;
}

static pid_t spawn_worker(Slot *s, int slot_index, int64_t run_id, SchedWorker worker, void *ctx) {
    int fds[2];
    if (pipe(fds)) return -1;
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return -1; }
    if (pid == 0) {
        // The worker dies with the sweep: no orphan keeps writing into the database.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(EXIT_RUN_FAILED);
        signal(SIGINT, SIG_IGN);   // Ctrl-C goes to the parent, which stops us with SIGTERM
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
        close(fds[0]);
        int status = worker(run_id, slot_index, fds[1], ctx);
        fflush(stdout);
        fflush(stderr);
        _exit(status);
    }
    close(fds[1]);
    memset(s, 0, sizeof *s);
    s->pid = pid;
    s->run_id = run_id;
    s->progress_fd = fds[0];
    s->started = now_s();
    progress_start(&s->prog, run_id);
    return pid;
}

// Reads whatever the worker wrote: lines of harness/progress.h, or "error message". Returns
// read()'s count.
static ssize_t drain_progress(Slot *s) {
    char buf[512];
    ssize_t n = read(s->progress_fd, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            s->line[s->line_len] = '\0';
            if (!strncmp(s->line, "error ", 6)) snprintf(s->error, sizeof s->error, "%s", s->line + 6);
            else progress_parse(&s->prog, s->line, now_s());
            s->line_len = 0;
        } else if (s->line_len < (int)sizeof s->line - 1) {
            s->line[s->line_len++] = buf[i];
        }
    }
    return n;
}

// Moves the run to `to` if its row still holds `expect`. 1 recorded, 0 the row changed
// meanwhile (someone else's now), -1 the database could not take it (printed, kept for a
// last try when the sweep ends, and no new run starts).
static int record(Sched *sc, int64_t run_id, const RunClaim *expect, RunStatus to, const char *why) {
    int changed = 0;
    if (store_fail_claim(sc->st, run_id, expect, to, why, &changed) == 0) {
        if (changed) { if (to == RUN_FAILED) sc->stats->failed++; else sc->stats->interrupted++; }
        return changed;
    }
    fprintf(stderr, "sweep: run %lld %s: %s\nsweep: the database could not record this (%s); it still shows "
            "the run as %s\n", (long long)run_id, to == RUN_FAILED ? "failed" : "was interrupted", why, err_msg(),
            store_status_name(expect->status));
    if (!sc->db_broken) fprintf(stderr, "sweep: no new runs start while the database cannot be written\n");
    sc->db_broken = 1;
    sc->stats->unrecorded++;
    sc->unrec = xrealloc(sc->unrec, (size_t)(sc->nunrec + 1) * sizeof *sc->unrec);
    Unrecorded *u = &sc->unrec[sc->nunrec++];
    u->run_id = run_id;
    u->expect = *expect;
    u->to = to;
    snprintf(u->why, sizeof u->why, "%s", why);
    return -1;
}

static void watch_remove(Sched *sc, int k) { sc->watch[k] = sc->watch[--sc->nwatch]; }

// What to do with a run that no worker of this sweep holds, from its row c: 1 start it here,
// 0 wait for its owner, -1 settled (counted). at_start: the run was just taken from the queue
// (a failed run is then run again under --retry-failed); otherwise another worker just had it.
static int classify(Sched *sc, int64_t run_id, const RunClaim *c, int at_start) {
    switch (c->status) {
    case RUN_PENDING:
    case RUN_INTERRUPTED: return 1;
    case RUN_DONE: sc->stats->done_elsewhere++; return -1;
    case RUN_FAILED:
        if (at_start && sc->opt->retry_failed) return 1;
        sc->stats->failed_elsewhere++;
        return -1;
    case RUN_RUNNING: break;
    default: LAB_ASSERT(0);
    }
    int alive = store_claim_alive(c);
    if (alive == 1) return 0;
    if (alive < 0) {
        // another host: its sweep's heartbeat says whether the claim still lives
        double lease = store_heartbeat_lease();
        if (c->heartbeat_age < 0) {   // claimed by a loralab without heartbeats
            fprintf(stderr, "sweep: run %lld is held by pid %d on %s, which sends no heartbeat; left to that worker\n",
                    (long long)run_id, c->pid, c->host);
            sc->stats->left_elsewhere++;
            return -1;
        }
        if (c->heartbeat_age <= lease) return 0;
        char why[512];
        snprintf(why, sizeof why, "interrupted: worker pid %d on %s sent no heartbeat for %.0f s (lease %g s)",
                 c->pid, c->host, c->heartbeat_age, lease);
        int changed = 0;
        if (store_interrupt_lost_claim(sc->st, run_id, c, lease, why, &changed)) {
            fprintf(stderr, "sweep: run %lld: %s\n", (long long)run_id, err_msg());
            return 0;   // looked at again on the next poll
        }
        if (changed)
            fprintf(stderr, "sweep: run %lld: worker pid %d on %s sent no heartbeat for %.0f s (lease %g s); "
                    "it runs here\n", (long long)run_id, c->pid, c->host, c->heartbeat_age, lease);
        return 1;   // as below: the row is claimable now, or someone else's (the claim then says so)
    }
    // its worker on this host is gone: the run is interrupted, and this sweep runs it
    char why[512];
    snprintf(why, sizeof why, "interrupted: worker pid %d on %s vanished while running", c->pid, c->host);
    int changed = 0;
    if (store_fail_claim(sc->st, run_id, c, RUN_INTERRUPTED, why, &changed)) {
        fprintf(stderr, "sweep: run %lld: %s\n", (long long)run_id, err_msg());
        return 0;   // looked at again on the next poll
    }
    return 1;   // changed or not, the row is claimable by the rules above (or someone else's now:
                // the worker's claim then fails and says so)
}

// Records the outcome of a finished worker (not reaped yet, so its pid is still its own);
// the worker records success and its own errors, the parent only what the worker could not.
static void settle(Sched *sc, Slot *s, const siginfo_t *si, int timed_out, int stopping) {
    int exited = si->si_code == CLD_EXITED, code = si->si_status;
    RunClaim c;
    for (int tries = 0; tries < 3; tries++) {
        if (store_run_claim(sc->st, s->run_id, &c)) {
            fprintf(stderr, "sweep: run %lld: outcome unknown, the database cannot be read: %s\n",
                    (long long)s->run_id, err_msg());
            sc->stats->unrecorded++;
            sc->db_broken = 1;
            return;
        }
        int ours = c.pid == (int)s->pid && !strcmp(c.host, sc->host);
        if (exited && code == SCHED_EXIT_TAKEN && !ours) {   // the worker left it alone
            int act = classify(sc, s->run_id, &c, 0);
            if (act == 1) queue_push(sc, s->run_id);
            else if (act == 0) sc->watch[sc->nwatch++] = s->run_id;
            return;
        }
        if (ours && c.status == RUN_DONE) { sc->stats->done++; return; }
        if (ours && c.status == RUN_FAILED) { sc->stats->failed++; return; }
        if (ours && c.status == RUN_INTERRUPTED) { sc->stats->interrupted++; return; }
        if (!ours && (c.status == RUN_DONE || c.status == RUN_FAILED || c.status == RUN_RUNNING)) {
            // another attempt has it (our worker never claimed it, or lost it)
            int act = classify(sc, s->run_id, &c, 0);
            if (act == 1) queue_push(sc, s->run_id);
            else if (act == 0) sc->watch[sc->nwatch++] = s->run_id;
            return;
        }
        // our worker left the run running, or failed before claiming it (pending, interrupted)
        char why[1100];
        RunStatus to = RUN_FAILED;
        if (timed_out)
            snprintf(why, sizeof why, "timed out after %.0f s", now_s() - s->started);
        else if (stopping && !exited) {
            snprintf(why, sizeof why, "interrupted: the sweep was stopped");
            to = RUN_INTERRUPTED;
        } else if (!exited)
            snprintf(why, sizeof why, "crashed: signal %d (%s)", code, strsignal(code));
        else if (s->error[0])
            snprintf(why, sizeof why, "%s", s->error);
        else
            snprintf(why, sizeof why, "worker exited with status %d without recording a result", code);
        if (record(sc, s->run_id, &c, to, why)) return;   // recorded, or cannot be
    }
    fprintf(stderr, "sweep: run %lld keeps changing under this sweep; not counted\n", (long long)s->run_id);
}

// Looks at the runs other workers hold (once a second): settled ones are counted, abandoned
// ones run here.
static void poll_watched(Sched *sc) {
    for (int k = sc->nwatch - 1; k >= 0; k--) {
        RunClaim c;
        if (store_run_claim(sc->st, sc->watch[k], &c)) {
            fprintf(stderr, "sweep: run %lld: %s\n", (long long)sc->watch[k], err_msg());
            if (sc->db_broken) { sc->stats->left_elsewhere++; watch_remove(sc, k); }
            continue;
        }
        int act = classify(sc, sc->watch[k], &c, 0);
        if (act == 0) continue;
        if (act == 1) queue_push(sc, sc->watch[k]);
        watch_remove(sc, k);
    }
}

// The live view (a terminal) or a plain summary (a log): harness/progress.h. Runs another
// sweep's worker settled count as done or failed here.
static void render_progress(const SchedOptions *opt, const Slot *slots, int n_total, const Sched *sc,
                            double t0, int *drawn) {
    const SchedStats *st = sc->stats;
    const ProgressRun **runs = xcalloc((size_t)opt->jobs + 1, sizeof *runs);
    int n = 0;
    for (int i = 0; i < opt->jobs; i++)
        if (slots[i].pid) runs[n++] = &slots[i].prog;
    ProgressSweep sw = {n_total, st->done + st->done_elsewhere, st->failed + st->failed_elsewhere + st->unrecorded,
                        st->interrupted + st->left_elsewhere, n, now_s() - t0,
                        sc->npast ? sc->past_pace / sc->npast : 0, sc->npast ? sc->past_steps / sc->npast : 0};
    progress_render(stderr, opt->live, runs, n, &sw, drawn);
    free(runs);
}

// A plain line when a run settles (not a terminal).
static void print_progress(const SchedOptions *opt, const Slot *slots, int n_total, const Sched *sc, double t0) {
    const SchedStats *st = sc->stats;
    int running = 0;
    for (int i = 0; i < opt->jobs; i++) running += slots[i].pid != 0;
    int settled = st->done + st->failed + st->interrupted + st->done_elsewhere + st->failed_elsewhere +
                  st->left_elsewhere + st->unrecorded;
    double el = now_s() - t0;
    char eta[32] = "?", waiting[48] = "";
    if (settled > 0 && settled < n_total) snprintf(eta, sizeof eta, "%.0fs", el / settled * (n_total - settled));
    else if (settled >= n_total) snprintf(eta, sizeof eta, "0s");
    if (sc->nwatch) snprintf(waiting, sizeof waiting, ", %d held by another sweep", sc->nwatch);
    fprintf(stderr, "sweep: %d/%d settled (done %d, failed %d), %d running%s, elapsed %.0fs, eta %s\n",
            settled, n_total, st->done + st->done_elsewhere, st->failed + st->failed_elsewhere, running, waiting, el, eta);
}

int sched_run(const SchedOptions *opt, const int64_t *ids, int n, SchedWorker worker, void *ctx,
              SchedStats *stats) {
    memset(stats, 0, sizeof *stats);
    Sched sc;
    memset(&sc, 0, sizeof sc);
    sc.opt = opt;
    sc.stats = stats;
    if (store_open(&sc.st, opt->db_path, 0)) return -1;
    if (gethostname(sc.host, sizeof sc.host) != 0) snprintf(sc.host, sizeof sc.host, "localhost");
    sc.host[sizeof sc.host - 1] = 0;
    sc.cap = n + 16;
    sc.queue = xmalloc((size_t)sc.cap * sizeof *sc.queue);
    for (int i = 0; i < n; i++) sc.queue[sc.tail++] = ids[i];
    sc.watch = xmalloc((size_t)(n + 1) * sizeof *sc.watch);   // each run at most once
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    stop_requested = 0;

    Slot *slots = xcalloc((size_t)opt->jobs, sizeof *slots);
    struct pollfd *pfd = xcalloc((size_t)opt->jobs, sizeof *pfd);
    int stopping = 0;
    double t0 = now_s(), last_print = now_s(), last_watch = 0, last_beat = now_s();
    double beat_every = store_heartbeat_period();
    int drawn = 0;   // lines of the live view on screen
    const char *every = getenv("LORALAB_PROGRESS_EVERY");   // seconds between views
    double view_every = every && atof(every) > 0 ? atof(every) : opt->live ? 0.25 : 30.0;
    for (;;) {
        if (stop_requested && !stopping) {
            stopping = 1;
            for (int i = 0; i < opt->jobs; i++)
                if (slots[i].pid) kill(slots[i].pid, SIGTERM);
        }
        // launch: each free slot takes the next run that is free to run here
        for (int i = 0; i < opt->jobs && !stopping && !sc.db_broken; i++) {
            while (!slots[i].pid && sc.head < sc.tail && !sc.db_broken) {
                int64_t id = sc.queue[sc.head++];
                RunClaim c;
                if (store_run_claim(sc.st, id, &c)) {
                    fprintf(stderr, "sweep: run %lld: %s\n", (long long)id, err_msg());
                    sc.stats->unrecorded++;
                    sc.db_broken = 1;
                    break;
                }
                int act = classify(&sc, id, &c, 1);
                if (act == 0) {
                    if (!opt->live && !strcmp(c.host, sc.host))
                        fprintf(stderr, "sweep: run %lld is running in another sweep (pid %d); waiting for it\n",
                                (long long)id, c.pid);
                    else if (!opt->live)
                        fprintf(stderr, "sweep: run %lld is running in another sweep (pid %d on %s, heartbeat %.0f s "
                                "ago); waiting for it\n", (long long)id, c.pid, c.host, c.heartbeat_age);
                    sc.watch[sc.nwatch++] = id;
                }
                if (act != 1) continue;
                if (spawn_worker(&slots[i], i, id, worker, ctx) < 0)
                    record(&sc, id, &c, RUN_FAILED, "could not start a worker process (fork failed)");
            }
        }
        int running = 0;
        for (int i = 0; i < opt->jobs; i++) running += slots[i].pid != 0;
        if (!running && (stopping || ((sc.head >= sc.tail || sc.db_broken) && sc.nwatch == 0))) break;
        // wait for progress or a worker's end
        int np = 0;
        for (int i = 0; i < opt->jobs; i++)
            if (slots[i].pid) { pfd[np].fd = slots[i].progress_fd; pfd[np].events = POLLIN; np++; }
        poll(pfd, (nfds_t)np, 200);
        for (int i = 0, k = 0; i < opt->jobs; i++) {
            if (!slots[i].pid) continue;
            if (pfd[k++].revents & POLLIN) drain_progress(&slots[i]);
        }
        for (int i = 0; i < opt->jobs; i++) {
            Slot *s = &slots[i];
            if (!s->pid) continue;
            int timed_out = opt->timeout_s > 0 && now_s() - s->started > opt->timeout_s;
            if (timed_out) kill(s->pid, SIGKILL);
            // WNOWAIT: the pid stays the worker's (a zombie) until its outcome is settled, so the
            // compare-and-set on its claim cannot meet a reused pid
            siginfo_t si;
            memset(&si, 0, sizeof si);
            if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOWAIT | (timed_out ? 0 : WNOHANG)) == 0 &&
                si.si_pid == s->pid) {
                // what it wrote last (an error line) is in the pipe: read to its end
                fcntl(s->progress_fd, F_SETFL, O_NONBLOCK);
                while (drain_progress(s) > 0) {}
                if (s->prog.phase == 'T' && s->prog.sec_per_step > 0) {
                    sc.past_pace += s->prog.sec_per_step;
                    sc.past_steps += s->prog.step + 1;
                    sc.npast++;
                }
                settle(&sc, s, &si, timed_out, stopping);
                waitpid(s->pid, NULL, 0);
                close(s->progress_fd);
                s->pid = 0;
                if (!opt->live) print_progress(opt, slots, n, &sc, t0);
            }
        }
        // the heartbeat of this sweep's running runs: sweeps on other hosts see they still live
        if (now_s() - last_beat >= beat_every) {
            for (int i = 0; i < opt->jobs; i++)
                if (slots[i].pid && store_heartbeat(sc.st, slots[i].run_id, (int)slots[i].pid))
                    fprintf(stderr, "sweep: run %lld: heartbeat not recorded: %s\n", (long long)slots[i].run_id,
                            err_msg());
            last_beat = now_s();
        }
        if (sc.nwatch && now_s() - last_watch > 1.0) {
            poll_watched(&sc);
            last_watch = now_s();
        }
        if (now_s() - last_print > view_every) {
            render_progress(opt, slots, n, &sc, t0, &drawn);
            last_print = now_s();
        }
    }
    if (stopping || sc.db_broken) { stats->left_elsewhere += sc.nwatch; sc.nwatch = 0; }
    if (sc.db_broken) stats->not_started = sc.tail - sc.head;
    // a last try for outcomes the database refused (a lock may be gone by now)
    for (int k = 0; k < sc.nunrec; k++) {
        Unrecorded *u = &sc.unrec[k];
        int changed = 0;
        if (store_fail_claim(sc.st, u->run_id, &u->expect, u->to, u->why, &changed) == 0 && changed) {
            fprintf(stderr, "sweep: run %lld: recorded now as %s\n", (long long)u->run_id, store_status_name(u->to));
            stats->unrecorded--;
            if (u->to == RUN_FAILED) stats->failed++; else stats->interrupted++;
        }
    }
    if (opt->live) render_progress(opt, slots, n, &sc, t0, &drawn);
    free(slots);
    free(pfd);
    free(sc.queue);
    free(sc.watch);
    free(sc.unrec);
    store_close(sc.st);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return stopping ? 1 : 0;
}
