/**
 * Generation with a key/value cache: each step runs only the tokens not yet seen, continuing from
 * the keys and values of the earlier ones (RunOptions.prefix), so a continuation of n tokens
 * costs n single-token steps instead of n full-sequence runs.
 */
import type { Tensor } from "../tensor/tensor";
import type { KeyValues } from "./hooked-model";

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
    // The run returns logits for its last position only ([1, 1, V]) or for all of them: take the last row.
    const V = logits.dims[logits.dims.length - 1];
    return logits.data.slice(logits.data.length - V);
  }

  reset(): void {
    this.seen = [];
    this.kv = undefined;
  }
}
