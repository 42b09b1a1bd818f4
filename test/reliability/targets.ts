/**
 * Fuzz targets: each takes a seeded Prng, builds one hostile input from a real fixture, and feeds
 * it to a Loupe reader or validator. A target returns normally when the input was accepted (and
 * what was accepted is checked: a reader must not pass on something its users then trip over) or
 * throws. The runner (fuzz.ts) counts a LoupeError with a message as a clean rejection and
 * anything else as a crash.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LoupeError } from "../../src/core/errors";
import { parseAuditConfig, SEVERITIES } from "../../src/core/audit/config";
import { parseModelConfig } from "../../src/core/model/config";
import { buildLensGraph, buildModelGraph } from "../../src/core/model/build-graph";
import { readSafetensorsIndex, readShardedSafetensorsIndex, readTensorF32 } from "../../src/core/model/safetensors";
import { parseChat } from "../../src/core/chat/messages";
import { renderChat } from "../../src/core/chat/template";
import { shardSafetensors } from "../helpers/hub-cache";
import { parseProbeDataset, tokenLabels } from "../../src/core/probes/dataset";
import { loadProbe, probeModel, validateProbe } from "../../src/core/probes/probe-file";
import { scoreRows } from "../../src/core/probes/apply";
import { loadSae } from "../../src/core/sae/load";
import { parseFeatureLabels, serializeFeatureLabels } from "../../src/core/sae/feature-labels";
import { parseFeatureStats, readFeatureStats } from "../../src/core/sae/feature-stats-file";
import { Tokenizer } from "../../src/core/tokenizer";
import { featureDashboardState, MAX_LABEL_LENGTH, parseFeatureDashboardRequest } from "../../src/core/view/feature-dashboard";
import { parseLens } from "../../src/core/view/lenses";
import { GraphFileError, parseGraphFile, withSubgraph } from "../../src/core/view/circuit-graph";
import { parseCircuitPanelRequest } from "../../src/core/view/circuit-panel";
import { parsePatchingRequest } from "../../src/core/view/patching-view";
import { syntheticGraph, syntheticGraphFile } from "../helpers/circuit-graphs";
import { parseProbePanelRequest } from "../../src/core/view/probe-panel";
import { interesting, mutateBytes, mutateJson, mutateSafetensors } from "./mutate";
import type { Prng } from "./prng";
import { isWellFormed, randomText } from "./unicode";

const ROOT = path.join(__dirname, "..", "..");
const FIXTURES = path.join(ROOT, "test", "fixtures");
const TINY = path.join(FIXTURES, "tiny-gpt2");
const REFERENCE = path.join(ROOT, "models", "reference");

/** A property of an accepted input that did not hold: always a failure, never a rejection. */
export class PropertyViolation extends Error {
  override readonly name = "PropertyViolation";
}

function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new PropertyViolation(message);
}

export interface FuzzContext {
  /** A scratch folder for this runner, removed by it afterwards. */
  readonly dir: string;
}

export interface FuzzTarget {
  readonly name: string;
  /** What is attacked, for the bench table. */
  readonly about: string;
  /** Relative cost: the runner gives costly targets fewer cases. */
  readonly weight?: number;
  /** Returns "rejected" for an input refused without an exception (a message parser's null). */
  run(rng: Prng, ctx: FuzzContext): void | "rejected" | Promise<void | "rejected">;
}

/** Read-once fixture cache (per thread). */
const cache = new Map<string, unknown>();
function once<T>(key: string, make: () => T): T {
  if (!cache.has(key)) cache.set(key, make());
  return cache.get(key) as T;
}
const bytesOf = (file: string) => once(`bytes:${file}`, () => new Uint8Array(fs.readFileSync(file)));
const jsonOf = (file: string) => once(`json:${file}`, () => JSON.parse(fs.readFileSync(file, "utf8")) as unknown);
const tokenizer = (folder: string) => once(`tok:${folder}`, () => Tokenizer.fromFile(path.join(folder, "tokenizer.json")));

