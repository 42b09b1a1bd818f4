import * as path from "node:path";
import { LoupeError } from "../errors";
import { readTextSafely } from "../safe-fs";

/** config.json files past this are refused before parsing (published ones are a few KB; id2label maps make some larger). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** What every architecture shares, with HF's names mapped to TransformerLens's. */
interface CommonConfig {
  readonly nLayers: number;
  readonly dModel: number;
  /** Query heads; every per-head hook (q, k, v, z, pattern) has this many heads. */
  readonly nHeads: number;
  readonly dHead: number;
  readonly dMlp: number;
  readonly nCtx: number;
  readonly dVocab: number;
  readonly tiedEmbeddings: boolean;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
}

/** A GPT-2-family checkpoint. */
export interface Gpt2Config extends CommonConfig {
  readonly architecture: "gpt2";
  readonly layerNormEps: number;
  readonly activation: "gelu_new" | "gelu" | "relu";
}

/** How rotary frequencies are stretched for long contexts (config.json's rope_scaling). */
export type RopeScaling =
  | { readonly kind: "none" }
  | { readonly kind: "linear"; readonly factor: number }
  | { readonly kind: "llama3"; readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalContext: number };

/** A Llama-family checkpoint (Llama, SmolLM, TinyLlama, Mistral, Qwen2): RMSNorm, rotary, SwiGLU, grouped-query attention. */
export interface LlamaConfig extends CommonConfig {
  readonly architecture: "llama";
  /** config.json's model_type ("llama", "mistral", "qwen2"), for messages and weight conventions. */
  readonly modelType: string;
  /** Key/value heads (grouped-query attention); nHeads is a multiple of it. */
  readonly nKvHeads: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  /** Bias on the q, k, v projections (Qwen2; Llama's attention_bias). */
  readonly qkvBias: boolean;
  /** Bias on the output projection (Llama's attention_bias; Qwen2 has none). */
  readonly outBias: boolean;
  /** Bias on gate, up and down projections (Llama's mlp_bias). */
  readonly mlpBias: boolean;
  /** Per-head RMSNorm of queries and keys before rotary (Qwen3, Gemma 3: q_norm and k_norm, gains [d_head]). */
  readonly qkNorm: boolean;
  /** RMSNorm gains stored as offsets from one (Gemma: x * (1 + w)); 0 for Llama's x * w. */
  readonly normGainOffset: 0 | 1;
  /**
   * Gemma's four norms per block: the attention and MLP outputs are normalised again before they
   * join the residual (post_attention_layernorm, post_feedforward_layernorm), and the MLP reads
   * pre_feedforward_layernorm. Without it, post_attention_layernorm is the MLP's input norm (Llama).
   */
  readonly postNorms: boolean;
  /** Token embeddings times this (Gemma: sqrt(hidden_size), rounded to the embedding's dtype by the builder). */
  readonly embedScale?: number;
  /** The gated MLP's activation: silu (SwiGLU) or tanh-approximated GELU (Gemma's GeGLU). */
  readonly mlpActivation: "silu" | "gelu_tanh";
  /** Multiplies attention scores: 1/sqrt(d_head), or Gemma's query_pre_attn_scalar^-0.5. */
  readonly attnScale: number;
  /**
   * Per layer, its sliding window (a query sees itself and the window - 1 tokens before it), or
   * undefined for global attention. Gemma 3 mixes the two; other Llama-family models have none.
   */
  readonly layerWindows: readonly (number | undefined)[];
  /** Rotary base of the sliding-window layers, unscaled (Gemma 3's rope_local_base_freq); global layers use ropeTheta and ropeScaling. */
  readonly ropeLocalTheta?: number;
  /** tanh soft-capping of the final logits (cap * tanh(logits / cap)), when config.json sets final_logit_softcapping. */
  readonly finalLogitSoftcap?: number;
  /** The same on attention scores before the mask (attn_logit_softcapping). */
  readonly attnLogitSoftcap?: number;
  /** Weight-name prefixes of the model class, tried in order before the bare name. */
  readonly weightPrefixes: readonly string[];
}

export type ModelConfig = Gpt2Config | LlamaConfig;

const ACTIVATIONS: Record<string, Gpt2Config["activation"]> = {
  gelu_new: "gelu_new",
  gelu_pytorch_tanh: "gelu_new",
  gelu_fast: "gelu_new",
  gelu: "gelu",
  relu: "relu",
};

