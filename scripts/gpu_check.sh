#!/usr/bin/env bash
# scripts/gpu_check.sh — the GPU check of issue 7 (item 6), for one H100/H200, in about
# 5 minutes: build, run the GPU tests, benchmark, print a summary. It only measures; every
# number it prints comes from a run it just made.
#
#   1. make bin/loralab and build/tests/test_cuda_ops (CUDA objects for sm_80 and sm_90)
#   2. build/tests/test_cuda_ops: every op and nano/micro training steps, CPU vs GPU (fp32)
#   3. training benchmark on the GPU (random init, random tokens, forward + backward + AdamW,
#      grad clip 1.0): FT and LoRA (q,v, r=8, alpha=8) on gpt2 shapes (seq 1024) and on small
#      (seq 256), in fp32, with TF32 (LORALAB_TF32=1) and in bf16 mixed precision
#      (train.precision=bf16: bf16 block matmuls, frozen block weights in bf16); each case in its own process so
#      that its peak memory is its own. Per case: step time, tokens/s, TFLOP/s and MFU against
#      the device's dense bf16 peak (H100 SXM / H200: 989.4 TFLOP/s; GPU_PEAK_TFLOPS
#      overrides), peak device memory held by the backend.
#   4. SVD analysis time: the SVDs of all 24 (12 layers x q, v) gpt2-shaped 768 x 768 rank-8
#      updates, through analysis_svd on the GPU (cuSOLVER gesvd) and on the CPU (LAPACK).
#   5. Summary: LoRA / FT step time and peak memory ratios against the issue's targets
#      (FT on gpt2 shapes >= 40 % bf16 MFU; LoRA step time <= 0.75x FT; LoRA peak memory
#      <= 0.5x FT), per precision.
#
# Environment: GPU_CHECK_BATCH (gpt2 batch, default 8), GPU_CHECK_STEPS (timed steps,
# default 10), GPU_CHECK_JOBS (make -j, default nproc), LORALAB_TEST_CUDA_DEVICE (default 0).
# Exit status: 0 if the build, the tests and every benchmark ran; 1 otherwise (targets that
# are missed are reported, not failed: they are measurements).
set -u
cd "$(dirname "$0")/.." || exit 2

B=${GPU_CHECK_BATCH:-8}
STEPS=${GPU_CHECK_STEPS:-10}
JOBS=${GPU_CHECK_JOBS:-$(nproc)}
TEST=build/tests/test_cuda_ops
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
status=0
t_start=$(date +%s)

elapsed() { echo "$(( $(date +%s) - t_start ))s"; }

echo "== gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host $(hostname)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
else
    echo "nvidia-smi: not found"
fi

echo "== build (make -j$JOBS)"
t0=$(date +%s)
if ! make -j"$JOBS" bin/loralab "$TEST" >"$OUT/build.log" 2>&1; then
    tail -n 40 "$OUT/build.log"
    echo "gpu_check: build failed"
    exit 1
fi
grep -E "^loralab build:" "$OUT/build.log" | head -n 1
grep -iE "warning" "$OUT/build.log" | head -n 20
echo "build: $(( $(date +%s) - t0 ))s"
if ! grep -q "✓ cuda (" "$OUT/build.log"; then
    echo "gpu_check: make did not build the CUDA backend (see the build line above)"
    exit 1
fi
bin/loralab --version || status=1

echo "== GPU tests ($TEST) [$(elapsed)]"
t0=$(date +%s)
"$TEST" >"$OUT/test.log" 2>&1
rc=$?
cat "$OUT/test.log"
echo "tests: exit $rc, $(( $(date +%s) - t0 ))s"
if [ $rc != 0 ]; then status=1; fi
if grep -q "skipped: no GPU" "$OUT/test.log"; then
    echo "gpu_check: the tests saw no GPU"
    exit 1
fi

# bench NAME ARGS... : one training benchmark in its own process; its line goes to $OUT/NAME.
bench() {
    local name=$1; shift
    if timeout 120 "$TEST" --bench "$@" >"$OUT/$name" 2>"$OUT/$name.err"; then
        cat "$OUT/$name"
    else
        echo "bench $name: failed (exit $?)"; cat "$OUT/$name.err"; status=1
        : >"$OUT/$name"
    fi
}
field() { grep -o "$2=[^ ]*" "$OUT/$1" 2>/dev/null | head -n 1 | cut -d= -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

echo "== training benchmark: gpt2 shapes B=$B T=1024, small B=32 T=256, $STEPS timed steps [$(elapsed)]"
for prec in fp32 tf32 bf16; do
    tf=0; [ $prec = tf32 ] && tf=1
    p=fp32; [ $prec = bf16 ] && p=bf16
    for method in ft lora; do
        LORALAB_TF32=$tf bench "gpt2-$method-$prec" gpt2 "$method" "$B" 1024 "$STEPS" $p
        LORALAB_TF32=$tf bench "small-$method-$prec" small "$method" 32 256 "$STEPS" $p
    done
done

echo "== SVD analysis: 24 gpt2-shaped dW (768 x 768, rank 8) [$(elapsed)]"
if ! timeout 120 "$TEST" --bench-svd 12 768 8; then echo "bench-svd: failed"; status=1; fi

echo "== summary [$(elapsed)]"
printf "%-6s %-5s %9s %9s %12s %8s %9s %12s\n" shape prec ft_ms lora_ms lora/ft_time ft_mfu lora_mfu lora/ft_mem
for shape in gpt2 small; do
    for prec in fp32 tf32 bf16; do
        ft=$shape-ft-$prec lo=$shape-lora-$prec
        printf "%-6s %-5s %9s %9s %12s %8s %9s %12s\n" "$shape" "$prec" \
            "$(field "$ft" step_ms)" "$(field "$lo" step_ms)" \
            "$(ratio "$(field "$lo" step_ms)" "$(field "$ft" step_ms)")" \
            "$(field "$ft" mfu_bf16)" "$(field "$lo" mfu_bf16)" \
            "$(ratio "$(field "$lo" peak_mem_mib)" "$(field "$ft" peak_mem_mib)")"
    done
done
echo "targets (issue 7): FT gpt2 >= 40% bf16 MFU (the bf16 rows),"
echo "LoRA/FT step time <= 0.75, LoRA/FT peak memory <= 0.5."
echo "gpu_check: exit $status after $(elapsed)"
exit $status
