/**
 * Dictionaries in each publisher's layout (bench/sae/make_format_fixtures.py wrote the files and
 * what PyTorch computes for them): circuit-tracer's PLT and CLT sets, SAELens's transcoder
 * architectures, Gemma Scope 2's params.safetensors with affine_skip_connection, and Llama Scope.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { decode, encode } from "../../../src/core/circuits/transcoder";
import { loadTranscoders } from "../../../src/core/circuits/transcoder-files";
import { transcoderStatsFile } from "../../../src/core/circuits/transcoder-stats";
import { loadSae } from "../../../src/core/sae";
import { parseReleaseSae, releaseSaeFiles, resolveSaeReference } from "../../../src/core/sae/releases/reference";
import { spliceSae } from "../../../src/core/sae/splice";
import { maxAbsDiff } from "../../../src/core/tensor/tensor";
import { FIXTURES, scratchDir } from "../../helpers/fixtures";
import { cacheRepo } from "../../helpers/hub-cache";
import { rejectsWith, throwsWith } from "../../helpers/errors";
import type { HookedModel } from "../../../src/core/model/hooked-model";

const PUBLISHED = path.join(FIXTURES, "sae-published");
const DIR = path.join(PUBLISHED, "transcoders");
const HUB = { HF_HUB_CACHE: path.join(PUBLISHED, "hub") };
const TOLERANCE = 1e-5;

interface Expected {
  feature_acts: number[];
  outputs: number[];
}
interface TranscoderReference {
  rows: number;
  inputs: number[][];
  sets: Record<string, { feature_acts: number[][]; outputs: number[][] }>;
  saes: Record<string, Expected & { input: number[] }>;
}
const reference = JSON.parse(fs.readFileSync(path.join(PUBLISHED, "formats-reference.json"), "utf8")) as TranscoderReference;
const inputs = reference.inputs.map((x) => Float32Array.from(x));

describe("dictionaries in circuit-tracer's, SAELens's, Gemma Scope 2's and Llama Scope's layouts vs PyTorch", () => {
  for (const [name, kind, activation] of [
    ["plt-jumprelu-skip", "plt", "jumprelu"],
    ["plt-topk", "plt", "topk"],
    ["clt-jumprelu", "clt", "jumprelu"],
    ["gemma-scope-plt", "plt", "jumprelu"],
    ["gemma-scope-2-plt", "plt", "jumprelu"],
  ] as const) {
    it(`circuit-tracer ${name}: every layer encodes and decodes as PyTorch does (1e-5)`, () => {
      const set = loadTranscoders(path.join(DIR, name), HUB);
      const expected = reference.sets[name];
      assert.equal(set.kind, kind);
      assert.equal(set.activation.kind, activation);
      const acts = inputs.map((x, l) => encode(set, l, x, reference.rows));
      acts.forEach((a, l) => {
        assert.ok(a.some((v) => v !== 0), `layer ${l}: some feature fires`);
        const diff = maxAbsDiff(a, expected.feature_acts[l]);
        assert.ok(diff < TOLERANCE, `layer ${l} feature activations differ from PyTorch by ${diff}`);
      });
      decode(set, acts, inputs, reference.rows).forEach((out, l) => {
        const diff = maxAbsDiff(out, expected.outputs[l]);
        assert.ok(diff < TOLERANCE, `layer ${l} output differs from PyTorch by ${diff}`);
      });
    });
  }

  it("config.yaml's hf:// entries are read from the Hugging Face cache; a missing one says how to fetch it", () => {
    const set = loadTranscoders(path.join(DIR, "gemma-scope-2-plt"), HUB);
    assert.ok(set.layers.every((layer) => layer.skip), "Gemma Scope 2's affine_skip_connection is each layer's skip");
    throwsWith(
      () => loadTranscoders(path.join(DIR, "gemma-scope-2-plt"), { HF_HUB_CACHE: scratchDir("empty-hub") }),
      "missing-file",
      /lists hf:\/\/google\/gemma-scope-2-270m-pt\/transcoder\/layer_0_width_16k_l0_small\/params\.safetensors, which is not in the Hugging Face cache .*huggingface-cli download google\/gemma-scope-2-270m-pt transcoder\/layer_0/,
    );
  });

  it("a transcoder set named by its hub repository ORG/NAME loads from the Hugging Face cache, as circuit-tracer publishes sets", () => {
    const source = path.join(DIR, "plt-jumprelu-skip");
    const hub = scratchDir("transcoder-hub");
    cacheRepo(hub, "fixture-org/plt-set", Object.fromEntries(fs.readdirSync(source).map((name) => [name, fs.readFileSync(path.join(source, name))])));
    const set = loadTranscoders("fixture-org/plt-set", { HF_HUB_CACHE: hub });
    assert.equal(set.nLayers, 2);
    const acts = encode(set, 1, inputs[1], reference.rows);
    assert.ok(maxAbsDiff(acts, reference.sets["plt-jumprelu-skip"].feature_acts[1]) < TOLERANCE);
    // Its per-layer statistics would go to Loupe's cache, not into the snapshot.
    const statsFile = transcoderStatsFile(set.source!, 1);
    assert.ok(!statsFile.startsWith(hub) && statsFile.includes(path.join("feature-stats", "models--fixture-org--plt-set")), statsFile);
    assert.equal(transcoderStatsFile(source, 1), path.join(source, "layer_1.feature-stats.json"));
    throwsWith(() => loadTranscoders("fixture-org/other-set", { HF_HUB_CACHE: hub }), "missing-file", /Transcoders fixture-org\/other-set are neither a folder .* nor a repository with config\.yaml in the Hugging Face cache .*huggingface-cli download fixture-org\/other-set/);
  });

  it("circuit-tracer's W_skip is part of a PLT's output", () => {
    const set = loadTranscoders(path.join(DIR, "plt-jumprelu-skip"));
    assert.ok(set.layers.every((layer) => layer.skip), "every layer has its skip");
    const withoutSkip = { ...set, layers: set.layers.map((layer) => ({ ...layer, skip: undefined })) };
    const acts = inputs.map((x, l) => encode(set, l, x, reference.rows));
    const out = decode(withoutSkip, acts, inputs, reference.rows)[0];
    assert.ok(maxAbsDiff(out, reference.sets["plt-jumprelu-skip"].outputs[0]) > 1e-2, "dropping the skip changes the output");
  });

  for (const [name, architecture, skip] of [
    ["saelens-skip-transcoder", "standard", true],
    ["saelens-jumprelu-transcoder", "jumprelu", false],
  ] as const) {
    it(`SAELens ${name}: cfg.json's transcoder fields, and features and output as PyTorch computes them (1e-5)`, () => {
      const sae = loadSae(path.join(DIR, name));
      const expected = reference.saes[name];
      assert.equal(sae.cfg.architecture, architecture);
      assert.deepEqual(sae.cfg.transcoder, { hook_name_out: "blocks.0.hook_mlp_out", d_out: 32, skip });
      assert.equal(sae.cfg.apply_b_dec_to_input, false);
      assert.equal(sae.weights.W_skip !== undefined, skip);
      const x = Float32Array.from(expected.input);
      const { features, reconstruction } = sae.forward(x);
      assert.ok(features.some((v) => v > 0), "some feature fires");
      assert.ok(maxAbsDiff(features, expected.feature_acts) < TOLERANCE, "feature activations differ");
      const diff = maxAbsDiff(reconstruction, expected.outputs);
      assert.ok(diff < TOLERANCE, `output differs from PyTorch by ${diff}`);
    });
  }

  it("Gemma Scope 2's transcoder: affine_skip_connection is applied as x @ A, as Google's reference does (1e-5)", () => {
    const sae = loadSae(path.join(DIR, "gemma-scope-2-transcoder"), { hook: "blocks.0.ln2.hook_normalized", hookOut: "blocks.0.hook_mlp_out" });
    const expected = reference.saes["gemma-scope-2-transcoder"];
    assert.deepEqual(sae.cfg.transcoder, { hook_name_out: "blocks.0.hook_mlp_out", d_out: 32, skip: true });
    const x = Float32Array.from(expected.input);
    const { features, reconstruction } = sae.forward(x);
    assert.ok(maxAbsDiff(features, expected.feature_acts) < TOLERANCE, "feature activations differ");
    const diff = maxAbsDiff(reconstruction, expected.outputs);
    assert.ok(diff < TOLERANCE, `output differs from PyTorch by ${diff}`);
  });

  it("Llama Scope resolves by release in a hub cache, and encodes and decodes as SAELens's conversion does (1e-5)", () => {
    const resolved = resolveSaeReference("llama_scope_lxr_8x/l0r_8x", HUB);
    assert.equal(path.basename(resolved.folder), "Llama3_1-8B-Base-L0R-8x");
    const sae = loadSae(resolved.folder);
    assert.equal(sae.hookName, "blocks.0.hook_resid_post");
    assert.equal(sae.cfg.architecture, "jumprelu");
    assert.equal(sae.cfg.neuronpedia_id, "llama3.1-8b/0-llamascope-res-32k");
    assert.equal(sae.cfg.model_name, "meta-llama/Llama-3.1-8B");
    const expected = reference.saes["llama_scope_lxr_8x/l0r_8x"];
    const { features, reconstruction } = sae.forward(Float32Array.from(expected.input));
    assert.ok(features.some((v) => v > 0) && features.some((v) => v === 0), "the threshold keeps some features and drops others");
    const diff = maxAbsDiff(features, expected.feature_acts);
    assert.ok(diff < TOLERANCE, `feature activations differ from PyTorch by ${diff}`);
    assert.ok(maxAbsDiff(reconstruction, expected.outputs) < TOLERANCE, "reconstruction differs");
  });

  it("the registry's Llama and Qwen releases name their folders, hooks and Neuronpedia sources as SAELens does", () => {
    const cases: [string, string, string, string | undefined][] = [
      ["llama_scope_lxa_32x/l31a_32x", "Llama3_1-8B-Base-L31A-32x", "blocks.31.hook_attn_out", "llama3.1-8b/31-llamascope-att-131k"],
      ["llama_scope_lxm_8x/l7m_8x", "Llama3_1-8B-Base-L7M-8x", "blocks.7.hook_mlp_out", "llama3.1-8b/7-llamascope-mlp-32k"],
      ["llama-3-8b-it-res-jh/blocks.25.hook_resid_post", "blocks.25.hook_resid_post", "blocks.25.hook_resid_post", "llama3-8b-it/25-res-jh"],
    ];
    for (const [reference, folder, hook, neuronpedia] of cases) {
      const sae = parseReleaseSae(reference)!;
      assert.equal(sae.release.path(sae.id), folder, reference);
      assert.equal(sae.release.hook(sae.id), hook, reference);
      assert.equal(sae.release.neuronpedia?.(sae.id), neuronpedia, reference);
    }
    assert.deepEqual(releaseSaeFiles(parseReleaseSae("llama_scope_lxr_32x/l3r_32x")!).required, ["Llama3_1-8B-Base-L3R-32x/hyperparams.json", "Llama3_1-8B-Base-L3R-32x/checkpoints/final.safetensors"]);
    throwsWith(() => parseReleaseSae("llama_scope_lxr_8x/l32r_8x"), "bad-argument", /not an SAE id of llama_scope_lxr_8x \(ids look like l15r_8x/);
  });

  it("a skip transcoder's decode asks for the input; splicing and steering refuse a transcoder", async () => {
    const sae = loadSae(path.join(DIR, "saelens-skip-transcoder"));
    const x = Float32Array.from(reference.saes["saelens-skip-transcoder"].input);
    const { features } = sae.encode(x);
    throwsWith(() => sae.decode(features), "bad-argument", /skip transcoder: decoding needs the input/);
    await rejectsWith(spliceSae({} as HookedModel, sae, [1, 2, 3]), "bad-argument", /is a transcoder \(reads blocks\.0\.ln2\.hook_normalized, writes blocks\.0\.hook_mlp_out\): splicing needs a sparse autoencoder/);
  });

  it("a skip transcoder without W_skip, or a transcoder with apply_b_dec_to_input, is an error naming the file", () => {
    const dir = scratchDir("transcoder");
    const source = path.join(DIR, "saelens-jumprelu-transcoder");
    fs.copyFileSync(path.join(source, "sae_weights.safetensors"), path.join(dir, "sae_weights.safetensors"));
    const cfg = JSON.parse(fs.readFileSync(path.join(source, "cfg.json"), "utf8")) as Record<string, unknown>;
    fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify({ ...cfg, architecture: "jumprelu_skip_transcoder" }));
    throwsWith(() => loadSae(dir), "bad-file", /sae_weights\.safetensors has no tensor "W_skip"/);
    fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify({ ...cfg, apply_b_dec_to_input: true }));
    throwsWith(() => loadSae(dir), "bad-file", /cfg\.json: apply_b_dec_to_input is true, which a jumprelu_transcoder cannot have/);
  });
});
