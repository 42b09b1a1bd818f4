/**
 * The circuit panel's state and message protocol. The page draws the graph and keeps the view
 * (zoom, sliders, selection, pins) itself; the extension reveals tokens, runs Check through the
 * core's validation interventions, and writes graph files. Every request is checked against the
 * graph on show before anything acts on it.
 */
import type { FeatureEdit, InterventionResult } from "../circuits/intervene";
import type { TranscoderFeatureDashboard } from "../circuits/transcoder-stats";
import type { NeuronpediaTranscoders } from "../sae/releases/neuronpedia";
import type { TimelineMark } from "../timeline";
import type { PanelGraph, QParams } from "./circuit-graph";
import { featureStatsView, type FeatureStatsView } from "./feature-dashboard";
import type { ReadyRequest } from "./panel-protocol";

/** A Check run: what was edited and the target's predicted and actual change. */
export interface CheckOutcome extends InterventionResult {
  readonly nodeIds: readonly string[];
  /** The same edits as `loupe intervene` options. */
  readonly command: string;
  readonly kind: "zero" | "scale";
  readonly factor?: number;
}

export interface CircuitPanelState {
  readonly title: string;
  /** Changes whenever the graph does: the page keeps its view, pins and sliders while it stays. */
  readonly graphKey: string;
  /**
   * Null when the file could not be read; `error` says why. Absent from an update for the graph the
   * page already holds (the same graphKey): a traced graph is megabytes of JSON, and a feature card
   * or a Check result should not carry it again.
   */
  readonly graph?: PanelGraph | null;
  readonly error?: string;
  /** Why Check cannot run on this graph (another model, no prompt), shown above it. */
  readonly notice?: string;
  readonly canCheck: boolean;
  /** The graph's file in the workspace, when it has one ("Save" writes it; otherwise asks for a name). */
  readonly file?: string;
  readonly check?: CheckOutcome;
  /** The last feature card asked for (a feature node's transcoder feature dashboard). */
  readonly feature?: CircuitFeatureCard;
  /** Where Neuronpedia hosts the graph's transcoder set: its feature nodes link there. */
  readonly neuronpedia?: NeuronpediaTranscoders;
  /** A trace in progress, or why the last one gave no graph; the graph on show (if any) stays. */
  readonly status?: string;
  /** A fresh trace's hops so far (command, worker, extension); the page adds its own (bench:editor reads them). */
  readonly timeline?: readonly TimelineMark[];
}

/**
 * A feature node's card: the transcoder feature's dashboard (label, density, activation histogram,
 * top contexts, logit effects) in the SAE dashboard's form, so the page draws it with the same pieces.
 */
export interface CircuitFeatureCard extends Partial<FeatureStatsView> {
  readonly nodeId: string;
  readonly layer: number;
  readonly feature: number;
  readonly label: string;
  readonly hasStats: boolean;
  /** Without statistics: how to make them. */
  readonly note?: string;
  readonly promoted: FeatureStatsView["promoted"];
  readonly suppressed: FeatureStatsView["suppressed"];
}

/** The card of feature node `nodeId` from the transcoderFeature dashboard of its set (`transcoders`: the set as the user names it). */
export function circuitFeatureCard(nodeId: string, dashboard: TranscoderFeatureDashboard, transcoders: string): CircuitFeatureCard {
  const { layer, feature, label, summary, histogram, corpus, logits } = dashboard;
  const base = { nodeId, layer, feature, label, promoted: logits.promoted, suppressed: logits.suppressed };
  if (!summary || !histogram || !corpus) {
    return { ...base, hasStats: false, note: `No statistics for layer ${layer} of ${transcoders}: compute them with \`loupe transcoder stats CORPUS.jsonl --transcoders ${transcoders}\`.` };
  }
  return { ...base, hasStats: true, ...featureStatsView(summary, histogram, corpus, logits) };
}

/** The card of a feature whose dashboard could not be made (the request failed): says why instead of loading forever. */
export function circuitFeatureCardFailed(nodeId: string, layer: number, feature: number, reason: string): CircuitFeatureCard {
  return { nodeId, layer, feature, label: `L${layer} #${feature}`, hasStats: false, note: `No dashboard for this feature: ${reason}`, promoted: [], suppressed: [] };
}

export type CircuitPanelRequest =
  | ReadyRequest
  | { readonly type: "reveal"; readonly pos: number }
  | { readonly type: "feature"; readonly nodeId: string }
  | { readonly type: "check"; readonly nodeIds: readonly string[]; readonly kind: "zero" | "scale"; readonly factor?: number }
  | { readonly type: "save"; readonly qParams: QParams }
  | { readonly type: "export"; readonly qParams: QParams };

const MAX_IDS = 10_000;
const MAX_TEXT = 100_000;

const isStringList = (v: unknown, max: number): v is string[] => Array.isArray(v) && v.length <= max && v.every((s) => typeof s === "string" && s.length <= 200);

function parseQParamsMessage(v: unknown, known: ReadonlySet<string>): QParams | null {
  if (typeof v !== "object" || v === null) return null;
  const q = v as Record<string, unknown>;
  if (!isStringList(q.pinnedIds, MAX_IDS) || !q.pinnedIds.every((id) => known.has(id))) return null;
  if (!Array.isArray(q.supernodes) || q.supernodes.length > MAX_IDS) return null;
  // circuit-tracer's supernode: [label, ...member ids].
  if (!q.supernodes.every((s) => isStringList(s, MAX_IDS) && s.length >= 2 && s.slice(1).every((id) => known.has(id)))) return null;
  if (typeof q.linkType !== "string" || q.linkType.length > 32) return null;
  if (typeof q.clickedId !== "string" || (q.clickedId !== "" && !known.has(q.clickedId))) return null;
  if (typeof q.sg_pos !== "string" || q.sg_pos.length > MAX_TEXT) return null;
  return { pinnedIds: q.pinnedIds, supernodes: q.supernodes as string[][], linkType: q.linkType, clickedId: q.clickedId, sg_pos: q.sg_pos };
}

