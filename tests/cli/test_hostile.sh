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
grep -q "^# loss, run 1 (aaaa1111): lora Wq r=1 x system('touch $H/P2') #, task spam" "$H/plots/s/curves-1.gp" \
  && _report ok || _report fail "curves-1.gp header: $(head -1 "$H/plots/s/curves-1.gp")"
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
