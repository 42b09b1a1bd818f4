/**
 * Train a TopK or JumpReLU transcoder set (per-layer or cross-layer) in plain TypeScript: each
 * layer's encoder reads that layer's MLP input, the decoders reconstruct its MLP output (PLT) or
 * every later layer's (CLT):
 *
 *   pre[l] = W_enc[l] x[l] + b_enc[l]
 *   act[l] = topk_k(pre[l])                        (circuit-tracer's TopK: the k largest, kept as they are)
 *          | pre[l] * H(pre[l] - theta[l])         (JumpReLU, one threshold per feature)
 *   y_hat[m] = sum over l <= m of act[l] W_dec[l][m - l] + b_dec[m]
 *   loss = sum over m of ||y[m] - y_hat[m]||^2  (+ lambda * sum over l of ||act[l]||_0 for JumpReLU)
 *
 * JumpReLU's step has no gradient, so thresholds learn through straight-through estimators with a
 * rectangle kernel of width `bandwidth` (Rajamanoharan et al. 2024, as trained for Gemma Scope):
 * d act / d theta = -(theta / eps) K((pre - theta) / eps), d H / d theta = -(1 / eps) K(...),
 * K(u) = 1 for |u| < 1/2; pre gets the reconstruction gradient where the feature is active.
 * Thresholds are stored as log theta while training, so they stay positive.
 *
 * A PLT may learn an affine skip connection as well (y_hat[l] += x[l] S[l], S starting at zero, as in
 * Dunefsky et al. 2024's skip transcoders): the linear part of the MLP then needs no features, and
 * what it carries (a token's identity, in early layers) stays attributable instead of falling into
 * the error node.
 *
 * Adam; b_dec starts at the outputs' mean. Inputs and outputs are scaled per layer to mean norm
 * sqrt(d_model) so one learning rate fits any model; the scales are folded back into the saved
 * weights, which read and write raw activations. The dense products (every encoder row against the
 * batch, the skip) run in onnxruntime (dense-products.ts); the sparse rest stays in JavaScript.
 */
import { LoupeError, throwIfAborted } from "../errors";
import { seededRandom } from "../tensor/random";
import { meanNorm, meanRow } from "../sae/stats";
import { selectTopK } from "../sae/kernels";
import { product, runWithOrt, type ProductSteps } from "./dense-products";
import type { FeatureInputHook, TranscoderKind, TranscoderLayer, TranscoderSet } from "./transcoder";

export interface TranscoderData {
  /** Per layer [rows, d_model]: MLP inputs at the set's input hook, and MLP outputs. */
  readonly inputs: readonly Float32Array[];
  readonly outputs: readonly Float32Array[];
  readonly rows: number;
  readonly dModel: number;
}

export interface TranscoderTrainOptions {
  readonly kind: TranscoderKind;
  readonly dTranscoder: number;
  /** Features kept per token (TopK only). */
  readonly k: number;
  /** TopK (default) or JumpReLU. */
  readonly activation?: "topk" | "jumprelu";
  /** JumpReLU: weight of the L0 penalty (mean active features per token, summed over layers). Default 1e-3. */
  readonly l0Coefficient?: number;
  /** JumpReLU: width of the straight-through estimator's window around each threshold, in units of the normalised inputs' pre-activations. Default 0.05. */
  readonly bandwidth?: number;
  /** JumpReLU: every threshold's starting value. Default 0.1. */
  readonly initialThreshold?: number;
  /** PLT only: learn an affine skip connection W_skip beside the features. */
  readonly skip?: boolean;
  readonly inputHook: FeatureInputHook;
  readonly epochs?: number;
  readonly batchSize?: number;
  readonly lr?: number;
  readonly seed?: number;
  readonly signal?: AbortSignal;
  /** nmse and l0 (mean active features per token and layer) over the steps since the last call. */
  readonly onProgress?: (p: { step: number; steps: number; nmse: number; l0: number }) => void;
  readonly progressEvery?: number;
}

interface Adam {
  readonly m: Float32Array;
  readonly v: Float32Array;
}

const adam = (n: number): Adam => ({ m: new Float32Array(n), v: new Float32Array(n) });

function adamStep(p: Float32Array, g: Float32Array, s: Adam, lr: number, t: number): void {
  const b1 = 0.9;
  const b2 = 0.999;
  const c1 = 1 - b1 ** t;
  const c2 = 1 - b2 ** t;
  const { m, v } = s;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = b1 * m[i] + (1 - b1) * gi;
    const vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= (lr * (mi / c1)) / (Math.sqrt(vi / c2) + 1e-8);
  }
}

