// harness/memcheck.c — memory needs against available memory. See memcheck.h.
#include "harness/memcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend_cuda.h"
#include "core/errors.h"

static const double MiB = 1024.0 * 1024.0;

// The first number in a file (memory.max holds "max" when there is no limit): -1 if none.
static double read_number(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    double v;
    int ok = fscanf(f, "%lf", &v) == 1;
    fclose(f);
    return ok ? v : -1;
}

size_t memcheck_available(void) {
    double avail = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        double kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) { avail = kb * 1024.0; break; }
        fclose(f);
    }
    double max = read_number("/sys/fs/cgroup/memory.max"), cur = read_number("/sys/fs/cgroup/memory.current");
    if (max > 0 && cur >= 0 && (avail < 0 || max - cur < avail)) avail = max > cur ? max - cur : 0;
    const char *lim = getenv("LORALAB_MEMORY_LIMIT");
    if (lim && *lim) {
        char *end;
        double v = strtod(lim, &end);
        double unit = *end == 'K' || *end == 'k' ? 1024.0 : *end == 'M' || *end == 'm' ? MiB
                    : *end == 'G' || *end == 'g' ? 1024.0 * MiB : 1.0;
        if (v > 0 && (avail < 0 || v * unit < avail)) avail = v * unit;
    }
    return avail > 0 ? (size_t)avail : 0;
}

int memcheck_fits(const char *what, const MemoryReport *need) {
    size_t avail = memcheck_available(), total = memory_report_total(need);
    if (!avail || total <= avail) return 0;
    return err_set("%s needs %.1f MiB (weights %.1f, gradients %.1f, optimizer %.1f, activations "
                   "%.1f MiB); this machine has %.1f MiB available", what, total / MiB,
                   need->weights / MiB, need->grads / MiB, need->optimizer / MiB,
                   need->activations / MiB, avail / MiB);
}

int memcheck_fits_on(const char *what, const MemoryReport *need, const char *device) {
    if (!device || strncmp(device, "cuda", 4)) return memcheck_fits(what, need);
    int gpu = device[4] == ':' ? atoi(device + 5) : 0;
    size_t free_b, total_b, total = memory_report_total(need);
    if (backend_cuda_free_memory(gpu, &free_b, &total_b) || total <= free_b) return 0;
    return err_set("%s needs %.1f MiB (weights %.1f, gradients %.1f, optimizer %.1f, activations "
                   "%.1f MiB); cuda:%d has %.1f MiB free of %.1f MiB", what, total / MiB,
                   need->weights / MiB, need->grads / MiB, need->optimizer / MiB,
                   need->activations / MiB, gpu, free_b / MiB, total_b / MiB);
}

int memcheck_run_need(const RunConfig *rc, MemoryReport *need) {
    ModelConfig cfg;
    MethodConfig mc;
    if (config_to_model(rc, &cfg) || config_to_method(rc, &mc)) return -1;
    // as the runner sizes it: task.max_len (or n_ctx) tokens, less the prefix
    int n_prefix = method_prefix_len(&mc);
    int T = rc->task_max_len > 0 ? rc->task_max_len : cfg.n_ctx;
    if (T + n_prefix > cfg.n_ctx) T = cfg.n_ctx - n_prefix;
    if (T < 1) T = 1;
    return model_memory_need(&cfg, &mc, rc->batch, T, need);
}

static int cmp_desc(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x < y) - (x > y);
}

int memcheck_parallel(const RunConfig *runs, int n, int jobs, size_t *largest) {
    *largest = 0;
    if (n <= 0 || jobs <= 1) return jobs < 1 ? 1 : jobs;
    size_t *need = xcalloc((size_t)n, sizeof *need);
    for (int i = 0; i < n; i++) {
        MemoryReport r;
        // a bad config fails in its run; GPU runs take their GPU's memory, one run per device
        need[i] = !strncmp(runs[i].device, "cuda", 4) || memcheck_run_need(&runs[i], &r) ? 0 : memory_report_total(&r);
    }
    qsort(need, (size_t)n, sizeof *need, cmp_desc);
    *largest = need[0];
    size_t avail = memcheck_available(), sum = 0;
    int fit = 0;
    while (fit < jobs && fit < n && (!avail || sum + need[fit] <= avail)) sum += need[fit++];
    free(need);
    return fit < 1 ? 1 : fit;
}