function write(ctx: FuzzContext, name: string, data: Uint8Array | string): string {
  const file = path.join(ctx.dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
  return file;
}

/** Either structural JSON damage or raw byte damage of its text. */
function mutateJsonText(value: unknown, rng: Prng): string {
  const text = JSON.stringify(rng.chance(0.75) ? mutateJson(value, rng) : value) ?? "null";
  return rng.chance(0.3) ? Buffer.from(mutateBytes(Buffer.from(text, "utf8"), rng)).toString("utf8") : text;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- tokenizer

function isHigh(c: number) {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLow(c: number) {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** The offsets contract of Tokenizer.encode on arbitrary text. */
export function checkEncoding(tok: Tokenizer, text: string, options: { roundTrip?: boolean } = {}): void {
  const enc = tok.encode(text);
  expect(enc.ids.length === enc.offsets.length && enc.ids.length === enc.tokens.length, "ids, tokens and offsets differ in length");
  const covered = new Uint8Array(text.length);
  let lastStart = 0;
  enc.offsets.forEach(([start, end], i) => {
    expect(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= text.length, `token ${i} range [${start}, ${end}) is outside the text (length ${text.length})`);
    expect(start >= lastStart, `token ${i} starts at ${start}, before token ${i - 1} (${lastStart})`);
    lastStart = start;
    for (const at of [start, end]) {
      expect(!(at > 0 && at < text.length && isHigh(text.charCodeAt(at - 1)) && isLow(text.charCodeAt(at))), `token ${i} range [${start}, ${end}) cuts a surrogate pair`);
    }
    covered.fill(1, start, end);
  });
  const gap = covered.indexOf(0);
  expect(gap < 0, `character ${gap} (U+${text.charCodeAt(gap).toString(16)}) is covered by no token`);
  expect(enc.ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize), "an id is outside the vocabulary");
  // Byte-level decoding promises the exact text back; SentencePiece decoders strip a leading space by design.
  if ((options.roundTrip ?? true) && isWellFormed(text)) {
    const back = tok.decode(enc.ids);
    expect(back === text, `${tok.source}: decode(encode(text)) differs from the text: ${JSON.stringify(text)} -> ${JSON.stringify(back)}`);
  }
}

/** Byte-level BPE (GPT-2, Qwen2) and SentencePiece-style Metaspace with byte fallback (Llama). */
const TOKENIZER_FOLDERS = [REFERENCE, TINY, ...["tiny-llama", "tiny-qwen2"].map((f) => path.join(FIXTURES, f)).filter((f) => fs.existsSync(path.join(f, "tokenizer.json")))];

function isByteLevel(folder: string): boolean {
  const json = jsonOf(path.join(folder, "tokenizer.json")) as { decoder?: { type?: string } };
  return json.decoder?.type === "ByteLevel";
}

const tokenizerText: FuzzTarget = {
  name: "tokenizer-text",
  about: "encode/decode random Unicode (surrogate halves, ZWJ emoji, combining marks, CRLF, NUL)",
  run(rng) {
    const folder = rng.pick(TOKENIZER_FOLDERS);
    checkEncoding(tokenizer(folder), randomText(rng, 60), { roundTrip: isByteLevel(folder) });
  },
};

const tokenizerFile: FuzzTarget = {
  name: "tokenizer-file",
  about: "mutated tokenizer.json",
  weight: 3,
  run(rng) {
    const json = mutateJson(jsonOf(path.join(TINY, "tokenizer.json")), rng);
    const tok = Tokenizer.fromJSON(json, "fuzz/tokenizer.json");
    // A tokenizer that loads must still keep the offsets contract (or refuse the text clearly).
    checkEncoding(tok, randomText(rng, 12), { roundTrip: false });
  },
};

// ---------------------------------------------------------------- safetensors and the graph

const SAFETENSORS_FILES = [path.join(TINY, "model.safetensors"), path.join(FIXTURES, "tiny-gpt2-f16", "model.safetensors"), path.join(FIXTURES, "sae", "jumprelu", "sae_weights.safetensors")];

const safetensors: FuzzTarget = {
  name: "safetensors",
  about: "mutated safetensors headers, lengths and bytes",
  run(rng, ctx) {
    const file = write(ctx, "fuzz.safetensors", mutateSafetensors(bytesOf(rng.pick(SAFETENSORS_FILES)), rng));
    const index = readSafetensorsIndex(file);
    const size = fs.statSync(file).size;
    for (const entry of index.tensors.values()) {
      expect(entry.fileOffset >= 8 && entry.fileOffset + entry.byteLength <= size, `tensor ${entry.name} lies outside the file`);
      const data = readTensorF32(index, entry.name);
      expect(data.length === entry.shape.reduce((a, b) => a * b, 1), `tensor ${entry.name} read ${data.length} values for shape [${entry.shape}]`);
    }
  },
};

/** Model folders whose config.json and weights seed the model targets (GPT-2 and Llama family). */
const MODEL_FOLDERS = [TINY, ...["tiny-llama", "tiny-qwen2"].map((f) => path.join(FIXTURES, f)).filter((f) => fs.existsSync(path.join(f, "config.json")))];

const modelConfig: FuzzTarget = {
  name: "model-config",
  about: "mutated config.json into the graph builders",
  weight: 2,
  run(rng) {
    const folder = rng.pick(MODEL_FOLDERS);
    const cfg = parseModelConfig(mutateJson(jsonOf(path.join(folder, "config.json")), rng), "fuzz/config.json");
    const weights = once(`index:${folder}`, () => readSafetensorsIndex(path.join(folder, "model.safetensors")));
    const graph = buildModelGraph(cfg, weights);
    expect(graph.bytes.length > 0, "empty graph");
    buildLensGraph(cfg, weights);
  },
};

const graphWeights: FuzzTarget = {
  name: "graph-weights",
  about: "mutated safetensors headers into the graph builders",
  weight: 2,
  run(rng, ctx) {
    const folder = rng.pick(MODEL_FOLDERS);
    const file = write(ctx, "model.safetensors", mutateSafetensors(bytesOf(path.join(folder, "model.safetensors")), rng));
    const cfg = parseModelConfig(jsonOf(path.join(folder, "config.json")));
    const index = readSafetensorsIndex(file);
    buildModelGraph(cfg, index);
    buildLensGraph(cfg, index);
  },
};

// ---------------------------------------------------------------- SAE, probes, stats, labels

const SAE_FOLDERS = ["topk", "jumprelu", "relu", "relu-rescale"].map((n) => path.join(FIXTURES, "sae", n));

const saeLoad: FuzzTarget = {
  name: "sae-load",
  about: "mutated SAELens cfg.json and sae_weights.safetensors",
  run(rng, ctx) {
    const source = rng.pick(SAE_FOLDERS);
    const dir = path.join(ctx.dir, "sae");
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
    const cfgText = rng.chance(0.6) ? mutateJsonText(jsonOf(path.join(source, "cfg.json")), rng) : fs.readFileSync(path.join(source, "cfg.json"), "utf8");
    const weights = bytesOf(path.join(source, "sae_weights.safetensors"));
    fs.writeFileSync(path.join(dir, "cfg.json"), cfgText);
    fs.writeFileSync(path.join(dir, "sae_weights.safetensors"), rng.chance(0.5) ? mutateSafetensors(weights, rng) : weights);
    const sae = loadSae(dir, rng.chance(0.2) ? { normScalingFactor: rng.pick([1, 2.5, 0, -1, NaN]) } : {});
    const rows = rng.int(1, 3);
    const x = Float32Array.from({ length: rows * sae.d_in }, () => rng.float() * 4 - 2);
    const { features, reconstruction } = sae.forward(x, rows);
    expect(features.length === rows * sae.d_sae && reconstruction.length === rows * sae.d_in, "encode/decode sizes do not match d_in / d_sae");
    // Finite but absurd weights (1e38) overflow float32 arithmetic legitimately; sane ones must not.
    const sane = [sae.weights.W_enc, sae.weights.W_dec, sae.weights.b_enc, sae.weights.b_dec].every((w) => w.every((v) => Math.abs(v) < 1e6));
    if (sane) expect(features.every(Number.isFinite) && reconstruction.every(Number.isFinite), "an accepted SAE with sane weights produced non-finite values");
  },
};

function validProbe(rng: Prng) {
  const d = 4;
  const classes = rng.chance(0.5) ? ["none", "name"] : ["a", "b", "c"];
  const rows = classes.length === 2 ? 1 : classes.length;
  return {
    format: "loupe-probe",
    version: 1,
    hook: "blocks.0.hook_resid_post",
    level: "token",
    concept: "name",
    classes,
    weights: Array.from({ length: rows }, (_, r) => Array.from({ length: d }, (_, j) => (r + 1) * (j - 1.5))),
    bias: Array.from({ length: rows }, () => 0.1),
    standardisation: { mean: [0, 0.5, -0.5, 1], scale: [1, 2, 0.5, 1] },
    training: { C: 1, classWeight: "balanced", folds: 5, seed: 1 },
    metrics: { accuracy: 0.9, controlAccuracy: 0.5, selectivity: 0.4, folds: [], warnings: [] },
    model: { name: "tiny-gpt2", nLayers: 2, dModel: 32 },
    created: "2026-01-01T00:00:00Z",
  };
}

const probeFile: FuzzTarget = {
  name: "probe-file",
  about: "mutated probe JSON (loadProbe / validateProbe), then scoring",
  run(rng, ctx) {
    const damaged = mutateJson(validProbe(rng), rng);
    // Half the cases go through the file reader (JSON text damage included), half through validateProbe.
    const probe = rng.chance(0.5) ? loadProbe(write(ctx, "probe.json", mutateJsonText(damaged, rng))) : validateProbe(damaged, "fuzz/probe.json");
    const model = probeModel(probe);
    const d = probe.standardisation.mean.length;
    expect(model.dim === d, "probe weights and standardisation differ in width");
    const n = rng.int(1, 3);
    // Weights of 1e300 overflow legitimately; the distribution property is for sane probes.
    const sane = [...probe.weights.flat(), ...probe.bias, ...probe.standardisation.mean].every((v) => Math.abs(v) < 1e6) && probe.standardisation.scale.every((v) => v > 1e-6);
    const probs = scoreRows(probe, Float64Array.from({ length: n * d }, () => rng.float() * 6 - 3), n);
    expect(probs.length === n * model.nClasses, "wrong number of probabilities");
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let k = 0; k < model.nClasses; k++) sum += probs[i * model.nClasses + k];
      if (sane) expect(probs.every((p) => p >= 0 && p <= 1) && Math.abs(sum - 1) < 1e-6, "an accepted probe gives probabilities that are not a distribution");
    }
  },
};

const probeDataset: FuzzTarget = {
  name: "probe-dataset",
  about: "mutated probe training JSONL",
  run(rng) {
    const examples = [
      { text: "Mia gave Leo a red ball.", spans: [{ start: 0, end: 3, label: "name" }, { start: 9, end: 12, label: "name" }, { start: 15, end: 18, label: "colour" }] },
      { text: "\ud83d\ude00 Tom\r\nsaid \"no\".", spans: [{ start: 3, end: 6, label: "name" }] },
    ];
    const sequence = [{ text: "It was not red.", label: "negated" }, { text: "It was red.", label: 0 }];
    // Damage one line; the others stay valid so the parser gets past them.
    const chosen = rng.chance(0.5) ? examples : sequence;
    const victim = rng.int(0, chosen.length);
    const lines = chosen.map((e, i) => (i === victim ? mutateJsonText(e, rng) : JSON.stringify(e)));
    if (rng.chance(0.2)) lines.push(randomText(rng, 10));
    const dataset = parseProbeDataset(lines.join(rng.pick(["\n", "\r\n", "\n\n"])), "fuzz/data.jsonl");
    expect(dataset.examples.length > 0, "accepted a dataset with no examples");
    if (dataset.level === "token") {
      const tok = tokenizer(TINY);
      for (const example of dataset.examples) {
        for (const s of example.spans) expect(0 <= s.start && s.start < s.end && s.end <= example.text.length, "an accepted span lies outside its text");
        const labels = tokenLabels(tok.encode(example.text).offsets, example.spans);
        expect(labels.every((l) => typeof l === "string"), "a token got no label");
      }
    }
  },
};

function validFeatureStats(rng: Prng) {
  const d_sae = 3;
  const bins = 4;
  const text = "Mia saw a red ball";
  const context = { text, offsets: [[0, 3], [3, 7], [7, 9], [9, 13], [13, 18]], values: [0, 1.5, 0, 2, 0], token: 3, value: 2, source: 0 };
  return {
    format: "loupe-feature-stats",
    version: 1,
    sae: { hook_name: "blocks.0.hook_resid_post", d_in: 32, d_sae, architecture: "topk" },
    corpus: { texts: 2, tokens: 10, labelledTexts: 1, labelledTokens: 5, description: "fuzz" },
    fireThreshold: 0,
    histogram: { bins, log10Min: -2, log10Max: 2 },
    features: Array.from({ length: d_sae }, (_, i) => ({
      index: i,
      fired: i,
      density: i / 10,
      meanActivation: 1,
      maxActivation: 2,
      histogram: [0, 1, 2, rng.int(0, 3)],
      topContexts: i === 0 ? [] : [context],
      logits: { promoted: [{ id: 1, text: " ball", value: 0.5 }], suppressed: [] },
      ...(i === 1 ? { concept: { label: "colour", f1: 0.8, precision: 0.9, recall: 0.7 } } : {}),
    })),
    concepts: [{ label: "colour", tokens: 2, features: [{ feature: 1, label: "colour", f1: 0.8, precision: 0.9, recall: 0.7 }] }],
  };
}

const featureStats: FuzzTarget = {
  name: "feature-stats",
  about: "mutated feature-stats.json, then the dashboard built from it",
  run(rng, ctx) {
    const dir = path.join(ctx.dir, "stats-sae");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "feature-stats.json"), mutateJsonText(validFeatureStats(rng), rng));
    const text = fs.readFileSync(path.join(dir, "feature-stats.json"), "utf8");
    const stats = rng.chance(0.5) || !parses(text) ? readFeatureStats(dir) : parseFeatureStats(JSON.parse(text), "fuzz/feature-stats.json");
    if (!stats) throw new PropertyViolation("readFeatureStats found no file that exists");
    // What the dashboard does with accepted stats must not fail either.
    for (let feature = 0; feature < Math.min(stats.sae.d_sae, 4); feature++) {
      const state = featureDashboardState({ feature, sae: dir, hook_name: stats.sae.hook_name, d_sae: stats.sae.d_sae, stats });
      JSON.stringify(state);
    }
  },
};

