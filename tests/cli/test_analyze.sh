# tests/cli/test_analyze.sh — `loralab analyze` on a hand-made database (sourced by
# tests/cli/run.sh). Bases come from `loralab init`; adapters are written here (a small perl
# safetensors writer) with factors whose φ and ‖ΔW‖ are known by hand; the rows are inserted
# with the sqlite3 CLI.

# ta_st FILE NAME:ROWS:COLS:EXPR ...: an F32 safetensors file; element (i, j) = perl EXPR of $i, $j.
ta_st() {
  perl -e '
    my $file = shift; my ($data, @h) = ("");
    for my $spec (@ARGV) {
      my ($name, $r, $c, $expr) = split /:/, $spec, 4; my $bytes = "";
      for my $i (0 .. $r - 1) { for my $j (0 .. $c - 1) { my $v = eval $expr; die $@ if $@; $bytes .= pack("f<", $v) } }
      push @h, sprintf(q("%s":{"dtype":"F32","shape":[%d,%d],"data_offsets":[%d,%d]}), $name, $r, $c, length $data, length($data) + length $bytes);
      $data .= $bytes;
    }
    my $h = "{" . join(",", @h) . "}"; $h .= " " x ((8 - length($h) % 8) % 8);
    open my $f, ">", $file or die; binmode $f; print $f pack("Q<", length $h) . $h . $data; close $f;
  ' "$@"
}

# ta_adapter DIR BASE RANK ALPHA TARGETS(json list) TENSORS...
ta_adapter() {
  local dir=$1 base=$2 r=$3 alpha=$4 targets=$5; shift 5
  mkdir -p "$dir"
  cat > "$dir/adapter_config.json" <<EOF
{"peft_type": "LORA", "method": "lora", "task_type": "CAUSAL_LM", "base_model_name_or_path": "$base",
 "r": $r, "lora_alpha": $alpha, "lora_dropout": 0.0, "target_modules": $targets, "lora_init": "kaiming",
 "fan_in_fan_out": false, "bias": "none", "adapter_r": 8, "adapter_skip": 0, "prefix_lp": 16,
 "prefix_li": 0, "also_bitfit": false, "also_prefix": null, "head": "lm", "n_classes": 0}
EOF
  ta_st "$dir/adapter_model.safetensors" "$@"
}

A=$TMP/an
"$LORALAB" init --preset nano --seed 1 --out "$A/base1" >/dev/null
"$LORALAB" init --preset nano --seed 2 --out "$A/base2" >/dev/null
"$LORALAB" init --preset micro --seed 1 --out "$A/micro" >/dev/null

# run 1: r = 2 on q, v. A rows are e_0, e_1 (singular values 1 and 0.5); B = [1.5 e_0, 0.5 e_1]
# with alpha 4 (scale 2), so ΔW = 3 e_0 e_0ᵀ + 0.5 e_1 e_1ᵀ: ‖ΔW‖_F = √9.25 = 3.041.
# run 2: r = 4 on q, v. A rows are e_0 + e_2 (top), e_4..e_6: φ(1,1) with run 1 = 1/2,
# φ(2, 4) = (1/2) / 2 = 0.25.
# run 3: r = 4 on q only, A rows in e_8..e_11: φ = 0 against runs 1 and 2.
A1='($j==$i)?(1-0.5*$i):0'; B1='($i==$j)?(1.5-$j):0'
A2='($i==0)?(($j==0||$j==2)?3:0):(($j==$i+3)?1:0)'
A3='($j==$i+8)?1:0'
T1=(); T2=(); T3=()
for l in 0 1; do
  for m in q v; do
    T1+=("h.$l.attn.$m.lora_A:2:64:$A1" "h.$l.attn.$m.lora_B:64:2:$B1")
    T2+=("h.$l.attn.$m.lora_A:4:64:$A2" "h.$l.attn.$m.lora_B:64:4:0.01")
  done
  T3+=("h.$l.attn.q.lora_A:4:64:$A3" "h.$l.attn.q.lora_B:64:4:0.01")
done
ta_adapter "$A/ad1" "$A/base1" 2 4 '["q", "v"]' "${T1[@]}"
ta_adapter "$A/ad2" "$A/base1" 4 4 '["q", "v"]' "${T2[@]}"
ta_adapter "$A/ad3" "$A/base1" 4 4 '["q"]' "${T3[@]}"
ta_adapter "$A/ad4" "$A/base2" 2 4 '["q", "v"]' "${T1[@]}"           # another base
T5=(); for l in 0 1 2 3; do for m in q v; do
  T5+=("h.$l.attn.$m.lora_A:2:128:$A1" "h.$l.attn.$m.lora_B:128:2:$B1"); done; done
ta_adapter "$A/ad5" "$A/micro" 2 4 '["q", "v"]' "${T5[@]}"           # another shape

