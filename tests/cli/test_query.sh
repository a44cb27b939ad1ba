# tests/cli/test_query.sh — status, query, report and plot on a small hand-made database
# (sourced by tests/cli/run.sh). `loralab status` creates the schema; the rows are written
# with the sqlite3 CLI; every output is compared with the exact expected text.

# tq_exact FILE CMD...: CMD exits 0 and prints exactly the contents of FILE.
tq_exact() {
  local want=$1; shift
  "$@" >"$TMP/tq_out" 2>"$TMP/tq_err"; local rc=$?
  if [ $rc -eq 0 ] && cmp -s "$want" "$TMP/tq_out"; then _report ok
  else _report fail "exit $rc from: $* :: diff want got: $(diff "$want" "$TMP/tq_out" | head -20) :: err: $(cat "$TMP/tq_err")"; fi
}

DB=$TMP/q/results.db
expect_out 'results.db: no sweeps yet$' "$LORALAB" status --db "$DB"
expect_out '^4$' sqlite3 "$DB" "PRAGMA user_version"

sqlite3 "$DB" <<'EOF'
INSERT INTO sweeps (name, file) VALUES ('t6', 't6.yaml');
INSERT INTO runs (hash, config, status, task, metric, method, targets, rank, seed, trainable_params) VALUES
 ('aaaa1111', '{"lora":{"rank":1,"targets":"q"},"seed":1}', 'done', 'spam', 'accuracy', 'lora', 'q', 1, 1, 256),
 ('aaaa2222', '{"lora":{"rank":1,"targets":"q"},"seed":2}', 'done', 'spam', 'accuracy', 'lora', 'q', 1, 2, 256),
 ('bbbb1111', '{"lora":{"rank":4,"targets":"q"},"seed":1}', 'done', 'spam', 'accuracy', 'lora', 'q', 4, 1, 1024),
 ('cccc1111', '{"lora":{"rank":1,"targets":"q,v"},"seed":1}', 'done', 'spam', 'accuracy', 'lora', 'q,v', 1, 1, 512),
 ('dddd1111', '{"method":"ft","seed":1}', 'failed', 'spam', 'accuracy', 'ft', NULL, NULL, 1, NULL),
 ('eeee1111', '{"method":"bitfit","seed":1}', 'pending', 'spam', 'accuracy', 'bitfit', NULL, NULL, 1, NULL);
UPDATE runs SET error = 'loss is NaN, "step" 7' || char(10) || 'trace' WHERE hash = 'dddd1111';
INSERT INTO sweep_runs SELECT 1, id, id FROM runs;
INSERT INTO metrics VALUES
 (1, 100, 'test', 'accuracy', 0.5), (2, 100, 'test', 'accuracy', 0.7), (3, 100, 'test', 'accuracy', 0.9),
 (4, 100, 'test', 'accuracy', 0.8), (1, 100, 'test', 'baseline_accuracy', 0.55),
 (2, 100, 'test', 'baseline_accuracy', 0.55), (4, 100, 'test', 'baseline_accuracy', 0.55),
 (1, 10, 'train', 'loss', 2.5), (1, 20, 'train', 'loss', 2.0), (1, 20, 'validation', 'loss', 2.25);
EOF

# ---- status ----
cat > "$TMP/want" <<'EOF'
sweep  total  done  failed  running  pending  interrupted
-----  -----  ----  ------  -------  -------  -----------
t6         6     4       1        0        1            0

failed and interrupted runs:
  t6  run 5 (dddd1111) failed, ft seed=1: loss is NaN, "step" 7
EOF
tq_exact "$TMP/want" "$LORALAB" status --db "$DB"
tq_exact "$TMP/want" "$LORALAB" status t6 --db "$DB"
expect_fail 2 "no sweep named 'nope' (sweeps: t6)" "$LORALAB" status nope --db "$DB"
# the counts per sweep as CSV (report's emitter: RFC 4180, CRLF) and JSON, one record per sweep
printf 'sweep,total,done,failed,running,pending,interrupted\r\nt6,6,4,1,0,1,0\r\n' > "$TMP/want"
tq_exact "$TMP/want" "$LORALAB" status --csv --db "$DB"
printf '[{"sweep":"t6","total":6,"done":4,"failed":1,"running":0,"pending":1,"interrupted":0}]\n' > "$TMP/want"
tq_exact "$TMP/want" "$LORALAB" status t6 --json --db "$DB"
printf 'sweep,total,done,failed,running,pending,interrupted\r\n' > "$TMP/want"
tq_exact "$TMP/want" "$LORALAB" status --csv --db "$TMP/q/empty.db"
printf '[]\n' > "$TMP/want"
tq_exact "$TMP/want" "$LORALAB" status --json --db "$TMP/q/empty.db"
expect_fail 2 "status: --watch, --csv and --json exclude each other" "$LORALAB" status --csv --json --db "$DB"
expect_fail 2 "status: --watch, --csv and --json exclude each other" "$LORALAB" status --watch --json --db "$DB"
expect_out '^  --csv  +the runs per sweep by status as CSV' "$LORALAB" status --help
expect_out '^  --json  +the runs per sweep by status as a JSON array' "$LORALAB" status --help

