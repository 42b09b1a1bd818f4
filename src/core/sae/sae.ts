/**
 * A sparse autoencoder's inference maths, as SAELens defines it:
 *
 *   sae_in     = normalise(x) - (apply_b_dec_to_input ? b_dec : 0)
 *   hidden_pre = sae_in @ W_enc + b_enc
 *   feature_acts = standard: relu(hidden_pre)
 *                  topk:     relu of the k largest hidden_pre, zero elsewhere
 *                  jumprelu: relu(hidden_pre) where hidden_pre > threshold, zero elsewhere
 *   reconstruction = unnormalise(feature_acts @ W_dec + b_dec)
 *
 * A transcoder (cfg.transcoder) reads one hook and predicts another of width d_out: its output is
 * feature_acts @ W_dec + b_dec (+ x @ W_skip, the affine skip, on the raw input), not unnormalised.
 *
 * Weights are row-major: W_enc [d_in, d_sae], W_dec [d_sae, d_out], W_skip [d_in, d_out]. Inputs are [rows, d_in].
 */
import { LoupeError } from "../errors";
import type { SaeConfig } from "./config";
import { rowNorms, rowTimesMatrix, selectTopK } from "./kernels";
import { processingTransform, type ActivationTransform } from "./releases/processing";

export interface SaeWeights {
  readonly W_enc: Float32Array;
  readonly b_enc: Float32Array;
  readonly W_dec: Float32Array;
  readonly b_dec: Float32Array;
  /** JumpReLU only. */
  readonly threshold?: Float32Array;
  /** Skip transcoders only: [d_in, d_out], the matrix that right-multiplies the input (SAELens stores its transpose). */
  readonly W_skip?: Float32Array;
}

/**
 * Per-row map from the SAE's normalised space back to the hook's: x = y * scale + shift.
 * Present when normalize_activations works per token (constant_norm_rescale, layer_norm).
 */
export interface RowNorm {
  readonly scale: Float32Array;
  readonly shift?: Float32Array;
}

export interface SaeEncoding {
  /** [rows, d_sae] feature activations. */
  readonly features: Float32Array;
  readonly rows: number;
  readonly norm?: RowNorm;
}

/** torch.std's default (Bessel-corrected) and SAELens's epsilon for layer_norm normalisation. */
const LAYER_NORM_EPS = 1e-5;

export class Sae {
  readonly d_in: number;
  readonly d_sae: number;
  /** Width of what decode returns: d_in, or a transcoder's d_out. */
  readonly d_out: number;
  /** ||W_dec[i, :]|| per latent, for TopK's rescale_acts_by_decoder_norm. */
  private readonly decoderNorms?: Float32Array;
  /** "center" when the SAE was trained on a TransformerLens model whose writes to this hook were centred. */
  readonly inputTransform: ActivationTransform;

  constructor(
    readonly cfg: SaeConfig,
    readonly weights: SaeWeights,
    /** Where the SAE came from (its folder), for messages; undefined for one built in memory. */
    readonly source?: string,
  ) {
    this.d_in = cfg.d_in;
    this.d_sae = cfg.d_sae;
    this.d_out = cfg.transcoder?.d_out ?? cfg.d_in;
    this.inputTransform = processingTransform(cfg.hook_name, cfg.processing, `SAE${source ? ` ${source}` : ""}`);
    const { W_enc, b_enc, W_dec, b_dec, threshold, W_skip } = weights;
    const D = this.d_in;
    const S = this.d_sae;
    const O = this.d_out;
    const expect = (name: string, got: number, want: number) => {
      if (got !== want) throw new LoupeError("bad-shape", `SAE${source ? ` ${source}` : ""}: ${name} has ${got} values, expected ${want} (d_in ${D}, d_sae ${S}).`, source);
    };
    expect("W_enc", W_enc.length, D * S);
    expect("b_enc", b_enc.length, S);
    expect("W_dec", W_dec.length, S * O);
    expect("b_dec", b_dec.length, O);
    if (cfg.transcoder?.skip && !W_skip) throw new LoupeError("bad-file", `SAE${source ? ` ${source}` : ""}: a skip transcoder needs W_skip.`, source);
    if (W_skip) expect("W_skip", W_skip.length, D * O);
    if (cfg.architecture === "jumprelu") {
      if (!threshold) throw new LoupeError("bad-file", `SAE${source ? ` ${source}` : ""}: a JumpReLU SAE needs a threshold.`, source);
      expect("threshold", threshold.length, S);
    }
    if (cfg.architecture === "topk") {
      const k = cfg.k;
      if (k === undefined || !Number.isInteger(k) || k < 1 || k > S) throw new LoupeError("bad-file", `SAE${source ? ` ${source}` : ""}: a TopK SAE needs k from 1 to d_sae ${S} (got ${k}).`, source);
      if (cfg.rescale_acts_by_decoder_norm) this.decoderNorms = rowNorms(W_dec, S, O);
    }
  }

