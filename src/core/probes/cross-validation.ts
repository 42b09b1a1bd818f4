/**
 * k-fold splits with seeded shuffles. Rows that come from one text share a group and must stay in
 * one fold, or a token probe would be tested on the very sentences it was trained on; so token
 * data uses grouped folds (sklearn's GroupKFold, shuffled) and sequence data stratified folds
 * (StratifiedKFold with shuffle=True).
 */
import { LoupeError } from "../errors";
import { seededRandom } from "../tensor/random";

/** Fold index of each row, stratified: every fold gets each class in about the same share. */
export function stratifiedFolds(y: ArrayLike<number>, K: number, k: number, seed = 0): Int32Array {
  checkFolds(k, y.length);
  const random = seededRandom(seed);
  const byClass: number[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < y.length; i++) byClass[y[i]].push(i);
  const fold = new Int32Array(y.length);
  // Deal each class's shuffled rows round-robin, carrying the position over between classes so
  // fold sizes differ by at most one.
  let next = 0;
  for (const rows of byClass) {
    for (const i of shuffle(rows, random)) {
      fold[i] = next;
      next = (next + 1) % k;
    }
  }
  return fold;
}

/** Fold index of each row such that a group never spans two folds; folds balanced by row count. */
export function groupedFolds(groups: ArrayLike<number>, k: number, seed = 0): Int32Array {
  const sizes = new Map<number, number>();
  for (let i = 0; i < groups.length; i++) sizes.set(groups[i], (sizes.get(groups[i]) ?? 0) + 1);
  if (sizes.size < k) {
    throw new LoupeError("bad-argument", `${k}-fold cross-validation needs at least ${k} texts; the data has ${sizes.size}. Use fewer folds or add examples.`);
  }
  const random = seededRandom(seed);
  // Shuffle, then put each group (largest first, ties in shuffled order) in the lightest fold.
  const order = shuffle([...sizes.keys()], random).sort((a, b) => (sizes.get(b) ?? 0) - (sizes.get(a) ?? 0));
  const load = new Float64Array(k);
  const foldOf = new Map<number, number>();
  for (const g of order) {
    let best = 0;
    for (let f = 1; f < k; f++) if (load[f] < load[best]) best = f;
    foldOf.set(g, best);
    load[best] += sizes.get(g) ?? 0;
  }
  return Int32Array.from({ length: groups.length }, (_, i) => foldOf.get(groups[i]) ?? 0);
}

function checkFolds(k: number, n: number): void {
  if (!Number.isInteger(k) || k < 2) throw new LoupeError("bad-argument", `Cross-validation needs at least 2 folds (got ${k}).`);
  if (n < k) throw new LoupeError("bad-argument", `${k}-fold cross-validation needs at least ${k} examples; the data has ${n}.`);
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