const featureLabels: FuzzTarget = {
  name: "feature-labels",
  about: "mutated .loupe/feature-labels.json",
  run(rng) {
    const valid = { version: 1, saes: { "models/reference/sae/blocks.1.hook_resid_post": { "0": "names", "17": "colours" }, "/abs/sae": { "3": "x" } } };
    const labels = parseFeatureLabels(mutateJsonText(valid, rng), "fuzz/feature-labels.json");
    const again = parseFeatureLabels(serializeFeatureLabels(labels), "fuzz/again.json");
    expect(JSON.stringify(again) === JSON.stringify(parseFeatureLabels(serializeFeatureLabels(again))), "labels do not survive a save and reload");
    for (const map of Object.values(labels.saes)) for (const [k, v] of Object.entries(map)) expect(/^\d+$/.test(k) && typeof v === "string", "an accepted label is not index -> string");
  },
};

// ---------------------------------------------------------------- audit config

const auditConfig: FuzzTarget = {
  name: "audit-config",
  about: "mutated .loupe/audit.json",
  run(rng) {
    const valid = {
      $schema: "../schemas/audit.schema.json",
      rules: {
        "cot-not-load-bearing": { enabled: true, severity: "warning", threshold: 0.5 },
        "unverbalised-hint": { enabled: false },
        "high-surprisal": { severity: "information", bits: 12, minTokens: 2 },
        "prompt-truncated": { enabled: true, severity: "error" },
      },
      probes: [{ probe: ".loupe/probes/p.json", label: "name", threshold: 0.7, severity: "warning" }],
      features: [{ sae: "models/reference/sae/blocks.1.hook_resid_post", feature: 17, threshold: 1.5, label: "names" }],
      faithfulness: { answerMarker: "The answer is", reasoningCues: ["A:"], hintPattern: "\\(([A-D])\\)", mistakes: false },
    };
    const config = parseAuditConfig(rng.chance(0.1) ? randomText(rng, 20) : mutateJsonText(valid, rng), "fuzz/audit.json");
    for (const rule of Object.values(config.rules)) expect(SEVERITIES.includes(rule.severity) && typeof rule.enabled === "boolean", "an accepted rule has a bad severity or enabled flag");
    const t = config.rules["cot-not-load-bearing"].threshold;
    expect(t >= 0 && t <= 1, "accepted a threshold outside [0, 1]");
    for (const p of config.probes) expect(typeof p.probe === "string" && p.threshold >= 0 && p.threshold <= 1, "accepted a bad probe monitor");
    for (const f of config.features) expect(Number.isInteger(f.feature) && f.feature >= 0 && Number.isFinite(f.threshold), "accepted a bad feature monitor");
    if (config.faithfulness.hintPattern !== undefined) new RegExp(config.faithfulness.hintPattern);
  },
};

