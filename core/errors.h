// core/errors.h — the two error policies of loralab.
//
// 1. Programming errors in math code (bad dimensions, NULL where a tensor is required) are
//    bugs: LAB_ASSERT aborts with the expression, function, file and line.
// 2. Everything else returns a status up the stack: err_set() or err_raise() records one
//    message and its class and returns -1; nothing below main() exits. Only main()
//    (harness/main.c) turns a class into an exit status; it prints "loralab: <message>".
#ifndef LORALAB_ERRORS_H
#define LORALAB_ERRORS_H

#include <stdio.h>
#include <stdlib.h>

// What kind of failure the current message describes.
typedef enum {
    ERR_INPUT = 1,   // usage or input: flags, files, checkpoints, YAML, SQLite, the environment
    ERR_RUN,         // an experiment (training, pretraining) failed
    ERR_TOOL,        // an external program (gnuplot) is missing or failed
    ERR_INTERNAL,    // the system under loralab failed (pipe, fork, wait)
} ErrClass;

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

// Records one error message (printf-style) of class ERR_INPUT, the class of anything touching
// the outside world, for the caller to report; returns -1 so that callers can write
// `return err_set(...)`. A later err_set or err_raise overwrites an earlier one.
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// As err_set, with another class.
int err_raise(ErrClass cls, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prefixes the current message with "<prefix>: " (adds context on the way up) and keeps its
// class; returns -1.
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The current message ("" if none).
const char *err_msg(void);
// The class of the current message (ERR_INPUT if none was recorded).
ErrClass err_class(void);

#endif
