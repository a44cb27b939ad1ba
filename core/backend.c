// core/backend.c — the backend registry: a device name in, a complete Backend table out.
#include "core/backend.h"
#include "core/backend_cuda.h"
#include "core/cpu/backend_cpu.h"
#include "core/errors.h"

#include <stdio.h>
#include <string.h>

// A CUDA table leaves the host-side members to the host: its threads are the CPU backend's
// (the host work around the GPU), and it counts no GEMMs unless it says so itself.
static const char *cuda_kernels(void) { return "cuBLAS"; }
static void no_counters(double *flops, double *seconds) {
    if (flops) *flops = 0.0;
    if (seconds) *seconds = 0.0;
}

static const Backend *complete(const Backend *be) {
    static Backend full;
    full = *be;
    const Backend *cpu = backend_cpu();
    if (!full.set_threads) full.set_threads = cpu->set_threads;
    if (!full.threads) full.threads = cpu->threads;
    if (!full.kernels) full.kernels = cuda_kernels;
    if (!full.gemm_counters) full.gemm_counters = no_counters;
    return &full;
}

// "cuda" is device 0; "cuda:N" is N; anything else is -1.
static int cuda_index(const char *device) {
    int index = 0, n = 0;
    if (strncmp(device, "cuda", 4)) return -1;
    if (!device[4]) return 0;
    if (device[4] != ':' || sscanf(device + 5, "%d%n", &index, &n) != 1 || device[5 + n] || index < 0) return -1;
    return index;
}

int backend_device_count(const char *kind) {
    if (!strcmp(kind, "cpu")) return 1;
    if (!strcmp(kind, "cuda")) return backend_cuda_device_count();
    return 0;
}

int backend_describe(const char *device, char *buf, size_t cap) {
    int index = cuda_index(device);
    return index < 0 ? -1 : backend_cuda_describe(index, buf, cap);
}

const Backend *backend_open(const char *device, const BackendOptions *opt) {
    const Backend *be = NULL;
    if (!device) device = "cpu";
    if (!strcmp(device, "cpu")) {
        be = backend_cpu();
    } else {
        int index = cuda_index(device);
        if (index < 0) {
            err_set("device '%s': expected cpu, cuda or cuda:N", device);
            return NULL;
        }
        char why[256];
        const Backend *gpu = backend_cuda(index, why, sizeof why);
        if (!gpu) {
            err_set("%s", why);
            return NULL;
        }
        be = complete(gpu);
    }
    if (opt && opt->threads) be->set_threads(opt->threads);
    return be;
}
