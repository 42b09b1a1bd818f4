/**
 * Load an SAE folder into an Sae: SAELens (cfg.json + sae_weights.safetensors, transcoders
 * included), Gemma Scope (params.npz), Gemma Scope 2 (params.safetensors) or Llama Scope
 * (hyperparams.json + checkpoints/final.safetensors). Weights may be F32, F16 or BF16; they are
 * checked for shape and for NaN/Inf, and every error names the file. A folder of a published
 * release in the hub cache takes the release's hook, processing and Neuronpedia id where its files
 * do not say.
 *
 *   const sae = loadSae("saes/blocks.2.hook_resid_post");
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { MAX_WORKSPACE_JSON_BYTES, readTextSafely } from "../safe-fs";
import { readSafetensorsIndex, readTensorF32, type SafetensorsIndex } from "../model/safetensors";
import { layerOf } from "../model/hooks";
import { readSaeConfig, SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, type SaeConfig } from "./config";
import { transpose } from "./kernels";
import { readNpz } from "./npz";
import { releaseSaeOfFolder, type ReleaseSae } from "./releases/reference";
import { Sae, type SaeWeights } from "./sae";

export const GEMMA_SCOPE_NPZ = "params.npz";
export const GEMMA_SCOPE_2_WEIGHTS = "params.safetensors";
export const LLAMA_SCOPE_HYPERPARAMS = "hyperparams.json";
export const LLAMA_SCOPE_WEIGHTS = "checkpoints/final.safetensors";

export interface LoadSaeOptions {
  /**
   * The constant input scale of an SAE whose cfg.json says normalize_activations
   * "expected_average_only_in" (SAELens's norm_scaling_factor for the release, or
   * estimateNormScalingFactor over the model's activations). It is folded into the weights.
   */
  readonly normScalingFactor?: number;
  /** The hook a Gemma Scope folder reads (its files do not say); a release's own hook otherwise. */
  readonly hook?: string;
  /** The hook a Gemma Scope 2 transcoder folder writes (its files do not say). */
  readonly hookOut?: string;
  /** Which published SAE the folder holds; found from a hub-cache path when not given. */
  readonly published?: ReleaseSae;
}

export function loadSae(folder: string, options: LoadSaeOptions = {}): Sae {
  const dir = path.resolve(folder);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LoupeError("missing-file", `SAE folder ${dir} does not exist. Choose a folder with ${SAE_CFG_FILENAME} and ${SAE_WEIGHTS_FILENAME} (SAELens's SAE.save_model).`, dir);
  }
  const published = options.published ?? releaseSaeOfFolder(dir);
  const cfgFile = path.join(dir, SAE_CFG_FILENAME);
  const hasSaeLens = fs.existsSync(cfgFile) || fs.existsSync(path.join(dir, SAE_WEIGHTS_FILENAME));
  if (!hasSaeLens && fs.existsSync(path.join(dir, GEMMA_SCOPE_NPZ))) return loadGemmaScope(dir, path.join(dir, GEMMA_SCOPE_NPZ), options, published);
  if (!hasSaeLens && fs.existsSync(path.join(dir, GEMMA_SCOPE_2_WEIGHTS))) return loadGemmaScope(dir, path.join(dir, GEMMA_SCOPE_2_WEIGHTS), options, published);
  if (!hasSaeLens && fs.existsSync(path.join(dir, LLAMA_SCOPE_HYPERPARAMS))) return loadLlamaScope(dir, published);
  let cfg = withRelease(readSaeConfig(cfgFile), published);
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

/** A release's facts where the SAE's own config is silent. */
function withRelease(cfg: SaeConfig, published: ReleaseSae | undefined): SaeConfig {
  if (!published) return cfg;
  return {
    ...cfg,
    processing: cfg.processing ?? published.release.processing,
    neuronpedia_id: cfg.neuronpedia_id ?? published.release.neuronpedia?.(published.id),
  };
}

/**
 * Gemma Scope's JumpReLU SAEs: W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc, b_dec, threshold,
 * named so in params.npz (Gemma Scope 1) and in lower case (w_enc, w_dec) in Gemma Scope 2's
 * params.safetensors. They encode x @ W_enc + b_enc without subtracting b_dec, on the raw model.
 * Gemma Scope 2's transcoders add affine_skip_connection [d_in, d_out], applied as x @ A (Google's
 * reference code, and circuit-tracer's loader, which stores its transpose as W_skip).
 */
