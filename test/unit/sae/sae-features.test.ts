import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { readSafetensorsIndex, readTensorF32 } from "../../../src/core/model/safetensors";
import { loadSae, saeFeatureActivations } from "../../../src/core/sae";
import {
  emptyFeatureLabels,
  featureDisplayName,
  featureLabel,
  mergeFeatureLabels,
  parseFeatureLabels,
  readFeatureLabels,
  resolveFeature,
  saeLabelKey,
  serializeFeatureLabels,
  setFeatureLabel,
  writeFeatureLabels,
} from "../../../src/core/sae/feature-labels";
import { FEATURE_STATS_FILENAME, readFeatureStats, writeFeatureStats } from "../../../src/core/sae/feature-stats-file";
import { computeFeatureStats, FeatureStatsBuilder, topFeaturesPerToken, type FeatureStats } from "../../../src/core/sae/features";
import { featureLogitVector, logitEffects, readUnembedding } from "../../../src/core/sae/logit-effects";
import { featuresCommand, parseCorpusJsonl, type FeaturesResult } from "../../../src/cli/commands/features";
import { SaeStore } from "../../../src/core/sae/sae-store";
import { tokenFeatures } from "../../../src/core/sae/token-features";
import { bindRequests, loadHookedModel, ModelSession, ModelState } from "../../../src/core/requests";
import { contextPieces, exploreFeatureLink, featureDashboardState, featureHoverMarkdown, featurePickItems, featureTokenLevels, MAX_LABEL_LENGTH, parseFeatureDashboardRequest } from "../../../src/core/view/feature-dashboard";
import { LEVELS } from "../../../src/core/view/lenses";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const TOPK_SAE = path.join(FIXTURES, "sae", "topk");
const META = { hook_name: "blocks.0.hook_resid_post", d_in: 4, architecture: "topk" };

