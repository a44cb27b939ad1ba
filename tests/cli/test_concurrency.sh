# tests/cli/test_concurrency.sh — several sweeps on one database, and faults that must be
# recorded truthfully: two sweeps of one file started 0-3 s apart (--jobs 1 and 2), two files
# sharing a run, --retry-failed twice at once, a waited-for owner killed with kill -9, passive
# OpenMP waiting and threads per run, a full disk (a small tmpfs in a private mount namespace)
# for the database and for base pretraining, and a database locked longer than its timeout.
FIX=$(cd "$(dirname "$LORALAB")/.." && pwd)/tests/fixtures
"$LORALAB" init --preset nano --seed 1 --out "$TMP/base" >/dev/null
lora_sweep_file conc "1, 2, 3, 4, 5, 6" 20 > "$TMP/s.yaml"
# the numbers of a sweep's log: runs done at its start, done by it, done by another sweep
counts_of() {
  local start mine other
  start=$(sed -n 's/.* runs (\([0-9]*\) done.*/\1/p' "$1" | head -1)
  mine=$(sed -n 's/^sweep [a-z-]*: \([0-9]*\) done, .* this time.*/\1/p' "$1")
  other=$(sed -n 's/.*; \([0-9]*\) done by another sweep.*/\1/p' "$1")
  echo "${start:-x} ${mine:-x} ${other:-0}"
}

# two sweeps of one file on one database, started 0-3 s apart: every run is trained exactly
# once, both exit 0, and each counts the other's runs as done by another sweep
for combo in "1 1 0" "1 1 3" "2 2 1" "2 2 3"; do
  set -- $combo
  DB="$TMP/pair$1$2$3/loralab.db"
  "$LORALAB" sweep "$TMP/s.yaml" --db "$DB" --jobs $1 >"$TMP/a.log" 2>&1 &
  pa=$!
  sleep $3
  "$LORALAB" sweep "$TMP/s.yaml" --db "$DB" --jobs $2 >"$TMP/b.log" 2>&1
  rb=$?
  wait $pa; ra=$?
  [ $ra -eq 0 ] && [ $rb -eq 0 ] && _report ok || _report fail "jobs $1/$2 delay $3: exits $ra and $rb :: $(cat "$TMP/a.log" "$TMP/b.log")"
  expect_out "^6$" query_rows "$DB" "SELECT count(*) FROM runs WHERE status='done' AND attempts=1"
  expect_out "^0$" query_rows "$DB" "SELECT count(*) FROM (SELECT 1 FROM metrics GROUP BY run_id, split, name, step HAVING count(*) > 1)"
  read -r sa ma oa <<<"$(counts_of "$TMP/a.log")"
  read -r sb mb ob <<<"$(counts_of "$TMP/b.log")"
  [ "$((ma + mb))" = 6 ] && [ "$((sa + ma + oa))" = 6 ] && [ "$((sb + mb + ob))" = 6 ] && _report ok ||
    _report fail "jobs $1/$2 delay $3: summaries do not add up ($sa+$ma+$oa, $sb+$mb+$ob) :: $(cat "$TMP/a.log" "$TMP/b.log")"
done

# two different files sharing one run (seed 3): it is trained once, both sweeps list it
lora_sweep_file conc-a "1, 2, 3" > "$TMP/fa.yaml"
lora_sweep_file conc-b "3, 4, 5" > "$TMP/fb.yaml"
DB="$TMP/shared/loralab.db"
"$LORALAB" sweep "$TMP/fa.yaml" --db "$DB" >"$TMP/a.log" 2>&1 &
pa=$!
"$LORALAB" sweep "$TMP/fb.yaml" --db "$DB" >"$TMP/b.log" 2>&1
rb=$?
wait $pa; ra=$?
[ $ra -eq 0 ] && [ $rb -eq 0 ] && _report ok || _report fail "shared run: exits $ra and $rb :: $(cat "$TMP/a.log" "$TMP/b.log")"
expect_out "^5$" query_rows "$DB" "SELECT count(*) FROM runs WHERE status='done' AND attempts=1"
expect_out "^2$" query_rows "$DB" "SELECT count(*) FROM sweep_runs WHERE run_id = (SELECT id FROM runs WHERE seed=3)"

