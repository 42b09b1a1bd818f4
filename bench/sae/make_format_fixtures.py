"""Writes dictionary fixtures in the layouts that make_published_fixtures.py and
make_saelens_fixture.py do not cover, each as its publisher writes it, and what PyTorch computes
for them (feature activations and outputs), so Loupe's readers, encoders and skip connections are
checked against a second implementation.

    /usr/bin/python3 bench/sae/make_format_fixtures.py

Dev-time only (Debian's python3-torch). The maths follows each tool's inference code (read, not
imported); every set has d_model 32 (the tiny test GPT-2's) and 2 layers. Inputs are random rows.
Outputs under test/fixtures/sae-published/ (transcoders/ and hub/):
  plt-jumprelu-skip/   circuit-tracer per-layer set: config.yaml + layer_{i}.safetensors with W_enc
                       [d_tc, d_model], W_dec [d_tc, d_model], b_enc, b_dec,
                       activation_function.threshold and W_skip [d_model, d_model];
                       out = jumprelu(x @ W_enc.T + b_enc) @ W_dec + b_dec + x @ W_skip.T
  plt-topk/            the same layout without threshold or skip, config.yaml activation topk, k
  clt-jumprelu/        circuit-tracer cross-layer set: W_enc_{i}.safetensors (W_enc_i, b_enc_i,
                       b_dec_i, threshold_i) and W_dec_{i}.safetensors (W_dec_i [d_tc, L - i, d_model]);
                       out[l] = sum over i <= l of act[i] @ W_dec_i[:, l - i] + b_dec_l
  saelens-skip-transcoder/         SAELens 6 cfg.json (architecture skip_transcoder, d_out,
                       metadata.hook_name_out) + sae_weights.safetensors with W_enc [d_in, d_sae],
                       W_dec [d_sae, d_out], b_enc, b_dec [d_out], W_skip [d_out, d_in];
                       out = relu(x @ W_enc + b_enc) @ W_dec + b_dec + x @ W_skip.T
  saelens-jumprelu-transcoder/     architecture jumprelu_transcoder (threshold, no skip)
  gemma-scope-plt/, gemma-scope-2-plt/   circuit-tracer configs whose `transcoders` list hf:// files
                       held in hub/ (google/gemma-scope-2b-pt-transcoders' params.npz with W_enc
                       [d_model, d_tc]; google/gemma-scope-2-270m-pt's params.safetensors with
                       Gemma Scope 2's keys), read as circuit-tracer's gemma-scope loaders read them
  gemma-scope-2-transcoder/params.safetensors  Gemma Scope 2's keys (w_enc, w_dec, b_enc, b_dec,
                       threshold, affine_skip_connection); Google's reference adds
                       x @ affine_skip_connection (untransposed, as circuit-tracer's loader does)
  hub/models--fnlp--Llama3_1-8B-Base-LXR-8x/…/Llama3_1-8B-Base-L0R-8x/   Llama Scope's layout:
                       hyperparams.json (d_model, d_sae, hook_point_in, jump_relu_threshold,
                       dataset_average_activation_norm) + checkpoints/final.safetensors with
                       encoder.weight [d_sae, d_model], decoder.weight [d_model, d_sae], biases.
                       Encoded as SAELens's llama_scope conversion does: inputs scaled by
                       s = sqrt(d_model) / average norm, one threshold jump_relu_threshold * s
  formats-reference.json   inputs, feature activations and outputs per fixture
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torch"))
from gpt2_torch import write_safetensors  # noqa: E402

PUBLISHED = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "sae-published")
OUT = os.path.join(PUBLISHED, "transcoders")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
D, F_TC, LAYERS, ROWS, K = 32, 24, 2, 6, 4
# Pre-activations sit this far from every decision boundary (threshold, zero, top-k cut), so float
# differences between two implementations cannot flip which features fire.
MARGIN = 2e-3


def flat(t):
    return [float(f"{v:.8g}") for v in t.flatten().tolist()]


def write_yaml(path, entries):
    with open(path, "w") as f:
        for key, value in entries.items():
            f.write(f"{key}: {json.dumps(value) if isinstance(value, str) else value}\n")


def margin_ok(pre, threshold=None, k=None):
    edges = [pre.abs()]
    if threshold is not None:
        edges.append((pre - threshold).abs())
    if k is not None:
        top = pre.topk(k + 1, dim=-1).values
        edges.append((top[:, k - 1] - top[:, k]).abs())
    return all(bool(e.min() > MARGIN) for e in edges)


def jumprelu(pre, threshold):
    return pre * (pre > threshold)


def topk(pre, k):
    gate = torch.zeros_like(pre).scatter_(-1, pre.topk(k, dim=-1).indices, 1.0)
    return pre * gate


def pick(g, make, check):
    for _ in range(1000):
        weights = make(g)
        if check(weights):
            return weights
    raise RuntimeError(f"no random draw kept its pre-activations {MARGIN} from every boundary")


def plt_layer(g, skip, jump):
    w = {
        "W_enc": torch.randn(F_TC, D, generator=g) / D ** 0.5,
        "b_enc": torch.randn(F_TC, generator=g) * 0.3,
        "W_dec": torch.randn(F_TC, D, generator=g) * 0.2,
        "b_dec": torch.randn(D, generator=g) * 0.1,
    }
    if jump:
        w["activation_function.threshold"] = torch.rand(F_TC, generator=g) * 0.5 + 0.05
    if skip:
        w["W_skip"] = torch.randn(D, D, generator=g) * 0.1
    return w


def write_plt(name, g, xs, skip, activation):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    acts, outs = [], []
    for layer in range(LAYERS):
        x = xs[layer]
        pre_of = lambda w: F.linear(x, w["W_enc"], w["b_enc"])  # noqa: E731
        if activation == "jumprelu":
            w = pick(g, lambda g: plt_layer(g, skip, True), lambda w: margin_ok(pre_of(w), w["activation_function.threshold"]))
            act = jumprelu(pre_of(w), w["activation_function.threshold"])
        else:
            w = pick(g, lambda g: plt_layer(g, skip, False), lambda w: margin_ok(pre_of(w), k=K))
            act = topk(pre_of(w), K)
        out = act @ w["W_dec"] + w["b_dec"]
        if skip:
            out = out + x @ w["W_skip"].T
        write_safetensors(os.path.join(folder, f"layer_{layer}.safetensors"), w, "F32")
        acts.append(flat(act))
        outs.append(flat(out))
    config = {"model_kind": "transcoder_set", "feature_input_hook": "ln2.hook_normalized", "feature_output_hook": "hook_mlp_out", "scan": f"fixture-{name}"}
    if activation == "topk":
        config.update({"activation": "topk", "k": K})
    write_yaml(os.path.join(folder, "config.yaml"), config)
    return {"feature_acts": acts, "outputs": outs}


def write_clt(name, g, xs):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    layers = []
    for i in range(LAYERS):
        x = xs[i]

        def make(g, i=i):
            return {
                f"W_enc_{i}": torch.randn(F_TC, D, generator=g) / D ** 0.5,
                f"b_enc_{i}": torch.randn(F_TC, generator=g) * 0.3,
                f"b_dec_{i}": torch.randn(D, generator=g) * 0.1,
                f"threshold_{i}": torch.rand(F_TC, generator=g) * 0.5 + 0.05,
            }

        enc = pick(g, make, lambda w, i=i, x=x: margin_ok(F.linear(x, w[f"W_enc_{i}"], w[f"b_enc_{i}"]), w[f"threshold_{i}"]))
        W_dec = torch.randn(F_TC, LAYERS - i, D, generator=g) * 0.2
        write_safetensors(os.path.join(folder, f"W_enc_{i}.safetensors"), enc, "F32")
        write_safetensors(os.path.join(folder, f"W_dec_{i}.safetensors"), {f"W_dec_{i}": W_dec}, "F32")
        act = jumprelu(F.linear(x, enc[f"W_enc_{i}"], enc[f"b_enc_{i}"]), enc[f"threshold_{i}"])
        layers.append((enc, W_dec, act))
    outs = []
    for target in range(LAYERS):
        out = layers[target][0][f"b_dec_{target}"].expand(ROWS, D).clone()
        for source in range(target + 1):
            out = out + layers[source][2] @ layers[source][1][:, target - source, :]
        outs.append(flat(out))
    write_yaml(os.path.join(folder, "config.yaml"), {"model_kind": "cross_layer_transcoder", "feature_input_hook": "hook_resid_mid", "feature_output_hook": "hook_mlp_out", "scan": f"fixture-{name}"})
    return {"feature_acts": [flat(a) for _, _, a in layers], "outputs": outs}


def sae_transcoder(g, jump, skip):
    """SAELens's and Gemma Scope's orientation: W_enc [d_in, d_sae], a bare threshold."""
    w = plt_layer(g, skip, jump)
    w["W_enc"] = w["W_enc"].T.contiguous()
    if jump:
        w["threshold"] = w.pop("activation_function.threshold")
    return w


def write_saelens(name, g, x, architecture):
    jump, skip = architecture.startswith("jumprelu"), "skip" in architecture
    w = pick(g, lambda g: sae_transcoder(g, jump, skip), lambda w: margin_ok(x @ w["W_enc"] + w["b_enc"], w.get("threshold")))
    pre = x @ w["W_enc"] + w["b_enc"]
    act = F.relu(pre) * (pre > w["threshold"]) if jump else F.relu(pre)
    out = act @ w["W_dec"] + w["b_dec"] + (x @ w["W_skip"].T if skip else 0)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "sae_weights.safetensors"), w, "F32")
    cfg = {
        "architecture": architecture, "d_in": D, "d_sae": F_TC, "d_out": D, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": False, "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {"sae_lens_version": "6.5.0", "model_name": "tiny-gpt2", "hook_name": "blocks.0.ln2.hook_normalized",
                     "hook_name_out": "blocks.0.hook_mlp_out", "hook_head_index": None, "prepend_bos": True, "context_size": 64},
    }
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return {"input": flat(x), "feature_acts": flat(act), "outputs": flat(out)}


def write_gemma_scope_2(name, g, x):
    w = pick(g, lambda g: sae_transcoder(g, True, True), lambda w: margin_ok(x @ w["W_enc"] + w["b_enc"], w["threshold"]))
    pre = x @ w["W_enc"] + w["b_enc"]
    act = (pre > w["threshold"]) * F.relu(pre)
    out = act @ w["W_dec"] + w["b_dec"] + x @ w["W_skip"]
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    keys = {"W_enc": "w_enc", "W_dec": "w_dec", "b_enc": "b_enc", "b_dec": "b_dec", "threshold": "threshold", "W_skip": "affine_skip_connection"}
    write_safetensors(os.path.join(folder, "params.safetensors"), {keys[k]: v for k, v in w.items()}, "F32")
    return {"input": flat(x), "feature_acts": flat(act), "outputs": flat(out)}


def hub_snapshot(repo_id):
    repo = os.path.join(PUBLISHED, "hub", "models--" + repo_id.replace("/", "--"))
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(COMMIT)
    return os.path.join(repo, "snapshots", COMMIT)


def write_gemma_scope_plt(name, g, xs, version):
    """A circuit-tracer config.yaml listing Gemma Scope transcoders by hf:// URI, the files in hub/."""
    repo_id = "google/gemma-scope-2b-pt-transcoders" if version == 1 else "google/gemma-scope-2-270m-pt"
    snapshot = hub_snapshot(repo_id)
    uris, acts, outs = [], [], []
    for layer, x in enumerate(xs):
        w = pick(g, lambda g: sae_transcoder(g, True, version == 2), lambda w, x=x: margin_ok(x @ w["W_enc"] + w["b_enc"], w["threshold"]))
        act = jumprelu(x @ w["W_enc"] + w["b_enc"], w["threshold"])
        out = act @ w["W_dec"] + w["b_dec"] + (x @ w["W_skip"] if version == 2 else 0)
        if version == 1:
            rel = f"layer_{layer}/width_16k/average_l0_76/params.npz"
            os.makedirs(os.path.dirname(os.path.join(snapshot, rel)), exist_ok=True)
            np.savez(os.path.join(snapshot, rel), **{k: v.numpy() for k, v in w.items()})
        else:
            rel = f"transcoder/layer_{layer}_width_16k_l0_small/params.safetensors"
            os.makedirs(os.path.dirname(os.path.join(snapshot, rel)), exist_ok=True)
            keys = {"W_enc": "w_enc", "W_dec": "w_dec", "b_enc": "b_enc", "b_dec": "b_dec", "threshold": "threshold", "W_skip": "affine_skip_connection"}
            write_safetensors(os.path.join(snapshot, rel), {keys[k]: v for k, v in w.items()}, "F32")
        uris.append(f"hf://{repo_id}/{rel}")
        acts.append(flat(act))
        outs.append(flat(out))
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.yaml"), "w") as f:
        f.write(f'model_kind: "transcoder_set"\nfeature_input_hook: "ln2.hook_normalized"\nfeature_output_hook: "hook_mlp_out"\nscan: "fixture-{name}"\ntranscoders:\n')
        f.writelines(f'  - "{uri}"\n' for uri in uris)
    return {"feature_acts": acts, "outputs": outs}


