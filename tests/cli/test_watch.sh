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
