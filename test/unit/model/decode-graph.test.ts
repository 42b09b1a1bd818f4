/**
 * The decode-only graph (GraphOptions.decodeOnly): runs that read and change no hook and decode
 * (a key/value prefix in, or keys and values out) go to a build of the same model without hook
 * points. Its logits, keys and values must match the hooked graph's within 1e-5, greedy generation
 * must pick the same tokens, and a run that reads or changes a hook must still use the hooked graph.
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { buildModelGraph } from "../../../src/core/model/build-graph";
import { LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { openModelFolder } from "../../../src/core/model/model-folder";
import { maxAbsDiff } from "../../../src/core/tensor/tensor";
import { FIXTURES, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";
import { halfCopy } from "../../helpers/half-copy";

const REFERENCE = path.join(__dirname, "..", "..", "..", "models", "reference");
const PROMPT = "When Mia and Leo went to the park, Mia gave a ball to";
/**
 * 1e-5 for logits up to 10, scaled with larger ones: the graphs differ only in float rounding
 * (onnxruntime fuses the norms no hook splits), a few float32 ulps of the largest logit (tiny
 * Qwen2's reach 26 and differ by 1.4e-5).
 */
function roundingTolerance(logits: Float32Array): number {
  let largest = 0;
  for (const x of logits) largest = Math.max(largest, Math.abs(x));
  return 1e-6 * Math.max(10, largest);
}

/** TINY_GPT2's sizes (its config.json). */
const TINY_CFG = openModelFolder(TINY_GPT2).cfg;

/** Reads a hook, so the run stays on the hooked graph. */
const HOOKED = { names: ["blocks.0.hook_resid_pre"] };

const TINY_GEMMA3 = path.join(FIXTURES, "tiny-gemma3");

// The decode graph unembeds with a float32 transpose of the table (WeightTable's few-rows layout),
// the hooked graph with the table as stored: bf16 and f16 copies check the cast too (Gemma 3's
// bf16 table is cast in slices during each hooked run, once at load for the decode graph).
for (const [name, fixture, options] of [
  ["tiny GPT-2", () => TINY_GPT2, {}],
  ["tiny GPT-2 stored as f16", () => halfCopy(TINY_GPT2, "F16"), {}],
  ["tiny Llama", () => TINY_LLAMA, {}],
  ["tiny Gemma 3 (sliding window)", () => TINY_GEMMA3, {}],
  ["tiny Gemma 3 stored as bf16", () => halfCopy(TINY_GEMMA3, "BF16"), {}],
  ["tiny Gemma 3 stored as bf16, compactWeights", () => halfCopy(TINY_GEMMA3, "BF16"), { compactWeights: true }],
  ["tiny Qwen2 (q/k/v bias)", () => path.join(FIXTURES, "tiny-qwen2"), {}],
  ["tiny Qwen3", () => path.join(FIXTURES, "tiny-qwen3"), {}],
  ["reference model", () => REFERENCE, {}],
] as const) {
  describe(`decode-only graph (${name})`, function () {
    this.timeout(120_000);
    let folder: string;
    let model: HookedModel;
    before(async () => {
      folder = fixture();
      model = await HookedModel.load(folder, { cacheDir: null, threads: 1, ...options });
    });
    after(async () => model.dispose());

    it("has no hook inputs or outputs", () => {
      const { cfg, weights } = openModelFolder(folder);
      const built = buildModelGraph(cfg, weights, { decodeOnly: true });
      assert.deepEqual(built.hookNames, []);
      const text = Buffer.from(built.bytes).toString("latin1");
      assert.ok(!text.includes("gain:") && !text.includes("resid_in:"), "no hook point or startAt input");
      assert.ok(text.includes("present_key:0"), "keys and values are outputs");
    });

    it("gives the hooked graph's logits and keys and values, from a prompt and after a prefix", async () => {
      const ids = model.encode(PROMPT).ids;
      const split = Math.floor(ids.length / 2);
      assert.equal(model.decodeGraphLoaded, false, "nothing has decoded yet");
      const hookedHead = await model.runWithCache(ids.slice(0, split), { ...HOOKED, keyValues: true });
      assert.equal(model.decodeGraphLoaded, false, "a run that reads a hook stays on the hooked graph");
      const plainHead = await model.runWithCache(ids.slice(0, split), { names: [], keyValues: true });
      assert.equal(model.decodeGraphLoaded, true, "a run with no hooks that returns keys and values decodes");
      const tolerance = roundingTolerance(hookedHead.logits.data);
      assert.ok(maxAbsDiff(plainHead.logits.data, hookedHead.logits.data) < tolerance, "prompt logits");
      for (let L = 0; L < model.cfg.nLayers; L++) {
        assert.ok(maxAbsDiff(plainHead.keyValues!.keys[L].data, hookedHead.keyValues!.keys[L].data) < 1e-5, `keys ${L}`);
        assert.ok(maxAbsDiff(plainHead.keyValues!.values[L].data, hookedHead.keyValues!.values[L].data) < 1e-5, `values ${L}`);
      }
      const rest = ids.slice(split);
      const hooked = await model.runWithCache(rest, { ...HOOKED, prefix: hookedHead.keyValues });
      const plain = await model.run(rest, { prefix: plainHead.keyValues });
      const diff = maxAbsDiff(plain.data, hooked.logits.data);
      assert.ok(diff < tolerance, `continued logits differ by ${diff}`);
      // The whole sequence at once, on the hooked graph, ends where the continuation does.
      const whole = await model.run(ids);
      const V = model.cfg.dVocab;
      assert.ok(maxAbsDiff(plain.data.subarray((rest.length - 1) * V), whole.data.subarray((ids.length - 1) * V)) < 1e-4, "continuation vs whole sequence");
    });

    it("generates the tokens the hooked graph generates", async () => {
      const steps: Float32Array[] = [];
      const kept: Float32Array[] = [];
      const fast = await model.generate(PROMPT, {
        maxNewTokens: 12,
        stopAtEos: false,
        onToken: (_, logits) => {
          steps.push(logits.slice());
          kept.push(logits);
        },
      });
      // Each step's logits are a view of that run's output (KvCache), not of a buffer a later run reuses.
      kept.forEach((logits, i) => assert.deepEqual(logits, steps[i], `step ${i}'s logits changed after later steps`));
      // An identity intervention at every position keeps the key/value cache but runs on the hooked graph.
      const hookedSteps: Float32Array[] = [];
      const hooked = await model.generate(PROMPT, {
        maxNewTokens: 12,
        stopAtEos: false,
        interventions: [{ hook: "blocks.0.hook_resid_pre", kind: "scale", factor: 1 }],
        onToken: (_, logits) => hookedSteps.push(logits.slice()),
      });
      assert.deepEqual(fast.tokens, hooked.tokens);
      steps.forEach((logits, i) => assert.ok(maxAbsDiff(logits, hookedSteps[i]) < roundingTolerance(hookedSteps[i]), `step ${i}`));
    });
  });
}

