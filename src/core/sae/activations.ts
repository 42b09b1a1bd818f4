/**
 * Training data for an SAE: a hook's per-token vectors over a list of texts, one cached forward
 * pass per batch of texts. Texts are batched by length so little compute goes to padding (padding
 * sits on the right and attention is causal, so real positions do not see it).
 */
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { hookLayout } from "../model/hooks";
import { copyTokenVectors, hookWidth } from "./attach";

export interface GatherOptions {
  /** Texts per forward pass (default 32). */
  readonly batchSize?: number;
  /** Stop once this many token vectors are gathered (default: all). */
  readonly maxTokens?: number;
  /** Read one attention head of a per-head hook (hook_z etc.). */
  readonly headIndex?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (doneTexts: number, totalTexts: number, tokens: number) => void;
}

export interface Activations {
  readonly hook_name: string;
  /** [rows, d] row-major. */
  readonly data: Float32Array;
  readonly rows: number;
  readonly d: number;
  /** Texts that contributed (all of them unless maxTokens cut the list short). */
  readonly texts: number;
}

/** Per-token vectors of `hook` over `texts`; texts longer than the context window are cut to it. */
export async function gatherActivations(model: HookedModel, hook: string, texts: readonly string[], options: GatherOptions = {}): Promise<Activations> {
  const [only] = await gatherActivationsAt(model, [hook], texts, options);
  return only;
}

/**
 * Per-token vectors of several hooks over `texts` from one forward pass per batch (a transcoder set
 * reads two hooks a layer), in the order of `hooks`; rows line up across hooks.
 */
export async function gatherActivationsAt(model: HookedModel, hooks: readonly string[], texts: readonly string[], options: GatherOptions = {}): Promise<Activations[]> {
  for (const hook of hooks) {
    if (!model.hookNames.includes(hook) || hookLayout(hook) === "pattern") {
      throw new LoupeError("bad-argument", `Cannot gather SAE training data at "${hook}": use a per-token hook of this model, e.g. blocks.0.hook_resid_post.`);
    }
  }
  const widths = hooks.map((hook) => hookWidth(model, hook, options.headIndex));
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 32));
  const cap = options.maxTokens ?? Infinity;
  const encoded: number[][] = [];
  let planned = 0;
  for (const text of texts) {
    if (planned >= cap) break;
    // As the model reads a prompt (Llama's <s> first). The <s> rows are kept: spliceSae replaces
    // every position, that one included, so the SAE has to reconstruct it too.
    const ids = model.toTokens(text).slice(0, model.cfg.nCtx);
    if (ids.length === 0) continue;
    encoded.push(ids);
    planned += ids.length;
  }
  if (encoded.length === 0) throw new LoupeError("empty-input", "No tokens to gather SAE training data from: the texts are empty.");
  const rows = Math.min(planned, cap);
  const data = widths.map((d) => new Float32Array(rows * d));
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[a].length - encoded[b].length);
  // Rows land in text order (not length order), so a caller's train/test split by text holds.
  const rowStart = new Int32Array(encoded.length);
  for (let i = 1; i < encoded.length; i++) rowStart[i] = rowStart[i - 1] + encoded[i - 1].length;
  let done = 0;
  for (let from = 0; from < order.length; from += batchSize) {
    throwIfAborted(options.signal);
    const members = order.slice(from, from + batchSize);
    const { cache } = await model.runWithCache(members.map((i) => encoded[i]), { names: [...hooks], logits: false, signal: options.signal });
    hooks.forEach((hook, h) => {
      const activation = cache.get(hook);
      members.forEach((text, b) => {
        // The last text may be cut so the total is exactly maxTokens.
        const length = Math.max(0, Math.min(encoded[text].length, rows - rowStart[text]));
        if (length > 0) copyTokenVectors(activation, b, length, options.headIndex, data[h], rowStart[text], widths[h]);
      });
    });
    done += members.length;
    options.onProgress?.(done, encoded.length, rows);
  }
  return hooks.map((hook, h) => ({ hook_name: hook, data: data[h], rows, d: widths[h], texts: encoded.length }));
}
