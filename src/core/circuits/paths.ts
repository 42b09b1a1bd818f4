/**
 * The strongest paths from input tokens to a logit target through a pruned graph: a beam search
 * backwards from the target, each step taking a kept edge into the current node, a path scored by
 * the product of its edges' shares of their target's input (row-normalised |A|). Edges run from
 * lower layers to higher ones, so every path ends at a token.
 */
import { nodeTotal, type AttributionGraph } from "./attribution";
import { normaliseRows, type PruneResult } from "./prune";

export interface GraphPath {
  /** Node indices from a token to the target. */
  readonly nodes: readonly number[];
  readonly score: number;
}

export function strongestPaths(graph: AttributionGraph, pruned: PruneResult, target: number, count = 5, beam = 64): GraphPath[] {
  const n = nodeTotal(graph);
  const share = normaliseRows(graph.adjacency, n);
  const firstToken = graph.layout.nFeatures + graph.layout.nErrors;
  const isToken = (i: number) => i >= firstToken && i < firstToken + graph.layout.nTokens;
  let open: GraphPath[] = [{ nodes: [target], score: 1 }];
  const done: GraphPath[] = [];
  while (open.length > 0) {
    const next: GraphPath[] = [];
    for (const path of open) {
      const head = path.nodes[0];
      for (let s = 0; s < n; s++) {
        if (!pruned.edgeMask[head * n + s] || !pruned.nodeMask[s]) continue;
        const extended = { nodes: [s, ...path.nodes], score: path.score * share[head * n + s] };
        (isToken(s) ? done : next).push(extended);
      }
    }
    open = next.sort((a, b) => b.score - a.score).slice(0, beam);
  }
  return done.sort((a, b) => b.score - a.score).slice(0, count);
}