function throwsLoupe(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof LoupeError, `expected a LoupeError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Offsets of space-separated words, each token owning its leading space (as GPT-2 tokens do). */
function wordOffsets(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const re = /\s*\S+/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push([m.index, m.index + m[0].length]);
  return out;
}

/** [tokens, d_sae] activations from per-feature columns. */
function matrix(columns: number[][]): Float32Array {
  const T = columns[0].length;
  const S = columns.length;
  const out = new Float32Array(T * S);
  for (let s = 0; s < S; s++) for (let t = 0; t < T; t++) out[t * S + s] = columns[s][t];
  return out;
}

describe("SAE feature statistics", () => {
  // Two labelled texts and one unlabelled. Feature 0 fires exactly on "name" tokens (and on an
  // unlabelled token, which must not count against it), feature 1 on every token, feature 2 never,
  // feature 3 on three of the names plus the colour token.
  const textA = "Mia saw a red cat";
  const textB = "then Leo met Mia";
  const textC = "no labels here";
  const spansA = [
    { start: 0, end: 3, label: "name" },
    { start: 10, end: 13, label: "colour" },
  ];
  // " Leo" is [4, 8]: the span starts after the space, and the token still counts as inside.
  const spansB = [
    { start: 5, end: 8, label: "name" },
    { start: 13, end: 16, label: "name" },
  ];

  function build(options: ConstructorParameters<typeof FeatureStatsBuilder>[1] = {}) {
    const builder = new FeatureStatsBuilder(4, options);
    builder.add(textA, wordOffsets(textA), matrix([[2, 0, 0, 0, 0], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [1, 0, 0, 1, 0]]), spansA);
    builder.add(textB, wordOffsets(textB), matrix([[0, 3, 0, 10], [7, 1, 1, 1], [0, 0, 0, 0], [0, 1, 0, 1]]), spansB);
    builder.add(textC, wordOffsets(textC), matrix([[5, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]]));
    return builder.finish(META);
  }

  it("counts density and firing statistics over all tokens", () => {
    const stats = build();
    assert.equal(stats.corpus.tokens, 12);
    assert.equal(stats.corpus.texts, 3);
    assert.equal(stats.corpus.labelledTexts, 2);
    assert.equal(stats.corpus.labelledTokens, 9);
    const [f0, f1, f2] = stats.features;
    assert.equal(f0.fired, 4);
    assert.equal(f0.density, 4 / 12);
    assert.equal(f0.meanActivation, (2 + 3 + 10 + 5) / 4);
    assert.equal(f0.maxActivation, 10);
    assert.equal(f1.fired, 12);
    assert.equal(f1.density, 1);
    assert.equal(f2.fired, 0);
    assert.equal(f2.density, 0);
    assert.equal(f2.concept, undefined);
    assert.deepEqual(f2.topContexts, []);
  });

  it("bins log10 activations", () => {
    const stats = build();
    const { log10Min, log10Max, bins } = stats.histogram;
    const bin = (v: number) => Math.min(bins - 1, Math.floor(((Math.log10(v) - log10Min) / (log10Max - log10Min)) * bins));
    const expected = new Array(bins).fill(0);
    for (const v of [2, 3, 10, 5]) expected[bin(v)]++;
    assert.deepEqual(stats.features[0].histogram, expected);
    assert.equal(stats.features[0].histogram.reduce((a, b) => a + b, 0), 4);
    // Values past the range land in the end bins.
    const wide = new FeatureStatsBuilder(1, { histogram: { log10Min: 0, log10Max: 1, bins: 2 } });
    wide.add("a b c", wordOffsets("a b c"), Float32Array.from([0.001, 5, 1e6]));
    assert.deepEqual(wide.finish(META).features[0].histogram, [1, 2]);
  });

  it("gives F1 1 to a feature that fires exactly on one label, and counts only labelled texts", () => {
    const stats = build();
    assert.deepEqual(stats.features[0].concept, { label: "name", f1: 1, precision: 1, recall: 1 });
    // Feature 1 fires on all 9 labelled tokens; 3 of them are names: F1 = 2*3 / (9 + 3) = 0.5.
    // Above 10^0.6 (a bin edge) it fires on "red", "cat" and "then" only: colour F1 2*1 / (3 + 1),
    // also 0.5; labels are visited in order, so colour, the first, keeps the tie.
    assert.deepEqual(stats.features[1].concept, { label: "colour", f1: 0.5, precision: Number((1 / 3).toPrecision(4)), recall: 1, threshold: Number((10 ** 0.6).toPrecision(4)) });
    // Feature 3 fires on 4 labelled tokens: 3 names and "red", the one colour token.
    // name: 2*3 / (4 + 3); colour: 2*1 / (4 + 1).
    assert.equal(stats.features[3].concept!.label, "name");
    assert.equal(stats.features[3].concept!.f1, Number((6 / 7).toPrecision(4)));
    const name = stats.concepts.find((c) => c.label === "name")!;
    assert.equal(name.tokens, 3);
    assert.deepEqual(
      name.features.map((f) => f.feature),
      [0, 3, 1],
    );
    const colour = stats.concepts.find((c) => c.label === "colour")!;
    assert.equal(colour.tokens, 1);
    assert.deepEqual(colour.features[0], { feature: 1, label: "colour", f1: 0.5, precision: Number((1 / 3).toPrecision(4)), recall: 1, threshold: Number((10 ** 0.6).toPrecision(4)) });
    assert.deepEqual(colour.features[1], { feature: 3, label: "colour", f1: 0.4, precision: 0.25, recall: 1 });
    assert.deepEqual(
      stats.concepts.map((c) => c.label),
      ["colour", "name"],
    );
  });

  it("scores a feature at the activation threshold where it detects a label best", () => {
    // Feature 0 fires weakly on every token and strongly on the two names; feature 1 only on names, weakly.
    const text = "Mia saw Leo and a cat";
    const spans = [
      { start: 0, end: 3, label: "name" },
      { start: 7, end: 11, label: "name" },
    ];
    const builder = new FeatureStatsBuilder(2);
    builder.add(text, wordOffsets(text), matrix([[3, 0.2, 2.5, 0.3, 0.1, 0.2], [0.01, 0, 0.01, 0, 0, 0]]), spans);
    const stats = builder.finish(META);
    // Any firing: 2 names among 6 tokens (F1 0.5); from the bin edge at or below 2.5 up: exactly the names.
    const strong = stats.features[0].concept!;
    assert.equal(strong.f1, 1);
    assert.ok(strong.threshold! > 0.3 && strong.threshold! <= 2.5, `threshold ${strong.threshold}`);
    // A perfect match at any firing needs no threshold; ties keep "whenever it fires".
    assert.deepEqual(stats.features[1].concept, { label: "name", f1: 1, precision: 1, recall: 1 });
    // A threshold from elsewhere is applied as given, rounded up to a bin edge.
    assert.equal(builder.conceptMatch("name", 0).f1, 1);
    assert.equal(builder.conceptMatch("name", 0, 0).f1, 0.5);
    assert.equal(builder.conceptMatch("name", 0, 0).threshold, undefined);
    const high = builder.conceptMatch("name", 0, 2);
    assert.ok(high.threshold! >= 2 && high.threshold! < 3, `threshold ${high.threshold}`);
    assert.deepEqual([high.f1, high.recall, high.precision], [Number((2 / 3).toPrecision(4)), 0.5, 1]);
    assert.deepEqual(builder.conceptMatch("colour", 0), { label: "colour", f1: 0, precision: 0, recall: 0 });
    // A threshold as saved (rounded to 4 digits, here up: 10^0.2 = 1.58489 -> 1.585) picks its own edge again.
    const atEdge = builder.conceptMatch("name", 0, 1.585);
    assert.equal(atEdge.threshold, 1.585);
    assert.equal(atEdge.f1, 1);
    // A fire threshold above every edge but the top leaves only "whenever it fires" and the top bin.
    const strict = new FeatureStatsBuilder(1, { fireThreshold: 1 });
    strict.add(text, wordOffsets(text), matrix([[3, 0.2, 2.5, 0.3, 0.1, 0.2]]), spans);
    assert.equal(strict.conceptMatch("name", 0, 0.5).threshold, undefined);
    assert.equal(strict.conceptMatch("name", 0, 0.5).f1, 1);
  });

  it("keeps the top contexts best first, one per text, with the snippet's token values", () => {
    const stats = build();
    const contexts = stats.features[0].topContexts;
    assert.deepEqual(
      contexts.map((c) => [c.source, c.value]),
      [
        [1, 10],
        [2, 5],
        [0, 2],
      ],
    );
    const top = contexts[0];
    assert.equal(top.text, textB);
    assert.equal(top.token, 3);
    assert.equal(top.text.slice(...top.offsets[top.token]), " Mia");
    assert.deepEqual(top.values, [0, 3, 0, 10]);
    // Feature 1 peaks at the last token of text A (5) and the first of text B (7).
    assert.deepEqual(
      stats.features[1].topContexts.map((c) => [c.source, c.token, c.value]),
      [
        [1, 0, 7],
        [0, 4, 5],
        [2, 0, 1],
      ],
    );
    // A narrow window cuts the snippet around the token; a short list drops the weakest.
    const narrow = build({ contextBefore: 1, contextAfter: 0, topContexts: 2 });
    const c = narrow.features[1].topContexts;
    assert.equal(c.length, 2);
    assert.equal(c[1].text, " red cat");
    assert.deepEqual(c[1].offsets, [
      [0, 4],
      [4, 8],
    ]);
    assert.deepEqual(c[1].values, [4, 5]);
    assert.equal(c[1].token, 1);
  });

  it("rejects activations of the wrong width", () => {
    const builder = new FeatureStatsBuilder(4);
    throwsLoupe(() => builder.add("a b", wordOffsets("a b"), new Float32Array(6)), "bad-shape", /expected 2 tokens x d_sae 4/);
  });

  it("lists each token's strongest features", () => {
    const top = topFeaturesPerToken(Float32Array.from([0, 2, 1, 0, 0, 0, 0, 0, 3, 3, 0.5, 0]), 4, 2);
    assert.deepEqual(top, [
      [
        { feature: 1, value: 2 },
        { feature: 2, value: 1 },
      ],
      [],
      [
        { feature: 0, value: 3 },
        { feature: 1, value: 3 },
      ],
    ]);
  });
});

describe("SAE feature statistics on a model", function () {
  let model: HookedModel;
  before(async () => {
    model = await HookedModel.load(TINY_GPT2, { cacheDir: null });
  });
  after(async () => {
    await model?.dispose();
  });

  it("computes logit effects as W_dec[f] through ln_final's gain and the vocab-centred tied embedding", () => {
    const sae = loadSae(TOPK_SAE);
    const index = readSafetensorsIndex(path.join(TINY_GPT2, "model.safetensors"));
    const wte = readTensorF32(index, "transformer.wte.weight");
    const gamma = readTensorF32(index, "transformer.ln_f.weight");
    const V = model.cfg.dVocab;
    const D = model.cfg.dModel;
    const unembedding = readUnembedding(model);
    for (const f of [0, 7, sae.d_sae - 1]) {
      const byHand = new Float64Array(V);
      for (let v = 0; v < V; v++) for (let j = 0; j < D; j++) byHand[v] += sae.weights.W_dec[f * D + j] * gamma[j] * wte[v * D + j];
      const mean = byHand.reduce((a, b) => a + b, 0) / V;
      const got = featureLogitVector(sae, f, unembedding);
      for (let v = 0; v < V; v++) assert.ok(Math.abs(got[v] - (byHand[v] - mean)) < 1e-4, `feature ${f} token ${v}: ${got[v]} vs ${byHand[v] - mean}`);
      const order = Array.from(byHand.keys()).sort((a, b) => byHand[b] - byHand[a]);
      const effects = logitEffects(sae, f, unembedding, 5, (id) => model.tokenizer.decode([id]));
      assert.deepEqual(
        effects.promoted.map((e) => e.id),
        order.slice(0, 5),
      );
      assert.deepEqual(
        effects.suppressed.map((e) => e.id),
        order.slice(-5).reverse(),
      );
      assert.equal(effects.promoted[0].token, model.tokenizer.decode([order[0]]));
    }
    throwsLoupe(() => featureLogitVector(sae, sae.d_sae, unembedding), "bad-argument", /outside/);
  });

  it("agrees with the SAE's own per-token activations, and round-trips feature-stats.json", async () => {
    const sae = loadSae(TOPK_SAE);
    const texts = ["When Mia and Leo went to the shop, Mia gave a drink to Leo.", "The red cat sat."];
    const stats = await computeFeatureStats(model, sae, texts.map((text) => ({ text })), { batchSize: 1, logitTokens: 3 });
    const fired = new Array(sae.d_sae).fill(0);
    let tokens = 0;
    for (const text of texts) {
      const run = await saeFeatureActivations(model, sae, text);
      tokens += run.tokens.length;
      for (let i = 0; i < run.features.length; i++) if (run.features[i] > 0) fired[i % sae.d_sae]++;
    }
    assert.equal(stats.corpus.tokens, tokens);
    assert.deepEqual(
      stats.features.map((f) => f.fired),
      fired,
    );
    const live = stats.features.find((f) => f.fired > 0)!;
    assert.equal(live.logits!.promoted.length, 3);
    assert.equal(stats.features.find((f) => f.fired === 0)?.logits, undefined);
    assert.equal(stats.concepts.length, 0);

    const dir = scratchDir("feature-stats");
    const file = writeFeatureStats(dir, stats);
    assert.equal(path.basename(file), FEATURE_STATS_FILENAME);
    assert.deepEqual(readFeatureStats(dir, sae), JSON.parse(JSON.stringify(stats)));
    assert.equal(readFeatureStats(scratchDir("no-stats")), undefined);

    // Stats for another SAE, and broken files, are refused with the file named.
    const other = { ...stats, sae: { ...stats.sae, hook_name: "blocks.1.hook_resid_post" } };
    writeFeatureStats(dir, other);
    throwsLoupe(() => readFeatureStats(dir, sae), "bad-file", /feature-stats\.json describes features at blocks\.1\.hook_resid_post/);
    fs.writeFileSync(file, "{ nope");
    throwsLoupe(() => readFeatureStats(dir), "bad-file", /not valid JSON/);
    fs.writeFileSync(file, JSON.stringify({ ...stats, format: "something-else" }));
    throwsLoupe(() => readFeatureStats(dir), "bad-file", /"format"/);
    fs.writeFileSync(file, JSON.stringify({ ...stats, features: stats.features.slice(1) }));
    throwsLoupe(() => readFeatureStats(dir), "bad-file", /must list all 48 features/);
  });
});

describe("loupe features", () => {
  it("prints each token's strongest features, named by user labels and the stats file's concepts", async () => {
    // A copy of the SAE with a stats file that matches feature f to a concept.
    const saeDir = scratchDir("cli-sae");
    for (const f of fs.readdirSync(TOPK_SAE)) fs.copyFileSync(path.join(TOPK_SAE, f), path.join(saeDir, f));
    const sae = loadSae(saeDir);
    const text = "When Mia and Leo went to the shop";
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null });
    let run;
    try {
      run = await saeFeatureActivations(model, sae, text);
    } finally {
      await model.dispose();
    }
    const top = topFeaturesPerToken(run.features, sae.d_sae, 3);
    const [named, labelled] = [top[0][0].feature, top[1][0].feature];
    const builder = new FeatureStatsBuilder(sae.d_sae);
    const stats = builder.finish({ hook_name: sae.hookName, d_in: sae.d_in, architecture: "topk" });
    (stats.features[named] as { concept?: unknown }).concept = { label: "name", f1: 0.95, precision: 1, recall: 0.9 };
    writeFeatureStats(saeDir, stats);
    const labelsFile = path.join(scratchDir("cli-labels"), "feature-labels.json");
    writeFeatureLabels(labelsFile, setFeatureLabel(emptyFeatureLabels(), saeLabelKey(process.cwd(), saeDir), labelled, "my feature"));

    let out = "";
    const io = { out: (t: string) => void (out += t), readStdin: () => text };
    const code = await featuresCommand.run({ values: { sae: saeDir, top: "3", labels: labelsFile, json: true }, positionals: ["-"], modelFolder: TINY_GPT2, io });
    assert.equal(code, 0);
    const result = JSON.parse(out) as FeaturesResult;
    assert.equal(result.tokens.length, run.tokens.length);
    result.tokens.forEach((t, i) => {
      assert.deepEqual(
        t.features.map((f) => f.feature),
        top[i].map((f) => f.feature),
      );
      assert.equal(text.slice(t.start, t.end), t.text);
    });
    assert.equal(result.tokens[0].features[0].name, `#${named} ~name (F1 0.95)`);
    assert.equal(result.tokens[1].features[0].name, `#${labelled} my feature`);
    assert.equal(result.tokens[1].features[0].label, "my feature");

    out = "";
    await featuresCommand.run({ values: { sae: saeDir, top: "2", labels: labelsFile }, positionals: ["-"], modelFolder: TINY_GPT2, io });
    assert.match(out, new RegExp(`#${labelled} my feature`));
    assert.match(out, /SAE at blocks\.0\.hook_resid_post \(d_sae 48\)/);
  });
});

