/**
 * Train a TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") on activation
 * vectors, in plain TypeScript:
 *
 *   feature_acts = relu(topk_k((x - b_dec) @ W_enc + b_enc)),   x_hat = feature_acts @ W_dec + b_dec
 *   loss = ||x - x_hat||^2 + auxCoefficient * ||e - e_hat||^2
 *
 * where e = x - x_hat (held fixed) and e_hat is decoded from the top-auxK pre-activations among
 * dead latents only (those that have not fired for deadAfterTokens tokens): the AuxK loss that
 * gives dead latents a gradient toward what the live ones miss. Adam; decoder rows kept at unit
 * norm (the gradient along each row is removed before the step, the row renormalised after);
 * W_enc initialised to W_dec's transpose; b_dec to the data's mean or geometric median.
 *
 * Data are scaled so the mean norm is sqrt(d_in) (SAELens's expected_average_only_in), which
 * makes the default learning rate fit any model; the scale is folded back into the saved weights,
 * so the result reads raw activations and keeps unit-norm decoder rows.
 *
 * Speed: the dense part is the encoder (rows x d_in x d_sae), done in register tiles (see
 * encodeDense); everything after top-k touches only the k active (and auxK dead) latents per
 * row. Buffers are allocated once.
 */
import { LoupeError, throwIfAborted } from "../errors";
import { layerOf } from "../model/hooks";
import { seededRandom } from "../tensor/random";
import type { SaeConfig } from "./config";
import { selectTopK, transpose } from "./kernels";
import { Sae } from "./sae";
import { geometricMedian, meanNorm, meanRow, totalVariance } from "./stats";

export interface TopKTrainOptions {
  /** Where the activations came from; written to cfg.json so the SAE attaches there. */
  readonly hook_name: string;
  readonly d_sae: number;
  readonly k: number;
  /** Optimiser steps; default: `epochs` passes over the data. */
  readonly steps?: number;
  /** Passes over the data when `steps` is not given (default 1). */
  readonly epochs?: number;
  /** Tokens per step (default 512). */
  readonly batchSize?: number;
  /** Adam learning rate (default 2e-4 / sqrt(d_sae / 2^14), the scaling EleutherAI's sparsify uses). */
  readonly lr?: number;
  /** Share of the steps, at the end, over which the learning rate falls linearly to zero (default 0.2). */
  readonly lrDecayFraction?: number;
  /** Dead latents used by the AuxK loss per token (default d_in / 2, as in Gao et al.'s appendix). */
  readonly auxK?: number;
  /** Weight of the AuxK loss (default 1/32, Gao et al.). */
  readonly auxCoefficient?: number;
  /** A latent is dead once it has not fired for this many tokens (default: a tenth of the training tokens, at most 10M). */
  readonly deadAfterTokens?: number;
  /** b_dec's starting point (default "mean"; "geometric-median" resists outlier tokens). */
  readonly bDecInit?: "mean" | "geometric-median";
  readonly seed?: number;
  /** cfg.json metadata. */
  readonly model_name?: string;
  readonly context_size?: number;
  /** Whether the activations came from prompts with a BOS in front (Llama's <s>; HookedModel.prependsBos). */
  readonly prepend_bos?: boolean;
  /** Call onProgress every this many steps (default 10), and after the last. */
  readonly progressEvery?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: TopKTrainProgress) => void;
}

export interface TopKTrainProgress {
  readonly step: number;
  readonly steps: number;
  readonly tokens: number;
  /** Fraction of variance unexplained since the last report: mean ||x - x_hat||^2 / total variance. */
  readonly fvu: number;
  /** AuxK loss since the last report, relative to the total variance (0 while no latent is dead). */
  readonly auxLoss: number;
  /** Share of latents currently dead. */
  readonly deadFraction: number;
  readonly lr: number;
  readonly elapsedMs: number;
}

export interface TopKTrainResult {
  readonly sae: Sae;
  readonly history: TopKTrainProgress[];
  readonly steps: number;
  readonly tokens: number;
  readonly elapsedMs: number;
  /** The factor the data were multiplied by during training (folded back into the weights). */
  readonly dataScale: number;
}

const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPS = 1e-8;

