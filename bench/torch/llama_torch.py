"""An independent PyTorch Llama-family model, and the tiny Llama/Qwen2 fixtures Loupe's parity tests read.

    /usr/bin/python3 bench/torch/llama_torch.py

Dev-time only (Debian's python3-torch; transformers is not used). Writes
  test/fixtures/tiny-llama/  config.json, model.safetensors, tokenizer.json, reference.json
      Llama: grouped-query attention (4 query heads, 2 key/value heads), rotary with "llama3" rope
      scaling (all three frequency bands in use), untied lm_head, SentencePiece-style BPE tokenizer
      (Metaspace, byte fallback) trained here.
  test/fixtures/tiny-qwen2/  the same files for a Qwen2-style model: q/k/v bias, one key/value head,
      "linear" rope scaling, tied embeddings, and tiny-gpt2's byte-level tokenizer.
reference.json holds each prompt's tokens, logits and a few hooks (hook_k and hook_v also ungrouped),
greedy continuations, and two interventions (a vector added at one hook and position; one
key/value head scaled) with their logits.

The model follows HF's Llama layout (weights named model.layers.L.self_attn.q_proj.weight, [out, in];
rotary on the two halves of each head) but is written from the equations, not from transformers.
"""
import json
import math
import os
import shutil
import sys
from collections import Counter

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gpt2_torch import read_safetensors, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures")
SPACE = "\u2581"


# ---------------------------------------------------------------------------------------------
# The model


def inverse_frequencies(cfg):
    """One rotation speed per pair of dimensions (i, i + d/2) for the config's rope_theta and rope_scaling, in float64."""
    return rope_inverse_frequencies(cfg.get("rope_theta", 10000.0), cfg["head_dim"], cfg.get("rope_scaling"))


