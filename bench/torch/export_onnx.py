"""Exports the tiny GPT-2 and Llama fixtures to ONNX the way Optimum decoder exports look, for Loupe's import tests.

    /usr/bin/python3 bench/torch/export_onnx.py

Writes test/fixtures/tiny-gpt2-onnx/ and tiny-llama-onnx/ (model.onnx; config.json and
tokenizer.json copied from the safetensors fixtures). No transformers or optimum: the models are
written here from the equations, with HF's module names, so node names look like an export's;
Loupe must find the residual stream by structure either way.
  GPT-2: inputs input_ids, attention_mask (int64) and past_key_values.{L}.key/value; outputs logits
    and present.{L}.key/value, as `optimum-cli export onnx --task text-generation-with-past` gives.
    Positions come from the mask inside the graph (no position_ids input). Opset 14, so LayerNorm
    is decomposed into elementary ops, as in older exports.
  Llama: inputs input_ids, attention_mask, position_ids; output logits. RMSNorm, rotary (llama3
    scaling), grouped-query attention, untied lm_head. Opset 17.
"""
import math
import os
import shutil
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from gpt2_torch import gelu_new, read_safetensors  # noqa: E402
from llama_torch import inverse_frequencies  # noqa: E402

HERE = os.path.dirname(__file__)
SOURCE = os.path.join(HERE, "..", "..", "test", "fixtures", "tiny-gpt2")
TARGET = os.path.join(HERE, "..", "..", "test", "fixtures", "tiny-gpt2-onnx")


class LayerNorm(nn.Module):
    def __init__(self, W, p, eps):
        super().__init__()
        self.weight = nn.Parameter(W[p + "weight"])
        self.bias = nn.Parameter(W[p + "bias"])
        self.eps = eps

    def forward(self, x):
        x = x - x.mean(-1, keepdim=True)
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight + self.bias


class Conv1D(nn.Module):
    """HF GPT-2's linear layer: weight [in, out]."""

    def __init__(self, W, p):
        super().__init__()
        self.weight = nn.Parameter(W[p + "weight"])
        self.bias = nn.Parameter(W[p + "bias"])

    def forward(self, x):
        return x @ self.weight + self.bias


