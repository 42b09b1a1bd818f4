/**
 * Llama-family models against an independent PyTorch implementation (bench/torch/llama_torch.py):
 * a tiny Llama (grouped-query attention, llama3 rope scaling, untied lm_head, SentencePiece-style
 * tokenizer) and a tiny Qwen2 (q/k/v bias, one key/value head, linear rope scaling, tied
 * embeddings, byte-level tokenizer), and a tiny Qwen3 (q/k norms, head_dim 16 with hidden 32 and 4 heads). Regenerate with /usr/bin/python3 bench/torch/llama_torch.py.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { parseModelConfig, type LlamaConfig } from "../../../src/core/model/config";
import { HookedModel, prefixKeyValues } from "../../../src/core/model/hooked-model";
import { Tokenizer } from "../../../src/core/tokenizer";
import { blockHook, headsAt, hookLayout, hookShape, isKeyValueHook } from "../../../src/core/model/hooks";
import { KvCache } from "../../../src/core/model/kv-cache";
import { ropeInverseFrequencies } from "../../../src/core/model/llama-graph";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32 } from "../../../src/core/model/safetensors";
import { patchingSweeps } from "../../../src/core/patching/sweep";
import { Sae, saveSae } from "../../../src/core/sae";
import { readUnembedding } from "../../../src/core/sae/logit-effects";
import { main } from "../../../src/cli/main";
import { argmax, maxAbsDiff, type Tensor } from "../../../src/core/tensor/tensor";
import { FIXTURES, scratchDir } from "../../helpers/fixtures";
import { rejectsWith, throwsWith } from "../../helpers/errors";
import { assertMatchesRustTokenizer } from "../../helpers/rust-tokenizer";

const TOLERANCE = 1e-4;
const TINY_LLAMA = path.join(FIXTURES, "tiny-llama");
const TINY_QWEN2 = path.join(FIXTURES, "tiny-qwen2");
const TINY_QWEN3 = path.join(FIXTURES, "tiny-qwen3");
const TINY_GEMMA3 = path.join(FIXTURES, "tiny-gemma3");

interface Recorded {
  shape: number[];
  data: number[];
}

interface LlamaReference {
  config: Record<string, unknown>;
  prompts: { text?: string; tokens: number[]; logits: number[]; hooks: Record<string, Recorded>; ungrouped_hooks?: Record<string, Recorded> }[];
  generations: { tokens: number[]; greedy: number[] }[];
  intervention: { tokens: number[]; hook: string; position: number; vector: number[]; logits: number[] };
  /** One key/value head scaled at some positions (every query head of its group reads it). */
  key_value_intervention: { tokens: number[]; hook: string; head: number; positions: number[]; factor: number; logits: number[] };
  /** A norm's scale ([batch, pos, 1]) multiplied at some positions. */
  scale_intervention: { tokens: number[]; hook: string; positions: number[]; factor: number; logits: number[] };
}

function readReference(folder: string): LlamaReference {
  return JSON.parse(fs.readFileSync(path.join(folder, "reference.json"), "utf8")) as LlamaReference;
}

/** A copy of a fixture folder, with config.json changed, for tests that break it. */
function copyFixture(folder: string, configChange: (cfg: Record<string, unknown>) => void = () => {}): string {
  const dir = scratchDir("llama");
  for (const file of ["config.json", "model.safetensors", "tokenizer.json"]) fs.copyFileSync(path.join(folder, file), path.join(dir, file));
  const cfgFile = path.join(dir, "config.json");
  const cfg = JSON.parse(fs.readFileSync(cfgFile, "utf8")) as Record<string, unknown>;
  configChange(cfg);
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  return dir;
}

function lastRow(logits: Tensor, length: number): Float32Array {
  const V = logits.dims[2];
  return logits.data.subarray((length - 1) * V, length * V);
}

