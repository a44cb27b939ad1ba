# tests/cli/test_slurm.sh — the Slurm executor. Without Slurm: bad input, the dry run's plan
# and scripts, workers run by hand into shards, merging twice, a truncated shard. Then against
# a real single-node Slurm this file starts itself (munged, slurmctld, slurmd from Debian, a
# slurm.conf and ports of its own under $TMP, everything stopped by PID at the end): a nano
# sweep through a job array, merged, identical to the same sweep run locally; a task cancelled
# mid-run with scancel, then resubmitted, every run done exactly once. When Slurm cannot start
# here, that part says why in one line and the file counts as skipped.
FIX=$(cd "$(dirname "$LORALAB")/.." && pwd)/tests/fixtures
"$LORALAB" init --preset nano --seed 1 --out "$TMP/base" >/dev/null
cat > "$TMP/s.yaml" <<YAML
name: slurmtest
base: {checkpoint: $TMP/base}
task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 32}
train: {steps: 6, batch: 4, lr: 1.0e-3, eval_every: 3}
variants:
  - {method: lora, lora.rank: 2}
  - {method: ft}
grid:
  seed: [1, 2]
YAML
sq() { "$LORALAB" query --db "$1" --csv "$2" | tr -d '\r' | tail -n +2; }
# every metric of every run, by config hash, full precision: equal files = equal results
RESULTS="SELECT r.hash, r.status, r.trainable_params, m.split, m.name, m.step, printf('%.17g', m.value)
         FROM metrics m JOIN runs r ON r.id = m.run_id ORDER BY 1, 4, 5, 6"
COUNTS="SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM metrics), (SELECT count(*) FROM artifacts),
        (SELECT sum(attempts) FROM runs), (SELECT count(*) FROM slurm_shards)"

# ---- bad input: exit 2, nothing submitted ----
expect_fail 2 "--executor: expected local or slurm, got 'nope'" "$LORALAB" sweep "$TMP/s.yaml" --db "$TMP/x.db" --executor nope
expect_fail 2 "run: --executor slurm is for \`loralab sweep\`" "$LORALAB" run "$TMP/s.yaml" --executor slurm seed=1 method=ft
expect_fail 2 "worker: give --plan PLAN and one of --index N, --pretrain" "$LORALAB" worker --index 0
echo '{"format": "something else"}' > "$TMP/notaplan.json"
expect_fail 2 "not a loralab plan" "$LORALAB" merge --plan "$TMP/notaplan.json"

# ---- dry run: the plan and the scripts, kept next to the database; nothing submitted ----
D="$TMP/h/loralab.db"
out=$("$LORALAB" sweep "$TMP/s.yaml" --db "$D" --executor slurm --dry-run --cpus-per-task 1 --time 0:10:00 \
      --array-parallelism 2 --sbatch-arg --qos=test 2>"$TMP/err"); rc=$?
PLAN=$(ls "$TMP"/h/slurm/slurmtest-*/plan.json 2>/dev/null | head -1)
[ $rc -eq 0 ] && [ -n "$PLAN" ] && _report ok || _report fail "dry run: exit $rc, plan '$PLAN': $(cat "$TMP/err")"
printf '%s\n' "$out" | grep -q '^#SBATCH --array=0-3%2$' && printf '%s\n' "$out" | grep -q '^#SBATCH --qos=test$' &&
  printf '%s\n' "$out" | grep -q '^#SBATCH --time=0:10:00$' && printf '%s\n' "$out" | grep -q "worker --plan '$PLAN' --index \"\$SLURM_ARRAY_TASK_ID\"" &&
  printf '%s\n' "$out" | grep -q "merge --plan '$PLAN'" && ! printf '%s\n' "$out" | grep -q 'pretrain.sbatch' \
  && _report ok || _report fail "dry-run scripts: $out"
[ -f "$(dirname "$PLAN")/array.sbatch" ] && [ -f "$(dirname "$PLAN")/merge.sbatch" ] && _report ok || _report fail "scripts not kept next to the plan"
expect_out "^4$" sh -c "grep -c '\"hash\"' '$PLAN'"
expect_out "^0$" sq "$D" "SELECT count(*) FROM slurm_plans"   # not submitted: nothing recorded

