/** Picks the graph builder for a config's architecture, so HookedModel stays architecture-blind. */
import type { ModelConfig } from "./config";
import { buildGpt2Graph, buildGpt2LensGraph, type BuiltGraph, type GraphOptions } from "./gpt2-graph";
import { buildLlamaGraph, buildLlamaLensGraph } from "./llama-graph";
import type { SafetensorsIndex } from "./safetensors";

export function buildModelGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): BuiltGraph {
  return cfg.architecture === "llama" ? buildLlamaGraph(cfg, weights, options) : buildGpt2Graph(cfg, weights, options);
}

export function buildLensGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): Uint8Array {
  return cfg.architecture === "llama" ? buildLlamaLensGraph(cfg, weights, options) : buildGpt2LensGraph(cfg, weights, options);
}
