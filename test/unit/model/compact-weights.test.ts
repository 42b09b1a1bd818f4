/**
 * LoadOptions.compactWeights: f16/bf16 weight matrices stay as stored and are cast during each
 * run (WeightTable). Checked on the tiny fixtures rewritten as f16 and bf16: same numbers as the
 * default, a graph with no foldable weight Cast, and a graph cache that keeps the two apart.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import * as onnx from "onnx-buf";
import { main } from "../../../src/cli/main";
import { buildLensGraph, buildModelGraph } from "../../../src/core/model/build-graph";
import { parseModelConfig } from "../../../src/core/model/config";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { estimateModelMemory } from "../../../src/core/model/memory-limit";
import { readSafetensorsIndex } from "../../../src/core/model/safetensors";
import { maxAbsDiff } from "../../../src/core/tensor/tensor";
import { loadHookedModel } from "../../../src/core/requests";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";
import { halfCopy } from "../../helpers/half-copy";

const TINY_LLAMA = path.join(FIXTURES, "tiny-llama");
function graphOf(bytes: Uint8Array): onnx.GraphProto {
  return fromBinary(onnx.ModelProtoSchema, bytes).graph!;
}

/**
 * Casts that read a weight matrix directly: onnxruntime folds these to float32 at load. (Vectors,
 * norms and biases, are folded in both modes: they are small.)
 */
function foldableWeightCasts(graph: onnx.GraphProto): string[] {
  const weights = new Set(graph.initializer.filter((t) => t.name.startsWith("w:") && t.dims.length > 1).map((t) => t.name));
  return graph.node.filter((n) => n.opType === "Cast" && weights.has(n.input[0])).map((n) => n.input[0]);
}

function buildFor(folder: string, compactWeights: boolean): { model: onnx.GraphProto; lens: onnx.GraphProto } {
  const cfg = parseModelConfig(JSON.parse(fs.readFileSync(path.join(folder, "config.json"), "utf8")));
  const weights = readSafetensorsIndex(path.join(folder, "model.safetensors"));
  return { model: graphOf(buildModelGraph(cfg, weights, { compactWeights }).bytes), lens: graphOf(buildLensGraph(cfg, weights, { compactWeights })) };
}

