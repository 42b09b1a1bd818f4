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
import { influence, type NodeLayout } from "./prune";
import { buildReplacement, type ActiveFeature, type ReplacementModel } from "./replacement";
import { selectTargets, type LogitTarget, type TargetSpec } from "./targets";
import { encoderRow } from "./transcoder";
import type { TranscoderSet } from "./transcoder";

export interface AttributionOptions {
  readonly targets?: TargetSpec;
  /** Feature nodes kept at most; chosen by influence on the targets, as rows are computed (default 7500). */
  readonly maxFeatureNodes?: number;
  /** Targets carried back together (default 32). */
  readonly batchSize?: number;
  /** Refuse a graph whose matrices would need more bytes than this. */
  readonly maxMemoryBytes?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (rowsDone: number, rowsTotal: number) => void;
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
  return attributeReplacement(replacement, options, label);
}

export function attributeReplacement(r: ReplacementModel, options: AttributionOptions, tokenLabel: (id: number) => string): AttributionGraph {
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
  const nFinal = maxFeatures + errorCount + T + targets.length;
  const bytes = 4 * (rowsNeeded * nAllNodes + nFinal * nFinal * 2);
  if (options.maxMemoryBytes !== undefined && bytes > options.maxMemoryBytes) {
    throw new LoupeError(
      "model-too-large",
      `This graph (${nAll} active features, ${rowsNeeded} rows of ${nAllNodes} nodes) needs about ${Math.ceil(bytes / 2 ** 20)} MB, more than the ${Math.floor(options.maxMemoryBytes / 2 ** 20)} MB allowed (loupe.maxModelMemoryMB). Lower --max-feature-nodes or shorten the prompt.`,
    );
  }

  const computer = new RowComputer(r, nAllNodes);
  const rows = new Float32Array(rowsNeeded * nAllNodes);
  const rowOfNode = new Int32Array(nAllNodes).fill(-1);
  let rowsDone = 0;
  const run = (nodes: number[], specs: TargetRow[]) => {
    const batch = options.batchSize ?? 32;
    for (let start = 0; start < specs.length; start += batch) {
      throwIfAborted(options.signal);
      const part = specs.slice(start, start + batch);
      const out = rows.subarray(rowsDone * nAllNodes, (rowsDone + part.length) * nAllNodes);
      computer.compute(part, out);
      nodes.slice(start, start + batch).forEach((node, i) => (rowOfNode[node] = rowsDone + i));
      rowsDone += part.length;
      options.onProgress?.(rowsDone, rowsNeeded);
    }
  };
  const logitRowsAt = nAll + errorCount + T;
  run(
    targets.map((_, j) => logitRowsAt + j),
    targets.map((t) => ({ layer: L, pos: T - 1, vector: t.vector })),
  );
  const featureRow = (i: number): TargetRow => ({ layer: allFeatures[i].layer, pos: allFeatures[i].pos, vector: encoderRow(set, allFeatures[i].layer, allFeatures[i].feature) });
  let selected: number[];
  if (maxFeatures === nAll) {
    // Sorted by layer then position: a batch's rows start near the same place.
    selected = allFeatures.map((_, i) => i);
    run(selected, selected.map(featureRow));
  } else {
    // circuit-tracer's phases: rank the features not yet expanded by their influence through the
    // rows known so far, expand the most influential batch, repeat until the budget is spent.
    const weights = new Float64Array(nAllNodes);
    targets.forEach((t, j) => (weights[logitRowsAt + j] = t.probability));
    const expanded = new Uint8Array(nAll);
    selected = [];
    const batch = Math.max(options.batchSize ?? 32, Math.ceil(maxFeatures / 8));
    while (selected.length < maxFeatures) {
      const inf = partialInfluence(rows, rowOfNode, nAllNodes, weights);
      const order = allFeatures.map((_, i) => i).filter((i) => !expanded[i]).sort((a, b) => inf[b] - inf[a] || a - b);
      const next = order.slice(0, Math.min(batch, maxFeatures - selected.length));
      next.forEach((i) => (expanded[i] = 1));
      run(next, next.map(featureRow));
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
  const adjacency = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
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
  new RowComputer(r, n).compute([{ layer, pos, vector }], out);
  return out;
}

/** Influence through the rows computed so far (rows of unexpanded nodes count as empty). */
function partialInfluence(rows: Float32Array, rowOfNode: Int32Array, n: number, weights: Float64Array): Float64Array {
  const normalised = new Float32Array(n * n);
  for (let node = 0; node < n; node++) {
    const r = rowOfNode[node];
    if (r < 0) continue;
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(rows[r * n + j]);
    const inv = 1 / Math.max(s, 1e-10);
    for (let j = 0; j < n; j++) normalised[node * n + j] = Math.abs(rows[r * n + j]) * inv;
  }
  return influence(normalised, n, weights);
}
