/**
 * Transcoder features get what SAE features get: feature statistics in the same feature-stats
 * format (density, activation histogram, top contexts, concept matches, logit effects), one file per
 * layer beside the set's weights (`layer_{i}.feature-stats.json`), user labels in
 * `.loupe/feature-labels.json` keyed by the set and layer, and a dashboard record a panel can ask for.
 *
 * A feature's logit effects read its total direct write into the residual stream through the
 * unembedding: its decoder row (PLT), or the sum of its rows to every later layer (CLT), as
 * circuit-tracer's feature dashboards do for the output side.
 */
import * as path from "node:path";
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { blockHook } from "../model/hooks";
import { readFeatureStatsFile, writeFeatureStatsFile, type StatsSubject } from "../sae/feature-stats-file";
import { FEATURE_LABELS_FILE, featureDisplayName, featureLabel, readFeatureLabels, saeLabelKey } from "../sae/feature-labels";
import { FeatureStatsBuilder, roundEffects, type ComputeFeatureStatsOptions, type CorpusText, type FeatureStats, type FeatureSummary, type HistogramSpec } from "../sae/features";
import { directionLogitVector, readUnembedding, topLogitEffects, type LogitEffects, type Unembedding } from "../sae/logit-effects";
import { transcoderInput } from "./frozen-model";
import { readLinearModelWeights } from "./model-weights";
import { checkTranscodersFit } from "./replacement";
import { decoderLayers, decoderRow, encode, type TranscoderSet } from "./transcoder";

/** Layer `layer`'s statistics file in a set folder. */
export function transcoderStatsFile(setFolder: string, layer: number): string {
  return path.join(path.resolve(setFolder), `layer_${layer}.feature-stats.json`);
}

/** What a layer's statistics describe: the features reading that layer's MLP input. */
export function transcoderStatsSubject(set: TranscoderSet, layer: number): StatsSubject {
  // circuit-tracer's hook names (ln2.hook_normalized included), with the block prefix.
  return { hook_name: `blocks.${layer}.${set.inputHook}`, d_in: set.dModel, d_sae: set.dTranscoder };
}

/** The labels file's key for one layer of a set: the set's folder key (as for an SAE folder), then the layer. */
export function transcoderLabelKey(workspaceRoot: string, setFolder: string, layer: number): string {
  return `${saeLabelKey(workspaceRoot, setFolder)}#layer_${layer}`;
}

/** A feature's total direct write into the residual stream: the sum of its decoder rows. */
export function transcoderFeatureDirection(set: TranscoderSet, layer: number, feature: number): Float32Array {
  checkFeature(set, layer, feature);
  const out = new Float32Array(set.dModel);
  for (let o = 0; o < decoderLayers(set, layer); o++) {
    const row = decoderRow(set, layer, feature, layer + o);
    for (let d = 0; d < set.dModel; d++) out[d] += row[d];
  }
  return out;
}

export function transcoderLogitEffects(set: TranscoderSet, layer: number, feature: number, unembedding: Unembedding, k: number, tokenText: (id: number) => string): LogitEffects {
  return topLogitEffects(directionLogitVector(transcoderFeatureDirection(set, layer, feature), unembedding), k, tokenText);
}

/**
 * Run the model over `corpus` and summarise every layer's transcoder features, one FeatureStats
 * per layer (texts are cut to the context window; a BOS in front is read but not counted).
 */
export async function computeTranscoderFeatureStats(model: HookedModel, set: TranscoderSet, corpus: readonly CorpusText[], options: ComputeFeatureStatsOptions = {}): Promise<FeatureStats[]> {
  checkTranscodersFit(model, set);
  const L = set.nLayers;
  const D = set.dModel;
  const weights = readLinearModelWeights(model.folder, model.cfg);
  const builders = Array.from({ length: L }, () => new FeatureStatsBuilder(set.dTranscoder, options));
  const names = Array.from({ length: L }, (_, l) => blockHook(l, "hook_resid_mid"));
  let counted = 0;
  for (let i = 0; i < corpus.length; i++) {
    throwIfAborted(options.signal);
    const item = corpus[i];
    const enc = model.encode(item.text);
    const T = Math.min(enc.ids.length, model.cfg.nCtx);
    if (T <= enc.lead) continue;
    const { cache } = await model.runWithCache(enc.ids.slice(0, T), { names });
    for (let l = 0; l < L; l++) {
      const x = transcoderInput(weights.blocks[l].norm2, set.inputHook, cache.get(names[l]).data, T, D);
      const acts = encode(set, l, x, T);
      builders[l].add(item.text, enc.offsets.slice(enc.lead, T), acts.subarray(enc.lead * set.dTranscoder), item.spans);
    }
    counted++;
    options.onProgress?.(i + 1, corpus.length);
  }
  if (counted === 0) throw new LoupeError("empty-input", "No tokens to compute feature statistics on: the corpus is empty.");
  const k = options.logitTokens ?? 10;
  const unembedding = k > 0 ? readUnembedding(model) : undefined;
  const text = (id: number) => model.tokenizer.decode([id]);
  return builders.map((b, l) => {
    const subject = transcoderStatsSubject(set, l);
    const logits = unembedding ? (f: number) => roundEffects(transcoderLogitEffects(set, l, f, unembedding, k, text)) : undefined;
    return b.finish({ hook_name: subject.hook_name, d_in: subject.d_in, architecture: `${set.kind}-transcoder-${set.activation.kind}`, description: options.description }, logits);
  });
}