# --retry-failed from two sweeps at once: each failed run is trained again exactly once
{ lora_sweep_file retry "1, 2"; printf 'variants:\n  - {method: lora}\n  - {method: bitfit}\n'; } > "$TMP/r.yaml"
DB="$TMP/retry/loralab.db"
LORALAB_FAULT=abort:2 "$LORALAB" sweep "$TMP/r.yaml" --db "$DB" >/dev/null 2>&1
expect_out "^2$" query_rows "$DB" "SELECT count(*) FROM runs WHERE status='failed' AND seed=2"
"$LORALAB" sweep "$TMP/r.yaml" --db "$DB" --retry-failed --jobs 2 >"$TMP/a.log" 2>&1 &
pa=$!
"$LORALAB" sweep "$TMP/r.yaml" --db "$DB" --retry-failed --jobs 2 >"$TMP/b.log" 2>&1
rb=$?
wait $pa; ra=$?
[ $ra -eq 0 ] && [ $rb -eq 0 ] && _report ok || _report fail "retry-failed twice: exits $ra and $rb :: $(cat "$TMP/a.log" "$TMP/b.log")"
expect_out "^4$" query_rows "$DB" "SELECT count(*) FROM runs WHERE status='done' AND attempts = seed"

# a sweep waiting for another sweep's runs takes them over when that sweep is killed (kill -9):
# the dead owner's runs become interrupted and are run once more, by the waiting sweep. The
# owner's workers are stopped (SIGSTOP) once both have started, so that they are alive but
# cannot finish before the second sweep is waiting for them, however fast this machine is.
lora_sweep_file owner "1, 2" 400 > "$TMP/o.yaml"
DB="$TMP/owner/loralab.db"
"$LORALAB" sweep "$TMP/o.yaml" --db "$DB" --jobs 2 --threads 1 >/dev/null 2>&1 &
pa=$!
workers=""
for i in $(seq 1 1000); do   # sqlite3 polls faster than a loralab process starts
  workers=$(sqlite3 "$DB" "SELECT group_concat(pid, ' ') FROM runs WHERE status='running'" 2>/dev/null)
  [ "$(echo $workers | wc -w)" = 2 ] && kill -STOP $workers && break
  kill -0 $pa 2>/dev/null || break
  sleep 0.02
done
# status shows who runs them and with how many threads
expect_out "run 1 \(.*\) lora q,v r=8 seed=1: pid [0-9]+ on .*, cpu, 1 thread, (step [0-9]+|no step yet), since" "$LORALAB" status owner --db "$DB"
"$LORALAB" sweep "$TMP/o.yaml" --db "$DB" --jobs 2 >"$TMP/b.log" 2>&1 &
pb=$!
for i in $(seq 1 600); do [ "$(grep -c 'waiting for it' "$TMP/b.log")" = 2 ] && break; sleep 0.1; done
grep -q "run 1 is running in another sweep (pid [0-9]*); waiting for it" "$TMP/b.log" && _report ok || _report fail "no waiting line :: $(cat "$TMP/b.log")"
kill -9 $pa; wait $pa 2>/dev/null
wait $pb; rb=$?
[ $rb -eq 0 ] && _report ok || _report fail "the waiting sweep should finish the killed sweep's runs, exit $rb :: $(cat "$TMP/b.log")"
expect_out "^2$" query_rows "$DB" "SELECT count(*) FROM runs WHERE status='done' AND attempts=2"

# OpenMP threads spin 1000 turns and then sleep unless the user says otherwise (libgomp shows
# PASSIVE for an unset policy too: the spin count tells them apart; the program runs itself
# again with both set, so the display comes twice, libgomp's default first); the cores are
# divided among the runs that go at once (no more than there are runs)
expect_out "^  GOMP_SPINCOUNT = '1000'" sh -c "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose '$LORALAB' --version 2>&1 | grep GOMP_SPINCOUNT | tail -n 1"
expect_out "^  GOMP_SPINCOUNT = '30000000000'" sh -c "env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose '$LORALAB' --version 2>&1"
expect_out "^  GOMP_SPINCOUNT = '7'" sh -c "env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=7 OMP_DISPLAY_ENV=verbose '$LORALAB' --version 2>&1"
expect_out "sweep .*--threads T" "$LORALAB" --help
expect_out "^  --threads N +CPU threads per run" "$LORALAB" sweep --help
cores=$(nproc)
DB="$TMP/threads/loralab.db"
"$LORALAB" sweep "$TMP/s.yaml" --db "$DB" --jobs 4 --max-runs 1 >/dev/null 2>&1
expect_out "^$cores$" query_rows "$DB" "SELECT CAST(value AS INT) FROM metrics WHERE name='threads'"
half=$((cores / 2 > 0 ? cores / 2 : 1))
"$LORALAB" sweep "$TMP/s.yaml" --db "$DB" --jobs 2 --max-runs 2 >/dev/null 2>&1
expect_out "^$half$" query_rows "$DB" "SELECT CAST(value AS INT) FROM metrics m JOIN runs r ON r.id=m.run_id WHERE name='threads' AND r.seed=2"