# ---- query: table, CSV (RFC 4180, CRLF), JSON ----
cat > "$TMP/want" <<'EOF'
id  hash      rank  value
--  --------  ----  -----
 1  aaaa1111     1    0.5
 4  cccc1111     1    0.8
 5  dddd1111
EOF
tq_exact "$TMP/want" "$LORALAB" query "SELECT r.id, r.hash, r.rank, m.value FROM runs r LEFT JOIN metrics m
  ON m.run_id = r.id AND m.name = 'accuracy' WHERE r.id IN (1, 4, 5) ORDER BY r.id" --db "$DB"
printf 'id,hash,error,x\r\n4,cccc1111,,0.25\r\n5,dddd1111,"loss is NaN, ""step"" 7\ntrace",0.25\r\n' > "$TMP/want"
tq_exact "$TMP/want" "$LORALAB" query "SELECT id, hash, error, 0.25 AS x FROM runs WHERE id IN (4, 5)" --csv --db "$DB"
printf '[{"id":1,"task":"spam","rank":1,"value":0.1,"error":null},{"id":5,"task":"spam","rank":null,"value":0.1,"error":"loss is NaN, \\"step\\" 7\\ntrace"}]\n' > "$TMP/want"
tq_exact "$TMP/want" "$LORALAB" query "SELECT id, task, rank, 0.1 AS value, error FROM runs WHERE id IN (1, 5)" --json --db "$DB"
printf '[]\n' > "$TMP/want"
tq_exact "$TMP/want" "$LORALAB" query "SELECT * FROM runs WHERE id > 100" --json --db "$DB"

# ---- query: errors ----
expect_fail 2 "no such column: nope" "$LORALAB" query "SELECT nope FROM runs" --db "$DB"
expect_fail 2 "only reading statements are allowed" "$LORALAB" query "DELETE FROM runs" --db "$DB"
expect_fail 2 "one SQL statement expected" "$LORALAB" query "SELECT 1; SELECT 2" --db "$DB"
expect_fail 2 "--csv and --json exclude each other" "$LORALAB" query "SELECT 1" --csv --json --db "$DB"
expect_fail 2 "missing.db: no such database" "$LORALAB" query "SELECT 1" --db "$TMP/missing.db"
head -c 4096 /dev/urandom | tr '\0' x > "$TMP/garbage.db"
expect_fail 2 "garbage.db: file is not a database" "$LORALAB" query "SELECT 1" --db "$TMP/garbage.db"
expect_out '^  --csv' "$LORALAB" query --help
expect_out '^  --timeout .*default 30' "$LORALAB" query --help
# a recursive query without LIMIT never ends: it is stopped at the time limit, exit 2
"$LORALAB" query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c" \
  --timeout 0.5 --db "$DB" >"$TMP/tq_out" 2>"$TMP/tq_err"; rc=$?
if [ $rc -eq 2 ] && [ "$(tail -1 "$TMP/tq_err")" = "loralab: query: the statement ran past the time limit of 0.5 s and was stopped (--timeout SECONDS raises it)" ]
then _report ok; else _report fail "recursive query with --timeout 0.5: exit $rc, stderr: $(cat "$TMP/tq_err")"; fi
expect_fail 2 "--timeout" "$LORALAB" query "SELECT 1" --timeout 0 --db "$DB"
expect_out '^1 *$' sqlite3 "$DB" "SELECT count(*) FROM runs WHERE id = 1"   # nothing was deleted

# ---- report ----
cat > "$TMP/want" <<'EOF'
table6: spam, test accuracy, mean ± std, n, 95% t interval over seeds

weight type  r=1                                r=4
-----------  ---------------------------------  ---------
Wq           0.600 ± 0.141 n=2 [-0.671, 1.871]  0.900 n=1
Wq,Wv        0.800 n=1                          -

left out: 1 pending 1 failed
EOF
tq_exact "$TMP/want" "$LORALAB" report table6 --sweep t6 --db "$DB"
cat > "$TMP/want" <<'EOF'
methods: spam, test accuracy, mean ± std, 95% t interval over seeds

method  config     trainable  head  test accuracy  95% CI           n  baseline  not converged
------  ---------  ---------  ----  -------------  ---------------  -  --------  -------------
lora    Wq r=1           256     -  0.600 ± 0.141  [-0.671, 1.871]  2     0.550
lora    Wq r=4          1024     -  0.900          -                1         -
lora    Wq,Wv r=1        512     -  0.800          -                1     0.550

