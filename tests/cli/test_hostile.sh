# tests/cli/test_hostile.sh — hostile input (sourced by tests/cli/run.sh): a shared results
# database whose text would run commands through gnuplot or write files through `query`,
# crafted YAML, out-of-range values, memory that does not fit, non-regular files.

# ---- plot: text from the database never becomes a gnuplot command ----
H=$TMP/h
mkdir -p "$H"
HDB=$H/hostile.db
expect_ok "$LORALAB" status --db "$HDB"
# each field that reaches a script carries a newline, then system(), then a comment; the
# metric name ends in a backslash, which would continue a comment line onto the next one
sqlite3 "$HDB" <<EOF
INSERT INTO sweeps (name, file) VALUES ('s', 's.yaml');
INSERT INTO runs (hash, config, status, task, metric, method, targets, rank, seed, trainable_params, label) VALUES
 ('aaaa1111', '{}', 'done', 'spam', 'acc' || char(10) || 'system(''touch $H/P1'')' || char(10) || '#\\', 'lora', 'q', 1, 1, 256,
  'x' || char(10) || 'system(''touch $H/P2'')' || char(10) || '#'),
 ('bbbb1111', '{"method":"ft"}', 'done', 'spam', 'acc' || char(10) || 'system(''touch $H/P1'')' || char(10) || '#\\',
  'ft'')' || char(13) || 'system(''touch $H/P3'')' || char(10) || 'print(''', NULL, NULL, 1, 1000, NULL);
INSERT INTO sweep_runs SELECT 1, id, id FROM runs;
INSERT INTO metrics VALUES
 (1, 100, 'test', 'acc' || char(10) || 'system(''touch $H/P1'')' || char(10) || '#\\', 0.5),
 (2, 100, 'test', 'acc' || char(10) || 'system(''touch $H/P1'')' || char(10) || '#\\', 0.6),
 (1, 10, 'train', 'loss', 2.5), (1, 20, 'train', 'loss', 2.0);
EOF
expect_ok "$LORALAB" plot curves --sweep s --db "$HDB"
expect_ok "$LORALAB" plot params --sweep s --db "$HDB"
for p in P1 P2 P3; do
  [ ! -e "$H/$p" ] && _report ok || _report fail "plot ran a command from the database ($H/$p exists)"
done
# the scripts are still whole: the titles are there, flattened to one line
grep -q "title 'run 1: lora Wq r=1 x system(''touch $H/P2'') #, seed 1'$" "$H/plots/s/curves-sweep-s.gp" \
  && _report ok || _report fail "curves-sweep-s.gp title: $(grep -a 'run 1' "$H/plots/s/curves-sweep-s.gp")"
grep -q "title 'ft'') system(''touch $H/P3'') print('''" "$H/plots/s/params-spam.gp" \
  && _report ok || _report fail "params-spam.gp series title: $(grep -a ft "$H/plots/s/params-spam.gp")"

# ---- query reads, and nothing else ----
expect_fail 2 "only reading statements are allowed (SELECT, WITH, functions): 'VACUUM INTO" "$LORALAB" query "VACUUM INTO '$H/copy.db'" --db "$HDB"
[ ! -e "$H/copy.db" ] && _report ok || _report fail "query VACUUM INTO wrote $H/copy.db"
expect_fail 2 "not authorized to use function: fts3_tokenizer" "$LORALAB" query "SELECT fts3_tokenizer('simple', x'0000000000000000')" --db "$HDB"
expect_fail 2 "not authorized to use function: load_extension" "$LORALAB" query "SELECT load_extension('$H/x')" --db "$HDB"
expect_fail 2 "only reading statements are allowed" "$LORALAB" query "ATTACH '$H/att.db' AS a" --db "$HDB"
[ ! -e "$H/att.db" ] && _report ok || _report fail "query ATTACH created $H/att.db"
expect_fail 2 "only reading statements are allowed" "$LORALAB" query "PRAGMA journal_mode = DELETE" --db "$HDB"
expect_fail 2 "only reading statements are allowed" "$LORALAB" query "INSERT INTO sweeps (name, file) VALUES ('x', 'x')" --db "$HDB"
expect_out '^ *2$' "$LORALAB" query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 2) SELECT max(x) FROM c" --db "$HDB"

