/**
 * Feature statistics over a corpus, the numbers behind a feature dashboard (Neuronpedia / sae_vis
 * vocabulary): activation density, a histogram of log10 activations, top-activating contexts,
 * logit effects, and, where the corpus carries ground-truth span labels, the concept a feature
 * matches best with its F1 (token fires vs token inside a span of that label).
 *
 * A feature is scored as a detector at its best activation threshold (one of the histogram's bin
 * edges, or any firing at all), as a one-feature probe is (Gao et al. 2024): a latent that fires
 * weakly on much of the text but strongly on animals is an animal feature above that threshold.
 *
 *   const stats = await computeFeatureStats(model, sae, records);    // records: { text, spans? }[]
 *   writeFeatureStats(sae.source!, stats);                             // feature-stats.json
 *
 * The accumulation (FeatureStatsBuilder) is pure: it takes per-token feature activations and
 * token offsets, so tests can feed it a case whose answer is known.
 */
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { saeInputsForBatch } from "./attach";
import { encodeFast } from "./encoder-session";
import { hasLogitEffects, logitEffects, readUnembedding, type LogitEffects } from "./logit-effects";
import type { Sae } from "./sae";

export const FEATURE_STATS_FORMAT = "loupe-feature-stats";
export const FEATURE_STATS_VERSION = 1;

/** A labelled character range of a text (the bench generator's Span). */
export interface LabelledSpan {
  readonly start: number;
  readonly end: number;
  readonly label: string;
}

/** One corpus text; `spans` (even empty) marks it as labelled, so it counts toward concept F1. */
export interface CorpusText {
  readonly text: string;
  readonly spans?: readonly LabelledSpan[];
}

/** Bins of log10(activation) over [log10Min, log10Max); values outside land in the end bins. */
export interface HistogramSpec {
  readonly log10Min: number;
  readonly log10Max: number;
  readonly bins: number;
}

export const DEFAULT_HISTOGRAM: HistogramSpec = { log10Min: -3, log10Max: 2, bins: 25 };

/** A snippet around a token where the feature fired, with the feature's value at each snippet token. */
export interface FeatureContext {
  /** The snippet's text. */
  readonly text: string;
  /** UTF-16 range of each snippet token within `text`. */
  readonly offsets: Array<[number, number]>;
  /** The feature's activation at each snippet token. */
  readonly values: number[];
  /** Index (into offsets/values) of the token this context is about. */
  readonly token: number;
  /** The activation there. */
  readonly value: number;
  /** Index of the corpus text the snippet comes from. */
  readonly source: number;
}

export interface ConceptMatch {
  readonly label: string;
  readonly f1: number;
  readonly precision: number;
  readonly recall: number;
  /** The feature counts as detecting the label above this activation; absent: whenever it fires. */
  readonly threshold?: number;
}

export interface FeatureSummary {
  readonly index: number;
  /** Tokens where the feature fired (activation > fireThreshold). */
  readonly fired: number;
  /** fired / tokens: the share of tokens where it fires. */
  readonly density: number;
  /** Mean activation over the tokens where it fires (0 if none). */
  readonly meanActivation: number;
  readonly maxActivation: number;
  /** Counts per bin of log10(activation) over firing tokens (FeatureStats.histogram gives the bins). */
  readonly histogram: number[];
  /** Highest-activating contexts, best first, at most one per corpus text. */
  readonly topContexts: FeatureContext[];
  readonly logits?: LogitEffects;
  /** The label whose spans this feature's firing matches best, when the corpus was labelled. */
  readonly concept?: ConceptMatch;
}

export interface ConceptSummary {
  readonly label: string;
  /** Labelled-corpus tokens inside a span of this label. */
  readonly tokens: number;
  /** The best-matching features by F1, best first. */
  readonly features: Array<ConceptMatch & { readonly feature: number }>;
}

/** The contents of feature-stats.json. */
export interface FeatureStats {
  readonly format: typeof FEATURE_STATS_FORMAT;
  readonly version: number;
  readonly sae: { readonly hook_name: string; readonly d_in: number; readonly d_sae: number; readonly architecture: string };
  readonly corpus: { readonly texts: number; readonly tokens: number; readonly labelledTexts: number; readonly labelledTokens: number; readonly description?: string };
  readonly fireThreshold: number;
  readonly histogram: HistogramSpec;
  readonly features: FeatureSummary[];
  readonly concepts: ConceptSummary[];
}

