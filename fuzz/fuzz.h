// fuzz/fuzz.h — shared by the libFuzzer targets (fuzz/fuzz_*.c, built by `make fuzz`).
// Loaders that read files get the fuzzer's bytes through a private scratch directory.
#ifndef LORALAB_FUZZ_H
#define LORALAB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// A directory of this process, made on first use: /tmp/loralab-fuzz-XXXXXX.
static const char *fuzz_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/loralab-fuzz-XXXXXX");
        if (!mkdtemp(dir)) { perror("mkdtemp"); abort(); }
    }
    return dir;
}

// Writes n bytes to fuzz_dir()/rel, making its parent directories; returns the full path
// in a static buffer of its own per call site's `buf`.
static void fuzz_write(const char *rel, const uint8_t *data, size_t n, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", fuzz_dir(), rel);
    for (char *p = path + strlen(fuzz_dir()) + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(path, 0700); *p = '/'; }
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(path); abort(); }
}

// A NUL-terminated copy of the input (the caller frees).
static char *fuzz_text(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = 0;
    return s;
}

#endif
