/**
 * Refuse a model that will not fit before loading it: the safetensors header says how many
 * weights there are, so the estimate costs one small read and no allocation. Called with the
 * limit the user configured (LoadParams.maxModelBytes in the worker).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError, type LoupeHint } from "../errors";
import { resolveModelFolder } from "../hub/model-reference";
import { openModelWeights } from "./model-weights";
import { findOnnxModelFile } from "./onnx-import";
import type { ModelConfig } from "./config";
import { hookLayout } from "./hooks";

export interface ModelMemoryEstimate {
  /** model.safetensors, or the shard index of a sharded checkpoint. */
  readonly weightsFile: string;
  /** Size of the weights on disk (every shard). */
  readonly fileBytes: number;
  /**
   * Bytes the weights take once loaded: every element as at least float32 (the graph computes in
   * float32), or, with compact weights, as stored (f16/bf16 matrices are cast a layer at a time).
   */
  readonly estimatedBytes: number;
}

/** External-data files beside an imported decoder .onnx (Optimum and torch.onnx names). */
const ONNX_EXTERNAL_DATA = /\.(onnx_data|onnx\.data|data)$/i;

/**
 * An imported .onnx folder: onnxruntime holds the graph and its external data as stored, so the
 * estimate is their size on disk (the other decoder .onnx files of an Optimum folder not counted).
 */
function estimateOnnxMemory(modelFile: string): ModelMemoryEstimate {
  const dir = path.dirname(modelFile);
  let bytes = fs.statSync(modelFile).size;
  for (const name of fs.readdirSync(dir)) {
    if (!ONNX_EXTERNAL_DATA.test(name)) continue;
    const stat = fs.statSync(path.join(dir, name), { throwIfNoEntry: false });
    if (stat?.isFile()) bytes += stat.size;
  }
  return { weightsFile: modelFile, fileBytes: bytes, estimatedBytes: bytes };
}

export function estimateModelMemory(reference: string, compactWeights = false): ModelMemoryEstimate {
  const folder = resolveModelFolder(reference);
  const onnxFile = findOnnxModelFile(path.resolve(folder));
  if (onnxFile) return estimateOnnxMemory(onnxFile);
  const index = openModelWeights(folder);
  let estimatedBytes = 0;
  for (const entry of index.tensors.values()) {
    const elements = entry.shape.reduce((a, b) => a * b, 1);
    estimatedBytes += compactWeights ? entry.byteLength : Math.max(entry.byteLength, elements * 4);
  }
  return { weightsFile: index.path, fileBytes: index.fileSize, estimatedBytes };
}

/** The memory limit is the knob: `loupe.maxModelMemoryMB` in the editor, `--max-memory-mb` on the command line. */
const MEMORY_LIMIT: LoupeHint = { kind: "memory-limit" };

