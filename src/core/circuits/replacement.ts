/**
 * The prompt's replacement model: the frozen model with every MLP rebuilt as transcoder features
 * plus an error (the MLP's true output minus the reconstruction), so the frozen forward pass still
 * reproduces the model exactly. Positions holding a BOS token (the special token a traced prompt
 * starts with, see prompt.ts) are constants: their features are not nodes and their errors are
 * zero, as in circuit-tracer.
 */
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { FrozenModel } from "./frozen-model";
import { leadingSpecialToken } from "./prompt";
import { decode, encode, type TranscoderSet } from "./transcoder";

export interface ActiveFeature {
  readonly layer: number;
  readonly pos: number;
  readonly feature: number;
  readonly activation: number;
}

export interface ReplacementModel {
  readonly frozen: FrozenModel;
  readonly transcoders: TranscoderSet;
  /** Per layer [T, d_model]: the transcoder's input. */
  readonly inputs: readonly Float32Array[];
  /** Per layer [T, d_tc]: feature activations (zero at BOS positions). */
  readonly acts: readonly Float32Array[];
  /** Per layer [T, d_model]: MLP output minus reconstruction (zero at BOS positions). */
  readonly errors: readonly Float32Array[];
  /** Active features ordered by layer, position, feature. */
  readonly features: readonly ActiveFeature[];
  readonly bosPositions: ReadonlySet<number>;
}

/** Throws when the transcoders were made for another model (width, depth). */
export function checkTranscodersFit(model: HookedModel, set: TranscoderSet): void {
  const where = set.source ?? "The transcoder set";
  const cfg = model.cfg;
  if (set.dModel !== cfg.dModel) {
    throw new LoupeError("bad-shape", `${where} reads d_model ${set.dModel} but the model in ${model.folder} has d_model ${cfg.dModel}: these transcoders belong to another model. Train a set for it with \`loupe transcoder train\`.`, set.source);
  }
  if (set.nLayers !== cfg.nLayers) {
    throw new LoupeError("bad-shape", `${where} has ${set.nLayers} layers but the model in ${model.folder} has ${cfg.nLayers}: these transcoders belong to another model (every layer needs one).`, set.source);
  }
}

export function checkPrompt(model: HookedModel, tokens: readonly number[]): void {
  if (tokens.length === 0) throw new LoupeError("empty-input", "The prompt has no tokens: write some text to trace.");
  if (tokens.length > model.cfg.nCtx) {
    throw new LoupeError("context-overflow", `The prompt has ${tokens.length} tokens, more than the model's context of ${model.cfg.nCtx}. Shorten it.`);
  }
}

export async function buildReplacement(model: HookedModel, set: TranscoderSet, tokens: readonly number[], signal?: AbortSignal): Promise<ReplacementModel> {
  checkTranscodersFit(model, set);
  checkPrompt(model, tokens);
  const frozen = await FrozenModel.capture(model, tokens, signal);
  throwIfAborted(signal);
  return replacementFrom(frozen, set, bosPositionsOf(tokens, leadingSpecialToken(model.cfg)));
}

export function bosPositionsOf(tokens: readonly number[], bosTokenId: number | undefined): Set<number> {
  const out = new Set<number>();
  if (bosTokenId !== undefined) tokens.forEach((id, p) => id === bosTokenId && out.add(p));
  return out;
}

export function replacementFrom(frozen: FrozenModel, set: TranscoderSet, bosPositions: ReadonlySet<number>): ReplacementModel {
  const T = frozen.nPos;
  const D = frozen.dModel;
  const F = set.dTranscoder;
  const inputs = frozen.layers.map((layer, l) => frozen.readInput(l, set.inputHook, layer.residMid));
  const acts = inputs.map((x, l) => {
    const a = encode(set, l, x, T);
    for (const p of bosPositions) a.fill(0, p * F, (p + 1) * F);
    return a;
  });
  const recon = decode(set, acts, inputs, T);
  const errors = recon.map((r, l) => {
    const e = new Float32Array(T * D);
    const out = frozen.layers[l].mlpOut;
    for (let i = 0; i < T * D; i++) e[i] = out[i] - r[i];
    for (const p of bosPositions) e.fill(0, p * D, (p + 1) * D);
    return e;
  });
  const features: ActiveFeature[] = [];
  acts.forEach((a, layer) => {
    for (let pos = 0; pos < T; pos++) for (let feature = 0; feature < F; feature++) {
      const activation = a[pos * F + feature];
      if (activation !== 0) features.push({ layer, pos, feature, activation });
    }
  });
  return { frozen, transcoders: set, inputs, acts, errors, features, bosPositions };
}

/** Changes injected into the frozen replacement model: at block 0's input, and at MLP outputs. */
export interface FrozenInjection {
  /** [T, d_model] added to block 0's input (token embeddings). */
  readonly residIn?: Float32Array;
  /** Per layer, [T, d_model] added to the MLP output (undefined: nothing). */
  readonly mlpOut?: readonly (Float32Array | undefined)[];
}

/**
 * The frozen forward pass with injections: MLP outputs stay at their prompt values plus what is
 * injected, plus the skip connection's change where the transcoders have one. Returns each
 * layer's transcoder input and the final normalised residual.
 */
export function runFrozen(r: ReplacementModel, injection: FrozenInjection = {}): { inputs: Float32Array[]; final: Float32Array } {
  const { frozen, transcoders: set } = r;
  const D = frozen.dModel;
  const residIn = frozen.residIn.slice();
  if (injection.residIn) for (let i = 0; i < residIn.length; i++) residIn[i] += injection.residIn[i];
  const { inputs, resid } = frozen.forward(residIn, set.inputHook, (l, input) => {
    const out = frozen.layers[l].mlpOut.slice();
    const extra = injection.mlpOut?.[l];
    if (extra) for (let i = 0; i < out.length; i++) out[i] += extra[i];
    const skip = set.layers[l].skip;
    if (skip) {
      const base = r.inputs[l];
      for (let t = 0; t < frozen.nPos; t++) for (let i = 0; i < D; i++) {
        const dx = input[t * D + i] - base[t * D + i];
        if (dx === 0) continue;
        for (let j = 0; j < D; j++) out[t * D + j] += dx * skip[i * D + j];
      }
    }
    return out;
  });
  return { inputs, final: frozen.readFinal(resid) };
}
