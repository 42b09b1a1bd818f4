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

/** Return the cached graph for `key`, or build, store and return it. A cache that cannot be written is skipped. */
export function cachedGraph(cacheDir: string | undefined, key: string, build: () => Uint8Array): CachedGraph {
  if (!cacheDir) return { bytes: build(), fromCache: false };
  const file = path.join(cacheDir, "graphs", `${key}.onnx`);
  try {
    return { bytes: fs.readFileSync(file), fromCache: true, file };
  } catch {
    // Not cached yet.
  }
  const bytes = build();
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, bytes);
    fs.renameSync(temp, file);
    return { bytes, fromCache: false, file };
  } catch {
    return { bytes, fromCache: false };
  }
}
