/**
 * Circuit tracing as a request: the editor's Trace Circuit command asks for it by name. The graph
 * is built and summarised by the same core as `loupe trace` (circuits/trace.ts, summary.ts); what
 * this adds is each token's place in the text, so a client can colour the prompt.
 */
import * as path from "node:path";
import { buildReplacement, bundledTranscoders, interveneOnFeatures, pruneGraph, selectTargets, summariseTrace, targetSpecFor, toGraphFile, trace, traceEncoding, transcoderFeatureDashboard, type FeatureEdit, type GraphFile, type InterventionResult, type PruneResult, type TracedPath, type TracedTarget, type TranscoderFeatureDashboard } from "../circuits";
import { LoupeError } from "../errors";
import type { NeuronpediaTranscoders } from "../sae/releases/neuronpedia";
import { neuronpediaTranscodersOf } from "../sae/releases/reference";
import { request } from "./request";

export interface TraceCircuitParams {
  readonly text: string;
  /** A transcoder folder (circuit-tracer's layout); default the model folder's own PLT set (the bundled model has one). */
  readonly transcoders?: string;
  /** The next token to explain; default the model's top tokens (to probability 0.95). */
  readonly answer?: string;
  /** Explain the logit difference answer - contrast instead. */
  readonly contrast?: string;
  readonly nodeThreshold?: number;
  readonly edgeThreshold?: number;
  /**
   * Also return the graph as circuit-tracer's graph JSON, pruned at these looser thresholds so a
   * viewer can prune further (the circuit panel's sliders).
   */
  readonly graphFile?: {
    readonly nodeThreshold: number;
    readonly edgeThreshold: number;
    /** Prune harder (down to the lens's thresholds) while the file would hold more links than this (default 60,000). */
    readonly maxLinks?: number;
  };
}

export interface CircuitToken {
  readonly text: string;
  /** [start, end) in the traced text; [end, end] for a token not in it (a BOS). */
  readonly start: number;
  readonly end: number;
  /** The token's embedding node's influence on the target(s). */
  readonly influence: number;
}

/** Links by node index, as typed arrays: Node's IPC and VS Code's webview messages carry these as raw bytes. */
export interface PackedLinks {
  readonly source: Int32Array;
  readonly target: Int32Array;
  readonly weight: Float64Array;
}

/**
 * circuit-tracer's graph file with its links packed by index into `nodes`: what the worker sends
 * (42k link objects with two id strings each cost ~0.5 s to serialise and parse on a busy machine).
 * core/view/circuit-wire.ts reads it into the panel's graph and writes the file's links back.
 */
export type PackedGraphFile = Omit<GraphFile, "links"> & { readonly links: PackedLinks };

export function packGraphFile(file: GraphFile): PackedGraphFile {
  const index = new Map<string, number>();
  file.nodes.forEach((node, i) => index.has(node.node_id) || index.set(node.node_id, i));
  const n = file.links.length;
  const links = { source: new Int32Array(n), target: new Int32Array(n), weight: new Float64Array(n) };
  file.links.forEach((link, k) => {
    const source = index.get(link.source);
    const target = index.get(link.target);
    if (source === undefined || target === undefined) throw new Error(`link ${k} joins ${link.source} to ${link.target}, not both nodes of the graph`);
    links.source[k] = source;
    links.target[k] = target;
    links.weight[k] = link.weight;
  });
  return { ...file, links };
}

export interface CircuitTrace {
  readonly transcoders: string;
  readonly tokens: readonly CircuitToken[];
  readonly targets: readonly TracedTarget[];
  readonly replacementScore: number;
  readonly completenessScore: number;
  readonly paths: readonly TracedPath[];
  /** With `graphFile`: the graph, its metadata saying which model, transcoders and target; links packed. */
  readonly graph?: PackedGraphFile;
  /** Where Neuronpedia hosts the transcoder set, when it does: the paths' features link there. */
  readonly neuronpedia?: NeuronpediaTranscoders;
}

export interface InterveneCircuitParams {
  readonly text: string;
  readonly transcoders?: string;
  /** The target as the graph was traced: an answer (and contrast), or the top token without one. */
  readonly answer?: string;
  readonly contrast?: string;
  readonly edits: readonly FeatureEdit[];
}

/** Each traced token with its range in the text and its embedding node's influence. */
export function circuitTokens(encoding: { ids: readonly number[]; offsets: readonly (readonly [number, number])[] }, tokenText: (id: number) => string, influence: readonly number[]): CircuitToken[] {
  return encoding.ids.map((id, i) => ({ text: tokenText(id), start: encoding.offsets[i][0], end: encoding.offsets[i][1], influence: influence[i] }));
}

function checkThreshold(name: string, value: number | undefined): void {
  if (value !== undefined && !(value > 0 && value <= 1)) throw new LoupeError("bad-argument", `The ${name} must be in (0, 1] (got ${value}).`);
}

export interface TranscoderFeatureParams {
  /** A transcoder folder; default the model folder's own PLT set. */
  readonly transcoders?: string;
  readonly layer: number;
  readonly feature: number;
  /** The workspace whose `.loupe/feature-labels.json` names features; without it no user label. */
  readonly workspaceRoot?: string;
}

