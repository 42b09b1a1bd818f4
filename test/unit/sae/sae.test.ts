import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { errorText, LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { encodeSafetensors } from "../../../src/core/model/safetensors";
import {
  checkSaeFits,
  crossEntropy,
  gatherActivations,
  geometricMedian,
  loadSae,
  parseSaeConfig,
  Sae,
  saeFeatureActivations,
  saveSae,
  spliceSae,
  trainTopKSae,
  type SaeConfig,
  type TopKTrainProgress,
} from "../../../src/core/sae";
import { gatherActivationsAt } from "../../../src/core/sae/activations";
import { seededRandom } from "../../../src/core/tensor/random";
import { maxAbsDiff, tensor } from "../../../src/core/tensor/tensor";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";
import { rejectsWith, throwsWith } from "../../helpers/errors";

const SAE_FIXTURES = path.join(FIXTURES, "sae");
const TOLERANCE = 1e-5;

interface SaeReference {
  hook_name: string;
  tokens: number[];
  resid: number[];
  saes: Record<string, { architecture: string; feature_acts: number[]; reconstruction: number[]; l0: number[] }>;
}

const reference = JSON.parse(fs.readFileSync(path.join(SAE_FIXTURES, "reference.json"), "utf8")) as SaeReference;

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function nonZeros(features: Float32Array, row: number, d_sae: number): number {
  let n = 0;
  for (let i = row * d_sae; i < (row + 1) * d_sae; i++) if (features[i] !== 0) n++;
  return n;
}

/** A copy of a fixture SAE folder whose cfg.json or weights a test may change. */
function copySae(name: string): string {
  const dir = scratchDir(`sae-${name}`);
  for (const file of fs.readdirSync(path.join(SAE_FIXTURES, name))) fs.copyFileSync(path.join(SAE_FIXTURES, name, file), path.join(dir, file));
  return dir;
}

function editCfg(dir: string, edit: (cfg: Record<string, unknown>) => void): void {
  const file = path.join(dir, "cfg.json");
  const cfg = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg));
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** A random SAE built in memory with SAELens-style config. */
function randomSae(d_in: number, d_sae: number, overrides: Partial<SaeConfig> = {}, seed = 1): Sae {
  const random = seededRandom(seed);
  const cfg: SaeConfig = {
    architecture: "standard",
    d_in,
    d_sae,
    hook_name: "blocks.0.hook_resid_post",
    rescale_acts_by_decoder_norm: false,
    apply_b_dec_to_input: true,
    normalize_activations: "none",
    finetuning_scaling_factor: false,
    dtype: "float32",
    ...overrides,
  };
  const fill = (n: number, s: number) => Float32Array.from({ length: n }, () => gaussian(random) * s);
  return new Sae(cfg, {
    W_enc: fill(d_in * d_sae, 0.5),
    b_enc: fill(d_sae, 0.1),
    W_dec: fill(d_sae * d_in, 0.3),
    b_dec: fill(d_in, 0.1),
    threshold: cfg.architecture === "jumprelu" ? Float32Array.from({ length: d_sae }, () => random()) : undefined,
  });
}

/**
 * Synthetic activations with a known sparse dictionary: each row is a positive mix of `active`
 * random unit directions (of `atoms`), plus an offset and a little noise.
 */
function sparseDictionaryData(d: number, atoms: number, rows: number, active: number, seed: number): { data: Float32Array; dictionary: Float32Array } {
  const random = seededRandom(seed);
  const dictionary = new Float32Array(atoms * d);
  for (let a = 0; a < atoms; a++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += (dictionary[a * d + j] = gaussian(random)) ** 2;
    for (let j = 0; j < d; j++) dictionary[a * d + j] /= Math.sqrt(ss);
  }
  const data = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < active; i++) {
      const a = Math.floor(random() * atoms);
      const c = 1 + random();
      for (let j = 0; j < d; j++) data[r * d + j] += c * dictionary[a * d + j];
    }
    for (let j = 0; j < d; j++) data[r * d + j] += 0.5 + 0.01 * gaussian(random);
  }
  return { data, dictionary };
}

