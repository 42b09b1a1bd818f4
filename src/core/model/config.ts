import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";

/** What Loupe needs to know about a GPT-2-family checkpoint, with HF's names mapped to TransformerLens's. */
export interface ModelConfig {
  readonly architecture: "gpt2";
  readonly nLayers: number;
  readonly dModel: number;
  readonly nHeads: number;
  readonly dHead: number;
  readonly dMlp: number;
  readonly nCtx: number;
  readonly dVocab: number;
  readonly layerNormEps: number;
  readonly activation: "gelu_new" | "gelu" | "relu";
  readonly tiedEmbeddings: boolean;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
}

const ACTIVATIONS: Record<string, ModelConfig["activation"]> = {
  gelu_new: "gelu_new",
  gelu_pytorch_tanh: "gelu_new",
  gelu_fast: "gelu_new",
  gelu: "gelu",
  relu: "relu",
};

export function readModelConfig(folder: string): ModelConfig {
  const file = path.join(folder, "config.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
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

export function parseModelConfig(json: unknown, file = "config.json"): ModelConfig {
  if (typeof json !== "object" || json === null) throw new LoupeError("bad-file", `${file} must hold a JSON object.`, file);
  const c = json as Record<string, unknown>;
  const modelType = c.model_type;
  if (modelType !== "gpt2") {
    throw new LoupeError(
      "unsupported-architecture",
      `${file} describes a "${String(modelType)}" model; Loupe builds GPT-2-family models (model_type "gpt2"). Llama-family support is planned.`,
      file,
    );
  }
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new LoupeError("bad-file", `${file}: "${key}" must be a positive integer (found ${JSON.stringify(c[key])}).`, file);
    }
    return v;
  };
  for (const flag of ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"]) {
    if (c[flag] === true) throw new LoupeError("unsupported-architecture", `${file}: "${flag}": true is not supported yet.`, file);
  }
  if (c.scale_attn_weights === false) throw new LoupeError("unsupported-architecture", `${file}: "scale_attn_weights": false is not supported yet.`, file);
  const dModel = int("n_embd");
  const nHeads = int("n_head");
  if (dModel % nHeads !== 0) throw new LoupeError("bad-file", `${file}: n_embd (${dModel}) must be divisible by n_head (${nHeads}).`, file);
  const activationName = String(c.activation_function ?? "gelu_new");
  const activation = ACTIVATIONS[activationName];
  if (!activation) throw new LoupeError("unsupported-architecture", `${file}: activation_function "${activationName}" is not supported (gelu_new, gelu, relu).`, file);
  const eps = c.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== "number" || !(eps > 0)) throw new LoupeError("bad-file", `${file}: layer_norm_epsilon must be a positive number.`, file);
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
