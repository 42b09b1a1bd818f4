/**
 * Graph files in circuit-tracer's schema (frontend/graph_models.py), which its local frontend and
 * Neuronpedia's graph upload read: {metadata, qParams, nodes, links}. Node ids: feature
 * "{layer}_{feature}_{pos}", error "0_{layer}_{pos}", embedding "E_{token}_{pos}", logit
 * "{n_layers + 1}_{token}_{pos}" (a target that is not one token gets the virtual id
 * d_vocab + its index). `influence` is circuit-tracer's cumulative share: the fraction of all
 * influence held by nodes at least as influential. Links are pruned edges, source -> target.
 *
 * The compact form keeps the same content as columns and index triples: a tenth of the size for
 * large graphs, for Loupe's own tools.
 */
import type { AttributionGraph } from "./attribution";
import type { PruneResult } from "./prune";

export interface GraphFileNode {
  node_id: string;
  feature: number;
  layer: string;
  ctx_idx: number;
  feature_type: "cross layer transcoder" | "mlp reconstruction error" | "embedding" | "logit";
  token_prob: number;
  is_target_logit: boolean;
  run_idx: number;
  reverse_ctx_idx: number;
  jsNodeId: string;
  clerp: string;
  influence: number | null;
  activation: number | null;
}

export interface GraphFile {
  metadata: {
    slug: string;
    scan: string;
    transcoder_list: string[];
    prompt_tokens: string[];
    prompt: string;
    node_threshold: number;
    schema_version: 1;
    /** Loupe's additions (readers ignore unknown keys). */
    info?: Record<string, unknown>;
  };
  qParams: { pinnedIds: string[]; supernodes: string[][]; linkType: string; clickedId: string; sg_pos: string };
  nodes: GraphFileNode[];
  links: { source: string; target: string; weight: number }[];
}

export interface GraphFileOptions {
  readonly slug: string;
  readonly prompt: string;
  readonly tokenText: (id: number) => string;
  readonly dVocab: number;
  readonly nodeThreshold: number;
  /** Feature labels ("clerp") by "layer/feature". */
  readonly labels?: ReadonlyMap<string, string>;
  readonly info?: Record<string, unknown>;
}

function cantor(x: number, y: number): number {
  return ((x + y) * (x + y + 1)) / 2 + y;
}

/** The fraction of total influence held by nodes at least as influential as each node. */
export function cumulativeInfluence(nodeInfluence: Float64Array): Float64Array {
  const order = Array.from(nodeInfluence.keys()).sort((a, b) => nodeInfluence[b] - nodeInfluence[a]);
  let total = 0;
  for (const v of nodeInfluence) total += v;
  const out = new Float64Array(nodeInfluence.length);
  let running = 0;
  for (const i of order) {
    running += nodeInfluence[i];
    out[i] = total > 0 ? running / total : 0;
  }
  return out;
}

export function graphNodes(graph: AttributionGraph, options: Pick<GraphFileOptions, "tokenText" | "dVocab" | "labels">, influence?: Float64Array): GraphFileNode[] {
  const { nFeatures, nErrors, nTokens } = graph.layout;
  const L = graph.nLayers;
  const T = nTokens;
  const base = { token_prob: 0, is_target_logit: false, run_idx: 0, reverse_ctx_idx: 0, clerp: "", activation: null };
  const nodes: GraphFileNode[] = [];
  const inf = (i: number) => (influence ? influence[i] : null);
  graph.features.forEach((f, i) => {
    const id = `${f.layer}_${f.feature}_${f.pos}`;
    nodes.push({ ...base, node_id: id, feature: cantor(f.layer, f.feature), layer: String(f.layer), ctx_idx: f.pos, feature_type: "cross layer transcoder", jsNodeId: `${f.layer}_${f.feature}-0`, clerp: options.labels?.get(`${f.layer}/${f.feature}`) ?? "", influence: inf(i), activation: f.activation });
  });
  for (let e = 0; e < nErrors; e++) {
    const layer = Math.floor(e / T);
    const pos = e % T;
    nodes.push({ ...base, node_id: `0_${layer}_${pos}`, feature: -1, layer: String(layer), ctx_idx: pos, feature_type: "mlp reconstruction error", jsNodeId: `${layer}_${pos}-0`, influence: inf(nFeatures + e) });
  }
  graph.tokens.forEach((id, pos) => {
    nodes.push({ ...base, node_id: `E_${id}_${pos}`, feature: pos, layer: "E", ctx_idx: pos, feature_type: "embedding", jsNodeId: `E_${id}-${pos}`, influence: inf(nFeatures + nErrors + pos) });
  });
  graph.targets.forEach((t, j) => {
    const vocabIdx = t.contrast === undefined && t.token !== undefined ? t.token : options.dVocab + j;
    const layer = String(L + 1);
    nodes.push({
      ...base,
      node_id: `${layer}_${vocabIdx}_${T - 1}`,
      feature: vocabIdx,
      layer,
      ctx_idx: T - 1,
      feature_type: "logit",
      token_prob: t.probability,
      is_target_logit: j === 0,
      jsNodeId: `L_${vocabIdx}-${T - 1}`,
      clerp: `Output "${t.label}" (p=${t.probability.toFixed(3)})`,
      influence: inf(nFeatures + nErrors + nTokens + j),
    });
  });
  return nodes;
}

/** The graph file: pruned nodes (plus every embedding and logit) and pruned links. */
export function toGraphFile(graph: AttributionGraph, pruned: PruneResult, options: GraphFileOptions): GraphFile {
  const n = pruned.nodeMask.length;
  const all = graphNodes(graph, options, cumulativeInfluence(pruned.nodeInfluence));
  const links: GraphFile["links"] = [];
  const connected = new Set<number>();
  for (let t = 0; t < n; t++) {
    for (let s = 0; s < n; s++) {
      if (!pruned.edgeMask[t * n + s] || !pruned.nodeMask[t] || !pruned.nodeMask[s]) continue;
      links.push({ source: all[s].node_id, target: all[t].node_id, weight: graph.adjacency[t * n + s] });
      connected.add(s).add(t);
    }
  }
  const nodes = all.filter((node, i) => connected.has(i) || node.feature_type === "embedding" || node.feature_type === "logit");
  return {
    metadata: {
      slug: options.slug,
      scan: graph.scan ?? "loupe",
      transcoder_list: [],
      prompt_tokens: graph.tokens.map((id) => options.tokenText(id)),
      prompt: options.prompt,
      node_threshold: options.nodeThreshold,
      schema_version: 1,
      ...(options.info ? { info: options.info } : {}),
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: "both", clickedId: "", sg_pos: "" },
    nodes,
    links,
  };
}

/** The same content as columns: node fields as arrays, links as [source index, target index, weight] triples. */
export function toCompactGraphFile(file: GraphFile): Record<string, unknown> {
  const index = new Map(file.nodes.map((node, i) => [node.node_id, i]));
  const column = <K extends keyof GraphFileNode>(key: K) => file.nodes.map((node) => node[key]);
  return {
    format: "loupe-compact-graph",
    metadata: file.metadata,
    qParams: file.qParams,
    nodes: { node_id: column("node_id"), layer: column("layer"), ctx_idx: column("ctx_idx"), feature_type: column("feature_type"), feature: column("feature"), activation: column("activation"), influence: column("influence"), token_prob: column("token_prob"), clerp: column("clerp") },
    links: file.links.flatMap((l) => [index.get(l.source) as number, index.get(l.target) as number, +l.weight.toPrecision(6)]),
  };
}