# ---- workers by hand (no Slurm): one shard each, merged once ----
for i in 0 1 2 3; do expect_ok "$LORALAB" worker --plan "$PLAN" --index $i --threads 1; done
expect_fail 2 "worker: --index 4: plan $PLAN has 4 runs (0 .. 3)" "$LORALAB" worker --plan "$PLAN" --index 4
expect_out "^4$" sh -c "ls '$(dirname "$PLAN")/shards' | grep -c '\.db$'"
# the workers never touched the database
expect_out "^4,0$" sq "$D" "SELECT count(*), count(*) FILTER (WHERE status != 'pending') FROM runs"
expect_fail 2 "plan $PLAN does not match database $TMP/other.db: it has no sweep 'slurmtest'" \
  "$LORALAB" merge --plan "$PLAN" --db "$TMP/other.db"
expect_ok "$LORALAB" merge --plan "$PLAN"
expect_out "^4$" sq "$D" "SELECT count(*) FROM runs WHERE status = 'done'"
snap=$(sq "$D" "$COUNTS")
out=$("$LORALAB" merge --plan "$PLAN" 2>&1; "$LORALAB" merge --db "$D" 2>&1)
[ "$(sq "$D" "$COUNTS")" = "$snap" ] && printf '%s\n' "$out" | grep -q "0 shard(s) merged.*4 merged before" \
  && _report ok || _report fail "merging twice changed the database: $snap -> $(sq "$D" "$COUNTS"); $out"
# the same sweep run locally gives the same runs and metrics
"$LORALAB" sweep "$TMP/s.yaml" --db "$TMP/local/loralab.db" --threads 1 >/dev/null 2>&1
sq "$TMP/local/loralab.db" "$RESULTS" > "$TMP/local.csv"
sq "$D" "$RESULTS" > "$TMP/hand.csv"
[ -s "$TMP/local.csv" ] && cmp -s "$TMP/local.csv" "$TMP/hand.csv" && _report ok || _report fail "hand-run shards differ from a local sweep"

# ---- a truncated shard: a clear error, no other run lost ----
"$LORALAB" sweep "$TMP/s.yaml" --db "$TMP/t/loralab.db" --executor slurm --dry-run >/dev/null 2>&1
TPLAN=$(ls "$TMP"/t/slurm/slurmtest-*/plan.json | head -1)
for i in 0 1 2 3; do "$LORALAB" worker --plan "$TPLAN" --index $i --threads 1 >/dev/null 2>&1; done
victim=$(ls "$(dirname "$TPLAN")"/shards/*.db | head -1)
size=$(stat -c %s "$victim")
truncate -s $((size / 2)) "$victim"
expect_fail 2 "truncated: $((size / 2)) bytes, its header says $size" "$LORALAB" merge --plan "$TPLAN"
expect_out "^3$" sq "$TMP/t/loralab.db" "SELECT count(*) FROM runs WHERE status = 'done'"
expect_out "^interrupted,\"result shard unreadable \(shard .*: truncated" sq "$TMP/t/loralab.db" \
  "SELECT status, error FROM runs WHERE hash = '$(basename "$victim" | cut -d. -f1)'"
[ -f "$victim.corrupt" ] && _report ok || _report fail "the truncated shard was not kept aside"
expect_out "0 shard\(s\) merged" sh -c "'$LORALAB' merge --plan '$TPLAN' 2>&1"   # reported once
# its run done again by hand: every run done, with the local results
vhash=$(basename "$victim" | cut -d. -f1)
vi=$(($(grep -o '"hash": "[0-9a-f]*"' "$TPLAN" | grep -n "$vhash" | cut -d: -f1) - 1))   # runs are in index order
"$LORALAB" worker --plan "$TPLAN" --index "$vi" --threads 1 >/dev/null 2>&1
expect_ok "$LORALAB" merge --plan "$TPLAN"
sq "$TMP/t/loralab.db" "$RESULTS" > "$TMP/t.csv"
cmp -s "$TMP/local.csv" "$TMP/t.csv" && _report ok || _report fail "after the truncated shard was redone the results differ from a local sweep"

# ---- failed runs are merged with their errors ----
"$LORALAB" sweep "$TMP/s.yaml" --db "$TMP/f/loralab.db" --executor slurm --dry-run >/dev/null 2>&1
FPLAN=$(ls "$TMP"/f/slurm/slurmtest-*/plan.json | head -1)
for i in 0 1 2 3; do LORALAB_FAULT=abort:2 "$LORALAB" worker --plan "$FPLAN" --index $i --threads 1 >/dev/null 2>&1; done
expect_out "4 shard\(s\) merged \(2 done, 2 failed, 0 interrupted\)" sh -c "'$LORALAB' merge --plan '$FPLAN' 2>&1"
expect_out "^2,2$" sq "$TMP/f/loralab.db" "SELECT count(*) FILTER (WHERE status = 'failed' AND seed = 2 AND error LIKE 'crashed: signal 6%'),
                                                 count(*) FILTER (WHERE status = 'done' AND seed = 1) FROM runs"
