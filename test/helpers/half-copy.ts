/** Fixture folders rewritten with every tensor stored as f16 or bf16, as published checkpoints are. */
import * as fs from "node:fs";
import * as path from "node:path";
import { float32ToBf16, float32ToHalf, readSafetensorsIndex, readTensorF32 } from "../../src/core/model/safetensors";
import { scratchDir } from "./fixtures";

export type Half = "F16" | "BF16";

/** A copy of a fixture folder with every tensor stored as `dtype`. */
export function halfCopy(fixture: string, dtype: Half): string {
  const dir = scratchDir(`compact-${dtype}`);
  for (const file of ["config.json", "tokenizer.json"]) fs.copyFileSync(path.join(fixture, file), path.join(dir, file));
  const index = readSafetensorsIndex(path.join(fixture, "model.safetensors"));
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, entry] of index.tensors) {
    const values = readTensorF32(index, name);
    const halves = dtype === "BF16" ? float32ToBf16(values) : float32ToHalf(values);
    header[name] = { dtype, shape: entry.shape, data_offsets: [offset, offset + halves.byteLength] };
    offset += halves.byteLength;
    parts.push(Buffer.from(halves.buffer));
  }
  const text = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  fs.writeFileSync(path.join(dir, "model.safetensors"), Buffer.concat([length, text, ...parts]));
  return dir;
}
