/**
 * What Gemma 3 adds to the Llama family beyond the PyTorch parity suite in llama.test.ts (which runs
 * tiny-gemma3, made by bench/torch/gemma3_torch.py): sliding-window layers, the tokenizer's style,
 * config.json variants ("gemma3" multimodal folders, sliding_window_pattern), the embedding scale.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { parseModelConfig, type LlamaConfig } from "../../../src/core/model/config";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { roundToDtype } from "../../../src/core/model/llama-graph";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32 } from "../../../src/core/model/safetensors";
import { maxAbsDiff } from "../../../src/core/tensor/tensor";
import { FIXTURES, scratchDir } from "../../helpers/fixtures";
import { rejectsWith, throwsWith } from "../../helpers/errors";
import { assertMatchesRustTokenizer } from "../../helpers/rust-tokenizer";

const TINY_GEMMA3 = path.join(FIXTURES, "tiny-gemma3");
const baseConfig = (): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(TINY_GEMMA3, "config.json"), "utf8")) as Record<string, unknown>;
const reference = JSON.parse(fs.readFileSync(path.join(TINY_GEMMA3, "reference.json"), "utf8")) as { prompts: { text: string; tokens: number[]; logits: number[] }[] };

/** tiny-gemma3 laid out as a "gemma3" (Gemma3ForConditionalGeneration) folder: text_config, weights under `prefix`. */
function multimodalFolder(prefix: string | undefined): string {
  const dir = scratchDir("gemma3");
  const text = baseConfig();
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ model_type: "gemma3", architectures: ["Gemma3ForConditionalGeneration"], text_config: text, vision_config: { hidden_size: 8 } }));
  const index = readSafetensorsIndex(path.join(TINY_GEMMA3, "model.safetensors"));
  const tensors: Parameters<typeof encodeSafetensors>[0] = {
    "vision_tower.vision_model.embeddings.patch_embedding.weight": { dtype: "F32", shape: [2, 2], data: new Float32Array(4) },
  };
  if (prefix !== undefined) {
    for (const [name, entry] of index.tensors) tensors[name.replace(/^model\./, prefix)] = { dtype: "F32", shape: entry.shape, data: readTensorF32(index, name) };
  }
  fs.writeFileSync(path.join(dir, "model.safetensors"), encodeSafetensors(tensors));
  fs.copyFileSync(path.join(TINY_GEMMA3, "tokenizer.json"), path.join(dir, "tokenizer.json"));
  return dir;
}

describe("Gemma 3", () => {
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(TINY_GEMMA3, { cacheDir: null, threads: 1 })));
  after(async () => model?.dispose());

  it("sliding-window layers see only the last `sliding_window` keys; global layers see every earlier one", async () => {
    const tokens = reference.prompts[0].tokens;
    const T = tokens.length;
    const cfg = model.cfg as LlamaConfig;
    assert.deepEqual(cfg.layerWindows, [4, undefined, 4]);
    assert.ok(T > 6, "the prompt is longer than the window");
    const { cache } = await model.runWithCache(tokens, { names: ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"] });
    for (const [layer, window] of [[0, 4], [1, Infinity]] as const) {
      const pattern = cache.get(`blocks.${layer}.attn.hook_pattern`).data;
      for (let h = 0; h < cfg.nHeads; h++) {
        for (let q = 0; q < T; q++) {
          for (let k = 0; k < T; k++) {
            const p = pattern[(h * T + q) * T + k];
            const seen = k <= q && q - k < window;
            assert.ok(seen ? p > 0 : p < 1e-9, `layer ${layer} head ${h}: query ${q} ${seen ? "sees" : "does not see"} key ${k} (${p})`);
          }
        }
      }
    }
  });

  it("a per-head key norm follows attn.hook_k: scaling a key there by a positive factor changes nothing", async () => {
    const tokens = reference.prompts[0].tokens;
    const plain = await model.run(tokens);
    const scaled = await model.runWithHooks(tokens, [{ hook: "blocks.1.attn.hook_k", kind: "scale", factor: 3 }]);
    assert.ok(maxAbsDiff(plain.data, scaled.logits.data) < 1e-4);
    const flipped = await model.runWithHooks(tokens, [{ hook: "blocks.1.attn.hook_k", kind: "scale", factor: -1 }]);
    assert.ok(maxAbsDiff(plain.data, flipped.logits.data) > 1e-3, "a sign flip survives the norm");
  });

  it("soft-caps the final logits within ±final_logit_softcapping", async () => {
    const logits = await model.run(reference.prompts[0].tokens);
    const cap = (model.cfg as LlamaConfig).finalLogitSoftcap!;
    assert.equal(cap, 8);
    assert.ok(logits.data.every((l) => Math.abs(l) < cap));
  });

  it("tokenizes as the Rust tokenizer does (Replace normalizer, no pre-tokenizer, byte fallback), exact UTF-16 offsets", async () => {
    const file = path.join(TINY_GEMMA3, "tokenizer.json");
    const oracle = NativeTokenizer.fromFile(file);
    for (const prompt of reference.prompts) assert.deepEqual(model.tokenizer.encode(prompt.text, { addSpecialTokens: true }).ids, prompt.tokens, prompt.text);
    for (const text of [...reference.prompts.map((p) => p.text), "  two leading spaces", "Leo\tand  Mia 😀 é e\u0301 漢字 ", "x"]) {
      const ours = await assertMatchesRustTokenizer(model.tokenizer, oracle, text);
      // No dummy prefix: decoding gives the text back, leading spaces included.
      assert.equal(model.tokenizer.decode(ours.ids), text, "round trip");
    }
  });

  it("runs the text model of a \"gemma3\" multimodal folder (text_config; weights under either prefix)", async () => {
    for (const prefix of ["language_model.model.", "model.language_model."]) {
      const folder = multimodalFolder(prefix);
      const m = await HookedModel.load(folder, { cacheDir: null, threads: 1 });
      try {
        assert.equal((m.cfg as LlamaConfig).modelType, "gemma3_text");
        const diff = maxAbsDiff((await m.run(reference.prompts[0].tokens)).data, reference.prompts[0].logits);
        assert.ok(diff < 1e-4, `${prefix}: logits differ from PyTorch by ${diff}`);
      } finally {
        await m.dispose();
      }
    }
  });

  it("names what is missing in a Gemma 3 folder without text weights or text_config", async () => {
    const folder = multimodalFolder(undefined);
    await rejectsWith(HookedModel.load(folder, { cacheDir: null, threads: 1 }), "bad-file", /model\.safetensors has no Gemma 3 text weights: no "language_model\.model\.embed_tokens\.weight".*choose a checkpoint that includes it/);
    throwsWith(() => parseModelConfig({ model_type: "gemma3", vision_config: {} }, "g/config.json"), "unsupported-architecture", /^g\/config\.json is a Gemma 3 multimodal config with no "text_config"/);
    // Gemma 3n (its own architecture, not a Gemma 3 text tower) is named, with what Loupe does build.
    throwsWith(
      () => parseModelConfig({ model_type: "gemma3n", architectures: ["Gemma3nForConditionalGeneration"], text_config: { model_type: "gemma3n_text" } }, "n/config.json"),
      "unsupported-architecture",
      /^n\/config\.json describes a "gemma3n" model; Loupe builds .*"gemma3_text", and the text tower of "gemma3"/,
    );
  });
});