  get hookName(): string {
    return this.cfg.hook_name;
  }

  /** Splicing and steering rewrite the hook an SAE reads with its output: a transcoder's output belongs to another hook. */
  requireAutoencoder(what: string): void {
    const t = this.cfg.transcoder;
    if (!t) return;
    throw new LoupeError(
      "bad-argument",
      `SAE${this.source ? ` ${this.source}` : ""} is a transcoder (reads ${this.hookName}, writes ${t.hook_name_out ?? "another hook"}): ${what} needs a sparse autoencoder. Load transcoders as a set (loupe.transcoderPath, loupe trace) instead.`,
      this.source,
    );
  }

  /** Feature activations of `rows` input vectors (x is [rows, d_in]). */
  encode(x: Float32Array, rows = x.length / this.d_in): SaeEncoding {
    const { sae_in, norm } = this.encoderInput(x, rows);
    const S = this.d_sae;
    const pre = new Float32Array(rows * S);
    for (let r = 0; r < rows; r++) rowTimesMatrix(sae_in, r * this.d_in, this.d_in, this.weights.W_enc, S, this.weights.b_enc, pre, r * S);
    return { features: this.activate(pre, rows), rows, norm };
  }

  /**
   * The encoder's input [rows, d_in]: x centred and normalised as the SAE expects, minus b_dec when
   * apply_b_dec_to_input; with how to map a reconstruction back. Pre-activations are then
   * sae_in @ W_enc + b_enc, computed here or by an onnxruntime session (encoder-session.ts).
   */
  encoderInput(x: Float32Array, rows = x.length / this.d_in): { sae_in: Float32Array; norm?: RowNorm } {
    const D = this.d_in;
    this.checkRows(x, rows);
    const { b_dec } = this.weights;
    const norm = this.normaliser(rows);
    const sae_in = new Float32Array(rows * D);
    const row = new Float32Array(D);
    const subtract = this.cfg.apply_b_dec_to_input;
    for (let r = 0; r < rows; r++) {
      this.normaliseRow(x, r, row, norm);
      if (subtract) for (let d = 0; d < D; d++) row[d] -= b_dec[d];
      sae_in.set(row, r * D);
    }
    return { sae_in, norm: norm.scale ? (norm as RowNorm) : undefined };
  }

  /** Feature activations [rows, d_sae] from pre-activations (which TopK may rescale in place). */
  activate(pre: Float32Array, rows: number): Float32Array {
    const S = this.d_sae;
    const { threshold } = this.weights;
    const features = new Float32Array(rows * S);
    const k = this.cfg.k ?? 0;
    const topIdx = new Int32Array(k);
    const topVal = new Float32Array(k);
    for (let r = 0; r < rows; r++) {
      const out = r * S;
      switch (this.cfg.architecture) {
        case "standard":
          for (let s = 0; s < S; s++) features[out + s] = pre[out + s] > 0 ? pre[out + s] : 0;
          break;
        case "jumprelu":
          for (let s = 0; s < S; s++) {
            const v = pre[out + s];
            features[out + s] = v > threshold![s] && v > 0 ? v : 0;
          }
          break;
        case "topk": {
          if (this.decoderNorms) for (let s = 0; s < S; s++) pre[out + s] *= this.decoderNorms[s];
          const n = selectTopK(pre, out, S, k, topIdx, topVal);
          for (let j = 0; j < n; j++) if (topVal[j] > 0) features[out + topIdx[j]] = topVal[j];
          break;
        }
      }
    }
    return features;
  }

