/**
 * Training data for transcoders and their quality report: normalised MSE per layer, L0, dead
 * features, and the CE loss recovered when every MLP is replaced by its transcoder at once (each
 * layer reading the input the replaced layers before it produce).
 *
 *   CE recovered = (CE with every MLP output zeroed - CE replaced) / (CE zeroed - CE of the model)
 */
import { throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { blockHook } from "../model/hooks";
import type { Intervention } from "../model/interventions";
import { gatherActivationsAt } from "../sae/activations";
import { logSoftmax, tensor } from "../tensor/tensor";
import { transcoderInput } from "./frozen-model";
import { readLinearModelWeights } from "./model-weights";
import { decode, encode, type FeatureInputHook, type TranscoderSet } from "./transcoder";
import type { TranscoderData } from "./train-transcoder";

export async function gatherTranscoderData(model: HookedModel, texts: readonly string[], inputHook: FeatureInputHook, options: { maxTokens?: number; signal?: AbortSignal } = {}): Promise<TranscoderData> {
  const weights = readLinearModelWeights(model.folder, model.cfg);
  const D = model.cfg.dModel;
  const layers = Array.from({ length: model.cfg.nLayers }, (_, l) => l);
  // One pass for every layer's MLP input and output.
  const hooks = layers.flatMap((l) => [blockHook(l, "hook_resid_mid"), blockHook(l, "hook_mlp_out")]);
  const gathered = await gatherActivationsAt(model, hooks, texts, { maxTokens: options.maxTokens, signal: options.signal });
  const rows = gathered[0].rows;
  const inputs = layers.map((l) => transcoderInput(weights.blocks[l].norm2, inputHook, gathered[2 * l].data, rows, D));
  const outputs = layers.map((l) => gathered[2 * l + 1].data);
  return { inputs, outputs, rows, dModel: D };
}

export interface TranscoderQuality {
  /** Per layer: sum ||y - y_hat||^2 / sum ||y - mean y||^2 on the evaluation tokens (the model's own inputs). */
  readonly nmse: number[];
  /** Per layer: mean active features per token. */
  readonly l0: number[];
  /** Per layer: share of features that never fired on the evaluation tokens. */
  readonly deadFraction: number[];
  readonly ceModel: number;
  readonly ceReplaced: number;
  readonly ceZeroAblated: number;
  readonly ceRecovered: number;
  readonly tokens: number;
}

function crossEntropy(logits: Float32Array, ids: readonly number[], V: number): { sum: number; count: number } {
  let sum = 0;
  for (let t = 0; t + 1 < ids.length; t++) sum -= logSoftmax(logits.subarray(t * V, (t + 1) * V))[ids[t + 1]];
  return { sum, count: Math.max(0, ids.length - 1) };
}

export async function evaluateTranscoders(model: HookedModel, set: TranscoderSet, texts: readonly string[], signal?: AbortSignal): Promise<TranscoderQuality> {
  const weights = readLinearModelWeights(model.folder, model.cfg);
  const { nLayers: L, dModel: D, dVocab: V } = model.cfg;
  const F = set.dTranscoder;
  const errSum = new Float64Array(L);
  const ySum = Array.from({ length: L }, () => new Float64Array(D));
  const yySum = new Float64Array(L);
  const active = new Float64Array(L);
  const fired = Array.from({ length: L }, () => new Uint8Array(F));
  let tokens = 0;
  const ce = { model: 0, replaced: 0, zero: 0, count: 0 };
  for (const text of texts) {
    throwIfAborted(signal);
    const ids = model.toTokens(text).slice(0, model.cfg.nCtx);
    if (ids.length < 2) continue;
    const T = ids.length;
    const names = Array.from({ length: L }, (_, l) => [blockHook(l, "hook_resid_mid"), blockHook(l, "hook_mlp_out")]).flat();
    const clean = await model.runWithCache(ids, { names, signal });
    // Reconstruction quality on the model's own inputs.
    const inputs = Array.from({ length: L }, (_, l) => transcoderInput(weights.blocks[l].norm2, set.inputHook, clean.cache.get(blockHook(l, "hook_resid_mid")).data, T, D));
    const acts = inputs.map((x, l) => encode(set, l, x, T));
    const recon = decode(set, acts, inputs, T);
    for (let l = 0; l < L; l++) {
      const y = clean.cache.get(blockHook(l, "hook_mlp_out")).data;
      for (let i = 0; i < T * D; i++) {
        const e = y[i] - recon[l][i];
        errSum[l] += e * e;
        ySum[l][i % D] += y[i];
        yySum[l] += y[i] * y[i];
      }
      for (let i = 0; i < T * F; i++) if (acts[l][i] !== 0) {
        active[l]++;
        fired[l][i % F] = 1;
      }
    }
    tokens += T;
    // Every MLP replaced at once: layer l reads what the replaced layers before it produce.
    const replacedActs: Float32Array[] = Array.from({ length: L }, () => new Float32Array(T * F));
    const replacedInputs: Float32Array[] = Array.from({ length: L }, () => new Float32Array(T * D));
    const replace = (upTo: number): Intervention[] => {
      const outs = decode(set, replacedActs, replacedInputs, T);
      return Array.from({ length: upTo }, (_, m) => ({ hook: blockHook(m, "hook_mlp_out"), kind: "replace" as const, source: tensor(outs[m], [1, T, D]) }));
    };
    for (let l = 0; l < L; l++) {
      const { cache } = await model.runWithHooks(ids, replace(l), { names: [blockHook(l, "hook_resid_mid")], signal });
      replacedInputs[l] = transcoderInput(weights.blocks[l].norm2, set.inputHook, cache.get(blockHook(l, "hook_resid_mid")).data, T, D);
      replacedActs[l] = encode(set, l, replacedInputs[l], T);
    }
    const replaced = await model.runWithHooks(ids, replace(L), { signal });
    const zeroed = await model.runWithHooks(ids, Array.from({ length: L }, (_, m) => ({ hook: blockHook(m, "hook_mlp_out"), kind: "zero" as const })), { signal });
    const c = crossEntropy(clean.logits.data, ids, V);
    ce.model += c.sum;
    ce.replaced += crossEntropy(replaced.logits.data, ids, V).sum;
    ce.zero += crossEntropy(zeroed.logits.data, ids, V).sum;
    ce.count += c.count;
  }
  const nmse = Array.from(errSum, (e, l) => {
    let meanSq = 0;
    for (const s of ySum[l]) meanSq += (s / tokens) ** 2;
    return e / Math.max(yySum[l] - tokens * meanSq, 1e-12);
  });
  const n = Math.max(ce.count, 1);
  const [ceModel, ceReplaced, ceZeroAblated] = [ce.model / n, ce.replaced / n, ce.zero / n];
  return {
    nmse,
    l0: Array.from(active, (a) => a / Math.max(tokens, 1)),
    deadFraction: fired.map((f) => 1 - f.reduce((a, b) => a + b, 0) / F),
    ceModel,
    ceReplaced,
    ceZeroAblated,
    ceRecovered: (ceZeroAblated - ceReplaced) / (ceZeroAblated - ceModel),
    tokens,
  };
}
