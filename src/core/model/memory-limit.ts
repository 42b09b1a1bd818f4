/**
 * Refuse a model that will not fit before loading it: the safetensors header says how many
 * weights there are, so the estimate costs one small read and no allocation. Called with the
 * limit the user configured (LoadParams.maxModelBytes in the worker).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { resolveModelFolder } from "../hub/model-reference";
import { openModelWeights } from "./model-weights";
import { findOnnxModelFile } from "./onnx-import";

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
    );
  }
  return estimate;
}
