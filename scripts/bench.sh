#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: loralab against PyTorch on the same GPT-2 training step.
#
# For each case (micro FT, micro LoRA, small FT, small LoRA; LoRA = q,v, r 8, alpha 8) it runs
# four programs with the same thread count: `bin/loralab bench` in fp32 and in bf16
# (train.precision=bf16), and scripts/bench_torch.py (Debian's python3-torch) in fp32 and under
# torch.autocast("cpu", dtype=torch.bfloat16). BENCH_REPEAT passes each run all sixteen in
# turn, so that all see the same load, and each keeps its best tokens/s. One table: step
# time, tokens/s, tensor memory (the `memory:` line's total: weights + grads + AdamW moments +
# saved activations), peak RSS (/usr/bin/time %M, else python's getrusage) and the RSS above an
# idle process, then loralab's GEMM time and other time per step, the ratios loralab / PyTorch
# (fp32 vs fp32, bf16 vs bf16 autocast) against the targets, and LoRA vs FT. Then loralab's
# FT cases again with oneDNN capped below this CPU (ONEDNN_MAX_CPU_ISA=AVX512_CORE: AVX-512
# without BF16; AVX2: no AVX-512), what such CPUs give. Last, `loralab bench --inference` (the
# paper's Table 1 latencies).
#
# Builds nothing (make does). When /usr/bin/python3 cannot import torch it installs Debian's
# python3-torch (apt-get, sudo when not root); if that fails it prints loralab's numbers only.
# When PyTorch's fp32 runs on the reference BLAS it installs OpenBLAS (see below).
# Environment: BENCH_THREADS (default 2), BENCH_REPEAT (default 5), BENCH_PYTHON (default
# /usr/bin/python3), LORALAB (default bin/loralab), OMP_WAIT_POLICY and GOMP_SPINCOUNT
# (default passive and 1000, see below). A failing run exits 1. The machine's load changes
# the numbers: the host line prints the load average before and the last line after.
set -u
cd "$(dirname "$0")/.." || exit 2

K=${BENCH_THREADS:-2}
REPEAT=${BENCH_REPEAT:-5}
PY=${BENCH_PYTHON:-/usr/bin/python3}
# Idle OpenMP threads spin 1000 turns and then sleep, for both programs (loralab's own default):
# with libgomp's long default spin a machine with other jobs on its cores made both 4-8x slower
# and the ratio noise (loralab micro FT: 1.5-2.2 s/step spinning vs 0.27 s passive at load 9 on
# 2 cores); sleeping at once costs a wake-up per parallel region.
if [ -z "${OMP_WAIT_POLICY:-}" ]; then
    export OMP_WAIT_POLICY=passive GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000}
fi
BIN=${LORALAB:-bin/loralab}
LORA="method=lora lora.targets=q,v lora.rank=8 lora.alpha=8"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
status=0

case $K in ''|*[!0-9]*|0) echo "bench.sh: BENCH_THREADS must be a positive integer, got '$K'" >&2; exit 2 ;; esac
case $REPEAT in ''|*[!0-9]*|0) echo "bench.sh: BENCH_REPEAT must be a positive integer, got '$REPEAT'" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "bench.sh: $BIN not found or not executable (run 'make bench', which builds it)" >&2; exit 2; }
# Run a copy: a `make` started meanwhile (a shared tree) may relink or remove bin/loralab.
cp "$BIN" "$TMP/loralab" || exit 2
BIN=$TMP/loralab

have_torch=0
if "$PY" -c 'import torch' 2>/dev/null; then have_torch=1; fi
# debian_install PKG WHY : says WHY and installs Debian's PKG for the system python (apt-get,
# sudo when not root); does nothing and fails where the python benchmarked is another one or
# apt-get is missing.
debian_install() {
    [ "$PY" = /usr/bin/python3 ] && command -v apt-get >/dev/null || return 1
    echo "bench.sh: $2: installing $1 (Debian)"
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}
if [ $have_torch = 0 ]; then
    debian_install python3-torch "$PY cannot import torch" && "$PY" -c 'import torch' 2>/dev/null && have_torch=1
    [ $have_torch = 1 ] || echo "bench.sh: python3-torch could not be installed: loralab's numbers only" >&2
