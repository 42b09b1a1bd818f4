import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  attributeReplacement,
  attributeReplacementAsync,
  buildReplacement,
  decode,
  encode,
  errorNode,
  estimateAttributionBytes,
  graphScores,
  interveneOnFeatures,
  loadTranscoders,
  logitNode,
  pruneGraph,
  randomTranscoders,
  runFrozen,
  saveTranscoders,
  tokenNode,
  traceEncoding,
  decoderRow,
  type AttributionGraph,
  type FrozenInjection,
  type RandomTranscoderOptions,
  type ReplacementModel,
  type TranscoderSet,
} from "../../../src/core/circuits";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { blockHook } from "../../../src/core/model/hooks";
import { encodeSafetensors } from "../../../src/core/model/safetensors";
import { scratchDir, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";
import { errorText, type LoupeError } from "../../../src/core/errors";
import { rejectsWith, throwsWith } from "../../helpers/errors";

/** Every target's value (feature pre-activation without b_enc, or logit read-out) from a frozen run. */
function targetValues(r: ReplacementModel, g: AttributionGraph, injection: FrozenInjection): Float64Array {
  const { inputs, final } = runFrozen(r, injection);
  const D = r.frozen.dModel;
  const T = r.frozen.nPos;
  const out = new Float64Array(g.features.length + g.targets.length);
  g.features.forEach((f, i) => {
    const enc = r.transcoders.layers[f.layer].W_enc.subarray(f.feature * D, (f.feature + 1) * D);
    let s = 0;
    for (let d = 0; d < D; d++) s += enc[d] * inputs[f.layer][f.pos * D + d];
    out[i] = s;
  });
  g.targets.forEach((t, j) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += t.vector[d] * final[(T - 1) * D + d];
    out[g.features.length + j] = s;
  });
  return out;
}

/** The injection that removes source node s (sets a feature to zero, removes an error or a token embedding), scaled by `scale`. */
function removal(r: ReplacementModel, g: AttributionGraph, s: number, scale = 1): FrozenInjection {
  const { frozen, transcoders: set } = r;
  const T = frozen.nPos;
  const D = frozen.dModel;
  const L = frozen.nLayers;
  const { nFeatures } = g.layout;
  if (s < nFeatures) {
    const f = g.features[s];
    const mlpOut: (Float32Array | undefined)[] = new Array(L).fill(undefined);
    const outputs = set.kind === "plt" ? 1 : L - f.layer;
    for (let o = 0; o < outputs; o++) {
      const delta = new Float32Array(T * D);
      const row = decoderRow(set, f.layer, f.feature, f.layer + o);
      for (let d = 0; d < D; d++) delta[f.pos * D + d] = -scale * f.activation * row[d];
      mlpOut[f.layer + o] = delta;
    }
    return { mlpOut };
  }
  if (s < tokenNode(g.layout, 0)) {
    const layer = Math.floor((s - nFeatures) / T);
    const pos = (s - nFeatures) % T;
    const delta = new Float32Array(T * D);
    for (let d = 0; d < D; d++) delta[pos * D + d] = -scale * r.errors[layer][pos * D + d];
    const mlpOut: (Float32Array | undefined)[] = new Array(L).fill(undefined);
    mlpOut[layer] = delta;
    return { mlpOut };
  }
  const pos = s - tokenNode(g.layout, 0);
  const delta = new Float32Array(T * D);
  for (let d = 0; d < D; d++) delta[pos * D + d] = -scale * frozen.embed[pos * D + d];
  return { residIn: delta };
}

const PERTURBATION = 1000;

interface Case {
  readonly name: string;
  readonly folder: string;
  readonly transcoders: Omit<RandomTranscoderOptions, "nLayers" | "dModel">;
}

