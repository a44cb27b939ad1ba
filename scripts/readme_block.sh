# scripts/readme_block.sh — sourced by the scripts that generate a block of README.md.
# replace_block README NAME FILE: the lines between "<!-- NAME:begin ..." and "<!-- NAME:end"
# of README become FILE's lines; exits 2 when README lacks the markers.
replace_block() {
  local readme=$1 name=$2 file=$3
  grep -q "^<!-- $name:begin" "$readme" && grep -q "^<!-- $name:end" "$readme" ||
    { echo "$readme: no <!-- $name:begin --> ... <!-- $name:end --> markers" >&2; exit 2; }
  awk -v blockfile="$file" -v b="^<!-- $name:begin" -v e="^<!-- $name:end" '
    $0 ~ b { print; while ((getline line < blockfile) > 0) print line; skip = 1; next }
    $0 ~ e { skip = 0 }
    !skip { print }' "$readme" > "$readme.tmp"
  mv "$readme.tmp" "$readme"
}
