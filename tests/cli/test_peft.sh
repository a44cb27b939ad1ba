# tests/cli/test_peft.sh — PEFT interoperability (sourced by tests/cli/run.sh). The fixtures
# and their expected losses come from scripts/make_peft_fixtures.py (PyTorch applying each
# adapter the way PEFT's LoRA layer does, on transformers' GPT-2 layout).
PF=$(cd "$(dirname "$LORALAB")/.." && pwd)/tests/fixtures/peft

# want KEY: the loss expected.json holds for KEY
want() { sed -n "s/^ *\"$1\": \([0-9.]*\),\{0,1\}\$/\1/p" "$PF/expected.json"; }
# expect_loss KEY CMD...: CMD exits 0 and prints loss=X with |X - want KEY| < 1e-4 (float32
# against the float64 reference)
expect_loss() {
  local key=$1; shift
  local out; out=$("$@" 2>&1); local rc=$?
  local got=${out#loss=}; got=${got%% *}
  local w; w=$(want "$key")
  if [ $rc -eq 0 ] && [ -n "$w" ] && [[ $got =~ ^[0-9]+\.[0-9]+$ ]] &&
     awk -v a="$got" -v b="$w" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-4) }'; then _report ok
  else _report fail "expected loss $w ($key) from: $* :: exit $rc, $out"; fi
}
evl() { "$LORALAB" eval-lm --checkpoint "$PF/base" --text "$PF/text.txt" "$@"; }

# the base and the reference agree before any adapter
expect_loss base evl
# independent PEFT adapters (fused c_attn, c_proj matching both projections, c_fc;
# rank_pattern, alpha_pattern, alpha != r; and rsLoRA scaling)
expect_loss peft_lm evl --adapter "$PF/peft_lm"
expect_loss peft_rslora evl --adapter "$PF/peft_rslora"
# loralab's own adapter with only the fields it needs
expect_loss own evl --adapter "$PF/own"

# export writes what the fixture's PEFT application was run on, and that application gives
# the loss loralab gives with the original
expect_out "^wrote .*/exp: PEFT LoRA adapter, 2 layers, target_modules attn.c_attn attn.c_proj mlp.c_fc, r=4 lora_alpha=12 \(attn.c_attn: r=8 lora_alpha=24, 2 fused matrices\)$" \
  "$LORALAB" export --format peft --out "$TMP/exp" "$PF/own"
expect_ok cmp "$TMP/exp/adapter_model.safetensors" "$PF/own_exported/adapter_model.safetensors"
expect_ok cmp "$TMP/exp/adapter_config.json" "$PF/own_exported/adapter_config.json"
expect_loss own_exported_peft evl --adapter "$PF/own"
# and loralab reads its own export back to the same loss
expect_loss own evl --adapter "$TMP/exp"

# merged checkpoints give the adapter's loss and load as a base
expect_out "^wrote $TMP/merged: $PF/peft_lm merged into $PF/base \(method lora\)$" \
  "$LORALAB" merge-adapter --out "$TMP/merged" "$PF/base" "$PF/peft_lm"
expect_loss peft_lm "$LORALAB" eval-lm --checkpoint "$TMP/merged" --text "$PF/text.txt"
expect_ok "$LORALAB" merge-adapter --out "$TMP/merged_own" "$PF/base" "$PF/own"
expect_loss own "$LORALAB" eval-lm --checkpoint "$TMP/merged_own" --text "$PF/text.txt"
expect_out '^trainable=2048 ' "$LORALAB" params --config "$TMP/merged" method=lora lora.targets=q,v lora.rank=4

# methods a PEFT LoRA adapter cannot hold are refused whole, with nothing written
refuse() {   # refuse NAME CONFIG_JSON MESSAGE
  mkdir -p "$TMP/m_$1"
  printf '%s\n' "$2" > "$TMP/m_$1/adapter_config.json"
  expect_fail 2 "export: $TMP/m_$1: $3; nothing written" "$LORALAB" export --format peft --out "$TMP/x_$1" "$TMP/m_$1"
  [ ! -e "$TMP/x_$1" ] && _report ok || _report fail "export of $1 wrote $TMP/x_$1"
}
for m in adapter_h adapter_l adapter_p; do
  refuse $m "{\"method\": \"$m\", \"adapter_r\": 4}" "method $m inserts bottleneck layers, which PEFT's LoRA cannot express"
done
refuse adapter_d '{"method": "adapter_d", "adapter_r": 4, "adapter_skip": 1}' \
  "method adapter_d inserts bottleneck layers, which PEFT's LoRA cannot express"
refuse prefix_layer '{"method": "prefix_layer", "prefix_lp": 4, "prefix_li": 0}' \
  "method prefix_layer trains per-layer prefix activations, which PEFT's LoRA cannot express"
refuse prefix_embed '{"method": "prefix_embed", "prefix_lp": 4, "prefix_li": 0}' \
  "method prefix_embed trains prefix embeddings, which PEFT's LoRA cannot express"
