// harness/cmd_report_repro.c — `loralab report reproduction [--db PATH] [--out FILE]`: the
// reproduction's RESULTS.md from the results database alone (harness/report_repro.h).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "harness/report_repro.h"

int cmd_report_reproduction(int argc, char **argv) {
    const char *db = "results/reproduce.db", *out_path = NULL;
    ArgSpec specs[] = {
        {"--db", ARG_STRING, &db, 0, 0, "results database (default results/reproduce.db)"},
        {"--out", ARG_STRING, &out_path, 0, 0, "write the Markdown here (default: standard output)"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    const char *usage =
        "report reproduction [--db PATH] [--out FILE]\n\n"
        "RESULTS.md from the database alone: for each finding of the paper (Tables 5, 6, 7, Figures 2, 3, 4,\n"
        "LoRA ≈ FT) the paper's claim and numbers, ours with a 95% t interval and n, a verdict (reproduced,\n"
        "not reproduced, inconclusive at this power, not tested) by the rules it prints, the evidence (paired\n"
        "t-tests with Holm, φ against Gaussian matrices, amplification against 1); then the detail tables,\n"
        "the deviations from the paper's setup read from the stored configs, and the compute time.\n"
        "Reads the sweeps table5-budget, table6-rank, fig2-methods and every φ / amplification row.\n"
        "The database is read through a private copy: it is never written.";
    ArgResult args;
    // argv[0] is "report", argv[1] "reproduction"
    if (args_parse(argc - 1, argv + 1, specs, NSPECS, &args)) { args_result_free(&args); return -1; }
    if (args.help) { args_usage(stdout, usage, specs, NSPECS); args_result_free(&args); return EXIT_OK; }
    if (args.npositional) {
        err_set("report reproduction: unexpected argument '%s' (see --help)", args.positional[0]);
        args_result_free(&args);
        return -1;
    }
    args_result_free(&args);
    Store *s;
    if (store_open_copy(&s, db)) return -1;   // any older schema; the file is never written
    // written to memory first, so a failure leaves no half-written file behind
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int status = mem ? report_reproduction(mem, s) : err_set("out of memory");
    if (mem) fclose(mem);
    store_close(s);
    if (status) { free(text); return -1; }
    if (out_path) {
        char part[4096];
        snprintf(part, sizeof part, "%s.part", out_path);
        FILE *f = fopen(part, "w");
        if (!f) { free(text); err_set("%s: cannot write: %s", part, strerror(errno)); return -1; }
        int bad = fwrite(text, 1, len, f) != len;
        bad |= fclose(f) != 0;
        if (bad || rename(part, out_path)) { remove(part); free(text); err_set("%s: cannot write", out_path); return -1; }
        printf("wrote %s (%zu bytes)\n", out_path, len);
    } else {
        fwrite(text, 1, len, stdout);
    }
    free(text);
    return EXIT_OK;
}
