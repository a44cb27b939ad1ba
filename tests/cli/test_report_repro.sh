# tests/cli/test_report_repro.sh — `loralab report reproduction` (sourced by tests/cli/run.sh):
# the committed results/RESULTS.md is exactly the command's output on the committed
# results/reproduce.db (no number in it is typed by hand), the database is not written, and
# bad input exits 2 with one message.
repo=$(cd "$here/../.." && pwd)
rr_db="$repo/results/reproduce.db"
rr_sum=$(sha256sum "$rr_db" | cut -d' ' -f1)
# the document names the database by its file name, so the path may be spelled any way
if (cd "$TMP" && "$LORALAB" report reproduction --db "$rr_db") >"$TMP/rr.md" 2>"$TMP/rr.err" </dev/null \
   && cmp -s "$TMP/rr.md" "$repo/results/RESULTS.md"; then _report ok
else _report fail "results/RESULTS.md differs from \`loralab report reproduction --db results/reproduce.db\` (regenerate it with --out results/RESULTS.md): $(diff "$repo/results/RESULTS.md" "$TMP/rr.md" | head -20) $(cat "$TMP/rr.err")"; fi
expect_ok test "$(sha256sum "$rr_db" | cut -d' ' -f1)" = "$rr_sum"
# --out writes the same bytes and says so
expect_out "^wrote $TMP/out.md \\(" bash -c "cd '$repo' && '$LORALAB' report reproduction --db results/reproduce.db --out '$TMP/out.md'"
expect_ok cmp "$TMP/out.md" "$repo/results/RESULTS.md"
expect_out 'Verdicts: [0-9]+ reproduced, [0-9]+ not reproduced, [0-9]+ inconclusive at this power, [0-9]+ not tested' cat "$TMP/out.md"
expect_out 'usage: loralab report reproduction' "$LORALAB" report reproduction --help
expect_fail 2 "$TMP/none.db: no such database" "$LORALAB" report reproduction --db "$TMP/none.db"
expect_fail 2 "unknown" "$LORALAB" report reproduction --bogus
expect_fail 2 "unexpected argument 'extra'" "$LORALAB" report reproduction extra
expect_fail 2 "$TMP/no/dir/x.md.part: cannot write" "$LORALAB" report reproduction --db "$rr_db" --out "$TMP/no/dir/x.md"

# the report reads a private copy in memory: no temporary file, so an unusable TMPDIR and a
# read-only copy of the database under another name both give the committed text, and the
# file is not written
cp "$rr_db" "$TMP/ro.db" && chmod 444 "$TMP/ro.db"
ro_sum=$(sha256sum < "$TMP/ro.db")
TMPDIR=/nonexistent "$LORALAB" report reproduction --db "$TMP/ro.db" > "$TMP/ro.md" 2>&1 && _report ok ||
  _report fail "report reproduction with TMPDIR=/nonexistent: $(head -3 "$TMP/ro.md")"
cmp -s "$TMP/ro.md" "$repo/results/RESULTS.md" && _report ok ||
  _report fail "report reproduction of a read-only copy differs from results/RESULTS.md"
[ "$ro_sum" = "$(sha256sum < "$TMP/ro.db")" ] && _report ok || _report fail "report reproduction changed the database it read"
