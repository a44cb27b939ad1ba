# tests/cli/test_docs.sh — the sweep file documentation inside the repository and what it
# describes (sourced by tests/cli/run.sh).
ROOT=$(cd "$(dirname "$LORALAB")/.." && pwd)
DOC="$ROOT/docs/sweep-files.md"

# `sweep --help` points to the format, which is in the repository
expect_out 'docs/sweep-files.md' "$LORALAB" sweep --help
[ -s "$DOC" ] && _report ok || _report fail "$DOC is missing"
# every key `sweep --help` lists has a row in the document
"$LORALAB" sweep --help | sed -n 's/^  \([a-z_.]*\)  .*(default .*$/\1/p' > "$TMP/keys"
[ "$(wc -l < "$TMP/keys")" -ge 30 ] && _report ok || _report fail "sweep --help listed $(wc -l < "$TMP/keys") keys"
while read -r k; do
  grep -qF "| \`$k\` |" "$DOC" && _report ok || _report fail "docs/sweep-files.md has no row for key $k"
done < "$TMP/keys"
# nothing points outside the repository
if (cd "$ROOT" && git ls-files 2>/dev/null | grep -q .); then
  hits=$(cd "$ROOT" && git ls-files -z | xargs -0 grep -l -e '\.\./shared' -e 'DESIGN\.md' 2>/dev/null | grep -v '^tests/cli/test_docs.sh$')
  [ -z "$hits" ] && _report ok || _report fail "files point outside the repository: $hits"
fi

# variants: [{}] is the base config as one variant; an empty exclude entry is refused
printf 'name: v\nbase: {preset: nano}\nvariants:\n  - {}\n  - {lora.rank: 4}\n' > "$TMP/v.yaml"
expect_out '^sweep v: 2 runs \(2 combinations, 0 excluded, 0 duplicates\)$' "$LORALAB" sweep "$TMP/v.yaml" --dry-run
expect_out '  lora.rank=8$' "$LORALAB" sweep "$TMP/v.yaml" --dry-run
printf 'name: v\nbase: {preset: nano}\nlora: {rank: 4}\nvariants: [{}]\n' > "$TMP/v1.yaml"
expect_out '^sweep v: 1 runs' "$LORALAB" sweep "$TMP/v1.yaml" --dry-run
printf 'name: e\nexclude:\n  - {}\n' > "$TMP/e.yaml"
expect_fail 2 "e.yaml:3:5: exclude: empty entry" "$LORALAB" sweep "$TMP/e.yaml" --dry-run
