// fuzz/fuzz_safetensors.c — the safetensors reader (core/safetensors.c): open, every
// accessor, every float tensor converted and scanned for non-finite values.
#include "core/safetensors.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char path[512];
    fuzz_write("model.safetensors", data, n, path, sizeof path);
    SafeTensors *st = st_open(path);
    if (!st) return 0;
    char shape[256];
    for (int i = 0; i < st_count(st); i++) {
        const char *name = st_name(st, i);
        if (st_find(st, name) < 0) abort();   // every listed name is found
        st_shape_str(st, i, shape, sizeof shape);
        size_t numel = st_numel(st, i);
        const int64_t *dims = st_shape(st, i);
        size_t product = 1;
        for (int d = 0; d < st_ndim(st, i); d++) product *= (size_t)dims[d];
        if (product != numel) abort();
        float *out = malloc((numel ? numel : 1) * sizeof *out);
        if (!out) abort();
        st_read_f32(st, i, out, numel);
        st_find_nonfinite(st, i);
        free(out);
    }
    st_metadata(st, "format");
    st_close(st);
    return 0;
}
