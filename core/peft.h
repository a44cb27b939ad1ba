// core/peft.h — Hugging Face PEFT LoRA adapters for GPT-2, read and written.
//
// A PEFT adapter directory holds adapter_config.json (peft_type "LORA", r, lora_alpha,
// target_modules, rank_pattern, alpha_pattern, use_rslora, fan_in_fan_out, task_type,
// modules_to_save, ...) and adapter_model.safetensors with the factors of each adapted
// module of the transformers model:
//
//   base_model.model.transformer.h.{i}.attn.c_attn.lora_A.weight   [r, d_in]
//   base_model.model.transformer.h.{i}.attn.c_attn.lora_B.weight   [d_out, r]
//   (likewise attn.c_proj, mlp.c_fc, mlp.c_proj), base_model.model.score.weight (a head in
//   modules_to_save)
//
// PEFT adds scaling * B (A x) to the module's output, scaling = alpha / r (alpha / sqrt(r)
// with use_rslora), r and alpha of each module taken from the first rank_pattern /
// alpha_pattern key that matches its name as the regular expression (.*\.)?(KEY)$, else
// r / lora_alpha. GPT-2's c_attn fuses q, k and v, so one c_attn factor pair updates all
// three: loralab holds it as q, k and v LoRA sharing A, B split by rows. loralab's model has
// one rank and one scale for every target: modules of a smaller rank are zero-padded to the
// largest, and when scales differ each B is multiplied by its module's scale (the model's
// scale is then 1), so every ΔW is the file's.
//
// fan_in_fan_out only says how PEFT merges into Conv1D's [in, out] weight; lora_A / lora_B
// have the same shapes either way, so both values are read.
#ifndef LORALAB_PEFT_H
#define LORALAB_PEFT_H

#include "core/model.h"

// 1 when <dir>/adapter_config.json is a PEFT config (it has no loralab "method" field), 0
// when it is loralab's own, -1 with err_set() when it cannot be read.
int peft_is_adapter(const char *dir);

// The MethodConfig of a model that holds the PEFT adapter in dir (method lora, the targets
// its modules cover, the largest rank; head from task_type and score.weight). 0 or -1 with
// err_set() naming the file and the field or tensor.
int peft_read_config(const char *dir, MethodConfig *mc);

// Loads the PEFT adapter in dir into m, created with peft_read_config's MethodConfig on a base
// of the adapter's shapes (checked per tensor). 0 or -1 with err_set().
int peft_load(Model *m, const char *dir);

// Writes the loralab adapter in src (adapter_config.json + adapter_model.safetensors) to out
// as a PEFT LoRA adapter that PeftModel.from_pretrained loads on GPT-2 of the same shape:
// q, k, v factors become one fused c_attn factor pair of the summed rank (A stacked, B
// block-diagonal by rows, lora_alpha scaled by the same factor through rank_pattern /
// alpha_pattern), o becomes attn.c_proj; a classification head goes to modules_to_save.
// Methods that a PEFT LoRA adapter cannot hold are refused whole (nothing is written).
// On success *summary describes what was written (static storage).
int peft_export(const char *src, const char *out, const char **summary);

#endif
