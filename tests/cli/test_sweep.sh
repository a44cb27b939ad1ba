# tests/cli/test_sweep.sh — sweep and run end to end on nano runs over a tiny GLUE-format
# data set (tests/fixtures/sst2_tiny, no `make data` needed): dry run, config errors, an
# injected crash failing only its run, NaN, resume after kill -9 with every run done exactly
# once, then query, report and plot on the result.
FIX=$(cd "$(dirname "$LORALAB")/.." && pwd)/tests/fixtures
"$LORALAB" init --preset nano --seed 1 --out "$TMP/base" >/dev/null
cat > "$TMP/s.yaml" <<YAML
name: clitest
base: {checkpoint: $TMP/base}
task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 32}
train: {steps: 6, batch: 4, lr: 1.0e-3, eval_every: 3}
variants:
  - {method: lora, lora.rank: 2}
  - {method: ft}
  - {method: bitfit}
  - {method: adapter_h, adapter.rank: 4}
  - {method: prefix_embed, prefix.lp: 4}
grid:
  seed: [1, 2]
YAML
DB="$TMP/r/loralab.db"
q() { "$LORALAB" query --db "$DB" --csv "$1" | tr -d '\r' | tail -n +2; }
# waits (up to 10 s) until database $1 has $2 runs running
wait_running() {
  for i in $(seq 1 100); do
    n=$("$LORALAB" query --db "$1" --csv "SELECT count(*) FROM runs WHERE status='running'" 2>/dev/null | tr -d '\r' | tail -1)
    [ "$n" = "$2" ] && return; sleep 0.1
  done
}

# dry run: 10 runs, nothing written
expect_out "^10$" sh -c "'$LORALAB' sweep '$TMP/s.yaml' --db '$DB' --dry-run | grep -c 'seed=[12]$'"
[ ! -e "$DB" ] && _report ok || _report fail "dry run created the database"

# config errors: file:line:column, exit 2, before any run
expect_fail 2 "bad_rank_zero.yaml:1:14: lora.rank: expected an integer >= 1, got 0" \
  "$LORALAB" sweep "$FIX/sweeps/bad_rank_zero.yaml" --db "$DB"
expect_fail 2 "override 'lora.rank=x'" "$LORALAB" sweep "$TMP/s.yaml" --db "$DB" lora.rank=x
expect_fail 2 "unknown option '--jbos'" "$LORALAB" sweep "$TMP/s.yaml" --jbos 2
expect_fail 2 "expands to 10 runs" "$LORALAB" run "$TMP/s.yaml" --db "$DB"

# an injected crash (abort) in the seed-2 runs fails those runs only
LORALAB_FAULT=abort:2 "$LORALAB" sweep "$TMP/s.yaml" --db "$DB" --jobs 2 >/dev/null 2>&1
rc=$?
[ $rc -eq 1 ] && _report ok || _report fail "a sweep with failed runs should exit 1, got $rc"
expect_out "^5$" q "SELECT count(*) FROM runs WHERE status='done'"
expect_out "^5$" q "SELECT count(*) FROM runs WHERE status='failed' AND error LIKE 'crashed: signal 6%' AND seed=2"
# a second sweep skips what is done; --retry-failed reruns the failed ones
"$LORALAB" sweep "$TMP/s.yaml" --db "$DB" --jobs 2 >/dev/null 2>&1
expect_out "^5$" q "SELECT count(*) FROM runs WHERE status='failed'"
"$LORALAB" sweep "$TMP/s.yaml" --db "$DB" --jobs 2 --retry-failed >/dev/null 2>&1
expect_out "^10$" q "SELECT count(*) FROM runs WHERE status='done'"
expect_out "^0$" q "SELECT count(*) FROM (SELECT 1 FROM metrics GROUP BY run_id, split, name, step HAVING count(*) > 1)"
# every done run has test... (GLUE: validation) metrics, parameters, memory and an adapter
expect_out "^10$" q "SELECT count(DISTINCT run_id) FROM metrics WHERE split='validation' AND name='accuracy'"
expect_out "^0$" q "SELECT count(*) FROM runs WHERE trainable_params IS NULL OR bytes_grads IS NULL OR adapter_bytes IS NULL"
expect_out "^10$" q "SELECT count(*) FROM artifacts WHERE kind='adapter' AND length(sha256)=64"
# LoRA's adapter holds its tensors only: far smaller than FT's
expect_out "^1$" q "SELECT (SELECT max(adapter_bytes) FROM runs WHERE method='lora') * 10 < (SELECT min(adapter_bytes) FROM runs WHERE method='ft')"
# the adapter is a classification adapter: eval-lm, which measures a language-model loss, refuses it
adapter=$(q "SELECT path FROM artifacts a JOIN runs r ON r.id=a.run_id WHERE r.method='lora' LIMIT 1")
printf 'a small test of the adapter\n' > "$TMP/t.txt"
expect_fail 2 "a classification adapter (head cls); this needs a language-model adapter" "$LORALAB" eval-lm --checkpoint "$TMP/base" --adapter "$adapter" --text "$TMP/t.txt"

