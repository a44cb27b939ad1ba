// fuzz/fuzz.h — shared by the libFuzzer targets (fuzz/fuzz_*.c, built by `make fuzz`).
// Loaders that read files get the fuzzer's bytes through a private scratch directory in memory.
#ifndef LORALAB_FUZZ_H
#define LORALAB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"

static char fuzz_dir_path[64];

static inline void fuzz_dir_remove(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
}

// A directory of this process, made on first use and removed when it exits normally: in
// memory (/dev/shm/loralab-fuzz-XXXXXX) where there is a /dev/shm, else /tmp. Rewriting a
// file on a disk file system costs a block flush per input (ext4 flushes a file truncated
// and written again at close), which held the file-reading targets to a few inputs/s.
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/dev/shm/loralab-fuzz-XXXXXX");
        if (!mkdtemp(fuzz_dir_path)) {
            snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/tmp/loralab-fuzz-XXXXXX");
            if (!mkdtemp(fuzz_dir_path)) { perror("mkdtemp"); abort(); }
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

// Writes n bytes to fuzz_dir()/rel, making its parent directories the first time; the full
// path goes to path[cap].
static inline void fuzz_write(const char *rel, const uint8_t *data, size_t n, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", fuzz_dir(), rel);
    FILE *f = fopen(path, "wb");
    if (!f) {
        for (char *p = path + strlen(fuzz_dir()) + 1; *p; p++)
            if (*p == '/') { *p = 0; mkdir(path, 0700); *p = '/'; }
        f = fopen(path, "wb");
    }
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(path); abort(); }
}

// A NUL-terminated copy of the input (the caller frees).
static inline char *fuzz_text(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = 0;
    return s;
}

#endif
