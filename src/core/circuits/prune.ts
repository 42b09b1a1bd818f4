/**
 * Influence, pruning and scores of an attribution graph, with circuit-tracer's definitions
 * (graph.py). The adjacency is [targets, sources]: A[t, s] is s's direct effect on t.
 *
 *   normalised |A|: each row divided by its sum of absolute values
 *   influence     = w (Â + Â² + Â³ + ...), w = the logit targets' probabilities (zero elsewhere)
 *   pruning       keep nodes to cumulative influence `nodeThreshold`, then edges (scored by
 *                 Â[t, s] (influence[t] + w[t])) to cumulative `edgeThreshold`; tokens and logits
 *                 always stay; nodes left without edges are dropped until nothing changes
 *   replacement   = influence of tokens / influence of (tokens + errors)
 *   completeness  = share of each node's normalised input not from errors, weighted by its influence
 */

/** Node ranges of a graph laid out as circuit-tracer does: features, errors, tokens, logits. */
export interface NodeLayout {
  readonly nFeatures: number;
  readonly nErrors: number;
  readonly nTokens: number;
  readonly nLogits: number;
}

export function nodeCount(layout: NodeLayout): number {
  return layout.nFeatures + layout.nErrors + layout.nTokens + layout.nLogits;
}

/** Row-normalised |A| for an n x n matrix (rows of zeros stay zero). */
export function normaliseRows(A: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(A[i * n + j]);
    const inv = 1 / Math.max(s, 1e-10);
    for (let j = 0; j < n; j++) out[i * n + j] = Math.abs(A[i * n + j]) * inv;
  }
  return out;
}

/**
 * w (Â + Â² + ...) for a row-normalised Â of n nodes. An attribution graph is acyclic, so the
 * series ends (exactly: the products reach zero); `maxIterations` guards against a malformed one.
 */
export function influence(normalised: Float32Array, n: number, weights: Float64Array, maxIterations = 1000): Float64Array {
  const total = new Float64Array(n);
  let current = propagate(normalised, n, weights);
  for (let it = 0; it < maxIterations && current.some((v) => v !== 0); it++) {
    for (let j = 0; j < n; j++) total[j] += current[j];
    current = propagate(normalised, n, current);
  }
  return total;
}

/** v @ Â. */
function propagate(normalised: Float32Array, n: number, v: Float64Array): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (x === 0) continue;
    const row = i * n;
    for (let j = 0; j < n; j++) out[j] += x * normalised[row + j];
  }
  return out;
}

/** The score at which the cumulative share of `scores` (sorted descending) first reaches `threshold`. */
export function thresholdFor(scores: ArrayLike<number>, threshold: number): number {
  // Zeros add nothing to the cumulative share; most edge scores are zero, so sort only the rest.
  const positive = new Float64Array(scores.length);
  let count = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] > 0) positive[count++] = scores[i];
  if (count === 0) return 0;
  const sorted = positive.subarray(0, count).sort();
  let total = 0;
  for (let i = 0; i < count; i++) total += sorted[i];
  let cumulative = 0;
  for (let i = count - 1; i >= 0; i--) {
    cumulative += sorted[i];
    if (cumulative / total >= threshold) return sorted[i];
  }
  return sorted[0];
}

export function logitWeights(layout: NodeLayout, probabilities: ArrayLike<number>): Float64Array {
  const n = nodeCount(layout);
  const w = new Float64Array(n);
  for (let j = 0; j < layout.nLogits; j++) w[n - layout.nLogits + j] = probabilities[j];
  return w;
}

export interface PruneResult {
  readonly nodeMask: Uint8Array;
  /** n x n, 1 where the edge A[t, s] is kept. */
  readonly edgeMask: Uint8Array;
  /** Influence of every node on the logit targets (before pruning). */
  readonly nodeInfluence: Float64Array;
}

/** pruneGraph's result: the masks, and the whole graph's scores from the same influence. */
export interface PrunedGraph extends PruneResult {
  /** Scores of the whole graph (before pruning): graphScores of the same adjacency. */
  readonly scores: GraphScores;
}

