/**
 * The layout of one HookedModel run, worked out before anything is fed: the padded batch, which
 * rows each block holds when rows start at later blocks, and the positions whose logits are
 * computed; and the reshaping of inputs and outputs that follows from it.
 */
import { LoupeError } from "../errors";
import { tensor, type Tensor } from "../tensor/tensor";
import { blockOf } from "./hooks";
import type { CompiledHook } from "./interventions";

export type TokenBatch = readonly (readonly number[])[];

export interface PaddedBatch {
  /** Longest row: every row is padded on the right to it. */
  readonly T: number;
  /** Real (unpadded) length of each row. */
  readonly lengths: readonly number[];
  /** [B, T] token ids, padding with `pad`. */
  readonly ids: BigInt64Array;
  /** [B, T] positions, counted after the prefix's real tokens. */
  readonly positions: BigInt64Array;
  /** [B, P + T]: 1 for the prefix and real tokens, 0 for padding (and a prefix's empty slots). */
  readonly mask: Float32Array;
}

/**
 * Pad `batch` on the right after a prefix of `P` slots, checking every id against the vocabulary.
 * `prefixSlots` ([B, P], 1 where a slot holds a token; default all) says which of each row's prefix
 * slots it sees: the others are masked out and not counted in its positions.
 */
export function padBatch(batch: TokenBatch, P: number, pad: number, dVocab: number, prefixSlots?: Uint8Array): PaddedBatch {
  const lengths = batch.map((row) => row.length);
  const T = Math.max(...lengths);
  const B = batch.length;
  const ids = new BigInt64Array(B * T);
  const positions = new BigInt64Array(B * T);
  const mask = new Float32Array(B * (P + T));
  batch.forEach((row, b) => {
    let seen = P;
    if (prefixSlots) {
      seen = 0;
      for (let p = 0; p < P; p++) seen += mask[b * (P + T) + p] = prefixSlots[b * P + p];
    } else {
      mask.fill(1, b * (P + T), b * (P + T) + P);
    }
    for (let t = 0; t < T; t++) {
      const real = t < row.length;
      const id = real ? row[t] : pad;
      if (!Number.isInteger(id) || id < 0 || id >= dVocab) {
        throw new LoupeError("bad-argument", `Token id ${id} is outside the vocabulary (0..${dVocab - 1}).`);
      }
      ids[b * T + t] = BigInt(id);
      positions[b * T + t] = BigInt(seen + t);
      mask[b * (P + T) + P + t] = real ? 1 : 0;
    }
  });
  return { T, lengths, ids, positions, mask };
}

/** [B, P] prefix slots of rows whose first `padding[b]` slots are empty (RunOptions.prefixPadding). */
export function leadingEmptySlots(padding: readonly number[], P: number): Uint8Array {
  const slots = new Uint8Array(padding.length * P);
  padding.forEach((n, b) => slots.fill(1, b * P + n, (b + 1) * P));
  return slots;
}

/** Empty prefix slots of each row: how far its positions trail the prefix's length. */
export function emptySlots(prefixSlots: Uint8Array, B: number, P: number): number[] {
  return Array.from({ length: B }, (_, b) => {
    let seen = 0;
    for (let p = 0; p < P; p++) seen += prefixSlots[b * P + p];
    return P - seen;
  });
}

/**
 * Rows a hook's activation holds: all `batch` rows, or with rows started at later blocks
 * (`starts[b]`, non-decreasing) only those started at or before the hook's block, which lead.
 */
export function rowsAtHook(hook: string, batch: number, nLayers: number, starts: readonly number[] | undefined): number {
  if (!starts) return batch;
  const block = blockOf(hook, nLayers);
  return starts.filter((l) => l <= block).length;
}

/**
 * The logit positions to feed the graph. One position asked for runs twice: with a single query
 * the last block's attention matmul takes another path in onnxruntime (a vector product) whose
 * rounding differs from the full run's. `doubled` says so, to drop the copy from the outputs.
 */
export function fedLogitPositions(asked: readonly number[]): { readonly positions: readonly number[]; readonly doubled: boolean } {
  return asked.length === 1 ? { positions: [asked[0], asked[0]], doubled: true } : { positions: asked, doubled: false };
}

/** Fed logit positions with a doubled single position run once (where rounding may differ from a full run's). */
export function undoubled(fed: ReturnType<typeof fedLogitPositions>): ReturnType<typeof fedLogitPositions> {
  return fed.doubled ? { positions: fed.positions.slice(0, 1), doubled: false } : fed;
}

/** Index 0 of one axis, kept as an axis of size 1. */
export function firstPosition(t: Tensor, axis: number): Tensor {
  const outer = t.dims.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = t.dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) out.set(t.data.subarray(o * t.dims[axis] * inner, (o * t.dims[axis] + 1) * inner), o * inner);
  const dims = [...t.dims];
  dims[axis] = 1;
  return tensor(out, dims);
}

/** Compiled (gain, write) at the given indices of one axis. */
export function selectPositions(c: CompiledHook, axis: number, positions: readonly number[]): CompiledHook {
  const outer = c.dims.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = c.dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const n = c.dims[axis];
  const gain = new Float32Array(outer * positions.length * inner);
  const write = new Float32Array(gain.length);
  for (let o = 0; o < outer; o++) {
    positions.forEach((p, k) => {
      const from = (o * n + p) * inner;
      const to = (o * positions.length + k) * inner;
      gain.set(c.gain.subarray(from, from + inner), to);
      write.set(c.write.subarray(from, from + inner), to);
    });
  }
  const dims = [...c.dims];
  dims[axis] = positions.length;
  return { gain, write, dims };
}

/** Rows [batch, k, vocab] of the given positions from full logits [batch, pos, vocab]. */
export function pickPositions(logits: Tensor, positions: readonly number[]): Tensor {
  const [B, T, V] = logits.dims;
  const out = new Float32Array(B * positions.length * V);
  for (let b = 0; b < B; b++) positions.forEach((p, k) => out.set(logits.data.subarray((b * T + p) * V, (b * T + p + 1) * V), (b * positions.length + k) * V));
  return tensor(out, [B, positions.length, V]);
}