export function readModelConfig(folder: string): ModelConfig {
  const file = path.join(folder, "config.json");
  let text: string | undefined;
  try {
    text = readTextSafely(file, { maxBytes: MAX_CONFIG_BYTES });
  } catch (error) {
    if (error instanceof LoupeError) throw error;
  }
  if (text === undefined) {
    throw new LoupeError("missing-file", `No config.json in ${folder}. Choose a Hugging Face model folder (config.json, model.safetensors, tokenizer.json).`, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new LoupeError("bad-file", `${file} is not valid JSON.`, file);
  }
  return parseModelConfig(json, file);
}

/** Architectures Loupe builds, by config.json's model_type, and by the class names in "architectures". */
const FAMILY_BY_MODEL_TYPE: Record<string, "gpt2" | "llama"> = {
  gpt2: "gpt2",
  llama: "llama",
  mistral: "llama",
  qwen2: "llama",
  qwen3: "llama",
  gemma3_text: "llama",
  gemma3: "llama",
};
const MODEL_TYPE_BY_CLASS: Record<string, string> = {
  GPT2LMHeadModel: "gpt2",
  GPT2Model: "gpt2",
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  Gemma3ForCausalLM: "gemma3_text",
  Gemma3ForConditionalGeneration: "gemma3",
};
export const SUPPORTED_ARCHITECTURES =
  'GPT-2 (model_type "gpt2") and the Llama family ("llama": Llama, SmolLM, TinyLlama; "mistral"; "qwen2"; "qwen3"; "gemma3_text", and the text tower of "gemma3")';

/**
 * Layers past this are refused: onnxruntime's session creation grows faster than linearly with the
 * graph (issue 22 measured 64 / 128 / 256 layers at 1.4 / 5.6 / 22 s, 1,024 over 300 s), and the
 * deepest published decoders have 126 (Llama 3.1 405B).
 */
export const MAX_LAYERS = 128;

/**
 * Bounds on what a config may ask Loupe to build, beyond each field's own limit (SIZE_LIMITS): a
 * 2 MB config.json can otherwise describe a graph that takes minutes to create. The memory limit
 * (memory-limit.ts) then bounds the weights, which grow with every other size.
 */
export function checkModelScale(cfg: ModelConfig, file: string): ModelConfig {
  if (cfg.nLayers > MAX_LAYERS) {
    throw new LoupeError("model-too-large", `${file}: ${cfg.nLayers} layers; Loupe builds models with up to ${MAX_LAYERS} (the graph of a deeper one takes minutes to create). Use the config.json published with the model.`, file);
  }
  return cfg;
}

export function parseModelConfig(json: unknown, file = "config.json"): ModelConfig {
  if (typeof json !== "object" || json === null) throw new LoupeError("bad-file", `${file} must hold a JSON object.`, file);
  const c = json as Record<string, unknown>;
  const classes = Array.isArray(c.architectures) ? c.architectures.filter((a): a is string => typeof a === "string") : [];
  const modelType = typeof c.model_type === "string" ? c.model_type : classes.map((a) => MODEL_TYPE_BY_CLASS[a]).find((t) => t !== undefined);
  const family = modelType === undefined ? undefined : FAMILY_BY_MODEL_TYPE[modelType];
  if (!family) {
    const named = c.model_type !== undefined ? (typeof c.model_type === "string" ? c.model_type : JSON.stringify(c.model_type)) : classes.length > 0 ? classes.join(", ") : "unnamed";
    throw new LoupeError(
      "unsupported-architecture",
      `${file} describes a "${named}" model; Loupe builds ${SUPPORTED_ARCHITECTURES}. Choose a model of one of these architectures.`,
      file,
    );
  }
  if (family === "gpt2") return checkModelScale(parseGpt2Config(c, file), file);
  if (modelType === "gemma3") return checkModelScale(parseGemma3Multimodal(c, file), file);
  return checkModelScale(parseLlamaConfig(c, modelType as string, file), file);
}

/**
 * A "gemma3" checkpoint (Gemma3ForConditionalGeneration) holds a vision tower and a text model;
 * Loupe runs the text model: its config under text_config, its weights under language_model.
 */
function parseGemma3Multimodal(c: Record<string, unknown>, file: string): LlamaConfig {
  if (!isObject(c.text_config)) {
    throw new LoupeError("unsupported-architecture", `${file} is a Gemma 3 multimodal config with no "text_config"; Loupe runs Gemma 3's text model. Choose a Gemma 3 text checkpoint (model_type "gemma3_text").`, file);
  }
  const text = parseLlamaConfig({ ...c.text_config, tie_word_embeddings: c.tie_word_embeddings ?? c.text_config.tie_word_embeddings }, "gemma3_text", file);
  // Older files name the text model's weights language_model.model.*, transformers 4.52+ model.language_model.*.
  return { ...text, weightPrefixes: ["language_model.model.", "model.language_model.", "language_model."] };
}

/**
 * Sizes past these are not a model Loupe can build (the graphs hold a context² causal mask and
 * width-sized constants such as rotary tables, made before the weights are checked): refuse them
 * instead of allocating or looping for minutes. GPT-2 names, then Llama-family names.
 */
const SIZE_LIMITS: Record<string, number> = {
  n_embd: 65536, n_head: 65536, n_layer: 1024, n_inner: 262144, n_positions: 16384, vocab_size: 1 << 22,
  hidden_size: 65536, num_attention_heads: 65536, num_key_value_heads: 65536, head_dim: 4096, intermediate_size: 262144,
  num_hidden_layers: 1024, max_position_embeddings: 1 << 20, sliding_window: 1 << 20, sliding_window_pattern: 1024,
};

/** config.json's `key` as a positive integer within Loupe's size limits (or `fallback` when absent). */
function positiveInt(c: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new LoupeError("bad-file", `${file}: "${key}" must be a positive integer (found ${JSON.stringify(c[key])}).`, file);
  }
  if (v > (SIZE_LIMITS[key] ?? Infinity)) throw new LoupeError("bad-file", `${file}: "${key}" is ${v}; Loupe builds models with ${key} up to ${SIZE_LIMITS[key]}.`, file);
  return v;
}