# a database locked for longer than the busy timeout (10 s) in the middle of a run: the run
# fails, and the database holds the real cause, recorded by the sweep when the worker could not
lora_sweep_file locked "1" 3000 > "$TMP/l.yaml"
DB="$TMP/locked/loralab.db"
"$LORALAB" sweep "$TMP/l.yaml" --db "$DB" >"$TMP/l.log" 2>&1 &
pa=$!
for i in $(seq 1 100); do
  [ "$(query_rows "$DB" "SELECT count(*) FROM metrics WHERE name='loss' AND split='train'" 2>/dev/null)" -ge 1 ] 2>/dev/null && break
  sleep 0.1
done
(echo "BEGIN IMMEDIATE;"; sleep 23; echo "COMMIT;") | sqlite3 "$DB"
wait $pa; ra=$?
[ $ra -eq 1 ] && _report ok || _report fail "a run failed by a locked database: sweep exit 1, got $ra :: $(cat "$TMP/l.log")"
expect_out "^failed,.*database is locked" query_rows "$DB" "SELECT status, error FROM runs"
grep -q "the database holds 0 done, 1 failed, 0 interrupted, 0 running, 0 pending" "$TMP/l.log" && _report ok ||
  _report fail "summary of the locked run :: $(cat "$TMP/l.log")"

# a full disk: the summary and the database agree, and the reason is printed; once there is
# room again the next sweep finishes every run. Needs a private mount namespace (unshare -m).
if unshare -m true 2>/dev/null; then
  mkdir -p "$TMP/full" "$TMP/pre"
  lora_sweep_file full "1, 2, 3, 4" > "$TMP/f.yaml"
  lora_sweep_file pre "1" > "$TMP/p.yaml"
  sed -i "s|^base: .*|base: {preset: nano, pretrain: {steps: 3, batch: 2, seq: 32}}|" "$TMP/p.yaml"
  cat > "$TMP/full.sh" <<SH
