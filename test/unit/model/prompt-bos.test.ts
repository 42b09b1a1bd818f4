/**
 * Prompts get the tokens their tokenizer's template puts before a text (Llama's <s>), as Hugging
 * Face's default encoding and TransformerLens's to_tokens do; GPT-2-style tokenizers add nothing.
 * Results stay aligned to the text: the <s> is read by the model but never reported, drawn,
 * attributed to or counted as a row.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { inspectText } from "../../../src/core/inspect";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { attributeTokens } from "../../../src/core/patching/attribution";
import { logSoftmax64 } from "../../../src/core/patching/metrics";
import { extractFeatures, parseProbeDataset } from "../../../src/core/probes";
import { saeFeatureActivations, Sae } from "../../../src/core/sae";
import { tokenFeatures } from "../../../src/core/sae/token-features";
import { seededRandom } from "../../../src/core/tensor/random";
import { Tokenizer } from "../../../src/core/tokenizer";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const TINY_LLAMA = path.join(FIXTURES, "tiny-llama");
const REFERENCE_TOKENIZER = path.join(__dirname, "..", "..", "..", "models", "reference", "tokenizer.json");
const TEXT = "Mia and Leo went to the park. The ball was red.";
const BOS = 1;

/** A small random SAE on blocks.0.hook_resid_post. */
function randomSae(d_in: number, d_sae: number): Sae {
  const random = seededRandom(3);
  const fill = (n: number) => Float32Array.from({ length: n }, () => random() - 0.5);
  return new Sae(
    {
      architecture: "standard",
      d_in,
      d_sae,
      hook_name: "blocks.0.hook_resid_post",
      rescale_acts_by_decoder_norm: false,
      apply_b_dec_to_input: true,
      normalize_activations: "none",
      finetuning_scaling_factor: false,
      dtype: "float32",
    },
    { W_enc: fill(d_in * d_sae), b_enc: fill(d_sae), W_dec: fill(d_sae * d_in), b_dec: fill(d_in) },
  );
}

