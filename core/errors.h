// core/errors.h — the two error policies of loralab.
//
// 1. Programming errors in math code (bad dimensions, NULL where a tensor is required) are
//    bugs: LAB_ASSERT aborts with the expression, function, file and line.
// 2. Anything touching the outside world (files, checkpoints, flags, YAML, SQLite) returns a
//    status up the stack: err_set() records one message and returns -1; main() prints
//    "loralab: <message>" and exits with status 2 (EXIT_INPUT).
#ifndef LORALAB_ERRORS_H
#define LORALAB_ERRORS_H

#include <stdio.h>
#include <stdlib.h>

enum { EXIT_OK = 0, EXIT_RUN_FAILED = 1, EXIT_INPUT = 2 };

#define LAB_ASSERT(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "loralab: internal error: assertion '%s' failed in %s (%s:%d)\n", \
                    #cond, __func__, __FILE__, __LINE__);                                  \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

// Allocation failure is fatal everywhere: there is nothing sensible to unwind to.
void *xmalloc(size_t bytes);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t bytes);
char *xstrdup(const char *s);

// Records one error message (printf-style) for the caller to report; returns -1 so that
// callers can write `return err_set(...)`. A later err_set overwrites an earlier one.
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Prefixes the current message with "<prefix>: " (adds context on the way up); returns -1.
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The current message ("" if none).
const char *err_msg(void);
// Prints "loralab: <message>" to stderr and exits with status 2.
_Noreturn void err_exit(void);

#endif