const CASES: Case[] = [
  { name: "GPT-2, PLT, ReLU, skip", folder: TINY_GPT2, transcoders: { kind: "plt", dTranscoder: 48, skip: true, encoderBias: -0.3 } },
  { name: "GPT-2, CLT, TopK", folder: TINY_GPT2, transcoders: { kind: "clt", dTranscoder: 40, activation: { kind: "topk", k: 6 }, inputHook: "ln2.hook_normalized" } },
  { name: "Llama, PLT, JumpReLU", folder: TINY_LLAMA, transcoders: { kind: "plt", dTranscoder: 48, activation: { kind: "jumprelu" } } },
  { name: "Llama, CLT, ReLU from resid_mid, skip-free", folder: TINY_LLAMA, transcoders: { kind: "clt", dTranscoder: 32, inputHook: "hook_resid_mid", encoderBias: -0.5 } },
];

describe("circuits: attribution graphs", function () {
  this.timeout(60_000);

  for (const c of CASES) {
    describe(c.name, () => {
      let model: HookedModel;
      let set: TranscoderSet;
      let r: ReplacementModel;
      let g: AttributionGraph;
      before(async () => {
        model = await HookedModel.load(c.folder, { cacheDir: null, threads: 1 });
        set = randomTranscoders({ ...c.transcoders, nLayers: model.cfg.nLayers, dModel: model.cfg.dModel, seed: 7 });
        const tokens = model.toTokens("When Mia and Leo went to the park, Leo gave a ball to");
        r = await buildReplacement(model, set, tokens);
        // Every product in onnxruntime: the checks below hold the fast path to the frozen model itself.
        g = await attributeReplacementAsync(r, { batchSize: 5, products: "onnxruntime", threads: 1 }, (id) => model.tokenizer.decode([id]));
      });
      after(() => model.dispose());

      it("computes every row in onnxruntime as on the JavaScript kernel, within float32 rounding", () => {
        const js = attributeReplacement(r, { batchSize: 5 }, (id) => model.tokenizer.decode([id]));
        assert.equal(js.adjacency.length, g.adjacency.length);
        let largest = 0;
        for (const x of js.adjacency) largest = Math.max(largest, Math.abs(x));
        let worst = 0;
        for (let i = 0; i < js.adjacency.length; i++) worst = Math.max(worst, Math.abs(g.adjacency[i] - js.adjacency[i]));
        assert.ok(largest > 0 && worst <= 1e-5 * largest, `largest |onnxruntime - js| ${worst} against |A| up to ${largest}`);
      });

      it("the frozen replacement reproduces the model's own activations and logits", async () => {
        const { inputs, final } = runFrozen(r);
        const T = r.frozen.nPos;
        const V = model.cfg.dVocab;
        const D = model.cfg.dModel;
        const { logits, cache } = await model.runWithCache([...r.frozen.tokens], { names: [blockHook(1, "hook_resid_mid")] });
        // The transcoder input of layer 1 computed in the frozen model from layer 0's MLP output onward.
        const direct = r.frozen.readInput(1, set.inputHook, cache.get(blockHook(1, "hook_resid_mid")).data);
        assertClose(inputs[1], direct, 1e-4);
        const W_U = r.frozen.weights.W_U;
        for (const v of [0, 5, V - 1]) {
          let s = 0;
          for (let d = 0; d < D; d++) s += W_U[v * D + d] * final[(T - 1) * D + d];
          assert.ok(Math.abs(s - logits.data[(T - 1) * V + v]) < 1e-3, `logit ${v}: ${s} vs ${logits.data[(T - 1) * V + v]}`);
        }
      });

      it("has active features, error, token and logit nodes in circuit-tracer's order", () => {
        assert.ok(g.features.length > 10, `${g.features.length} active features`);
        assert.equal(g.layout.nErrors, model.cfg.nLayers * r.frozen.nPos);
        assert.equal(g.layout.nTokens, r.frozen.nPos);
        assert.ok(g.targets.length >= 1 && g.targets.length <= 10);
        for (let i = 1; i < g.features.length; i++) {
          const a = g.features[i - 1];
          const b = g.features[i];
          assert.ok(a.layer < b.layer || (a.layer === b.layer && (a.pos < b.pos || (a.pos === b.pos && a.feature < b.feature))));
        }
      });

      it("every adjacency column equals the change of all targets when that source is removed, everything else frozen", () => {
        const n = g.layout.nFeatures + g.layout.nErrors + g.layout.nTokens + g.layout.nLogits;
        const rows = [...g.features.keys(), ...g.targets.map((_, j) => logitNode(g.layout, j))];
        const base = targetValues(r, g, {});
        let maxErr = 0;
        let nonzeroColumns = 0;
        for (let s = 0; s < tokenNode(g.layout, 0) + g.layout.nTokens; s++) {
          // A large perturbation keeps float32 rounding of the two runs small next to the change.
          const changed = targetValues(r, g, removal(r, g, s, PERTURBATION));
          let scale = 1e-6;
          for (const t of rows) scale = Math.max(scale, Math.abs(g.adjacency[t * n + s]));
          let colMax = 0;
          rows.forEach((t, i) => {
            const actual = (base[i] - changed[i]) / PERTURBATION;
            const predicted = g.adjacency[t * n + s];
            colMax = Math.max(colMax, Math.abs(predicted));
            maxErr = Math.max(maxErr, Math.abs(actual - predicted) / scale);
          });
          if (colMax > 1e-6) nonzeroColumns++;
        }
        assert.ok(maxErr < 1e-4, `largest relative column error ${maxErr}`);
        assert.ok(nonzeroColumns > g.features.length / 2, `only ${nonzeroColumns} columns carry any effect`);
      });

      it("the frozen map is linear in each source", () => {
        const base = targetValues(r, g, {});
        const sources = [0, Math.floor(g.features.length / 2), errorNode(g.layout, 0, 3), tokenNode(g.layout, 2)];
        for (const s of sources) {
          const once = targetValues(r, g, removal(r, g, s, 1));
          const twice = targetValues(r, g, removal(r, g, s, 2.5));
          for (let i = 0; i < base.length; i++) {
            const d1 = base[i] - once[i];
            const d2 = base[i] - twice[i];
            assert.ok(Math.abs(d2 - 2.5 * d1) <= 1e-4 * Math.max(1, Math.abs(d2)), `source ${s}, target ${i}: ${d2} vs 2.5 x ${d1}`);
          }
        }
      });

      it("no feature feeds a feature at its own or an earlier layer", () => {
        const n = g.layout.nFeatures + g.layout.nErrors + g.layout.nTokens + g.layout.nLogits;
        g.features.forEach((t, i) => g.features.forEach((s, j) => {
          if (s.layer >= t.layer || s.pos > t.pos) assert.equal(g.adjacency[i * n + j], 0);
        }));
      });
    });
  }

  for (const folder of [TINY_GPT2, TINY_LLAMA]) {
    it(`interventions on ${path.basename(folder)}: the graph predicts the constrained change, and the free run is reported beside it`, async () => {
      const model = await HookedModel.load(folder, { cacheDir: null, threads: 1 });
      try {
        const set = randomTranscoders({ kind: "clt", nLayers: model.cfg.nLayers, dModel: model.cfg.dModel, dTranscoder: 48, seed: 5 });
        const r = await buildReplacement(model, set, model.toTokens("When Mia and Leo went out, Mia gave a ball to"));
        const g = attributeReplacement(r, {}, String);
        const target = g.targets[0];
        const edits = g.features.slice(0, 12).filter((_, i) => i % 3 === 0).map((f, i) => ({ layer: f.layer, pos: f.pos, feature: f.feature, kind: (["zero", "scale", "set", "zero"] as const)[i % 4], value: i % 4 === 1 ? 3 : 0.5 }));
        const result = await interveneOnFeatures(model, r, target, edits);
        assert.ok(Math.abs(result.constrained - result.predicted) <= 1e-4 * Math.max(1, Math.abs(result.predicted)), `predicted ${result.predicted}, constrained ${result.constrained}`);
        assert.ok(Math.abs(result.predicted) > 1e-4, "the edits should move the target");
        assert.equal(typeof result.free, "number");
        // Zero is a scale by 0: the same change.
        const asZero = await interveneOnFeatures(model, r, target, [{ ...edits[0], kind: "zero" }]);
        const asScale = await interveneOnFeatures(model, r, target, [{ ...edits[0], kind: "scale", value: 0 }]);
        assert.equal(asZero.predicted, asScale.predicted);
        assert.ok(Math.abs((asZero.free ?? NaN) - (asScale.free ?? NaN)) < 1e-5);
        const silent = Array.from({ length: 48 }, (_, f) => f).find((f) => r.acts[1][1 * 48 + f] === 0) as number;
        await rejectsWith(interveneOnFeatures(model, r, target, [{ layer: 1, pos: 1, feature: silent, kind: "zero" }]), "bad-argument", /not active at position 1/);
      } finally {
        await model.dispose();
      }
    });
  }

  it("pruning keeps tokens and logits, drops weak nodes, and scores lie in [0, 1]", async () => {
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    try {
      const set = randomTranscoders({ kind: "plt", nLayers: 2, dModel: model.cfg.dModel, dTranscoder: 64, seed: 3 });
      const r = await buildReplacement(model, set, model.toTokens("the cat sat on the mat and the dog"));
      const g = attributeReplacement(r, {}, String);
      const pruned = pruneGraph(g.adjacency, g.layout, g.targets.map((t) => t.probability), 0.8, 0.98);
      const n = pruned.nodeMask.length;
      for (let i = tokenNode(g.layout, 0); i < n; i++) assert.equal(pruned.nodeMask[i], 1);
      const keptFeatures = pruned.nodeMask.subarray(0, g.layout.nFeatures).reduce((a, b) => a + b, 0);
      assert.ok(keptFeatures > 0 && keptFeatures < g.layout.nFeatures, `${keptFeatures} of ${g.layout.nFeatures} features kept`);
      const loose = pruneGraph(g.adjacency, g.layout, g.targets.map((t) => t.probability), 0.99, 0.999);
      assert.ok(loose.nodeMask.reduce((a, b) => a + b, 0) >= pruned.nodeMask.reduce((a, b) => a + b, 0));
      const scores = graphScores(g.adjacency, g.layout, g.targets.map((t) => t.probability));
      for (const v of [scores.replacement, scores.completeness]) assert.ok(v > 0 && v < 1, `score ${v}`);
      assert.deepEqual(pruned.scores, scores);
      // Every kept feature has an edge in and out, every kept error an edge out.
      for (let j = 0; j < tokenNode(g.layout, 0); j++) {
        if (!pruned.nodeMask[j]) continue;
        let into = j >= g.layout.nFeatures;
        let out = false;
        for (let k = 0; k < n; k++) {
          into ||= pruned.edgeMask[j * n + k] === 1;
          out ||= pruned.edgeMask[k * n + j] === 1;
        }
        assert.ok(into && out, `node ${j} kept without an edge in or out`);
      }
      // Without any error (transcoders that reconstruct exactly), both scores are 1.
      const exact = { ...r, errors: r.errors.map((e) => new Float32Array(e.length)) };
      const ge = attributeReplacement(exact, {}, String);
      const se = graphScores(ge.adjacency, ge.layout, ge.targets.map((t) => t.probability));
      assert.ok(Math.abs(se.replacement - 1) < 1e-9 && Math.abs(se.completeness - 1) < 1e-9, JSON.stringify(se));
    } finally {
      await model.dispose();
    }
  });

  it("with --max-feature-nodes, keeps the features with the most influence and the same edges among them", async () => {
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    try {
      const set = randomTranscoders({ kind: "plt", nLayers: 2, dModel: model.cfg.dModel, dTranscoder: 64, seed: 3 });
      const r = await buildReplacement(model, set, model.toTokens("the cat sat on the mat and the dog"));
      const full = attributeReplacement(r, {}, String);
      const small = attributeReplacement(r, { maxFeatureNodes: 20, batchSize: 8 }, String);
      assert.equal(small.features.length, 20);
      assert.ok(full.features.length > 20);
      const nf = full.layout.nFeatures + full.layout.nErrors + full.layout.nTokens + full.layout.nLogits;
      const ns = small.layout.nFeatures + small.layout.nErrors + small.layout.nTokens + small.layout.nLogits;
      const index = small.features.map((f) => full.features.indexOf(f));
      // A logit row over the kept features and every token matches the full graph's.
      for (let j = 0; j < small.layout.nFeatures; j++) assert.equal(small.adjacency[logitNode(small.layout, 0) * ns + j], full.adjacency[logitNode(full.layout, 0) * nf + index[j]]);
      for (let p = 0; p < small.layout.nTokens; p++) assert.equal(small.adjacency[logitNode(small.layout, 0) * ns + tokenNode(small.layout, p)], full.adjacency[logitNode(full.layout, 0) * nf + tokenNode(full.layout, p)]);
    } finally {
      await model.dispose();
    }
  });

  it("refuses a graph bigger than the memory limit", async () => {
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    try {
      const set = randomTranscoders({ kind: "plt", nLayers: 2, dModel: model.cfg.dModel, dTranscoder: 64 });
      const r = await buildReplacement(model, set, model.toTokens("the cat sat on the mat"));
      throwsWith(() => attributeReplacement(r, { maxMemoryBytes: 1024 }, String), "model-too-large", /needs about .* MB, more than the 0 MB allowed/);
      // A limit the whole graph passes but a smaller one fits: the CLI's words for the error's hint
      // name the largest --max-feature-nodes that fits, and that graph is built within the limit.
      const all = r.features.length;
      const limit = Math.floor((estimateAttributionBytes(r, 1, all) + estimateAttributionBytes(r, 1, Math.floor(all / 3))) / 2);
      let message = "";
      try {
        attributeReplacement(r, { maxMemoryBytes: limit, targets: { kind: "token", token: 5 } }, String);
      } catch (error) {
        message = errorText(error as LoupeError, "cli");
      }
      const suggested = Number(/--max-feature-nodes (\d+)/.exec(message)?.[1]);
      assert.ok(suggested > all / 3 && suggested < all, `${message} (${all} active features)`);
      assert.ok(estimateAttributionBytes(r, 1, suggested) <= limit && estimateAttributionBytes(r, 1, suggested + 1) > limit);
      const g = attributeReplacement(r, { maxMemoryBytes: limit, maxFeatureNodes: suggested, targets: { kind: "token", token: 5 } }, String);
      assert.equal(g.features.length, suggested);
    } finally {
      await model.dispose();
    }
  });
});

