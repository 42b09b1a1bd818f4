/**
 * One call from a prompt to a pruned, scored attribution graph: what `loupe trace` and the editor
 * run. Kept apart from the maths so the maths stays testable piece by piece.
 */
import type { HookedModel } from "../model/hooked-model";
import { attribute, type AttributionGraph, type AttributionOptions } from "./attribution";
import { graphScores, pruneGraph, type GraphScores, type PruneResult } from "./prune";
import type { TranscoderSet } from "./transcoder";

export interface TraceOptions extends AttributionOptions {
  readonly nodeThreshold?: number;
  readonly edgeThreshold?: number;
}

export interface Trace {
  readonly graph: AttributionGraph;
  readonly pruned: PruneResult;
  readonly scores: GraphScores;
  /** Scores of the pruned graph (pruned nodes' edges removed). */
  readonly prunedScores: GraphScores;
  readonly elapsedMs: number;
}

export async function trace(model: HookedModel, transcoders: TranscoderSet, tokens: readonly number[], options: TraceOptions = {}): Promise<Trace> {
  const started = performance.now();
  const graph = await attribute(model, transcoders, tokens, options);
  const probabilities = graph.targets.map((t) => t.probability);
  const pruned = pruneGraph(graph.adjacency, graph.layout, probabilities, options.nodeThreshold ?? 0.8, options.edgeThreshold ?? 0.98);
  return {
    graph,
    pruned,
    scores: pruned.scores,
    prunedScores: graphScores(graph.adjacency, graph.layout, probabilities, pruned.edgeMask),
    elapsedMs: performance.now() - started,
  };
}
