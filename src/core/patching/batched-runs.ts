/**
 * Many variants of one prompt in few onnxruntime calls: variant i's interventions are pinned to
 * batch row i, so a chunk of rows runs as one batched forward instead of one call per variant.
 */
import { throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import type { Intervention } from "../model/interventions";
import { chunks, DEFAULT_MEMORY_BUDGET, rowsPerCall } from "./plan";

/**
 * Rows per call when the caller does not say. Batching saves the fixed cost of a call; past about
 * 16 rows of a short prompt a call is compute-bound. Warm, 32 or 64 rows are ~20% faster; cold (a
 * sweep run once, as from the editor) the first calls of a bigger batch shape page in so much
 * memory that 16 is several times faster (bench/patching, reference model).
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
  const hooks = variants.flatMap((v) => v.map((iv) => iv.hook));
  const rows = rowsPerCall(model.cfg, T, hooks, options.batchSize ?? DEFAULT_BATCH_ROWS, options.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET);
  const logits: Float32Array[][] = [];
  let calls = 0;
  for (const [start, end] of chunks(variants.length, rows)) {
    throwIfAborted(options.signal);
    const interventions: Intervention[] = [];
    for (let i = start; i < end; i++) for (const iv of variants[i]) interventions.push({ ...iv, batch: [i - start] } as Intervention);
    const batch = Array.from({ length: end - start }, () => tokens);
    const result = await model.runWithHooks(batch, interventions, { signal: options.signal });
    calls++;
    const V = result.logits.dims[2];
    for (let b = 0; b < end - start; b++) {
      // Copies, so the [rows, T, vocab] buffer can be freed after this chunk.
      logits.push(options.positions.map((p) => result.logits.data.slice((b * T + p) * V, (b * T + p + 1) * V)));
    }
    options.onProgress?.(end, variants.length);
  }
  return { logits, calls };
}
