/**
 * Attaching an SAE to a model by its hook_name: check that it fits, read per-token vectors of the
 * hook, and compute a text's feature activations from one cached forward pass.
 *
 *   const run = await saeFeatureActivations(model, sae, "When Mia and Leo went to the shop");
 *   run.features[t * sae.d_sae + i]   // feature i at token t
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import type { HookedModel, TokenBatch } from "../model/hooked-model";
import { headsAt, hookLayout, hookShape, isKeyValueHook, suffixOf } from "../model/hooks";
import type { Tensor } from "../tensor/tensor";
import { SAE_CFG_FILENAME } from "./config";
import { encodeFast } from "./encoder-session";
import type { Sae } from "./sae";

/**
 * circuit-tracer's transcoder inputs that TransformerLens names but Loupe's graphs compute inside the
 * norm: transcoder sets read them (from hook_resid_mid and the norm's weights); an SAE cannot attach.
 */
const TRANSCODER_INPUTS: ReadonlySet<string> = new Set(["ln2.hook_normalized", "mlp.hook_in"]);

/** The file to name in messages about an SAE: its cfg.json, or a description for one built in memory. */
export function saeFile(sae: Sae): string {
  return sae.source ? path.join(sae.source, SAE_CFG_FILENAME) : `the SAE for ${sae.hookName}`;
}

/** Values per token that `hook` gives on this model (one head's when headIndex is set). */
export function hookWidth(model: HookedModel, hook: string, headIndex?: number): number {
  if (hookLayout(hook) === "pattern") return 0;
  const [, , ...perToken] = hookShape(model.hookDims, hook, 1, 1);
  return headIndex === undefined ? perToken.reduce((a, d) => a * d, 1) : model.hookDims.dHead;
}

/** Throw a clear error unless `sae` reads a hook of `model` with exactly d_in values per token. */
export function checkSaeFits(model: HookedModel, sae: Sae): void {
  const file = saeFile(sae);
  const hook = sae.hookName;
  const head = sae.cfg.hook_head_index;
  const suffix = suffixOf(hook);
  if (!model.hookNames.includes(hook) && suffix !== undefined && TRANSCODER_INPUTS.has(suffix)) {
    throw new LoupeError(
      "bad-argument",
      `${file}: hook_name "${hook}" is the MLP's normalised input, which Loupe's models do not expose as a hook (they have blocks.{L}.ln2.hook_scale and blocks.{L}.hook_resid_mid). A dictionary reading it is a transcoder: Loupe reads it as a transcoder set (circuit-tracer's config.yaml, feature_input_hook: ${suffix}), not as an SAE.`,
      sae.source ? file : undefined,
      { kind: "transcoder-set" },
    );
  }
  if (!model.hookNames.includes(hook)) {
    const last = model.cfg.nLayers - 1;
    throw new LoupeError(
      "bad-argument",
      `${file}: hook_name "${hook}" is not a hook of the model in ${model.folder} (layers 0..${last}; names such as blocks.${last}.hook_resid_post). The SAE belongs to another model.`,
      sae.source ? file : undefined,
    );
  }
  const layout = hookLayout(hook);
  if (layout === "pattern") {
    throw new LoupeError("bad-argument", `${file}: hook_name "${hook}" is an attention pattern, not one vector per token; Loupe attaches SAEs to per-token hooks.`, sae.source ? file : undefined);
  }
  // TransformerLens groups key/value heads by default; an SAE trained on its ungrouped view reads one slot per query head.
  const grouped = isKeyValueHook(hook) && model.hookDims.keyValueHeads < model.hookDims.nHeads;
  const ungroupHint = grouped
    ? ` ${hook} has one slot per key/value head here; if the SAE read one per query head (TransformerLens's ungroup_grouped_query_attention), load the model with ungroupGroupedQueryAttention (CLI --ungroup-grouped-query-attention).`
    : "";
  if (head !== undefined) {
    if (layout !== "heads") throw new LoupeError("bad-file", `${file}: hook_head_index is set but ${hook} has no head axis.`, sae.source ? file : undefined);
    const heads = headsAt(model.hookDims, hook) ?? 0;
    if (head >= heads) throw new LoupeError("bad-file", `${file}: hook_head_index ${head} is past the ${heads} heads of ${hook}.${ungroupHint}`, sae.source ? file : undefined);
  }
  const width = hookWidth(model, hook, head);
  if (sae.d_in !== width) {
    const what = layout === "resid" ? "d_model" : layout === "mlp" ? "d_mlp" : layout === "scale" ? "a norm's scale" : head === undefined ? "heads * d_head" : "d_head";
    throw new LoupeError(
      "bad-shape",
      `${file}: d_in is ${sae.d_in} but ${hook} of the model in ${model.folder} has ${width} values per token (${what}). The SAE was trained on another model; choose one made for this model.${ungroupHint}`,
      sae.source ? file : undefined,
    );
  }
}

