/**
 * Load an SAELens SAE folder (cfg.json + sae_weights.safetensors) into an Sae. Weights may be F32,
 * F16 or BF16; they are checked for shape and for NaN/Inf, and every error names the file.
 *
 *   const sae = loadSae("saes/blocks.2.hook_resid_post");
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { readSafetensorsIndex, readTensorF32, type SafetensorsIndex } from "../model/safetensors";
import { readSaeConfig, SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, type SaeConfig } from "./config";
import { Sae, type SaeWeights } from "./sae";

export interface LoadSaeOptions {
  /**
   * The constant input scale of an SAE whose cfg.json says normalize_activations
   * "expected_average_only_in" (SAELens's norm_scaling_factor for the release, or
   * estimateNormScalingFactor over the model's activations). It is folded into the weights.
   */
  readonly normScalingFactor?: number;
}

export function loadSae(folder: string, options: LoadSaeOptions = {}): Sae {
  const dir = path.resolve(folder);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LoupeError("missing-file", `SAE folder ${dir} does not exist. Choose a folder with ${SAE_CFG_FILENAME} and ${SAE_WEIGHTS_FILENAME} (SAELens's SAE.save_model).`, dir);
  }
  const cfgFile = path.join(dir, SAE_CFG_FILENAME);
  let cfg = readSaeConfig(cfgFile);
  const weightsFile = path.join(dir, SAE_WEIGHTS_FILENAME);
  let weights = readSaeWeights(weightsFile, cfg);
  if (cfg.normalize_activations === "expected_average_only_in") {
    const s = options.normScalingFactor;
    if (s === undefined) {
      throw new LoupeError(
        "bad-file",
        `${cfgFile}: normalize_activations is "expected_average_only_in", whose scaling factor SAELens keeps outside cfg.json. ` +
          `Pass normScalingFactor (the release's norm_scaling_factor, or estimateNormScalingFactor over the model's activations at ${cfg.hook_name}).`,
        cfgFile,
      );
    }
    if (!(s > 0) || !Number.isFinite(s)) throw new LoupeError("bad-argument", `normScalingFactor must be a positive number (got ${s}).`, cfgFile);
    weights = foldNormScalingFactor(weights, s);
    cfg = { ...cfg, normalize_activations: "none" };
  }
  return new Sae(cfg, weights, dir);
}

/** Read and check the tensors an SAE of this config needs. */
export function readSaeWeights(file: string, cfg: SaeConfig): SaeWeights {
  if (!fs.existsSync(file)) {
    throw new LoupeError("missing-file", `No ${path.basename(file)} at ${file}. SAELens saves an SAE's weights there (SAE.save_model).`, file);
  }
  const index = readSafetensorsIndex(file);
  const D = cfg.d_in;
  const S = cfg.d_sae;
  const read = (name: string, shape: readonly number[]): Float32Array => readChecked(index, name, shape, cfg);
  const W_enc = read("W_enc", [D, S]);
  const b_enc = read("b_enc", [S]);
  let W_dec = read("W_dec", [S, D]);
  const b_dec = read("b_dec", [D]);
  let threshold: Float32Array | undefined;
  if (cfg.architecture === "jumprelu") {
    // Training checkpoints store log_threshold; inference files store threshold.
    if (!index.tensors.has("threshold") && index.tensors.has("log_threshold")) threshold = read("log_threshold", [S]).map(Math.exp);
    else threshold = read("threshold", [S]);
  }
  if (index.tensors.has("scaling_factor")) {
    // Old SAEs scaled feature acts per latent before decoding; (f * c) @ W_dec = f @ (diag(c) W_dec).
    const c = read("scaling_factor", [S]);
    if (c.some((v) => v !== 1)) {
      W_dec = W_dec.slice();
      for (let s = 0; s < S; s++) for (let d = 0; d < D; d++) W_dec[s * D + d] *= c[s];
    }
  }
  return { W_enc, b_enc, W_dec, b_dec, threshold };
}

function readChecked(index: SafetensorsIndex, name: string, shape: readonly number[], cfg: SaeConfig): Float32Array {
  const file = index.path;
  const entry = index.tensors.get(name);
  if (!entry) {
    const have = [...index.tensors.keys()].join(", ") || "none";
    throw new LoupeError(
      "bad-file",
      `${file} has no tensor "${name}" (it has: ${have}). A ${cfg.architecture} SAELens SAE needs W_enc, b_enc, W_dec, b_dec${cfg.architecture === "jumprelu" ? " and threshold" : ""}.`,
      file,
    );
  }
  const same = entry.shape.length === shape.length && entry.shape.every((d, i) => d === shape[i]);
  if (!same) {
    throw new LoupeError(
      "bad-shape",
      `${file}: tensor "${name}" has shape [${entry.shape.join(", ")}] but cfg.json (d_in ${cfg.d_in}, d_sae ${cfg.d_sae}) implies [${shape.join(", ")}]. The weights and cfg.json come from different SAEs.`,
      file,
    );
  }
  const data = readTensorF32(index, name);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const at = shape.length === 2 ? `[${Math.floor(i / shape[1])}, ${i % shape[1]}]` : `[${i}]`;
      throw new LoupeError(
        "bad-file",
        `${file}: tensor "${name}" holds ${Number.isNaN(data[i]) ? "NaN" : "an infinite value"} at ${at}. The weights are corrupt (a diverged training run?); re-export or retrain the SAE.`,
        file,
      );
    }
  }
  return data;
}

/**
 * Fold a constant input scale s into the weights: encoding s*x and dividing the reconstruction by s
 * equals encoding x with W_enc*s, b_dec/s and decoding with W_dec/s (SAELens's
 * fold_activation_norm_scaling_factor). Pre-activations are unchanged, so thresholds and top-k are too.
 */
export function foldNormScalingFactor(weights: SaeWeights, s: number): SaeWeights {
  return {
    ...weights,
    W_enc: weights.W_enc.map((v) => v * s),
    W_dec: weights.W_dec.map((v) => v / s),
    b_dec: weights.b_dec.map((v) => v / s),
  };
}

/** SAELens's estimate of the expected_average_only_in factor: sqrt(d_in) / mean ||x|| over sample rows. */
export function estimateNormScalingFactor(x: Float32Array, rows: number, d_in: number): number {
  if (rows <= 0 || x.length !== rows * d_in) throw new LoupeError("bad-shape", `estimateNormScalingFactor: ${x.length} values are not ${rows} rows of ${d_in}.`);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let d = r * d_in, end = d + d_in; d < end; d++) ss += x[d] * x[d];
    total += Math.sqrt(ss);
  }
  return Math.sqrt(d_in) / (total / rows);
}
