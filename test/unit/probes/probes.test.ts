import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import {
  applyProbe,
  balancedAccuracy,
  controlTask,
  encodeLabels,
  extractFeatures,
  fitLogistic,
  fitStandardised,
  groupedFolds,
  labelLines,
  layerSweepHooks,
  loadProbe,
  minimizeLbfgs,
  parseProbeDataset,
  predictProba,
  predictRows,
  type ProbeDataset,
  probeFileName,
  probeFolder,
  readProbeDataset,
  saveProbe,
  scoreRows,
  stratifiedFolds,
  tokenActivations,
  tokenLabels,
  toJsonl,
  toProbeFile,
  trainProbe,
} from "../../../src/core/probes";
import { seededRandom } from "../../../src/core/tensor/random";
import { scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** n rows of d standard-normal features; class c shifts feature c by `shift`. */
function blobs(n: number, d: number, K: number, shift: number, seed = 1): { X: Float32Array; labels: string[]; y: Int32Array } {
  const random = seededRandom(seed);
  const normal = gaussian(random);
  const X = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % K;
    for (let j = 0; j < d; j++) X[i * d + j] = normal() + (j === y[i] ? shift : 0);
  }
  return { X, y, labels: Array.from(y, (c) => `class${c}`) };
}

function isLoupeError(code: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof LoupeError, `expected a LoupeError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

describe("probes: logistic regression", () => {
  it("L-BFGS finds the minimum of an ill-conditioned quadratic", () => {
    const a = [1, 10, 100, 1000];
    const c = [3, -2, 0.5, 7];
    const result = minimizeLbfgs(
      (x, g) => {
        let f = 0;
        for (let i = 0; i < 4; i++) {
          f += a[i] * (x[i] - c[i]) ** 2;
          g[i] = 2 * a[i] * (x[i] - c[i]);
        }
        return f;
      },
      new Float64Array(4),
      { gtol: 1e-8, maxIter: 500 },
    );
    assert.ok(result.converged);
    result.x.forEach((v, i) => assert.ok(Math.abs(v - c[i]) < 1e-6, `x[${i}] = ${v}, want ${c[i]}`));
  });

  it("with uninformative features, gives the class frequencies (unweighted) or even odds (balanced), as sklearn", () => {
    const n = 100;
    const X = new Float64Array(n * 3); // all zero: only the intercept can fit
    const y = Int32Array.from({ length: n }, (_, i) => (i < 80 ? 0 : 1));
    const plain = fitLogistic(X, n, 3, y, 2, { tol: 1e-10 });
    assert.equal(plain.coef.length, 3, "two classes use one weight vector");
    assert.ok(Math.abs(plain.intercept[0] - Math.log(20 / 80)) < 1e-4, `intercept ${plain.intercept[0]}`);
    const balanced = fitLogistic(X, n, 3, y, 2, { classWeight: "balanced", tol: 1e-10 });
    assert.ok(Math.abs(balanced.intercept[0]) < 1e-4);
    assert.deepEqual(Array.from(balanced.classWeights), [100 / (2 * 80), 100 / (2 * 20)]);
    const y3 = Int32Array.from({ length: n }, (_, i) => (i < 50 ? 0 : i < 80 ? 1 : 2));
    const multi = fitLogistic(X, n, 3, y3, 3, { tol: 1e-10 });
    assert.equal(multi.coef.length, 9, "three classes use one row each");
    const p = predictProba(multi, X, 1);
    [0.5, 0.3, 0.2].forEach((want, k) => assert.ok(Math.abs(p[k] - want) < 1e-4, `p[${k}] = ${p[k]}`));
  });

  it("L2 shrinks the weights as C falls", () => {
    const { X, y } = blobs(400, 5, 2, 1.5);
    const norm = (C: number) => Math.hypot(...fitStandardised(X, 400, 5, y, 2, { C }).fit.coef);
    assert.ok(norm(0.001) < norm(0.1) && norm(0.1) < norm(10), `${norm(0.001)} ${norm(0.1)} ${norm(10)}`);
  });

  it("reaches ~100% cross-validated accuracy on linearly separable data", () => {
    const { X, labels } = blobs(600, 32, 2, 8);
    const probe = trainProbe(X, 600, 32, labels, { folds: 5, seed: 3 });
    assert.ok(probe.metrics.cv && probe.metrics.cv.accuracy >= 0.99, `cv ${probe.metrics.cv?.accuracy}`);
    assert.equal(probe.metrics.cv?.foldAccuracy.length, 5);
    assert.ok(probe.metrics.converged);
    assert.deepEqual(probe.classes, ["class0", "class1"]);
  });

  it("stays near chance on random labels", () => {
    const { X } = blobs(600, 32, 2, 0);
    const random = seededRandom(9);
    const labels = Array.from({ length: 600 }, () => (random() < 0.5 ? "a" : "b"));
    const probe = trainProbe(X, 600, 32, labels, { folds: 5 });
    assert.ok(probe.metrics.cv && Math.abs(probe.metrics.cv.accuracy - 0.5) < 0.08, `cv ${probe.metrics.cv?.accuracy}`);
    assert.ok(probe.metrics.trainAccuracy > probe.metrics.cv.accuracy, "it can still fit its training rows");
  });

  it("separates four classes with a multinomial probe", () => {
    const { X, labels, y } = blobs(800, 16, 4, 4);
    const probe = trainProbe(X, 800, 16, labels, { folds: 4 });
    assert.equal(probe.fit.intercept.length, 4);
    assert.ok(probe.metrics.cv && probe.metrics.cv.accuracy > 0.95, `cv ${probe.metrics.cv?.accuracy}`);
    const pred = predictRows(probe, X, 800);
    assert.ok(balancedAccuracy(y, pred, 4) > 0.95);
  });

  it("class weights move the decision on unbalanced data, and the imbalance is reported", () => {
    // 1-D: 950 of class "common" around 0, 50 of "rare" around 1.5. Unweighted, the boundary sits
    // near x = 2.7 (the prior dominates); balanced, near x = 0.75.
    const normal = gaussian(seededRandom(4));
    const n = 1000;
    const X = Float32Array.from({ length: n }, (_, i) => normal() + (i < 50 ? 1.5 : 0));
    const labels = Array.from({ length: n }, (_, i) => (i < 50 ? "rare" : "common"));
    const { y } = encodeLabels(labels);
    const plain = fitStandardised(X, n, 1, y, 2, { classWeight: "none" });
    const balanced = fitStandardised(X, n, 1, y, 2, { classWeight: "balanced" });
    const rare = 1; // sorted classes: common, rare
    const at = (p: typeof plain, x: number) => predictRows(p, Float32Array.of(x), 1)[0];
    assert.equal(at(plain, 1.5), 1 - rare);
    assert.equal(at(balanced, 1.5), rare);
    const recall = (p: typeof plain) => Array.from(predictRows(p, X, n)).filter((c, i) => i < 50 && c === rare).length / 50;
    assert.ok(recall(plain) < 0.3 && recall(balanced) > 0.6, `recall ${recall(plain)} vs ${recall(balanced)}`);

    const trained = trainProbe(X, n, 1, labels, { folds: 5 });
    assert.deepEqual(trained.metrics.classCounts, { common: 950, rare: 50 });
    assert.ok(trained.metrics.classWeights.rare > trained.metrics.classWeights.common * 10);
    assert.equal(trained.metrics.majorityBaseline, 0.95);
    assert.ok(trained.metrics.warnings.some((w) => /unbalanced \(common: 950, rare: 50\); "balanced" class weights/.test(w)));
  });

  it("refuses data with one class only", () => {
    const X = new Float32Array(20);
    const labels = new Array<string>(10).fill("yes");
    assert.throws(() => trainProbe(X, 10, 2, labels, { source: "votes.jsonl" }), isLoupeError("bad-argument", /votes\.jsonl has only one class \("yes", 10 examples\)/));
    assert.throws(() => fitLogistic(new Float64Array(20), 10, 2, new Int32Array(10), 2), isLoupeError("bad-argument", /only one/));
  });
});

describe("probes: cross-validation folds and control tasks", () => {
  it("stratified folds keep each class's share, and a seed fixes them", () => {
    const y = Int32Array.from({ length: 103 }, (_, i) => (i < 13 ? 1 : 0));
    const folds = stratifiedFolds(y, 2, 5, 7);
    for (let f = 0; f < 5; f++) {
      const rows = [...folds.keys()].filter((i) => folds[i] === f);
      const rare = rows.filter((i) => y[i] === 1).length;
      assert.ok(rare === 2 || rare === 3, `fold ${f} has ${rare} of 13`);
      assert.ok(rows.length === 20 || rows.length === 21);
    }
    assert.deepEqual(stratifiedFolds(y, 2, 5, 7), folds);
    assert.notDeepEqual(stratifiedFolds(y, 2, 5, 8), folds);
  });

  it("grouped folds never split a text", () => {
    const groups = Int32Array.from({ length: 500 }, (_, i) => Math.floor(i / 7));
    const folds = groupedFolds(groups, 5, 1);
    const foldOf = new Map<number, number>();
    groups.forEach((g, i) => {
      assert.equal(foldOf.get(g) ?? folds[i], folds[i], `group ${g} is split`);
      foldOf.set(g, folds[i]);
    });
    const sizes = [0, 1, 2, 3, 4].map((f) => folds.filter((x) => x === f).length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 7, `sizes ${sizes}`);
    assert.throws(() => groupedFolds(Int32Array.of(1, 1, 2), 5), isLoupeError("bad-argument", /needs at least 5 texts; the data has 2/));
  });

  it("a control task gives each type one label, drawn from the label distribution", () => {
    const y = Int32Array.from({ length: 1000 }, (_, i) => (i % 5 === 0 ? 1 : 0)); // 20% class 1
    const task = controlTask(y, 2, 11);
    const types = Int32Array.from({ length: 4000 }, (_, i) => i % 2000);
    const labels = task.labels(types);
    for (let i = 0; i < 2000; i++) assert.equal(labels[i], labels[i + 2000], "one label per type");
    const share = labels.slice(0, 2000).reduce((a, b) => a + b, 0) / 2000;
    assert.ok(Math.abs(share - 0.2) < 0.03, `share of class 1: ${share}`);
    assert.equal(task.label(1234), controlTask(y, 2, 11).label(1234), "a pure function of seed and type");
    assert.notDeepEqual(controlTask(y, 2, 12).labels(types), labels);
  });

  it("selectivity: the control task is near chance when features do not encode the type, and is learnt when they do", () => {
    const n = 1200;
    const d = 24;
    const normal = gaussian(seededRandom(5));
    const types = Int32Array.from({ length: n }, (_, i) => i % 40);
    const labels = Array.from({ length: n }, (_, i) => (i % 2 ? "on" : "off"));
    // Features: the task along dimension 0, noise elsewhere.
    const X = Float32Array.from({ length: n * d }, (_, k) => normal() + (k % d === 0 && Math.floor(k / d) % 2 ? 6 : 0));
    const probe = trainProbe(X, n, d, labels, { folds: 5, types });
    const m = probe.metrics;
    assert.ok(m.cv && m.control && m.selectivity !== undefined);
    assert.ok(m.cv.accuracy > 0.99);
    assert.ok(Math.abs(m.control.accuracy - 0.5) < 0.1, `control ${m.control.accuracy}`);
    assert.ok(m.selectivity > 0.35);
    // Now the features also spell out the type (one-hot): a probe can memorise type -> label.
    const d2 = d + 40;
    const X2 = new Float32Array(n * d2);
    for (let i = 0; i < n; i++) {
      X2.set(X.subarray(i * d, (i + 1) * d), i * d2);
      X2[i * d2 + d + types[i]] = 3;
    }
    const memorising = trainProbe(X2, n, d2, labels, { folds: 5, types });
    assert.ok(memorising.metrics.control && memorising.metrics.control.accuracy > 0.9, `control ${memorising.metrics.control?.accuracy}`);
  });
});

describe("probes: datasets", () => {
  const dir = scratchDir("probe-data");

  it("reads sequence-level and token-level JSONL, skipping blank lines and extra fields", () => {
    const seq = parseProbeDataset('{"text": "Mia was happy.", "label": "positive"}\n\n{"text": "Leo was sad.", "label": 0, "note": "x"}\n', "s.jsonl");
    assert.equal(seq.level, "sequence");
    assert.deepEqual(seq.examples, [
      { text: "Mia was happy.", label: "positive", line: 1 },
      { text: "Leo was sad.", label: "0", line: 3 },
    ]);
    const tok = parseProbeDataset('{"text": "Mia saw a red fox.", "spans": [{"start": 10, "end": 13, "label": "colour"}], "family": "stories"}', "t.jsonl");
    assert.equal(tok.level, "token");
    assert.deepEqual(tok.level === "token" && tok.examples[0].spans, [{ start: 10, end: 13, label: "colour" }]);
    const file = path.join(dir, "round.jsonl");
    fs.writeFileSync(file, toJsonl([{ text: "a b", label: "x" }, { text: "c", label: "y" }]));
    assert.deepEqual(readProbeDataset(file).examples.map((e) => e.text), ["a b", "c"]);
  });

  it("names the file and line of a bad line", () => {
    const good = '{"text": "ok", "label": "a"}';
    const cases: [string, RegExp][] = [
      [`${good}\n${good}\n{"text": "oops", "label": }`, /d\.jsonl:3: not valid JSON/],
      [`${good}\n{"label": "a"}`, /d\.jsonl:2: "text" must be a string/],
      [`${good}\n{"text": "x"}`, /d\.jsonl:2: missing "label" \(sequence level\) or "spans"/],
      [`${good}\n{"text": "x", "label": ""}`, /d\.jsonl:2: "label" must be a non-empty string/],
      [`${good}\n\n{"text": "abc", "spans": [{"start": 1, "end": 2, "label": "q"}]}`, /d\.jsonl:3: this line is token level .* line 1 is sequence level/],
      ['{"text": "abc", "spans": [{"start": 2, "end": 9, "label": "q"}]}', /d\.jsonl:1: span 0 \("q"\) \[2, 9\) is not a non-empty range inside the text \(length 3\)/],
      ['{"text": "abc", "spans": [{"start": 0.5, "end": 2, "label": "q"}]}', /d\.jsonl:1: span 0 \("q"\) needs integer/],
      ["[1, 2]", /d\.jsonl:1: expected a JSON object/],
    ];
    for (const [content, pattern] of cases) assert.throws(() => parseProbeDataset(content, "d.jsonl"), isLoupeError("bad-file", pattern));
    assert.throws(() => parseProbeDataset("\n  \n", "d.jsonl"), isLoupeError("empty-input", /d\.jsonl has no examples/));
    assert.throws(() => readProbeDataset(path.join(dir, "missing.jsonl")), isLoupeError("missing-file", /missing\.jsonl/));
  });

  it("labels a token by the span its UTF-16 range overlaps, the innermost when spans nest", () => {
    // "Mia said "I like red" ." as GPT-2 would cut it: Mia| said| "|I| like| red|"
    const offsets: [number, number][] = [[0, 3], [3, 8], [8, 10], [10, 11], [11, 16], [16, 20], [20, 21]];
    const spans = [
      { start: 0, end: 3, label: "name" },
      { start: 10, end: 20, label: "quote" },
      { start: 17, end: 20, label: "colour" },
    ];
    assert.deepEqual(tokenLabels(offsets, spans), ["name", "none", "none", "quote", "quote", "colour", "none"]);
    assert.deepEqual(tokenLabels(offsets, spans, { concept: "quote", outside: "O" }), ["O", "O", "O", "quote", "quote", "quote", "O"]);
  });

  it("turns labelled lines of a document into examples", () => {
    const doc = "Mia was happy.\n\nLeo was sad.\nTom had two cups.";
    assert.deepEqual(labelLines(doc, new Map([[2, "negative"], [0, "positive"], [1, "x"]])), [
      { text: "Mia was happy.", label: "positive" },
      { text: "Leo was sad.", label: "negative" },
    ]);
    assert.throws(() => labelLines(doc, new Map([[9, "x"]])), /Line 10 is past the end/);
  });
});

describe("probes on the tiny model", function () {
  this.timeout(60_000);
  let model: HookedModel;
  const dir = scratchDir("probes");
  const texts = ["When Mia and Leo went to the park", "Leo saw a cat", "Mia gave the ball to Leo", "The park was green", "A cat and a dog", "Leo went home"];
  const sequence: ProbeDataset = { level: "sequence", file: "s.jsonl", examples: texts.map((text, i) => ({ text, label: /Leo/.test(text) ? "leo" : "other", line: i + 1 })) };
  const tokens: ProbeDataset = {
    level: "token",
    file: "t.jsonl",
    examples: texts.map((text, i) => ({ text, spans: [...text.matchAll(/Mia|Leo/g)].map((m) => ({ start: m.index ?? 0, end: (m.index ?? 0) + 3, label: "name" })), line: i + 1 })),
  };

  before(async () => {
    model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
  });
  after(async () => model?.dispose());

  it("extracts one row per token, the same in a padded batch as one text at a time", async () => {
    const hooks = ["blocks.1.hook_resid_post", "blocks.0.attn.hook_z", "blocks.0.mlp.hook_post"];
    const features = await extractFeatures(model, tokens, { hooks, batchSize: 4 });
    const lengths = texts.map((t) => model.toTokens(t).length);
    assert.equal(features.rows, lengths.reduce((a, b) => a + b, 0));
    assert.equal(features.dims.get("blocks.1.hook_resid_post"), 32);
    assert.equal(features.dims.get("blocks.0.attn.hook_z"), 32, "heads flattened: n_heads * d_head");
    assert.equal(features.dims.get("blocks.0.mlp.hook_post"), 128);
    let row = 0;
    for (let e = 0; e < texts.length; e++) {
      const ids = model.toTokens(texts[e]);
      for (const hook of hooks) {
        const alone = await tokenActivations(model, ids, hook);
        const got = (features.data.get(hook) as Float32Array).subarray(row * alone.width, (row + ids.length) * alone.width);
        for (let k = 0; k < alone.data.length; k++) assert.ok(Math.abs(got[k] - alone.data[k]) < 1e-4, `${hook}, text ${e}, value ${k}`);
      }
      const enc = model.tokenizer.encode(texts[e]);
      for (let t = 0; t < ids.length; t++) {
        assert.equal(features.groups[row + t], e);
        assert.equal(features.types[row + t], ids[t]);
        const [s, end] = enc.offsets[t];
        assert.equal(features.labels[row + t], tokens.level === "token" && tokens.examples[e].spans.some((sp) => s < sp.end && sp.start < end) ? "name" : "none");
      }
      row += ids.length;
    }
  });

  it("pools a sequence by its mean or its last token", async () => {
    const hook = "blocks.0.hook_resid_post";
    const mean = await extractFeatures(model, sequence, { hooks: [hook], pooling: "mean", batchSize: 4 });
    const last = await extractFeatures(model, sequence, { hooks: [hook], pooling: "last" });
    assert.equal(mean.rows, texts.length);
    assert.deepEqual(mean.labels, ["leo", "leo", "leo", "other", "other", "leo"]);
    for (let e = 0; e < texts.length; e++) {
      const { data, width } = await tokenActivations(model, model.toTokens(texts[e]), hook);
      const T = data.length / width;
      for (let j = 0; j < width; j++) {
        let sum = 0;
        for (let t = 0; t < T; t++) sum += data[t * width + j];
        assert.ok(Math.abs((mean.data.get(hook) as Float32Array)[e * width + j] - sum / T) < 1e-4);
        assert.ok(Math.abs((last.data.get(hook) as Float32Array)[e * width + j] - data[(T - 1) * width + j]) < 1e-4);
      }
    }
    assert.equal(new Set(mean.types).size, texts.length, "each distinct text is its own control type");
  });

  it("sweeps every layer by default and refuses hooks a probe cannot read", async () => {
    assert.deepEqual(layerSweepHooks(2), ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]);
    const all = await extractFeatures(model, sequence);
    assert.deepEqual(all.hooks, layerSweepHooks(2));
    await assert.rejects(extractFeatures(model, sequence, { hooks: ["blocks.7.hook_resid_post"] }), isLoupeError("bad-argument", /Unknown hook "blocks\.7\.hook_resid_post".*layers 0\.\.1/));
    await assert.rejects(extractFeatures(model, sequence, { hooks: ["blocks.0.attn.hook_pattern"] }), isLoupeError("bad-argument", /attention pattern/));
    const long: ProbeDataset = { level: "sequence", file: "long.jsonl", examples: [...sequence.examples, { text: "the park ".repeat(60), label: "x", line: 9 }] };
    await assert.rejects(extractFeatures(model, long), isLoupeError("context-overflow", /long\.jsonl:9: the text is \d+ tokens; the model's context window is 64/));
  });

  it("saves a probe as JSON, loads it back and scores texts the same way", async () => {
    const hook = "blocks.1.hook_resid_post";
    const features = await extractFeatures(model, sequence, { hooks: [hook] });
    const X = features.data.get(hook) as Float32Array;
    const trained = trainProbe(X, features.rows, 32, features.labels, { folds: 2, types: features.types });
    const file = path.join(probeFolder(dir), probeFileName("names.jsonl", hook));
    assert.match(file, /\.loupe[/\\]probes[/\\]names\.blocks\.1\.hook_resid_post\.json$/);
    const saved = toProbeFile(trained, {
      hook,
      level: "sequence",
      pooling: "mean",
      model: { name: "tiny-gpt2", nLayers: 2, dModel: 32 },
      training: { C: 1, classWeight: "balanced", data: "names.jsonl", folds: 2, seed: 0 },
    });
    saveProbe(file, saved);
    const loaded = loadProbe(file);
    assert.deepEqual(loaded, JSON.parse(JSON.stringify(saved)));
    assert.deepEqual(loaded.classes, ["leo", "other"]);
    assert.equal(loaded.weights.length, 1);
    assert.equal(loaded.weights[0].length, 32);

    const fromFile = scoreRows(loaded, X, features.rows);
    const pred = predictRows(trained, X, features.rows);
    for (let i = 0; i < features.rows; i++) assert.equal(fromFile[i * 2 + 1] > fromFile[i * 2] ? 1 : 0, pred[i]);

    const text = texts[2];
    const applied = await applyProbe(model, loaded, text);
    const { data } = await tokenActivations(model, model.toTokens(text), hook);
    const perToken = scoreRows(loaded, data, applied.tokens.length);
    applied.tokens.forEach((t, i) => {
      assert.ok(Math.abs(t.probs[0] - perToken[i * 2]) < 1e-9);
      assert.equal(t.label, loaded.classes[perToken[i * 2 + 1] > perToken[i * 2] ? 1 : 0]);
      assert.equal(text.slice(t.start, t.end), t.text);
    });
    const pooled = scoreRows(loaded, X.subarray(2 * 32, 3 * 32), 1);
    assert.ok(applied.sequence && Math.abs(applied.sequence.probs[1] - pooled[1]) < 1e-5);
  });

  it("refuses malformed probe files and probes of another width, naming the file", async () => {
    const base = {
      format: "loupe-probe",
      version: 1,
      hook: "blocks.0.hook_resid_post",
      level: "token",
      classes: ["none", "name"],
      weights: [new Array(16).fill(0.1)],
      bias: [0],
      standardisation: { mean: new Array(16).fill(0), scale: new Array(16).fill(1) },
      training: { C: 1, classWeight: "balanced", folds: 5, seed: 0 },
      metrics: {},
      model: { name: "other", nLayers: 2, dModel: 16 },
      created: "2025-01-01T00:00:00.000Z",
    };
    const write = (name: string, value: unknown) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, typeof value === "string" ? value : JSON.stringify(value));
      return f;
    };
    assert.throws(() => loadProbe(write("a.json", "{ nope")), isLoupeError("bad-file", /a\.json is not valid JSON/));
    assert.throws(() => loadProbe(write("b.json", { ...base, weights: [[1, 2]] })), isLoupeError("bad-file", /b\.json is not a usable Loupe probe: "weights\[0\]" must have 16 values/));
    assert.throws(() => loadProbe(write("c.json", { ...base, classes: ["only"] })), isLoupeError("bad-file", /"classes" must list at least two/));
    assert.throws(() => loadProbe(write("d.json", { ...base, version: 9 })), isLoupeError("bad-file", /version 9 is not supported/));
    assert.throws(() => loadProbe(write("e.json", { ...base, standardisation: { mean: base.standardisation.mean, scale: new Array(16).fill(0) } })), isLoupeError("bad-file", /scale" must be positive/));
    assert.throws(() => loadProbe(path.join(dir, "none.json")), isLoupeError("missing-file", /none\.json/));
    const other = loadProbe(write("f.json", base));
    await assert.rejects(applyProbe(model, other, "Leo saw a cat"), isLoupeError("bad-argument", /reads 16 values at blocks\.0\.hook_resid_post \(trained on other\), but this model has 32/));
  });
});

describe("loupe probe (CLI)", function () {
  this.timeout(60_000);
  const dir = scratchDir("probe-cli");
  const run = async (args: string[]) => {
    const chunks: string[] = [];
    const code = await main(args, { out: (t) => void chunks.push(t), readStdin: () => "" });
    return { code, out: chunks.join("") };
  };
  const lines = ["When Mia went to the park", "Leo saw a cat", "Mia gave the ball to Leo", "The park was green", "A cat and a dog", "Leo went home", "Mia and Leo", "The dog was green"];

  it("probe train sweeps the layers, saves the best probe, and probe apply scores a text", async () => {
    const data = path.join(dir, "names.jsonl");
    fs.writeFileSync(data, toJsonl(lines.map((text) => ({ text, spans: [...text.matchAll(/Mia|Leo/g)].map((m) => ({ start: m.index ?? 0, end: (m.index ?? 0) + 3, label: "name" })) }))));
    const out = path.join(dir, "names.json");
    const trained = await run(["probe", "train", data, "--all-layers", "--folds", "2", "--model", TINY_GPT2, "--out", out, "--json"]);
    assert.equal(trained.code, 0);
    const report = JSON.parse(trained.out) as { best: string; saved: string; classes: string[]; hooks: { hook: string; metrics: { cv: { accuracy: number }; selectivity: number } }[] };
    assert.deepEqual(report.hooks.map((h) => h.hook), layerSweepHooks(2));
    assert.deepEqual(report.classes, ["name", "none"]);
    assert.equal(report.saved, out);
    const best = report.hooks.reduce((a, b) => (b.metrics.cv.accuracy > a.metrics.cv.accuracy ? b : a));
    assert.equal(report.best, best.hook);
    assert.equal(loadProbe(out).hook, best.hook);

    const table = await run(["probe", "train", data, "--hook", "blocks.1.hook_resid_post", "--folds", "2", "--model", TINY_GPT2, "--out", out]);
    assert.match(table.out, /\* blocks\.1\.hook_resid_post\s+\d\.\d{3}/);
    assert.match(table.out, /classes: name \d+, none \d+; majority baseline/);
    assert.match(table.out, /warning: Classes are unbalanced/);

    const textFile = path.join(dir, "text.txt");
    fs.writeFileSync(textFile, "Leo and Mia saw a dog");
    const applied = await run(["probe", "apply", out, textFile, "--model", TINY_GPT2, "--json"]);
    const result = JSON.parse(applied.out) as { tokens: { text: string; probs: number[] }[] };
    assert.equal(result.tokens.map((t) => t.text).join(""), "Leo and Mia saw a dog");
    for (const t of result.tokens) assert.ok(Math.abs(t.probs[0] + t.probs[1] - 1) < 1e-9);
    const plain = await run(["probe", "apply", out, textFile, "--model", TINY_GPT2]);
    assert.match(plain.out, /^#\s+token\s+label\s+p\(name\)\s+p\(none\)/);
  });

  it("explains one-class data, bad lines and missing options", async () => {
    const one = path.join(dir, "one.jsonl");
    fs.writeFileSync(one, toJsonl(lines.map((text) => ({ text, label: "same" }))));
    await assert.rejects(run(["probe", "train", one, "--all-layers", "--model", TINY_GPT2]), isLoupeError("bad-argument", /one\.jsonl has only one class \("same", 8 examples\)/));
    const bad = path.join(dir, "bad.jsonl");
    fs.writeFileSync(bad, '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c" "label": "x"}\n');
    await assert.rejects(run(["probe", "train", bad, "--all-layers", "--model", TINY_GPT2]), isLoupeError("bad-file", /bad\.jsonl:3: not valid JSON/));
    await assert.rejects(run(["probe", "train", one, "--model", TINY_GPT2]), /Give --hook NAME \(one or more\) or --all-layers/);
    await assert.rejects(run(["probe", "train", one, "--all-layers", "--concept", "name"]), /--concept \(a span label\) needs token-level data/);
    await assert.rejects(run(["probe", "frob"]), /Unknown probe subcommand "frob": use train or apply/);
  });
});