/** out[c, r] = a[r, c] for a [rows, cols]. */
function transposeInto(a: Float32Array, rows: number, cols: number, out: Float32Array): Float32Array {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

export async function trainTranscoders(data: TranscoderData, o: TranscoderTrainOptions): Promise<{ set: TranscoderSet; steps: number }> {
  // Every product goes to onnxruntime (none is small): each step then awaits, so Ctrl+C lands.
  return runWithOrt(trainingSteps(data, o), { minMultiplyAdds: 0 });
}

function* trainingSteps(data: TranscoderData, o: TranscoderTrainOptions): ProductSteps<{ set: TranscoderSet; steps: number }> {
  const L = data.inputs.length;
  const D = data.dModel;
  const F = o.dTranscoder;
  const N = data.rows;
  const k = o.k;
  const jump = o.activation === "jumprelu";
  if (!jump && !(Number.isInteger(k) && k >= 1 && k <= F)) throw new LoupeError("bad-argument", `k must be from 1 to d_transcoder ${F} (got ${k}).`);
  const lambda = o.l0Coefficient ?? 1e-3;
  const eps = o.bandwidth ?? 0.05;
  const theta0 = o.initialThreshold ?? 0.1;
  if (jump && !(lambda >= 0 && eps > 0 && theta0 > 0)) throw new LoupeError("bad-argument", `JumpReLU needs an L0 coefficient >= 0, a bandwidth > 0 and a starting threshold > 0 (got ${lambda}, ${eps}, ${theta0}).`);
  if (o.skip && o.kind !== "plt") throw new LoupeError("bad-argument", "circuit-tracer's CLT files have no place for a skip connection: train the skip with --kind plt.");
  if (N < 2) throw new LoupeError("empty-input", "Too few tokens to train transcoders on: give a longer corpus.");
  const rand = seededRandom(o.seed ?? 1);
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const nOut = (l: number) => (o.kind === "plt" ? 1 : L - l);
  // Per-layer scales to mean norm sqrt(D).
  const inScale = data.inputs.map((x) => Math.sqrt(D) / Math.max(meanNorm(x, N, D), 1e-12));
  const outScale = data.outputs.map((y) => Math.sqrt(D) / Math.max(meanNorm(y, N, D), 1e-12));
  const W_enc = Array.from({ length: L }, () => Float32Array.from({ length: F * D }, () => normal() / Math.sqrt(D)));
  const b_enc = Array.from({ length: L }, () => new Float32Array(F));
  const W_dec = Array.from({ length: L }, (_, l) => Float32Array.from({ length: F * nOut(l) * D }, () => (normal() * 0.1) / Math.sqrt(D)));
  const b_dec = data.outputs.map((y, m) => Float32Array.from(meanRow(y, N, D), (v) => v * outScale[m]));
  const logTheta = Array.from({ length: jump ? L : 0 }, () => new Float32Array(F).fill(Math.log(theta0)));
  // The skip as circuit-tracer stores it, [d_out, d_in]: y_hat += x @ W_skip^T.
  const W_skip = Array.from({ length: o.skip ? L : 0 }, () => new Float32Array(D * D));
  const states = {
    W_enc: W_enc.map((w) => adam(w.length)),
    b_enc: b_enc.map((b) => adam(b.length)),
    W_dec: W_dec.map((w) => adam(w.length)),
    b_dec: b_dec.map((b) => adam(b.length)),
    logTheta: logTheta.map((t) => adam(t.length)),
    W_skip: W_skip.map((w) => adam(w.length)),
  };
  const B = Math.min(o.batchSize ?? 256, N);
  const steps = Math.max(1, Math.floor(((o.epochs ?? 4) * N) / B));
  const lr = o.lr ?? 1e-3;
  const order = Int32Array.from({ length: N }, (_, i) => i);
  const x = Array.from({ length: L }, () => new Float32Array(B * D));
  const y = Array.from({ length: L }, () => new Float32Array(B * D));
  // Active features of each row: idx/val[l][b * maxActive + i] for i < count[l][b].
  const maxActive = jump ? F : k;
  const idx = Array.from({ length: L }, () => new Int32Array(B * maxActive));
  const val = Array.from({ length: L }, () => new Float32Array(B * maxActive));
  const count = Array.from({ length: L }, () => new Int32Array(B));
  const pre = Array.from({ length: L }, () => new Float32Array(B * F));
  const gLogTheta = logTheta.map((t) => new Float32Array(t.length));
  const gW_enc = W_enc.map((w) => new Float32Array(w.length));
  const gb_enc = b_enc.map((b) => new Float32Array(b.length));
  const gW_dec = W_dec.map((w) => new Float32Array(w.length));
  const gb_dec = b_dec.map((b) => new Float32Array(b.length));
  const gW_skip = W_skip.map((w) => new Float32Array(w.length));
  const skipOut = new Float32Array(o.skip ? B * D : 0);
  const xT = new Float32Array(o.skip ? B * D : 0);
  const gT = new Float32Array(o.skip ? B * D : 0);
  const resid = Array.from({ length: L }, () => new Float32Array(B * D));
  /**
   * Straight-through gradients of layer l's log thresholds from the rows whose pre-activation lies
   * within eps / 2 of the threshold: the reconstruction's (through the jump of act) and the L0 penalty's.
   */
  const thresholdGradient = (l: number, scale: number) => {
    const g = gLogTheta[l];
    g.fill(0);
    const no = nOut(l);
    for (let f = 0; f < F; f++) {
      const theta = Math.exp(logTheta[l][f]);
      for (let b = 0; b < B; b++) {
        if (!(Math.abs(pre[l][b * F + f] - theta) < eps / 2)) continue;
        let gAct = 0;
        for (let o2 = 0; o2 < no; o2++) {
          const r = resid[l + o2];
          const w = (f * no + o2) * D;
          for (let d = 0; d < D; d++) gAct += scale * r[b * D + d] * W_dec[l][w + d];
        }
        // d/d log theta = theta * d/d theta.
        g[f] += theta * (gAct * -(theta / eps) - lambda / (B * eps));
      }
    }
  };
  let cursor = N;
  let errSum = 0;
  let varSum = 0;
  let activeSum = 0;
  let rowsSeen = 0;
  for (let step = 1; step <= steps; step++) {
    throwIfAborted(o.signal);
    // Next batch (reshuffle each epoch).
    for (let b = 0; b < B; b++) {
      if (cursor >= N) {
        for (let i = N - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [order[i], order[j]] = [order[j], order[i]];
        }
        cursor = 0;
      }
      const row = order[cursor++];
      for (let l = 0; l < L; l++) {
        const xs = x[l];
        const ys = y[l];
        const xin = data.inputs[l];
        const yin = data.outputs[l];
        const si = inScale[l];
        const so = outScale[l];
        for (let d = 0; d < D; d++) {
          xs[b * D + d] = xin[row * D + d] * si;
          ys[b * D + d] = yin[row * D + d] * so;
        }
      }
    }
    // Forward: every layer's active features (top k, or those above their thresholds).
    for (let l = 0; l < L; l++) {
      const p = yield product(x[l], W_enc[l], B, D, F, pre[l]);
      const be = b_enc[l];
      for (let b = 0; b < B; b++) for (let f = 0; f < F; f++) p[b * F + f] += be[f];
      const theta = jump ? logTheta[l].map(Math.exp) : undefined;
      const ix = idx[l];
      const vx = val[l];
      const cnt = count[l];
      for (let b = 0; b < B; b++) {
        const at = b * maxActive;
        if (theta) {
          let n = 0;
          for (let f = 0; f < F; f++) {
            const v = p[b * F + f];
            if (v > theta[f]) {
              ix[at + n] = f;
              vx[at + n] = v;
              n++;
            }
          }
          cnt[b] = n;
        } else {
          cnt[b] = selectTopK(p, b * F, F, k, ix.subarray(at), vx.subarray(at));
        }
        activeSum += cnt[b];
      }
    }
    rowsSeen += B * L;
    for (let m = 0; m < L; m++) {
      const r = resid[m];
      const bd = b_dec[m];
      const ys = y[m];
      for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) r[b * D + d] = bd[d] - ys[b * D + d];
      if (o.skip) {
        const s = yield product(x[m], W_skip[m], B, D, D, skipOut);
        for (let i = 0; i < B * D; i++) r[i] += s[i];
      }
    }
    for (let l = 0; l < L; l++) {
      const no = nOut(l);
      const W = W_dec[l];
      for (let b = 0; b < B; b++) for (let i = 0; i < count[l][b]; i++) {
        const f = idx[l][b * maxActive + i];
        const a = val[l][b * maxActive + i];
        for (let o2 = 0; o2 < no; o2++) {
          const r = resid[l + o2];
          const w = (f * no + o2) * D;
          const rb = b * D;
          for (let d = 0; d < D; d++) r[rb + d] += a * W[w + d];
        }
      }
    }
    for (let m = 0; m < L; m++) {
      const r = resid[m];
      const ys = y[m];
      for (let i = 0; i < B * D; i++) {
        errSum += r[i] * r[i];
        varSum += ys[i] * ys[i];
      }
    }
    // Backward: loss = sum ||resid||^2 / B.
    const scale = 2 / B;
    for (let l = 0; l < L; l++) {
      const gWe = gW_enc[l];
      const gbe = gb_enc[l];
      const gWd = gW_dec[l];
      const W = W_dec[l];
      const xs = x[l];
      gWe.fill(0);
      gbe.fill(0);
      gWd.fill(0);
      const no = nOut(l);
      for (let b = 0; b < B; b++) for (let i = 0; i < count[l][b]; i++) {
        const f = idx[l][b * maxActive + i];
        const a = val[l][b * maxActive + i];
        let gAct = 0;
        for (let o2 = 0; o2 < no; o2++) {
          const r = resid[l + o2];
          const w = (f * no + o2) * D;
          const rb = b * D;
          for (let d = 0; d < D; d++) {
            const g = scale * r[rb + d];
            gWd[w + d] += a * g;
            gAct += g * W[w + d];
          }
        }
        gbe[f] += gAct;
        const w = f * D;
        const xb = b * D;
        for (let d = 0; d < D; d++) gWe[w + d] += gAct * xs[xb + d];
      }
      if (jump) thresholdGradient(l, scale);
      if (o.skip) {
        // d loss / d W_skip[j, i] = sum over rows of (2 / B) resid[b, j] x[b, i].
        transposeInto(resid[l], B, D, gT);
        for (let i = 0; i < B * D; i++) gT[i] *= scale;
        yield product(gT, transposeInto(x[l], B, D, xT), D, B, D, gW_skip[l]);
      }
    }
    for (let m = 0; m < L; m++) {
      const g = gb_dec[m];
      const r = resid[m];
      g.fill(0);
      for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) g[d] += scale * r[b * D + d];
    }
    const rate = step > 0.8 * steps ? (lr * (steps - step + 1)) / (0.2 * steps) : lr;
    for (let l = 0; l < L; l++) {
      adamStep(W_enc[l], gW_enc[l], states.W_enc[l], rate, step);
      adamStep(b_enc[l], gb_enc[l], states.b_enc[l], rate, step);
      adamStep(W_dec[l], gW_dec[l], states.W_dec[l], rate, step);
      adamStep(b_dec[l], gb_dec[l], states.b_dec[l], rate, step);
      if (jump) adamStep(logTheta[l], gLogTheta[l], states.logTheta[l], rate, step);
      if (o.skip) adamStep(W_skip[l], gW_skip[l], states.W_skip[l], rate, step);
    }
    if (step % (o.progressEvery ?? 50) === 0 || step === steps) {
      o.onProgress?.({ step, steps, nmse: errSum / Math.max(varSum, 1e-12), l0: activeSum / Math.max(rowsSeen, 1) });
      errSum = 0;
      varSum = 0;
      activeSum = 0;
      rowsSeen = 0;
    }
  }
  // Fold the scales back: W_enc reads raw x (x * inScale), decoders write raw y (y_n / outScale).
  const layers: TranscoderLayer[] = [];
  for (let l = 0; l < L; l++) {
    const no = nOut(l);
    const dec = W_dec[l].slice();
    for (let f = 0; f < F; f++) for (let o2 = 0; o2 < no; o2++) for (let d = 0; d < D; d++) dec[(f * no + o2) * D + d] /= outScale[l + o2];
    layers.push({
      W_enc: Float32Array.from(W_enc[l], (v) => v * inScale[l]),
      b_enc: b_enc[l].slice(),
      W_dec: dec,
      b_dec: Float32Array.from(b_dec[l], (v) => v / outScale[l]),
      // Pre-activations read raw inputs with the scale folded into W_enc, so thresholds carry over as they are.
      ...(jump ? { threshold: logTheta[l].map(Math.exp) } : {}),
      // The set's skip right-multiplies raw x: skip[i, j] = W_skip[j, i] * inScale / outScale.
      ...(o.skip ? { skip: transposeInto(W_skip[l].map((v) => (v * inScale[l]) / outScale[l]), D, D, new Float32Array(D * D)) } : {}),
    });
  }
  return {
    set: { kind: o.kind, nLayers: L, dModel: D, dTranscoder: F, activation: jump ? { kind: "jumprelu" } : { kind: "topk", k }, inputHook: o.inputHook, outputHook: "hook_mlp_out", layers },
    steps,
  };
}