# ---- status, report, plot and query on a read-only database in a read-only directory ----
# (as an unprivileged user: root writes anyway)
RO=$TMP/ro
mkdir -p "$RO/d"
cp "$HDB" "$RO/d/r.db"
sqlite3 "$RO/d/r.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
rm -f "$RO/d/r.db-wal" "$RO/d/r.db-shm"
chmod 755 "$TMP" "$RO"; chmod 555 "$RO/d"; chmod 444 "$RO/d/r.db"
if [ "$(id -u)" = 0 ]; then AS=(setpriv --reuid=65534 --regid=65534 --clear-groups); else AS=(); fi
expect_out '^s +2 +2 +0' "${AS[@]}" "$LORALAB" status --db "$RO/d/r.db"
expect_out '^runs: 2$' "${AS[@]}" "$LORALAB" report runs --db "$RO/d/r.db"
expect_out '^ *2$' "${AS[@]}" "$LORALAB" query "SELECT count(*) FROM runs" --db "$RO/d/r.db"
[ ! -e "$RO/d/r.db-wal" ] && _report ok || _report fail "a read-only database got a -wal file"
chmod 755 "$RO/d"; chmod 644 "$RO/d/r.db"

# ---- crafted YAML: each fails fast, in bounded memory, with its own message and exit 2 ----
# (3 GB of address space and 30 s: before the bounds, these segfaulted, grew without end or
# ran for minutes)
Y=$TMP/yaml
mkdir -p "$Y"
bounded() { (ulimit -v 3000000; timeout 30 "$@"); }
printf 'name: y\ntask: spam\nanalyze: &r {x: *r}\n' > "$Y/selfref.yaml"
expect_fail 2 "selfref.yaml:3:10: analyze: nested more than 64 levels deep (an alias to an enclosing block?)" \
  bounded "$LORALAB" sweep "$Y/selfref.yaml" --dry-run --db "$Y/y.db"
{ printf 'name: y\ntask: spam\nanalyze:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n'
  for i in 1 2 3 4 5 6 7 8 9 10 11; do
    printf '  a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n' $i $i $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1))
  done; } > "$Y/bomb.yaml"
expect_fail 2 "analyze: expands to more than 100000 values (aliases are copied where they are used)" \
  bounded "$LORALAB" sweep "$Y/bomb.yaml" --dry-run --db "$Y/y.db"
{ printf 'name: y\ntask: spam\nanalyze: '; head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; echo; } > "$Y/deep.yaml"
expect_fail 2 "deep.yaml:3:73: nested more than 64 levels deep" bounded "$LORALAB" sweep "$Y/deep.yaml" --dry-run --db "$Y/y.db"
{ printf 'name: y\ntask: spam\ngrid:\n  seed: ['; seq -s, 1 1500000 | tr -d '\n'; echo ']'; } > "$Y/long.yaml"
expect_fail 2 "long.yaml:4:108904: a list of more than 20000 values (a sweep file runs at most 20000)" \
  bounded "$LORALAB" sweep "$Y/long.yaml" --dry-run --db "$Y/y.db"
{ printf 'name: y\ntask: spam\ngrid:\n  seed: ['; seq -s, 1 6000000 | tr -d '\n'; echo ']'; } > "$Y/huge.yaml"
expect_fail 2 "huge.yaml: 46888931 bytes; a sweep file is at most 16777216" bounded "$LORALAB" sweep "$Y/huge.yaml" --dry-run --db "$Y/y.db"
rm -f "$Y/huge.yaml" "$Y/long.yaml"
printf 'name: y\ntask: spam\ngrid:\n  seed: [%s]\n  lora.rank: [%s]\n' "$(seq -s, 1 200)" "$(seq -s, 1 200)" > "$Y/product.yaml"
expect_fail 2 "product.yaml:5:14: the grid expands to more than 20000 runs" bounded "$LORALAB" sweep "$Y/product.yaml" --dry-run --db "$Y/y.db"
printf 'name: y\ntask: spam\n---\nname: z\n' > "$Y/two.yaml"
expect_fail 2 "two.yaml:3:1: a second YAML document ('---'); a sweep file holds one" "$LORALAB" sweep "$Y/two.yaml" --dry-run --db "$Y/y.db"
[ ! -e "$Y/y.db" ] && _report ok || _report fail "a refused sweep file created its database"

# ---- analyze: and base checkpoints are checked before the first run (and by --dry-run) ----
cat > "$Y/an.yaml" <<'EOF'
name: an
task: spam
method: lora
grid:
  lora.rank: [2, 4]
analyze:
  subspace:
    pairs: [{a: {lora.rank: 2}, b: {lora.rank: 4}}]
    matrx: q
EOF
expect_fail 2 "an.yaml: sweep 'an': analyze.subspace: unknown key 'matrx'; valid keys: pairs, matrix, layers, i, j, seed" \
  "$LORALAB" sweep "$Y/an.yaml" --dry-run --db "$Y/y.db"
