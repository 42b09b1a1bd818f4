"""Trains Loupe's reference model: a small GPT-2 on the synthetic bench corpus.

Dev-time only. Needs Debian's PyTorch with the threaded OpenBLAS (ten times faster here):
    apt-get install python3-torch python3-numpy libopenblas0-pthread
    /usr/bin/python3 bench/train/train.py --data bench/data/train --tokenizer models/reference/tokenizer.json \\
        --out models/reference --minutes 40

Writes config.json + model.safetensors in the Hugging Face GPT-2 layout (what save_pretrained
writes for GPT2LMHeadModel, tied unembedding not stored) and manifest.json, every few minutes,
so a usable model exists even if training is stopped early.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torch"))
from gpt2_torch import gpt2_config, read_safetensors, write_safetensors  # noqa: E402


class Block(nn.Module):
    def __init__(self, d, h, m):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, m), nn.Linear(m, d)
        self.h = h

    def forward(self, x, causal):
        B, T, D = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.h, D // self.h).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D // self.h)
        att = att.masked_fill(~causal[:T, :T], -1e9).softmax(-1)
        x = x + self.c_proj((att @ v).transpose(1, 2).reshape(B, T, D))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads, mlp):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList([Block(d, heads, mlp) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.register_buffer("causal", torch.tril(torch.ones(ctx, ctx, dtype=torch.bool)), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))[None]
        for b in self.blocks:
            x = b(x, self.causal)
        return self.ln_f(x) @ self.wte.weight.T


def hf_state(model):
    """Our module names -> HF GPT-2 names; nn.Linear [out,in] -> Conv1D [in,out]."""
    W = {"transformer.wte.weight": model.wte.weight, "transformer.wpe.weight": model.wpe.weight,
         "transformer.ln_f.weight": model.ln_f.weight, "transformer.ln_f.bias": model.ln_f.bias}
    for i, b in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        W[p + "ln_1.weight"], W[p + "ln_1.bias"] = b.ln_1.weight, b.ln_1.bias
        W[p + "ln_2.weight"], W[p + "ln_2.bias"] = b.ln_2.weight, b.ln_2.bias
        W[p + "attn.c_attn.weight"], W[p + "attn.c_attn.bias"] = b.c_attn.weight.T, b.c_attn.bias
        W[p + "attn.c_proj.weight"], W[p + "attn.c_proj.bias"] = b.c_proj.weight.T, b.c_proj.bias
        W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"] = b.c_fc.weight.T, b.c_fc.bias
        W[p + "mlp.c_proj.weight"], W[p + "mlp.c_proj.bias"] = b.mlp_proj.weight.T, b.mlp_proj.bias
    return {k: v.detach().float().contiguous() for k, v in W.items()}


def load_hf_state(model, path):
    """Inverse of hf_state: continue training from a checkpoint this script wrote."""
    saved = read_safetensors(path)
    with torch.no_grad():
        for name, param in hf_state_params(model).items():
            value = saved[name.removeprefix("transformer.")]
            param.copy_(value.T if name.endswith(".weight") and param.dim() == 2 and "wte" not in name and "wpe" not in name else value)


def hf_state_params(model):
    W = {"transformer.wte.weight": model.wte.weight, "transformer.wpe.weight": model.wpe.weight,
         "transformer.ln_f.weight": model.ln_f.weight, "transformer.ln_f.bias": model.ln_f.bias}
    for i, b in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        for ours, theirs in ((b.ln_1, "ln_1"), (b.ln_2, "ln_2"), (b.c_attn, "attn.c_attn"), (b.c_proj, "attn.c_proj"),
                             (b.c_fc, "mlp.c_fc"), (b.mlp_proj, "mlp.c_proj")):
            W[p + theirs + ".weight"], W[p + theirs + ".bias"] = ours.weight, ours.bias
    return W


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", help="a model folder this script wrote: continue training from its weights")
    ap.add_argument("--keep-checkpoints", action="store_true",
                    help="also keep every save in OUT/checkpoints/step-N (for bench/train/average-checkpoints.ts)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    ids = torch.from_numpy(np.fromfile(args.data + ".ids.u16", dtype=np.uint16).astype(np.int64))
    mask = torch.from_numpy(np.fromfile(args.data + ".mask.u8", dtype=np.uint8).astype(np.float32))
    with open(args.tokenizer) as f:
        tok = json.load(f)
    vocab = max(max(tok["model"]["vocab"].values()), max(t["id"] for t in tok["added_tokens"])) + 1
    eos = next(t["id"] for t in tok["added_tokens"] if t["content"] == "<|endoftext|>")
    model = GPT(vocab, args.ctx, args.d_model, args.layers, args.heads, 4 * args.d_model)
    prior = {"steps": 0, "tokens_seen": 0, "wall_minutes": 0.0, "loss_curve_every_200_steps": []}
    if args.init:
        load_hf_state(model, os.path.join(args.init, "model.safetensors"))
        with open(os.path.join(args.init, "manifest.json")) as f:
            prior = json.load(f)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters, {len(ids)} tokens, vocab {vocab}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.05)
    budget = args.minutes * 60
    started = time.time()
    losses, step, tokens_seen, last_save = [], 0, 0, time.time()
    cfg = gpt2_config(vocab_size=vocab, n_positions=args.ctx, n_embd=args.d_model, n_layer=args.layers, n_head=args.heads,
                      bos_token_id=eos, eos_token_id=eos)

    def save(final=False):
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        write_safetensors(os.path.join(args.out, "model.safetensors"), hf_state(model))
        curve = prior["loss_curve_every_200_steps"] + [round(float(np.mean(losses[i:i + 200])), 4) for i in range(0, len(losses), 200)]
        manifest = {
            "model": "Loupe reference GPT-2", "parameters": n_params, "seed": args.seed, "steps": prior["steps"] + step,
            "tokens_seen": prior["tokens_seen"] + tokens_seen,
            "wall_minutes": round(prior["wall_minutes"] + (time.time() - started) / 60, 1), "final": final,
            "continued_from": prior.get("continued_from", []) + ([{"steps": prior["steps"], "training_data_sha256": prior["training_data_sha256"]}] if args.init else []),
            "batch": args.batch, "seq": args.seq, "lr": args.lr, "torch": torch.__version__,
            "training_data_sha256": sha256(args.data + ".ids.u16"), "tokenizer_sha256": sha256(args.tokenizer),
            "loss_curve_every_200_steps": curve,
        }
        with open(os.path.join(args.out, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        if args.keep_checkpoints:
            kept = os.path.join(args.out, "checkpoints", f"step-{manifest['steps']}")
            os.makedirs(kept, exist_ok=True)
            for name in ("config.json", "model.safetensors", "manifest.json"):
                shutil.copyfile(os.path.join(args.out, name), os.path.join(kept, name))
            shutil.copyfile(args.tokenizer, os.path.join(kept, "tokenizer.json"))

    model.train()
    while time.time() - started < budget:
        frac = (time.time() - started) / budget
        lr = args.lr * min(1.0, step / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(ids) - args.seq - 1, (args.batch,))
        x = torch.stack([ids[s:s + args.seq] for s in starts])
        y = torch.stack([ids[s + 1:s + args.seq + 1] for s in starts])
        m = torch.stack([mask[s + 1:s + args.seq + 1] for s in starts])
        logits = model(x)
        loss_tok = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1), reduction="none")
        loss = (loss_tok * m.reshape(-1)).sum() / m.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        tokens_seen += args.batch * args.seq
        if step % 100 == 0:
            print(f"step {step} loss {np.mean(losses[-100:]):.3f} lr {lr:.2e} {tokens_seen / (time.time() - started):.0f} tok/s", flush=True)
        if time.time() - last_save > 300:
            save()
            last_save = time.time()
    save(final=True)
    print("done", step, "steps", flush=True)


if __name__ == "__main__":
    main()
