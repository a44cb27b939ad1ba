#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: loralab against PyTorch on the same GPT-2 training step.
#
# For each case (micro FT, micro LoRA, small FT, small LoRA; LoRA = q,v, r 8, alpha 8) it runs
# `bin/loralab bench` and scripts/bench_torch.py (Debian's python3-torch on OpenBLAS) with the
# same thread count, and prints one table: step time, tokens/s, tensor memory (the `memory:`
# line's total: weights + grads + AdamW moments + saved activations) and peak RSS of each
# process, measured the same way for both (/usr/bin/time %M, else python's getrusage), with
# the RSS above an idle process (loralab: `bench --help`; PyTorch: right after `import torch`).
# Then the ratios: loralab / PyTorch tokens/s (the target: >= 3x on micro FT), and LoRA
# vs FT for both (the paper's anchor on GPT-3: LoRA trains 25% faster and needs 3x less
# memory). Last, `loralab bench --inference` (the paper's Table 1 latencies).
#
# Builds nothing (make does). Environment: BENCH_THREADS (default 2), BENCH_REPEAT (default 1:
# each case runs loralab and PyTorch that many times, alternately, and keeps each side's best
# tokens/s — use 3 on a shared machine), BENCH_PYTHON (default /usr/bin/python3), LORALAB
# (default bin/loralab), OMP_WAIT_POLICY (default passive, see below). Without torch it
# prints loralab's numbers only and exits 0; a failing run exits 1. Takes about 2-3 minutes
# on 2 cores with other jobs on them (more with BENCH_REPEAT).
set -u
cd "$(dirname "$0")/.." || exit 2

K=${BENCH_THREADS:-2}
REPEAT=${BENCH_REPEAT:-1}
PY=${BENCH_PYTHON:-/usr/bin/python3}
# Idle OpenMP threads sleep instead of spinning, for both programs: with spinning (libgomp's
# default) a machine with other jobs on its cores made both 4-8x slower and the ratio noise
# (loralab micro FT: 1.5-2.2 s/step spinning vs 0.27 s passive at load 9 on 2 cores).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
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
# ratio A B : A / B with two decimals, "n/a" if either is missing or B is zero; ratiox adds "x".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
ratiox() { local r; r=$(ratio "$1" "$2"); [ "$r" = n/a ] && echo n/a || echo "${r}x"; }
mib() { awk -v k="$1" 'BEGIN { if (k == "" || k == "n/a") print "n/a"; else printf "%.1f", k / 1024 }'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || a == "" || b == "") print "n/a"; else printf "%.1f", a - b }'; }

# An idle loralab process, to read loralab's RSS the way PyTorch's baseline is read.
run_rss "$TMP/idle" "$BIN" bench --help
idle_mib=$(mib "$(tail -n 1 "$TMP/idle.rss")")

echo "make bench: loralab vs PyTorch, $K threads, best of $REPEAT, random tokens, full training steps (forward,"
echo "cross-entropy, backward, grad clip 1.0, AdamW); LoRA = q,v r=8 alpha=8, base frozen."
echo "host: $(uname -m), $(nproc) cores, load average$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null | sed 's/^/ /'), OMP_WAIT_POLICY=$OMP_WAIT_POLICY," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} (both programs load OpenBLAS 0.3.21 and pick kernels by it)"
if [ $have_torch = 1 ]; then
    echo "pytorch: $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null) ($PY)"
else
    echo "pytorch: not found ($PY cannot import torch; apt-get install python3-torch) — loralab's numbers only"
fi
echo "tensors = the memory line's total (weights+grads+optimizer+saved activations); RSS = process peak"
echo "(PyTorch's CPU allocator keeps no statistics); +RSS = peak minus an idle process ($idle_mib MiB"
echo "for loralab, the RSS after 'import torch' for PyTorch)."
echo
printf '%-22s %-8s %10s %10s %10s %9s %9s\n' case impl step_ms tokens/s tensorsMiB RSS_MiB +RSS_MiB

# keep_best OUT TRY : TRY.{out,err,rss} become OUT.* when OUT has none yet or TRY has more tokens/s.
keep_best() {
    local best; best=$(field "$1.out" tokens_per_s)
    if [ ! -e "$1.out" ] || awk -v a="$(field "$2.out" tokens_per_s)" -v b="$best" 'BEGIN { exit !(a != "" && (b == "" || a + 0 > b + 0)) }'; then
        for x in out err rss; do mv -f "$2.$x" "$1.$x" 2>/dev/null; done
    fi
}