describe("decode-only graph under a memory limit", function () {
  this.timeout(60_000);

  it("is loaded only where the limit leaves room for a second copy of the weights, and then counted", async () => {
    const roomy = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1, maxMemoryBytes: 1e12 });
    const weights = 1e12 - roomy.spareMemoryBytes!;
    await roomy.generate(PROMPT, { maxNewTokens: 2 });
    assert.equal(roomy.decodeGraphLoaded, true);
    assert.equal(roomy.spareMemoryBytes, 1e12 - 2 * weights, "both copies of the weights are counted");
    await roomy.dispose();

    // Room for the runs beside one copy, not beside two: generation stays on the hooked graph.
    const tight = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1, maxMemoryBytes: Math.ceil(1.95 * weights) });
    const generated = await tight.generate(PROMPT, { maxNewTokens: 2, stopAtEos: false });
    assert.equal(generated.tokens.length, 2);
    assert.equal(tight.decodeGraphLoaded, false);
    await tight.dispose();
  });

  it("counts the prefix's keys and values: a decode step that would pass the limit runs on the hooked graph or is refused", async () => {
    const roomy = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1, maxMemoryBytes: 1e12, decodeGraph: false });
    const weights = 1e12 - roomy.spareMemoryBytes!;
    const ids = roomy.toTokens(`${PROMPT} ${PROMPT}`);
    const { keyValues } = await roomy.runWithCache(ids, { names: [], keyValues: true, logits: false });
    await roomy.dispose();
    // Four rows continue the one prefix by a token each, returning their keys and values (a battery
    // decode step). Whatever else it allocates, it holds the prefix fed, and each layer's keys and
    // values for every row twice: onnxruntime's concatenation and the copy returned.
    const step = [[5], [6], [7], [8]];
    const floats = (rows: number, tokens: number) => 2 * TINY_CFG.nLayers * rows * TINY_CFG.nHeads * tokens * TINY_CFG.dHead;
    const need = 4 * (floats(1, ids.length) + 2 * floats(4, ids.length + 1));
    // Room for the step beside one copy of the weights, not two: the decode graph is not loaded.
    const fallback = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1, maxMemoryBytes: 2 * weights + need - 1 });
    const onHooked = await fallback.runWithCache(step, { names: [], prefix: keyValues, keyValues: true });
    assert.equal(fallback.decodeGraphLoaded, false);
    assert.deepEqual(onHooked.keyValues!.keys[0].dims, [4, TINY_CFG.nHeads, ids.length + 1, TINY_CFG.dHead]);
    await fallback.dispose();

    // No room for the step beside the weights: refused before it runs.
    const tight = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1, maxMemoryBytes: weights + need - 1, decodeGraph: false });
    await assert.rejects(tight.runWithCache(step, { names: [], prefix: keyValues, keyValues: true }), (e: unknown) => e instanceof LoupeError && e.code === "model-too-large");
    await tight.dispose();
  });
});

