/**
 * SAELens cfg.json, in both layouts SAELens has written:
 * - before 6.0, one flat object: d_in, d_sae, hook_name (older still: hook_point), hook_layer,
 *   activation_fn_str ("relu" | "topk") with activation_fn_kwargs {k}, apply_b_dec_to_input,
 *   normalize_activations (a string, or a boolean in the oldest files);
 * - from 6.0, `architecture` and the maths (d_in, d_sae, k, apply_b_dec_to_input,
 *   normalize_activations, reshape_activations) on top, and what ties the SAE to a model
 *   (model_name, hook_name, hook_head_index, prepend_bos, context_size, sae_lens_version) under
 *   `metadata`.
 * Both parse to one SaeConfig with SAELens's names.
 */
import { LoupeError } from "../errors";
import { MAX_WORKSPACE_JSON_BYTES, readTextSafely } from "../safe-fs";
import { isBlockHook, layerOf } from "../model/hooks";
import type { ModelProcessing } from "./releases/registry";

export const SAE_CFG_FILENAME = "cfg.json";
export const SAE_WEIGHTS_FILENAME = "sae_weights.safetensors";

export const SAE_ARCHITECTURES = ["standard", "topk", "jumprelu"] as const;
export type SaeArchitecture = (typeof SAE_ARCHITECTURES)[number];

/**
 * SAELens's transcoder architectures: the activation they use, and whether W_skip (an affine skip
 * from input to output) is part of them. A transcoder reads hook_name and writes hook_name_out.
 */
const TRANSCODER_ARCHITECTURES: Readonly<Record<string, { readonly activation: SaeArchitecture; readonly skip: boolean }>> = {
  transcoder: { activation: "standard", skip: false },
  skip_transcoder: { activation: "standard", skip: true },
  jumprelu_transcoder: { activation: "jumprelu", skip: false },
  jumprelu_skip_transcoder: { activation: "jumprelu", skip: true },
};

/**
 * How activations are scaled before encoding (SAELens's names):
 * - "none";
 * - "expected_average_only_in": one constant factor (chosen in training so that the mean norm is
 *   sqrt(d_in)); SAELens keeps it outside cfg.json, so it has to be given at load, where it is
 *   folded into the weights;
 * - "constant_norm_rescale": every token scaled to norm sqrt(d_in), and the reconstruction back;
 * - "layer_norm": every token centred and divided by its (unbiased) std, and the reconstruction back.
 */
export const NORMALIZE_ACTIVATIONS = ["none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"] as const;
export type NormalizeActivations = (typeof NORMALIZE_ACTIVATIONS)[number];