sed -i 's/matrx: q/matrix: q/; s/lora.rank: 4}/lora.rank: 8}/' "$Y/an.yaml"
expect_fail 2 "an.yaml: sweep 'an': analyze.subspace.pairs[0].b: pattern b matches no LoRA run of the sweep" \
  "$LORALAB" sweep "$Y/an.yaml" --dry-run --db "$Y/y.db"
sed -i 's/lora.rank: 8}/lora.rank: 4}/' "$Y/an.yaml"
expect_out '^sweep an: 2 runs' "$LORALAB" sweep "$Y/an.yaml" --dry-run --db "$Y/y.db"
printf 'name: an\ntask: spam\nmethod: lora\ngrid:\n  lora.rank: [2, 4]\nanalyze:\n  subspace: {pairs: [{a: {lora.rank: 2}, b: {lora.rank: 4}}]}\n  subspace: {pairs: [{a: {lora.rank: 4}, b: {lora.rank: 2}}]}\n' > "$Y/dup.yaml"
expect_fail 2 "dup.yaml:8:3: analyze: key 'subspace' is set twice in one mapping" "$LORALAB" sweep "$Y/dup.yaml" --dry-run --db "$Y/y.db"

expect_ok "$LORALAB" init --preset nano --seed 1 --out "$Y/ck"
mkdir -p "$Y/cknan" "$Y/ckcut"
cp "$Y/ck/config.json" "$Y/cknan/"; cp "$Y/ck/config.json" "$Y/ckcut/"
# a NaN (0x7fc00000, little-endian) written over the 4th float of the first tensor's data
hdr=$(od -An -tu8 -N8 "$Y/ck/model.safetensors" | tr -d ' ')
cp "$Y/ck/model.safetensors" "$Y/cknan/model.safetensors"
first=$(head -c $((8 + hdr)) "$Y/ck/model.safetensors" | tail -c "$hdr" | python3 -c 'import json,sys; h=json.load(sys.stdin); h.pop("__metadata__",None); print(min(v["data_offsets"][0] for v in h.values()))')
printf '\x00\x00\xc0\x7f' | dd of="$Y/cknan/model.safetensors" bs=1 seek=$((8 + hdr + first + 12)) conv=notrunc status=none
head -c $(( $(stat -c %s "$Y/ck/model.safetensors") / 2 )) "$Y/ck/model.safetensors" > "$Y/ckcut/model.safetensors"
for c in ck cknan ckcut; do printf 'name: %s\ntask: spam\nbase: {checkpoint: %s}\n' "$c" "$Y/$c" > "$Y/$c.yaml"; done
expect_out '^sweep ck: 1 runs' "$LORALAB" sweep "$Y/ck.yaml" --dry-run --db "$Y/y.db"
expect_fail 2 "cknan.yaml: base.checkpoint: $Y/cknan/model.safetensors: tensor 'wte.weight' holds NaN or infinity at element 3" \
  "$LORALAB" sweep "$Y/cknan.yaml" --dry-run --db "$Y/y.db"
expect_fail 2 "ckcut.yaml: base.checkpoint: $Y/ckcut/model.safetensors: tensor" "$LORALAB" sweep "$Y/ckcut.yaml" --db "$Y/y.db"
[ ! -e "$Y/y.db" ] && _report ok || _report fail "a refused sweep created its database"

# ---- FIFOs and other non-regular files are refused, not waited on ----
mkfifo "$Y/fifo.yaml" "$Y/fifo.txt"
expect_fail 2 "fifo.yaml: the sweep file is a FIFO; expected a regular file" timeout 20 "$LORALAB" sweep "$Y/fifo.yaml" --dry-run --db "$Y/y.db"
expect_fail 2 "fifo.txt: the text to tokenize is a FIFO; expected a regular file" timeout 20 "$LORALAB" tokenize --tokenizer byte "$Y/fifo.txt"
expect_fail 2 "fifo.txt: a data file is a FIFO; expected a regular file" timeout 20 "$LORALAB" eval-lm --checkpoint "$Y/ck" --text "$Y/fifo.txt"
mkdir -p "$Y/glue"; mkfifo "$Y/glue/train.tsv"
expect_fail 2 "train.tsv: a data file is a FIFO; expected a regular file" timeout 20 "$LORALAB" tasks glue-sst2 --path "$Y/glue"
mkdir -p "$Y/ckf"; cp "$Y/ck/config.json" "$Y/ckf/"; mkfifo "$Y/ckf/model.safetensors"
printf 'name: f\ntask: spam\nbase: {checkpoint: %s}\n' "$Y/ckf" > "$Y/ckf.yaml"
expect_fail 2 "ckf/model.safetensors: not a regular file" timeout 20 "$LORALAB" sweep "$Y/ckf.yaml" --dry-run --db "$Y/y.db"

