"""An independent PyTorch GPT-2 (pre-LN, gelu_new, tied unembedding) read from HF-layout safetensors.

Dev-time only (Debian's python3-torch, run with /usr/bin/python3). Used to check Loupe's ONNX graph
against a second implementation and to time PyTorch eager with forward hooks in benchmarks.
Module names follow TransformerLens so hook names line up: blocks.L.hook_resid_pre, ...
"""
import json
import math
import struct

import torch
import torch.nn as nn

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name.removeprefix("transformer.")] = t.float()
    return out


def write_safetensors(path, tensors, dtype="F32"):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(DTYPES[dtype])
        raw = t.view(torch.int16).numpy().tobytes() if dtype == "BF16" else t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header)
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for blob in blobs:
            f.write(blob)


class Hook(nn.Identity):
    """A named point that forward hooks attach to, as in TransformerLens."""


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class LayerNorm(nn.Module):
    def __init__(self, w, b, eps, with_hook=False):
        super().__init__()
        self.w, self.b, self.eps = w, b, eps
        self.hook_normalized = Hook() if with_hook else None

    def forward(self, x):
        x = x - x.mean(-1, keepdim=True)
        x = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.hook_normalized is not None:
            x = self.hook_normalized(x)
        return x * self.w + self.b


class Attention(nn.Module):
    def __init__(self, W, p, cfg):
        super().__init__()
        self.W, self.p, self.H = W, p, cfg["n_head"]
        for n in ["hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z"]:
            setattr(self, n, Hook())

    def forward(self, x):
        B, T, D = x.shape
        H, W, p = self.H, self.W, self.p
        dh = D // H
        qkv = x @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(D, dim=-1)
        q = self.hook_q(q.reshape(B, T, H, dh))
        k = self.hook_k(k.reshape(B, T, H, dh))
        v = self.hook_v(v.reshape(B, T, H, dh))
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        scores = self.hook_attn_scores(scores.masked_fill(~causal, -1e9))
        pattern = self.hook_pattern(scores.softmax(-1))
        z = self.hook_z(torch.einsum("bhqk,bkhd->bqhd", pattern, v))
        return z.reshape(B, T, D) @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]


class Block(nn.Module):
    def __init__(self, W, L, cfg):
        super().__init__()
        p = f"h.{L}."
        eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.W, self.p = W, p
        self.ln1 = LayerNorm(W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        self.ln2 = LayerNorm(W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        self.attn = Attention(W, p, cfg)
        self.mlp = nn.Module()
        self.mlp.hook_pre, self.mlp.hook_post = Hook(), Hook()
        for n in ["hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"]:
            setattr(self, n, Hook())

    def forward(self, resid):
        W, p = self.W, self.p
        resid = self.hook_resid_pre(resid)
        resid = self.hook_resid_mid(resid + self.hook_attn_out(self.attn(self.ln1(resid))))
        pre = self.mlp.hook_pre(self.ln2(resid) @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        post = self.mlp.hook_post(gelu_new(pre))
        out = self.hook_mlp_out(post @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"])
        return self.hook_resid_post(resid + out)


class GPT2(nn.Module):
    def __init__(self, W, cfg):
        super().__init__()
        self.W, self.cfg = W, cfg
        self.hook_embed, self.hook_pos_embed = Hook(), Hook()
        self.blocks = nn.ModuleList([Block(W, L, cfg) for L in range(cfg["n_layer"])])
        self.ln_final = LayerNorm(W["ln_f.weight"], W["ln_f.bias"], cfg.get("layer_norm_epsilon", 1e-5), with_hook=True)

    @classmethod
    def load(cls, folder):
        with open(f"{folder}/config.json") as f:
            cfg = json.load(f)
        return cls(read_safetensors(f"{folder}/model.safetensors"), cfg)

    def forward(self, ids):
        T = ids.shape[1]
        resid = self.hook_embed(self.W["wte.weight"][ids]) + self.hook_pos_embed(self.W["wpe.weight"][:T][None])
        for block in self.blocks:
            resid = block(resid)
        return self.ln_final(resid) @ self.W["wte.weight"].T

    def hook_points(self):
        return {name: m for name, m in self.named_modules() if isinstance(m, Hook)}


def random_gpt2_weights(cfg, seed):
    """GPT-2-like random weights (std 0.02, LN near 1) in HF naming."""
    g = torch.Generator().manual_seed(seed)
    D, V, C, M = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"], cfg.get("n_inner") or 4 * cfg["n_embd"]

    def rnd(*shape, std=0.02):
        return torch.randn(*shape, generator=g) * std

    W = {"transformer.wte.weight": rnd(V, D, std=0.1), "transformer.wpe.weight": rnd(C, D, std=0.05)}
    for L in range(cfg["n_layer"]):
        p = f"transformer.h.{L}."
        W[p + "ln_1.weight"] = 1 + rnd(D, std=0.1)
        W[p + "ln_1.bias"] = rnd(D)
        W[p + "attn.c_attn.weight"] = rnd(D, 3 * D, std=0.2)
        W[p + "attn.c_attn.bias"] = rnd(3 * D)
        W[p + "attn.c_proj.weight"] = rnd(D, D, std=0.1)
        W[p + "attn.c_proj.bias"] = rnd(D)
        W[p + "ln_2.weight"] = 1 + rnd(D, std=0.1)
        W[p + "ln_2.bias"] = rnd(D)
        W[p + "mlp.c_fc.weight"] = rnd(D, M, std=0.2)
        W[p + "mlp.c_fc.bias"] = rnd(M)
        W[p + "mlp.c_proj.weight"] = rnd(M, D, std=0.1)
        W[p + "mlp.c_proj.bias"] = rnd(D)
    W["transformer.ln_f.weight"] = 1 + rnd(D, std=0.1)
    W["transformer.ln_f.bias"] = rnd(D)
    return W


def gpt2_config(**kw):
    cfg = {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5, "n_inner": None, "tie_word_embeddings": True,
    }
    cfg.update(kw)
    return cfg
