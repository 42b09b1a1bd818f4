import * as fs from "node:fs";
import * as nodePath from "node:path";
import { LoupeError } from "../errors";
import { MAX_MODEL_SIDE_FILE_BYTES, readTextSafely } from "../safe-fs";
import { commonFolder } from "./real-paths";

/** Element types Loupe reads from safetensors files. */
export type SafetensorsDtype = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "U8" | "BOOL";

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = {
  F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1, BOOL: 1,
};

export interface TensorEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
  /** The file holding the data, as it was named (a shard of a sharded checkpoint, a hub snapshot's symlink). */
  readonly file: string;
  /**
   * The data file's real path (symlinks resolved) relative to the index's dataDir: what onnxruntime
   * reads as external data. It refuses data whose real path leaves its folder, so a hub snapshot's
   * symlink into blobs/ must be followed first.
   */
  readonly location: string;
}

/**
 * The parsed header of a safetensors file, or of every shard of a sharded checkpoint
 * (model.safetensors.index.json); tensor data is read on demand.
 */
export interface SafetensorsIndex {
  /** The safetensors file, or the shard index of a sharded checkpoint: what messages name. */
  readonly path: string;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  /** The raw JSON header bytes (every shard's, in order): what a graph built from this file depends on. */
  readonly headerText: string;
  /** Bytes on disk, all shards together. */
  readonly fileSize: number;
  /** The real folder holding the data files (entries' `location`s are relative to it). */
  readonly dataDir: string;
}