// ---------------------------------------------------------------- webview messages

/** A message a webview might send: a valid one damaged, or anything at all. */
function message(rng: Prng, valid: readonly Record<string, unknown>[]): unknown {
  const base = rng.pick(valid);
  if (rng.chance(0.15)) return interesting(rng);
  if (rng.chance(0.15)) return base;
  return mutateJson(base, rng);
}

const patchingMessages: FuzzTarget = {
  name: "webview-patching",
  about: "patching panel messages",
  run(rng) {
    const tokenCount = rng.int(0, 30);
    const png = `data:image/png;base64,${Buffer.from("png").toString("base64")}`;
    const m = message(rng, [{ type: "ready" }, { type: "exportCsv" }, { type: "reveal", position: 3 }, { type: "exportPng", dataUrl: png }, { type: "exportPng", dataUrl: "data:image/png;base64,<script>" }]);
    const r = parsePatchingRequest(m, tokenCount);
    if (r === null) return "rejected";
    if (r.type === "reveal") expect(Number.isInteger(r.position) && r.position >= 0 && r.position < tokenCount, `accepted reveal of position ${r.position} with ${tokenCount} tokens`);
    else if (r.type === "exportPng") expect(/^data:image\/png;base64,[A-Za-z0-9+/=]*$/.test(r.dataUrl), "accepted a PNG data URL with other characters");
    else expect(r.type === "ready" || r.type === "exportCsv", `unknown request type ${(r as { type: string }).type}`);
  },
};

