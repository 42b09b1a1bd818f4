/**
 * Dense row-major float32 products for the attribution passes. Loops are ordered so the innermost
 * one walks contiguous memory; sums stay in float32 like the model's own MatMul.
 */

/** C[M, N] (+)= A[M, K] @ B[K, N]. */
export function matmul(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number, accumulate = false): void {
  if (!accumulate) C.fill(0, 0, M * N);
  for (let i = 0; i < M; i++) {
    const c = i * N;
    const a = i * K;
    for (let k = 0; k < K; k++) {
      const x = A[a + k];
      if (x === 0) continue;
      const b = k * N;
      for (let j = 0; j < N; j++) C[c + j] += x * B[b + j];
    }
  }
}

/** C[M, N] (+)= A[M, K] @ B[N, K]^T: every row of A dotted with every row of B. */
export function matmulTransposed(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number, accumulate = false): void {
  for (let i = 0; i < M; i++) {
    const a = i * K;
    const c = i * N;
    for (let j = 0; j < N; j++) {
      const b = j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a + k] * B[b + k];
      C[c + j] = accumulate ? C[c + j] + s : s;
    }
  }
}

export function dot(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[aOffset + i] * b[bOffset + i];
  return s;
}
