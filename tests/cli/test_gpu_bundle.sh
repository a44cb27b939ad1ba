# tests/cli/test_gpu_bundle.sh — the GPU bundle and scripts/gpu_check.sh, without a GPU.
# 1. gpu_check.sh on a bundle of stand-in programs (shell scripts that pass, fail, hang,
#    crash, see no GPU, print bench lines): every step is reported with its time, a hang is
#    killed at its limit, a crash or a failure does not stop the check, the budget skips
#    what does not fit, and the JSON file is valid and holds the numbers of the bench lines.
# 2. Where this build has CUDA: scripts/gpu_bundle.sh builds the real bundle; every library
#    its binaries need resolves inside the bundle or to the C runtime or CUDA (ldd with
#    LD_LIBRARY_PATH = the bundle's lib/); on a machine without a GPU, gpu_check.sh fails
#    the GPU steps quickly and still writes valid JSON. Without CUDA: one line, SKIPPED.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
jq_() { sqlite3 :memory: "SELECT $1 FROM (SELECT readfile('$2') AS j)"; }
step_field() {   # JSON STEP FIELD
  sqlite3 :memory: "SELECT json_extract(value, '\$.$3') FROM json_each(readfile('$1'), '\$.steps')
                    WHERE json_extract(value, '\$.name') = '$2'"
}

# ---- 1. stand-ins ----
F="$TMP/fake"
mkdir -p "$F/stage/bin" "$F/stage/lib" "$F/stage/data/sst2_tiny" "$F/bundle"
cat > "$F/stage/bin/test_cuda_ops" <<'SH'
#!/bin/sh
case "$1" in
  --list) printf 'test_ok\ntest_bad\ntest_hang\ntest_crash\ntest_nogpu\n' ;;
  --only) case "$2" in
      test_ok) echo "[  PASSED  ] 1 test(s)." ;;
      test_bad) echo "[  ERROR   ] --- gemm ta=0: GPU differs from CPU beyond tolerance"; exit 1 ;;
      test_hang) exec sleep 60 ;;
      test_crash) kill -SEGV $$ ;;
      test_nogpu) echo "test_cuda_ops: skipped: no GPU (stand-in)"; echo "[  PASSED  ] 0 test(s)." ;;
    esac ;;
  --bench)
    if [ "$3" = lora ] && [ "$7" = bf16 ]; then echo "bench: the loss before one step differs from the CPU's" >&2; exit 1; fi
    ms=100; mem=2000; [ "$3" = lora ] && ms=60 && mem=1000; [ "$2" = small ] && ms=$((ms / 10))
    tf=0; [ "$7" = tf32 ] && [ "$2" = gpt2 ] && tf=1   # small tf32: TF32 left off, must fail
    echo "bench preset=$2 method=$3 B=$4 T=$5 steps=$6 precision=$7 tf32=$tf step_ms=$ms.00 tokens_per_s=81920 tflops=100.00 mfu_bf16=10.11% peak_tflops=989.4 loss=10.9 check_loss_gpu=10.9 check_loss_cpu=10.9 trainable=1 total=2 peak_mem_mib=$mem.0 weights_mib=1" ;;
  --bench-svd) echo "bench-svd matrices=24 shape=768x768 rank=8 gpu_total_s=0.500 gpu_per_matrix_ms=20.8 cpu_total_s=3.000 cpu_threads=16" ;;
esac
SH
cat > "$F/stage/bin/loralab" <<'SH'
#!/bin/sh
case "$1" in
  --version) echo "loralab stand-in"; echo "gpu: cuda:0 Stand-in GPU" ;;
  init) mkdir -p "$5" ;;
  run) ;;
  query) printf 'split,name,step,cpu,cuda\ntrain,loss,0,0.680445,0.680446\nvalidation,loss,6,0.682869,0.700000\n' ;;
esac
SH
chmod +x "$F/stage/bin/"*
echo "label	sentence" > "$F/stage/data/sst2_tiny/train.tsv"
{ echo "commit=stand-in"; echo "built=now"; echo "arch=$(uname -m)"; echo "glibc_min=2.17"
  (cd "$F/stage" && find bin lib data -type f | sort | xargs sha256sum | sed 's/^/sha256 /'); } > "$F/stage/MANIFEST"
cp "$F/stage/MANIFEST" "$F/bundle/"
tar -C "$F/stage" -czf "$F/bundle/payload.tar.gz" bin lib data MANIFEST