describe("circuits: prompts traced behind a special token, as circuit-tracer does", function () {
  this.timeout(60_000);

  it("leads a GPT-2 prompt with its <|endoftext|> once, holds that position constant, and leaves Llama's <s> alone", async () => {
    const gpt2 = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    const llama = await HookedModel.load(TINY_LLAMA, { cacheDir: null, threads: 1 });
    try {
      const text = "the cat sat on the mat";
      const own = gpt2.encode(text);
      const traced = traceEncoding(gpt2, text);
      assert.deepEqual(traced.ids, [gpt2.cfg.bosTokenId, ...own.ids]);
      assert.deepEqual(traced.offsets, [[0, 0], ...own.offsets]);
      assert.equal(traced.lead, 1);
      assert.deepEqual(traceEncoding(gpt2, "<|endoftext|>the cat").ids.filter((id) => id === gpt2.cfg.bosTokenId).length, 1, "a prompt that starts with it gets no second one");
      assert.deepEqual(traceEncoding(llama, text), llama.encode(text), "Llama's template already leads with <s>");
      assert.equal(llama.encode(text).ids[0], llama.cfg.bosTokenId);

      // Position 0 is a constant: no feature there, a zero error; the prompt's own tokens keep theirs.
      const set = randomTranscoders({ kind: "plt", nLayers: gpt2.cfg.nLayers, dModel: gpt2.cfg.dModel, dTranscoder: 64, seed: 3 });
      const r = await buildReplacement(gpt2, set, traced.ids);
      assert.ok(r.features.length > 0 && r.features.every((f) => f.pos > 0));
      assert.ok(r.errors.every((e) => e.subarray(0, gpt2.cfg.dModel).every((x) => x === 0)));
      assert.ok(r.errors.some((e) => e.subarray(gpt2.cfg.dModel).some((x) => x !== 0)));
    } finally {
      await gpt2.dispose();
      await llama.dispose();
    }
  });
});