export interface FeatureStatsOptions {
  /** Contexts kept per feature (default 10). */
  readonly topContexts?: number;
  /** Tokens shown before / after the context's token (default 12 / 4). */
  readonly contextBefore?: number;
  readonly contextAfter?: number;
  readonly histogram?: HistogramSpec;
  /** A feature fires where its activation exceeds this (default 0). */
  readonly fireThreshold?: number;
  /** Features listed per concept (default 5). */
  readonly featuresPerConcept?: number;
}

type Candidate = FeatureContext;

/** Accumulates feature statistics text by text; `finish` summarises them. */
export class FeatureStatsBuilder {
  private readonly S: number;
  private readonly fired: Float64Array;
  private readonly sum: Float64Array;
  private readonly max: Float32Array;
  private readonly hist: Uint32Array;
  private readonly labelledFired: Float64Array;
  /** True positives per label: token fires and lies in a span of the label. */
  private readonly truePositives = new Map<string, Float64Array>();
  /** Per feature and histogram bin: labelled tokens that fired into the bin. */
  private readonly labelledHist: Uint32Array;
  /** Per label, feature and histogram bin: those of them inside a span of the label. */
  private readonly truePositiveHist = new Map<string, Uint32Array>();
  private readonly labelTokens = new Map<string, number>();
  private readonly contexts: Candidate[][];
  private readonly spec: HistogramSpec;
  private readonly threshold: number;
  private readonly keep: number;
  private readonly before: number;
  private readonly after: number;
  private tokens = 0;
  private texts = 0;
  private labelledTexts = 0;
  private labelledTokens = 0;

  constructor(
    readonly d_sae: number,
    private readonly options: FeatureStatsOptions = {},
  ) {
    if (!Number.isInteger(d_sae) || d_sae < 1) throw new LoupeError("bad-argument", `d_sae must be a positive integer (got ${d_sae}).`);
    const S = (this.S = d_sae);
    this.spec = options.histogram ?? DEFAULT_HISTOGRAM;
    if (!(this.spec.bins >= 1 && this.spec.log10Max > this.spec.log10Min)) throw new LoupeError("bad-argument", "Histogram needs bins >= 1 and log10Max > log10Min.");
    this.threshold = options.fireThreshold ?? 0;
    this.keep = Math.max(0, Math.floor(options.topContexts ?? 10));
    this.before = Math.max(0, Math.floor(options.contextBefore ?? 12));
    this.after = Math.max(0, Math.floor(options.contextAfter ?? 4));
    this.fired = new Float64Array(S);
    this.sum = new Float64Array(S);
    this.max = new Float32Array(S);
    this.hist = new Uint32Array(S * this.spec.bins);
    this.labelledFired = new Float64Array(S);
    this.labelledHist = new Uint32Array(S * this.spec.bins);
    this.contexts = Array.from({ length: S }, () => []);
  }

