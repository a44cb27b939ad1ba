#!/usr/bin/env bash
# scripts/results_readme.sh — README.md's generated result blocks: each command below and its
# verbatim output on a committed database, run from the current directory.
#   quickstart  results/quickstart.db, the database of one run of experiments/quickstart.yaml
#   bf16        results/bf16.db, one run of experiments/bf16.yaml (bf16 against fp32)
# `results_readme.sh BLOCK` prints the block; `--write README.md` replaces the lines between
# that block's markers in the file. tests/cli/test_quickstart.sh checks that README.md holds
# exactly what this prints for each block.
set -euo pipefail
LORALAB=${LORALAB:-bin/loralab}
usage() { echo "usage: $0 quickstart|bf16 [--write README.md]" >&2; exit 2; }
[ $# -ge 1 ] || usage
BLOCK=$1
shift
case "$BLOCK" in
  quickstart)
    DB=results/quickstart.db
    COMMANDS=(
      "report methods --sweep quickstart --db $DB"
      "report compare --sweep quickstart --db $DB --a method=lora --b method=ft"
      "query \"SELECT count(*) AS runs, round(sum(wall_seconds), 1) AS wall_s, round(min(wall_seconds), 1) AS min_s, round(max(wall_seconds), 1) AS max_s FROM runs WHERE status = 'done'\" --db $DB"
    ) ;;
  bf16)
    DB=results/bf16.db
    COMMANDS=(
      "report methods --sweep bf16 --db $DB"
      "report compare --sweep bf16 --db $DB --a 'method=lora train.precision=bf16' --b 'method=lora train.precision=fp32'"
      "report compare --sweep bf16 --db $DB --a 'method=ft train.precision=bf16' --b 'method=ft train.precision=fp32'"
      "query \"SELECT method, coalesce(json_extract(config, '\$.train.precision'), 'fp32') AS precision, count(*) AS runs, round(avg(tokens_per_s)) AS tok_s, round((bytes_weights + bytes_grads + bytes_optimizer + bytes_activations) / 1048576.0, 2) AS tensors_mib FROM runs WHERE status = 'done' GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC\" --db $DB"
    ) ;;
  *) usage ;;
esac
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
if [ $# -ne 2 ] || [ "$1" != --write ]; then usage; fi
source "$(dirname "$0")/readme_block.sh"
block > "$2.block.tmp"
replace_block "$2" "$BLOCK" "$2.block.tmp"
rm -f "$2.block.tmp"
