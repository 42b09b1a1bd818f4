/**
 * The prompt's frozen model (circuit-tracer's semantics): attention patterns and every norm's
 * denominator are held at the values the prompt produced, and each MLP output is a constant plus
 * whatever is injected there. What is left is an affine map from the residual stream's inputs
 * (token embeddings, MLP outputs) to every MLP input and the final normalised residual, and its
 * transpose, which carries a target's read-out vector back to every position and layer. Both are
 * computed from the prompt's cached activations and the weights: the model's own graph is not
 * changed.
 */
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { blockHook } from "../model/hooks";
import { batchedProduct, product, Scratch, type ProductSteps } from "./dense-products";
import { matmul } from "./linalg";
import { readLinearModelWeights, type LinearModelWeights, type NormWeights } from "./model-weights";
import type { FeatureInputHook } from "./transcoder";

/** Rows start .. start + extent - 1 of a [rows, d_model] buffer: one gradient row's positions 0 .. extent - 1. */
export interface PositionSpan {
  readonly start: number;
  readonly extent: number;
}

export interface FrozenLayer {
  /** [heads, T, T] attention pattern (query, key). */
  readonly pattern: Float32Array;
  /** 1 / denominator of norm1 and norm2 per position. */
  readonly invScale1: Float32Array;
  readonly invScale2: Float32Array;
  /** [T, d_model] cached activations. */
  readonly residMid: Float32Array;
  readonly mlpOut: Float32Array;
}

export class FrozenModel {
  readonly nLayers: number;
  readonly dModel: number;
  private readonly groupSize: number;
  private readonly valueHeadCache = new Map<number, Float32Array[]>();

  constructor(
    readonly weights: LinearModelWeights,
    readonly tokens: readonly number[],
    /** [T, d_model] what enters block 0 (token + position embeddings). */
    readonly residIn: Float32Array,
    /** [T, d_model] hook_embed: the token embedding rows alone. */
    readonly embed: Float32Array,
    readonly layers: readonly FrozenLayer[],
    readonly finalInvScale: Float32Array,
    /** [T, d_model] the last block's output. */
    readonly residFinal: Float32Array,
    /** [d_vocab] logits at the last position. */
    readonly lastLogits: Float32Array,
  ) {
    this.nLayers = weights.nLayers;
    this.dModel = weights.dModel;
    this.groupSize = weights.nHeads / weights.nKvHeads;
  }

  get nPos(): number {
    return this.tokens.length;
  }

  /** Run the model once on `tokens` and freeze it there. */
  static async capture(model: HookedModel, tokens: readonly number[], signal?: AbortSignal): Promise<FrozenModel> {
    const cfg = model.cfg;
    const L = cfg.nLayers;
    if (model.isImported) throw new LoupeError("bad-argument", `Attribution graphs need a model Loupe builds from its weights (config.json + model.safetensors); ${model.folder} is an imported .onnx.`);
    const weights = readLinearModelWeights(model.folder, cfg);
    const names = ["hook_embed", ...(cfg.architecture === "gpt2" ? ["hook_pos_embed"] : []), blockHook(L - 1, "hook_resid_post")];
    for (let l = 0; l < L; l++) names.push(blockHook(l, "hook_resid_pre"), blockHook(l, "hook_resid_mid"), blockHook(l, "attn.hook_pattern"), blockHook(l, "hook_mlp_out"));
    const { logits, cache } = await model.runWithCache([...tokens], { names, signal });
    throwIfAborted(signal);
    const T = tokens.length;
    const D = cfg.dModel;
    const embed = cache.get("hook_embed").data.slice();
    const residIn = embed.slice();
    if (cfg.architecture === "gpt2") {
      const pos = cache.get("hook_pos_embed").data;
      for (let i = 0; i < residIn.length; i++) residIn[i] += pos[i];
    }
    const layers: FrozenLayer[] = [];
    for (let l = 0; l < L; l++) {
      const residMid = cache.get(blockHook(l, "hook_resid_mid")).data.slice();
      layers.push({
        pattern: cache.get(blockHook(l, "attn.hook_pattern")).data.slice(),
        invScale1: inverseScales(weights.blocks[l].norm1, cache.get(blockHook(l, "hook_resid_pre")).data, T, D),
        invScale2: inverseScales(weights.blocks[l].norm2, residMid, T, D),
        residMid,
        mlpOut: cache.get(blockHook(l, "hook_mlp_out")).data.slice(),
      });
    }
    const residFinal = cache.get(blockHook(L - 1, "hook_resid_post")).data.slice();
    const V = cfg.dVocab;
    const lastLogits = logits.data.slice((T - 1) * V, T * V);
    return new FrozenModel(weights, tokens, residIn, embed, layers, inverseScales(weights.finalNorm, residFinal, T, D), residFinal, lastLogits);
  }

