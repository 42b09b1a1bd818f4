/**
 * Row-major Float32Array kernels shared by SAE inference and training. They write into buffers the
 * caller owns, so hot loops allocate nothing.
 */

/**
 * The k largest of values[offset .. offset+n) (only where `allowed[i]` is 1, when given), written to
 * idx/val in no particular order. Returns how many were found (fewer than k when too few are allowed).
 * One pass that keeps the current minimum of the picks: O(n + replacements * k), and replacements
 * are rare once the picks are large, so it beats sorting for k << n.
 */
export function selectTopK(
  values: Float32Array,
  offset: number,
  n: number,
  k: number,
  idx: Int32Array,
  val: Float32Array,
  allowed?: Uint8Array,
): number {
  let count = 0;
  let minPos = 0;
  let minVal = Infinity;
  for (let i = 0; i < n; i++) {
    if (allowed && allowed[i] === 0) continue;
    const v = values[offset + i];
    if (count < k) {
      idx[count] = i;
      val[count] = v;
      if (v < minVal) {
        minVal = v;
        minPos = count;
      }
      count++;
      continue;
    }
    if (v <= minVal) continue;
    idx[minPos] = i;
    val[minPos] = v;
    minVal = Infinity;
    for (let j = 0; j < k; j++) {
      if (val[j] < minVal) {
        minVal = val[j];
        minPos = j;
      }
    }
  }
  return count;
}

/** out[0..n) = bias + sum_d x[d] * W[d, 0..n) for a [d, n] matrix W: one row of x @ W + bias. */
export function rowTimesMatrix(x: Float32Array, xOffset: number, d: number, W: Float32Array, n: number, bias: Float32Array | undefined, out: Float32Array, outOffset: number): void {
  if (bias) for (let j = 0; j < n; j++) out[outOffset + j] = bias[j];
  else out.fill(0, outOffset, outOffset + n);
  for (let i = 0; i < d; i++) {
    const a = x[xOffset + i];
    if (a === 0) continue;
    const w = i * n;
    for (let j = 0; j < n; j++) out[outOffset + j] += a * W[w + j];
  }
}

/** Euclidean norm of each row of a [rows, d] matrix. */
export function rowNorms(W: Float32Array, rows: number, d: number, out = new Float32Array(rows)): Float32Array {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = r * d, end = j + d; j < end; j++) s += W[j] * W[j];
    out[r] = Math.sqrt(s);
  }
  return out;
}

/** [cols, rows] transpose of a [rows, cols] matrix. */
export function transpose(W: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = W[r * cols + c];
  return out;
}
