/**
 * Runs that compute less than the whole model: logits at chosen positions, continuing from a
 * prefix's keys and values, rows that start at a later block. Each must give what the full run
 * gives, and patching sweeps built on them must equal patches run in full.
 */
import { strict as assert } from "node:assert";
import { LoupeError } from "../../../src/core/errors";
import { cacheHeads, HookedModel, prefixKeyValues } from "../../../src/core/model/hooked-model";
import { blockHook } from "../../../src/core/model/hooks";
import type { Intervention } from "../../../src/core/model/interventions";
import { singleToken } from "../../../src/core/patching/metrics";
import { patchingSweeps } from "../../../src/core/patching/sweep";
import { maxAbsDiff, tensor, type Tensor } from "../../../src/core/tensor/tensor";
import { TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";

const EPS = 1e-5;
const TEXT = "When Mia and Leo went to the park, Leo gave a ball to";

/** Positions [from, to) of a [batch, pos, ...] tensor's batch row b. */
function positions(t: Tensor, b: number, from: number, to = t.dims[1]): Float32Array {
  const inner = t.dims.slice(2).reduce((a, c) => a * c, 1);
  return t.data.slice((b * t.dims[1] + from) * inner, (b * t.dims[1] + to) * inner);
}

function near(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const diff = maxAbsDiff(a, b);
  assert.ok(diff <= EPS, `${what}: differs by ${diff}`);
}

function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  return assert.rejects(promise, (error: unknown) => error instanceof LoupeError && pattern.test(error.message));
}