for (const [name, folder] of [
  ["tiny Llama (GQA 4/2, llama3 rope scaling, untied)", TINY_LLAMA],
  ["tiny Qwen2 (q/k/v bias, 1 key/value head, linear rope scaling, tied)", TINY_QWEN2],
  ["tiny Qwen3 (per-head q/k RMSNorm, head_dim apart from hidden / heads, untied)", TINY_QWEN3],
  ["tiny Gemma 3 (sliding window 4 < prompt, local/global rotary, four norms, GeGLU, softcaps, tied)", TINY_GEMMA3],
] as const) {
  describe(`HookedModel: ${name} vs PyTorch`, function () {
    const reference = readReference(folder);
    let model: HookedModel;
    before(async () => (model = await HookedModel.load(folder, { cacheDir: null, threads: 1 })));
    after(async () => model?.dispose());

    it("reads the config as a Llama-family model", () => {
      const cfg = model.cfg as LlamaConfig;
      assert.equal(cfg.architecture, "llama");
      assert.equal(cfg.nKvHeads, reference.config.num_key_value_heads);
      assert.equal(cfg.tiedEmbeddings, reference.config.tie_word_embeddings === true);
    });

    it("matches PyTorch logits within 1e-4 on every prompt", async () => {
      for (const prompt of reference.prompts) {
        const logits = await model.run(prompt.tokens);
        assert.deepEqual(logits.dims, [1, prompt.tokens.length, reference.config.vocab_size]);
        const diff = maxAbsDiff(logits.data, prompt.logits);
        assert.ok(diff < TOLERANCE, `logits differ from PyTorch by ${diff}`);
      }
    });

    it("matches PyTorch at every recorded hook (q, k before rotary; k, v one slot per key/value head)", async () => {
      const prompt = reference.prompts.at(-1)!;
      const names = Object.keys(prompt.hooks);
      assert.ok(names.includes("blocks.0.attn.hook_k") && names.includes("ln_final.hook_normalized"));
      const { cache } = await model.runWithCache(prompt.tokens, { names });
      for (const hook of names) {
        assert.deepEqual(cache.get(hook).dims, prompt.hooks[hook].shape, `${hook} shape`);
        if (isKeyValueHook(hook)) assert.equal(cache.get(hook).dims[2], (model.cfg as LlamaConfig).nKvHeads, `${hook}: one slot per key/value head`);
        const diff = maxAbsDiff(cache.get(hook).data, prompt.hooks[hook].data);
        assert.ok(diff < TOLERANCE, `${hook} differs from PyTorch by ${diff}`);
      }
    });

    it("scales one key/value head at attn.hook_v as PyTorch does (all query heads of its group read it)", async () => {
      const iv = reference.key_value_intervention;
      const edited = await model.runWithHooks(iv.tokens, [{ hook: iv.hook, kind: "scale", factor: iv.factor, heads: [iv.head], positions: iv.positions }]);
      const diff = maxAbsDiff(edited.logits.data, iv.logits);
      assert.ok(diff < TOLERANCE, `edited logits differ from PyTorch by ${diff}`);
      assert.ok(maxAbsDiff(edited.logits.data, (await model.run(iv.tokens)).data) > 1e-3, "the intervention changed the logits");
    });

    it("scales an RMSNorm's scale (blocks.0.ln1.hook_scale, [batch, pos, 1]) as PyTorch does", async () => {
      const iv = reference.scale_intervention;
      const edited = await model.runWithHooks(iv.tokens, [{ hook: iv.hook, kind: "scale", factor: iv.factor, positions: iv.positions }]);
      const diff = maxAbsDiff(edited.logits.data, iv.logits);
      assert.ok(diff < TOLERANCE, `edited logits differ from PyTorch by ${diff}`);
      assert.ok(maxAbsDiff(edited.logits.data, (await model.run(iv.tokens)).data) > 1e-3, "the intervention changed the logits");
    });

    it("with ungroupGroupedQueryAttention, k and v have one slot per query head, as PyTorch's repeated ones", async () => {
      const prompt = reference.prompts.at(-1)!;
      const names = Object.keys(prompt.hooks);
      const ungrouped = await HookedModel.load(folder, { cacheDir: null, threads: 1, ungroupGroupedQueryAttention: true });
      try {
        assert.equal(ungrouped.hookDims.keyValueHeads, model.cfg.nHeads);
        const { cache, logits } = await ungrouped.runWithCache(prompt.tokens, { names });
        const recorded = { ...prompt.hooks, ...prompt.ungrouped_hooks };
        assert.ok(Object.keys(prompt.ungrouped_hooks ?? {}).length > 0, "the reference records ungrouped k and v");
        for (const hook of names) {
          assert.deepEqual(cache.get(hook).dims, recorded[hook].shape, `${hook} shape`);
          const diff = maxAbsDiff(cache.get(hook).data, recorded[hook].data);
          assert.ok(diff < TOLERANCE, `${hook} differs from PyTorch by ${diff}`);
        }
        assert.ok(maxAbsDiff(logits.data, prompt.logits) < TOLERANCE);
        // Generation with the key/value cache is unchanged by the option.
        const g = reference.generations[0];
        assert.deepEqual((await ungrouped.generate(g.tokens, { maxNewTokens: g.greedy.length, stopAtEos: false })).tokens, g.greedy);
      } finally {
        await ungrouped.dispose();
      }
    });

    it("an intervention on key/value head j acts as the same one on every query head of j's group, ungrouped", async () => {
      const cfg = model.cfg as LlamaConfig;
      const groups = cfg.nHeads / cfg.nKvHeads;
      const tokens = reference.prompts[0].tokens;
      const ungrouped = await HookedModel.load(folder, { cacheDir: null, threads: 1, ungroupGroupedQueryAttention: true });
      try {
        const j = cfg.nKvHeads - 1;
        const queryHeads = Array.from({ length: groups }, (_, i) => j * groups + i);
        // A negative factor: a key norm after attn.hook_k (Qwen3, Gemma 3) undoes any positive scale.
        const factor = -0.5;
        for (const suffix of ["attn.hook_k", "attn.hook_v"] as const) {
          const hook = blockHook(0, suffix);
          const grouped = await model.runWithHooks(tokens, [{ hook, kind: "scale", factor, heads: [j], positions: [1, 3] }]);
          const perQueryHead = await ungrouped.runWithHooks(tokens, [{ hook, kind: "scale", factor, heads: queryHeads, positions: [1, 3] }]);
          const diff = maxAbsDiff(grouped.logits.data, perQueryHead.logits.data);
          assert.ok(diff < 1e-5, `${hook}: grouped and ungrouped interventions differ by ${diff}`);
          assert.ok(maxAbsDiff(grouped.logits.data, (await model.run(tokens)).data) > 1e-4, `${hook}: the intervention matters`);
        }
        // A head past the key/value heads is refused, naming the range.
        await assert.rejects(model.runWithHooks(tokens, [{ hook: blockHook(0, "attn.hook_k"), kind: "zero", heads: [cfg.nKvHeads] }]), new RegExp(`head ${cfg.nKvHeads} is out of range \\(0\\.\\.${cfg.nKvHeads - 1}\\)`));
      } finally {
        await ungrouped.dispose();
      }
    });

    it("generates PyTorch's greedy tokens exactly", async () => {
      for (const g of reference.generations) {
        const out = await model.generate(g.tokens, { maxNewTokens: g.greedy.length, stopAtEos: false });
        assert.deepEqual(out.tokens, g.greedy);
      }
    });

    it("generates with a key/value cache: one new token a step, the same logits as full runs", async () => {
      const widths: number[] = [];
      const cache = new KvCache((fresh, prefix) => {
        widths.push(fresh.length);
        return model.runWithCache(fresh, { names: [], prefix, keyValues: true });
      });
      const tokens = [...reference.prompts[0].tokens];
      const full = await model.run([...tokens, ...reference.generations[0].greedy]);
      const V = full.dims[2];
      for (let step = 0; step <= 4; step++) {
        const logits = await cache.nextLogits(tokens);
        const diff = maxAbsDiff(logits, full.data.subarray((tokens.length - 1) * V, tokens.length * V));
        assert.ok(diff < 1e-5, `step ${step}: cached logits differ from a full run by ${diff}`);
        tokens.push(reference.generations[0].greedy[step]);
      }
      assert.deepEqual(widths, [reference.prompts[0].tokens.length, 1, 1, 1, 1], "the prompt once, then one token a step");
      await cache.nextLogits(reference.prompts[1].tokens);
      assert.equal(widths.at(-1), reference.prompts[1].tokens.length, "another prefix starts over");
      // With an intervention, generate reruns the whole sequence; an identity one gives the same tokens.
      const g = reference.generations[1];
      const rerun = await model.generate(g.tokens, { maxNewTokens: 6, stopAtEos: false, interventions: [{ hook: "blocks.0.hook_resid_pre", kind: "scale", factor: 1 }] });
      assert.deepEqual(rerun.tokens, g.greedy.slice(0, 6));
    });

    it("continues a batch from one prompt's keys and values (RunOptions.prefix) as full runs do", async () => {
      assert.equal(model.supportsPrefix, true);
      const [a, b] = [reference.prompts[0].tokens, reference.prompts.at(-1)!.tokens];
      const n = 4;
      const { keyValues } = await model.runWithCache(a, { names: [], keyValues: true });
      const prefix = prefixKeyValues(keyValues!, 0, n);
      const suffixes = [a.slice(n), b.slice(1, 6)];
      const continued = await model.run(suffixes, { prefix });
      const T = continued.dims[1];
      const V = continued.dims[2];
      for (const [row, suffix] of suffixes.entries()) {
        // On the graph the continuation runs on (the decode graph: no hooks, keys and values out); decode-graph.test.ts compares the two graphs.
        const { logits: full } = await model.runWithCache([...a.slice(0, n), ...suffix], { names: [], keyValues: true });
        const diff = maxAbsDiff(continued.data.subarray(row * T * V, (row * T + suffix.length) * V), full.data.subarray(n * V));
        assert.ok(diff < 1e-5, `row ${row} differs from the full run by ${diff}`);
      }
    });

    it("adds a vector at blocks.0.hook_resid_mid as PyTorch does, and that changes the output", async () => {
      const iv = reference.intervention;
      const plain = await model.run(iv.tokens);
      const edited = await model.runWithHooks(iv.tokens, [{ hook: iv.hook, kind: "add", vector: iv.vector, positions: [iv.position] }]);
      const diff = maxAbsDiff(edited.logits.data, iv.logits);
      assert.ok(diff < TOLERANCE, `edited logits differ from PyTorch by ${diff}`);
      const V = plain.dims[2];
      // Causal: positions before the edit are untouched, the edited one and later ones move.
      assert.equal(maxAbsDiff(plain.data.subarray(0, iv.position * V), edited.logits.data.subarray(0, iv.position * V)), 0);
      assert.ok(maxAbsDiff(plain.data, edited.logits.data) > 1e-2, "the intervention changed the logits");
    });

    it("returns every hook, with no hook_pos_embed, in the shape interventions expect", async () => {
      const tokens = reference.prompts[0].tokens;
      const T = tokens.length;
      const { cache } = await model.runWithCache(tokens);
      assert.ok(!model.hookNames.includes("hook_pos_embed"), "rotary models have no positional embedding hook");
      // Per block: GPT-2's 13, rot_q, rot_k, ln1 and ln2 scales; Gemma's post-norms (ln1_post, ln2_post) add a scale and a normalized hook each.
      assert.equal(model.hookNames.length, 1 + ((model.cfg as LlamaConfig).postNorms ? 21 : 17) * model.cfg.nLayers + 2);
      assert.deepEqual(cache.names, [...model.hookNames]);
      const cfg = model.cfg as LlamaConfig;
      for (const hook of model.hookNames) {
        const expected = hookShape(model.hookDims, hook, 1, T);
        assert.deepEqual(cache.get(hook).dims, expected, hook);
        if (hookLayout(hook) === "heads") assert.equal(expected[2], isKeyValueHook(hook) ? cfg.nKvHeads : cfg.nHeads, `${hook}: one slot per ${isKeyValueHook(hook) ? "key/value" : "query"} head`);
        const layout = hookLayout(hook);
        assert.equal(headsAt(model.hookDims, hook), layout === "resid" || layout === "mlp" || layout === "scale" ? undefined : expected[layout === "pattern" ? 1 : 2]);
        if (layout === "scale") assert.ok(cache.get(hook).data.every((s) => s > 0), `${hook}: a norm's divisor is positive`);
      }
      const pattern = cache.get("blocks.1.attn.hook_pattern");
      // Causal rows summing to one.
      for (let q = 0; q < T; q++) {
        let sum = 0;
        for (let k = 0; k < T; k++) {
          const p = pattern.data[q * T + k];
          if (k > q) assert.ok(p < 1e-6, "no attention to later tokens");
          sum += p;
        }
        assert.ok(Math.abs(sum - 1) < 1e-5);
      }
    });

    it("replacing resid_post with another run's value hands over that run's next token", async () => {
      const [a, b] = [reference.prompts[0].tokens, reference.prompts[1].tokens];
      const last = `blocks.${model.cfg.nLayers - 1}.hook_resid_post`;
      const { cache, logits: logitsA } = await model.runWithCache(a, { names: [last] });
      const n = Math.min(a.length, b.length);
      const patched = await model.runWithHooks(b.slice(0, n), [{ hook: last, kind: "replace", source: sliceTokens(cache.get(last), n), positions: [n - 1] }]);
      assert.ok(maxAbsDiff(lastRow(patched.logits, n), logitsA.data.subarray((n - 1) * logitsA.dims[2], n * logitsA.dims[2])) < 1e-4);
    });

    it("runs a padded batch exactly as each sequence alone", async () => {
      const rows = reference.prompts.map((p) => p.tokens);
      const batched = await model.run(rows);
      const T = batched.dims[1];
      const V = batched.dims[2];
      for (const [b, row] of rows.entries()) {
        const alone = await model.run(row);
        const inBatch = batched.data.subarray(b * T * V, (b * T + row.length) * V);
        assert.ok(maxAbsDiff(inBatch, alone.data) < 1e-5, `row ${b}`);
      }
    });

    it("computes logits only at the positions asked for, the last block from its queries on there only", async () => {
      const tokens = reference.prompts[0].tokens;
      const full = await model.runWithCache(tokens, { names: ["ln_final.hook_normalized", `blocks.${model.cfg.nLayers - 1}.hook_mlp_out`] });
      const V = full.logits.dims[2];
      for (const positions of [[3, 1], [tokens.length - 1]]) {
        const picked = await model.runWithCache(tokens, { names: ["ln_final.hook_normalized", `blocks.${model.cfg.nLayers - 1}.hook_mlp_out`], logitPositions: positions });
        assert.deepEqual(picked.logits.dims, [1, positions.length, V]);
        positions.forEach((p, i) => {
          const diff = maxAbsDiff(picked.logits.data.subarray(i * V, (i + 1) * V), full.logits.data.subarray(p * V, (p + 1) * V));
          assert.ok(diff < 1e-5, `logits at ${p} differ by ${diff}`);
        });
        assert.equal(picked.cache.get("ln_final.hook_normalized").dims[1], positions.length);
      }
    });

    it("runs activation patching sweeps (logit positions, shared prefix) as plain full runs score them", async () => {
      const clean = reference.prompts[0].tokens;
      const corrupted = [...clean];
      corrupted[2] = (clean[2] + 7) % model.cfg.dVocab;
      const answer = reference.generations[0].greedy[0];
      const metric = { kind: "logit-diff" as const, answer, wrong: (answer + 1) % model.cfg.dVocab };
      const result = await patchingSweeps(model, { clean, corrupted, metric, sweeps: ["resid_pre", "attn_out", "mlp_out", "heads"] });
      assert.ok(result.sweeps.length === 4);
      // One cell by hand: blocks.1.hook_mlp_out at position 2 from the clean run into the corrupted one.
      const hook = `blocks.${model.cfg.nLayers - 1}.hook_mlp_out`;
      const { cache } = await model.runWithCache(clean, { names: [hook] });
      const patched = await model.runWithHooks(corrupted, [{ hook, kind: "replace", source: cache.get(hook), positions: [2] }]);
      const row = lastRow(patched.logits, corrupted.length);
      const byHand = row[metric.answer] - row[metric.wrong];
      const mlp = result.sweeps.find((s) => s.kind === "mlp_out")!;
      assert.deepEqual(mlp.shape, [model.cfg.nLayers, clean.length]);
      const cell = mlp.raw[(model.cfg.nLayers - 1) * clean.length + 2];
      assert.ok(Math.abs(cell - byHand) < 1e-4, `the sweep's cell ${cell} matches a plain patched run's ${byHand}`);
    });

    it("gives SAE logit effects the right unembedding (lm_head or embed_tokens, times the RMSNorm gain)", async () => {
      const tokens = reference.prompts[0].tokens;
      const { logits, cache } = await model.runWithCache(tokens, { names: ["ln_final.hook_normalized"] });
      const { W_U, dModel, dVocab } = readUnembedding(model);
      const T = tokens.length;
      const x = cache.get("ln_final.hook_normalized").data.subarray((T - 1) * dModel, T * dModel);
      // Soft-capped logits (Gemma) are compared before the cap, where they are linear in x.
      const cap = (model.cfg as LlamaConfig).finalLogitSoftcap;
      const row = lastRow(logits, T).map((l) => (cap === undefined ? l : cap * Math.atanh(l / cap)));
      // The effective unembedding is centred over the vocabulary: logits minus x . W_U is one constant.
      const gaps = Array.from({ length: dVocab }, (_, v) => {
        let s = 0;
        for (let j = 0; j < dModel; j++) s += x[j] * W_U[v * dModel + j];
        return row[v] - s;
      });
      assert.ok(Math.max(...gaps) - Math.min(...gaps) < 1e-3, `logits - x.W_U spans ${Math.max(...gaps) - Math.min(...gaps)}`);
    });

    it("gives identical logits with an identity intervention at every hook", async () => {
      const tokens = reference.prompts[0].tokens;
      const plain = await model.run(tokens);
      const all = await model.runWithHooks(tokens, model.hookNames.map((hook) => ({ hook, kind: "scale" as const, factor: 1 })));
      assert.equal(maxAbsDiff(plain.data, all.logits.data), 0);
    });

    it("reads the logit lens through RMSNorm and the unembedding", async () => {
      const tokens = reference.prompts[0].tokens;
      const last = `blocks.${model.cfg.nLayers - 1}.hook_resid_post`;
      const { logits, cache } = await model.runWithCache(tokens, { names: [last] });
      const lens = await model.lens(cache.get(last).data, tokens.map((t) => [t]), 3);
      const V = logits.dims[2];
      for (let p = 0; p < tokens.length; p++) {
        const row = logits.data.subarray(p * V, (p + 1) * V);
        assert.equal(lens.topIds[p * 3], argmax(row), `lens top-1 at ${p} is the model's own prediction`);
        let max = -Infinity;
        for (const v of row) max = Math.max(max, v);
        let z = 0;
        for (const v of row) z += Math.exp(v - max);
        assert.ok(Math.abs(lens.targetLogprob[p] - (row[tokens[p]] - max - Math.log(z))) < 1e-4);
      }
    });
  });
}