const probeMessages: FuzzTarget = {
  name: "webview-probe",
  about: "probe panel messages",
  run(rng) {
    const state = { rows: [{ hook: "blocks.0.hook_resid_post" }, { hook: "blocks.1.hook_resid_post" }], classes: ["none", "name"] } as unknown as Parameters<typeof parseProbePanelRequest>[1];
    const m = message(rng, [
      { type: "ready" },
      { type: "apply", hook: "blocks.0.hook_resid_post", label: "name" },
      { type: "save", hook: "blocks.1.hook_resid_post" },
      { type: "monitor", hook: "blocks.0.hook_resid_post", label: "none", threshold: 0.5 },
    ]);
    const r = parseProbePanelRequest(m, state);
    if (r === null) return "rejected";
    if (r.type === "ready") return;
    expect(state.rows.some((row) => row.hook === r.hook), `accepted unknown hook ${String(r.hook)}`);
    if (r.type === "apply" || r.type === "monitor") expect(state.classes.includes(r.label), `accepted unknown label ${String(r.label)}`);
    if (r.type === "monitor") expect(Number.isFinite(r.threshold) && r.threshold >= 0 && r.threshold <= 1, `accepted threshold ${r.threshold}`);
  },
};

const featureMessages: FuzzTarget = {
  name: "webview-features",
  about: "feature dashboard messages",
  run(rng) {
    const state = { d_sae: rng.int(1, 64), feature: 0 };
    state.feature = rng.int(0, state.d_sae - 1);
    const m = message(rng, [
      { type: "ready" },
      { type: "open", feature: rng.int(0, 70) },
      { type: "label", feature: state.feature, label: `<img src=x onerror=alert(1)>\n\t${randomText(rng, 8)}` },
    ]);
    const r = parseFeatureDashboardRequest(m, state);
    if (r === null) return "rejected";
    if (r.type === "ready") return;
    expect(Number.isInteger(r.feature) && r.feature >= 0 && r.feature < state.d_sae, `accepted feature ${r.feature} of ${state.d_sae}`);
    if (r.type === "label") {
      expect(r.feature === state.feature, "accepted a label for a feature not on show");
      expect(typeof r.label === "string" && r.label.length <= MAX_LABEL_LENGTH && !/\s\s|[\n\t]/.test(r.label) && r.label === r.label.trim(), "accepted a label that is not one trimmed line");
    }
  },
};

