#!/usr/bin/python3
"""scripts/make_reference.py — PyTorch reference fixtures for tests/test_parity.c.

Run once by hand with Debian's python3-torch (no pip packages):

    /usr/bin/python3 scripts/make_reference.py [--out tests/fixtures/reference]

It builds loralab's nano GPT-2 (L=2, NH=2, C=64, n_ctx=64, V=260) as an ordinary torch
nn.Module written here (per-layer nn.Linear modules, no `transformers`): pre-LayerNorm, learned
positions, GELU tanh approximation, tied LM head, biases everywhere, LayerNorm eps 1e-5, fused
c_attn, causal attention with a key padding mask, no dropout. Everything is computed in
float64 (so the reference carries no float32 rounding of its own) and stored as float32.

Four safetensors files are written (tensor names = loralab's registry names, core/model.c
build_registry; stacked over layers, linear weights [out, in]):

  base.safetensors       every base parameter, the batch (tokens, targets, lengths as F32
                         holding integers), logits (B, T, V), loss (mean over targets >= 0),
                         loss_smoothed (label smoothing 0.1), grad.<name> for every parameter
                         (full fine-tuning), adam_losses (5): adam_losses[k] is the loss after
                         k+1 AdamW steps (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01
                         on the tensors loralab decays, constant lr, no clipping), and
                         adam.<name> for a few tensors after the 5 steps.
  lora.safetensors       LoRA on q, v, o (r 4, alpha 8, nonzero A and B): lora.*.A/B, logits,
                         loss, grad.lora.* (only LoRA trainable). The merged model
                         (W0 + alpha/r B A) gives the same logits (checked here).
  adapter_h.safetensors  Houlsby adapters (r 4) after the attention and MLP output projections,
                         before the residual add: adapter.*, logits, loss, and the gradients of
                         the adapter tensors and of h.ln_1.* / h.ln_2.* (trainable in adapter_h).
  cls.safetensors        classification head (3 classes, score.weight) on the last real token of
                         each row: score.weight, labels, logits (B, 3), loss, grad.<name> for
                         every base tensor and score.weight (full fine-tuning).

The lora, adapter_h and cls fixtures reuse the base fixture's parameters and batch.

A Hugging Face hub-style checkpoint directory (for checkpoint_load) is written too:

  hf_gpt2/config.json        GPT2LMHeadModel's config as transformers' save_pretrained writes
                             it (json.dumps(indent=2, sort_keys=True)) for the nano shape.
  hf_gpt2/model.safetensors  the base fixture's weights (rounded to float32) under GPT-2's
                             names with the "transformer." prefix, Conv1D weights [in, out]
                             (the transpose of loralab's [out, in]), the h.{i}.attn.bias causal
                             mask buffers ([1, 1, n_ctx, n_ctx], F32 0/1) and attn.masked_bias
                             scalars that older transformers saved, and lm_head.weight (a tied
                             copy of wte); tensors in name order (the safetensors library's),
                             not loralab's registry order; metadata {"format": "pt"}.
  hf_gpt2_logits.safetensors tokens, lengths (F32 holding integers) and the logits of those
                             float32-rounded weights, computed in float64.
"""
import argparse
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

VERSION = "1"
L, NH, C, NCTX, V = 2, 2, 64, 64, 260
EPS_LN = 1e-5
B, T = 3, 16
LENGTHS = [16, 10, 5]
LORA_R, LORA_ALPHA, LORA_TARGETS = 4, 8.0, ("q", "v", "o")
ADAPTER_R = 4
N_CLASSES = 3
LABELS = [2, 0, 1]
SMOOTHING = 0.1
ADAM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
ADAM_STEPS = 5
ADAM_SAVED = ["wpe", "h.ln_1.weight", "h.mlp.c_fc.bias"]   # adam.<name> after the steps
DTYPE = torch.float64


# ----------------------------------------------------------------------------
# the model


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class LoRA(nn.Module):
    """delta(x) = (alpha / r) * B (A x), A (r, d_in), B (d_out, r)."""

    def __init__(self, d_in, d_out, r, alpha):
        super().__init__()
        self.A = nn.Parameter(torch.zeros(r, d_in, dtype=DTYPE))
        self.B = nn.Parameter(torch.zeros(d_out, r, dtype=DTYPE))
        self.scale = alpha / r

    def forward(self, x):
        return self.scale * (x @ self.A.t()) @ self.B.t()