/** Train on `rows` vectors of width d_in (row-major in `data`). */
export async function trainTopKSae(data: Float32Array, rows: number, d_in: number, options: TopKTrainOptions): Promise<TopKTrainResult> {
  const started = Date.now();
  const D = d_in;
  const S = options.d_sae;
  const k = options.k;
  checkOptions(data, rows, D, options);
  const B = Math.max(1, Math.floor(options.batchSize ?? 512));
  const steps = options.steps ?? Math.max(1, Math.ceil(((options.epochs ?? 1) * rows) / B));
  const baseLr = options.lr ?? 2e-4 / Math.sqrt(S / 2 ** 14);
  const decayFrom = Math.floor(steps * (1 - (options.lrDecayFraction ?? 0.2)));
  const auxK = Math.min(S, Math.max(1, Math.floor(options.auxK ?? D / 2)));
  const auxCoefficient = options.auxCoefficient ?? 1 / 32;
  const deadAfter = options.deadAfterTokens ?? Math.min(10_000_000, Math.max(B, Math.floor((steps * B) / 10)));
  const progressEvery = Math.max(1, Math.floor(options.progressEvery ?? 10));
  const random = seededRandom(options.seed ?? 0);

  // Unit-mean-norm scaling: x' = scale * x.
  const scale = Math.sqrt(D) / Math.max(meanNorm(data, rows, D), 1e-12);
  const totalVar = totalVariance(data, rows, D) * scale * scale;

  // Parameters in the scaled space. The encoder is stored transposed ([d_sae, d_in]) so both the
  // dense forward and the sparse updates read contiguous rows.
  const W_dec = new Float32Array(S * D);
  for (let i = 0; i < W_dec.length; i++) W_dec[i] = gaussian(random);
  normaliseRows(W_dec, S, D);
  const W_encT = W_dec.slice();
  const b_enc = new Float32Array(S);
  const center = options.bDecInit === "geometric-median" ? geometricMedian(data, rows, D) : meanRow(data, rows, D);
  const b_dec = center.map((v) => v * scale);

  const params = [W_encT, b_enc, W_dec, b_dec];
  const grads = params.map((p) => new Float32Array(p.length));
  const [gW_encT, gb_enc, gW_dec, gb_dec] = grads;
  const moment1 = params.map((p) => new Float32Array(p.length));
  const moment2 = params.map((p) => new Float32Array(p.length));

  // Work buffers, reused every step.
  const x = new Float32Array(B * D);
  const xc = new Float32Array(B * D);
  const pre = new Float32Array(B * S);
  const err = new Float32Array(D);
  const g = new Float32Array(D);
  const topIdx = new Int32Array(k);
  const topVal = new Float32Array(k);
  const auxIdx = new Int32Array(auxK);
  const auxVal = new Float32Array(auxK);
  const dead = new Uint8Array(S);
  const fired = new Uint8Array(S);
  const sinceFired = new Float64Array(S);

  const order = Int32Array.from({ length: rows }, (_, i) => i);
  let cursor = rows;
  const history: TopKTrainProgress[] = [];
  let windowSse = 0;
  let windowAux = 0;
  let windowTokens = 0;
  let tokens = 0;

  for (let step = 1; step <= steps; step++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted(options.signal);

    // Next batch from a reshuffled pass over the data.
    for (let r = 0; r < B; r++) {
      if (cursor >= rows) {
        shuffle(order, random);
        cursor = 0;
      }
      const src = order[cursor++] * D;
      for (let j = 0; j < D; j++) {
        const v = data[src + j] * scale;
        x[r * D + j] = v;
        xc[r * D + j] = v - b_dec[j];
      }
    }

    let numDead = 0;
    for (let s = 0; s < S; s++) {
      dead[s] = sinceFired[s] >= deadAfter ? 1 : 0;
      numDead += dead[s];
    }
    const kAux = Math.min(auxK, numDead);
    // Fewer dead latents than auxK: scale the aux loss down rather than spread it thin (sparsify, SAELens).
    const auxWeight = auxCoefficient * Math.min(numDead / auxK, 1);

    encodeDense(xc, B, D, W_encT, b_enc, S, pre);
    for (const grad of grads) grad.fill(0);
    fired.fill(0);

    const inv = 2 / B;
    for (let r = 0; r < B; r++) {
      const xo = r * D;
      const po = r * S;
      const n = selectTopK(pre, po, S, k, topIdx, topVal);
      // x_hat - x
      for (let j = 0; j < D; j++) err[j] = b_dec[j] - x[xo + j];
      for (let a = 0; a < n; a++) {
        const f = topVal[a];
        if (f <= 0) continue;
        const w = topIdx[a] * D;
        fired[topIdx[a]] = 1;
        for (let j = 0; j < D; j++) err[j] += f * W_dec[w + j];
      }
      let sse = 0;
      for (let j = 0; j < D; j++) {
        sse += err[j] * err[j];
        g[j] = inv * err[j];
        gb_dec[j] += g[j];
      }
      windowSse += sse;
      backpropLatents(topIdx, topVal, n, g, xc, xo, W_dec, W_encT, gW_dec, gW_encT, gb_enc, gb_dec, D);

      if (kAux > 0) {
        const m = selectTopK(pre, po, S, kAux, auxIdx, auxVal, dead);
        // e_hat - e with e = x - x_hat = -err (held fixed).
        for (let j = 0; j < D; j++) g[j] = err[j];
        for (let a = 0; a < m; a++) {
          const f = auxVal[a];
          if (f <= 0) continue;
          const w = auxIdx[a] * D;
          for (let j = 0; j < D; j++) g[j] += f * W_dec[w + j];
        }
        let auxSse = 0;
        for (let j = 0; j < D; j++) {
          auxSse += g[j] * g[j];
          g[j] *= inv * auxWeight;
        }
        windowAux += auxWeight * auxSse;
        backpropLatents(auxIdx, auxVal, m, g, xc, xo, W_dec, W_encT, gW_dec, gW_encT, gb_enc, gb_dec, D);
      }
    }
    tokens += B;
    windowTokens += B;
    for (let s = 0; s < S; s++) sinceFired[s] = fired[s] ? 0 : sinceFired[s] + B;

    removeParallelComponent(gW_dec, W_dec, S, D);
    const lr = step > decayFrom ? (baseLr * (steps - step + 1)) / (steps - decayFrom + 1) : baseLr;
    for (let p = 0; p < params.length; p++) adamStep(params[p], grads[p], moment1[p], moment2[p], lr, step);
    normaliseRows(W_dec, S, D);

    if (step % progressEvery === 0 || step === steps) {
      let deadNow = 0;
      for (let s = 0; s < S; s++) if (sinceFired[s] >= deadAfter) deadNow++;
      const progress: TopKTrainProgress = {
        step,
        steps,
        tokens,
        fvu: windowSse / windowTokens / totalVar,
        auxLoss: windowAux / windowTokens / totalVar,
        deadFraction: deadNow / S,
        lr,
        elapsedMs: Date.now() - started,
      };
      history.push(progress);
      options.onProgress?.(progress);
      windowSse = windowAux = windowTokens = 0;
    }
  }

  // Back to raw activations (see the header): W_enc and W_dec unchanged, biases divided by scale.
  const cfg: SaeConfig = {
    architecture: "topk",
    d_in: D,
    d_sae: S,
    hook_name: options.hook_name,
    hook_layer: layerOf(options.hook_name),
    k,
    rescale_acts_by_decoder_norm: false,
    apply_b_dec_to_input: true,
    normalize_activations: "none",
    finetuning_scaling_factor: false,
    dtype: "float32",
    model_name: options.model_name,
    prepend_bos: options.prepend_bos ?? false,
    context_size: options.context_size,
  };
  const sae = new Sae(cfg, {
    W_enc: transpose(W_encT, S, D),
    b_enc: b_enc.map((v) => v / scale),
    W_dec,
    b_dec: b_dec.map((v) => v / scale),
  });
  return { sae, history, steps, tokens, elapsedMs: Date.now() - started, dataScale: scale };
}

