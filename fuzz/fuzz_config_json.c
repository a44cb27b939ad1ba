// fuzz/fuzz_config_json.c — a checkpoint's config.json and an adapter's adapter_config.json
// (core/checkpoint.c), the same bytes as each.
#include "core/checkpoint.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char path[512];
    fuzz_write("ck/config.json", data, n, path, sizeof path);
    fuzz_write("ck/adapter_config.json", data, n, path, sizeof path);
    snprintf(path, sizeof path, "%s/ck", fuzz_dir());
    ModelConfig cfg;
    checkpoint_read_config(path, &cfg);
    MethodConfig mc;
    adapter_read_config(path, &mc);
    return 0;
}
