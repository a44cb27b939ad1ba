// harness/cmd_report.c — `loralab report NAME [--sweep S] [--db PATH]`: paper-style tables
// from the results database (see harness/report.h for what the cells mean).
#include <stdio.h>

#include "core/errors.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/report.h"
#include "harness/store.h"

int cmd_report(int argc, char **argv) {
    const char *db = STORE_DEFAULT_PATH, *sweep = NULL;
    ArgSpec specs[] = {
        {"--sweep", ARG_STRING, &sweep, 0, 0, "only this sweep's runs (default: every run)"},
        {"--db", ARG_STRING, &db, 0, 0, "results database (default " STORE_DEFAULT_PATH ")"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    const char *usage =
        "report NAME [--sweep S] [--db PATH]\n\n"
        "tables (mean ± sample std over seeds of each task's main metric):\n"
        "  table6   LoRA target sets × ranks (the paper's Table 6)\n"
        "  table5   one column per target set with its rank, at a parameter budget (Table 5)\n"
        "  methods  every method and size with trainable parameters and the task's baseline (Table 4)\n"
        "  runs     every run: status, config, metric, time, error\n"
        "  table7   amplification of W by ΔW per layer (Table 7; needs `loralab analyze`)";
    ArgResult args;
    if (args_parse(argc, argv, specs, NSPECS, &args)) { args_result_free(&args); err_exit(); }
    if (args.help) { args_usage(stdout, usage, specs, NSPECS); args_result_free(&args); return EXIT_OK; }
    if (args.npositional != 1) {
        err_set("report: expected one table name (%s), got %d arguments", REPORT_NAMES, args.npositional);
        args_result_free(&args);
        err_exit();
    }
    Store *s;
    if (store_open(&s, db, STORE_READONLY)) { args_result_free(&args); err_exit(); }
    ReportData d;
    int status = report_load(s, sweep, &d);
    if (!status) {
        status = report_print(stdout, s, &d, args.positional[0]);
        report_data_free(&d);
    }
    store_close(s);
    args_result_free(&args);
    if (status) err_exit();
    return EXIT_OK;
}
