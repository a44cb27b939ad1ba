# tests/cli/test_params.sh — `loralab params` against the paper's parameter formulas:
# LoRA 2 L̂ d r, Adapter(H) L̂ (2 d r + r + d) + 2 L̂_LN d, PreEmbed d (lp + li),
# PreLayer L d (lp + li), BitFit = every bias. Values worked out by hand in the comments.

# gpt2-medium, LoRA r=4 on q,v: 2 x 48 x 1024 x 4 (the paper's Table 6 setting)
expect_out '^trainable=393216 total=[0-9]+ head=0$' $LORALAB params --preset gpt2-medium method=lora lora.targets=q,v lora.rank=4
# GPT-3 shape from a config.json alone (no weights): 96 layers, d 12288, r_q = r_v = 4 -> 4 x 96 x 12288 x 4
expect_out '^trainable=18874368 total=174623133696 head=0$' $LORALAB params --config tests/fixtures/gpt3 method=lora lora.targets=q,v lora.rank=4
# GPT-2 small, full fine-tuning: 124,439,808 parameters (tied LM head), all trainable
expect_out '^trainable=124439808 total=124439808 head=0$' $LORALAB params --preset gpt2 method=ft
# BitFit on gpt2: 12 x (2304 + 768 + 768 + 768 + 3072 + 768) + 768 (ln_f) biases
expect_out '^trainable=102144 total=124439808 head=0$' $LORALAB params --preset gpt2 method=bitfit
# Adapter(H) on gpt2-medium, r=8: 48 x (2 x 1024 x 8 + 8 + 1024) + 2 x 48 x 1024
expect_out '^trainable=934272 ' $LORALAB params --preset gpt2-medium method=adapter_h adapter.rank=8
# PreEmbed lp=256 li=8 on gpt2-medium: 1024 x 264
expect_out '^trainable=270336 ' $LORALAB params --preset gpt2-medium method=prefix_embed prefix.lp=256 prefix.li=8
# PreLayer lp=16 li=8: 24 x 1024 x 24
expect_out '^trainable=589824 ' $LORALAB params --preset gpt2-medium method=prefix_layer prefix.lp=16 prefix.li=8
# LoRA + PreEmbed (the paper's appendix combination): 393216 + 1024 x 16
expect_out '^trainable=409600 ' $LORALAB params --preset gpt2-medium method=lora lora.rank=4 combine=prefix_embed prefix.lp=16
# nano, all six targets r=2: 2 layers x (4 x 2 x 64 x 2 + 2 x (64 + 256) x 2) = 2 x (1024 + 1280); a 3-class head 3 x 64 apart
expect_out '^trainable=4608 total=[0-9]+ head=192$' $LORALAB params --preset nano --classes 3 method=lora lora.targets=q,k,v,o,c_fc,c_proj lora.rank=2
expect_out 'lora.targets' $LORALAB params --help

# bad input: one message, exit 2
expect_fail 2 "override 'lora.rank=abc': expected an integer, got 'abc'" $LORALAB params --preset micro method=lora lora.rank=abc
expect_fail 2 "override 'lora.rank=500': lora.rank: 500 is larger than d_model 128 of micro; r must be in [1, 128]" $LORALAB params --preset micro method=lora lora.rank=500
expect_fail 2 "override 'lora.rank=0': expected an integer >= 1, got 0" $LORALAB params --preset micro lora.rank=0
expect_fail 2 "unknown target 'x'; valid choices: q, k, v, o, c_fc, c_proj" $LORALAB params --preset micro lora.targets=q,x
expect_fail 2 "unknown method 'lorra'; valid choices: ft, bitfit, lora" $LORALAB params --preset micro method=lorra
expect_fail 2 "prefix.lp + prefix.li = 64 must be < n_ctx 64 of nano" $LORALAB params --preset nano method=prefix_layer prefix.lp=60 prefix.li=4
expect_fail 2 "--preset: unknown preset 'gpt5'; valid choices: nano, micro" $LORALAB params --preset gpt5
expect_fail 2 "params: give exactly one of --preset NAME or --config DIR" $LORALAB params method=lora
expect_fail 2 "params: unexpected argument 'lora'" $LORALAB params --preset micro lora
expect_fail 2 "config.json" $LORALAB params --config "$TMP/nowhere" method=lora
# combination: BitFit + LoRA (r=4 on q,v): 24*11*1024+1024 biases + 2*48*1024*4
expect_out "^trainable=664576 total=355216384 head=0$" "$LORALAB" params --preset gpt2-medium method=bitfit combine=lora lora.rank=4
