# tests/cli/test_rigor.sh — the harness's rigor on nano runs: tune: blocks (pick by validation,
# ties to the smaller value, tuning runs reused), early stopping and the stored stop reason,
# the statistics in reports (n, 95% t interval, paired comparisons, Holm, CSV/JSON), honest
# run sets, and the pipeline behind the numbers: the test metric comes from the restored
# best-validation state, a learnable fixture beats its majority class, a run is a function
# of its config.
#
# tests/fixtures/keyword3 is a 3-class task in GLUE MNLI format whose label is spelled by
# sentence2 (yes / maybe / no) after random filler: learnable by a nano model in a few dozen
# steps. Its test split (dev_mismatched.tsv) is a copy of its validation split
# (dev_matched.tsv), so the test accuracy of the best state must equal the validation
# accuracy recorded at best_step.
FIX=$(cd "$(dirname "$LORALAB")/.." && pwd)/tests/fixtures
"$LORALAB" init --preset nano --seed 1 --out "$TMP/base" >/dev/null
q() { "$LORALAB" query --db "$1" --csv "$2" | tr -d '\r' | tail -n +2; }
# rq_exact FILE CMD...: CMD exits 0 and prints exactly the contents of FILE.
rq_exact() {
  local want=$1; shift
  "$@" >"$TMP/rq_out" 2>"$TMP/rq_err"; local rc=$?
  if [ $rc -eq 0 ] && cmp -s "$want" "$TMP/rq_out"; then _report ok
  else _report fail "exit $rc from: $* :: diff want got: $(diff "$want" "$TMP/rq_out" | head -30) :: err: $(cat "$TMP/rq_err")"; fi
}

# ---- the pipeline: best state restored, beats the majority class, deterministic ----
cat > "$TMP/k.yaml" <<YAML
name: keyword
base: {checkpoint: $TMP/base}
task: {name: glue-mnli, path: $FIX/keyword3, max_len: 32}
train: {steps: 40, batch: 8, lr: 1.0e-3, eval_every: 4}
method: ft
YAML
K1=$TMP/k1/loralab.db; K2=$TMP/k2/loralab.db
expect_ok "$LORALAB" run "$TMP/k.yaml" --db "$K1" --threads 1
# best_step is the first step with the highest validation accuracy, and not the last step
best="SELECT CAST(value AS INTEGER) FROM metrics WHERE split='test' AND name='best_step'"
argmax="SELECT step FROM metrics WHERE split='validation' AND name='accuracy' ORDER BY value DESC, step ASC LIMIT 1"
expect_out "^1$" q "$K1" "SELECT ($best) = ($argmax)"
expect_out "^1$" q "$K1" "SELECT ($best) < 40"
# the test accuracy is the validation accuracy at best_step (same examples), not the last one's
val_at="SELECT value FROM metrics WHERE split='validation' AND name='accuracy' AND step"
expect_out "^1$" q "$K1" "SELECT (SELECT value FROM metrics WHERE split='test' AND name='accuracy') = ($val_at = ($best))"
expect_out "^1$" q "$K1" "SELECT (SELECT value FROM metrics WHERE split='test' AND name='accuracy') != ($val_at = 40)"
expect_out "^1$" q "$K1" "SELECT (SELECT step FROM metrics WHERE split='test' AND name='accuracy') = ($best)"
# it learns: test accuracy at least 0.15 above the majority class (0.333 on 60 balanced examples)
expect_out "^0.333$" q "$K1" "SELECT round(value, 3) FROM metrics WHERE split='test' AND name='baseline_accuracy'"
expect_out "^1$" q "$K1" "SELECT (SELECT value FROM metrics WHERE split='test' AND name='accuracy') >= 0.15 + (SELECT value FROM metrics WHERE split='test' AND name='baseline_accuracy')"
# ran to the cap: stop step 40, reason cap
expect_out "^40,cap$" q "$K1" "SELECT stop_step, stop_reason FROM runs"
# deterministic: the same config and seed in another database give every metric identically
expect_ok "$LORALAB" run "$TMP/k.yaml" --db "$K2" --threads 1
metrics="SELECT r.hash, m.step, m.split, m.name, printf('%.17g', m.value) FROM metrics m JOIN runs r ON r.id = m.run_id ORDER BY 1, 2, 3, 4"
q "$K1" "$metrics" > "$TMP/m1"; q "$K2" "$metrics" > "$TMP/m2"
[ -s "$TMP/m1" ] && cmp -s "$TMP/m1" "$TMP/m2" && _report ok || _report fail "the same run twice gave different metrics: $(diff "$TMP/m1" "$TMP/m2" | head -5)"