function sliceTokens(t: Tensor, n: number): Tensor {
  const inner = t.dims.slice(2).reduce((a, c) => a * c, 1);
  return { data: t.data.slice(0, n * inner), dims: [1, n, ...t.dims.slice(2)] };
}

describe("Llama tokenizer (SentencePiece-style BPE with byte fallback, trained by llama_torch.py)", () => {
  const file = path.join(TINY_LLAMA, "tokenizer.json");
  const reference = readReference(TINY_LLAMA);
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(TINY_LLAMA, { cacheDir: null, threads: 1 })));
  after(async () => model?.dispose());

  it("encodes each prompt to the ids PyTorch's reference used, with <s> first", () => {
    for (const prompt of reference.prompts) {
      assert.deepEqual(model.tokenizer.encode(prompt.text!, { addSpecialTokens: true }).ids, prompt.tokens, prompt.text);
    }
    assert.equal(model.tokenizer.bosTokenId, reference.config.bos_token_id);
    assert.equal(model.tokenizer.eosTokenId, reference.config.eos_token_id);
  });

  it("agrees with the Rust tokenizer on ids and UTF-16 offsets, and decodes back to the text", async () => {
    const oracle = NativeTokenizer.fromFile(file);
    for (const text of [...reference.prompts.map((p) => p.text!), "Leo  and\tMia 😀😀 é e\u0301 漢字", " leading space", "x"]) {
      const ours = await assertMatchesRustTokenizer(model.tokenizer, oracle, text);
      // " x" and "x" both become "▁x": decode gives "x", as the Rust decoder does.
      assert.equal(model.tokenizer.decode(ours.ids), text.startsWith(" ") ? text.slice(1) : text, "round trip");
      assert.equal(model.tokenizer.decode(ours.ids), await oracle.decode(ours.ids, false));
      // Byte-fallback tokens of one character all cover that character.
      ours.tokens.forEach((token, i) => {
        if (/^<0x[0-9A-F]{2}>$/.test(token)) assert.ok(ours.offsets[i][1] > ours.offsets[i][0], `${token} covers its character`);
      });
    }
    const emoji = model.tokenizer.encode("😀");
    assert.ok(emoji.tokens.filter((t) => /^<0x/.test(t)).length === 4, "an emoji outside the vocabulary is four byte tokens");
    assert.ok(emoji.offsets.filter((o, i) => /^<0x/.test(emoji.tokens[i])).every(([s, e]) => s === 0 && e === 2));
  });

  it("decodes a continuation with the space before its first word, which decoding it alone strips", async () => {
    const prompt = model.tokenizer.encode("Mia and", { addSpecialTokens: true }).ids;
    const rest = model.tokenizer.encode("Mia and Leo went").ids.slice(model.tokenizer.encode("Mia and").ids.length);
    assert.equal(model.tokenizer.decode(rest), "Leo went");
    assert.equal(model.tokenizer.decodeContinuation(prompt, rest), " Leo went");
    const g = reference.generations[0];
    const out = await model.generate(g.tokens, { maxNewTokens: g.greedy.length, stopAtEos: false });
    const whole = model.tokenizer.decode([...g.tokens, ...g.greedy]);
    assert.equal(model.tokenizer.decode(g.tokens) + out.text, whole, "prompt text + generated text = text of all tokens");
  });
});

