# tests/cli/test_quickstart.sh — the quickstart of `make run` (sourced by tests/cli/run.sh):
# its sweep file trains on the committed base, pinned by content, with a tuned learning rate
# and early stopping, and runs as many runs as its comment says; README.md's quickstart
# results are what scripts/results_readme.sh prints on the committed results/quickstart.db (and
# its bf16 block on results/bf16.db).
ROOT=$(cd "$(dirname "$LORALAB")/.." && pwd)
QS=$ROOT/experiments/quickstart.yaml

# the base is results/bases/micro-v2 with its sha256 (checked at --dry-run), nothing pretrained
expect_ok grep -q '^base: {checkpoint: results/bases/micro-v2,$' "$QS"
pin=$(sed -n 's/^ *sha256: \([0-9a-f]\{64\}\)}$/\1/p' "$QS")
expect_out "^$pin  " sha256sum "$ROOT/results/bases/micro-v2/model.safetensors"
(cd "$ROOT" && "$LORALAB" sweep experiments/quickstart.yaml --dry-run) > "$TMP/qs_dry" 2>&1 && _report ok || _report fail "quickstart dry run: $(cat "$TMP/qs_dry")"
grep -q pretrain "$QS" && _report fail "quickstart.yaml pretrains a base" || _report ok
# the learning rate tuned on validation, early stopping
expect_ok grep -q '^  train.lr: \[' "$QS"
expect_ok grep -q '^  by: validation$' "$QS"
expect_ok grep -q 'patience: [1-9]' "$QS"
# the run count the comment states: tuning runs + the grid's runs not already a tuning run
tuning=$(sed -n 's/^tune: .*: \([0-9]*\) tuning runs;.*$/\1/p' "$TMP/qs_dry")
grid=$(sed -n 's/^sweep quickstart: \([0-9]*\) runs .*$/\1/p' "$TMP/qs_dry")
variants=$(sed -n 's/^tune: .* on \([0-9]*\) variants:.*$/\1/p' "$TMP/qs_dry")
total=$((tuning + grid - variants))   # tuning seed 1 is also a grid seed: reused per variant
expect_ok grep -q "= $total runs" "$QS"
# README describes the sweep as it is
expect_ok grep -q "experiments/quickstart.yaml ($total runs)" "$ROOT/README.md"
grep -qi 'make run.*pretrain' "$ROOT/README.md" && _report fail "README says make run pretrains" || _report ok

# README's result blocks are generated: each command and its verbatim output on the committed
# database (run on a copy, so that the committed file is never written)
check_results_block() {   # BLOCK DB
  local block=$1 db=$2
  if [ ! -f "$ROOT/results/$db" ]; then
    skip_test "results/$db is not committed: README's $block block cannot be checked"
    return
  fi
  rm -rf "$TMP/rb" && mkdir -p "$TMP/rb/results"
  cp "$ROOT/results/$db" "$TMP/rb/results/"
  (cd "$TMP/rb" && LORALAB="$LORALAB" bash "$ROOT/scripts/results_readme.sh" "$block") > "$TMP/rb_block" 2>&1
  sed -n "/^<!-- $block:begin/,/^<!-- $block:end/p" "$ROOT/README.md" | sed '1d;$d' > "$TMP/rb_readme"
  [ -s "$TMP/rb_block" ] && cmp -s "$TMP/rb_block" "$TMP/rb_readme" && _report ok ||
    _report fail "README.md's $block block differs from scripts/results_readme.sh $block's output (rerun it with --write README.md): $(diff "$TMP/rb_readme" "$TMP/rb_block" | head -20)"
}
check_results_block quickstart quickstart.db
check_results_block bf16 bf16.db
