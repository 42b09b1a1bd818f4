"""Writes small random SAEs in SAELens's on-disk layout for the tiny test GPT-2, and the feature
activations this script computes for them, so Loupe's SAE code is checked against a second
implementation.

    /usr/bin/python3 bench/sae/make_saelens_fixture.py

Dev-time only (Debian's python3-torch; no sae_lens needed). The maths follows SAELens's inference
classes (read, not imported): sae_in = x, normalised when the config asks, minus b_dec when
apply_b_dec_to_input; hidden_pre = sae_in @ W_enc + b_enc; then
  standard: relu(hidden_pre)
  topk:     the k largest of hidden_pre, relu'd, the rest zero
  jumprelu: relu(hidden_pre) * (hidden_pre > threshold)
and decode = feature_acts @ W_dec + b_dec, un-normalised.

Outputs test/fixtures/sae/<name>/{cfg.json, sae_weights.safetensors} and test/fixtures/sae/reference.json:
  relu          pre-6.0 flat config (hook_name, hook_layer, activation_fn_str) with apply_b_dec_to_input
  topk          pre-6.0 flat config with activation_fn_str "topk" and activation_fn_kwargs {k}; BF16 weights
  jumprelu      6.x config (architecture on top, hook_name under metadata) with a threshold tensor
  relu-rescale  6.x standard SAE with normalize_activations "constant_norm_rescale"
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torch"))
from gpt2_torch import GPT2, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures")
MODEL = os.path.join(ROOT, "tiny-gpt2")
OUT = os.path.join(ROOT, "sae")
HOOK = "blocks.0.hook_resid_post"
D_IN, D_SAE, K = 32, 48, 6
# Pre-activations must sit this far from every decision boundary (top-k cut, threshold), so that
# float differences between two implementations cannot flip which features fire.
MARGIN = 2e-3


def flat(t):
    return [float(f"{v:.8g}") for v in t.flatten().tolist()]


def residual(model, ids):
    got = {}
    handle = model.hook_points()[HOOK].register_forward_hook(lambda m, i, o: got.__setitem__("x", o.detach().clone()))
    model(torch.tensor([ids]))
    handle.remove()
    return got["x"][0]


def encode(W, cfg, x):
    """Feature activations and the per-token normalisation coefficient (1 when none)."""
    coeff = torch.ones(x.shape[0], 1)
    if cfg["normalize_activations"] == "constant_norm_rescale":
        coeff = (cfg["d_in"] ** 0.5) / x.norm(dim=-1, keepdim=True)
    sae_in = x * coeff
    if cfg["apply_b_dec_to_input"]:
        sae_in = sae_in - W["b_dec"]
    pre = sae_in @ W["W_enc"] + W["b_enc"]
    arch = cfg["architecture"]
    if arch == "standard":
        acts = pre.relu()
    elif arch == "topk":
        values, indices = pre.topk(cfg["k"], dim=-1)
        acts = torch.zeros_like(pre).scatter(-1, indices, values.relu())
    elif arch == "jumprelu":
        acts = pre.relu() * (pre > W["threshold"]).float()
    else:
        raise ValueError(arch)
    return pre, acts, coeff


def decode(W, acts, coeff):
    return (acts @ W["W_dec"] + W["b_dec"]) / coeff


def margin_ok(W, cfg, x):
    pre, _, _ = encode(W, cfg, x)
    if cfg["architecture"] == "topk":
        top = pre.topk(cfg["k"] + 1, dim=-1).values
        return bool(((top[:, -2] - top[:, -1]).min() > MARGIN) and (top[:, -2].abs().min() > MARGIN))
    if cfg["architecture"] == "jumprelu":
        return bool((pre - W["threshold"]).abs().min() > MARGIN)
    return bool(pre.abs().min() > MARGIN)


def random_weights(g, x, threshold=False):
    """Encoder scaled so pre-activations are O(1) on this model's residual stream; unit decoder rows."""
    scale = x.pow(2).mean().sqrt().item() * D_IN ** 0.5
    W_dec = torch.randn(D_SAE, D_IN, generator=g)
    W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True)
    W = {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g) / scale * 2.0,
        "b_enc": torch.randn(D_SAE, generator=g) * 0.3 - 0.2,
        "W_dec": W_dec * x.norm(dim=-1).mean().item() * 0.3,
        "b_dec": torch.randn(D_IN, generator=g) * x.std().item() * 0.2,
    }
    if threshold:
        W["threshold"] = torch.rand(D_SAE, generator=g) * 0.8 + 0.05
    return W


