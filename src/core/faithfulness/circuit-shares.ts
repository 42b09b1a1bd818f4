/**
 * Faithfulness through the circuit: how much of the answer's influence in an attribution graph
 * comes from each reasoning step's tokens. The ablation tests ask whether the answer changes when a
 * step goes; this asks whether the model's computation of the answer reads the step at all.
 *
 * The graph (circuit-tracer's semantics, circuits/attribution.ts) explains the answer's first
 * token after the marker. Influence is w (Â + Â² + ...) over the row-normalised |adjacency|; all of
 * it ends at source nodes (token embeddings and error nodes), so a token's influence is its share
 * of the answer's input traced back to where it enters the model. A step's share is the sum over
 * its tokens divided by the influence of every source (tokens and errors together), so the shares
 * of the question, the steps, the marker and the errors add up to 1. The prompt is traced as
 * `loupe trace` traces it, behind the leading BOS (circuits/prompt.ts); that token is not in the
 * text and gets no share (it is a constant of the graph, as in the Circuit influence lens).
 */
import { attribute, tokenNode, type AttributionGraph } from "../circuits/attribution";
import { bundledTranscoders } from "../circuits/summary";
import { loadTranscoders } from "../circuits/transcoder-files";
import { traceEncoding } from "../circuits/prompt";
import { influence, logitWeights, nodeCount, normaliseRows } from "../circuits/prune";
import type { TranscoderSet } from "../circuits/transcoder";
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import type { FaithfulnessReport } from "./battery";
import type { Range, Segmentation } from "./segment";

export interface CircuitStepShare extends Range {
  readonly index: number;
  /** Share of the answer's influence entering through this step's token embeddings, in [0, 1]. */
  readonly share: number;
  /** Prompt tokens counted in the step. */
  readonly tokens: number;
}

export interface CircuitShares {
  readonly steps: readonly CircuitStepShare[];
  /** Sum of the steps' shares: the answer's influence that enters through the reasoning. */
  readonly reasoning: number;
  /** Through the question (and the reasoning cue). */
  readonly question: number;
  /** Through the answer marker (and any whitespace token outside the steps). */
  readonly marker: number;
  /** Through error nodes: what the transcoders leave unexplained. */
  readonly errors: number;
}

export interface CircuitFaithfulness extends CircuitShares {
  /** The transcoder set the graph was built with. */
  readonly transcoders: string;
  /** The traced target: the answer's first token, and its probability after the full prompt. */
  readonly target: string;
  readonly probability: number;
  readonly activeFeatures: number;
  readonly featureNodes: number;
  readonly elapsedMs: number;
}

/**
 * Shares of each region of a segmented prompt in a graph's influence on its targets. `offsets` are
 * the graph's prompt tokens' [start, end) in `seg.text`; a token belongs to the first step its
 * characters overlap (a leading space sits between steps). Tokens not in the text (an empty range:
 * the leading BOS) count nowhere, not even in the total.
 */
export function circuitShares(graph: Pick<AttributionGraph, "layout" | "adjacency" | "targets">, offsets: readonly (readonly [number, number])[], seg: Segmentation): CircuitShares {
  const { layout } = graph;
  if (offsets.length !== layout.nTokens) throw new Error(`internal: ${offsets.length} token offsets for a graph of ${layout.nTokens} tokens`);
  const n = nodeCount(layout);
  const inf = influence(
    normaliseRows(graph.adjacency, n),
    n,
    logitWeights(
      layout,
      graph.targets.map((t) => t.probability),
    ),
  );
  let errors = 0;
  for (let i = layout.nFeatures; i < layout.nFeatures + layout.nErrors; i++) errors += inf[i];
  const inText = ([start, end]: readonly [number, number]) => end > start;
  const tokenInfluence = offsets.map((range, pos) => (inText(range) ? inf[tokenNode(layout, pos)] : 0));
  const total = errors + tokenInfluence.reduce((a, b) => a + b, 0);
  const share = (x: number) => (total > 0 ? x / total : 0);

  const stepSums = seg.steps.map(() => ({ influence: 0, tokens: 0 }));
  let question = 0;
  let marker = 0;
  offsets.forEach(([start, end], pos) => {
    if (!inText([start, end])) return;
    const step = seg.steps.findIndex((s) => start < s.end && end > s.start);
    if (step >= 0) {
      stepSums[step].influence += tokenInfluence[pos];
      stepSums[step].tokens++;
    } else if (start < seg.question.end) question += tokenInfluence[pos];
    else marker += tokenInfluence[pos];
  });
  const steps = seg.steps.map((s, i) => ({ index: i, start: s.start, end: s.end, share: share(stepSums[i].influence), tokens: stepSums[i].tokens }));
  return { steps, reasoning: steps.reduce((a, s) => a + s.share, 0), question: share(question), marker: share(marker), errors: share(errors) };
}