fi
# The BLAS PyTorch's fp32 products run on: the library its process maps after a product. Debian's
# python3-torch takes any libblas.so.3, and without an optimized one that is the reference BLAS
# (/usr/lib/x86_64-linux-gnu/blas/), 10x slower: no peer at all. Install OpenBLAS then.
torch_blas() { "$PY" -c 'import torch; torch.ones(64, 64) @ torch.ones(64, 64); print(next((l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.split()[-1].lower()), "none found"))' 2>/dev/null; }
if [ $have_torch = 1 ] && torch_blas | grep -q '/blas/libblas'; then
    debian_install libopenblas0-pthread "PyTorch's fp32 runs on the reference BLAS"
    torch_blas | grep -q '/blas/libblas' && echo "bench.sh: PyTorch fp32 still runs on the reference BLAS: its fp32 numbers are not a fair peer" >&2
fi

# run_rss OUT CMD... : runs CMD with stdout to OUT.out, stderr to OUT.err, its peak RSS in KiB
# to OUT.rss ("n/a" when neither /usr/bin/time nor python3 is there). Returns CMD's status.
if [ -x /usr/bin/time ]; then
    run_rss() { local o=$1; shift; /usr/bin/time -f %M -o "$o.rss" "$@" >"$o.out" 2>"$o.err"; }
elif command -v python3 >/dev/null; then
    run_rss() {
        local o=$1; shift
        python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "w"), stderr=open(sys.argv[1] + ".err", "w"))
open(sys.argv[1] + ".rss", "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$o" "$@"
    }
else
    run_rss() { local o=$1; shift; echo n/a >"$o.rss"; "$@" >"$o.out" 2>"$o.err"; }
fi

# field FILE KEY : the value of the first KEY=value in FILE (empty if none).
field() { grep -o "$2=[^ ]*" "$1" 2>/dev/null | head -n 1 | cut -d= -f2; }
# memtotal FILE : total= of the `memory:` line (the first line's total= is a parameter count).
memtotal() { grep '^memory:' "$1" 2>/dev/null | grep -o 'total=[^ ]*' | cut -d= -f2; }
# rss_kib OUT : peak RSS of the run behind OUT.*, "n/a" when that run printed no tokens_per_s
# (the .rss file's last line: time -o may put "Command exited with non-zero status" first).
rss_kib() { if [ -n "$(field "$1.out" tokens_per_s)" ]; then tail -n 1 "$1.rss" 2>/dev/null; else echo n/a; fi; }
# ratio A B [FORMAT] : A / B (printf FORMAT, default two decimals), "n/a" if either is missing
# or B is zero; ratiox adds "x". Verdicts compare the unrounded ratio (%.17g).
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf f, a / b }'; }
ratiox() { local r; r=$(ratio "$1" "$2"); [ "$r" = n/a ] && echo n/a || echo "${r}x"; }
# verdict X OP LIMIT : "met" when X OP LIMIT holds (OP is >= or <=), "NOT met" otherwise or
# when X is missing.
verdict() {
    awk -v x="$1" -v op="$2" -v m="$3" 'BEGIN { ok = op == ">=" ? x + 0 >= m + 0 : x + 0 <= m + 0
                                               print (x != "" && x != "n/a" && ok) ? "met" : "NOT met" }'
}
mib() { awk -v k="$1" 'BEGIN { if (k == "" || k == "n/a") print "n/a"; else printf "%.1f", k / 1024 }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || a == "" || b == "") print "n/a"; else printf "%.1f", a - b }'; }

# cpu_desc : the CPU's name, vendor, family and model, and which of the vector ISAs that decide
# the kernels it has (timings from different CPUs are not comparable).
cpu_desc() {
    awk -F': *' '/^vendor_id/ && v == "" { v = $2 } /^cpu family/ && f == "" { f = $2 }
                 /^model[ \t]*:/ && m == "" { m = $2 } /^model name/ && n == "" { n = $2 }
                 /^flags/ && fl == "" { fl = " " $2 " " }
                 END { isa = ""
                       split("avx2 avx512f avx512_bf16 amx_bf16", want, " ")
                       for (i = 1; i <= 4; i++) isa = isa (index(fl, " " want[i] " ") ? " " want[i] : " no-" want[i])
                       printf "%s (%s family %s model %s);%s\n", n, v, f, m, isa }' /proc/cpuinfo 2>/dev/null
}

