#!/usr/bin/env bash
# fuzz/run.sh BINDIR MODE — runs every libFuzzer target built in BINDIR (make fuzz / make test).
#   MODE smoke   each target once over its regression inputs (fuzz/regressions/<target>/,
#                every crash found so far), then a short fixed-seed run from its seed corpus
#                (FUZZ_SMOKE_RUNS inputs, at most FUZZ_SMOKE_SECONDS seconds); make test runs it
#   MODE N       each target for N seconds, growing build-fuzz/corpus/<target>/ (make fuzz)
#   MODE runs=N  each target for N executions (libFuzzer's -runs=N), likewise growing its
#                corpus (make fuzz FUZZ_RUNS=N); prints executions, wall time and coverage
# FUZZ_TARGETS (a space-separated list) limits the run to those targets.
# Seed corpora come from the test fixtures (and fuzz/seeds/ for SQL text), assembled under
# build-fuzz/seeds/<target>/. Exit status 1 when a target crashes; its input is kept as
# build-fuzz/crash-<target>-*, to be added to fuzz/regressions/<target>/ once fixed.
set -u
bindir=$1 mode=$2
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=build-fuzz
smoke_runs=${FUZZ_SMOKE_RUNS:-3000} smoke_secs=${FUZZ_SMOKE_SECONDS:-8}
targets=${FUZZ_TARGETS:-fuzz_sweep fuzz_safetensors fuzz_config_json fuzz_loaders fuzz_tokenizer fuzz_query}
limit=
case $mode in
  smoke) ;;
  runs=*[!0-9]*|runs=) ;;
  runs=*) limit=-runs=${mode#runs=} ;;
  *[!0-9]*|'') ;;
  *) limit=-max_total_time=$mode ;;
esac
[ "$mode" = smoke ] || [ -n "$limit" ] || { echo "fuzz: MODE must be smoke, N (seconds) or runs=N; got '$mode'" >&2; exit 2; }

# seeds <target>: fills $out/seeds/<target> from the fixtures
seeds() {
  local d=$out/seeds/$1 f i
  rm -rf "$d"; mkdir -p "$d"
  case $1 in
    fuzz_sweep) cp tests/fixtures/sweeps/*.yaml "$d/"; for f in experiments/*.yaml; do cp "$f" "$d/experiments-${f##*/}"; done ;;
    fuzz_safetensors) for f in hf_gpt2_logits adapter_h lora; do cp "tests/fixtures/reference/$f.safetensors" "$d/"; done ;;
    fuzz_config_json) cp tests/fixtures/gpt3/config.json "$d/gpt3.json"; cp tests/fixtures/reference/hf_gpt2/config.json "$d/hf_gpt2.json"
                      cp fuzz/seeds/adapter_config.json "$d/" ;;
    fuzz_loaders)   # the first byte picks the loader (see fuzz/fuzz_loaders.c)
      i=0
      for f in SST-2 MNLI CoLA STS-B MRPC QQP QNLI RTE; do
        { printf "\\x0$i"; cat "tests/fixtures/glue/$f/train.tsv"; } > "$d/glue-$f"; i=$((i + 1))
      done
      { printf '\x08'; cat tests/fixtures/e2e/trainset.csv; } > "$d/e2e"
      { printf '\x09'; cat tests/fixtures/wikisql/train.jsonl; } > "$d/wikisql"
      { printf '\x09'; cat tests/fixtures/wikisql/train.tables.jsonl; } > "$d/wikisql-tables"
      { printf '\x0a'; cat tests/fixtures/samsum/train.json; } > "$d/samsum"
      f=$(ls data/sotu/data/*.json 2>/dev/null | head -1)
      [ -n "$f" ] && { printf '\x0b'; head -c 4000 "$f"; } > "$d/sotu"
      f=$(ls data/cmudict/data/dict.txt 2>/dev/null)
      [ -n "$f" ] && { printf '\x0b'; head -c 4000 "$f"; } > "$d/cmudict"
      f=$(ls data/spam-assassin/data/spam-1/*.txt 2>/dev/null | head -1)
      [ -n "$f" ] && { printf '\x0c'; head -c 4000 "$f"; } > "$d/spam" ;;
    fuzz_tokenizer) cp tests/fixtures/tokenizer/*.txt "$d/" ;;
    fuzz_query) cp fuzz/seeds/query/*.sql "$d/" ;;
  esac
}

maxlen() { case $1 in fuzz_safetensors) echo 100000 ;; *) echo 8192 ;; esac; }

status=0
for t in $targets; do
  bin=$bindir/$t
  [ -x "$bin" ] || { echo "fuzz: $bin is not built" >&2; exit 2; }
  seeds "$t"
  if [ "$mode" = smoke ]; then
    if [ -d "fuzz/regressions/$t" ] && [ -n "$(ls "fuzz/regressions/$t")" ]; then
      "$bin" -rss_limit_mb=3000 fuzz/regressions/$t/* >"$out/$t.regressions.log" 2>&1 \
        || { echo "fuzz: $t failed on a regression input (see $out/$t.regressions.log)"; tail -30 "$out/$t.regressions.log"; status=1; continue; }
    fi
    corpus=$out/smoke/$t
    rm -rf "$corpus"; mkdir -p "$corpus"
    "$bin" -seed=1 -runs="$smoke_runs" -max_total_time="$smoke_secs" -max_len="$(maxlen "$t")" -timeout=20 \
      -rss_limit_mb=3000 -artifact_prefix="$out/crash-$t-" "$corpus" "$out/seeds/$t" >"$out/$t.smoke.log" 2>&1
    rc=$?
    execs=$(grep -o 'Done [0-9]* runs' "$out/$t.smoke.log" | grep -o '[0-9]*')
    if [ $rc -ne 0 ]; then echo "fuzz: $t crashed (see $out/$t.smoke.log)"; tail -30 "$out/$t.smoke.log"; status=1
    else echo "ok   $t: ${execs:-?} inputs from seed 1"; fi
  else
    corpus=$out/corpus/$t
    mkdir -p "$corpus"
    start=$(date +%s.%N)
    "$bin" "$limit" -max_len="$(maxlen "$t")" -timeout=20 -rss_limit_mb=3000 -print_final_stats=1 \
      -artifact_prefix="$out/crash-$t-" "$corpus" "$out/seeds/$t" >"$out/$t.fuzz.log" 2>&1
    rc=$?
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.fuzz.log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$out/$t.fuzz.log" | tail -1)
    if [ $rc -ne 0 ]; then echo "fuzz: $t crashed (see $out/$t.fuzz.log)"; tail -30 "$out/$t.fuzz.log"; status=1
    else echo "ok   $t: ${execs:-?} executions in $secs s (${execs:+$(awk -v e="$execs" -v s="$secs" 'BEGIN { printf "%.0f", e / s }')} exec/s), final ${cov:-cov: ?}"; fi
  fi
done
exit $status
