# tests/cli/test_bench.sh — `loralab bench`: the training-step report and its GEMM flop count
# against the count by hand, Table 1's inference rows, and bad flags.

# nano FT, batch 2 x seq 16 (N = 32 rows, C = 64, 2 layers, 2 heads of 32, vocab 260). Forward
# GEMM flops: linears 2 x 24 N C^2 = 6,291,456; attention 2 x 4 B H T^2 hs = 262,144; LM head
# 2 N V C = 1,064,960; sum 7,618,560. FT backward does each product twice (input and weight
# gradient): the step is 3 x 7,618,560 = 22,855,680.
expect_out '^gemm_flops_per_step=22855680 sgemm_gflops=[0-9.]+ gemm_bound_tokens_per_s=[0-9.]+$' \
  $LORALAB bench --preset nano --batch 2 --seq 16 --steps 2 --threads 1
expect_out '^tokens_per_s=[1-9][0-9.]*$' $LORALAB bench --preset nano --batch 2 --seq 16 --steps 2 --threads 1
expect_out '^memory: weights=.* grads=.* optimizer=.* activations=.* total=' \
  $LORALAB bench --preset nano --batch 2 --seq 16 --steps 1 --threads 1 method=lora lora.rank=2
# LoRA trains only A and B: trainable = 2 layers x 2 targets x (2 x 64 x 2)
expect_out 'method=lora .* trainable=1024 ' $LORALAB bench --preset nano --batch 2 --seq 16 --steps 1 --threads 1 method=lora lora.rank=2
# Table 1 rows: each method's median and minimum forward latency and both overheads against
# the base; the minimum is never above the median, and with one forward per method they are one
expect_out '^16 +256 +adapter_h +[0-9.]+ +[0-9.]+ +-?[0-9.]+% +-?[0-9.]+%$' $LORALAB bench --inference --preset nano --ctx 512 --steps 1 --threads 1
expect_out '^1 +128 +lora \(merged\) ' $LORALAB bench --inference --preset nano --ctx 512 --steps 1 --threads 1
expect_out '^12 12 12$' sh -c "'$LORALAB' bench --inference --preset nano --ctx 512 --steps 1 --threads 1 |
  awk '/%/ { n++; if (\$(NF-3) == \$(NF-2)) one++; if (\$(NF-1) == \$NF) same++ } END { print n, one, same }'"
expect_out '^12 12$' sh -c "'$LORALAB' bench --inference --preset nano --ctx 512 --steps 5 --threads 1 |
  awk '/%/ { n++; if (\$(NF-2) + 0 <= \$(NF-3) + 0) ok++ } END { print n, ok }'"

expect_fail 2 "--seq 100 is larger than the preset's n_ctx 64" $LORALAB bench --preset nano --seq 100
expect_fail 2 "unknown method 'x'" $LORALAB bench --preset nano method=x

# bf16 mixed precision (train.precision=bf16): nano LoRA q,v r=8 holds 124,928 fp32 weights
# (499,712 bytes = 0.48 MiB); under bf16 the 98,304 frozen block-linear weights take 2 bytes
# instead of 4: 303,104 bytes = 0.29 MiB.
expect_out 'memory: weights=0.48 MiB' $LORALAB bench --preset nano --batch 2 --seq 16 --steps 1 --threads 1 method=lora
expect_out 'memory: weights=0.29 MiB' $LORALAB bench --preset nano --batch 2 --seq 16 --steps 1 --threads 1 method=lora train.precision=bf16
expect_fail 2 "unknown precision 'fp16'; valid choices: fp32, bf16" $LORALAB bench --preset nano method=lora train.precision=fp16

# Where the step goes: GEMM time counted inside every oneDNN product, the rest is other time;
# the two add up to the step (other_share = other / step, between 0 and 1).
expect_out '^kernels: oneDNN [0-9.]+, (AVX2|AVX-512|AVX-512 VNNI|AVX512-BF16|AMX) \([a-z0-9_]+\)' \
  $LORALAB bench --preset nano --batch 2 --seq 16 --steps 2 --threads 1