  /**
   * Add one text: its tokens' UTF-16 offsets and their feature activations ([tokens, d_sae]).
   * Pass `spans` (even empty) when the text is labelled; a token belongs to a label when its range
   * overlaps one of the label's spans by at least one character.
   */
  add(text: string, offsets: ReadonlyArray<readonly [number, number]>, features: Float32Array, spans?: readonly LabelledSpan[]): void {
    const S = this.S;
    const T = offsets.length;
    if (features.length !== T * S) throw new LoupeError("bad-shape", `Feature activations have ${features.length} values, expected ${T} tokens x d_sae ${S}.`);
    const source = this.texts++;
    this.tokens += T;
    const tokenLabels = spans ? this.labelTokensOf(offsets, spans) : undefined;
    if (tokenLabels) {
      this.labelledTexts++;
      this.labelledTokens += T;
    }
    const { log10Min, log10Max, bins } = this.spec;
    const binWidth = (log10Max - log10Min) / bins;
    // Per text, the best token of each feature: one context per text keeps the list varied.
    const bestToken = new Int32Array(S).fill(-1);
    const touched: number[] = [];
    for (let t = 0; t < T; t++) {
      const row = t * S;
      const labels = tokenLabels?.[t];
      for (let s = 0; s < S; s++) {
        const v = features[row + s];
        if (!(v > this.threshold)) continue;
        this.fired[s]++;
        this.sum[s] += v;
        if (v > this.max[s]) this.max[s] = v;
        // Non-positive values (a negative fireThreshold) share bin 0: no threshold above it separates them.
        const bin = v > 0 ? Math.min(bins - 1, Math.max(0, Math.floor((Math.log10(v) - log10Min) / binWidth))) : 0;
        if (v > 0) this.hist[s * bins + bin]++;
        if (tokenLabels) {
          this.labelledFired[s]++;
          this.labelledHist[s * bins + bin]++;
          if (labels) {
            for (const label of labels) {
              this.truePositives.get(label)![s]++;
              this.truePositiveHist.get(label)![s * bins + bin]++;
            }
          }
        }
        const b = bestToken[s];
        if (b < 0) touched.push(s);
        if (b < 0 || v > features[b * S + s]) bestToken[s] = t;
      }
    }
    if (this.keep === 0) return;
    for (const s of touched) {
      const t = bestToken[s];
      const value = features[t * S + s];
      const list = this.contexts[s];
      if (list.length >= this.keep && value <= list[list.length - 1].value) continue;
      const from = Math.max(0, t - this.before);
      const to = Math.min(T, t + this.after + 1);
      const base = offsets[from][0];
      const end = offsets[to - 1][1];
      const context: Candidate = {
        text: text.slice(base, end),
        offsets: Array.from({ length: to - from }, (_, i) => [offsets[from + i][0] - base, offsets[from + i][1] - base] as [number, number]),
        values: Array.from({ length: to - from }, (_, i) => round(features[(from + i) * S + s])),
        token: t - from,
        value: round(value),
        source,
      };
      // Insertion into a short sorted list; ties keep the earlier text first.
      let at = list.length;
      while (at > 0 && list[at - 1].value < context.value) at--;
      list.splice(at, 0, context);
      if (list.length > this.keep) list.pop();
    }
  }

  /**
   * How well `feature` detects `label` on the labelled texts so far: at its best threshold, or at
   * `threshold` (rounded up to the next bin edge; at or below fireThreshold: whenever it fires),
   * e.g. a threshold picked on one corpus scored on another.
   */
  conceptMatch(label: string, feature: number, threshold?: number): ConceptMatch {
    if (!this.truePositives.has(label)) return { label, f1: 0, precision: 0, recall: 0 };
    const positives = this.labelTokens.get(label)!;
    const bins = this.spec.bins;
    const tpHist = this.truePositiveHist.get(label)!.subarray(feature * bins, (feature + 1) * bins);
    const firedHist = this.labelledHist.subarray(feature * bins, (feature + 1) * bins);
    const score = (tp: number, predicted: number, cut?: number): ConceptMatch => ({
      label,
      f1: predicted + positives > 0 ? round((2 * tp) / (predicted + positives)) : 0,
      precision: predicted > 0 ? round(tp / predicted) : 0,
      recall: positives > 0 ? round(tp / positives) : 0,
      ...(cut !== undefined ? { threshold: round(cut) } : {}),
    });
    const whenFiring = score(this.truePositives.get(label)![feature], this.labelledFired[feature]);
    // Activation >= the lower edge of bin b (b >= 1) holds exactly for the tokens in bins b and up.
    const tpFrom = suffixSums(tpHist);
    const firedFrom = suffixSums(firedHist);
    const atLeastBin = (b: number) => score(tpFrom[b], firedFrom[b], this.binEdge(b));
    const cuts = range(1, bins).filter((b) => this.binEdge(b) > this.threshold);
    if (threshold !== undefined) {
      if (threshold <= this.threshold || cuts.length === 0) return whenFiring;
      // A saved threshold is an edge rounded to 4 significant digits, perhaps up: that edge still counts.
      const at = threshold * (1 - 1e-3);
      return atLeastBin(cuts.find((b) => this.binEdge(b) >= at) ?? cuts[cuts.length - 1]);
    }
    let best = whenFiring;
    // Only a strictly better F1 moves the threshold up: ties keep the lower one.
    for (const b of cuts) {
      const m = atLeastBin(b);
      if (m.f1 > best.f1) best = m;
    }
    return best;
  }

