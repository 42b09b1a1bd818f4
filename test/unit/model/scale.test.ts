import { strict as assert } from "node:assert";
import * as path from "node:path";
import { writeRandomModel } from "../../../bench/scale/random-model";
import { errorText, LoupeError } from "../../../src/core/errors";
import { inspectText, inspectWithResiduals, lensTable } from "../../../src/core/inspect";
import { fromBinary } from "@bufbuild/protobuf";
import * as onnx from "onnx-buf";
import { buildFetchGatedModelGraph } from "../../../src/core/model/build-graph";
import { GRAPH_IO } from "../../../src/core/model/hook-point";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { openModelFolder } from "../../../src/core/model/model-folder";
import { blockHook } from "../../../src/core/model/hooks";
import { checkRunFits, DEFAULT_BATCH_BUDGET_BYTES, estimateRunBytes, lensChunkRows, rowsWithin } from "../../../src/core/model/memory-limit";
import { FIXTURES, scratchDir, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";

const REFERENCE = path.join(__dirname, "..", "..", "..", "models", "reference");

/** Residual vectors of a real run (every block, every position) and two targets per row. */
async function lensInputs(model: HookedModel, text: string): Promise<{ resid: Float32Array; targets: number[][] }> {
  const ids = model.toTokens(text);
  const names = Array.from({ length: model.cfg.nLayers }, (_, L) => blockHook(L, "hook_resid_post"));
  const { cache } = await model.runWithCache(ids, { names, logits: false });
  const D = model.cfg.dModel;
  const resid = new Float32Array(names.length * ids.length * D);
  names.forEach((name, L) => resid.set(cache.get(name).data, L * ids.length * D));
  const targets = names.flatMap(() => ids.map((id, t) => [ids[t + 1] ?? 0, (id * 7 + t) % model.cfg.dVocab]));
  return { resid, targets };
}

describe("the logit lens at scale", function () {
  this.timeout(120_000);

  it("in chunks equals the one-call lens exactly on the reference model", async () => {
    const model = await HookedModel.load(REFERENCE, { cacheDir: null, threads: 1 });
    try {
      const { resid, targets } = await lensInputs(model, "When Mia and Leo went to the park, Leo gave a ball to Mia.");
      const whole = await model.lens(resid, targets, 5, { budgetBytes: 1e12 });
      // 7 rows per call: chunks that do not divide the row count.
      const budget = 7 * 4 * 4 * model.cfg.dVocab;
      assert.equal(lensChunkRows(model.cfg.dVocab, budget), 7);
      assert.ok(targets.length > 7 * 3 && targets.length % 7 !== 0);
      const chunked = await model.lens(resid, targets, 5, { budgetBytes: budget });
      assert.deepEqual(Array.from(chunked.topIds), Array.from(whole.topIds));
      assert.deepEqual(Array.from(chunked.topLogprobs), Array.from(whole.topLogprobs));
      assert.deepEqual(Array.from(chunked.targetLogprob), Array.from(whole.targetLogprob));
      assert.deepEqual(Array.from(chunked.entropy), Array.from(whole.entropy));
    } finally {
      await model.dispose();
    }
  });

  it("in chunks is within 1e-5 of the one-call lens with SmolLM2-135M's vocabulary (49,152)", async () => {
    const folder = scratchDir("wide-vocab");
    writeRandomModel(folder, { architecture: "llama", layers: 2, dModel: 64, heads: 4, kvHeads: 2, dMlp: 128, vocab: 49152, ctx: 256 });
    const model = await HookedModel.load(folder, { cacheDir: null, threads: 1 });
    try {
      const { resid, targets } = await lensInputs(model, "Once upon a time a small fox found a red ball near the river.");
      const whole = await model.lens(resid, targets, 5, { budgetBytes: 1e12 });
      const chunked = await model.lens(resid, targets, 5, { budgetBytes: 3 * 16 * 49152 });
      assert.deepEqual(Array.from(chunked.topIds), Array.from(whole.topIds));
      for (const key of ["topLogprobs", "targetLogprob", "entropy"] as const) {
        chunked[key].forEach((v, i) => assert.ok(Math.abs(v - whole[key][i]) <= 1e-5, `${key}[${i}]: ${v} vs ${whole[key][i]}`));
      }
    } finally {
      await model.dispose();
    }
  });
});

describe("inspect without the whole per-block table", function () {
  this.timeout(120_000);
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(REFERENCE, { cacheDir: null, threads: 1 })));
  after(async () => model.dispose());
  const text = "When Mia and Leo went to the park, Leo gave a ball to Mia. Then Leo said hello.";

  it("reports every token's last-block lens and the blocks asked for, and lensTable gives the rest as the eager table has them", async () => {
    const eager = await inspectText(model, text);
    const L = model.cfg.nLayers;
    assert.ok(eager.tokens.every((t) => t.lens.every((l) => l !== null)));
    const { result: lazy, residuals } = await inspectWithResiduals(model, text, { eagerLensLogits: 0, lensLayers: [1] });
    for (const [i, t] of lazy.tokens.entries()) {
      assert.deepEqual(t.lens.map((l) => l !== null), Array.from({ length: L }, (_, layer) => layer === 1 || layer === L - 1));
      assert.deepEqual([t.surprisal, t.entropy, t.top], [eager.tokens[i].surprisal, eager.tokens[i].entropy, eager.tokens[i].top]);
      assert.deepEqual(t.lens[1], eager.tokens[i].lens[1]);
    }
    for (const index of [0, 5, lazy.tokens.length - 1]) {
      const fromKept = await lensTable(model, text, index, { residuals });
      const rerun = await lensTable(model, text, index);
      assert.deepEqual(fromKept, eager.tokens[index].lens);
      assert.deepEqual(rerun, eager.tokens[index].lens);
    }
  });

  it("does not reuse an earlier inspection that left out a block asked for now", async () => {
    const first = await inspectText(model, text, { eagerLensLogits: 0 });
    const again = await inspectText(model, text, { eagerLensLogits: 0, previous: first, lensLayers: [0] });
    assert.equal(again.reusedWindows, 0);
    assert.ok(again.tokens.every((t) => t.lens[0] !== null));
    assert.equal((await inspectText(model, text, { eagerLensLogits: 0, previous: again, lensLayers: [0] })).reusedWindows, 1);
    const beyond = model.cfg.nLayers;
    await assert.rejects(inspectText(model, text, { lensLayers: [beyond] }), (e: unknown) => e instanceof LoupeError && e.message.includes(`block ${beyond} is not`));
  });
});

