import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { blockHook, hookShape } from "../../../src/core/model/hooks";
import { argmax, maxAbsDiff, type Tensor } from "../../../src/core/tensor/tensor";
import { copyTinyModel, FIXTURES, readReference, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";
import { rejectsWith } from "../../helpers/errors";

const TOLERANCE = 1e-4;

function row(t: Tensor, b: number): Float32Array {
  const size = t.dims.slice(1).reduce((a, c) => a * c, 1);
  return t.data.subarray(b * size, (b + 1) * size);
}

/** Values at one position of a [batch, pos, ...] activation. */
function atPosition(t: Tensor, b: number, p: number): Float32Array {
  const inner = t.dims.slice(2).reduce((a, c) => a * c, 1);
  const start = (b * t.dims[1] + p) * inner;
  return t.data.subarray(start, start + inner);
}

describe("HookedModel (tiny random GPT-2 vs PyTorch)", function () {
  const reference = readReference();
  let model: HookedModel;

  before(async () => {
    model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
  });
  after(async () => model?.dispose());

  it("matches PyTorch logits and every recorded hook within 1e-4", async () => {
    for (const prompt of reference.prompts) {
      const names = Object.keys(prompt.hooks);
      const { logits, cache } = await model.runWithCache(prompt.tokens, { names });
      assert.deepEqual(logits.dims, [1, prompt.tokens.length, 320]);
      assert.ok(maxAbsDiff(logits.data, prompt.logits) < TOLERANCE, "logits differ from PyTorch");
      for (const name of names) {
        const got = cache.get(name);
        assert.deepEqual(got.dims, prompt.hooks[name].shape, `${name} shape`);
        const diff = maxAbsDiff(got.data, prompt.hooks[name].data);
        assert.ok(diff < TOLERANCE, `${name} differs from PyTorch by ${diff}`);
      }
    }
  });

  it("reads f16 and bf16 checkpoints", async () => {
    for (const dtype of ["F16", "BF16"] as const) {
      const folder = path.join(FIXTURES, `tiny-gpt2-${dtype.toLowerCase()}`);
      const half = await HookedModel.load(folder, { cacheDir: null, threads: 1 });
      try {
        const logits = await half.run(reference.dtypes[dtype].tokens);
        assert.ok(maxAbsDiff(logits.data, reference.dtypes[dtype].logits) < TOLERANCE, `${dtype} logits differ`);
      } finally {
        await half.dispose();
      }
    }
  });

  it("patching resid_pre at one position with the clean value reproduces PyTorch's patched logits", async () => {
    const { clean, corrupt, hook, position } = reference.patch;
    const { cache } = await model.runWithCache(clean, { names: [hook] });
    const patched = await model.runWithHooks(corrupt, [{ hook, kind: "replace", source: cache.get(hook), positions: [position] }]);
    assert.ok(maxAbsDiff(patched.logits.data, reference.patch.patched_logits) < TOLERANCE);
    // And the patch really changed something: the corrupted logits are different.
    assert.ok(maxAbsDiff(reference.patch.corrupt_logits, reference.patch.patched_logits) > 1e-3);
  });

  it("gives bit-identical logits when every hook gets an identity intervention", async () => {
    const tokens = reference.prompts[0].tokens;
    const plain = await model.run(tokens);
    const identities = model.hookNames.flatMap((hook) => [
      { hook, kind: "scale" as const, factor: 1 },
      { hook, kind: "add" as const, vector: new Float32Array(hookShape(model.hookDims, hook, 1, tokens.length).at(-1)!) },
    ]);
    const hooked = await model.runWithHooks(tokens, identities);
    assert.deepEqual(Array.from(hooked.logits.data), Array.from(plain.data));
  });

  it("changes exactly the layer, positions and batch rows an intervention names", async () => {
    const tokens = reference.prompts[2].tokens;
    const names = [blockHook(0, "hook_resid_post"), blockHook(1, "hook_resid_pre"), blockHook(1, "hook_resid_post")];
    const base = await model.runWithCache([tokens, tokens], { names });
    const vector = new Float32Array(32).map((_, i) => (i % 2 ? 0.5 : -0.25));
    const hooked = await model.runWithHooks([tokens, tokens], [{ hook: blockHook(1, "hook_resid_pre"), kind: "add", vector, positions: [5], batch: [0] }], { names });
    // Earlier layer untouched, bit for bit.
    assert.deepEqual(Array.from(hooked.cache.get(names[0]).data), Array.from(base.cache.get(names[0]).data));
    // Row 1 was not named: identical everywhere.
    assert.deepEqual(Array.from(row(hooked.logits, 1)), Array.from(row(base.logits, 1)));
    for (let p = 0; p < tokens.length; p++) {
      const before = atPosition(base.cache.get(names[1]), 0, p);
      const after = atPosition(hooked.cache.get(names[1]), 0, p);
      if (p === 5) assert.ok(maxAbsDiff(before, after) > 0.2, "the named position changed");
      else assert.deepEqual(Array.from(after), Array.from(before), `position ${p} of the hook itself is untouched`);
      const downstreamChanged = maxAbsDiff(atPosition(base.cache.get(names[2]), 0, p), atPosition(hooked.cache.get(names[2]), 0, p)) > 0;
      assert.equal(downstreamChanged, p >= 5, `causality at position ${p}`);
    }
  });

  it("zero, scale and head-level interventions do what they say", async () => {
    const tokens = reference.prompts[0].tokens;
    const z = blockHook(0, "attn.hook_z");
    const base = await model.runWithCache(tokens, { names: [z] });
    const zeroed = await model.runWithHooks(tokens, [{ hook: z, kind: "zero", heads: [2] }], { names: [z] });
    const scaled = await model.runWithHooks(tokens, [{ hook: z, kind: "scale", factor: 3, heads: [1], positions: [0, 4] }], { names: [z] });
    const [, T, H, Dh] = base.cache.get(z).dims;
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        for (let d = 0; d < Dh; d++) {
          const i = ((t * H) + h) * Dh + d;
          const x = base.cache.get(z).data[i];
          assert.equal(zeroed.cache.get(z).data[i], h === 2 ? 0 : x);
          const expected = h === 1 && (t === 0 || t === 4) ? 3 * x : x;
          assert.ok(Math.abs(scaled.cache.get(z).data[i] - expected) <= 1e-6 * Math.max(1, Math.abs(expected)));
        }
      }
    }
  });

  it("runs a padded batch with the same logits as each prompt alone", async () => {
    const [a, b] = [reference.prompts[1].tokens, reference.prompts[2].tokens];
    const batch = await model.run([a, b]);
    assert.deepEqual(batch.dims, [2, b.length, 320]);
    const alone = await model.run(a);
    const rowA = row(batch, 0).subarray(0, a.length * 320);
    assert.ok(maxAbsDiff(rowA, alone.data) < 1e-5);
  });

  it("generates greedily (each token the argmax) and reproducibly with a seed", async () => {
    const prompt = reference.prompts[1].tokens;
    const greedy = await model.generate(prompt, { maxNewTokens: 6, stopAtEos: false });
    assert.equal(greedy.tokens.length, 6);
    const sequence = [...prompt];
    for (const next of greedy.tokens) {
      const logits = await model.run(sequence);
      const V = logits.dims[2];
      assert.equal(next, argmax(logits.data.subarray((sequence.length - 1) * V)));
      sequence.push(next);
    }
    const first = await model.generate(prompt, { maxNewTokens: 8, temperature: 1.5, seed: 42, stopAtEos: false });
    const again = await model.generate(prompt, { maxNewTokens: 8, temperature: 1.5, seed: 42, stopAtEos: false });
    const other = await model.generate(prompt, { maxNewTokens: 8, temperature: 1.5, seed: 43, stopAtEos: false });
    assert.deepEqual(first.tokens, again.tokens);
    assert.notDeepEqual(first.tokens, other.tokens);
  });

  it("stops at a stop string and cuts it off", async () => {
    const prompt = reference.prompts[1].tokens;
    const free = await model.generate(prompt, { maxNewTokens: 12, stopAtEos: false });
    // Use a piece of the free continuation as the stop string.
    const stop = free.text.slice(3, 5);
    assert.ok(stop.length > 0);
    const cut = await model.generate(prompt, { maxNewTokens: 12, stop: [stop], stopAtEos: false });
    assert.equal(cut.stopReason, "stop-string");
    assert.equal(cut.text, free.text.slice(0, free.text.indexOf(stop)));
  });

  it("computes the logit lens of the last block like the model's own output", async () => {
    const tokens = reference.prompts[0].tokens;
    const last = blockHook(1, "hook_resid_post");
    const { logits, cache } = await model.runWithCache(tokens, { names: [last] });
    const targets = tokens.map((_, t) => [t + 1 < tokens.length ? tokens[t + 1] : 0, 7]);
    const lens = await model.lens(cache.get(last).data, targets, 3);
    for (let t = 0; t < tokens.length; t++) {
      const rowLogits = logits.data.subarray(t * 320, (t + 1) * 320);
      assert.equal(lens.topIds[t * 3], argmax(rowLogits));
      let max = -Infinity;
      for (const v of rowLogits) max = Math.max(max, v);
      let sum = 0;
      for (const v of rowLogits) sum += Math.exp(v - max);
      for (let j = 0; j < 2; j++) {
        const expected = rowLogits[targets[t][j]] - max - Math.log(sum);
        assert.ok(Math.abs(lens.targetLogprob[t * 2 + j] - expected) < 1e-4);
      }
    }
  });
});

