/**
 * User labels for SAE features, kept in the workspace at .loupe/feature-labels.json so they can be
 * committed and shared:
 *
 *   { "version": 1, "saes": { "models/reference/sae/blocks.1.hook_resid_post": { "17": "first names" } } }
 *
 * An SAE is keyed by its folder relative to the workspace (forward slashes), so two SAEs on one
 * hook keep separate labels. The functions that change labels return new objects; only
 * readFeatureLabels / writeFeatureLabels touch the disk.
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import { readTextSafely, readTextSafelyAsync, writeFileSafely, type SafeFileOptions } from "../safe-fs";
import type { ConceptMatch, FeatureSummary } from "./features";
import { formatReleaseSae, releaseSaeOfFolder } from "./releases/reference";

export const FEATURE_LABELS_FILE = path.join(".loupe", "feature-labels.json");
export const FEATURE_LABELS_VERSION = 1;

export interface FeatureLabels {
  readonly version: number;
  /** SAE key -> feature index (as a string, JSON's only key type) -> label. */
  readonly saes: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export function emptyFeatureLabels(): FeatureLabels {
  return { version: FEATURE_LABELS_VERSION, saes: {} };
}

/**
 * The key of an SAE folder in the labels file: RELEASE/SAE_ID for a published SAE in the hub cache
 * (the same on every machine), else the folder relative to the workspace when inside it.
 */
export function saeLabelKey(workspaceRoot: string, saeFolder: string): string {
  const published = releaseSaeOfFolder(saeFolder);
  if (published) return formatReleaseSae(published);
  const rel = path.relative(path.resolve(workspaceRoot), path.resolve(saeFolder));
  const key = rel === "" ? "." : rel.startsWith("..") || path.isAbsolute(rel) ? path.resolve(saeFolder) : rel;
  return key.split(path.sep).join("/");
}

