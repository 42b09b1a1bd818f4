/**
 * Built graphs cached on disk by content hash. A graph depends only on the builder version, the
 * config and the safetensors header (names, dtypes, shapes, offsets): the weights stay outside it.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** Bump when the graph layout changes, so stale cached graphs are not reused. */
export const GRAPH_BUILDER_VERSION = "graphs-v6";

export function defaultCacheDir(): string {
  if (process.env.LOUPE_CACHE_DIR) return process.env.LOUPE_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache");
  return path.join(base, "loupe");
}

export function graphKey(parts: readonly string[]): string {
  const hash = createHash("sha256");
  hash.update(GRAPH_BUILDER_VERSION);
  for (const part of parts) hash.update("\0").update(part);
  return hash.digest("hex");
}

export interface CachedGraph {
  readonly bytes: Uint8Array;
  readonly fromCache: boolean;
  readonly file?: string;
}

/** Default cap on the graphs kept on disk (LOUPE_GRAPH_CACHE_MB overrides it). */
export const DEFAULT_GRAPH_CACHE_BYTES = 1024 * 1024 * 1024;

export function graphCacheLimit(): number {
  const mb = Number(process.env.LOUPE_GRAPH_CACHE_MB);
  return Number.isFinite(mb) && mb > 0 ? mb * 1024 * 1024 : DEFAULT_GRAPH_CACHE_BYTES;
}

/**
 * Remove the least recently used graphs (by modification time, which a cache hit refreshes) until
 * the folder holds at most `maxBytes`; `keep` (the graph just stored) is never removed.
 * Returns the files removed.
 */
export function evictGraphs(graphsDir: string, maxBytes: number, keep?: string): string[] {
  let entries: { file: string; size: number; used: number }[];
  try {
    entries = fs
      .readdirSync(graphsDir, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith(".onnx"))
      .map((e) => {
        const file = path.join(graphsDir, e.name);
        const stat = fs.statSync(file);
        return { file, size: stat.size, used: stat.mtimeMs };
      });
  } catch {
    return [];
  }
  let total = entries.reduce((sum, e) => sum + e.size, 0);
  const removed: string[] = [];
  for (const entry of entries.sort((a, b) => a.used - b.used)) {
    if (total <= maxBytes) break;
    if (entry.file === keep) continue;
    try {
      fs.rmSync(entry.file, { force: true });
      total -= entry.size;
      removed.push(entry.file);
    } catch {
      // Another process may hold it; the next store tries again.
    }
  }
  return removed;
}

/** Return the cached graph for `key`, or build, store and return it. A cache that cannot be written is skipped. */
export function cachedGraph(cacheDir: string | undefined, key: string, build: () => Uint8Array, maxCacheBytes = graphCacheLimit()): CachedGraph {
  if (!cacheDir) return { bytes: build(), fromCache: false };
  const file = path.join(cacheDir, "graphs", `${key}.onnx`);
  try {
    const bytes = fs.readFileSync(file);
    touch(file);
    return { bytes, fromCache: true, file };
  } catch {
    // Not cached yet.
  }
  const bytes = build();
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, bytes);
    fs.renameSync(temp, file);
    evictGraphs(path.dirname(file), maxCacheBytes, file);
    return { bytes, fromCache: false, file };
  } catch {
    return { bytes, fromCache: false };
  }
}

/** Mark a cached graph as just used (evicted last); a read-only cache stays as it is. */
function touch(file: string): void {
  try {
    const now = new Date();
    fs.utimesSync(file, now, now);
  } catch {
    // Read-only cache: eviction order is then by creation.
  }
}