  /** The transcoder input at `hook` of layer `l` for a residual `resid` [T, d_model] (frozen norm). */
  readInput(l: number, hook: FeatureInputHook, resid: Float32Array): Float32Array {
    if (hook === "hook_resid_mid") return resid.slice();
    return normForward(this.weights.blocks[l].norm2, this.layers[l].invScale2, resid, this.nPos, this.dModel, hook === "mlp.hook_in");
  }

  /** The final normalised residual (with the affine), the unembedding's input. */
  readFinal(resid: Float32Array): Float32Array {
    return normForward(this.weights.finalNorm, this.finalInvScale, resid, this.nPos, this.dModel, true);
  }

  /**
   * The frozen forward pass. `residIn` replaces block 0's input; `mlpOut(l, input)` gives layer l's
   * MLP output from the transcoder input at that layer. Returns each layer's transcoder input and
   * the final residual.
   */
  forward(residIn: Float32Array, hook: FeatureInputHook, mlpOut: (l: number, input: Float32Array) => Float32Array): { inputs: Float32Array[]; resid: Float32Array } {
    const T = this.nPos;
    const D = this.dModel;
    const resid = residIn.slice();
    const inputs: Float32Array[] = [];
    for (let l = 0; l < this.nLayers; l++) {
      const attn = this.attentionForward(l, resid);
      for (let i = 0; i < T * D; i++) resid[i] += attn[i];
      const input = this.readInput(l, hook, resid);
      inputs.push(input);
      const out = mlpOut(l, input);
      for (let i = 0; i < T * D; i++) resid[i] += out[i];
    }
    return { inputs, resid };
  }