describe("Llama-3, Qwen2 and SmolLM-style byte-level tokenizers against the Rust tokenizer", () => {
  // tiny-gpt2's byte-level vocabulary dressed as each family's tokenizer.json.
  const base = JSON.parse(fs.readFileSync(path.join(TINY_QWEN2, "tokenizer.json"), "utf8")) as Record<string, unknown> & { model: Record<string, unknown>; added_tokens: object[] };
  const split = (regex: string) => ({ type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false });
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false };
  const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const variant = (name: string, change: (j: typeof base) => void): [string, object] => {
    const json = structuredClone(base);
    change(json);
    return [name, json];
  };
  const bos = { id: 320, content: "<|begin_of_text|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const variants = [
    variant("Llama 3 (Split regex + ByteLevel, ignore_merges, <|begin_of_text|> template)", (j) => {
      j.model.ignore_merges = true;
      j.added_tokens.push(bos);
      j.pre_tokenizer = { type: "Sequence", pretokenizers: [split(LLAMA3), byteLevel] };
      j.post_processor = {
        type: "Sequence",
        processors: [
          { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
          { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [], special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [320], tokens: ["<|begin_of_text|>"] } } },
        ],
      };
    }),
    variant("SmolLM (Digits + ByteLevel)", (j) => {
      j.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true }] };
    }),
    variant("Qwen2 (NFC + Split regex + ByteLevel)", (j) => {
      j.normalizer = { type: "NFC" };
      j.pre_tokenizer = { type: "Sequence", pretokenizers: [split(LLAMA3.replace("\\p{N}{1,3}", "\\p{N}")), byteLevel] };
    }),
  ];
  const texts = ["Hello the world", "Mia and Leo went 12345 times.", "  two  spaces\n\nnew lines\r\n", "it's they'll", "emoji 😀 and 漢字", "x<|endoftext|>y"];
  for (const [name, json] of variants) {
    it(`${name}: same ids and UTF-16 offsets, exact round trip`, async () => {
      const tokenizer = Tokenizer.fromJSON(json, name);
      const oracle = NativeTokenizer.fromString(JSON.stringify(json));
      for (const text of texts) {
        const ours = await assertMatchesRustTokenizer(tokenizer, oracle, text);
        assert.equal(tokenizer.decode(ours.ids), text);
      }
      if (name.startsWith("Llama 3")) {
        const withBos = tokenizer.encode("Hello", { addSpecialTokens: true });
        assert.equal(withBos.ids[0], 320);
        assert.deepEqual(withBos.offsets[0], [0, 0]);
        assert.equal(tokenizer.bosTokenId, 320);
      }
    });
  }
});

