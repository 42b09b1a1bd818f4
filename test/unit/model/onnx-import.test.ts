import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as onnx from "onnx-buf";
import { parseModelConfig } from "../../../src/core/model/config";
import * as ort from "onnxruntime-node";
import { FETCH_HOOKS } from "../../../src/core/model/fetched-hooks";
import { gainInput, GRAPH_IO, writeInput } from "../../../src/core/model/hook-point";
import { gateImportedOutputs, HookedModel } from "../../../src/core/model/hooked-model";
import { blockHook } from "../../../src/core/model/hooks";
import type { Intervention } from "../../../src/core/model/interventions";
import { DataType, GraphBuilder } from "../../../src/core/model/onnx-graph";
import { checkOnnxFolder, importOnnxDecoder, importOnnxFolder } from "../../../src/core/model/onnx-import";
import { maxAbsDiff, type Tensor } from "../../../src/core/tensor/tensor";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";
import { rejectsWith, throwsWith } from "../../helpers/errors";
import { cacheRepo, withEnv } from "../../helpers/hub-cache";

const TINY_ONNX = path.join(FIXTURES, "tiny-gpt2-onnx");
const CFG = JSON.parse(fs.readFileSync(path.join(TINY_GPT2, "config.json"), "utf8")) as Record<string, unknown>;
const TOLERANCE = 1e-4;
const D = 32;
const V = 320;

/** Values at real (unpadded) positions of a [batch, pos, ...] activation. */
function realPositions(t: Tensor, lengths: readonly number[]): Float32Array {
  const inner = t.dims.slice(2).reduce((a, c) => a * c, 1);
  const out: number[] = [];
  lengths.forEach((n, b) => out.push(...t.data.subarray(b * t.dims[1] * inner, (b * t.dims[1] + n) * inner)));
  return Float32Array.from(out);
}

/** A model folder in scratch: config.json and tokenizer.json of the tiny GPT-2, and `files`. */
function onnxFolder(files: Record<string, Uint8Array>, config: Record<string, unknown> = CFG): string {
  const dir = scratchDir("onnx-import");
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  fs.copyFileSync(path.join(TINY_GPT2, "tokenizer.json"), path.join(dir, "tokenizer.json"));
  for (const [name, bytes] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  return dir;
}

function readFixture(): onnx.ModelProto {
  return fromBinary(onnx.ModelProtoSchema, fs.readFileSync(path.join(TINY_ONNX, "model.onnx")));
}

/** Deterministic small weights. */
function weights(n: number, seed: number, scale = 0.1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * scale);
}

/**
 * A GPT-2-shaped decoder whose attention is one com.microsoft Attention node per block, as
 * onnxruntime's transformer optimizer writes it; or, with `folded`, plain ops whose Softmax runs
 * over [batch * heads, query, key] (no causal mask: only the layout matters here). `residual:
 * false` drops the residual Adds.
 */