refuse ft '{"method": "ft"}' \
  'method ft trains every weight of the model, which a PEFT LoRA adapter cannot hold; write a full checkpoint with `loralab merge-adapter` instead'
refuse bitfit '{"method": "bitfit"}' \
  "method bitfit trains the base model's biases, which a PEFT LoRA adapter cannot hold; write a full checkpoint with \`loralab merge-adapter\` instead"
refuse lora_bitfit '{"method": "lora", "r": 2, "lora_alpha": 4, "target_modules": ["q"], "also_bitfit": true}' \
  "the combination with bitfit trains the base model's biases, which a PEFT LoRA adapter cannot hold; write a full checkpoint with \`loralab merge-adapter\` instead"
refuse lora_prefix '{"method": "lora", "r": 2, "lora_alpha": 4, "target_modules": ["q"], "also_prefix": "prefix_embed", "prefix_lp": 2, "prefix_li": 0}' \
  "the combination with a prefix method trains prefixes, which PEFT's LoRA cannot express"
# a prefix method with combine [lora] records its LoRA part (also_lora), and is refused as a prefix method
refuse prefix_lora '{"method": "prefix_embed", "prefix_lp": 2, "prefix_li": 0, "also_lora": true, "r": 2, "lora_alpha": 4, "target_modules": ["q"]}' \
  "method prefix_embed trains prefix embeddings, which PEFT's LoRA cannot express"
expect_fail 2 "merge-adapter: $TMP/m_prefix_lora: method prefix_embed trains prefixes that a GPT-2 checkpoint cannot hold" \
  "$LORALAB" merge-adapter --out "$TMP/x" "$PF/base" "$TMP/m_prefix_lora"
mkdir -p "$TMP/m_also_lora_nor"
printf '{"method": "bitfit", "also_lora": true, "lora_alpha": 4, "target_modules": ["q"]}\n' > "$TMP/m_also_lora_nor/adapter_config.json"
expect_fail 2 "$TMP/m_also_lora_nor/adapter_config.json: missing field 'r'" \
  "$LORALAB" merge-adapter --out "$TMP/x" "$PF/base" "$TMP/m_also_lora_nor"
expect_fail 2 "merge-adapter: $TMP/m_adapter_h: method adapter_h inserts bottleneck layers that a GPT-2 checkpoint cannot hold" \
  "$LORALAB" merge-adapter --out "$TMP/x" "$PF/base" "$TMP/m_adapter_h"
expect_fail 2 "export: $PF/peft_lm: already a PEFT adapter" "$LORALAB" export --format peft --out "$TMP/x" "$PF/peft_lm"
expect_fail 2 "export: --format: unknown format 'onnx' (expected: peft)" "$LORALAB" export --format onnx --out "$TMP/x" "$PF/own"
expect_fail 2 "export: 'nosuch' is neither an adapter directory (no adapter_config.json) nor a run: results database $TMP/none.db does not exist" \
  "$LORALAB" export --format peft --out "$TMP/x" --db "$TMP/none.db" nosuch

# a classification head goes to modules_to_save; the export reads back as a cls head
# f32_zeros_st PATH HEADER BYTES: a safetensors file of zeros
f32_zeros_st() {
  local len=${#2} i
  { for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(( (len >> (8 * i)) & 255 )))"; done
    printf '%s' "$2"; head -c "$3" /dev/zero; } > "$1"
}
mkdir -p "$TMP/cls"
printf '{"method": "lora", "r": 2, "lora_alpha": 4, "target_modules": ["q"], "head": "cls", "n_classes": 3}\n' > "$TMP/cls/adapter_config.json"
f32_zeros_st "$TMP/cls/adapter_model.safetensors" \
  '{"h.0.attn.q.lora_A":{"dtype":"F32","shape":[2,64],"data_offsets":[0,512]},"h.0.attn.q.lora_B":{"dtype":"F32","shape":[64,2],"data_offsets":[512,1024]},"score.weight":{"dtype":"F32","shape":[3,64],"data_offsets":[1024,1792]}}' 1792
expect_ok "$LORALAB" export --format peft --out "$TMP/cls_exp" "$TMP/cls"
expect_ok grep -q '"task_type": "SEQ_CLS"' "$TMP/cls_exp/adapter_config.json"
expect_ok grep -Pzq '"modules_to_save": \[\s*"score"\s*\]' "$TMP/cls_exp/adapter_config.json"
expect_ok grep -aq '"base_model.model.score.weight":{"dtype":"F32","shape":\[3,64\]' "$TMP/cls_exp/adapter_model.safetensors"
expect_ok grep -aq '"base_model.model.transformer.h.0.attn.c_attn.lora_B.weight":{"dtype":"F32","shape":\[192,2\]' "$TMP/cls_exp/adapter_model.safetensors"
expect_ok "$LORALAB" merge-adapter --out "$TMP/cls_merged" "$PF/base" "$TMP/cls_exp"
expect_ok grep -q '"num_labels": 3' "$TMP/cls_merged/config.json"