describe("Llama-family config.json", () => {
  const base = (): Record<string, unknown> => JSON.parse(fs.readFileSync(path.join(TINY_LLAMA, "config.json"), "utf8")) as Record<string, unknown>;
  const parse = (change: (c: Record<string, unknown>) => void): LlamaConfig => {
    const c = base();
    change(c);
    return parseModelConfig(c, "some/config.json") as LlamaConfig;
  };

  it("dispatches llama, mistral and qwen2 by model_type, or by architectures when model_type is missing", () => {
    assert.equal(parse(() => {}).architecture, "llama");
    assert.equal(parse((c) => (c.model_type = "mistral")).modelType, "mistral");
    const qwen = parse((c) => (c.model_type = "qwen2"));
    assert.equal(qwen.qkvBias, true);
    assert.equal(qwen.outBias, false);
    const byClass = parse((c) => {
      delete c.model_type;
      c.architectures = ["Qwen2ForCausalLM"];
    });
    assert.equal(byClass.modelType, "qwen2");
    const llamaBias = parse((c) => (c.attention_bias = true));
    assert.deepEqual([llamaBias.qkvBias, llamaBias.outBias], [true, true]);
  });

  it("defaults as the HF configs do: kv heads = heads, untied, rope_theta 10000, no scaling", () => {
    const cfg = parse((c) => {
      for (const key of ["num_key_value_heads", "tie_word_embeddings", "rope_theta", "rope_scaling", "head_dim"]) delete c[key];
    });
    assert.equal(cfg.nKvHeads, cfg.nHeads);
    assert.equal(cfg.tiedEmbeddings, false);
    assert.equal(cfg.ropeTheta, 10000);
    assert.deepEqual(cfg.ropeScaling, { kind: "none" });
    assert.equal(cfg.dHead, 12);
  });

  it("caps the context at Mistral's sliding window, where attention is still exact", () => {
    assert.equal(parse((c) => Object.assign(c, { model_type: "mistral", sliding_window: 16 })).nCtx, 16);
    assert.equal(parse((c) => Object.assign(c, { model_type: "mistral", sliding_window: null })).nCtx, 64);
  });

  it("names an unsupported architecture and what is supported", () => {
    for (const [change, named] of [
      [(c: Record<string, unknown>) => (c.model_type = "mixtral"), /"mixtral" model; Loupe builds GPT-2.*"llama".*"mistral".*"qwen2"/],
      [(c: Record<string, unknown>) => {
        delete c.model_type;
        c.architectures = ["GemmaForCausalLM"];
      }, /"GemmaForCausalLM" model/],
    ] as const) {
      throwsWith(() => parse(change), "unsupported-architecture", named);
      throwsWith(() => parse(change), "unsupported-architecture", /^some\/config\.json/);
    }
  });

  it("refuses rope scaling it does not implement, and settings that do not fit together", () => {
    throwsWith(() => parse((c) => (c.rope_scaling = { rope_type: "yarn", factor: 4 })), "unsupported-architecture", /rope_scaling type "yarn".*"linear", "llama3"/);
    assert.deepEqual(parse((c) => (c.rope_scaling = { type: "dynamic", factor: 2 })).ropeScaling, { kind: "none" }, "dynamic NTK acts only past the context");
    throwsWith(() => parse((c) => (c.rope_scaling = { type: "linear" })), "bad-file", /rope_scaling\.factor/);
    throwsWith(() => parse((c) => (c.num_key_value_heads = 3)), "bad-file", /multiple of num_key_value_heads \(3\)/);
    throwsWith(() => parse((c) => (c.hidden_act = "gelu")), "unsupported-architecture", /hidden_act "gelu"/);
    throwsWith(() => parse((c) => (c.partial_rotary_factor = 0.5)), "unsupported-architecture", /partial_rotary_factor/);
  });

  it("scales rotary frequencies: linear divides all; llama3 keeps short periods, slows long ones, blends between", () => {
    const plain = ropeInverseFrequencies({ dHead: 12, ropeTheta: 10000, ropeScaling: { kind: "none" } });
    assert.ok(Math.abs(plain[1] - Math.pow(10000, -2 / 12)) < 1e-7);
    const linear = ropeInverseFrequencies({ dHead: 12, ropeTheta: 10000, ropeScaling: { kind: "linear", factor: 2 } });
    linear.forEach((f, i) => assert.ok(Math.abs(f - plain[i] / 2) < 1e-7));
    const scaled = ropeInverseFrequencies({
      dHead: 12,
      ropeTheta: 10000,
      ropeScaling: { kind: "llama3", factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 32 },
    });
    // Periods: 6.3 (< 8: kept), 29.2 (between 8 and 32: blended), 135 and up (> 32: slowed 4x).
    assert.equal(scaled[0], plain[0]);
    assert.ok(scaled[1] < plain[1] && scaled[1] > plain[1] / 4, "the middle band is blended");
    for (let i = 2; i < 6; i++) assert.ok(Math.abs(scaled[i] - plain[i] / 4) < 1e-9);
  });
});

