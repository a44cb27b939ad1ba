#!/usr/bin/python3
"""scripts/make_peft_fixtures.py — PEFT interoperability fixtures for tests/cli/test_peft.sh.

Run by hand after `make` with Debian's python3-torch (no pip packages; PEFT and transformers
are not needed):

    /usr/bin/python3 scripts/make_peft_fixtures.py [--out tests/fixtures/peft] [--loralab bin/loralab]

The model here is GPT-2 as transformers writes it, module for module: transformer.wte / wpe,
transformer.h.{i}.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_f, a tied
lm_head, Conv1D layers that compute x @ W + b with W stored [in, out]. A LoRA adapter is
applied to it the way PEFT's LoraModel does for a Conv1D target (tuners/lora/layer.py Linear
with fan_in_fan_out): every module whose name equals a target_modules entry or ends with
"." + entry is wrapped; its r and alpha come from the first rank_pattern / alpha_pattern key
that matches the module name as re.match(rf"(.*\\.)?({key})$", name), else r / lora_alpha;
lora_A = nn.Linear(in, r, bias=False), lora_B = nn.Linear(r, out, bias=False), scaling =
alpha / r (alpha / sqrt(r) with use_rslora), output = base(x) + lora_B(lora_A(x)) * scaling
(dropout is off in evaluation). The adapter file's keys are the model's own parameter names
with "base_model.model." in front and the adapter name ("default") left out; loading here is
strict (every factor present, no tensor left over). Computed in float64 from float32 values.

Written under --out (the nano shape: 2 layers, 2 heads, d_model 64, n_ctx 64, vocab 260):

  base/            a transformers-style checkpoint (config.json + model.safetensors)
  text.txt         the text the losses are measured on (bytes = token ids)
  peft_lm/         an independent PEFT adapter: target_modules c_attn, c_proj, c_fc (c_proj
                   matches attn.c_proj and mlp.c_proj), r 4, lora_alpha 6, rank_pattern
                   {"h.1.attn.c_attn": 2, "c_fc": 3}, alpha_pattern {"mlp.c_proj": 10},
                   random A and B, task_type CAUSAL_LM
  peft_rslora/     the same tensors with use_rslora true (scaling alpha / sqrt(r))
  own/             a loralab adapter (the fields needed only: method, r, lora_alpha,
                   target_modules) on q, v, o and c_fc, r 4, alpha 12, loralab's tensor names
  own_exported/    what `loralab export --format peft` writes for own/ (the CLI test checks that
                   it still writes exactly this)
  expected.json    ‖ΔW‖_F of two matrices of peft_lm (peft_lm_norm_dw_*), and the loss of each, measured as `loralab eval-lm` measures it: the text in
                   consecutive blocks of n_ctx tokens, the first token of each block context only,
                   the mean next-token cross-entropy over the predicted tokens.
                   own_exported_peft is own_exported applied the PEFT way; own is own/ applied
                   the loralab way (q, k, v as row blocks of c_attn); the script checks that
                   they agree.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as ref  # noqa: E402  (nano shape, base weights, safetensors writer)

L, NH, C, NCTX, V = ref.L, ref.NH, ref.C, ref.NCTX, ref.V
DTYPE = torch.float64
PREFIX = "base_model.model."
TEXT = (b"Call me Ishmael. Some years ago - never mind how long precisely - having little or no "
        b"money in my purse, and nothing particular to interest me on shore, I thought I would "
        b"sail about a little and see the watery part of the world. It is a way I have.\n")


# ----------------------------------------------------------------------------
# GPT-2 in transformers' layout

class Conv1D(nn.Module):
    """transformers.pytorch_utils.Conv1D: weight [in, out], y = x @ W + b."""

    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(nx, nf, dtype=DTYPE))
        self.bias = nn.Parameter(torch.zeros(nf, dtype=DTYPE))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], -1)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = Conv1D(3 * C, C)
        self.c_proj = Conv1D(C, C)

    def forward(self, x):
        Bn, Tn, _ = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        hs = C // NH
        q, k, v = (t.view(Bn, Tn, NH, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        causal = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
        att = torch.softmax(att.masked_fill(~causal, float("-inf")), dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).contiguous().view(Bn, Tn, C))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = Conv1D(4 * C, C)
        self.c_proj = Conv1D(C, 4 * C)

    def forward(self, x):
        return self.c_proj(ref.gelu_tanh(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=ref.EPS_LN, dtype=DTYPE)
        self.attn = Attention()
        self.ln_2 = nn.LayerNorm(C, eps=ref.EPS_LN, dtype=DTYPE)
        self.mlp = MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, C, dtype=DTYPE)
        self.wpe = nn.Embedding(NCTX, C, dtype=DTYPE)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=ref.EPS_LN, dtype=DTYPE)


class GPT2LMHeadModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = Transformer()

    def forward(self, tokens):
        t = self.transformer
        x = t.wte(tokens) + t.wpe(torch.arange(tokens.shape[1]))[None]
        for block in t.h:
            x = block(x)
        return t.ln_f(x) @ t.wte.weight.t()   # lm_head tied to wte


def hf_model(hf_sd):
    """GPT2LMHeadModel with the checkpoint's tensors (mask buffers and lm_head skipped)."""
    model = GPT2LMHeadModel()
    own = model.state_dict()
    with torch.no_grad():
        for k, v in hf_sd.items():
            if k in own: own[k].copy_(v)
            else: assert k.endswith((".attn.bias", ".attn.masked_bias")) or k == "lm_head.weight", k
    model.load_state_dict(own)
    return model


