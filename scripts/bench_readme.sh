#!/usr/bin/env bash
# scripts/bench_readme.sh — README.md's benchmark block, generated: the verbatim output of one
# `make bench` run, kept as results/bench.txt (a copy of build/bench.txt from that run).
#   scripts/bench_readme.sh [FILE]                 prints the block (FILE: results/bench.txt)
#   scripts/bench_readme.sh --write README.md [FILE]  replaces the block between the bench markers
# tests/cli/test_bench.sh checks that README.md holds exactly what this prints.
set -euo pipefail
block() {
  [ -f "$1" ] || { echo "bench_readme.sh: $1 not found (run make bench, then copy build/bench.txt)" >&2; exit 2; }
  echo '```'
  echo '$ make bench'
  cat "$1"
  echo '```'
}
if [ "${1:-}" != --write ]; then block "${1:-results/bench.txt}"; exit 0; fi
[ $# -ge 2 ] || { echo "usage: $0 [FILE] | --write README.md [FILE]" >&2; exit 2; }
source "$(dirname "$0")/readme_block.sh"
block "${3:-results/bench.txt}" > "$2.block.tmp"
replace_block "$2" bench "$2.block.tmp"
rm -f "$2.block.tmp"
