/**
 * Many variants of one prompt in few onnxruntime calls: variant i's interventions are pinned to
 * batch row i, so a chunk of rows runs as one batched forward instead of one call per variant.
 *
 * Given the unchanged prompt's keys and values, a call starts at the first position any of its
 * variants changes: by causality the tokens before it are the unchanged prompt's at every layer,
 * so they are fed as a prefix rather than recomputed. Given its blocks.{L}.hook_resid_pre at every
 * block too, a row whose first change is in block L starts there, the blocks before it skipped.
 * Variants are ordered by first position, then block, so that each call's rows start close together.
 */
import { throwIfAborted } from "../errors";
import { prefixKeyValues, type KeyValues, type StartAt } from "../model/hooked-model";
import type { HookedModel } from "../model/hooked-model";
import { blockHook, blockOf, hookLayout } from "../model/hooks";
import type { Intervention } from "../model/interventions";
import { tensor, type Tensor } from "../tensor/tensor";
import { chunksWithin, DEFAULT_MEMORY_BUDGET, patchedCallBytes } from "./plan";

/**
 * Rows per call when the caller does not say. Batching saves the fixed cost of a call; past about
 * 16 rows of a short prompt a call is compute-bound. Warm, 32 or 64 rows take 10-20% less CPU; cold
 * (a sweep run once, as from the editor) the first calls of a bigger batch shape page in more
 * memory, and a first sweep at 32 rows took ~15% more CPU than at 16 (reference model, 26 tokens,
 * 2 cores; earlier measurements found the cold gap several times larger). Neither clearly wins.
 */
export const DEFAULT_BATCH_ROWS = 16;

/** An intervention before it is given its batch row. */
export type RowIntervention = WithoutBatch<Intervention>;
type WithoutBatch<T> = T extends unknown ? Omit<T, "batch"> : never;

export interface VariantRunOptions {
  /** Positions whose logits to return for every variant. */
  readonly positions: readonly number[];
  /** Variants per onnxruntime call (default DEFAULT_BATCH_ROWS); 1 runs one call per variant. */
  readonly batchSize?: number;
  readonly memoryBudgetBytes?: number;
  readonly signal?: AbortSignal;
  /** Called after each call with the variants done so far. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Keys and values of a run of the unchanged tokens (batch row `row`): calls skip the unchanged start. */
  readonly keyValues?: { readonly kv: KeyValues; readonly row: number };
  /** blocks.{L}.hook_resid_pre of a run of the unchanged tokens, [1, pos, d_model] for every L: rows skip the blocks before their first change. */
  readonly residPre?: readonly Tensor[];
}

export interface VariantRuns {
  /** logits[variant][k]: the vocabulary row at options.positions[k]. */
  readonly logits: Float32Array[][];
  /** onnxruntime calls made. */
  readonly calls: number;
}

export async function runVariants(
  model: HookedModel,
  tokens: readonly number[],
  variants: readonly (readonly RowIntervention[])[],
  options: VariantRunOptions,
): Promise<VariantRuns> {
  const T = tokens.length;
  const kv = options.keyValues && model.supportsPrefix ? options.keyValues : undefined;
  // The first position each variant may change; a call cannot start after a scored position.
  const latest = Math.min(T - 1, ...options.positions);
  const firsts = variants.map((v) => (kv ? Math.min(latest, ...v.map(firstChanged)) : 0));
  const resid = options.residPre && model.supportsStartAt ? options.residPre : undefined;
  const layers = variants.map((v) => (resid ? Math.min(model.cfg.nLayers - 1, ...v.map((iv) => blockOf(iv.hook, model.cfg.nLayers))) : 0));
  const order = variants.map((_, i) => i).sort((a, b) => firsts[a] - firsts[b] || layers[a] - layers[b] || a - b);
  const prefixes = new Map<number, KeyValues>();
  const logits: Float32Array[][] = new Array(variants.length);
  let calls = 0;
  // Calls as big as the batch size and the memory budget allow: a call's size grows with its rows,
  // the tokens they run from their first change on, and the hooks they change.
  const budget = options.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET;
  const fits = (start: number, end: number): boolean => {
    const from = firsts[order[start]];
    const hooks = order.slice(start, end).flatMap((i) => variants[i].map((iv) => iv.hook));
    return patchedCallBytes(model.cfg, model.hookDims, { rows: end - start, positions: T - from, prefix: from, logitPositions: options.positions.length, hooks }) <= budget;
  };
  for (const [start, end] of chunksWithin(variants.length, options.batchSize ?? DEFAULT_BATCH_ROWS, fits)) {
    throwIfAborted(options.signal);
    // The chunk's earliest first change: order puts it first.
    const from = firsts[order[start]];
    // Rows that start at a later block come after the others.
    const members = order.slice(start, end).sort((a, b) => layers[a] - layers[b] || a - b);
    const sliced = new Map<Tensor, Tensor>();
    const interventions: Intervention[] = [];
    // Replacements of a later row's first resid_pre are written into its starting activation.
    const baked = members.map((i) => (resid && bakeable(variants[i], layers[i]) ? variants[i] : []));
    members.forEach((i, row) => {
      if (baked[row].length > 0) return;
      for (const iv of variants[i]) interventions.push({ ...shift(iv, from, sliced), batch: [row] } as Intervention);
    });
    let prefix: KeyValues | undefined;
    if (kv && from > 0) {
      prefix = prefixes.get(from) ?? prefixKeyValues(kv.kv, kv.row, from);
      prefixes.set(from, prefix);
    }
    const suffix = tokens.slice(from);
    const batch = members.map(() => suffix);
    const logitPositions = options.positions.map((p) => p - from);
    const startAt = resid && members.some((i) => layers[i] > 0) ? startRows(members.map((i) => layers[i]), resid, from, baked) : undefined;
    const result = await model.runWithHooks(batch, interventions, { signal: options.signal, logitPositions, prefix, startAt });
    calls++;
    const V = result.logits.dims[2];
    const K = logitPositions.length;
    members.forEach((i, b) => {
      // Copies, so the call's logits buffer can be freed after this chunk.
      logits[i] = logitPositions.map((_, k) => result.logits.data.slice((b * K + k) * V, (b * K + k + 1) * V));
    });
    options.onProgress?.(end, variants.length);
  }
  return { logits, calls };
}

