"""Rows of an attribution graph by PyTorch autograd, batched, for timing at scale (dev-time).

The same algorithm as Loupe's rows (bench:circuits --shape gpt2-124m writes the job): GPT-2 with its
MLPs replaced by a TopK PLT (random here), attention patterns and LayerNorm scales frozen at the
prompt's own run, feature activations / errors / token embeddings as leaves, and for each batch of
targets (the logit targets, then the features Loupe expanded) one backward with batched gradient
outputs. Prints the time, the peak RSS, and the largest difference from the rows Loupe sent, relative
to each row's largest entry.
"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from attribution_torch import frozen_forward  # noqa: E402
from gpt2_torch import read_safetensors  # noqa: E402


def main(path):
    job = json.load(open(path))
    torch.set_num_threads(job["threads"])
    cfg = json.load(open(os.path.join(job["model"], "config.json")))
    W = read_safetensors(os.path.join(job["model"], "model.safetensors"))
    L = cfg["n_layer"]
    tokens = torch.tensor(job["tokens"])
    T = len(job["tokens"])
    tc = [read_safetensors(os.path.join(job["transcoders"], f"layer_{l}.safetensors")) for l in range(L)]
    k = job["k"]
    started = time.time()
    cpu_started = time.process_time()
    with torch.no_grad():
        _, rec = frozen_forward(W, tc, cfg, tokens)
    acts, errors = [], []
    for l in range(L):
        pre = rec["mlp_in"][l] @ tc[l]["W_enc"].T + tc[l]["b_enc"]
        top = torch.topk(pre, k, dim=-1)
        a = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
        errors.append((rec["mlp_out"][l] - (a @ tc[l]["W_dec"] + tc[l]["b_dec"])).requires_grad_())
        acts.append(a.requires_grad_())
    embed = W["wte.weight"][tokens].clone().requires_grad_()
    leaves = {"acts": acts, "errors": errors, "embed": embed, "skip": [lambda x: 0] * L}
    final, rec2 = frozen_forward(W, tc, cfg, tokens, frozen=rec, leaves=leaves)
    # Sources in Loupe's order: active features by (layer, position, feature), errors, tokens.
    active = [(l, p, f) for l in range(L) for p, f in (acts[l].detach() != 0).nonzero().tolist()]
    column = {key: i for i, key in enumerate(active)}
    n_sources = len(active) + L * T + T
    rows = job["rows"]  # [layer, pos, feature] of each feature row, after the logit rows
    values = torch.stack([final[T - 1] @ torch.tensor(v) for v in job["logit_vectors"]] + [rec2["mlp_in"][l][p] @ tc[l]["W_enc"][f] for (l, p, f) in rows])
    n_rows = values.shape[0]
    out = torch.zeros(n_rows, n_sources)
    act_index = [torch.tensor([[p, f] for (ll, p, f) in active if ll == l], dtype=torch.long).reshape(-1, 2) for l in range(L)]
    act_cols = [torch.tensor([column[(l, p, f)] for (p, f) in act_index[l].tolist()], dtype=torch.long) for l in range(L)]
    batch = job["batch"]
    for start in range(0, n_rows, batch):
        b = min(batch, n_rows - start)
        onehot = torch.zeros(b, n_rows)
        onehot[torch.arange(b), torch.arange(start, start + b)] = 1
        grads = torch.autograd.grad(values, acts + errors + [embed], grad_outputs=onehot, retain_graph=True, allow_unused=True, is_grads_batched=True)
        ga, ge, gE = grads[:L], grads[L:2 * L], grads[2 * L]
        for l in range(L):
            if ga[l] is not None and len(act_cols[l]):
                idx = act_index[l]
                out[start:start + b, act_cols[l]] = ga[l][:, idx[:, 0], idx[:, 1]] * acts[l].detach()[idx[:, 0], idx[:, 1]]
            if ge[l] is not None:
                out[start:start + b, len(active) + l * T: len(active) + (l + 1) * T] = (ge[l] * errors[l].detach()).sum(-1)
        out[start:start + b, len(active) + L * T:] = (gE * embed.detach()).sum(-1)
    seconds = time.time() - started
    cpu_seconds = time.process_time() - cpu_started
    worst = 0.0
    for check in job["check"]:  # Loupe's rows over its kept features, errors and tokens
        r = check["row"]
        cols = [column[tuple(key)] for key in check["features"]] + list(range(len(active), n_sources))
        mine = out[r, cols]
        loupe = torch.tensor(check["values"])
        worst = max(worst, ((mine - loupe).abs().max() / loupe.abs().max().clamp(min=1e-6)).item())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": n_rows, "sources": n_sources, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": peak, "max_relative_row_error": worst}))


if __name__ == "__main__":
    main(sys.argv[1])