export interface SaeConfig {
  readonly architecture: SaeArchitecture;
  readonly d_in: number;
  readonly d_sae: number;
  readonly hook_name: string;
  /** Layer of hook_name (pre-6.0 files state it; otherwise read from the name). */
  readonly hook_layer?: number;
  /** SAEs on one attention head (hook_z etc.) read only that head's d_head values. */
  readonly hook_head_index?: number;
  /** TopK only: active latents per token. */
  readonly k?: number;
  /** TopK only: rank latents by pre-activation times decoder norm (SAELens's rescale_acts_by_decoder_norm). */
  readonly rescale_acts_by_decoder_norm: boolean;
  readonly apply_b_dec_to_input: boolean;
  readonly normalize_activations: NormalizeActivations;
  /** Old SAEs multiplied feature acts by a learnt per-latent `scaling_factor` tensor before decoding. */
  readonly finetuning_scaling_factor: boolean;
  readonly dtype: string;
  readonly model_name?: string;
  readonly prepend_bos?: boolean;
  readonly context_size?: number;
  /** "6.x" for the metadata layout; undefined for pre-6.0 files. */
  readonly sae_lens_version?: string;
  /**
   * The TransformerLens weight processing of the model the SAE was trained on (SAELens's
   * model_from_pretrained_kwargs, or the release's); undefined: none. Loupe maps activations to match.
   */
  readonly processing?: ModelProcessing;
  /** Neuronpedia's {model}/{source} for this SAE (SAELens's neuronpedia_id), when it is hosted there. */
  readonly neuronpedia_id?: string;
  /**
   * Transcoders only: the hook the decoder writes (SAELens's metadata.hook_name_out), its width
   * d_out, and whether the weights hold an affine skip W_skip added to the output.
   */
  readonly transcoder?: { readonly hook_name_out?: string; readonly d_out: number; readonly skip: boolean };
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function readSaeConfig(file: string): SaeConfig {
  let text: string | undefined;
  try {
    text = readTextSafely(file, { maxBytes: MAX_WORKSPACE_JSON_BYTES });
  } catch (error) {
    if (error instanceof LoupeError) throw error;
  }
  if (text === undefined) {
    throw new LoupeError("missing-file", `No ${SAE_CFG_FILENAME} at ${file}. An SAELens SAE folder holds cfg.json and sae_weights.safetensors (SAE.save_model).`, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new LoupeError("bad-file", `${file} is not valid JSON (${(error as Error).message}).`, file);
  }
  return parseSaeConfig(json, file);
}

/** Parse either layout. `file` names the config in every error. */
export function parseSaeConfig(json: unknown, file = SAE_CFG_FILENAME): SaeConfig {
  if (!isObject(json)) throw new LoupeError("bad-file", `${file} must hold a JSON object.`, file);
  const meta = isObject(json.metadata) ? json.metadata : isObject(json.meta) ? json.meta : {};
  // v6 keeps model facts under metadata; a flat file has them on top. Prefer metadata, fall back.
  const field = (key: string): unknown => (meta[key] !== undefined && meta[key] !== null ? meta[key] : json[key]);
  const fail = (why: string, code: "bad-file" | "unsupported-architecture" = "bad-file"): never => {
    throw new LoupeError(code, `${file}: ${why}`, file);
  };

  const positiveInt = (key: string, value: unknown): number => {
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) fail(`${key} must be a positive integer (found ${JSON.stringify(value)}).`);
    return value as number;
  };
  const optionalInt = (key: string, value: unknown): number | undefined => {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) fail(`${key} must be a non-negative integer or null (found ${JSON.stringify(value)}).`);
    return value as number;
  };
  const bool = (key: string, value: unknown, fallback: boolean): boolean => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "boolean") fail(`${key} must be true or false (found ${JSON.stringify(value)}).`);
    return value as boolean;
  };

  const d_in = positiveInt("d_in", json.d_in);
  const d_sae = positiveInt("d_sae", json.d_sae);

  const hook = field("hook_name") ?? field("hook_point");
  if (typeof hook !== "string" || hook.length === 0) {
    fail(`no hook_name (looked under "metadata" and at the top level). Loupe attaches an SAE where its hook_name says, e.g. "blocks.0.hook_resid_post".`);
  }
  const hook_name = hook as string;

  const transcoderArchitecture = typeof json.architecture === "string" ? TRANSCODER_ARCHITECTURES[json.architecture] : undefined;
  const architecture = transcoderArchitecture?.activation ?? parseArchitecture(json, fail);
  let k: number | undefined;
  if (architecture === "topk") {
    const kwargs = isObject(json.activation_fn_kwargs) ? json.activation_fn_kwargs : {};
    const rawK = json.k ?? kwargs.k;
    if (rawK === undefined || rawK === null) fail(`a TopK SAE needs k (top level in SAELens 6, activation_fn_kwargs.k before).`);
    // SAELens allows a float k for BatchTopK; a TopK SAE keeps a whole number of latents.
    if (typeof rawK !== "number" || !Number.isInteger(rawK) || rawK <= 0) fail(`k must be a positive integer (found ${JSON.stringify(rawK)}).`);
    k = rawK as number;
    if (k > d_sae) fail(`k is ${k} but d_sae is only ${d_sae}.`);
  }

  const normalize_activations = parseNormalize(json.normalize_activations, fail);
  const reshape = json.reshape_activations;
  if (reshape !== undefined && reshape !== null && reshape !== "none" && reshape !== "hook_z") {
    fail(`reshape_activations ${JSON.stringify(reshape)} is not supported (Loupe reads "none" and "hook_z").`);
  }
  if (reshape === "hook_z" && !isBlockHook(hook_name, "attn.hook_z")) fail(`reshape_activations is "hook_z" but hook_name is ${hook_name}.`);

  const version = field("sae_lens_version");
  let transcoder: SaeConfig["transcoder"];
  if (transcoderArchitecture) {
    // SAELens refuses apply_b_dec_to_input for transcoders: b_dec has the output's width.
    if (json.apply_b_dec_to_input === true) fail(`apply_b_dec_to_input is true, which a ${json.architecture as string} cannot have (b_dec is the output's bias).`);
    if (normalize_activations !== "none") fail(`normalize_activations is "${normalize_activations}"; Loupe reads transcoders without input normalisation only.`);
    const hookOut = field("hook_name_out");
    transcoder = {
      hook_name_out: typeof hookOut === "string" && hookOut.length > 0 ? hookOut : undefined,
      d_out: json.d_out === undefined || json.d_out === null ? d_in : positiveInt("d_out", json.d_out),
      skip: transcoderArchitecture.skip,
    };
  }
  return {
    architecture,
    d_in,
    d_sae,
    hook_name,
    hook_layer: optionalInt("hook_layer", field("hook_layer") ?? field("hook_point_layer")) ?? layerOf(hook_name),
    hook_head_index: optionalInt("hook_head_index", field("hook_head_index") ?? field("hook_point_head_index")),
    k,
    rescale_acts_by_decoder_norm: architecture === "topk" && bool("rescale_acts_by_decoder_norm", json.rescale_acts_by_decoder_norm, false),
    apply_b_dec_to_input: !transcoder && bool("apply_b_dec_to_input", json.apply_b_dec_to_input, true),
    normalize_activations,
    finetuning_scaling_factor: bool("finetuning_scaling_factor", json.finetuning_scaling_factor, false),
    dtype: typeof json.dtype === "string" ? json.dtype : "float32",
    model_name: typeof field("model_name") === "string" ? (field("model_name") as string) : undefined,
    prepend_bos: typeof field("prepend_bos") === "boolean" ? (field("prepend_bos") as boolean) : undefined,
    context_size: typeof field("context_size") === "number" ? (field("context_size") as number) : undefined,
    sae_lens_version: typeof version === "string" ? version : undefined,
    processing: parseProcessing(field("model_from_pretrained_kwargs"), fail),
    neuronpedia_id: typeof field("neuronpedia_id") === "string" ? (field("neuronpedia_id") as string) : undefined,
    transcoder,
  };
}

