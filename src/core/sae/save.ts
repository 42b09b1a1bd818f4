/**
 * Write an Sae as an SAELens 6.x folder (cfg.json + sae_weights.safetensors), so SAELens's
 * SAE.load_from_disk and Loupe's loadSae both read it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { writeFileSafely } from "../safe-fs";
import { isBlockHook } from "../model/hooks";
import { encodeSafetensors, type TensorToWrite } from "../model/safetensors";
import { SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, type SaeConfig } from "./config";
import type { Sae } from "./sae";

/**
 * SAELens reads cfg.json in the 6.x layout only when metadata.sae_lens_version is 6 or later;
 * without it, it would treat the file as flat and lose hook_name from metadata. This is the
 * layout's version, not a claim that SAELens wrote the file.
 */
const SAELENS_LAYOUT_VERSION = "6.0.0";

/** cfg.json contents in SAELens 6.x's layout. `extra` adds top-level keys (SAELens ignores unknown ones). */
export function toSaeLensConfig(cfg: SaeConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {
    d_in: cfg.d_in,
    d_sae: cfg.d_sae,
    dtype: "float32",
    device: "cpu",
    apply_b_dec_to_input: cfg.apply_b_dec_to_input,
    normalize_activations: cfg.normalize_activations,
    reshape_activations: isBlockHook(cfg.hook_name, "attn.hook_z") && cfg.hook_head_index === undefined ? "hook_z" : "none",
  };
  if (cfg.architecture === "topk") {
    out.k = cfg.k;
    out.rescale_acts_by_decoder_norm = cfg.rescale_acts_by_decoder_norm;
  }
  out.metadata = {
    model_name: cfg.model_name ?? null,
    hook_name: cfg.hook_name,
    hook_head_index: cfg.hook_head_index ?? null,
    prepend_bos: cfg.prepend_bos ?? false,
    context_size: cfg.context_size ?? null,
    sae_lens_version: SAELENS_LAYOUT_VERSION,
  };
  out.architecture = cfg.architecture;
  return { ...out, ...extra };
}

/** Save to `folder` (created if needed). Returns the two files written. */
export function saveSae(folder: string, sae: Sae, extra: Record<string, unknown> = {}): { cfgFile: string; weightsFile: string } {
  const { cfg, weights } = sae;
  if (cfg.normalize_activations === "expected_average_only_in") {
    // loadSae folds the factor in and records "none", so this only happens for hand-built configs.
    throw new LoupeError("bad-argument", `Cannot save an SAE with normalize_activations "expected_average_only_in": fold its scaling factor into the weights first.`);
  }
  const dir = path.resolve(folder);
  fs.mkdirSync(dir, { recursive: true });
  const D = cfg.d_in;
  const S = cfg.d_sae;
  const f32 = (data: Float32Array, shape: number[]): TensorToWrite => ({ dtype: "F32", shape, data });
  const tensors: Record<string, TensorToWrite> = {
    W_enc: f32(weights.W_enc, [D, S]),
    b_enc: f32(weights.b_enc, [S]),
    W_dec: f32(weights.W_dec, [S, D]),
    b_dec: f32(weights.b_dec, [D]),
  };
  if (weights.threshold) tensors.threshold = f32(weights.threshold, [S]);
  const weightsFile = path.join(dir, SAE_WEIGHTS_FILENAME);
  const cfgFile = path.join(dir, SAE_CFG_FILENAME);
  writeFileSafely(weightsFile, encodeSafetensors(tensors, { format: "pt" }));
  writeFileSafely(cfgFile, JSON.stringify(toSaeLensConfig(cfg, extra), null, 2) + "\n");
  return { cfgFile, weightsFile };
}
