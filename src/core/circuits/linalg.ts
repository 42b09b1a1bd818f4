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

/**
 * C[M, N] (+)= A[M, K] @ B[N, K]^T: every row of A dotted with every row of B. Two rows of A and
 * four of B at a time: eight sums share six loads per step, which is what keeps V8's scalar loop
 * busy (1.5x the one-row form on the attribution's shapes).
 */
export function matmulTransposed(A: Float32Array, B: Float32Array, C: Float32Array, M: number, K: number, N: number, accumulate = false): void {
  let i = 0;
  for (; i + 2 <= M; i += 2) {
    const a0 = i * K;
    const a1 = a0 + K;
    const c0 = i * N;
    const c1 = c0 + N;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const b0 = j * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k];
        const x1 = A[a1 + k];
        const y0 = B[b0 + k];
        const y1 = B[b1 + k];
        const y2 = B[b2 + k];
        const y3 = B[b3 + k];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      if (accumulate) {
        C[c0 + j] += s00; C[c0 + j + 1] += s01; C[c0 + j + 2] += s02; C[c0 + j + 3] += s03;
        C[c1 + j] += s10; C[c1 + j + 1] += s11; C[c1 + j + 2] += s12; C[c1 + j + 3] += s13;
      } else {
        C[c0 + j] = s00; C[c0 + j + 1] = s01; C[c0 + j + 2] = s02; C[c0 + j + 3] = s03;
        C[c1 + j] = s10; C[c1 + j + 1] = s11; C[c1 + j + 2] = s12; C[c1 + j + 3] = s13;
      }
    }
    for (; j < N; j++) {
      const s0 = dot(A, a0, B, j * K, K);
      const s1 = dot(A, a1, B, j * K, K);
      C[c0 + j] = accumulate ? C[c0 + j] + s0 : s0;
      C[c1 + j] = accumulate ? C[c1 + j] + s1 : s1;
    }
  }
  if (i < M) matrixVector(A, i * K, B, C, i * N, K, N, accumulate);
}

/** C[cOffset + j] (+)= A[aOffset .. + K] · B[j] for the N rows of B, four at a time. */
function matrixVector(A: Float32Array, aOffset: number, B: Float32Array, C: Float32Array, cOffset: number, K: number, N: number, accumulate: boolean): void {
  let j = 0;
  for (; j + 4 <= N; j += 4) {
    const b0 = j * K;
    const b1 = b0 + K;
    const b2 = b1 + K;
    const b3 = b2 + K;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let k = 0; k < K; k++) {
      const x = A[aOffset + k];
      s0 += x * B[b0 + k];
      s1 += x * B[b1 + k];
      s2 += x * B[b2 + k];
      s3 += x * B[b3 + k];
    }
    const c = cOffset + j;
    if (accumulate) {
      C[c] += s0; C[c + 1] += s1; C[c + 2] += s2; C[c + 3] += s3;
    } else {
      C[c] = s0; C[c + 1] = s1; C[c + 2] = s2; C[c + 3] = s3;
    }
  }
  for (; j < N; j++) {
    const s = dot(A, aOffset, B, j * K, K);
    C[cOffset + j] = accumulate ? C[cOffset + j] + s : s;
  }
}

export function dot(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[aOffset + i] * b[bOffset + i];
  return s;
}