/**
 * SAELens's model_from_pretrained_kwargs: the kwargs SAELens passes over
 * HookedTransformer.from_pretrained_no_processing, so a flag it does not set is off. Absent:
 * undefined (the release's registry entry may say).
 */
function parseProcessing(value: unknown, fail: (why: string) => never): ModelProcessing | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) return fail(`model_from_pretrained_kwargs must be an object (found ${JSON.stringify(value)}).`);
  const flag = (key: string): boolean => {
    const v = value[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== "boolean") fail(`model_from_pretrained_kwargs.${key} must be true or false (found ${JSON.stringify(v)}).`);
    return v as boolean;
  };
  return { fold_ln: flag("fold_ln"), center_writing_weights: flag("center_writing_weights"), center_unembed: flag("center_unembed") };
}

function parseArchitecture(json: Json, fail: (why: string, code?: "bad-file" | "unsupported-architecture") => never): SaeArchitecture {
  const activation = json.activation_fn_str ?? json.activation_fn;
  const declared = json.architecture;
  if (declared !== undefined && typeof declared !== "string") fail(`architecture must be a string (found ${JSON.stringify(declared)}).`);
  // Pre-6.0 TopK SAEs say architecture "standard" (or nothing) with activation_fn_str "topk".
  if ((declared === undefined || declared === "standard") && activation === "topk") return "topk";
  const architecture = (declared ?? "standard") as string;
  if (!(SAE_ARCHITECTURES as readonly string[]).includes(architecture)) {
    fail(
      `architecture "${architecture}" is not supported. Loupe reads SAELens's standard (ReLU), topk and jumprelu SAEs and its ${Object.keys(TRANSCODER_ARCHITECTURES).join(", ")}` +
        (architecture === "batchtopk" ? "; SAELens saves a trained BatchTopK SAE for inference as jumprelu, so load that export." : "."),
      "unsupported-architecture",
    );
  }
  if (architecture === "standard" && activation !== undefined && activation !== null && activation !== "relu") {
    fail(`activation_fn_str ${JSON.stringify(activation)} is not supported for a standard SAE (Loupe reads "relu" and "topk").`, "unsupported-architecture");
  }
  return architecture as SaeArchitecture;
}

function parseNormalize(value: unknown, fail: (why: string) => never): NormalizeActivations {
  if (value === undefined || value === null || value === false) return "none";
  // The oldest configs had a boolean: true meant the constant factor of "expected_average_only_in".
  if (value === true) return "expected_average_only_in";
  if (typeof value === "string" && (NORMALIZE_ACTIVATIONS as readonly string[]).includes(value)) return value as NormalizeActivations;
  return fail(`normalize_activations ${JSON.stringify(value)} is not supported (Loupe reads ${NORMALIZE_ACTIVATIONS.map((n) => `"${n}"`).join(", ")}).`);
}
