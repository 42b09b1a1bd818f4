/**
 * Validation interventions: set, scale or zero chosen features at chosen positions and compare the
 * graph's prediction of the target's change with the model's actual change, two ways:
 *
 *   constrained  the frozen replacement (attention patterns, norm scales and every other feature
 *                held), so only the edited features' direct effects act: the graph should match
 *                this to rounding
 *   free         the real model, with the edited features' decoder contributions changed at their
 *                MLP outputs and everything downstream (attention, MLPs) recomputed
 *
 * predicted = sum over edited features of A[target, feature] * (new activation / old - 1).
 */
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { blockHook } from "../model/hooks";
import type { Intervention } from "../model/interventions";
import { directEffects } from "./attribution";
import { runFrozen, type ReplacementModel } from "./replacement";
import type { LogitTarget } from "./targets";
import { decoderLayers, decoderRow } from "./transcoder";

export interface FeatureEdit {
  readonly layer: number;
  readonly pos: number;
  readonly feature: number;
  readonly kind: "zero" | "scale" | "set";
  /** The factor (scale) or the new activation (set). */
  readonly value?: number;
}

export interface InterventionResult {
  readonly target: string;
  /** The target's value on the prompt (demeaned logit, logit difference, or read-out). */
  readonly baseline: number;
  readonly predicted: number;
  readonly constrained: number;
  /** Undefined for a target that is a direction (no logits to read it from). */
  readonly free?: number;
}

function newActivation(edit: FeatureEdit, old: number): number {
  if (edit.kind === "zero") return 0;
  if (edit.value === undefined || !Number.isFinite(edit.value)) throw new LoupeError("bad-argument", `A ${edit.kind} edit needs a number (got ${edit.value}).`);
  return edit.kind === "scale" ? old * edit.value : edit.value;
}

/** The target's value from logits at the last position (token: demeaned logit; difference: logit gap). */
function fromLogits(target: LogitTarget, logits: Float32Array): number | undefined {
  if (target.token === undefined) return undefined;
  if (target.contrast !== undefined) return logits[target.token] - logits[target.contrast];
  let mean = 0;
  for (const v of logits) mean += v;
  return logits[target.token] - mean / logits.length;
}

export async function interveneOnFeatures(model: HookedModel, r: ReplacementModel, target: LogitTarget, edits: readonly FeatureEdit[], options: { signal?: AbortSignal } = {}): Promise<InterventionResult> {
  const { frozen, transcoders: set } = r;
  const T = frozen.nPos;
  const D = frozen.dModel;
  const L = frozen.nLayers;
  const F = set.dTranscoder;
  if (edits.length === 0) throw new LoupeError("bad-argument", "No features to intervene on: give at least one (layer, position, feature).");
  const index = new Map(r.features.map((f, i) => [`${f.layer}/${f.pos}/${f.feature}`, i]));
  const row = directEffects(r, target.vector, L, T - 1);
  const deltas: Float32Array[] = Array.from({ length: L }, () => new Float32Array(T * D));
  let predicted = 0;
  for (const edit of edits) {
    if (!(edit.layer >= 0 && edit.layer < L && edit.pos >= 0 && edit.pos < T && edit.feature >= 0 && edit.feature < F)) {
      throw new LoupeError("bad-argument", `Feature ${edit.layer}/${edit.feature} at position ${edit.pos} is outside this prompt and transcoder set (${L} layers, ${T} positions, ${F} features).`);
    }
    const old = r.acts[edit.layer][edit.pos * F + edit.feature];
    const i = index.get(`${edit.layer}/${edit.pos}/${edit.feature}`);
    if (i === undefined || old === 0) throw new LoupeError("bad-argument", `Feature ${edit.layer}/${edit.feature} is not active at position ${edit.pos}: only active features are graph nodes.`);
    const now = newActivation(edit, old);
    predicted += row[i] * (now / old - 1);
    for (let o = 0; o < decoderLayers(set, edit.layer); o++) {
      const dec = decoderRow(set, edit.layer, edit.feature, edit.layer + o);
      const delta = deltas[edit.layer + o];
      for (let d = 0; d < D; d++) delta[edit.pos * D + d] += (now - old) * dec[d];
    }
  }
  const readOut = (final: Float32Array) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += target.vector[d] * final[(T - 1) * D + d];
    return s;
  };
  const baseline = readOut(runFrozen(r).final);
  const constrained = readOut(runFrozen(r, { mlpOut: deltas }).final) - baseline;
  let free: number | undefined;
  const cleanValue = fromLogits(target, frozen.lastLogits);
  if (cleanValue !== undefined) {
    const interventions: Intervention[] = [];
    deltas.forEach((delta, l) => {
      for (let p = 0; p < T; p++) {
        const v = delta.subarray(p * D, (p + 1) * D);
        if (v.some((x) => x !== 0)) interventions.push({ hook: blockHook(l, "hook_mlp_out"), kind: "add", vector: v, positions: [p] });
      }
    });
    const { logits } = await model.runWithHooks([...frozen.tokens], interventions, { signal: options.signal, logitPositions: [T - 1] });
    free = (fromLogits(target, logits.data.subarray(logits.data.length - model.cfg.dVocab)) as number) - cleanValue;
  }
  return { target: target.label, baseline, predicted, constrained, free };
}