/**
 * Copy the SAE's input vectors for batch row b, positions [0, length), out of a hook activation
 * ([B, T, ...]) into out at row outRow. Rows are contiguous per token except for one-head SAEs.
 */
export function copyTokenVectors(activation: Tensor, b: number, length: number, headIndex: number | undefined, out: Float32Array, outRow: number, d_in: number): void {
  const T = activation.dims[1];
  const perToken = activation.data.length / (activation.dims[0] * T);
  for (let t = 0; t < length; t++) {
    const src = (b * T + t) * perToken + (headIndex === undefined ? 0 : headIndex * d_in);
    out.set(activation.data.subarray(src, src + d_in), (outRow + t) * d_in);
  }
}

/** The inverse of copyTokenVectors: write rows back into a full hook-shaped tensor. */
export function writeTokenVectors(target: Float32Array, dims: readonly number[], b: number, length: number, headIndex: number | undefined, rows: Float32Array, fromRow: number, d_in: number): void {
  const T = dims[1];
  const perToken = target.length / (dims[0] * T);
  for (let t = 0; t < length; t++) {
    const dst = (b * T + t) * perToken + (headIndex === undefined ? 0 : headIndex * d_in);
    target.set(rows.subarray((fromRow + t) * d_in, (fromRow + t + 1) * d_in), dst);
  }
}

export interface SaeFeatureRun {
  /** The tokens the model read: for a text, its prompt encoding (Llama's <s> first). */
  readonly tokens: number[];
  /** UTF-16 range of each token, when the input was text; leading <s> tokens have [0, 0]. */
  readonly offsets?: Array<[number, number]>;
  /** How many leading template tokens (<s>) come before the text's own: rows to skip when showing the text. */
  readonly lead: number;
  readonly d_sae: number;
  /** [tokens, d_sae] feature activations. */
  readonly features: Float32Array;
  /** [tokens, d_in] the hook's vectors the SAE read. */
  readonly input: Float32Array;
}

/** Per-token feature activations of a text (or token ids) at the SAE's hook. */
export async function saeFeatureActivations(model: HookedModel, sae: Sae, input: string | readonly number[], options: { signal?: AbortSignal } = {}): Promise<SaeFeatureRun> {
  checkSaeFits(model, sae);
  let tokens: number[];
  let offsets: Array<[number, number]> | undefined;
  let lead = 0;
  if (typeof input === "string") {
    const enc = model.encode(input);
    tokens = enc.ids;
    offsets = enc.offsets;
    lead = enc.lead;
  } else {
    tokens = [...input];
  }
  const { cache } = await model.runWithCache(tokens, { names: [sae.hookName], logits: false, signal: options.signal });
  const x = new Float32Array(tokens.length * sae.d_in);
  copyTokenVectors(cache.get(sae.hookName), 0, tokens.length, sae.cfg.hook_head_index, x, 0, sae.d_in);
  const { features } = await encodeFast(sae, x, tokens.length);
  return { tokens, offsets, lead, d_sae: sae.d_sae, features, input: x };
}

/** The SAE's input vectors for every real token of a batch, in batch order, from one cached run. */
export async function saeInputsForBatch(model: HookedModel, sae: Sae, batch: TokenBatch, signal?: AbortSignal): Promise<{ x: Float32Array; rows: number; activation: Tensor; logits: Tensor }> {
  checkSaeFits(model, sae);
  const { cache, logits } = await model.runWithCache(batch, { names: [sae.hookName], signal });
  const activation = cache.get(sae.hookName);
  const rows = batch.reduce((n, row) => n + row.length, 0);
  const x = new Float32Array(rows * sae.d_in);
  let at = 0;
  batch.forEach((row, b) => {
    copyTokenVectors(activation, b, row.length, sae.cfg.hook_head_index, x, at, sae.d_in);
    at += row.length;
  });
  return { x, rows, activation, logits };
}
