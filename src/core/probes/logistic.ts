/**
 * L2-regularised logistic regression with scikit-learn's LogisticRegression semantics:
 *
 *   minimise  1/2 ||W||^2 + C * sum_i s_i * loss_i        (intercept not penalised)
 *
 * with s_i the class weight of sample i ("balanced": n / (K * count_c)). Two classes use one
 * weight vector and the logistic loss (sklearn's coef_ of shape [1, d]); more use the multinomial
 * (softmax) loss with one row per class. Solved by full-batch L-BFGS, so a fit is deterministic.
 * Features should be standardised first (see standardise.ts).
 */
import { LoupeError } from "../errors";
import { minimizeLbfgs } from "./lbfgs";

/** "balanced", none (every sample weighs 1), or an explicit weight per class index. */
export type ClassWeight = "balanced" | "none" | readonly number[];

export interface LogisticOptions {
  /** Inverse regularisation strength, as in sklearn (default 1). */
  readonly C?: number;
  readonly classWeight?: ClassWeight;
  /** L-BFGS iteration cap (default 200). */
  readonly maxIter?: number;
  /** Gradient tolerance (default 1e-4). */
  readonly tol?: number;
}

export interface LogisticModel {
  readonly nClasses: number;
  readonly dim: number;
  /** [rows, dim] row-major; rows = 1 for two classes (the score of class 1), else nClasses. */
  readonly coef: Float64Array;
  /** [rows] */
  readonly intercept: Float64Array;
}

export interface LogisticFit extends LogisticModel {
  readonly iterations: number;
  /** Objective evaluations (line-search trials included). */
  readonly evaluations: number;
  readonly converged: boolean;
  /** Final objective, divided by C * sum of sample weights (a mean loss plus the penalty). */
  readonly loss: number;
  /** Weight given to each class. */
  readonly classWeights: Float64Array;
}

export function classCounts(y: ArrayLike<number>, K: number): Int32Array {
  const counts = new Int32Array(K);
  for (let i = 0; i < y.length; i++) counts[y[i]]++;
  return counts;
}

export function resolveClassWeights(weight: ClassWeight | undefined, counts: Int32Array): Float64Array {
  const K = counts.length;
  if (weight === undefined || weight === "none") return new Float64Array(K).fill(1);
  if (weight === "balanced") {
    const n = counts.reduce((a, b) => a + b, 0);
    return Float64Array.from(counts, (c) => (c > 0 ? n / (K * c) : 0));
  }
  if (weight.length !== K || weight.some((w) => !(w >= 0) || !Number.isFinite(w))) {
    throw new LoupeError("bad-argument", `Class weights must be ${K} non-negative numbers, one per class.`);
  }
  return Float64Array.from(weight);
}

/**
 * Fit on standardised rows X ([n, d]) with labels y in 0..K-1. Every class must occur: a probe
 * cannot learn a class it never sees (callers drop absent classes first).
 */
export function fitLogistic(X: Float64Array, n: number, d: number, y: ArrayLike<number>, K: number, options: LogisticOptions = {}): LogisticFit {
  if (X.length !== n * d) throw new LoupeError("bad-shape", `fitLogistic: ${X.length} values are not ${n} rows of ${d}.`);
  if (y.length !== n) throw new LoupeError("bad-shape", `fitLogistic: ${y.length} labels for ${n} rows.`);
  const C = options.C ?? 1;
  if (!(C > 0) || !Number.isFinite(C)) throw new LoupeError("bad-argument", `C must be a positive number (got ${C}).`);
  const counts = classCounts(y, K);
  const present = [...counts].filter((c) => c > 0).length;
  if (K < 2 || present < 2) throw new LoupeError("bad-argument", "A probe needs examples of at least two classes; the data has only one.");
  if (present < K) throw new LoupeError("bad-argument", `fitLogistic: class ${counts.indexOf(0)} has no examples.`);
  const cw = resolveClassWeights(options.classWeight, counts);
  const sw = Float64Array.from({ length: n }, (_, i) => cw[y[i]]);
  let S = 0;
  for (let i = 0; i < n; i++) S += sw[i];
  if (!(S > 0)) throw new LoupeError("bad-argument", "Every sample has weight 0.");

  const rows = K === 2 ? 1 : K;
  const P = rows * d + rows;
  // Dividing the sklearn objective by C*S keeps values O(1), so tolerances mean the same for any n.
  const penalty = 1 / (C * S);
  const objective = K === 2 ? binaryObjective(X, n, d, y, sw, S, penalty) : softmaxObjective(X, n, d, y, K, sw, S, penalty);
  const result = minimizeLbfgs(objective, new Float64Array(P), { maxIter: options.maxIter ?? 200, gtol: options.tol ?? 1e-4 });
  return {
    nClasses: K,
    dim: d,
    coef: result.x.slice(0, rows * d),
    intercept: result.x.slice(rows * d),
    iterations: result.iterations,
    evaluations: result.evaluations,
    converged: result.converged,
    loss: result.f,
    classWeights: cw,
  };
}

