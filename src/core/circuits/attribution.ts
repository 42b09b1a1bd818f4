/**
 * Attribution graphs (circuit-tracer's semantics) by the transposed frozen model: each target's
 * read-out vector (a feature's encoder row, a logit's demeaned unembedding row) is carried back
 * through frozen attention and norms, a batch of targets at a time, and dotted with every source's
 * output vector where that source writes. Exact (no finite differences): the frozen model is
 * linear, so one transposed pass gives a whole row of direct effects.
 *
 * Nodes, in order: active features (layer, position, feature), errors (layer-major, every
 * position), token embeddings (every position), logit targets. adjacency[t * n + s] is the direct
 * effect of source s on target t's pre-activation (features) or demeaned logit (logits).
 */
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { RowComputer, type TargetRow } from "./backward-rows";
import { runInJs, runWithOrt, type OrtProductOptions, type ProductSteps } from "./dense-products";
import type { NodeLayout } from "./prune";
import { buildReplacement, type ActiveFeature, type ReplacementModel } from "./replacement";
import { selectTargets, type LogitTarget, type TargetSpec } from "./targets";
import { decoderLayers, encoderRow } from "./transcoder";
import type { TranscoderSet } from "./transcoder";

export interface AttributionOptions {
  readonly targets?: TargetSpec;
  /** Feature nodes kept at most; chosen by influence on the targets, as rows are computed (default 7500). */
  readonly maxFeatureNodes?: number;
  /** Targets carried back together (default 64). */
  readonly batchSize?: number;
  /** Refuse a graph whose matrices would need more bytes than this. */
  readonly maxMemoryBytes?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (rowsDone: number, rowsTotal: number) => void;
  /**
   * Where the rows' dense products run (attribute() and attributeReplacementAsync): "auto"
   * (default) sends the big ones to onnxruntime, "onnxruntime" every one, "js" none (the scalar
   * JavaScript kernel, the reference path).
   */
  readonly products?: "auto" | "onnxruntime" | "js";
  /** onnxruntime's intra-op threads for the products (default: every core). */
  readonly threads?: number;
}

const DEFAULT_BATCH = 64;
/** [batch, T, d_model]-sized arrays a batch of rows holds: its gradients, their change, products' operands and outputs. */
const SCRATCH_ARRAYS = 10;

/**
 * float32 n x n copies alive at once while a graph is pruned and scored (the adjacency, its
 * normalised |A|, the pruned matrix and its normalised form, the edge scores, trace's kept edges
 * and their normalised form), plus the edge mask's byte.
 */
const PRUNING_BYTES_PER_ENTRY = 7 * 4 + 1;

/**
 * Bytes an attribution of `r` holds at its peak, beside the model: the computed rows (each over
 * every node of the replacement), the final graph with pruning's copies, every source's output
 * vector, a batch of gradients with the scratch buffers of its products (about ten arrays of that
 * size) and the replacement's own caches.
 */
export function estimateAttributionBytes(r: ReplacementModel, nTargets: number, maxFeatures: number, batchSize = DEFAULT_BATCH): number {
  const { frozen, transcoders: set, features } = r;
  const T = frozen.nPos;
  const D = frozen.dModel;
  const L = frozen.nLayers;
  const nAllNodes = features.length + L * T + T + nTargets;
  const n = maxFeatures + L * T + T + nTargets;
  let writerVectors = L * T;
  for (const f of features) writerVectors += decoderLayers(set, f.layer);
  const replacement = 4 * L * T * (set.dTranscoder + 4 * D + frozen.weights.nHeads * T);
  return 4 * (maxFeatures + nTargets) * nAllNodes + PRUNING_BYTES_PER_ENTRY * n * n + 4 * writerVectors * D + SCRATCH_ARRAYS * 4 * batchSize * T * D + replacement;
}

/** Refuses, before any row is computed, a graph whose estimate passes the limit; its hint has the most feature nodes that fit. */
function checkGraphFits(r: ReplacementModel, nTargets: number, maxFeatures: number, batchSize: number, maxBytes: number): void {
  const bytes = estimateAttributionBytes(r, nTargets, maxFeatures, batchSize);
  if (bytes <= maxBytes) return;
  let fits = 0;
  for (let lo = 1, hi = maxFeatures - 1; lo <= hi; ) {
    const mid = Math.floor((lo + hi) / 2);
    if (estimateAttributionBytes(r, nTargets, mid, batchSize) <= maxBytes) [fits, lo] = [mid, mid + 1];
    else hi = mid - 1;
  }
  const mb = (x: number) => Math.ceil(x / 2 ** 20);
  const fix = fits > 0 ? "Shorten the prompt or raise the limit." : "Shorten the prompt or raise the limit: even a graph without feature nodes does not fit.";
  throw new LoupeError(
    "model-too-large",
    `This graph (${r.features.length} active features, ${maxFeatures} kept, ${r.frozen.nPos} tokens) needs about ${mb(bytes)} MB, more than the ${Math.floor(maxBytes / 2 ** 20)} MB allowed. ${fix}`,
    undefined,
    { kind: "memory-limit", ...(fits > 0 ? { featureNodes: fits } : {}) },
  );
}