describe("Gemma 3 config.json", () => {
  const parse = (change: (c: Record<string, unknown>) => void): LlamaConfig => {
    const c = baseConfig();
    change(c);
    return parseModelConfig(c, "some/config.json") as LlamaConfig;
  };

  it("reads Gemma 3's settings and defaults as Gemma3TextConfig does", () => {
    const cfg = parse((c) => {
      for (const key of ["head_dim", "query_pre_attn_scalar", "tie_word_embeddings", "final_logit_softcapping", "attn_logit_softcapping", "rope_local_base_freq", "rope_theta", "layer_types"]) delete c[key];
      c.num_hidden_layers = 12;
    });
    assert.equal(cfg.dHead, 256);
    assert.equal(cfg.attnScale, 1 / 16);
    assert.equal(cfg.tiedEmbeddings, true);
    assert.equal(cfg.finalLogitSoftcap, undefined);
    assert.equal(cfg.ropeTheta, 1_000_000);
    assert.equal(cfg.ropeLocalTheta, 10000);
    assert.deepEqual([cfg.qkNorm, cfg.postNorms, cfg.normGainOffset, cfg.mlpActivation], [true, true, 1, "gelu_tanh"]);
    // sliding_window_pattern 6: layers 5 and 11 global, the rest sliding.
    assert.deepEqual(cfg.layerWindows.map((w) => w ?? "global"), [4, 4, 4, 4, 4, "global", 4, 4, 4, 4, 4, "global"]);
    assert.deepEqual(parse((c) => ((c.sliding_window_pattern = 2), delete c.layer_types)).layerWindows, [4, undefined, 4]);
    // The context is not capped at the window: sliding layers mask, global ones see everything.
    assert.equal(cfg.nCtx, 128);
  });

  it("reads transformers 5's per-attention-type rope_parameters", () => {
    const cfg = parse((c) => {
      delete c.rope_theta;
      delete c.rope_local_base_freq;
      delete c.rope_scaling;
      c.rope_parameters = { full_attention: { rope_type: "linear", factor: 8, rope_theta: 1e6 }, sliding_attention: { rope_type: "default", rope_theta: 1e4 } };
    });
    assert.deepEqual([cfg.ropeTheta, cfg.ropeLocalTheta, cfg.ropeScaling], [1e6, 1e4, { kind: "linear", factor: 8 }]);
  });

  it("refuses layer_types that do not fit, naming the file", () => {
    throwsWith(() => parse((c) => (c.layer_types = ["sliding_attention"])), "bad-file", /^some\/config\.json: "layer_types" must list .* each of the 3 layers/);
    throwsWith(() => parse((c) => (c.hidden_activation = "relu")), "unsupported-architecture", /hidden_activation "relu"/);
  });

  it("rounds the embedding scale as the weights' dtype stores it", () => {
    assert.equal(roundToDtype(Math.sqrt(640), "BF16"), 25.25);
    assert.equal(roundToDtype(Math.sqrt(640), "F16"), 25.296875);
    assert.equal(roundToDtype(Math.sqrt(640), "F32"), Math.fround(Math.sqrt(640)));
  });
});
