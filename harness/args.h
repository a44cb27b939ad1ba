// harness/args.h — checked command-line flag parsing shared by every verb.
//
// A verb declares its flags in a table; args_parse fills the targets, rejects unknown flags,
// missing values and values out of range with one message (err_set) naming the flag.
// Positional arguments and `key=value` overrides are collected in order for the verb.
#ifndef LORALAB_ARGS_H
#define LORALAB_ARGS_H

#include <stdio.h>

typedef enum { ARG_STRING, ARG_INT, ARG_FLOAT, ARG_FLAG } ArgType;

typedef struct {
    const char *name;    // "--checkpoint"
    ArgType type;
    void *target;        // const char **, int *, float *, int * (flag: set to 1)
    double min, max;     // ARG_INT / ARG_FLOAT range, inclusive
    const char *help;    // one line for --help
} ArgSpec;

typedef struct {
    int help;             // --help / -h was given
    int npositional;
    char **positional;    // arguments not starting with "--" (points into argv)
} ArgResult;

// Parses argv[1..argc) (argv[0] is the verb). Returns 0, or -1 with err_set().
int args_parse(int argc, char **argv, const ArgSpec *specs, int nspecs, ArgResult *out);
void args_result_free(ArgResult *r);
// Prints "usage: loralab <usage_line>" and one line per flag to out.
void args_usage(FILE *out, const char *usage_line, const ArgSpec *specs, int nspecs);
// Checked conversions: whole string must parse and lie in [min, max]. 0 or -1 (err_set
// names `what`).
int args_to_int(const char *s, const char *what, double min, double max, int *out);
int args_to_float(const char *s, const char *what, double min, double max, float *out);

#endif
