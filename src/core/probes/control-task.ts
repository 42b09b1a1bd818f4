/**
 * Control tasks (Hewitt & Liang 2019, "Designing and Interpreting Probes with Control Tasks"):
 * every token type gets a label drawn at random from the task's empirical label distribution,
 * fixed for the type. A probe that scores well on such labels is memorising types, not reading a
 * property of the representation; selectivity = task accuracy - control accuracy.
 *
 * The label of a type is a pure function of (seed, type), so train and held-out sets agree on
 * every type they share and the assignment does not depend on the order of the rows.
 */
import { LoupeError } from "../errors";

export interface ControlTask {
  /** The control label (class index) of a type. */
  label(type: number): number;
  /** Control labels of many rows. */
  labels(types: ArrayLike<number>): Int32Array;
}

/** Build a control task whose labels follow the distribution of `y` (class indices 0..K-1). */
export function controlTask(y: ArrayLike<number>, K: number, seed = 0): ControlTask {
  if (y.length === 0) throw new LoupeError("empty-input", "A control task needs labelled rows.");
  const cdf = new Float64Array(K);
  for (let i = 0; i < y.length; i++) cdf[y[i]]++;
  for (let k = 1; k < K; k++) cdf[k] += cdf[k - 1];
  for (let k = 0; k < K; k++) cdf[k] /= y.length;
  const label = (type: number): number => {
    const u = unitHash(type, seed);
    let k = 0;
    while (k < K - 1 && u >= cdf[k]) k++;
    return k;
  };
  return { label, labels: (types) => Int32Array.from({ length: types.length }, (_, i) => label(types[i])) };
}

/** A stable 32-bit type id for a string (FNV-1a), e.g. a whole prompt as the "type" of a sequence. */
export function typeOfString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform number in [0, 1) from (type, seed): murmur3's finaliser, well mixed for nearby ids. */
function unitHash(type: number, seed: number): number {
  let h = (Math.imul(type | 0, 0x9e3779b1) ^ Math.imul(seed | 0, 0x85ebca6b) ^ 0x27d4eb2f) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}
