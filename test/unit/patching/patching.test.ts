import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { blockHook } from "../../../src/core/model/hooks";
import { attributeTokens, attributionTargets, knockoutInterventions } from "../../../src/core/patching/attribution";
import { bindMetric, firstDistinctTokens, logSoftmax64, singleToken, type MetricSpec } from "../../../src/core/patching/metrics";
import { isDegenerate, normalise } from "../../../src/core/patching/normalise";
import { chunksWithin, patchedCallBytes, planSweep } from "../../../src/core/patching/plan";
import { parsePairFile, stringValueOffsets } from "../../../src/core/patching/pairs";
import { lineSegments, wordSegments } from "../../../src/core/patching/segments";
import { patchActivations, patchingSweeps, type PatchingResult } from "../../../src/core/patching/sweep";
import type { AttributionResult } from "../../../src/core/patching/attribution";
import { scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const EPS = 1e-5;
const REFERENCE = path.join(__dirname, "..", "..", "..", "models", "reference");
const CLEAN = "When Mia and Leo went to the park, Leo gave a ball to";
const CORRUPT = "When Mia and Leo went to the park, Mia gave a ball to";

function close(a: number, b: number, what: string, eps = EPS): void {
  assert.ok(Math.abs(a - b) <= eps, `${what}: ${a} vs ${b}`);
}

function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  return assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof LoupeError, `expected a LoupeError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

describe("patching (tiny random GPT-2)", function () {
  this.timeout(120_000);
  let model: HookedModel;
  let clean: number[];
  let corrupted: number[];
  let metric: MetricSpec;
  /** The one position where the prompts differ. */
  let diff: number;

  before(async () => {
    model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    clean = model.toTokens(CLEAN);
    corrupted = model.toTokens(CORRUPT);
    metric = { kind: "logit-diff", answer: singleToken(model.tokenizer, " Mia"), wrong: singleToken(model.tokenizer, " Leo") };
    const differing = clean.flatMap((id, t) => (id === corrupted[t] ? [] : [t]));
    assert.equal(differing.length, 1, "the fixture prompts differ at exactly one token");
    diff = differing[0];
  });
  after(async () => model?.dispose());

  /** The metric computed by hand from a plain run, independent of the patching code. */
  async function metricOf(tokens: number[], interventions: Parameters<HookedModel["runWithHooks"]>[1] = []): Promise<number> {
    const { logits } = await model.runWithHooks(tokens, interventions);
    const V = logits.dims[2];
    const last = logits.data.subarray((tokens.length - 1) * V, tokens.length * V);
    return metric.kind === "logit-diff" ? last[metric.answer] - last[metric.wrong] : Number.NaN;
  }

  it("baselines are the clean and corrupted runs' metrics", async () => {
    const r = await patchingSweeps(model, { clean, corrupted, metric, sweeps: ["resid_pre"] });
    close(r.baselines.clean, await metricOf(clean), "clean");
    close(r.baselines.corrupted, await metricOf(corrupted), "corrupted");
    assert.ok(Math.abs(r.baselines.clean - r.baselines.corrupted) > 1e-3, "the fixture prompts give different metrics");
  });

  it("a batched sweep equals one run per patch (every sweep kind, both directions)", async () => {
    const sweeps = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "heads", "heads_by_pos"] as const;
    for (const direction of ["denoising", "noising"] as const) {
      const one = await patchingSweeps(model, { clean, corrupted, metric, sweeps, direction, batchSize: 1, skipIdentical: false });
      const batched = await patchingSweeps(model, { clean, corrupted, metric, sweeps, direction, batchSize: 48, skipIdentical: false });
      const skipping = await patchingSweeps(model, { clean, corrupted, metric, sweeps, direction, batchSize: 48 });
      const cells = one.sweeps.reduce((s, r) => s + r.raw.length, 0);
      assert.equal(one.calls, cells + 1, "one call per patch plus the baseline call");
      assert.equal(batched.calls, Math.ceil(cells / 48) + 1);
      assert.ok(skipping.variantsRun < cells, "identical patches are not run");
      for (let s = 0; s < sweeps.length; s++) {
        for (let i = 0; i < one.sweeps[s].raw.length; i++) {
          close(batched.sweeps[s].raw[i], one.sweeps[s].raw[i], `${direction} ${sweeps[s]} cell ${i}`);
          close(skipping.sweeps[s].raw[i], one.sweeps[s].raw[i], `${direction} ${sweeps[s]} cell ${i} (skipping)`);
        }
      }
    }
  });

  it("denoising resid_pre at layer 0 restores the clean metric exactly where the prompts differ, and nowhere else", async () => {
    const r = await patchingSweeps(model, { clean, corrupted, metric, sweeps: ["resid_pre"], skipIdentical: false });
    const T = clean.length;
    for (let t = 0; t < T; t++) close(r.sweeps[0].normalised[t], t === diff ? 1 : 0, `layer 0 position ${t}`);
    // And every position at once restores it too.
    const all = await patchActivations(model, { clean, corrupted, metric }, [[{ hook: blockHook(0, "hook_resid_pre") }]]);
    close(all.normalised[0], 1, "all positions of layer 0");
  });

  it("patching the final resid_post at the last position gives the clean metric; other positions give the corrupted one", async () => {
    const L = model.cfg.nLayers;
    const T = clean.length;
    const r = await patchingSweeps(model, { clean, corrupted, metric, sweeps: ["resid_post"], skipIdentical: false });
    const last = r.sweeps[0].raw.slice((L - 1) * T, L * T);
    close(last[T - 1], r.baselines.clean, "last position");
    for (let t = 0; t < T - 1; t++) close(last[t], r.baselines.corrupted, `position ${t} cannot reach the last logits`);
  });

  it("noising mirrors denoising: 0 where denoising gives 1", async () => {
    const L = model.cfg.nLayers;
    const T = clean.length;
    const r = await patchingSweeps(model, { clean, corrupted, metric, sweeps: ["resid_pre", "resid_post"], direction: "noising", skipIdentical: false });
    const [pre, post] = r.sweeps;
    for (let t = 0; t < T; t++) close(pre.normalised[t], t === diff ? 0 : 1, `noising layer 0 position ${t}`);
    close(post.raw[(L - 1) * T + T - 1], r.baselines.corrupted, "noising the final position gives the corrupted metric");
    close(post.normalised[(L - 1) * T + T - 2], 1, "noising an earlier final-layer position leaves the clean metric");
  });

  it("head sweeps have [layer, head] and [layer, head, position] shapes and index heads correctly", async () => {
    const { nLayers: L, nHeads: H } = model.cfg;
    const T = clean.length;
    const r = await patchingSweeps(model, { clean, corrupted, metric, sweeps: ["heads", "heads_by_pos", "attn_out"] });
    const [heads, byPos, attnOut] = r.sweeps;
    assert.deepEqual(heads.axes, ["layer", "head"]);
    assert.deepEqual(heads.shape, [L, H]);
    assert.deepEqual(byPos.shape, [L, H, T]);
    assert.equal(byPos.raw.length, L * H * T);
    assert.deepEqual(planSweep("heads_by_pos", model.hookDims, T).cells[T + 3], { layer: 0, head: 1, position: 3 });
    // Each (layer, head) cell against a hand-made intervention on the same head.
    for (const [layer, head] of [[0, 1], [1, 3], [1, 0]]) {
      const z = blockHook(layer, "attn.hook_z");
      const { cache } = await model.runWithCache(clean, { names: [z] });
      const expected = await metricOf(corrupted, [{ hook: z, kind: "replace", source: cache.get(z), heads: [head] }]);
      close(heads.raw[layer * H + head], expected, `L${layer}H${head}`);
    }
    // Positions before the corruption carry identical activations: the corrupted metric.
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let t = 0; t < diff; t++) assert.equal(byPos.raw[(l * H + h) * T + t], r.baselines.corrupted);
    // All heads of a layer together are that layer's attention output (the bias is the same in both runs).
    for (let l = 0; l < L; l++) {
      const together = await patchActivations(model, { clean, corrupted, metric }, [[{ hook: blockHook(l, "attn.hook_z") }], [{ hook: blockHook(l, "hook_attn_out") }]]);
      close(together.raw[0], together.raw[1], `layer ${l}: all heads vs attn_out`);
      // Per position sums do not hold (nonlinear), but the last position's attn_out cell is per-position z for all heads.
      const zAtLast = await patchActivations(model, { clean, corrupted, metric }, [[{ hook: blockHook(l, "attn.hook_z"), positions: [T - 1] }]]);
      close(zAtLast.raw[0], attnOut.raw[l * T + T - 1], `layer ${l}: z at the last position vs attn_out there`);
    }
  });

  it("KL to the clean run: 0 at clean, normalised 1 when the final position is restored", async () => {
    const r = await patchingSweeps(model, { clean, corrupted, metric: { kind: "kl" }, sweeps: ["resid_post"] });
    const L = model.cfg.nLayers;
    const T = clean.length;
    assert.equal(r.baselines.clean, 0);
    assert.ok(r.baselines.corrupted > 0);
    close(r.sweeps[0].normalised[(L - 1) * T + T - 1], 1, "restored final position");
    close(r.sweeps[0].normalised[(L - 1) * T + 0], 0, "first position of the last layer");
  });

  it("metrics: logit difference, log-prob and KL from a logits row", () => {
    const row = Float32Array.of(1, 2, 0.5, -1);
    const logp = logSoftmax64(row);
    assert.equal(bindMetric({ kind: "logit-diff", answer: 1, wrong: 2 }, row)(row), 1.5);
    close(bindMetric({ kind: "logprob", answer: 0 }, row)(row), logp[0], "logprob", 1e-12);
    close(Array.from(logp).reduce((s, v) => s + Math.exp(v), 0), 1, "probabilities sum to 1", 1e-12);
    const kl = bindMetric({ kind: "kl" }, row);
    assert.equal(kl(row), 0);
    const q = Float32Array.of(2, 1, 0.5, -1);
    const p = Array.from(logp, Math.exp);
    const lq = logSoftmax64(q);
    close(kl(q), p.reduce((s, pi, i) => s + pi * (logp[i] - lq[i]), 0), "KL by hand", 1e-12);
  });

  it("normalisation: 0 = corrupted, 1 = clean; NaN when they coincide; a sweep says why it cannot run", async () => {
    assert.equal(normalise(3, { clean: 3, corrupted: 1 }), 1);
    assert.equal(normalise(1, { clean: 3, corrupted: 1 }), 0);
    assert.equal(normalise(2, { clean: 3, corrupted: 1 }), 0.5);
    assert.equal(normalise(0, { clean: -1, corrupted: 1 }), 0.5);
    assert.ok(isDegenerate({ clean: 0.25, corrupted: 0.25 }));
    assert.ok(Number.isNaN(normalise(0.3, { clean: 0.25, corrupted: 0.25 })));
    await rejectsWith(patchingSweeps(model, { clean, corrupted: clean, metric }), "bad-argument", /same logit\(" Mia"\) - logit\(" Leo"\).*nothing for patching to restore/);
  });

  it("explains prompts of different lengths and answers that are not one token", async () => {
    const other = model.toTokens("When Mia and Leo went to the park, Kai gave a ball to");
    await rejectsWith(patchingSweeps(model, { clean, corrupted: other, metric }), "bad-shape", new RegExp(`clean prompt is ${clean.length} tokens and the corrupted prompt is ${other.length}.*first differ at token 17 \\(clean " Leo", corrupted " "\\)`));
    assert.throws(() => singleToken(model.tokenizer, " Kai"), /" Kai" is 4 tokens for this tokenizer: " " \+ "K" \+ "a" \+ "i"/);
    const pair = firstDistinctTokens(model.tokenizer, " Kai", " Kim");
    assert.deepEqual(pair.prefix.map((id) => model.tokenizer.tokenText(id)), [" ", "K"]);
    assert.equal(model.tokenizer.tokenText(pair.answer), "a");
    assert.throws(() => firstDistinctTokens(model.tokenizer, " Kai", " Kai"), /no differing token/);
    await rejectsWith(patchingSweeps(model, { clean, corrupted, metric: { kind: "logit-diff", answer: 5, wrong: 5 } }), "bad-argument", /same token/);
    await rejectsWith(patchingSweeps(model, { clean, corrupted, metric, position: clean.length }), "bad-argument", /outside the prompt/);
  });

  it("plans calls within a memory budget", () => {
    assert.deepEqual(chunksWithin(5, 2, () => true), [[0, 2], [2, 4], [4, 5]]);
    // A call that holds at most 3 items, and one that holds none: single items still run.
    assert.deepEqual(chunksWithin(7, 64, (start, end) => end - start <= 3), [[0, 3], [3, 6], [6, 7]]);
    assert.deepEqual(chunksWithin(3, 64, () => false), [[0, 1], [1, 2], [2, 3]]);
    assert.throws(() => chunksWithin(3, 0, () => true), /positive integer/);
    const hooks = [blockHook(0, "attn.hook_attn_scores")];
    const call = { rows: 4, positions: 26, prefix: 0, logitPositions: 1, hooks };
    const bytes = patchedCallBytes(model.cfg, model.hookDims, call);
    // Each changed hook adds its dense gain and write inputs for every row; a hook named twice counts once.
    const scores = 2 * 4 * 4 * model.cfg.nHeads * 26 * 26;
    assert.equal(patchedCallBytes(model.cfg, model.hookDims, { ...call, hooks: [...hooks, ...hooks, blockHook(1, "attn.hook_attn_scores")] }), bytes + scores);
    assert.equal(patchedCallBytes(model.cfg, model.hookDims, { ...call, hooks: [] }), bytes - scores);
    // Logits only at the scored positions: more of them cost a vocabulary row each per row.
    assert.equal(patchedCallBytes(model.cfg, model.hookDims, { ...call, logitPositions: 3 }), bytes + 4 * 4 * 2 * model.cfg.dVocab);
  });
});

describe("patching within a memory budget (reference model)", function () {
  this.timeout(120_000);
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(REFERENCE, { cacheDir: null, threads: 1 })));
  after(async () => model?.dispose());

  it("fetches the prompts' activations in groups when they pass the budget, with the same results as one fetch", async () => {
    const clean = model.toTokens(CLEAN);
    const corrupted = model.toTokens(CORRUPT);
    const metric: MetricSpec = { kind: "logit-diff", answer: singleToken(model.tokenizer, " Mia"), wrong: singleToken(model.tokenizer, " Leo") };
    const setup = { clean, corrupted, metric, batchSize: 1 };
    const whole = await patchingSweeps(model, setup);
    // At most two resid-sized hooks of both prompts (each counted twice) per call: the 4 sweeps' 16 hooks take 8 or more.
    const hookBytes = 2 * 4 * 2 * clean.length * model.cfg.dModel;
    const split = await patchingSweeps(model, { ...setup, memoryBudgetBytes: 2 * hookBytes });
    const prepareCalls = (r: PatchingResult) => r.calls - r.variantsRun;
    assert.equal(prepareCalls(whole), 1);
    assert.ok(prepareCalls(split) >= 8, String(prepareCalls(split)));
    assert.deepEqual(split.baselines, whole.baselines);
    assert.equal(split.variantsRun, whole.variantsRun);
    split.sweeps.forEach((sweep, s) => {
      assert.equal(sweep.skipped, whole.sweeps[s].skipped, `${sweep.kind}: identity patches found alike`);
      assert.deepEqual(sweep.raw, whole.sweeps[s].raw, sweep.kind);
    });
  });
});

describe("token attribution (tiny random GPT-2)", function () {
  this.timeout(120_000);
  let model: HookedModel;
  const text = "Alice met Bob.\nThen Bob gave the ball to";

  before(async () => (model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })));
  after(async () => model?.dispose());

  it("groups tokens into words and lines by their offsets", () => {
    const enc = model.tokenizer.encode(text);
    const lines = lineSegments(text, enc.offsets);
    assert.deepEqual(lines.map((l) => l.text), ["Alice met Bob.", "Then Bob gave the ball to"]);
    assert.deepEqual([...lines[0].tokens, ...lines[1].tokens], enc.ids.map((_, i) => i), "every token on exactly one line, in order");
    assert.equal(model.tokenizer.tokenText(enc.ids[lines[0].tokens.at(-1) as number]), "\n", "the newline token stays with the line it ends");
    const words = wordSegments(text, enc.offsets);
    assert.deepEqual(words.map((w) => w.text), ["Alice", "met", "Bob.", "Then", "Bob", "gave", "the", "ball", "to"]);
    for (const w of words) assert.equal(w.tokens.map((t) => model.tokenizer.tokenText(enc.ids[t])).join("").trim(), w.text, `tokens of ${w.text}`);
  });

  it("the default answer is the top next token, and its log-prob matches a plain run; the default method measures every token", async () => {
    const r = await attributeTokens(model, text);
    assert.equal(r.method, "embed");
    assert.equal(r.baseline, "zero");
    const ids = model.toTokens(text);
    const logits = await model.run(ids);
    const V = logits.dims[2];
    const logp = logSoftmax64(logits.data.subarray((ids.length - 1) * V));
    assert.ok(r.answer.isTop);
    close(r.answer.logprob, Math.max(...logp), "log-prob of the top token");
    assert.equal(r.tokens.length, ids.length);
    assert.ok(r.tokens.every((t) => t.attribution !== null && Number.isFinite(t.attribution)), "the last token included");
    const masked = await attributeTokens(model, text, { method: "mask" });
    assert.equal(masked.tokens.at(-1)?.attribution, null, "masking cannot remove the token the answer is read at");
    assert.ok(masked.tokens.slice(0, -1).every((t) => t.attribution !== null && Number.isFinite(t.attribution)));
  });

  it("masking removes a token completely: what it was no longer matters", async () => {
    // Change one earlier token; with that token masked the answer's log-prob is the same.
    const other = text.replace("gave the ball", "gave a ball");
    const ids = model.toTokens(text);
    const t = ids.indexOf(singleToken(model.tokenizer, " the"));
    assert.deepEqual(model.toTokens(other), ids.map((id, i) => (i === t ? singleToken(model.tokenizer, " a") : id)), "the texts differ in exactly one token");
    const answer = [singleToken(model.tokenizer, " Mia")];
    const a = await attributeTokens(model, text, { answer, groups: false, method: "mask" });
    const b = await attributeTokens(model, other, { answer, groups: false, method: "mask" });
    const ablatedA = a.answer.logprob - (a.tokens[t].attribution as number);
    const ablatedB = b.answer.logprob - (b.tokens[t].attribution as number);
    close(ablatedA, ablatedB, "ablated log-prob independent of the masked token", 1e-4);
    assert.ok(Math.abs(a.answer.logprob - b.answer.logprob) > 1e-4, "while the unablated runs differ");
    // The interventions touch only later queries, at every layer.
    const ivs = knockoutInterventions(2, 10, 10, [3]);
    assert.deepEqual(ivs?.map((iv) => iv.hook), ["blocks.0.attn.hook_attn_scores", "blocks.1.attn.hook_attn_scores"]);
    assert.deepEqual(ivs?.[0].positions, [4, 5, 6, 7, 8, 9]);
    assert.equal(knockoutInterventions(2, 10, 10, [9]), null);
  });

  it("a multi-token answer's log-prob is the sum over its tokens, and groups of one token agree with the token", async () => {
    const answer = model.toTokens(" Alice");
    assert.ok(answer.length > 1);
    const r = await attributeTokens(model, text, { answer, method: "mask" });
    const ids = model.toTokens(text);
    const logits = await model.run([...ids, ...answer.slice(0, -1)]);
    const V = logits.dims[2];
    let expected = 0;
    answer.forEach((id, k) => (expected += logSoftmax64(logits.data.subarray((ids.length - 1 + k) * V, (ids.length + k) * V))[id]));
    close(r.answer.logprob, expected, "summed log-prob");
    for (const w of r.words.filter((x) => x.tokens.length === 1)) assert.equal(w.attribution, r.tokens[w.tokens[0]].attribution);
    assert.equal(r.lines[1].attribution, null, "the last line holds the last token");
    assert.ok(r.lines[0].attribution !== null);
  });

  it("embedding ablation with the token's own embedding changes nothing; batched equals one run per ablation", async () => {
    const ids = model.toTokens(text);
    const the = singleToken(model.tokenizer, " the");
    const at = ids.indexOf(the);
    assert.ok(at > 0);
    const r = await attributeTokens(model, text, { method: "embed", baseline: the, groups: false });
    close(r.tokens[at].attribution as number, 0, "replacing \" the\" by \" the\"", 1e-6);
    assert.ok(r.tokens.every((t) => t.attribution !== null), "embed measures every token, the last included");
    const one = await attributeTokens(model, text, { method: "embed", baseline: the, batchSize: 1 });
    const batched = await attributeTokens(model, text, { method: "embed", baseline: the, batchSize: 64 });
    assert.ok(one.calls > batched.calls);
    one.tokens.forEach((t, i) => close(batched.tokens[i].attribution as number, t.attribution as number, `token ${i}`));
    one.lines.forEach((l, i) => close(batched.lines[i].attribution as number, l.attribution as number, `line ${i}`));
    const zero = await attributeTokens(model, text, { method: "embed", groups: false });
    assert.equal(zero.baseline, "zero", "zero is the default baseline");
  });

  it("with a contrast, attributes the logit difference: each token's effect is the difference of the two answers' effects", async () => {
    const mia = [singleToken(model.tokenizer, " Mia")];
    const leo = singleToken(model.tokenizer, " Leo");
    const diff = await attributeTokens(model, text, { answer: mia, contrast: leo, method: "embed" });
    const a = await attributeTokens(model, text, { answer: mia, method: "embed" });
    const b = await attributeTokens(model, text, { answer: [leo], method: "embed" });
    assert.equal(diff.contrast?.id, leo);
    close(diff.contrast?.logitDiff as number, a.answer.logprob - b.answer.logprob, "clean logit difference");
    diff.tokens.forEach((t, i) => close(t.attribution as number, (a.tokens[i].attribution as number) - (b.tokens[i].attribution as number), `token ${i}`));
    assert.ok(diff.tokens.some((t, i) => Math.abs((t.attribution as number) - (a.tokens[i].attribution as number)) > 1e-3), "differs from log p(answer) alone");
    assert.equal(a.contrast, null);
    await rejectsWith(attributeTokens(model, text, { answer: mia, contrast: mia[0] }), "bad-argument", /always zero/);
    await rejectsWith(attributeTokens(model, text, { answer: mia, contrast: -1 }), "bad-argument", /outside the vocabulary/);
  });

  it("turns typed answers into tokens: alone, or cut at the first token where a contrast differs", async () => {
    const tok = model.tokenizer;
    assert.deepEqual(attributionTargets(tok), {});
    assert.deepEqual(attributionTargets(tok, " Alice"), { answer: tok.encode(" Alice").ids });
    const pair = firstDistinctTokens(tok, " Alice", " Bob");
    assert.deepEqual(attributionTargets(tok, " Alice", " Bob"), { answer: [...pair.prefix, pair.answer], contrast: pair.wrong });
    assert.throws(() => attributionTargets(tok, undefined, " Bob"), /needs an answer/);
    await rejectsWith(attributeTokens(model, text, attributionTargets(tok, "")), "bad-argument", /empty/);
    assert.throws(() => attributionTargets(tok, " Alice", " Alice"), /no differing token/);
  });

  it("refuses an empty selection and out-of-vocabulary answers", async () => {
    await rejectsWith(attributeTokens(model, ""), "empty-input", /no tokens/);
    await rejectsWith(attributeTokens(model, text, { answer: [9999] }), "bad-argument", /outside the vocabulary/);
  });
});

describe("patching pair files", () => {
  it("reads one pair a line, skipping blank lines, with optional answers and the line of each", () => {
    const pairs = parsePairFile('{"clean": "a b", "corrupted": "a c", "answer": " Mia", "wrong": " Leo", "note": 1}\n\n{"clean": "x", "corrupted": "y"}\r\n');
    assert.deepEqual(pairs, [
      { clean: "a b", corrupted: "a c", answer: " Mia", wrong: " Leo", line: 1 },
      { clean: "x", corrupted: "y", line: 3 },
    ]);
  });

  it("names the file and line of a bad pair", () => {
    const bad = (content: string, why: RegExp) => assert.throws(() => parsePairFile(content, "pairs.jsonl"), (e: unknown) => e instanceof LoupeError && why.test(e.message));
    bad('{"clean": "a", "corrupted": "b"}\n{"clean": "a"', /^pairs\.jsonl:2: not valid JSON/);
    bad('{"clean": "a", "corrupted": "b"}\n\n["a", "b"]', /^pairs\.jsonl:3: expected a JSON object/);
    bad('{"clean": "a"}', /^pairs\.jsonl:1: missing "corrupted"/);
    bad('{"clean": 3, "corrupted": "b"}', /^pairs\.jsonl:1: "clean" must be a string/);
    bad('{"clean": "a", "corrupted": "  "}', /^pairs\.jsonl:1: "corrupted" is empty/);
    bad('{"clean": "a", "corrupted": "b", "wrong": " Leo"}', /^pairs\.jsonl:1: "wrong" needs an "answer"/);
    bad("\n  \n", /pairs\.jsonl holds no pairs/);
  });

  it("maps each character of the clean prompt to its place in the raw JSON line, through escapes", () => {
    const clean = 'Mia said "hi"\nthen é 🙂 to';
    const line = `{"corrupted": "\\"clean\\": no", "clean": ${JSON.stringify(clean).replace("é", "\\u00e9")}}`;
    const map = stringValueOffsets(line, "clean", clean);
    assert.ok(map, line);
    assert.equal(map.length, clean.length + 1);
    // Every character sits where its raw form starts; the last entry is the closing quote.
    for (let i = 0; i < clean.length; i++) {
      const raw = line.slice(map[i], map[i + 1]);
      assert.equal(JSON.parse(`"${raw}"`), clean[i], `character ${i}: ${raw}`);
    }
    assert.equal(line.slice(map[9], map[13]), '\\"hi\\"');
    assert.equal(line.slice(map[19], map[20]), "\\u00e9");
    assert.equal(line[map[clean.length]], '"');
    // Not found, or decoding to something else: no map.
    assert.equal(stringValueOffsets(line, "clean", "other"), undefined);
    assert.equal(stringValueOffsets('{"prompt": "x"}', "clean", "x"), undefined);
  });
});

describe("loupe patch / attribute", function () {
  this.timeout(120_000);
  const dir = scratchDir("patch-cli");
  const cleanFile = path.join(dir, "clean.txt");
  const corruptFile = path.join(dir, "corrupt.txt");
  const promptFile = path.join(dir, "prompt.txt");
  fs.writeFileSync(cleanFile, `${CLEAN}\n`);
  fs.writeFileSync(corruptFile, `${CORRUPT}\n`);
  fs.writeFileSync(promptFile, "Alice met Bob.\nThen Bob gave the ball to\n");

  async function runCli(args: string[]): Promise<string> {
    const chunks: string[] = [];
    const code = await main(args, { out: (t) => void chunks.push(t), readStdin: () => "" });
    assert.equal(code, 0);
    return chunks.join("");
  }

  it("patch --json gives every sweep, normalised, with the tokens", async () => {
    const out = await runCli(["patch", "--model", TINY_GPT2, "--clean", cleanFile, "--corrupt", corruptFile, "--answer", " Mia", "--wrong", " Leo", "--json"]);
    const r = JSON.parse(out) as PatchingResult;
    assert.deepEqual(r.sweeps.map((s) => s.kind), ["resid_pre", "attn_out", "mlp_out", "heads"]);
    const T = r.tokens.clean.length;
    assert.equal(T, 26, "the final newline of the file is not part of the prompt");
    assert.deepEqual(r.sweeps[0].shape, [2, T]);
    assert.equal(r.sweeps[0].normalised[17], 1);
    assert.equal(r.tokens.corrupted[17].text, " Mia");
  });

  it("patch --pairs patches the chosen pair of a JSONL file, with its answers unless flags override them", async () => {
    const pairsFile = path.join(dir, "pairs.jsonl");
    fs.writeFileSync(pairsFile, `${JSON.stringify({ clean: CORRUPT, corrupted: CLEAN, answer: " Leo", wrong: " Mia" })}\n\n${JSON.stringify({ clean: CLEAN, corrupted: CORRUPT, answer: " Mia", wrong: " Leo" })}\n`);
    const fromFile = JSON.parse(await runCli(["patch", "--model", TINY_GPT2, "--pairs", pairsFile, "--pair", "2", "--sweep", "resid_pre", "--json"])) as PatchingResult;
    const fromFlags = JSON.parse(await runCli(["patch", "--model", TINY_GPT2, "--clean", cleanFile, "--corrupt", corruptFile, "--answer", " Mia", "--wrong", " Leo", "--sweep", "resid_pre", "--json"])) as PatchingResult;
    assert.deepEqual(fromFile.sweeps[0].normalised, fromFlags.sweeps[0].normalised);
    assert.deepEqual(fromFile.baselines, fromFlags.baselines);
    const first = JSON.parse(await runCli(["patch", "--model", TINY_GPT2, "--pairs", pairsFile, "--sweep", "resid_pre", "--json"])) as PatchingResult;
    assert.equal(first.tokens.clean[17].text, " Mia", "pair 1 by default: its clean prompt is the other file's corrupted one");
    const overridden = JSON.parse(await runCli(["patch", "--model", TINY_GPT2, "--pairs", pairsFile, "--pair", "2", "--answer", " Mia", "--sweep", "resid_pre", "--json"])) as PatchingResult;
    assert.equal(overridden.metric.kind, "logprob", "--answer alone replaces the pair's answer and wrong answer");
    await assert.rejects(runCli(["patch", "--model", TINY_GPT2, "--pairs", pairsFile, "--pair", "3"]), /--pair 3: .*pairs\.jsonl holds 2 pair\(s\)/);
    await assert.rejects(runCli(["patch", "--model", TINY_GPT2, "--pairs", pairsFile, "--clean", cleanFile]), /Give --pairs, or --clean and --corrupt, not both/);
    await assert.rejects(runCli(["patch", "--model", TINY_GPT2, "--clean", cleanFile, "--corrupt", corruptFile, "--pair", "2", "--answer", " Mia"]), /--pair picks a pair from --pairs FILE/);
  });

  it("patch prints tables with token labels and layers", async () => {
    const out = await runCli(["patch", "--model", TINY_GPT2, "--clean", cleanFile, "--corrupt", corruptFile, "--answer", " Mia", "--wrong", " Leo", "--sweep", "resid_pre,heads", "--direction", "noising"]);
    assert.match(out, /metric logit\(" Mia"\) - logit\(" Leo"\) at token 25 " to"/);
    assert.match(out, /#\s+clean\s+corrupted\s+L0\s+L1/);
    assert.match(out, /17\s+" Leo"\s+" Mia"\s+0\.00/);
    assert.match(out, /layer\s+H0\s+H1\s+H2\s+H3/);
    assert.match(out, /strongest per layer: L0 /);
  });

  it("patch explains a multi-token answer and scores it with --first-distinct", async () => {
    await assert.rejects(
      runCli(["patch", "--model", TINY_GPT2, "--clean", cleanFile, "--corrupt", corruptFile, "--answer", " Kai", "--wrong", " Leo"]),
      /" Kai" is 4 tokens.*--first-distinct/,
    );
    const out = await runCli(["patch", "--model", TINY_GPT2, "--clean", cleanFile, "--corrupt", corruptFile, "--answer", " Kai", "--wrong", " Kim", "--first-distinct", "--sweep", "resid_pre", "--json"]);
    const r = JSON.parse(out) as PatchingResult;
    assert.equal(r.tokens.clean.length, 28, "the shared ' ' + 'K' is appended");
  });

  it("attribute --json and text", async () => {
    const r = JSON.parse(await runCli(["attribute", "--model", TINY_GPT2, "--answer", " Alice", "--json", promptFile])) as AttributionResult;
    assert.equal(r.text, "Alice met Bob.\nThen Bob gave the ball to");
    assert.equal(r.answer.text, " Alice");
    assert.equal(r.lines.length, 2);
    const text = await runCli(["attribute", "--model", TINY_GPT2, "--method", "embed", promptFile]);
    assert.match(text, /#\s+token\s+attribution/);
    assert.match(text, /line\s+attribution\s+text/);
    assert.match(text, /Ablation by embed/);
    await assert.rejects(runCli(["attribute", "--model", TINY_GPT2, "--method", "drop", promptFile]), /--method must be mask or embed/);
    const contrast = JSON.parse(await runCli(["attribute", "--model", TINY_GPT2, "--answer", " Alice", "--contrast", " Bob", "--json", promptFile])) as AttributionResult;
    // Scored at the first tokens where " Alice" and " Bob" differ: the answer stops there.
    assert.ok(" Alice".startsWith(contrast.answer.text) && contrast.answer.ids.length <= r.answer.ids.length, contrast.answer.text);
    assert.ok(contrast.contrast && " Bob".includes(contrast.contrast.text) && contrast.contrast.id !== contrast.answer.ids.at(-1));
    assert.match(await runCli(["attribute", "--model", TINY_GPT2, "--answer", " Alice", "--contrast", " Bob", promptFile]), /contrast "[^"]+": logit difference "[^"]+" - "[^"]+" = -?\d/);
    await assert.rejects(runCli(["attribute", "--model", TINY_GPT2, "--contrast", " Bob", promptFile]), /contrast needs an answer/);
  });
});
