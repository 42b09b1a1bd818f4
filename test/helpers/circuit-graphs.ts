/**
 * Synthetic attribution graphs in circuit-tracer's node order (features by layer, errors, tokens,
 * logits) with a dense adjacency, for the circuit panel's tests and bench:editor's large graph.
 * Every source sits below its target (lower layer, same or earlier position), as in a real graph.
 */
import { toGraphFile, type AttributionGraph, type GraphFile } from "../../src/core/circuits";

export interface SyntheticGraphOptions {
  readonly layers: number;
  readonly tokens: number;
  readonly featuresPerCell: number;
  /** Input links per feature and logit node (fewer where fewer sources exist). */
  readonly linksPerNode: number;
  readonly seed?: number;
}

/** Mulberry32: a small deterministic generator, so failures reproduce. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function syntheticGraph(options: SyntheticGraphOptions): AttributionGraph {
  const { layers: L, tokens: T, featuresPerCell: K, linksPerNode } = options;
  const rand = random(options.seed ?? 1);
  const features: AttributionGraph["features"][number][] = [];
  for (let layer = 0; layer < L; layer++) for (let pos = 0; pos < T; pos++) for (let k = 0; k < K; k++) features.push({ layer, pos, feature: 100 + k * 7 + ((layer * 13 + pos) % 7), activation: 0.5 + rand() * 4 });
  const nFeatures = features.length;
  const nErrors = L * T;
  const layout = { nFeatures, nErrors, nTokens: T, nLogits: 2 };
  const n = nFeatures + nErrors + T + 2;
  const adjacency = new Float32Array(n * n);
  const layerOf = (i: number) => (i < nFeatures ? features[i].layer : i < nFeatures + nErrors ? Math.floor((i - nFeatures) / T) : i < nFeatures + nErrors + T ? -1 : L);
  const posOf = (i: number) => (i < nFeatures ? features[i].pos : i < nFeatures + nErrors ? (i - nFeatures) % T : i < nFeatures + nErrors + T ? i - nFeatures - nErrors : T - 1);
  for (let t = 0; t < n; t++) {
    const isFeature = t < nFeatures;
    const isLogit = t >= n - 2;
    if (!isFeature && !isLogit) continue;
    const sources: number[] = [];
    for (let s = 0; s < n - 2; s++) if (layerOf(s) < layerOf(t) && posOf(s) <= posOf(t)) sources.push(s);
    for (let k = 0; k < linksPerNode && sources.length > 0; k++) {
      const s = sources.splice(Math.floor(rand() * sources.length), 1)[0];
      adjacency[t * n + s] = (rand() < 0.7 ? 1 : -1) * (0.01 + rand() ** 3);
    }
  }
  // Every feature, error and token gets a way out (to a node above, else a logit), so every node
  // has influence on the logits and a threshold of 1 shows the whole graph.
  for (let s = 0; s < n - 2; s++) {
    let out = false;
    for (let t = 0; t < n && !out; t++) out = adjacency[t * n + s] !== 0;
    if (out) continue;
    const targets: number[] = [];
    for (let t = 0; t < nFeatures; t++) if (layerOf(s) < layerOf(t) && posOf(s) <= posOf(t)) targets.push(t);
    const t = targets.length > 0 ? targets[Math.floor(rand() * targets.length)] : n - 2;
    adjacency[t * n + s] = 0.01 + rand() ** 3;
  }
  const tokens = Array.from({ length: T }, (_, p) => 100 + p);
  return {
    tokens,
    nLayers: L,
    features,
    targets: [
      { token: 7, label: " Leo", probability: 0.7, vector: new Float32Array(0) },
      { token: 8, label: " Mia", probability: 0.2, vector: new Float32Array(0) },
    ],
    layout,
    adjacency,
    activeFeatureCount: nFeatures,
    transcoderKind: "plt",
  };
}

/** The whole graph (every link) as circuit-tracer's graph JSON. */
export function syntheticGraphFile(graph: AttributionGraph, nodeInfluence?: Float64Array): GraphFile {
  const n = graph.adjacency.length === 0 ? 0 : Math.round(Math.sqrt(graph.adjacency.length));
  const edgeMask = new Uint8Array(n * n);
  for (let k = 0; k < n * n; k++) edgeMask[k] = graph.adjacency[k] !== 0 ? 1 : 0;
  const everything = { nodeMask: new Uint8Array(n).fill(1), edgeMask, nodeInfluence: nodeInfluence ?? new Float64Array(n) };
  return toGraphFile(graph, everything, {
    slug: "synthetic",
    prompt: graph.tokens.map((id) => `t${id}`).join(" "),
    tokenText: (id) => ` t${id}`,
    dVocab: 1000,
    nodeThreshold: 1,
    info: { generator: "test", model: "reference" },
  });
}