# An idle loralab process, to read loralab's RSS the way PyTorch's baseline is read.
run_rss "$TMP/idle" "$BIN" bench --help
idle_mib=$(mib "$(tail -n 1 "$TMP/idle.rss")")

echo "make bench: loralab vs PyTorch, $K threads, best of $REPEAT alternating passes, random tokens, full training"
echo "steps (forward, cross-entropy, backward, grad clip 1.0, AdamW); LoRA = q,v r=8 alpha=8, base frozen."
echo "cpu: $(cpu_desc)"
echo "host: $(uname -m), $(nproc) cores, load average$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null | sed 's/^/ /'), OMP_WAIT_POLICY=$OMP_WAIT_POLICY GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-libgomp default}"
echo "loralab: $("$BIN" --version | sed -n 's/^backends: cpu (\(.*\)), *.*/\1/p; s/^backends: cpu (\(.*\))$/\1/p' | head -n 1)"
if [ $have_torch = 1 ]; then
    echo "pytorch: $("$PY" -c 'import torch; print(torch.__version__, "mkldnn" if torch.backends.mkldnn.is_available() else "no mkldnn")' 2>/dev/null) ($PY);" \
         "bf16 = torch.autocast(\"cpu\", dtype=torch.bfloat16) around forward and loss; fp32 BLAS: $(torch_blas)"
else
    echo "pytorch: not found ($PY cannot import torch) — loralab's numbers only"
fi
echo "tensors = the memory line's total (weights+grads+optimizer+saved activations); RSS = process peak;"
echo "+RSS = peak minus an idle process ($idle_mib MiB for loralab, the RSS after 'import torch' for PyTorch)."
echo
printf '%-22s %-14s %10s %10s %10s %9s %9s\n' case impl step_ms tokens/s tensorsMiB RSS_MiB +RSS_MiB

# keep_best OUT TRY : TRY.{out,err,rss} become OUT.* when OUT has none yet or TRY has more tokens/s.
keep_best() {
    local best; best=$(field "$1.out" tokens_per_s)
    if [ ! -e "$1.out" ] || awk -v a="$(field "$2.out" tokens_per_s)" -v b="$best" 'BEGIN { exit !(a != "" && (b == "" || a + 0 > b + 0)) }'; then
        for x in out err rss; do mv -f "$2.$x" "$1.$x" 2>/dev/null; done
    fi
}

# row LABEL IMPL OUT [torch] : one table row from OUT.{out,rss}.
row() {
    local rss; rss=$(mib "$(rss_kib "$3")")
    local plus; if [ "${4:-}" = torch ]; then plus=$(field "$3.out" delta); else plus=$(minus "$rss" "$idle_mib"); fi
    printf '%-22s %-14s %10s %10s %10s %9s %9s\n' "$1" "$2" "$(field "$3.out" step_ms)" \
        "$(field "$3.out" tokens_per_s)" "$(memtotal "$3.out")" "$rss" "$plus"
}

# bench_pass NAME PRESET BATCH SEQ LORALAB_STEPS TORCH_WARMUP TORCH_STEPS METHOD
# One pass of a case: loralab fp32, loralab bf16 (FT: also capped at each of CAPS), PyTorch fp32,
# PyTorch bf16 autocast in turn; keeps each one's best run so far in
# $TMP/NAME.{c32,c16,CAP.c32,CAP.c16,t32,t16}.{out,err,rss}.
bench_pass() {
    local name=$1 preset=$2 b=$3 t=$4 steps=$5 warm=$6 tsteps=$7 method=$8 margs=""
    [ "$method" = lora ] && margs=$LORA
    # uncapped, then (FT only) with oneDNN capped at each of CAPS
    local caps=("") cap prec
    [ "$method" = ft ] && caps+=("${CAPS[@]}")
    for cap in "${caps[@]}"; do
        for prec in fp32 bf16; do
            # shellcheck disable=SC2086
            if ! run_rss "$TMP/try" env ${cap:+ONEDNN_MAX_CPU_ISA=$cap} "$BIN" bench --preset "$preset" --batch "$b" \
                    --seq "$t" --threads "$K" --steps "$steps" $margs train.precision=$prec; then
                echo "bench.sh: loralab bench ($prec${cap:+, ONEDNN_MAX_CPU_ISA=$cap}) failed for $name:" >&2
                cat "$TMP/try.err" >&2; status=1
            fi
            keep_best "$TMP/$name${cap:+.$cap}.c${prec: -2}" "$TMP/try"
        done
    done
    [ $have_torch = 1 ] || return 0
    for cast in none bf16; do
        if ! run_rss "$TMP/try" "$PY" scripts/bench_torch.py --preset "$preset" --batch "$b" --seq "$t" \
                --threads "$K" --method "$method" --rank 8 --alpha 8 --targets q,v --warmup "$warm" \
                --steps "$tsteps" --autocast $cast; then
            echo "bench.sh: bench_torch.py ($cast) failed for $name:" >&2; cat "$TMP/try.err" >&2; status=1
        fi
        [ $cast = none ] && keep_best "$TMP/$name.t32" "$TMP/try" || keep_best "$TMP/$name.t16" "$TMP/try"
    done
}