# NaN: a learning rate that blows up fails that run with the reason
LORALAB_FAULT=nan:3 "$LORALAB" run "$TMP/s.yaml" --db "$DB" method=ft seed=3 >/dev/null 2>&1
[ $? -eq 1 ] && _report ok || _report fail "a failed run should exit 1"
expect_out "^loss became NaN at step 1$" q "SELECT error FROM runs WHERE seed=3"

# resume after kill -9 of the sweep's main process: workers die with it, the next sweep
# finishes the rest, every run done exactly once, no duplicated metric rows
DB2="$TMP/k/loralab.db"
"$LORALAB" sweep "$TMP/s.yaml" --db "$DB2" --jobs 2 train.steps=400 train.eval_every=100 >/dev/null 2>&1 &
main=$!
wait_running "$DB2" 2
sleep 0.5
kill -9 $main; wait $main 2>/dev/null
sleep 0.5
orphans=$(pgrep -f "$DB2" | wc -l)
[ "$orphans" -eq 0 ] && _report ok || _report fail "$orphans worker(s) outlived the killed sweep"
expect_out "^2$" sh -c "'$LORALAB' query --db '$DB2' --csv \"SELECT count(*) FROM runs WHERE status='running'\" | tr -d '\r' | tail -1"
"$LORALAB" sweep "$TMP/s.yaml" --db "$DB2" --jobs 2 train.steps=400 train.eval_every=100 >/dev/null 2>&1
DB=$DB2
expect_out "^10$" q "SELECT count(*) FROM runs WHERE status='done'"
expect_out "^2$" q "SELECT count(*) FROM runs WHERE attempts=2"
expect_out "^0$" q "SELECT count(*) FROM (SELECT 1 FROM metrics GROUP BY run_id, split, name, step HAVING count(*) > 1)"
expect_out "^40$" q "SELECT count(*) FROM metrics WHERE split='validation' AND name='accuracy'"

# query, report and plot on the finished sweep
expect_out "^method +config +trainable" "$LORALAB" report methods --sweep clitest --db "$DB2"
expect_out "Wq,Wv" "$LORALAB" report table6 --sweep clitest --db "$DB2"
expect_ok "$LORALAB" plot all --sweep clitest --db "$DB2" --out "$TMP/plots"
for f in params-glue-sst2 curves-1; do
  [ -s "$TMP/plots/$f.png" ] && [ -s "$TMP/plots/$f.svg" ] && [ -s "$TMP/plots/$f.gp" ] && _report ok || _report fail "plot $f missing"
done
# --runs: only the runs a selector matches, in one overlay
expect_out "^$TMP/plots_sel/curves-sweep-clitest-seed_1.png$" "$LORALAB" plot curves --sweep clitest --runs 'seed=1' --db "$DB2" --out "$TMP/plots_sel"
[ "$(grep -o "title 'run [0-9]*: [a-z_]*[^']*, seed 1'" "$TMP/plots_sel/curves-sweep-clitest-seed_1.gp" | wc -l)" = 5 ] && grep -q ', seed 1' "$TMP/plots_sel/curves-sweep-clitest-seed_1.gp" && ! grep -q ', seed 2' "$TMP/plots_sel/curves-sweep-clitest-seed_1.gp" && _report ok || _report fail "plot --runs seed=1: not the seed-1 runs alone"
expect_fail 2 "run selector 'lora.rank=64' matches no run" "$LORALAB" plot curves --sweep clitest --runs 'lora.rank=64' --db "$DB2"

# a GPU request on a machine (or build) without one: exit 2 before any run, nothing recorded
if [ "$("$LORALAB" --version | grep -c '^gpu:')" = 0 ]; then
  expect_fail 2 "this sweep asks for a GPU" "$LORALAB" sweep "$TMP/s.yaml" --db "$TMP/gpu/loralab.db" device=cuda
  [ ! -e "$TMP/gpu/loralab.db" ] && _report ok || _report fail "a refused GPU sweep created its database"
fi

