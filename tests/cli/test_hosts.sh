# tests/cli/test_hosts.sh — sweeps on several hosts sharing one database (a shared
# filesystem). A claim from another host cannot be checked by its pid: it lives while its
# sweep's heartbeat is younger than the lease (3 heartbeat periods) and is lost after. The
# other host is faked by writing its claim into the row with the sqlite3 CLI.
FIX=$(cd "$(dirname "$LORALAB")/.." && pwd)/tests/fixtures
"$LORALAB" init --preset nano --seed 1 --out "$TMP/base" >/dev/null
NOW="((julianday('now') - 2440587.5) * 86400.0)"
lora_sweep_file hosts "1, 2" 20 > "$TMP/h.yaml"
# a database holding the sweep's two runs: run 1 trained once, then made another host's below
"$LORALAB" sweep "$TMP/h.yaml" --db "$TMP/seed/loralab.db" --max-runs 1 >/dev/null 2>&1
# claim_foreign DIR AGE: DIR/loralab.db is that database with run 1 (seed 1) running on
# other-host as pid 4242 (its first attempt, nothing recorded yet), its heartbeat AGE s old
claim_foreign() {
  mkdir -p "$1" && cp "$TMP/seed/loralab.db" "$1/"
  sqlite3 -cmd ".timeout 10000" "$1/loralab.db" "UPDATE runs SET status = 'running', pid = 4242, pid_start = NULL, host = 'other-host',
    attempts = 1, error = NULL, finished = NULL, started = strftime('%Y-%m-%dT%H:%M:%fZ','now'),
    heartbeat = $NOW - $2 WHERE seed = 1; DELETE FROM metrics; DELETE FROM artifacts"
}

# a stale heartbeat (an hour old, lease 30 s by default): the claim is lost; the sweep
# reclaims the run by compare-and-set and trains it once
DB="$TMP/stale/loralab.db"
claim_foreign "$TMP/stale" 3600
"$LORALAB" sweep "$TMP/h.yaml" --db "$DB" >"$TMP/s.log" 2>&1; rc=$?
[ $rc -eq 0 ] && _report ok || _report fail "stale foreign claim: exit $rc :: $(cat "$TMP/s.log")"
grep -Eq "^sweep: run 1: worker pid 4242 on other-host sent no heartbeat for 36[0-9]{2} s \(lease 30 s\); it runs here$" "$TMP/s.log" &&
  _report ok || _report fail "stale foreign claim: no reclaim line :: $(cat "$TMP/s.log")"
expect_out "^done,2,[0-9]+,$(hostname)$" query_rows "$DB" "SELECT status, attempts, pid, host FROM runs WHERE seed = 1"
expect_out "^2$" query_rows "$DB" "SELECT count(*) FROM runs WHERE status = 'done'"
expect_out "^0$" query_rows "$DB" "SELECT count(*) FROM (SELECT 1 FROM metrics GROUP BY run_id, split, name, step HAVING count(*) > 1)"

# a fresh heartbeat that the other host keeps refreshing: the sweep waits for that worker,
# trains only its own run, and counts the other's as done by another sweep once it is
DB="$TMP/fresh/loralab.db"
claim_foreign "$TMP/fresh" 0
LORALAB_HEARTBEAT_SECONDS=3 "$LORALAB" sweep "$TMP/h.yaml" --db "$DB" >"$TMP/f.log" 2>&1 &
pa=$!
for i in $(seq 1 2400); do   # the other host's heartbeat, every 0.5 s (lease 9 s), until run 2 is done
  sqlite3 -cmd ".timeout 10000" "$DB" "UPDATE runs SET heartbeat = $NOW WHERE seed = 1 AND status = 'running'" >/dev/null
  [ $i -ge 10 ] && [ "$(query_rows "$DB" "SELECT status FROM runs WHERE seed = 2")" = done ] && break
  sleep 0.5
done
kill -0 $pa 2>/dev/null && _report ok || _report fail "fresh foreign claim: the sweep did not wait :: $(cat "$TMP/f.log")"
expect_out "^running,1,4242,other-host$" query_rows "$DB" "SELECT status, attempts, pid, host FROM runs WHERE seed = 1"
sqlite3 -cmd ".timeout 10000" "$DB" "UPDATE runs SET status = 'done', finished = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE seed = 1"
wait $pa; rc=$?
[ $rc -eq 0 ] && _report ok || _report fail "fresh foreign claim: exit $rc :: $(cat "$TMP/f.log")"
grep -Eq "^sweep: run 1 is running in another sweep \(pid 4242 on other-host, heartbeat [0-9] s ago\); waiting for it$" "$TMP/f.log" &&
  _report ok || _report fail "fresh foreign claim: no waiting line :: $(cat "$TMP/f.log")"
grep -q "; 1 done by another sweep" "$TMP/f.log" && _report ok || _report fail "fresh foreign claim: summary :: $(cat "$TMP/f.log")"
expect_out "^done,1,4242,other-host,0$" query_rows "$DB" \
  "SELECT status, attempts, pid, host, (SELECT count(*) FROM metrics WHERE run_id = runs.id) FROM runs WHERE seed = 1"

# a fresh heartbeat that stops: the sweep waits while it is younger than the lease,
# then takes the run over and trains it once (lease 9 s: a slow start still sees it fresh)
DB="$TMP/lost/loralab.db"
claim_foreign "$TMP/lost" 0
LORALAB_HEARTBEAT_SECONDS=3 "$LORALAB" sweep "$TMP/h.yaml" --db "$DB" >"$TMP/l.log" 2>&1; rc=$?
[ $rc -eq 0 ] && _report ok || _report fail "lost foreign claim: exit $rc :: $(cat "$TMP/l.log")"
grep -Eq "^sweep: run 1 is running in another sweep \(pid 4242 on other-host, heartbeat [0-8] s ago\); waiting for it$" "$TMP/l.log" &&
  grep -Eq "^sweep: run 1: worker pid 4242 on other-host sent no heartbeat for ([9]|[1-9][0-9]) s \(lease 9 s\); it runs here$" "$TMP/l.log" &&
  _report ok || _report fail "lost foreign claim: waited, then reclaimed :: $(cat "$TMP/l.log")"
expect_out "^done,2,$(hostname)$" query_rows "$DB" "SELECT status, attempts, host FROM runs WHERE seed = 1"

# a running sweep refreshes its runs' heartbeats (every 0.2 s here)
lora_sweep_file beat "1" 3000 > "$TMP/b.yaml"
DB="$TMP/beat/loralab.db"
LORALAB_HEARTBEAT_SECONDS=0.2 "$LORALAB" sweep "$TMP/b.yaml" --db "$DB" --threads 1 >"$TMP/b.log" 2>&1 &
pa=$!
first=""
for i in $(seq 1 200); do
  first=$(sqlite3 "$DB" "SELECT heartbeat FROM runs WHERE status = 'running'" 2>/dev/null)
  [ -n "$first" ] && break
  sleep 0.05
done
sleep 1
later=$(sqlite3 "$DB" "SELECT heartbeat FROM runs WHERE status = 'running'" 2>/dev/null)
kill $pa; wait $pa 2>/dev/null
[ -n "$first" ] && [ -n "$later" ] && awk -v a="$first" -v b="$later" 'BEGIN { exit !(b - a >= 0.5 && b - a < 5) }' &&
  _report ok || _report fail "heartbeat not refreshed: $first then $later :: $(cat "$TMP/b.log")"
