/**
 * Circuit tracing as a request: the editor's Trace Circuit command asks for it by name. The graph
 * is built and summarised by the same core as `loupe trace` (circuits/trace.ts, summary.ts); what
 * this adds is each token's place in the text, so a client can colour the prompt.
 */
import { bundledTranscoders, summariseTrace, targetSpecFor, trace, transcoderFeatureDashboard, type TracedPath, type TracedTarget, type TranscoderFeatureDashboard } from "../circuits";
import { LoupeError } from "../errors";
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
}

export interface CircuitToken {
  readonly text: string;
  /** [start, end) in the traced text; [end, end] for a token not in it (a BOS). */
  readonly start: number;
  readonly end: number;
  /** The token's embedding node's influence on the target(s). */
  readonly influence: number;
}

export interface CircuitTrace {
  readonly transcoders: string;
  readonly tokens: readonly CircuitToken[];
  readonly targets: readonly TracedTarget[];
  readonly replacementScore: number;
  readonly completenessScore: number;
  readonly paths: readonly TracedPath[];
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
  traceCircuit: request<TraceCircuitParams, CircuitTrace>(async (session, params, { signal, progress }) => {
    checkThreshold("node threshold", params.nodeThreshold);
    checkThreshold("edge threshold", params.edgeThreshold);
    const model = session.model;
    const folder = params.transcoders || bundledTranscoders(model.folder);
    const transcoders = session.transcoders.get(folder, model);
    const encoding = model.encode(params.text);
    const tokenText = (id: number) => model.tokenizer.decode([id]);
    const traced = await trace(model, transcoders, encoding.ids, {
      targets: targetSpecFor(model, params.answer, params.contrast),
      nodeThreshold: params.nodeThreshold,
      edgeThreshold: params.edgeThreshold,
      maxMemoryBytes: model.spareMemoryBytes,
      signal,
      onProgress: progress,
    });
    const summary = summariseTrace(traced, tokenText);
    return {
      transcoders: transcoders.source ?? folder,
      tokens: encoding.ids.map((id, i) => ({ text: tokenText(id), start: encoding.offsets[i][0], end: encoding.offsets[i][1], influence: summary.tokenInfluence[i] })),
      targets: summary.targets,
      replacementScore: summary.replacementScore,
      completenessScore: summary.completenessScore,
      paths: summary.paths,
    };
  }),
};