# ---- silent wrong results: step counts in 64 bits, eval-lm only for LM losses ----
FIX=$(cd "$(dirname "$LORALAB")/.." && pwd)/tests/fixtures
expect_fail 2 "override 'train.epochs=2000000': expected an integer in [0, 1e+06], got 2000000" \
  "$LORALAB" sweep "$Y/ck.yaml" train.epochs=2000000 --dry-run --db "$Y/y.db"
# 1e6 epochs of 1,100 examples at batch 1: 1.1e9 steps, past the limit (and past 2^31 at 2e6)
mkdir -p "$Y/wide"
{ printf 'sentence\tlabel\n'; for i in $(seq 1 1100); do printf 'text %d\t%d\n' "$i" $((i % 2)); done; } > "$Y/wide/train.tsv"
cp "$FIX/sst2_tiny/dev.tsv" "$Y/wide/"
printf 'name: ep\nbase: {checkpoint: %s}\ntask: {name: glue-sst2, path: %s, max_len: 16}\ntrain: {batch: 1, epochs: 1000000}\nmethod: lora\n' "$Y/ck" "$Y/wide" > "$Y/ep.yaml"
expect_fail 1 "" timeout 60 "$LORALAB" run "$Y/ep.yaml" --db "$Y/ep/r.db"
expect_out '^failed,train.epochs=1000000 over 1100 train examples at batch 1 is 1100000000 steps; at most 1000000000' \
  "$LORALAB" query "SELECT status, error FROM runs" --csv --db "$Y/ep/r.db"

# a classification and a regression adapter (one step each on the fixtures), and an LM
# adapter made from the first with a NaN in its first tensor
cat > "$Y/ev.yaml" <<EOF
name: ev
base: {checkpoint: $Y/ck}
train: {steps: 1, batch: 2}
method: lora
lora.rank: 2
variants:
  - {task: {name: glue-sst2, path: $FIX/sst2_tiny, max_len: 16}}
  - {task: {name: glue-stsb, path: $FIX/glue/STS-B, max_len: 16}}
EOF
expect_ok "$LORALAB" sweep "$Y/ev.yaml" --db "$Y/ev/r.db"
cls=$("$LORALAB" query "SELECT hash FROM runs WHERE task = 'glue-sst2'" --csv --db "$Y/ev/r.db" | tr -d '\r' | tail -1)
reg=$("$LORALAB" query "SELECT hash FROM runs WHERE task = 'glue-stsb'" --csv --db "$Y/ev/r.db" | tr -d '\r' | tail -1)
printf 'The quick brown fox jumps over the lazy dog.\n' > "$Y/text.txt"
: > "$Y/empty.txt"
printf 'x' > "$Y/one.txt"
expect_fail 2 "$Y/ev/runs/$cls/adapter: a classification adapter (head cls); this needs a language-model adapter" \
  "$LORALAB" eval-lm --checkpoint "$Y/ck" --adapter "$Y/ev/runs/$cls/adapter" --text "$Y/text.txt"
expect_fail 2 "$Y/ev/runs/$reg/adapter: a regression adapter (head reg); this needs a language-model adapter" \
  "$LORALAB" eval-lm --checkpoint "$Y/ck" --adapter "$Y/ev/runs/$reg/adapter" --text "$Y/text.txt"
expect_fail 2 "eval-lm: $Y/empty.txt holds 0 bytes: no token to predict (at least 2 needed)" \
  "$LORALAB" eval-lm --checkpoint "$Y/ck" --text "$Y/empty.txt"
expect_fail 2 "eval-lm: $Y/one.txt holds 1 bytes: no token to predict (at least 2 needed)" \
  "$LORALAB" eval-lm --checkpoint "$Y/ck" --text "$Y/one.txt"
expect_fail 2 "$Y/cknan/model.safetensors: tensor 'wte.weight' holds NaN or infinity at element 3" \
  "$LORALAB" eval-lm --checkpoint "$Y/cknan" --text "$Y/text.txt"
