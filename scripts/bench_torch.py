#!/usr/bin/python3
"""scripts/bench_torch.py — the PyTorch side of `make bench`.

    /usr/bin/python3 scripts/bench_torch.py --preset micro --batch 16 --seq 128 --threads 2 \
        [--method ft|lora] [--rank 8] [--alpha 8] [--targets q,v] [--warmup 2] [--steps 5]
        [--autocast none|bf16]

Times the same GPT-2 and training step as `loralab bench` with Debian's python3-torch:
random tokens, next-token targets (the last position ignored, as loralab does),
forward, cross-entropy, backward, gradient clipping at norm 1.0, torch.optim.AdamW (lr 2e-4,
weight decay 0.01 on the tensors loralab decays), zero_grad(set_to_none=True). `--method lora`
freezes every base tensor (requires_grad False) and trains LoRA A/B on the q and v slices of
each layer's c_attn, h += (alpha/r) B A x, A Kaiming-uniform, B = 0 (loralab's defaults).

The model is scripts/make_reference.py's nn.Module (the parity-fixture reference), imported
and configured through its module constants (preset sizes, float32, LoRA r and alpha); that
script and its outputs are untouched. Its hand-written GELU is swapped for the equivalent
fused F.gelu(approximate="tanh") unless --reference-gelu, so PyTorch is timed with its own
fastest op for the same function.

Prints, after --warmup untimed steps, the mean over --steps timed steps:
    preset=... method=... trainable=N total=N
    step_ms=<mean>  (and min)
    tokens_per_s=<batch*seq / mean step>
    memory: weights= grads= optimizer= activations= total= MiB   (tensor bytes, as loralab's line;
            activations = bytes autograd saved for backward in one step, parameters excluded)
    rss: peak=<MiB> baseline=<MiB> delta=<MiB>
PyTorch's CPU allocator keeps no statistics, so peak memory is the process's peak RSS
(resource.getrusage ru_maxrss); baseline is the peak RSS after `import torch`, before the
model exists, and delta = peak - baseline.
"""
import argparse
import os
import resource
import sys
import time

PRESETS = {  # n_layer, n_head, n_embd, n_ctx, vocab (core/model.c model_preset, byte tokenizer)
    "nano": (2, 2, 64, 64, 260),
    "micro": (4, 4, 128, 128, 260),
    "small": (6, 6, 384, 256, 260),
}
MiB = 1024.0 * 1024.0


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="micro", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--method", default="ft", choices=["ft", "lora"])
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--targets", default="q,v", help="LoRA targets among q,k,v,o (default q,v)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--autocast", default="none", choices=["none", "bf16"],
                    help="bf16: torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss, "
                         "the way PyTorch users train in bf16 on a CPU (default none: fp32)")
    ap.add_argument("--reference-gelu", action="store_true",
                    help="keep make_reference.py's hand-written GELU (several ops) instead of F.gelu")
    a = ap.parse_args()
    if a.seq > PRESETS[a.preset][3]: ap.error("--seq %d is larger than %s's n_ctx %d" % (a.seq, a.preset, PRESETS[a.preset][3]))
    for name in ("batch", "seq", "threads", "rank", "steps"):
        if getattr(a, name) < 1: ap.error("--%s must be >= 1" % name)
    if a.warmup < 0: ap.error("--warmup must be >= 0")
    a.targets = tuple(t for t in a.targets.split(",") if t)
    if a.method == "lora" and (not a.targets or any(t not in "qkvo" or len(t) != 1 for t in a.targets)):
        ap.error("--targets: expected a comma list of q, k, v, o")
    return a