function size(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(0)} MB` : `${(bytes / 1024).toFixed(0)} KB`;
}

/** Throws "model-too-large" when the model's weights would exceed `maxModelBytes`; no limit when undefined. */
export function checkModelFits(folder: string, maxModelBytes: number | undefined, compactWeights = false): ModelMemoryEstimate | undefined {
  if (maxModelBytes === undefined) return undefined;
  if (!(maxModelBytes > 0)) throw new LoupeError("bad-argument", `The model memory limit must be a positive number of bytes (got ${maxModelBytes}).`);
  const estimate = estimateModelMemory(folder, compactWeights);
  if (estimate.estimatedBytes > maxModelBytes) {
    throw new LoupeError(
      "model-too-large",
      `${estimate.weightsFile} needs about ${size(estimate.estimatedBytes)} of memory once loaded, more than the ${size(maxModelBytes)} limit. ` +
        `Choose a smaller model or raise the limit.`,
      estimate.weightsFile,
      MEMORY_LIMIT,
    );
  }
  return estimate;
}

/** The shape of one forward call, enough to bound what it allocates. */
export interface RunShape {
  readonly batch: number;
  /** Tokens run (after any prefix). */
  readonly positions: number;
  /** Earlier tokens given as keys and values (RunOptions.prefix). */
  readonly prefix?: number;
  /** Rows the prefix is given for: 1 (one prefix stretched over the batch) or the batch (default). */
  readonly prefixRows?: number;
  /** Hooks returned to the caller: each is held whole for the run's batch and positions. */
  readonly hooks: readonly string[];
  /** Positions whose logits are returned (default: every position). */
  readonly logitPositions?: number;
  /** Whether every layer's keys and values are returned (RunOptions.keyValues). */
  readonly keyValues?: boolean;
}

export type RunConfig = Pick<ModelConfig, "nLayers" | "dModel" | "nHeads" | "dHead" | "dMlp" | "dVocab"> & {
  /** Key/value heads of a grouped-query model (default: one per query head). */
  readonly nKvHeads?: number;
};

/** float32 elements of one hook's activation for `batch` rows of `positions` tokens (keys span prefix and tokens). */
export function hookElements(cfg: RunConfig, hook: string, batch: number, positions: number, keys = positions): number {
  switch (hookLayout(hook)) {
    case "pattern":
      return batch * cfg.nHeads * positions * keys;
    case "heads":
      return batch * positions * cfg.nHeads * cfg.dHead;
    case "mlp":
      return batch * positions * cfg.dMlp;
    case "resid":
      return batch * positions * cfg.dModel;
    case "scale":
      return batch * positions;
  }
}

/**
 * Bytes a forward call allocates besides the weights: the hooks and logits it returns, the working
 * set of the block being computed (attention scores and pattern, the MLP's hidden layer, a few
 * residual-sized temporaries, keys and values per query head), and the keys and values of every
 * layer: the prefix fed, their concatenation with the new tokens' (onnxruntime holds each layer's
 * until the run ends, returned or not) and, when returned, their copy handed back. An upper bound
 * in the same units as the weights' estimate, from shapes alone, so a request can be refused or
 * split before it runs.
 */
export function estimateRunBytes(cfg: RunConfig, shape: RunShape): number {
  const { batch: B, positions: T } = shape;
  const P = shape.prefix ?? 0;
  const keys = P + T;
  const returned = shape.hooks.reduce((sum, hook) => sum + hookElements(cfg, hook, B, T, keys), 0);
  const logits = B * (shape.logitPositions ?? T) * cfg.dVocab;
  const block = 3 * B * cfg.nHeads * T * keys + 3 * B * T * cfg.dMlp + 8 * B * T * cfg.dModel + 2 * B * cfg.nHeads * keys * cfg.dHead;
  // Keys and values of one token at every layer, one slot per key/value head.
  const perToken = 2 * cfg.nLayers * (cfg.nKvHeads ?? cfg.nHeads) * cfg.dHead;
  const decoding = P > 0 || shape.keyValues === true;
  const keyValues = perToken * ((shape.prefixRows ?? B) * P + (decoding ? B * keys : 0) + (shape.keyValues ? B * keys : 0));
  return 4 * (returned + logits + block + keyValues);
}

/**
 * Bytes of forward working set one call of a batched job (variants, answers to score, rows decoded
 * together) may take when no limit says less. 256 MB keeps the faithfulness battery of a
 * 1,024-token prompt on a 135M model under 2 GB (bench/scale/battery-memory.ts); short prompts
 * still batch every row.
 */
export const DEFAULT_BATCH_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * Rows of `shape` (given without its batch) one call may take so that its estimate stays within
 * `budgetBytes`, at most `requested`. What does not grow with the rows (a prefix given once, with
 * `prefixRows: 1`) is counted once.
 */
export function rowsWithin(cfg: RunConfig, shape: Omit<RunShape, "batch">, requested: number, budgetBytes = DEFAULT_BATCH_BUDGET_BYTES): number {
  const one = estimateRunBytes(cfg, { ...shape, batch: 1 });
  const perRow = estimateRunBytes(cfg, { ...shape, batch: 2 }) - one;
  return Math.max(1, Math.min(requested, Math.floor((budgetBytes - (one - perRow)) / perRow)));
}

/** float32 copies of a [rows, d_vocab] block alive at once in the lens graph: logits, log-probs, their exp, p log p. */
const LENS_LIVE_COPIES = 4;

/** Rows of the logit lens computed per onnxruntime call so that its [rows, d_vocab] temporaries stay within `budgetBytes`. */
export function lensChunkRows(dVocab: number, budgetBytes: number): number {
  return Math.max(1, Math.floor(budgetBytes / (LENS_LIVE_COPIES * 4 * dVocab)));
}

/**
 * Throws "model-too-large" before a run whose activations, with the weights, would pass the
 * limit; names the run's size and what to do. `what` says which request it is.
 */
export function checkRunFits(cfg: RunConfig, shape: RunShape, limit: { readonly maxBytes: number; readonly weightsBytes: number }, what = "This run"): void {
  const run = estimateRunBytes(cfg, shape);
  if (limit.weightsBytes + run <= limit.maxBytes) return;
  const rows = shape.batch > 1 ? `${shape.batch} rows of ` : "";
  throw new LoupeError(
    "model-too-large",
    `${what} (${rows}${shape.positions} tokens, ${shape.hooks.length} hooks returned) would need about ${size(run)} besides the ${size(limit.weightsBytes)} of weights, ` +
      `more than the ${size(limit.maxBytes)} limit. Select a shorter passage or raise the limit.`,
    undefined,
    MEMORY_LIMIT,
  );
}
