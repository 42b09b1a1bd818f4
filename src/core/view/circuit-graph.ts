/**
 * An attribution graph as the circuit panel holds it: circuit-tracer's graph JSON (the schema of
 * core/circuits/graph-json.ts, which its frontend and Neuronpedia read) checked field by field and
 * turned into index-based nodes and links on a layer x token grid. Pure and free of Node modules:
 * the panel's page bundles it.
 */
import type { GraphFile, GraphFileNode } from "../circuits/graph-json";

export type NodeKind = "feature" | "error" | "embedding" | "logit";

export interface PanelNode {
  readonly id: string;
  readonly kind: NodeKind;
  /** Grid row: 0 for token embeddings, layer + 1 for features and errors, the top row for logits. */
  readonly row: number;
  /** Token position (ctx_idx). */
  readonly pos: number;
  /** Feature index within its layer (features), vocabulary index (logits), -1 otherwise. */
  readonly feature: number;
  readonly label: string;
  readonly activation: number | null;
  /** circuit-tracer's cumulative influence share (lower: more influential); null when the file has none. */
  readonly influence: number | null;
  /** The logit's probability (logits), 0 otherwise. */
  readonly probability: number;
  readonly isTarget: boolean;
}

export interface PanelLink {
  readonly source: number;
  readonly target: number;
  readonly weight: number;
}

export type QParams = GraphFile["qParams"];

export interface PanelGraph {
  readonly metadata: GraphFile["metadata"];
  readonly qParams: QParams;
  readonly tokens: readonly string[];
  /** Rows on the grid: embeddings, one per layer, logits. */
  readonly rows: number;
  readonly nodes: readonly PanelNode[];
  readonly links: readonly PanelLink[];
  /** What the reader had to guess, said above the graph. */
  readonly warnings: readonly string[];
}

const KINDS: Record<GraphFileNode["feature_type"], NodeKind> = {
  "cross layer transcoder": "feature",
  "mlp reconstruction error": "error",
  embedding: "embedding",
  logit: "logit",
};

export const EMPTY_QPARAMS: QParams = { pinnedIds: [], supernodes: [], linkType: "both", clickedId: "", sg_pos: "" };

/** A graph file that cannot be shown; the message names the file, the fault and the fix. */
export class GraphFileError extends Error {}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Only the fields circuit-tracer defines, each checked; anything else in the file is kept by the writer, not read. */
export function parseQParams(value: unknown): QParams {
  if (!isObject(value)) return EMPTY_QPARAMS;
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : []);
  const supernodes = Array.isArray(value.supernodes) ? value.supernodes.map(strings).filter((s) => s.length >= 2) : [];
  const text = (v: unknown, fallback: string) => (typeof v === "string" ? v : fallback);
  return {
    pinnedIds: strings(value.pinnedIds),
    supernodes,
    linkType: text(value.linkType, "both"),
    clickedId: text(value.clickedId, ""),
    sg_pos: text(value.sg_pos, ""),
  };
}

/**
 * The graph in `text` (the contents of `fileName`), or a GraphFileError saying what is wrong.
 * Links between unknown nodes are faults, not silently dropped: a graph missing parts would
 * mislead.
 */
export function parseGraphFile(text: string, fileName: string): PanelGraph {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw graphFileError(fileName, `it is not JSON (${(error as Error).message})`);
  }
  return readGraph(raw, fileName);
}

function graphFileError(fileName: string, what: string): GraphFileError {
  return new GraphFileError(`${fileName} is not a circuit-tracer graph Loupe can show: ${what}. Write one with \`loupe trace PROMPT --out ${fileName}\` or Loupe: Trace Circuit…, or export it from circuit-tracer (create_graph_files).`);
}