# case_rows NAME LABEL : the case's rows from its best runs.
case_rows() {
    row "$2" "loralab fp32" "$TMP/$1.c32"
    row "" "loralab bf16" "$TMP/$1.c16"
    [ $have_torch = 1 ] || return 0
    row "" "pytorch fp32" "$TMP/$1.t32" torch
    row "" "pytorch bf16ac" "$TMP/$1.t16" torch
}

# The FT cases also run with oneDNN capped at these (the ISAs of CPUs without AVX512-BF16).
CAPS=(AVX512_CORE AVX2)
# Every pass runs every case, so that FT and LoRA, whose ratio is a target, are measured
# minutes apart at most: a slow spell of the machine then reaches both, not one case's passes.
CASES=(
#   name        preset B  T   loralab-steps torch-warmup torch-steps method
    "micro_ft    micro  16 128 10 2 5 ft"
    "micro_lora  micro  16 128 10 2 5 lora"
    "small_ft    small  8  256 3  1 3 ft"
    "small_lora  small  8  256 3  1 3 lora"
)
for ((r = 1; r <= REPEAT; r++)); do
    for c in "${CASES[@]}"; do
        # shellcheck disable=SC2086
        bench_pass $c
    done
done
NAMES=()
for c in "${CASES[@]}"; do
    read -r name preset b t _ <<< "$c"
    NAMES+=("$name")
    case_rows "$name" "$preset ${name#*_} ${b}x$t"
done

echo
echo "loralab per step: GEMM time (oneDNN, counted inside every product) and everything else"
echo "(target: other <= 25 % of the step on micro and small)"
printf '%-22s %-8s %10s %10s %8s  %s\n' case prec gemm_ms other_ms other "target <= 25 %"
for name in "${NAMES[@]}"; do
    for p in 32 16; do
        f="$TMP/$name.c$p.out"
        # the share from other_ms / step_ms (three decimals of a millisecond each), not from
        # other_share's three decimals, which would round 0.2504 to a met 0.250
        share=$(ratio "$(field "$f" other_ms)" "$(field "$f" step_ms)" %.17g)
        printf '%-22s %-8s %10s %10s %7s%%  %s\n' "$name" "$([ $p = 32 ] && echo fp32 || echo bf16)" \
            "$(field "$f" gemm_ms)" "$(field "$f" other_ms)" \
            "$(awk -v s="$share" 'BEGIN { if (s == "n/a") print "n/a"; else printf "%.1f", 100 * s }')" \
            "$(verdict "$share" "<=" 0.25)"
    done
done

