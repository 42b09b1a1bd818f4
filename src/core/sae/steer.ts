/**
 * Steering with an SAE feature: generate from a prompt with one feature clamped, scaled, zeroed
 * (ablated) or pushed by a fixed amount at every position, next to the unsteered continuation.
 *
 *   const r = await steerWithFeature(model, sae, "Mia saw a", { feature: 713, kind: "clamp", value: 8 });
 *   r.original.text, r.steered.text
 *
 * Each generated token's run first reads the hook there (HookRewrite: with a key/value cache, the
 * new token only); the SAE encodes it, the feature's activation a is mapped to a' and the hook is
 * rewritten as x + decode(f') - decode(f). Only the
 * edited feature's decoder contribution changes: the SAE's reconstruction error stays in x, so
 * the other features and everything the SAE misses reach the later layers unchanged (as in
 * Templeton et al. 2024's clamping). Rows are encoded with their own normalisation, so the edit
 * is expressed in the hook's units whatever `normalize_activations` the SAE uses.
 */
import { LoupeError } from "../errors";
import type { Generation, HookedModel } from "../model/hooked-model";
import type { Intervention } from "../model/interventions";
import type { SamplingOptions } from "../model/sampling";
import { tensor, type Tensor } from "../tensor/tensor";
import { checkSaeFits, copyTokenVectors, writeTokenVectors } from "./attach";
import type { Sae } from "./sae";

/** What happens to the feature's activation a at every position. */
export type FeatureEdit = { readonly feature: number } & (
  | { readonly kind: "clamp"; readonly value: number } //  a' = value
  | { readonly kind: "scale"; readonly factor: number } // a' = factor * a
  | { readonly kind: "zero" } //                             a' = 0 (ablation)
  | { readonly kind: "add"; readonly amount: number } //   a' = a + amount
);

export interface SteeringOptions extends SamplingOptions {
  readonly maxNewTokens?: number;
  readonly stop?: readonly string[];
  readonly signal?: AbortSignal;
  /** Called after each token of either continuation (steered second). */
  readonly onToken?: (done: number, total: number) => void;
}

export interface SteeringResult {
  readonly hook_name: string;
  readonly edit: FeatureEdit;
  /** The feature on the prompt before any edit: its largest and mean activation, and where it fired. */
  readonly prompt: { readonly tokens: number; readonly maxActivation: number; readonly meanActivation: number; readonly firedAt: number };
  readonly original: Generation;
  readonly steered: Generation;
}

export function describeEdit(edit: FeatureEdit): string {
  switch (edit.kind) {
    case "clamp":
      return `feature ${edit.feature} clamped to ${edit.value}`;
    case "scale":
      return `feature ${edit.feature} scaled by ${edit.factor}`;
    case "zero":
      return `feature ${edit.feature} zeroed`;
    case "add":
      return `feature ${edit.feature} ${edit.amount < 0 ? "lowered" : "raised"} by ${Math.abs(edit.amount)}`;
  }
}

/** Check an edit against the SAE; throws a clear error for a feature out of range or a non-finite number. */
export function checkFeatureEdit(sae: Sae, edit: FeatureEdit): void {
  if (!Number.isInteger(edit.feature) || edit.feature < 0 || edit.feature >= sae.d_sae) {
    throw new LoupeError("bad-argument", `Feature ${edit.feature} is outside 0..${sae.d_sae - 1} (this SAE has ${sae.d_sae} features).`);
  }
  const amount = edit.kind === "clamp" ? edit.value : edit.kind === "scale" ? edit.factor : edit.kind === "add" ? edit.amount : 0;
  if (!Number.isFinite(amount)) throw new LoupeError("bad-argument", `The steering amount must be a finite number (got ${amount}).`);
}

function edited(edit: FeatureEdit, a: number): number {
  switch (edit.kind) {
    case "clamp":
      return edit.value;
    case "scale":
      return edit.factor * a;
    case "zero":
      return 0;
    case "add":
      return a + edit.amount;
  }
}

/**
 * The intervention that applies `edit` to one sequence: a `replace` of the SAE's hook carrying
 * x + decode(f') - decode(f) at every position. Also returns the feature's activations before.
 */