# ----------------------------------------------------------------------------
# PEFT's LoRA, applied as LoraModel applies it

class LoraConv1D(nn.Module):
    """tuners/lora/layer.py Linear around a Conv1D base layer (fan_in_fan_out)."""

    def __init__(self, base_layer, r, alpha, use_rslora):
        super().__init__()
        in_features, out_features = base_layer.weight.shape   # Conv1D: [in, out]
        self.base_layer = base_layer
        self.lora_A = nn.ModuleDict({"default": nn.Linear(in_features, r, bias=False, dtype=DTYPE)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(r, out_features, bias=False, dtype=DTYPE)})
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r

    def forward(self, x):
        result = self.base_layer(x)
        return result + self.lora_B["default"](self.lora_A["default"](x)) * self.scaling


def get_pattern_key(pattern_keys, key_to_match):
    for key in pattern_keys:
        if re.match(rf"(.*\.)?({key})$", key_to_match):
            return key
    return key_to_match


def target_matches(targets, key):
    if isinstance(targets, str):
        return re.fullmatch(targets, key) is not None
    return any(key == t or key.endswith("." + t) for t in targets)


def apply_peft(model, adapter_dir):
    """Wraps the target modules as PEFT does and loads adapter_model.safetensors strictly."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    assert cfg["peft_type"] == "LORA" and not cfg.get("use_dora") and cfg.get("bias", "none") == "none"
    rank_pattern, alpha_pattern = cfg.get("rank_pattern") or {}, cfg.get("alpha_pattern") or {}
    for name, module in list(model.named_modules()):
        if not isinstance(module, Conv1D) or not target_matches(cfg["target_modules"], name):
            continue
        r = rank_pattern.get(get_pattern_key(rank_pattern.keys(), name), cfg["r"])
        alpha = alpha_pattern.get(get_pattern_key(alpha_pattern.keys(), name), cfg["lora_alpha"])
        parent_name, child = name.rsplit(".", 1)
        setattr(model.get_submodule(parent_name), child, LoraConv1D(module, r, alpha, cfg.get("use_rslora", False)))
    tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    sd = model.state_dict()
    wanted = {k for k in sd if ".lora_" in k}
    for key, value in tensors.items():
        assert key.startswith(PREFIX), key
        name = key[len(PREFIX):]
        name = re.sub(r"\.(lora_[AB])\.weight$", r".\1.default.weight", name)
        assert name in sd and sd[name].shape == value.shape, (key, value.shape)
        with torch.no_grad(): sd[name].copy_(value)
        wanted.discard(name)
    assert not wanted, "factors missing from the file: %s" % sorted(wanted)
    model.load_state_dict(sd)
    return model


# ----------------------------------------------------------------------------
# loralab's own LoRA: q, k, v, o, c_fc, c_proj each with its own A [r, in], B [out, r]

class OwnLoraConv1D(nn.Module):
    """delta = (alpha / r) B (A x) per loralab target; c_attn's q, k, v are its row blocks."""

    def __init__(self, base_layer, factors, scale):
        super().__init__()
        self.base_layer, self.factors, self.scale = base_layer, factors, scale

    def forward(self, x):
        out = self.base_layer(x)
        parts = []
        for A, B in self.factors:   # one per row block of the output (q, k, v or the whole)
            parts.append(None if A is None else self.scale * (x @ A.t()) @ B.t())
        width = out.shape[-1] // len(parts)
        delta = torch.cat([torch.zeros(*out.shape[:-1], width, dtype=DTYPE) if p is None else p for p in parts], -1)
        return out + delta