describe("prompt encoding: the template's leading tokens", function () {
  this.timeout(60_000);

  describe("which tokenizers have them", () => {
    it("Llama's TemplateProcessing puts <s> before a text; GPT-2's, Qwen2's and the reference model's ByteLevel puts nothing", () => {
      assert.deepEqual(Tokenizer.fromFile(path.join(TINY_LLAMA, "tokenizer.json")).leadingTemplateIds(), [BOS]);
      for (const file of [path.join(TINY_GPT2, "tokenizer.json"), path.join(FIXTURES, "tiny-qwen2", "tokenizer.json"), REFERENCE_TOKENIZER]) {
        assert.deepEqual(Tokenizer.fromFile(file).leadingTemplateIds(), [], file);
      }
    });
  });

  describe("tiny Llama", () => {
    let model: HookedModel;
    let plain: ReturnType<Tokenizer["encode"]>;
    before(async () => {
      model = await HookedModel.load(TINY_LLAMA, { cacheDir: null, threads: 1 });
      plain = model.tokenizer.encode(TEXT);
    });
    after(async () => model.dispose());

    it("encode and toTokens put <s> first, as Hugging Face's default encoding does, with the range [0, 0]", () => {
      const enc = model.encode(TEXT);
      assert.equal(enc.lead, 1);
      assert.deepEqual(enc.ids, model.tokenizer.encode(TEXT, { addSpecialTokens: true }).ids);
      assert.deepEqual(enc.ids, [BOS, ...plain.ids]);
      assert.deepEqual(enc.offsets, [[0, 0], ...plain.offsets]);
      assert.equal(enc.tokens[0], "<s>");
      assert.deepEqual(model.toTokens(TEXT), enc.ids);
      assert.equal(model.prependsBos, true);
      // Fragments that continue a text (answers) keep encoding without it.
      assert.notEqual(model.tokenizer.encode(" Mia").ids[0], BOS);
    });

    it("inspect reads <s> first but reports the text's tokens only, the first one now predicted", async () => {
      const result = await inspectText(model, TEXT, { topK: 2 });
      assert.deepEqual(result.tokens.map((t) => t.id), plain.ids);
      assert.deepEqual(result.tokens.map((t) => [t.start, t.end]), plain.offsets);
      assert.deepEqual(result.tokens.map((t) => t.index), plain.ids.map((_, i) => i));
      // Surprisals are those of a run with <s> in front: they would differ were it dropped.
      const withBos = [BOS, ...plain.ids];
      const logits = await model.run(withBos);
      const V = logits.dims[2];
      const bits = (t: number) => -logSoftmax64(logits.data.subarray(t * V, (t + 1) * V))[withBos[t + 1]] * Math.LOG2E;
      assert.ok(result.tokens[0].surprisal !== null, "<s> predicts the text's first token");
      result.tokens.forEach((token, i) => assert.ok(Math.abs(token.surprisal! - bits(i)) < 1e-3, `token ${i}: ${token.surprisal} vs ${bits(i)}`));
    });

    it("inspect's windows each start with <s>, which counts against the context window", async () => {
      const text = `${TEXT} `.repeat(6);
      const ids = model.tokenizer.encode(text).ids;
      const W = model.cfg.nCtx - 1;
      assert.ok(ids.length > W * 1.5, `${ids.length} tokens`);
      const whole = await inspectText(model, text, { topK: 1 });
      assert.deepEqual(whole.tokens.map((t) => t.id), ids);
      assert.deepEqual(whole.tokens.map((t) => [t.start, t.end]), model.tokenizer.encode(text).offsets);
      const stride = W - Math.floor(W / 2);
      assert.equal(whole.windows, Math.ceil((ids.length - W) / stride) + 1);
      // A token of the second window is what a run of <s> + that window's tokens gives.
      const from = stride;
      const t = from + W - 1;
      const logits = await model.run([BOS, ...ids.slice(from, t + 1)]);
      const V = logits.dims[2];
      // Position t - from of that run predicts ids[t] (position 0 is <s>).
      const bits = -logSoftmax64(logits.data.subarray((t - from) * V, (t - from + 1) * V))[ids[t]] * Math.LOG2E;
      assert.ok(Math.abs(whole.tokens[t].surprisal! - bits) < 1e-3, `${whole.tokens[t].surprisal} vs ${bits}`);
    });

    it("attribution never attributes to <s>, and its answer log-prob is that of a run with <s>", async () => {
      const result = await attributeTokens(model, TEXT, { method: "mask" });
      assert.deepEqual(result.tokens.map((t) => t.id), plain.ids);
      assert.deepEqual(result.tokens.map((t) => [t.start, t.end]), plain.offsets);
      assert.ok(result.tokens.every((t) => t.end > t.start));
      for (const g of [...result.words, ...result.lines]) assert.ok(g.tokens.every((t) => t >= 0 && t < plain.ids.length), `${g.text}: ${g.tokens.join(",")}`);
      assert.deepEqual(result.words.flatMap((w) => w.tokens), plain.ids.map((_, i) => i));
      const logits = await model.run([BOS, ...plain.ids]);
      const V = logits.dims[2];
      const expected = logSoftmax64(logits.data.subarray(plain.ids.length * V, (plain.ids.length + 1) * V))[result.answer.ids[0]];
      assert.ok(Math.abs(result.answer.logprob - expected) < 1e-3, `${result.answer.logprob} vs ${expected}`);
      // The mask method cannot remove the last token; every other text token is measured.
      assert.equal(result.tokens.filter((t) => t.attribution === null).length, 1);
      // The default (embed) measures every text token, and still none for <s>.
      const embedded = await attributeTokens(model, TEXT);
      assert.deepEqual(embedded.tokens.map((t) => t.id), plain.ids);
      assert.ok(embedded.tokens.every((t) => t.attribution !== null && Number.isFinite(t.attribution)));
    });

    it("probe features come from a run with <s>, one row per text token (none for <s>)", async () => {
      const dataset = parseProbeDataset(`${JSON.stringify({ text: TEXT, spans: [{ start: 0, end: 3, label: "name" }] })}\n`, "bos.jsonl");
      const hook = "blocks.1.hook_resid_post";
      const features = await extractFeatures(model, dataset, { hooks: [hook] });
      assert.equal(features.rows, plain.ids.length);
      assert.deepEqual(Array.from(features.types), plain.ids);
      assert.equal(features.labels[0], "name");
      const { cache } = await model.runWithCache([BOS, ...plain.ids], { names: [hook] });
      const D = model.cfg.dModel;
      const expected = cache.get(hook).data.subarray(D, (plain.ids.length + 1) * D);
      const got = features.data.get(hook)!;
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
      assert.ok(worst < 1e-4, `max difference ${worst}`);

      const sequence = parseProbeDataset(`${JSON.stringify({ text: TEXT, label: "a" })}\n${JSON.stringify({ text: "Leo", label: "b" })}\n`, "seq.jsonl");
      const pooled = (await extractFeatures(model, sequence, { hooks: [hook] })).data.get(hook)!;
      const mean = new Float64Array(D);
      for (let t = 0; t < plain.ids.length; t++) for (let j = 0; j < D; j++) mean[j] += expected[t * D + j] / plain.ids.length;
      for (let j = 0; j < D; j++) assert.ok(Math.abs(pooled[j] - mean[j]) < 1e-4, `dim ${j}`);
    });

    it("SAE activations read <s> first; the token features shown are the text's", async () => {
      const sae = randomSae(model.cfg.dModel, 16);
      const run = await saeFeatureActivations(model, sae, TEXT);
      assert.equal(run.lead, 1);
      assert.deepEqual(run.tokens, [BOS, ...plain.ids]);
      assert.deepEqual(run.offsets![0], [0, 0]);
      const shown = await tokenFeatures(model, { sae, stats: undefined }, TEXT, { focus: 0 });
      assert.deepEqual(shown.tokens.map((t) => [t.start, t.end]), plain.offsets);
      assert.deepEqual(shown.focus!.values, plain.ids.map((_, t) => run.features[(t + 1) * sae.d_sae]));
    });
  });

  it("a template that also ends a text (<s> $A </s>): a prompt gets only what comes before it", async () => {
    const dir = scratchDir("bos");
    for (const file of ["config.json", "model.safetensors"]) fs.copyFileSync(path.join(TINY_LLAMA, file), path.join(dir, file));
    const json = JSON.parse(fs.readFileSync(path.join(TINY_LLAMA, "tokenizer.json"), "utf8")) as Record<string, unknown>;
    json.post_processor = {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] }, "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] } },
    };
    fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(json));
    const model = await HookedModel.load(dir, { cacheDir: null, threads: 1 });
    try {
      const full = model.tokenizer.encode(TEXT, { addSpecialTokens: true }).ids;
      assert.equal(full[full.length - 1], 2, "the template ends the text with </s>");
      assert.deepEqual(model.toTokens(TEXT), [BOS, ...model.tokenizer.encode(TEXT).ids]);
    } finally {
      await model.dispose();
    }
  });

  describe("GPT-2 tokenizer: nothing changes", () => {
    let model: HookedModel;
    before(async () => (model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })));
    after(async () => model.dispose());

    it("prompts are the text's own tokens, exactly", async () => {
      const plain = model.tokenizer.encode(TEXT);
      assert.deepEqual(model.encode(TEXT), { ...plain, lead: 0 });
      assert.deepEqual(model.toTokens(TEXT), plain.ids);
      assert.equal(model.prependsBos, false);
      const result = await inspectText(model, TEXT, { topK: 1 });
      assert.deepEqual(result.tokens.map((t) => t.id), plain.ids);
      assert.equal(result.tokens[0].surprisal, null, "nothing predicts the first token");
      const attribution = await attributeTokens(model, TEXT, { groups: false });
      assert.deepEqual(attribution.tokens.map((t) => t.id), plain.ids);
    });
  });
});
