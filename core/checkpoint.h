// core/checkpoint.h — Hugging Face-style checkpoint and adapter directories.
//
// A checkpoint directory holds config.json (n_layer, n_head, n_embd, n_positions, vocab_size,
// layer_norm_epsilon) and model.safetensors with GPT-2's tensor names in Conv1D [in, out]
// layout (wte.weight, wpe.weight, h.N.ln_1.*, h.N.attn.c_attn.*, h.N.attn.c_proj.*,
// h.N.ln_2.*, h.N.mlp.c_fc.*, h.N.mlp.c_proj.*, ln_f.*), optionally every name prefixed with
// "transformer."; the h.N.attn.bias / masked_bias buffers and the tied lm_head.weight are
// ignored. F32, F16 and BF16 files load. A directory downloaded from the hub loads as it is,
// and a directory written by checkpoint_save loads in transformers' GPT2LMHeadModel.
//
// An adapter directory holds adapter_config.json (the method: peft_type, method, r,
// lora_alpha, target_modules, ...) and adapter_model.safetensors with a run's trainable
// tensors alone (method and head tensors, plus trainable base tensors such as BitFit's
// biases). LoRA factors are named h.{i}.attn.{q,k,v,o}.lora_A [r, d_in] / lora_B [d_out, r]
// and h.{i}.mlp.{c_fc,c_proj}.lora_A/B, PEFT's convention: ΔW = (lora_alpha / r) B @ A.
//
// Every function returns 0, or -1 with err_set() naming the file and the tensor or field,
// what was expected and what was found. Nothing here allocates memory the caller frees.
#ifndef LORALAB_CHECKPOINT_H
#define LORALAB_CHECKPOINT_H

#include "core/model.h"

// Reads <dir>/config.json into cfg (no weights needed: `loralab params --config DIR`).
int checkpoint_read_config(const char *dir, ModelConfig *cfg);

// Checks <dir> without a model, before any run uses it: config.json reads, model.safetensors
// is whole (header, offsets, sizes) and every float in it is finite.
int checkpoint_check(const char *dir);

// Fills m's base tensors (and "score.weight" when both the model and the file have it) from
// <dir>/model.safetensors. config.json must describe m's configuration. Method tensors are
// left untouched.
int checkpoint_load(Model *m, const char *dir);

// Writes <dir>/config.json and <dir>/model.safetensors (F32) for m's base tensors and its
// head (after model_lora_merge, the merged weights: a plain GPT-2 checkpoint); creates dir
// (and parents) if needed. Files are written under temporary names and
// renamed into place.
int checkpoint_save(const Model *m, const char *dir);

// Reads <dir>/adapter_config.json into mc, so a caller can create the right model before
// loading. Only the fields that shape the model are required: method; r, lora_alpha and
// target_modules for LoRA; adapter_r (and adapter_skip for adapter_d), prefix_lp / prefix_li
// for prefix methods, n_classes for a cls / reg head. Training-time fields (lora_dropout,
// lora_init) are optional. A PEFT LoRA adapter (no "method" field) is read by core/peft.h.
int adapter_read_config(const char *dir, MethodConfig *mc);

// Writes <dir>/adapter_config.json and <dir>/adapter_model.safetensors holding m's method
// and head tensors and its trainable base tensors. base_desc (may be NULL) names the base
// model (e.g. its checkpoint directory) in base_model_name_or_path.
int adapter_save(const Model *m, const char *dir, const char *base_desc);

// Loads an adapter written by adapter_save (or a PEFT LoRA adapter, core/peft.h) into m,
// which must have been created with the adapter's method (method, head and lora_alpha checked) on a base of matching shapes (checked
// per tensor; a missing or extra tensor is an error). m must not be LoRA-merged.
int adapter_load(Model *m, const char *dir);

#endif