function parseGpt2Config(c: Record<string, unknown>, file: string): Gpt2Config {
  const int = (key: string, fallback?: number): number => positiveInt(c, key, file, fallback);
  for (const flag of ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"]) {
    if (c[flag] === true) throw new LoupeError("unsupported-architecture", `${file}: "${flag}": true is not supported yet.`, file);
  }
  if (c.scale_attn_weights === false) throw new LoupeError("unsupported-architecture", `${file}: "scale_attn_weights": false is not supported yet.`, file);
  const dModel = int("n_embd");
  const nHeads = int("n_head");
  if (dModel % nHeads !== 0) throw new LoupeError("bad-file", `${file}: n_embd (${dModel}) must be divisible by n_head (${nHeads}).`, file);
  // JSON.stringify, not String: a value like {"toString": 1} must not throw a TypeError.
  const activationName = typeof c.activation_function === "string" ? c.activation_function : c.activation_function == null ? "gelu_new" : JSON.stringify(c.activation_function);
  const activation = ACTIVATIONS[activationName];
  if (!activation) throw new LoupeError("unsupported-architecture", `${file}: activation_function "${activationName}" is not supported (gelu_new, gelu, relu).`, file);
  const eps = c.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== "number" || !(eps > 0 && eps < 1)) throw new LoupeError("bad-file", `${file}: layer_norm_epsilon must be a positive number below 1.`, file);
  const optionalId = (key: string): number | undefined => (typeof c[key] === "number" ? (c[key] as number) : undefined);
  return {
    architecture: "gpt2",
    nLayers: int("n_layer"),
    dModel,
    nHeads,
    dHead: dModel / nHeads,
    dMlp: c.n_inner == null ? 4 * dModel : int("n_inner"),
    nCtx: int("n_positions", typeof c.n_ctx === "number" ? c.n_ctx : undefined),
    dVocab: int("vocab_size"),
    layerNormEps: eps,
    activation,
    tiedEmbeddings: c.tie_word_embeddings !== false,
    bosTokenId: optionalId("bos_token_id"),
    eosTokenId: optionalId("eos_token_id"),
  };
}

/** Activations of the gated MLP (act(gate(x)) * up(x)) that Llama-family configs name: SwiGLU, Gemma's GeGLU. */
const GATED_ACTIVATIONS: Record<string, LlamaConfig["mlpActivation"]> = { silu: "silu", swish: "silu", gelu_pytorch_tanh: "gelu_tanh" };

