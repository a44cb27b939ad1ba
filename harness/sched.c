// harness/sched.c — worker processes for runs. See sched.h for the contract.
#include "harness/sched.h"

#include <errno.h>
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
#include "harness/progress.h"
#include "harness/store.h"

static volatile sig_atomic_t stop_requested = 0;
static void on_stop_signal(int sig) { (void)sig; stop_requested = 1; }

typedef struct {
    pid_t pid;          // 0: free slot
    int64_t run_id;
    int progress_fd;    // read end of the worker's progress pipe
    double started;
    char line[128];     // partial progress line
    int line_len;
    ProgressRun prog;   // what the worker last reported (harness/progress.h)
} Slot;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
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

// Reads whatever progress the worker wrote: lines of harness/progress.h.
static void drain_progress(Slot *s) {
    char buf[512];
    ssize_t n = read(s->progress_fd, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            s->line[s->line_len] = '\0';
            progress_parse(&s->prog, s->line, now_s());
            s->line_len = 0;
        } else if (s->line_len < (int)sizeof s->line - 1) {
            s->line[s->line_len++] = buf[i];
        }
    }
}

// Records the outcome of a finished worker; the worker records success and its own errors,
// the parent only what the worker could not (a crash, a kill, a timeout).
static void settle(Store *st, Slot *s, int wstatus, int timed_out, int stopping, SchedStats *stats) {
    RunStatus rs = RUN_RUNNING;
    if (store_run_status(st, s->run_id, &rs)) rs = RUN_RUNNING;
    if (rs == RUN_RUNNING || rs == RUN_PENDING) {
        char why[256];
        RunStatus to = RUN_FAILED;
        if (timed_out)
            snprintf(why, sizeof why, "timed out after %.0f s", now_s() - s->started);
        else if (stopping && WIFSIGNALED(wstatus)) {
            snprintf(why, sizeof why, "interrupted: the sweep was stopped");
            to = RUN_INTERRUPTED;
        } else if (WIFSIGNALED(wstatus))
            snprintf(why, sizeof why, "crashed: signal %d (%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
        else
            snprintf(why, sizeof why, "worker exited with status %d without recording a result",
                     WEXITSTATUS(wstatus));
        if (store_fail_run(st, s->run_id, to, why))
            fprintf(stderr, "loralab: could not record run %lld: %s\n", (long long)s->run_id, err_msg());
        rs = to;
    }
    if (rs == RUN_DONE) stats->done++;
    else if (rs == RUN_INTERRUPTED) stats->interrupted++;
    else stats->failed++;
    close(s->progress_fd);
    s->pid = 0;
}

// The live view (a terminal) or a plain summary (a log): harness/progress.h.
static void render_progress(const SchedOptions *opt, const Slot *slots, int n_total, const SchedStats *st,
                            double t0, int *drawn) {
    const ProgressRun **runs = xcalloc((size_t)opt->jobs + 1, sizeof *runs);
    int n = 0;
    for (int i = 0; i < opt->jobs; i++)
        if (slots[i].pid) runs[n++] = &slots[i].prog;
    ProgressSweep sw = {n_total, st->done, st->failed, st->interrupted, n, now_s() - t0};
    progress_render(stderr, opt->live, runs, n, &sw, drawn);
    free(runs);
}

// A plain line when a run settles (not a terminal).
static void print_progress(const SchedOptions *opt, const Slot *slots, int n_total, const SchedStats *st,
                           double t0) {
    int running = 0;
    for (int i = 0; i < opt->jobs; i++) running += slots[i].pid != 0;
    int settled = st->done + st->failed + st->interrupted;
    double el = now_s() - t0;
    char eta[32] = "?";
    if (settled > 0 && settled < n_total) snprintf(eta, sizeof eta, "%.0fs", el / settled * (n_total - settled));
    else if (settled >= n_total) snprintf(eta, sizeof eta, "0s");
    fprintf(stderr, "sweep: %d/%d settled (done %d, failed %d), %d running, elapsed %.0fs, eta %s\n",
            settled, n_total, st->done, st->failed, running, el, eta);
}

int sched_run(const SchedOptions *opt, const int64_t *ids, int n, SchedWorker worker, void *ctx,
              SchedStats *stats) {
    memset(stats, 0, sizeof *stats);
    Store *st;
    if (store_open(&st, opt->db_path, 0)) return -1;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    stop_requested = 0;

    Slot *slots = xcalloc((size_t)opt->jobs, sizeof *slots);
    struct pollfd *pfd = xcalloc((size_t)opt->jobs, sizeof *pfd);
    int next = 0, stopping = 0;
    double t0 = now_s(), last_print = now_s();
    int drawn = 0;   // lines of the live view on screen
    const char *every = getenv("LORALAB_PROGRESS_EVERY");   // seconds between plain views
    double plain_every = every && atof(every) > 0 ? atof(every) : 30.0;
    for (;;) {
        if (stop_requested && !stopping) {
            stopping = 1;
            for (int i = 0; i < opt->jobs; i++)
                if (slots[i].pid) kill(slots[i].pid, SIGTERM);
        }
        // launch
        for (int i = 0; i < opt->jobs && !stopping && next < n; i++) {
            if (slots[i].pid) continue;
            if (spawn_worker(&slots[i], i, ids[next], worker, ctx) < 0) {
                store_fail_run(st, ids[next], RUN_FAILED, "could not start a worker process (fork failed)");
                stats->failed++;
            }
            next++;
        }
        int running = 0;
        for (int i = 0; i < opt->jobs; i++) running += slots[i].pid != 0;
        if (!running && (stopping || next >= n)) break;
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
            int ws;
            pid_t r = waitpid(s->pid, &ws, timed_out ? 0 : WNOHANG);
            if (r == s->pid) {
                drain_progress(s);
                settle(st, s, ws, timed_out, stopping, stats);
                if (!opt->live) print_progress(opt, slots, n, stats, t0);
            }
        }
        if (now_s() - last_print > (opt->live ? 0.25 : plain_every)) {
            render_progress(opt, slots, n, stats, t0, &drawn);
            last_print = now_s();
        }
    }
    if (opt->live) render_progress(opt, slots, n, stats, t0, &drawn);
    free(slots);
    free(pfd);
    store_close(st);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return stopping ? 1 : 0;
}