/**
 * pre[r, s] = b_enc[s] + xc[r, :] . W_encT[s, :]. Tiles of four rows by two latents keep eight
 * sums in registers, so each value loaded serves two or four multiply-adds (the fastest tile in V8
 * here: about twice a plain dot-product loop; four by four spills).
 */
function encodeDense(xc: Float32Array, B: number, D: number, W_encT: Float32Array, b_enc: Float32Array, S: number, pre: Float32Array): void {
  let r = 0;
  for (; r + 4 <= B; r += 4) {
    const o0 = r * D;
    const o1 = o0 + D;
    const o2 = o1 + D;
    const o3 = o2 + D;
    const p0 = r * S;
    const p1 = p0 + S;
    const p2 = p1 + S;
    const p3 = p2 + S;
    let s = 0;
    for (; s + 2 <= S; s += 2) {
      const w = s * D;
      const u = w + D;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let c0 = 0;
      let c1 = 0;
      let c2 = 0;
      let c3 = 0;
      for (let j = 0; j < D; j++) {
        const v = W_encT[w + j];
        const q = W_encT[u + j];
        const x0 = xc[o0 + j];
        const x1 = xc[o1 + j];
        const x2 = xc[o2 + j];
        const x3 = xc[o3 + j];
        a0 += v * x0;
        a1 += v * x1;
        a2 += v * x2;
        a3 += v * x3;
        c0 += q * x0;
        c1 += q * x1;
        c2 += q * x2;
        c3 += q * x3;
      }
      const b = b_enc[s];
      const e = b_enc[s + 1];
      pre[p0 + s] = a0 + b;
      pre[p1 + s] = a1 + b;
      pre[p2 + s] = a2 + b;
      pre[p3 + s] = a3 + b;
      pre[p0 + s + 1] = c0 + e;
      pre[p1 + s + 1] = c1 + e;
      pre[p2 + s + 1] = c2 + e;
      pre[p3 + s + 1] = c3 + e;
    }
    for (; s < S; s++) for (let i = 0; i < 4; i++) pre[(r + i) * S + s] = dot(W_encT, s * D, xc, (r + i) * D, D) + b_enc[s];
  }
  for (; r < B; r++) for (let s = 0; s < S; s++) pre[r * S + s] = dot(W_encT, s * D, xc, r * D, D) + b_enc[s];
}

