/** Picks the graph builder for a config's architecture, so HookedModel stays architecture-blind. */
import type { ModelConfig } from "./config";
import { buildGpt2Graph, buildGpt2LensGraph } from "./gpt2-graph";
import type { BuiltGraph, GraphOptions } from "./graph-options";
import { buildLlamaGraph, buildLlamaLensGraph } from "./llama-graph";
import type { SafetensorsIndex } from "./safetensors";

export function buildModelGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): BuiltGraph {
  return cfg.architecture === "llama" ? buildLlamaGraph(cfg, weights, options) : buildGpt2Graph(cfg, weights, options);
}

export function buildLensGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): Uint8Array {
  return cfg.architecture === "llama" ? buildLlamaLensGraph(cfg, weights, options) : buildGpt2LensGraph(cfg, weights, options);
}

/**
 * The parts of a built graph's cache key that are not the builder (graph-cache.ts keys on its
 * version and source), the config and the weights header: the graph asked for, and every option
 * that changes what is built (an option is named only when it changes the graph, so the default
 * graph's key does not depend on it).
 */
export function graphKeyParts(cfg: ModelConfig, part: "model" | "lens", options: GraphOptions): string[] {
  const parts: string[] = [part];
  if (options.compactWeights) parts.push("compact-weights");
  const grouped = cfg.architecture === "llama" && cfg.nKvHeads < cfg.nHeads;
  if (part === "model" && grouped && options.ungroupGroupedQueryAttention) parts.push("ungrouped-key-value-hooks");
  return parts;
}
