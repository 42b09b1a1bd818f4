import { strict as assert } from "node:assert";
import * as path from "node:path";
import { LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { loadSae, saeFeatureActivations } from "../../../src/core/sae";
import { describeEdit, editedActivation, featureEditIntervention, steerWithFeature } from "../../../src/core/sae/steer";
import { blockHook } from "../../../src/core/model/hooks";
import type { Intervention } from "../../../src/core/model/interventions";
import { argmax, maxAbsDiff } from "../../../src/core/tensor/tensor";
import { main } from "../../../src/cli/main";
import { FIXTURES, TINY_GPT2 } from "../../helpers/fixtures";

const RELU_SAE = path.join(FIXTURES, "sae", "relu");
const RESCALED_SAE = path.join(FIXTURES, "sae", "relu-rescale");
const PROMPT = "When Mia and Leo went to the shop, Mia gave";

describe("steering with an SAE feature", function () {
  let model: HookedModel;
  before(async () => {
    model = await HookedModel.load(TINY_GPT2, { cacheDir: null });
  });
  after(async () => {
    await model?.dispose();
  });

  it("rewrites the hook by (a' - a) times the feature's decoder row, leaving the rest of x alone", async () => {
    const sae = loadSae(RELU_SAE);
    const tokens = model.toTokens(PROMPT);
    const run = await saeFeatureActivations(model, sae, tokens);
    // The feature that fires most on the prompt, so zeroing it changes something.
    let feature = 0;
    let best = 0;
    run.features.forEach((v, i) => {
      if (v > best) [best, feature] = [v, i % sae.d_sae];
    });
    assert.ok(best > 0);
    const D = sae.d_in;
    const { intervention, before } = await featureEditIntervention(model, sae, tokens, { feature, kind: "clamp", value: 5 });
    assert.equal(intervention.kind, "replace");
    if (intervention.kind !== "replace") return;
    for (let t = 0; t < tokens.length; t++) {
      assert.ok(Math.abs(before[t] - run.features[t * sae.d_sae + feature]) < 1e-5);
      for (let j = 0; j < D; j++) {
        const expected = run.input[t * D + j] + (5 - before[t]) * sae.weights.W_dec[feature * D + j];
        assert.ok(Math.abs(intervention.source.data[t * D + j] - expected) < 1e-4, `token ${t} dim ${j}`);
      }
    }
  });

  it("is a no-op for scale 1, also on an SAE that normalises its input", async () => {
    const sae = loadSae(RESCALED_SAE);
    const tokens = model.toTokens(PROMPT);
    const run = await saeFeatureActivations(model, sae, tokens);
    const { intervention } = await featureEditIntervention(model, sae, tokens, { feature: 3, kind: "scale", factor: 1 });
    if (intervention.kind !== "replace") throw new Error("expected a replace");
    for (let i = 0; i < run.input.length; i++) assert.ok(Math.abs(intervention.source.data[i] - run.input[i]) < 1e-4);
  });

  it("generates what a plain `add` of amount x W_dec[f] generates, and differs from the original", async () => {
    const sae = loadSae(RELU_SAE);
    const feature = 7;
    const amount = 40;
    const result = await steerWithFeature(model, sae, PROMPT, { feature, kind: "add", amount }, { maxNewTokens: 6 });
    const vector = Array.from(sae.weights.W_dec.subarray(feature * sae.d_in, (feature + 1) * sae.d_in), (w) => amount * w);
    const byHand = await model.generate(PROMPT, { maxNewTokens: 6, interventions: [{ hook: sae.hookName, kind: "add", vector }] });
    const plain = await model.generate(PROMPT, { maxNewTokens: 6 });
    assert.deepEqual(result.steered.tokens, byHand.tokens);
    assert.deepEqual(result.original.tokens, plain.tokens);
    assert.notDeepEqual(result.steered.tokens, result.original.tokens, "an edit this large should change the continuation");
    assert.equal(result.prompt.tokens, model.toTokens(PROMPT).length);
    assert.equal(describeEdit(result.edit), `feature ${feature} raised by ${amount}`);
  });

  it("refuses a feature out of range, a non-finite amount, an empty prompt and a full context", async () => {
    const sae = loadSae(RELU_SAE);
    const refuses = async (p: Promise<unknown>, re: RegExp) => {
      await assert.rejects(p, (e: unknown) => e instanceof LoupeError && re.test(e.message));
    };
    await refuses(steerWithFeature(model, sae, PROMPT, { feature: sae.d_sae, kind: "zero" }), /outside 0\.\.47/);
    await refuses(steerWithFeature(model, sae, PROMPT, { feature: 1, kind: "clamp", value: Number.NaN }), /finite/);
    await refuses(steerWithFeature(model, sae, "", { feature: 1, kind: "zero" }), /empty/);
    const long = Array.from({ length: model.cfg.nCtx }, () => 5);
    await refuses(steerWithFeature(model, sae, long, { feature: 1, kind: "zero" }), /context window/);
  });
});

describe("steering with a key/value cache (reference model)", function () {
  this.timeout(120_000);
  const REFERENCE = path.join(__dirname, "..", "..", "..", "models", "reference");
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(REFERENCE, { cacheDir: null, threads: 1 })));
  after(async () => model?.dispose());

  /** Greedy steps that rerun the whole sequence with `interventionsFor(sofar)`: the uncached path, by hand. */
  async function rerunEachStep(prompt: number[], steps: number, interventionsFor: (sofar: number[]) => Promise<Intervention[]>): Promise<{ tokens: number[]; logits: Float32Array[] }> {
    const sofar = [...prompt];
    const logits: Float32Array[] = [];
    for (let step = 0; step < steps; step++) {
      const run = await model.runWithHooks(sofar, await interventionsFor(sofar));
      const V = run.logits.dims[2];
      const last = run.logits.data.slice((sofar.length - 1) * V, sofar.length * V);
      logits.push(last);
      sofar.push(argmax(last));
    }
    return { tokens: sofar.slice(prompt.length), logits };
  }

  async function generated(prompt: number[], steps: number, options: Parameters<HookedModel["generate"]>[1]): Promise<{ tokens: number[]; logits: Float32Array[] }> {
    const logits: Float32Array[] = [];
    const r = await model.generate(prompt, { ...options, maxNewTokens: steps, stopAtEos: false, onToken: (_, l) => logits.push(l.slice()) });
    return { tokens: r.tokens, logits };
  }

  /** Same greedy tokens, logits within 1e-5 of the largest (float32 rounding: plain cached generation differs from reruns by 1.05e-5 on logits near 17 here). */
  function sameSteps(cached: { tokens: number[]; logits: Float32Array[] }, rerun: { tokens: number[]; logits: Float32Array[] }): void {
    assert.deepEqual(cached.tokens, rerun.tokens);
    cached.logits.forEach((l, step) => {
      const diff = maxAbsDiff(l, rerun.logits[step]);
      const scale = Math.max(1, ...Array.from(rerun.logits[step], Math.abs));
      assert.ok(diff <= 1e-5 * scale, `step ${step}: logits differ by ${diff} (largest ${scale})`);
    });
  }

  it("an SAE feature edit read and applied at each new token equals rewriting the whole sequence every step", async () => {
    const sae = loadSae(path.join(REFERENCE, "sae", "blocks.1.hook_resid_post"));
    const prompt = model.toTokens("When Mia and Leo went to the park, Leo gave a ball to");
    const edit = { feature: 5, kind: "clamp", value: 40 } as const;
    let reads = 0;
    const cached = await generated(prompt, 8, {
      rewrite: {
        hook: sae.hookName,
        rewrite: (activation) => {
          // The prompt once, then one new token per step: the cache is in use.
          assert.equal(activation.dims[1], reads++ === 0 ? prompt.length : 1);
          return editedActivation(sae, activation, edit).source;
        },
      },
    });
    const rerun = await rerunEachStep(prompt, 8, async (sofar) => [(await featureEditIntervention(model, sae, sofar, edit)).intervention]);
    sameSteps(cached, rerun);
    const plain = await model.generate(prompt, { maxNewTokens: 8, stopAtEos: false });
    assert.notDeepEqual(cached.tokens, plain.tokens, "the edit changes the continuation");
    const viaSteer = await steerWithFeature(model, sae, prompt, edit, { maxNewTokens: 8 });
    // steerWithFeature stops at an end-of-text token; up to there it writes the same.
    assert.deepEqual(viaSteer.steered.tokens, cached.tokens.slice(0, viaSteer.steered.tokens.length));
  });

  it("an intervention at every position applies to each new token, as a rerun of the whole sequence would", async () => {
    const prompt = model.toTokens("Once upon a time, a small fox");
    const vector = Array.from({ length: model.cfg.dModel }, (_, i) => 3 * Math.sin(i));
    const interventions: Intervention[] = [{ hook: blockHook(2, "hook_resid_mid"), kind: "add", vector }, { hook: blockHook(0, "attn.hook_z"), kind: "scale", factor: 0.5, heads: [1] }];
    sameSteps(await generated(prompt, 8, { interventions }), await rerunEachStep(prompt, 8, async () => interventions));
  });
});

