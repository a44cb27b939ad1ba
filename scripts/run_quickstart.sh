#!/usr/bin/env bash
# scripts/run_quickstart.sh — the body of `make run`: the quickstart sweep, its report and
# its plots. The sweep resumes: a second `make run` finds every run done and only reprints.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
bin/loralab sweep experiments/quickstart.yaml --jobs "$jobs"
echo
bin/loralab report methods --sweep quickstart
echo
bin/loralab report table6 --sweep quickstart
echo
bin/loralab plot all --sweep quickstart
