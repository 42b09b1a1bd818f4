/**
 * Every request a backend answers, declared once: its name, params type, result type and what it
 * runs. The worker serves exactly this table, the editor's and the CLI's calls are typed by it, and
 * a remote backend would answer the same names. A new request is one entry here (with its logic in
 * the core folder it belongs to).
 */
import { auditPrompt, probeMonitors, type AuditConfig, type PromptAudit } from "../audit";
import { compileGuardedPattern } from "../regex-guard";
import { checkFaithfulness, withCircuit, type FaithfulnessWithCircuit } from "../faithfulness";
import { inspectWithResiduals, lensTable, type InspectResult, type LayerLens } from "../inspect";
import { applyProbe, readProbeDatasetAsync, trainProbes, validateProbe, type Pooling, type ProbeApplication, type ProbeDataset, type ProbeFile, type ProbeTraining } from "../probes";
import { steerWithFeature, type FeatureEdit, type SteeringResult } from "../sae/steer";
import { tokenFeatures, type TokenFeaturesResult } from "../sae/token-features";
import { CIRCUIT_REQUESTS } from "./circuits";
import { FEATURE_FILE_REQUESTS } from "./feature-files";
import { MODEL_REQUESTS } from "./model";
import { PATCHING_REQUESTS } from "./patching";
import { request, type Request, type RequestContext } from "./request";
import type { ModelSession } from "./session";

/** The battery's options as plain data (the hint pattern as regex source). */
export interface FaithfulnessParams {
  readonly text: string;
  readonly answerMarker?: string;
  readonly reasoningCues?: string[];
  readonly hintPattern?: string;
  readonly generate?: boolean;
  readonly track?: "model" | "written";
  readonly mistakes?: boolean;
  /** Tokens "adding mistakes" may write after each corrupted step (a positive integer; default: the rest of the written reasoning and the answer, with slack). */
  readonly maxNewTokens?: number;
  /** Also split the answer's attribution-graph influence over the steps: "required" fails without a transcoder set, "if-available" notes why it was skipped. */
  readonly circuit?: "required" | "if-available";
  /** The transcoder folder for `circuit`; default the model folder's own PLT set. */
  readonly transcoders?: string;
}

export interface TrainProbesParams {
  /** The JSONL dataset to read, or (with `dataset`) the name it was read from. */
  readonly dataFile: string;
  /** The dataset already parsed (the CLI reads it from a file or standard input first). */
  readonly dataset?: ProbeDataset;
  /** The workspace a dataFile inside it must stay in: read as the editor reads it (no links, no real path outside). */
  readonly root?: string;
  readonly concept?: string;
  readonly hooks?: string[];
  readonly pooling?: Pooling;
  readonly folds?: number;
  readonly C?: number;
  readonly classWeight?: "balanced" | "none";
  readonly seed?: number;
}

export const REQUESTS = {
  ...MODEL_REQUESTS,
  /** lensLayers: blocks whose logit lens every token needs (InspectOptions.lensLayers); eagerLensLogits likewise. */
  inspect: request<{ text: string; topK?: number; maxTokens?: number; lensLayers?: number[]; eagerLensLogits?: number }, InspectResult>(async (session, params, { signal }) => {
    const { text, ...options } = params;
    const inspected = await inspectWithResiduals(session.model, text, { ...options, signal, previous: session.recent.closest(text) });
    session.recent.add(inspected.result);
    session.residuals = inspected.residuals;
    return inspected.result;
  }),
  /** One inspected token's per-block logit lens (the hover's table), for blocks its inspection left out. */
  lensTable: request<{ text: string; index: number; topK?: number }, LayerLens[]>((session, { text, index, topK }, { signal }) =>
    lensTable(session.model, text, index, { residuals: session.residuals, topK, signal }),
  ),
  faithfulness: request<FaithfulnessParams, FaithfulnessWithCircuit>(async (session, { text, hintPattern, circuit, transcoders, ...options }, { signal }) => {
    const report = await checkFaithfulness(session.model, text, { ...options, hintPattern: compilePattern(hintPattern), signal });
    return circuit ? withCircuit(session.model, report, { transcoders, required: circuit === "required", signal }) : report;
  }),
  /** Train probes at every residual hook (or the given hooks) on a dataset, or on the JSONL file that holds one. */
  trainProbes: request<TrainProbesParams, ProbeTraining>(async (session, { dataFile, dataset, root, ...options }, { signal, progress }) =>
    trainProbes(session.model, dataset ?? (await readProbeDatasetAsync(dataFile, root === undefined ? {} : { root })), {
      ...options,
      signal,
      onHook: (_hook, i, total) => progress(i, total),
    }),
  ),
  // The probe may have crossed a process boundary: check it as if read from disk.
  applyProbe: request<{ probe: ProbeFile; text: string }, ProbeApplication>((session, { probe, text }, { signal }) =>
    applyProbe(session.model, validateProbe(probe, "<probe from the editor>"), text, { signal }),
  ),
  ...PATCHING_REQUESTS,
  ...CIRCUIT_REQUESTS,
  ...FEATURE_FILE_REQUESTS,
  /** Quick audit of one prompt; probe files in the config resolve against baseDir. */
  audit: request<{ text: string; config: AuditConfig; baseDir: string }, PromptAudit>((session, { text, config, baseDir }, { signal }) =>
    auditPrompt(session.model, text, config, { signal, probes: probeMonitors(session.model, config, baseDir) }),
  ),
  /** Each token's strongest SAE features (the SAE folder's feature-stats.json names them when present). */
  features: request<{ text: string; saeFolder: string; topK?: number; focus?: number }, TokenFeaturesResult>((session, { text, saeFolder, topK, focus }, { signal }) =>
    tokenFeatures(session.model, session.saes.get(saeFolder), text, { topK, focus, signal }),
  ),
  /** The continuation of `text` with and without one SAE feature edited at every position. */
  steer: request<{ text: string; saeFolder: string; edit: FeatureEdit; maxNewTokens?: number; temperature?: number; seed?: number; stop?: string[] }, SteeringResult>(
    (session, { text, saeFolder, edit, ...options }, { signal, progress }) => steerWithFeature(session.model, session.saes.get(saeFolder).sae, text, edit, { ...options, signal, onToken: progress }),
  ),
};

export type Requests = typeof REQUESTS;

/** The catalogue as a method map: what the worker protocol and every client are typed by. */
export type Methods = { [K in keyof Requests & string]: Requests[K] extends Request<infer P, infer R> ? { params: P; result: R } : never };
export type RequestName = keyof Methods;
export type ParamsOf<K extends RequestName> = Methods[K]["params"];
export type ResultOf<K extends RequestName> = Methods[K]["result"];

/** Each request bound to one session: the table a server dispatches on. */
export type BoundRequests = { [K in RequestName]: (params: ParamsOf<K>, context: RequestContext) => Promise<ResultOf<K>> };

export function bindRequests(session: ModelSession): BoundRequests {
  const bound: Record<string, (params: unknown, context: RequestContext) => Promise<unknown>> = {};
  for (const [name, spec] of Object.entries(REQUESTS) as Array<[string, Request<unknown, unknown>]>) {
    bound[name] = (params, context) => spec.run(session, params, context);
  }
  return bound as BoundRequests;
}

function compilePattern(source: string | undefined): RegExp | undefined {
  if (!source) return undefined;
  // Settings may come from a workspace someone else wrote: refuse patterns that can backtrack forever.
  return compileGuardedPattern(source, "", "The hint pattern");
}
