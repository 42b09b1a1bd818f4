"""The residual-stream patching sweep of bench/patching/patching-bench.ts, in PyTorch eager with
forward hooks, timed in the same run for comparison.

    /usr/bin/python3 bench/patching/torch_sweep.py < request.json

request: {"folder", "clean": [ids], "corrupted": [ids], "answer": id, "wrong": id, "reps", "threads"}.
Denoising: the clean run's blocks.L.hook_resid_pre at position p replaces the corrupted run's; the
metric is logit(answer) - logit(wrong) at the last position. Two ways:
- loop: one forward per (layer, position), a hook registered for each (TransformerLens's
  get_act_patch_resid_pre does this);
- batched: one forward of layers x positions rows, one hook per layer writing its rows.
Prints one JSON line: median wall and CPU milliseconds of each, the raw metric grids, the torch version.
"""
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torch"))
from gpt2_torch import GPT2  # noqa: E402


def median_ms(fn, reps):
    """Median wall and CPU (user + system, this process) milliseconds after a warm-up."""
    fn()  # warm-up: the first runs page buffers in
    fn()
    wall, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main():
    req = json.load(sys.stdin)
    torch.set_num_threads(req.get("threads", 2))
    model = GPT2.load(req["folder"]).eval()
    clean = torch.tensor([req["clean"]])
    corrupted = torch.tensor([req["corrupted"]])
    answer, wrong = req["answer"], req["wrong"]
    L, T = len(model.blocks), clean.shape[1]
    points = [block.hook_resid_pre for block in model.blocks]

    def metric(logits):
        return logits[:, -1, answer] - logits[:, -1, wrong]

    # The clean activations every patch reads, cached once (outside the timed sweeps, as in Loupe).
    cache = {}
    handles = [p.register_forward_hook(lambda m, i, o, layer=layer: cache.__setitem__(layer, o.detach().clone())) for layer, p in enumerate(points)]
    with torch.no_grad():
        model(clean)
    for h in handles:
        h.remove()

    def loop():
        grid = torch.empty(L, T)
        with torch.no_grad():
            for layer in range(L):
                for pos in range(T):
                    def patch(m, i, o, layer=layer, pos=pos):
                        o = o.clone()
                        o[:, pos] = cache[layer][:, pos]
                        return o
                    handle = points[layer].register_forward_hook(patch)
                    grid[layer, pos] = metric(model(corrupted))[0]
                    handle.remove()
        return grid

    def batched():
        rows = torch.arange(L * T)
        ids = corrupted.expand(L * T, T)
        handles = []
        for layer in range(L):
            mine = rows[layer * T:(layer + 1) * T]
            pos = torch.arange(T)

            def patch(m, i, o, layer=layer, mine=mine, pos=pos):
                o = o.clone()
                o[mine, pos] = cache[layer][0, pos]
                return o
            handles.append(points[layer].register_forward_hook(patch))
        with torch.no_grad():
            grid = metric(model(ids)).reshape(L, T)
        for h in handles:
            h.remove()
        return grid

    reps = req.get("reps", 5)
    loop_ms, loop_cpu_ms = median_ms(loop, reps)
    batched_ms, batched_cpu_ms = median_ms(batched, reps)
    print(json.dumps({
        "loop_ms": loop_ms,
        "loop_cpu_ms": loop_cpu_ms,
        "batched_ms": batched_ms,
        "batched_cpu_ms": batched_cpu_ms,
        "loop_grid": loop().tolist(),
        "batched_grid": batched().tolist(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
