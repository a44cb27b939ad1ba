# tests/cli/test_tasks.sh — `loralab tasks` (sourced by tests/cli/run.sh).
task_fix="$here/../fixtures"
task_data="$here/../../data"

expect_out '^usage: loralab tasks' "$LORALAB" tasks --help
expect_out 'glue-sst2 +GLUE SST-2 folder' "$LORALAB" tasks --help

# loaders on the fixtures: sizes, labels, baselines
expect_out '^glue-sst2 +cls +5 +2 +0 +negative 40.0%, positive 60.0% +accuracy +majority +accuracy 0.500 +-$' \
  "$LORALAB" tasks glue-sst2 --path "$task_fix/glue/SST-2"
expect_out '^\| glue-mnli +\| cls +\| 5 +\| 2 +\| 1 +\|' "$LORALAB" tasks glue-mnli --path "$task_fix/glue/MNLI" --markdown
expect_out 'ref 2: There is a coffee shop Blue Spice' "$LORALAB" tasks e2e --path "$task_fix/e2e" --show 1
expect_out '^glue-sst2: skipped 2 malformed rows$' "$LORALAB" tasks glue-sst2 --path "$task_fix/glue/SST-2-bad" --skip-malformed

# bad input: exit 2 with one message naming the problem
expect_fail 2 "glue/SST-2-bad/train.tsv:4: expected a label (0, 1), got 'positive'" \
  "$LORALAB" tasks glue-sst2 --path "$task_fix/glue/SST-2-bad"
expect_fail 2 "unknown task 'sst-3'; known tasks: pretrain, spam, sotu-era, sotu-party, g2p, glue-sst2" "$LORALAB" tasks sst-3
expect_fail 2 "task 'glue-sst2' reads your own copy of the data: give its path" "$LORALAB" tasks glue-sst2
expect_fail 2 "--path needs a task name" "$LORALAB" tasks --path "$task_fix/glue/SST-2"
expect_fail 2 "$TMP/nodata/sotu: not found; the built-in data sets are fetched by \`make data\`" "$LORALAB" tasks sotu-era --data "$TMP/nodata"
expect_fail 2 "unknown option '--bogus'" "$LORALAB" tasks --bogus

# the built-in tasks, when `make data` has run: sizes are fixed by the pinned data and the hashed splits
if [ -f "$task_data/spam-assassin/.sha256" ] && [ -f "$task_data/sotu/.sha256" ] && [ -f "$task_data/cmudict/.sha256" ] && [ -f "$task_data/moby-dick/.sha256" ]; then
  expect_out '^spam +cls +4704 +606 +598 +ham 69.2%, spam 30.8%' "$LORALAB" tasks --data "$task_data"
  expect_out '^sotu-party +cls +76941 +6913 +7532 ' "$LORALAB" tasks sotu-party --data "$task_data"
  expect_out '^ +spelling +exact_match 0.016, per 0.572 +exact_match 0.015, per 0.569$' "$LORALAB" tasks g2p --data "$task_data"
else
  echo "     (data/ not fetched: built-in task checks skipped; run \`make data\`)"
fi
