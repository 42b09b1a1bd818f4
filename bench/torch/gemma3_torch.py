"""An independent PyTorch Gemma 3 text model, and the tiny-gemma3 fixture Loupe's parity tests read.

    /usr/bin/python3 bench/torch/gemma3_torch.py

Dev-time only (Debian's python3-torch; transformers is not used). Written from Gemma 3's published
architecture (as HF's Gemma3ForCausalLM computes it), not from Loupe's graph:
  - RMSNorm in float32 with the gain stored as an offset: x / rms(x) * (1 + w);
  - four norms per block: input, post-attention (on the attention output), pre-feedforward,
    post-feedforward (on the MLP output); per-head q/k norms before rotary;
  - scores scaled by query_pre_attn_scalar^-0.5, optional tanh soft-capping of scores and logits;
  - sliding-window layers (a query sees the `sliding_window` tokens ending at itself) rotating with
    rope_local_base_freq, global layers with rope_theta; layer_types says which is which;
  - embeddings times sqrt(hidden_size) cast to the weights' dtype; GeGLU with tanh GELU; tied unembedding.
Writes test/fixtures/tiny-gemma3/: config.json, model.safetensors, a Gemma-style tokenizer.json
(Replace " " -> "▁" normalizer, no pre-tokenizer, no dummy prefix, byte fallback) and reference.json
(as llama_torch.py's, plus the post-norm hooks, prompts longer than the window).
"""
import functools
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import llama_torch  # noqa: E402
from llama_torch import CORPUS, HOOKS, SPACE, Llama, bpe_encode, rope_inverse_frequencies, rotate, train_bpe, write_fixture  # noqa: E402

# Gemma's RMSNorm: float32, with the gain stored as an offset from 1 (x / rms(x) * (1 + w)).
rms_norm = functools.partial(llama_torch.rms_norm, gain_offset=1.0)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def softcap(x, cap):
    return x if cap is None else torch.tanh(x / cap) * cap