describe("runs hold only what they fetch", function () {
  this.timeout(60_000);

  it("a run returning a few hooks, or no logits, gives bit-identical values to one returning every hook", async () => {
    const model = await HookedModel.load(TINY_LLAMA, { cacheDir: null, threads: 1 });
    try {
      const tokens = [1, 40, 41, 42, 43, 44];
      const all = await model.runWithCache(tokens);
      const few = ["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_post"];
      const some = await model.runWithCache(tokens, { names: few });
      assert.deepEqual(some.cache.names, few);
      for (const name of few) assert.deepEqual(Array.from(some.cache.get(name).data), Array.from(all.cache.get(name).data));
      assert.deepEqual(Array.from(some.logits.data), Array.from(all.logits.data));
      const none = await model.runWithCache(tokens, { names: few, logits: false });
      assert.deepEqual(none.logits.dims, [1, 0, model.cfg.dVocab]);
      for (const name of few) assert.deepEqual(Array.from(none.cache.get(name).data), Array.from(all.cache.get(name).data));
    } finally {
      await model.dispose();
    }
  });
});

/**
 * Top-level nodes of a gated graph whose every output only the logits' If reads: work a run
 * without logits would still do (the If's flag and the final norm's hook, which other runs read, aside).
 */
function workOnlyForLogits(bytes: Uint8Array): string[] {
  const graph = fromBinary(onnx.ModelProtoSchema, bytes).graph!;
  const kept = (n: onnx.NodeProto) => n.output.some((o) => o === `${GRAPH_IO.logits}::fetched` || o.endsWith("::after"));
  const reads = (n: onnx.NodeProto): string[] => [...n.input, ...n.attribute.flatMap((a) => (a.g ? a.g.node.flatMap(reads) : []))];
  const readers = new Map<string, string[]>();
  for (const n of graph.node) for (const input of reads(n)) readers.set(input, [...(readers.get(input) ?? []), n.name]);
  return graph.node.filter((n) => !kept(n) && n.output.every((o) => (readers.get(o) ?? []).length > 0 && readers.get(o)!.every((r) => r === `If:${GRAPH_IO.logits}`))).map((n) => `${n.opType} ${n.name}`);
}