describe("circuits: transcoder files and bad input", function () {
  this.timeout(60_000);

  for (const kind of ["plt", "clt"] as const) {
    it(`writes and reads a ${kind.toUpperCase()} set in circuit-tracer's layout, encoding and decoding the same`, () => {
      const set = randomTranscoders({ kind, nLayers: 3, dModel: 8, dTranscoder: 12, activation: kind === "plt" ? { kind: "jumprelu" } : { kind: "topk", k: 3 }, skip: kind === "plt" });
      const dir = scratchDir(`tc-${kind}`);
      const files = saveTranscoders(dir, set).map((f) => path.basename(f));
      assert.deepEqual(files.sort(), (kind === "plt" ? ["config.yaml", "layer_0.safetensors", "layer_1.safetensors", "layer_2.safetensors"] : ["config.yaml", "W_dec_0.safetensors", "W_dec_1.safetensors", "W_dec_2.safetensors", "W_enc_0.safetensors", "W_enc_1.safetensors", "W_enc_2.safetensors"]).sort());
      const back = loadTranscoders(dir);
      assert.equal(back.kind, kind);
      assert.deepEqual(back.activation, set.activation);
      const x = Float32Array.from({ length: 2 * 8 }, (_, i) => Math.sin(i));
      const acts = [0, 1, 2].map((l) => encode(set, l, x, 2));
      const actsBack = [0, 1, 2].map((l) => encode(back, l, x, 2));
      assert.deepEqual(actsBack, acts);
      assert.deepEqual(decode(back, actsBack, [x, x, x], 2), decode(set, acts, [x, x, x], 2));
      const yaml = fs.readFileSync(path.join(dir, "config.yaml"), "utf8");
      assert.match(yaml, new RegExp(`model_kind: ${kind === "plt" ? "transcoder_set" : "cross_layer_transcoder"}`));
      assert.match(yaml, /feature_input_hook: mlp\.hook_in/);
      assert.match(yaml, /feature_output_hook: hook_mlp_out/);
    });
  }

  it("reads circuit-tracer's PLT tensors by their names and shapes (W_enc [d_tc, d_model], W_skip applied as x @ W_skip^T)", () => {
    const dir = scratchDir("tc-ct");
    const D = 2;
    const F = 3;
    const t = (data: number[], shape: number[]) => ({ dtype: "F32" as const, shape, data: Float32Array.from(data) });
    fs.writeFileSync(path.join(dir, "layer_0.safetensors"), encodeSafetensors({
      W_enc: t([1, 0, 0, 1, 1, 1], [F, D]),
      W_dec: t([1, 0, 0, 1, 1, 1], [F, D]),
      b_enc: t([0, 0, -10], [F]),
      b_dec: t([0, 0], [D]),
      W_skip: t([0, 1, 0, 0], [D, D]),
      "activation_function.threshold": t([0.5, 0.5, 0.5], [F]),
    }));
    fs.writeFileSync(path.join(dir, "config.yaml"), "model_kind: transcoder_set\nfeature_input_hook: blocks.0.mlp.hook_in\nfeature_output_hook: hook_mlp_out\nscan: my-scan\n");
    const set = loadTranscoders(dir);
    assert.equal(set.activation.kind, "jumprelu");
    assert.equal(set.scan, "my-scan");
    const x = Float32Array.from([2, 0.3]);
    const acts = encode(set, 0, x, 1);
    assert.deepEqual(Array.from(acts), [2, 0, 0]); // 0.3 is under the threshold; feature 2 is pushed down by its bias
    // reconstruction = 2 * W_dec[0] + W_skip @ x = [2, 0] + [0.3, 0]
    assert.deepEqual(Array.from(decode(set, [acts], [x], 1)[0]).map((v) => +v.toFixed(6)), [2.3, 0]);
  });

  it("names the file and the fix for a broken folder", () => {
    const dir = scratchDir("tc-bad");
    throwsWith(() => loadTranscoders(dir), "missing-file", /No config\.yaml in .*loupe transcoder train/);
    fs.writeFileSync(path.join(dir, "config.yaml"), "model_kind: something\n");
    throwsWith(() => loadTranscoders(dir), "bad-file", /model_kind is "something"; expected transcoder_set/);
    fs.writeFileSync(path.join(dir, "config.yaml"), "model_kind: transcoder_set\nfeature_input_hook: attn.hook_z\nfeature_output_hook: hook_mlp_out\n");
    throwsWith(() => loadTranscoders(dir), "bad-file", /feature_input_hook is "attn\.hook_z"/);
    fs.writeFileSync(path.join(dir, "config.yaml"), "model_kind: transcoder_set\nfeature_input_hook: mlp.hook_in\nfeature_output_hook: hook_mlp_out\n");
    throwsWith(() => loadTranscoders(dir), "missing-file", /has no layer_\{i\}\.safetensors files/);
    saveTranscoders(dir, randomTranscoders({ kind: "plt", nLayers: 3, dModel: 4, dTranscoder: 5 }));
    fs.rmSync(path.join(dir, "layer_1.safetensors"));
    throwsWith(() => loadTranscoders(dir), "missing-file", /layer_\{i\}\.safetensors for layer 1 is missing/);
  });

  it("refuses transcoders for another model, a prompt past the context, and a prompt with no active feature", async () => {
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    try {
      const D = model.cfg.dModel;
      const tokens = model.toTokens("the cat sat");
      await rejectsWith(buildReplacement(model, randomTranscoders({ kind: "plt", nLayers: 2, dModel: D + 1, dTranscoder: 8 }), tokens), "bad-shape", /reads d_model 33 but the model .* has d_model 32/);
      await rejectsWith(buildReplacement(model, randomTranscoders({ kind: "plt", nLayers: 3, dModel: D, dTranscoder: 8 }), tokens), "bad-shape", /has 3 layers but the model .* has 2/);
      const ok = randomTranscoders({ kind: "plt", nLayers: 2, dModel: D, dTranscoder: 8 });
      await rejectsWith(buildReplacement(model, ok, new Array(model.cfg.nCtx + 1).fill(tokens[0])), "context-overflow", /more than the model's context of 64/);
      const silent = randomTranscoders({ kind: "plt", nLayers: 2, dModel: D, dTranscoder: 8, encoderBias: -1000 });
      const r = await buildReplacement(model, silent, tokens);
      throwsWith(() => attributeReplacement(r, {}, String), "empty-input", /No transcoder feature is active on this prompt/);
    } finally {
      await model.dispose();
    }
  });
});

function assertClose(a: Float32Array, b: Float32Array, tol: number): void {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  assert.ok(worst < tol, `max difference ${worst}`);
}