export type TraceEvent = { readonly kind: "tracing"; readonly prompt: string } | { readonly kind: "cancelled" } | { readonly kind: "failed"; readonly reason: string };

/**
 * What the panel says while a trace runs and when one ends without a graph, so a cancelled or failed
 * trace never leaves it saying "Tracing…"; `showingGraph`: an earlier graph stays on show meanwhile.
 */
export function traceStatus(event: TraceEvent, showingGraph: boolean): string {
  switch (event.kind) {
    case "tracing":
      return `Tracing the next token of ${event.prompt}…${showingGraph ? " The graph below is the previous one until it is done." : ""}`;
    case "cancelled":
      return `The trace was cancelled.${showingGraph ? " The graph below is the previous one." : " Run Loupe: Trace Circuit… again to draw a graph."}`;
    case "failed":
      return `The trace failed: ${event.reason}${showingGraph ? " The graph below is the previous one." : ""}`;
  }
}

/** The state as an open page needs it: without the graph when the page was last sent this graphKey. */
export function stateUpdate(state: CircuitPanelState, sentGraphKey: string | undefined): CircuitPanelState {
  if (state.graphKey !== sentGraphKey || !state.graph) return state;
  const { graph: _held, ...rest } = state;
  return rest;
}

/** A well-formed request about `graph`, or null (malformed, unknown nodes, or no graph shown). */
export function parseCircuitPanelRequest(message: unknown, graph: PanelGraph | null): CircuitPanelRequest | null {
  if (typeof message !== "object" || message === null) return null;
  const m = message as Record<string, unknown>;
  if (m.type === "ready") return Object.keys(m).length === 1 ? { type: "ready" } : null;
  if (!graph) return null;
  const known = new Set(graph.nodes.map((n) => n.id));
  switch (m.type) {
    case "reveal":
      return Number.isInteger(m.pos) && (m.pos as number) >= 0 && (m.pos as number) < graph.tokens.length ? { type: "reveal", pos: m.pos as number } : null;
    case "feature":
      return typeof m.nodeId === "string" && graph.nodes.some((n) => n.id === m.nodeId && n.kind === "feature") && Object.keys(m).length === 2 ? { type: "feature", nodeId: m.nodeId } : null;
    case "check": {
      if (!isStringList(m.nodeIds, MAX_IDS) || m.nodeIds.length === 0) return null;
      const features = new Set(graph.nodes.filter((n) => n.kind === "feature").map((n) => n.id));
      if (!m.nodeIds.every((id) => features.has(id))) return null;
      if (m.kind === "zero") return m.factor === undefined ? { type: "check", nodeIds: [...new Set(m.nodeIds)], kind: "zero" } : null;
      if (m.kind === "scale") return typeof m.factor === "number" && Number.isFinite(m.factor) ? { type: "check", nodeIds: [...new Set(m.nodeIds)], kind: "scale", factor: m.factor } : null;
      return null;
    }
    case "save":
    case "export": {
      const qParams = parseQParamsMessage(m.qParams, known);
      return qParams ? { type: m.type, qParams } : null;
    }
    default:
      return null;
  }
}

/** The core's feature edits for the checked nodes (feature node ids "{layer}_{feature}_{pos}"). */
export function featureEdits(graph: PanelGraph, nodeIds: readonly string[], kind: "zero" | "scale", factor?: number): FeatureEdit[] {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  return nodeIds.map((id) => {
    const node = byId.get(id);
    if (!node || node.kind !== "feature") throw new Error(`${id} is not a feature node of this graph`);
    return { layer: node.row - 1, pos: node.pos, feature: node.feature, kind, ...(kind === "scale" ? { value: factor } : {}) };
  });
}

/** The same edits as `loupe intervene` arguments, so a Check can be repeated at the command line. */
export function interveneArguments(edits: readonly FeatureEdit[]): string {
  return edits.map((e) => (e.kind === "zero" ? `--zero ${e.layer}/${e.feature}@${e.pos}` : `--${e.kind} ${e.layer}/${e.feature}@${e.pos}=${e.value}`)).join(" ");
}

/**
 * Whether Check can run this graph on the loaded model: it must have been traced by Loupe on a
 * model of the same name, with its prompt. Returns the reason it cannot, or undefined.
 */
export function checkRefusal(graph: PanelGraph, loadedModel: string | undefined): string | undefined {
  const info = graph.metadata.info ?? {};
  const traced = typeof info.model === "string" ? info.model : undefined;
  if (typeof graph.metadata.prompt !== "string" || graph.metadata.prompt === "") return "This graph has no prompt in its metadata, so Check cannot rerun it.";
  if (!traced) return `This graph comes from another tool (scan ${JSON.stringify(graph.metadata.scan)}), so Loupe does not know its model: Check needs a graph traced in Loupe (Loupe: Trace Circuit… or \`loupe trace --out\`).`;
  if (!loadedModel) return `This graph was traced on the model "${traced}": select it (Loupe: Select Model…) to run Check.`;
  if (traced !== loadedModel) return `This graph was traced on the model "${traced}", but "${loadedModel}" is loaded: select "${traced}" (Loupe: Select Model…) to run Check. The graph itself is shown as saved.`;
  return undefined;
}