# ---- early stopping: train.patience validations without improvement end the run ----
expect_ok "$LORALAB" run "$TMP/k.yaml" --db "$K1" --threads 1 train.steps=400 train.patience=2
# stopped by patience before the cap, two validations (8 steps) after its best step
expect_out "^patience,1,1$" q "$K1" "SELECT stop_reason, stop_step < 400, stop_step = (SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = runs.id AND split='test' AND name='best_step') + 8 FROM runs WHERE config LIKE '%patience%'"
expect_fail 2 "train.patience: 2 needs validations during training: set train.eval_every > 0" \
  "$LORALAB" run "$TMP/k.yaml" --db "$K1" train.patience=2 train.eval_every=0
# a run that fails records where: a NaN at step 1
LORALAB_FAULT=nan:7 "$LORALAB" run "$TMP/k.yaml" --db "$K1" --threads 1 seed=7 >/dev/null 2>&1
expect_out "^failed,1,failure$" q "$K1" "SELECT status, stop_step, stop_reason FROM runs WHERE seed = 7"

# ---- tune: the quickstart's grid on nano runs: 3 variants x 2 learning rates on tuning seed 1,
# then seeds 1-3 at each variant's pick; seed 1 at the picked rate is a tuning run already ----
cat > "$TMP/t.yaml" <<YAML
name: quick
base: {checkpoint: $TMP/base}
task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 32}
train: {steps: 6, batch: 4, eval_every: 3}
variants:
  - {method: lora, lora.targets: [q, v], lora.rank: 2}
  - {method: lora, lora.targets: [q, k, v, o], lora.rank: 2}
  - {method: bitfit}
grid:
  seed: [1, 2, 3]
tune:
  train.lr: [1.0e-2, 1.0e-3]
  seeds: [1]
  by: validation
YAML
T=$TMP/t/loralab.db
expect_out "^tune: 2 settings x 1 seeds on 3 variants: 6 tuning runs; then the 9 runs below" "$LORALAB" sweep "$TMP/t.yaml" --db "$T" --dry-run
"$LORALAB" sweep "$TMP/t.yaml" --db "$T" --jobs 2 --threads 1 2>"$TMP/t.err" >/dev/null
[ $? -eq 0 ] && _report ok || _report fail "tuned sweep failed: $(cat "$TMP/t.err")"
# the two LoRA variants tie at both rates: the smaller one wins though 1e-2 is listed first
cat > "$TMP/want" <<'EOF2'
sweep quick: tuning: 6 runs (0 done, 0 failed in the sweep), 6 to run now, 2 at a time, 1 thread each
sweep quick: tune: lora q,v r=2: picked train.lr=0.001 (validation accuracy 0.5625 at the best step, mean over 1 seed)
sweep quick: tune: lora q,k,v,o r=2: picked train.lr=0.001 (validation accuracy 0.5000 at the best step, mean over 1 seed)
sweep quick: tune: bitfit: picked train.lr=0.01 (validation accuracy 0.6875 at the best step, mean over 1 seed)
sweep quick: at the picked settings: 9 runs (6 done, 0 failed in the sweep), 6 to run now, 2 at a time, 1 thread each
sweep quick: 12 done, 0 failed, 0 interrupted this time; results in TDB (loralab status quick)
sweep quick: the database holds 12 done, 0 failed, 0 interrupted, 0 running, 0 pending
EOF2
sed -i "s|TDB|$T|" "$TMP/want"
grep -v ' settled ' "$TMP/t.err" > "$TMP/t.err2"
cmp -s "$TMP/want" "$TMP/t.err2" && _report ok || _report fail "tuned sweep messages: $(diff "$TMP/want" "$TMP/t.err2")"
# 6 tuning runs and 6 more, each trained once; a second sweep trains nothing
expect_out "^12,12,6,3$" q "$T" "SELECT (SELECT count(*) FROM runs WHERE attempts = 1), (SELECT count(*) FROM sweep_runs), (SELECT count(*) FROM sweep_tune), (SELECT sum(picked) FROM sweep_tune)"
"$LORALAB" sweep "$TMP/t.yaml" --db "$T" --jobs 2 2>"$TMP/t.err" >/dev/null
expect_out "^2$" grep -c "0 to run now" "$TMP/t.err"
expect_out "^12$" q "$T" "SELECT count(*) FROM runs WHERE attempts = 1"
cat > "$TMP/want" <<'EOF2'
tune: quick, validation accuracy at each run's best-validation step, mean over the tuning seeds; picked (*): the best, ties to the smaller value

