/**
 * Hugging Face hub caches and sharded checkpoints built from the tiny fixtures, laid out as
 * huggingface_hub writes them: blobs named by content hash, snapshots of relative symlinks (or
 * plain copies, as on Windows), refs/{revision} holding the commit.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { readSafetensorsIndex } from "../../src/core/model/safetensors";

export interface CachedRepo {
  readonly snapshot: string;
  readonly commit: string;
}

/** Put `files` (name in the repo -> bytes) into `cacheDir` as repo `repoId` at `revision`. */
export function cacheRepo(
  cacheDir: string,
  repoId: string,
  files: Readonly<Record<string, Buffer>>,
  options: { revision?: string; commit?: string; copies?: boolean } = {},
): CachedRepo {
  const repoDir = path.join(cacheDir, `models--${repoId.replace("/", "--")}`);
  const commit = options.commit ?? createHash("sha1").update(repoId + JSON.stringify(Object.keys(files))).digest("hex");
  const snapshot = path.join(repoDir, "snapshots", commit);
  fs.mkdirSync(path.join(repoDir, "blobs"), { recursive: true });
  for (const [name, bytes] of Object.entries(files)) {
    const blob = path.join(repoDir, "blobs", createHash("sha256").update(bytes).digest("hex"));
    fs.writeFileSync(blob, bytes);
    const target = path.join(snapshot, name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (options.copies) fs.copyFileSync(blob, target);
    else fs.symlinkSync(path.relative(path.dirname(target), blob), target);
  }
  const ref = path.join(repoDir, "refs", options.revision ?? "main");
  fs.mkdirSync(path.dirname(ref), { recursive: true });
  fs.writeFileSync(ref, commit);
  return { snapshot, commit };
}

/** Every file of a fixture folder, by name. */
export function folderFiles(dir: string, except: readonly string[] = ["reference.json"]): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (const name of fs.readdirSync(dir)) if (!except.includes(name)) files[name] = fs.readFileSync(path.join(dir, name));
  return files;
}

/**
 * A safetensors file split as save_pretrained splits it: model-0000i-of-0000n.safetensors with
 * the tensors in order, byte for byte (any dtype), plus model.safetensors.index.json.
 */
export function shardSafetensors(file: string, shards: number): Record<string, Buffer> {
  const index = readSafetensorsIndex(file);
  const bytes = fs.readFileSync(file);
  const entries = [...index.tensors.values()].sort((a, b) => a.fileOffset - b.fileOffset);
  const perShard = Math.ceil(entries.length / shards);
  const out: Record<string, Buffer> = {};
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < shards; s++) {
    const name = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
    const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
    const parts: Buffer[] = [];
    let offset = 0;
    for (const e of entries.slice(s * perShard, (s + 1) * perShard)) {
      header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.byteLength] };
      parts.push(bytes.subarray(e.fileOffset, e.fileOffset + e.byteLength));
      offset += e.byteLength;
      weightMap[e.name] = name;
    }
    let headerText = JSON.stringify(header);
    headerText += " ".repeat((8 - (Buffer.byteLength(headerText) % 8)) % 8);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(headerText)));
    out[name] = Buffer.concat([length, Buffer.from(headerText), ...parts]);
    totalSize += offset;
  }
  out["model.safetensors.index.json"] = Buffer.from(JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
  return out;
}

/** A fixture folder's files with its model.safetensors split into shards. */
export function shardedFolderFiles(dir: string, shards = 2): Record<string, Buffer> {
  const { "model.safetensors": _single, ...rest } = folderFiles(dir);
  return { ...rest, ...shardSafetensors(path.join(dir, "model.safetensors"), shards) };
}

/** Write files into a plain folder. */
export function writeFolder(dir: string, files: Readonly<Record<string, Buffer>>): string {
  for (const [name, bytes] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  return dir;
}

/** Run `fn` with environment variables set (undefined: unset), restoring them after. */
export async function withEnv<T>(vars: Readonly<Record<string, string | undefined>>, fn: () => Promise<T> | T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}
