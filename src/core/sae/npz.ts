/**
 * NumPy .npz archives (np.savez / np.savez_compressed), as Gemma Scope ships its SAEs (params.npz):
 * a zip file whose members NAME.npy are each a .npy file. Members are stored or deflated; the
 * .npy header ("\x93NUMPY", version, a Python dict literal with descr, fortran_order, shape)
 * precedes the row-major data. Read into Float32Arrays; nothing else of zip or numpy is needed.
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { LoupeError } from "../errors";
import { halfToFloat32 } from "../model/safetensors";

export interface NpyArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_FILE_HEADER = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;

/** Every array of an .npz file, by name (without ".npy"). */
export function readNpz(file: string): Map<string, NpyArray> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw new LoupeError("missing-file", `Cannot open ${file}. Download the dictionary again (loupe pull --sae RELEASE/SAE_ID).`, file);
  }
  const bad = (why: string) => new LoupeError("bad-file", `${file} is not a valid .npz archive: ${why}. Download it again, or re-save it with numpy.savez.`, file);
  const out = new Map<string, NpyArray>();
  for (const member of zipMembers(bytes, bad)) {
    if (!member.name.endsWith(".npy")) continue;
    const name = member.name.slice(0, -4);
    out.set(name, parseNpy(member.data, (why) => bad(`${member.name}: ${why}`)));
  }
  return out;
}

interface ZipMember {
  readonly name: string;
  readonly data: Buffer;
}

function zipMembers(bytes: Buffer, bad: (why: string) => LoupeError): ZipMember[] {
  // The end-of-central-directory record sits in the last 22 + 65535 bytes (its comment is at most 64 KiB).
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (bytes.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad("no zip end-of-central-directory record");
  let count = bytes.readUInt16LE(eocd + 10);
  let offset = bytes.readUInt32LE(eocd + 16);
  if (count === 0xffff || offset === 0xffffffff) {
    // Zip64 (numpy writes it past 4 GiB): the zip64 end record holds 64-bit count and offset.
    const locator = eocd - 20;
    if (locator < 0 || bytes.readUInt32LE(locator) !== 0x07064b50) throw bad("a zip64 archive without its locator");
    const record = Number(bytes.readBigUInt64LE(locator + 8));
    count = Number(bytes.readBigUInt64LE(record + 32));
    offset = Number(bytes.readBigUInt64LE(record + 48));
  }
  const members: ZipMember[] = [];
  for (let i = 0; i < count; i++) {
    if (offset + 46 > bytes.length || bytes.readUInt32LE(offset) !== CENTRAL_FILE_HEADER) throw bad(`central directory entry ${i} is damaged`);
    const method = bytes.readUInt16LE(offset + 10);
    let compressedSize = bytes.readUInt32LE(offset + 20);
    let size = bytes.readUInt32LE(offset + 24);
    const nameLength = bytes.readUInt16LE(offset + 28);
    const extraLength = bytes.readUInt16LE(offset + 30);
    const commentLength = bytes.readUInt16LE(offset + 32);
    let localOffset = bytes.readUInt32LE(offset + 42);
    const name = bytes.toString("utf8", offset + 46, offset + 46 + nameLength);
    ({ compressedSize, size, localOffset } = zip64Sizes(bytes, offset + 46 + nameLength, extraLength, { compressedSize, size, localOffset }));
    offset += 46 + nameLength + extraLength + commentLength;

    if (bytes.readUInt32LE(localOffset) !== LOCAL_FILE_HEADER) throw bad(`${name}: local header missing`);
    const start = localOffset + 30 + bytes.readUInt16LE(localOffset + 26) + bytes.readUInt16LE(localOffset + 28);
    if (start + compressedSize > bytes.length) throw bad(`${name} runs past the end of the file (truncated download?)`);
    const raw = bytes.subarray(start, start + compressedSize);
    let data: Buffer;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = zlib.inflateRawSync(raw);
      } catch (error) {
        throw bad(`${name} does not inflate (${(error as Error).message})`);
      }
    } else throw bad(`${name} uses zip compression method ${method} (only stored and deflated are read)`);
    if (data.length !== size) throw bad(`${name} holds ${data.length} bytes, its header says ${size}`);
    members.push({ name, data });
  }
  return members;
}

/** Sizes and offset from the zip64 extended-information extra field, where the 32-bit ones are saturated. */
function zip64Sizes(bytes: Buffer, extraStart: number, extraLength: number, v: { compressedSize: number; size: number; localOffset: number }) {
  const out = { ...v };
  for (let p = extraStart; p + 4 <= extraStart + extraLength; ) {
    const id = bytes.readUInt16LE(p);
    const len = bytes.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      const next = () => {
        const value = Number(bytes.readBigUInt64LE(q));
        q += 8;
        return value;
      };
      if (v.size === 0xffffffff) out.size = next();
      if (v.compressedSize === 0xffffffff) out.compressedSize = next();
      if (v.localOffset === 0xffffffff) out.localOffset = next();
    }
    p += 4 + len;
  }
  return out;
}

/** One .npy file: little-endian f4, f2 or f8, C order. */
export function parseNpy(data: Buffer, bad: (why: string) => LoupeError): NpyArray {
  if (data.length < 10 || data.toString("latin1", 0, 6) !== "\x93NUMPY") throw bad("not a .npy file");
  const major = data[6];
  const headerLength = major === 1 ? data.readUInt16LE(8) : data.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = data.toString("latin1", headerStart, headerStart + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw bad(`unreadable header ${JSON.stringify(header.trim())}`);
  if (fortran === "True") throw bad("Fortran-ordered arrays are not read (save with np.ascontiguousarray)");
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const body = data.subarray(headerStart + headerLength);
  const width = { "<f4": 4, "<f2": 2, "<f8": 8 }[descr];
  if (!width) throw bad(`dtype ${descr} is not read (Loupe reads little-endian float16, float32, float64)`);
  if (body.length !== count * width) throw bad(`holds ${body.length} data bytes, shape [${shape.join(", ")}] of ${descr} needs ${count * width}`);
  const aligned = new Uint8Array(body.length);
  aligned.set(body);
  if (descr === "<f4") return { shape, data: new Float32Array(aligned.buffer) };
  if (descr === "<f2") return { shape, data: halfToFloat32(new Uint16Array(aligned.buffer)) };
  return { shape, data: Float32Array.from(new Float64Array(aligned.buffer)) };
}