describe("Llama-family graph cache", () => {
  it("reuses a built Llama graph on the next load, with the same logits", async () => {
    const cacheDir = scratchDir("llama-cache");
    const first = await HookedModel.load(TINY_LLAMA, { cacheDir, threads: 1 });
    const second = await HookedModel.load(TINY_LLAMA, { cacheDir, threads: 1 });
    const other = await HookedModel.load(TINY_QWEN2, { cacheDir, threads: 1 });
    try {
      assert.deepEqual([first.graphFromCache, second.graphFromCache, other.graphFromCache], [false, true, false]);
      const tokens = [1, 40, 41, 42];
      assert.deepEqual(Array.from((await second.run(tokens)).data), Array.from((await first.run(tokens)).data));
    } finally {
      await Promise.all([first.dispose(), second.dispose(), other.dispose()]);
    }
  });

  it("caches the ungrouped-hooks graph under its own key, not the default one's", async () => {
    const cacheDir = scratchDir("llama-cache");
    const grouped = await HookedModel.load(TINY_LLAMA, { cacheDir, threads: 1 });
    const ungrouped = await HookedModel.load(TINY_LLAMA, { cacheDir, threads: 1, ungroupGroupedQueryAttention: true });
    const again = await HookedModel.load(TINY_LLAMA, { cacheDir, threads: 1, ungroupGroupedQueryAttention: true });
    try {
      assert.deepEqual([grouped.graphFromCache, ungrouped.graphFromCache, again.graphFromCache], [false, false, true]);
      const hook = blockHook(0, "attn.hook_k");
      const heads = async (m: HookedModel) => (await m.runWithCache([1, 40, 41], { names: [hook] })).cache.get(hook).dims[2];
      assert.deepEqual([await heads(grouped), await heads(again)], [(grouped.cfg as LlamaConfig).nKvHeads, grouped.cfg.nHeads]);
    } finally {
      await Promise.all([grouped.dispose(), ungrouped.dispose(), again.dispose()]);
    }
  });
});