start=$(date +%s)
GPU_CHECK_TEST_LIMIT=3 bash "$ROOT/scripts/gpu_check.sh" --bundle "$F/bundle" --json "$F/out/check.json" > "$F/out.txt" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
J="$F/out/check.json"
[ $rc -eq 1 ] && _report ok || _report fail "gpu_check on stand-ins: exit $rc, expected 1: $(tail -5 "$F/out.txt")"
[ $took -lt 60 ] && _report ok || _report fail "gpu_check on stand-ins took ${took}s"
expect_out '^1$' jq_ "json_valid(j)" "$J"
# every step printed as it ends, with its time
for s in unpack machine cuda-libs libraries version list test_ok test_bad test_hang test_crash test_nogpu e2e \
         bench-gpt2-ft-fp32 bench-small-lora-bf16 svd; do
  grep -Eq "^\[ *[0-9.]+s\] +[a-z0-9]+ +$s +[a-z]+ +[0-9.]+s" "$F/out.txt" && _report ok || _report fail "step $s not reported: $(cat "$F/out.txt")"
done
expect_out '^pass$' step_field "$J" unpack status
expect_out '^pass$' step_field "$J" version status
expect_out '^fail$' step_field "$J" libraries status   # shell scripts are no dynamic executables
expect_out '^pass$' step_field "$J" test_ok status
expect_out '^fail$' step_field "$J" test_bad status
expect_out '^timeout$' step_field "$J" test_hang status
expect_out '^killed after 3s$' step_field "$J" test_hang detail
expect_out '^[3-9]\.' step_field "$J" test_hang seconds
expect_out '^killed by signal 11$' step_field "$J" test_crash detail
expect_out '^fail$' step_field "$J" test_nogpu status
expect_out 'GPU differs from CPU' cat "$F/out.txt"
# e2e: the CPU/GPU loss comparison rejects the row that differs, and only that one
expect_out '^fail$' step_field "$J" e2e status
expect_out 'loss differs: validation,loss,6' cat "$F/out/gpu_check_logs/e2e.log"
grep -q 'differs: train' "$F/out/gpu_check_logs/e2e.log" && _report fail "e2e rejected an equal loss" || _report ok
# bench numbers come through; a failed bench leaves its cells empty
expect_out '^pass\|fail$' jq_ "json_extract(j, '\$.bench[0].status') || '|' || json_extract(j, '\$.bench[11].status')" "$J"
expect_out '^0.6\|0.5\|100.0\|10.11$' jq_ "json_extract(j, '\$.summary[0].lora_over_ft_time') || '|' || json_extract(j, '\$.summary[0].lora_over_ft_mem') || '|' || json_extract(j, '\$.summary[0].ft_step_ms') || '|' || json_extract(j, '\$.summary[0].ft_mfu_bf16_pct')" "$J"
expect_out '^1$' jq_ "json_extract(j, '\$.summary[2].lora_step_ms') IS NULL AND json_extract(j, '\$.summary[2].ft_step_ms') = 100" "$J"
expect_out '^0.5\|16$' jq_ "json_extract(j, '\$.svd.gpu_total_s') || '|' || json_extract(j, '\$.svd.cpu_threads')" "$J"
expect_out '^1\|5\|1$' jq_ "json_extract(j, '\$.tests_passed') || '|' || json_extract(j, '\$.tests_run') || '|' || json_extract(j, '\$.exit_status')" "$J"
expect_out '^  gpt2  fp32 +100.00 +60.00 +0.60 ' cat "$F/out.txt"
# the TF32 rows measure TF32: a row run with TF32 off fails, the others pass
expect_out '^pass$' step_field "$J" bench-gpt2-ft-tf32 status
expect_out '^fail$' step_field "$J" bench-small-ft-tf32 status
expect_out 'must run with tf32=1' step_field "$J" bench-small-lora-tf32 detail

