#!/usr/bin/env bash
# scripts/quickstart_readme.sh — the quickstart results of README.md, generated: each command
# below and its verbatim output on results/quickstart.db (the database of one run of
# experiments/quickstart.yaml), run from the current directory. `--write README.md` replaces
# the block between the quickstart markers of that file; tests/cli/test_quickstart.sh checks
# that README.md holds exactly what this prints.
set -euo pipefail
LORALAB=${LORALAB:-bin/loralab}
DB=results/quickstart.db
COMMANDS=(
  "report methods --sweep quickstart --db $DB"
  "report compare --sweep quickstart --db $DB --a method=lora --b method=ft"
  "query \"SELECT count(*) AS runs, round(sum(wall_seconds), 1) AS wall_s, round(min(wall_seconds), 1) AS min_s, round(max(wall_seconds), 1) AS max_s FROM runs WHERE status = 'done'\" --db $DB"
)
block() {
  echo '```'
  local first=1 c
  for c in "${COMMANDS[@]}"; do
    [ $first = 1 ] || echo
    first=0
    echo "\$ bin/loralab $c"
    eval "\"\$LORALAB\" $c"
  done
  echo '```'
}
if [ $# -eq 0 ]; then block; exit 0; fi
if [ $# -ne 2 ] || [ "$1" != --write ]; then echo "usage: $0 [--write README.md]" >&2; exit 2; fi
source "$(dirname "$0")/readme_block.sh"
block > "$2.block.tmp"
replace_block "$2" quickstart "$2.block.tmp"
rm -f "$2.block.tmp"