set -u
mount -t tmpfs -o size=400k tmpfs "$TMP/full" || exit 99
"$LORALAB" sweep "$TMP/f.yaml" --db "$TMP/full/loralab.db" > "$TMP/f1.log" 2>&1; echo \$? > "$TMP/f1.rc"
"$LORALAB" query --db "$TMP/full/loralab.db" --csv "SELECT status, count(*) FROM runs GROUP BY status" 2>&1 | tr -d '\\r' > "$TMP/f1.db"
mount -o remount,size=16m "$TMP/full"
"$LORALAB" sweep "$TMP/f.yaml" --db "$TMP/full/loralab.db" --retry-failed > "$TMP/f2.log" 2>&1; echo \$? > "$TMP/f2.rc"
"$LORALAB" query --db "$TMP/full/loralab.db" --csv "SELECT count(*) FROM runs WHERE status='done'" > "$TMP/f2.db" 2>&1
# base pretraining whose checkpoint (about 480 KB) does not fit: its temporary directory goes
mount -t tmpfs -o size=300k tmpfs "$TMP/pre" || exit 99
"$LORALAB" sweep "$TMP/p.yaml" --db "$TMP/pre.db" --results "$TMP/pre" > "$TMP/p1.log" 2>&1; echo \$? > "$TMP/p1.rc"
ls "$TMP/pre/bases" > "$TMP/p1.ls"
"$LORALAB" query --db "$TMP/pre.db" --csv "SELECT status, error FROM runs" 2>&1 | tr -d '\\r' > "$TMP/p1.db"
# room again, and a temporary directory left by a killed pretraining: removed, base made
mount -o remount,size=16m "$TMP/pre"
lock=\$(ls "$TMP/pre/bases" | sed -n 's/\.lock\$//p')
mkdir -p "$TMP/pre/bases/\$lock.tmp999999" && touch "$TMP/pre/bases/\$lock.tmp999999/model.safetensors"
"$LORALAB" sweep "$TMP/p.yaml" --db "$TMP/pre.db" --results "$TMP/pre" --retry-failed > "$TMP/p2.log" 2>&1; echo \$? > "$TMP/p2.rc"
ls "$TMP/pre/bases" > "$TMP/p2.ls"
SH
  unshare -m bash "$TMP/full.sh"
  [ "$(cat "$TMP/f1.rc")" = 1 ] && grep -q "database or disk is full" "$TMP/f1.log" && _report ok ||
    _report fail "a full disk: exit 1 with the reason :: $(cat "$TMP/f1.log")"
  # what the summary says happened is what the database holds
  done=$(sed -n 's/^sweep full: \([0-9]*\) done, .*/\1/p' "$TMP/f1.log")
  failed=$(sed -n 's/^sweep full: [0-9]* done, \([0-9]*\) failed.*/\1/p' "$TMP/f1.log")
  unrec=$(sed -n 's/.*; \([0-9]*\) ended but the database could not record it.*/\1/p' "$TMP/f1.log")
  notstarted=$(sed -n 's/.*; \([0-9]*\) not started.*/\1/p' "$TMP/f1.log")
  unrec=${unrec:-0}; notstarted=${notstarted:-0}
  dbdone=$(sed -n 's/^done,//p' "$TMP/f1.db"); dbfailed=$(sed -n 's/^failed,//p' "$TMP/f1.db")
  dbopen=$(awk -F, '$1=="running"||$1=="pending"||$1=="interrupted"{n+=$2} END{print n+0}' "$TMP/f1.db")
  [ "${dbdone:-0}" = "$done" ] && [ "${dbfailed:-0}" = "$failed" ] && [ "$dbopen" = "$((unrec + notstarted))" ] && [ "$dbopen" -gt 0 ] &&
    _report ok || _report fail "full disk: summary ($done done, $failed failed, $unrec unrecorded, $notstarted not started) vs database ($(cat "$TMP/f1.db")) :: $(cat "$TMP/f1.log")"
  [ "$(cat "$TMP/f2.rc")" = 0 ] && [ "$(tail -1 "$TMP/f2.db" | tr -d '\r')" = 4 ] && _report ok ||
    _report fail "after the disk has room: every run done :: $(cat "$TMP/f2.log")"
  [ "$(cat "$TMP/p1.rc")" = 1 ] && ! grep -q "\.tmp" "$TMP/p1.ls" && _report ok ||
    _report fail "pretraining on a full disk: exit 1, no temporary directory left :: $(cat "$TMP/p1.ls" "$TMP/p1.log")"
  grep -q "^failed,.*\.tmp[0-9]*/model.safetensors.tmp: write error: No space left on device" "$TMP/p1.db" && _report ok ||
    _report fail "pretraining on a full disk: the reason in the database :: $(cat "$TMP/p1.db")"
  [ "$(cat "$TMP/p2.rc")" = 0 ] && ! grep -q "\.tmp" "$TMP/p2.ls" && grep -q "^nano-" "$TMP/p2.ls" && _report ok ||
    _report fail "pretraining with room again: base made, stale temporary directory removed :: $(cat "$TMP/p2.ls" "$TMP/p2.log")"
else
  echo "skip [$CURRENT_TEST]: full-disk checks need unshare -m (a private mount namespace)"
fi

# a corrupt database (not SQLite): exit 2 with the file named, and the file is left as it was
head -c 8192 /dev/urandom | tr '\0' x > "$TMP/garbage.db"
cp "$TMP/garbage.db" "$TMP/garbage.orig"
expect_fail 2 "garbage.db: file is not a database" "$LORALAB" sweep "$TMP/s.yaml" --db "$TMP/garbage.db"
expect_fail 2 "garbage.db: file is not a database" "$LORALAB" status --db "$TMP/garbage.db"
cmp -s "$TMP/garbage.db" "$TMP/garbage.orig" && [ ! -e "$TMP/garbage.db-wal" ] && _report ok || _report fail "a corrupt database was written to"
