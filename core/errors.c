// core/errors.c — error message buffer and checked allocation. See errors.h.
#include "errors.h"

#include <stdarg.h>
#include <string.h>

static char err_buffer[4096];
static ErrClass err_current = ERR_INPUT;

void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "loralab: out of memory allocating %zu bytes\n", bytes); abort(); }
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) { fprintf(stderr, "loralab: out of memory allocating %zu x %zu bytes\n", count, size); abort(); }
    return p;
}

void *xrealloc(void *ptr, size_t bytes) {
    void *p = realloc(ptr, bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "loralab: out of memory reallocating %zu bytes\n", bytes); abort(); }
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

// The arguments may quote err_msg(): the message is formatted aside first.
static int err_record(ErrClass cls, const char *fmt, va_list ap) {
    char msg[sizeof err_buffer];
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(err_buffer, msg, sizeof err_buffer);
    err_current = cls;
    return -1;
}

int err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_record(ERR_INPUT, fmt, ap);
    va_end(ap);
    return -1;
}

int err_raise(ErrClass cls, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_record(cls, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(const char *fmt, ...) {
    char old[sizeof err_buffer];
    memcpy(old, err_buffer, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err_buffer, sizeof err_buffer, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof err_buffer - 3) return -1;   // prefix alone fills the buffer
    size_t used = (size_t)n;
    memcpy(err_buffer + used, ": ", 2);
    used += 2;
    size_t room = sizeof err_buffer - used - 1, len = strlen(old);
    if (len > room) len = room;
    memcpy(err_buffer + used, old, len);
    err_buffer[used + len] = '\0';
    return -1;
}

const char *err_msg(void) { return err_buffer; }

ErrClass err_class(void) { return err_current; }