function loadGemmaScope(dir: string, file: string, options: LoadSaeOptions, published: ReleaseSae | undefined): Sae {
  const tensors = new Map<string, { shape: readonly number[]; data: () => Float32Array }>();
  if (file.endsWith(".npz")) {
    for (const [name, array] of readNpz(file)) tensors.set(name.toLowerCase(), { shape: array.shape, data: () => array.data });
  } else {
    const index = readSafetensorsIndex(file);
    for (const [name, entry] of index.tensors) tensors.set(name.toLowerCase(), { shape: entry.shape, data: () => readTensorF32(index, name) });
  }
  const encoder = tensors.get("w_enc");
  if (!encoder || encoder.shape.length !== 2) {
    throw new LoupeError("bad-file", `${file} has no 2-D W_enc (it has: ${[...tensors.keys()].join(", ") || "nothing"}). A Gemma Scope SAE holds W_enc, W_dec, b_enc, b_dec and threshold.`, file);
  }
  const hook_name = options.hook ?? published?.release.hook(published.id);
  if (!hook_name) {
    throw new LoupeError(
      "bad-argument",
      `${file} does not say which hook it reads. Open it as RELEASE/SAE_ID (e.g. gemma-scope-2-270m-pt-res/layer_12_width_16k_l0_medium) or pass its hook (e.g. blocks.12.hook_resid_post).`,
      file,
    );
  }
  const [d_in, d_sae] = encoder.shape;
  const skip = tensors.get("affine_skip_connection");
  const d_out = tensors.get("w_dec")?.shape[1] ?? d_in;
  const isTranscoder = skip !== undefined || d_out !== d_in;
  const cfg: SaeConfig = {
    ...jumpReluConfig(hook_name, d_in, d_sae, published),
    transcoder: isTranscoder ? { d_out, skip: skip !== undefined, hook_name_out: options.hookOut } : undefined,
  };
  const read = (name: string, shape: readonly number[]): Float32Array => {
    const t = tensors.get(name.toLowerCase());
    if (!t) throw new LoupeError("bad-file", `${file} has no tensor "${name}" (it has: ${[...tensors.keys()].join(", ")}).`, file);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new LoupeError("bad-shape", `${file}: tensor "${name}" has shape [${t.shape.join(", ")}] but W_enc [${d_in}, ${d_sae}] and W_dec [${d_sae}, ${d_out}] imply [${shape.join(", ")}].`, file);
    }
    return checkFinite(t.data(), name, file);
  };
  const weights: SaeWeights = {
    W_enc: read("W_enc", [d_in, d_sae]),
    W_dec: read("W_dec", [d_sae, d_out]),
    b_enc: read("b_enc", [d_sae]),
    b_dec: read("b_dec", [d_out]),
    threshold: read("threshold", [d_sae]),
    W_skip: skip ? read("affine_skip_connection", [d_in, d_out]) : undefined,
  };
  return new Sae(cfg, weights, dir);
}

/** The config of a JumpReLU SAE whose files hold no SAELens cfg.json (Gemma Scope, Llama Scope): x @ W_enc + b_enc, b_dec not subtracted. */
function jumpReluConfig(hook_name: string, d_in: number, d_sae: number, published: ReleaseSae | undefined): SaeConfig {
  return withRelease(
    {
      architecture: "jumprelu",
      d_in,
      d_sae,
      hook_name,
      hook_layer: layerOf(hook_name),
      rescale_acts_by_decoder_norm: false,
      apply_b_dec_to_input: false,
      normalize_activations: "none",
      finetuning_scaling_factor: false,
      dtype: "float32",
      model_name: published?.release.model,
    },
    published,
  );
}

/**
 * Llama Scope's JumpReLU SAEs, as SAELens's llama_scope conversion reads them: encoder.weight
 * [d_sae, d_model] and decoder.weight [d_model, d_sae] (nn.Linear layout), one scalar
 * jump_relu_threshold, and inputs scaled by s = sqrt(d_model) / dataset_average_activation_norm.in
 * ("dataset-wise" normalisation). The threshold is compared in the scaled space as
 * jump_relu_threshold * s, and s is folded into the weights.
 */