describe("loupe features --compute-stats", () => {
  it("reads a JSONL corpus and refuses bad lines with file and line", () => {
    const corpus = parseCorpusJsonl('{"text":"Mia ran"}\n\n{"text":"Leo sat","spans":[{"start":0,"end":3,"label":"name"}]}\n', "c.jsonl");
    assert.deepEqual(corpus, [{ text: "Mia ran" }, { text: "Leo sat", spans: [{ start: 0, end: 3, label: "name" }] }]);
    throwsLoupe(() => parseCorpusJsonl('{"text":"a"}\n{nope', "c.jsonl"), "bad-file", /c\.jsonl:2: not valid JSON/);
    throwsLoupe(() => parseCorpusJsonl('{"txt":"a"}', "c.jsonl"), "bad-file", /c\.jsonl:1: needs a "text"/);
    throwsLoupe(() => parseCorpusJsonl('{"text":"ab","spans":[{"start":1,"end":5,"label":"x"}]}', "c.jsonl"), "bad-file", /spans\[0\]/);
    throwsLoupe(() => parseCorpusJsonl("\n", "c.jsonl"), "empty-input", /no texts/);
  });

  it("writes feature-stats.json next to the SAE, with concepts from the spans", async () => {
    const saeDir = scratchDir("cli-stats");
    for (const f of fs.readdirSync(TOPK_SAE)) fs.copyFileSync(path.join(TOPK_SAE, f), path.join(saeDir, f));
    const data = path.join(scratchDir("cli-corpus"), "corpus.jsonl");
    const texts = ["Mia saw a cat.", "Leo saw a dog.", "Then Mia ran."];
    fs.writeFileSync(data, texts.map((text) => JSON.stringify({ text, spans: [...text.matchAll(/Mia|Leo/g)].map((m) => ({ start: m.index, end: m.index! + 3, label: "name" })) })).join("\n"));
    let out = "";
    const io = { out: (t: string) => void (out += t), readStdin: () => "" };
    assert.equal(await featuresCommand.run({ values: { sae: saeDir, "compute-stats": data }, positionals: [], modelFolder: TINY_GPT2, io }), 0);
    const stats = readFeatureStats(saeDir, loadSae(saeDir))!;
    assert.equal(stats.corpus.texts, 3);
    assert.deepEqual(
      stats.concepts.map((c) => [c.label, c.tokens]),
      [["name", 3]],
    );
    assert.match(out, /Wrote .*feature-stats\.json: 3 texts/);
    assert.match(out, /name\s+3\s+#\d+/);
  });
});

describe("feature dashboard and lens views", () => {
  const builder = new FeatureStatsBuilder(2, { contextBefore: 2, contextAfter: 1 });
  builder.add("Mia saw a red cat", [[0, 3], [3, 7], [8, 9], [9, 13], [13, 17]], Float32Array.from([2, 0, 0, 1, 0, 0, 0, 0, 0, 1]), [{ start: 0, end: 3, label: "name" }]);
  const stats = builder.finish(META);

  it("builds the dashboard state from the stats, with highlighted context pieces", () => {
    const state = featureDashboardState({ feature: 0, sae: "saes/x", hook_name: META.hook_name, d_sae: 2, label: "names", stats });
    assert.equal(state.hasStats, true);
    assert.equal(state.label, "names");
    assert.equal(state.density, 1 / 5);
    assert.equal(state.corpusTokens, 5);
    assert.equal(state.histogram!.length, stats.histogram.bins);
    assert.equal(state.histogram![0].from, stats.histogram.log10Min);
    assert.ok(Math.abs(state.histogram![state.histogram!.length - 1].to - stats.histogram.log10Max) < 1e-9);
    assert.deepEqual(state.concept, { label: "name", f1: 1, precision: 1, recall: 1 });
    // Feature 1 peaks at " saw" and " cat": the best context is the first (ties keep the earlier token).
    const c = stats.features[1].topContexts[0];
    assert.deepEqual(contextPieces(c), [
      { text: "Mia", value: 0, focus: false },
      { text: " saw", value: 1, focus: true },
      { text: " ", value: 0, focus: false },
      { text: "a", value: 0, focus: false },
    ]);
    const none = featureDashboardState({ feature: 1, sae: "saes/x", hook_name: META.hook_name, d_sae: 2 });
    assert.equal(none.hasStats, false);
    assert.match(none.note!, /loupe features --compute-stats CORPUS\.jsonl --sae saes\/x/);
  });

  it("accepts only well-formed dashboard requests for this SAE's features", () => {
    const state = { d_sae: 4, feature: 2 };
    assert.deepEqual(parseFeatureDashboardRequest({ type: "ready" }, state), { type: "ready" });
    assert.equal(parseFeatureDashboardRequest({ type: "ready", extra: 1 }, state), null);
    assert.deepEqual(parseFeatureDashboardRequest({ type: "open", feature: 3 }, state), { type: "open", feature: 3 });
    assert.equal(parseFeatureDashboardRequest({ type: "open", feature: 4 }, state), null);
    assert.equal(parseFeatureDashboardRequest({ type: "open", feature: 1.5 }, state), null);
    assert.deepEqual(parseFeatureDashboardRequest({ type: "label", feature: 2, label: "  two\n words " }, state), { type: "label", feature: 2, label: "two words" });
    assert.equal(parseFeatureDashboardRequest({ type: "label", feature: 1, label: "stale page" }, state), null);
    assert.equal(parseFeatureDashboardRequest({ type: "label", feature: 2, label: 7 }, state), null);
    const long = parseFeatureDashboardRequest({ type: "label", feature: 2, label: "x".repeat(500) }, state);
    assert.equal(long?.type === "label" && long.label.length, MAX_LABEL_LENGTH);
    assert.equal(parseFeatureDashboardRequest("ready", state), null);
    assert.equal(parseFeatureDashboardRequest({ type: "run", command: "rm" }, state), null);
  });

  it("writes hovers with escaped labels and explore links, and colour levels", () => {
    const result = {
      saeFolder: "/w/sae",
      hook_name: "blocks.0.hook_resid_post",
      d_sae: 8,
      hasStats: true,
      maxByFeature: { 3: 4, 5: 1 },
      tokens: [
        { index: 0, start: 0, end: 3, text: "Mia", features: [{ feature: 3, value: 4, density: 0.05, concept: { label: "name", f1: 0.9, precision: 1, recall: 0.8 } }, { feature: 5, value: 1 }] },
        { index: 1, start: 3, end: 7, text: " saw", features: [{ feature: 5, value: 1 }] },
        { index: 2, start: 7, end: 8, text: ".", features: [] },
      ],
    };
    const hover = featureHoverMarkdown(result, 0, (f) => (f === 5 ? "a *bold* | label" : undefined));
    assert.ok(hover.includes(`[#3](${exploreFeatureLink("/w/sae", 3)})`));
    assert.ok(hover.includes("~name (F1 0.90)"));
    assert.ok(hover.includes("| 5.0% |"));
    const thresholded = { ...result, tokens: [{ ...result.tokens[0], features: [{ ...result.tokens[0].features[0], concept: { label: "name", f1: 0.9, precision: 1, recall: 0.8, threshold: 1.585 } }] }] };
    assert.ok(featureHoverMarkdown(thresholded, 0, () => undefined).includes("~name (F1 0.90 above 1.6)"));
    assert.ok(hover.includes("a \\*bold\\* \\| label"), hover);
    assert.deepEqual(JSON.parse(decodeURIComponent(exploreFeatureLink("/w/sae", 3).split("?")[1])), [{ saeFolder: "/w/sae", feature: 3 }]);
    assert.match(featureHoverMarkdown(result, 2, () => undefined), /No feature fires here/);
    assert.deepEqual(featureTokenLevels(result), [
      { index: 0, value: 4, level: LEVELS },
      { index: 1, value: 1, level: Math.ceil(LEVELS / 4) },
    ]);
    assert.deepEqual(featureTokenLevels(result, 5), [
      { index: 0, value: 1, level: LEVELS },
      { index: 1, value: 1, level: LEVELS },
    ]);
    assert.deepEqual(featureTokenLevels(result, 7), []);
    // With the focused feature's values at every token, tokens outside its top lists colour too.
    const focused = { ...result, focus: { feature: 7, values: [0, 0.5, 2] } };
    assert.deepEqual(featureTokenLevels(focused, 7), [
      { index: 1, value: 0.5, level: Math.ceil(LEVELS / 4) },
      { index: 2, value: 2, level: LEVELS },
    ]);
    assert.deepEqual(featureTokenLevels(focused, 5), featureTokenLevels(result, 5), "values for another feature are not used");
  });

  it("lists features for the pickers: labelled, then concept matches by F1, then by density, dead last", () => {
    const summary = (index: number, fired: number, density: number, concept?: { label: string; f1: number }) => ({
      index,
      fired,
      density,
      maxActivation: 2,
      meanActivation: 1,
      histogram: [],
      topContexts: [],
      ...(concept ? { concept: { ...concept, precision: 1, recall: 1 } } : {}),
      ...(index === 2 ? { logits: { promoted: [{ id: 1, token: " red", value: 1 }], suppressed: [] } } : {}),
    });
    const stats = {
      features: [summary(0, 0, 0), summary(1, 5, 0.01), summary(2, 9, 0.02, { label: "colour", f1: 0.6 }), summary(3, 9, 0.05), summary(4, 9, 0.03, { label: "name", f1: 0.9 }), summary(5, 9, 0.04, { label: "quote", f1: 0.2 })],
    } as unknown as FeatureStats;
    const items = featurePickItems(6, (f) => (f === 1 ? "my feature" : undefined), stats);
    assert.deepEqual(
      items.map((i) => i.feature),
      [1, 4, 2, 3, 5, 0],
    );
    assert.equal(items[0].label, "#1 my feature");
    assert.equal(items[1].label, "#4 ~name (F1 0.90)");
    assert.equal(items[2].detail, 'promotes " red"');
    assert.equal(items[5].description, "never fired on the stats corpus");
    assert.deepEqual(
      featurePickItems(3, () => undefined).map((i) => i.label),
      ["#0", "#1", "#2"],
    );
  });

  it("resolves a feature named by index, user label or concept", () => {
    const stats = { concepts: [{ label: "colour", features: [{ feature: 9 }, { feature: 3 }] }] };
    assert.equal(resolveFeature("#12", 16), 12);
    assert.equal(resolveFeature(" 0 ", 16), 0);
    assert.equal(resolveFeature("First Names", 16, { "5": "first names" }, stats), 5);
    assert.equal(resolveFeature("colour", 16, {}, stats), 9);
    throwsLoupe(() => resolveFeature("16", 16), "bad-argument", /outside 0\.\.15/);
    throwsLoupe(() => resolveFeature("animal", 16, { "5": "first names" }, stats), "bad-argument", /No feature is called "animal".*colour, first names/);
  });

  it("accepts a steer request only for the feature on show", () => {
    const state = { d_sae: 4, feature: 2 };
    assert.deepEqual(parseFeatureDashboardRequest({ type: "steer", feature: 2 }, state), { type: "steer", feature: 2 });
    assert.equal(parseFeatureDashboardRequest({ type: "steer", feature: 3 }, state), null);
    assert.equal(parseFeatureDashboardRequest({ type: "steer", feature: 2, value: 9 }, state), null);
  });

  it("reads each token's top features in the worker's shape, annotated from the stats", async () => {
    const saeDir = scratchDir("token-features");
    for (const f of fs.readdirSync(TOPK_SAE)) fs.copyFileSync(path.join(TOPK_SAE, f), path.join(saeDir, f));
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null });
    try {
      const store = new SaeStore();
      const text = "When Mia and Leo went to the shop";
      const plain = await tokenFeatures(model, store.get(saeDir), text, { topK: 2 });
      assert.equal(plain.hasStats, false);
      const run = await saeFeatureActivations(model, loadSae(saeDir), text);
      const top = topFeaturesPerToken(run.features, 48, 2);
      plain.tokens.forEach((t, i) => {
        assert.deepEqual(
          t.features.map((f) => [f.feature, f.value]),
          top[i].map((f) => [f.feature, f.value]),
        );
        assert.equal(text.slice(t.start, t.end), t.text);
      });
      const focused = await tokenFeatures(model, store.get(saeDir), text, { topK: 2, focus: 7 });
      assert.deepEqual(focused.focus, { feature: 7, values: plain.tokens.map((_, t) => run.features[t * 48 + 7]) });
      await assert.rejects(tokenFeatures(model, store.get(saeDir), text, { focus: 48 }), /outside 0\.\.47/);
      // Stats written later are picked up; densities come from them.
      const stats = await computeFeatureStats(model, loadSae(saeDir), [{ text }], { logitTokens: 0 });
      writeFeatureStats(saeDir, stats);
      const annotated = await tokenFeatures(model, store.get(saeDir), text, { topK: 2 });
      assert.equal(annotated.hasStats, true);
      const f = annotated.tokens[0].features[0];
      assert.equal(f.density, stats.features[f.feature].density);
      await assert.rejects(tokenFeatures(model, store.get(saeDir), "   "), /Select some text/);
    } finally {
      await model.dispose();
    }
  });
});

