/**
 * Applying a saved probe to a text: class probabilities at every token (what the editor colours),
 * and for a sequence-level probe also the pooled verdict on the whole text.
 */
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { checkProbeHook, tokenActivations } from "./features";
import { rowProbabilities } from "./logistic";
import { probeModel, type ProbeFile } from "./probe-file";

export interface TokenScore {
  readonly index: number;
  readonly id: number;
  readonly text: string;
  /** UTF-16 range in the text. */
  readonly start: number;
  readonly end: number;
  /** The most probable class. */
  readonly label: string;
  /** Probability of each class, in probe.classes order. */
  readonly probs: number[];
}

export interface ProbeApplication {
  readonly hook: string;
  readonly level: "token" | "sequence";
  readonly classes: string[];
  readonly tokens: TokenScore[];
  /** Sequence-level probes: the verdict on the pooled activations. */
  readonly sequence?: { readonly label: string; readonly probs: number[] };
}

/** Refuse a probe whose feature width does not match the model's hook. */
export function checkProbeFits(model: HookedModel, probe: ProbeFile, width: number): void {
  const d = probe.standardisation.mean.length;
  if (width !== d) {
    throw new LoupeError(
      "bad-argument",
      `The probe reads ${d} values at ${probe.hook} (trained on ${probe.model.name}), but this model has ${width} there: apply it with the model it was trained on.`,
    );
  }
}

/** [n, K] probabilities of raw (unstandardised) activation rows X ([n, width]). */
export function scoreRows(probe: ProbeFile, X: ArrayLike<number>, n: number): Float64Array {
  const model = probeModel(probe);
  const { mean, scale } = probe.standardisation;
  const d = model.dim;
  const K = model.nClasses;
  const x = new Float64Array(d);
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) x[j] = (X[i * d + j] - mean[j]) / scale[j];
    rowProbabilities(model, x, 0, out.subarray(i * K, (i + 1) * K));
  }
  return out;
}

export async function applyProbe(model: HookedModel, probe: ProbeFile, text: string, options: { signal?: AbortSignal } = {}): Promise<ProbeApplication> {
  if (text.length === 0) throw new LoupeError("empty-input", "Nothing to score: the text is empty.");
  checkProbeHook(model, probe.hook);
  // As in extractFeatures: the model reads the text as a prompt (Llama's <s> in front), and only
  // the text's own tokens are scored or pooled.
  const enc = model.encode(text);
  const { lead } = enc;
  if (enc.ids.length === lead) throw new LoupeError("empty-input", "Nothing to score: the text has no tokens.");
  const all = await tokenActivations(model, enc.ids, probe.hook, options.signal);
  const width = all.width;
  const data = all.data.subarray(lead * width);
  const ids = enc.ids.slice(lead);
  const offsets = enc.offsets.slice(lead);
  checkProbeFits(model, probe, width);
  const classifier = probeModel(probe);
  const { mean, scale } = probe.standardisation;
  const x = new Float64Array(width);
  const standardised = (row: ArrayLike<number>, offset: number) => {
    for (let j = 0; j < width; j++) x[j] = (row[offset + j] - mean[j]) / scale[j];
    return x;
  };
  const labelOf = (probs: ArrayLike<number>) => {
    let best = 0;
    for (let k = 1; k < probs.length; k++) if (probs[k] > probs[best]) best = k;
    return probe.classes[best];
  };
  const tokens = ids.map((id, t): TokenScore => {
    const probs = Array.from(rowProbabilities(classifier, standardised(data, t * width)));
    const [start, end] = offsets[t];
    return { index: t, id, text: text.slice(start, end), start, end, label: labelOf(probs), probs };
  });
  let sequence: ProbeApplication["sequence"];
  if (probe.level === "sequence") {
    const T = ids.length;
    const pooled = new Float64Array(width);
    if (probe.pooling === "last") pooled.set(data.subarray((T - 1) * width, T * width));
    else {
      for (let t = 0; t < T; t++) for (let j = 0; j < width; j++) pooled[j] += data[t * width + j] / T;
    }
    const probs = Array.from(rowProbabilities(classifier, standardised(pooled, 0)));
    sequence = { label: labelOf(probs), probs };
  }
  return { hook: probe.hook, level: probe.level, classes: probe.classes, tokens, ...(sequence ? { sequence } : {}) };
}