out=$($LORALAB bench --preset nano --batch 2 --seq 16 --steps 2 --threads 1 train.precision=bf16)
step=$(printf '%s\n' "$out" | sed -n 's/^step_ms=//p')
split=$(printf '%s\n' "$out" | sed -n 's/^gemm_ms=\([0-9.]*\) other_ms=\([-0-9.]*\) other_share=\([-0-9.]*\)$/\1 \2 \3/p')
if awk -v s="$step" -v l="$split" 'BEGIN { split(l, a, " "); d = a[1] + a[2] - s; exit !(l != "" && a[1] > 0 && d < 0.01 && d > -0.01 && a[3] >= 0 && a[3] <= 1) }'; then
  _report ok
else
  _report fail "bench: expected gemm_ms + other_ms = step_ms, gemm_ms > 0, 0 <= other_share <= 1; got '$split', step_ms '$step' :: $out"
fi
# --version names the instruction set oneDNN runs; capped at AVX2 it says so, bf16 widened
expect_out '^backends: cpu \(oneDNN [0-9.]+, [A-Z0-9 -]+ \([a-z0-9_]+\)' $LORALAB --version
ONEDNN_MAX_CPU_ISA=AVX2 expect_out '^backends: cpu \(oneDNN [0-9.]+, AVX2 \(avx2\), bf16 widened to fp32, ' $LORALAB --version
# AVX-512 without BF16 widens bf16 too (oneDNN only emulates bf16 products there; a CPU without
# AVX-512 capped there runs AVX2); AVX512-BF16 and AMX multiply bf16 operands as they are
ONEDNN_MAX_CPU_ISA=AVX512_CORE expect_out '^backends: cpu \(oneDNN [0-9.]+, (AVX-512 \(avx512_core\)|AVX2 \(avx2\)), bf16 widened to fp32, ' \
  $LORALAB --version
if $LORALAB --version | grep -Eq '\((avx512_core_bf16|avx512_core_amx)\)'; then
  expect_ok sh -c "! '$LORALAB' --version | grep -q 'bf16 widened'"
fi

# README.md's benchmark block is results/bench.txt verbatim, one `make bench` run with PyTorch
# beside it, every target with its verdict and the instruction set oneDNN ran named
ROOT=$(cd "$(dirname "$LORALAB")/.." && pwd)
want=$(cd "$ROOT" && bash scripts/bench_readme.sh results/bench.txt 2>&1)
got=$(sed -n '/^<!-- bench:begin/,/^<!-- bench:end/p' "$ROOT/README.md" | sed '1d;$d')
[ -n "$want" ] && [ "$want" = "$got" ] && _report ok ||
  _report fail "README.md's bench block is not what scripts/bench_readme.sh prints (scripts/bench_readme.sh --write README.md)"
expect_ok grep -Eq '^loralab: oneDNN [0-9.]+, (AVX2|AVX-512|AVX-512 VNNI|AVX512-BF16|AMX) ' "$ROOT/results/bench.txt"
expect_ok grep -q '^pytorch: ' "$ROOT/results/bench.txt"
# the PyTorch fp32 peer ran on an optimized BLAS, not Debian's reference one
expect_ok sh -c "grep -E '^pytorch: .*; fp32 BLAS: /' '$ROOT/results/bench.txt' | grep -qv '/blas/libblas'"
# the CPU it ran on, named; each fp32 ratio beside its ceiling, "out of reach" exactly when the
# ceiling is below the target
expect_ok grep -Eq '^cpu: .+ \(.* family [0-9]+ model [0-9]+\); (no-)?avx2 ' "$ROOT/results/bench.txt"
expect_out '^2 ok$' awk '/fp32 vs fp32/ { c = $0; sub(/.*ceiling /, "", c); sub(/x.*/, "", c)
    n++; if (c + 0 > 0 && ((c + 0 < 3) == (index($0, "out of reach on this CPU") > 0))) ok++ }
    END { print n, (n == ok ? "ok" : "bad") }' "$ROOT/results/bench.txt"
# 16 verdicts: 8 other-time shares, 6 ratios against PyTorch, the small LoRA/FT lines
expect_out '^16$' sh -c "grep -c -E '(target >= [0-9.]+: (met|NOT met))|  (met|NOT met)\$|step: (met|NOT met)' '$ROOT/results/bench.txt'"
