/**
 * feature-stats.json, saved next to an SAE's cfg.json (in Loupe's cache for a published one in
 * the hub cache): FeatureStats as computed by
 * computeFeatureStats. Reading checks the parts the editor relies on (format, version, widths,
 * one entry per feature) and names the file in every error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { snapshotLocation } from "../hub/cache-layout";
import { defaultCacheDir } from "../model/graph-cache";
import { readTextSafely, writeFileSafely } from "../safe-fs";
import { FEATURE_STATS_FORMAT, FEATURE_STATS_VERSION, type FeatureStats } from "./features";
import type { Sae } from "./sae";

export const FEATURE_STATS_FILENAME = "feature-stats.json";
/** Largest stats file read (the bundled 1,024-feature SAE's is 3 MB; about 3 KB a feature). */
export const MAX_FEATURE_STATS_BYTES = 256 * 1024 * 1024;

/** Under Loupe's cache: statistics of dictionaries that live in a Hugging Face cache. */
export const HUB_FEATURE_STATS_DIR = "feature-stats";

/**
 * Where an SAE's statistics live: next to its cfg.json, except for a folder inside a Hugging Face
 * cache snapshot (a published dictionary), which Loupe never writes into (the hub owns it, and its
 * files are shared blobs): those go to Loupe's cache, keyed by repository, commit and path.
 */
export function featureStatsFile(saeFolder: string, cacheDir = defaultCacheDir()): string {
  return statsFileFor(saeFolder, FEATURE_STATS_FILENAME, cacheDir);
}

/** A statistics file `name` of a dictionary folder: in it, or in Loupe's cache for a folder inside a hub snapshot. */
export function statsFileFor(folder: string, name: string, cacheDir = defaultCacheDir()): string {
  const dir = path.resolve(folder);
  const hub = snapshotLocation(dir);
  if (!hub) return path.join(dir, name);
  return path.join(path.resolve(cacheDir), HUB_FEATURE_STATS_DIR, hub.repoFolder, hub.commit, ...hub.inRepo, name);
}

/** A file's modification time and size ("-" when missing): reread a cached parse when this changes. */
export function fileStamp(file: string): string {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  return stat ? `${stat.mtimeMs}:${stat.size}` : "-";
}

export function writeFeatureStats(saeFolder: string, stats: FeatureStats): string {
  return writeFeatureStatsFile(featureStatsFile(saeFolder), stats);
}

export function writeFeatureStatsFile(file: string, stats: FeatureStats): string {
  writeFileSafely(file, JSON.stringify(stats) + "\n");
  return file;
}

/** The stats next to an SAE, or undefined when the folder has none. Checked against `sae` when given. */
export function readFeatureStats(saeFolder: string, sae?: Sae): FeatureStats | undefined {
  return readFeatureStatsFile(featureStatsFile(saeFolder), sae && statsSubject(sae));
}

/** The dictionary a stats file must describe: its hook and widths. */
export interface StatsSubject {
  readonly hook_name: string;
  readonly d_in: number;
  readonly d_sae: number;
}

export function statsSubject(sae: Sae): StatsSubject {
  return { hook_name: sae.hookName, d_in: sae.d_in, d_sae: sae.d_sae };
}

/** A stats file (any name), or undefined when it does not exist. Checked against `expected` when given. */
export function readFeatureStatsFile(file: string, expected?: StatsSubject): FeatureStats | undefined {
  const text = readTextSafely(file, { maxBytes: MAX_FEATURE_STATS_BYTES });
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new LoupeError("bad-file", `${file} is not valid JSON (${(error as Error).message}). Delete it and compute the statistics again.`, file);
  }
  const stats = parseFeatureStats(json, file);
  if (expected && (stats.sae.d_sae !== expected.d_sae || stats.sae.d_in !== expected.d_in || stats.sae.hook_name !== expected.hook_name)) {
    throw new LoupeError(
      "bad-file",
      `${file} describes features at ${stats.sae.hook_name} (d_in ${stats.sae.d_in}, d_sae ${stats.sae.d_sae}), not these (${expected.hook_name}, d_in ${expected.d_in}, d_sae ${expected.d_sae}). Compute the statistics again.`,
      file,
    );
  }
  return stats;
}

/** Check parsed JSON is FeatureStats (structure, not every number). */
export function parseFeatureStats(json: unknown, file = FEATURE_STATS_FILENAME): FeatureStats {
  const bad = (why: string) => new LoupeError("bad-file", `${file}: ${why}. Compute the feature statistics again.`, file);
  if (!isObject(json)) throw bad("expected a JSON object");
  if (json.format !== FEATURE_STATS_FORMAT) throw bad(`"format" is ${JSON.stringify(json.format)}, expected "${FEATURE_STATS_FORMAT}"`);
  if (json.version !== FEATURE_STATS_VERSION) throw bad(`version ${JSON.stringify(json.version)} is not the version this Loupe reads (${FEATURE_STATS_VERSION})`);
  const sae = json.sae;
  if (!isObject(sae) || typeof sae.hook_name !== "string" || !isCount(sae.d_in) || !isCount(sae.d_sae)) throw bad(`"sae" needs hook_name, d_in and d_sae`);
  if (!isObject(json.corpus) || !isCount(json.corpus.tokens)) throw bad(`"corpus" needs a token count`);
  const h = json.histogram;
  if (!isObject(h) || !isCount(h.bins) || typeof h.log10Min !== "number" || typeof h.log10Max !== "number") throw bad(`"histogram" needs bins, log10Min and log10Max`);
  if (!Array.isArray(json.features) || json.features.length !== sae.d_sae) throw bad(`"features" must list all ${sae.d_sae} features`);
  json.features.forEach((f: unknown, i: number) => {
    if (!isObject(f) || f.index !== i) throw bad(`features[${i}] must have index ${i}`);
    if (typeof f.density !== "number" || !Array.isArray(f.histogram) || f.histogram.length !== h.bins || !Array.isArray(f.topContexts)) throw bad(`features[${i}] needs density, a ${h.bins}-bin histogram and topContexts`);
    // The dashboard slices each context's text by its offsets: a malformed one must stop here.
    f.topContexts.forEach((c: unknown, j: number) => {
      if (!isContext(c)) throw bad(`features[${i}].topContexts[${j}] needs text, offsets ([start, end] pairs), values, token and value`);
    });
  });
  if (!Array.isArray(json.concepts)) throw bad(`"concepts" must be a list`);
  return json as unknown as FeatureStats;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isContext(c: unknown): boolean {
  return (
    isObject(c) &&
    typeof c.text === "string" &&
    typeof c.value === "number" &&
    Number.isInteger(c.token) &&
    Array.isArray(c.values) &&
    c.values.every((v) => typeof v === "number") &&
    Array.isArray(c.offsets) &&
    c.offsets.every((o) => Array.isArray(o) && o.length === 2 && isCount(o[0]) && isCount(o[1]))
  );
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}
