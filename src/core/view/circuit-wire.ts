/**
 * The circuit panel's state as it crosses to the page. VS Code's webview messages carry typed arrays
 * as raw bytes beside the JSON of the rest, so a graph's links go as three typed arrays (42k links:
 * 0.7 MB) instead of ~40 characters of JSON and an object each, parsed twice on the way. No node or
 * vscode imports: the page bundles this module.
 */
import type { PanelLink } from "./circuit-graph";
import type { CircuitPanelState } from "./circuit-panel";

export interface PackedLinks {
  readonly source: Int32Array;
  readonly target: Int32Array;
  readonly weight: Float64Array;
}

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
