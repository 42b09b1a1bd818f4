/**
 * Logit targets: what an attribution graph explains. By default the most likely next tokens up to
 * a cumulative probability of 0.95 (at most 10), each read as its demeaned logit (unembedding row
 * minus the mean row, so a shift shared by every token counts for nothing); or a chosen answer, an
 * answer minus a contrast (a logit difference), or any direction of the final normalised residual.
 */
import { LoupeError } from "../errors";
import { softmax } from "../tensor/tensor";
import type { LinearModelWeights } from "./model-weights";

export type TargetSpec =
  | { readonly kind: "top"; readonly maxLogits?: number; readonly desiredProbability?: number }
  | { readonly kind: "token"; readonly token: number }
  | { readonly kind: "difference"; readonly token: number; readonly contrast: number }
  | { readonly kind: "direction"; readonly vector: Float32Array; readonly label: string };

export interface LogitTarget {
  /** The token, where the target is one (the answer for a difference). */
  readonly token?: number;
  readonly contrast?: number;
  readonly label: string;
  /** Softmax probability of the token (1 for a difference or direction): its weight in pruning. */
  readonly probability: number;
  /** [d_model] the read-out vector on the final normalised residual at the last position. */
  readonly vector: Float32Array;
}

export function meanUnembeddingRow(weights: LinearModelWeights): Float32Array {
  const { dVocab: V, dModel: D, W_U } = weights;
  const mean = new Float64Array(D);
  for (let v = 0; v < V; v++) for (let d = 0; d < D; d++) mean[d] += W_U[v * D + d];
  return Float32Array.from(mean, (x) => x / V);
}

export function selectTargets(spec: TargetSpec, weights: LinearModelWeights, lastLogits: Float32Array, tokenLabel: (id: number) => string): LogitTarget[] {
  const { dVocab: V, dModel: D, W_U } = weights;
  const row = (id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new LoupeError("bad-argument", `Target token id ${id} is outside the vocabulary (0..${V - 1}).`);
    return W_U.subarray(id * D, (id + 1) * D);
  };
  const probs = softmax(lastLogits);
  switch (spec.kind) {
    case "top": {
      const mean = meanUnembeddingRow(weights);
      const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
      const max = spec.maxLogits ?? 10;
      const desired = spec.desiredProbability ?? 0.95;
      const chosen: number[] = [];
      let cumulative = 0;
      for (const id of order) {
        if (chosen.length >= max || cumulative >= desired) break;
        chosen.push(id);
        cumulative += probs[id];
      }
      return chosen.map((id) => ({ token: id, label: tokenLabel(id), probability: probs[id], vector: Float32Array.from(row(id), (x, d) => x - mean[d]) }));
    }
    case "token": {
      const mean = meanUnembeddingRow(weights);
      return [{ token: spec.token, label: tokenLabel(spec.token), probability: probs[spec.token], vector: Float32Array.from(row(spec.token), (x, d) => x - mean[d]) }];
    }
    case "difference": {
      const b = row(spec.contrast);
      return [{ token: spec.token, contrast: spec.contrast, label: `${tokenLabel(spec.token)} - ${tokenLabel(spec.contrast)}`, probability: 1, vector: Float32Array.from(row(spec.token), (x, d) => x - b[d]) }];
    }
    case "direction":
      if (spec.vector.length !== D) throw new LoupeError("bad-argument", `A target direction needs ${D} values (d_model); got ${spec.vector.length}.`);
      return [{ label: spec.label, probability: 1, vector: spec.vector }];
  }
}

/** The one token `text` encodes to, or an error that says how the tokenizer splits it. */
export function targetToken(encode: (text: string) => number[], tokenText: (id: number) => string, text: string, role: string): number {
  const ids = encode(text);
  if (ids.length === 1) return ids[0];
  if (ids.length === 0) throw new LoupeError("bad-argument", `The ${role} is empty; give the token to trace, e.g. " Mia" (with its leading space).`);
  throw new LoupeError(
    "bad-argument",
    `The ${role} ${JSON.stringify(text)} is ${ids.length} tokens for this tokenizer (${ids.map((id) => JSON.stringify(tokenText(id))).join(" + ")}); a graph's target is one next token. Choose a single-token ${role}.`,
  );
}
