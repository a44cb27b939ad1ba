# tests/cli/test_watch.sh — reading a sweep while it runs: query --json with the config as a
# JSON object (sourced by tests/cli/run.sh).
W=$TMP/w
"$LORALAB" status --db "$W/loralab.db" >/dev/null
sqlite3 "$W/loralab.db" "INSERT INTO runs (hash, config, status, method, seed) VALUES
  ('aaaa0001', '{\"method\":\"lora\",\"lora\":{\"rank\":4},\"seed\":1}', 'done', 'lora', 1);
  INSERT INTO sweeps (name, file, analyze) VALUES ('s', 's.yaml', '{\"plot\":false}');"
printf '[{"id":1,"config":{"method":"lora","lora":{"rank":4},"seed":1}}]\n' > "$TMP/want"
expect_out "^$(sed 's/[][{}.]/\\&/g' "$TMP/want")\$" "$LORALAB" query "SELECT id, config FROM runs" --json --db "$W/loralab.db"
expect_out '^\[\{"c":\{"method":"lora",' "$LORALAB" query "SELECT config AS c FROM runs" --json --db "$W/loralab.db"
expect_out '^\[\{"analyze":\{"plot":false\},"name":"s"\}\]$' "$LORALAB" query "SELECT analyze, name FROM sweeps" --json --db "$W/loralab.db"
# other text stays a string, also when it looks like JSON
expect_out '^\[\{"t":"\{\\"a\\":1\}"\}\]$' "$LORALAB" query "SELECT '{\"a\":1}' AS t" --json --db "$W/loralab.db"

# the progress view: per run step k/N, loss, last validation metric, tokens/s, ETA; a sweep
# line. Not a terminal: plain lines (here every 0.05 s instead of 30 s).
FIXW=$(cd "$(dirname "$LORALAB")/.." && pwd)/tests/fixtures
"$LORALAB" init --preset nano --seed 1 --out "$W/base" >/dev/null
cat > "$W/p.yaml" <<YAML
name: progress
base: {checkpoint: $W/base}
task: {name: glue-sst2, path: $FIXW/sst2_tiny, max_len: 32}
train: {steps: 300, batch: 4, lr: 1.0e-3, eval_every: 20}
grid:
  seed: [1, 2]
YAML
LORALAB_PROGRESS_EVERY=0.05 "$LORALAB" sweep "$W/p.yaml" --db "$W/p/loralab.db" --jobs 2 >/dev/null 2>"$W/plain.txt"
expect_ok grep -Eq '^run [12]: train step [0-9]+/300 loss [0-9]+\.[0-9]{4} \| validation accuracy [0-9]\.[0-9]{4} \| [0-9]+ tok/s \| eta [0-9]+s$' "$W/plain.txt"
expect_ok grep -Eq '^sweep: [01]/2 settled \(done [01], failed 0\), [12] running, elapsed [0-9]+s, eta ([0-9]+s|[0-9]+m[0-9]{2}s)$' "$W/plain.txt"
grep -q $'\033' "$W/plain.txt" && _report fail "plain progress has escape sequences" || _report ok
# a terminal: the view is redrawn in place (cursor up, clear line) and ends with the sweep line
# (every 0.01 s: the two runs may finish within the default 0.25 s)
script -qec "LORALAB_PROGRESS_EVERY=0.01 '$LORALAB' sweep '$W/p.yaml' --db '$W/t/loralab.db' --jobs 2 >/dev/null" /dev/null > "$W/live.txt" 2>&1
expect_ok grep -q $'\033\\[K' "$W/live.txt"
expect_ok grep -Eq $'\033\\[[0-9]+A' "$W/live.txt"
expect_ok grep -Eaq 'sweep: 2/2 settled \(done 2, failed 0\), 0 running' "$W/live.txt"

# status --watch: the same view read from the database by another process, until nothing runs
V=$TMP/v/loralab.db
"$LORALAB" status --db "$V" >/dev/null
sqlite3 "$V" "INSERT INTO sweeps (name, file) VALUES ('w', 'w.yaml');
  INSERT INTO runs (hash, config, status, metric, method, seed, started) VALUES
   ('aaaa0001', '{\"method\":\"lora\",\"train\":{\"steps\":100},\"seed\":1}', 'running', 'accuracy', 'lora', 1,
    strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 seconds')),
   ('aaaa0002', '{\"method\":\"lora\",\"seed\":2}', 'done', 'accuracy', 'lora', 2, NULL);
  INSERT INTO sweep_runs (sweep_id, run_id, position) VALUES (1, 1, 1), (1, 2, 2);
  INSERT INTO metrics (run_id, step, split, name, value) VALUES (1, 39, 'train', 'loss', 0.61),
   (1, 49, 'train', 'loss', 0.5), (1, 40, 'validation', 'accuracy', 0.75), (1, 40, 'validation', 'loss', 0.4);"
timeout 20 "$LORALAB" status w --watch --every 0.1 --db "$V" > "$TMP/watch.txt" 2>&1 &
wpid=$!
for i in $(seq 1 100); do grep -q '^run 1:' "$TMP/watch.txt" && break; sleep 0.1; done
sqlite3 "$V" "UPDATE runs SET status = 'done' WHERE id = 1"
wait $wpid && _report ok || _report fail "status --watch did not end when nothing ran"
# step 49 of 100 logged t >= 10 s after the start: t/50 s per step, 50 steps left, so the
# run's ETA is about t as well
expect_ok grep -Eq '^run 1: train step 50/100 loss 0\.5000 \| validation accuracy 0\.7500 \| eta (1[0-9]|2[0-9])s$' "$TMP/watch.txt"
expect_ok grep -Eq '^sweep: 1/2 settled \(done 1, failed 0\), 1 running, elapsed (1[0-9]|2[0-9])s, eta (1[0-9]|2[0-9])s$' "$TMP/watch.txt"
expect_out '^sweep: 2/2 settled \(done 2, failed 0\), 0 running' tail -1 "$TMP/watch.txt"
