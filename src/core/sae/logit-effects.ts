/**
 * Logit effects of SAE features: what a feature's decoder direction W_dec[f] does to the output
 * logits when read straight through the unembedding (the "direct logit attribution" of a latent,
 * Neuronpedia's "top / bottom logits").
 *
 *   effect[v] = sum_j W_dec[f, j] * gamma_j * W_U[v, j]  -  mean over v of the same
 *
 * W_U is the unembedding (the tied token embedding, or lm_head). We fold ln_final's gain gamma
 * into it and centre it over the vocabulary, as TransformerLens's fold_ln + center_unembed do for
 * the models Neuronpedia's dashboards are computed on: the centring turns "promoted" into "above
 * the average token" without changing the ranking. We do not apply ln_final's mean subtraction or
 * its 1/std: both depend on the whole residual at a token, not on the direction, and the ranking
 * is what the dashboard shows. Only meaningful for SAEs that read a residual-width hook (resid,
 * attn_out, mlp_out); others get no logit effects.
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { hookLayout } from "../model/hooks";
import { readSafetensorsIndex, readTensorF32 } from "../model/safetensors";
import { selectTopK } from "./kernels";
import type { Sae } from "./sae";

/** The unembedding as used for logit effects: [d_vocab, d_model], gamma-folded and vocab-centred. */
export interface Unembedding {
  readonly dVocab: number;
  readonly dModel: number;
  readonly W_U: Float32Array;
}

export interface TokenEffect {
  readonly id: number;
  readonly token: string;
  readonly value: number;
}

export interface LogitEffects {
  /** Tokens whose logit rises most, largest first. */
  readonly promoted: TokenEffect[];
  /** Tokens whose logit falls most, most negative first. */
  readonly suppressed: TokenEffect[];
}

/**
 * Build the effective unembedding from raw weights: rows of `unembed` ([V, D]) times `gamma`
 * ([D], ln_final.weight; omit for none), then each column centred over the vocabulary.
 */
export function effectiveUnembedding(unembed: Float32Array, dVocab: number, dModel: number, gamma?: Float32Array): Unembedding {
  if (unembed.length !== dVocab * dModel) throw new LoupeError("bad-shape", `Unembedding has ${unembed.length} values, expected ${dVocab} x ${dModel}.`);
  if (gamma && gamma.length !== dModel) throw new LoupeError("bad-shape", `ln_final weight has ${gamma.length} values, expected ${dModel}.`);
  const W_U = new Float32Array(unembed.length);
  const colMean = new Float64Array(dModel);
  for (let v = 0; v < dVocab; v++) {
    for (let j = 0; j < dModel; j++) {
      const w = unembed[v * dModel + j] * (gamma ? gamma[j] : 1);
      W_U[v * dModel + j] = w;
      colMean[j] += w;
    }
  }
  for (let j = 0; j < dModel; j++) colMean[j] /= dVocab;
  for (let v = 0; v < dVocab; v++) for (let j = 0; j < dModel; j++) W_U[v * dModel + j] -= colMean[j];
  return { dVocab, dModel, W_U };
}

/** The model's effective unembedding, read from its model.safetensors (GPT-2 or Llama-family tensor names). */
export function readUnembedding(model: HookedModel): Unembedding {
  const file = path.join(model.folder, "model.safetensors");
  const index = readSafetensorsIndex(file);
  const llama = model.cfg.architecture === "llama";
  const prefixes = model.cfg.architecture === "llama" ? model.cfg.weightPrefixes : ["transformer."];
  const name = (n: string): string | undefined => [...prefixes.map((p) => `${p}${n}`), n].find((c) => index.tensors.has(c));
  const lmHead = name("lm_head.weight");
  const untied = !model.cfg.tiedEmbeddings && lmHead !== undefined;
  const embedding = llama ? "embed_tokens.weight" : "wte.weight";
  const unembedName = untied ? lmHead : name(embedding);
  if (!unembedName) throw new LoupeError("bad-file", `${file} has no ${embedding} (or lm_head.weight): cannot compute logit effects.`, file);
  // The final norm's gain: LayerNorm's for GPT-2, RMSNorm's for the Llama family (1 + w for Gemma's).
  // Soft-capped logits (Gemma) are not linear in x: effects are on the logits before the cap.
  const gammaName = name(llama ? "norm.weight" : "ln_f.weight");
  let gamma = gammaName ? readTensorF32(index, gammaName) : undefined;
  if (gamma && model.cfg.architecture === "llama" && model.cfg.normGainOffset === 1) gamma = gamma.map((w) => 1 + w);
  return effectiveUnembedding(readTensorF32(index, unembedName), model.cfg.dVocab, model.cfg.dModel, gamma);
}

/** Whether logit effects mean anything for this SAE: its decoder must write residual-stream vectors. */
export function hasLogitEffects(sae: Sae, unembedding: Unembedding): boolean {
  return hookLayout(sae.hookName) === "resid" && sae.d_in === unembedding.dModel;
}

/** effect[v] for every token v of one feature's decoder direction. */
export function featureLogitVector(sae: Sae, feature: number, unembedding: Unembedding): Float32Array {
  const { dModel } = unembedding;
  if (!hasLogitEffects(sae, unembedding)) {
    throw new LoupeError("bad-argument", `Logit effects need an SAE on a residual-width hook (d_in ${dModel}); ${sae.hookName} with d_in ${sae.d_in} does not write to the residual stream directly.`);
  }
  if (!Number.isInteger(feature) || feature < 0 || feature >= sae.d_sae) throw new LoupeError("bad-argument", `Feature ${feature} is outside 0..${sae.d_sae - 1}.`);
  return directionLogitVector(sae.weights.W_dec.subarray(feature * dModel, (feature + 1) * dModel), unembedding);
}

/** effect[v] for every token v of a direction written into the residual stream ([d_model]). */
export function directionLogitVector(dir: Float32Array, unembedding: Unembedding): Float32Array {
  const { dVocab, dModel, W_U } = unembedding;
  if (dir.length !== dModel) throw new LoupeError("bad-shape", `A direction of ${dir.length} values cannot be read through a d_model ${dModel} unembedding.`);
  const out = new Float32Array(dVocab);
  for (let v = 0; v < dVocab; v++) {
    let s = 0;
    const row = v * dModel;
    for (let j = 0; j < dModel; j++) s += dir[j] * W_U[row + j];
    out[v] = s;
  }
  return out;
}

/** The k most promoted and k most suppressed tokens of one feature. */
export function logitEffects(sae: Sae, feature: number, unembedding: Unembedding, k: number, tokenText: (id: number) => string): LogitEffects {
  return topLogitEffects(featureLogitVector(sae, feature, unembedding), k, tokenText);
}

/** The k most promoted and k most suppressed tokens of a vector of logit effects. */
export function topLogitEffects(effect: Float32Array, k: number, tokenText: (id: number) => string): LogitEffects {
  const entry = (id: number): TokenEffect => ({ id, token: tokenText(id), value: effect[id] });
  const promoted = topIds(effect, k).map(entry);
  const suppressed = topIds(effect.map((v) => -v), k).map(entry);
  return { promoted, suppressed };
}

/** Ids of the k largest values, largest first (ties by id): a selection pass, then a sort of k. */
function topIds(values: Float32Array, k: number): number[] {
  const n = Math.min(Math.max(0, Math.floor(k)), values.length);
  const idx = new Int32Array(n);
  const val = new Float32Array(n);
  const found = selectTopK(values, 0, values.length, n, idx, val);
  return Array.from(idx.subarray(0, found)).sort((a, b) => values[b] - values[a] || a - b);
}