/** How many dictionary atoms some decoder row points along (cosine above `min`). */
function recoveredAtoms(dictionary: Float32Array, atoms: number, W_dec: Float32Array, d_sae: number, d: number, min: number): number {
  let found = 0;
  for (let a = 0; a < atoms; a++) {
    let best = -1;
    for (let s = 0; s < d_sae; s++) {
      let dot = 0;
      let norm = 0;
      for (let j = 0; j < d; j++) {
        dot += dictionary[a * d + j] * W_dec[s * d + j];
        norm += W_dec[s * d + j] ** 2;
      }
      best = Math.max(best, dot / Math.sqrt(norm));
    }
    if (best > min) found++;
  }
  return found;
}

describe("SAE (SAELens folders vs an independent PyTorch implementation)", function () {
  let model: HookedModel;

  before(async () => {
    model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
  });
  after(async () => model?.dispose());

  for (const name of Object.keys(reference.saes)) {
    it(`${name}: feature activations and reconstruction match PyTorch within 1e-5`, async () => {
      const expected = reference.saes[name];
      const sae = loadSae(path.join(SAE_FIXTURES, name));
      assert.equal(sae.cfg.architecture, expected.architecture);
      assert.equal(sae.hookName, reference.hook_name);
      checkSaeFits(model, sae);
      const run = await saeFeatureActivations(model, sae, reference.tokens);
      assert.equal(run.features.length, reference.tokens.length * sae.d_sae);
      assert.ok(maxAbsDiff(run.input, reference.resid) < TOLERANCE, "the hook's residual differs from PyTorch's");
      const diff = maxAbsDiff(run.features, expected.feature_acts);
      assert.ok(diff < TOLERANCE, `feature activations differ from PyTorch by ${diff}`);
      const { reconstruction } = sae.forward(run.input);
      assert.ok(maxAbsDiff(reconstruction, expected.reconstruction) < TOLERANCE, "reconstruction differs");
      for (let t = 0; t < reference.tokens.length; t++) assert.equal(nonZeros(run.features, t, sae.d_sae), expected.l0[t], `L0 at token ${t}`);
    });
  }

  it("reads both cfg.json layouts: a flat pre-6.0 file and its 6.x form give the same SAE", () => {
    const flat = loadSae(path.join(SAE_FIXTURES, "relu"));
    const dir = copySae("relu");
    editCfg(dir, (cfg) => {
      const metadata = { model_name: cfg.model_name, hook_name: cfg.hook_name, hook_head_index: null, prepend_bos: false, context_size: 64, sae_lens_version: "6.3.0" };
      for (const key of Object.keys(cfg)) if (!["d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations"].includes(key)) delete cfg[key];
      Object.assign(cfg, { architecture: "standard", reshape_activations: "none", metadata });
    });
    const v6 = loadSae(dir);
    assert.equal(v6.hookName, flat.hookName);
    assert.equal(v6.cfg.hook_layer, 0);
    assert.equal(v6.cfg.sae_lens_version, "6.3.0");
    const x = Float32Array.from(reference.resid);
    assert.deepEqual(Array.from(v6.encode(x).features), Array.from(flat.encode(x).features));

    // Oldest spellings: hook_point, boolean normalize_activations, TopK through activation_fn_str.
    const old = parseSaeConfig({ d_in: 32, d_sae: 48, hook_point: "blocks.1.hook_resid_pre", hook_point_layer: 1, normalize_activations: false, activation_fn_str: "topk", activation_fn_kwargs: { k: 4 } });
    assert.equal(old.hook_name, "blocks.1.hook_resid_pre");
    assert.equal(old.hook_layer, 1);
    assert.equal(old.architecture, "topk");
    assert.equal(old.k, 4);
    assert.equal(old.normalize_activations, "none");
    assert.equal(old.apply_b_dec_to_input, true, "SAELens's default");
  });

  it("decode(encode(x)) has the input's shape; TopK keeps exactly k non-zeros", () => {
    for (const name of Object.keys(reference.saes)) {
      const sae = loadSae(path.join(SAE_FIXTURES, name));
      const rows = 5;
      const random = seededRandom(3);
      const x = Float32Array.from({ length: rows * sae.d_in }, () => gaussian(random));
      const enc = sae.encode(x, rows);
      assert.equal(enc.features.length, rows * sae.d_sae);
      assert.equal(sae.decode(enc.features, rows, enc.norm).length, rows * sae.d_in);
    }
    const topk = loadSae(path.join(SAE_FIXTURES, "topk"));
    const k = topk.cfg.k!;
    // Shift the encoder's bias up so more than k latents are positive everywhere: top-k must cut.
    const wide = new Sae(topk.cfg, { ...topk.weights, b_enc: topk.weights.b_enc.map((v) => v + 50) });
    const x = Float32Array.from(reference.resid);
    const rows = reference.tokens.length;
    const { features } = wide.encode(x, rows);
    for (let t = 0; t < rows; t++) assert.equal(nonZeros(features, t, wide.d_sae), k, `token ${t}`);
    const { features: relu } = new Sae({ ...topk.cfg, architecture: "standard", k: undefined }, wide.weights).encode(x, rows);
    assert.ok(nonZeros(relu, 0, wide.d_sae) > k, "without top-k more latents would fire");
  });

  it("TopK with rescale_acts_by_decoder_norm equals its folded form (SAELens folds it so on save)", () => {
    const sae = randomSae(32, 40, { architecture: "topk", k: 5, rescale_acts_by_decoder_norm: true }, 7);
    const { W_enc, b_enc, W_dec, b_dec } = sae.weights;
    const norms = Float32Array.from({ length: 40 }, (_, s) => Math.hypot(...W_dec.subarray(s * 32, (s + 1) * 32)));
    const folded = new Sae({ ...sae.cfg, rescale_acts_by_decoder_norm: false }, {
      W_enc: W_enc.map((v, i) => v * norms[i % 40]),
      b_enc: b_enc.map((v, s) => v * norms[s]),
      W_dec: W_dec.map((v, i) => v / norms[Math.floor(i / 32)]),
      b_dec,
    });
    const x = Float32Array.from(reference.resid);
    const a = sae.forward(x);
    const b = folded.forward(x);
    assert.ok(maxAbsDiff(a.features, b.features) < 1e-4);
    assert.ok(maxAbsDiff(a.reconstruction, b.reconstruction) < 1e-4);
  });

  it("folds an expected_average_only_in scaling factor given at load, and asks for it otherwise", () => {
    const dir = copySae("relu");
    editCfg(dir, (cfg) => (cfg.normalize_activations = "expected_average_only_in"));
    throwsWith(() => loadSae(dir), "bad-file", new RegExp(`${escape(path.join(dir, "cfg.json"))}.*expected_average_only_in.*normScalingFactor`));
    const s = 1.7;
    const folded = loadSae(dir, { normScalingFactor: s });
    assert.equal(folded.cfg.normalize_activations, "none");
    const plain = loadSae(path.join(SAE_FIXTURES, "relu"));
    const x = Float32Array.from(reference.resid);
    const scaled = x.map((v) => v * s);
    const want = plain.forward(scaled);
    const got = folded.forward(x);
    assert.ok(maxAbsDiff(got.features, want.features) < 1e-4);
    assert.ok(maxAbsDiff(got.reconstruction, want.reconstruction.map((v) => v / s)) < 1e-4);
  });

  it("normalises per token for layer_norm: a token's shift and scale do not change its features", () => {
    const sae = randomSae(32, 40, { normalize_activations: "layer_norm" });
    const random = seededRandom(4);
    const x = Float32Array.from({ length: 32 }, () => gaussian(random));
    const moved = x.map((v) => 3 * v + 0.7);
    const a = sae.forward(x);
    const b = sae.forward(moved);
    assert.ok(maxAbsDiff(a.features, b.features) < 1e-4);
    assert.ok(maxAbsDiff(b.reconstruction, a.reconstruction.map((v) => 3 * v + 0.7)) < 1e-3);
  });

  it("splicing equals a manual replace run with the reconstruction, and scores CE loss", async () => {
    const sae = loadSae(path.join(SAE_FIXTURES, "relu"));
    const tokens = reference.tokens;
    const result = await spliceSae(model, sae, tokens);
    const { cache, logits: clean } = await model.runWithCache(tokens, { names: [sae.hookName] });
    const activation = cache.get(sae.hookName);
    const { reconstruction } = sae.forward(activation.data);
    const manual = await model.runWithHooks(tokens, [{ hook: sae.hookName, kind: "replace", source: tensor(reconstruction, activation.dims) }]);
    assert.ok(maxAbsDiff(result.splicedLogits.data, manual.logits.data) < 1e-5, "spliced logits");
    const zeroed = await model.runWithHooks(tokens, [{ hook: sae.hookName, kind: "zero" }]);
    assert.ok(Math.abs(result.ceClean - crossEntropy(clean, [tokens], 0).mean) < 1e-6);
    assert.ok(Math.abs(result.ceSpliced - crossEntropy(manual.logits, [tokens], 0).mean) < 1e-5);
    assert.ok(Math.abs(result.ceZeroAblated - crossEntropy(zeroed.logits, [tokens], 0).mean) < 1e-5);
    assert.equal(result.predictedTokens, tokens.length - 1);
    const recovered = (result.ceZeroAblated - result.ceSpliced) / (result.ceZeroAblated - result.ceClean);
    assert.ok(Math.abs(result.ceRecovered - recovered) < 1e-9);
    assert.ok(result.meanL0 > 0 && result.meanL0 <= sae.d_sae);

    // A padded batch scores each row over its own tokens only.
    const short = tokens.slice(0, 5);
    const batched = await spliceSae(model, sae, [tokens, short]);
    const alone = await spliceSae(model, sae, short);
    const expected = (result.ceSpliced * (tokens.length - 1) + alone.ceSpliced * 4) / (tokens.length + 3);
    assert.ok(Math.abs(batched.ceSpliced - expected) < 1e-5);
  });

  it("splices a one-head SAE on hook_z into that head only", async () => {
    const sae = randomSae(8, 16, { hook_name: "blocks.1.attn.hook_z", hook_head_index: 2 }, 5);
    checkSaeFits(model, sae);
    const tokens = reference.tokens;
    const result = await spliceSae(model, sae, tokens);
    const { cache } = await model.runWithCache(tokens, { names: [sae.hookName] });
    const z = cache.get(sae.hookName);
    const [, T, H, Dh] = z.dims;
    const x = new Float32Array(T * Dh);
    for (let t = 0; t < T; t++) x.set(z.data.subarray((t * H + 2) * Dh, (t * H + 3) * Dh), t * Dh);
    const source = z.data.slice();
    const { reconstruction } = sae.forward(x);
    for (let t = 0; t < T; t++) source.set(reconstruction.subarray(t * Dh, (t + 1) * Dh), (t * H + 2) * Dh);
    const manual = await model.runWithHooks(tokens, [{ hook: sae.hookName, kind: "replace", source: tensor(source, z.dims), heads: [2] }]);
    assert.ok(maxAbsDiff(result.splicedLogits.data, manual.logits.data) < 1e-5);
  });

  it("gathers training vectors per token in text order", async () => {
    const texts = ["Mia gave Leo a red ball.", "One two.", "The cat sat on the mat and looked at the door."];
    const acts = await gatherActivations(model, "blocks.0.hook_resid_post", texts, { batchSize: 2 });
    const lengths = texts.map((t) => model.toTokens(t).length);
    assert.equal(acts.rows, lengths.reduce((a, b) => a + b, 0));
    const { cache } = await model.runWithCache(model.toTokens(texts[1]), { names: ["blocks.0.hook_resid_post"] });
    const at = lengths[0] * 32;
    assert.ok(maxAbsDiff(acts.data.subarray(at, at + lengths[1] * 32), cache.get("blocks.0.hook_resid_post").data) < 1e-5);
    const capped = await gatherActivations(model, "blocks.0.hook_resid_post", texts, { maxTokens: lengths[0] + 2 });
    assert.equal(capped.rows, lengths[0] + 2);
  });

  it("gathers several hooks from one pass per batch, each equal to gathering it alone", async () => {
    const texts = ["Mia gave Leo a red ball.", "One two.", "The cat sat on the mat and looked at the door."];
    const hooks = ["blocks.0.hook_resid_mid", "blocks.1.hook_mlp_out"];
    const cap = model.toTokens(texts[0]).length + 3;
    const together = await gatherActivationsAt(model, hooks, texts, { batchSize: 2, maxTokens: cap });
    for (const [h, hook] of hooks.entries()) {
      const alone = await gatherActivations(model, hook, texts, { batchSize: 2, maxTokens: cap });
      assert.equal(together[h].hook_name, hook);
      assert.equal(together[h].rows, alone.rows);
      assert.deepEqual(Array.from(together[h].data), Array.from(alone.data));
    }
    assert.ok(maxAbsDiff(together[0].data, together[1].data) > 0, "the two hooks' rows differ");
  });
});

