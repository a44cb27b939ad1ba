// harness/progress.h — the live view of a sweep: what each running run is doing.
//
// A worker writes progress lines into its pipe (harness/sched.h):
//   "T step total loss tokens_per_s"   a training step (step is 0-based, total = steps)
//   "V step name value"                a validation result after `step` steps
//   "P step total loss tokens_per_s"   a pretraining step of the base this run waits for
//   "step loss"                        the older form of a training step
// The scheduler keeps one ProgressRun per worker and renders them: on a terminal, one line
// per running run (phase, step k/N, loss, last validation metric, tokens/s, the run's ETA)
// and a sweep line (settled/total, ETA from the measured time per step), redrawn in place;
// elsewhere (a log file, CI, Slurm) the same lines as plain text every `every` seconds.
#ifndef LORALAB_PROGRESS_H
#define LORALAB_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    int64_t run_id;
    char phase;            // 0 (nothing yet), 'P' pretraining, 'T' training
    int step, total;
    float loss;
    double tok_s;
    char val_name[32];     // "" until the first validation
    double val_value;
    double phase_t0;       // when the phase's first line came, and its step then
    int phase_step0;
    double sec_per_step;   // measured in this phase; 0 until two lines
} ProgressRun;

void progress_start(ProgressRun *p, int64_t run_id);
// Parses one line (without its newline) that arrived at time now (seconds, monotonic).
void progress_parse(ProgressRun *p, const char *line, double now);
// Seconds left in the run's current phase from its measured pace; < 0: unknown.
double progress_eta(const ProgressRun *p);

typedef struct {
    int total, done, failed, interrupted, running;
    double elapsed;
    // the runs that ended in this sweep: the mean time per training step and the mean steps
    // they trained (0: none), so that the ETA stays known while no running run has a pace yet
    double past_sec_per_step, past_steps;
} ProgressSweep;

// Writes the view: one line per run in runs[0..n), then the sweep line. live: redraw in place
// (*drawn: the lines drawn last time, updated), else plain lines.
void progress_render(FILE *out, int live, const ProgressRun *const *runs, int n, const ProgressSweep *sw,
                     int *drawn);

#endif