def rope_inverse_frequencies(theta, d, scaling=None):
    """One rotation speed per pair of dimensions (i, i + d/2), after rope scaling (linear or llama3), in float64."""
    scaling = scaling or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    out = []
    for i in range(d // 2):
        f = theta ** (-(2.0 * i) / d)
        if kind == "linear":
            f = f / scaling["factor"]
        elif kind == "llama3":
            period = 2 * math.pi / f
            old = scaling["original_max_position_embeddings"]
            lo, hi, factor = scaling["low_freq_factor"], scaling["high_freq_factor"], scaling["factor"]
            if period > old / lo:
                f = f / factor
            elif period >= old / hi:
                t = (old / period - lo) / (hi - lo)
                f = t * f + (1 - t) * f / factor
        elif kind != "default":
            raise ValueError(kind)
        out.append(f)
    return torch.tensor(out, dtype=torch.float64)


def rms_norm(x, weight, eps, record=None, name=None, scale_name=None, gain_offset=0.0):
    """x / scale * (gain_offset + weight) in float32, returned in x's dtype; scale = sqrt(mean(x^2) + eps)
    (TransformerLens's hook_scale) and x / scale (hook_normalized) recorded when named. Gemma stores its
    gain as an offset from 1 (gain_offset=1)."""
    x32 = x.float()
    scale = torch.sqrt((x32 * x32).mean(dim=-1, keepdim=True) + eps)
    if record is not None and scale_name is not None:
        scale = record(scale_name, scale)
    normalized = x32 / scale
    if record is not None and name is not None:
        normalized = record(name, normalized)
    gain = weight.float() + gain_offset if gain_offset else weight.float()
    return (normalized * gain).type_as(x)


def rotate(x, c, s):
    """Rotate each pair (x[i], x[i + d/2]) of every head by the angle whose cos and sin are c, s [T, d/2]. x: [B, T, H, D]."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    c, s = c[None, :, None, :], s[None, :, None, :]
    return torch.cat([a * c - b * s, a * s + b * c], dim=-1)


class Llama:
    def __init__(self, weights, cfg):
        self.W = {k.removeprefix("model."): v for k, v in weights.items()}
        self.cfg = cfg
        self.inv_freq = inverse_frequencies(cfg).float()

    def linear(self, x, name, bias):
        y = x @ self.W[name + ".weight"].T
        return y + self.W[name + ".bias"] if bias else y

    def forward(self, ids, edits=None, past=None, ungroup=False, keep=None):
        """ids: [B, T]. edits: {hook name: fn(x) -> x}. Returns logits and every hook's value.

        hook_k and hook_v hold one slot per key/value head [B, T, KV, Dh], repeated for each query head
        after the hook (TransformerLens's default); ungroup=True repeats them before the hook instead
        (TransformerLens's ungroup_grouped_query_attention).

        keep: which hooks the cache holds (default every one).
        past: keys (after rotary) and values [B, P, H, Dh] of P earlier tokens per layer, or None; the
        cache then also holds "present", the same for all P + T tokens (generation's key/value cache).
        """
        cfg, W = self.cfg, self.W
        H, KV, Dh = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        qwen = cfg["model_type"] == "qwen2"
        qkv_bias = qwen or cfg.get("attention_bias", False)
        out_bias = (not qwen) and cfg.get("attention_bias", False)
        eps = cfg["rms_norm_eps"]
        cache = {}

        def record(name, x):
            if edits and name in edits:
                x = edits[name](x)
            if keep is None or keep(name):
                cache[name] = x
            return x

        B, T = ids.shape
        P = 0 if past is None else past[0][0].shape[1]
        angles = torch.arange(P, P + T, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        cos, sin = torch.cos(angles), torch.sin(angles)
        # New token i sits at position P + i and sees keys 0 .. P + i.
        allowed = torch.arange(P + T)[None, :] <= torch.arange(P, P + T)[:, None]
        present = []
        resid = record("hook_embed", W["embed_tokens.weight"][ids])
        for L in range(cfg["num_hidden_layers"]):
            p = f"layers.{L}"
            resid = record(f"blocks.{L}.hook_resid_pre", resid)
            x = rms_norm(resid, W[f"{p}.input_layernorm.weight"], eps, record, scale_name=f"blocks.{L}.ln1.hook_scale")
            q = self.linear(x, f"{p}.self_attn.q_proj", qkv_bias).view(B, T, H, Dh)
            k = self.linear(x, f"{p}.self_attn.k_proj", qkv_bias).view(B, T, KV, Dh)
            v = self.linear(x, f"{p}.self_attn.v_proj", qkv_bias).view(B, T, KV, Dh)
            # Each query head h reads key/value head h // (H / KV).
            if ungroup:
                k = k.repeat_interleave(H // KV, dim=2)
                v = v.repeat_interleave(H // KV, dim=2)
            q = record(f"blocks.{L}.attn.hook_q", q)
            k = record(f"blocks.{L}.attn.hook_k", k)
            v = record(f"blocks.{L}.attn.hook_v", v)
            if cfg["model_type"] == "qwen3":
                # Qwen3: each head's query and key RMS-normalised over d_head (gain [d_head]) before rotary.
                q = rms_norm(q, W[f"{p}.self_attn.q_norm.weight"], eps)
                k = rms_norm(k, W[f"{p}.self_attn.k_norm.weight"], eps)
            # Per-head norm and rotation act on each head alone: rot_k keeps hook_k's key/value heads.
            qr = record(f"blocks.{L}.attn.hook_rot_q", rotate(q, cos, sin))
            kr = record(f"blocks.{L}.attn.hook_rot_k", rotate(k, cos, sin))
            if not ungroup:
                kr = kr.repeat_interleave(H // KV, dim=2)
                v = v.repeat_interleave(H // KV, dim=2)
            if past is not None:
                kr = torch.cat([past[L][0], kr], dim=1)
                v = torch.cat([past[L][1], v], dim=1)
            present.append((kr, v))
            scores = torch.einsum("bqhd,bkhd->bhqk", qr, kr) / math.sqrt(Dh)
            scores = record(f"blocks.{L}.attn.hook_attn_scores", scores.masked_fill(~allowed, -1e9))
            pattern = record(f"blocks.{L}.attn.hook_pattern", torch.softmax(scores, dim=-1))
            z = record(f"blocks.{L}.attn.hook_z", torch.einsum("bhqk,bkhd->bqhd", pattern, v))
            attn_out = record(f"blocks.{L}.hook_attn_out", self.linear(z.reshape(B, T, H * Dh), f"{p}.self_attn.o_proj", out_bias))
            resid = record(f"blocks.{L}.hook_resid_mid", resid + attn_out)
            y = rms_norm(resid, W[f"{p}.post_attention_layernorm.weight"], eps, record, scale_name=f"blocks.{L}.ln2.hook_scale")
            mlp_bias = cfg.get("mlp_bias", False)
            gate = record(f"blocks.{L}.mlp.hook_pre", self.linear(y, f"{p}.mlp.gate_proj", mlp_bias))
            up = self.linear(y, f"{p}.mlp.up_proj", mlp_bias)
            post = record(f"blocks.{L}.mlp.hook_post", gate * torch.sigmoid(gate) * up)
            mlp_out = record(f"blocks.{L}.hook_mlp_out", self.linear(post, f"{p}.mlp.down_proj", mlp_bias))
            resid = record(f"blocks.{L}.hook_resid_post", resid + mlp_out)
        final = rms_norm(resid, W["norm.weight"], eps, record, "ln_final.hook_normalized", "ln_final.hook_scale")
        unembed = W["embed_tokens.weight"] if cfg.get("tie_word_embeddings") else self.W["lm_head.weight"]
        cache["present"] = present
        return final @ unembed.T, cache

    def generate_cached(self, ids, n):
        """n greedy tokens with a key/value cache: the prompt once, then one token a step."""
        logits, cache = self.forward(torch.tensor([ids]))
        out = []
        for _ in range(n):
            out.append(int(logits[0, -1].argmax()))
            logits, cache = self.forward(torch.tensor([out[-1:]]), past=cache["present"])
        return out

    def greedy(self, ids, n):
        """n greedy tokens, rerunning the whole sequence each step; also the smallest top-1 margin seen."""
        ids = list(ids)
        margin = float("inf")
        for _ in range(n):
            logits, _ = self.forward(torch.tensor([ids]))
            top2 = torch.topk(logits[0, -1], 2).values
            margin = min(margin, float(top2[0] - top2[1]))
            ids.append(int(logits[0, -1].argmax()))
        return ids[-n:], margin


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    D, H, KV, Dh, M, V = (cfg[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size"))
    qwen = cfg["model_type"] == "qwen2"

    def rnd(*shape, std):
        return torch.randn(*shape, generator=g) * std

    def gain(n):
        return 1 + rnd(n, std=0.2)

    W = {"model.embed_tokens.weight": rnd(V, D, std=1.0), "model.norm.weight": gain(D)}
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}"
        if cfg["model_type"] == "qwen3":
            W[f"{p}.self_attn.q_norm.weight"] = gain(Dh)
            W[f"{p}.self_attn.k_norm.weight"] = gain(Dh)
        W[f"{p}.input_layernorm.weight"] = gain(D)
        W[f"{p}.post_attention_layernorm.weight"] = gain(D)
        for name, out_dim in (("q_proj", H * Dh), ("k_proj", KV * Dh), ("v_proj", KV * Dh)):
            W[f"{p}.self_attn.{name}.weight"] = rnd(out_dim, D, std=1.5 / math.sqrt(D))
            if qwen:
                W[f"{p}.self_attn.{name}.bias"] = rnd(out_dim, std=0.3)
        W[f"{p}.self_attn.o_proj.weight"] = rnd(D, H * Dh, std=1 / math.sqrt(H * Dh))
        W[f"{p}.mlp.gate_proj.weight"] = rnd(M, D, std=1 / math.sqrt(D))
        W[f"{p}.mlp.up_proj.weight"] = rnd(M, D, std=1 / math.sqrt(D))
        W[f"{p}.mlp.down_proj.weight"] = rnd(D, M, std=1 / math.sqrt(M))
    if not cfg.get("tie_word_embeddings"):
        W["lm_head.weight"] = rnd(V, D, std=1 / math.sqrt(D))
    return W


# ---------------------------------------------------------------------------------------------
# A SentencePiece-style BPE tokenizer (Metaspace "▁", byte fallback), trained and applied here

CORPUS = """Once upon a time there was a little girl named Mia. She liked to play in the garden with her brother Leo.
One day they found a small red ball under the old tree. Mia said, "Look, a ball!" Leo laughed and threw it high.
The ball rolled into the river and the children ran after it. Their mother called them home for dinner.
When Mia and Leo went to the store, Leo gave a drink to Mia. The cat sat on the mat and the dog slept.
There are 3 apples and 4 pears; 3 + 4 = 7. It was not a sunny day, but they were happy anyway."""

SPECIALS = ["<unk>", "<s>", "</s>"]


def byte_token(b):
    return f"<0x{b:02X}>"


def pieces_of(text):
    """Training units: the text with spaces as ▁ and a ▁ in front, cut before every ▁."""
    s = SPACE + text.replace(" ", SPACE)
    out, cur = [], ""
    for ch in s:
        if ch == SPACE and cur:
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return out


def train_bpe(corpus, n_merges):
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for b in range(256):
        vocab[byte_token(b)] = len(vocab)
    words = Counter(p for line in corpus.splitlines() for p in pieces_of(line))
    for ch in sorted({c for w in words for c in w}):
        vocab.setdefault(ch, len(vocab))
    split = {w: list(w) for w in words}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, n in words.items():
            s = split[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        # Most frequent pair; ties go to the smaller pair, so training is deterministic.
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if pairs[best] < 2:
            break
        merges.append(best)
        vocab.setdefault(best[0] + best[1], len(vocab))
        for w in words:
            s, out, i = split[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            split[w] = out
    return vocab, merges


def bpe_encode(text, vocab, merges, prepend_space=True):
    """Token ids as HF's BPE with this tokenizer.json gives them (spaces as ▁, one ▁ prepended unless
    prepend_space is False as in Gemma's, merges by rank, byte fallback)."""
    rank = {m: i for i, m in enumerate(merges)}
    s = text.replace(" ", SPACE)
    if prepend_space and not s.startswith(SPACE):
        s = SPACE + s
    symbols = list(s)
    while True:
        ranked = [(rank[(a, b)], i) for i, (a, b) in enumerate(zip(symbols, symbols[1:])) if (a, b) in rank]
        if not ranked:
            break
        _, i = min(ranked)
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    ids = []
    for sym in symbols:
        if sym in vocab:
            ids.append(vocab[sym])
        else:
            ids.extend(vocab[byte_token(b)] for b in sym.encode("utf-8"))
    return ids


def tokenizer_json(vocab, merges):
    special = lambda tok: {"id": vocab[tok], "content": tok, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}  # noqa: E731
    single = [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(t) for t in SPECIALS],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "first", "split": False},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": single,
            "pair": single + [{"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [vocab["<s>"]], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges],
        },
    }


# ---------------------------------------------------------------------------------------------
# Fixtures


def flat(t):
    return [float(f"{v:.7g}") for v in t.flatten().tolist()]


HOOKS = [
    "hook_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v",
    "blocks.0.attn.hook_attn_scores", "blocks.1.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.hook_attn_out",
    "blocks.0.hook_resid_mid", "blocks.1.mlp.hook_pre", "blocks.1.mlp.hook_post", "blocks.1.hook_mlp_out",
    "blocks.1.hook_resid_post", "ln_final.hook_normalized",
    # RMSNorm scales [B, T, 1] and the rotated queries and keys (TransformerLens's names).
    "blocks.0.ln1.hook_scale", "blocks.1.ln2.hook_scale", "ln_final.hook_scale", "blocks.1.attn.hook_rot_q", "blocks.1.attn.hook_rot_k",
]
# Hooks with one slot per key/value head (TransformerLens's default), recorded ungrouped too.
KEY_VALUE_SUFFIXES = ("attn.hook_k", "attn.hook_v", "attn.hook_rot_k")


def write_fixture(name, cfg, weights, tokenizer, prompts, new_tokens=12, model_class=None, hooks=None):
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(folder, "model.safetensors"), weights, "F32")
    if isinstance(tokenizer, str):
        shutil.copy(tokenizer, os.path.join(folder, "tokenizer.json"))
    else:
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer, f, ensure_ascii=False)
    # Read the weights back, so the reference runs on exactly what the file holds.
    model = (model_class or Llama)(read_safetensors(os.path.join(folder, "model.safetensors")), cfg)
    hooks_recorded = hooks or HOOKS
    reference = {"config": cfg, "prompts": [], "generations": [], "intervention": None}
    with torch.no_grad():
        for i, prompt in enumerate(prompts):
            ids = prompt["tokens"]
            logits, cache = model.forward(torch.tensor([ids]))
            # Hooks on the last prompt only, to keep the fixture small.
            hooks = {h: {"shape": list(cache[h].shape), "data": flat(cache[h])} for h in hooks_recorded} if i == len(prompts) - 1 else {}
            entry = {**prompt, "logits": flat(logits[0]), "hooks": hooks}
            if hooks:
                _, ungrouped = model.forward(torch.tensor([ids]), ungroup=True)
                entry["ungrouped_hooks"] = {h: {"shape": list(ungrouped[h].shape), "data": flat(ungrouped[h])} for h in hooks_recorded if h.endswith(KEY_VALUE_SUFFIXES)}
            reference["prompts"].append(entry)
        for prompt in prompts:
            tokens, margin = model.greedy(prompt["tokens"], new_tokens)
            # A near tie could flip under float rounding; the fixture would then test nothing stable.
            assert margin > 1e-3, f"greedy top-2 margin {margin} too small on {prompt}"
            reference["generations"].append({"tokens": prompt["tokens"], "greedy": tokens, "min_margin": margin})
            assert model.generate_cached(prompt["tokens"], new_tokens) == tokens, "the key/value cache changes greedy tokens"
        # An edit: add a fixed vector to blocks.0.hook_resid_mid at position 2.
        ids = prompts[0]["tokens"]
        vector = torch.linspace(-1, 1, cfg["hidden_size"])
        hook, pos = "blocks.0.hook_resid_mid", 2

        def add(x):
            x = x.clone()
            x[:, pos] += vector
            return x

        edited, _ = model.forward(torch.tensor([ids]), {hook: add})
        reference["intervention"] = {"tokens": ids, "hook": hook, "position": pos, "vector": flat(vector), "logits": flat(edited[0])}
        # Another: scale the last key/value head's values at positions 1 and 3 (every query head of its group reads them).
        head, positions, factor = cfg["num_key_value_heads"] - 1, [1, 3], 0.25
        kv_hook = "blocks.0.attn.hook_v"

        def scale_head(x):
            x = x.clone()
            x[:, positions, head] *= factor
            return x

        edited, _ = model.forward(torch.tensor([ids]), {kv_hook: scale_head})
        reference["key_value_intervention"] = {"tokens": ids, "hook": kv_hook, "head": head, "positions": positions, "factor": factor, "logits": flat(edited[0])}
        # And one on a norm's scale [B, T, 1] (hook_scale): doubling blocks.0.ln1's at positions 1 and 2 halves what attention reads there.
        scale_hook, scale_positions, scale_factor = "blocks.0.ln1.hook_scale", [1, 2], 2.0

        def scale_norm(x):
            x = x.clone()
            x[:, scale_positions] *= scale_factor
            return x

        edited, _ = model.forward(torch.tensor([ids]), {scale_hook: scale_norm})
        reference["scale_intervention"] = {"tokens": ids, "hook": scale_hook, "positions": scale_positions, "factor": scale_factor, "logits": flat(edited[0])}
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(reference, f)
    size = sum(os.path.getsize(os.path.join(folder, x)) for x in os.listdir(folder))
    print(f"{name}: {sum(v.numel() for v in weights.values())} parameters, {size // 1024} KB on disk")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)

    vocab, merges = train_bpe(CORPUS, 120)
    texts = ["Mia and Leo went to the river.", "Café 😀 naïve  x", "3 + 4 = 7"]
    prompts = [{"text": t, "tokens": [vocab["<s>"]] + bpe_encode(t, vocab, merges)} for t in texts]
    llama = {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"],
        "vocab_size": len(vocab), "hidden_size": 48, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 12, "max_position_embeddings": 64,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        # original context 32: periods under 8 are kept, over 32 slowed 4x, between blended.
        "rope_scaling": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
        "bos_token_id": vocab["<s>"], "eos_token_id": vocab["</s>"],
    }
    write_fixture("tiny-llama", llama, random_weights(llama, seed=2024), tokenizer_json(vocab, merges), prompts)

    gpt2_tokenizer = os.path.join(ROOT, "tiny-gpt2", "tokenizer.json")
    g = torch.Generator().manual_seed(11)
    qwen_prompts = [{"tokens": torch.randint(0, 319, (n,), generator=g).tolist()} for n in (9, 5)]
    qwen = {
        "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"],
        "vocab_size": 320, "hidden_size": 32, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 8, "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_scaling": {"type": "linear", "factor": 2.0},
        "hidden_act": "silu", "tie_word_embeddings": True, "use_sliding_window": False,
        "bos_token_id": 319, "eos_token_id": 319,
    }
    write_fixture("tiny-qwen2", qwen, random_weights(qwen, seed=77), gpt2_tokenizer, qwen_prompts)
    qwen3 = {
        "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"],
        "vocab_size": 320, "hidden_size": 32, "intermediate_size": 80, "num_hidden_layers": 2,
        # head_dim 16 with 4 heads: q_proj is wider than hidden_size, as in Qwen3-0.6B (16 x 128 vs 1024).
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_scaling": None, "attention_bias": False,
        "hidden_act": "silu", "tie_word_embeddings": False, "use_sliding_window": False,
        "bos_token_id": 319, "eos_token_id": 319,
    }
    write_fixture("tiny-qwen3", qwen3, random_weights(qwen3, seed=303), gpt2_tokenizer, qwen_prompts)
    print("torch", torch.__version__)


if __name__ == "__main__":
    main()
