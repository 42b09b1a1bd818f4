import { strict as assert } from "node:assert";
import * as path from "node:path";
import { decode, encode, gatherTranscoderData, loadTranscoders, saveTranscoders, trainTranscoders, type TranscoderData, type TranscoderSet } from "../../../src/core/circuits";
import { seededRandom } from "../../../src/core/tensor/random";
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

describe("PLT training with a skip connection", function () {
  this.timeout(120_000);
  // Raw activations at scales far from the trainer's normalised ones, with an output that is a
  // linear map of the input: features alone (k = 1 of 8) cannot rebuild it, a learned skip can.
  const D = 16;
  const rows = 2048;
  const rand = seededRandom(3);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const M = Float32Array.from({ length: D * D }, gauss);
  const input = Float32Array.from({ length: rows * D }, () => 7 * gauss());
  const output = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) output[r * D + j] += 0.01 * input[r * D + i] * M[i * D + j];
  const data: TranscoderData = { inputs: [input], outputs: [output], rows, dModel: D };
  const options = { kind: "plt" as const, dTranscoder: 8, k: 1, inputHook: "mlp.hook_in" as const, epochs: 30, lr: 1e-2, seed: 2 };

  /** Normalised MSE of the saved set's reconstruction (features and skip) on the raw data. */
  function nmse(set: TranscoderSet): number {
    const [y] = decode(set, [encode(set, 0, input, rows)], [input], rows);
    let err = 0;
    let total = 0;
    for (let i = 0; i < y.length; i++) {
      err += (y[i] - output[i]) ** 2;
      total += output[i] ** 2;
    }
    return err / total;
  }

  it("learns the linear part into W_skip, in raw units, and saves it in circuit-tracer's layout", async () => {
    const withSkip = (await trainTranscoders(data, { ...options, skip: true })).set;
    const without = (await trainTranscoders(data, options)).set;
    assert.equal(without.layers[0].skip, undefined);
    assert.ok(nmse(withSkip) < 0.02, `normalised MSE with the skip ${nmse(withSkip)}`);
    assert.ok(nmse(without) > 0.3, `normalised MSE without it ${nmse(without)}`);
    const folder = path.join(scratchDir("skip"), "plt");
    saveTranscoders(folder, withSkip);
    assert.deepEqual(Array.from(loadTranscoders(folder).layers[0].skip!), Array.from(withSkip.layers[0].skip!));
  });

  it("refuses a skip for a CLT (circuit-tracer's CLT files have no place for it)", async () => {
    await rejectsWith(trainTranscoders(data, { ...options, kind: "clt", skip: true }), "bad-argument", /skip connection/);
  });
});
