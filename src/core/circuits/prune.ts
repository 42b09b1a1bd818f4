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
  return sparseInfluence(compressRows(normalised, n, false), n, weights, maxIterations);
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
  const normalisedA = sparseNormalised(A, n);
  const nodeInfluence = sparseInfluence(normalisedA, n, w);
  const scores = scoresOf(normalisedA, nodeInfluence, layout, w);
  const nodeCut = thresholdFor(nodeInfluence, nodeThreshold);
  const nodeMask = new Uint8Array(n);
  const alwaysFrom = n - layout.nLogits - layout.nTokens;
  for (let i = 0; i < n; i++) nodeMask[i] = i >= alwaysFrom || nodeInfluence[i] >= nodeCut ? 1 : 0;

  // Edge scores, in place of the pruned graph's normalised values: Â[t, s] (influence[t] + w[t]).
  const edges = sparseNormalised(A, n, nodeMask);
  const edgeInfluence = sparseInfluence(edges, n, w);
  for (let i = 0; i < n; i++) {
    const scale = edgeInfluence[i] + w[i];
    for (let e = edges.start[i]; e < edges.start[i + 1]; e++) edges.values[e] *= scale;
  }
  const edgeCut = thresholdFor(edges.values, edgeThreshold);
  const edgeMask = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let e = edges.start[i]; e < edges.start[i + 1]; e++) {
      const score = edges.values[e];
      if (score >= edgeCut && score > 0) edgeMask[i * n + edges.cols[e]] = 1;
    }
  }

  dropUnconnected(edgeMask, nodeMask, n, layout.nFeatures, alwaysFrom);
  return { nodeMask, edgeMask, nodeInfluence, scores };
}

/**
 * Row-normalised |A| holding only its non-zero entries (compressed rows). An attribution graph is
 * mostly zeros (causal in positions, layered, and a pruned graph keeps few nodes), so influence
 * and scores walk these instead of n x n. Summed in the dense form's order: the same numbers.
 */
interface SparseRows {
  /** Row i's entries are start[i] .. start[i + 1] - 1. */
  readonly start: Int32Array;
  readonly cols: Int32Array;
  readonly values: Float32Array;
}

/** Row-normalised |A| over the entries whose row and column `keep` marks and `edgeMask` keeps (all without them), zeros left out. */
function sparseNormalised(A: Float32Array, n: number, keep?: Uint8Array, edgeMask?: Uint8Array): SparseRows {
  return compressRows(A, n, true, keep, edgeMask);
}

/** The non-zero entries of A (as |A| row-normalised when `normalise`) that `keep` and `edgeMask` keep. */
function compressRows(A: Float32Array, n: number, normalise: boolean, keep?: Uint8Array, edgeMask?: Uint8Array): SparseRows {
  const start = new Int32Array(n + 1);
  let cols: Int32Array = new Int32Array(Math.max(16, n));
  for (let i = 0; i < n; i++) {
    let e = start[i];
    if (!keep || keep[i]) {
      const row = i * n;
      if (e + n > cols.length) cols = grow(cols, e + n);
      if (!keep && !edgeMask) {
        for (let j = 0; j < n; j++) if (A[row + j] !== 0) cols[e++] = j;
      } else {
        for (let j = 0; j < n; j++) if (A[row + j] !== 0 && (!keep || keep[j] === 1) && (!edgeMask || edgeMask[row + j] === 1)) cols[e++] = j;
      }
    }
    start[i + 1] = e;
  }
  const values = new Float32Array(start[n]);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let s = 0;
    for (let k = start[i]; k < start[i + 1]; k++) s += Math.abs(A[row + cols[k]]);
    const inv = 1 / Math.max(s, 1e-10);
    for (let k = start[i]; k < start[i + 1]; k++) values[k] = normalise ? Math.abs(A[row + cols[k]]) * inv : A[row + cols[k]];
  }
  return { start, cols: cols.slice(0, start[n]), values };
}

function grow(a: Int32Array, atLeast: number): Int32Array {
  const out = new Int32Array(Math.max(atLeast, 2 * a.length));
  out.set(a);
  return out;
}

/** influence() on the compressed rows. */
function sparseInfluence(R: SparseRows, n: number, weights: Float64Array, maxIterations = 1000): Float64Array {
  const total = new Float64Array(n);
  let current = weights;
  for (let it = 0; it <= maxIterations; it++) {
    const next = new Float64Array(n);
    let any = false;
    for (let i = 0; i < n; i++) {
      const x = current[i];
      if (x === 0) continue;
      for (let e = R.start[i]; e < R.start[i + 1]; e++) next[R.cols[e]] += x * R.values[e];
    }
    for (let j = 0; j < n; j++) {
      if (next[j] === 0) continue;
      total[j] += next[j];
      any = true;
    }
    if (!any) break;
    current = next;
  }
  return total;
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

/** Replacement and completeness scores of A, or of the edges `edgeMask` keeps (a pruned graph). */
export function graphScores(A: Float32Array, layout: NodeLayout, probabilities: ArrayLike<number>, edgeMask?: Uint8Array): GraphScores {
  const n = nodeCount(layout);
  const w = logitWeights(layout, probabilities);
  const normalised = sparseNormalised(A, n, undefined, edgeMask);
  return scoresOf(normalised, sparseInfluence(normalised, n, w), layout, w);
}

function scoresOf(normalised: SparseRows, inf: Float64Array, layout: NodeLayout, w: Float64Array): GraphScores {
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
    for (let e = normalised.start[i]; e < normalised.start[i + 1]; e++) {
      const j = normalised.cols[e];
      if (j >= errorStart && j < errorEnd) errorShare += normalised.values[e];
    }
    const out = inf[i] + w[i];
    weighted += (1 - errorShare) * out;
    total += out;
  }
  return { replacement: tokenInfluence / (tokenInfluence + errorInfluence), completeness: weighted / total };
}
