"""Writes published-dictionary fixtures for the tiny test GPT-2, each in its publisher's layout, and
the feature activations PyTorch computes for them, so Loupe's loaders and encoders are checked
against a second implementation.

    /usr/bin/python3 bench/sae/make_published_fixtures.py

Dev-time only (Debian's python3-torch and numpy). Outputs under test/fixtures/sae-published/:
  gemma-scope-npz/params.npz         Gemma Scope 1 layout, np.savez_compressed (deflated), float32
  gemma-scope-npz-f16/params.npz     the same layout stored (np.savez), float16
  hub/                               a Hugging Face cache holding two releases' files:
    models--jbloom--GPT2-Small-SAEs-Reformatted/…/blocks.1.hook_resid_pre/{cfg.json, sae_weights.safetensors}
        gpt2-small-res-jb's layout; a ReLU SAE "trained" on the TransformerLens-processed model
        (fold_ln + center_writing_weights), whose activations this script computes by processing
        the weights in PyTorch and running the processed model
    models--google--gemma-scope-2-270m-pt/…/resid_post/layer_0_width_16k_l0_small/params.safetensors
        Gemma Scope 2's layout (lower-case w_enc, w_dec) on blocks.0.hook_resid_post
  reference.json                     tokens, hook activations (raw and processed) and feature acts

It also checks the claim Loupe's processing.ts relies on: after fold_ln + center_writing_weights,
residual hooks equal the raw model's minus their mean over d_model, and hook_q / mlp.hook_pre are
unchanged; the largest differences are printed.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torch"))
from gpt2_torch import GPT2, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures")
MODEL = os.path.join(ROOT, "tiny-gpt2")
OUT = os.path.join(ROOT, "sae-published")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
D_SAE = 48
MARGIN = 2e-3
CHECKED_HOOKS = ["blocks.1.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out", "blocks.0.hook_attn_out",
                 "blocks.1.hook_resid_post", "blocks.0.attn.hook_q", "blocks.0.mlp.hook_pre", "blocks.1.mlp.hook_post"]


def flat(t):
    return [float(f"{v:.8g}") for v in t.flatten().tolist()]


def run_hooks(model, ids, names):
    got = {}
    points = model.hook_points()
    handles = [points[n].register_forward_hook(lambda m, i, o, n=n: got.__setitem__(n, o.detach().clone())) for n in names]
    model(torch.tensor([ids]))
    for h in handles:
        h.remove()
    return {n: got[n][0].reshape(len(ids), -1) for n in names}


def processed_weights(W, cfg):
    """TransformerLens's fold_ln (ln_1, ln_2 into the next matmul) and center_writing_weights."""
    W = {k: v.clone() for k, v in W.items()}
    for L in range(cfg["n_layer"]):
        p = f"h.{L}."
        for ln, linear in (("ln_1", "attn.c_attn"), ("ln_2", "mlp.c_fc")):
            w, b = W[p + ln + ".weight"], W[p + ln + ".bias"]
            # Conv1D weights are [in, out]: y = ln(x) @ Wt + bt with ln(x) = n*w + b.
            W[p + linear + ".bias"] = W[p + linear + ".bias"] + b @ W[p + linear + ".weight"]
            W[p + linear + ".weight"] = w[:, None] * W[p + linear + ".weight"]
            W[p + ln + ".weight"] = torch.ones_like(w)
            W[p + ln + ".bias"] = torch.zeros_like(b)
        for writer in ("attn.c_proj", "mlp.c_proj"):
            W[p + writer + ".weight"] = W[p + writer + ".weight"] - W[p + writer + ".weight"].mean(-1, keepdim=True)
            W[p + writer + ".bias"] = W[p + writer + ".bias"] - W[p + writer + ".bias"].mean()
    for emb in ("wte.weight", "wpe.weight"):
        W[emb] = W[emb] - W[emb].mean(-1, keepdim=True)
    return W


def encode(W, x, architecture, apply_b_dec):
    sae_in = x - W["b_dec"] if apply_b_dec else x
    pre = sae_in @ W["W_enc"] + W["b_enc"]
    if architecture == "jumprelu":
        return pre, pre.relu() * (pre > W["threshold"]).float()
    return pre, pre.relu()


def random_sae(g, x, jumprelu, dtype=torch.float32):
    d_in = x.shape[1]
    scale = x.pow(2).mean().sqrt().item() * d_in ** 0.5
    W = {
        "W_enc": torch.randn(d_in, D_SAE, generator=g) / scale * 2.0,
        "b_enc": torch.randn(D_SAE, generator=g) * 0.3 - 0.2,
        "W_dec": torch.randn(D_SAE, d_in, generator=g) * 0.1,
        "b_dec": torch.randn(d_in, generator=g) * x.std().item() * 0.2,
    }
    if jumprelu:
        W["threshold"] = torch.rand(D_SAE, generator=g) * 0.8 + 0.05
    return {k: v.to(dtype).float() for k, v in W.items()}


def kept_from_boundaries(W, x, architecture, apply_b_dec):
    pre, _ = encode(W, x, architecture, apply_b_dec)
    edge = pre - W["threshold"] if architecture == "jumprelu" else pre
    return bool(edge.abs().min() > MARGIN)


