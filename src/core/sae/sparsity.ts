/**
 * SAELens's sparsity.safetensors, saved next to many published SAEs: one tensor "sparsity" [d_sae]
 * holding log10 of each latent's firing frequency over the training tokens (log10(density + 1e-10)).
 * Loupe shows these densities where no feature-stats.json of its own exists.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { readSafetensorsIndex, readTensorF32 } from "../model/safetensors";

export const SPARSITY_FILENAME = "sparsity.safetensors";

/** Each latent's firing frequency (0..1), or undefined when the folder has no sparsity file. */
export function readSparsityDensities(folder: string, d_sae: number): Float32Array | undefined {
  const file = path.join(folder, SPARSITY_FILENAME);
  if (!fs.existsSync(file)) return undefined;
  const index = readSafetensorsIndex(file);
  const entry = index.tensors.get("sparsity");
  if (!entry || entry.shape.reduce((a, b) => a * b, 1) !== d_sae) {
    throw new LoupeError("bad-file", `${file} should hold a "sparsity" tensor of ${d_sae} values (log10 feature densities, as SAELens saves them); it holds ${[...index.tensors.keys()].join(", ") || "nothing"}. Delete it or download it again.`, file);
  }
  return readTensorF32(index, "sparsity").map((v) => Math.min(1, 10 ** v));
}