  /** The lower edge of histogram bin b (b >= 1). */
  private binEdge(b: number): number {
    const { log10Min, log10Max, bins } = this.spec;
    return 10 ** (log10Min + (b * (log10Max - log10Min)) / bins);
  }

  /** Summaries of every feature and concept. `logits(f)` adds logit effects when given. */
  finish(meta: { hook_name: string; d_in: number; architecture: string; description?: string }, logits?: (feature: number) => LogitEffects | undefined): FeatureStats {
    const S = this.S;
    const bins = this.spec.bins;
    const labels = [...this.truePositives.keys()].sort();
    const match = (label: string, s: number): ConceptMatch => this.conceptMatch(label, s);
    const features: FeatureSummary[] = [];
    for (let s = 0; s < S; s++) {
      const fired = this.fired[s];
      let concept: ConceptMatch | undefined;
      for (const label of labels) {
        if (this.truePositives.get(label)![s] === 0) continue;
        const m = match(label, s);
        if (!concept || m.f1 > concept.f1) concept = m;
      }
      const effects = fired > 0 ? logits?.(s) : undefined;
      features.push({
        index: s,
        fired,
        density: this.tokens > 0 ? fired / this.tokens : 0,
        meanActivation: fired > 0 ? round(this.sum[s] / fired) : 0,
        maxActivation: round(this.max[s]),
        histogram: Array.from(this.hist.subarray(s * bins, (s + 1) * bins)),
        topContexts: this.contexts[s],
        ...(effects ? { logits: effects } : {}),
        ...(concept ? { concept } : {}),
      });
    }
    const perConcept = Math.max(1, Math.floor(this.options.featuresPerConcept ?? 5));
    const concepts = labels.map((label): ConceptSummary => {
      const tp = this.truePositives.get(label)!;
      const ranked: Array<ConceptMatch & { feature: number }> = [];
      for (let s = 0; s < S; s++) if (tp[s] > 0) ranked.push({ feature: s, ...match(label, s) });
      ranked.sort((a, b) => b.f1 - a.f1 || a.feature - b.feature);
      return { label, tokens: this.labelTokens.get(label)!, features: ranked.slice(0, perConcept) };
    });
    return {
      format: FEATURE_STATS_FORMAT,
      version: FEATURE_STATS_VERSION,
      sae: { hook_name: meta.hook_name, d_in: meta.d_in, d_sae: S, architecture: meta.architecture },
      corpus: { texts: this.texts, tokens: this.tokens, labelledTexts: this.labelledTexts, labelledTokens: this.labelledTokens, ...(meta.description ? { description: meta.description } : {}) },
      fireThreshold: this.threshold,
      histogram: this.spec,
      features,
      concepts,
    };
  }

  /** For each token, the labels whose spans it overlaps (undefined when none); counts label tokens. */
  private labelTokensOf(offsets: ReadonlyArray<readonly [number, number]>, spans: readonly LabelledSpan[]): Array<string[] | undefined> {
    const out: Array<string[] | undefined> = new Array(offsets.length);
    for (const span of spans) {
      if (!this.truePositives.has(span.label)) {
        this.truePositives.set(span.label, new Float64Array(this.S));
        this.truePositiveHist.set(span.label, new Uint32Array(this.S * this.spec.bins));
        this.labelTokens.set(span.label, 0);
      }
    }
    offsets.forEach(([start, end], t) => {
      for (const span of spans) {
        if (start >= span.end || end <= span.start) continue;
        const list = (out[t] ??= []);
        if (!list.includes(span.label)) list.push(span.label);
      }
      for (const label of out[t] ?? []) this.labelTokens.set(label, this.labelTokens.get(label)! + 1);
    });
    return out;
  }
}

export interface ComputeFeatureStatsOptions extends FeatureStatsOptions {
  /** Texts per forward pass (default 16). */
  readonly batchSize?: number;
  /** Promoted / suppressed tokens per feature (default 10; 0 for no logit effects). */
  readonly logitTokens?: number;
  /** Said in feature-stats.json, e.g. "400 stories texts, seed 7". */
  readonly description?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (doneTexts: number, totalTexts: number) => void;
}