class Gemma3(Llama):
    """Gemma 3; greedy decoding (with and without the key/value cache) is Llama's, over this forward."""

    def __init__(self, weights, cfg):
        self.W = {k.removeprefix("model."): v for k, v in weights.items()}
        self.cfg = cfg
        d = cfg["head_dim"]
        self.inv_freq_global = rope_inverse_frequencies(cfg["rope_theta"], d, cfg.get("rope_scaling")).float()
        self.inv_freq_local = rope_inverse_frequencies(cfg["rope_local_base_freq"], d).float()

    def linear(self, x, name):
        return x @ self.W[name + ".weight"].T

    def forward(self, ids, edits=None, past=None, ungroup=False):
        """As llama_torch.Llama.forward: logits and every hook; past/present keys (rotated) and values [B, P, H, Dh]."""
        cfg, W = self.cfg, self.W
        H, KV, Dh = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        eps = cfg["rms_norm_eps"]
        cache = {}

        def record(name, x):
            if edits and name in edits:
                x = edits[name](x)
            cache[name] = x
            return x

        B, T = ids.shape
        P = 0 if past is None else past[0][0].shape[1]
        q_pos = torch.arange(P, P + T)[:, None]
        k_pos = torch.arange(P + T)[None, :]
        causal = k_pos <= q_pos
        sliding = causal & (k_pos > q_pos - cfg["sliding_window"])
        tables = {}
        for kind, inv in (("full_attention", self.inv_freq_global), ("sliding_attention", self.inv_freq_local)):
            angles = torch.arange(P, P + T, dtype=torch.float32)[:, None] * inv[None, :]
            tables[kind] = (torch.cos(angles), torch.sin(angles))
        embed = W["embed_tokens.weight"]
        scale = torch.tensor(cfg["hidden_size"] ** 0.5).to(embed.dtype)
        resid = record("hook_embed", embed[ids] * scale)
        present = []
        for L in range(cfg["num_hidden_layers"]):
            p = f"layers.{L}"
            kind = cfg["layer_types"][L]
            cos, sin = tables[kind]
            allowed = sliding if kind == "sliding_attention" else causal
            resid = record(f"blocks.{L}.hook_resid_pre", resid)
            x = rms_norm(resid, W[f"{p}.input_layernorm.weight"], eps, record, scale_name=f"blocks.{L}.ln1.hook_scale")
            q = self.linear(x, f"{p}.self_attn.q_proj").view(B, T, H, Dh)
            k = self.linear(x, f"{p}.self_attn.k_proj").view(B, T, KV, Dh)
            v = self.linear(x, f"{p}.self_attn.v_proj").view(B, T, KV, Dh)
            if ungroup:
                k, v = k.repeat_interleave(H // KV, dim=2), v.repeat_interleave(H // KV, dim=2)
            q = record(f"blocks.{L}.attn.hook_q", q)
            k = record(f"blocks.{L}.attn.hook_k", k)
            v = record(f"blocks.{L}.attn.hook_v", v)
            q = rms_norm(q, W[f"{p}.self_attn.q_norm.weight"], eps)
            k = rms_norm(k, W[f"{p}.self_attn.k_norm.weight"], eps)
            # Per-head norm and rotation act on each head alone: rot_k keeps hook_k's key/value heads.
            qr = record(f"blocks.{L}.attn.hook_rot_q", rotate(q, cos, sin))
            kr = record(f"blocks.{L}.attn.hook_rot_k", rotate(k, cos, sin))
            if not ungroup:
                kr, v = kr.repeat_interleave(H // KV, dim=2), v.repeat_interleave(H // KV, dim=2)
            if past is not None:
                kr = torch.cat([past[L][0], kr], dim=1)
                v = torch.cat([past[L][1], v], dim=1)
            present.append((kr, v))
            scores = torch.einsum("bqhd,bkhd->bhqk", qr, kr) * cfg["query_pre_attn_scalar"] ** -0.5
            scores = softcap(scores, cfg.get("attn_logit_softcapping"))
            scores = record(f"blocks.{L}.attn.hook_attn_scores", scores.masked_fill(~allowed, -1e9))
            pattern = record(f"blocks.{L}.attn.hook_pattern", torch.softmax(scores, dim=-1))
            z = record(f"blocks.{L}.attn.hook_z", torch.einsum("bhqk,bkhd->bqhd", pattern, v))
            attn = self.linear(z.reshape(B, T, H * Dh), f"{p}.self_attn.o_proj")
            attn = rms_norm(attn, W[f"{p}.post_attention_layernorm.weight"], eps, record, f"blocks.{L}.ln1_post.hook_normalized", f"blocks.{L}.ln1_post.hook_scale")
            attn = record(f"blocks.{L}.hook_attn_out", attn)
            resid = record(f"blocks.{L}.hook_resid_mid", resid + attn)
            y = rms_norm(resid, W[f"{p}.pre_feedforward_layernorm.weight"], eps, record, scale_name=f"blocks.{L}.ln2.hook_scale")
            gate = record(f"blocks.{L}.mlp.hook_pre", self.linear(y, f"{p}.mlp.gate_proj"))
            post = record(f"blocks.{L}.mlp.hook_post", gelu_tanh(gate) * self.linear(y, f"{p}.mlp.up_proj"))
            mlp = rms_norm(self.linear(post, f"{p}.mlp.down_proj"), W[f"{p}.post_feedforward_layernorm.weight"], eps, record, f"blocks.{L}.ln2_post.hook_normalized", f"blocks.{L}.ln2_post.hook_scale")
            mlp = record(f"blocks.{L}.hook_mlp_out", mlp)
            resid = record(f"blocks.{L}.hook_resid_post", resid + mlp)
        final = rms_norm(resid, W["norm.weight"], eps, record, "ln_final.hook_normalized", "ln_final.hook_scale")
        cache["present"] = present
        return softcap(final @ embed.T, cfg.get("final_logit_softcapping")), cache


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    D, H, KV, Dh, M, V = (cfg[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size"))

    def rnd(*shape, std):
        return torch.randn(*shape, generator=g) * std

    def gain(n):
        # Stored as an offset from one.
        return rnd(n, std=0.2)

    W = {"model.embed_tokens.weight": rnd(V, D, std=1 / math.sqrt(D)), "model.norm.weight": gain(D)}
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}"
        for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            W[f"{p}.{norm}.weight"] = gain(D)
        W[f"{p}.self_attn.q_norm.weight"] = gain(Dh)
        W[f"{p}.self_attn.k_norm.weight"] = gain(Dh)
        for name, out_dim in (("q_proj", H * Dh), ("k_proj", KV * Dh), ("v_proj", KV * Dh)):
            W[f"{p}.self_attn.{name}.weight"] = rnd(out_dim, D, std=1.5 / math.sqrt(D))
        W[f"{p}.self_attn.o_proj.weight"] = rnd(D, H * Dh, std=1 / math.sqrt(H * Dh))
        W[f"{p}.mlp.gate_proj.weight"] = rnd(M, D, std=1 / math.sqrt(D))
        W[f"{p}.mlp.up_proj.weight"] = rnd(M, D, std=1 / math.sqrt(D))
        W[f"{p}.mlp.down_proj.weight"] = rnd(D, M, std=1 / math.sqrt(M))
    return W


# ---------------------------------------------------------------------------------------------
# A Gemma-style tokenizer: spaces become ▁ in the normalizer, no pre-tokenizer, no dummy prefix.

GEMMA_SPECIALS = {"<unk>": "<unk>", "<s>": "<bos>", "</s>": "<eos>"}


def gemma_vocab():
    vocab, merges = train_bpe(CORPUS, 120)
    return {GEMMA_SPECIALS.get(t, t): i for t, i in vocab.items()}, merges


def gemma_tokenizer_json(vocab, merges):
    special = lambda tok: {"id": vocab[tok], "content": tok, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}  # noqa: E731
    single = [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(t) for t in ("<unk>", "<bos>", "<eos>")],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing", "single": single, "pair": single + [{"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [vocab["<bos>"]], "tokens": ["<bos>"]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        ]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges],
        },
    }


