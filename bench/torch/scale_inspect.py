"""PyTorch eager doing Loupe's inspect work on a folder bench:scale wrote: a forward pass keeping
every block's resid_post, then the logit lens of the last block at every position, in chunks of
rows reduced to top-5, the next token's log-prob and the entropy (as Loupe's lens graph does).

    /usr/bin/python3 bench/torch/scale_inspect.py FOLDER --tokens 1024 --threads 2

Prints one JSON line: {"ms": ..., "cpu_ms": ..., "peak_rss_mb": ..., "torch": version}.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gpt2_torch import GPT2, read_safetensors  # noqa: E402
from llama_torch import Llama, rms_norm  # noqa: E402

CHUNK_BYTES = 64 * 1024 * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.folder, "config.json")) as f:
        cfg = json.load(f)
    weights = read_safetensors(os.path.join(args.folder, "model.safetensors"))
    V = cfg["vocab_size"]
    ids = torch.randint(3, V, (1, args.tokens), generator=torch.Generator().manual_seed(3))

    if cfg["model_type"] == "gpt2":
        model = GPT2({k.removeprefix("transformer."): v for k, v in weights.items()}, cfg)
        resid = {}
        for L, block in enumerate(model.blocks):
            block.hook_resid_post.register_forward_hook(lambda _m, _i, out, L=L: resid.__setitem__(L, out))
        W = model.W["wte.weight"]

        def forward():
            model(ids)
            return [resid[L] for L in range(len(model.blocks))]

        def final_norm(x):
            return model.ln_final(x)
    else:
        model = Llama(weights, cfg)
        W = model.W["embed_tokens.weight"]

        def forward():
            _, cache = model.forward(ids, keep=lambda name: name.endswith("hook_resid_post"))
            return [cache[f"blocks.{L}.hook_resid_post"] for L in range(cfg["num_hidden_layers"])]

        def final_norm(x):
            return rms_norm(x, model.W["norm.weight"], cfg["rms_norm_eps"])

    def inspect():
        posts = forward()
        last = final_norm(posts[-1][0])
        rows = max(1, CHUNK_BYTES // (4 * 4 * V))
        nxt = torch.cat([ids[0, 1:], ids[0, :1]])
        out = []
        for r in range(0, last.shape[0], rows):
            logprobs = torch.log_softmax(last[r : r + rows] @ W.T, dim=-1)
            top = torch.topk(logprobs, 5, dim=-1)
            target = logprobs.gather(-1, nxt[r : r + rows, None])
            entropy = -(logprobs.exp() * logprobs).sum(-1)
            out.append((top, target, entropy))
        norms = [p[0].norm(dim=-1) for p in posts]
        return out, norms

    with torch.no_grad():
        inspect()  # warm, as the Loupe row warms its session
        cpu = time.process_time()
        start = time.perf_counter()
        inspect()
        ms = (time.perf_counter() - start) * 1000
        cpu_ms = (time.process_time() - cpu) * 1000
    print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