/** A small traced-shape graph file, its parsed form and valid panel messages about it. */
const circuitFixture = () =>
  once("circuit", () => {
    const file = syntheticGraphFile(syntheticGraph({ layers: 2, tokens: 4, featuresPerCell: 2, linksPerNode: 4, seed: 5 }));
    return { file, graph: parseGraphFile(JSON.stringify(file), "fuzz/graph.json") };
  });

const circuitGraphFile: FuzzTarget = {
  name: "circuit-graph-file",
  about: "circuit-tracer graph JSON opened in the circuit panel",
  run(rng) {
    const { file } = circuitFixture();
    let graph;
    try {
      graph = parseGraphFile(mutateJsonText(file, rng), "fuzz/graph.json");
    } catch (error) {
      if (error instanceof GraphFileError) {
        expect(error.message.startsWith("fuzz/graph.json "), `the message does not name the file: ${error.message}`);
        return "rejected";
      }
      throw error;
    }
    for (const l of graph.links) expect(graph.nodes[l.source] && graph.nodes[l.target] && Number.isFinite(l.weight), "a link to no node, or a weight that is not a number");
    for (const n of graph.nodes) expect(n.row >= 0 && n.row < graph.rows && n.pos >= 0 && n.pos < graph.tokens.length, `node ${n.id} off the grid`);
  },
};

