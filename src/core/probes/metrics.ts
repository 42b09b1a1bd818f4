/** Classification scores over label indices 0..K-1. */

export function accuracy(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  if (truth.length === 0) return NaN;
  let right = 0;
  for (let i = 0; i < truth.length; i++) if (truth[i] === pred[i]) right++;
  return right / truth.length;
}

/** Mean recall over the classes that occur in `truth` (sklearn's balanced_accuracy_score). */
export function balancedAccuracy(truth: ArrayLike<number>, pred: ArrayLike<number>, K: number): number {
  const seen = new Float64Array(K);
  const right = new Float64Array(K);
  for (let i = 0; i < truth.length; i++) {
    seen[truth[i]]++;
    if (truth[i] === pred[i]) right[truth[i]]++;
  }
  let sum = 0;
  let classes = 0;
  for (let k = 0; k < K; k++) {
    if (seen[k] === 0) continue;
    sum += right[k] / seen[k];
    classes++;
  }
  return classes ? sum / classes : NaN;
}

/** [K, K] counts, row = truth, column = prediction. */
export function confusionMatrix(truth: ArrayLike<number>, pred: ArrayLike<number>, K: number): number[][] {
  const m = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (let i = 0; i < truth.length; i++) m[truth[i]][pred[i]]++;
  return m;
}

/** Accuracy of always answering the most frequent class: the floor a probe must beat. */
export function majorityBaseline(truth: ArrayLike<number>, K: number): number {
  if (truth.length === 0) return NaN;
  const counts = new Float64Array(K);
  for (let i = 0; i < truth.length; i++) counts[truth[i]]++;
  return Math.max(...counts) / truth.length;
}
