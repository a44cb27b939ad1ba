// core/cpu/matmul.c — oneDNN matmul primitives, created once per shape and cached (matmul.h).
#include "core/cpu/matmul.h"
#include "core/backend.h"
#include "core/errors.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <dnnl.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// A oneDNN call that fails here is a bug in the descriptors built below (or a library that
// cannot run on this CPU at all), never bad user input: abort with the call and its status.
#define DNNL_CHECK(call)                                                                      \
    do {                                                                                      \
        dnnl_status_t st_ = (call);                                                           \
        if (st_ != dnnl_success) {                                                            \
            fprintf(stderr, "loralab: internal error: %s failed with oneDNN status %d (%s:%d)\n", \
                    #call, (int)st_, __FILE__, __LINE__);                                     \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

typedef struct {
    Matmul key;        // memcmp-compared: built from a zeroed struct (no stray padding bytes)
    int threads;       // oneDNN partitions work by the team size at creation
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, scratch;   // user-handle memory objects, re-pointed each call
} Entry;

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static Entry *entries;
static int n_entries, cap_entries, last_hit;
static void *scratch;          // one user scratchpad for every primitive (calls are serial)
static size_t scratch_bytes;
static double flops_total, seconds_total;
static int bf16_kernels = -1;  // bf16 operands go to oneDNN's bf16 kernels (-1: not asked yet)
static float *widened;         // fp32 copies of bf16 operands where they are widened
static size_t widened_cap;

static void init_once(void) {
    if (engine) return;
    DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
}

static int team(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// A memory descriptor of a (batch0, batch1,) rows x cols view with the given strides.
static void view_desc(dnnl_memory_desc_t *md, const Matmul *mm, int rows, int cols,
                      const int64_t *st, dnnl_data_type_t dt) {
    int batched = mm->batch[0] > 1 || mm->batch[1] > 1;
    if (batched) {
        dnnl_dims_t dims = {mm->batch[0], mm->batch[1], rows, cols};
        dnnl_dims_t strides = {st[0], st[1], st[2], st[3]};
        // a stride of a size-1 dimension is never used; oneDNN still wants it plausible
        if (mm->batch[0] == 1) strides[0] = (int64_t)rows * cols * (mm->batch[1] > 0 ? mm->batch[1] : 1);
        if (mm->batch[1] == 1) strides[1] = (int64_t)rows * cols;
        DNNL_CHECK(dnnl_memory_desc_init_by_strides(md, 4, dims, dt, strides));
    } else {
        dnnl_dims_t dims = {rows, cols};
        dnnl_dims_t strides = {st[2], st[3]};
        DNNL_CHECK(dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides));
    }
}

// The primitive descriptor of a product, or NULL when oneDNN has no implementation for it
// on this CPU (bf16 below AVX-512); any other failure aborts.
static dnnl_primitive_desc_t describe(const Matmul *mm, dnnl_memory_desc_t *amd,
                                      dnnl_memory_desc_t *bmd, dnnl_memory_desc_t *cmd) {
    init_once();
    dnnl_data_type_t in = mm->bf16 ? dnnl_bf16 : dnnl_f32;
    view_desc(amd, mm, mm->M, mm->K, mm->sa, in);
    view_desc(bmd, mm, mm->K, mm->N, mm->sb, in);
    view_desc(cmd, mm, mm->M, mm->N, mm->sc, mm->c_bf16 ? dnnl_bf16 : dnnl_f32);
    dnnl_matmul_desc_t desc;
    DNNL_CHECK(dnnl_matmul_desc_init(&desc, amd, bmd, NULL, cmd));
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (mm->alpha != 1.0f) DNNL_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &mm->alpha));
    if (mm->beta != 0.0f) {   // C = alpha A B + beta C: the sum post-op reads C before writing
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_post_ops_create(&po));
        DNNL_CHECK(dnnl_post_ops_append_sum(po, mm->beta));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
        DNNL_CHECK(dnnl_post_ops_destroy(po));
    }
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL);
    DNNL_CHECK(dnnl_primitive_attr_destroy(attr));
    if (st == dnnl_unimplemented) return NULL;
    DNNL_CHECK(st);
    return pd;
}