class Adapter(nn.Module):
    """Houlsby adapter: y = a + up(gelu(down(a)))."""

    def __init__(self, c, r):
        super().__init__()
        self.down = nn.Linear(c, r, dtype=DTYPE)
        self.up = nn.Linear(r, c, dtype=DTYPE)

    def forward(self, a):
        return a + self.up(gelu_tanh(self.down(a)))


class Block(nn.Module):
    def __init__(self, lora_targets=(), adapters=False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=EPS_LN, dtype=DTYPE)
        self.c_attn = nn.Linear(C, 3 * C, dtype=DTYPE)
        self.attn_c_proj = nn.Linear(C, C, dtype=DTYPE)
        self.ln_2 = nn.LayerNorm(C, eps=EPS_LN, dtype=DTYPE)
        self.c_fc = nn.Linear(C, 4 * C, dtype=DTYPE)
        self.mlp_c_proj = nn.Linear(4 * C, C, dtype=DTYPE)
        self.lora = nn.ModuleDict({t: LoRA(C, C, LORA_R, LORA_ALPHA) for t in lora_targets})
        self.adapters = nn.ModuleDict({s: Adapter(C, ADAPTER_R) for s in ("attn", "mlp")}) if adapters else None

    def attention(self, x, allowed):
        h = self.ln_1(x)
        qkv = self.c_attn(h)
        q, k, v = qkv.split(C, dim=-1)
        if "q" in self.lora: q = q + self.lora["q"](h)
        if "k" in self.lora: k = k + self.lora["k"](h)
        if "v" in self.lora: v = v + self.lora["v"](h)
        Bn, Tn, _ = x.shape
        hs = C // NH
        q = q.view(Bn, Tn, NH, hs).transpose(1, 2)
        k = k.view(Bn, Tn, NH, hs).transpose(1, 2)
        v = v.view(Bn, Tn, NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~allowed[:, None, :, :], float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(Bn, Tn, C)
        o = self.attn_c_proj(y)
        if "o" in self.lora: o = o + self.lora["o"](y)
        return o

    def forward(self, x, allowed):
        a = self.attention(x, allowed)
        if self.adapters is not None: a = self.adapters["attn"](a)
        x = x + a
        m = self.mlp_c_proj(gelu_tanh(self.c_fc(self.ln_2(x))))
        if self.adapters is not None: m = self.adapters["mlp"](m)
        return x + m


class GPT2(nn.Module):
    def __init__(self, lora_targets=(), adapters=False, n_classes=0):
        super().__init__()
        self.wte = nn.Parameter(torch.zeros(V, C, dtype=DTYPE))
        self.wpe = nn.Parameter(torch.zeros(NCTX, C, dtype=DTYPE))
        self.h = nn.ModuleList([Block(lora_targets, adapters) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C, eps=EPS_LN, dtype=DTYPE)
        self.score = nn.Linear(C, n_classes, bias=False, dtype=DTYPE) if n_classes else None

    def forward(self, tokens, lengths):
        Bn, Tn = tokens.shape
        pos = torch.arange(Tn)
        real = pos[None, :] < lengths[:, None]                      # (B, T) key mask
        causal = pos[None, :] <= pos[:, None]                       # (T, T) key j <= query i
        allowed = causal[None, :, :] & real[:, None, :]             # (B, T, T)
        x = self.wte[tokens] + self.wpe[pos][None]
        for block in self.h:
            x = block(x, allowed)
        x = self.ln_f(x)
        if self.score is None:
            return x @ self.wte.t()                                 # tied LM head
        pooled = x[torch.arange(Bn), lengths - 1]                   # last real token
        return self.score(pooled)


# ----------------------------------------------------------------------------
# registry names <-> module tensors (stacked over layers)

BASE_LAYER = [  # registry name, Block attribute path
    ("h.ln_1.weight", "ln_1.weight"), ("h.ln_1.bias", "ln_1.bias"),
    ("h.attn.c_attn.weight", "c_attn.weight"), ("h.attn.c_attn.bias", "c_attn.bias"),
    ("h.attn.c_proj.weight", "attn_c_proj.weight"), ("h.attn.c_proj.bias", "attn_c_proj.bias"),
    ("h.ln_2.weight", "ln_2.weight"), ("h.ln_2.bias", "ln_2.bias"),
    ("h.mlp.c_fc.weight", "c_fc.weight"), ("h.mlp.c_fc.bias", "c_fc.bias"),
    ("h.mlp.c_proj.weight", "mlp_c_proj.weight"), ("h.mlp.c_proj.bias", "mlp_c_proj.bias"),
]
# Tensors loralab applies weight decay to (core/model.c build_registry, the `decay` flag).
DECAYED = {"wte", "wpe", "h.attn.c_attn.weight", "h.attn.c_proj.weight", "h.mlp.c_fc.weight",
           "h.mlp.c_proj.weight"}


def get_attr(mod, path):
    for p in path.split("."):
        mod = mod[p] if isinstance(mod, nn.ModuleDict) else getattr(mod, p)
    return mod


def registry(model):
    """{registry name: [tensor per layer] or tensor} for every tensor the model has."""
    reg = {"wte": model.wte, "wpe": model.wpe}
    for name, path in BASE_LAYER:
        reg[name] = [get_attr(blk, path) for blk in model.h]
    reg["ln_f.weight"], reg["ln_f.bias"] = model.ln_f.weight, model.ln_f.bias
    for t in model.h[0].lora:
        reg["lora.%s.A" % t] = [blk.lora[t].A for blk in model.h]
        reg["lora.%s.B" % t] = [blk.lora[t].B for blk in model.h]
    if model.h[0].adapters is not None:
        for s in ("attn", "mlp"):
            for part in ("down.weight", "down.bias", "up.weight", "up.bias"):
                reg["adapter.%s.%s" % (s, part)] = [get_attr(blk.adapters[s], part) for blk in model.h]
    if model.score is not None:
        reg["score.weight"] = model.score.weight
    return reg


def stacked(entry, what=lambda p: p):
    """A new tensor (never a view of a live .grad or parameter, which later steps change)."""
    return torch.stack([what(p) for p in entry]) if isinstance(entry, list) else what(entry).detach().clone()


def load(model, tensors):
    """Copies tensors (registry name -> stacked tensor) into the model's parameters."""
    with torch.no_grad():
        for name, entry in registry(model).items():
            src = tensors[name]
            if isinstance(entry, list):
                for i, p in enumerate(entry): p.copy_(src[i])
            else:
                entry.copy_(src)


def params_of(model, names):
    out = []
    for name in names:
        entry = registry(model)[name]
        out += entry if isinstance(entry, list) else [entry]
    return out


def grads(model, names):
    return {"grad." + n: stacked(registry(model)[n], lambda p: p.grad) for n in names}


# ----------------------------------------------------------------------------
# losses

def lm_loss(logits, targets, smoothing=0.0):
    """Mean over targets >= 0 of -(1-eps) log p[t] - eps/V sum_v log p[v]."""
    logp = torch.log_softmax(logits.reshape(-1, logits.shape[-1]), dim=-1)
    tg = targets.reshape(-1)
    keep = tg >= 0
    nll = -logp[keep].gather(1, tg[keep][:, None]).squeeze(1)
    smooth = -logp[keep].mean(dim=1)
    return ((1.0 - smoothing) * nll + smoothing * smooth).mean()


# ----------------------------------------------------------------------------
# safetensors writer

def write_safetensors(path, tensors, metadata):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        a = t.detach().to(torch.float32).contiguous()
        data = a.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for d in blobs: f.write(d)
    print("wrote %s (%d tensors, %d bytes)" % (path, len(tensors), 8 + len(h) + off))


# ----------------------------------------------------------------------------
# fixtures

def randn(gen, *shape, std=1.0, mean=0.0):
    return mean + std * torch.randn(*shape, generator=gen, dtype=DTYPE)


def base_tensors(gen):
    """Random base weights, larger than GPT-2's init so attention is far from uniform and
    biases / LayerNorm parameters are nonzero (every gradient path carries signal)."""
    return {
        "wte": randn(gen, V, C, std=0.1), "wpe": randn(gen, NCTX, C, std=0.05),
        "h.ln_1.weight": randn(gen, L, C, std=0.1, mean=1.0), "h.ln_1.bias": randn(gen, L, C, std=0.05),
        "h.attn.c_attn.weight": randn(gen, L, 3 * C, C, std=0.15), "h.attn.c_attn.bias": randn(gen, L, 3 * C, std=0.05),
        "h.attn.c_proj.weight": randn(gen, L, C, C, std=0.08), "h.attn.c_proj.bias": randn(gen, L, C, std=0.05),
        "h.ln_2.weight": randn(gen, L, C, std=0.1, mean=1.0), "h.ln_2.bias": randn(gen, L, C, std=0.05),
        "h.mlp.c_fc.weight": randn(gen, L, 4 * C, C, std=0.1), "h.mlp.c_fc.bias": randn(gen, L, 4 * C, std=0.05),
        "h.mlp.c_proj.weight": randn(gen, L, C, 4 * C, std=0.05), "h.mlp.c_proj.bias": randn(gen, L, C, std=0.05),
        "ln_f.weight": randn(gen, C, std=0.1, mean=1.0), "ln_f.bias": randn(gen, C, std=0.05),
    }


def batch(gen):
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    lengths = torch.tensor(LENGTHS)
    ignore = torch.rand(B, T, generator=gen, dtype=DTYPE) < 0.2
    pad = torch.arange(T)[None, :] >= lengths[:, None]
    targets[ignore | pad] = -1
    return tokens, targets, lengths


def batch_tensors(tokens, targets, lengths):
    return {"tokens": tokens.to(DTYPE), "targets": targets.to(DTYPE), "lengths": lengths.to(DTYPE)}


def metadata(kind, extra):
    md = {"fixture": kind, "version": VERSION, "torch": torch.__version__,
          "config": "n_layer=%d n_head=%d n_embd=%d n_ctx=%d vocab=%d ln_eps=%g" % (L, NH, C, NCTX, V, EPS_LN),
          "batch": "B=%d T=%d lengths=%s" % (B, T, LENGTHS)}
    md.update(extra)
    return md


def make_base(out, base, tokens, targets, lengths):
    model = GPT2()
    load(model, base)
    logits = model(tokens, lengths)
    loss = lm_loss(logits, targets)
    smoothed = lm_loss(logits, targets, SMOOTHING)
    # cross-check the hand-written loss against torch's own
    ref = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1)
    ref_s = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1, label_smoothing=SMOOTHING)
    assert abs(ref.item() - loss.item()) < 1e-12 and abs(ref_s.item() - smoothed.item()) < 1e-12
    loss.backward()
    names = list(base)
    out_t = dict(base)
    out_t.update(batch_tensors(tokens, targets, lengths))
    out_t["logits"] = logits
    out_t["loss"] = loss.reshape(1)
    out_t["loss_smoothed"] = smoothed.reshape(1)
    out_t.update(grads(model, names))

    # 5 AdamW steps, weight decay only where loralab decays
    decay = params_of(model, [n for n in names if n in DECAYED])
    no_decay = params_of(model, [n for n in names if n not in DECAYED])
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAM["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=ADAM["lr"], betas=ADAM["betas"], eps=ADAM["eps"])
    losses = []
    for _ in range(ADAM_STEPS):
        opt.zero_grad()
        lm_loss(model(tokens, lengths), targets).backward()
        opt.step()
        with torch.no_grad():
            losses.append(lm_loss(model(tokens, lengths), targets).item())
    out_t["adam_losses"] = torch.tensor(losses, dtype=DTYPE)
    for n in ADAM_SAVED:
        out_t["adam." + n] = stacked(registry(model)[n], lambda p: p.detach())
    print("base: loss %.6f smoothed %.6f adam %s" % (loss.item(), smoothed.item(), ["%.6f" % x for x in losses]))
    write_safetensors(os.path.join(out, "base.safetensors"), out_t, metadata("base", {
        "adam": "lr=1e-3 betas=0.9,0.999 eps=1e-8 weight_decay=0.01 on %s; constant lr; no clipping; "
                "adam_losses[k] = loss after k+1 steps" % ",".join(sorted(DECAYED)),
        "label_smoothing": str(SMOOTHING)}))


def make_lora(out, base, tokens, targets, lengths, gen):
    model = GPT2(lora_targets=LORA_TARGETS)
    lora = {}
    for t in LORA_TARGETS:
        lora["lora.%s.A" % t] = randn(gen, L, LORA_R, C, std=0.1)
        lora["lora.%s.B" % t] = randn(gen, L, C, LORA_R, std=0.1)
    load(model, {**base, **lora})
    for p in model.parameters(): p.requires_grad_(False)
    for p in params_of(model, list(lora)): p.requires_grad_(True)
    logits = model(tokens, lengths)
    loss = lm_loss(logits, targets)
    loss.backward()
    # the merged model (W0 + alpha/r B A, LoRA removed) gives the same logits
    merged = {k: v.clone() for k, v in base.items()}
    s = LORA_ALPHA / LORA_R
    for t in LORA_TARGETS:
        delta = s * lora["lora.%s.B" % t] @ lora["lora.%s.A" % t]            # (L, C, C)
        if t == "o": merged["h.attn.c_proj.weight"] += delta
        else:
            i = "qkv".index(t)
            merged["h.attn.c_attn.weight"][:, i * C:(i + 1) * C, :] += delta
    plain = GPT2()
    load(plain, merged)
    with torch.no_grad():
        diff = (plain(tokens, lengths) - logits).abs().max().item()
    assert diff < 1e-10, diff
    out_t = dict(lora)
    out_t["logits"] = logits
    out_t["loss"] = loss.reshape(1)
    out_t.update(grads(model, list(lora)))
    print("lora: loss %.6f (merged logits differ by %.1e)" % (loss.item(), diff))
    write_safetensors(os.path.join(out, "lora.safetensors"), out_t, metadata("lora", {
        "lora": "targets=%s r=%d alpha=%g scale=alpha/r" % (",".join(LORA_TARGETS), LORA_R, LORA_ALPHA),
        "uses": "base.safetensors parameters and batch"}))


def make_adapter(out, base, tokens, targets, lengths, gen):
    model = GPT2(adapters=True)
    ad = {}
    for s in ("attn", "mlp"):
        ad["adapter.%s.down.weight" % s] = randn(gen, L, ADAPTER_R, C, std=0.1)
        ad["adapter.%s.down.bias" % s] = randn(gen, L, ADAPTER_R, std=0.05)
        ad["adapter.%s.up.weight" % s] = randn(gen, L, C, ADAPTER_R, std=0.1)
        ad["adapter.%s.up.bias" % s] = randn(gen, L, C, std=0.05)
    load(model, {**base, **ad})
    trainable = list(ad) + ["h.ln_1.weight", "h.ln_1.bias", "h.ln_2.weight", "h.ln_2.bias"]
    for p in model.parameters(): p.requires_grad_(False)
    for p in params_of(model, trainable): p.requires_grad_(True)
    logits = model(tokens, lengths)
    loss = lm_loss(logits, targets)
    loss.backward()
    out_t = dict(ad)
    out_t["logits"] = logits
    out_t["loss"] = loss.reshape(1)
    out_t.update(grads(model, trainable))
    print("adapter_h: loss %.6f" % loss.item())
    write_safetensors(os.path.join(out, "adapter_h.safetensors"), out_t, metadata("adapter_h", {
        "adapter": "houlsby r=%d: y = a + up(gelu_tanh(down(a))) after attn c_proj and mlp c_proj, "
                   "before the residual add" % ADAPTER_R,
        "uses": "base.safetensors parameters and batch"}))


def make_cls(out, base, tokens, lengths, gen):
    model = GPT2(n_classes=N_CLASSES)
    score = randn(gen, N_CLASSES, C, std=0.1)
    load(model, {**base, "score.weight": score})
    labels = torch.tensor(LABELS)
    logits = model(tokens, lengths)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out_t = {"score.weight": score, "labels": labels.to(DTYPE), "logits": logits, "loss": loss.reshape(1)}
    out_t.update(grads(model, list(base) + ["score.weight"]))
    print("cls: loss %.6f" % loss.item())
    write_safetensors(os.path.join(out, "cls.safetensors"), out_t, metadata("cls", {
        "head": "classification, %d classes, score.weight on the last real token of each row" % N_CLASSES,
        "uses": "base.safetensors parameters, tokens and lengths"}))


HF_B, HF_T, HF_LENGTHS = 2, 8, [8, 5]
HF_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hf_config():
    """GPT2Config.to_dict() for GPT2LMHeadModel (transformers 4.x), nano-shaped; bos/eos is the
    last token id, as GPT-2's <|endoftext|> is."""
    return {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": V - 1, "embd_pdrop": 0.1, "eos_token_id": V - 1,
        "initializer_range": 0.02, "layer_norm_epsilon": EPS_LN, "model_type": "gpt2",
        "n_ctx": NCTX, "n_embd": C, "n_head": NH, "n_inner": None, "n_layer": L,
        "n_positions": NCTX, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
        "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
        "summary_type": "cls_index", "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "torch_dtype": "float32", "transformers_version": "4.35.2", "use_cache": True,
        "vocab_size": V,
    }


def hf_tensors(w):
    """Registry tensors (stacked, [out, in]) -> GPT2LMHeadModel's state_dict, name-sorted."""
    sd = {"transformer.wte.weight": w["wte"], "transformer.wpe.weight": w["wpe"],
          "transformer.ln_f.weight": w["ln_f.weight"], "transformer.ln_f.bias": w["ln_f.bias"],
          "lm_head.weight": w["wte"].clone()}
    mask = torch.tril(torch.ones(NCTX, NCTX, dtype=DTYPE)).view(1, 1, NCTX, NCTX)
    for i in range(L):
        for name, _ in BASE_LAYER:
            hf = name[len("h."):]
            t = w[name][i]
            sd["transformer.h.%d.%s" % (i, hf)] = t.t().contiguous() if hf in HF_CONV1D else t
        sd["transformer.h.%d.attn.bias" % i] = mask
        sd["transformer.h.%d.attn.masked_bias" % i] = torch.tensor(-1e4, dtype=DTYPE)
    return {k: sd[k] for k in sorted(sd)}


def make_hf_gpt2(out, base, gen):
    w = {k: v.to(torch.float32).to(DTYPE) for k, v in base.items()}   # what the file holds
    d = os.path.join(out, "hf_gpt2")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(json.dumps(hf_config(), indent=2, sort_keys=True) + "\n")
    print("wrote %s" % os.path.join(d, "config.json"))
    sd = hf_tensors(w)
    # the Conv1D layout round-trips to the registry's weights
    assert torch.equal(sd["transformer.h.1.mlp.c_fc.weight"].t(), w["h.mlp.c_fc.weight"][1])
    assert list(sd["transformer.h.0.attn.c_attn.weight"].shape) == [C, 3 * C]
    write_safetensors(os.path.join(d, "model.safetensors"), sd, {"format": "pt"})
    model = GPT2()
    load(model, w)
    tokens = torch.randint(0, V, (HF_B, HF_T), generator=gen)
    lengths = torch.tensor(HF_LENGTHS)
    with torch.no_grad():
        logits = model(tokens, lengths)
    out_t = {"tokens": tokens.to(DTYPE), "lengths": lengths.to(DTYPE), "logits": logits}
    print("hf_gpt2: logits max |.| %.4f" % logits.abs().max().item())
    write_safetensors(os.path.join(out, "hf_gpt2_logits.safetensors"), out_t, metadata("hf_gpt2", {
        "batch": "B=%d T=%d lengths=%s" % (HF_B, HF_T, HF_LENGTHS),
        "uses": "hf_gpt2/ (base.safetensors parameters rounded to float32, GPT-2 hub layout)"}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                  "tests", "fixtures", "reference"))
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed)
    base = base_tensors(gen)
    tokens, targets, lengths = batch(gen)
    make_base(args.out, base, tokens, targets, lengths)
    make_lora(args.out, base, tokens, targets, lengths, gen)
    make_adapter(args.out, base, tokens, targets, lengths, gen)
    make_cls(args.out, base, tokens, lengths, gen)
    # its own generator, so the fixtures above stay as they were
    make_hf_gpt2(args.out, base, torch.Generator().manual_seed(args.seed + 1))


if __name__ == "__main__":
    main()