function fusedDecoder(layers: number, residual = true, folded = false): Uint8Array {
  const g = new GraphBuilder();
  const ids = g.input("input_ids", DataType.INT64, ["batch", "pos"]);
  g.input("attention_mask", DataType.INT64, ["batch", "pos"]);
  const positions = g.input("position_ids", DataType.INT64, ["batch", "pos"]);
  const ones = g.floatInitializer("ones", [D], new Float32Array(D).fill(1));
  const zeros = g.floatInitializer("zeros", [D], new Float32Array(D));
  const ln = (x: string) => g.op("LayerNormalization", [x, ones, zeros], { axis: -1, epsilon: { floatValue: 1e-5 } });
  const wte = g.floatInitializer("wte", [V, D], weights(V * D, 1));
  let x = g.op("Add", [g.op("Gather", [wte, ids]), g.op("Gather", [g.floatInitializer("wpe", [64, D], weights(64 * D, 2)), positions])]);
  const int = (values: number[]) => g.int64Initializer(g.fresh("c"), [values.length], values);
  /** Attention from plain ops with heads folded into the batch axis. */
  const foldedAttention = (h: string, L: number): string => {
    const qkv = g.op("MatMul", [h, g.floatInitializer(`qkv${L}`, [D, 3 * D], weights(3 * D * D, 3 + L))]);
    const [q, k, v] = g.opMulti("Split", [qkv, int([D, D, D])], [g.fresh("q"), g.fresh("k"), g.fresh("v")], { axis: -1 }).map((t) => {
      const heads = g.op("Transpose", [g.op("Reshape", [t, int([0, 0, 4, 8])])], { perm: [0, 2, 1, 3] });
      return g.op("Reshape", [heads, g.op("Concat", [int([-1]), g.op("Slice", [g.op("Shape", [heads]), int([2]), int([4])])], { axis: 0 })]);
    });
    const pattern = g.op("Softmax", [g.op("MatMul", [q, g.op("Transpose", [k], { perm: [0, 2, 1] })])], { axis: -1 });
    const z = g.op("Reshape", [g.op("MatMul", [pattern, v]), g.op("Concat", [g.op("Slice", [g.op("Shape", [h]), int([0]), int([1])]), int([4, -1, 8])], { axis: 0 })]);
    return g.op("Reshape", [g.op("Transpose", [z], { perm: [0, 2, 1, 3] }), int([0, 0, D])]);
  };
  for (let L = 0; L < layers; L++) {
    const attn = folded ? foldedAttention(ln(x), L) : g.op("Attention", [ln(x), g.floatInitializer(`qkv${L}`, [D, 3 * D], weights(3 * D * D, 3 + L)), g.floatInitializer(`qkv_b${L}`, [3 * D], weights(3 * D, 4 + L))], {
      num_heads: 4,
      unidirectional: 1,
    });
    const attnOut = g.op("MatMul", [attn, g.floatInitializer(`proj${L}`, [D, D], weights(D * D, 5 + L))]);
    x = residual ? g.op("Add", [x, attnOut]) : attnOut;
    const mlp = g.op("MatMul", [g.op("Gelu", [g.op("MatMul", [ln(x), g.floatInitializer(`fc${L}`, [D, 4 * D], weights(4 * D * D, 6 + L))])]), g.floatInitializer(`fc_out${L}`, [4 * D, D], weights(4 * D * D, 7 + L))]);
    x = residual ? g.op("Add", [x, mlp]) : mlp;
  }
  g.op("MatMul", [ln(x), g.floatInitializer("unembed", [D, V], weights(D * V, 8))], {}, "logits");
  g.output("logits", DataType.FLOAT);
  const model = fromBinary(onnx.ModelProtoSchema, g.toBytes("fused"));
  for (const node of model.graph?.node ?? []) if (node.opType === "Attention") node.domain = "com.microsoft";
  model.opsetImport.push(create(onnx.OperatorSetIdProtoSchema, { domain: "com.microsoft", version: 1n }));
  return toBinary(onnx.ModelProtoSchema, model);
}