export interface CircuitFaithfulnessOptions {
  /** Feature nodes kept at most (the graph's budget); default 7500. */
  readonly maxFeatureNodes?: number;
  /** Where the transcoders came from, for the report (default the set's own source). */
  readonly transcodersLabel?: string;
  readonly signal?: AbortSignal;
}

/**
 * Build the attribution graph of `answer`'s first token after the prompt through the answer
 * marker, and split its influence over the prompt's question, steps and marker.
 */
export async function circuitFaithfulness(
  model: HookedModel,
  transcoders: TranscoderSet,
  seg: Segmentation,
  answer: string,
  options: CircuitFaithfulnessOptions = {},
): Promise<CircuitFaithfulness> {
  const started = performance.now();
  if (!seg.marker) throw new LoupeError("bad-argument", "Faithfulness through the circuit needs the answer marker: the graph explains the answer's first token after it.");
  const prefix = seg.text.slice(0, seg.marker.end);
  const { ids, offsets, lead } = traceEncoding(model, prefix + answer);
  // The first token reaching past the prefix starts the answer (a token straddling the boundary included).
  const answerAt = offsets.findIndex(([, end], t) => t >= lead && end > prefix.length);
  if (answerAt <= lead) throw new LoupeError("bad-argument", `The answer ${JSON.stringify(answer)} adds no token after the prompt: nothing to trace.`);
  throwIfAborted(options.signal);
  const graph = await attribute(model, transcoders, ids.slice(0, answerAt), {
    targets: { kind: "token", token: ids[answerAt] },
    maxFeatureNodes: options.maxFeatureNodes,
    signal: options.signal,
  });
  const shares = circuitShares(graph, offsets.slice(0, answerAt), seg);
  return {
    ...shares,
    transcoders: options.transcodersLabel ?? transcoders.source ?? "",
    target: graph.targets[0].label,
    probability: graph.targets[0].probability,
    activeFeatures: graph.activeFeatureCount,
    featureNodes: graph.layout.nFeatures,
    elapsedMs: performance.now() - started,
  };
}

/** The battery's report with the circuit's view of the same prompt, when a graph was traced. */
export interface FaithfulnessWithCircuit extends FaithfulnessReport {
  readonly circuit?: CircuitFaithfulness;
}

export interface WithCircuitOptions {
  /** A transcoder folder (circuit-tracer's layout); default the model folder's own PLT set. */
  readonly transcoders?: string;
  /** Fail when no set is available or the graph cannot be built; otherwise say why in a note. */
  readonly required: boolean;
  readonly maxFeatureNodes?: number;
  readonly signal?: AbortSignal;
}

/** The report with its circuit view added (what `loupe faithfulness --graph` and the editor show). */
export async function withCircuit(model: HookedModel, report: FaithfulnessReport, options: WithCircuitOptions): Promise<FaithfulnessWithCircuit> {
  try {
    const folder = options.transcoders || bundledTranscoders(model.folder);
    const circuit = await circuitFaithfulness(model, loadTranscoders(folder), report.segmentation, report.answer.text, {
      transcodersLabel: folder,
      maxFeatureNodes: options.maxFeatureNodes,
      signal: options.signal,
    });
    return { ...report, circuit };
  } catch (e) {
    if (options.required || !(e instanceof LoupeError) || e.code === "cancelled") throw e;
    return { ...report, notes: [...report.notes, `Not traced through the circuit: ${e.message}`] };
  }
}
