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
import { matmul, matmulTransposed } from "./linalg";
import { readLinearModelWeights, type LinearModelWeights, type NormWeights } from "./model-weights";
import type { FeatureInputHook } from "./transcoder";

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
   * Transpose of the frozen attention of layer l, for B gradients at once: g [B, T, d_model] with
   * respect to the block's output residual (attention part only) -> added into `into` [B, T, d_model]
   * with respect to its input. Only positions below `positions` are touched (later ones are zero).
   */
  attentionBackward(l: number, g: Float32Array, into: Float32Array, B: number, positions: number): void {
    const T = this.nPos;
    const Tn = positions;
    const { dModel: D, nHeads: H, nKvHeads: KV, dHead: Dh } = this.weights;
    const block = this.weights.blocks[l];
    const HD = H * Dh;
    const KD = KV * Dh;
    const P = this.layers[l].pattern;
    // u = g @ W_O^T per row, [B, Tn, H * Dh]; rows are contiguous when Tn == T, else packed per batch.
    const u = new Float32Array(B * Tn * HD);
    const live = new Uint8Array(B * Tn);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < Tn; t++) {
        // A target's gradient starts at one position: most rows are zero in its first block.
        const row = g.subarray((b * T + t) * D, (b * T + t + 1) * D);
        if (!row.some((x) => x !== 0)) continue;
        live[b * Tn + t] = 1;
        matmulTransposed(row, block.W_O, u.subarray((b * Tn + t) * HD), 1, D, HD);
      }
    }
    // Mix over positions with the frozen pattern (queries q -> keys k <= q), summing a KV group's heads.
    const w = new Float32Array(B * Tn * KD);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / this.groupSize);
        for (let q = 0; q < Tn; q++) {
          if (!live[b * Tn + q]) continue;
          const src = (b * Tn + q) * HD + h * Dh;
          for (let k = 0; k <= q; k++) {
            const p = P[(h * T + q) * T + k];
            if (p === 0) continue;
            const dst = (b * Tn + k) * KD + kv * Dh;
            for (let d = 0; d < Dh; d++) w[dst + d] += p * u[src + d];
          }
        }
      }
    }
    // y = w @ W_V^T, then back through norm1's frozen linear part.
    const y = new Float32Array(B * Tn * D);
    matmulTransposed(w, block.W_V, y, B * Tn, KD, D);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < Tn; t++) normBackward(block.norm1, this.layers[l].invScale1[t], y, (b * Tn + t) * D, into, (b * T + t) * D, D);
    }
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

/** Transpose of the frozen norm's linear part on one vector: into += inv * centre(gamma ⊙ g) (no centring for RMSNorm). */
function normBackward(norm: NormWeights, inv: number, g: Float32Array, gOffset: number, into: Float32Array, offset: number, D: number): void {
  let mean = 0;
  if (norm.kind === "layernorm") {
    for (let d = 0; d < D; d++) mean += norm.gamma[d] * g[gOffset + d];
    mean /= D;
  }
  for (let d = 0; d < D; d++) into[offset + d] += inv * (norm.gamma[d] * g[gOffset + d] - mean);
}
