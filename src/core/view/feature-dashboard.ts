/**
 * The SAE feature dashboard's data and message protocol, and the feature lens's hover and colour
 * levels: pure functions shared by the extension, the webview and tests. The extension posts a
 * `FeatureDashboardState`; the webview answers with `FeatureDashboardRequest`s, checked here before
 * anything acts on them (the page renders corpus text and user labels).
 */
import type { ReadyRequest } from "./panel-protocol";
import type { ConceptMatch, FeatureStats, FeatureSummary, HistogramSpec } from "../sae/features";
import type { TokenFeaturesResult } from "../sae/token-features";
import type { LogitEffects, TokenEffect } from "../sae/logit-effects";
import { CONCEPT_LABEL_MIN_F1, conceptText, featureDisplayName } from "../sae/feature-labels";
import { neuronpediaUrl } from "../sae/releases/neuronpedia";
import { codeSpan, escapeMarkdown } from "./markdown";
import { LEVELS } from "./lenses";

/** User labels are one line; longer text is cut here rather than trusted from the webview. */
export const MAX_LABEL_LENGTH = 120;

export interface ContextPiece {
  readonly text: string;
  /** The feature's activation at this piece (0 for the text between tokens). */
  readonly value: number;
  /** The token the context is about. */
  readonly focus: boolean;
}

/** What a feature card shows from its statistics: the SAE dashboard and the circuit panel's feature card. */
export interface FeatureStatsView {
  readonly density: number;
  readonly fired: number;
  readonly corpusTokens: number;
  readonly corpus?: string;
  readonly meanActivation: number;
  readonly maxActivation: number;
  /** Bins of log10(activation) over firing tokens. */
  readonly histogram: ReadonlyArray<{ readonly from: number; readonly to: number; readonly count: number }>;
  readonly contexts: ReadonlyArray<{ readonly value: number; readonly pieces: readonly ContextPiece[] }>;
  readonly promoted: readonly TokenEffect[];
  readonly suppressed: readonly TokenEffect[];
  readonly concept?: ConceptMatch;
}

export interface FeatureDashboardState extends Partial<FeatureStatsView> {
  readonly feature: number;
  readonly d_sae: number;
  readonly hook_name: string;
  /** The SAE folder as shown to the user. */
  readonly sae: string;
  readonly label: string;
  /** The feature's Neuronpedia page, for a published SAE hosted there. */
  readonly neuronpediaUrl?: string;
  readonly hasStats: boolean;
  /** Said when there are no stats: how to make them. */
  readonly note?: string;
}

/** Split a context snippet into token pieces (with the gaps between tokens, if any) for highlighting. */
export function contextPieces(context: FeatureSummary["topContexts"][number]): ContextPiece[] {
  const pieces: ContextPiece[] = [];
  let at = 0;
  context.offsets.forEach(([start, end], i) => {
    if (start > at) pieces.push({ text: context.text.slice(at, start), value: 0, focus: false });
    pieces.push({ text: context.text.slice(start, end), value: context.values[i] ?? 0, focus: i === context.token });
    at = Math.max(at, end);
  });
  if (at < context.text.length) pieces.push({ text: context.text.slice(at), value: 0, focus: false });
  return pieces;
}

export function featureDashboardState(args: {
  feature: number;
  sae: string;
  hook_name: string;
  d_sae: number;
  label?: string;
  stats?: FeatureStats;
  /** The SAE's Neuronpedia id ({model}/{source}), when it has one. */
  neuronpedia?: string;
}): FeatureDashboardState {
  const { feature, sae, hook_name, d_sae, stats } = args;
  const url = neuronpediaUrl(args.neuronpedia, feature);
  const base = { feature, d_sae, hook_name, sae, label: args.label ?? "", ...(url ? { neuronpediaUrl: url } : {}) };
  const summary = stats?.features[feature];
  if (!stats || !summary) {
    return {
      ...base,
      hasStats: false,
      note: `No feature-stats.json next to this SAE. Compute it with: loupe features --compute-stats CORPUS.jsonl --sae ${sae}`,
    };
  }
  return { ...base, hasStats: true, ...featureStatsView(summary, stats.histogram, stats.corpus) };
}

/**
 * One feature's statistics as a card shows them (histogram bins with their log10 bounds, contexts
 * split into highlighted pieces, logit effects); `logits` stands in when the summary has none.
 */