method  config           setting         seeds  validation accuracy  best step  n  stopped  picked  not converged
------  ---------------  --------------  -----  -------------------  ---------  -  -------  ------  -------------
lora    Wq,Wv r=2        train.lr=0.01   1                   0.5625          6  1  cap              1 of 1
lora    Wq,Wv r=2        train.lr=0.001  1                   0.5625          6  1  cap      *       1 of 1
lora    Wq,Wk,Wv,Wo r=2  train.lr=0.01   1                   0.5000          3  1  cap
lora    Wq,Wk,Wv,Wo r=2  train.lr=0.001  1                   0.5000          3  1  cap      *
bitfit                   train.lr=0.01   1                   0.6875          6  1  cap      *       1 of 1
bitfit                   train.lr=0.001  1                   0.5000          3  1  cap
EOF2
rq_exact "$TMP/want" "$LORALAB" report tune --sweep quick --db "$T"
# methods: the picked rate, mean ± std, the 95% t interval (t(0.975, 2) = 4.303), n, marks
cat > "$TMP/want" <<'EOF2'
methods: glue-sst2, validation accuracy, mean ± std, 95% t interval over seeds

method  config           train.lr (tuned)  trainable  head  validation accuracy  95% CI           n  baseline  not converged
------  ---------------  ----------------  ---------  ----  -------------------  ---------------  -  --------  -------------
lora    Wq,Wv r=2        0.001                  1024   128  0.521 ± 0.036        [0.431, 0.610]   3         -  1 of 3
lora    Wq,Wk,Wv,Wo r=2  0.001                  2048   128  0.396 ± 0.180        [-0.052, 0.844]  3         -
bitfit                   0.01                   1472   128  0.562 ± 0.108        [0.294, 0.831]   3         -  1 of 3

not converged (*): 2 run(s) stopped at train.steps while their validation metric still improved (best at the last evaluation); a longer train.steps with train.patience lets them finish
left out: 3 tuning run(s) at settings not picked (loralab report tune --sweep quick)
EOF2
rq_exact "$TMP/want" "$LORALAB" report methods --sweep quick --db "$T"
# compare: one configuration against two, paired by seed, Holm over the two p-values
# (bitfit - lora q,k,v,o per seed: 0.1875, 0.3125, 0: t = 1.835 on 2 df, p = 0.2079)
cat > "$TMP/want" <<'EOF2'
compare: glue-sst2, validation accuracy, paired by seed: mean difference a - b, 95% t interval, paired t-test (two-sided), Holm-adjusted p over the comparisons

a                     b                                    pairs    mean a    mean b    a - b  95% CI                  t       p  p (Holm)
--------------------  -----------------------------------  -----  --------  --------  -------  ------------------  -----  ------  --------
bitfit train.lr=0.01  lora Wq,Wv r=2 train.lr=0.001            3  0.5625 *  0.5208 *  +0.0417  [-0.1376, +0.2209]  1.000  0.4226    0.4226
bitfit train.lr=0.01  lora Wq,Wk,Wv,Wo r=2 train.lr=0.001      3  0.5625 *    0.3958  +0.1667  [-0.2241, +0.5574]  1.835  0.2079    0.4158
not converged (*): the mean includes runs that stopped at train.steps while their validation metric still improved
EOF2
rq_exact "$TMP/want" "$LORALAB" report compare --sweep quick --db "$T" --a 'method=bitfit' --b 'method=lora'
printf 'task,metric,a,b,pairs,mean_a,mean_b,diff,ci_lo,ci_hi,t,p,not_converged_a,not_converged_b\r\nglue-sst2,validation accuracy,bitfit train.lr=0.01,"lora Wq,Wv r=2 train.lr=0.001",3,0.5625,0.52083333333333337,0.041666666666666664,-0.13761053040622737,0.22094386373956068,0.99999999999999989,0.42264973081037427,1,1\r\n' > "$TMP/want"
rq_exact "$TMP/want" "$LORALAB" report compare --sweep quick --db "$T" --a 'method=bitfit' --b 'method=lora lora.targets=q,v' --csv
printf '[{"task":"glue-sst2","method":"bitfit","config":"","train.lr":"0.01","trainable":1472,"head":128,"metric":"validation accuracy","mean":0.5625,"std":0.10825317547305482,"n":3,"ci_lo":0.29358420439065902,"ci_hi":0.83141579560934098,"not_converged":1,"baseline":null}]\n' > "$TMP/want"
rq_exact "$TMP/want" sh -c "'$LORALAB' report methods --sweep quick --db '$T' --json | sed 's/},{/}\n{/g' | grep bitfit | sed 's/^\[*/[/; s/\]*\$/]/'"
expect_out "cap 6 \* \(tuning\)" "$LORALAB" report runs --sweep quick --db "$T"
# selector and format errors: one message, exit 2
expect_fail 2 "report compare: --b 'lora.rnk=2': unknown key 'lora.rnk'" "$LORALAB" report compare --sweep quick --db "$T" --a method=bitfit --b lora.rnk=2
expect_fail 2 "report compare: --a matches 2 configurations and --b 2" "$LORALAB" report compare --sweep quick --db "$T" --a method=lora --b 'lora.rank=2'
expect_fail 2 "report compare: --b 'method=ft' matches no done run of sweep 'quick'" "$LORALAB" report compare --sweep quick --db "$T" --a method=bitfit --b method=ft
expect_fail 2 "report compare: give both --a and --b" "$LORALAB" report compare --sweep quick --db "$T" --a method=bitfit
expect_fail 2 "report: --csv and --json exclude each other" "$LORALAB" report methods --db "$T" --csv --json
expect_fail 2 "report tune: sweep 'keyword' has no tuning runs" "$LORALAB" report tune --sweep keyword --db "$K1"

