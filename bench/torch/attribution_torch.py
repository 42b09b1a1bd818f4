"""An independent attribution-graph reference by PyTorch autograd (dev-time, /usr/bin/python3).

Reads a JSON written by bench/circuits/torch-check.ts (model folder, transcoder folder, tokens,
Loupe's active features, target vectors and adjacency), rebuilds the replacement model in torch
(attention patterns and LayerNorm scales frozen at a first, ordinary run of this same code; MLPs
replaced by the PLT's features as leaves plus error leaves; token embeddings as leaves) and takes
one autograd backward per target. Prints the largest difference from Loupe's adjacency, relative
to each column's largest entry, and the time per graph. GPT-2 family, per-layer transcoders.
"""
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gpt2_torch import gelu_new, read_safetensors  # noqa: E402

torch.set_num_threads(max(1, os.cpu_count() or 1))


def frozen_forward(W, tc, cfg, tokens, frozen=None, leaves=None):
    """The GPT-2 forward with the MLPs replaced; with `frozen`, patterns and norm scales are constants."""
    T = len(tokens)
    D = cfg["n_embd"]
    H = cfg["n_head"]
    L = cfg["n_layer"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    record = {"pattern": [], "s1": [], "s2": [], "sf": None, "mlp_in": [], "mlp_out": []}

    def ln(x, w, b, scale):
        c = x - x.mean(-1, keepdim=True)
        s = scale if scale is not None else torch.sqrt(c.pow(2).mean(-1, keepdim=True) + eps)
        return c / s * w + b, s

    embed = leaves["embed"] if leaves else W["wte.weight"][tokens]
    resid = embed + W["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        p = f"h.{l}."
        x, s1 = ln(resid, W[p + "ln_1.weight"], W[p + "ln_1.bias"], frozen["s1"][l] if frozen else None)
        qkv = x @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(D, -1)
        q, k, v = (t.reshape(T, H, D // H).transpose(0, 1) for t in (q, k, v))
        if frozen:
            pattern = frozen["pattern"][l]
        else:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
            pattern = torch.softmax(scores.masked_fill(~mask, -1e9), -1)
        z = (pattern @ v).transpose(0, 1).reshape(T, D)
        resid = resid + z @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        mlp_in, s2 = ln(resid, W[p + "ln_2.weight"], W[p + "ln_2.bias"], frozen["s2"][l] if frozen else None)
        record["pattern"].append(pattern.detach())
        record["s1"].append(s1.detach())
        record["s2"].append(s2.detach())
        record["mlp_in"].append(mlp_in)
        if leaves:
            out = leaves["acts"][l] @ tc[l]["W_dec"] + tc[l]["b_dec"] + leaves["errors"][l] + leaves["skip"][l](mlp_in)
        else:
            out = gelu_new(mlp_in @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"]) @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
        record["mlp_out"].append(out.detach())
        resid = resid + out
    final, sf = ln(resid, W["ln_f.weight"], W["ln_f.bias"], frozen["sf"] if frozen else None)
    record["sf"] = sf.detach()
    return final, record


def main(path):
    job = json.load(open(path))
    cfg = json.load(open(os.path.join(job["model"], "config.json")))
    W = read_safetensors(os.path.join(job["model"], "model.safetensors"))
    L, T = cfg["n_layer"], len(job["tokens"])
    tc = [read_safetensors(os.path.join(job["transcoders"], f"layer_{l}.safetensors")) for l in range(L)]
    k = job["k"]
    tokens = torch.tensor(job["tokens"])
    started = time.time()
    with torch.no_grad():
        _, rec = frozen_forward(W, tc, cfg, tokens)
    # Feature activations from the real MLP inputs (circuit-tracer's TopK: the k largest, kept as they are).
    acts, errors = [], []
    for l in range(L):
        pre = rec["mlp_in"][l].detach() @ tc[l]["W_enc"].T + tc[l]["b_enc"]
        top = torch.topk(pre, k, dim=-1)
        a = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
        recon = a @ tc[l]["W_dec"] + tc[l]["b_dec"]
        acts.append(a.requires_grad_())
        errors.append((rec["mlp_out"][l] - recon).requires_grad_())
    embed = W["wte.weight"][tokens].clone().requires_grad_()
    leaves = {"acts": acts, "errors": errors, "embed": embed, "skip": [lambda x: 0] * L}
    final, rec2 = frozen_forward(W, tc, cfg, tokens, frozen=rec, leaves=leaves)
    feats = job["features"]  # [layer, pos, feature, activation]
    targets = []
    for (l, p, f, _) in feats:
        targets.append(rec2["mlp_in"][l][p] @ tc[l]["W_enc"][f])
    for vec in job["targets"]:
        targets.append(final[T - 1] @ torch.tensor(vec))
    n = len(feats) + L * T + T + len(job["targets"])
    A = torch.zeros(n, n)
    for row, value in enumerate(targets):
        grads = torch.autograd.grad(value, acts + errors + [embed], retain_graph=True, allow_unused=True)
        ga, ge, gE = grads[:L], grads[L:2 * L], grads[2 * L]
        r = row if row < len(feats) else n - len(job["targets"]) + (row - len(feats))
        for j, (l, p, f, act) in enumerate(feats):
            if ga[l] is not None:
                A[r, j] = ga[l][p, f] * act
        for l in range(L):
            if ge[l] is not None:
                A[r, len(feats) + l * T: len(feats) + (l + 1) * T] = (ge[l] * errors[l].detach()).sum(-1)
        A[r, len(feats) + L * T: len(feats) + L * T + T] = (gE * embed.detach()).sum(-1)
    seconds = time.time() - started
    loupe = torch.tensor(job["adjacency"]).reshape(n, n)
    scale = loupe.abs().max(0).values.clamp(min=1e-6)
    worst = ((A - loupe).abs() / scale).max().item()
    print(json.dumps({"nodes": n, "max_relative_column_error": worst, "torch_seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1])