python3 - "$Y/ev/runs/$cls/adapter" "$Y/lmnan" <<'EOF'
import json, os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
c = json.load(open(src + '/adapter_config.json'))
c.update(head='lm', n_classes=0, task_type='CAUSAL_LM')
json.dump(c, open(dst + '/adapter_config.json', 'w'))
d = open(src + '/adapter_model.safetensors', 'rb').read()
n = struct.unpack('<Q', d[:8])[0]; h = json.loads(d[8:8 + n]); data = d[8 + n:]
meta = h.pop('__metadata__', None)
out, blobs, off = {}, [], 0
for k, v in sorted(h.items(), key=lambda kv: kv[1]['data_offsets'][0]):
    if k.startswith('score'): continue
    b = bytearray(data[v['data_offsets'][0]:v['data_offsets'][1]])
    if not blobs: b[0:4] = struct.pack('<f', float('nan'))
    out[k] = dict(dtype=v['dtype'], shape=v['shape'], data_offsets=[off, off + len(b)])
    off += len(b); blobs.append(bytes(b))
if meta: out['__metadata__'] = meta
hj = json.dumps(out).encode(); hj += b' ' * (-len(hj) % 8)
open(dst + '/adapter_model.safetensors', 'wb').write(struct.pack('<Q', len(hj)) + hj + b''.join(blobs))
EOF
expect_fail 2 "eval-lm: the loss is NaN: $Y/lmnan holds non-finite weights" \
  "$LORALAB" eval-lm --checkpoint "$Y/ck" --adapter "$Y/lmnan" --text "$Y/text.txt"
expect_out '^loss=[0-9.]+ tokens=44$' "$LORALAB" eval-lm --checkpoint "$Y/ck" --text "$Y/text.txt"

# ---- memory: computed before allocating; what does not fit fails at once with the figures ----
# (LORALAB_MEMORY_LIMIT makes the available memory the same on every machine)
expect_fail 2 "bench: preset gpt2-large, method ft, batch 2 x seq 1024 needs 24014.6 MiB (weights 2952.7, gradients 2952.7, optimizer 5905.4, activations 12203.8 MiB); this machine has 20480.0 MiB available" \
  env LORALAB_MEMORY_LIMIT=20G timeout 20 "$LORALAB" bench --preset gpt2-large --batch 2 --seq 1024
# a config.json claiming d_model 1e9 is refused while reading it
mkdir -p "$Y/ckhuge"; cp "$Y/ck/model.safetensors" "$Y/ckhuge/"
sed 's/"n_embd": *[0-9]*/"n_embd": 1000000000/' "$Y/ck/config.json" > "$Y/ckhuge/config.json"
expect_fail 2 "ckhuge/config.json: field 'n_embd' must be an integer in [1, 65536], got 1000000000" \
  timeout 20 "$LORALAB" eval-lm --checkpoint "$Y/ckhuge" --text "$Y/text.txt"
printf 'name: mem\nbase: {checkpoint: %s}\ntask: {name: glue-sst2, path: %s, max_len: 16}\ntrain: {steps: 2, batch: 2}\nmethod: lora\ngrid:\n  seed: [1, 2]\n' \
  "$Y/ck" "$FIX/sst2_tiny" > "$Y/mem.yaml"
# too little for one run: each run fails with its need, nothing is allocated
expect_fail 1 "" env LORALAB_MEMORY_LIMIT=100K "$LORALAB" sweep "$Y/mem.yaml" --jobs 2 --db "$Y/mem/r.db"
expect_out '^failed,"this run needs 0.9 MiB \(weights 0.5, gradients 0.0, optimizer 0.0, activations 0.3 MiB\); this machine has 0.1 MiB available"' \
  "$LORALAB" query "SELECT DISTINCT status, error FROM runs" --csv --db "$Y/mem/r.db"
# enough for one run at a time, not two: the sweep runs them one at a time, and both finish
rm -rf "$Y/mem"
env LORALAB_MEMORY_LIMIT=1500K "$LORALAB" sweep "$Y/mem.yaml" --jobs 2 --db "$Y/mem/r.db" >/dev/null 2>"$Y/mem.err"
[ $? -eq 0 ] && _report ok || _report fail "sweep under a 1500K limit failed: $(cat "$Y/mem.err")"
grep -q "^sweep mem: 1 runs at a time fit in the 1.5 MiB available (the largest needs 0.9 MiB); running 1 at a time, not 2$" "$Y/mem.err" \
  && _report ok || _report fail "no note of the memory limit on parallel runs: $(cat "$Y/mem.err")"
expect_out '^done,2' "$LORALAB" query "SELECT status, count(*) FROM runs GROUP BY status" --csv --db "$Y/mem/r.db"
