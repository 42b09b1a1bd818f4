/**
 * Model, tokenizer and cache files from the internet: sizes that would make Loupe allocate
 * gigabytes or spin for minutes before its memory limit could act are refused or made cheap.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../../../src/core/errors";
import { buildModelGraph } from "../../../src/core/model/build-graph";
import { MAX_LAYERS, parseModelConfig, readModelConfig } from "../../../src/core/model/config";
import { evictGraphs } from "../../../src/core/model/graph-cache";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { checkModelFits, estimateModelMemory } from "../../../src/core/model/memory-limit";
import { encodeSafetensors, readSafetensorsIndex, readShardedSafetensorsIndex, readTensorF32, type TensorToWrite } from "../../../src/core/model/safetensors";
import { maxAbsDiff } from "../../../src/core/tensor/tensor";
import { readChatTemplate } from "../../../src/core/chat/template";
import { Tokenizer } from "../../../src/core/tokenizer";
import { MAX_VOCAB_SIZE } from "../../../src/core/tokenizer/tokenizer-spec";
import { readSaeConfig } from "../../../src/core/sae/config";
import { featurePickItems, featurePickItemsAsync, MAX_FEATURE_PICK_ITEMS } from "../../../src/core/view/feature-dashboard";
import { copyTinyModel, FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const isCode = (code: string, pattern?: RegExp) => (e: unknown) => e instanceof LoupeError && e.code === code && (!pattern || pattern.test(e.message));
const tinyConfig = () => JSON.parse(fs.readFileSync(path.join(TINY_GPT2, "config.json"), "utf8")) as Record<string, unknown>;

describe("hostile model folders", () => {
  it("a config with more layers than Loupe builds is refused at once, naming the file", () => {
    assert.throws(() => parseModelConfig({ ...tinyConfig(), n_layer: 1024 }, "evil/config.json"), isCode("model-too-large", /evil\/config\.json: 1024 layers; Loupe builds models with up to 128/));
    assert.throws(() => parseModelConfig({ model_type: "llama", hidden_size: 8, num_attention_heads: 2, num_hidden_layers: MAX_LAYERS + 1, intermediate_size: 8, max_position_embeddings: 16, vocab_size: 8 }, "c.json"), isCode("model-too-large"));
    assert.equal(parseModelConfig({ ...tinyConfig(), n_layer: MAX_LAYERS }).nLayers, MAX_LAYERS);
  });

  it("config.json over the size cap is refused before parsing", () => {
    const dir = copyTinyModel();
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...tinyConfig(), padding: "x".repeat(2 * 1024 * 1024) }));
    assert.throws(() => readModelConfig(dir), isCode("file-too-large", /config\.json is 2\.0 MB, over Loupe's 1\.0 MB limit/));
  });

  it("a long context costs no n_positions² mask: the graph stays small and runs as before", async () => {
    const positions = 4096;
    const dir = copyTinyModel();
    const index = readSafetensorsIndex(path.join(dir, "model.safetensors"));
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of index.tensors.keys()) tensors[name] = { dtype: "F32", shape: [...index.tensors.get(name)!.shape], data: readTensorF32(index, name) };
    const wpe = new Float32Array(positions * 32);
    wpe.set(tensors["transformer.wpe.weight"].data);
    tensors["transformer.wpe.weight"] = { dtype: "F32", shape: [positions, 32], data: wpe };
    fs.writeFileSync(path.join(dir, "model.safetensors"), encodeSafetensors(tensors));
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...tinyConfig(), n_positions: positions }));
    const graph = buildModelGraph(readModelConfig(dir), readSafetensorsIndex(path.join(dir, "model.safetensors")));
    // A boolean causal table would be positions² = 16 MB; the weights stay outside the graph.
    assert.ok(graph.bytes.length < 1024 * 1024, `graph is ${graph.bytes.length} bytes`);
    const [long, original] = await Promise.all([HookedModel.load(dir, { cacheDir: null, threads: 1 }), HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })]);
    try {
      const tokens = [5, 17, 42, 99, 3, 250, 7];
      assert.ok(maxAbsDiff((await long.run(tokens)).data, (await original.run(tokens)).data) < 1e-5);
      const generated = await long.generate(tokens, { maxNewTokens: 4 });
      const expected = await original.generate(tokens, { maxNewTokens: 4 });
      assert.deepEqual(generated.tokens, expected.tokens, "the KV-cache path masks the same way");
    } finally {
      await Promise.all([long.dispose(), original.dispose()]);
    }
  });

  it("ONNX folders get a memory estimate from their files instead of failing on a missing model.safetensors", () => {
    const dir = path.join(FIXTURES, "tiny-gpt2-onnx");
    const estimate = estimateModelMemory(dir);
    assert.equal(estimate.weightsFile, path.join(dir, "model.onnx"));
    assert.equal(estimate.estimatedBytes, fs.statSync(path.join(dir, "model.onnx")).size);
    assert.ok(checkModelFits(dir, 4096 * 1024 * 1024));
    assert.throws(() => checkModelFits(dir, 1024), isCode("model-too-large", /model\.onnx needs about/));
    const withData = scratchDir("onnx-data");
    for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(withData, f));
    fs.writeFileSync(path.join(withData, "model.onnx_data"), Buffer.alloc(300_000));
    assert.equal(estimateModelMemory(withData).estimatedBytes, estimate.estimatedBytes + 300_000);
  });

  it("the graph cache evicts least recently used graphs past its cap, never the one just stored", () => {
    const dir = scratchDir("graphs");
    const now = Date.now() / 1000;
    for (const [name, age] of [["a", 40], ["b", 30], ["c", 20], ["d", 10]] as const) {
      const file = path.join(dir, `${name}.onnx`);
      fs.writeFileSync(file, Buffer.alloc(1000));
      fs.utimesSync(file, now - age, now - age);
    }
    const removed = evictGraphs(dir, 2500, path.join(dir, "a.onnx"));
    assert.deepEqual(removed.map((f) => path.basename(f)), ["b.onnx", "c.onnx"]);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["a.onnx", "d.onnx"]);
  });
});

describe("hostile tokenizers", () => {
  const fixture = () => JSON.parse(fs.readFileSync(path.join(TINY_GPT2, "tokenizer.json"), "utf8")) as { model: { vocab: Record<string, number> }; pre_tokenizer: unknown };

  it("refuses a vocabulary past the cap before building any table", () => {
    const json = fixture();
    const vocab: Record<string, number> = {};
    for (let i = 0; i <= MAX_VOCAB_SIZE; i++) vocab[`t${i}`] = i;
    json.model.vocab = vocab;
    assert.throws(() => Tokenizer.fromJSON(json, "big/tokenizer.json"), isCode("bad-file", /big\/tokenizer\.json: its vocabulary is larger; Loupe accepts at most 524288/));
    const huge = fixture();
    huge.model.vocab = { ...huge.model.vocab, far: 4_000_000_000 };
    assert.throws(() => Tokenizer.fromJSON(huge, "t.json"), isCode("bad-file", /below 524288/));
  });

  it("refuses a Split pre-tokenizer whose pattern backtracks exponentially", () => {
    const json = fixture();
    json.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: "(a+)+$" }, behavior: "Isolated", invert: false }, json.pre_tokenizer] };
    assert.throws(() => Tokenizer.fromJSON(json, "evil/tokenizer.json"), isCode("unsafe-pattern", /evil\/tokenizer\.json: the Split step's pattern \/\(a\+\)\+\$\/ is refused/));
  });
});

describe("hostile SAE folders", () => {
  it("a 10M-feature cfg.json gives the picker a bounded list, labelled features kept", () => {
    const items = featurePickItems(10_000_000, (f) => (f === 9_999_999 ? "far" : undefined), undefined, [9_999_999, 20_000_000]);
    assert.equal(items.length, MAX_FEATURE_PICK_ITEMS);
    assert.equal(items[0].feature, 9_999_999);
    assert.equal(items[0].label, "#9999999 far");
    assert.equal(featurePickItems(300, () => undefined).length, 300);
  });

  it("the editor's picker is built in chunks with the same entries", async () => {
    const labelOf = (f: number) => (f % 1000 === 7 ? `label ${f}` : undefined);
    assert.deepEqual(await featurePickItemsAsync(20_000, labelOf), featurePickItems(20_000, labelOf));
  });

  it("an oversized cfg.json is refused before parsing", () => {
    const dir = scratchDir("sae-cfg");
    fs.writeFileSync(path.join(dir, "cfg.json"), `{"d_in": 4, "pad": "${"x".repeat(5 * 1024 * 1024)}"}`);
    assert.throws(() => readSaeConfig(path.join(dir, "cfg.json")), isCode("file-too-large"));
  });
});

describe("hostile model side files", () => {
  it("an oversized shard index or tokenizer_config.json is refused before parsing, naming the file", () => {
    const dir = scratchDir("sides");
    const index = path.join(dir, "model.safetensors.index.json");
    fs.writeFileSync(index, "{}");
    fs.truncateSync(index, 20 * 1024 * 1024);
    assert.throws(() => readShardedSafetensorsIndex(index), isCode("file-too-large", /model\.safetensors\.index\.json is 20\.0 MB/));
    const config = path.join(dir, "tokenizer_config.json");
    fs.writeFileSync(config, "{}");
    fs.truncateSync(config, 20 * 1024 * 1024);
    assert.throws(() => readChatTemplate(dir), isCode("file-too-large", /tokenizer_config\.json is 20\.0 MB/));
  });
});
