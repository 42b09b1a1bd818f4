/** Picks the graph builder for a config's architecture, so HookedModel stays architecture-blind. */
import type { ModelConfig } from "./config";
import { gateHookOutputs } from "./fetched-hooks";
import { buildGpt2Graph, buildGpt2LensGraph } from "./gpt2-graph";
import type { BuiltGraph, GraphOptions } from "./graph-options";
import { GRAPH_IO, PAST_IO } from "./hook-point";
import { hookNamesFor } from "./hooks";
import { buildLlamaGraph, buildLlamaLensGraph } from "./llama-graph";
import type { SafetensorsIndex } from "./safetensors";

export function buildModelGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): BuiltGraph {
  return cfg.architecture === "llama" ? buildLlamaGraph(cfg, weights, options) : buildGpt2Graph(cfg, weights, options);
}

/**
 * The graph a HookedModel runs: every hook, key/value output and the logits behind the fetch mask
 * (fetched-hooks.ts), so a run computes or holds only what it returns. Built here, with the
 * builders, so that the graph cache's key (a hash of this module's imports) covers the gating too.
 */
export function buildFetchGatedModelGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): Uint8Array {
  return gateHookOutputs(buildModelGraph(cfg, weights, options).bytes, fetchedOutputs(cfg), [GRAPH_IO.logits]);
}

/**
 * The decode-only graph (GraphOptions.decodeOnly): logits and keys and values, no hooks. Its logits
 * are behind a one-element fetch mask as the full graph's are, so a run that only fills a key/value
 * cache (logits: false) skips the unembedding.
 */
export function buildFetchGatedDecodeGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): Uint8Array {
  return gateHookOutputs(buildModelGraph(cfg, weights, { ...options, decodeOnly: true, ungroupGroupedQueryAttention: false }).bytes, [], [GRAPH_IO.logits]);
}

/**
 * The outputs a built graph returns only when fetched (FETCH_HOOKS, in this order, then the
 * logits): every hook, then every layer's keys and values.
 */
export function fetchedOutputs(cfg: ModelConfig): string[] {
  const kv = Array.from({ length: cfg.nLayers }, (_, L) => [PAST_IO.presentKey(L), PAST_IO.presentValue(L)]).flat();
  return [...hookNamesFor(cfg), ...kv];
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
export function graphKeyParts(cfg: ModelConfig, part: "model" | "decode" | "lens", options: GraphOptions): string[] {
  const parts: string[] = [part];
  if (options.compactWeights) parts.push("compact-weights");
  const grouped = cfg.architecture === "llama" && cfg.nKvHeads < cfg.nHeads;
  if (part === "model" && grouped && options.ungroupGroupedQueryAttention) parts.push("ungrouped-key-value-hooks");
  return parts;
}