left out: 1 pending 1 failed
EOF
tq_exact "$TMP/want" "$LORALAB" report methods --db "$DB"
expect_out '^ 5  dddd1111  failed +spam +ft +1 +- +- +- +- +- +- +loss is NaN, "step" 7$' "$LORALAB" report runs --db "$DB"
expect_fail 2 "unknown table 'table9'" "$LORALAB" report table9 --db "$DB"
expect_fail 2 "no sweep named 'nope'" "$LORALAB" report table6 --sweep nope --db "$DB"
expect_fail 2 "no amplification results" "$LORALAB" report table7 --db "$DB"

# ---- plot ----
expect_ok "$LORALAB" plot all --sweep t6 --db "$DB"
for f in params-spam rank-spam curves-1; do
  for ext in gp png svg; do
    [ -s "$TMP/q/plots/t6/$f.$ext" ] && _report ok || _report fail "plot did not write $TMP/q/plots/t6/$f.$ext"
  done
  head -c 8 "$TMP/q/plots/t6/$f.png" | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a' && _report ok || _report fail "$f.png is not a PNG"
  grep -q '<svg' "$TMP/q/plots/t6/$f.svg" && _report ok || _report fail "$f.svg is not an SVG"
done
grep -q '^set logscale x$' "$TMP/q/plots/t6/params-spam.gp" && _report ok || _report fail "params plot is not log x"
# LoRA is one series per target set (a line joins the ranks of one set), and the baseline is a
# series of its own, so that the y autoscale includes it
grep -q "\$d0 using 1:2:3 with yerrorlines pt 7 title 'lora Wq', \$d1 using 1:2:3 with yerrorlines pt 7 title 'lora Wq,Wv', \$baseline using 1:2 with lines" "$TMP/q/plots/t6/params-spam.gp" && _report ok || _report fail "params plot: no lora series per target set, or no baseline series"
grep -Pzq '\$baseline << EOD\n256 0.55\n1024 0.55\nEOD' "$TMP/q/plots/t6/params-spam.gp" && _report ok || _report fail "params plot: baseline series"
# curves: every run in one figure (only run 1 recorded a loss here)
for ext in gp png svg; do
  [ -s "$TMP/q/plots/t6/curves-sweep-t6.$ext" ] && _report ok || _report fail "plot did not write curves-sweep-t6.$ext"
done
grep -q "^plot \$r1_train using 1:2 with lines lw 1.5 lc 1 title 'run 1: lora Wq r=1, seed 1', \$r1_validation using 1:2 with points pt 7 ps 0.8 lc 1 notitle$" "$TMP/q/plots/t6/curves-sweep-t6.gp" && _report ok || _report fail "curves overlay: plot command"
expect_out "^$TMP/c/curves-sweep-t6.png$" "$LORALAB" plot curves --sweep t6 --db "$DB" --out "$TMP/c"
[ ! -e "$TMP/c/curves-1.png" ] && _report ok || _report fail "plot curves drew per-run figures without --per-run"
expect_out "^$TMP/c2/curves-1.png$" "$LORALAB" plot curves --per-run --sweep t6 --db "$DB" --out "$TMP/c2"
# the kept script redraws the figure by itself
(cd "$TMP/q/plots/t6" && rm rank-spam.png && gnuplot rank-spam.gp && [ -s rank-spam.png ]) && _report ok || _report fail "rank-spam.gp does not rerun"
expect_out "^$TMP/out/params-spam.png$" "$LORALAB" plot params --db "$DB" --out "$TMP/out"
expect_fail 2 "unknown figure 'pie'" "$LORALAB" plot pie --db "$DB"
expect_fail 2 "/proc/loralab: cannot create directory" "$LORALAB" plot params --db "$DB" --out /proc/loralab/x
# a failing gnuplot: exit 1 with gnuplot's own message
mkdir -p "$TMP/fakebin"
printf '#!/bin/sh\necho "line 3: undefined variable: fake" >&2\nexit 1\n' > "$TMP/fakebin/gnuplot"
chmod +x "$TMP/fakebin/gnuplot"
expect_fail 1 "failed (exit status 1): line 3: undefined variable: fake" env PATH="$TMP/fakebin:$PATH" "$LORALAB" plot rank --db "$DB" --out "$TMP/out2"
# no gnuplot on PATH: exit 1 too, saying what to install
mkdir -p "$TMP/nobin"
expect_fail 1 "failed (exit status 127): cannot run gnuplot: No such file or directory (install gnuplot-nox: scripts/setup.sh)" \
  env PATH="$TMP/nobin" "$LORALAB" plot rank --db "$DB" --out "$TMP/out3"
