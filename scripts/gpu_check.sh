#!/usr/bin/env bash
# scripts/gpu_check.sh — the GPU check, for one H100/H200, in at most 5 minutes. It runs the
# bundle that scripts/gpu_bundle.sh built on a machine with our build dependencies and builds
# nothing itself: the GPU machine needs bash, coreutils, tar, gzip, glibc >= the bundle's
# (MANIFEST), an NVIDIA driver and the CUDA 13 libraries (cudart, cuBLAS, cuSOLVER).
#
#   gpu_check.sh [--bundle DIR] [--json FILE] [--budget SECONDS]
#
# DIR: the bundle folder (default: this script's folder when it holds payload.tar.gz, else
# gpu-bundle/ of the repository). FILE: where the summary goes as JSON (default
# DIR/gpu_check.json); each step's full output goes to gpu_check_logs/ beside it.
#
# Steps, each under `timeout` (the smaller of its own limit and what is left of the budget,
# default 285 s; a step with under 5 s left is skipped), each printed with its time as it
# ends; a failed step does not stop the check:
#   unpack     payload.tar.gz into a temporary folder; every file against MANIFEST's sha256
#   machine    CPU architecture and glibc against the bundle's; nvidia-smi, if present
#   cuda-libs  the folders of any CUDA library the loader does not find itself (toolkit
#              folders, PyTorch's pip wheels), added to LD_LIBRARY_PATH after the bundle's lib/
#   libraries  ldd of both binaries with that LD_LIBRARY_PATH: nothing unresolved
#   version    loralab --version must list cuda:0
#   list       the names of test_cuda_ops's tests
#   test_*     each test of test_cuda_ops (every op, training steps, decoding, CPU vs GPU) in
#              its own process, so a crash or hang costs only that test
#   e2e        `loralab run` of a nano LoRA on a tiny SST-2 set, on the CPU and on cuda:0:
#              the train and validation losses must agree (rel. 1e-3)
#   bench      training steps on random tokens, FT and LoRA (q,v r=8) on gpt2 shapes (B=8,
#              T=1024) and small (B=32, T=256), in fp32, TF32 and bf16: one step's loss is
#              first checked against the CPU, then step time, tokens/s, MFU against the
#              device's dense bf16 peak (GPU_PEAK_TFLOPS overrides), peak device memory;
#              a bench line must say tf32=1 in the TF32 rows and tf32=0 in the others
#   svd        the analysis SVDs of 24 gpt2-shaped rank-8 updates on the GPU and the CPU
# Then one summary table (also the JSON file).
#
# Environment: GPU_CHECK_BATCH (gpt2 batch, default 8), GPU_CHECK_STEPS (timed steps, 10),
# GPU_CHECK_BUDGET (seconds, 285), GPU_CHECK_TEST_LIMIT / _BENCH_LIMIT (seconds per test /
# bench, 60 / 45), LORALAB_TEST_CUDA_DEVICE (0).
# Exit status: 0 every step passed; 1 a step failed, timed out or was skipped; 2 bad usage.
set -u
export LC_ALL=C
ulimit -c 0 2>/dev/null   # a crashing step must not spend the budget writing a core file

usage() { echo "gpu_check.sh [--bundle DIR] [--json FILE] [--budget SECONDS]"; }
BUNDLE="" JSON="" BUDGET=${GPU_CHECK_BUDGET:-285}
while [ $# -gt 0 ]; do
    case "$1" in
        --bundle|--json|--budget)
            [ $# -ge 2 ] || { echo "gpu_check: $1 needs a value; usage: $(usage)" >&2; exit 2; }
            case "$1" in --bundle) BUNDLE=$2 ;; --json) JSON=$2 ;; --budget) BUDGET=$2 ;; esac
            shift 2 ;;
        -h|--help) sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check: unknown option '$1'; usage: $(usage)" >&2; exit 2 ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$BUNDLE" ]; then
    if [ -f "$here/payload.tar.gz" ]; then BUNDLE=$here; else BUNDLE=$here/../gpu-bundle; fi
fi
if [ ! -f "$BUNDLE/payload.tar.gz" ] || [ ! -f "$BUNDLE/MANIFEST" ]; then
    echo "gpu_check: no bundle at '$BUNDLE' (payload.tar.gz and MANIFEST); build one with scripts/gpu_bundle.sh on a machine with the build dependencies" >&2
    exit 2