GEMMA_HOOKS = HOOKS + [
    "blocks.0.ln1_post.hook_normalized", "blocks.1.ln2_post.hook_normalized", "blocks.2.attn.hook_pattern",
    "blocks.2.attn.hook_attn_scores", "blocks.2.hook_resid_post",
    "blocks.0.ln1_post.hook_scale", "blocks.2.ln2_post.hook_scale", "blocks.2.ln1.hook_scale", "blocks.2.attn.hook_rot_k",
]


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    vocab, merges = gemma_vocab()
    # Longer than the window (4), so sliding layers drop keys that global ones see.
    texts = ["Mia and Leo went to the river with the ball.", "Café 😀 naïve  x", "3 + 4 = 7 and the dog slept"]
    prompts = [{"text": t, "tokens": [vocab["<bos>"]] + bpe_encode(t, vocab, merges, prepend_space=False)} for t in texts]
    cfg = {
        "model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"],
        "vocab_size": len(vocab), "hidden_size": 40, "intermediate_size": 96, "num_hidden_layers": 3,
        # head_dim 16 with 4 heads (64 > hidden 40), 2 key/value heads; query_pre_attn_scalar apart from head_dim.
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "query_pre_attn_scalar": 24,
        "max_position_embeddings": 128, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 2.0},
        "sliding_window": 4, "layer_types": ["sliding_attention", "full_attention", "sliding_attention"],
        "hidden_activation": "gelu_pytorch_tanh", "final_logit_softcapping": 8.0, "attn_logit_softcapping": 20.0,
        "tie_word_embeddings": True, "bos_token_id": vocab["<bos>"], "eos_token_id": vocab["<eos>"], "pad_token_id": 0,
    }
    write_fixture("tiny-gemma3", cfg, random_weights(cfg, seed=270), gemma_tokenizer_json(vocab, merges), prompts, new_tokens=12, model_class=Gemma3, hooks=GEMMA_HOOKS)
    print("torch", torch.__version__)


if __name__ == "__main__":
    main()
