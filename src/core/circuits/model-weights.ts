/**
 * The weights the frozen linear model needs, read from model.safetensors in one shape for every
 * architecture: the two norms of each block, the attention's value and output maps, the final
 * norm and the unembedding. GPT-2 stores Conv1D weights [in, out]; the Llama family stores Linear
 * weights [out, in]: both become x @ W with W [in, out] here.
 */
import { LoupeError } from "../errors";
import type { ModelConfig } from "../model/config";
import { openModelWeights } from "../model/model-weights";
import { readTensorF32, type SafetensorsIndex } from "../model/safetensors";
import { transpose } from "../sae/kernels";

export interface NormWeights {
  readonly kind: "layernorm" | "rmsnorm";
  readonly gamma: Float32Array;
  /** LayerNorm only. */
  readonly beta?: Float32Array;
  readonly eps: number;
}

export interface BlockWeights {
  readonly norm1: NormWeights;
  readonly norm2: NormWeights;
  /** [d_model, kv_heads * d_head]: v = norm1(x) @ W_V + b_V. */
  readonly W_V: Float32Array;
  readonly b_V?: Float32Array;
  /** [heads * d_head, d_model]: attn_out = z @ W_O + b_O. */
  readonly W_O: Float32Array;
  readonly b_O?: Float32Array;
}

export interface LinearModelWeights {
  readonly nLayers: number;
  readonly dModel: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly dHead: number;
  readonly dVocab: number;
  readonly blocks: readonly BlockWeights[];
  readonly finalNorm: NormWeights;
  /** [d_vocab, d_model]: logits = final @ W_U^T. */
  readonly W_U: Float32Array;
}

/** The weights from a model folder: model.safetensors, or its shards through model.safetensors.index.json. */
export function readLinearModelWeights(folder: string, cfg: ModelConfig): LinearModelWeights {
  const index = openModelWeights(folder);
  return cfg.architecture === "gpt2" ? readGpt2(index, cfg) : readLlama(index, cfg);
}

function reader(index: SafetensorsIndex, prefix: string) {
  const find = (name: string) => [`${prefix}${name}`, name].find((n) => index.tensors.has(n));
  const get = (name: string): Float32Array => {
    const found = find(name);
    if (!found) throw new LoupeError("bad-file", `${index.path} has no tensor "${prefix}${name}" (needed by the frozen attribution model).`, index.path);
    return readTensorF32(index, found);
  };
  return { get, has: (name: string) => find(name) !== undefined };
}

function readGpt2(index: SafetensorsIndex, cfg: Extract<ModelConfig, { architecture: "gpt2" }>): LinearModelWeights {
  const { get, has } = reader(index, "transformer.");
  const D = cfg.dModel;
  const norm = (name: string): NormWeights => ({ kind: "layernorm", gamma: get(`${name}.weight`), beta: get(`${name}.bias`), eps: cfg.layerNormEps });
  const blocks: BlockWeights[] = [];
  for (let L = 0; L < cfg.nLayers; L++) {
    const p = `h.${L}`;
    // c_attn packs q | k | v along its output columns.
    const qkv = get(`${p}.attn.c_attn.weight`);
    const W_V = new Float32Array(D * D);
    for (let i = 0; i < D; i++) W_V.set(qkv.subarray(i * 3 * D + 2 * D, i * 3 * D + 3 * D), i * D);
    blocks.push({
      norm1: norm(`${p}.ln_1`),
      norm2: norm(`${p}.ln_2`),
      W_V,
      b_V: get(`${p}.attn.c_attn.bias`).slice(2 * D, 3 * D),
      W_O: get(`${p}.attn.c_proj.weight`),
      b_O: get(`${p}.attn.c_proj.bias`),
    });
  }
  const untied = !cfg.tiedEmbeddings && has("lm_head.weight");
  return {
    nLayers: cfg.nLayers,
    dModel: D,
    nHeads: cfg.nHeads,
    nKvHeads: cfg.nHeads,
    dHead: cfg.dHead,
    dVocab: cfg.dVocab,
    blocks,
    finalNorm: norm("ln_f"),
    W_U: get(untied ? "lm_head.weight" : "wte.weight"),
  };
}

function readLlama(index: SafetensorsIndex, cfg: Extract<ModelConfig, { architecture: "llama" }>): LinearModelWeights {
  const { get, has } = reader(index, "model.");
  const { dModel: D, nHeads: H, nKvHeads: KV, dHead: Dh } = cfg;
  const norm = (name: string): NormWeights => ({ kind: "rmsnorm", gamma: get(`${name}.weight`), eps: cfg.rmsNormEps });
  const blocks: BlockWeights[] = [];
  for (let L = 0; L < cfg.nLayers; L++) {
    const p = `layers.${L}`;
    blocks.push({
      norm1: norm(`${p}.input_layernorm`),
      norm2: norm(`${p}.post_attention_layernorm`),
      W_V: transpose(get(`${p}.self_attn.v_proj.weight`), KV * Dh, D),
      b_V: cfg.qkvBias ? get(`${p}.self_attn.v_proj.bias`) : undefined,
      W_O: transpose(get(`${p}.self_attn.o_proj.weight`), D, H * Dh),
      b_O: cfg.outBias ? get(`${p}.self_attn.o_proj.bias`) : undefined,
    });
  }
  const untied = !cfg.tiedEmbeddings && has("lm_head.weight");
  return {
    nLayers: cfg.nLayers,
    dModel: D,
    nHeads: H,
    nKvHeads: KV,
    dHead: Dh,
    dVocab: cfg.dVocab,
    blocks,
    finalNorm: norm("norm"),
    W_U: get(untied ? "lm_head.weight" : "embed_tokens.weight"),
  };
}
