#!/usr/bin/env bash
# scripts/run_quickstart.sh — the body of `make run`: the quickstart sweep on the committed
# base results/bases/micro-v2 (pinned by its sha256; nothing is pretrained), its reports
# (methods with the tuned learning rate, the baseline, intervals and convergence marks; the
# tuning table; LoRA against FT paired by seed) and its plots. The sweep resumes: a second
# `make run` finds every run done and only reprints. DB=PATH picks the database (default
# results/loralab.db; results/quickstart.db is the committed one that README.md quotes).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
db=${DB:-results/loralab.db}
bin/loralab sweep experiments/quickstart.yaml --db "$db" --jobs "$jobs"
echo
bin/loralab report methods --sweep quickstart --db "$db"
echo
bin/loralab report tune --sweep quickstart --db "$db"
echo
bin/loralab report compare --sweep quickstart --db "$db" --a method=lora --b method=ft
echo
bin/loralab plot all --sweep quickstart --db "$db"