def rounded(W, dtype):
    return {name: t.to(dtype).float() for name, t in W.items()}


def flat_config(architecture_fields):
    """A pre-6.0 SAELens cfg.json: everything at top level, hook_layer, activation_fn_str."""
    cfg = {
        "model_name": "tiny-gpt2", "model_class_name": "HookedTransformer",
        "hook_name": HOOK, "hook_eval": "NOT_IN_USE", "hook_layer": 0, "hook_head_index": None,
        "dataset_path": "synthetic", "context_size": 64, "d_in": D_IN, "d_sae": D_SAE,
        "b_dec_init_method": "geometric_median", "apply_b_dec_to_input": True,
        "finetuning_scaling_factor": False, "normalize_activations": "none",
        "dtype": "float32", "device": "cpu", "sae_lens_training_version": "3.13.0", "prepend_bos": False,
    }
    cfg.update(architecture_fields)
    return cfg


def v6_config(architecture, **fields):
    """A 6.x SAELens cfg.json: architecture and maths at top level, model facts under metadata."""
    cfg = {
        "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {
            "model_name": "tiny-gpt2", "hook_name": HOOK, "hook_head_index": None, "prepend_bos": False,
            "context_size": 64, "dataset_path": "synthetic", "sae_lens_version": "6.5.1",
            "sae_lens_training_version": "6.5.1",
        },
        "architecture": architecture,
    }
    cfg.update(fields)
    return cfg


def maths_config(cfg):
    """The fields encode() needs, whichever layout the cfg.json uses."""
    arch = cfg.get("architecture", "standard")
    k = cfg.get("k")
    if cfg.get("activation_fn_str") == "topk":
        arch, k = "topk", cfg["activation_fn_kwargs"]["k"]
    return {"architecture": arch, "k": k, "d_in": cfg["d_in"], "apply_b_dec_to_input": cfg["apply_b_dec_to_input"],
            "normalize_activations": cfg["normalize_activations"]}


def main():
    model = GPT2.load(MODEL)
    ids = torch.randint(0, 319, (8,), generator=torch.Generator().manual_seed(11)).tolist()
    with torch.no_grad():
        x = residual(model, ids)
        specs = [
            ("relu", flat_config({"architecture": "standard", "activation_fn_str": "relu", "activation_fn_kwargs": {}}), "F32", False),
            ("topk", flat_config({"activation_fn_str": "topk", "activation_fn_kwargs": {"k": K}, "apply_b_dec_to_input": False}), "BF16", False),
            ("jumprelu", v6_config("jumprelu"), "F32", True),
            ("relu-rescale", v6_config("standard", normalize_activations="constant_norm_rescale"), "F32", False),
        ]
        reference = {"model": "tiny-gpt2", "hook_name": HOOK, "tokens": ids, "resid": flat(x), "saes": {}}
        for seed, (name, cfg, dtype, threshold) in enumerate(specs):
            maths = maths_config(cfg)
            g = torch.Generator().manual_seed(100 + seed)
            for _ in range(200):
                W = rounded(random_weights(g, x, threshold), torch.bfloat16 if dtype == "BF16" else torch.float32)
                if margin_ok(W, maths, x):
                    break
            else:
                raise RuntimeError(f"{name}: no random SAE kept every pre-activation {MARGIN} from its boundary")
            folder = os.path.join(OUT, name)
            os.makedirs(folder, exist_ok=True)
            write_safetensors(os.path.join(folder, "sae_weights.safetensors"), W, dtype)
            with open(os.path.join(folder, "cfg.json"), "w") as f:
                json.dump(cfg, f, indent=2)
            _, acts, coeff = encode(W, maths, x)
            reference["saes"][name] = {
                "architecture": maths["architecture"],
                "feature_acts": flat(acts),
                "reconstruction": flat(decode(W, acts, coeff)),
                "l0": flat((acts > 0).float().sum(-1)),
            }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(reference, f)
    print("wrote", ", ".join(n for n, *_ in specs), "under", os.path.abspath(OUT), "torch", torch.__version__)


if __name__ == "__main__":
    main()
