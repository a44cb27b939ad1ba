// harness/args.c — checked flag parsing. See args.h.
#include "harness/args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

int args_to_int(const char *s, const char *what, double min, double max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return err_set("%s: expected an integer, got '%s'", what, s);
    if (v < min || v > max)
        return err_set("%s: %ld is out of range [%.0f, %.0f]", what, v, min, max);
    *out = (int)v;
    return 0;
}

int args_to_float(const char *s, const char *what, double min, double max, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return err_set("%s: expected a number, got '%s'", what, s);
    if (v < min || v > max)
        return err_set("%s: %g is out of range [%g, %g]", what, v, min, max);
    *out = (float)v;
    return 0;
}

int args_parse(int argc, char **argv, const ArgSpec *specs, int nspecs, ArgResult *out) {
    memset(out, 0, sizeof *out);
    out->positional = xcalloc((size_t)argc + 1, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { out->help = 1; continue; }
        if (strncmp(a, "--", 2) != 0) { out->positional[out->npositional++] = argv[i]; continue; }
        const ArgSpec *s = NULL;
        for (int k = 0; k < nspecs; k++)
            if (!strcmp(a, specs[k].name)) s = &specs[k];
        if (!s) return err_set("unknown option '%s' (see --help)", a);
        if (s->type == ARG_FLAG) { *(int *)s->target = 1; continue; }
        if (i + 1 >= argc) return err_set("option %s needs a value", a);
        const char *v = argv[++i];
        switch (s->type) {
        case ARG_STRING: *(const char **)s->target = v; break;
        case ARG_INT: if (args_to_int(v, a, s->min, s->max, s->target)) return -1; break;
        case ARG_FLOAT: if (args_to_float(v, a, s->min, s->max, s->target)) return -1; break;
        case ARG_FLAG: break;
        }
    }
    return 0;
}

void args_result_free(ArgResult *r) {
    free(r->positional);
    r->positional = NULL;
}

void args_usage(FILE *out, const char *usage_line, const ArgSpec *specs, int nspecs) {
    fprintf(out, "usage: loralab %s\n\noptions:\n", usage_line);
    for (int k = 0; k < nspecs; k++) {
        const char *meta = specs[k].type == ARG_FLAG ? "" : specs[k].type == ARG_STRING ? " S" : " N";
        char left[64];
        snprintf(left, sizeof left, "%s%s", specs[k].name, meta);
        fprintf(out, "  %-22s %s\n", left, specs[k].help);
    }
    fprintf(out, "  %-22s %s\n", "--help", "this message");
}