describe("Importing an existing decoder .onnx (tiny GPT-2 exported by torch.onnx, with past inputs)", function () {
  let native: HookedModel;
  let imported: HookedModel;
  const tokens = [
    [5, 17, 42, 99, 3, 8, 250, 11],
    [7, 7, 100, 200, 1],
  ];
  const lengths = tokens.map((t) => t.length);

  before(async () => {
    native = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    imported = await HookedModel.load(TINY_ONNX, { cacheDir: null, threads: 1 });
  });
  after(async () => {
    await native?.dispose();
    await imported?.dispose();
  });

  it("finds the residual stream by structure and names it with TransformerLens hooks", () => {
    assert.ok(imported.isImported);
    assert.ok(!native.isImported);
    const expected = ["hook_embed", "hook_pos_embed"];
    for (let L = 0; L < 2; L++) {
      expected.push(...["hook_resid_pre", "attn.hook_pattern", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"].map((s) => `blocks.${L}.${s}`));
    }
    assert.deepEqual(imported.hookNames, expected);
  });

  it("gives the native model's logits within 1e-4, on a padded batch (empty past, float mask cast to the export's int64)", async () => {
    const a = await native.run(tokens);
    const b = await imported.run(tokens);
    assert.deepEqual(b.dims, a.dims);
    const diff = maxAbsDiff(realPositions(a, lengths), realPositions(b, lengths));
    assert.ok(diff < TOLERANCE, `logits differ by ${diff}`);
  });

  it("runWithCache returns the native model's residual stream, branch outputs and patterns", async () => {
    const a = await native.runWithCache(tokens, { names: imported.hookNames });
    const b = await imported.runWithCache(tokens);
    assert.deepEqual(b.cache.names.sort(), [...imported.hookNames].sort());
    for (const name of imported.hookNames) {
      const [x, y] = [a.cache.get(name), b.cache.get(name)];
      assert.deepEqual(y.dims, x.dims, `${name} shape`);
      // Padded query rows of the pattern see other positions in the export (its own position ids): compare row 0, which is unpadded.
      const size = x.data.length / 2;
      const diff = name.includes("pattern") ? maxAbsDiff(x.data.subarray(0, size), y.data.subarray(0, size)) : maxAbsDiff(realPositions(x, lengths), realPositions(y, lengths));
      assert.ok(diff < TOLERANCE, `${name} differs by ${diff}`);
    }
  });

  it("computes and holds only the hooks and logits a run asks for, with the values the ungated import gives", async () => {
    assert.ok(imported.fetchesOnlyRequested && native.fetchesOnlyRequested);
    const graph = importOnnxFolder(TINY_ONNX, path.join(TINY_ONNX, "model.onnx")).imported;
    const ids = tokens[0];
    const feeds: Record<string, ort.Tensor> = {
      [GRAPH_IO.ids]: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]),
      [GRAPH_IO.positions]: new ort.Tensor("int64", BigInt64Array.from(ids, (_, t) => BigInt(t)), [1, ids.length]),
      [GRAPH_IO.mask]: new ort.Tensor("float32", new Float32Array(ids.length).fill(1), [1, ids.length]),
    };
    const zero = new ort.Tensor("float32", new Float32Array(1), [1]);
    for (const name of graph.hookNames) feeds[gainInput(name)] = feeds[writeInput(name)] = zero;
    const options = { extra: { session: { model_external_initializers_file_folder_path: graph.dataDir } } };
    const ungated = await ort.InferenceSession.create(graph.bytes, options);
    const gated = await ort.InferenceSession.create(gateImportedOutputs(graph), options);
    const asked = blockHook(1, "hook_resid_mid");
    const mask = Uint8Array.from([...graph.hookNames, GRAPH_IO.logits], (name) => (name === asked ? 1 : 0));
    const all = [GRAPH_IO.logits, ...graph.hookNames];
    const [full, some] = [await ungated.run(feeds, all), await gated.run({ ...feeds, [FETCH_HOOKS]: new ort.Tensor("bool", mask, [mask.length]) }, all)];
    // The unrequested outputs come back empty: neither kept nor, for the logits, computed.
    for (const name of all) assert.equal(some[name].size, name === asked ? full[name].size : 0, name);
    assert.deepEqual(Array.from(some[asked].data as Float32Array), Array.from(full[asked].data as Float32Array));
    // And the model runs through that mask: the same values, bit for bit.
    const { cache } = await imported.runWithCache(ids, { names: [asked], logits: false });
    assert.deepEqual(Array.from(cache.get(asked).data), Array.from(full[asked].data as Float32Array));
    await Promise.all([ungated.release(), gated.release()]);
  });

  it("applies interventions exactly as the native graph does", async () => {
    const vector = Float32Array.from({ length: D }, (_, i) => Math.sin(i) * 2);
    const interventions: Intervention[] = [
      { hook: blockHook(0, "hook_attn_out"), kind: "zero" },
      { hook: blockHook(0, "hook_resid_post"), kind: "add", vector, positions: [1, 3] },
      { hook: blockHook(1, "attn.hook_pattern"), kind: "scale", factor: 0.5, heads: [2] },
    ];
    const names = [blockHook(1, "hook_resid_pre"), blockHook(0, "hook_resid_mid")];
    const one = [tokens[0]];
    const clean = await native.run(one);
    const a = await native.runWithHooks(one, interventions, { names });
    const b = await imported.runWithHooks(one, interventions, { names });
    assert.ok(maxAbsDiff(a.logits.data, clean.data) > 0.01, "the interventions should change the logits");
    const diff = maxAbsDiff(a.logits.data, b.logits.data);
    assert.ok(diff < TOLERANCE, `intervened logits differ by ${diff}`);
    // Zeroed attention: resid_mid equals resid_pre; resid_pre of block 1 carries the added vector.
    for (const name of names) assert.ok(maxAbsDiff(a.cache.get(name).data, b.cache.get(name).data) < TOLERANCE, name);
  });

  it("says plainly which hooks the imported graph lacks, and why", async () => {
    await rejectsWith(imported.runWithCache(tokens[0], { names: [blockHook(0, "attn.hook_q")] }), "bad-argument", /blocks\.0\.attn\.hook_q" is not available in the imported model .*model\.onnx: .*q, k, v/);
    await rejectsWith(imported.runWithHooks(tokens[0], [{ hook: blockHook(1, "mlp.hook_pre"), kind: "zero" }]), "bad-argument", /not available .*MLP's inner activations/);
    await rejectsWith(imported.runWithCache(tokens[0], { names: ["ln_final.hook_normalized"] }), "bad-argument", /final norm/);
    await rejectsWith(imported.runWithCache(tokens[0], { names: ["blocks.9.hook_resid_pre"] }), "bad-argument", /Unknown hook/);
  });

  it("runs the logit lens through the graph's own final norm and LM head", async () => {
    const { cache } = await native.runWithCache(tokens[0], { names: [blockHook(0, "hook_resid_post")] });
    const resid = cache.get(blockHook(0, "hook_resid_post")).data;
    const n = tokens[0].length;
    const targets = tokens[0].map((t) => [t, 3]);
    const [a, b] = [await native.lens(resid, targets, 5), await imported.lens(resid, targets, 5)];
    assert.deepEqual([...b.topIds], [...a.topIds]);
    for (const key of ["topLogprobs", "targetLogprob", "entropy"] as const) {
      assert.equal(b[key].length, key === "topLogprobs" ? n * 5 : key === "targetLogprob" ? n * 2 : n);
      assert.ok(maxAbsDiff(a[key], b[key]) < TOLERANCE, key);
    }
  });

  it("generates the native model's greedy tokens", async () => {
    const a = await native.generate(tokens[0], { maxNewTokens: 6, stopAtEos: false });
    const b = await imported.generate(tokens[0], { maxNewTokens: 6, stopAtEos: false });
    assert.deepEqual(b.tokens, a.tokens);
  });

  it("loads weights kept in a side file (external data), from Optimum's onnx/ layout", async () => {
    // Move every initializer's bytes to onnx/weights.bin, referenced relative to the model file.
    const model = readFixture();
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const t of model.graph?.initializer ?? []) {
      if (t.rawData.length === 0) continue;
      chunks.push(Uint8Array.from(t.rawData));
      t.dataLocation = onnx.TensorProto_DataLocation.EXTERNAL;
      t.externalData = Object.entries({ location: "weights.bin", offset: String(offset), length: String(t.rawData.length) }).map(([key, value]) => create(onnx.StringStringEntryProtoSchema, { key, value }));
      offset += t.rawData.length;
      t.rawData = new Uint8Array(0);
    }
    const dir = onnxFolder({ "onnx/model.onnx": toBinary(onnx.ModelProtoSchema, model), "onnx/weights.bin": Buffer.concat(chunks) });
    assert.ok(fs.statSync(path.join(dir, "onnx/model.onnx")).size < 40_000, "the model file should hold no weights");
    const external = await HookedModel.load(dir, { cacheDir: null, threads: 1 });
    // The same files in a hub cache: the model file and its weights are symlinks to differently named blobs.
    const hub = scratchDir("onnx-hub");
    const files = Object.fromEntries(["config.json", "tokenizer.json", "onnx/model.onnx", "onnx/weights.bin"].map((f) => [f, fs.readFileSync(path.join(dir, f))]));
    cacheRepo(hub, "loupe-test/onnx-external", files);
    const fromHub = await withEnv({ HF_HUB_CACHE: hub }, () => HookedModel.load("loupe-test/onnx-external", { cacheDir: null, threads: 1 }));
    try {
      const diff = maxAbsDiff((await native.run(tokens[0])).data, (await external.run(tokens[0])).data);
      assert.ok(diff < TOLERANCE, `logits differ by ${diff}`);
      assert.deepEqual((await fromHub.run(tokens[0])).data, (await external.run(tokens[0])).data);
    } finally {
      await external.dispose();
      await fromHub.dispose();
    }
  });
});

describe("Importing a Llama-style .onnx (RMSNorm, rotary, grouped-query attention, untied head, position_ids input)", function () {
  let native: HookedModel;
  let imported: HookedModel;
  const tokens = [
    [5, 17, 42, 99, 3, 8],
    [7, 7, 100, 200, 1, 2],
  ];

  before(async () => {
    native = await HookedModel.load(path.join(FIXTURES, "tiny-llama"), { cacheDir: null, threads: 1 });
    imported = await HookedModel.load(path.join(FIXTURES, "tiny-llama-onnx"), { cacheDir: null, threads: 1 });
  });
  after(async () => {
    await native?.dispose();
    await imported?.dispose();
  });

  it("has no position-embedding hook, and matches the native Llama's logits, hooks and interventions", async () => {
    assert.ok(!imported.hookNames.includes("hook_pos_embed"));
    assert.equal(imported.hookNames.filter((n) => /hook_resid_(pre|mid|post)$/.test(n)).length, 6);
    const a = await native.runWithCache(tokens, { names: imported.hookNames });
    const b = await imported.runWithCache(tokens);
    assert.ok(maxAbsDiff(a.logits.data, b.logits.data) < TOLERANCE, "logits");
    for (const name of imported.hookNames) assert.ok(maxAbsDiff(a.cache.get(name).data, b.cache.get(name).data) < TOLERANCE, name);
    const vector = Float32Array.from({ length: 48 }, (_, i) => Math.cos(i));
    const interventions: Intervention[] = [
      { hook: blockHook(1, "hook_attn_out"), kind: "zero", positions: [2, 3] },
      { hook: blockHook(0, "hook_resid_post"), kind: "add", vector },
    ];
    const x = await native.runWithHooks(tokens, interventions);
    const y = await imported.runWithHooks(tokens, interventions);
    assert.ok(maxAbsDiff(x.logits.data, a.logits.data) > 0.01, "the interventions should change the logits");
    assert.ok(maxAbsDiff(x.logits.data, y.logits.data) < TOLERANCE, "intervened logits");
  });

  it("chains hooks on one tensor in forward order: a change at hook_embed reaches blocks.0.hook_resid_pre", async () => {
    const pre = blockHook(0, "hook_resid_pre");
    const run = await imported.runWithHooks(tokens, [{ hook: "hook_embed", kind: "scale", factor: 0 }], { names: [pre, "hook_embed"] });
    assert.ok(run.cache.get(pre).data.every((v) => v === 0), "resid_pre should see the zeroed embedding");
    const scaled = await imported.runWithHooks(tokens, [{ hook: "hook_embed", kind: "scale", factor: 2 }, { hook: pre, kind: "add", vector: new Float32Array(48).fill(1) }], { names: [pre] });
    const clean = await native.runWithCache(tokens, { names: [pre] });
    const expected = clean.cache.get(pre).data.map((v) => 2 * v + 1);
    assert.ok(maxAbsDiff(scaled.cache.get(pre).data, expected) < TOLERANCE);
  });
});

describe("Importing .onnx decoders Loupe cannot fully read", function () {
  const cfg = parseModelConfig(CFG);

  it("maps a fused-attention graph's residual stream and names the hooks its Attention op hides", async () => {
    const dir = onnxFolder({ "model.onnx": fusedDecoder(2) });
    const graph = importOnnxDecoder(path.join(dir, "model.onnx"), cfg);
    assert.ok(graph.hookNames.includes(blockHook(1, "hook_resid_mid")) && graph.hookNames.includes(blockHook(1, "hook_attn_out")));
    assert.ok(!graph.hookNames.some((n) => n.includes("attn.hook_")), "no attention internals");
    assert.match(graph.unavailable.get(blockHook(0, "attn.hook_pattern")) ?? "", /fused Attention node/);
    const model = await HookedModel.load(dir, { cacheDir: null, threads: 1 });
    try {
      await rejectsWith(model.runWithCache([1, 2, 3], { names: [blockHook(1, "attn.hook_pattern")] }), "bad-argument", /attn\.hook_pattern" is not available .*fused Attention node/);
      // The residual hooks still read and write: zeroing the MLP out makes resid_post equal resid_mid.
      const mid = blockHook(1, "hook_resid_mid");
      const post = blockHook(1, "hook_resid_post");
      const run = await model.runWithHooks([1, 2, 3], [{ hook: blockHook(1, "hook_mlp_out"), kind: "zero" }], { names: [mid, post] });
      assert.ok(maxAbsDiff(run.cache.get(mid).data, run.cache.get(post).data) === 0);
      const clean = await model.runWithCache([1, 2, 3], { names: [mid, post] });
      assert.ok(maxAbsDiff(clean.cache.get(mid).data, clean.cache.get(post).data) > 1e-3);
    } finally {
      await model.dispose();
    }
  });

  it("does not call a Softmax over heads folded into the batch an attention pattern", async () => {
    const dir = onnxFolder({ "model.onnx": fusedDecoder(2, true, true) });
    // By structure alone, the Softmax is taken for the pattern; the test run at load drops it.
    assert.ok(importOnnxDecoder(path.join(dir, "model.onnx"), cfg).hookNames.includes(blockHook(0, "attn.hook_pattern")));
    const model = await HookedModel.load(dir, { cacheDir: null, threads: 1 });
    try {
      assert.ok(!model.hookNames.some((n) => n.includes("pattern")));
      assert.ok(model.hookNames.includes(blockHook(1, "hook_resid_post")));
      await rejectsWith(model.runWithCache([1, 2, 3], { names: [blockHook(0, "attn.hook_pattern")] }), "bad-argument", /not shaped \[batch, head, query, key\]/);
      const run = await model.runWithCache([1, 2, 3], { names: [blockHook(0, "hook_resid_post")] });
      assert.deepEqual(run.cache.get(blockHook(0, "hook_resid_post")).dims, [1, 3, D]);
    } finally {
      await model.dispose();
    }
  });

  it("refuses a graph without a residual chain", () => {
    const file = path.join(onnxFolder({ "model.onnx": fusedDecoder(2, false) }), "model.onnx");
    throwsWith(() => importOnnxDecoder(file, cfg), "unsupported-architecture", /model\.onnx: no residual stream found/);
  });

  it("explains that a merged decoder hides the network in an If node", async () => {
    const model = fromBinary(onnx.ModelProtoSchema, fusedDecoder(2, false));
    model.graph?.node.push(create(onnx.NodeProtoSchema, { opType: "If", input: ["use_cache_branch"], output: ["branch_out"] }));
    const dir = onnxFolder({ "onnx/decoder_model_merged.onnx": toBinary(onnx.ModelProtoSchema, model) });
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "unsupported-architecture", /decoder_model_merged\.onnx: no residual stream found.*If node .*import decoder_model\.onnx/);
  });

  it("refuses a residual chain whose length does not match config.json", async () => {
    const dir = onnxFolder({ "model.onnx": fs.readFileSync(path.join(TINY_ONNX, "model.onnx")) }, { ...CFG, n_layer: 3 });
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "unsupported-architecture", /4 residual Adds \(2 blocks.*config\.json gives 3 layers/);
  });

  it("refuses an unsupported opset, a file that is not ONNX, and a graph that is not a decoder", () => {
    const old = readFixture();
    old.opsetImport[0].version = 9n;
    const oldFile = path.join(onnxFolder({ "model.onnx": toBinary(onnx.ModelProtoSchema, old) }), "model.onnx");
    throwsWith(() => importOnnxDecoder(oldFile, cfg), "unsupported-architecture", /opset 9 is not supported/);

    const junk = path.join(onnxFolder({ "model.onnx": new TextEncoder().encode("not a protobuf at all") }), "model.onnx");
    throwsWith(() => importOnnxDecoder(junk, cfg), "bad-file", /model\.onnx: not a readable ONNX model/);

    const encoder = readFixture();
    if (encoder.graph) encoder.graph.output = encoder.graph.output.filter((o) => o.name !== "logits");
    const encoderFile = path.join(onnxFolder({ "model.onnx": toBinary(onnx.ModelProtoSchema, encoder) }), "model.onnx");
    throwsWith(() => importOnnxDecoder(encoderFile, cfg), "unsupported-architecture", /not a decoder Loupe can import/);
  });

  it("reports every reason at once, what needs a new export first", async () => {
    // An old opset and residual Adds fused by onnxruntime's optimizer: both need a new export.
    const optimized = readFixture();
    optimized.opsetImport[0].version = 11n;
    optimized.graph?.node.push(create(onnx.NodeProtoSchema, { opType: "SkipLayerNormalization", domain: "com.microsoft", input: ["a", "b"], output: ["c"] }));
    const optimizedFile = path.join(onnxFolder({ "model.onnx": toBinary(onnx.ModelProtoSchema, optimized) }), "model.onnx");
    throwsWith(() => importOnnxDecoder(optimizedFile, cfg), "unsupported-architecture", /model\.onnx cannot be imported, for 2 reasons \(fix them in this order\):\n  1\. opset 11 is not supported.*\n  2\. the residual Adds are fused into SkipLayerNormalization nodes.*without onnxruntime optimizations/);
    // An old opset, then a config.json that disagrees with the graph.
    const old = readFixture();
    old.opsetImport[0].version = 9n;
    const dir = onnxFolder({ "model.onnx": toBinary(onnx.ModelProtoSchema, old) }, { ...CFG, n_layer: 3, vocab_size: 500 });
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "unsupported-architecture", /for 3 reasons.*\n  1\. opset 9 .*\n  2\. .*4 residual Adds .*config\.json gives 3 layers.*\n  3\. the token embedding is \[320, 32\] but config\.json gives vocab_size 500/);
  });

  it("says a graph with zero nodes has zero nodes", () => {
    const empty = readFixture();
    if (empty.graph) empty.graph.node = [];
    const file = path.join(onnxFolder({ "model.onnx": toBinary(onnx.ModelProtoSchema, empty) }), "model.onnx");
    throwsWith(() => importOnnxDecoder(file, cfg), "bad-file", /model\.onnx: its graph has zero nodes \(\d+ initializers\)/);
  });

  it("checks an ONNX folder without loading it, and leaves safetensors folders to the usual check", () => {
    const checked = checkOnnxFolder(TINY_ONNX);
    assert.equal(checked?.modelFile, path.join(TINY_ONNX, "model.onnx"));
    assert.equal(checked?.cfg.nLayers, 2);
    assert.ok(checked?.hookNames.includes(blockHook(1, "hook_resid_post")));
    assert.equal(checkOnnxFolder(TINY_GPT2), undefined);
    throwsWith(() => checkOnnxFolder(onnxFolder({ "model.onnx": fusedDecoder(2, false) })), "unsupported-architecture", /no residual stream/);
  });

  it("blames config.json, not the tokenizer, when vocab_size is smaller than the graph's embedding", async () => {
    const dir = onnxFolder({ "model.onnx": fs.readFileSync(path.join(TINY_ONNX, "model.onnx")) }, { ...CFG, vocab_size: 100 });
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "bad-file", /model\.onnx: the token embedding is \[320, 32\] but config\.json gives vocab_size 100/);
    throwsWith(() => checkOnnxFolder(dir), "bad-file", /token embedding is \[320, 32\]/);
  });

  it("checks the embedding against config.json", () => {
    const file = path.join(TINY_ONNX, "model.onnx");
    throwsWith(() => importOnnxDecoder(file, parseModelConfig({ ...CFG, vocab_size: 500 })), "bad-file", /token embedding is \[320, 32\] but config\.json gives vocab_size 500/);
  });
});