  /** Frozen attention output [T, d_model] of layer l for block input `resid`. */
  attentionForward(l: number, resid: Float32Array): Float32Array {
    const T = this.nPos;
    const { dModel: D, nHeads: H, nKvHeads: KV, dHead: Dh } = this.weights;
    const block = this.weights.blocks[l];
    const x = normForward(block.norm1, this.layers[l].invScale1, resid, T, D, true);
    const v = new Float32Array(T * KV * Dh);
    matmul(x, block.W_V, v, T, D, KV * Dh);
    if (block.b_V) for (let t = 0; t < T; t++) for (let j = 0; j < KV * Dh; j++) v[t * KV * Dh + j] += block.b_V[j];
    const z = new Float32Array(T * H * Dh);
    const P = this.layers[l].pattern;
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / this.groupSize);
      for (let q = 0; q < T; q++) {
        for (let k = 0; k <= q; k++) {
          const p = P[(h * T + q) * T + k];
          if (p === 0) continue;
          for (let d = 0; d < Dh; d++) z[(q * H + h) * Dh + d] += p * v[(k * KV + kv) * Dh + d];
        }
      }
    }
    const out = new Float32Array(T * D);
    matmul(z, block.W_O, out, T, H * Dh, D);
    if (block.b_O) for (let t = 0; t < T; t++) for (let j = 0; j < D; j++) out[t * D + j] += block.b_O[j];
    return out;
  }

  /**
   * Transpose of layer l's frozen attention for rows that are non-zero at one position only (a
   * target's first attention layer on its way down). With one query position q the pattern only
   * scales: each head's value-space gradient is the same vector at every key k <= q, so W_V^T (and
   * norm1's centring) runs once per head instead of once per key, and the keys get
   * inv1[k] * sum_h P[h, q, k] * Y_h.
   *
   * g [m, d_model]: each row's gradient at position q[r] of the block's output; added into `into`
   * at rows (base[r] + k) for k <= q[r].
   */
  *attentionBackwardAtOnePosition(l: number, g: Float32Array, m: number, q: Int32Array, into: Float32Array, base: Int32Array, scratch = new Scratch()): ProductSteps<Float32Array[]> {
    const T = this.nPos;
    const { dModel: D, nHeads: H, dHead: Dh } = this.weights;
    const block = this.weights.blocks[l];
    const HD = H * Dh;
    const u = yield product(g, block.W_O, m, D, HD, scratch.take("single.u", m * HD));
    const heads = this.valueHeads(l);
    const y: Float32Array[] = [];
    const uh = scratch.take("single.uh", m * Dh);
    for (let h = 0; h < H; h++) {
      for (let r = 0; r < m; r++) uh.set(u.subarray(r * HD + h * Dh, r * HD + (h + 1) * Dh), r * Dh);
      const yh = yield product(uh, heads[Math.floor(h / this.groupSize)], m, Dh, D, scratch.take(`single.y${h}`, m * D));
      for (let r = 0; r < m; r++) normBackwardLinear(block.norm1, yh, r * D, D);
      y.push(yh);
    }
    const P = this.layers[l].pattern;
    const inv = this.layers[l].invScale1;
    const coefficient = new Float32Array(H);
    for (let r = 0; r < m; r++) {
      const qr = q[r];
      for (let k = 0; k <= qr; k++) {
        for (let h = 0; h < H; h++) coefficient[h] = P[(h * T + qr) * T + k] * inv[k];
        const dst = (base[r] + k) * D;
        for (let h = 0; h < H; h++) {
          const c = coefficient[h];
          if (c === 0) continue;
          const yh = y[h];
          const src = r * D;
          for (let d = 0; d < D; d++) into[dst + d] += c * yh[src + d];
        }
      }
    }
    return y;
  }

  /**
   * The same transpose for rows given as a few basis vectors and per-position coefficients,
   * g[k] = sum_j c[k, j] * V[j] for k <= q (a row one attention layer below its start: its own
   * vector at q plus one vector per head of the layer above, scaled by that layer's pattern and
   * norm). Both W_O^T and W_V^T then run once per basis vector instead of once per position.
   *
   * V [m * nb, d_model]: row r's basis vectors at rows r * nb ..; c[r] [(q[r] + 1), nb].
   */
  *attentionBackwardFromBasis(l: number, V: Float32Array, nb: number, c: readonly Float32Array[], q: Int32Array, into: Float32Array, base: Int32Array, scratch = new Scratch()): ProductSteps {
    const T = this.nPos;
    const { dModel: D, nHeads: H, dHead: Dh } = this.weights;
    const block = this.weights.blocks[l];
    const HD = H * Dh;
    const m = q.length;
    const rows = m * nb;
    const z = yield product(V, block.W_O, rows, D, HD, scratch.take("basis.z", rows * HD));
    const heads = this.valueHeads(l);
    const y: Float32Array[] = [];
    const zh = scratch.take("basis.zh", rows * Dh);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < rows; i++) zh.set(z.subarray(i * HD + h * Dh, i * HD + (h + 1) * Dh), i * Dh);
      const yh = yield product(zh, heads[Math.floor(h / this.groupSize)], rows, Dh, D, scratch.take(`basis.y${h}`, rows * D));
      for (let i = 0; i < rows; i++) normBackwardLinear(block.norm1, yh, i * D, D);
      y.push(yh);
    }
    // Row r's gradient at key k is sum over (h, j) of w[k, h, j] * y_h[r * nb + j], with
    // w[k, h, j] = inv[k] * sum over queries k2 >= k of P[h, k2, k] * c[k2, j]: one [keys, H * nb]
    // by [H * nb, d_model] product per row, all rows in one batched product.
    const P = this.layers[l].pattern;
    const inv = this.layers[l].invScale1;
    const keys = Math.max(...q) + 1;
    const width = H * nb;
    const w = scratch.take("basis.w", m * keys * width, true);
    const ys = scratch.take("basis.ys", m * width * D);
    for (let r = 0; r < m; r++) {
      const qr = q[r];
      const cr = c[r];
      for (let h = 0; h < H; h++) {
        for (let k = 0; k <= qr; k++) {
          const at = (r * keys + k) * width + h * nb;
          for (let k2 = k; k2 <= qr; k2++) {
            const p = P[(h * T + k2) * T + k];
            if (p === 0) continue;
            for (let j = 0; j < nb; j++) w[at + j] += p * cr[k2 * nb + j];
          }
          for (let j = 0; j < nb; j++) w[at + j] *= inv[k];
        }
        ys.set(y[h].subarray(r * nb * D, (r + 1) * nb * D), (r * width + h * nb) * D);
      }
    }
    const mixed = yield batchedProduct(w, ys, m, keys, width, D, { m: Int32Array.from(q, (qr) => qr + 1), n: new Int32Array(m).fill(D) }, scratch.take("basis.mixed", m * keys * D));
    for (let r = 0; r < m; r++) {
      const n = (q[r] + 1) * D;
      const src = r * keys * D;
      const dst = base[r] * D;
      for (let i = 0; i < n; i++) into[dst + i] += mixed[src + i];
    }
  }

  /**
   * Transpose of layer l's frozen attention for rows of gradients over positions 0 .. extent-1,
   * all rows' products at once: row r's gradient at the block's output is g's position rows
   * start[r] .. start[r] + extent[r] - 1 ([d_model] each), added into `into` at the same rows of its
   * input. Later positions are zero (causal attention never carries them back).
   */
  *attentionBackward(l: number, g: Float32Array, rows: readonly PositionSpan[], into: Float32Array, scratch = new Scratch()): ProductSteps {
    const T = this.nPos;
    const { dModel: D, nHeads: H, nKvHeads: KV, dHead: Dh } = this.weights;
    const block = this.weights.blocks[l];
    const HD = H * Dh;
    const KD = KV * Dh;
    const P = this.layers[l].pattern;
    const total = rows.reduce((n, r) => n + r.extent, 0);
    const gathered = scratch.take("dense.gathered", total * D);
    let at = 0;
    for (const { start, extent } of rows) {
      gathered.set(g.subarray(start * D, (start + extent) * D), at * D);
      at += extent;
    }
    const u = yield product(gathered, block.W_O, total, D, HD, scratch.take("dense.u", total * HD));
    // Mix over positions with the frozen pattern (queries q -> keys k <= q), summing a KV group's heads.
    const w = scratch.take("dense.w", total * KD, true);
    at = 0;
    for (const { extent } of rows) {
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / this.groupSize);
        for (let q = 0; q < extent; q++) {
          const src = (at + q) * HD + h * Dh;
          for (let k = 0; k <= q; k++) {
            const p = P[(h * T + q) * T + k];
            if (p === 0) continue;
            const dst = (at + k) * KD + kv * Dh;
            for (let d = 0; d < Dh; d++) w[dst + d] += p * u[src + d];
          }
        }
      }
      at += extent;
    }
    // y = w @ W_V^T, then back through norm1's frozen linear part.
    const y = yield product(w, block.W_V, total, KD, D, scratch.take("dense.y", total * D));
    const inv = this.layers[l].invScale1;
    at = 0;
    for (const { start, extent } of rows) {
      for (let t = 0; t < extent; t++) normBackward(block.norm1, inv[t], y, (at + t) * D, into, (start + t) * D, D);
      at += extent;
    }
  }

  /** W_V of layer l split by KV head, each [d_model, d_head] with contiguous rows (for row-times-row products). */
  private valueHeads(l: number): Float32Array[] {
    let heads = this.valueHeadCache.get(l);
    if (!heads) {
      const { dModel: D, nKvHeads: KV, dHead: Dh } = this.weights;
      const W_V = this.weights.blocks[l].W_V;
      heads = Array.from({ length: KV }, (_, kv) => {
        const out = new Float32Array(D * Dh);
        for (let d = 0; d < D; d++) out.set(W_V.subarray(d * KV * Dh + kv * Dh, d * KV * Dh + (kv + 1) * Dh), d * Dh);
        return out;
      });
      this.valueHeadCache.set(l, heads);
    }
    return heads;
  }

  /**
   * Gradient with respect to the residual at resid_mid of layer l, position t, of the read-out
   * `vector · input` where input is the transcoder input at `hook`; added into `into` at `offset`.
   */
  inputBackward(l: number, hook: FeatureInputHook, t: number, vector: Float32Array, into: Float32Array, offset: number): void {
    const D = this.dModel;
    if (hook === "hook_resid_mid") {
      for (let d = 0; d < D; d++) into[offset + d] += vector[d];
      return;
    }
    const norm = this.weights.blocks[l].norm2;
    normBackward(hook === "mlp.hook_in" ? norm : { ...norm, gamma: ONES(D) }, this.layers[l].invScale2[t], vector, 0, into, offset, D);
  }

  /** Gradient at the last block's output, position t, of `vector · readFinal(resid)[t]`. */
  finalBackward(t: number, vector: Float32Array, into: Float32Array, offset: number): void {
    normBackward(this.weights.finalNorm, this.finalInvScale[t], vector, 0, into, offset, this.dModel);
  }
}

