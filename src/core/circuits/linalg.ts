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

/** C[M, N] (+)= A[M, K] @ B[N, K]^T: every row of A dotted with every row of B, four rows of B at a time (A's values loaded once for four sums). */
export function matmulTransposed(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number, accumulate = false): void {
  for (let i = 0; i < M; i++) {
    const a = i * K;
    const c = i * N;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const b0 = j * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < K; k++) {
        const x = A[a + k];
        s0 += x * B[b0 + k];
        s1 += x * B[b1 + k];
        s2 += x * B[b2 + k];
        s3 += x * B[b3 + k];
      }
      if (accumulate) {
        C[c + j] += s0;
        C[c + j + 1] += s1;
        C[c + j + 2] += s2;
        C[c + j + 3] += s3;
      } else {
        C[c + j] = s0;
        C[c + j + 1] = s1;
        C[c + j + 2] = s2;
        C[c + j + 3] = s3;
      }
    }
    for (; j < N; j++) {
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