class Attention(nn.Module):
    def __init__(self, W, p, n_head):
        super().__init__()
        self.c_attn = Conv1D(W, p + "c_attn.")
        self.c_proj = Conv1D(W, p + "c_proj.")
        self.H = n_head

    def forward(self, x, past_k, past_v, allowed):
        B, T, D = x.shape
        H = self.H
        q, k, v = self.c_attn(x).split(D, dim=-1)
        q, k, v = (t.reshape(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
        scores = torch.where(allowed, scores, torch.tensor(-1e9))
        z = scores.softmax(-1) @ v
        return self.c_proj(z.transpose(1, 2).reshape(B, T, D)), k, v


class Block(nn.Module):
    def __init__(self, W, L, cfg):
        super().__init__()
        p, eps = f"h.{L}.", cfg.get("layer_norm_epsilon", 1e-5)
        self.ln_1 = LayerNorm(W, p + "ln_1.", eps)
        self.attn = Attention(W, p + "attn.", cfg["n_head"])
        self.ln_2 = LayerNorm(W, p + "ln_2.", eps)
        self.c_fc = Conv1D(W, p + "mlp.c_fc.")
        self.c_proj = Conv1D(W, p + "mlp.c_proj.")

    def forward(self, x, past_k, past_v, allowed):
        attn_out, k, v = self.attn(self.ln_1(x), past_k, past_v, allowed)
        x = x + attn_out
        x = x + self.c_proj(gelu_new(self.c_fc(self.ln_2(x))))
        return x, k, v


class Transformer(nn.Module):
    def __init__(self, W, cfg):
        super().__init__()
        self.wte = nn.Embedding.from_pretrained(W["wte.weight"])
        self.wpe = nn.Embedding.from_pretrained(W["wpe.weight"])
        self.h = nn.ModuleList([Block(W, L, cfg) for L in range(cfg["n_layer"])])
        self.ln_f = LayerNorm(W, "ln_f.", cfg.get("layer_norm_epsilon", 1e-5))


class GPT2LMHead(nn.Module):
    def __init__(self, W, cfg):
        super().__init__()
        self.transformer = Transformer(W, cfg)
        self.n_layer = cfg["n_layer"]

    def forward(self, input_ids, attention_mask, *past):
        T = input_ids.shape[1]
        total = attention_mask.shape[1]
        # Positions as Optimum's patched GPT-2 computes them: from the mask, so padding is skipped.
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, total - T:]
        x = self.transformer.wte(input_ids) + self.transformer.wpe(positions)
        causal = torch.ones(total, total, dtype=torch.bool).tril()[total - T:]
        allowed = causal[None, None] & attention_mask.bool()[:, None, None, :]
        presents = []
        for L, block in enumerate(self.transformer.h):
            x, k, v = block(x, past[2 * L], past[2 * L + 1], allowed)
            presents += [k, v]
        logits = self.transformer.ln_f(x) @ self.transformer.wte.weight.T
        return (logits, *presents)


class LlamaDecoder(nn.Module):
    def __init__(self, W, cfg):
        super().__init__()
        W = {k.removeprefix("model."): v for k, v in W.items()}
        self.cfg, self.eps = cfg, cfg["rms_norm_eps"]
        self.embed_tokens = nn.Embedding.from_pretrained(W["embed_tokens.weight"])
        self.W = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v) for k, v in W.items() if k != "embed_tokens.weight"})
        self.register_buffer("inv_freq", inverse_frequencies(cfg).float())

    def w(self, name):
        return self.W[name.replace(".", "__")]

    def norm(self, x, name):
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + self.eps) * self.w(name)

    def forward(self, input_ids, attention_mask, position_ids):
        cfg = self.cfg
        H, KV, Dh = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        B, T = input_ids.shape
        angles = position_ids[..., None].float() * self.inv_freq
        c, s = torch.cos(angles)[:, :, None, :], torch.sin(angles)[:, :, None, :]

        def rotate(x):
            a, b = x[..., : Dh // 2], x[..., Dh // 2:]
            return torch.cat([a * c - b * s, a * s + b * c], dim=-1)

        allowed = torch.ones(T, T, dtype=torch.bool).tril()[None, None] & attention_mask.bool()[:, None, None, :]
        x = self.embed_tokens(input_ids)
        for L in range(cfg["num_hidden_layers"]):
            p = f"layers.{L}."
            h = self.norm(x, p + "input_layernorm.weight")
            q = (h @ self.w(p + "self_attn.q_proj.weight").T).view(B, T, H, Dh)
            k = (h @ self.w(p + "self_attn.k_proj.weight").T).view(B, T, KV, Dh).repeat_interleave(H // KV, dim=2)
            v = (h @ self.w(p + "self_attn.v_proj.weight").T).view(B, T, KV, Dh).repeat_interleave(H // KV, dim=2)
            q, k, v = rotate(q).transpose(1, 2), rotate(k).transpose(1, 2), v.transpose(1, 2)
            scores = torch.where(allowed, (q @ k.transpose(-1, -2)) / math.sqrt(Dh), torch.tensor(-1e9))
            z = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * Dh)
            x = x + z @ self.w(p + "self_attn.o_proj.weight").T
            h = self.norm(x, p + "post_attention_layernorm.weight")
            gate = h @ self.w(p + "mlp.gate_proj.weight").T
            x = x + (gate * torch.sigmoid(gate) * (h @ self.w(p + "mlp.up_proj.weight").T)) @ self.w(p + "mlp.down_proj.weight").T
        return self.norm(x, "norm.weight") @ self.w("lm_head.weight").T


def export_llama():
    import json

    source = os.path.join(HERE, "..", "..", "test", "fixtures", "tiny-llama")
    target = os.path.join(HERE, "..", "..", "test", "fixtures", "tiny-llama-onnx")
    with open(os.path.join(source, "config.json")) as f:
        cfg = json.load(f)
    W = read_safetensors(os.path.join(source, "model.safetensors"))
    model = LlamaDecoder(W, cfg).eval()
    B, T = 2, 5
    ids = torch.randint(0, cfg["vocab_size"], (B, T))
    axes = {n: {0: "batch_size", 1: "sequence_length"} for n in ("input_ids", "attention_mask", "position_ids", "logits")}
    os.makedirs(target, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, torch.ones(B, T, dtype=torch.int64), torch.arange(T)[None].expand(B, T)), os.path.join(target, "model.onnx"),
            opset_version=17, input_names=["input_ids", "attention_mask", "position_ids"], output_names=["logits"],
            dynamic_axes=axes, do_constant_folding=True,
        )
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(os.path.join(source, name), os.path.join(target, name))


def main():
    import json

    with open(os.path.join(SOURCE, "config.json")) as f:
        cfg = json.load(f)
    W = read_safetensors(os.path.join(SOURCE, "model.safetensors"))
    model = GPT2LMHead(W, cfg).eval()
    H, Dh, L = cfg["n_head"], cfg["n_embd"] // cfg["n_head"], cfg["n_layer"]
    B, P, T = 2, 3, 5
    ids = torch.randint(0, cfg["vocab_size"], (B, T))
    mask = torch.ones(B, P + T, dtype=torch.int64)
    past = [torch.zeros(B, H, P, Dh) for _ in range(2 * L)]
    past_names = [f"past_key_values.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "attention_mask": {0: "batch_size", 1: "past_sequence_length + 1"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    for n in past_names:
        axes[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in present_names:
        axes[n] = {0: "batch_size", 2: "past_sequence_length + 1"}
    os.makedirs(TARGET, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, mask, *past), os.path.join(TARGET, "model.onnx"), opset_version=14,
            input_names=["input_ids", "attention_mask", *past_names], output_names=["logits", *present_names],
            dynamic_axes=axes, do_constant_folding=True,
        )
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(os.path.join(SOURCE, name), os.path.join(TARGET, name))
    export_llama()


if __name__ == "__main__":
    main()
