/**
 * Keys and values of earlier tokens, and generation with a key/value cache: each step runs only
 * the tokens not yet seen, continuing from the keys and values of the earlier ones
 * (RunOptions.prefix), so a continuation of n tokens costs n single-token steps instead of n
 * full-sequence runs.
 */
import { LoupeError } from "../errors";
import { tensor, type Tensor } from "../tensor/tensor";
import type { ModelConfig } from "./config";

/** Heads per layer in the key/value cache: one per key/value head (a Llama graph shares them among query heads). */
export function cacheHeads(cfg: ModelConfig): number {
  return cfg.architecture === "llama" ? cfg.nKvHeads : cfg.nHeads;
}

/**
 * Keys and values of a run's tokens, one [batch, heads, tokens, d_head] tensor per layer; heads
 * are the key/value heads (cacheHeads), fewer than the query heads in a grouped-query model.
 */
export interface KeyValues {
  readonly keys: readonly Tensor[];
  readonly values: readonly Tensor[];
}

/** The first `length` tokens of batch row `row` of `kv`, as a batch-1 prefix for RunOptions.prefix. */
export function prefixKeyValues(kv: KeyValues, row: number, length: number): KeyValues {
  return sliceKeyValues(kv, row, 0, length);
}

/** Slots `start` to `end` of batch row `row` of `kv`, as batch 1. */
export function sliceKeyValues(kv: KeyValues, row: number, start: number, end: number): KeyValues {
  const cut = (t: Tensor): Tensor => {
    const [B, H, T, Dh] = t.dims;
    if (!Number.isInteger(row) || row < 0 || row >= B) throw new LoupeError("bad-argument", `prefixKeyValues: batch row ${row} is out of range (0..${B - 1}).`);
    if (!Number.isInteger(end) || start < 0 || end < start || end > T) throw new LoupeError("bad-argument", `prefixKeyValues: a prefix of ${end} tokens is not within the ${T} cached.`);
    const n = end - start;
    const out = new Float32Array(H * n * Dh);
    for (let h = 0; h < H; h++) out.set(t.data.subarray(((row * H + h) * T + start) * Dh, ((row * H + h) * T + end) * Dh), h * n * Dh);
    return tensor(out, [1, H, n, Dh]);
  };
  return { keys: kv.keys.map(cut), values: kv.values.map(cut) };
}

/** Runs `tokens` after `prefix` (none: from the start); returns their last position's logits and every layer's keys and values. */
export type ContinueRun = (tokens: readonly number[], prefix: KeyValues | undefined) => Promise<{ logits: Tensor; keyValues?: KeyValues }>;

export class KvCache {
  /** Tokens whose keys and values `kv` holds. */
  private seen: number[] = [];
  private kv: KeyValues | undefined;

  constructor(private readonly run: ContinueRun) {}

  /**
   * Logits [d_vocab] after the last of `tokens`. Tokens that extend the ones already seen run
   * alone; anything else (a different prefix) starts again from the first token.
   */
  async nextLogits(tokens: readonly number[]): Promise<Float32Array> {
    const reuse = this.kv !== undefined && this.seen.length < tokens.length && this.seen.every((t, i) => t === tokens[i]);
    const fresh = reuse ? tokens.slice(this.seen.length) : [...tokens];
    const { logits, keyValues } = await this.run(fresh, reuse ? this.kv : undefined);
    if (!keyValues) throw new Error("internal: a cached generation step returned no keys and values");
    this.kv = keyValues;
    this.seen = [...tokens];
    // The run returns logits for its last position only ([1, 1, V]) or for all of them: the last row,
    // as a view (each run's output is its own array; a copy was 1 MB a step for Gemma 3's vocabulary).
    const V = logits.dims[logits.dims.length - 1];
    return logits.data.subarray(logits.data.length - V);
  }

  /** Continue from keys and values of `tokens` computed elsewhere (a prompt they start). */
  seed(tokens: readonly number[], kv: KeyValues): void {
    this.seen = [...tokens];
    this.kv = kv;
  }

  reset(): void {
    this.seen = [];
    this.kv = undefined;
  }
}

/**
 * Keys and values of rows of different lengths in one batch, each row aligned on the right:
 * `padding[b]` empty slots lead row b (RunOptions.prefixPadding), so the rows decode together,
 * one new token each per call.
 */
export interface AlignedKeyValues {
  readonly kv: KeyValues;
  readonly padding: readonly number[];
}

/** Room for rows of these token counts (empty slots zero), each row filled by `placeRow`. */
export function alignedKeyValues(cfg: ModelConfig, lengths: readonly number[]): AlignedKeyValues {
  const C = Math.max(...lengths);
  const H = cacheHeads(cfg);
  const make = () => tensor(new Float32Array(lengths.length * H * C * cfg.dHead), [lengths.length, H, C, cfg.dHead]);
  return {
    kv: { keys: Array.from({ length: cfg.nLayers }, make), values: Array.from({ length: cfg.nLayers }, make) },
    padding: lengths.map((n) => C - n),
  };
}

/** Copy batch-1 keys and values `row` (of the length it was given room for) into its place. */
export function placeRow(aligned: AlignedKeyValues, row: number, kv: KeyValues): void {
  const copy = (into: Tensor, from: Tensor) => {
    const [, H, C, Dh] = into.dims;
    const n = C - aligned.padding[row];
    if (from.dims[0] !== 1 || from.dims[2] !== n) throw new Error(`internal: row ${row} holds ${n} tokens, not ${from.dims[2]}`);
    for (let h = 0; h < H; h++) into.data.set(from.data.subarray(h * n * Dh, (h + 1) * n * Dh), ((row * H + h) * C + C - n) * Dh);
  };
  aligned.kv.keys.forEach((t, L) => copy(t, kv.keys[L]));
  aligned.kv.values.forEach((t, L) => copy(t, kv.values[L]));
}

/** Only `rows` of `aligned` (in that order), less the empty slots every one of them leads with. */
export function keepRows(aligned: AlignedKeyValues, rows: readonly number[]): AlignedKeyValues {
  const drop = Math.min(...rows.map((r) => aligned.padding[r]));
  if (drop === 0 && rows.length === aligned.padding.length && rows.every((r, i) => r === i)) return aligned;
  const cut = (t: Tensor): Tensor => {
    const [, H, C, Dh] = t.dims;
    const out = new Float32Array(rows.length * H * (C - drop) * Dh);
    rows.forEach((r, i) => {
      for (let h = 0; h < H; h++) out.set(t.data.subarray(((r * H + h) * C + drop) * Dh, ((r * H + h) + 1) * C * Dh), (i * H + h) * (C - drop) * Dh);
    });
    return tensor(out, [rows.length, H, C - drop, Dh]);
  };
  return { kv: { keys: aligned.kv.keys.map(cut), values: aligned.kv.values.map(cut) }, padding: rows.map((r) => aligned.padding[r] - drop) };
}
