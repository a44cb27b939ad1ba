# tests/cli/test_base_hash.sh — base.sha256 pins a base checkpoint by content: the right hash
# runs, a wrong one stops the sweep before any run with both hashes (exit 2), a malformed one or
# one without base.checkpoint is refused, and setting it changes the run's hash.

expect_ok "$LORALAB" init --preset nano --seed 1 --out "$TMP/base"
sha=$(sha256sum "$TMP/base/model.safetensors" | cut -d' ' -f1)
other=$(printf '%064d' 0)
cat > "$TMP/pin.yaml" <<YAML
name: pin
base: {checkpoint: $TMP/base, sha256: $sha}
task: {name: spam, max_len: 32}
train: {steps: 2, batch: 2, eval_every: 0}
method: lora
YAML
sed "s/$sha/$other/" "$TMP/pin.yaml" > "$TMP/wrong.yaml"
grep -v sha256 "$TMP/pin.yaml" | sed "s|^base: .*|base: {checkpoint: $TMP/base}|" > "$TMP/nopin.yaml"

expect_out '^sweep pin: 1 runs' "$LORALAB" sweep "$TMP/pin.yaml" --db "$TMP/a.db" --dry-run
expect_fail 2 "wrong.yaml:2:" "$LORALAB" sweep "$TMP/wrong.yaml" --db "$TMP/b.db"
expect_fail 2 ": base.sha256: $TMP/base/model.safetensors has sha256 $sha, expected $other" \
  "$LORALAB" sweep "$TMP/wrong.yaml" --db "$TMP/b.db"
# a refused base leaves no run in the database
expect_ok test "$(sqlite3 "$TMP/b.db" 'SELECT count(*) FROM runs' 2>/dev/null || echo 0)" = 0
expect_fail 2 "override 'base.sha256=ABC': 'ABC' is not a sha256: expected 64 lowercase hex digits" \
  "$LORALAB" sweep "$TMP/pin.yaml" --db "$TMP/c.db" --dry-run base.sha256=ABC
expect_fail 2 "base.sha256: pins a checkpoint's content: set base.checkpoint too" \
  "$LORALAB" sweep "$TMP/nopin.yaml" --db "$TMP/d.db" --dry-run base.checkpoint= base.preset=nano base.sha256=$sha

# The pinned and the unpinned file describe the same training but not the same run record.
pinned=$("$LORALAB" sweep "$TMP/pin.yaml" --db "$TMP/e.db" --dry-run | sed -n '2s/ .*//p')
unpinned=$("$LORALAB" sweep "$TMP/nopin.yaml" --db "$TMP/e.db" --dry-run | sed -n '2s/ .*//p')
# base.sha256 enters the run's hash when set
expect_ok test -n "$pinned" -a -n "$unpinned" -a "$pinned" != "$unpinned"