DB=$A/results/loralab.db
"$LORALAB" status --db "$DB" >/dev/null
cfg() { printf '{"base":{"preset":"nano"},"method":"%s","lora":{"rank":%s,"alpha":4.0,"targets":%s},"seed":%s}' "$@"; }
sqlite3 "$DB" <<EOF
INSERT INTO sweeps (name, file, analyze) VALUES ('s1', 's1.yaml',
  '{"subspace":{"pairs":[{"a":{"lora.rank":2},"b":{"lora.rank":4}}],"matrix":["q"]},"amplification":{"runs":{"lora.rank":2}},"plot":false}');
INSERT INTO sweeps (name, file) VALUES ('noblock', 'n.yaml');
INSERT INTO sweeps (name, file, analyze) VALUES ('badblock', 'b.yaml', '{"subspace":{"pairs":[{"a":{"lora.rank":16},"b":{"lora.rank":4}}]}}');
INSERT INTO runs (hash, config, status, method, rank, seed) VALUES
 ('aaaa0001', '$(cfg lora 2 '["q","v"]' 1)', 'done', 'lora', 2, 1),
 ('aaaa0002', '$(cfg lora 4 '["q","v"]' 1)', 'done', 'lora', 4, 1),
 ('bbbb0003', '$(cfg lora 4 '["q"]' 1)', 'done', 'lora', 4, 1),
 ('cccc0004', '$(cfg lora 2 '["q","v"]' 2)', 'done', 'lora', 2, 2),
 ('dddd0005', '$(cfg lora 2 '["q","v"]' 3)', 'done', 'lora', 2, 3),
 ('eeee0006', '{"method":"ft","seed":1}', 'done', 'ft', NULL, 1),
 ('ffff0007', '$(cfg lora 8 '["q","v"]' 1)', 'pending', 'lora', 8, 1);
INSERT INTO sweep_runs (sweep_id, run_id, position) VALUES (1, 1, 1), (1, 2, 2), (3, 1, 1), (3, 2, 2);
INSERT INTO artifacts (run_id, kind, path) VALUES (1, 'adapter', '$A/ad1'), (2, 'adapter', '$A/ad2'),
 (3, 'adapter', '$A/ad3'), (4, 'adapter', '$A/ad4'), (5, 'adapter', '$A/ad5');
EOF

# ---- subspace ----
# φ(A, A) = 1 everywhere; the random baseline printed beside it
expect_out '^    1  v       1\.0000       1\.0000 ' "$LORALAB" analyze subspace --a 1 --b 1 --db "$DB"
expect_out '^    0  q       0\.5000       0\.3750 ' "$LORALAB" analyze subspace --a 1 --b 2 --db "$DB"
expect_out '^2\|4\|0\.25' sqlite3 "$DB" "SELECT i, j, round(phi, 6) FROM analysis_subspace WHERE run_a = 1 AND run_b = 2 AND kind = 'learned' AND layer = 1 AND matrix = 'v' AND i = 2 AND j = 4"
expect_out '^32$' sqlite3 "$DB" "SELECT count(*) FROM analysis_subspace WHERE run_a = 1 AND run_b = 2 AND kind = 'random'"
expect_out '^    1  q       0\.0000       0\.0000 ' "$LORALAB" analyze subspace --a aaaa0002 --b bbbb --db "$DB"
expect_out 'i = 1\.\.1, j = 1\.\.3' "$LORALAB" analyze subspace --a 'lora.rank=2,seed=1' --b 'sweep=s1,lora.targets=q,v,lora.rank=4' --i 1 --j 3 --matrix v --layers 1 --db "$DB"
expect_out '^    1  v  ' "$LORALAB" analyze subspace --a 1 --b 2 --layers 1 --matrix v --db "$DB"
# figures: one heatmap per layer and matrix, grids over layers, .gp beside .png and .svg
expect_ok "$LORALAB" analyze subspace --a 1 --b 2 --matrix q --plot --out "$A/plots" --db "$DB"
for f in phi-1-2-q-layer0 phi-1-2-q-layer1 phi-1-2-q-layers phi-random-1-2-q-layers; do
  for e in gp png svg; do expect_ok test -s "$A/plots/$f.$e"; done
done
expect_ok "$LORALAB" analyze subspace --a 1 --b 2 --matrix q --layers 0 --plot --db "$DB"
expect_ok test -s "$A/results/plots/s1/phi-1-2-q-layer0.png"