export function featureStatsView(summary: Omit<FeatureSummary, "logits"> & { readonly logits?: LogitEffects }, histogram: HistogramSpec, corpus: FeatureStats["corpus"], logits?: LogitEffects): FeatureStatsView {
  const { log10Min, log10Max, bins } = histogram;
  const width = (log10Max - log10Min) / bins;
  const effects = summary.logits ?? logits;
  return {
    density: summary.density,
    fired: summary.fired,
    corpusTokens: corpus.tokens,
    ...(corpus.description ? { corpus: corpus.description } : {}),
    meanActivation: summary.meanActivation,
    maxActivation: summary.maxActivation,
    histogram: summary.histogram.map((count, i) => ({ from: log10Min + i * width, to: log10Min + (i + 1) * width, count })),
    contexts: summary.topContexts.map((c) => ({ value: c.value, pieces: contextPieces(c) })),
    promoted: effects?.promoted ?? [],
    suppressed: effects?.suppressed ?? [],
    ...(summary.concept ? { concept: summary.concept } : {}),
  };
}

export type FeatureDashboardRequest =
  | ReadyRequest
  /** Save (or, when empty, remove) the user's label for the shown feature. */
  | { readonly type: "label"; readonly feature: number; readonly label: string }
  /** Show another feature of the same SAE. */
  | { readonly type: "open"; readonly feature: number }
  /** Steer generation from the editor's selection with the feature on show. */
  | { readonly type: "steer"; readonly feature: number };

/** The request if `message` is well formed and names a feature of this SAE; else null. */
export function parseFeatureDashboardRequest(message: unknown, state: Pick<FeatureDashboardState, "d_sae" | "feature">): FeatureDashboardRequest | null {
  if (typeof message !== "object" || message === null) return null;
  const m = message as Record<string, unknown>;
  const featureOk = typeof m.feature === "number" && Number.isInteger(m.feature) && m.feature >= 0 && m.feature < state.d_sae;
  switch (m.type) {
    case "ready":
      return Object.keys(m).length === 1 ? { type: "ready" } : null;
    case "label":
      // Only the feature on show can be labelled: a stale page must not relabel another one.
      return featureOk && m.feature === state.feature && typeof m.label === "string"
        ? { type: "label", feature: m.feature as number, label: m.label.replace(/\s+/g, " ").trim().slice(0, MAX_LABEL_LENGTH) }
        : null;
    case "open":
      return featureOk ? { type: "open", feature: m.feature as number } : null;
    case "steer":
      return featureOk && m.feature === state.feature && Object.keys(m).length === 2 ? { type: "steer", feature: m.feature as number } : null;
    default:
      return null;
  }
}

/** The command link that opens the dashboard on one feature (hovers trust only this command). */
export function exploreFeatureLink(saeFolder: string, feature: number): string {
  return `command:loupe.exploreFeature?${encodeURIComponent(JSON.stringify([{ saeFolder, feature }]))}`;
}

/** Hover for one token under the feature lens: its strongest features with names and links. */
export function featureHoverMarkdown(result: TokenFeaturesResult, index: number, labelOf: (feature: number) => string | undefined): string {
  const token = result.tokens[index];
  const lines = [`**Loupe SAE features** at ${codeSpan(JSON.stringify(token.text))} (token ${index}, ${escapeMarkdown(result.hook_name)})`, ""];
  if (token.features.length === 0) {
    lines.push("No feature fires here.");
    return lines.join("\n");
  }
  lines.push("| feature | activation | label | density |", "|---|---:|---|---:|");
  for (const f of token.features) {
    const user = labelOf(f.feature);
    const label = user ? escapeMarkdown(user) : f.concept ? conceptText({ ...f.concept, label: escapeMarkdown(f.concept.label) }) : "";
    const density = f.density === undefined ? "–" : `${(f.density * 100).toFixed(f.density < 0.01 ? 2 : 1)}%`;
    const page = neuronpediaUrl(result.neuronpedia, f.feature);
    const link = `[#${f.feature}](${exploreFeatureLink(result.saeFolder, f.feature)})${page ? ` ([Neuronpedia](${page}))` : ""}`;
    lines.push(`| ${link} | ${f.value.toFixed(2)} | ${label} | ${density} |`);
  }
  if (!result.hasStats) lines.push("", "_No feature-stats.json next to the SAE: concepts and densities are not shown._");
  return lines.join("\n");
}

export interface FeatureTokenLevel {
  readonly index: number;
  readonly value: number;
  readonly level: number;
}

/**
 * Colour strengths: with a focused feature, its activation relative to its maximum in this text;
 * otherwise each token's strongest activation relative to the strongest in the text. A focused
 * feature uses the result's `focus` values when they are for it, else only the tokens where it is
 * among the top features.
 */
