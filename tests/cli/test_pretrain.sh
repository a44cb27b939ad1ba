# tests/cli/test_pretrain.sh — `loralab pretrain` (sourced by tests/cli/run.sh) on the nano preset:
# provenance and curve written, a paused and resumed run gives the same bytes as one that was
# never stopped, the flattening rule stops a run and decays, a finished directory is reused,
# and bad input exits 2 with one message.
pt_repo=$(cd "$here/../.." && pwd)
PT="--preset nano --data $pt_repo/data --batch 4 --seq 32 --eval-every 10 --eval-rows 8 --warmup 5"

# 30 steps; patience 100 never runs out, so the decay starts at 30 / 1.2 = 25 (stop reason max-steps)
expect_out '^pretrained nano: 30 steps' "$LORALAB" pretrain $PT --max-steps 30 --patience 100 --out "$TMP/a"
expect_ok test -s "$TMP/a/config.json"
expect_out '"stop_reason": "max-steps"' cat "$TMP/a/provenance.json"
expect_out '"steps": 30,' cat "$TMP/a/provenance.json"
expect_out '"corpus_sha256": "[0-9a-f]{64}"' cat "$TMP/a/provenance.json"
expect_out "\"command\": \"loralab pretrain --preset nano " cat "$TMP/a/provenance.json"
pt_sha=$(sha256sum "$TMP/a/model.safetensors" | cut -d' ' -f1)
expect_out "\"checkpoint_sha256\": \"$pt_sha\"" cat "$TMP/a/provenance.json"
expect_out '^step	train_loss	validation_loss	lr	seconds$' head -1 "$TMP/a/curve.tsv"
expect_out '^30	' tail -1 "$TMP/a/curve.tsv"
expect_ok test ! -e "$TMP/a/resume"
# a done directory is reused, not retrained
expect_out 'is pretrained already' "$LORALAB" pretrain $PT --max-steps 30 --patience 100 --out "$TMP/a"

# paused after step 15 (the state of step 10 resumes it), then resumed: the same bytes
expect_out '^paused at step 15; the state saved at step 10 resumes it' "$LORALAB" pretrain $PT --max-steps 30 --patience 100 --out "$TMP/b" --until 15
expect_ok test -s "$TMP/b/resume/moments.safetensors"
expect_out '^resumed at step 10 from' "$LORALAB" pretrain $PT --max-steps 30 --patience 100 --out "$TMP/b"
expect_ok test "$(sha256sum "$TMP/b/model.safetensors" | cut -d' ' -f1)" = "$pt_sha"
expect_ok cmp <(cut -f1-4 "$TMP/a/curve.tsv") <(cut -f1-4 "$TMP/b/curve.tsv")

# flattening: no validation improves on the first by 10 nats, so with patience 1 the loss has
# "flattened" at step 20; the decay then runs 0.2 x 20 = 4 steps and the run stops at 24
expect_out 'validation loss flattened at step 20 .*decaying over 4 steps' "$LORALAB" pretrain $PT --max-steps 1000 --patience 1 --min-delta 10 --out "$TMP/f"
expect_out '"stop_reason": "flattened"' cat "$TMP/f/provenance.json"
expect_out '"steps": 24,' cat "$TMP/f/provenance.json"

# bad input
expect_fail 2 "pretrain: --preset and --out are required" "$LORALAB" pretrain --preset nano
expect_fail 2 "is not a language-model task" "$LORALAB" pretrain $PT --task spam --out "$TMP/s"
expect_fail 2 "longer than the nano context" "$LORALAB" pretrain --preset nano --seq 4096 --out "$TMP/s"
"$LORALAB" pretrain $PT --max-steps 30 --out "$TMP/c" --until 10 >/dev/null 2>&1
expect_fail 2 "was started with other options" "$LORALAB" pretrain $PT --max-steps 30 --lr 0.01 --out "$TMP/c"
