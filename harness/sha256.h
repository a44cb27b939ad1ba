// harness/sha256.h — SHA-256 (FIPS 180-4), used for config hashes and artifact hashes.
//
// Streaming: sha256_init, any number of sha256_update, sha256_final. The context is a plain
// struct owned by the caller; nothing is allocated.
#ifndef LORALAB_SHA256_H
#define LORALAB_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t bytes;          // message length so far
    uint8_t block[64];       // pending partial block
    size_t fill;             // bytes in block
} Sha256;

void sha256_init(Sha256 *ctx);
void sha256_update(Sha256 *ctx, const void *data, size_t len);
void sha256_final(Sha256 *ctx, uint8_t digest[32]);
// One-shot: lowercase hex digest of data (65 bytes with the terminating NUL).
void sha256_hex(const void *data, size_t len, char hex[65]);
// Lowercase hex of a finished digest.
void sha256_to_hex(const uint8_t digest[32], char hex[65]);
// Hex digest of a whole file; 0, or -1 with err_set() naming the file.
int sha256_file_hex(const char *path, char hex[65]);

#endif