  /**
   * Reconstruction [rows, d_out] from feature activations; `norm` (from encode) maps it back to the
   * hook's scale. A skip transcoder also needs the input x [rows, d_in] it encoded, for x @ W_skip.
   */
  decode(features: Float32Array, rows = features.length / this.d_sae, norm?: RowNorm, input?: Float32Array): Float32Array {
    const D = this.d_out;
    const S = this.d_sae;
    if (!Number.isInteger(rows) || features.length !== rows * S) {
      throw new LoupeError("bad-shape", `SAE decode: ${features.length} values are not ${rows} rows of d_sae ${S}.`);
    }
    const { W_dec, b_dec, W_skip } = this.weights;
    if (W_skip && input === undefined) throw new LoupeError("bad-argument", `SAE${this.source ? ` ${this.source}` : ""} is a skip transcoder: decoding needs the input it encoded.`, this.source);
    if (W_skip) this.checkRows(input!, rows);
    const out = new Float32Array(rows * D);
    for (let r = 0; r < rows; r++) {
      const o = r * D;
      out.set(b_dec, o);
      for (let s = 0; s < S; s++) {
        let f = features[r * S + s];
        if (f === 0) continue;
        if (this.decoderNorms) f /= this.decoderNorms[s];
        const w = s * D;
        for (let d = 0; d < D; d++) out[o + d] += f * W_dec[w + d];
      }
      // out row = (its decoded value as the bias) + x_r @ W_skip.
      if (W_skip) rowTimesMatrix(input!, r * this.d_in, this.d_in, W_skip, D, out.slice(o, o + D), out, o);
      if (norm && !this.cfg.transcoder) {
        const scale = norm.scale[r];
        const shift = norm.shift ? norm.shift[r] : 0;
        for (let d = 0; d < D; d++) out[o + d] = out[o + d] * scale + shift;
      }
    }
    return out;
  }

  /** encode then decode: the SAE's reconstruction of x, with its features. */
  forward(x: Float32Array, rows = x.length / this.d_in): { features: Float32Array; reconstruction: Float32Array } {
    const enc = this.encode(x, rows);
    return { features: enc.features, reconstruction: this.decode(enc.features, rows, enc.norm, x) };
  }

  private checkRows(x: Float32Array, rows: number): void {
    if (!Number.isInteger(rows) || x.length !== rows * this.d_in) {
      throw new LoupeError(
        "bad-shape",
        `SAE${this.source ? ` ${this.source}` : ""} expects vectors of d_in ${this.d_in}; got ${x.length} values${Number.isInteger(rows) ? ` for ${rows} rows` : ""}.`,
        this.source,
      );
    }
  }

  private normaliser(rows: number): { scale?: Float32Array; shift?: Float32Array } {
    const centred = this.inputTransform === "center";
    switch (this.cfg.normalize_activations) {
      case "constant_norm_rescale":
        return { scale: new Float32Array(rows), shift: centred ? new Float32Array(rows) : undefined };
      case "layer_norm":
        return { scale: new Float32Array(rows), shift: new Float32Array(rows) };
      default:
        // "expected_average_only_in" is folded into the weights at load.
        return centred ? { scale: new Float32Array(rows).fill(1), shift: new Float32Array(rows) } : {};
    }
  }

  /** Copy row r of x into sae_in, centred and normalised as the SAE expects; record how to undo it. */
  private normaliseRow(x: Float32Array, r: number, sae_in: Float32Array, norm: { scale?: Float32Array; shift?: Float32Array }): void {
    const D = this.d_in;
    const base = r * D;
    for (let d = 0; d < D; d++) sae_in[d] = x[base + d];
    if (this.inputTransform === "center") {
      // The processed model's activation: this one minus its mean (undone after decoding by the shift).
      let mu = 0;
      for (let d = 0; d < D; d++) mu += sae_in[d];
      mu /= D;
      for (let d = 0; d < D; d++) sae_in[d] -= mu;
      norm.shift![r] = mu;
      if (this.cfg.normalize_activations === "none" || this.cfg.normalize_activations === "expected_average_only_in") return;
    }
    if (!norm.scale) return;
    if (this.cfg.normalize_activations === "layer_norm") {
      let mu = 0;
      for (let d = 0; d < D; d++) mu += sae_in[d];
      mu /= D;
      let ss = 0;
      for (let d = 0; d < D; d++) ss += (sae_in[d] - mu) ** 2;
      const std = Math.sqrt(ss / Math.max(1, D - 1));
      for (let d = 0; d < D; d++) sae_in[d] = (sae_in[d] - mu) / (std + LAYER_NORM_EPS);
      norm.scale[r] = std;
      norm.shift![r] += mu;
      return;
    }
    let ss = 0;
    for (let d = 0; d < D; d++) ss += sae_in[d] * sae_in[d];
    // A zero vector stays zero (SAELens would divide by zero and give NaN).
    const coeff = ss > 0 ? Math.sqrt(D) / Math.sqrt(ss) : 1;
    for (let d = 0; d < D; d++) sae_in[d] *= coeff;
    norm.scale[r] = 1 / coeff;
  }
}