def main():
    a = parse_args()
    # OpenMP (ATen) and a pthread BLAS both read these at load time: same K as loralab.
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.dont_write_bytecode = True  # no scripts/__pycache__ from the import
    import make_reference as ref

    torch.set_num_threads(a.threads)
    baseline = peak_rss_mib()

    # make_reference's classes read these module constants when built and run.
    ref.L, ref.NH, ref.C, ref.NCTX, ref.V = PRESETS[a.preset]
    ref.DTYPE = torch.float32
    ref.LORA_R, ref.LORA_ALPHA = a.rank, a.alpha
    if not a.reference_gelu:
        ref.gelu_tanh = lambda x: F.gelu(x, approximate="tanh")

    torch.manual_seed(a.seed)
    model = ref.GPT2(lora_targets=a.targets if a.method == "lora" else ())
    with torch.no_grad():  # GPT-2 init; any finite values time the same
        nn.init.normal_(model.wte, std=0.02)
        nn.init.normal_(model.wpe, std=0.01)
        for blk in model.h:
            for lo in blk.lora.values():
                nn.init.kaiming_uniform_(lo.A, a=5 ** 0.5)  # loralib; B stays 0
    reg = ref.registry(model)
    if a.method == "lora":
        for p in model.parameters(): p.requires_grad_(False)
        trainable_names = [n for n in reg if n.startswith("lora.")]
    else:
        trainable_names = list(reg)
    for p in ref.params_of(model, trainable_names): p.requires_grad_(True)
    decayed = ref.DECAYED | {n for n in reg if n.startswith("lora.")}
    groups = [{"params": ref.params_of(model, [n for n in trainable_names if n in decayed]), "weight_decay": 0.01},
              {"params": ref.params_of(model, [n for n in trainable_names if n not in decayed]), "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, lr=2e-4, betas=(0.9, 0.999), eps=1e-8)

    g = torch.Generator().manual_seed(a.seed)
    tokens = torch.randint(0, ref.V, (a.batch, a.seq), generator=g)
    targets = torch.full_like(tokens, -1)
    targets[:, :-1] = tokens[:, 1:]
    lengths = torch.full((a.batch,), a.seq, dtype=torch.long)

    import contextlib
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.autocast == "bf16" else contextlib.nullcontext

    def step():
        with cast():
            logits = model(tokens, lengths)
            loss = F.cross_entropy(logits.view(-1, ref.V), targets.view(-1), ignore_index=-1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup): step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    peak = peak_rss_mib()  # before the accounting pass below, whose hooks hold extra references

    # Tensor bytes, as loralab's memory line: parameters, their gradients, AdamW's moments, and
    # the activations autograd saves for backward in one step (storages deduplicated).
    nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)
    weights = nbytes(model.parameters())
    grads = nbytes(params)
    optim = nbytes(t for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
    param_ptrs = {p.data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        st = t.storage()
        if st.data_ptr() not in param_ptrs: saved[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), cast():
        logits = model(tokens, lengths)
        F.cross_entropy(logits.view(-1, ref.V), targets.view(-1), ignore_index=-1).backward()
    opt.zero_grad(set_to_none=True)
    acts = sum(saved.values())

    n_total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in params)
    mean = sum(times) / len(times)
    print("preset=%s method=%s precision=%s batch=%d seq=%d threads=%d trainable=%d total=%d torch=%s loss=%.4f"
          % (a.preset, a.method, "bf16-autocast" if a.autocast == "bf16" else "fp32", a.batch, a.seq,
             torch.get_num_threads(), n_train, n_total, torch.__version__, loss))
    print("step_ms=%.3f min_step_ms=%.3f" % (mean * 1e3, min(times) * 1e3))
    print("tokens_per_s=%.1f" % (a.batch * a.seq / mean))
    print("memory: weights=%.2f MiB grads=%.2f MiB optimizer=%.2f MiB activations=%.2f MiB total=%.2f MiB"
          % (weights / MiB, grads / MiB, optim / MiB, acts / MiB, (weights + grads + optim + acts) / MiB))
    print("rss: peak=%.1f MiB baseline=%.1f MiB delta=%.1f MiB" % (peak, baseline, peak - baseline))


if __name__ == "__main__":
    main()