export function featureTokenLevels(result: TokenFeaturesResult, focus?: number): FeatureTokenLevel[] {
  const all = result.focus?.feature === focus ? result.focus?.values : undefined;
  const values = result.tokens.map((t, i) => (focus === undefined ? (t.features[0]?.value ?? 0) : (all?.[i] ?? t.features.find((f) => f.feature === focus)?.value ?? 0)));
  const max = Math.max(0, ...values);
  if (max <= 0) return [];
  const out: FeatureTokenLevel[] = [];
  values.forEach((value, index) => {
    const level = Math.min(LEVELS, Math.ceil((value / max) * LEVELS));
    if (level > 0) out.push({ index, value, level });
  });
  return out;
}

export interface FeaturePick {
  readonly feature: number;
  /** "#17 first names", "#17 ~colour (F1 0.93)" or "#17". */
  readonly label: string;
  /** Density and activation summary. */
  readonly description: string;
  /** Top promoted tokens, when the stats have logit effects. */
  readonly detail?: string;
}

/** The most entries a feature picker gets: a 10M-wide SAE config must not build a 10M-item list. */
export const MAX_FEATURE_PICK_ITEMS = 1 << 14;

/**
 * Entries for the Explore / Steer feature pickers: features the user labelled first, then those a
 * concept matches (best F1 first), then the rest by density; features that never fired on the
 * stats corpus last. Searching the picker searches labels, concepts and promoted tokens. Past
 * MAX_FEATURE_PICK_ITEMS features, only the labelled ones and the first indices are offered (the
 * CLI's --feature reaches any).
 */
export function featurePickItems(d_sae: number, labelOf: (feature: number) => string | undefined, stats?: FeatureStats, labelled: readonly number[] = []): FeaturePick[] {
  return pickOrder(d_sae, labelOf, stats, labelled).map((feature) => pickItem(feature, labelOf, stats));
}

/** As featurePickItems, yielding to the event loop between chunks (the extension host stays responsive). */
export async function featurePickItemsAsync(d_sae: number, labelOf: (feature: number) => string | undefined, stats?: FeatureStats, labelled: readonly number[] = []): Promise<FeaturePick[]> {
  const order = pickOrder(d_sae, labelOf, stats, labelled);
  const items: FeaturePick[] = [];
  for (let i = 0; i < order.length; i++) {
    if (i > 0 && i % 2048 === 0) await new Promise((resolve) => setImmediate(resolve));
    items.push(pickItem(order[i], labelOf, stats));
  }
  return items;
}

function pickOrder(d_sae: number, labelOf: (feature: number) => string | undefined, stats: FeatureStats | undefined, labelled: readonly number[]): number[] {
  // Group (labelled, concept, fired, never fired) and key within it, computed once per feature.
  const group = (f: number): number => {
    const summary = stats?.features[f];
    if (labelOf(f)) return 0;
    if (summary?.concept && summary.concept.f1 >= CONCEPT_LABEL_MIN_F1) return 1;
    return !stats || (summary && summary.fired > 0) ? 2 : 3;
  };
  const key = (f: number, g: number): number => (g === 1 ? -(stats?.features[f]?.concept?.f1 ?? 0) : g === 2 ? -(stats?.features[f]?.density ?? 0) : 0);
  // The first indices plus labelled features past them, in flat arrays (this runs on the extension host).
  const first = Math.min(d_sae, MAX_FEATURE_PICK_ITEMS);
  const beyond = [...new Set(labelled)].filter((f) => Number.isInteger(f) && f >= first && f < d_sae);
  const features = new Float64Array(first + beyond.length);
  for (let i = 0; i < first; i++) features[i] = i;
  features.set(beyond, first);
  const groups = new Uint8Array(features.length);
  const keys = new Float64Array(features.length);
  for (let i = 0; i < features.length; i++) {
    groups[i] = group(features[i]);
    keys[i] = key(features[i], groups[i]);
  }
  const order = Uint32Array.from(features, (_, i) => i).sort((a, b) => groups[a] - groups[b] || keys[a] - keys[b] || features[a] - features[b]);
  return Array.from(order.subarray(0, MAX_FEATURE_PICK_ITEMS), (i) => features[i]);
}

function pickItem(feature: number, labelOf: (feature: number) => string | undefined, stats: FeatureStats | undefined): FeaturePick {
  const summary = stats?.features[feature];
  const description = !summary ? "" : summary.fired === 0 ? "never fired on the stats corpus" : `density ${(summary.density * 100).toFixed(summary.density < 0.01 ? 2 : 1)}% · max ${summary.maxActivation.toFixed(2)}`;
  const promoted = summary?.logits?.promoted.slice(0, 5).map((e) => JSON.stringify(e.token)).join(" ");
  return { feature, label: featureDisplayName(feature, labelOf(feature), summary), description, ...(promoted ? { detail: `promotes ${promoted}` } : {}) };
}