describe("TopK SAE training", () => {
  const d = 32;
  const atoms = 48;
  const { data, dictionary } = sparseDictionaryData(d, atoms, 8000, 3, 5);

  it("reduces the loss, recovers the dictionary's directions and reports progress", async function () {
    this.timeout(120_000);
    const progress: TopKTrainProgress[] = [];
    const result = await trainTopKSae(data, 8000, d, { hook_name: "blocks.0.hook_resid_post", d_sae: 64, k: 3, epochs: 8, batchSize: 256, seed: 1, progressEvery: 25, onProgress: (p) => progress.push(p) });
    assert.ok(progress.length >= 5);
    assert.deepEqual(progress.map((p) => p.step), [...progress.map((p) => p.step)].sort((a, b) => a - b));
    assert.equal(progress[progress.length - 1].step, result.steps);
    const first = progress[0].fvu;
    const last = progress[progress.length - 1].fvu;
    assert.ok(last < 0.1 && last < first / 4, `FVU ${first} -> ${last}`);
    const found = recoveredAtoms(dictionary, atoms, result.sae.weights.W_dec, 64, d, 0.9);
    assert.ok(found >= 0.8 * atoms, `recovered ${found} of ${atoms} directions`);
    // At most k active latents per token.
    const enc = result.sae.encode(data.subarray(0, 100 * d), 100);
    for (let r = 0; r < 100; r++) assert.ok(nonZeros(enc.features, r, 64) <= 3);
    // Decoder rows are unit-norm in the saved (raw-activation) space.
    for (let s = 0; s < 64; s++) {
      let ss = 0;
      for (let j = 0; j < d; j++) ss += result.sae.weights.W_dec[s * d + j] ** 2;
      assert.ok(Math.abs(Math.sqrt(ss) - 1) < 1e-4);
    }
  });

  it("steps against the loss gradient, AuxK term included (one Adam step vs finite differences)", async () => {
    // Adam's first step moves each weight by -lr * sign(gradient). With deadAfterTokens 0 every
    // latent counts as dead, so the AuxK term is live from the first step. Full batch: one step
    // sees every row, so the loss below is the loss the trainer differentiated.
    // Odd sizes exercise the encoder's tile remainders.
    const D = 6;
    const S = 9;
    const rows = 15;
    const k = 2;
    const auxK = 3;
    const auxCoefficient = 0.5;
    const random = seededRandom(3);
    const x0 = Float32Array.from({ length: rows * D }, () => gaussian(random) + 0.3);
    const common = { hook_name: "h", d_sae: S, k, auxK, auxCoefficient, deadAfterTokens: 0, steps: 1, batchSize: rows, seed: 9, lrDecayFraction: 0 };
    const before = await trainTopKSae(x0, rows, D, { ...common, lr: 1e-12 });
    const after = await trainTopKSae(x0, rows, D, { ...common, lr: 1e-4 });
    const s = before.dataScale;
    // Back to the space the trainer works in: data times s, biases times s.
    const x = Float64Array.from(x0, (v) => v * s);
    type Params = Record<"W_enc" | "b_enc" | "b_dec" | "W_dec", Float64Array>;
    const inTrainingSpace = (sae: Sae): Params => ({
      W_enc: Float64Array.from(sae.weights.W_enc),
      b_enc: Float64Array.from(sae.weights.b_enc, (v) => v * s),
      b_dec: Float64Array.from(sae.weights.b_dec, (v) => v * s),
      W_dec: Float64Array.from(sae.weights.W_dec),
    });
    const p0 = inTrainingSpace(before.sae);
    const p1 = inTrainingSpace(after.sae);
    const auxWeight = auxCoefficient * Math.min(S / auxK, 1);
    // Loss with the AuxK target e = x - x_hat held at `fixed` (it is detached in training).
    const loss = (p: Params, fixed?: Float64Array[]): { value: number; residuals: Float64Array[] } => {
      let value = 0;
      const residuals: Float64Array[] = [];
      for (let r = 0; r < rows; r++) {
        const xc = Float64Array.from({ length: D }, (_, j) => x[r * D + j] - p.b_dec[j]);
        const pre = Float64Array.from({ length: S }, (_, i) => xc.reduce((acc, v, j) => acc + v * p.W_enc[j * S + i], p.b_enc[i]));
        const ranked = [...pre.keys()].sort((a, b) => pre[b] - pre[a]);
        const decode = (latents: number[], bias: boolean) => {
          const out = bias ? Float64Array.from(p.b_dec) : new Float64Array(D);
          for (const i of latents) for (let j = 0; j < D; j++) out[j] += Math.max(0, pre[i]) * p.W_dec[i * D + j];
          return out;
        };
        const xHat = decode(ranked.slice(0, k), true);
        const e = fixed ? fixed[r] : Float64Array.from(xHat, (v, j) => x[r * D + j] - v);
        residuals.push(e);
        const eHat = decode(ranked.slice(0, auxK), false);
        for (let j = 0; j < D; j++) value += ((xHat[j] - x[r * D + j]) ** 2 + auxWeight * (eHat[j] - e[j]) ** 2) / rows;
      }
      return { value, residuals };
    };
    const { residuals } = loss(p0);
    let checked = 0;
    // W_dec is left out: its step is projected and renormalised, so it is not -lr * sign(g).
    for (const name of ["W_enc", "b_enc", "b_dec"] as const) {
      for (let i = 0; i < p0[name].length; i++) {
        const h = 1e-6;
        const plus = { ...p0, [name]: p0[name].slice() };
        const minus = { ...p0, [name]: p0[name].slice() };
        plus[name][i] += h;
        minus[name][i] -= h;
        const g = (loss(plus, residuals).value - loss(minus, residuals).value) / (2 * h);
        if (Math.abs(g) < 1e-4) continue;
        assert.equal(Math.sign(p1[name][i] - p0[name][i]), -Math.sign(g), `${name}[${i}]: gradient ${g}`);
        checked++;
      }
    }
    assert.ok(checked > 30, `only ${checked} weights had a clear gradient`);
  });

  it("stops with a cancelled error when its AbortSignal fires", async () => {
    const controller = new AbortController();
    let reports = 0;
    await rejectsWith(
      trainTopKSae(data, 8000, d, {
        hook_name: "blocks.0.hook_resid_post",
        d_sae: 64,
        k: 3,
        epochs: 100,
        batchSize: 256,
        progressEvery: 1,
        signal: controller.signal,
        onProgress: () => {
          if (++reports === 3) controller.abort();
        },
      }),
      "cancelled",
      /Cancelled/,
    );
    assert.equal(reports, 3);
  });

  it("saves in SAELens's layout and the loader reads it back unchanged", async () => {
    const result = await trainTopKSae(data.subarray(0, 2000 * d), 2000, d, { hook_name: "blocks.0.hook_resid_post", d_sae: 64, k: 3, steps: 20, batchSize: 128, model_name: "tiny-gpt2" });
    const dir = scratchDir("sae-save");
    const { cfgFile } = saveSae(dir, result.sae);
    const cfg = JSON.parse(fs.readFileSync(cfgFile, "utf8"));
    assert.equal(cfg.architecture, "topk");
    assert.equal(cfg.k, 3);
    assert.equal(cfg.d_in, d);
    assert.equal(cfg.d_sae, 64);
    assert.equal(cfg.metadata.hook_name, "blocks.0.hook_resid_post");
    assert.equal(cfg.metadata.model_name, "tiny-gpt2");
    assert.equal(cfg.normalize_activations, "none");
    const loaded = loadSae(dir);
    assert.equal(loaded.cfg.architecture, "topk");
    assert.equal(loaded.cfg.k, 3);
    for (const key of ["W_enc", "b_enc", "W_dec", "b_dec"] as const) assert.deepEqual(Array.from(loaded.weights[key]), Array.from(result.sae.weights[key]), key);
    const x = data.subarray(0, 10 * d);
    assert.deepEqual(Array.from(loaded.encode(x, 10).features), Array.from(result.sae.encode(x, 10).features));

    // A JumpReLU SAE keeps its threshold through a save.
    const jump = randomSae(32, 16, { architecture: "jumprelu" });
    saveSae(path.join(dir, "jump"), jump);
    assert.deepEqual(Array.from(loadSae(path.join(dir, "jump")).weights.threshold!), Array.from(jump.weights.threshold!));
  });

  it("can start b_dec at the geometric median, which one far-off token does not drag", async () => {
    const points = Float32Array.from([0, 0, 1, 0, 0, 1, 1, 1, 0.5, 0.5, 1000, 1000]);
    const median = geometricMedian(points, 6, 2);
    assert.ok(Math.hypot(median[0] - 0.5, median[1] - 0.5) < 0.05, `median ${median}`);
    const result = await trainTopKSae(data.subarray(0, 1000 * d), 1000, d, { hook_name: "h", d_sae: 16, k: 2, steps: 1, lr: 1e-12, bDecInit: "geometric-median" });
    const expected = geometricMedian(data.subarray(0, 1000 * d), 1000, d);
    assert.ok(maxAbsDiff(result.sae.weights.b_dec, expected) < 1e-4);
  });

  it("refuses bad options and non-finite data", async () => {
    await rejectsWith(trainTopKSae(data, 8000, d, { hook_name: "h", d_sae: 8, k: 9 }), "bad-argument", /k must be an integer from 1 to d_sae 8/);
    const broken = data.slice(0, 10 * d);
    broken[37] = NaN;
    await rejectsWith(trainTopKSae(broken, 10, d, { hook_name: "h", d_sae: 8, k: 2 }), "bad-argument", /non-finite value at row 1/);
  });
});