/** Run the model over `corpus` and summarise the SAE's features (texts are cut to the context window). */
export async function computeFeatureStats(model: HookedModel, sae: Sae, corpus: readonly CorpusText[], options: ComputeFeatureStatsOptions = {}): Promise<FeatureStats> {
  const builder = await accumulateFeatureStats(model, sae, corpus, options);
  const k = options.logitTokens ?? 10;
  let logits: ((f: number) => LogitEffects) | undefined;
  if (k > 0) {
    const unembedding = readUnembedding(model);
    if (hasLogitEffects(sae, unembedding)) {
      const text = (id: number) => model.tokenizer.decode([id]);
      logits = (f) => roundEffects(logitEffects(sae, f, unembedding, k, text));
    }
  }
  return builder.finish({ hook_name: sae.hookName, d_in: sae.d_in, architecture: sae.cfg.architecture, description: options.description }, logits);
}

/** computeFeatureStats before its summary: the builder, e.g. to score a feature at a threshold chosen elsewhere. */
export async function accumulateFeatureStats(model: HookedModel, sae: Sae, corpus: readonly CorpusText[], options: ComputeFeatureStatsOptions = {}): Promise<FeatureStatsBuilder> {
  const builder = new FeatureStatsBuilder(sae.d_sae, options);
  // Each text is read as a prompt (Llama's <s> in front, HookedModel.encode); statistics count
  // the text's own tokens only, so contexts and densities never show the <s>.
  const encoded = corpus
    .map((item) => {
      const enc = model.encode(item.text);
      const n = Math.min(enc.ids.length, model.cfg.nCtx);
      return { item, ids: enc.ids.slice(0, n), offsets: enc.offsets.slice(enc.lead, n), lead: enc.lead };
    })
    .filter((e) => e.ids.length > e.lead);
  if (encoded.length === 0) throw new LoupeError("empty-input", "No tokens to compute feature statistics on: the corpus is empty.");
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 16));
  for (let from = 0; from < encoded.length; from += batchSize) {
    throwIfAborted(options.signal);
    const members = encoded.slice(from, from + batchSize);
    const { x, rows } = await saeInputsForBatch(model, sae, members.map((m) => m.ids), options.signal);
    const { features } = await encodeFast(sae, x, rows);
    let row = 0;
    for (const m of members) {
      const T = m.ids.length;
      builder.add(m.item.text, m.offsets, features.subarray((row + m.lead) * sae.d_sae, (row + T) * sae.d_sae), m.item.spans);
      row += T;
    }
    options.onProgress?.(Math.min(from + batchSize, encoded.length), encoded.length);
  }
  return builder;
}

export interface TokenFeature {
  readonly feature: number;
  readonly value: number;
}

/** The k strongest firing features of each token of a [tokens, d_sae] activation matrix, strongest first. */
export function topFeaturesPerToken(features: Float32Array, d_sae: number, k: number): TokenFeature[][] {
  const T = features.length / d_sae;
  if (!Number.isInteger(T)) throw new LoupeError("bad-shape", `${features.length} values are not rows of d_sae ${d_sae}.`);
  const out: TokenFeature[][] = [];
  for (let t = 0; t < T; t++) {
    const active: TokenFeature[] = [];
    for (let s = 0; s < d_sae; s++) {
      const v = features[t * d_sae + s];
      if (v > 0) active.push({ feature: s, value: v });
    }
    active.sort((a, b) => b.value - a.value || a.feature - b.feature);
    out.push(active.slice(0, Math.max(0, k)));
  }
  return out;
}

/** Integers from `from` up to, not including, `to`. */
function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

/** out[i]: the sum of counts[i..]. */
function suffixSums(counts: Uint32Array): Float64Array {
  const out = new Float64Array(counts.length);
  let total = 0;
  for (let i = counts.length - 1; i >= 0; i--) out[i] = total += counts[i];
  return out;
}

/** Four significant digits: the stats file is for reading, and this keeps it small. */
function round(v: number): number {
  return v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(4));
}

/** Logit effects to four significant digits, as feature-stats.json stores them. */
export function roundEffects(e: LogitEffects): LogitEffects {
  const r = (list: LogitEffects["promoted"]) => list.map((x) => ({ ...x, value: round(x.value) }));
  return { promoted: r(e.promoted), suppressed: r(e.suppressed) };
}
