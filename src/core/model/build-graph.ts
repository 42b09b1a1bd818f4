/** Picks the graph builder for a config's architecture, so HookedModel stays architecture-blind. */
import type { ModelConfig } from "./config";
import { buildGpt2Graph, buildGpt2LensGraph, type BuiltGraph, type GraphOptions } from "./gpt2-graph";
import { buildLlamaGraph, buildLlamaLensGraph } from "./llama-graph";
import type { SafetensorsIndex } from "./safetensors";

/** Bump when the Llama graph's layout changes, so graphs cached by an older build are not reused. */
const LLAMA_GRAPH_VERSION = "llama-v1";

export function buildModelGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): BuiltGraph {
  return cfg.architecture === "llama" ? buildLlamaGraph(cfg, weights, options) : buildGpt2Graph(cfg, weights, options);
}

export function buildLensGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): Uint8Array {
  return cfg.architecture === "llama" ? buildLlamaLensGraph(cfg, weights, options) : buildGpt2LensGraph(cfg, weights, options);
}

/** The name a built graph is cached under: GPT-2's names are unchanged, so existing caches stay valid. */
export function graphCacheName(cfg: ModelConfig, part: "model" | "lens"): string {
  return cfg.architecture === "llama" ? `${LLAMA_GRAPH_VERSION}:${part}` : part;
}
