import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../../../src/core/errors";
import { encodeSafetensors, float32ToBf16, float32ToHalf, halfToFloat32, readSafetensorsIndex, readTensorF32 } from "../../../src/core/model/safetensors";
import { scratchDir } from "../../helpers/fixtures";

/** A safetensors file written by hand, so the header can be anything (unpadded, odd offsets). */
function writeRaw(header: object, data: Buffer): string {
  const file = path.join(scratchDir("st"), "model.safetensors");
  const headerBytes = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  fs.writeFileSync(file, Buffer.concat([length, headerBytes, data]));
  return file;
}

describe("safetensors reader", () => {
  it("round-trips float32 tensors and metadata", () => {
    const file = path.join(scratchDir("st"), "model.safetensors");
    const a = Float32Array.from([1.5, -2, 3e-8, 1e30]);
    const b = Float32Array.from([7]);
    fs.writeFileSync(file, encodeSafetensors({ a: { dtype: "F32", shape: [2, 2], data: a }, b: { dtype: "F32", shape: [1], data: b } }, { format: "pt" }));
    const index = readSafetensorsIndex(file);
    assert.deepEqual([...index.tensors.keys()].sort(), ["a", "b"]);
    assert.deepEqual(index.tensors.get("a")?.shape, [2, 2]);
    assert.deepEqual(index.metadata, { format: "pt" });
    assert.deepEqual(Array.from(readTensorF32(index, "a")), Array.from(a));
    assert.deepEqual(Array.from(readTensorF32(index, "b")), [7]);
  });

  it("decodes f16 including subnormals, infinities and NaN", () => {
    const halves = Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x3555, 0x7e00]);
    const f = halfToFloat32(halves);
    assert.deepEqual(Array.from(f.subarray(0, 6)), [1, -2, 65504, 2 ** -24, Infinity, -Infinity]);
    assert.ok(Math.abs(f[6] - 1 / 3) < 1e-3);
    assert.ok(Number.isNaN(f[7]));
  });

  it("encodes f16 rounding to nearest even, with subnormals, overflow and NaN", () => {
    const halves = float32ToHalf([1, -2, 65504, 2 ** -24, 1e6, -Infinity, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -26, NaN, 0.1]);
    // 1 + 2^-11 is halfway between 1 and the next half: even (1) wins; 1 + 3 * 2^-11 rounds up.
    assert.deepEqual(Array.from(halves.subarray(0, 9)), [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x3c00, 0x3c02, 0x0000]);
    assert.ok(Number.isNaN(halfToFloat32(halves.subarray(9, 10))[0]));
    // Round trip: within half a unit in the last place (2^-11 relative).
    assert.ok(Math.abs(halfToFloat32(halves.subarray(10))[0] - 0.1) <= 0.1 * 2 ** -11);
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10 ** ((i % 9) - 4));
    const back = halfToFloat32(float32ToHalf(values));
    values.forEach((v, i) => assert.ok(Math.abs(back[i] - v) <= Math.max(Math.abs(v) * 2 ** -11, 2 ** -25), `${v} -> ${back[i]}`));
  });

  it("encodes bf16 rounding to nearest even", () => {
    assert.deepEqual(Array.from(float32ToBf16([1, -5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -7])), [0x3f80, 0xc0a0, 0x3f80, 0x3f82, 0x3f81]);
    assert.equal(float32ToBf16([NaN])[0] & 0x7fc0, 0x7fc0);
  });

  it("reads bf16 and f16 tensors at unaligned offsets", () => {
    // One odd byte first, so every tensor after it starts unaligned.
    const bf16 = Buffer.alloc(4);
    bf16.writeUInt16LE(0x3f80, 0); // 1.0
    bf16.writeUInt16LE(0xc0a0, 2); // -5.0
    const f16 = Buffer.alloc(2);
    f16.writeUInt16LE(0x3800, 0); // 0.5
    const file = writeRaw(
      { pad: { dtype: "U8", shape: [1], data_offsets: [0, 1] }, x: { dtype: "BF16", shape: [2], data_offsets: [1, 5] }, y: { dtype: "F16", shape: [1], data_offsets: [5, 7] } },
      Buffer.concat([Buffer.from([9]), bf16, f16]),
    );
    const index = readSafetensorsIndex(file);
    assert.deepEqual(Array.from(readTensorF32(index, "x")), [1, -5]);
    assert.deepEqual(Array.from(readTensorF32(index, "y")), [0.5]);
  });

  for (const [what, header, data, pattern] of [
    ["a header longer than the file", null, Buffer.alloc(0), /header claims/],
    ["a shape that disagrees with the byte range", { w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8), /shape \[3\].*spans 8 bytes/],
    ["data past the end of the file", { w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(8), /runs past the end/],
    ["an unknown dtype", { w: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1), /unsupported dtype "Q4"/],
  ] as const) {
    it(`explains ${what}, naming the file`, () => {
      let file: string;
      if (header === null) {
        file = path.join(scratchDir("st"), "model.safetensors");
        const bytes = Buffer.alloc(16);
        bytes.writeBigUInt64LE(1000n);
        fs.writeFileSync(file, bytes);
      } else {
        file = writeRaw(header, data);
      }
      assert.throws(
        () => readSafetensorsIndex(file),
        (e: unknown) => e instanceof LoupeError && e.code === "bad-file" && e.message.includes(file) && pattern.test(e.message),
      );
    });
  }

  it("names a file that does not exist", () => {
    assert.throws(() => readSafetensorsIndex("/no/such/model.safetensors"), (e: unknown) => e instanceof LoupeError && e.code === "missing-file" && /\/no\/such/.test(e.message));
  });
});