export interface AttributionGraph {
  readonly tokens: readonly number[];
  readonly nLayers: number;
  readonly features: readonly ActiveFeature[];
  readonly targets: readonly LogitTarget[];
  readonly layout: NodeLayout;
  /** n x n, [target, source]. */
  readonly adjacency: Float32Array;
  readonly activeFeatureCount: number;
  readonly transcoderKind: TranscoderSet["kind"];
  readonly scan?: string;
}

export function nodeTotal(g: Pick<AttributionGraph, "layout">): number {
  const { nFeatures, nErrors, nTokens, nLogits } = g.layout;
  return nFeatures + nErrors + nTokens + nLogits;
}

/** Index helpers for circuit-tracer's node order. */
export function errorNode(layout: NodeLayout, layer: number, pos: number): number {
  return layout.nFeatures + layer * layout.nTokens + pos;
}
export function tokenNode(layout: NodeLayout, pos: number): number {
  return layout.nFeatures + layout.nErrors + pos;
}
export function logitNode(layout: NodeLayout, j: number): number {
  return layout.nFeatures + layout.nErrors + layout.nTokens + j;
}

export async function attribute(model: HookedModel, transcoders: TranscoderSet, tokens: readonly number[], options: AttributionOptions = {}): Promise<AttributionGraph> {
  const replacement = await buildReplacement(model, transcoders, tokens, options.signal);
  const label = (id: number) => model.tokenizer.decode([id]);
  return attributeReplacementAsync(replacement, options, label);
}

/** The graph of a replacement model with every product on the JavaScript kernel (synchronous; the reference path). */
export function attributeReplacement(r: ReplacementModel, options: AttributionOptions, tokenLabel: (id: number) => string): AttributionGraph {
  return runInJs(attributionSteps(r, options, tokenLabel));
}

/** The same graph with the big products in onnxruntime (see options.products): equal within float32 rounding. */
export async function attributeReplacementAsync(r: ReplacementModel, options: AttributionOptions, tokenLabel: (id: number) => string): Promise<AttributionGraph> {
  const steps = attributionSteps(r, options, tokenLabel);
  if (options.products === "js") return runInJs(steps);
  const ort: OrtProductOptions = { ...(options.threads === undefined ? {} : { threads: options.threads }), ...(options.products === "onnxruntime" ? { minMultiplyAdds: 0 } : {}) };
  return runWithOrt(steps, ort);
}

