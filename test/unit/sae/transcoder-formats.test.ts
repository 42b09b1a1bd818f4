/**
 * Transcoders in each publisher's layout (bench/sae/make_transcoder_fixtures.py wrote the files and
 * what PyTorch computes for them): circuit-tracer's PLT and CLT sets, SAELens's transcoder
 * architectures and Gemma Scope 2's params.safetensors with affine_skip_connection.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { decode, encode } from "../../../src/core/circuits/transcoder";
import { loadTranscoders } from "../../../src/core/circuits/transcoder-files";
import { loadSae } from "../../../src/core/sae";
import { spliceSae } from "../../../src/core/sae/splice";
import { maxAbsDiff } from "../../../src/core/tensor/tensor";
import { FIXTURES, scratchDir } from "../../helpers/fixtures";
import { rejectsWith, throwsWith } from "../../helpers/errors";
import type { HookedModel } from "../../../src/core/model/hooked-model";

const DIR = path.join(FIXTURES, "sae-published", "transcoders");
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
const reference = JSON.parse(fs.readFileSync(path.join(DIR, "reference.json"), "utf8")) as TranscoderReference;
const inputs = reference.inputs.map((x) => Float32Array.from(x));

describe("transcoders in circuit-tracer's, SAELens's and Gemma Scope 2's layouts vs PyTorch", () => {
  for (const [name, kind, activation] of [
    ["plt-jumprelu-skip", "plt", "jumprelu"],
    ["plt-topk", "plt", "topk"],
    ["clt-jumprelu", "clt", "jumprelu"],
  ] as const) {
    it(`circuit-tracer ${name}: every layer encodes and decodes as PyTorch does (1e-5)`, () => {
      const set = loadTranscoders(path.join(DIR, name));
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
