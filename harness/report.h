// harness/report.h — paper-style tables from the results database (`loralab report`), and
// the aggregation the plots share with them.
//
// Reports read only the database. Per run, the main metric is runs.metric when the run
// recorded it, else the first of accuracy, exact_match, macro_f1, per, loss found among its
// metrics. Its value is the test split's (latest step), else the validation split's (latest
// step). The baseline is the test metric "baseline_<metric>". Runs that differ only in their
// seed(s) form a group: the config JSON with every "seed" key removed.
// Cells are mean ± sample standard deviation (divisor n - 1) over a group's seeds, with n
// and the 95 % t interval of the mean (harness/stats.h); a cell with one run shows the value
// alone, an empty cell "-".
//
// Convergence: a done run is "not converged" when it stopped at train.steps (stop_reason cap,
// or not recorded: databases before early stopping) while its validation metric was still
// improving: its best validation step is its last one, of at least two.
// Tuning: a tuned sweep's tuning runs at settings that were not picked are left out of every
// table but `runs` (`report tune` shows them); the tuned keys get a column, as does every
// config key that varies between a table's rows and is not in their labels.
//
// Ownership: report_load fills a ReportData that report_data_free releases; everything in
// it is owned by it.
#ifndef LORALAB_REPORT_H
#define LORALAB_REPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "harness/store.h"

typedef struct {
    int64_t id;
    char *hash;
    RunStatus status;
    char *task, *method, *targets, *label;   // NULL when not recorded
    char *metric;      // the main metric's name (NULL: none found)
    char *split;       // "test" or "validation": where value came from
    char *group;       // config without seeds
    char *error;
    int rank, seed;    // -1: none
    int64_t trainable, head;   // -1: unknown
    double value;      // main metric (NAN: none)
    double baseline;   // test baseline_<metric> (NAN: none)
    double wall_seconds;       // NAN: unknown
    char *config;              // the stored config JSON
    char *stop_reason;         // "patience", "cap", "failure" or NULL (not recorded)
    int stop_step, best_step, last_step;   // -1: none; last_step: last validation of the metric
    int not_converged;         // see the top of this file
    int tuning_only;           // a tuning run at a setting the sweep did not pick
} ReportRun;

typedef struct {
    ReportRun *runs;   // in sweep order (all runs by id without a sweep)
    int n;
    char *sweep;       // the sweep's name, or "all"
    int ntuned;        // keys tuned by the sweep's tune: block
    char **tuned;      // their names
} ReportData;

typedef struct {
    int n;             // values that were not NaN
    double mean, std;  // std: sample (n - 1); 0 when n == 1; NAN when n == 0
} ReportStat;

// Loads the runs of sweep (NULL: every run in the database). 0 or -1 (err_set).
int report_load(Store *s, const char *sweep, ReportData *out);
void report_data_free(ReportData *d);

// Mean and sample standard deviation of x[0..n), NaNs skipped.
ReportStat report_stat(const double *x, int n);
// "0.600 ± 0.141", "0.600" (n = 1), "-" (n = 0).
void report_format_stat(char *buf, size_t size, ReportStat st);
// "Wq,Wv" for targets "q,v" (other target names unchanged).
void report_format_targets(char *buf, size_t size, const char *targets);
// Short description of a run's method settings: its label, else "Wq,Wv r=8", else "".
void report_config_label(char *buf, size_t size, const ReportRun *r);

// Distinct tasks with at least one done run carrying a value, in order of appearance.
// *tasks points into d (not to be freed individually); free(*tasks) the array.
int report_tasks(const ReportData *d, const char ***tasks);
// Indices of the first run of each group of task's done runs with a value, in order of
// appearance; free(*first). Returns the count.
int report_groups(const ReportData *d, const char *task, int **first);
// Stat of the main metric over a group's done runs; *baseline (may be NULL): mean baseline.
ReportStat report_group_stat(const ReportData *d, const char *task, const char *group, double *baseline);
// Stat over the done LoRA runs of task with these targets and rank; *ngroups (may be NULL):
// how many groups the cell pools (more than 1: the runs differ in more than the seed).
ReportStat report_cell_stat(const ReportData *d, const char *task, const char *targets, int rank,
                            int *ngroups);
// Distinct LoRA target sets of task in order of appearance (pointers into d; free the
// array), and distinct ranks ascending (free the array).
int report_target_sets(const ReportData *d, const char *task, const char ***sets);
int report_ranks(const ReportData *d, const char *task, int **ranks);

// Prints table `name` (table6, table5, methods, runs, table7, tune) for d. db: for table7's
// analysis rows. 0, or -1 (err_set: unknown name, nothing to report).
int report_print(FILE *out, Store *s, const ReportData *d, const char *name);
extern const char *const REPORT_NAMES;   // "table6, table5, methods, runs, table7, tune"

typedef enum { REPORT_TEXT, REPORT_CSV, REPORT_JSON } ReportFormat;
// report_print in a format: CSV (RFC 4180, CRLF, a header of every field) or a JSON array
// of one object per row, with the numbers unformatted (mean, std, n, ci_lo, ci_hi, ...).
int report_print_as(FILE *out, Store *s, const ReportData *d, const char *name, ReportFormat fmt);
// Writes rec, a JSON array of objects (one per row), as report_print_as does: REPORT_JSON one
// compact line; REPORT_CSV a header of columns[0..ncolumns) (may be NULL) then every other key
// in order of first appearance, one CRLF-ended line per object, null or missing fields empty.
void report_emit_records(FILE *out, json_t *rec, const char *const *columns, int ncolumns, ReportFormat fmt);

// `report compare`: selector a picks one configuration (runs differing only in their seed),
// selector b one or more (or the other way round); each pair of configurations is compared
// by seed: mean difference a - b, its 95 % t interval, the paired t-test's p, and with
// several comparisons Holm's adjusted p. A selector is "key=value key=value" (config keys).
// 0, or -1 (err_set: a bad selector, no match, nothing paired).
int report_compare(FILE *out, const ReportData *d, const char *sel_a, const char *sel_b, ReportFormat fmt);

// "0.600 ± 0.141 n=2 [0.473, 0.727]", "0.900 n=1", "-", with " *" when not_converged > 0.
void report_format_cell(char *buf, size_t size, const double *values, int n, int not_converged);

// Prints rows of cells as an aligned text table: row 0 is the header, underlined with
// dashes; columns two spaces apart; right_align[c] (may be NULL) right-aligns column c.
// Widths count UTF-8 characters, not bytes.
void report_table_print(FILE *out, int nrows, int ncols, char *const *cells, const int *right_align);

#endif