const onesCache = new Map<number, Float32Array>();
function ONES(n: number): Float32Array {
  let ones = onesCache.get(n);
  if (!ones) onesCache.set(n, (ones = new Float32Array(n).fill(1)));
  return ones;
}

/** 1 / the norm's denominator per position: sqrt(var + eps) (LayerNorm) or sqrt(mean square + eps) (RMSNorm). */
export function inverseScales(norm: NormWeights, x: Float32Array, T: number, D: number): Float32Array {
  const out = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    if (norm.kind === "layernorm") {
      for (let d = 0; d < D; d++) mean += x[t * D + d];
      mean /= D;
    }
    let ss = 0;
    for (let d = 0; d < D; d++) {
      const c = x[t * D + d] - mean;
      ss += c * c;
    }
    out[t] = 1 / Math.sqrt(ss / D + norm.eps);
  }
  return out;
}

/** The transcoder input at `hook` for residual rows [rows, d_model] at resid_mid, with their own norm scales (not frozen). */
export function transcoderInput(norm: NormWeights, hook: FeatureInputHook, resid: Float32Array, rows: number, D: number): Float32Array {
  if (hook === "hook_resid_mid") return resid.slice();
  return normForward(norm, inverseScales(norm, resid, rows, D), resid, rows, D, hook === "mlp.hook_in");
}