describe("Llama-family half-precision weights", () => {
  it("reads bf16 weights exactly as the same values in f32", async () => {
    const index = readSafetensorsIndex(path.join(TINY_LLAMA, "model.safetensors"));
    const rounded: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    const halves: Record<string, { shape: number[]; data: Uint16Array }> = {};
    for (const [name, entry] of index.tensors) {
      const bits = new Uint32Array(readTensorF32(index, name).buffer);
      // bf16 keeps the top 16 bits of a float32 (truncated here; any rounding would do).
      const top = Uint16Array.from(bits, (b) => b >>> 16);
      halves[name] = { shape: [...entry.shape], data: top };
      rounded[name] = { dtype: "F32", shape: [...entry.shape], data: new Float32Array(Uint32Array.from(top, (h) => h << 16).buffer) };
    }
    const f32 = copyFixture(TINY_LLAMA);
    fs.writeFileSync(path.join(f32, "model.safetensors"), encodeSafetensors(rounded));
    const bf16 = copyFixture(TINY_LLAMA);
    fs.writeFileSync(path.join(bf16, "model.safetensors"), encodeBf16(halves));
    const [a, b] = await Promise.all([HookedModel.load(f32, { cacheDir: null, threads: 1 }), HookedModel.load(bf16, { cacheDir: null, threads: 1 })]);
    try {
      const tokens = readReference(TINY_LLAMA).prompts[0].tokens;
      const [la, lb] = [await a.run(tokens), await b.run(tokens)];
      assert.ok(maxAbsDiff(la.data, lb.data) < 1e-6, "bf16 weights are cast to the same float32 values");
      assert.ok(maxAbsDiff(la.data, readReference(TINY_LLAMA).prompts[0].logits) > 1e-4, "rounding to bf16 did change the model");
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });
});

/** A safetensors file of BF16 tensors, written by hand (encodeSafetensors writes F32 only). */
function encodeBf16(tensors: Record<string, { shape: number[]; data: Uint16Array }>): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    header[name] = { dtype: "BF16", shape: tensors[name].shape, data_offsets: [offset, offset + tensors[name].data.byteLength] };
    offset += tensors[name].data.byteLength;
  }
  const text = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([length, text, ...names.map((n) => Buffer.from(tensors[n].data.buffer, tensors[n].data.byteOffset, tensors[n].data.byteLength))]);
}