describe("loupe steer", () => {
  const run = async (...args: string[]) => {
    let out = "";
    const code = await main(["steer", "-", "--model", TINY_GPT2, "--sae", RELU_SAE, ...args], { out: (t) => void (out += t), readStdin: () => PROMPT });
    return { code, out };
  };

  it("prints both continuations as JSON, the steered one matching the core's", async () => {
    const { code, out } = await run("--feature", "#7", "--add", "40", "--max-tokens", "5", "--json");
    assert.equal(code, 0);
    const json = JSON.parse(out);
    assert.deepEqual(json.edit, { feature: 7, kind: "add", amount: 40 });
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null });
    try {
      const direct = await steerWithFeature(model, loadSae(RELU_SAE), PROMPT, { feature: 7, kind: "add", amount: 40 }, { maxNewTokens: 5 });
      assert.deepEqual(json.steered.tokens, direct.steered.tokens);
      assert.deepEqual(json.original.tokens, direct.original.tokens);
    } finally {
      await model.dispose();
    }
  });

  it("asks for exactly one kind of edit and a known feature", async () => {
    await assert.rejects(run("--feature", "7"), /exactly one of --clamp/);
    await assert.rejects(run("--feature", "7", "--zero", "--scale", "2"), /got --scale, --zero|got --zero, --scale|exactly one/);
    await assert.rejects(run("--feature", "colour", "--zero"), /No feature is called "colour"/);
    await assert.rejects(run("--zero"), /--feature/);
  });
});