# a worker that cannot write its result shard fails like a run: exit 1, naming the plan and index
"$LORALAB" sweep "$TMP/s.yaml" --db "$TMP/w/loralab.db" --executor slurm --dry-run >/dev/null 2>&1
WPLAN=$(ls "$TMP"/w/slurm/slurmtest-*/plan.json | head -1)
rm -rf "$(dirname "$WPLAN")/shards" && echo x > "$(dirname "$WPLAN")/shards"
expect_fail 1 "loralab: worker: plan $WPLAN index 0: " "$LORALAB" worker --plan "$WPLAN" --index 0 --threads 1

# ---- a real single-node Slurm ----
SL="$TMP/slurm"
slurm_stop() {
  [ -f "$SL/slurmctld.pid" ] && SLURM_CONF="$SL/slurm.conf" scancel --full $(SLURM_CONF="$SL/slurm.conf" squeue -h -o %A 2>/dev/null) 2>/dev/null
  sleep 1
  for f in slurmd.pid slurmctld.pid munged.pid; do
    [ -f "$SL/$f" ] && kill "$(cat "$SL/$f")" 2>/dev/null
  done
  sleep 1
  rm -f "$SL"/*.pid
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
slurm_start() {
  for b in munged slurmctld slurmd sbatch squeue scancel; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || { echo "$b is not installed"; return 1; }
  done
  [ "$(id -u)" -eq 0 ] || { echo "not root: munged, slurmctld and slurmd need root to start here"; return 1; }
  mkdir -p "$SL/state" "$SL/spool" "$SL/munge" && chmod 700 "$SL/munge"
  dd if=/dev/urandom of="$SL/munge/key" bs=1024 count=1 2>/dev/null && chmod 600 "$SL/munge/key"
  /usr/sbin/munged --force --socket="$SL/munge/sock" --key-file="$SL/munge/key" --pid-file="$SL/munged.pid" \
    --log-file="$SL/munged.log" --seed-file="$SL/munge/seed" 2>"$SL/munged.err" || { echo "munged: $(head -1 "$SL/munged.err")"; return 1; }
  local p
  for i in $(seq 1 50); do p=$((20000 + RANDOM % 40000)); port_free $p && port_free $((p + 1)) && break; done
  local host; host=$(hostname -s)
  cat > "$SL/slurm.conf" <<CONF
ClusterName=loralabtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$p
SlurmdPort=$((p + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SL/munge/sock
CredType=cred/munge
StateSaveLocation=$SL/state
SlurmdSpoolDir=$SL/spool
SlurmctldPidFile=$SL/slurmctld.pid
SlurmdPidFile=$SL/slurmd.pid
SlurmctldLogFile=$SL/slurmctld.log
SlurmdLogFile=$SL/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$SL/slurm.conf"
  /usr/sbin/slurmctld -f "$SLURM_CONF" 2>"$SL/ctld.err" || { echo "slurmctld: $(head -1 "$SL/ctld.err")"; return 1; }
  /usr/sbin/slurmd -f "$SLURM_CONF" 2>"$SL/d.err" || { echo "slurmd: $(head -1 "$SL/d.err")"; return 1; }
  for i in $(seq 1 60); do
    sinfo -h -o %t 2>/dev/null | grep -qx idle && return 0
    sleep 0.5
  done
  echo "the node did not come up idle in 30 s: $(tail -1 "$SL/slurmd.log" 2>/dev/null)"
  return 1
}
# waits (up to $2 s) until Slurm has no job left; 0 when it got there
slurm_wait_empty() {
  for i in $(seq 1 $(($1 * 2))); do [ -z "$(squeue -h -o %i)" ] && return 0; sleep 0.5; done
  return 1
}

if ! slurm_start > "$TMP/slurm.why"; then
  skip_test "Slurm could not start here ($(head -1 "$TMP/slurm.why"))"
  slurm_stop
else
  trap slurm_stop EXIT
  S="$TMP/s/loralab.db"
  # an unknown partition: sbatch's own error, exit 2, nothing submitted or kept
  expect_fail 2 "invalid partition specified: nosuchpart" "$LORALAB" sweep "$TMP/s.yaml" --db "$S" --executor slurm --partition nosuchpart
  [ -z "$(squeue -h -o %i)" ] && [ -z "$(ls "$TMP/s/slurm" 2>/dev/null)" ] && _report ok || _report fail "a refused submission left jobs or plans"

  # a nano sweep through a job array, merged by the merge job: identical to the local sweep
  expect_ok "$LORALAB" sweep "$TMP/s.yaml" --db "$S" --executor slurm --cpus-per-task 1
  slurm_wait_empty 120 && _report ok || _report fail "the sweep's jobs did not finish in 120 s: $(squeue)"
  expect_out "^4,4$" sq "$S" "SELECT count(*), count(DISTINCT name) FROM slurm_shards WHERE status = 'done' AND job_id != '' AND node != ''"
  sq "$S" "$RESULTS" > "$TMP/slurm.csv"
  cmp -s "$TMP/local.csv" "$TMP/slurm.csv" && _report ok || _report fail "the Slurm sweep differs from the local sweep: $(diff "$TMP/local.csv" "$TMP/slurm.csv" | head -5)"
  expect_out "task 3 +run [0-9]+ +done +[0-9]+_3 on " "$LORALAB" status slurmtest --db "$S"
  snap=$(sq "$S" "$COUNTS")
  "$LORALAB" merge --db "$S" >/dev/null 2>&1; "$LORALAB" status --db "$S" >/dev/null 2>&1
  [ "$(sq "$S" "$COUNTS")" = "$snap" ] && _report ok || _report fail "merging again changed the database"
  expect_out "0 queued in Slurm, 0 to submit" sh -c "'$LORALAB' sweep '$TMP/s.yaml' --db '$S' --executor slurm 2>&1"

  # a base not cached yet: a pretraining job first, the array after it (afterok), the merge
  # job after the array (afterany); held at submission so the dependencies can be read
  ROOT=$(cd "$(dirname "$LORALAB")/.." && pwd)
  cat > "$TMP/p.yaml" <<YAML
name: pretrained
base: {preset: nano, pretrain: {steps: 3, batch: 2, seq: 32}}
task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 32}
train: {steps: 4, batch: 4, lr: 1.0e-3, eval_every: 2}
method: lora
YAML
  P="$TMP/p/loralab.db"
  expect_out "submitted pretraining job [0-9]+, array job [0-9]+ \(1 tasks\), merge job [0-9]+" \
    sh -c "cd '$ROOT' && '$LORALAB' sweep '$TMP/p.yaml' --db '$P' --executor slurm --cpus-per-task 1 --sbatch-arg --hold 2>&1"
  read -r pre arr mrg _ <<<"$(sq "$P" "SELECT pretrain_job || ' ' || array_job || ' ' || merge_job FROM slurm_plans") - - -"
  deps=$(squeue -h -j "$arr,$mrg" -o "%i %E" 2>&1 | sort | tr '\n' ' ')
  printf '%s' "$deps" | grep -q "afterok:$pre(unfulfilled)" && printf '%s' "$deps" | grep -q "afterany:${arr}_\*(unfulfilled)" \
    && _report ok || _report fail "dependencies of jobs $pre $arr $mrg: $deps"
  for j in $pre $arr $mrg; do scontrol release "$j"; done
  slurm_wait_empty 120 && _report ok || _report fail "the pretraining sweep did not finish in 120 s: $(squeue)"
  "$LORALAB" status --db "$P" >/dev/null 2>&1
  expect_out "^done$" sq "$P" "SELECT status FROM runs"
  [ -f "$(ls -d "$TMP"/p/bases/nano-*/ 2>/dev/null | head -1)model.safetensors" ] && _report ok || _report fail "no cached base after the pretraining job"

  # a task cancelled before it started leaves no result: status calls its run lost, and a
  # resubmission submits that run alone
  sed 's/^name: slurmtest/name: lost/' "$TMP/s.yaml" > "$TMP/l.yaml"
  L="$TMP/l/loralab.db"
  expect_ok "$LORALAB" sweep "$TMP/l.yaml" --db "$L" --executor slurm --cpus-per-task 1 --sbatch-arg --hold seed=1
  read -r larr lmrg _ <<<"$(sq "$L" "SELECT array_job || ' ' || merge_job FROM slurm_plans") - -"
  expect_ok scancel "${larr}_1"
  scontrol release "$larr"; scontrol release "$lmrg"
  slurm_wait_empty 60 && _report ok || _report fail "the lost sweep's jobs did not finish in 60 s: $(squeue)"
  expect_out "task 1 +run [0-9]+ +pending +lost: ${larr}_1 left Slurm without a result" "$LORALAB" status lost --db "$L"
  expect_out "^slurm: 0 run\(s\) queued in Slurm, 1 lost" "$LORALAB" status lost --db "$L"
  expect_out "1 to submit" sh -c "'$LORALAB' sweep '$TMP/l.yaml' --db '$L' --executor slurm --cpus-per-task 1 seed=1 2>&1"
  slurm_wait_empty 60 && _report ok || _report fail "the resubmitted lost run did not finish in 60 s: $(squeue)"
  "$LORALAB" status lost --db "$L" >/dev/null 2>&1
  expect_out "^2,2$" sq "$L" "SELECT count(*), count(*) FILTER (WHERE status = 'done') FROM runs"
  expect_out "submitted again by a later plan" "$LORALAB" status lost --db "$L"

  # a task cancelled mid-run, resubmitted: every run done exactly once
  cat > "$TMP/c.yaml" <<YAML