def apply_own(model, adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        cfg = json.load(f)
    tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    scale = cfg["lora_alpha"] / cfg["r"]
    used = set()

    def factor(i, path, t):
        a, b = "h.%d.%s.%s.lora_A" % (i, path, t), "h.%d.%s.%s.lora_B" % (i, path, t)
        if a not in tensors: return (None, None)
        used.update((a, b))
        return (tensors[a], tensors[b])

    for i, block in enumerate(model.transformer.h):
        block.attn.c_attn = OwnLoraConv1D(block.attn.c_attn, [factor(i, "attn", t) for t in "qkv"], scale)
        block.attn.c_proj = OwnLoraConv1D(block.attn.c_proj, [factor(i, "attn", "o")], scale)
        block.mlp.c_fc = OwnLoraConv1D(block.mlp.c_fc, [factor(i, "mlp", "c_fc")], scale)
        block.mlp.c_proj = OwnLoraConv1D(block.mlp.c_proj, [factor(i, "mlp", "c_proj")], scale)
    assert used == set(tensors), set(tensors) - used
    return model


# ----------------------------------------------------------------------------
# files and the loss

def read_safetensors(path):
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__": continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).to(DTYPE)
        out[name] = t.reshape(info["shape"])
    return out


def eval_lm_loss(model, ids):
    """`loralab eval-lm`: consecutive blocks of n_ctx tokens, mean next-token loss."""
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids), NCTX):
            block = torch.tensor(ids[start:start + NCTX])[None]
            if block.shape[1] < 2: continue
            logits = model(block)[0, :-1]
            total += F.cross_entropy(logits, block[0, 1:], reduction="sum").item()
            count += block.shape[1] - 1
    return total / count


def f32(t):
    return t.to(torch.float32).to(DTYPE)


def write_adapter(d, config, tensors):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
    ref.write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors, {"format": "pt"})