/** The norm with frozen denominators: [T, D] -> [T, D], with gamma (and beta) when `affine`. */
function normForward(norm: NormWeights, invScale: Float32Array, x: Float32Array, T: number, D: number, affine: boolean): Float32Array {
  const out = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    if (norm.kind === "layernorm") {
      for (let d = 0; d < D; d++) mean += x[t * D + d];
      mean /= D;
    }
    for (let d = 0; d < D; d++) {
      const n = (x[t * D + d] - mean) * invScale[t];
      out[t * D + d] = affine ? n * norm.gamma[d] + (norm.beta ? norm.beta[d] : 0) : n;
    }
  }
  return out;
}

/**
 * The frozen norm's linear part without its 1/scale, forward on one vector: gamma ⊙ centre(x)
 * (no centring for RMSNorm), the adjoint of normBackwardLinear: x · normBackwardLinear(g) = normLinearForward(x) · g.
 */
export function normLinearForward(norm: NormWeights, x: Float32Array, xOffset: number, into: Float32Array, offset: number, D: number): void {
  let mean = 0;
  if (norm.kind === "layernorm") {
    for (let d = 0; d < D; d++) mean += x[xOffset + d];
    mean /= D;
  }
  for (let d = 0; d < D; d++) into[offset + d] = norm.gamma[d] * (x[xOffset + d] - mean);
}

/** The frozen norm's transpose without its 1/scale, in place: centre(gamma ⊙ g) (no centring for RMSNorm). */
function normBackwardLinear(norm: NormWeights, g: Float32Array, offset: number, D: number): void {
  let mean = 0;
  if (norm.kind === "layernorm") {
    for (let d = 0; d < D; d++) mean += norm.gamma[d] * g[offset + d];
    mean /= D;
  }
  for (let d = 0; d < D; d++) g[offset + d] = norm.gamma[d] * g[offset + d] - mean;
}

/** Transpose of the frozen norm's linear part on one vector: into += inv * centre(gamma ⊙ g) (no centring for RMSNorm). */
function normBackward(norm: NormWeights, inv: number, g: Float32Array, gOffset: number, into: Float32Array, offset: number, D: number): void {
  let mean = 0;
  if (norm.kind === "layernorm") {
    for (let d = 0; d < D; d++) mean += norm.gamma[d] * g[gOffset + d];
    mean /= D;
  }
  for (let d = 0; d < D; d++) into[offset + d] += inv * (norm.gamma[d] * g[gOffset + d] - mean);
}
