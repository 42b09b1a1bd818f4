import { strict as assert } from "node:assert";
import * as path from "node:path";
import { LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { loadSae, saeFeatureActivations } from "../../../src/core/sae";
import { describeEdit, featureEditIntervention, steerWithFeature } from "../../../src/core/sae/steer";
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
