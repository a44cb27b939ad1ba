# tests/cli/lib.sh — helpers for CLI tests (sourced by tests/cli/run.sh).
# expect_ok CMD...                       CMD exits 0
# expect_out PATTERN CMD...              CMD exits 0 and stdout matches the grep -E PATTERN
# expect_fail STATUS MESSAGE CMD...      CMD exits STATUS and stderr contains MESSAGE (fixed string)
#                                        in exactly one line, and no "AddressSanitizer"/"runtime error"
# skip_test REASON                       the rest of this file cannot run here: says why in one
#                                        line; the file counts as skipped, never as passed
FAILS=0; CHECKS=0; SKIPS=0; SKIPPED=""
skip_test() { SKIPPED="$*"; }
_report() { CHECKS=$((CHECKS+1)); if [ "$1" = ok ]; then :; else FAILS=$((FAILS+1)); echo "FAIL [$CURRENT_TEST]: $2"; fi; }
expect_ok() {
  local out; out=$("$@" 2>&1); local rc=$?
  [ $rc -eq 0 ] && _report ok || _report fail "exit $rc from: $* :: $out"
}
expect_out() {
  local pat=$1; shift
  local out; out=$("$@" 2>/tmp/cli_err.$$); local rc=$?
  if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -Eq -- "$pat"; then _report ok
  else _report fail "expected /$pat/ (exit 0) from: $* :: exit $rc, out: $out, err: $(cat /tmp/cli_err.$$)"; fi
}
expect_fail() {
  local want=$1 msg=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [ $rc -ne "$want" ]; then _report fail "expected exit $want, got $rc from: $* :: $err"; return; fi
  if ! printf '%s\n' "$err" | grep -Fq -- "$msg"; then _report fail "expected message '$msg' from: $* :: got: $err"; return; fi
  if printf '%s\n' "$err" | grep -Eq "AddressSanitizer|runtime error|Segmentation"; then _report fail "sanitizer/crash output from: $*"; return; fi
  _report ok
}
# lora_sweep_file NAME SEEDS [STEPS]: a LoRA sweep over the given seeds on the tiny GLUE fixture
# ($FIX/sst2_tiny), on the nano base at $TMP/base (the calling test writes both)
lora_sweep_file() {
  cat <<YAML
name: $1
base: {checkpoint: $TMP/base}
task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 32}
train: {steps: ${3:-30}, batch: 4, lr: 1.0e-3, eval_every: 10}
method: lora
grid:
  seed: [$2]
YAML
}
# query_rows DB SQL: the CSV rows of a query, without its header
query_rows() { "$LORALAB" query --db "$1" --csv "$2" | tr -d '\r' | tail -n +2; }
