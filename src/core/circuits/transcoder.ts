/**
 * Transcoders: sparse replacements for a model's MLPs, with circuit-tracer's semantics.
 *
 *   pre[l]  = W_enc[l] @ x[l] + b_enc[l]            x[l]: the MLP's input at feature_input_hook
 *   act[l]  = relu | jumprelu (pre * (pre > threshold)) | topk (the k largest pre kept as they are)
 *   out[l'] = sum over l <= l' of act[l] @ W_dec[l][l' - l] + b_dec[l'] (+ x[l'] @ S[l'])
 *
 * A per-layer set (PLT) has one decoder per layer (to its own MLP output); a cross-layer
 * transcoder (CLT) decodes each layer's features into every later layer's MLP output. S is the
 * optional affine skip, stored as the matrix that right-multiplies x (PLT files hold its transpose).
 * Weights are row-major: W_enc [d_tc, d_model] (one encoder row per feature, circuit-tracer's
 * layout), W_dec [d_tc, n_out, d_model].
 */
import { LoupeError } from "../errors";
import { selectTopK } from "../sae/kernels";

export type TranscoderActivation = { readonly kind: "relu" } | { readonly kind: "jumprelu" } | { readonly kind: "topk"; readonly k: number };

export type TranscoderKind = "plt" | "clt";

/** Hook names as circuit-tracer's config.yaml writes them (TransformerLens's, without the block prefix). */
export type FeatureInputHook = "mlp.hook_in" | "ln2.hook_normalized" | "hook_resid_mid";
export type FeatureOutputHook = "hook_mlp_out" | "mlp.hook_out";

export interface TranscoderLayer {
  /** [d_tc, d_model]. */
  readonly W_enc: Float32Array;
  readonly b_enc: Float32Array;
  /** JumpReLU only: [d_tc]. */
  readonly threshold?: Float32Array;
  /** [d_tc, n_out, d_model]: n_out is 1 for a PLT, n_layers - l for a CLT's layer l. */
  readonly W_dec: Float32Array;
  /** [d_model]: added to this layer's MLP output. */
  readonly b_dec: Float32Array;
  /** [d_model, d_model], out += x @ skip. */
  readonly skip?: Float32Array;
}

export interface TranscoderSet {
  readonly kind: TranscoderKind;
  readonly nLayers: number;
  readonly dModel: number;
  readonly dTranscoder: number;
  readonly activation: TranscoderActivation;
  readonly inputHook: FeatureInputHook;
  readonly outputHook: FeatureOutputHook;
  readonly layers: readonly TranscoderLayer[];
  /** Where it was read from, for messages. */
  readonly source?: string;
  /** circuit-tracer's `scan` (feature-dashboard id), kept for the graph file. */
  readonly scan?: string;
}

/** Layers a feature of `layer` writes to: itself (PLT) or itself and every later layer (CLT). */
export function decoderLayers(set: Pick<TranscoderSet, "kind" | "nLayers">, layer: number): number {
  return set.kind === "plt" ? 1 : set.nLayers - layer;
}

/** Check every tensor's size against the set's dimensions; throws naming the source and tensor. */
export function checkTranscoderSet(set: TranscoderSet): void {
  const { nLayers, dModel: D, dTranscoder: F } = set;
  const where = set.source ?? "transcoder set";
  if (set.layers.length !== nLayers) throw new LoupeError("bad-file", `${where}: ${set.layers.length} layers of weights for ${nLayers} layers.`, set.source);
  if (set.activation.kind === "topk" && !(Number.isInteger(set.activation.k) && set.activation.k >= 1 && set.activation.k <= F)) {
    throw new LoupeError("bad-file", `${where}: TopK needs k from 1 to d_transcoder ${F} (got ${set.activation.k}).`, set.source);
  }
  set.layers.forEach((layer, l) => {
    const expect = (name: string, got: number | undefined, want: number) => {
      if (got !== want) throw new LoupeError("bad-shape", `${where}: layer ${l} ${name} has ${got ?? "no"} values, expected ${want} (d_model ${D}, d_transcoder ${F}).`, set.source);
    };
    expect("W_enc", layer.W_enc.length, F * D);
    expect("b_enc", layer.b_enc.length, F);
    expect("W_dec", layer.W_dec.length, F * decoderLayers(set, l) * D);
    expect("b_dec", layer.b_dec.length, D);
    if (set.activation.kind === "jumprelu") expect("threshold", layer.threshold?.length, F);
    if (layer.skip) expect("W_skip", layer.skip.length, D * D);
  });
}