name: cancelled
base: {checkpoint: $TMP/base}
task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 32}
train: {batch: 4, lr: 1.0e-3, eval_every: 500}
variants:
  - {method: lora, lora.rank: 2, train.steps: 6}
  - {method: ft, train.steps: 1500}
YAML
  C="$TMP/c/loralab.db"
  expect_ok "$LORALAB" sweep "$TMP/c.yaml" --db "$C" --executor slurm --cpus-per-task 1
  arr=$(sq "$C" "SELECT array_job FROM slurm_plans")
  # once task 1 trains (its log says so), cancel it: Slurm sends SIGTERM
  for i in $(seq 1 120); do grep -qs "^run " "$TMP"/c/slurm/*/logs/array-${arr}_1.out && break; sleep 0.5; done
  for i in $(seq 1 20); do scancel "${arr}_1" 2>/dev/null && break; sleep 0.5; done
  slurm_wait_empty 60 && _report ok || _report fail "jobs left after scancel: $(squeue)"
  expect_out "interrupted by SIGTERM from Slurm" "$LORALAB" status cancelled --db "$C"
  expect_out "^done,1$" sq "$C" "SELECT status, attempts FROM runs WHERE method = 'lora'"
  expect_out "1 to submit" sh -c "'$LORALAB' sweep '$TMP/c.yaml' --db '$C' --executor slurm --cpus-per-task 1 2>&1"
  # while it is queued or running, a resubmission submits nothing
  expect_out "1 queued in Slurm, 0 to submit" sh -c "'$LORALAB' sweep '$TMP/c.yaml' --db '$C' --executor slurm 2>&1"
  expect_out "queued in Slurm: [0-9]+_0 (PENDING|RUNNING)" "$LORALAB" status cancelled --db "$C"
  slurm_wait_empty 240 && _report ok || _report fail "the resubmitted run did not finish in 240 s: $(squeue)"
  "$LORALAB" status cancelled --db "$C" >/dev/null 2>&1
  expect_out "^2,2$" sq "$C" "SELECT count(*), count(*) FILTER (WHERE status = 'done') FROM runs"
  # done exactly once: one done shard per run; the cancelled run was attempted twice
  expect_out "^1,1$" sq "$C" "SELECT min(n), max(n) FROM (SELECT count(*) FILTER (WHERE status = 'done') AS n FROM slurm_shards GROUP BY run_id)"
  expect_out "^2$" sq "$C" "SELECT attempts FROM runs WHERE method = 'ft'"
  expect_out "^1$" sq "$C" "SELECT count(*) FROM slurm_shards WHERE status = 'interrupted'"
  slurm_stop
  trap - EXIT
fi
unset SLURM_CONF