describe("worker method features", () => {
  it("loads the SAE by folder and answers with each token's features", async () => {
    const state = new ModelState(loadHookedModel);
    const handlers = bindRequests(new ModelSession(state));
    const context = { signal: new AbortController().signal, progress: () => undefined };
    try {
      await handlers.load!({ folder: TINY_GPT2, cacheDir: null }, context);
      const result = await handlers.features!({ text: "Mia and Leo", saeFolder: TOPK_SAE, topK: 3 }, context);
      assert.equal(result.hook_name, "blocks.0.hook_resid_post");
      assert.equal(result.saeFolder, path.resolve(TOPK_SAE));
      assert.ok(result.tokens.length > 0 && result.tokens.every((t) => t.features.length <= 3));
      await assert.rejects(handlers.features!({ text: "x", saeFolder: path.join(FIXTURES, "no-such-sae"), topK: 3 }, context), /does not exist/);
    } finally {
      await state.dispose();
    }
  });
});

describe("SAE store: one cache of SAEs and their feature-stats.json", () => {
  /** A copy of the top-k SAE and a writer of stats for it over `tokens` corpus tokens (or for another hook). */
  function saeWithStats(name: string) {
    const saeDir = scratchDir(name);
    for (const f of fs.readdirSync(TOPK_SAE)) fs.copyFileSync(path.join(TOPK_SAE, f), path.join(saeDir, f));
    const sae = loadSae(saeDir);
    const write = (tokens: number, hook_name = sae.hookName) => {
      const builder = new FeatureStatsBuilder(sae.d_sae);
      const t = Array.from({ length: tokens }, (_, i) => [i, i + 1] as [number, number]);
      builder.add("x".repeat(tokens + 1), t, new Float32Array(tokens * sae.d_sae).fill(1));
      writeFeatureStats(saeDir, builder.finish({ hook_name, d_in: sae.d_in, architecture: sae.cfg.architecture }));
    };
    return { saeDir, write };
  }

  it("parses the stats once per version of the file, checked against the SAE, and keeps the SAE loaded meanwhile", () => {
    const { saeDir, write } = saeWithStats("sae-store");
    const store = new SaeStore();
    const none = store.get(saeDir);
    assert.equal(none.stats, undefined, "no file yet");
    assert.equal(none.statsFile, path.join(saeDir, FEATURE_STATS_FILENAME));
    write(3);
    const first = store.get(saeDir);
    assert.equal(first.stats?.corpus.tokens, 3);
    assert.equal(first.sae, none.sae, "the SAE is not reloaded when only its stats change");
    assert.equal(store.get(saeDir).stats, first.stats, "the same parse while the file is unchanged");
    write(4);
    assert.equal(store.get(saeDir).stats?.corpus.tokens, 4);
  });

  it("refuses stats made for another SAE, with the file named, until the file changes", () => {
    const { saeDir, write } = saeWithStats("sae-store-other");
    const store = new SaeStore();
    write(3, "blocks.1.hook_resid_post");
    const refused = (e: unknown) => e instanceof LoupeError && e.code === "bad-file" && e.message.includes(path.join(saeDir, FEATURE_STATS_FILENAME)) && /blocks\.1\.hook_resid_post/.test(e.message);
    assert.throws(() => store.get(saeDir), refused);
    assert.throws(() => store.get(saeDir), refused, "the refusal is kept, not forgotten");
    write(3);
    assert.equal(store.get(saeDir).stats?.sae.hook_name, "blocks.0.hook_resid_post");
  });
});

