/**
 * A traced graph as it crosses processes: from the worker (links packed by node index, see
 * requests/circuits.ts) to the extension, and from there to the page. VS Code's webview messages
 * carry typed arrays as raw bytes beside the JSON of the rest, so links go as three typed arrays
 * (42k links: 0.7 MB) instead of ~40 characters of JSON and an object each, parsed twice on the
 * way. No node or vscode imports: the page bundles this module.
 */
import type { GraphFile } from "../circuits/graph-json";
import type { PackedGraphFile, PackedLinks } from "../requests/circuits";
import { readGraph, type PanelGraph, type PanelLink } from "./circuit-graph";
import type { CircuitPanelState } from "./circuit-panel";

export type { PackedLinks };

export type PostedGraph = Omit<NonNullable<CircuitPanelState["graph"]>, "links"> & { readonly links: PackedLinks };

/** The state as posted to the page: the graph's links packed. */
export type PostedCircuitState = Omit<CircuitPanelState, "graph"> & { readonly graph?: PostedGraph | null };

export function packLinks(links: readonly PanelLink[]): PackedLinks {
  const source = new Int32Array(links.length);
  const target = new Int32Array(links.length);
  const weight = new Float64Array(links.length);
  links.forEach((link, k) => {
    source[k] = link.source;
    target[k] = link.target;
    weight[k] = link.weight;
  });
  return { source, target, weight };
}

export function unpackLinks(packed: PackedLinks): PanelLink[] {
  const { source, target, weight } = packed;
  if (target.length !== source.length || weight.length !== source.length) throw new Error(`packed links disagree in length (${source.length}, ${target.length}, ${weight.length})`);
  return Array.from(source, (s, k) => ({ source: s, target: target[k], weight: weight[k] }));
}

/** The state as posted: its graph (when it has one) with packed links. */
export function postedState(state: CircuitPanelState): PostedCircuitState {
  const { graph, ...rest } = state;
  if (graph === undefined) return rest;
  return { ...rest, graph: graph && { ...graph, links: packLinks(graph.links) } };
}

/** The page's side of postedState. */
export function receivedState(posted: PostedCircuitState): CircuitPanelState {
  const { graph, ...rest } = posted;
  if (graph === undefined) return rest;
  return { ...rest, graph: graph && { ...graph, links: unpackLinks(graph.links) } };
}

/** The panel's graph of a packed graph file: nodes and metadata read (and checked) as from a file, links as packed. */
export function readPackedGraph(packed: PackedGraphFile, fileName: string): PanelGraph {
  const graph = readGraph({ ...packed, links: [] }, fileName);
  const links = unpackLinks(packed.links);
  const n = graph.nodes.length;
  const bad = links.findIndex((l) => !(l.source >= 0 && l.source < n && l.target >= 0 && l.target < n && Number.isFinite(l.weight)));
  if (bad >= 0) throw new Error(`${fileName}: link ${bad} joins node ${links[bad].source} to ${links[bad].target} (the graph has ${n}) with weight ${links[bad].weight}`);
  return { ...graph, links };
}

/** circuit-tracer's file of a packed graph: links by node id again (what Save and Export write). */
export function unpackGraphFile(packed: PackedGraphFile): GraphFile {
  const ids = packed.nodes.map((node) => node.node_id);
  return { ...packed, links: unpackLinks(packed.links).map((l) => ({ source: ids[l.source], target: ids[l.target], weight: l.weight })) };
}