def write_llama_scope(g, x):
    """Llama Scope's own layout, in a hub cache as fnlp/Llama3_1-8B-Base-LXR-8x holds it."""
    repo = os.path.join(PUBLISHED, "hub", "models--fnlp--Llama3_1-8B-Base-LXR-8x")
    folder = os.path.join(repo, "snapshots", COMMIT, "Llama3_1-8B-Base-L0R-8x")
    os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(COMMIT)
    average_norm = float(x.norm(dim=-1).mean()) * 1.3
    s = D ** 0.5 / average_norm

    def make(g):
        return {
            "encoder.weight": torch.randn(F_TC, D, generator=g) / D ** 0.5,
            "encoder.bias": torch.randn(F_TC, generator=g) * 0.3,
            "decoder.weight": torch.randn(D, F_TC, generator=g) * 0.2,
            "decoder.bias": torch.randn(D, generator=g) * 0.1,
        }

    threshold = 0.2
    pre_of = lambda w: (x * s) @ w["encoder.weight"].T + w["encoder.bias"]  # noqa: E731
    w = pick(g, make, lambda w: margin_ok(pre_of(w), threshold * s))
    pre = pre_of(w)
    act = F.relu(pre) * (pre > threshold * s)
    out = (act @ w["decoder.weight"].T + w["decoder.bias"]) / s
    write_safetensors(os.path.join(folder, "checkpoints", "final.safetensors"), w, "F32")
    with open(os.path.join(folder, "hyperparams.json"), "w") as f:
        json.dump({"d_model": D, "d_sae": F_TC, "hook_point_in": "blocks.0.hook_resid_post", "hook_point_out": "blocks.0.hook_resid_post",
                   "act_fn": "jumprelu", "jump_relu_threshold": threshold, "norm_activation": "dataset-wise",
                   "dataset_average_activation_norm": {"in": average_norm, "out": average_norm}, "top_k": -1}, f, indent=2)
    return {"input": flat(x), "feature_acts": flat(act), "outputs": flat(out)}