/** Headers beyond this are not plausible; refusing them avoids allocating gigabytes for a corrupt length. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function bad(path: string, why: string): LoupeError {
  return new LoupeError("bad-file", `${path} is not a valid safetensors file: ${why}. Re-export it with safetensors (save_file / save_pretrained).`, path);
}

/** Read and validate a safetensors header: u64 little-endian length, then a JSON table of tensors. */
export function readSafetensorsIndex(path: string): SafetensorsIndex {
  let fd: number;
  try {
    fd = fs.openSync(path, "r");
  } catch {
    throw new LoupeError("missing-file", `Cannot open ${path}: the model folder needs this file. Download or copy it again.`, path);
  }
  try {
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize < 8) throw bad(path, "the file is shorter than its 8-byte header length");
    const lengthBytes = Buffer.alloc(8);
    fs.readSync(fd, lengthBytes, 0, 8, 0);
    const headerLength = lengthBytes.readBigUInt64LE(0);
    if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, fileSize - 8))) {
      throw bad(path, `the header claims ${headerLength} bytes but the file has ${fileSize}`);
    }
    const headerBytes = Buffer.alloc(Number(headerLength));
    fs.readSync(fd, headerBytes, 0, headerBytes.length, 8);
    const headerText = headerBytes.toString("utf8");
    let header: unknown;
    try {
      header = JSON.parse(headerText);
    } catch {
      throw bad(path, "the header is not JSON");
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) throw bad(path, "the header is not a JSON object");
    const dataStart = 8 + headerBytes.length;
    const realFile = fs.realpathSync(path);
    const data: DataFile = { file: path, location: nodePath.basename(realFile) };
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        metadata = (value ?? {}) as Record<string, string>;
        continue;
      }
      tensors.set(name, parseEntry(data, name, value, dataStart, fileSize));
    }
    return { path, tensors, metadata, headerText, fileSize, dataDir: nodePath.dirname(realFile) };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A sharded checkpoint as one index: model.safetensors.index.json's `weight_map` names the shard
 * holding each tensor (every architecture is saved this way past save_pretrained's max_shard_size).
 * Each shard's header is read; every mapped tensor must be where the map says.
 */
export function readShardedSafetensorsIndex(indexFile: string): SafetensorsIndex {
  const shardMap = readWeightMap(indexFile);
  const dir = nodePath.dirname(indexFile);
  const shardNames = [...new Set(shardMap.values())];
  const shards = shardNames.map((name) => readSafetensorsIndex(nodePath.join(dir, name)));
  // Shards may resolve into one blobs/ folder (a hub snapshot) or stay side by side (a plain folder, a copy).
  const dataDir = commonFolder(shards.map((s) => s.dataDir));
  const tensors = new Map<string, TensorEntry>();
  shards.forEach((shard, i) => {
    for (const entry of shard.tensors.values()) {
      if (tensors.has(entry.name)) {
        throw new LoupeError("bad-file", `${indexFile}: tensor "${entry.name}" is in two shards (${tensors.get(entry.name)!.file} and ${entry.file}). Re-save the checkpoint.`, indexFile);
      }
      const location = nodePath.relative(dataDir, nodePath.join(shard.dataDir, entry.location));
      tensors.set(entry.name, { ...entry, location });
    }
    for (const [tensor, shardName] of shardMap) {
      if (shardName === shardNames[i] && !shard.tensors.has(tensor)) {
        throw new LoupeError("bad-file", `${indexFile} places tensor "${tensor}" in ${shardName}, which does not hold it. Re-download or re-save the checkpoint.`, indexFile);
      }
    }
  });
  return {
    path: indexFile,
    tensors,
    metadata: {},
    headerText: shards.map((s) => s.headerText).join("\n"),
    fileSize: shards.reduce((sum, s) => sum + s.fileSize, 0),
    dataDir,
  };
}

/** weight_map of a shard index file: tensor name -> shard file name (a plain name in the same folder). */
function readWeightMap(indexFile: string): Map<string, string> {
  let text: string | undefined;
  try {
    text = readTextSafely(indexFile, { maxBytes: MAX_MODEL_SIDE_FILE_BYTES });
  } catch (error) {
    if (error instanceof LoupeError) throw error;
    throw new LoupeError("missing-file", `Cannot read ${indexFile} (${(error as NodeJS.ErrnoException).code}). Download or copy it again.`, indexFile);
  }
  if (text === undefined) throw new LoupeError("missing-file", `Cannot read ${indexFile} (ENOENT). Download or copy it again.`, indexFile);
  return parseWeightMap(text, indexFile);
}

/** weight_map of a shard index's text; a LoupeError naming `indexFile` when it is not one. */
export function parseWeightMap(text: string, indexFile: string): Map<string, string> {
  const fail = (why: string) => new LoupeError("bad-file", `${indexFile} is not a valid safetensors shard index: ${why}. Re-download it or re-save the model with save_pretrained.`, indexFile);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw fail("it is not JSON");
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) throw fail(`it has no "weight_map" object`);
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || !/^[\w.-]+\.safetensors$/.test(shard) || shard.startsWith(".")) {
      throw fail(`tensor "${tensor}" maps to ${JSON.stringify(shard)}, not a .safetensors file beside the index`);
    }
    map.set(tensor, shard);
  }
  if (map.size === 0) throw fail("its weight_map is empty");
  return map;
}

interface DataFile {
  readonly file: string;
  readonly location: string;
}