# bench_case NAME PRESET BATCH SEQ LORALAB_STEPS TORCH_WARMUP TORCH_STEPS METHOD
# Runs loralab then PyTorch, BENCH_REPEAT times alternately (so both see the same load), keeps
# each side's best run in $TMP/NAME.{c,t}.{out,err,rss} and prints three table rows.
bench_case() {
    local name=$1 preset=$2 b=$3 t=$4 steps=$5 warm=$6 tsteps=$7 method=$8 margs="" r
    [ "$method" = lora ] && margs=$LORA
    for ((r = 1; r <= REPEAT; r++)); do
        # shellcheck disable=SC2086
        if ! run_rss "$TMP/try" "$BIN" bench --preset "$preset" --batch "$b" --seq "$t" --threads "$K" \
                --steps "$steps" $margs; then
            echo "bench.sh: loralab bench failed for $name:" >&2; cat "$TMP/try.err" >&2; status=1
        fi
        keep_best "$TMP/$name.c" "$TMP/try"
        [ $have_torch = 1 ] || continue
        if ! run_rss "$TMP/try" "$PY" scripts/bench_torch.py --preset "$preset" --batch "$b" --seq "$t" \
                --threads "$K" --method "$method" --rank 8 --alpha 8 --targets q,v --warmup "$warm" --steps "$tsteps"; then
            echo "bench.sh: bench_torch.py failed for $name:" >&2; cat "$TMP/try.err" >&2; status=1
        fi
        keep_best "$TMP/$name.t" "$TMP/try"
    done
    local label="$preset $method ${b}x$t"
    local c_rss; c_rss=$(mib "$(rss_kib "$TMP/$name.c")")
    printf '%-22s %-8s %10s %10s %10s %9s %9s\n' "$label" loralab \
        "$(field "$TMP/$name.c.out" step_ms)" "$(field "$TMP/$name.c.out" tokens_per_s)" \
        "$(memtotal "$TMP/$name.c.out")" "$c_rss" "$(minus "$c_rss" "$idle_mib")"
    [ $have_torch = 1 ] || return 0
    local t_rss; t_rss=$(mib "$(rss_kib "$TMP/$name.t")")
    printf '%-22s %-8s %10s %10s %10s %9s %9s\n' "" pytorch \
        "$(field "$TMP/$name.t.out" step_ms)" "$(field "$TMP/$name.t.out" tokens_per_s)" \
        "$(memtotal "$TMP/$name.t.out")" "$t_rss" "$(field "$TMP/$name.t.out" delta)"
    printf '%-22s %-8s %21s\n' "" ratio \
        "$(ratiox "$(field "$TMP/$name.c.out" tokens_per_s)" "$(field "$TMP/$name.t.out" tokens_per_s)")"
}

#          name        preset B  T   loralab-steps torch-warmup torch-steps method
bench_case micro_ft    micro  16 128 10 2 5 ft
bench_case micro_lora  micro  16 128 10 2 5 lora
bench_case small_ft    small  8  256 3  1 3 ft
bench_case small_lora  small  8  256 3  1 3 lora

# lora_vs_ft LABEL FT_FILE LORA_FILE [RSS_DELTA_FT RSS_DELTA_LORA]
lora_vs_ft() {
    local f=$2 l=$3
    printf '%-22s %12s %12s %12s\n' "$1" \
        "$(ratiox "$(field "$l" tokens_per_s)" "$(field "$f" tokens_per_s)")" \
        "$(ratiox "$(memtotal "$f")" "$(memtotal "$l")")" \
        "$(ratiox "$4" "$5")"
}
echo
echo "LoRA vs FT (paper, GPT-3 175B: 1.25x throughput, 3x less memory):"
printf '%-22s %12s %12s %12s\n' "" "tokens/s" "tensors" "+RSS"
printf '%-22s %12s %12s %12s\n' "" "LoRA/FT" "FT/LoRA" "FT/LoRA"
for p in micro small; do
    f="$TMP/${p}_ft.c" l="$TMP/${p}_lora.c"
    lora_vs_ft "$p loralab" "$f.out" "$l.out" \
        "$(minus "$(mib "$(rss_kib "$f")")" "$idle_mib")" "$(minus "$(mib "$(rss_kib "$l")")" "$idle_mib")"
    if [ $have_torch = 1 ]; then
        f="$TMP/${p}_ft.t.out" l="$TMP/${p}_lora.t.out"
        lora_vs_ft "$p pytorch" "$f" "$l" "$(field "$f" delta)" "$(field "$l" delta)"
    fi
done

if [ $have_torch = 1 ]; then
    r=$(ratiox "$(field "$TMP/micro_ft.c.out" tokens_per_s)" "$(field "$TMP/micro_ft.t.out" tokens_per_s)")
    met=$(awk -v r="$r" 'BEGIN { print (r != "n/a" && r + 0 >= 3) ? "met" : "NOT met" }')
    echo
    echo "target, micro FT 16x128: loralab >= 3x PyTorch tokens/s: $r ($met)"
    # The ceiling any program on this sgemm has: the step's GEMM flops at sgemm's best rate.
    f="$TMP/micro_ft.c.out"
    echo "sgemm bound: $(awk -v f="$(field "$f" gemm_flops_per_step)" 'BEGIN { printf "%.3f", f / 1e9 }') GFLOP of GEMMs per step at $(field "$f" sgemm_gflops) GFLOP/s" \
         "(best measured, OpenBLAS $(field "$f" blas) kernels) allow at most $(field "$f" gemm_bound_tokens_per_s) tokens/s" \
         "even if every other op took no time: $(ratiox "$(field "$f" gemm_bound_tokens_per_s)" "$(field "$TMP/micro_ft.t.out" tokens_per_s)") PyTorch"
fi

echo
echo "inference latency (the paper's Table 1), loralab bench --inference:"
# micro with n_ctx raised to 512 (random weights) reaches all three of Table 1's shapes
if ! "$BIN" bench --inference --preset micro --ctx 512 --threads "$K" --steps 20; then
    echo "bench.sh: loralab bench --inference --preset micro --ctx 512 failed" >&2; status=1
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
exit $status