export const CIRCUIT_REQUESTS = {
  /** One transcoder feature's dashboard: label, density, histogram, top contexts, logit effects (the graph panel's node detail). */
  transcoderFeature: request<TranscoderFeatureParams, TranscoderFeatureDashboard>(async (session, { transcoders, layer, feature, workspaceRoot }) => {
    const folder = transcoders || bundledTranscoders(session.model.folder);
    return transcoderFeatureDashboard(session.model, session.transcoders.get(folder, session.model), folder, layer, feature, { workspaceRoot });
  }),
  traceCircuit: request<TraceCircuitParams, CircuitTrace>(async (session, params, { signal, progress, mark }) => {
    checkThreshold("node threshold", params.nodeThreshold);
    checkThreshold("edge threshold", params.edgeThreshold);
    checkThreshold("graph file's node threshold", params.graphFile?.nodeThreshold);
    checkThreshold("graph file's edge threshold", params.graphFile?.edgeThreshold);
    const model = session.model;
    const folder = params.transcoders || bundledTranscoders(model.folder);
    const transcoders = session.transcoders.get(folder, model);
    mark?.("transcoders ready");
    const encoding = traceEncoding(model, params.text);
    const tokenText = (id: number) => model.tokenizer.decode([id]);
    const traced = await trace(model, transcoders, encoding.ids, {
      targets: targetSpecFor(model, params.answer, params.contrast),
      nodeThreshold: params.nodeThreshold,
      edgeThreshold: params.edgeThreshold,
      maxMemoryBytes: model.spareMemoryBytes,
      signal,
      onProgress: progress,
    });
    mark?.("trace done");
    const summary = summariseTrace(traced, tokenText);
    const neuronpedia = neuronpediaTranscodersOf(folder, transcoders.scan);
    const graph = params.graphFile ? packGraphFile(graphFileOf(traced, params, model, transcoders.source ?? folder, tokenText)) : undefined;
    mark?.(graph ? "summary and graph file built" : "summary built");
    return {
      transcoders: transcoders.source ?? folder,
      tokens: circuitTokens(encoding, tokenText, summary.tokenInfluence),
      targets: summary.targets,
      replacementScore: summary.replacementScore,
      completenessScore: summary.completenessScore,
      paths: summary.paths,
      ...(graph ? { graph } : {}),
      ...(neuronpedia ? { neuronpedia } : {}),
    };
  }),
  /** Check: zero or scale features of a traced graph and compare the graph's predicted change of the target with the model's (`loupe intervene`). */
  interveneCircuit: request<InterveneCircuitParams, InterventionResult>(async (session, params, { signal }) => {
    const model = session.model;
    const transcoders = session.transcoders.get(params.transcoders || bundledTranscoders(model.folder), model);
    const tokenText = (id: number) => model.tokenizer.decode([id]);
    const replacement = await buildReplacement(model, transcoders, traceEncoding(model, params.text).ids, signal);
    const target = selectTargets(targetSpecFor(model, params.answer, params.contrast), replacement.frozen.weights, replacement.frozen.lastLogits, tokenText)[0];
    return interveneOnFeatures(model, replacement, target, params.edits, { signal });
  }),
};

function graphFileOf(traced: Awaited<ReturnType<typeof trace>>, params: TraceCircuitParams, model: { folder: string; cfg: { dVocab: number } }, transcoders: string, tokenText: (id: number) => string): GraphFile {
  const { graph } = traced;
  const wanted = params.graphFile as NonNullable<TraceCircuitParams["graphFile"]>;
  const probabilities = graph.targets.map((t) => t.probability);
  // A viewer stays responsive to a few tens of thousands of links: tighten towards the lens's
  // thresholds until the file fits, and say which thresholds the file was pruned at.
  const lens = { nodeThreshold: params.nodeThreshold ?? 0.8, edgeThreshold: params.edgeThreshold ?? 0.98 };
  const steps = [wanted, { nodeThreshold: (wanted.nodeThreshold + lens.nodeThreshold) / 2, edgeThreshold: (wanted.edgeThreshold + lens.edgeThreshold) / 2 }, lens];
  let thresholds = steps[0];
  let pruned = pruneGraph(graph.adjacency, graph.layout, probabilities, thresholds.nodeThreshold, thresholds.edgeThreshold);
  for (const next of steps.slice(1)) {
    if (keptLinks(pruned) <= (wanted.maxLinks ?? 60_000)) break;
    thresholds = next;
    pruned = pruneGraph(graph.adjacency, graph.layout, probabilities, thresholds.nodeThreshold, thresholds.edgeThreshold);
  }
  return toGraphFile(graph, pruned, {
    slug: "loupe-trace",
    prompt: params.text,
    tokenText,
    dVocab: model.cfg.dVocab,
    nodeThreshold: thresholds.nodeThreshold,
    info: {
      generator: "loupe trace",
      model: path.basename(path.resolve(model.folder)),
      transcoders,
      transcoder_kind: graph.transcoderKind,
      ...(params.answer !== undefined ? { answer: params.answer } : {}),
      ...(params.contrast !== undefined ? { contrast: params.contrast } : {}),
      edge_threshold: thresholds.edgeThreshold,
      replacement_score: traced.scores.replacement,
      completeness_score: traced.scores.completeness,
    },
  });
}

function keptLinks(pruned: PruneResult): number {
  const n = pruned.nodeMask.length;
  let count = 0;
  for (let t = 0; t < n; t++) {
    if (!pruned.nodeMask[t]) continue;
    for (let s = 0; s < n; s++) if (pruned.edgeMask[t * n + s] && pruned.nodeMask[s]) count++;
  }
  return count;
}