# any config key may be tuned (here the LoRA rank, on two tuning seeds); the dry run lists
# the tuning runs, then the grid's runs that wait for the pick
cat > "$TMP/r.yaml" <<YAML
name: rank
base: {checkpoint: $TMP/base}
task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 32}
method: lora
grid:
  seed: [1, 2, 3]
tune:
  lora.rank: [4, 2]
  seeds: [1, 2]
YAML
"$LORALAB" sweep "$TMP/r.yaml" --dry-run | sed -E 's/^[0-9a-f]{12} /HASH/' > "$TMP/r.out"
cat > "$TMP/want" <<'EOF2'
sweep rank: 3 runs (3 combinations, 0 excluded, 0 duplicates)
tune: 2 settings x 2 seeds on 1 variants: 4 tuning runs; then the 3 runs below at each variant's picked setting
HASH tune lora.rank=4 seed=1
HASH tune lora.rank=4 seed=2
HASH tune lora.rank=2 seed=1
HASH tune lora.rank=2 seed=2
(picked)  seed=1
(picked)  seed=2
(picked)  seed=3
EOF2
cmp -s "$TMP/want" "$TMP/r.out" && _report ok || _report fail "tuned dry run: $(diff "$TMP/want" "$TMP/r.out")"

# tune: errors in the block name file:line:column; a tuned key cannot be set elsewhere
printf 'name: x\ntask: spam\ngrid:\n  train.lr: [0.1]\ntune:\n  train.lr: [0.1, 0.2]\n  seeds: [1]\n' > "$TMP/bad1.yaml"
expect_fail 2 "bad1.yaml:4:3: train.lr is tuned by the tune: block (line 6) and set by the grid too" "$LORALAB" sweep "$TMP/bad1.yaml" --dry-run
printf 'name: x\ntask: spam\ntune:\n  train.lr: [0.1, 0.2]\n' > "$TMP/bad2.yaml"
expect_fail 2 "bad2.yaml:4:3: tune: seeds: missing" "$LORALAB" sweep "$TMP/bad2.yaml" --dry-run
printf 'name: x\ntask: spam\ntune:\n  train.lr: [0.1, 0.2]\n  seeds: [1]\n  by: test\n' > "$TMP/bad3.yaml"
expect_fail 2 "bad3.yaml:6:7: tune: by: expected validation" "$LORALAB" sweep "$TMP/bad3.yaml" --dry-run
expect_fail 2 "override 'train.lr=0.5': train.lr is tuned by the tune: block" "$LORALAB" sweep "$TMP/t.yaml" --dry-run train.lr=0.5
printf 'name: x\ntask: spam\ntune:\n  lora.rnk: [1, 2]\n  seeds: [1]\n' > "$TMP/bad4.yaml"
expect_fail 2 "bad4.yaml:4:3: unknown key 'lora.rnk'" "$LORALAB" sweep "$TMP/bad4.yaml" --dry-run

# ---- a rerun with overrides adds to the sweep's runs (and says so); without, the file rules ----
S=$TMP/s/loralab.db
sed '/^tune:/,$d; /lora.targets: \[q, k/d; /method: bitfit/d; s/seed: \[1, 2, 3\]/seed: [1]/' "$TMP/t.yaml" > "$TMP/s.yaml"
expect_ok "$LORALAB" sweep "$TMP/s.yaml" --db "$S" --threads 1
expect_out "^sweep quick: the overrides add 1 runs to the sweep's 1 earlier ones \(2 in all; without overrides the file's runs replace them\)$" \
  sh -c "'$LORALAB' sweep '$TMP/s.yaml' --db '$S' --threads 1 train.lr=0.01 2>&1 >/dev/null | grep overrides"
expect_out "^2$" q "$S" "SELECT count(*) FROM sweep_runs"
# both rows show, told apart by their learning rates
expect_out "^lora +Wq,Wv r=2 +0.0002 " "$LORALAB" report methods --sweep quick --db "$S"
expect_out "^lora +Wq,Wv r=2 +0.01 " "$LORALAB" report methods --sweep quick --db "$S"
expect_ok "$LORALAB" sweep "$TMP/s.yaml" --db "$S" --threads 1
expect_out "^1$" q "$S" "SELECT count(*) FROM sweep_runs"