/** Pre-activations W_enc @ x + b_enc for `rows` inputs [rows, d_model] -> [rows, d_tc]. */
export function encodePre(set: TranscoderSet, layer: number, x: Float32Array, rows: number): Float32Array {
  const { dModel: D, dTranscoder: F } = set;
  const { W_enc, b_enc } = set.layers[layer];
  const out = new Float32Array(rows * F);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < F; f++) {
      let s = b_enc[f];
      const w = f * D;
      const xo = r * D;
      for (let d = 0; d < D; d++) s += W_enc[w + d] * x[xo + d];
      out[r * F + f] = s;
    }
  }
  return out;
}

/** The activation function applied in place to [rows, d_tc] pre-activations. */
export function activate(set: TranscoderSet, layer: number, pre: Float32Array, rows: number): Float32Array {
  const F = set.dTranscoder;
  const act = set.activation;
  if (act.kind === "relu") {
    for (let i = 0; i < pre.length; i++) if (!(pre[i] > 0)) pre[i] = 0;
  } else if (act.kind === "jumprelu") {
    const threshold = set.layers[layer].threshold as Float32Array;
    for (let r = 0; r < rows; r++) for (let f = 0; f < F; f++) if (!(pre[r * F + f] > threshold[f])) pre[r * F + f] = 0;
  } else {
    const idx = new Int32Array(act.k);
    const val = new Float32Array(act.k);
    for (let r = 0; r < rows; r++) {
      const found = selectTopK(pre, r * F, F, act.k, idx, val);
      pre.fill(0, r * F, (r + 1) * F);
      for (let i = 0; i < found; i++) pre[r * F + idx[i]] = val[i];
    }
  }
  return pre;
}

/** Feature activations [rows, d_tc] of layer `layer` for inputs [rows, d_model]. */
export function encode(set: TranscoderSet, layer: number, x: Float32Array, rows: number): Float32Array {
  return activate(set, layer, encodePre(set, layer, x, rows), rows);
}

/**
 * Every layer's reconstruction of its MLP output, [n_layers][rows * d_model], from each layer's
 * feature activations [rows, d_tc] and inputs [rows, d_model] (for the skip).
 */
export function decode(set: TranscoderSet, acts: readonly Float32Array[], inputs: readonly Float32Array[], rows: number): Float32Array[] {
  const { nLayers: L, dModel: D, dTranscoder: F } = set;
  const out: Float32Array[] = [];
  for (let target = 0; target < L; target++) {
    const y = new Float32Array(rows * D);
    const { b_dec, skip } = set.layers[target];
    for (let r = 0; r < rows; r++) y.set(b_dec, r * D);
    if (skip) {
      for (let r = 0; r < rows; r++) {
        for (let i = 0; i < D; i++) {
          const a = inputs[target][r * D + i];
          if (a === 0) continue;
          for (let j = 0; j < D; j++) y[r * D + j] += a * skip[i * D + j];
        }
      }
    }
    out.push(y);
  }
  for (let source = 0; source < L; source++) {
    const nOut = decoderLayers(set, source);
    const W = set.layers[source].W_dec;
    for (let r = 0; r < rows; r++) {
      for (let f = 0; f < F; f++) {
        const a = acts[source][r * F + f];
        if (a === 0) continue;
        for (let o = 0; o < nOut; o++) {
          const y = out[source + o];
          const w = (f * nOut + o) * D;
          for (let j = 0; j < D; j++) y[r * D + j] += a * W[w + j];
        }
      }
    }
  }
  return out;
}

/** Decoder row of feature `feature` of layer `source` into layer `target`'s MLP output (a view). */
export function decoderRow(set: TranscoderSet, source: number, feature: number, target: number): Float32Array {
  const nOut = decoderLayers(set, source);
  const o = target - source;
  if (o < 0 || o >= nOut) throw new LoupeError("bad-argument", `Layer ${source}'s features do not write to layer ${target}.`);
  const D = set.dModel;
  const start = (feature * nOut + o) * D;
  return set.layers[source].W_dec.subarray(start, start + D);
}

/** Encoder row of feature `feature` of layer `layer` (a view). */
export function encoderRow(set: TranscoderSet, layer: number, feature: number): Float32Array {
  const D = set.dModel;
  return set.layers[layer].W_enc.subarray(feature * D, (feature + 1) * D);
}