function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let sum = 0;
  for (let j = 0; j < n; j++) sum += a[ao + j] * b[bo + j];
  return sum;
}

/**
 * Gradients through the active latents of one row, given g = dLoss/dx_hat (or d/de_hat):
 * W_dec rows get f * g; where relu passed, dLoss/dpre = W_dec[i] . g flows to b_enc[i], to
 * W_enc[:, i] (times x - b_dec) and, through x - b_dec, to b_dec.
 */
function backpropLatents(
  idx: Int32Array,
  val: Float32Array,
  n: number,
  g: Float32Array,
  xc: Float32Array,
  xo: number,
  W_dec: Float32Array,
  W_encT: Float32Array,
  gW_dec: Float32Array,
  gW_encT: Float32Array,
  gb_enc: Float32Array,
  gb_dec: Float32Array,
  D: number,
): void {
  for (let a = 0; a < n; a++) {
    const f = val[a];
    if (f <= 0) continue;
    const i = idx[a];
    const w = i * D;
    let gf = 0;
    for (let j = 0; j < D; j++) {
      gf += W_dec[w + j] * g[j];
      gW_dec[w + j] += f * g[j];
    }
    gb_enc[i] += gf;
    for (let j = 0; j < D; j++) {
      gW_encT[w + j] += gf * xc[xo + j];
      gb_dec[j] -= gf * W_encT[w + j];
    }
  }
}

function adamStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, t: number): void {
  const c1 = 1 - ADAM_BETA1 ** t;
  const c2 = 1 - ADAM_BETA2 ** t;
  const stepSize = (lr * Math.sqrt(c2)) / c1;
  const eps = ADAM_EPS * Math.sqrt(c2);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = (m[i] = ADAM_BETA1 * m[i] + (1 - ADAM_BETA1) * gi);
    const vi = (v[i] = ADAM_BETA2 * v[i] + (1 - ADAM_BETA2) * gi * gi);
    p[i] -= (stepSize * mi) / (Math.sqrt(vi) + eps);
  }
}

/** Drop the part of each decoder row's gradient along the row: under unit norm it only changes the length. */
function removeParallelComponent(gW: Float32Array, W: Float32Array, S: number, D: number): void {
  for (let s = 0; s < S; s++) {
    const w = s * D;
    let dot = 0;
    for (let j = 0; j < D; j++) dot += gW[w + j] * W[w + j];
    if (dot === 0) continue;
    for (let j = 0; j < D; j++) gW[w + j] -= dot * W[w + j];
  }
}

function normaliseRows(W: Float32Array, rows: number, d: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let ss = 0;
    for (let j = 0; j < d; j++) ss += W[o + j] * W[o + j];
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let j = 0; j < d; j++) W[o + j] *= inv;
  }
}

function gaussian(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function shuffle(order: Int32Array, random: () => number): void {
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

function checkOptions(data: Float32Array, rows: number, D: number, o: TopKTrainOptions): void {
  const bad = (why: string): never => {
    throw new LoupeError("bad-argument", `TopK SAE training: ${why}`);
  };
  if (!Number.isInteger(rows) || rows <= 0) bad(`no training vectors (rows ${rows}).`);
  if (!Number.isInteger(D) || D <= 0 || data.length !== rows * D) bad(`${data.length} values are not ${rows} rows of d_in ${D}.`);
  if (!Number.isInteger(o.d_sae) || o.d_sae <= 0) bad(`d_sae must be a positive integer (got ${o.d_sae}).`);
  if (!Number.isInteger(o.k) || o.k <= 0 || o.k > o.d_sae) bad(`k must be an integer from 1 to d_sae ${o.d_sae} (got ${o.k}).`);
  if (!o.hook_name) bad("name the hook the activations came from (hook_name).");
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) bad(`the activations hold a non-finite value at row ${Math.floor(i / D)}.`);
}