const circuitMessages: FuzzTarget = {
  name: "webview-circuit",
  about: "circuit panel messages",
  run(rng) {
    const { graph } = circuitFixture();
    const feature = graph.nodes.find((n) => n.kind === "feature")?.id ?? "";
    const q = withSubgraph(graph, [feature], [{ label: "group", members: [feature] }], feature);
    const m = message(rng, [
      { type: "ready" },
      { type: "reveal", pos: 2 },
      { type: "feature", nodeId: feature },
      { type: "check", nodeIds: [feature], kind: "scale", factor: 0.5 },
      { type: "save", qParams: q },
      { type: "export", qParams: { ...q, clickedId: "<script>" } },
    ]);
    const r = parseCircuitPanelRequest(m, graph);
    if (r === null) return "rejected";
    const known = new Set(graph.nodes.map((n) => n.id));
    const features = new Set(graph.nodes.filter((n) => n.kind === "feature").map((n) => n.id));
    if (r.type === "reveal") expect(Number.isInteger(r.pos) && r.pos >= 0 && r.pos < graph.tokens.length, `accepted reveal of position ${r.pos}`);
    if (r.type === "feature") expect(features.has(r.nodeId), `accepted feature card of ${r.nodeId}`);
    if (r.type === "check") expect(r.nodeIds.length > 0 && r.nodeIds.every((id) => features.has(id)) && (r.kind === "zero" || Number.isFinite(r.factor)), "accepted a Check of something other than features");
    if (r.type === "save" || r.type === "export") {
      expect(r.qParams.pinnedIds.every((id) => known.has(id)) && r.qParams.supernodes.every((s) => s.length >= 2 && s.slice(1).every((id) => known.has(id))), "accepted pins of unknown nodes");
    }
  },
};

const lensSetting: FuzzTarget = {
  name: "lens-setting",
  about: "loupe.defaultLens values",
  run(rng) {
    const nLayers = rng.chance(0.2) ? undefined : rng.int(1, 8);
    const id = rng.pick([() => randomText(rng, 6), () => `logit-lens:${rng.pick(["", "-1", "0", "1", "007", "1e3", "99999999999999999999", "2.5", " 1"])}`, () => rng.pick(["surprisal", "entropy", "logit-lens"])])();
    const lens = parseLens(id, nLayers);
    if (lens === undefined) return "rejected";
    if (lens.kind === "logit-lens") expect(Number.isSafeInteger(lens.layer) && lens.layer >= 0 && (nLayers === undefined || lens.layer < nLayers), `accepted layer ${lens.layer} of ${nLayers}`);
  },
};

