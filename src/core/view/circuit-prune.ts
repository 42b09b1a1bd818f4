/**
 * Live pruning of a loaded graph for the panel's sliders, with core/circuits/prune.ts's definitions
 * (circuit-tracer's) applied to the links the file holds instead of a dense adjacency: influence is
 * w (Â + Â² + ...) over row-normalised |weights|, nodes kept to a cumulative influence share, edges
 * scored by Â[t, s] (influence[t] + w[t]) and kept to a cumulative share, and features or errors
 * left without the edges they need dropped until nothing changes. On a full graph it keeps exactly
 * what pruneGraph keeps; on a file that was already pruned it prunes further.
 */
import { thresholdFor } from "../circuits/prune";
import type { PanelGraph } from "./circuit-graph";

export interface PanelPrune {
  /** 1 where the node is shown. */
  readonly nodes: Uint8Array;
  /** 1 where the link is shown. */
  readonly links: Uint8Array;
}

/** Each link's |weight| over the sum of |weights| into its target, among the links `keep` allows. */
function normalisedWeights(graph: PanelGraph, keep: (k: number) => boolean): Float32Array {
  const sums = new Float64Array(graph.nodes.length);
  graph.links.forEach((l, k) => {
    if (keep(k)) sums[l.target] += Math.abs(l.weight);
  });
  // Float32 as prune.ts's normalised matrix, so both rank ties the same way.
  return Float32Array.from(graph.links, (l, k) => (keep(k) ? Math.abs(l.weight) / Math.max(sums[l.target], 1e-10) : 0));
}

/** w (Â + Â² + ...) by carrying each node's influence back along its input links; the graph is acyclic. */
function linkInfluence(graph: PanelGraph, normalised: Float32Array, w: Float64Array, maxIterations = 1000): Float64Array {
  const n = graph.nodes.length;
  const total = new Float64Array(n);
  let current = w;
  for (let it = 0; it < maxIterations; it++) {
    const next = new Float64Array(n);
    let any = false;
    graph.links.forEach((l, k) => {
      const x = current[l.target];
      if (x !== 0 && normalised[k] !== 0) {
        next[l.source] += x * normalised[k];
        any = true;
      }
    });
    if (!any) break;
    for (let i = 0; i < n; i++) total[i] += next[i];
    current = next;
  }
  return total;
}

export function logitWeightsOf(graph: PanelGraph): Float64Array {
  return Float64Array.from(graph.nodes, (node) => (node.kind === "logit" ? node.probability : 0));
}

export function prunePanelGraph(graph: PanelGraph, nodeThreshold: number, edgeThreshold: number): PanelPrune {
  const n = graph.nodes.length;
  const w = logitWeightsOf(graph);
  const always = (i: number) => graph.nodes[i].kind === "embedding" || graph.nodes[i].kind === "logit";
  const nodeInfluence = linkInfluence(graph, normalisedWeights(graph, () => true), w);
  const nodeCut = thresholdFor(nodeInfluence, nodeThreshold);
  const nodes = Uint8Array.from({ length: n }, (_, i) => (always(i) || nodeInfluence[i] >= nodeCut ? 1 : 0));

  const between = (k: number) => nodes[graph.links[k].source] === 1 && nodes[graph.links[k].target] === 1;
  const normalised = normalisedWeights(graph, between);
  const edgeInfluence = linkInfluence(graph, normalised, w);
  const scores = Float32Array.from(graph.links, (l, k) => normalised[k] * (edgeInfluence[l.target] + w[l.target]));
  const edgeCut = thresholdFor(scores, edgeThreshold);
  const links = Uint8Array.from(scores, (s) => (s >= edgeCut && s > 0 ? 1 : 0));

  // Features and errors need an outgoing link, features an incoming one; repeat until stable.
  for (let changed = true; changed; ) {
    changed = false;
    const outgoing = new Uint8Array(n);
    const incoming = new Uint8Array(n);
    graph.links.forEach((l, k) => {
      if (!links[k]) return;
      outgoing[l.source] = 1;
      incoming[l.target] = 1;
    });
    for (let i = 0; i < n; i++) {
      if (!nodes[i] || always(i)) continue;
      const node = graph.nodes[i];
      if (!outgoing[i] || (node.kind === "feature" && !incoming[i])) {
        nodes[i] = 0;
        changed = true;
      }
    }
    if (changed) graph.links.forEach((l, k) => (links[k] = links[k] && nodes[l.source] && nodes[l.target] ? 1 : 0));
  }
  return { nodes, links };
}

export function countShown(mask: Uint8Array): number {
  let count = 0;
  for (const v of mask) count += v;
  return count;
}

/** circuit-tracer's default pruning, where the panel's sliders start on a graph pruned more loosely. */
export const DEFAULT_THRESHOLDS = { node: 0.8, edge: 0.98 };

/**
 * Where the sliders start: the defaults on a graph the tracer pruned more loosely (the panel's own
 * traces), else 1 (the file as it was saved: pruning an already-pruned graph again at 0.8 would
 * hide part of it).
 */
export function initialThresholds(graph: PanelGraph): { node: number; edge: number } {
  const saved = graph.metadata.node_threshold;
  return typeof saved === "number" && saved > DEFAULT_THRESHOLDS.node ? DEFAULT_THRESHOLDS : { node: 1, edge: 1 };
}
