import { strict as assert } from "node:assert";
import * as path from "node:path";
import { encode, gatherTranscoderData, loadTranscoders, saveTranscoders, trainTranscoders, type TranscoderData, type TranscoderSet } from "../../../src/core/circuits";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { rejectsWith } from "../../helpers/errors";
import { scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const NAMES = ["Mia", "Leo", "Sam", "Ana"];
const TEXTS = Array.from({ length: 24 }, (_, i) => `When ${NAMES[i % 4]} and ${NAMES[(i + 1) % 4]} went out, ${NAMES[i % 4]} gave a ball to ${NAMES[(i + 1) % 4]}.`);

/** Mean active features per token and layer of a set on the data it was trained on. */
function meanL0(set: TranscoderSet, data: TranscoderData): number {
  let active = 0;
  for (let l = 0; l < set.nLayers; l++) for (const a of encode(set, l, data.inputs[l], data.rows)) if (a !== 0) active++;
  return active / (data.rows * set.nLayers);
}

describe("JumpReLU transcoder training", function () {
  this.timeout(180_000);
  let data: TranscoderData;
  let free: TranscoderSet;
  let penalised: TranscoderSet;
  const train = (l0Coefficient: number) =>
    trainTranscoders(data, { kind: "plt", dTranscoder: 32, k: 1, activation: "jumprelu", l0Coefficient, bandwidth: 0.1, inputHook: "mlp.hook_in", epochs: 60, lr: 1e-2, seed: 5 });

  before(async () => {
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    try {
      data = await gatherTranscoderData(model, TEXTS, "mlp.hook_in");
    } finally {
      await model.dispose();
    }
    free = (await train(0)).set;
    penalised = (await train(0.5)).set;
  });

  it("learns finite, positive per-feature thresholds that moved from where they started", () => {
    for (const set of [free, penalised]) {
      assert.deepEqual(set.activation, { kind: "jumprelu" });
      for (const layer of set.layers) {
        assert.equal(layer.threshold?.length, 32);
        for (const t of layer.threshold!) assert.ok(Number.isFinite(t) && t > 0, `threshold ${t}`);
        assert.ok(layer.threshold!.some((t) => Math.abs(t - 0.1) > 0.01), "some threshold moved from 0.1");
      }
    }
  });

  it("the L0 penalty lowers L0 (by raising thresholds)", () => {
    const l0Free = meanL0(free, data);
    const l0Penalised = meanL0(penalised, data);
    assert.ok(l0Penalised < l0Free, `L0 ${l0Penalised} with the penalty vs ${l0Free} without`);
    const meanThreshold = (s: TranscoderSet) => s.layers.flatMap((l) => Array.from(l.threshold!)).reduce((a, b) => a + b, 0) / (s.nLayers * s.dTranscoder);
    assert.ok(meanThreshold(penalised) > meanThreshold(free));
  });

  it("saves the thresholds in circuit-tracer's layout, and refuses bad settings", async () => {
    const folder = path.join(scratchDir("jumprelu"), "plt");
    saveTranscoders(folder, penalised);
    const loaded = loadTranscoders(folder);
    assert.deepEqual(loaded.activation, { kind: "jumprelu" });
    assert.deepEqual(Array.from(loaded.layers[1].threshold!), Array.from(penalised.layers[1].threshold!));
    await rejectsWith(trainTranscoders(data, { kind: "plt", dTranscoder: 8, k: 1, activation: "jumprelu", bandwidth: 0, inputHook: "mlp.hook_in" }), "bad-argument", /bandwidth > 0/);
  });
});