# the budget: a hang takes what is left, the rest is skipped, and the JSON is still written
start=$(date +%s)
GPU_CHECK_TEST_LIMIT=60 bash "$ROOT/scripts/gpu_check.sh" --bundle "$F/bundle" --json "$F/b/check.json" --budget 6 > "$F/b.txt" 2>&1
took=$(( $(date +%s) - start ))
[ $took -lt 20 ] && _report ok || _report fail "a 6 s budget took ${took}s"
expect_out '^1$' jq_ "json_valid(j)" "$F/b/check.json"
expect_out '^skipped$' step_field "$F/b/check.json" svd status
expect_out 'no time left in the 6s budget' cat "$F/b.txt"
# bad usage and a missing bundle: exit 2 before any step
expect_fail 2 "no bundle at" bash "$ROOT/scripts/gpu_check.sh" --bundle "$TMP/none"
expect_fail 2 "unknown option '--jsno'" bash "$ROOT/scripts/gpu_check.sh" --jsno x
expect_fail 2 "--budget: expected whole seconds" bash "$ROOT/scripts/gpu_check.sh" --bundle "$F/bundle" --budget 5m

# gpu_bundle.sh replaces an earlier bundle only, and says so before building anything
mkdir -p "$TMP/notbundle" && touch "$TMP/notbundle/keep"
expect_fail 2 "exists and is not a bundle; not replacing it" bash "$ROOT/scripts/gpu_bundle.sh" --out "$TMP/notbundle"
[ -e "$TMP/notbundle/keep" ] && _report ok || _report fail "gpu_bundle.sh removed a folder that was not a bundle"
expect_fail 2 "unknown option '--outt'" bash "$ROOT/scripts/gpu_bundle.sh" --outt x

# ---- 2. the real bundle ----
if ! "$LORALAB" --version 2>/dev/null | grep -q 'cuda (cuBLAS'; then
  echo "SKIPPED [test_gpu_bundle.sh]: this build has no CUDA backend, so no bundle is built"
else
  R="$TMP/real"
  if ! bash "$ROOT/scripts/gpu_bundle.sh" --out "$R/bundle" > "$R.log" 2>&1; then
    _report fail "gpu_bundle.sh failed: $(tail -5 "$R.log")"
  else
    _report ok
    bytes=$(du -sb "$R/bundle" | cut -f1)
    [ "$bytes" -lt $((64 * 1024 * 1024)) ] && _report ok || _report fail "bundle of $bytes bytes is over 64 MiB"
    expect_out "^carry: \[\"$R/bundle\"\]$" cat "$R.log"
    mkdir -p "$R/u" && tar -xzf "$R/bundle/payload.tar.gz" -C "$R/u"
    # every library: inside the bundle, the C runtime, or CUDA / the driver; none missing
    for b in "$R/u/bin/loralab" "$R/u/bin/test_cuda_ops"; do
      out=$(LD_LIBRARY_PATH="$R/u/lib" ldd "$b")
      bad=$(printf '%s\n' "$out" | awk -v lib="$R/u/lib/" '
        /not found/ { print; next }
        $2 == "=>" && index($3, lib) != 1 && $1 !~ /^(libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.so/ &&
          $1 !~ /^lib(cuda|cudart|cublas|cublasLt|cusolver|cusolverMg|cusparse|cufft|curand|nvJitLink|nvrtc|nvidia-.*)\.so/ { print }')
      [ -z "$bad" ] && _report ok || _report fail "$(basename "$b"): libraries outside the bundle: $bad"
      printf '%s\n' "$out" | grep -q "=> $R/u/lib/" && _report ok || _report fail "$(basename "$b") uses nothing from the bundle: $out"
    done
    if "$LORALAB" --version 2>/dev/null | grep -q '^gpu: cuda:'; then
      echo "note [test_gpu_bundle.sh]: a GPU is visible; run scripts/gpu_check.sh --bundle $R/bundle by hand"
    else
      # no GPU here: the setup steps pass, the GPU steps fail quickly, the JSON is valid
      GPU_CHECK_TEST_LIMIT=20 bash "$ROOT/scripts/gpu_check.sh" --bundle "$R/bundle" --json "$R/out/c.json" --budget 40 > "$R/out.txt" 2>&1
      expect_out '^1$' jq_ "json_valid(j)" "$R/out/c.json"
      for s in unpack machine libraries; do expect_out '^pass$' step_field "$R/out/c.json" "$s" status; done
      expect_out '^loralab sees no GPU$' step_field "$R/out/c.json" version detail
      expect_out '^fail$' step_field "$R/out/c.json" test_no_such_device status
      expect_out '^no GPU' step_field "$R/out/c.json" test_no_such_device detail
      expect_out '^1$' jq_ "(SELECT max(json_extract(value, '\$.seconds')) < 10 FROM json_each(j, '\$.steps'))" "$R/out/c.json"
    fi
  fi
fi