describe("HookedModel errors", () => {
  it("names the missing folder", async () => {
    await rejectsWith(HookedModel.load("/nonexistent/model", { cacheDir: null }), "missing-file", /\/nonexistent\/model/);
  });

  it("names a missing model.safetensors and says how to save one", async () => {
    const dir = copyTinyModel();
    fs.rmSync(path.join(dir, "model.safetensors"));
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "missing-file", /model\.safetensors.*save_pretrained/s);
  });

  it("reports a tensor whose shape disagrees with config.json", async () => {
    const dir = copyTinyModel();
    const cfgFile = path.join(dir, "config.json");
    const cfg = JSON.parse(fs.readFileSync(cfgFile, "utf8"));
    cfg.n_inner = 64;
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "bad-shape", /mlp\.c_fc\.weight.*\[32, 128\].*\[32, 64\]/);
  });

  it("refuses an unknown architecture by name", async () => {
    const dir = copyTinyModel();
    const cfgFile = path.join(dir, "config.json");
    fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, "utf8")), model_type: "mamba" }));
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "unsupported-architecture", /config\.json describes a "mamba" model/);
  });

  it("reports a corrupt safetensors header", async () => {
    const dir = copyTinyModel();
    const file = path.join(dir, "model.safetensors");
    const bytes = fs.readFileSync(file);
    bytes.writeBigUInt64LE(BigInt(bytes.length * 4), 0);
    fs.writeFileSync(file, bytes);
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "bad-file", /model\.safetensors is not a valid safetensors file/);
  });

  it("blames config.json, not the tokenizer, when its vocab_size does not match the weights", async () => {
    const dir = copyTinyModel();
    const cfgFile = path.join(dir, "config.json");
    fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, "utf8")), vocab_size: 100 }));
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "bad-file", /config\.json does not describe .*model\.safetensors: its vocab_size is 100, but the token embedding (transformer\.)?wte\.weight is \[320, 32\]\. .*set vocab_size to 320/);
  });

  describe("on a loaded model", () => {
    let model: HookedModel;
    before(async () => (model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })));
    after(async () => model?.dispose());

    it("refuses empty text and text past the context window, naming the limit", async () => {
      await rejectsWith(model.run([]), "empty-input", /empty/);
      await rejectsWith(model.run(new Array(65).fill(1)), "context-overflow", /65 tokens.*context window is 64/);
      await rejectsWith(model.run([1, 2, 999]), "bad-argument", /999 is outside the vocabulary/);
      await rejectsWith(model.runWithCache([1, 2], { names: ["blocks.9.hook_resid_post"] }), "bad-argument", /Unknown hook/);
    });
  });
});

describe("graph cache", () => {
  it("reuses a built graph on the next load and rebuilds for other weights", async () => {
    const cacheDir = scratchDir("cache");
    const first = await HookedModel.load(TINY_GPT2, { cacheDir, threads: 1 });
    const second = await HookedModel.load(TINY_GPT2, { cacheDir, threads: 1 });
    const half = await HookedModel.load(path.join(FIXTURES, "tiny-gpt2-f16"), { cacheDir, threads: 1 });
    try {
      assert.equal(first.graphFromCache, false);
      assert.equal(second.graphFromCache, true);
      assert.equal(half.graphFromCache, false, "a different header is a different graph");
      const tokens = [5, 6, 7];
      assert.deepEqual(Array.from((await second.run(tokens)).data), Array.from((await first.run(tokens)).data));
    } finally {
      await Promise.all([first.dispose(), second.dispose(), half.dispose()]);
    }
  });
});
