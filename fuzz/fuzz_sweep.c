// fuzz/fuzz_sweep.c — the sweep-file loader and grid expansion (harness/sweepfile.c) on any
// bytes, then the analyze: block's check against the expanded runs (harness/cmd_analyze.c).
#include "fuzz/fuzz.h"
#include "harness/commands.h"
#include "harness/sweepfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *text = fuzz_text(data, n);
    Sweep sw;
    if (sweep_load_string(text, "fuzz.yaml", 0, NULL, &sw) == 0) {
        if (sw.analyze_json) analyze_check(sw.analyze_json, sw.name, sw.runs, sw.nruns);
        sweep_free(&sw);
    }
    free(text);
    return 0;
}
