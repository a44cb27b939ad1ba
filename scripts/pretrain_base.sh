#!/usr/bin/env bash
# scripts/pretrain_base.sh — pretrains the reproduction's micro base into results/bases/micro-v2
# (resumable: run it again after a stop and it continues from the last validation; a finished
# base is left as it is). Extra arguments go to `loralab pretrain` (e.g. --until 20000 to pause
# there). It trains until the validation loss flattens (see `bin/loralab pretrain --help`), at
# most --max-steps; one epoch of the built-in corpus is about 10,800 steps of 16 x 128 tokens.
# Writes config.json, model.safetensors, curve.tsv and provenance.json (the command, the corpus
# sha256, steps, epochs, time, final validation loss, checkpoint sha256), and appends the log
# to results/bases/micro-v2.log.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BASE_OUT:-results/bases/micro-v2}
mkdir -p "$(dirname "$out")"
bin/loralab pretrain --preset micro --out "$out" --batch 16 --seq 128 --lr 2e-3 --warmup 500 \
  --eval-every 1000 --eval-rows 512 --patience 3 --min-delta 0.005 --decay-frac 0.2 \
  --max-steps 60000 --seed 1 "$@" 2>&1 | tee -a "$out.log"