export function parseFeatureLabels(text: string, file = FEATURE_LABELS_FILE): FeatureLabels {
  const bad = (why: string) => new LoupeError("bad-file", `${file}: ${why}. Fix or delete the file (Loupe rewrites it when you next label a feature).`, file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw bad(`not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(json)) throw bad("expected a JSON object");
  if (json.version !== FEATURE_LABELS_VERSION) throw bad(`version ${JSON.stringify(json.version)} is not ${FEATURE_LABELS_VERSION}`);
  if (!isObject(json.saes)) throw bad(`"saes" must be an object of SAE folder -> { feature: label }`);
  const saes = record<Record<string, string>>();
  for (const [key, map] of Object.entries(json.saes)) {
    if (!isObject(map)) throw bad(`saes["${key}"] must be an object of feature index -> label`);
    const out = record<string>();
    for (const [feature, label] of Object.entries(map)) {
      if (!/^(0|[1-9]\d*)$/.test(feature)) throw bad(`saes["${key}"] has key "${feature}", which is not a feature index`);
      if (typeof label !== "string") throw bad(`saes["${key}"]["${feature}"] must be a string label`);
      out[feature] = label;
    }
    saes[key] = out;
  }
  return { version: FEATURE_LABELS_VERSION, saes };
}

/** Stable text: SAEs sorted by key, features by index, so diffs stay small. */
export function serializeFeatureLabels(labels: FeatureLabels): string {
  const saes = record<Record<string, string>>();
  for (const key of Object.keys(labels.saes).sort()) {
    const map = labels.saes[key];
    const sorted = record<string>();
    for (const f of Object.keys(map).sort((a, b) => Number(a) - Number(b))) sorted[f] = map[f];
    saes[key] = sorted;
  }
  return JSON.stringify({ version: FEATURE_LABELS_VERSION, saes }, null, 2) + "\n";
}

export function featureLabel(labels: FeatureLabels, saeKey: string, feature: number): string | undefined {
  const map = Object.hasOwn(labels.saes, saeKey) ? labels.saes[saeKey] : undefined;
  return map && Object.hasOwn(map, String(feature)) ? map[String(feature)] : undefined;
}

/** A feature's label in one SAE's map (feature index -> label), as the worker hands maps to the editor. */
export function labelIn(labels: Readonly<Record<string, string>>, feature: number): string | undefined {
  return Object.hasOwn(labels, String(feature)) ? labels[String(feature)] : undefined;
}

/** Set (or, with an empty label, remove) one feature's label. */
export function setFeatureLabel(labels: FeatureLabels, saeKey: string, feature: number, label: string): FeatureLabels {
  if (!Number.isInteger(feature) || feature < 0) throw new LoupeError("bad-argument", `Feature index must be a non-negative integer (got ${feature}).`);
  const text = label.trim().replace(/\s+/g, " ");
  const map = Object.assign(record<string>(), Object.hasOwn(labels.saes, saeKey) ? labels.saes[saeKey] : undefined);
  if (text) map[String(feature)] = text;
  else delete map[String(feature)];
  const saes = Object.assign(record<Readonly<Record<string, string>>>(), labels.saes);
  saes[saeKey] = map;
  if (Object.keys(map).length === 0) delete saes[saeKey];
  return { version: FEATURE_LABELS_VERSION, saes };
}

/** Both sets of labels; where both label a feature, `incoming` wins. */
export function mergeFeatureLabels(base: FeatureLabels, incoming: FeatureLabels): FeatureLabels {
  const saes = record<Record<string, string>>();
  for (const key of new Set([...Object.keys(base.saes), ...Object.keys(incoming.saes)])) saes[key] = Object.assign(record<string>(), base.saes[key], incoming.saes[key]);
  return { version: FEATURE_LABELS_VERSION, saes };
}

/**
 * Largest labels file read (a Neuronpedia import of a 65k-feature SAE is about 4 MB); a bigger one
 * is refused rather than parsed.
 */
export const MAX_FEATURE_LABELS_BYTES = 16 * 1024 * 1024;

/** The labels in `file`, or none when it does not exist. Refuses a link or a file over MAX_FEATURE_LABELS_BYTES. */
export function readFeatureLabels(file: string, options: SafeFileOptions = {}): FeatureLabels {
  const text = readTextSafely(file, { ...options, maxBytes: MAX_FEATURE_LABELS_BYTES });
  return text === undefined ? emptyFeatureLabels() : parseFeatureLabels(text, file);
}

/** As readFeatureLabels, reading without blocking (the extension host). */
export async function readFeatureLabelsAsync(file: string, options: SafeFileOptions = {}): Promise<FeatureLabels> {
  const text = await readTextSafelyAsync(file, { ...options, maxBytes: MAX_FEATURE_LABELS_BYTES });
  return text === undefined ? emptyFeatureLabels() : parseFeatureLabels(text, file);
}

/** Write labels (never through a link). To keep labels another window added, merge over readFeatureLabels(file) first. */
export function writeFeatureLabels(file: string, labels: FeatureLabels, options: SafeFileOptions = {}): void {
  writeFileSafely(file, serializeFeatureLabels(labels), options);
}

/** An empty map-like object without a prototype: keys such as "__proto__" from a file stay plain keys. */
function record<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Concept matches below this F1 are not shown as a feature's label. */
export const CONCEPT_LABEL_MIN_F1 = 0.5;

/**
 * How a feature is named in hovers and lists: "#17 first names" (the user's label), else
 * "#17 ~name (F1 0.93)" (the best-matching ground-truth concept, when good enough), else "#17".
 */
export function featureDisplayName(feature: number, userLabel?: string, summary?: Pick<FeatureSummary, "concept">): string {
  if (userLabel) return `#${feature} ${userLabel}`;
  const c = summary?.concept;
  if (c && c.f1 >= CONCEPT_LABEL_MIN_F1) return `#${feature} ${conceptText(c)}`;
  return `#${feature}`;
}

/** "~name (F1 0.93)", or "~name (F1 0.93 above 1.6)" when the match holds above an activation threshold. */
export function conceptText(c: ConceptMatch): string {
  return `~${c.label} (F1 ${c.f1.toFixed(2)}${c.threshold === undefined ? "" : ` above ${c.threshold.toPrecision(2)}`})`;
}

/**
 * The feature a name means: "713" or "#713" is an index; otherwise the feature whose user label
 * is that name (case-insensitive), else the feature matching that concept best in the stats.
 */
export function resolveFeature(name: string, d_sae: number, userLabels: Readonly<Record<string, string>> = {}, stats?: { readonly concepts: ReadonlyArray<{ readonly label: string; readonly features: ReadonlyArray<{ readonly feature: number }> }> }): number {
  const text = name.trim();
  const index = /^#?(\d+)$/.exec(text);
  if (index) {
    const feature = Number(index[1]);
    if (feature >= d_sae) throw new LoupeError("bad-argument", `Feature ${feature} is outside 0..${d_sae - 1} (this SAE has ${d_sae} features).`);
    return feature;
  }
  const wanted = text.toLowerCase();
  const labelled = Object.entries(userLabels).find(([, label]) => label.toLowerCase() === wanted);
  if (labelled) return Number(labelled[0]);
  const concept = stats?.concepts.find((c) => c.label.toLowerCase() === wanted);
  if (concept?.features[0]) return concept.features[0].feature;
  const known = [...Object.values(userLabels), ...(stats?.concepts.map((c) => c.label) ?? [])];
  throw new LoupeError("bad-argument", `No feature is called "${text}". Give a feature index (0..${d_sae - 1})${known.length ? ` or one of: ${[...new Set(known)].sort().join(", ")}` : ""}.`);
}