static Entry *create(const Matmul *mm, int threads) {
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_primitive_desc_t pd = describe(mm, &amd, &bmd, &cmd);
    if (!pd) {
        fprintf(stderr, "loralab: internal error: oneDNN has no matmul for %s %dx%dx%d on this CPU\n",
                mm->bf16 ? "bf16" : "fp32", mm->M, mm->N, mm->K);
        abort();
    }

    if (n_entries == cap_entries) {
        cap_entries = cap_entries ? 2 * cap_entries : 64;
        entries = xrealloc(entries, (size_t)cap_entries * sizeof(Entry));
    }
    Entry *e = &entries[n_entries++];
    memset(e, 0, sizeof *e);
    e->key = *mm;
    e->threads = threads;
    DNNL_CHECK(dnnl_primitive_create(&e->prim, pd));
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sbytes > scratch_bytes) {
        free(scratch);
        scratch = xmalloc(sbytes);
        scratch_bytes = sbytes;
    }
    DNNL_CHECK(dnnl_memory_create(&e->a, &amd, engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&e->b, &bmd, engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&e->c, &cmd, engine, DNNL_MEMORY_NONE));
    if (sbytes) DNNL_CHECK(dnnl_memory_create(&e->scratch, smd, engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_primitive_desc_destroy(pd));
    return e;
}

static Entry *lookup(const Matmul *mm, int threads) {
    // Products come in the same order every step: start at the one after the last hit.
    for (int i = 0; i < n_entries; i++) {
        int j = (last_hit + 1 + i) % n_entries;
        if (entries[j].threads == threads && !memcmp(&entries[j].key, mm, sizeof *mm)) {
            last_hit = j;
            return &entries[j];
        }
    }
    Entry *e = create(mm, threads);
    last_hit = (int)(e - entries);
    return e;
}

// Whether bf16 operands go to oneDNN's bf16 kernels: where its ISA multiplies bf16 natively
// (AVX512-BF16, AMX) and it has a matmul for them, asked once of a small product. On AVX-512
// without BF16 oneDNN emulates the bf16 products: a micro FT step took 76.2 ms there against
// 34.6 ms in fp32 (ONEDNN_MAX_CPU_ISA=AVX512_CORE on this project's machine), so bf16 is
// widened to fp32 instead, as below AVX-512.
static int have_bf16_kernels(void) {
    if (bf16_kernels < 0) {
        dnnl_cpu_isa_t bf16_isa = dnnl_cpu_isa_avx512_core_bf16;   // its bits are in AMX's too
        int native = (dnnl_get_effective_cpu_isa() & bf16_isa) == bf16_isa;
        Matmul probe = {.bf16 = 1, .batch = {1, 1}, .M = 16, .N = 16, .K = 16, .alpha = 1.0f,
                        .sa = {0, 0, 16, 1}, .sb = {0, 0, 16, 1}, .sc = {0, 0, 16, 1}};
        dnnl_memory_desc_t a, b, c;
        dnnl_primitive_desc_t pd = native ? describe(&probe, &a, &b, &c) : NULL;
        bf16_kernels = pd != NULL;
        if (pd) DNNL_CHECK(dnnl_primitive_desc_destroy(pd));
    }
    return bf16_kernels;
}

// Copies the rows x cols view of bf16 X (strides st, batches as mm's) into dst as packed fp32
// (exactly: every bf16 value is a float) and sets packed strides in out.
static void widen_view(float *dst, int64_t *out, const uint16_t *X, const int64_t *st,
                       const Matmul *mm, int rows, int cols) {
    out[3] = 1;
    out[2] = cols;
    out[1] = (int64_t)rows * cols;
    out[0] = (int64_t)mm->batch[1] * rows * cols;
    int nb = mm->batch[0] * mm->batch[1];
    #pragma omp parallel for schedule(static) if ((size_t)nb * rows * cols > 16384)
    for (int r = 0; r < nb * rows; r++) {
        int b = r / rows, i = r % rows, b0 = b / mm->batch[1], b1 = b % mm->batch[1];
        const uint16_t *x = X + b0 * st[0] + b1 * st[1] + i * st[2];
        float *d = dst + (size_t)r * cols;
        for (int j = 0; j < cols; j++) {
            union { uint32_t u; float f; } v = {(uint32_t)x[j * st[3]] << 16};
            d[j] = v.f;
        }
    }
}

