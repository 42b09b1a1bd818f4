"""Times the PyTorch Llama of llama_torch.py (eager) on a folder Loupe benchmarks: a forward pass on
N tokens recording every hook, and greedy generation with a key/value cache. Also writes random
models of a named size.

    /usr/bin/python3 bench/torch/time_llama.py --write-random FOLDER --preset smollm2-135m
    /usr/bin/python3 bench/torch/time_llama.py FOLDER --tokens 256 --new 64 --reps 3 --threads 2

Prints one JSON line: {"forward_ms": median, "generate_tok_s": best of reps, "peak_rss_mb": ..., "torch": version}.
"""
import argparse
import json
import os
import resource
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gpt2_torch import read_safetensors, write_safetensors  # noqa: E402
import gemma3_torch  # noqa: E402
import llama_torch  # noqa: E402
from time_forward import median_ms  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")

# SmolLM2-135M's shape (HuggingFaceTB/SmolLM2-135M config.json): 134.5M parameters.
PRESETS = {
    "smollm2-135m": {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 49152, "hidden_size": 576,
        "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "head_dim": 64, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
        "rope_scaling": None, "hidden_act": "silu", "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
    },
    # google/gemma-3-270m's shape: 268M parameters, 170M of them the 262k x 640 embedding.
    "gemma3-270m": {
        "model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"], "vocab_size": 262144, "hidden_size": 640,
        "intermediate_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 256, "query_pre_attn_scalar": 256, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": None, "sliding_window": 512,
        "layer_types": ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(18)],
        "hidden_activation": "gelu_pytorch_tanh", "final_logit_softcapping": None, "attn_logit_softcapping": None,
        "tie_word_embeddings": True, "bos_token_id": 2, "eos_token_id": 1,
    },
    # Qwen/Qwen3-0.6B's shape: 596M parameters, head_dim 128 with 16 heads on a 1024-wide stream.
    "qwen3-0.6b": {
        "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "vocab_size": 151936, "hidden_size": 1024,
        "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
        "head_dim": 128, "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "rope_scaling": None, "attention_bias": False, "hidden_act": "silu", "tie_word_embeddings": True,
        "use_sliding_window": False, "bos_token_id": 151643, "eos_token_id": 151645,
    },
}

# The reference model and random weights of each family.
FAMILIES = {"gemma3_text": gemma3_torch}


def family(cfg):
    return FAMILIES.get(cfg["model_type"], llama_torch)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--write-random", action="store_true")
    ap.add_argument("--preset", default="smollm2-135m", choices=sorted(PRESETS))
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="F32", choices=["F32", "BF16"], help="stored dtype of written random weights (real checkpoints are bf16)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.write_random:
        cfg = PRESETS[args.preset]
        os.makedirs(args.folder, exist_ok=True)
        with open(os.path.join(args.folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        weights = family(cfg).random_weights(cfg, seed=5)
        write_safetensors(os.path.join(args.folder, "model.safetensors"), weights, args.dtype)
        # A small tokenizer whose <s> and </s> ids match the config; timing feeds ids directly.
        shutil.copy(os.path.join(ROOT, "test", "fixtures", "tiny-llama", "tokenizer.json"), os.path.join(args.folder, "tokenizer.json"))
        print(json.dumps({"parameters": sum(w.numel() for w in weights.values())}))
        return

    with open(os.path.join(args.folder, "config.json")) as f:
        cfg = json.load(f)
    module = family(cfg)
    model = (module.Gemma3 if module is gemma3_torch else module.Llama)(read_safetensors(os.path.join(args.folder, "model.safetensors")), cfg)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, cfg["vocab_size"], (1, args.tokens), generator=g)
    prompt = ids[0, : args.prompt].tolist()
    with torch.no_grad():
        forward_ms = median_ms(lambda: model.forward(ids), args.reps)
        # Best of --reps: on a shared machine the fastest run is the least disturbed.
        generate_s = float("inf")
        for _ in range(args.reps):
            start = time.perf_counter()
            model.generate_cached(prompt, args.new)
            generate_s = min(generate_s, time.perf_counter() - start)
    print(json.dumps({
        "forward_ms": forward_ms,
        "generate_tok_s": args.new / generate_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