def peft_config(**over):
    """LoraConfig.to_dict() as PeftModel.save_pretrained writes it (the fields that matter)."""
    cfg = {"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "gpt2-nano",
           "bias": "none", "fan_in_fan_out": True, "inference_mode": True, "init_lora_weights": True,
           "layers_pattern": None, "layers_to_transform": None, "lora_alpha": 6, "lora_dropout": 0.05,
           "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
           "peft_type": "LORA", "r": 4, "rank_pattern": {}, "revision": None,
           "target_modules": ["c_attn", "c_proj", "c_fc"], "task_type": "CAUSAL_LM",
           "use_dora": False, "use_rslora": False}
    cfg.update(over)
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "peft"))
    ap.add_argument("--loralab", default=os.path.join(root, "bin", "loralab"))
    ap.add_argument("--seed", type=int, default=4321)
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    expected = {}

    # the base: make_reference's random nano weights in the hub layout
    base = {k: f32(v) for k, v in ref.base_tensors(gen).items()}
    hf_sd = ref.hf_tensors(base)
    bdir = os.path.join(args.out, "base")
    os.makedirs(bdir, exist_ok=True)
    with open(os.path.join(bdir, "config.json"), "w") as f:
        f.write(json.dumps(ref.hf_config(), indent=2, sort_keys=True) + "\n")
    ref.write_safetensors(os.path.join(bdir, "model.safetensors"), hf_sd, {"format": "pt"})
    with open(os.path.join(args.out, "text.txt"), "wb") as f:
        f.write(TEXT)
    ids = list(TEXT)
    expected["base"] = eval_lm_loss(hf_model(hf_sd), ids)

    # an independent PEFT adapter: ranks from r / rank_pattern, random A and B
    cfg = peft_config(rank_pattern={"h.1.attn.c_attn": 2, "c_fc": 3}, alpha_pattern={"mlp.c_proj": 10})
    probe = apply_peft_shapes(cfg)
    tensors = {}
    for name, (r, d_in, d_out) in probe.items():
        tensors[PREFIX + name + ".lora_A.weight"] = f32(ref.randn(gen, r, d_in, std=0.15))
        tensors[PREFIX + name + ".lora_B.weight"] = f32(ref.randn(gen, d_out, r, std=0.15))
    tensors = {k: tensors[k] for k in sorted(tensors)}
    write_adapter(os.path.join(args.out, "peft_lm"), cfg, tensors)
    expected["peft_lm"] = eval_lm_loss(apply_peft(hf_model(hf_sd), os.path.join(args.out, "peft_lm")), ids)
    # ‖ΔW‖_F of two matrices, as `loralab analyze amplification` reports them: layer 0's c_fc
    # (rank 3 from rank_pattern) and layer 1's q (rows [0, C) of the rank-2 fused c_attn)
    for key, module, rows in (("peft_lm_norm_dw_h0_c_fc", "transformer.h.0.mlp.c_fc", slice(None)),
                              ("peft_lm_norm_dw_h1_q", "transformer.h.1.attn.c_attn", slice(0, C))):
        r, _, _ = probe[module]
        alpha = cfg["alpha_pattern"].get(get_pattern_key(cfg["alpha_pattern"].keys(), module), cfg["lora_alpha"])
        A, Bm = tensors[PREFIX + module + ".lora_A.weight"], tensors[PREFIX + module + ".lora_B.weight"]
        expected[key] = (alpha / r * Bm[rows] @ A).norm().item()
    write_adapter(os.path.join(args.out, "peft_rslora"), dict(cfg, use_rslora=True), tensors)
    expected["peft_rslora"] = eval_lm_loss(apply_peft(hf_model(hf_sd), os.path.join(args.out, "peft_rslora")), ids)

    # loralab's own adapter, its export, and the export applied the PEFT way
    own = {}
    for i in range(L):
        for path, t, d_in, d_out in (("attn", "q", C, C), ("attn", "v", C, C), ("attn", "o", C, C),
                                     ("mlp", "c_fc", C, 4 * C)):
            own["h.%d.%s.%s.lora_A" % (i, path, t)] = f32(ref.randn(gen, 4, d_in, std=0.15))
            own["h.%d.%s.%s.lora_B" % (i, path, t)] = f32(ref.randn(gen, d_out, 4, std=0.15))
    own_dir = os.path.join(args.out, "own")
    write_adapter(own_dir, {"method": "lora", "r": 4, "lora_alpha": 12, "target_modules": ["q", "v", "o", "c_fc"]}, own)
    expected["own"] = eval_lm_loss(apply_own(hf_model(hf_sd), own_dir), ids)
    exp_dir = os.path.join(args.out, "own_exported")
    shutil.rmtree(exp_dir, ignore_errors=True)
    subprocess.run([args.loralab, "export", "--format", "peft", "--out", exp_dir, own_dir], check=True)
    expected["own_exported_peft"] = eval_lm_loss(apply_peft(hf_model(hf_sd), exp_dir), ids)
    assert abs(expected["own_exported_peft"] - expected["own"]) < 1e-9, expected

    with open(os.path.join(args.out, "expected.json"), "w") as f:
        f.write(json.dumps({k: round(v, 9) for k, v in expected.items()}, indent=2, sort_keys=True) + "\n")
    for k, v in expected.items(): print("%-18s loss %.6f" % (k, v))


def apply_peft_shapes(cfg):
    """{module name: (r, d_in, d_out)} of the modules PEFT would wrap for cfg."""
    model = GPT2LMHeadModel()
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, Conv1D) and target_matches(cfg["target_modules"], name):
            rp = cfg["rank_pattern"]
            out[name] = (rp.get(get_pattern_key(rp.keys(), name), cfg["r"]),) + tuple(module.weight.shape)
    return out


if __name__ == "__main__":
    main()