// Rounds the packed fp32 (batches, rows, cols) in src into the strided bf16 view dst of mm's C.
static void round_into_view(uint16_t *dst, const float *src, const Matmul *mm) {
    int nb = mm->batch[0] * mm->batch[1];
    #pragma omp parallel for schedule(static) if ((size_t)nb * mm->M * mm->N > 16384)
    for (int r = 0; r < nb * mm->M; r++) {
        int b = r / mm->M, i = r % mm->M, b0 = b / mm->batch[1], b1 = b % mm->batch[1];
        uint16_t *d = dst + b0 * mm->sc[0] + b1 * mm->sc[1] + i * mm->sc[2];
        for (int j = 0; j < mm->N; j++) d[j * mm->sc[3]] = bf16_from_float(src[(size_t)r * mm->N + j]);
    }
}

void cpu_matmul(const Matmul *mm, const void *A, const void *B, void *C) {
    LAB_ASSERT(mm->M >= 0 && mm->N >= 0 && mm->K >= 0 && mm->batch[0] >= 1 && mm->batch[1] >= 1);
    LAB_ASSERT(!mm->c_bf16 || (mm->bf16 && mm->beta == 0.0f));
    if (mm->M == 0 || mm->N == 0) return;
    if (mm->bf16 && mm->K > 0 && !have_bf16_kernels()) {
        // No native bf16 kernels (below AVX512-BF16): the same exact products and fp32 sums, in fp32
        // (into packed fp32 first, then rounded, for a bf16 C).
        size_t nb = (size_t)mm->batch[0] * mm->batch[1], na = nb * mm->M * mm->K, nbb = nb * mm->K * mm->N;
        size_t nc = mm->c_bf16 ? nb * mm->M * mm->N : 0;
        if (na + nbb + nc > widened_cap) {
            free(widened);
            widened_cap = na + nbb + nc;
            widened = xmalloc(widened_cap * sizeof(float));
        }
        Matmul f = *mm;
        f.bf16 = 0;
        f.c_bf16 = 0;
        widen_view(widened, f.sa, A, mm->sa, mm, mm->M, mm->K);
        widen_view(widened + na, f.sb, B, mm->sb, mm, mm->K, mm->N);
        if (!mm->c_bf16) { cpu_matmul(&f, widened, widened + na, C); return; }
        float *packed = widened + na + nbb;
        f.sc[3] = 1;
        f.sc[2] = mm->N;
        f.sc[1] = (int64_t)mm->M * mm->N;
        f.sc[0] = (int64_t)mm->batch[1] * mm->M * mm->N;
        cpu_matmul(&f, widened, widened + na, packed);
        round_into_view(C, packed, mm);
        return;
    }
    double t0 = now();
    if (mm->K == 0) {   // an empty sum: C = beta C (oneDNN has no zero-length reduction)
        for (int b0 = 0; b0 < mm->batch[0]; b0++)
            for (int b1 = 0; b1 < mm->batch[1]; b1++)
                for (int i = 0; i < mm->M; i++)
                    for (int j = 0; j < mm->N; j++) {
                        size_t at = (size_t)(b0 * mm->sc[0] + b1 * mm->sc[1] + i * mm->sc[2] + j * mm->sc[3]);
                        if (mm->c_bf16) { ((uint16_t *)C)[at] = 0; continue; }
                        float *c = (float *)C + at;
                        *c = mm->beta == 0.0f ? 0.0f : mm->beta * *c;
                    }
        seconds_total += now() - t0;
        return;
    }
    Matmul key;
    memset(&key, 0, sizeof key);   // zero padding, so memcmp compares fields only
    key.bf16 = mm->bf16;
    key.c_bf16 = mm->c_bf16;
    key.batch[0] = mm->batch[0];
    key.batch[1] = mm->batch[1];
    key.M = mm->M; key.N = mm->N; key.K = mm->K;
    key.alpha = mm->alpha; key.beta = mm->beta;
    memcpy(key.sa, mm->sa, sizeof key.sa);
    memcpy(key.sb, mm->sb, sizeof key.sb);
    memcpy(key.sc, mm->sc, sizeof key.sc);
    Entry *e = lookup(&key, team());
    DNNL_CHECK(dnnl_memory_set_data_handle(e->a, (void *)A));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->b, (void *)B));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->c, C));
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}, {DNNL_ARG_SCRATCHPAD, e->scratch}};
    if (e->scratch) DNNL_CHECK(dnnl_memory_set_data_handle(e->scratch, scratch));
    DNNL_CHECK(dnnl_primitive_execute(e->prim, stream, e->scratch ? 4 : 3, args));
    DNNL_CHECK(dnnl_stream_wait(stream));
    seconds_total += now() - t0;
    flops_total += 2.0 * mm->batch[0] * mm->batch[1] * (double)mm->M * mm->N * mm->K;
}

