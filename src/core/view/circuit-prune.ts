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

/**
 * The links as columns, made once per graph: the sliders re-prune on every move, and walking
 * typed arrays is several times faster than the link objects.
 */
interface LinkColumns {
  readonly source: Int32Array;
  readonly target: Int32Array;
  readonly absWeight: Float64Array;
  /** 1 for token embeddings and logits, which pruning always keeps. */
  readonly always: Uint8Array;
  /** 1 for features, which also need an incoming link. */
  readonly feature: Uint8Array;
}

const columnsOf = new WeakMap<PanelGraph, LinkColumns>();

function linkColumns(graph: PanelGraph): LinkColumns {
  let columns = columnsOf.get(graph);
  if (!columns) {
    columns = {
      source: Int32Array.from(graph.links, (l) => l.source),
      target: Int32Array.from(graph.links, (l) => l.target),
      absWeight: Float64Array.from(graph.links, (l) => Math.abs(l.weight)),
      always: Uint8Array.from(graph.nodes, (n) => (n.kind === "embedding" || n.kind === "logit" ? 1 : 0)),
      feature: Uint8Array.from(graph.nodes, (n) => (n.kind === "feature" ? 1 : 0)),
    };
    columnsOf.set(graph, columns);
  }
  return columns;
}

/** Each link's |weight| over the sum of |weights| into its target, among the links `keep` marks (all when absent). */
function normalisedWeights(c: LinkColumns, nodes: number, keep?: Uint8Array): Float32Array {
  const sums = new Float64Array(nodes);
  const m = c.source.length;
  for (let k = 0; k < m; k++) if (!keep || keep[k]) sums[c.target[k]] += c.absWeight[k];
  // Float32 as prune.ts's normalised matrix, so both rank ties the same way.
  const out = new Float32Array(m);
  for (let k = 0; k < m; k++) if (!keep || keep[k]) out[k] = c.absWeight[k] / Math.max(sums[c.target[k]], 1e-10);
  return out;
}

/** w (Â + Â² + ...) by carrying each node's influence back along its input links; the graph is acyclic. */
function linkInfluence(c: LinkColumns, normalised: Float32Array, w: Float64Array, maxIterations = 1000): Float64Array {
  const n = w.length;
  const m = c.source.length;
  const total = new Float64Array(n);
  let current = w;
  for (let it = 0; it < maxIterations; it++) {
    const next = new Float64Array(n);
    let any = false;
    for (let k = 0; k < m; k++) {
      const x = current[c.target[k]];
      if (x !== 0 && normalised[k] !== 0) {
        next[c.source[k]] += x * normalised[k];
        any = true;
      }
    }
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
  const c = linkColumns(graph);
  const m = c.source.length;
  const w = logitWeightsOf(graph);
  const nodeInfluence = linkInfluence(c, normalisedWeights(c, n), w);
  const nodeCut = thresholdFor(nodeInfluence, nodeThreshold);
  const nodes = Uint8Array.from({ length: n }, (_, i) => (c.always[i] || nodeInfluence[i] >= nodeCut ? 1 : 0));

  const between = Uint8Array.from({ length: m }, (_, k) => nodes[c.source[k]] & nodes[c.target[k]]);
  const normalised = normalisedWeights(c, n, between);
  const edgeInfluence = linkInfluence(c, normalised, w);
  const scores = Float32Array.from({ length: m }, (_, k) => normalised[k] * (edgeInfluence[c.target[k]] + w[c.target[k]]));
  const edgeCut = thresholdFor(scores, edgeThreshold);
  const links = Uint8Array.from(scores, (s) => (s >= edgeCut && s > 0 ? 1 : 0));

  // Features and errors need an outgoing link, features an incoming one; repeat until stable.
  for (let changed = true; changed; ) {
    changed = false;
    const outgoing = new Uint8Array(n);
    const incoming = new Uint8Array(n);
    for (let k = 0; k < m; k++) {
      if (!links[k]) continue;
      outgoing[c.source[k]] = 1;
      incoming[c.target[k]] = 1;
    }
    for (let i = 0; i < n; i++) {
      if (!nodes[i] || c.always[i]) continue;
      if (!outgoing[i] || (c.feature[i] && !incoming[i])) {
        nodes[i] = 0;
        changed = true;
      }
    }
    if (changed) for (let k = 0; k < m; k++) links[k] = links[k] && nodes[c.source[k]] && nodes[c.target[k]] ? 1 : 0;
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