describe("SAE errors name the file", () => {
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })));
  after(async () => model?.dispose());

  it("a d_in that does not match the model's d_model", async () => {
    const dir = scratchDir("sae-width");
    saveSae(dir, randomSae(16, 24));
    const sae = loadSae(dir);
    const cfgFile = path.join(dir, "cfg.json");
    throwsWith(() => checkSaeFits(model, sae), "bad-shape", new RegExp(`${escape(cfgFile)}: d_in is 16 but blocks\\.0\\.hook_resid_post .* has 32 values per token \\(d_model\\)`));
    await rejectsWith(saeFeatureActivations(model, sae, "Mia"), "bad-shape", new RegExp(escape(cfgFile)));
  });

  it("a hook the model does not have", () => {
    const dir = scratchDir("sae-hook");
    saveSae(dir, randomSae(32, 24, { hook_name: "blocks.7.hook_resid_post" }));
    throwsWith(() => checkSaeFits(model, loadSae(dir)), "bad-argument", new RegExp(`${escape(path.join(dir, "cfg.json"))}: hook_name "blocks\\.7\\.hook_resid_post" is not a hook`));
  });

  it("a transcoder given as an SAE: its hook (the MLP's normalised input) is named, and each surface says where transcoders go", () => {
    for (const suffix of ["ln2.hook_normalized", "mlp.hook_in"]) {
      const dir = scratchDir("sae-transcoder-hook");
      saveSae(dir, randomSae(32, 24, { hook_name: `blocks.1.${suffix}` }));
      const hook = escape(`blocks.1.${suffix}`);
      throwsWith(() => checkSaeFits(model, loadSae(dir)), "bad-argument", new RegExp(`cfg\\.json: hook_name "${hook}" is the MLP's normalised input.*A dictionary reading it is a transcoder`));
      assert.throws(
        () => checkSaeFits(model, loadSae(dir)),
        (e: unknown) => e instanceof LoupeError && /Set loupe\.transcoderPath to it/.test(errorText(e, "editor")) && /loupe trace --transcoders/.test(errorText(e, "cli")),
      );
    }
  });

  it("a missing tensor", () => {
    const dir = copySae("jumprelu");
    const weightsFile = path.join(dir, "sae_weights.safetensors");
    const full = loadSae(path.join(SAE_FIXTURES, "jumprelu")).weights;
    fs.writeFileSync(
      weightsFile,
      encodeSafetensors({
        W_enc: { dtype: "F32", shape: [32, 48], data: full.W_enc },
        b_enc: { dtype: "F32", shape: [48], data: full.b_enc },
        W_dec: { dtype: "F32", shape: [48, 32], data: full.W_dec },
        b_dec: { dtype: "F32", shape: [32], data: full.b_dec },
      }),
    );
    throwsWith(() => loadSae(dir), "bad-file", new RegExp(`${escape(weightsFile)} has no tensor "threshold"`));
  });

  it("NaN weights, with the tensor and index", () => {
    const sae = randomSae(32, 24);
    sae.weights.W_enc[5 * 24 + 7] = NaN;
    const dir = scratchDir("sae-nan");
    saveSae(dir, sae);
    throwsWith(() => loadSae(dir), "bad-file", new RegExp(`${escape(path.join(dir, "sae_weights.safetensors"))}: tensor "W_enc" holds NaN at \\[5, 7\\]`));
  });

  it("a tensor whose shape disagrees with cfg.json", () => {
    const dir = copySae("relu");
    editCfg(dir, (cfg) => (cfg.d_sae = 40));
    throwsWith(() => loadSae(dir), "bad-shape", /sae_weights\.safetensors: tensor "W_enc" has shape \[32, 48\] but cfg\.json .* implies \[32, 40\]/);
  });

  it("an unknown architecture, and other settings Loupe cannot honour", () => {
    const dir = copySae("jumprelu");
    const cfgFile = path.join(dir, "cfg.json");
    editCfg(dir, (cfg) => (cfg.architecture = "gated"));
    throwsWith(() => loadSae(dir), "unsupported-architecture", new RegExp(`${escape(cfgFile)}: architecture "gated" is not supported`));
    editCfg(dir, (cfg) => {
      cfg.architecture = "jumprelu";
      cfg.normalize_activations = "whitening";
    });
    throwsWith(() => loadSae(dir), "bad-file", new RegExp(`${escape(cfgFile)}: normalize_activations "whitening" is not supported`));
    editCfg(dir, (cfg) => {
      cfg.normalize_activations = "none";
      delete (cfg.metadata as Record<string, unknown>).hook_name;
    });
    throwsWith(() => loadSae(dir), "bad-file", new RegExp(`${escape(cfgFile)}: no hook_name`));
  });

  it("a missing folder or cfg.json", () => {
    throwsWith(() => loadSae("/nonexistent/sae"), "missing-file", /\/nonexistent\/sae does not exist/);
    const dir = copySae("relu");
    fs.rmSync(path.join(dir, "cfg.json"));
    throwsWith(() => loadSae(dir), "missing-file", new RegExp(`No cfg\\.json at ${escape(path.join(dir, "cfg.json"))}`));
  });
});