describe("compact weights (f16/bf16 kept as stored)", function () {
  this.timeout(60_000);
  const folders: Record<string, string> = {};
  before(() => {
    for (const [name, fixture] of [["gpt2", TINY_GPT2], ["llama", TINY_LLAMA]] as const) {
      for (const dtype of ["F16", "BF16"] as const) folders[`${name}-${dtype}`] = halfCopy(fixture, dtype);
    }
  });

  for (const arch of ["gpt2", "llama"]) {
    for (const dtype of ["F16", "BF16"] as const) {
      it(`${arch} ${dtype}: logits, hooks, generation and the lens match the default load`, async () => {
        const folder = folders[`${arch}-${dtype}`];
        const [plain, compact] = await Promise.all([
          HookedModel.load(folder, { cacheDir: null, threads: 1 }),
          HookedModel.load(folder, { cacheDir: null, threads: 1, compactWeights: true }),
        ]);
        try {
          const tokens = arch === "llama" ? [1, 40, 41, 42, 43, 44] : [10, 20, 30, 40, 50];
          const [a, b] = [await plain.runWithCache(tokens), await compact.runWithCache(tokens)];
          assert.ok(maxAbsDiff(a.logits.data, new Float32Array(a.logits.data.length)) > 1e-2, "the half-precision copy still computes something");
          assert.ok(maxAbsDiff(a.logits.data, b.logits.data) < 1e-3, "logits");
          for (const name of plain.hookNames) assert.ok(maxAbsDiff(a.cache.get(name).data, b.cache.get(name).data) < 1e-3, name);
          // Only the last position's logits (the sliced unembedding with logit positions).
          const [la, lb] = [await plain.run(tokens, { logitPositions: [tokens.length - 1] }), await compact.run(tokens, { logitPositions: [tokens.length - 1] })];
          assert.ok(maxAbsDiff(la.data, lb.data) < 1e-3, "logits at one position");
          const options = { maxNewTokens: 6, stopAtEos: false };
          assert.deepEqual((await compact.generate(tokens, options)).tokens, (await plain.generate(tokens, options)).tokens);
          const resid = a.cache.get(`blocks.0.hook_resid_post`).data.slice(0, 2 * plain.cfg.dModel);
          const [lensA, lensB] = [await plain.lens(resid, [[3], [4]], 5), await compact.lens(resid, [[3], [4]], 5)];
          assert.deepEqual(Array.from(lensB.topIds), Array.from(lensA.topIds));
          assert.ok(maxAbsDiff(lensA.targetLogprob, lensB.targetLogprob) < 1e-3 && maxAbsDiff(lensA.entropy, lensB.entropy) < 1e-3, "lens");
        } finally {
          await Promise.all([plain.dispose(), compact.dispose()]);
        }
      });
    }
  }

  it("leaves no weight Cast for onnxruntime to fold, and gathers embedding rows before casting", () => {
    for (const key of ["gpt2-F16", "llama-BF16"]) {
      const plain = buildFor(folders[key], false);
      const compact = buildFor(folders[key], true);
      assert.ok(foldableWeightCasts(plain.model).length > 0, `${key}: the default graph casts weights at load`);
      assert.deepEqual(foldableWeightCasts(compact.model), [], `${key}: model graph`);
      assert.deepEqual(foldableWeightCasts(compact.lens), [], `${key}: lens graph`);
      // Every weight matrix reaches its Cast through an op with a runtime input (Reshape, Slice) or a Gather of rows.
      const producers = new Map(compact.model.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
      const castInputs = compact.model.node.filter((n) => n.opType === "Cast" && producers.get(n.input[0])?.input[0]?.startsWith("w:"));
      assert.ok(castInputs.length > 0);
      for (const cast of castInputs) assert.ok(["Reshape", "Slice", "Gather"].includes(producers.get(cast.input[0])!.opType), cast.input[0]);
      // The unembedding is cast in slices, not whole.
      assert.ok(compact.model.node.filter((n) => n.opType === "Slice" && n.input[0].startsWith("w:")).length > 1, `${key}: sliced unembedding`);
    }
  });

  it("Gemma 3 keeps its (tied) embedding table as stored by default, gathered per token and cast in slices to unembed", async () => {
    const folder = halfCopy(path.join(FIXTURES, "tiny-gemma3"), "BF16");
    const plain = buildFor(folder, false);
    for (const graph of [plain.model, plain.lens]) {
      const casts = foldableWeightCasts(graph);
      assert.ok(!casts.some((name) => name.includes("embed_tokens")), `no load-time cast of the embedding (${casts.join(", ")})`);
      assert.ok(graph.node.filter((n) => n.opType === "Slice" && n.input[0].includes("embed_tokens")).length > 1, "the unembedding is cast in slices");
    }
    assert.ok(foldableWeightCasts(plain.model).some((name) => name.includes("q_proj")), "other matrices still fold to float32 by default");
    assert.ok(plain.model.node.some((n) => n.opType === "Gather" && n.input[0].includes("embed_tokens")), "rows gathered from the stored table");
    const [a, b] = await Promise.all([HookedModel.load(folder, { cacheDir: null, threads: 1 }), HookedModel.load(folder, { cacheDir: null, threads: 1, compactWeights: true })]);
    try {
      const tokens = [2, 40, 41, 42, 43, 44, 45, 46];
      assert.ok(maxAbsDiff((await a.run(tokens)).data, (await b.run(tokens)).data) < 1e-4);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  it("folds a weight read twice (a tied embedding and unembedding) into one float32 copy", () => {
    const tied = scratchDir("compact-tied-llama");
    for (const file of ["model.safetensors", "tokenizer.json"]) fs.copyFileSync(path.join(folders["llama-BF16"], file), path.join(tied, file));
    const config = JSON.parse(fs.readFileSync(path.join(folders["llama-BF16"], "config.json"), "utf8"));
    fs.writeFileSync(path.join(tied, "config.json"), JSON.stringify({ ...config, tie_word_embeddings: true }));
    for (const folder of [tied, folders["gpt2-F16"]]) {
      const casts = foldableWeightCasts(buildFor(folder, false).model);
      assert.ok(casts.some((name) => /embed_tokens|wte/.test(name)), "the embedding is cast at load");
      assert.equal(new Set(casts).size, casts.length, `${folder}: each weight cast once`);
    }
  });

  it("does not change a float32 model's weights: no Casts either way", () => {
    for (const fixture of [TINY_GPT2, TINY_LLAMA]) {
      const compact = buildFor(fixture, true);
      assert.equal(compact.model.node.filter((n) => n.opType === "Cast" && n.input[0].startsWith("w:")).length, 0);
    }
  });

  it("caches the compact graph apart from the default one", async () => {
    const cacheDir = scratchDir("compact-cache");
    const folder = folders["llama-F16"];
    const load = (compactWeights: boolean) => HookedModel.load(folder, { cacheDir, threads: 1, compactWeights });
    const models = [await load(false), await load(true), await load(true), await load(false)];
    try {
      assert.deepEqual(models.map((m) => m.graphFromCache), [false, false, true, true]);
      const graphs = () => fs.readdirSync(path.join(cacheDir, "graphs")).filter((f) => f.endsWith(".onnx")).length;
      assert.equal(graphs(), 2, "the model graph in two modes; the lens graph waits for the first lens call");
      const D = models[0].cfg.dModel;
      for (const model of models.slice(0, 2)) await model.lens(new Float32Array(D).fill(0.5), [[3]], 1);
      assert.equal(graphs(), 4, "model and lens graphs, each in two modes");
      const tokens = [1, 40, 41, 42];
      assert.ok(maxAbsDiff((await models[2].run(tokens)).data, (await models[3].run(tokens)).data) < 1e-3);
    } finally {
      await Promise.all(models.map((m) => m.dispose()));
    }
  });

  it("estimates memory at the stored size, and the worker and CLI pass the option on", async () => {
    const folder = folders["gpt2-BF16"];
    const plain = estimateModelMemory(folder);
    const compact = estimateModelMemory(folder, true);
    assert.ok(Math.abs(compact.estimatedBytes * 2 - plain.estimatedBytes) < 1e-9, "bf16 is half of float32");
    // A limit between the two: refused by default, loaded compact.
    const limit = (compact.estimatedBytes + plain.estimatedBytes) / 2;
    await assert.rejects(loadHookedModel({ folder, cacheDir: null, threads: 1, maxModelBytes: limit }), /model.safetensors needs about/);
    const model = await loadHookedModel({ folder, cacheDir: null, threads: 1, maxModelBytes: limit, compactWeights: true });
    await model.dispose();

    const prompt = path.join(scratchDir("compact-cli"), "prompt.txt");
    fs.writeFileSync(prompt, "When Mia and Leo went to the park");
    const outputs: string[] = [];
    for (const flags of [[], ["--compact-weights"]]) {
      const chunks: string[] = [];
      const code = await main(["generate", "--model", folder, "--max-tokens", "5", "--json", ...flags, prompt], { out: (t) => void chunks.push(t), readStdin: () => "" });
      assert.equal(code, 0);
      outputs.push(chunks.join(""));
    }
    assert.equal(outputs[1], outputs[0]);
  });
});