describe("Llama-family model folders with problems", () => {
  it("reports a corrupted safetensors header, naming the file", async () => {
    const dir = copyFixture(TINY_LLAMA);
    const file = path.join(dir, "model.safetensors");
    const bytes = fs.readFileSync(file);
    bytes.write("{not json", 8);
    fs.writeFileSync(file, bytes);
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "bad-file", /model\.safetensors is not a valid safetensors file: the header is not JSON/);
  });

  it("refuses an unsupported architecture, naming it and the supported ones", async () => {
    const dir = copyFixture(TINY_LLAMA, (c) => Object.assign(c, { model_type: "phi3", architectures: ["Phi3ForCausalLM"] }));
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "unsupported-architecture", /config\.json describes a "phi3" model; Loupe builds .*Llama family/);
  });

  it("checks vocab_size against the weights before the tokenizer", async () => {
    const dir = copyFixture(TINY_LLAMA, (c) => (c.vocab_size = 300));
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "bad-file", /config\.json does not describe .*: its vocab_size is 300, but the token embedding (model\.)?embed_tokens\.weight is \[\d+, 48\]/);
  });

  it("refuses another model's smaller tokenizer: config's <s> and </s> are ordinary tokens there", async () => {
    const dir = copyFixture(TINY_LLAMA);
    fs.copyFileSync(path.join(TINY_QWEN2, "tokenizer.json"), path.join(dir, "tokenizer.json"));
    await rejectsWith(HookedModel.load(dir, { cacheDir: null }), "tokenizer-mismatch", /beginning-of-text token is id 1, but in this tokenizer id 1 is the ordinary token/);
  });

  it("reports untied embeddings without lm_head.weight, and weights that disagree with config.json", async () => {
    const untied = copyFixture(TINY_QWEN2, (c) => (c.tie_word_embeddings = false));
    await rejectsWith(HookedModel.load(untied, { cacheDir: null }), "bad-file", /no "lm_head\.weight" but config\.json says the embeddings are untied/);
    const heads = copyFixture(TINY_LLAMA, (c) => (c.num_key_value_heads = 4));
    await rejectsWith(HookedModel.load(heads, { cacheDir: null }), "bad-shape", /k_proj\.weight" has shape \[24, 48\] but config\.json implies \[48, 48\]/);
  });
});

describe("Llama-family SAEs on key/value hooks", () => {
  /** An SAE on blocks.0.attn.hook_k reading `heads` heads, saved in SAELens's layout. */
  function keySae(heads: number): string {
    const cfg = JSON.parse(fs.readFileSync(path.join(TINY_LLAMA, "config.json"), "utf8")) as Record<string, number>;
    const d_in = heads * cfg.head_dim;
    const d_sae = 8;
    const dir = scratchDir("llama-key-sae");
    const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const sae = new Sae(
      { architecture: "standard", d_in, d_sae, hook_name: "blocks.0.attn.hook_k", rescale_acts_by_decoder_norm: false, apply_b_dec_to_input: true, normalize_activations: "none", finetuning_scaling_factor: false, dtype: "float32" },
      { W_enc: ramp(d_in * d_sae), b_enc: new Float32Array(d_sae), W_dec: ramp(d_sae * d_in), b_dec: new Float32Array(d_in) },
    );
    saveSae(dir, sae);
    return dir;
  }

  it("attaches an SAE of the grouped width by default, and one of the ungrouped width with the CLI flag, naming it otherwise", async () => {
    const cfg = JSON.parse(fs.readFileSync(path.join(TINY_LLAMA, "config.json"), "utf8")) as Record<string, number>;
    const prompt = path.join(scratchDir("llama-key-sae-prompt"), "prompt.txt");
    fs.writeFileSync(prompt, "Mia and Leo went");
    const io = { out: () => {}, readStdin: () => "" };
    const features = (sae: string, ...flags: string[]) => main(["features", "--model", TINY_LLAMA, "--sae", sae, "--json", ...flags, prompt], io);
    assert.equal(await features(keySae(cfg.num_key_value_heads)), 0);
    const ungroupedSae = keySae(cfg.num_attention_heads);
    await assert.rejects(features(ungroupedSae), /d_in is 48 but blocks\.0\.attn\.hook_k .* has 24 values per token .*--ungroup-grouped-query-attention/s);
    assert.equal(await features(ungroupedSae, "--ungroup-grouped-query-attention"), 0);
  });
});