function parseLlamaConfig(c: Record<string, unknown>, modelType: string, file: string): LlamaConfig {
  const int = (key: string, fallback?: number): number => positiveInt(c, key, file, fallback);
  const positive = (key: string, value: unknown): number => {
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
      throw new LoupeError("bad-file", `${file}: "${key}" must be a positive number (found ${JSON.stringify(value)}).`, file);
    }
    return value;
  };
  const unsupported = (what: string): never => {
    throw new LoupeError("unsupported-architecture", `${file}: ${what} is not supported for model_type "${modelType}".`, file);
  };

  const dModel = int("hidden_size");
  const nHeads = int("num_attention_heads");
  const nKvHeads = int("num_key_value_heads", nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new LoupeError("bad-file", `${file}: num_attention_heads (${nHeads}) must be a multiple of num_key_value_heads (${nKvHeads}).`, file);
  }
  // Mistral and newer Llama configs may give head_dim apart from hidden_size / heads.
  if (c.head_dim == null && dModel % nHeads !== 0) {
    throw new LoupeError("bad-file", `${file}: hidden_size (${dModel}) must be divisible by num_attention_heads (${nHeads}), or head_dim must be given.`, file);
  }
  const gemma = modelType === "gemma3_text";
  // Gemma3TextConfig's head_dim defaults to 256, whatever hidden_size / heads is.
  const dHead = c.head_dim == null ? (gemma ? 256 : dModel / nHeads) : int("head_dim");
  if (dHead % 2 !== 0) throw new LoupeError("bad-file", `${file}: head_dim ${dHead} must be even for rotary embeddings.`, file);

  const actKey = gemma ? "hidden_activation" : "hidden_act";
  const actValue = gemma ? (c.hidden_activation ?? c.hidden_act ?? "gelu_pytorch_tanh") : (c.hidden_act ?? "silu");
  const act = typeof actValue === "string" ? actValue : JSON.stringify(actValue);
  const mlpActivation = GATED_ACTIVATIONS[act];
  if (!mlpActivation) unsupported(`${actKey} "${act}" (Loupe builds gated MLPs with "silu" or "gelu_pytorch_tanh")`);
  const partial = c.partial_rotary_factor;
  if (partial != null && partial !== 1) unsupported(`partial_rotary_factor ${JSON.stringify(partial)} (only full rotary)`);

  // transformers 5 moves rope settings into rope_parameters (for Gemma 3, one entry per attention
  // type); older files keep rope_theta, rope_scaling and rope_local_base_freq.
  const ropeParameters = isObject(c.rope_parameters) ? c.rope_parameters : undefined;
  const globalRope = ropeParameters && isObject(ropeParameters.full_attention) ? ropeParameters.full_attention : ropeParameters;
  const localRope = ropeParameters && isObject(ropeParameters.sliding_attention) ? ropeParameters.sliding_attention : undefined;
  const ropeTheta = positive("rope_theta", globalRope?.rope_theta ?? c.rope_theta ?? (gemma ? 1_000_000 : 10000));
  const ropeScaling = parseRopeScaling(globalRope ?? c.rope_scaling, file);

  let nCtx = int("max_position_embeddings");
  let layerWindows: (number | undefined)[] = [];
  const nLayers = int("num_hidden_layers");
  if (gemma) {
    layerWindows = gemmaLayerTypes(c, nLayers, file).map((type) => (type === "sliding_attention" ? int("sliding_window", 4096) : undefined));
  } else {
    // A sliding window on every layer is exact only within it: cap the context there rather than build a banded mask.
    const slidingOn = modelType === "qwen2" || modelType === "qwen3" ? c.use_sliding_window === true : c.sliding_window != null;
    if (slidingOn) {
      if ((modelType === "qwen2" || modelType === "qwen3") && typeof c.max_window_layers === "number" && c.max_window_layers < nLayers) {
        unsupported("use_sliding_window with max_window_layers below num_hidden_layers (a window on some layers only)");
      }
      nCtx = Math.min(nCtx, int("sliding_window"));
    }
  }
  const optionalPositive = (key: string): number | undefined => (c[key] == null ? undefined : positive(key, c[key]));

  const attentionBias = c.attention_bias === true;
  const firstId = (key: string): number | undefined => {
    const v = c[key];
    const id = Array.isArray(v) ? v[0] : v;
    return typeof id === "number" && Number.isInteger(id) ? id : undefined;
  };
  return {
    architecture: "llama",
    modelType,
    nLayers,
    dModel,
    nHeads,
    nKvHeads,
    dHead,
    dMlp: int("intermediate_size"),
    nCtx,
    dVocab: int("vocab_size"),
    rmsNormEps: positive("rms_norm_eps", c.rms_norm_eps ?? 1e-6),
    ropeTheta,
    ropeScaling,
    // Qwen2 always has q/k/v biases and none on o_proj; Llama's attention_bias puts one on all four.
    qkvBias: modelType === "qwen2" || attentionBias,
    outBias: modelType !== "qwen2" && attentionBias,
    mlpBias: c.mlp_bias === true,
    qkNorm: gemma || modelType === "qwen3",
    normGainOffset: gemma ? 1 : 0,
    postNorms: gemma,
    embedScale: gemma ? Math.sqrt(dModel) : undefined,
    mlpActivation,
    attnScale: 1 / Math.sqrt(gemma ? positive("query_pre_attn_scalar", c.query_pre_attn_scalar ?? 256) : dHead),
    layerWindows: layerWindows.length > 0 ? layerWindows : new Array<undefined>(nLayers).fill(undefined),
    ropeLocalTheta: gemma ? positive("rope_local_base_freq", localRope?.rope_theta ?? c.rope_local_base_freq ?? 10000) : undefined,
    finalLogitSoftcap: optionalPositive("final_logit_softcapping"),
    attnLogitSoftcap: optionalPositive("attn_logit_softcapping"),
    weightPrefixes: ["model."],
    // Gemma 3 ties its embeddings by default; LlamaConfig, MistralConfig and Qwen2/3Config do not.
    tiedEmbeddings: gemma ? c.tie_word_embeddings !== false : c.tie_word_embeddings === true,
    bosTokenId: firstId("bos_token_id"),
    eosTokenId: firstId("eos_token_id"),
  };
}