function* attributionSteps(r: ReplacementModel, options: AttributionOptions, tokenLabel: (id: number) => string): ProductSteps<AttributionGraph> {
  const { frozen, transcoders: set } = r;
  const T = frozen.nPos;
  const L = frozen.nLayers;
  if (r.features.length === 0) {
    throw new LoupeError("empty-input", `No transcoder feature is active on this prompt${set.source ? ` (${set.source})` : ""}: there is nothing to attribute through. Use a longer prompt or transcoders trained on text like it.`, set.source);
  }
  const targets = selectTargets(options.targets ?? { kind: "top" }, frozen.weights, frozen.lastLogits, tokenLabel);
  const allFeatures = r.features;
  const nAll = allFeatures.length;
  const maxFeatures = Math.min(nAll, options.maxFeatureNodes ?? 7500);
  const errorCount = L * T;
  const nAllNodes = nAll + errorCount + T + targets.length;
  const rowsNeeded = maxFeatures + targets.length;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (options.maxMemoryBytes !== undefined) checkGraphFits(r, targets.length, maxFeatures, batchSize, options.maxMemoryBytes);

  const computer = new RowComputer(r, nAllNodes);
  // With every feature kept, each row is computed straight into its place in the adjacency.
  const everyFeature = maxFeatures === nAll;
  const rows = new Float32Array((everyFeature ? nAllNodes : rowsNeeded) * nAllNodes);
  const rowOfNode = new Int32Array(nAllNodes).fill(-1);
  let rowsDone = 0;
  function* run(nodes: number[], specs: TargetRow[]): ProductSteps {
    const batch = batchSize;
    for (let start = 0; start < specs.length; start += batch) {
      throwIfAborted(options.signal);
      const part = specs.slice(start, start + batch);
      const first = everyFeature ? nodes[start] : rowsDone; // (a batch's nodes are consecutive then)
      const out = rows.subarray(first * nAllNodes, (first + part.length) * nAllNodes);
      yield* computer.compute(part, out);
      nodes.slice(start, start + batch).forEach((node, i) => (rowOfNode[node] = first + i));
      rowsDone += part.length;
      options.onProgress?.(rowsDone, rowsNeeded);
    }
  }
  const logitRowsAt = nAll + errorCount + T;
  yield* run(
    targets.map((_, j) => logitRowsAt + j),
    targets.map((t) => ({ layer: L, pos: T - 1, vector: t.vector })),
  );
  const featureRow = (i: number): TargetRow => ({ layer: allFeatures[i].layer, pos: allFeatures[i].pos, vector: encoderRow(set, allFeatures[i].layer, allFeatures[i].feature) });
  let selected: number[];
  if (everyFeature) {
    // Sorted by layer then position: a batch's rows start near the same place.
    selected = allFeatures.map((_, i) => i);
    yield* run(selected, selected.map(featureRow));
  } else {
    // circuit-tracer's phases: rank the features not yet expanded by their influence through the
    // rows known so far, expand the most influential batch, repeat until the budget is spent.
    const weights = new Float64Array(nAllNodes);
    targets.forEach((t, j) => (weights[logitRowsAt + j] = t.probability));
    const expanded = new Uint8Array(nAll);
    selected = [];
    const batch = Math.max(batchSize, Math.ceil(maxFeatures / 8));
    while (selected.length < maxFeatures) {
      const inf = partialInfluence(rows, rowOfNode, nAllNodes, weights);
      const order = allFeatures.map((_, i) => i).filter((i) => !expanded[i]).sort((a, b) => inf[b] - inf[a] || a - b);
      const next = order.slice(0, Math.min(batch, maxFeatures - selected.length));
      next.forEach((i) => (expanded[i] = 1));
      yield* run(next, next.map(featureRow));
      selected.push(...next);
    }
    selected.sort((a, b) => a - b);
  }

  // Gather the final n x n matrix over the selected features.
  const features = selected.map((i) => allFeatures[i]);
  const layout: NodeLayout = { nFeatures: features.length, nErrors: errorCount, nTokens: T, nLogits: targets.length };
  const n = features.length + errorCount + T + targets.length;
  const columnOf = new Int32Array(n);
  selected.forEach((old, i) => (columnOf[i] = old));
  for (let j = features.length; j < n; j++) columnOf[j] = j - features.length + nAll;
  const adjacency = everyFeature ? rows : new Float32Array(n * n);
  for (let i = 0; i < n && !everyFeature; i++) {
    const row = rowOfNode[columnOf[i]];
    if (row < 0) continue;
    const src = row * nAllNodes;
    for (let j = 0; j < n; j++) adjacency[i * n + j] = rows[src + columnOf[j]];
  }
  return { tokens: frozen.tokens, nLayers: L, features, targets, layout, adjacency, activeFeatureCount: nAll, transcoderKind: set.kind, scan: set.scan };
}

/**
 * One target's direct effects from every node of the replacement (all active features, then
 * errors, tokens): its row of the full adjacency, without building the graph. `layer` is the
 * layer whose MLP input it reads (nLayers for a read-out after the last block).
 */
export function directEffects(r: ReplacementModel, vector: Float32Array, layer: number, pos: number): Float32Array {
  const n = r.features.length + r.frozen.nLayers * r.frozen.nPos + r.frozen.nPos;
  const out = new Float32Array(n);
  runInJs(new RowComputer(r, n).compute([{ layer, pos, vector }], out));
  return out;
}

/**
 * Influence through the rows computed so far (rows of unexpanded nodes count as empty), read from
 * the rows in place: the row-normalised |A| is never formed (it would be n x n over every active
 * feature).
 */
function partialInfluence(rows: Float32Array, rowOfNode: Int32Array, n: number, weights: Float64Array, maxIterations = 1000): Float64Array {
  const inverseSums = new Map<number, number>();
  rowOfNode.forEach((r) => {
    if (r < 0) return;
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(rows[r * n + j]);
    inverseSums.set(r, 1 / Math.max(s, 1e-10));
  });
  const total = new Float64Array(n);
  let current = weights;
  for (let it = 0; it <= maxIterations; it++) {
    const next = new Float64Array(n);
    let any = false;
    for (let node = 0; node < n; node++) {
      const x = current[node];
      const r = rowOfNode[node];
      if (x === 0 || r < 0) continue;
      const scale = x * (inverseSums.get(r) as number);
      for (let j = 0; j < n; j++) next[j] += scale * Math.abs(rows[r * n + j]);
      any = true;
    }
    if (!any) break;
    for (let j = 0; j < n; j++) total[j] += next[j];
    current = next;
  }
  return total;
}