function loadLlamaScope(dir: string, published: ReleaseSae | undefined): Sae {
  const hyperFile = path.join(dir, LLAMA_SCOPE_HYPERPARAMS);
  const text = readTextSafely(hyperFile, { maxBytes: MAX_WORKSPACE_JSON_BYTES });
  let hp: Record<string, unknown>;
  try {
    hp = JSON.parse(text ?? "") as Record<string, unknown>;
  } catch (error) {
    throw new LoupeError("bad-file", `${hyperFile} is not valid JSON (${(error as Error).message}). Download it again with \`loupe pull --sae RELEASE/SAE_ID\`.`, hyperFile);
  }
  const number = (value: unknown, key: string): number => {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new LoupeError("bad-file", `${hyperFile}: ${key} must be a non-negative number (found ${JSON.stringify(value)}); is this a Llama Scope SAE?`, hyperFile);
    return value;
  };
  const d_in = number(hp.d_model, "d_model");
  const d_sae = number(hp.d_sae, "d_sae");
  const norms = hp.dataset_average_activation_norm as Record<string, unknown> | undefined;
  const s = Math.sqrt(d_in) / number(norms?.in, "dataset_average_activation_norm.in");
  const t = number(hp.jump_relu_threshold, "jump_relu_threshold");
  const hook = typeof hp.hook_point_in === "string" ? hp.hook_point_in : published?.release.hook(published.id);
  if (!hook) throw new LoupeError("bad-file", `${hyperFile} has no hook_point_in (e.g. "blocks.15.hook_resid_post").`, hyperFile);
  const weightsFile = path.join(dir, LLAMA_SCOPE_WEIGHTS);
  if (!fs.existsSync(weightsFile)) throw new LoupeError("missing-file", `No ${LLAMA_SCOPE_WEIGHTS} in ${dir}. A Llama Scope SAE holds its weights there; download them with \`loupe pull --sae RELEASE/SAE_ID\`.`, weightsFile);
  const index = readSafetensorsIndex(weightsFile);
  const cfg = jumpReluConfig(hook, d_in, d_sae, published);
  const read = (name: string, shape: readonly number[]) => readChecked(index, name, shape, cfg);
  const weights: SaeWeights = {
    W_enc: transpose(read("encoder.weight", [d_sae, d_in]), d_sae, d_in),
    W_dec: transpose(read("decoder.weight", [d_in, d_sae]), d_in, d_sae),
    b_enc: read("encoder.bias", [d_sae]),
    b_dec: read("decoder.bias", [d_in]),
    threshold: new Float32Array(d_sae).fill(t * s),
  };
  return new Sae(cfg, foldNormScalingFactor(weights, s), dir);
}

/** Read and check the tensors an SAE of this config needs. */
export function readSaeWeights(file: string, cfg: SaeConfig): SaeWeights {
  if (!fs.existsSync(file)) {
    throw new LoupeError("missing-file", `No ${path.basename(file)} at ${file}. SAELens saves an SAE's weights there (SAE.save_model).`, file);
  }
  const index = readSafetensorsIndex(file);
  const D = cfg.d_in;
  const S = cfg.d_sae;
  const O = cfg.transcoder?.d_out ?? D;
  const read = (name: string, shape: readonly number[]): Float32Array => readChecked(index, name, shape, cfg);
  const W_enc = read("W_enc", [D, S]);
  const b_enc = read("b_enc", [S]);
  let W_dec = read("W_dec", [S, O]);
  const b_dec = read("b_dec", [O]);
  // SAELens's skip transcoders store W_skip [d_out, d_in] and add x @ W_skip.T.
  const W_skip = cfg.transcoder?.skip ? transpose(read("W_skip", [O, D]), O, D) : undefined;
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
      for (let s = 0; s < S; s++) for (let d = 0; d < O; d++) W_dec[s * O + d] *= c[s];
    }
  }
  return { W_enc, b_enc, W_dec, b_dec, threshold, W_skip };
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
  return checkFinite(readTensorF32(index, name), name, file, shape);
}

function checkFinite(data: Float32Array, name: string, file: string, shape: readonly number[] = []): Float32Array {
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