/** Gemma 3's attention type per layer: layer_types, else every sliding_window_pattern-th layer global (default 6). */
function gemmaLayerTypes(c: Record<string, unknown>, nLayers: number, file: string): string[] {
  const types = new Set(["sliding_attention", "full_attention"]);
  if (c.layer_types != null) {
    const t = c.layer_types;
    if (!Array.isArray(t) || t.length !== nLayers || !t.every((x) => typeof x === "string" && types.has(x))) {
      throw new LoupeError("bad-file", `${file}: "layer_types" must list "sliding_attention" or "full_attention" for each of the ${nLayers} layers.`, file);
    }
    return t as string[];
  }
  const pattern = positiveInt(c, "sliding_window_pattern", file, 6);
  return Array.from({ length: nLayers }, (_, i) => ((i + 1) % pattern === 0 ? "full_attention" : "sliding_attention"));
}

const SUPPORTED_ROPE = 'rope_scaling null, "default", "linear", "llama3" or "dynamic"';

function parseRopeScaling(raw: unknown, file: string): RopeScaling {
  if (raw == null) return { kind: "none" };
  if (!isObject(raw)) throw new LoupeError("bad-file", `${file}: rope_scaling must be an object or null.`, file);
  const type = raw.rope_type ?? raw.type ?? "default";
  const num = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== "number" || !(v > 0)) throw new LoupeError("bad-file", `${file}: rope_scaling.${key} must be a positive number (found ${JSON.stringify(raw[key])}).`, file);
    return v;
  };
  switch (type) {
    case "default":
      return { kind: "none" };
    // Dynamic NTK scaling changes frequencies only past max_position_embeddings, where Loupe's
    // context ends anyway: inside it, rotary is the default.
    case "dynamic":
      return { kind: "none" };
    case "linear":
      return { kind: "linear", factor: num("factor") };
    case "llama3": {
      const lowFreqFactor = num("low_freq_factor");
      const highFreqFactor = num("high_freq_factor");
      if (!(highFreqFactor > lowFreqFactor)) throw new LoupeError("bad-file", `${file}: rope_scaling.high_freq_factor must exceed low_freq_factor.`, file);
      return { kind: "llama3", factor: num("factor"), lowFreqFactor, highFreqFactor, originalContext: num("original_max_position_embeddings") };
    }
    default:
      throw new LoupeError("unsupported-architecture", `${file}: rope_scaling type ${JSON.stringify(type)} is not supported (Loupe reads ${SUPPORTED_ROPE}).`, file);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