# target NAME LABEL A B MIN [BOUND] : prints A/B against MIN, met or NOT met. BOUND (loralab's
# gemm_bound_tokens_per_s: its products at the best sgemm rate it measured, all else free)
# adds the ratio no loralab step can pass on this CPU, and says so when that is below MIN.
target() {
    local r; r=$(ratio "$3" "$4" %.17g)
    local v; v=$(verdict "$r" ">=" "$5")
    if [ -n "${6:-}" ]; then
        local c; c=$(ratio "$6" "$4" %.17g)
        v="$v; ceiling $(ratiox "$6" "$4")"
        [ "$c" = n/a ] || [ "$(verdict "$c" ">=" "$5")" = met ] || v="$v, out of reach on this CPU"
    fi
    printf '%-44s %8s  (target >= %s: %s)\n' "$1" "$(ratiox "$3" "$4")" "$5" "$v"
}
tps() { field "$TMP/$1.out" tokens_per_s; }
bound() { field "$TMP/$1.out" gemm_bound_tokens_per_s; }
if [ $have_torch = 1 ]; then
    echo
    echo "loralab / PyTorch tokens/s; the fp32 ceiling is loralab's step with its products at the best"
    echo "sgemm rate measured on this CPU (sgemm_gflops) and everything else free:"
    target "micro FT, fp32 vs fp32" micro_ft "$(tps micro_ft.c32)" "$(tps micro_ft.t32)" 3 "$(bound micro_ft.c32)"
    target "small FT, fp32 vs fp32" small_ft "$(tps small_ft.c32)" "$(tps small_ft.t32)" 3 "$(bound small_ft.c32)"
    target "micro FT, bf16 vs bf16 autocast" micro_ft "$(tps micro_ft.c16)" "$(tps micro_ft.t16)" 1.5
    target "micro LoRA, bf16 vs bf16 autocast" micro_lora "$(tps micro_lora.c16)" "$(tps micro_lora.t16)" 1.5
    target "small FT, bf16 vs bf16 autocast" small_ft "$(tps small_ft.c16)" "$(tps small_ft.t16)" 1.2
    target "small LoRA, bf16 vs bf16 autocast" small_lora "$(tps small_lora.c16)" "$(tps small_lora.t16)" 1.2
fi

echo
echo "LoRA vs FT, loralab (paper, GPT-3 175B: 1.25x throughput, 3x less memory; targets on small:"
echo "LoRA step <= 0.75x FT's, LoRA tensors in bf16 <= 0.6x FT's):"
# atmost A B MAX : the verdict on A/B <= MAX
atmost() { verdict "$(ratio "$1" "$2" %.17g)" "<=" "$3"; }
printf '%-22s %14s %14s  %s\n' "" "LoRA/FT step" "LoRA/FT tensors" "targets (small only)"
for p in micro small; do
    for q in 32 16; do
        f="$TMP/${p}_ft.c$q.out" l="$TMP/${p}_lora.c$q.out"
        verdict=""
        if [ $p = small ]; then
            verdict="step: $(atmost "$(field "$l" step_ms)" "$(field "$f" step_ms)" 0.75)"
            [ $q = 16 ] && verdict="$verdict, tensors: $(atmost "$(memtotal "$l")" "$(memtotal "$f")" 0.6)"
        fi
        printf '%-22s %14s %14s  %s\n' "$p $([ $q = 32 ] && echo fp32 || echo bf16)" \
            "$(ratiox "$(field "$l" step_ms)" "$(field "$f" step_ms)")" "$(ratiox "$(memtotal "$l")" "$(memtotal "$f")")" "$verdict"
    done
done

echo
echo "loralab FT with oneDNN capped below this CPU (ONEDNN_MAX_CPU_ISA), as on a CPU without AVX512-BF16"
echo "(AVX512_CORE) or without AVX-512 (AVX2); tokens/s against the uncapped loralab row above:"
printf '%-22s %-12s %-5s %10s %10s %9s  %s\n' case cap prec step_ms tokens/s "/uncapped" kernels
for c in "${CASES[@]}"; do
    read -r name preset b t _ _ _ method <<< "$c"
    [ "$method" = ft ] || continue
    label="$preset ${name#*_} ${b}x$t"
    for cap in "${CAPS[@]}"; do
        for p in 32 16; do
            f="$TMP/$name.$cap.c$p.out"
            printf '%-22s %-12s %-5s %10s %10s %9s  %s\n' "$label" "$cap" "$([ $p = 32 ] && echo fp32 || echo bf16)" \
                "$(field "$f" step_ms)" "$(field "$f" tokens_per_s)" \
                "$(ratiox "$(field "$f" tokens_per_s)" "$(tps "$name.c$p")")" \
                "$(sed -n 's/^kernels: //p' "$f" 2>/dev/null | head -n 1)"
            label=""
        done
    done
done

echo
echo "inference latency (the paper's Table 1), loralab bench --inference:"
# micro with n_ctx raised to 512 (random weights) reaches all three of Table 1's shapes
if ! "$BIN" bench --inference --preset micro --ctx 512 --threads "$K" --steps 20; then
    echo "bench.sh: loralab bench --inference --preset micro --ctx 512 failed" >&2; status=1
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
exit $status