# PEFT adapters loralab cannot read correctly are refused, naming the file and field
peft_bad() {   # peft_bad NAME SED_EXPR MESSAGE
  mkdir -p "$TMP/p_$1"
  cp "$PF/peft_lm/adapter_model.safetensors" "$TMP/p_$1/"
  sed "$2" "$PF/peft_lm/adapter_config.json" > "$TMP/p_$1/adapter_config.json"
  expect_fail 2 "$TMP/p_$1/adapter_config.json: $3" evl --adapter "$TMP/p_$1"
}
peft_bad prompt 's/"peft_type": "LORA"/"peft_type": "PROMPT_TUNING"/' \
  'peft_type is "PROMPT_TUNING"; loralab reads PEFT LoRA adapters only (peft_type "LORA")'
peft_bad dora 's/"use_dora": false/"use_dora": true/' 'use_dora is true; loralab reads plain LoRA only'
peft_bad bias 's/"bias": "none"/"bias": "all"/' \
  'bias is "all"; loralab reads adapters with bias "none" (trained biases are not LoRA factors)'
peft_bad rank 's/"c_fc": 3/"c_fc": 5/' \
  'transformer.h.0.mlp.c_fc has rank 3 in adapter_model.safetensors, but rank_pattern gives 5'
peft_bad noalpha '/"lora_alpha"/d' "missing field 'lora_alpha'"

# SRC may be a run of the database: its adapter artifact is exported
DB=$TMP/db/loralab.db
"$LORALAB" status --db "$DB" >/dev/null
sqlite3 "$DB" "INSERT INTO runs (hash, config, status, method, rank, seed) VALUES
  ('abcd0001', '{\"method\":\"lora\",\"lora\":{\"rank\":4},\"seed\":1}', 'done', 'lora', 4, 1),
  ('abcd0002', '{\"method\":\"lora\",\"lora\":{\"rank\":4},\"seed\":2}', 'pending', 'lora', 4, 2);
  INSERT INTO artifacts (run_id, kind, path) VALUES (1, 'adapter', '$PF/own');"
expect_ok "$LORALAB" export --format peft --out "$TMP/exp_run" --db "$DB" 'seed=1'
expect_ok cmp "$TMP/exp_run/adapter_model.safetensors" "$PF/own_exported/adapter_model.safetensors"
expect_ok "$LORALAB" export --format peft --out "$TMP/exp_hash" --db "$DB" abcd0001
expect_ok cmp "$TMP/exp_hash/adapter_config.json" "$PF/own_exported/adapter_config.json"
expect_fail 2 "export: run 2 has no adapter artifact (its adapter is saved when it finishes)" \
  "$LORALAB" export --format peft --out "$TMP/x" --db "$DB" 'seed=2'

# analyze takes an adapter directory as RUN, PEFT's too: ‖ΔW‖_F as the fixture computed it
# (c_fc of rank 3 from rank_pattern; q as the first rows of layer 1's rank-2 fused c_attn)
g4() { awk -v x="$(want "$1")" 'BEGIN { printf "%.4g", x }'; }
expect_out "^    0  c_fc    4  $(g4 peft_lm_norm_dw_h0_c_fc) " \
  "$LORALAB" analyze amplification --run "$PF/peft_lm" --base "$PF/base" --matrix c_fc
expect_out "^    1  q       4  $(g4 peft_lm_norm_dw_h1_q) " \
  "$LORALAB" analyze amplification --run "$PF/peft_lm" --base "$PF/base" --matrix q
# the export holds the same ΔW as the original: same norms, layer by layer
norms() { "$LORALAB" analyze amplification --run "$1" --base "$PF/base" --matrix q,v,o,c_fc | awk '$1 ~ /^[0-9]+$/ { print $1, $2, $4 }'; }
norms "$PF/own" > "$TMP/n_own"; norms "$PF/own_exported" > "$TMP/n_exp"
[ "$(wc -l < "$TMP/n_own")" = 8 ] && cmp -s "$TMP/n_own" "$TMP/n_exp" && _report ok || _report fail "‖ΔW‖ of own and its export differ: $(paste "$TMP/n_own" "$TMP/n_exp")"
expect_out '^    1  v       1\.0000       1\.0000 ' "$LORALAB" analyze subspace --a "$PF/peft_lm" --b "$PF/peft_lm" --base "$PF/base" --layers 1
expect_fail 2 "adapter $PF/peft_lm: base checkpoint 'gpt2-nano' (adapter_config.json base_model_name_or_path) not found: give the checkpoint directory the adapter applies to with --base DIR" \
  "$LORALAB" analyze subspace --a "$PF/peft_lm" --b "$PF/own"