export async function featureEditIntervention(model: HookedModel, sae: Sae, tokens: readonly number[], edit: FeatureEdit, signal?: AbortSignal): Promise<{ intervention: Intervention; before: Float32Array }> {
  checkFeatureEdit(sae, edit);
  checkSaeFits(model, sae);
  const { cache } = await model.runWithCache(tokens, { names: [sae.hookName], logits: false, signal });
  const { source, before } = editedActivation(sae, cache.get(sae.hookName), edit);
  const head = sae.cfg.hook_head_index;
  return { intervention: { hook: sae.hookName, kind: "replace", source, heads: head === undefined ? undefined : [head] }, before };
}

/**
 * The hook's activation ([1, n, ...]) with `edit` applied at every position: x + decode(f') -
 * decode(f), other heads (one-head SAEs) unchanged; and the feature's activation before, per position.
 */
export function editedActivation(sae: Sae, activation: Tensor, edit: FeatureEdit): { source: Tensor; before: Float32Array } {
  const head = sae.cfg.hook_head_index;
  const rows = activation.dims[1];
  const S = sae.d_sae;
  const D = sae.d_in;
  const x = new Float32Array(rows * D);
  copyTokenVectors(activation, 0, rows, head, x, 0, D);
  const enc = sae.encode(x, rows);
  const changed = enc.features.slice();
  const before = new Float32Array(rows);
  for (let t = 0; t < rows; t++) {
    before[t] = enc.features[t * S + edit.feature];
    changed[t * S + edit.feature] = edited(edit, before[t]);
  }
  const reconstruction = sae.decode(enc.features, rows, enc.norm);
  const steered = sae.decode(changed, rows, enc.norm);
  const rewritten = new Float32Array(rows * D);
  for (let i = 0; i < rewritten.length; i++) rewritten[i] = x[i] + steered[i] - reconstruction[i];
  // Start from the hook's own activation so other heads (one-head SAEs) keep their values.
  const source = activation.data.slice();
  writeTokenVectors(source, activation.dims, 0, rows, head, rewritten, 0, D);
  return { source: tensor(source, activation.dims), before };
}

/** The continuation of `prompt` with and without the feature edit, under the same sampling settings. */
export async function steerWithFeature(model: HookedModel, sae: Sae, prompt: string | readonly number[], edit: FeatureEdit, options: SteeringOptions = {}): Promise<SteeringResult> {
  checkFeatureEdit(sae, edit);
  // A text is read as a prompt (Llama's <s> in front, HookedModel.encode); the summary below is of
  // the text's own tokens, since the <s> is no part of what the feature fired on.
  const { ids: tokens, lead } = typeof prompt === "string" ? model.encode(prompt) : { ids: [...prompt], lead: 0 };
  if (tokens.length === lead) throw new LoupeError("empty-input", "Nothing to continue: the prompt is empty.");
  if (tokens.length >= model.cfg.nCtx) {
    throw new LoupeError("context-overflow", `The prompt is ${tokens.length} tokens; the model's context window is ${model.cfg.nCtx}, which leaves no room to generate. Select less text.`);
  }
  const maxNewTokens = options.maxNewTokens ?? 32;
  const common = { temperature: options.temperature, topK: options.topK, topP: options.topP, seed: options.seed, maxNewTokens, stop: options.stop, signal: options.signal };
  const original = await model.generate(tokens, { ...common, onToken: (step) => options.onToken?.(step + 1, 2 * maxNewTokens) });
  // The first steered run reads the feature on the prompt itself: keep those values for the summary.
  let before: Float32Array | undefined;
  checkSaeFits(model, sae);
  const steered = await model.generate(tokens, {
    ...common,
    rewrite: {
      hook: sae.hookName,
      rewrite: (activation) => {
        const step = editedActivation(sae, activation, edit);
        before ??= step.before;
        return step.source;
      },
    },
    onToken: (step) => options.onToken?.(maxNewTokens + step + 1, 2 * maxNewTokens),
  });
  before ??= (await featureEditIntervention(model, sae, tokens, edit, options.signal)).before;
  let fired = 0;
  let sum = 0;
  let max = 0;
  for (const a of before.subarray(lead)) {
    if (a > 0) fired++;
    sum += a;
    max = Math.max(max, a);
  }
  return {
    hook_name: sae.hookName,
    edit,
    prompt: { tokens: tokens.length - lead, maxActivation: max, meanActivation: sum / (tokens.length - lead), firedAt: fired },
    original,
    steered,
  };
}