def main():
    g = torch.Generator().manual_seed(28)
    xs = [torch.randn(ROWS, D, generator=g) for _ in range(LAYERS)]
    reference = {"d_model": D, "d_transcoder": F_TC, "rows": ROWS, "inputs": [flat(x) for x in xs], "sets": {}, "saes": {}}
    with torch.no_grad():
        reference["sets"]["plt-jumprelu-skip"] = write_plt("plt-jumprelu-skip", g, xs, True, "jumprelu")
        reference["sets"]["plt-topk"] = write_plt("plt-topk", g, xs, False, "topk")
        reference["sets"]["clt-jumprelu"] = write_clt("clt-jumprelu", g, xs)
        reference["saes"]["saelens-skip-transcoder"] = write_saelens("saelens-skip-transcoder", g, xs[0], "skip_transcoder")
        reference["saes"]["saelens-jumprelu-transcoder"] = write_saelens("saelens-jumprelu-transcoder", g, xs[0], "jumprelu_transcoder")
        reference["saes"]["gemma-scope-2-transcoder"] = write_gemma_scope_2("gemma-scope-2-transcoder", g, xs[0])
        reference["saes"]["llama_scope_lxr_8x/l0r_8x"] = write_llama_scope(g, xs[1] * 3.0)
        reference["sets"]["gemma-scope-plt"] = write_gemma_scope_plt("gemma-scope-plt", g, xs, 1)
        reference["sets"]["gemma-scope-2-plt"] = write_gemma_scope_plt("gemma-scope-2-plt", g, xs, 2)
    with open(os.path.join(PUBLISHED, "formats-reference.json"), "w") as f:
        json.dump(reference, f)
    print("wrote", ", ".join([*reference["sets"], *reference["saes"]]), "under", os.path.abspath(PUBLISHED), "torch", torch.__version__)


if __name__ == "__main__":
    main()
