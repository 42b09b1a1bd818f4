/**
 * Full-batch L-BFGS for smooth convex objectives (the logistic-regression loss). Deterministic:
 * no randomness, fixed history, a backtracking Armijo line search. Stops like scipy's L-BFGS-B as
 * sklearn calls it: when the largest gradient component is under `gtol`, or when an iteration no
 * longer lowers the objective by a relative `ftol`.
 */

/** Writes the gradient at `x` into `grad` and returns the objective. */
export type ObjectiveFn = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  /** Iteration cap (default 200). */
  readonly maxIter?: number;
  /** Stop when max |grad_i| <= gtol (default 1e-4, sklearn's `tol`). */
  readonly gtol?: number;
  /** Stop when (f_prev - f) / max(|f_prev|, |f|, 1) <= ftol (default 1e-10). */
  readonly ftol?: number;
  /** Correction pairs kept (default 10, as scipy). */
  readonly history?: number;
}

export interface LbfgsResult {
  readonly x: Float64Array;
  readonly f: number;
  readonly iterations: number;
  readonly evaluations: number;
  readonly converged: boolean;
  /** Why it stopped. */
  readonly reason: "gtol" | "ftol" | "max-iter" | "line-search";
}

export function minimizeLbfgs(fn: ObjectiveFn, x0: Float64Array, options: LbfgsOptions = {}): LbfgsResult {
  const maxIter = options.maxIter ?? 200;
  const gtol = options.gtol ?? 1e-4;
  const ftol = options.ftol ?? 1e-10;
  const m = Math.max(1, options.history ?? 10);
  const P = x0.length;

  let x = Float64Array.from(x0);
  let g = new Float64Array(P);
  let f = fn(x, g);
  let evaluations = 1;
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);
  const dir = new Float64Array(P);
  let xNew = new Float64Array(P);
  let gNew = new Float64Array(P);

  for (let iter = 0; iter < maxIter; iter++) {
    if (maxAbs(g) <= gtol) return { x, f, iterations: iter, evaluations, converged: true, reason: "gtol" };

    // Two-loop recursion: dir = -H g.
    for (let i = 0; i < P; i++) dir[i] = -g[i];
    for (let j = S.length - 1; j >= 0; j--) {
      alpha[j] = rho[j] * dot(S[j], dir);
      axpy(-alpha[j], Y[j], dir);
    }
    if (S.length > 0) {
      const last = S.length - 1;
      scale(dir, dot(S[last], Y[last]) / dot(Y[last], Y[last]));
    } else {
      // First step: unit length, so the first trial point stays near the start.
      scale(dir, 1 / Math.max(1, norm(g)));
    }
    for (let j = 0; j < S.length; j++) {
      const beta = rho[j] * dot(Y[j], dir);
      axpy(alpha[j] - beta, S[j], dir);
    }
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Numerical trouble made the direction uphill: restart from steepest descent.
      S.length = Y.length = rho.length = 0;
      for (let i = 0; i < P; i++) dir[i] = -g[i] / Math.max(1, norm(g));
      slope = dot(g, dir);
    }

    // Backtracking Armijo line search (sufficient decrease c1 = 1e-4).
    let step = 1;
    let fNew = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < P; i++) xNew[i] = x[i] + step * dir[i];
      fNew = fn(xNew, gNew);
      evaluations++;
      if (Number.isFinite(fNew) && fNew <= f + 1e-4 * step * slope) break;
      step *= 0.5;
      fNew = Infinity;
    }
    if (!Number.isFinite(fNew)) return { x, f, iterations: iter, evaluations, converged: false, reason: "line-search" };

    // Keep the pair only when curvature is positive (always so for strictly convex losses).
    const s = new Float64Array(P);
    const y = new Float64Array(P);
    for (let i = 0; i < P; i++) {
      s[i] = xNew[i] - x[i];
      y[i] = gNew[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * norm(s) * norm(y)) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }

    const fPrev = f;
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    f = fNew;
    if ((fPrev - f) / Math.max(Math.abs(fPrev), Math.abs(f), 1) <= ftol) {
      const done = maxAbs(g) <= gtol;
      return { x, f, iterations: iter + 1, evaluations, converged: true, reason: done ? "gtol" : "ftol" };
    }
  }
  const done = maxAbs(g) <= gtol;
  return { x, f, iterations: maxIter, evaluations, converged: done, reason: done ? "gtol" : "max-iter" };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function norm(a: Float64Array): number {
  return Math.sqrt(dot(a, a));
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) y[i] += a * x[i];
}

function scale(x: Float64Array, a: number): void {
  for (let i = 0; i < x.length; i++) x[i] *= a;
}