/** Write each layer's statistics beside the set's weights; returns the files. */
export function writeTranscoderFeatureStats(setFolder: string, stats: readonly FeatureStats[]): string[] {
  return stats.map((s, l) => writeFeatureStatsFile(transcoderStatsFile(setFolder, l), s));
}

/** A layer's statistics, or undefined when the set has none for it; checked against the set. */
export function readTranscoderFeatureStats(setFolder: string, set: TranscoderSet, layer: number): FeatureStats | undefined {
  return readFeatureStatsFile(transcoderStatsFile(setFolder, layer), transcoderStatsSubject(set, layer));
}

/** What a feature dashboard shows for one transcoder feature (the graph panel's node detail). */
export interface TranscoderFeatureDashboard {
  readonly layer: number;
  readonly feature: number;
  /** The labels-file key of the feature's layer (to write a label back). */
  readonly labelKey: string;
  /** The user's label, else the concept the statistics matched, else "L{layer}/{feature}". */
  readonly label: string;
  readonly userLabel: string | null;
  /** null when the set has no statistics for this layer. */
  readonly summary: Omit<FeatureSummary, "logits"> | null;
  readonly histogram: HistogramSpec | null;
  readonly corpus: FeatureStats["corpus"] | null;
  /** Tokens the feature's decoder pushes up and down, through the unembedding. */
  readonly logits: LogitEffects;
  readonly statsFile: string | null;
}

export interface TranscoderDashboardOptions {
  /** Where `.loupe/feature-labels.json` lives; without it no user label is read. */
  readonly workspaceRoot?: string;
  /** Logit-effect tokens when the statistics do not hold them (default 10). */
  readonly logitTokens?: number;
}

export function transcoderFeatureDashboard(model: HookedModel, set: TranscoderSet, setFolder: string, layer: number, feature: number, options: TranscoderDashboardOptions = {}): TranscoderFeatureDashboard {
  checkFeature(set, layer, feature);
  const stats = readTranscoderFeatureStats(setFolder, set, layer);
  const entry = stats?.features[feature];
  const labelKey = transcoderLabelKey(options.workspaceRoot ?? process.cwd(), setFolder, layer);
  const userLabel = options.workspaceRoot ? (featureLabel(readFeatureLabels(path.join(options.workspaceRoot, FEATURE_LABELS_FILE)), labelKey, feature) ?? null) : null;
  // "#17 ~name (F1 0.93)" with the layer in front: "L1/17 ~name (F1 0.93)".
  const name = `L${layer}/${featureDisplayName(feature, userLabel ?? undefined, entry).slice(1)}`;
  let logits = entry?.logits;
  if (!logits) {
    checkTranscodersFit(model, set);
    logits = roundEffects(transcoderLogitEffects(set, layer, feature, readUnembedding(model), options.logitTokens ?? 10, (id) => model.tokenizer.decode([id])));
  }
  const summary = entry ? withoutLogits(entry) : null;
  return {
    layer,
    feature,
    labelKey,
    label: name,
    userLabel,
    summary,
    histogram: stats?.histogram ?? null,
    corpus: stats?.corpus ?? null,
    logits,
    statsFile: stats ? transcoderStatsFile(setFolder, layer) : null,
  };
}

function withoutLogits(entry: FeatureSummary): Omit<FeatureSummary, "logits"> {
  const { logits: _logits, ...rest } = entry;
  return rest;
}

function checkFeature(set: TranscoderSet, layer: number, feature: number): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= set.nLayers) throw new LoupeError("bad-argument", `Layer ${layer} is outside 0..${set.nLayers - 1} of ${set.source ?? "this transcoder set"}.`);
  if (!Number.isInteger(feature) || feature < 0 || feature >= set.dTranscoder) throw new LoupeError("bad-argument", `Feature ${feature} is outside 0..${set.dTranscoder - 1} (d_transcoder) of ${set.source ?? "this transcoder set"}.`);
}
