/**
 * The backend's one cache of dictionaries, by folder: each SAE loaded once, its feature-stats.json
 * parsed and checked against it once, each again only when its files change (path, size, mtime).
 * The feature lens, steering, the dashboard and the feature picker all read through it, so a
 * megabytes-long stats file is parsed once and never served unchecked.
 */
import * as path from "node:path";
import { SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME } from "./config";
import { featureStatsFile, fileStamp, readFeatureStatsFile, statsSubject } from "./feature-stats-file";
import type { FeatureStats } from "./features";
import { loadSae } from "./load";
import type { Sae } from "./sae";
import { readSparsityDensities, SPARSITY_FILENAME } from "./sparsity";

export interface LoadedSae {
  readonly sae: Sae;
  /** feature-stats.json, checked against `sae`; undefined when there is none. */
  readonly stats: FeatureStats | undefined;
  /** SAELens's sparsity.safetensors densities, read only when there are no stats. */
  readonly densities?: Float32Array;
  /** Where the stats are looked for: next to the SAE, or in Loupe's cache for one in a hub cache. */
  readonly statsFile: string;
}

/** A stats file's parse at one stamp: the stats (undefined: no file), or why the file was refused. */
type StatsRead = { readonly stamp: string } & ({ readonly stats: FeatureStats | undefined } | { readonly error: unknown });

interface Entry {
  /** cfg.json, the weights and sparsity.safetensors: a change reloads the SAE. */
  readonly stamp: string;
  readonly sae: Sae;
  stats?: StatsRead;
  /** null: read, and the folder has none. */
  densities?: Float32Array | null;
}

export class SaeStore {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly capacity = 4) {}

  /** The SAE in `folder` with its stats; a broken stats file throws its error on every call until it changes. */
  get(folder: string): LoadedSae {
    const dir = path.resolve(folder);
    const entry = this.entry(dir);
    const statsFile = featureStatsFile(dir);
    const stats = readOnce(entry, statsFile);
    if (stats) return { sae: entry.sae, stats, statsFile };
    if (entry.densities === undefined) entry.densities = readSparsityDensities(dir, entry.sae.d_sae) ?? null;
    return { sae: entry.sae, stats: undefined, statsFile, ...(entry.densities ? { densities: entry.densities } : {}) };
  }

  /** Just the SAE in `folder` (its config for a view), whatever state its stats file is in. */
  sae(folder: string): Sae {
    return this.entry(path.resolve(folder)).sae;
  }

  private entry(dir: string): Entry {
    const stamp = [SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, SPARSITY_FILENAME].map((f) => fileStamp(path.join(dir, f))).join("|");
    const hit = this.entries.get(dir);
    if (hit && hit.stamp === stamp) return hit;
    const entry: Entry = { stamp, sae: loadSae(dir) };
    this.entries.delete(dir);
    this.entries.set(dir, entry);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return entry;
  }
}

/** The entry's stats, parsed and checked only when the file's stamp differs from the last read. */
function readOnce(entry: Entry, file: string): FeatureStats | undefined {
  const stamp = fileStamp(file);
  if (entry.stats?.stamp !== stamp) {
    try {
      entry.stats = { stamp, stats: readFeatureStatsFile(file, statsSubject(entry.sae)) };
    } catch (error) {
      entry.stats = { stamp, error };
    }
  }
  if ("error" in entry.stats) throw entry.stats.error;
  return entry.stats.stats;
}