/**
 * Whether all of a variant's changes replace its first block's resid_pre (from a batch-1 source),
 * so that they can be written into the activation the row starts from: the same values, no
 * intervention to run.
 */
function bakeable(variant: readonly RowIntervention[], layer: number): boolean {
  const hook = blockHook(layer, "hook_resid_pre");
  return layer > 0 && variant.length > 0 && variant.every((iv) => iv.hook === hook && iv.kind === "replace" && iv.source.dims[0] === 1);
}

/**
 * Rows starting at these blocks (non-decreasing), from the unchanged run's resid_pre at positions
 * `from` on, with each row's baked replacements (see bakeable) written in, in order.
 */
function startRows(layers: readonly number[], residPre: readonly Tensor[], from: number, baked: readonly (readonly RowIntervention[])[]): StartAt {
  const [, T, D] = residPre[0].dims;
  const size = (T - from) * D;
  const later = layers.flatMap((l, row) => (l > 0 ? [row] : []));
  const data = new Float32Array(later.length * size);
  later.forEach((row, r) => {
    data.set(residPre[layers[row]].data.subarray(from * D, T * D), r * size);
    for (const iv of baked[row]) {
      if (iv.kind !== "replace") continue;
      for (const p of iv.positions ?? Array.from({ length: T - from }, (_, k) => from + k)) {
        data.set(iv.source.data.subarray(p * D, (p + 1) * D), r * size + (p - from) * D);
      }
    }
  });
  return { layers, resid: tensor(data, [later.length, T - from, D]) };
}

/** The first position an intervention can change: attention patterns have no position prefix to skip. */
function firstChanged(iv: RowIntervention): number {
  if (hookLayout(iv.hook) === "pattern" || !iv.positions || iv.positions.length === 0) return 0;
  return Math.min(...iv.positions);
}

/** The intervention for the tokens from `from` on: positions and a replacement's position axis shifted. */
function shift(iv: RowIntervention, from: number, sliced: Map<Tensor, Tensor>): RowIntervention {
  if (from === 0) return iv;
  const positions = iv.positions?.map((p) => p - from);
  if (iv.kind !== "replace") return { ...iv, positions };
  let source = sliced.get(iv.source);
  if (!source) {
    source = dropPositions(iv.source, from);
    sliced.set(iv.source, source);
  }
  return { ...iv, positions, source };
}

/** A [batch, pos, ...] activation without its first `from` positions. */
function dropPositions(t: Tensor, from: number): Tensor {
  const [B, T, ...inner] = t.dims;
  const size = inner.reduce((a, c) => a * c, 1);
  const out = new Float32Array(B * (T - from) * size);
  for (let b = 0; b < B; b++) out.set(t.data.subarray((b * T + from) * size, (b + 1) * T * size), b * (T - from) * size);
  return tensor(out, [B, T - from, ...inner]);
}