describe("feature labels", () => {
  const key = "saes/blocks.0";

  it("sets, removes, merges and round-trips labels through the file", () => {
    let labels = setFeatureLabel(emptyFeatureLabels(), key, 12, "  first   names ");
    labels = setFeatureLabel(labels, key, 3, "colours");
    labels = setFeatureLabel(labels, "other", 1, "x");
    assert.equal(featureLabel(labels, key, 12), "first names");
    const text = serializeFeatureLabels(labels);
    // Stable order: SAE keys sorted, features numerically.
    assert.ok(text.indexOf('"other"') < text.indexOf('"saes/blocks.0"'));
    assert.ok(text.indexOf('"3"') < text.indexOf('"12"'));
    assert.deepEqual(parseFeatureLabels(text), labels);

    const removed = setFeatureLabel(labels, "other", 1, " ");
    assert.equal(featureLabel(removed, "other", 1), undefined);
    assert.deepEqual(Object.keys(removed.saes), [key]);
    assert.equal(featureLabel(labels, "other", 1), "x", "setFeatureLabel must not change its input");

    const merged = mergeFeatureLabels(labels, setFeatureLabel(emptyFeatureLabels(), key, 12, "names"));
    assert.equal(featureLabel(merged, key, 12), "names");
    assert.equal(featureLabel(merged, key, 3), "colours");
    assert.equal(featureLabel(merged, "other", 1), "x");

    const dir = scratchDir("labels");
    const file = path.join(dir, ".loupe", "feature-labels.json");
    assert.deepEqual(readFeatureLabels(file), emptyFeatureLabels());
    writeFeatureLabels(file, merged);
    assert.deepEqual(readFeatureLabels(file), merged);
    assert.equal(saeLabelKey(dir, path.join(dir, "models", "sae")), "models/sae");
  });

  it("refuses broken label files with the file named", () => {
    const file = "ws/.loupe/feature-labels.json";
    throwsLoupe(() => parseFeatureLabels("{", file), "bad-file", /ws\/\.loupe\/feature-labels\.json: not valid JSON/);
    throwsLoupe(() => parseFeatureLabels('{"version":2,"saes":{}}', file), "bad-file", /version 2/);
    throwsLoupe(() => parseFeatureLabels('{"version":1,"saes":[]}', file), "bad-file", /"saes" must be an object/);
    throwsLoupe(() => parseFeatureLabels('{"version":1,"saes":{"a":{"x1":"n"}}}', file), "bad-file", /"x1", which is not a feature index/);
    throwsLoupe(() => parseFeatureLabels('{"version":1,"saes":{"a":{"1":5}}}', file), "bad-file", /must be a string label/);
    throwsLoupe(() => setFeatureLabel(emptyFeatureLabels(), key, -1, "x"), "bad-argument", /non-negative integer/);
  });

  it("keeps an SAE key such as __proto__ or toString as a plain key", () => {
    const labels = parseFeatureLabels('{"version":1,"saes":{"__proto__":{"3":"odd folder name"}}}');
    assert.equal(featureLabel(labels, "__proto__", 3), "odd folder name");
    assert.equal(featureLabel(labels, "toString", 3), undefined);
    assert.deepEqual(JSON.parse(serializeFeatureLabels(labels)), { version: 1, saes: { ["__proto__"]: { 3: "odd folder name" } } });
    const more = setFeatureLabel(labels, "constructor", 1, "x");
    assert.equal(featureLabel(more, "constructor", 1), "x");
    assert.equal(featureLabel(mergeFeatureLabels(emptyFeatureLabels(), more), "__proto__", 3), "odd folder name");
  });

  it("names a feature by the user's label, else a good concept match", () => {
    assert.equal(featureDisplayName(4, "names", { concept: { label: "name", f1: 0.9, precision: 1, recall: 0.8 } }), "#4 names");
    assert.equal(featureDisplayName(4, undefined, { concept: { label: "name", f1: 0.9, precision: 1, recall: 0.8 } }), "#4 ~name (F1 0.90)");
    assert.equal(featureDisplayName(4, undefined, { concept: { label: "name", f1: 0.2, precision: 1, recall: 0.1 } }), "#4");
  });
});
