/** Summary statistics of [rows, d] activation matrices used to initialise and judge SAEs. */

export function meanRow(x: Float32Array, rows: number, d: number): Float32Array {
  const sum = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) sum[j] += x[r * d + j];
  return Float32Array.from(sum, (s) => s / rows);
}

/** Mean squared distance of the rows from their mean: the error of the best constant reconstruction. */
export function totalVariance(x: Float32Array, rows: number, d: number, mean = meanRow(x, rows, d)): number {
  let s = 0;
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) s += (x[r * d + j] - mean[j]) ** 2;
  return s / rows;
}

/** Mean Euclidean norm of the rows. */
export function meanNorm(x: Float32Array, rows: number, d: number): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = r * d, end = j + d; j < end; j++) ss += x[j] * x[j];
    total += Math.sqrt(ss);
  }
  return total / rows;
}

/**
 * Geometric median of the rows (Weiszfeld's iteration from the mean): the point minimising the sum
 * of distances, robust to the few huge-norm tokens that pull the mean. Uses at most `sample` rows.
 */
export function geometricMedian(x: Float32Array, rows: number, d: number, iterations = 50, sample = 4096): Float32Array {
  const n = Math.min(rows, sample);
  const stride = rows / n;
  const pick = (i: number) => Math.floor(i * stride) * d;
  let point = Float64Array.from(meanRow(x, rows, d));
  const next = new Float64Array(d);
  for (let it = 0; it < iterations; it++) {
    next.fill(0);
    let weightSum = 0;
    for (let i = 0; i < n; i++) {
      const o = pick(i);
      let dist = 0;
      for (let j = 0; j < d; j++) dist += (x[o + j] - point[j]) ** 2;
      const w = 1 / Math.max(Math.sqrt(dist), 1e-8);
      weightSum += w;
      for (let j = 0; j < d; j++) next[j] += w * x[o + j];
    }
    let moved = 0;
    for (let j = 0; j < d; j++) {
      const v = next[j] / weightSum;
      moved += (v - point[j]) ** 2;
      next[j] = v;
    }
    point = Float64Array.from(next);
    if (moved < 1e-12) break;
  }
  return Float32Array.from(point);
}