# ---- amplification ----
expect_out '^    0  q       2  3\.041 ' "$LORALAB" analyze amplification --run 1 --db "$DB"
expect_out '^2\|0\.5\|1\.' sqlite3 "$DB" "SELECT idx, round(value, 6), round(effective_rank, 6) FROM analysis_singular WHERE run = 1 AND layer = 0 AND matrix = 'q' AND idx = 2"
expect_out '^4$' sqlite3 "$DB" "SELECT count(*) FROM analysis_amplification WHERE run = 1"
expect_out 'amplification' "$LORALAB" report table7 --sweep s1 --db "$DB"
expect_ok "$LORALAB" analyze amplification --run 1 --matrix v --plot --out "$A/plots" --db "$DB"
expect_ok test -s "$A/plots/amplification-1.svg"

# ---- sweep: the stored analyze: block ----
expect_out 'analyze sweep s1: 2 analyses, 0 run\(s\) skipped' "$LORALAB" analyze sweep s1 --db "$DB"
expect_fail 2 "sweep 'noblock' has no analyze: block" "$LORALAB" analyze sweep noblock --db "$DB"
expect_fail 2 "analyze.subspace.pairs[0].a: pattern a matches no LoRA run of the sweep" "$LORALAB" analyze sweep badblock --db "$DB"
expect_fail 2 "no sweep named 'nope'" "$LORALAB" analyze sweep nope --db "$DB"

# ---- bad input: exit 2 and a message ----
expect_fail 2 "run 6 (eeee0006) has no LoRA tensors: its method is ft" "$LORALAB" analyze amplification --run 6 --db "$DB"
expect_fail 2 "run 7 (ffff0007, status pending) has no adapter artifact" "$LORALAB" analyze subspace --a 1 --b 7 --db "$DB"
expect_fail 2 "runs 1 and 4 were trained on different bases" "$LORALAB" analyze subspace --a 1 --b 4 --db "$DB"
expect_fail 2 "runs 1 and 5 have different model shapes" "$LORALAB" analyze subspace --a 1 --b 5 --db "$DB"
expect_fail 2 "run 3 did not adapt matrix 'v' (its LoRA targets: q)" "$LORALAB" analyze subspace --a 1 --b 3 --matrix v --db "$DB"
expect_fail 2 "run 3 did not adapt matrix 'k'" "$LORALAB" analyze amplification --run 3 --matrix k --db "$DB"
expect_fail 2 "--i 3 is larger than run 1's rank 2 (matrix q)" "$LORALAB" analyze subspace --a 1 --b 2 --i 3 --db "$DB"
expect_fail 2 "--j 5 is larger than run 2's rank 4 (matrix q)" "$LORALAB" analyze subspace --a 1 --b 2 --j 5 --db "$DB"
expect_fail 2 "--layers: layer 2 does not exist: run 1's model has 2 layers (0-1)" "$LORALAB" analyze subspace --a 1 --b 2 --layers 0,2 --db "$DB"
expect_fail 2 "--layers: expected an integer, got 'x'" "$LORALAB" analyze subspace --a 1 --b 2 --layers 1-x --db "$DB"
expect_fail 2 "--layers: range 1-0 is empty" "$LORALAB" analyze subspace --a 1 --b 2 --layers 1-0 --db "$DB"
expect_fail 2 "--matrix: unknown matrix 'x'" "$LORALAB" analyze amplification --run 1 --matrix x --db "$DB"
expect_fail 2 "no run with id 99" "$LORALAB" analyze amplification --run 99 --db "$DB"
expect_fail 2 "no run with id or hash prefix 'abcdef'" "$LORALAB" analyze amplification --run abcdef --db "$DB"
expect_fail 2 "hash prefix 'aaaa' matches 2 runs" "$LORALAB" analyze amplification --run aaaa --db "$DB"
expect_fail 2 "run selector 'lora.rank=2' matches 3 runs (ids 1, 4, 5)" "$LORALAB" analyze amplification --run lora.rank=2 --db "$DB"
expect_fail 2 "run selector 'lora.rnk=2': unknown key 'lora.rnk'" "$LORALAB" analyze amplification --run lora.rnk=2 --db "$DB"
expect_fail 2 "run selector 'lora.rank=2,seed=9' matches no run" "$LORALAB" analyze amplification --run lora.rank=2,seed=9 --db "$DB"
expect_fail 2 "analyze subspace: --a RUN and --b RUN are required" "$LORALAB" analyze subspace --a 1 --db "$DB"
expect_fail 2 "analyze: expected a subcommand: subspace, amplification or sweep (got 'foo')" "$LORALAB" analyze foo --db "$DB"
expect_fail 2 "results database $A/none.db does not exist" "$LORALAB" analyze amplification --run 1 --db "$A/none.db"
rm -rf "$A/base2"
expect_fail 2 "run 4: base checkpoint '$A/base2' (adapter_config.json base_model_name_or_path) not found" "$LORALAB" analyze amplification --run 4 --db "$DB"
expect_out 'usage: loralab analyze subspace' "$LORALAB" analyze --help