for (const [family, folder] of [["GPT-2", TINY_GPT2], ["Llama", TINY_LLAMA]] as const) describe(`partial runs (tiny random ${family})`, function () {
  this.timeout(120_000);
  let model: HookedModel;
  let tokens: number[];
  let V: number;
  let D: number;

  before(async () => {
    model = await HookedModel.load(folder, { cacheDir: null, threads: 1 });
    tokens = model.toTokens(TEXT);
    V = model.cfg.dVocab;
    D = model.cfg.dModel;
    assert.ok(model.supportsPrefix && model.supportsStartAt, `the ${family} graph takes prefixes and later starts`);
  });
  after(async () => model?.dispose());

  it("logits at chosen positions are those rows of the full logits, in the order asked", async () => {
    const full = await model.run([tokens, tokens.slice(0, 6)]);
    const T = tokens.length;
    const chosen = [T - 1, 0, 3, 3];
    const some = await model.run([tokens, tokens.slice(0, 6)], { logitPositions: chosen });
    assert.deepEqual(some.dims, [2, chosen.length, V]);
    for (let b = 0; b < 2; b++) {
      chosen.forEach((p, k) => near(some.data.subarray((b * chosen.length + k) * V, (b * chosen.length + k + 1) * V), full.data.subarray((b * T + p) * V, (b * T + p + 1) * V), `row ${b} position ${p}`));
    }
    await rejectsWith(model.run(tokens, { logitPositions: [T] }), /outside the tokens run/);
  });

  it("with logit positions the last block's later hooks hold those positions; one position is bit-identical to the full run", async () => {
    const last = model.cfg.nLayers - 1;
    const names = [blockHook(last, "hook_resid_pre"), blockHook(last, "attn.hook_pattern"), blockHook(last, "hook_resid_post"), "ln_final.hook_normalized"];
    const full = await model.runWithCache(tokens, { names });
    const T = tokens.length;
    for (const chosen of [[T - 1], [2, T - 1]]) {
      const some = await model.runWithCache(tokens, { names, logitPositions: chosen });
      assert.deepEqual(some.cache.get(names[0]).dims, full.cache.get(names[0]).dims, "resid_pre of the last block: every position");
      assert.deepEqual(some.cache.get(names[1]).dims, [1, model.cfg.nHeads, chosen.length, T]);
      for (const name of names.slice(2)) {
        assert.deepEqual(some.cache.get(name).dims, [1, chosen.length, D]);
        chosen.forEach((p, k) => near(positions(some.cache.get(name), 0, k, k + 1), positions(full.cache.get(name), 0, p, p + 1), `${name} at ${p}`));
      }
    }
    const one = await model.run(tokens, { logitPositions: [T - 1] });
    assert.deepEqual(Array.from(one.data), Array.from(positions(full.logits, 0, T - 1)), "one position: the same bits as the full run");
    // An intervention at a narrowed hook acts at the chosen positions.
    const hook = blockHook(last, "hook_resid_post");
    const vector = new Float32Array(D).map((_, i) => (i % 5) - 2);
    const whole = await model.runWithHooks(tokens, [{ hook, kind: "add", vector, positions: [T - 1] }]);
    const narrowed = await model.runWithHooks(tokens, [{ hook, kind: "add", vector, positions: [T - 1] }], { logitPositions: [T - 1] });
    near(narrowed.logits.data, positions(whole.logits, 0, T - 1), "intervention at the last block after narrowing");
    assert.ok(maxAbsDiff(narrowed.logits.data, one.data) > 1e-3, "the intervention matters");
  });

  it("continuing from a prefix's keys and values gives the full run's logits, hooks and keys", async () => {
    const names = [blockHook(0, "hook_resid_post"), blockHook(1, "attn.hook_z"), "ln_final.hook_normalized"];
    const full = await model.runWithCache(tokens, { names, keyValues: true });
    const T = tokens.length;
    assert.deepEqual(full.keyValues?.keys[0].dims, [1, cacheHeads(model.cfg), T, model.cfg.dHead]);
    for (const p of [1, 5, T - 1]) {
      const prefix = prefixKeyValues(full.keyValues!, 0, p);
      const rest = await model.runWithCache(tokens.slice(p), { names, prefix, keyValues: true });
      near(rest.logits.data, positions(full.logits, 0, p), `logits after a prefix of ${p}`);
      for (const name of names) near(rest.cache.get(name).data, positions(full.cache.get(name), 0, p), `${name} after a prefix of ${p}`);
      for (let L = 0; L < model.cfg.nLayers; L++) near(rest.keyValues!.keys[L].data, full.keyValues!.keys[L].data, `layer ${L} keys: prefix and new tokens`);
    }
  });

  it("caches one slot per key/value head, keeps a change to one of them, and refuses one that sets a group's query heads apart", async () => {
    const heads = cacheHeads(model.cfg);
    assert.equal(heads, family === "Llama" ? 2 : model.cfg.nHeads, "the tiny Llama shares each key/value head between two query heads");
    // Reading a hook keeps the run on the hooked graph, as the intervened run below: their keys compare exactly.
    const { keyValues } = await model.runWithCache(tokens, { names: [blockHook(0, "attn.hook_k")], keyValues: true });
    for (const t of [...keyValues!.keys, ...keyValues!.values]) assert.deepEqual(t.dims, [1, heads, tokens.length, model.cfg.dHead]);
    // attn.hook_k has the cache's heads (TransformerLens's default): a change to one is kept.
    const oneHead: Intervention = { hook: blockHook(0, "attn.hook_k"), kind: "zero", heads: [1] };
    const zeroed = (await model.runWithHooks(tokens, [oneHead], { keyValues: true })).keyValues!.keys[0];
    const T = tokens.length;
    const Dh = model.cfg.dHead;
    assert.ok(zeroed.data.subarray(T * Dh, 2 * T * Dh).every((x) => x === 0), "key head 1 of layer 0 is zero in the cache");
    assert.ok(maxAbsDiff(zeroed.data.subarray(0, T * Dh), keyValues!.keys[0].data.subarray(0, T * Dh)) === 0, "key head 0 is untouched");
    // The intervention matters.
    const changed = await model.runWithHooks(tokens, [oneHead]);
    assert.ok(maxAbsDiff(changed.logits.data, (await model.run(tokens)).data) > 1e-4);
    if (family !== "Llama") return;
    // Ungrouped hooks have one slot per query head: changing one query head's keys cannot be cached.
    const ungrouped = await HookedModel.load(folder, { cacheDir: null, threads: 1, ungroupGroupedQueryAttention: true });
    try {
      await rejectsWith(ungrouped.runWithHooks(tokens, [oneHead], { keyValues: true }), /shares each key\/value head among 2 query heads/);
      assert.ok((await ungrouped.runWithHooks(tokens, [oneHead])).logits, "without the cache the same intervention runs");
    } finally {
      await ungrouped.dispose();
    }
  });

  it("interventions after a prefix act where the full run's would, row by row", async () => {
    const hook = blockHook(1, "hook_resid_pre");
    const vector = new Float32Array(D).map((_, i) => (i % 3) - 1);
    const full = await model.runWithCache(tokens, { keyValues: true, names: [] });
    const p = 4;
    const ivs = (shift: number): Intervention[] => [
      { hook, kind: "add", vector, positions: [6 - shift], batch: [0] },
      { hook: blockHook(0, "attn.hook_z"), kind: "zero", heads: [1], positions: [5 - shift, 7 - shift], batch: [1] },
    ];
    const whole = await model.runWithHooks([tokens, tokens], ivs(0));
    const rest = await model.runWithHooks([tokens.slice(p), tokens.slice(p)], ivs(p), { prefix: prefixKeyValues(full.keyValues!, 0, p) });
    for (let b = 0; b < 2; b++) near(positions(rest.logits, b, 0), positions(whole.logits, b, p), `row ${b}`);
    assert.ok(maxAbsDiff(positions(rest.logits, 0, 0), positions(rest.logits, 1, 0)) > 1e-3, "the two rows' interventions differ");
    const pattern = blockHook(0, "attn.hook_pattern");
    await rejectsWith(model.runWithHooks(tokens.slice(p), [{ hook: pattern, kind: "zero" }], { prefix: prefixKeyValues(full.keyValues!, 0, p) }), /cannot be changed in a run that continues from a prefix/);
  });

  it("rows started at a later block from its resid_pre give the full run's logits and later hooks", async () => {
    // The tiny model has two blocks: rows start at block 0 or 1.
    const resid1 = blockHook(1, "hook_resid_pre");
    const names = [blockHook(0, "hook_resid_post"), resid1, blockHook(1, "hook_mlp_out")];
    const full = await model.runWithCache(tokens, { names });
    const T = tokens.length;
    const start = tensor(new Float32Array(2 * T * D), [2, T, D]);
    for (let r = 0; r < 2; r++) start.data.set(full.cache.get(resid1).data, r * T * D);
    const add: Intervention = { hook: resid1, kind: "add", vector: new Float32Array(D).map((_, i) => (i % 3) - 1), positions: [4] };
    const reference = await model.runWithHooks(tokens, [add], { names });
    const rows = await model.runWithHooks([tokens, tokens, tokens], [{ ...add, batch: [1] }], { names, startAt: { layers: [0, 1, 1], resid: start } });
    near(positions(rows.logits, 0, 0), full.logits.data, "row started at block 0");
    near(positions(rows.logits, 1, 0), reference.logits.data, "row started at block 1, with an intervention there");
    near(positions(rows.logits, 2, 0), full.logits.data, "row started at block 1");
    assert.ok(maxAbsDiff(reference.logits.data, full.logits.data) > 1e-3, "the intervention matters");
    // Block 0 holds the first row only; block 1 all three.
    assert.equal(rows.cache.get(names[0]).dims[0], 1);
    assert.equal(rows.cache.get(names[2]).dims[0], 3);
    near(positions(rows.cache.get(names[2]), 1, 0), reference.cache.get(names[2]).data, "block 1's output of the row started there");
    const one = tensor(new Float32Array(T * D), [1, T, D]);
    await rejectsWith(model.run([tokens, tokens], { startAt: { layers: [1, 0], resid: one } }), /order the rows/);
    await rejectsWith(model.runWithHooks([tokens, tokens], [{ ...add, hook: names[0], batch: [1] }], { startAt: { layers: [0, 1], resid: one } }), /starts after that hook/);
    await rejectsWith(model.run([tokens, tokens], { startAt: { layers: [0, 1], resid: tensor(new Float32Array(2 * T * D), [2, T, D]) } }), /expected \[1, /);
  });

  it("a row can start at a later block and after a prefix at once", async () => {
    const resid1 = blockHook(1, "hook_resid_pre");
    const full = await model.runWithCache(tokens, { names: [resid1], keyValues: true });
    const p = 3;
    const T = tokens.length;
    const start = tensor(positions(full.cache.get(resid1), 0, p), [1, T - p, D]);
    const rows = await model.run([tokens.slice(p), tokens.slice(p)], { prefix: prefixKeyValues(full.keyValues!, 0, p), startAt: { layers: [0, 1], resid: start }, logitPositions: [T - p - 1] });
    for (let b = 0; b < 2; b++) near(rows.data.subarray(b * V, (b + 1) * V), positions(full.logits, 0, T - 1), `row ${b}, last position`);
  });

  it("every cell of residual sweeps equals that patch run on the whole model", async () => {
    const corrupted = model.toTokens("When Mia and Leo went to the park, Mia gave a ball to");
    const metric = { kind: "logit-diff", answer: singleToken(model.tokenizer, " Mia"), wrong: singleToken(model.tokenizer, " Leo") } as const;
    const T = tokens.length;
    for (const [kind, suffix] of [["resid_pre", "hook_resid_pre"], ["resid_mid", "hook_resid_mid"]] as const) {
      const names = Array.from({ length: model.cfg.nLayers }, (_, L) => blockHook(L, suffix));
      const { cache } = await model.runWithCache(tokens, { names });
      for (const batchSize of [1, 7]) {
        const r = await patchingSweeps(model, { clean: tokens, corrupted, metric, sweeps: [kind], batchSize, skipIdentical: false });
        for (let L = 0; L < model.cfg.nLayers; L++) {
          for (let p = 0; p < T; p++) {
            const { logits } = await model.runWithHooks(corrupted, [{ hook: names[L], kind: "replace", source: cache.get(names[L]), positions: [p] }]);
            const last = logits.data.subarray((T - 1) * V, T * V);
            const expected = last[metric.answer] - last[metric.wrong];
            assert.ok(Math.abs(r.sweeps[0].raw[L * T + p] - expected) <= EPS, `${kind}, batch ${batchSize}, L${L} position ${p}: ${r.sweeps[0].raw[L * T + p]} vs ${expected}`);
          }
        }
      }
    }
  });
});
