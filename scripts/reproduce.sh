#!/usr/bin/env bash
# scripts/reproduce.sh — the body of `make reproduce`: the paper's ablations on the CPU, into
# results/reproduce.db, then results/RESULTS.md regenerated from it. Every step resumes where it
# stopped: run it again after Ctrl-C, a kill or a reboot.
#   1. the stronger micro base (scripts/pretrain_base.sh) unless results/bases/micro-v2 is done;
#      its checkpoint is checked against the sha256 in its provenance.json
#   2. the random-init control base (loralab init, seed 1)
#   3. a results/reproduce.db whose runs used another base (the earlier reproduction) is moved
#      to results/reproduce-v1.db, so no cell mixes runs of two setups
#   4. every sweep in SWEEPS, two runs at a time (JOBS), each resuming
#   5. loralab report reproduction --db results/reproduce.db --out results/RESULTS.md
# scripts/reproduce.sh --dry-run prints each sweep's runs (no training) with a stand-in base when
# the real one is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
db=${REPRO_DB:-results/reproduce.db}
jobs=${JOBS:-2}
base=results/bases/micro-v2
init=results/bases/micro-init
# cheapest first, so a stopped reproduction has the most findings covered
SWEEPS="table5_budget fig3_subspace fig4_seeds table7_amplification control_random_init task_sotu_era table6_rank fig2_methods"

if [ "${1:-}" = "--dry-run" ]; then
  over=()
  if [ ! -f "$base/provenance.json" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    bin/loralab init --preset micro --seed 1 --out "$tmp/base" >/dev/null
    over=(base.checkpoint="$tmp/base")
    echo "(dry run with a stand-in for $base, which is not pretrained yet)"
  fi
  for s in $SWEEPS; do bin/loralab sweep "experiments/$s.yaml" --db "${tmp:-/tmp}/dry.db" --dry-run "${over[@]}" | sed -n 1,2p; done
  exit 0
fi

if [ ! -f "$base/provenance.json" ]; then bash scripts/pretrain_base.sh; fi
want=$(sed -n 's/.*"checkpoint_sha256": "\([0-9a-f]*\)".*/\1/p' "$base/provenance.json")
have=$(sha256sum "$base/model.safetensors" | cut -d' ' -f1)
if [ "$want" != "$have" ]; then
  echo "reproduce: $base/model.safetensors has sha256 $have, its provenance.json says $want" >&2
  exit 2
fi
[ -f "$init/model.safetensors" ] || bin/loralab init --preset micro --seed 1 --out "$init"
if [ -f "$db" ] && [ "$(sqlite3 "$db" "SELECT count(*) FROM runs WHERE coalesce(json_extract(config, '\$.base.checkpoint'), '') NOT IN ('$base', '$init')")" != 0 ]; then
  echo "reproduce: $db holds runs on another base; moving it to ${db%.db}-v1.db"
  mv "$db" "${db%.db}-v1.db"
  rm -f "$db-wal" "$db-shm"
fi
for s in $SWEEPS; do bin/loralab sweep "experiments/$s.yaml" --db "$db" --jobs "$jobs"; done
bin/loralab report reproduction --db "$db" --out results/RESULTS.md
