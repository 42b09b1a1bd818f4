/**
 * Each token's strongest SAE features for the editor (the worker's `features` method): one cached
 * forward pass, the SAE's encoding, and, from feature-stats.json when the SAE has one (else the
 * densities of SAELens's sparsity.safetensors), each listed feature's density and matched concept
 * so hovers can name it.
 */
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { saeFeatureActivations } from "./attach";
import { topFeaturesPerToken, type ConceptMatch } from "./features";
import type { LoadedSae } from "./sae-store";

export interface TokenFeatureEntry {
  readonly feature: number;
  readonly value: number;
  /** From feature-stats.json: the share of corpus tokens where the feature fires. */
  readonly density?: number;
  readonly concept?: ConceptMatch;
}

export interface TokenFeaturesResult {
  readonly saeFolder: string;
  readonly hook_name: string;
  readonly d_sae: number;
  readonly hasStats: boolean;
  /** Without stats, the densities shown are SAELens's (sparsity.safetensors, over its training tokens). */
  readonly sparsityDensities?: boolean;
  /** Neuronpedia's {model}/{source} of a published SAE: each feature links to its page there. */
  readonly neuronpedia?: string;
  readonly tokens: Array<{ readonly index: number; readonly start: number; readonly end: number; readonly text: string; readonly features: TokenFeatureEntry[] }>;
  /** Each listed feature's largest activation in this text, for colour scales. */
  readonly maxByFeature: Record<string, number>;
  /** One feature's activation at every token (asked for with `focus`), listed or not. */
  readonly focus?: { readonly feature: number; readonly values: number[] };
}

/** The k strongest features at every token of `text`, annotated from the stats when present. */
export async function tokenFeatures(model: HookedModel, loaded: Omit<LoadedSae, "statsFile">, text: string, options: { topK?: number; focus?: number; signal?: AbortSignal } = {}): Promise<TokenFeaturesResult> {
  const { sae, stats, densities } = loaded;
  if (text.trim() === "") throw new LoupeError("empty-input", "Select some text to read SAE features of.");
  const n = model.encode(text).ids.length;
  if (n > model.cfg.nCtx) throw new LoupeError("context-overflow", `The selection is ${n} tokens; the model's context window is ${model.cfg.nCtx}. Select less text.`);
  const run = await saeFeatureActivations(model, sae, text, { signal: options.signal });
  // Only the text's own tokens are shown: a leading <s> (run.lead) has nothing to draw on.
  const lead = run.lead;
  const perToken = topFeaturesPerToken(run.features.subarray(lead * sae.d_sae), sae.d_sae, options.topK ?? 5);
  const maxByFeature: Record<string, number> = {};
  const tokens = run.offsets!.slice(lead).map(([start, end], t) => {
    const features = perToken[t].map(({ feature, value }): TokenFeatureEntry => {
      const summary = stats?.features[feature];
      maxByFeature[feature] = Math.max(maxByFeature[feature] ?? 0, value);
      const density = summary?.density ?? densities?.[feature];
      return { feature, value, ...(density !== undefined ? { density } : {}), ...(summary?.concept ? { concept: summary.concept } : {}) };
    });
    return { index: t, start, end, text: text.slice(start, end), features };
  });
  const focus = options.focus;
  if (focus !== undefined && !(Number.isInteger(focus) && focus >= 0 && focus < sae.d_sae)) throw new LoupeError("bad-argument", `Feature ${focus} is outside 0..${sae.d_sae - 1}.`);
  const focusValues = focus === undefined ? undefined : tokens.map((_, t) => run.features[(lead + t) * sae.d_sae + focus]);
  return { saeFolder: sae.source ?? "", hook_name: sae.hookName, d_sae: sae.d_sae, hasStats: stats !== undefined, ...(!stats && densities ? { sparsityDensities: true } : {}), ...(sae.cfg.neuronpedia_id ? { neuronpedia: sae.cfg.neuronpedia_id } : {}), tokens, maxByFeature, ...(focusValues ? { focus: { feature: focus!, values: focusValues } } : {}) };
}
