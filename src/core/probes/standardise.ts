/**
 * Feature standardisation (sklearn's StandardScaler): zero mean, unit population variance per
 * column. Residual streams have a few huge dimensions; without this, L2 would punish the small ones.
 */

export interface Standardiser {
  readonly mean: Float64Array;
  /** Population standard deviation; 1 where a column is constant, so it maps to 0 not NaN. */
  readonly scale: Float64Array;
}

/** Fit on the rows of X ([n, d], row-major). */
export function fitStandardiser(X: ArrayLike<number>, n: number, d: number): Standardiser {
  const mean = new Float64Array(d);
  const m2 = new Float64Array(d);
  // Welford, row by row: stable for large offsets such as unnormalised residuals.
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let j = 0; j < d; j++) {
      const v = X[row + j];
      const delta = v - mean[j];
      mean[j] += delta / (i + 1);
      m2[j] += delta * (v - mean[j]);
    }
  }
  const scale = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const sd = n > 0 ? Math.sqrt(m2[j] / n) : 0;
    scale[j] = sd > 1e-12 * Math.max(1, Math.abs(mean[j])) ? sd : 1;
  }
  return { mean, scale };
}

/** Standardised copy of X in float64. */
export function standardise(X: ArrayLike<number>, n: number, d: number, s: Standardiser): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let j = 0; j < d; j++) out[row + j] = (X[row + j] - s.mean[j]) / s.scale[j];
  }
  return out;
}
