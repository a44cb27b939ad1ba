# tests/cli/test_checkpoint.sh — malformed checkpoint directories end with one message that
# names the file and the tensor or field, and exit status 2 (sourced by tests/cli/run.sh).
# The broken files are written here with printf; the good one comes from `loralab init`.

# st_file PATH HEADER DATA_BYTES [DECLARED_HEADER_LENGTH]: a safetensors file by hand, with
# DATA_BYTES zero bytes of data.
st_file() {
  local path=$1 header=$2 nbytes=$3 len=${4:-${#2}} i
  {
    for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(( (len >> (8 * i)) & 255 )))"; done
    printf '%s' "$header"
    head -c "$nbytes" /dev/zero
  } > "$path"
}

# bad_ckpt NAME HEADER DATA_BYTES [LEN]: a nano checkpoint directory with that model.safetensors.
bad_ckpt() {
  mkdir -p "$TMP/$1"
  cp "$TMP/good/config.json" "$TMP/$1/config.json"
  st_file "$TMP/$1/model.safetensors" "$2" "$3" ${4:-${#2}}
}

printf 'It was the best of times, it was the worst of times.\n' > "$TMP/text.txt"
expect_ok "$LORALAB" init --preset nano --seed 1 --out "$TMP/good"
expect_out '^loss=[0-9.]+ tokens=52$' "$LORALAB" eval-lm --checkpoint "$TMP/good" --text "$TMP/text.txt"

F32_1='{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'

bad_ckpt hlen '{}' 0 64
expect_fail 2 "hlen/model.safetensors: header length 64 is past the end of the file (10 bytes)" \
  "$LORALAB" eval-lm --checkpoint "$TMP/hlen" --text "$TMP/text.txt"

bad_ckpt json '{"wte.weight":' 0
expect_fail 2 "json/model.safetensors: header is not valid JSON" \
  "$LORALAB" eval-lm --checkpoint "$TMP/json" --text "$TMP/text.txt"

bad_ckpt past '{"wte.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 4
expect_fail 2 "past/model.safetensors: tensor 'wte.weight': data_offsets [0, 8] past the end of the data buffer (4 bytes)" \
  "$LORALAB" eval-lm --checkpoint "$TMP/past" --text "$TMP/text.txt"

bad_ckpt overlap '{"wte.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"wpe.weight":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12
expect_fail 2 "overlap/model.safetensors: tensor 'wpe.weight': data_offsets [4, 12] overlap tensor 'wte.weight' [0, 8]" \
  "$LORALAB" eval-lm --checkpoint "$TMP/overlap" --text "$TMP/text.txt"

bad_ckpt dtype '{"h.0.ln_1.weight":{"dtype":"F24","shape":[1],"data_offsets":[0,4]}}' 4
expect_fail 2 "dtype/model.safetensors: tensor 'h.0.ln_1.weight': unknown dtype 'F24'" \
  "$LORALAB" eval-lm --checkpoint "$TMP/dtype" --text "$TMP/text.txt"

bad_ckpt size '{"ln_f.bias":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8
expect_fail 2 "size/model.safetensors: tensor 'ln_f.bias': shape [3] of F32 needs 12 bytes, but data_offsets [0, 8] hold 8" \
  "$LORALAB" eval-lm --checkpoint "$TMP/size" --text "$TMP/text.txt"

bad_ckpt missing "{\"ln_f.bias\":$F32_1}" 4
expect_fail 2 "missing/model.safetensors: missing tensor 'wte.weight' (expected shape [260, 64])" \
  "$LORALAB" eval-lm --checkpoint "$TMP/missing" --text "$TMP/text.txt"

bad_ckpt shape '{"transformer.wte.weight":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}}' 64
expect_fail 2 "shape/model.safetensors: tensor 'transformer.wte.weight' has shape [4, 4], config.json expects [260, 64]" \
  "$LORALAB" eval-lm --checkpoint "$TMP/shape" --text "$TMP/text.txt"

mkdir -p "$TMP/nohead"
cp "$TMP/good/model.safetensors" "$TMP/nohead/"
grep -v '"n_head"' "$TMP/good/config.json" > "$TMP/nohead/config.json"
expect_fail 2 "nohead/config.json: missing field 'n_head'" \
  "$LORALAB" eval-lm --checkpoint "$TMP/nohead" --text "$TMP/text.txt"

expect_fail 2 "absent/config.json: cannot open" \
  "$LORALAB" eval-lm --checkpoint "$TMP/absent" --text "$TMP/text.txt"
