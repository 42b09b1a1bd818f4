"""Times the PyTorch GPT-2 (eager) on the same folder Loupe benchmarks: plain forward, and forward
with a forward hook on every TransformerLens hook point storing its output (run_with_cache).

    /usr/bin/python3 bench/torch/time_forward.py FOLDER --tokens 256 --reps 10 --threads 2
    /usr/bin/python3 bench/torch/time_forward.py --write-random FOLDER --layers 4 --d-model 128 ...

Prints one JSON line: {"plain_ms": median, "cache_ms": median, "torch": version}.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gpt2_torch import GPT2, gpt2_config, random_gpt2_weights, write_safetensors  # noqa: E402


def median_ms(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--write-random", action="store_true")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.write_random:
        cfg = gpt2_config(vocab_size=args.vocab, n_positions=args.ctx, n_embd=args.d_model, n_layer=args.layers, n_head=args.heads)
        os.makedirs(args.folder, exist_ok=True)
        with open(os.path.join(args.folder, "config.json"), "w") as f:
            json.dump(cfg, f)
        write_safetensors(os.path.join(args.folder, "model.safetensors"), random_gpt2_weights(cfg, seed=0))
        print(json.dumps({"written": args.folder}))
        return

    model = GPT2.load(args.folder).eval()
    ids = torch.randint(0, model.cfg["vocab_size"], (1, args.tokens), generator=torch.Generator().manual_seed(0))
    hooks = model.hook_points()

    def plain():
        with torch.no_grad():
            model(ids)

    def with_cache():
        cache = {}
        handles = [m.register_forward_hook(lambda mod, i, o, n=n: cache.__setitem__(n, o.detach())) for n, m in hooks.items()]
        with torch.no_grad():
            model(ids)
        for h in handles:
            h.remove()
        return cache

    print(json.dumps({
        "plain_ms": median_ms(plain, args.reps),
        "cache_ms": median_ms(with_cache, args.reps),
        "hooks": len(hooks),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
