import { LoupeError } from "../errors";
import { argmax, softmax } from "../tensor/tensor";

export interface SamplingOptions {
  /** 0 or undefined: greedy. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens before sampling. */
  readonly topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p. */
  readonly topP?: number;
  /** Seed for sampling; the same seed gives the same continuation. */
  readonly seed?: number;
}

/** Pick the next token from one position's logits. */
export function chooseNextToken(logits: Float32Array, options: SamplingOptions, random?: () => number): number {
  const temperature = options.temperature ?? 0;
  if (temperature < 0 || !Number.isFinite(temperature)) throw new LoupeError("bad-argument", `temperature must be >= 0 (got ${temperature}).`);
  if (temperature === 0) return argmax(logits);
  if (!random) throw new LoupeError("bad-argument", "Sampling (temperature > 0) needs a seed, so runs are reproducible.");
  const probs = softmax(logits, temperature);
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
  let keep = order.length;
  if (options.topK !== undefined) keep = Math.min(keep, Math.max(1, Math.floor(options.topK)));
  if (options.topP !== undefined) {
    let mass = 0;
    for (let i = 0; i < keep; i++) {
      mass += probs[order[i]];
      if (mass >= options.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let total = 0;
  for (let i = 0; i < keep; i++) total += probs[order[i]];
  let r = random() * total;
  for (let i = 0; i < keep; i++) {
    r -= probs[order[i]];
    if (r <= 0) return order[i];
  }
  return order[keep - 1];
}