# editing a sweep file changes its membership: runs dropped from it stay in the database,
# unlinked; runs it still lists are found done and not rerun (a run without overrides: the
# file alone says what the sweep holds)
sed '/method: ft}/d; /method: bitfit}/d; /method: adapter_h/d; /method: prefix_embed/d' "$TMP/s.yaml" > "$TMP/s2.yaml"
sed 's/steps: 6, batch: 4, lr: 1.0e-3, eval_every: 3/steps: 400, batch: 4, lr: 1.0e-3, eval_every: 100/' "$TMP/s2.yaml" > "$TMP/s2b.yaml"
expect_ok "$LORALAB" sweep "$TMP/s2b.yaml" --db "$DB2"
expect_out "^2$" q "SELECT count(*) FROM sweep_runs JOIN sweeps s ON s.id = sweep_id WHERE s.name = 'clitest'"
expect_out "^10$" q "SELECT count(*) FROM runs WHERE status = 'done' AND attempts <= 2"

# on another base too, the classification adapter is refused for its head first, exit 2
"$LORALAB" init --preset micro --seed 1 --out "$TMP/micro" >/dev/null
expect_fail 2 "a classification adapter (head cls)" "$LORALAB" eval-lm --checkpoint "$TMP/micro" --adapter "$adapter" --text "$TMP/t.txt"

# Ctrl-C (SIGINT) stops the workers, marks their runs interrupted, keeps what is done;
# the next sweep finishes the rest
DB3="$TMP/i/loralab.db"
"$LORALAB" sweep "$TMP/s.yaml" --db "$DB3" --jobs 2 train.steps=400 train.eval_every=100 >/dev/null 2>&1 &
main=$!
wait_running "$DB3" 2
kill -INT $main; wait $main; rc=$?
[ $rc -eq 130 ] && _report ok || _report fail "a sweep stopped by SIGINT should exit 130, got $rc"
DB=$DB3
# every run that had started is interrupted (with the reason) or, had it finished in the
# instant before the signal, done; at least one was interrupted, none is left running
expect_out "^[12]$" q "SELECT count(*) FROM runs WHERE status='interrupted' AND error LIKE 'interrupted%'"
expect_out "^1$" q "SELECT sum(status IN ('interrupted', 'done')) = count(*) FROM runs WHERE attempts >= 1"
expect_out "^0$" q "SELECT count(*) FROM runs WHERE status='running'"
"$LORALAB" sweep "$TMP/s.yaml" --db "$DB3" --jobs 2 train.steps=400 train.eval_every=100 >/dev/null 2>&1
expect_out "^10$" q "SELECT count(*) FROM runs WHERE status='done'"

# a sweep file's analyze: block runs once every run is done (here Table 7 for each LoRA run)
{ cat "$TMP/s2.yaml"; printf 'analyze:\n  amplification:\n    runs: {}\n  plot: false\n'; } > "$TMP/s3.yaml"
DB=$TMP/a/loralab.db
expect_ok "$LORALAB" sweep "$TMP/s3.yaml" --db "$DB" --jobs 2
expect_out "^2$" q "SELECT count(DISTINCT run) FROM analysis_amplification"
expect_out "^8$" q "SELECT count(*) FROM analysis_amplification"   # 2 runs x 2 layers x (q, v)

# bf16 mixed precision end to end: the same LoRA run in fp32 and bf16 gets two run keys (the
# fp32 one unchanged by the key's existence), the bf16 run stores 2 bytes less per frozen
# block-weight element (nano: 98,304 elements, 196,608 bytes) and reports as "... bf16".
cat > "$TMP/p.yaml" <<YAML
name: precision
base: {checkpoint: $TMP/base}
task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 32}
train: {steps: 4, batch: 4, lr: 1.0e-3}
method: lora
grid:
  train.precision: [fp32, bf16]
YAML
PDB="$TMP/p/loralab.db"
expect_ok "$LORALAB" sweep "$TMP/p.yaml" --db "$PDB"
expect_out '^196608$' sh -c "'$LORALAB' query --db '$PDB' --csv \"SELECT (SELECT bytes_weights FROM runs WHERE config NOT LIKE '%bf16%') - (SELECT bytes_weights FROM runs WHERE config LIKE '%\\\"precision\\\":\\\"bf16\\\"%')\" | tr -d '\r' | tail -1"
expect_out '^0$' sh -c "'$LORALAB' query --db '$PDB' --csv \"SELECT count(*) FROM runs WHERE config LIKE '%precision%fp32%'\" | tr -d '\r' | tail -1"
expect_out 'Wq,Wv r=8 bf16 ' "$LORALAB" report methods --db "$PDB" --sweep precision