fi
case "$BUDGET" in ''|*[!0-9]*) echo "gpu_check: --budget: expected whole seconds, got '$BUDGET'" >&2; exit 2 ;; esac
BUNDLE=$(cd "$BUNDLE" && pwd)
JSON=${JSON:-$BUNDLE/gpu_check.json}
mkdir -p "$(dirname "$JSON")" || exit 2
LOGS=$(cd "$(dirname "$JSON")" && pwd)/gpu_check_logs
rm -rf "$LOGS" && mkdir -p "$LOGS" || exit 2

B=${GPU_CHECK_BATCH:-8}
STEPS=${GPU_CHECK_STEPS:-10}
TEST_LIMIT=${GPU_CHECK_TEST_LIMIT:-60}
BENCH_LIMIT=${GPU_CHECK_BENCH_LIMIT:-45}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/loralab-gpu.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
manifest() { sed -n "s/^$1=//p" "$BUNDLE/MANIFEST" | head -n 1; }

# Clock in milliseconds without a process per reading (bash 5's EPOCHREALTIME) where possible.
clock() {
    local t=${EPOCHREALTIME:-}
    if [ -n "$t" ]; then t=${t/[.,]/}; NOW=$((10#$t / 1000)); else NOW=$(( $(date +%s%N) / 1000000 )); fi
}
secs() { printf -v "$1" '%d.%d' $(($2 / 1000)) $(($2 % 1000 / 100)); }   # VAR MS -> "12.3"
clock; T0=$NOW
DEADLINE=$((T0 + BUDGET * 1000))

# ---- steps: each ends with one line (kind, name, status, seconds, detail) printed and
# appended to $WORK/steps.tsv; status: pass, fail, timeout (killed at its limit), skipped ----
FAILED=0 NSTEPS=0
record() {   # KIND NAME STATUS SECONDS DETAIL
    local d=${5//[$'\t\r\n']/ } at
    NSTEPS=$((NSTEPS + 1))
    [ "$3" = pass ] || FAILED=$((FAILED + 1))
    clock; secs at $((NOW - T0))
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$d" >>"$WORK/steps.tsv"
    printf '[%6ss] %-9s %-24s %-7s %6ss  %s\n' "$at" "$1" "$2" "$3" "$4" "$d"
    # a failure's own words: cmocka's errors and our messages, else the log's last lines
    if [ "$3" != pass ] && [ "$3" != skipped ] && [ -s "$LOGS/$2.log" ] && ! grep -q 'skipped: no GPU' "$LOGS/$2.log"; then
        { grep -E 'ERROR|FAILED  \]|error|differ|assert|worst|not found|Abort' "$LOGS/$2.log" || tail -n 4 "$LOGS/$2.log"; } |
            head -n 6 | cut -c1-240 | sed 's/^/            | /'
    fi
}
# step KIND NAME LIMIT CMD...: runs CMD (stdout and stderr to $LOGS/NAME.log) under timeout
# with the smaller of LIMIT and the time left; sets RC, SECS, ST (pass, fail, timeout) and
# WHY. Returns 1, having recorded the step as skipped, when under 5 s are left.
step() {
    local kind=$1 name=$2 limit=$3 t0; shift 3
    clock
    local left=$(((DEADLINE - NOW) / 1000))
    if [ "$left" -lt 5 ]; then
        record "$kind" "$name" skipped 0.0 "no time left in the ${BUDGET}s budget"
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    t0=$NOW
    timeout -k 5 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    RC=$?
    clock; secs SECS $((NOW - t0))
    if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then ST=timeout WHY="killed after ${limit}s"
    elif [ "$RC" -gt 128 ]; then ST=fail WHY="killed by signal $((RC - 128))"
    elif [ "$RC" -ne 0 ]; then ST=fail WHY="exit $RC"
    else ST=pass WHY=""; fi
    return 0
}

echo "== gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host $(hostname), bundle $BUNDLE (commit $(manifest commit), built $(manifest built)), budget ${BUDGET}s"

# unpack
BIN=$WORK/bin
if step setup unpack 60 bash -c 'tar -xzf "$1/payload.tar.gz" -C "$2" && cd "$2" && sed -n "s/^sha256 //p" MANIFEST | sha256sum --quiet -c -' _ "$BUNDLE" "$WORK"; then
    [ "$ST" = pass ] && WHY="$(find "$WORK" -type f | wc -l) files, sha256 as in MANIFEST"
    record setup unpack "$ST" "$SECS" "$WHY"
fi

# machine
GPU_NAME=""
if step setup machine 20 bash -c '
    arch=$(uname -m); glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk "{print \$2}")
    echo "arch $arch (bundle: $1), glibc ${glibc:-unknown} (bundle needs >= $2)"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi failed"
    else echo "nvidia-smi: not found"; fi
    [ "$arch" = "$1" ] || { echo "this machine is $arch; the bundle was built for $1"; exit 1; }
    [ -n "$glibc" ] && [ "$(printf "%s\n%s\n" "$2" "$glibc" | sort -V | head -n 1)" = "$2" ] ||
        { echo "glibc ${glibc:-unknown} is older than the $2 the bundle needs"; exit 1; }' _ "$(manifest arch)" "$(manifest glibc_min)"; then
    GPU_NAME=$(grep -m1 '^0, ' "$LOGS/machine.log" | cut -d, -f2 | sed 's/^ *//')
    d="$(head -n 1 "$LOGS/machine.log"); gpu: ${GPU_NAME:-none listed}"
    [ "$ST" = pass ] || d="$d; $(tail -n 1 "$LOGS/machine.log")"
    record setup machine "$ST" "$SECS" "$d"
fi

# libraries: the bundle's lib/ first; CUDA libraries the loader cannot find are looked for in
# the usual toolkit folders and PyTorch's pip wheels.
export LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
find_cuda_dirs() {
    local missing dirs=() d lib
    missing=$(for b in "$BIN"/*; do ldd "$b" 2>/dev/null; done | awk '/=> not found/ { print $1 }' | sort -u)
    for lib in $missing; do
        for d in ${CUDA_HOME:+"$CUDA_HOME/lib64"} ${CUDA_PATH:+"$CUDA_PATH/lib64"} /usr/local/cuda/lib64 \
                 /usr/local/cuda/targets/x86_64-linux/lib $(ls -d /usr/local/cuda-*/lib64 /usr/local/cuda-*/targets/x86_64-linux/lib 2>/dev/null | sort -rV) \
                 /usr/lib/x86_64-linux-gnu /opt/conda/lib \
                 $(ls -d /usr/local/lib/python3*/dist-packages/nvidia/*/lib /usr/lib/python3/dist-packages/nvidia/*/lib \
                         /opt/conda/lib/python3*/site-packages/nvidia/*/lib "$HOME"/.local/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null); do
            if [ -e "$d/$lib" ]; then dirs+=("$d"); break; fi
        done
    done
    printf '%s\n' "${dirs[@]}" | awk 'NF && !seen[$0]++'
}
check_libraries() {   # every library resolves (the bundle's lib/ is first on the path)
    local bad=0 b out
    for b in "$BIN"/*; do
        out=$(ldd "$b" 2>&1) || { echo "$b: ldd failed: $out"; bad=1; continue; }
        echo "$(basename "$b"):"; echo "$out" | sed 's/^/  /'
        if grep -q 'not found' <<<"$out"; then
            echo "unresolved in $(basename "$b"): $(grep 'not found' <<<"$out" | sed 's/^[[:space:]]*//' | tr '\n' ';')"; bad=1
        fi
    done
    return $bad
}
export -f find_cuda_dirs check_libraries
export BIN WORK
if step setup cuda-libs 20 bash -c find_cuda_dirs; then
    extra=$(tr '\n' ':' <"$LOGS/cuda-libs.log" | sed 's/:$//')
    [ -n "$extra" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$extra"
    record setup cuda-libs "$ST" "$SECS" "$( [ -n "$extra" ] && echo "added to LD_LIBRARY_PATH: $extra" || echo "the loader finds them itself")"
fi
if step setup libraries 30 bash -c check_libraries; then
    if [ "$ST" = pass ]; then
        WHY="all resolve: $(grep -o "=> $WORK/lib/[^ ]*" "$LOGS/libraries.log" | sort -u | wc -l) from the bundle, CUDA from $(grep -m1 -o '=> [^ ]*libcudart[^ ]*' "$LOGS/libraries.log" | sed 's/=> //; s|/libcudart.*||')"
    else
        WHY=$(grep -m1 '^unresolved\|ldd failed' "$LOGS/libraries.log")
    fi
    record setup libraries "$ST" "$SECS" "$WHY"
fi

# version: the binary starts and sees the GPU
if step setup version 30 "$BIN/loralab" --version; then
    gl=$(grep -m1 '^gpu: cuda:' "$LOGS/version.log")
    if [ "$ST" = pass ] && [ -z "$gl" ]; then ST=fail; gl="loralab sees no GPU"; fi
    record setup version "$ST" "$SECS" "${gl:-$WHY}"
fi

# op tests, one process each
TESTS=()
if step setup list 10 "$BIN/test_cuda_ops" --list; then
    [ "$RC" -eq 0 ] && mapfile -t TESTS <"$LOGS/list.log"
    record setup list "$ST" "$SECS" "${#TESTS[@]} tests"
fi
NTESTS=0 NPASS=0
for t in "${TESTS[@]}"; do
    NTESTS=$((NTESTS + 1))
    step test "$t" "$TEST_LIMIT" "$BIN/test_cuda_ops" --only "$t" || continue
    if [ "$ST" = pass ]; then
        if grep -q 'skipped: no GPU' "$LOGS/$t.log"; then ST=fail WHY=$(grep -m1 -o 'no GPU.*' "$LOGS/$t.log")
        elif ! grep -q 'PASSED  \] 1 test' "$LOGS/$t.log"; then ST=fail WHY="cmocka did not report it passed"
        fi
    fi
    [ "$ST" = pass ] && NPASS=$((NPASS + 1))
    record test "$t" "$ST" "$SECS" "$WHY"
done

# e2e: the harness on the GPU (config, data loading, training, evaluation, the store)
e2e() {
    set -e
    cd "$WORK"
    "$BIN/loralab" init --preset nano --seed 1 --out base >/dev/null
    cat >e2e.yaml <<YAML
name: gpu-e2e
base: {checkpoint: base}
task: {name: glue-sst2, path: $WORK/data/sst2_tiny, max_len: 32}
method: lora
train: {steps: 6, batch: 4, lr: 1.0e-3, eval_every: 3}
YAML
    "$BIN/loralab" run e2e.yaml device=cpu --db e2e.db >/dev/null
    "$BIN/loralab" run e2e.yaml device=cuda --db e2e.db
    "$BIN/loralab" query --db e2e.db --csv "SELECT m.split, m.name, m.step, max(CASE WHEN r.device='cpu' THEN m.value END),
        max(CASE WHEN r.device LIKE 'cuda%' THEN m.value END) FROM metrics m JOIN runs r ON r.id = m.run_id
        WHERE m.name = 'loss' GROUP BY m.split, m.name, m.step" | tail -n +2 | tr -d '\r' >losses.csv
    cat losses.csv
    [ -s losses.csv ] || { echo "no losses stored"; exit 1; }
    awk -F, '{ tol = 1e-3 * ($4 < 0 ? -$4 : $4) + 1e-5; d = $5 - $4
               if ($4 == "" || $5 == "" || d > tol || -d > tol) { print "loss differs: " $0; bad = 1 } }
             END { exit bad }' losses.csv
}
export -f e2e
if step e2e e2e 90 bash -c e2e; then
    [ "$ST" = pass ] && WHY="cpu and cuda losses agree at $(wc -l <"$WORK/losses.csv") points"
    record e2e e2e "$ST" "$SECS" "$WHY"
fi

# benches: one process each, so that each case's peak memory is its own. Each case's line
# goes to $WORK/bench.tsv beside its name, shape, method, B, T and precision.
for prec in fp32 tf32 bf16; do
    for method in ft lora; do
        for c in "gpt2 $B 1024" "small 32 256"; do
            set -- $c
            name="bench-$1-$method-$prec" line=""
            if step bench "$name" "$BENCH_LIMIT" "$BIN/test_cuda_ops" --bench "$1" "$method" "$2" "$3" "$STEPS" "$prec"; then
                line=$(grep -m1 '^bench ' "$LOGS/$name.log")
                if [ "$ST" = pass ] && [ -z "$line" ]; then ST=fail WHY="no bench line"; fi
                # a TF32 row must have run with TF32 on, and only a TF32 row
                want=0; [ "$prec" = tf32 ] && want=1
                if [ "$ST" = pass ] && [[ " $line " != *" tf32=$want "* ]]; then ST=fail WHY="a $prec row must run with tf32=$want: $line"; fi
                [ "$ST" = pass ] || line=""
                [ "$ST" = pass ] && WHY=$(grep -o 'step_ms=[^ ]*\|tokens_per_s=[^ ]*\|mfu_bf16=[^ ]*\|peak_mem_mib=[^ ]*' <<<"$line" | tr '\n' ' ')
                record bench "$name" "$ST" "$SECS" "$WHY"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$1" "$method" "$2" "$3" "$prec" "$line" >>"$WORK/bench.tsv"
        done
    done
done

# svd
SVD_LINE=""
if step svd svd 60 "$BIN/test_cuda_ops" --bench-svd 12 768 8; then
    [ "$ST" = pass ] && SVD_LINE=$(grep -m1 '^bench-svd' "$LOGS/svd.log") && WHY=${SVD_LINE#bench-svd }
    record svd svd "$ST" "$SECS" "$WHY"
fi

# ---- summary: the table on stdout and the JSON file, from steps.tsv and bench.tsv ----
status=0
[ "$FAILED" -eq 0 ] || status=1
clock; secs TOTAL $((NOW - T0))
echo
echo "== summary: ${GPU_NAME:-no GPU listed}, ${TOTAL}s, $FAILED of $NSTEPS steps not passed"
echo "op tests: $NPASS of $NTESTS pass"
awk -F'\t' '$1 == "test" { printf "  %-24s %-7s %6ss\n", $2, $3, $4 }' "$WORK/steps.tsv"
touch "$WORK/bench.tsv"
awk -F'\t' -v json="$JSON" -v svd="$SVD_LINE" -v gpu="$GPU_NAME" -v host="$(hostname)" \
    -v date="$(date -u '+%Y-%m-%dT%H:%M:%SZ')" -v commit="$(manifest commit)" -v budget="$BUDGET" \
    -v total="$TOTAL" -v status="$status" -v npass="$NPASS" -v ntests="$NTESTS" -v B="$B" '
function js(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/[[:cntrl:]]/, " ", s); return "\"" s "\"" }
function num(s) { return s ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ ? s : "null" }
function ratio(a, b) { return (num(a) != "null" && num(b) != "null" && b + 0 != 0) ? sprintf("%.2f", a / b) : "n/a" }
function show(s) { return s == "" ? "-" : s }
function kv(line, key,   n, i, parts, f) {   # the value of key=... in a bench line
    n = split(line, parts, " ")
    for (i = 1; i <= n; i++) if (index(parts[i], key "=") == 1) { f = substr(parts[i], length(key) + 2); sub(/%$/, "", f); return f }
    return ""
}
FILENAME ~ /steps.tsv$/ { ns++; S[ns] = sprintf("{\"kind\": %s, \"name\": %s, \"status\": %s, \"seconds\": %s, \"detail\": %s}", js($1), js($2), js($3), num($4), js($5)); st[$2] = $3; next }
{ nb++; BN[nb] = $1; BS[nb] = $2; BM[nb] = $3; BB[nb] = $4; BT[nb] = $5; BP[nb] = $6; BL[nb] = $7; L[$2 "-" $3 "-" $6] = $7 }
END {
    print "training (gpt2: B=" B " x T=1024, small: 32 x 256; MFU against the dense bf16 peak; memory: the most the backend held):"
    printf "  %-5s %-4s %8s %8s %7s %10s %10s %7s %8s %9s %9s %7s\n", "shape", "prec", "ft_ms", "lora_ms", "lora/ft", "ft_tok/s", "lora_tok/s", "ft_mfu", "lora_mfu", "ft_MiB", "lora_MiB", "lora/ft"
    ns2 = 0
    for (si = 1; si <= 2; si++) for (pi = 1; pi <= 3; pi++) {
        shape = si == 1 ? "gpt2" : "small"; prec = pi == 1 ? "fp32" : pi == 2 ? "tf32" : "bf16"
        f = L[shape "-ft-" prec]; l = L[shape "-lora-" prec]
        fms = kv(f, "step_ms"); lms = kv(l, "step_ms"); ftk = kv(f, "tokens_per_s"); ltk = kv(l, "tokens_per_s")
        fmf = kv(f, "mfu_bf16"); lmf = kv(l, "mfu_bf16"); fm = kv(f, "peak_mem_mib"); lm = kv(l, "peak_mem_mib")
        printf "  %-5s %-4s %8s %8s %7s %10s %10s %7s %8s %9s %9s %7s\n", shape, prec, show(fms), show(lms), ratio(lms, fms),
               show(ftk), show(ltk), fmf == "" ? "-" : fmf "%", lmf == "" ? "-" : lmf "%", show(fm), show(lm), ratio(lm, fm)
        SUM[++ns2] = sprintf("{\"shape\": \"%s\", \"precision\": \"%s\", \"ft_step_ms\": %s, \"lora_step_ms\": %s, \"lora_over_ft_time\": %s, \"ft_tokens_per_s\": %s, \"lora_tokens_per_s\": %s, \"ft_mfu_bf16_pct\": %s, \"lora_mfu_bf16_pct\": %s, \"ft_peak_mem_mib\": %s, \"lora_peak_mem_mib\": %s, \"lora_over_ft_mem\": %s}",
            shape, prec, num(fms), num(lms), num(ratio(lms, fms)), num(ftk), num(ltk), num(fmf), num(lmf), num(fm), num(lm), num(ratio(lm, fm)))
    }
    printf "svd (24 x 768x768, rank 8): gpu %s s (%s ms each), cpu %s s on %s threads\n", show(kv(svd, "gpu_total_s")),
           show(kv(svd, "gpu_per_matrix_ms")), show(kv(svd, "cpu_total_s")), show(kv(svd, "cpu_threads"))
    print "e2e (loralab run, cuda against cpu): " show(st["e2e"])
    print "goals: FT on gpt2 >= 40% bf16 MFU (bf16 row); LoRA/FT step time <= 0.75; LoRA/FT peak memory <= 0.5"

    o = json
    printf "{\n  \"check\": \"loralab gpu_check\",\n  \"date\": %s,\n  \"host\": %s,\n  \"gpu\": %s,\n  \"bundle_commit\": %s,\n", js(date), js(host), js(gpu), js(commit) > o
    printf "  \"budget_s\": %s,\n  \"total_s\": %s,\n  \"exit_status\": %s,\n  \"tests_passed\": %s,\n  \"tests_run\": %s,\n", num(budget), num(total), num(status), num(npass), num(ntests) > o
    printf "  \"steps\": [\n" > o
    for (i = 1; i <= ns; i++) printf "    %s%s\n", S[i], i < ns ? "," : "" > o
    printf "  ],\n  \"bench\": [\n" > o
    for (i = 1; i <= nb; i++) {
        x = BL[i]
        printf "    {\"name\": %s, \"shape\": %s, \"method\": %s, \"B\": %s, \"T\": %s, \"precision\": %s, \"status\": %s, \"step_ms\": %s, \"tokens_per_s\": %s, \"tflops\": %s, \"mfu_bf16_pct\": %s, \"peak_mem_mib\": %s, \"check_loss_gpu\": %s, \"check_loss_cpu\": %s}%s\n",
            js(BN[i]), js(BS[i]), js(BM[i]), num(BB[i]), num(BT[i]), js(BP[i]), js(BN[i] in st ? st[BN[i]] : "skipped"),
            num(kv(x, "step_ms")), num(kv(x, "tokens_per_s")), num(kv(x, "tflops")), num(kv(x, "mfu_bf16")),
            num(kv(x, "peak_mem_mib")), num(kv(x, "check_loss_gpu")), num(kv(x, "check_loss_cpu")), i < nb ? "," : "" > o
    }
    printf "  ],\n  \"summary\": [\n" > o
    for (i = 1; i <= ns2; i++) printf "    %s%s\n", SUM[i], i < ns2 ? "," : "" > o
    printf "  ],\n  \"svd\": {\"status\": %s, \"matrices\": %s, \"gpu_total_s\": %s, \"gpu_per_matrix_ms\": %s, \"cpu_total_s\": %s, \"cpu_threads\": %s}\n}\n",
        js("svd" in st ? st["svd"] : "skipped"), num(kv(svd, "matrices")), num(kv(svd, "gpu_total_s")), num(kv(svd, "gpu_per_matrix_ms")),
        num(kv(svd, "cpu_total_s")), num(kv(svd, "cpu_threads")) > o
}' "$WORK/steps.tsv" "$WORK/bench.tsv"
clock; secs TOTAL $((NOW - T0))
echo "gpu_check: exit $status after ${TOTAL}s; JSON: $JSON; logs: $LOGS"
exit $status
