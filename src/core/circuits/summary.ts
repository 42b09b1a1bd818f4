/**
 * A traced graph as plain data for people and clients: the targets, the scores, each prompt token's
 * influence on the targets and the strongest token -> target paths as text. `loupe trace --json`
 * prints it and the editor's Circuit influence lens draws it, so both say the same thing.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { logitNode, tokenNode, type AttributionGraph } from "./attribution";
import { strongestPaths } from "./paths";
import { targetToken, type TargetSpec } from "./targets";
import type { Trace } from "./trace";

export interface TracedTarget {
  readonly label: string;
  readonly token: number | null;
  readonly probability: number;
}

export interface TracedPath {
  /** Product of each edge's share of its target's input. */
  readonly score: number;
  /** Node labels from a token to the target, e.g. `"Mia"@3`, `L1/12 at "to"@9`, `logit " Leo"`. */
  readonly nodes: readonly string[];
  /** The prompt position of the token the path starts from. */
  readonly fromToken: number;
}

export interface TraceSummary {
  readonly targets: readonly TracedTarget[];
  readonly activeFeatures: number;
  readonly featureNodes: number;
  readonly keptFeatureNodes: number;
  readonly keptEdges: number;
  readonly replacementScore: number;
  readonly completenessScore: number;
  readonly prunedReplacementScore: number;
  readonly prunedCompletenessScore: number;
  readonly elapsedMs: number;
  /** Each prompt position's token (embedding) node influence on the targets, before pruning. */
  readonly tokenInfluence: readonly number[];
  /** The strongest paths to the first target through the pruned graph. */
  readonly paths: readonly TracedPath[];
}

/** The transcoders shipped in a model folder (the bundled reference model has a PLT set). */
export function bundledTranscoders(modelFolder: string): string {
  const dir = path.join(modelFolder, "transcoders", "plt");
  if (!fs.existsSync(dir)) {
    throw new LoupeError("bad-argument", `${modelFolder} ships no transcoders: name a transcoder folder made for it (the loupe.transcoderPath setting, or --transcoders DIR), in circuit-tracer's layout; \`loupe transcoder train\` writes one.`, modelFolder);
  }
  return dir;
}

/** The graph's target from an answer and a contrast (one token each): the top tokens without them. */
export function targetSpecFor(model: HookedModel, answer?: string, contrast?: string): TargetSpec {
  if (contrast !== undefined && answer === undefined) throw new LoupeError("bad-argument", "A contrast (--contrast) needs an answer (--answer): the target is the logit difference answer - contrast.");
  if (answer === undefined) return { kind: "top" };
  const encode = (s: string) => model.tokenizer.encode(s).ids;
  const text = (id: number) => model.tokenizer.decode([id]);
  const token = targetToken(encode, text, answer, "answer");
  return contrast === undefined ? { kind: "token", token } : { kind: "difference", token, contrast: targetToken(encode, text, contrast, "contrast") };
}

/** A node as text: a feature, an error, a token or a logit, each token with its position. */
export function nodeLabel(graph: AttributionGraph, i: number, tokenText: (id: number) => string): string {
  const { nFeatures, nErrors, nTokens } = graph.layout;
  const tok = (pos: number) => `${JSON.stringify(tokenText(graph.tokens[pos]))}@${pos}`;
  if (i < nFeatures) {
    const f = graph.features[i];
    return `L${f.layer}/${f.feature} at ${tok(f.pos)}`;
  }
  if (i < nFeatures + nErrors) return `error L${Math.floor((i - nFeatures) / nTokens)} at ${tok((i - nFeatures) % nTokens)}`;
  if (i < nFeatures + nErrors + nTokens) return tok(i - nFeatures - nErrors);
  return `logit ${JSON.stringify(graph.targets[i - nFeatures - nErrors - nTokens].label)}`;
}

export function summariseTrace(t: Trace, tokenText: (id: number) => string, pathCount = 5): TraceSummary {
  const { graph, pruned } = t;
  const { layout } = graph;
  const keptFeatures = pruned.nodeMask.subarray(0, layout.nFeatures).reduce((a, b) => a + b, 0);
  const paths = strongestPaths(graph, pruned, logitNode(layout, 0), pathCount).map((p) => ({
    score: p.score,
    nodes: p.nodes.map((i) => nodeLabel(graph, i, tokenText)),
    fromToken: p.nodes[0] - tokenNode(layout, 0),
  }));
  return {
    targets: graph.targets.map((x) => ({ label: x.label, token: x.token ?? null, probability: x.probability })),
    activeFeatures: graph.activeFeatureCount,
    featureNodes: layout.nFeatures,
    keptFeatureNodes: keptFeatures,
    keptEdges: pruned.edgeMask.reduce((a, b) => a + b, 0),
    replacementScore: t.scores.replacement,
    completenessScore: t.scores.completeness,
    prunedReplacementScore: t.prunedScores.replacement,
    prunedCompletenessScore: t.prunedScores.completeness,
    elapsedMs: t.elapsedMs,
    tokenInfluence: Array.from({ length: layout.nTokens }, (_, pos) => pruned.nodeInfluence[tokenNode(layout, pos)]),
    paths,
  };
}