function binaryObjective(X: Float64Array, n: number, d: number, y: ArrayLike<number>, sw: Float64Array, S: number, penalty: number) {
  return (theta: Float64Array, grad: Float64Array): number => {
    const b = theta[d];
    grad.fill(0);
    let loss = 0;
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const row = i * d;
      let z = b;
      for (let j = 0; j < d; j++) z += theta[j] * X[row + j];
      // softplus(-z) for y=1, softplus(z) for y=0, written to avoid overflow.
      const signed = y[i] === 1 ? -z : z;
      loss += sw[i] * (signed > 0 ? signed + Math.log1p(Math.exp(-signed)) : Math.log1p(Math.exp(signed)));
      const p = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
      const r = (sw[i] * (p - y[i])) / S;
      gb += r;
      for (let j = 0; j < d; j++) grad[j] += r * X[row + j];
    }
    let reg = 0;
    for (let j = 0; j < d; j++) {
      reg += theta[j] * theta[j];
      grad[j] += penalty * theta[j];
    }
    grad[d] = gb;
    return loss / S + 0.5 * penalty * reg;
  };
}

function softmaxObjective(X: Float64Array, n: number, d: number, y: ArrayLike<number>, K: number, sw: Float64Array, S: number, penalty: number) {
  const z = new Float64Array(K);
  return (theta: Float64Array, grad: Float64Array): number => {
    const bias = K * d;
    grad.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const row = i * d;
      let max = -Infinity;
      for (let k = 0; k < K; k++) {
        let v = theta[bias + k];
        const w = k * d;
        for (let j = 0; j < d; j++) v += theta[w + j] * X[row + j];
        z[k] = v;
        if (v > max) max = v;
      }
      let sum = 0;
      for (let k = 0; k < K; k++) {
        z[k] = Math.exp(z[k] - max);
        sum += z[k];
      }
      const yi = y[i];
      loss += sw[i] * (Math.log(sum) - Math.log(z[yi]));
      for (let k = 0; k < K; k++) {
        const r = (sw[i] * (z[k] / sum - (k === yi ? 1 : 0))) / S;
        grad[bias + k] += r;
        const w = k * d;
        for (let j = 0; j < d; j++) grad[w + j] += r * X[row + j];
      }
    }
    let reg = 0;
    for (let p = 0; p < bias; p++) {
      reg += theta[p] * theta[p];
      grad[p] += penalty * theta[p];
    }
    return loss / S + 0.5 * penalty * reg;
  };
}

/** Class probabilities of one standardised row (length dim). */
export function rowProbabilities(model: LogisticModel, x: ArrayLike<number>, offset = 0, out = new Float64Array(model.nClasses)): Float64Array {
  const { nClasses: K, dim: d, coef, intercept } = model;
  if (K === 2) {
    let v = intercept[0];
    for (let j = 0; j < d; j++) v += coef[j] * x[offset + j];
    out[1] = v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
    out[0] = 1 - out[1];
    return out;
  }
  let max = -Infinity;
  for (let k = 0; k < K; k++) {
    let v = intercept[k];
    for (let j = 0; j < d; j++) v += coef[k * d + j] * x[offset + j];
    out[k] = v;
    if (v > max) max = v;
  }
  let sum = 0;
  for (let k = 0; k < K; k++) sum += out[k] = Math.exp(out[k] - max);
  for (let k = 0; k < K; k++) out[k] /= sum;
  return out;
}

/** [n, K] probabilities of standardised rows. */
export function predictProba(model: LogisticModel, X: Float64Array, n: number): Float64Array {
  const K = model.nClasses;
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) rowProbabilities(model, X, i * model.dim, out.subarray(i * K, (i + 1) * K));
  return out;
}

/** Most probable class of each standardised row (ties go to the lower index, as numpy's argmax). */
export function predict(model: LogisticModel, X: Float64Array, n: number): Int32Array {
  const K = model.nClasses;
  const proba = predictProba(model, X, n);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (proba[i * K + k] > proba[i * K + best]) best = k;
    out[i] = best;
  }
  return out;
}
