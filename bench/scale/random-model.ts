/**
 * Random-weight models of the shapes users run, written as a Hugging Face folder (config.json,
 * model.safetensors in float32, tokenizer.json) without PyTorch: a test fixture's byte-level BPE
 * tokenizer with its vocabulary padded to the model's size, so every id decodes and `encode`
 * works on any text.
 *
 *   writeRandomModel(folder, SHAPES["smollm2-135m"])
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeSafetensors, type TensorToWrite } from "../../src/core/model/safetensors";

const FIXTURES = path.join(__dirname, "..", "..", "test", "fixtures");

export interface RandomShape {
  readonly architecture: "gpt2" | "llama";
  readonly layers: number;
  readonly dModel: number;
  readonly heads: number;
  /** Key/value heads (Llama); GPT-2 has one per query head. */
  readonly kvHeads?: number;
  readonly dMlp: number;
  readonly vocab: number;
  readonly ctx: number;
}

/** SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json) and GPT-2 small (openai-community/gpt2). */
export const SHAPES = {
  "smollm2-135m": { architecture: "llama", layers: 30, dModel: 576, heads: 9, kvHeads: 3, dMlp: 1536, vocab: 49152, ctx: 8192 },
  "gpt2-small": { architecture: "gpt2", layers: 12, dModel: 768, heads: 12, dMlp: 3072, vocab: 50257, ctx: 1024 },
} as const satisfies Record<string, RandomShape>;

/** Writes the folder; returns the number of parameters. */
export function writeRandomModel(folder: string, shape: RandomShape, seed = 5): number {
  fs.mkdirSync(folder, { recursive: true });
  const random = normal(seed);
  const tensors: Record<string, TensorToWrite> = {};
  let parameters = 0;
  const add = (name: string, dims: number[], fill: "random" | "ones" | "zeros" = "random") => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (fill === "ones") data.fill(1);
    else if (fill === "random") for (let i = 0; i < data.length; i++) data[i] = 0.02 * random();
    tensors[name] = { dtype: "F32", shape: dims, data };
    parameters += data.length;
  };
  const { layers, dModel: D, heads: H, dMlp: M, vocab: V } = shape;
  const Dh = D / H;
  if (shape.architecture === "gpt2") {
    add("transformer.wte.weight", [V, D]);
    add("transformer.wpe.weight", [shape.ctx, D]);
    for (let L = 0; L < layers; L++) {
      const p = `transformer.h.${L}`;
      for (const ln of ["ln_1", "ln_2"]) {
        add(`${p}.${ln}.weight`, [D], "ones");
        add(`${p}.${ln}.bias`, [D], "zeros");
      }
      add(`${p}.attn.c_attn.weight`, [D, 3 * D]);
      add(`${p}.attn.c_attn.bias`, [3 * D], "zeros");
      add(`${p}.attn.c_proj.weight`, [D, D]);
      add(`${p}.attn.c_proj.bias`, [D], "zeros");
      add(`${p}.mlp.c_fc.weight`, [D, M]);
      add(`${p}.mlp.c_fc.bias`, [M], "zeros");
      add(`${p}.mlp.c_proj.weight`, [M, D]);
      add(`${p}.mlp.c_proj.bias`, [D], "zeros");
    }
    add("transformer.ln_f.weight", [D], "ones");
    add("transformer.ln_f.bias", [D], "zeros");
  } else {
    const KV = shape.kvHeads ?? H;
    add("model.embed_tokens.weight", [V, D]);
    for (let L = 0; L < layers; L++) {
      const p = `model.layers.${L}`;
      add(`${p}.input_layernorm.weight`, [D], "ones");
      add(`${p}.post_attention_layernorm.weight`, [D], "ones");
      add(`${p}.self_attn.q_proj.weight`, [H * Dh, D]);
      add(`${p}.self_attn.k_proj.weight`, [KV * Dh, D]);
      add(`${p}.self_attn.v_proj.weight`, [KV * Dh, D]);
      add(`${p}.self_attn.o_proj.weight`, [D, H * Dh]);
      add(`${p}.mlp.gate_proj.weight`, [M, D]);
      add(`${p}.mlp.up_proj.weight`, [M, D]);
      add(`${p}.mlp.down_proj.weight`, [D, M]);
    }
    add("model.norm.weight", [D], "ones");
  }
  fs.writeFileSync(path.join(folder, "model.safetensors"), encodeSafetensors(tensors, { format: "pt" }));
  const tokenizerSource = shape.architecture === "gpt2" ? "tiny-gpt2" : "tiny-llama";
  const tokenizer = paddedTokenizer(path.join(FIXTURES, tokenizerSource, "tokenizer.json"), V);
  fs.writeFileSync(path.join(folder, "tokenizer.json"), JSON.stringify(tokenizer.json));
  fs.writeFileSync(path.join(folder, "config.json"), JSON.stringify(config(shape, tokenizer.eos), null, 2));
  return parameters;
}

function config(shape: RandomShape, eos: number): Record<string, unknown> {
  if (shape.architecture === "gpt2") {
    return {
      model_type: "gpt2", architectures: ["GPT2LMHeadModel"], activation_function: "gelu_new", layer_norm_epsilon: 1e-5, n_inner: shape.dMlp,
      tie_word_embeddings: true, vocab_size: shape.vocab, n_positions: shape.ctx, n_embd: shape.dModel, n_layer: shape.layers, n_head: shape.heads,
      bos_token_id: eos, eos_token_id: eos,
    };
  }
  return {
    model_type: "llama", architectures: ["LlamaForCausalLM"], vocab_size: shape.vocab, hidden_size: shape.dModel, intermediate_size: shape.dMlp,
    num_hidden_layers: shape.layers, num_attention_heads: shape.heads, num_key_value_heads: shape.kvHeads ?? shape.heads, head_dim: shape.dModel / shape.heads,
    max_position_embeddings: shape.ctx, rms_norm_eps: 1e-5, rope_theta: 100000.0, rope_scaling: null, hidden_act: "silu", tie_word_embeddings: true,
    bos_token_id: 1, eos_token_id: 2,
  };
}

/** The fixture's tokenizer with placeholder tokens appended until it has `vocab` ids (its added tokens keep theirs). */
function paddedTokenizer(file: string, vocab: number): { json: Record<string, unknown>; eos: number } {
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as { model: { vocab: Record<string, number> }; added_tokens?: Array<{ id: number; content: string }> };
  const used = new Set<number>([...Object.values(json.model.vocab), ...(json.added_tokens ?? []).map((t) => t.id)]);
  if (Math.max(...used) >= vocab) throw new Error(`${file} has more tokens than a vocabulary of ${vocab}`);
  for (let id = 0; id < vocab; id++) if (!used.has(id)) json.model.vocab[`<pad_${id}>`] = id;
  const eos = (json.added_tokens ?? []).find((t) => /endoftext|<\/s>/.test(t.content))?.id ?? 0;
  return { json, eos };
}

/** Standard normal samples from a seeded generator (Box-Muller over a 32-bit LCG): same weights every run. */
function normal(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}
