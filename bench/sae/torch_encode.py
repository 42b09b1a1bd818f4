"""PyTorch reference for bench/sae/encode-bench.ts: JumpReLU encode of the bench's bytes.

    python3 bench/sae/torch_encode.py DIR TOKENS D_IN D_SAE

Reads DIR/{x, W_enc, b_enc, threshold}.f32 (little-endian float32), times
relu(pre) * (pre > threshold) with pre = x @ W_enc + b_enc (best of 3), writes DIR/features.f32
and prints {"ms", "peak_rss_mb", "threads"} as JSON.
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch


def main():
    folder, T, D, S = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    load = lambda name, *shape: torch.from_numpy(np.fromfile(os.path.join(folder, f"{name}.f32"), dtype="<f4").reshape(*shape))
    x, W_enc, b_enc, threshold = load("x", T, D), load("W_enc", D, S), load("b_enc", S), load("threshold", S)
    best = float("inf")
    with torch.no_grad():
        for _ in range(3):
            t0 = time.perf_counter()
            pre = x @ W_enc + b_enc
            features = pre.relu() * (pre > threshold)
            best = min(best, (time.perf_counter() - t0) * 1000)
    features.numpy().astype("<f4").tofile(os.path.join(folder, "features.f32"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ms": best, "peak_rss_mb": peak, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