/** The graph in a parsed file (or a trace's graph as the worker sent it: no text to write and parse again), checked as parseGraphFile checks it. */
export function readGraph(raw: unknown, fileName: string): PanelGraph {
  const fail = (what: string): never => {
    throw graphFileError(fileName, what);
  };
  if (!isObject(raw)) return fail("the top level is not an object");
  if (raw.format === "loupe-compact-graph") return fail("it is Loupe's compact form (--compact), which only Loupe's scripts read; write it without --compact");
  if (!isObject(raw.metadata)) return fail('it has no "metadata" object');
  if (!Array.isArray(raw.nodes)) return fail('it has no "nodes" list');
  if (!Array.isArray(raw.links)) return fail('it has no "links" list');
  const metadata = raw.metadata as GraphFile["metadata"];
  const tokens = Array.isArray(metadata.prompt_tokens) ? metadata.prompt_tokens.map(asText) : [];

  const index = new Map<string, number>();
  const clashes: string[] = [];
  let maxLayer = -1;
  const parsed = raw.nodes.map((n: unknown, i: number) => {
    if (!isObject(n)) return fail(`node ${i} is not an object`);
    const id = n.node_id;
    if (typeof id !== "string" || id === "") return fail(`node ${i} has no node_id`);
    const kind = KINDS[n.feature_type as GraphFileNode["feature_type"]];
    if (!kind) return fail(`node ${id} has ${n.feature_type === undefined ? "no feature_type" : `feature_type ${JSON.stringify(n.feature_type)}`} (expected one of ${Object.keys(KINDS).map((k) => JSON.stringify(k)).join(", ")})`);
    const first = index.get(id);
    if (first === undefined) index.set(id, i);
    // circuit-tracer's error ids ("0_{layer}_{pos}") can equal a layer-0 feature's ("0_{feature}_{pos}"):
    // links naming such an id cannot tell them apart, so they go to the first node; anything else twice is a fault.
    else if (n.feature_type === "mlp reconstruction error" && KINDS[(raw.nodes as Json[])[first].feature_type as GraphFileNode["feature_type"]] === "feature") clashes.push(id);
    else return fail(`node ${id} appears twice`);
    const pos = n.ctx_idx;
    if (!Number.isInteger(pos) || (pos as number) < 0) return fail(`node ${id} has ctx_idx ${JSON.stringify(pos)} (expected a token position)`);
    const layer = kind === "embedding" ? -1 : Number(n.layer);
    if (kind !== "embedding" && !(Number.isInteger(layer) && layer >= 0)) return fail(`node ${id} has layer ${JSON.stringify(n.layer)} (expected a layer number)`);
    if (kind === "feature" || kind === "error") maxLayer = Math.max(maxLayer, layer);
    return { n, id, kind, pos: pos as number, layer };
  });
  const logitLayer = Math.max(maxLayer + 1, ...parsed.filter((p) => p.kind === "logit").map((p) => p.layer));
  const number = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const nodes: PanelNode[] = parsed.map(({ n, id, kind, pos, layer }) => ({
    id,
    kind,
    row: kind === "embedding" ? 0 : kind === "logit" ? logitLayer : layer + 1,
    pos,
    feature: kind === "feature" ? featureIndex(id, n) : kind === "logit" ? (number(n.feature) ?? -1) : -1,
    label: typeof n.clerp === "string" && n.clerp ? n.clerp : defaultLabel(kind, id, layer, pos, tokens),
    activation: number(n.activation),
    influence: number(n.influence),
    probability: number(n.token_prob) ?? 0,
    isTarget: n.is_target_logit === true,
  }));
  const links: PanelLink[] = raw.links.map((l: unknown, i: number) => {
    if (!isObject(l)) return fail(`link ${i} is not an object`);
    const source = index.get(asText(l.source));
    const target = index.get(asText(l.target));
    if (source === undefined || target === undefined) return fail(`link ${i} joins ${JSON.stringify(l.source)} to ${JSON.stringify(l.target)}, and ${source === undefined ? "the first" : "the second"} is no node of the graph`);
    const weight = l.weight;
    if (typeof weight !== "number" || !Number.isFinite(weight)) return fail(`link ${i} (${asText(l.source)} -> ${asText(l.target)}) has weight ${JSON.stringify(weight)}`);
    return { source, target, weight };
  });
  const maxPos = Math.max(tokens.length - 1, ...nodes.map((n) => n.pos));
  const paddedTokens = Array.from({ length: maxPos + 1 }, (_, p) => tokens[p] ?? `#${p}`);
  const warnings = clashes.length ? [`${clashes.length} error node id${clashes.length === 1 ? "" : "s"} (${clashes.slice(0, 3).join(", ")}${clashes.length > 3 ? ", …" : ""}) equal a layer-0 feature's id; links naming ${clashes.length === 1 ? "it" : "them"} are drawn to the feature.`] : [];
  return { metadata, qParams: parseQParams(raw.qParams), tokens: paddedTokens, rows: logitLayer + 1, nodes, links, warnings };
}

/** The feature index: from the node id "{layer}_{feature}_{pos}" (circuit-tracer's `feature` field is a Cantor pair). */
function featureIndex(id: string, n: Json): number {
  const m = /^\d+_(\d+)_\d+$/.exec(id);
  return m ? Number(m[1]) : typeof n.feature === "number" ? n.feature : -1;
}

function defaultLabel(kind: NodeKind, id: string, layer: number, pos: number, tokens: readonly string[]): string {
  const token = JSON.stringify(tokens[pos] ?? "");
  switch (kind) {
    case "embedding":
      return `Token ${token}@${pos}`;
    case "error":
      return `Error L${layer}@${pos}`;
    case "feature":
      return `Feature L${layer}/${featureIndex(id, {})}@${pos}`;
    case "logit":
      return `Logit ${id}`;
  }
}