def pick(seed, x, architecture, apply_b_dec, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    for _ in range(500):
        W = random_sae(g, x, architecture == "jumprelu", dtype)
        if kept_from_boundaries(W, x, architecture, apply_b_dec):
            return W
    raise RuntimeError(f"seed {seed}: no random SAE kept its pre-activations {MARGIN} from the boundary")


def main():
    model = GPT2.load(MODEL)
    ids = torch.randint(0, 319, (10,), generator=torch.Generator().manual_seed(23)).tolist()
    reference = {"model": "tiny-gpt2", "tokens": ids, "saes": {}, "processing_check": {}}
    with torch.no_grad():
        raw = run_hooks(model, ids, CHECKED_HOOKS + ["blocks.0.hook_resid_post"])
        processed = run_hooks(GPT2(processed_weights(model.W, model.cfg), model.cfg), ids, CHECKED_HOOKS)
        for name in CHECKED_HOOKS:
            x = raw[name]
            residual = any(name.endswith(s) for s in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"))
            expected = x - x.mean(-1, keepdim=True) if residual else x
            diff = (processed[name] - expected).abs().max().item()
            reference["processing_check"][name] = {"transform": "center" if residual else "none", "max_abs_diff": diff}
            print(f"{name:28s} processed = {'raw - mean' if residual else 'raw':10s} max |diff| {diff:.2e}")
            assert diff < 1e-5, name

        # gpt2-small-res-jb layout, trained on the processed model's resid_pre.
        hook = "blocks.1.hook_resid_pre"
        x_proc = processed[hook]
        W = pick(301, x_proc, "standard", True)
        folder = os.path.join(OUT, "hub", "models--jbloom--GPT2-Small-SAEs-Reformatted")
        sae_dir = os.path.join(folder, "snapshots", COMMIT, hook)
        os.makedirs(sae_dir, exist_ok=True)
        os.makedirs(os.path.join(folder, "refs"), exist_ok=True)
        with open(os.path.join(folder, "refs", "main"), "w") as f:
            f.write(COMMIT)
        write_safetensors(os.path.join(sae_dir, "sae_weights.safetensors"), W, "F32")
        with open(os.path.join(sae_dir, "cfg.json"), "w") as f:
            json.dump({"d_in": 32, "d_sae": D_SAE, "hook_point": hook, "hook_point_layer": 1, "model_name": "gpt2-small",
                       "dataset_path": "synthetic", "context_size": 64, "dtype": "torch.float32"}, f, indent=2)
        _, acts = encode(W, x_proc, "standard", True)
        _, acts_raw = encode(W, raw[hook], "standard", True)
        reference["saes"]["gpt2-small-res-jb/blocks.1.hook_resid_pre"] = {
            "hook_name": hook, "input_raw": flat(raw[hook]), "input_processed": flat(x_proc),
            "feature_acts": flat(acts), "reconstruction_centred": flat(acts @ W["W_dec"] + W["b_dec"]),
            "feature_acts_without_processing": flat(acts_raw),
        }

        # Gemma Scope 1 (npz) and 2 (safetensors): JumpReLU on the raw model, b_dec not subtracted.
        hook = "blocks.0.hook_resid_post"
        x = raw[hook]
        for name, seed, dtype, save in (("gemma-scope-npz", 401, torch.float32, np.savez_compressed), ("gemma-scope-npz-f16", 402, torch.float16, np.savez)):
            W = pick(seed, x, "jumprelu", False, dtype)
            os.makedirs(os.path.join(OUT, name), exist_ok=True)
            np_dtype = np.float16 if dtype == torch.float16 else np.float32
            save(os.path.join(OUT, name, "params.npz"), **{k: v.numpy().astype(np_dtype) for k, v in W.items()})
            _, acts = encode(W, x, "jumprelu", False)
            reference["saes"][name] = {"hook_name": hook, "feature_acts": flat(acts), "reconstruction": flat(acts @ W["W_dec"] + W["b_dec"])}
        W = pick(403, x, "jumprelu", False)
        gs2 = os.path.join(OUT, "hub", "models--google--gemma-scope-2-270m-pt")
        sae_dir = os.path.join(gs2, "snapshots", COMMIT, "resid_post", "layer_0_width_16k_l0_small")
        os.makedirs(sae_dir, exist_ok=True)
        os.makedirs(os.path.join(gs2, "refs"), exist_ok=True)
        with open(os.path.join(gs2, "refs", "main"), "w") as f:
            f.write(COMMIT)
        write_safetensors(os.path.join(sae_dir, "params.safetensors"), {k.lower(): v for k, v in W.items()}, "F32")
        _, acts = encode(W, x, "jumprelu", False)
        reference["saes"]["gemma-scope-2-270m-pt-res/layer_0_width_16k_l0_small"] = {"hook_name": hook, "feature_acts": flat(acts)}
        reference["resid"] = {hook: flat(x)}
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(reference, f)
    print("wrote", ", ".join(reference["saes"]), "under", os.path.abspath(OUT), "torch", torch.__version__)


if __name__ == "__main__":
    main()