void cpu_matmul_2d(int bf16, int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const void *A, int lda, const void *B, int ldb, float beta, float *C, int ldc) {
    LAB_ASSERT(M >= 0 && N >= 0 && K >= 0);
    LAB_ASSERT(lda >= (trans_a ? M : K) && lda >= 1);
    LAB_ASSERT(ldb >= (trans_b ? K : N) && ldb >= 1);
    LAB_ASSERT(ldc >= N && ldc >= 1);
    Matmul mm = {.bf16 = bf16, .batch = {1, 1}, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta};
    // op(X)[r][c] is X[r * ld + c], or X[c * ld + r] transposed
    mm.sa[2] = trans_a ? 1 : lda;  mm.sa[3] = trans_a ? lda : 1;
    mm.sb[2] = trans_b ? 1 : ldb;  mm.sb[3] = trans_b ? ldb : 1;
    mm.sc[2] = ldc;                mm.sc[3] = 1;
    cpu_matmul(&mm, A, B, C);
}

void cpu_matmul_counters(double *flops, double *seconds) {
    if (flops) *flops = flops_total;
    if (seconds) *seconds = seconds_total;
}

int cpu_matmul_primitives(void) { return n_entries; }

const char *cpu_matmul_isa(void) {
    static char buf[128];
    const char *name = "unknown ISA", *tag = "?";
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: name = "SSE4.1"; tag = "sse41"; break;
    case dnnl_cpu_isa_avx: name = "AVX"; tag = "avx"; break;
    case dnnl_cpu_isa_avx2: name = "AVX2"; tag = "avx2"; break;
    case dnnl_cpu_isa_avx2_vnni: name = "AVX2-VNNI"; tag = "avx2_vnni"; break;
    case dnnl_cpu_isa_avx512_mic: name = "AVX-512 (MIC)"; tag = "avx512_mic"; break;
    case dnnl_cpu_isa_avx512_mic_4ops: name = "AVX-512 (MIC 4ops)"; tag = "avx512_mic_4ops"; break;
    case dnnl_cpu_isa_avx512_core: name = "AVX-512"; tag = "avx512_core"; break;
    case dnnl_cpu_isa_avx512_core_vnni: name = "AVX-512 VNNI"; tag = "avx512_core_vnni"; break;
    case dnnl_cpu_isa_avx512_core_bf16: name = "AVX512-BF16"; tag = "avx512_core_bf16"; break;
    case dnnl_cpu_isa_avx512_core_amx: name = "AMX"; tag = "avx512_core_amx"; break;
    default: break;
    }
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d, %s (%s)%s", v->major, v->minor, v->patch, name, tag,
             have_bf16_kernels() ? "" : ", bf16 widened to fp32");
    return buf;
}
