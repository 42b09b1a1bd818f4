"""Writes the tiny random GPT-2 test fixtures and PyTorch reference outputs for Loupe's parity tests.

    /usr/bin/python3 bench/torch/make_parity_fixture.py

Outputs test/fixtures/tiny-gpt2{,-f16,-bf16}/ (config.json, model.safetensors) and
test/fixtures/tiny-gpt2/reference.json. The tokenizer.json beside them is made by
bench/tokenizer/make-fixture.ts (320 entries, matching vocab_size here).
"""
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gpt2_torch import GPT2, gpt2_config, random_gpt2_weights, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures")
CFG = gpt2_config(vocab_size=320, n_positions=64, n_embd=32, n_layer=2, n_head=4, bos_token_id=319, eos_token_id=319)
HOOKS = [
    "hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q", "blocks.0.attn.hook_z",
    "blocks.1.attn.hook_attn_scores", "blocks.1.attn.hook_pattern", "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid",
    "blocks.1.mlp.hook_pre", "blocks.1.mlp.hook_post", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post",
    "ln_final.hook_normalized",
]


def flat(t):
    return [float(f"{v:.8g}") for v in t.flatten().tolist()]


def run_with_cache(model, ids):
    cache, handles = {}, []
    for name, module in model.hook_points().items():
        if name in HOOKS:
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: cache.__setitem__(name, o.detach().clone())))
    logits = model(ids)
    for h in handles:
        h.remove()
    return logits, cache


def write_folder(name, weights, dtype):
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
    write_safetensors(os.path.join(folder, "model.safetensors"), weights, dtype)
    return folder


def main():
    torch.manual_seed(0)
    weights = random_gpt2_weights(CFG, seed=1234)
    base = write_folder("tiny-gpt2", weights, "F32")
    g = torch.Generator().manual_seed(7)
    prompts = [torch.randint(0, 319, (n,), generator=g).tolist() for n in (10, 6, 16)]

    model = GPT2.load(base)
    reference = {"config": CFG, "prompts": [], "patch": None, "dtypes": {}}
    with torch.no_grad():
        for ids in prompts:
            logits, cache = run_with_cache(model, torch.tensor([ids]))
            reference["prompts"].append({
                "tokens": ids,
                "logits": flat(logits[0]),
                "hooks": {name: {"shape": list(cache[name].shape), "data": flat(cache[name])} for name in HOOKS},
            })

        # Activation patching: corrupted run with blocks.1.hook_resid_pre at position 3 taken from the clean run.
        clean = prompts[2]
        corrupt = list(clean)
        corrupt[3] = (clean[3] + 101) % 319
        layer, pos = 1, 3
        _, clean_cache = run_with_cache(model, torch.tensor([clean]))
        hooks = model.hook_points()
        clean_resid = {}
        h1 = hooks[f"blocks.{layer}.hook_resid_pre"].register_forward_hook(lambda m, i, o: clean_resid.setdefault("x", o.detach().clone()))
        model(torch.tensor([clean]))
        h1.remove()

        def patch(m, i, o):
            o = o.clone()
            o[:, pos] = clean_resid["x"][:, pos]
            return o

        h2 = hooks[f"blocks.{layer}.hook_resid_pre"].register_forward_hook(patch)
        patched = model(torch.tensor([corrupt]))
        h2.remove()
        corrupt_logits = model(torch.tensor([corrupt]))
        reference["patch"] = {
            "clean": clean, "corrupt": corrupt, "hook": f"blocks.{layer}.hook_resid_pre", "position": pos,
            "patched_logits": flat(patched[0]), "corrupt_logits": flat(corrupt_logits[0]),
        }

        # Half-precision checkpoints: the reference is the f32 model run on the rounded weights.
        for dtype, torch_dtype in (("F16", torch.float16), ("BF16", torch.bfloat16)):
            folder = write_folder(f"tiny-gpt2-{dtype.lower()}", weights, dtype)
            rounded = GPT2.load(folder)
            reference["dtypes"][dtype] = {"tokens": prompts[0], "logits": flat(rounded(torch.tensor([prompts[0]]))[0])}

    with open(os.path.join(base, "reference.json"), "w") as f:
        json.dump(reference, f)
    tok = os.path.join(base, "tokenizer.json")
    for dtype in ("f16", "bf16"):
        if os.path.exists(tok):
            shutil.copy(tok, os.path.join(ROOT, f"tiny-gpt2-{dtype}", "tokenizer.json"))
    print("wrote fixtures under", os.path.abspath(ROOT), "torch", torch.__version__)


if __name__ == "__main__":
    main()
