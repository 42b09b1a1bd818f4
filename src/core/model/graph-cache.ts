/**
 * Built graphs cached on disk by content hash. A graph depends only on what built it (the package
 * version and the graph builder's source), the config and the safetensors header (names, dtypes,
 * shapes, offsets): the weights stay outside it. Keying on the builder's source means an update or
 * a local change to a builder never reuses a graph an older builder made, with no version to bump.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** Set by esbuild (esbuild.mjs) in the bundles, which hold no source files to hash. */
declare const LOUPE_GRAPH_BUILDER: string | undefined;

/** The module whose imports, followed within the repository, are the graph builder. */
export const GRAPH_BUILDER_ENTRY = path.join(__dirname, "build-graph.ts");

/** Entries another builder made are removed once unused this long (another install may still use its own). */
export const STALE_GRAPH_MS = 24 * 3600 * 1000;

let builderId: string | undefined;

/**
 * What builds graphs here: "version+hash". In a bundle, fixed at build time; from source (tsx,
 * mocha), the package version and a hash of the builder modules as they are now.
 */
export function graphBuilderId(): string {
  builderId ??= typeof LOUPE_GRAPH_BUILDER === "string" ? LOUPE_GRAPH_BUILDER : `${packageVersion()}+${builderSourceHash(GRAPH_BUILDER_ENTRY)}`;
  return builderId;
}

/** sha256 (16 hex digits) of `entry` and every module it imports by a relative path, transitively. */
export function builderSourceHash(entry: string): string {
  const files = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const [, spec] of fs.readFileSync(file, "utf8").matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+)"/g)) {
      const target = path.resolve(path.dirname(file), spec);
      const found = [`${target}.ts`, path.join(target, "index.ts")].find((f) => fs.existsSync(f));
      if (found) visit(found);
    }
  };
  visit(entry);
  const hash = createHash("sha256");
  const root = path.dirname(entry);
  for (const file of [...files].sort()) hash.update(path.relative(root, file)).update("\0").update(fs.readFileSync(file)).update("\0");
  return hash.digest("hex").slice(0, 16);
}

function packageVersion(): string {
  const file = path.join(__dirname, "..", "..", "..", "package.json");
  try {
    return String((JSON.parse(fs.readFileSync(file, "utf8")) as { version?: unknown }).version ?? "0");
  } catch {
    return "0";
  }
}

/** The prefix of every cache file this builder writes: other prefixes are stale. */
function builderTag(id: string): string {
  return createHash("sha256").update(id).digest("hex").slice(0, 12);
}

export function defaultCacheDir(): string {
  if (process.env.LOUPE_CACHE_DIR) return process.env.LOUPE_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache");
  return path.join(base, "loupe");
}

/** The cache key of a graph: the builder's tag, then a hash of the builder and the graph's inputs. */
export function graphKey(parts: readonly string[], builder = graphBuilderId()): string {
  const hash = createHash("sha256");
  hash.update(builder);
  for (const part of parts) hash.update("\0").update(part);
  return `${builderTag(builder)}-${hash.digest("hex")}`;
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
  removeStaleGraphs(path.dirname(file), key.slice(0, key.indexOf("-") + 1));
  try {
    const bytes = fs.readFileSync(file);
    // Marks the entry as in use, for another builder's clean-up.
    fs.utimesSync(file, new Date(), new Date());
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
    return { bytes, fromCache: false, file };
  } catch {
    return { bytes, fromCache: false };
  }
}

/**
 * Remove what other builders left in the cache folder (files not starting with `keep`, graphs of
 * older versions and keys without a builder tag) once unused for `staleMs`. Best effort.
 */
export function removeStaleGraphs(dir: string, keep: string, staleMs = STALE_GRAPH_MS, now = Date.now()): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (keep && name.startsWith(keep)) continue;
    const file = path.join(dir, name);
    try {
      const stat = fs.statSync(file);
      if (stat.isFile() && now - stat.mtimeMs > staleMs) fs.rmSync(file);
    } catch {
      // Gone already, or not ours to remove.
    }
  }
}