/** Where a node's input comes from (or its output goes): the share of |weight| by the other end's kind. */
export interface LinkShares {
  readonly features: number;
  readonly errors: number;
  readonly tokens: number;
  /** Outputs only: the share going straight to logits. */
  readonly logits: number;
  readonly total: number;
}

export function linkShares(graph: PanelGraph, links: readonly number[], end: "source" | "target"): LinkShares {
  let features = 0;
  let errors = 0;
  let tokens = 0;
  let logits = 0;
  for (const k of links) {
    const link = graph.links[k];
    const kind = graph.nodes[link[end]].kind;
    const w = Math.abs(link.weight);
    if (kind === "feature") features += w;
    else if (kind === "error") errors += w;
    else if (kind === "embedding") tokens += w;
    else logits += w;
  }
  const total = features + errors + tokens + logits;
  const share = (v: number) => (total > 0 ? v / total : 0);
  return { features: share(features), errors: share(errors), tokens: share(tokens), logits: share(logits), total };
}

/** A node's input and output links among the `shown` ones, strongest first. */
export function nodeLinks(graph: PanelGraph, node: number, shown?: Uint8Array): { inputs: number[]; outputs: number[] } {
  const inputs: number[] = [];
  const outputs: number[] = [];
  graph.links.forEach((l, k) => {
    if (shown && !shown[k]) return;
    if (l.target === node) inputs.push(k);
    if (l.source === node) outputs.push(k);
  });
  const byWeight = (a: number, b: number) => Math.abs(graph.links[b].weight) - Math.abs(graph.links[a].weight);
  return { inputs: inputs.sort(byWeight), outputs: outputs.sort(byWeight) };
}

/** A node's facts as the panel lists them: kind, layer, token and position, feature, activation, influence, probability. */
export function nodeFacts(graph: PanelGraph, index: number): string[] {
  const node = graph.nodes[index];
  const place = node.kind === "embedding" ? [] : [node.kind === "logit" ? "output" : `layer ${node.row - 1}`];
  const facts = [node.kind, ...place, `token ${JSON.stringify(graph.tokens[node.pos] ?? "")}@${node.pos}`];
  if (node.kind === "feature") facts.push(`feature ${node.feature}`);
  if (node.activation !== null) facts.push(`activation ${node.activation.toFixed(3)}`);
  if (node.influence !== null) facts.push(`cumulative influence ${node.influence.toFixed(3)}`);
  if (node.kind === "logit") facts.push(`p = ${node.probability.toFixed(3)}`);
  return facts;
}

/** What the live region says when the keyboard reaches a node: its label, facts and its links among the `shown` ones. */
export function nodeAnnouncement(graph: PanelGraph, index: number, shown?: Uint8Array): string {
  const { inputs, outputs } = nodeLinks(graph, index, shown);
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  return `${graph.nodes[index].label}: ${nodeFacts(graph, index).join(", ")}; ${count(inputs.length, "input link")}, ${count(outputs.length, "output link")}.`;
}

/** The supernode a qParams entry describes: circuit-tracer writes [label, ...node ids]. */
export function supernodeOf(entry: readonly string[]): { label: string; members: string[] } {
  return { label: entry[0], members: entry.slice(1) };
}

/** qParams with the panel's pins and supernodes, dropping ids the graph does not have. */
export function withSubgraph(graph: PanelGraph, pinned: readonly string[], supernodes: readonly { label: string; members: readonly string[] }[], clickedId: string): QParams {
  const known = new Set(graph.nodes.map((n) => n.id));
  return {
    ...graph.qParams,
    pinnedIds: [...new Set(pinned.filter((id) => known.has(id)))],
    supernodes: supernodes.map((s) => [s.label, ...s.members.filter((id) => known.has(id))]).filter((s) => s.length >= 2),
    clickedId: known.has(clickedId) ? clickedId : "",
  };
}

/**
 * Each prompt token's [start, end) in metadata.prompt, when the tokens spell it out (a leading
 * BOS that is not in the text gets [0, 0]); null when they do not (the reader cannot place them).
 */
export function promptTokenOffsets(graph: PanelGraph): [number, number][] | null {
  const prompt = graph.metadata.prompt;
  const tokens = graph.metadata.prompt_tokens;
  if (typeof prompt !== "string" || !Array.isArray(tokens)) return null;
  const offsets: [number, number][] = [];
  let at = 0;
  for (const [i, token] of tokens.entries()) {
    if (prompt.startsWith(token, at) && token !== "") {
      offsets.push([at, at + token.length]);
      at += token.length;
    } else if (i === 0) offsets.push([0, 0]);
    else return null;
  }
  return at === prompt.length ? offsets : null;
}

/** A file's value as text without calling its methods: `String({"toString": 1})` throws. */
function asText(value: unknown): string {
  return typeof value === "object" && value !== null ? (JSON.stringify(value) ?? "") : String(value);
}
