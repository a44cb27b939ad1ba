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