describe("the unembedding runs only when logits are fetched", () => {
  for (const folder of [TINY_GPT2, TINY_LLAMA, path.join(FIXTURES, "tiny-gemma3")]) {
    it(`${path.basename(folder)}: every node only the logits need is inside the logits' If`, () => {
      const { cfg, weights } = openModelFolder(folder);
      for (const compactWeights of [false, true]) {
        const bytes = buildFetchGatedModelGraph(cfg, weights, { compactWeights });
        assert.deepEqual(workOnlyForLogits(bytes), []);
        const gate = fromBinary(onnx.ModelProtoSchema, bytes).graph!.node.find((n) => n.name === `If:${GRAPH_IO.logits}`)!;
        const then = gate.attribute.find((a) => a.name === "then_branch")!.g!;
        assert.ok(then.node.some((n) => n.opType === "Gemm"), "the unembedding's Gemm is in the branch");
      }
    });
  }
});

describe("the run memory limit", function () {
  this.timeout(60_000);
  const smol = { nLayers: 30, dModel: 576, nHeads: 9, dHead: 64, dMlp: 1536, dVocab: 49152 };

  it("estimates a run from its shape: returned hooks, logits and one block's working set", () => {
    const base = estimateRunBytes(smol, { batch: 1, positions: 1024, hooks: [], logitPositions: 1 });
    const patterns = estimateRunBytes(smol, { batch: 1, positions: 1024, hooks: ["blocks.0.attn.hook_pattern"], logitPositions: 1 });
    assert.equal(patterns - base, 4 * 9 * 1024 * 1024);
    const logits = estimateRunBytes(smol, { batch: 1, positions: 1024, hooks: [] });
    assert.equal(logits - base, 4 * 1023 * 49152);
    assert.ok(estimateRunBytes(smol, { batch: 8, positions: 1024, hooks: [] }) > 7 * logits);
    // Keys and values count when returned or fed: one slot per key/value head, a prefix once per row it is given for.
    assert.ok(estimateRunBytes(smol, { batch: 1, positions: 1024, hooks: [], logitPositions: 1, keyValues: true }) > base);
    const gqa = { ...smol, nKvHeads: 3 };
    const step = { batch: 6, positions: 1, prefix: 1000, hooks: [], keyValues: true };
    assert.equal(estimateRunBytes(gqa, step) - estimateRunBytes(gqa, { ...step, prefixRows: 1 }), 4 * 5 * 1000 * 2 * 30 * 3 * 64);
  });

  it("splits a batched job into calls whose estimate fits the budget", () => {
    assert.equal(rowsWithin(smol, { positions: 64, hooks: [], logitPositions: 4 }, 16), 16);
    const long = rowsWithin(smol, { positions: 1024, hooks: [], logitPositions: 4 }, 16);
    assert.ok(long >= 1 && long < 16, `${long} rows`);
    assert.ok(long * estimateRunBytes(smol, { batch: 1, positions: 1024, hooks: [], logitPositions: 4 }) <= DEFAULT_BATCH_BUDGET_BYTES);
  });

  it("refuses a run that would pass the limit before it runs, the editor naming the setting and the CLI its flag, and lets a smaller one through", async () => {
    assert.throws(
      () => checkRunFits(smol, { batch: 4, positions: 1024, hooks: [] }, { maxBytes: 1024 ** 3, weightsBytes: 0.54e9 }),
      (e: unknown) =>
        e instanceof LoupeError &&
        e.code === "model-too-large" &&
        /4 rows of 1024 tokens/.test(e.message) &&
        /The limit is the setting loupe\.maxModelMemoryMB\.$/.test(errorText(e, "editor")) &&
        !errorText(e, "editor").includes("--") &&
        /the limit is --max-memory-mb\.$/.test(errorText(e, "cli")) &&
        !errorText(e, "cli").includes("loupe.maxModelMemoryMB"),
    );
    const model = await HookedModel.load(TINY_LLAMA, { cacheDir: null, threads: 1, maxMemoryBytes: 2 * 1024 * 1024 });
    try {
      await model.runWithCache([1, 40, 41], { names: ["blocks.0.hook_resid_post"] });
      const long = Array.from({ length: 60 }, (_, i) => 3 + i);
      await assert.rejects(model.runWithCache([long, long, long, long]), (e: unknown) => e instanceof LoupeError && e.code === "model-too-large");
      // The lens stays within the limit by taking fewer rows per call.
      const lens = await model.lens(new Float32Array(40 * model.cfg.dModel), Array.from({ length: 40 }, () => [0]), 2);
      assert.equal(lens.entropy.length, 40);
    } finally {
      await model.dispose();
    }
  });
});
