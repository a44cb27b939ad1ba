// harness/progress.c — the live view of a sweep. See progress.h.
#include "harness/progress.h"

#include <stdlib.h>
#include <string.h>

void progress_start(ProgressRun *p, int64_t run_id) {
    memset(p, 0, sizeof *p);
    p->run_id = run_id;
    p->step = -1;
}

// A new measurement of the phase's pace: seconds per step since its first line.
static void note_step(ProgressRun *p, char phase, int step, double now) {
    if (p->phase != phase) {
        p->phase = phase;
        p->phase_t0 = now;
        p->phase_step0 = step;
        p->sec_per_step = 0;
    } else if (step > p->phase_step0) {
        p->sec_per_step = (now - p->phase_t0) / (step - p->phase_step0);
    }
    p->step = step;
}

void progress_parse(ProgressRun *p, const char *line, double now) {
    int step, total;
    float loss;
    double tok_s, value;
    char name[32];
    if ((line[0] == 'T' || line[0] == 'P') &&
        sscanf(line + 1, "%d %d %f %lf", &step, &total, &loss, &tok_s) == 4) {
        note_step(p, line[0], step, now);
        p->total = total;
        p->loss = loss;
        p->tok_s = tok_s;
    } else if (line[0] == 'V' && sscanf(line + 1, "%d %31s %lf", &step, name, &value) == 3) {
        snprintf(p->val_name, sizeof p->val_name, "%s", name);
        p->val_value = value;
    } else if (sscanf(line, "%d %f", &step, &loss) == 2) {
        note_step(p, 'T', step, now);
        p->loss = loss;
    }
}

double progress_eta(const ProgressRun *p) {
    if (p->sec_per_step <= 0 || p->total <= 0) return -1;
    int left = p->total - 1 - p->step;
    return left > 0 ? left * p->sec_per_step : 0;
}

static void fmt_seconds(char *buf, size_t cap, double s) {
    if (s < 0) snprintf(buf, cap, "?");
    else if (s < 90) snprintf(buf, cap, "%.0fs", s);
    else if (s < 5400) snprintf(buf, cap, "%.0fm%02.0fs", (double)(long)(s / 60), s - 60 * (long)(s / 60));
    else snprintf(buf, cap, "%.0fh%02.0fm", (double)(long)(s / 3600), (s - 3600 * (long)(s / 3600)) / 60);
}

static void run_line(char *buf, size_t cap, const ProgressRun *p) {
    char eta[32];
    fmt_seconds(eta, sizeof eta, progress_eta(p));
    if (!p->phase) { snprintf(buf, cap, "run %lld: starting", (long long)p->run_id); return; }
    int n = snprintf(buf, cap, "run %lld: %s step %d/%d loss %.4f", (long long)p->run_id,
                     p->phase == 'P' ? "pretraining the base," : "train", p->step + 1, p->total, p->loss);
    if (p->val_name[0] && p->phase == 'T' && n > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, " | validation %s %.4f", p->val_name, p->val_value);
    if (p->tok_s > 0 && n > 0 && (size_t)n < cap) n += snprintf(buf + n, cap - (size_t)n, " | %.0f tok/s", p->tok_s);
    if (n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, " | eta %s", eta);
}

// The sweep's ETA: the steps left in running runs, plus the pending runs at the mean length
// of the runs seen, at the mean measured time per step, spread over the running workers. The
// runs that ended count as one more run seen, at their mean pace and length.
static double sweep_eta(const ProgressRun *const *runs, int n, const ProgressSweep *sw) {
    double sec = 0, steps_left = 0, mean_total = 0;
    int nsec = 0, ntotal = 0;
    for (int i = 0; i < n; i++) {
        const ProgressRun *p = runs[i];
        if (p->phase != 'T' || p->total <= 0) continue;
        mean_total += p->total;
        ntotal++;
        if (p->sec_per_step > 0) { sec += p->sec_per_step; nsec++; }
        steps_left += p->total - 1 - p->step > 0 ? p->total - 1 - p->step : 0;
    }
    if (sw->past_sec_per_step > 0 && sw->past_steps > 0) {
        sec += sw->past_sec_per_step;
        nsec++;
        mean_total += sw->past_steps;
        ntotal++;
    }
    int settled = sw->done + sw->failed + sw->interrupted;
    int pending = sw->total - settled - sw->running;
    if (!nsec || !ntotal) return settled >= sw->total ? 0 : -1;
    steps_left += (pending > 0 ? pending : 0) * (mean_total / ntotal);
    int workers = sw->running > 0 ? sw->running : 1;
    return steps_left * (sec / nsec) / workers;
}

void progress_render(FILE *out, int live, const ProgressRun *const *runs, int n, const ProgressSweep *sw,
                     int *drawn) {
    char line[512], eta[32];
    int settled = sw->done + sw->failed + sw->interrupted;
    fmt_seconds(eta, sizeof eta, sweep_eta(runs, n, sw));
    if (live && *drawn > 0) fprintf(out, "\033[%dA", *drawn);   // back to the first line of the view
    for (int i = 0; i < n; i++) {
        run_line(line, sizeof line, runs[i]);
        fprintf(out, live ? "\r\033[K%s\n" : "%s\n", line);
    }
    fprintf(out, live ? "\r\033[Ksweep: %d/%d settled (done %d, failed %d), %d running, elapsed %.0fs, eta %s\n"
                      : "sweep: %d/%d settled (done %d, failed %d), %d running, elapsed %.0fs, eta %s\n",
            settled, sw->total, sw->done, sw->failed, sw->running, sw->elapsed, eta);
    if (live) {
        // lines left over from a longer view before
        for (int k = n + 1; k < *drawn; k++) fprintf(out, "\r\033[K\n");
        if (*drawn > n + 1) fprintf(out, "\033[%dA", *drawn - (n + 1));
        *drawn = n + 1;
    }
    fflush(out);
}