// ---------------------------------------------------------------- hub checkpoints and chats

const shardIndex: FuzzTarget = {
  name: "shard-index",
  about: "mutated model.safetensors.index.json over two real shards",
  run(rng, ctx) {
    const files = once("shards:tiny-llama", () => shardSafetensors(path.join(FIXTURES, "tiny-llama", "model.safetensors"), 2));
    for (const [name, bytes] of Object.entries(files)) if (name.endsWith(".safetensors")) write(ctx, name, bytes);
    const index = write(ctx, "model.safetensors.index.json", mutateJsonText(JSON.parse(files["model.safetensors.index.json"].toString()), rng));
    const merged = readShardedSafetensorsIndex(index);
    for (const entry of merged.tensors.values()) {
      expect(path.dirname(path.resolve(merged.dataDir, entry.location)) === fs.realpathSync(ctx.dir), `tensor ${entry.name} is read from outside the folder`);
      expect(readTensorF32(merged, entry.name).length === entry.shape.reduce((a, b) => a * b, 1), `tensor ${entry.name} read the wrong number of values`);
    }
  },
};

const CHATML_TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const chat: FuzzTarget = {
  name: "chat",
  about: "mutated chat files through a ChatML template, and mutated templates",
  run(rng) {
    const seed = [{ role: "system", content: "Be brief." }, { role: "user", content: randomText(rng, 20) }, { role: "assistant", content: " padded  " }];
    const template = rng.chance(0.2) ? Buffer.from(mutateBytes(Buffer.from(CHATML_TEMPLATE), rng)).toString("utf8") : CHATML_TEMPLATE;
    const messages = parseChat(mutateJsonText(seed, rng), "fuzz/chat.json");
    const rendered = renderChat({ source: template, file: "fuzz/chat_template.jinja", specialTokens: {} }, messages, { addGenerationPrompt: rng.chance(0.5) });
    rendered.spans.forEach((span, i) => {
      if (!span) return;
      const text = rendered.text.slice(span.start, span.end);
      expect(text === messages[i].content || text === messages[i].content.trim(), `message ${i}'s span holds ${JSON.stringify(text)}`);
    });
  },
};

export const TARGETS: readonly FuzzTarget[] = [
  tokenizerText,
  tokenizerFile,
  safetensors,
  modelConfig,
  graphWeights,
  saeLoad,
  probeFile,
  probeDataset,
  featureStats,
  featureLabels,
  auditConfig,
  patchingMessages,
  probeMessages,
  featureMessages,
  circuitGraphFile,
  circuitMessages,
  lensSetting,
  shardIndex,
  chat,
];

/** Targets that misbehave on purpose, so tests can show the runner catches a crash and a hang. */
export const SELF_TEST_TARGETS: readonly FuzzTarget[] = [
  {
    name: "selftest-crash",
    about: "throws a TypeError on every third case",
    run(rng, ctx) {
      if (rng.chance(0.5)) throw new LoupeError("bad-argument", "rejected on purpose");
      if (ctx.dir && rng.int(0, 2) === 0) void (null as unknown as { x: number }).x;
    },
  },
  {
    name: "selftest-hang",
    about: "loops forever on case 1",
    run(_rng, ctx) {
      if (fs.readdirSync(ctx.dir).includes("hang-once")) return;
      fs.writeFileSync(path.join(ctx.dir, "hang-once"), "");
      for (;;) {
        // a synchronous loop: only terminating the thread ends it
      }
    },
  },
];

export function targetByName(name: string): FuzzTarget {
  const t = [...TARGETS, ...SELF_TEST_TARGETS].find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target ${name}`);
  return t;
}

export function isCleanRejection(error: unknown): boolean {
  return error instanceof LoupeError && typeof error.message === "string" && error.message.trim().length > 0;
}

export function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "loupe-fuzz-"));
}
