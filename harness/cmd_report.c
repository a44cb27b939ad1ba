// harness/cmd_report.c — `loralab report NAME [--sweep S] [--db PATH] [--csv|--json]`:
// paper-style tables from the results database, and `report compare` (see harness/report.h
// for what the cells mean).
#include <stdio.h>
#include <string.h>

#include "core/errors.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/report.h"
#include "harness/store.h"

int cmd_report(int argc, char **argv) {
    // `report reproduction` writes a whole document and has its own flags
    if (argc >= 2 && !strcmp(argv[1], "reproduction")) return cmd_report_reproduction(argc, argv);
    const char *db = STORE_DEFAULT_PATH, *sweep = NULL, *sel_a = NULL, *sel_b = NULL;
    int csv = 0, json = 0;
    ArgSpec specs[] = {
        {"--sweep", ARG_STRING, &sweep, 0, 0, "only this sweep's runs (default: every run)"},
        {"--db", ARG_STRING, &db, 0, 0, "results database (default " STORE_DEFAULT_PATH ")"},
        {"--csv", ARG_FLAG, &csv, 0, 0, "CSV (RFC 4180): one row per table row, numbers unformatted"},
        {"--json", ARG_FLAG, &json, 0, 0, "a JSON array of one object per table row"},
        {"--a", ARG_STRING, &sel_a, 0, 0, "compare: runs of one configuration, as 'key=value key=value'"},
        {"--b", ARG_STRING, &sel_b, 0, 0, "compare: the configuration(s) to compare with, as 'key=value ...'"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    const char *usage =
        "report NAME [--sweep S] [--db PATH] [--csv | --json]\n"
        "       report compare --sweep S --a 'key=value ...' --b 'key=value ...'\n\n"
        "tables (each task's main metric over seeds: mean ± sample std, n, 95% t interval; * or\n"
        "\"not converged\": runs that hit train.steps while their validation metric still improved):\n"
        "  table6   LoRA target sets × ranks (the paper's Table 6)\n"
        "  table5   one column per target set with its rank, at a parameter budget (Table 5)\n"
        "  methods  every method and size with trainable parameters and the task's baseline (Table 4);\n"
        "           a column per config key that varies between rows (tuned keys marked)\n"
        "  runs     every run: status, config, metric, time, where and why it stopped, error\n"
        "  table7   amplification of W by ΔW per layer (Table 7; needs `loralab analyze`)\n"
        "  tune     a tuned sweep's tuning runs: validation metric per setting, and the pick\n"
        "  reproduction  RESULTS.md: every finding of the paper with a verdict (`report reproduction --help`)\n"
        "  compare  paired by seed: mean difference a - b, 95% t interval, paired t-test p; when one\n"
        "           selector matches several configurations, one comparison each and Holm-adjusted p";
    ArgResult args;
    if (args_parse(argc, argv, specs, NSPECS, &args)) { args_result_free(&args); return -1; }
    if (args.help) { args_usage(stdout, usage, specs, NSPECS); args_result_free(&args); return EXIT_OK; }
    if (args.npositional != 1) {
        err_set("report: expected one table name (%s, compare), got %d arguments", REPORT_NAMES, args.npositional);
        args_result_free(&args);
        return -1;
    }
    const char *name = args.positional[0];
    int compare = !strcmp(name, "compare");
    if (csv && json) err_set("report: --csv and --json exclude each other");
    else if (compare && (!sel_a || !sel_b)) err_set("report compare: give both --a and --b (e.g. --a 'method=ft' --b 'method=lora')");
    else if (!compare && (sel_a || sel_b)) err_set("report %s: --a and --b are for report compare", name);
    if ((csv && json) || compare != (sel_a && sel_b) || (!compare && (sel_a || sel_b))) { args_result_free(&args); return -1; }
    ReportFormat fmt = csv ? REPORT_CSV : json ? REPORT_JSON : REPORT_TEXT;
    Store *s;
    if (store_open(&s, db, STORE_READONLY)) { args_result_free(&args); return -1; }
    ReportData d;
    int status = report_load(s, sweep, &d);
    if (!status) {
        status = compare ? report_compare(stdout, &d, sel_a, sel_b, fmt) : report_print_as(stdout, s, &d, name, fmt);
        report_data_free(&d);
    }
    store_close(s);
    args_result_free(&args);
    return status ? -1 : EXIT_OK;
}