export function pruneGraph(A: Float32Array, layout: NodeLayout, probabilities: ArrayLike<number>, nodeThreshold = 0.8, edgeThreshold = 0.98): PrunedGraph {
  const n = nodeCount(layout);
  const w = logitWeights(layout, probabilities);
  const normalisedA = normaliseRows(A, n);
  const nodeInfluence = influence(normalisedA, n, w);
  const scores = scoresOf(normalisedA, nodeInfluence, layout, w);
  const nodeCut = thresholdFor(nodeInfluence, nodeThreshold);
  const nodeMask = new Uint8Array(n);
  const alwaysFrom = n - layout.nLogits - layout.nTokens;
  for (let i = 0; i < n; i++) nodeMask[i] = i >= alwaysFrom || nodeInfluence[i] >= nodeCut ? 1 : 0;

  const pruned = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    if (!nodeMask[i]) continue;
    for (let j = 0; j < n; j++) if (nodeMask[j]) pruned[i * n + j] = A[i * n + j];
  }
  const normalised = normaliseRows(pruned, n);
  const edgeInfluence = influence(normalised, n, w);
  const edgeScores = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    const scale = edgeInfluence[i] + w[i];
    for (let j = 0; j < n; j++) edgeScores[i * n + j] = normalised[i * n + j] * scale;
  }
  const edgeCut = thresholdFor(edgeScores, edgeThreshold);
  const edgeMask = new Uint8Array(n * n);
  for (let k = 0; k < n * n; k++) edgeMask[k] = edgeScores[k] >= edgeCut && edgeScores[k] > 0 ? 1 : 0;

  dropUnconnected(edgeMask, nodeMask, n, layout.nFeatures, alwaysFrom);
  return { nodeMask, edgeMask, nodeInfluence, scores };
}

/**
 * Features and errors need an outgoing edge, features an incoming one: drop those that lack one,
 * with their edges, until none does. Edge counts per node are kept, so each drop costs one row
 * and one column instead of a rescan of the graph.
 */
function dropUnconnected(edgeMask: Uint8Array, nodeMask: Uint8Array, n: number, nFeatures: number, alwaysFrom: number): void {
  const outgoing = new Int32Array(n);
  const incoming = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (!edgeMask[i * n + j]) continue;
      outgoing[j]++;
      incoming[i]++;
    }
  }
  const lacking = (j: number) => j < alwaysFrom && nodeMask[j] === 1 && (outgoing[j] === 0 || (j < nFeatures && incoming[j] === 0));
  const pending: number[] = [];
  for (let j = 0; j < alwaysFrom; j++) if (lacking(j)) pending.push(j);
  while (pending.length > 0) {
    const j = pending.pop() as number;
    if (!lacking(j)) continue;
    nodeMask[j] = 0;
    for (let k = 0; k < n; k++) {
      if (edgeMask[j * n + k]) {
        edgeMask[j * n + k] = 0;
        incoming[j]--;
        outgoing[k]--;
        if (lacking(k)) pending.push(k);
      }
      if (edgeMask[k * n + j]) {
        edgeMask[k * n + j] = 0;
        outgoing[j]--;
        incoming[k]--;
        if (lacking(k)) pending.push(k);
      }
    }
  }
}

export interface GraphScores {
  readonly replacement: number;
  readonly completeness: number;
}

export function graphScores(A: Float32Array, layout: NodeLayout, probabilities: ArrayLike<number>): GraphScores {
  const n = nodeCount(layout);
  const w = logitWeights(layout, probabilities);
  const normalised = normaliseRows(A, n);
  return scoresOf(normalised, influence(normalised, n, w), layout, w);
}

function scoresOf(normalised: Float32Array, inf: Float64Array, layout: NodeLayout, w: Float64Array): GraphScores {
  const n = nodeCount(layout);
  const errorStart = layout.nFeatures;
  const errorEnd = errorStart + layout.nErrors;
  const tokenEnd = errorEnd + layout.nTokens;
  let tokenInfluence = 0;
  let errorInfluence = 0;
  for (let i = errorStart; i < errorEnd; i++) errorInfluence += inf[i];
  for (let i = errorEnd; i < tokenEnd; i++) tokenInfluence += inf[i];
  let weighted = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let errorShare = 0;
    for (let j = errorStart; j < errorEnd; j++) errorShare += normalised[i * n + j];
    const out = inf[i] + w[i];
    weighted += (1 - errorShare) * out;
    total += out;
  }
  return { replacement: tokenInfluence / (tokenInfluence + errorInfluence), completeness: weighted / total };
}