function parseEntry(data: DataFile, name: string, value: unknown, dataStart: number, fileSize: number): TensorEntry {
  const path = data.file;
  const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof entry !== "object" || entry === null) throw bad(path, `tensor "${name}" has no description`);
  const dtype = entry.dtype;
  if (typeof dtype !== "string" || !(dtype in BYTES_PER_ELEMENT)) {
    throw bad(path, `tensor "${name}" has unsupported dtype ${JSON.stringify(dtype)}`);
  }
  const shape = entry.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(path, `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
  }
  const offsets = entry.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw bad(path, `tensor "${name}" has invalid data_offsets`);
  }
  const [begin, end] = offsets as [number, number];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const byteLength = elements * BYTES_PER_ELEMENT[dtype as SafetensorsDtype];
  if (end - begin !== byteLength) {
    throw bad(path, `tensor "${name}" has shape [${shape.join(", ")}] (${byteLength} bytes) but its data spans ${end - begin} bytes`);
  }
  if (dataStart + end > fileSize) throw bad(path, `tensor "${name}" runs past the end of the file (truncated download?)`);
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], fileOffset: dataStart + begin, byteLength, ...data };
}

/** Read one tensor as float32, converting F16 / BF16 / F64. The result is a fresh, aligned array. */
export function readTensorF32(index: SafetensorsIndex, name: string): Float32Array {
  const entry = index.tensors.get(name);
  if (!entry) throw new LoupeError("bad-file", `${index.path} has no tensor "${name}".`, index.path);
  const raw = readRaw(entry.file, entry);
  return toFloat32(raw, entry.dtype, `${entry.file}: tensor "${name}"`);
}

function readRaw(path: string, entry: TensorEntry): Buffer {
  const bytes = Buffer.alloc(entry.byteLength);
  const fd = fs.openSync(path, "r");
  try {
    let done = 0;
    while (done < bytes.length) {
      const n = fs.readSync(fd, bytes, done, bytes.length - done, entry.fileOffset + done);
      if (n === 0) throw bad(path, `tensor "${entry.name}" is truncated`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

/** Convert little-endian raw bytes to float32 (Buffer slices may be unaligned, so copy first). */
export function toFloat32(raw: Uint8Array, dtype: SafetensorsDtype, what: string): Float32Array {
  const aligned = new Uint8Array(raw.byteLength);
  aligned.set(raw);
  switch (dtype) {
    case "F32":
      return new Float32Array(aligned.buffer);
    case "F64":
      return Float32Array.from(new Float64Array(aligned.buffer));
    case "F16":
      return halfToFloat32(new Uint16Array(aligned.buffer));
    case "BF16": {
      // bf16 is the top half of a float32: shift it back into place.
      const halves = new Uint16Array(aligned.buffer);
      const bits = new Uint32Array(halves.length);
      for (let i = 0; i < halves.length; i++) bits[i] = halves[i] << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      throw new LoupeError("bad-file", `${what} has dtype ${dtype}; Loupe expects floating-point weights.`);
  }
}

export function halfToFloat32(halves: Uint16Array): Float32Array {
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) {
    const h = halves[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) out[i] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) out[i] = mantissa ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return out;
}

/** Each value's bits as a float32. */
function float32Bits(values: ArrayLike<number>): Uint32Array {
  return new Uint32Array(Float32Array.from(values).buffer);
}

/** float32 -> IEEE half, rounded to nearest even; too large becomes infinity, too small a subnormal or zero. */
export function float32ToHalf(values: ArrayLike<number>): Uint16Array {
  const all = float32Bits(values);
  const out = new Uint16Array(all.length);
  for (let i = 0; i < all.length; i++) {
    const bits = all[i];
    const sign = (bits >>> 16) & 0x8000;
    const exp32 = (bits >>> 23) & 0xff;
    let mant = bits & 0x7fffff;
    if (exp32 === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const exp = exp32 - 127 + 15;
    let shift = 13;
    let half: number;
    if (exp >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (exp <= 0) {
      // Subnormal: the implicit leading 1 joins the mantissa, shifted further right.
      if (exp < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      shift = 14 - exp;
      half = mant >>> shift;
    } else {
      half = (exp << 10) | (mant >>> 13);
    }
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    // A carry out of the mantissa moves into the exponent, which is the right rounding too.
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    out[i] = sign | half;
  }
  return out;
}

/** float32 -> bfloat16 (the top half of a float32), rounded to nearest even; NaN stays NaN. */
export function float32ToBf16(values: ArrayLike<number>): Uint16Array {
  return Uint16Array.from(float32Bits(values), (bits) =>
    (bits & 0x7fffffff) > 0x7f800000 ? (bits >>> 16) | 0x40 : (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16,
  );
}

export interface TensorToWrite {
  readonly dtype: "F32";
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Serialize float32 tensors as safetensors (used by tests, fixtures and SAE training). */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let headerText = JSON.stringify(header);
  // Pad to 8 bytes so data starts aligned, as the reference implementation does.
  headerText += " ".repeat((8 - (Buffer.byteLength(headerText) % 8)) % 8);
  const headerBytes = Buffer.from(headerText, "utf8");
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    Buffer.from(d.buffer, d.byteOffset, d.byteLength).copy(out, at);
    at += d.byteLength;
  }
  return out;
}
