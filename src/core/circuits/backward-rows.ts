/**
 * Rows of the attribution graph through the transposed frozen model. A batch of target read-out
 * vectors walks down the layers as gradients [batch, position, d_model]; at each layer, every
 * source writing there (a feature's activation x decoder row, an error) is dotted with the
 * gradient at its position, as one row-times-row product per position. A row is non-zero only at
 * positions up to its target's (attention is causal), and at its target's position alone until its
 * first attention layer, where the pattern's mixing is applied after W_V^T instead of before it.
 */
import { normLinearForward } from "./frozen-model";
import { batchedProduct, product, Scratch, type ProductSteps } from "./dense-products";
import { dot, matmul } from "./linalg";
import type { ReplacementModel } from "./replacement";
import { decoderLayers, decoderRow } from "./transcoder";

/** A target row: what to carry back, and where it is read. */
export interface TargetRow {
  /** Layer whose MLP input it reads; nLayers for a logit (read after the last block). */
  readonly layer: number;
  readonly pos: number;
  readonly vector: Float32Array;
}

/**
 * The sources writing into one layer's MLP output, position by position, as the right operand of
 * one batched product: at position p, writer i (the error last) is node column cols[p][i] and
 * column i of the [d_model, width] block p of `byPosition` (zero past cols[p].length).
 */
interface LayerWriters {
  readonly cols: readonly Int32Array[];
  readonly byPosition: Float32Array;
  readonly width: number;
}

/** Where a row's gradient is non-zero. */
const enum RowState {
  /** Its target reads a layer further down: nothing yet. */
  NotStarted,
  /** At its target's position only (before its first attention layer). */
  OnePosition,
  /** At every position up to its target's, as a few basis vectors (see RowBasis). */
  Basis,
  /** At every position up to its target's. */
  Spread,
}

/**
 * A row one attention layer below where it started: g[k] = sum_j c[k, j] * vectors[j] for k <= pos,
 * with its own vector at pos (c[k, 0] = [k == pos]) and one vector per head of the attention
 * above (c[k, 1 + h] = that layer's norm1 scale at k times its pattern P[h, pos, k]).
 */
interface RowBasis {
  readonly vectors: Float32Array;
  readonly coefficients: Float32Array;
}

export class RowComputer {
  /** writers[l]: every source writing into layer l's MLP output. */
  private readonly writers: LayerWriters[];
  private firstLayerOutputs?: Float32Array;
  /** The attention's change of a batch's gradients, reused across layers and batches (left zeroed after each use). */
  private delta = new Float32Array(0);
  private readonly scratch = new Scratch();

  constructor(
    private readonly r: ReplacementModel,
    private readonly nNodes: number,
  ) {
    const { frozen, transcoders: set, features, errors } = r;
    const T = frozen.nPos;
    const L = frozen.nLayers;
    const D = frozen.dModel;
    const lists: { cols: number[]; rows: Float32Array[] }[][] = Array.from({ length: L }, () => Array.from({ length: T }, () => ({ cols: [], rows: [] })));
    features.forEach((f, col) => {
      for (let o = 0; o < decoderLayers(set, f.layer); o++) {
        const entry = lists[f.layer + o][f.pos];
        entry.cols.push(col);
        entry.rows.push(decoderRow(set, f.layer, f.feature, f.layer + o).map((x) => x * f.activation));
      }
    });
    this.writers = lists.map((perPos, l) => {
      perPos.forEach(({ cols, rows }, p) => {
        cols.push(features.length + l * T + p);
        rows.push(errors[l].subarray(p * D, (p + 1) * D));
      });
      const width = Math.max(...perPos.map(({ cols }) => cols.length));
      const byPosition = new Float32Array(T * D * width);
      perPos.forEach(({ rows }, p) => rows.forEach((v, i) => {
        for (let d = 0; d < D; d++) byPosition[(p * D + d) * width + i] = v[d];
      }));
      return { cols: perPos.map(({ cols }) => Int32Array.from(cols)), byPosition, width };
    });
  }

  /** Fill `out` ([specs.length, nNodes], zeroed) with each target's row. */
  *compute(specs: readonly TargetRow[], out: Float32Array): ProductSteps {
    const { frozen, transcoders: set } = this.r;
    const T = frozen.nPos;
    const L = frozen.nLayers;
    const D = frozen.dModel;
    const B = specs.length;
    const top = Math.max(...specs.map((s) => s.layer));
    const state = new Uint8Array(B).fill(RowState.NotStarted);
    const bases: (RowBasis | undefined)[] = new Array(B);
    const g = this.scratch.take("gradients", B * T * D, true);
    specs.forEach((s, b) => {
      if (s.layer !== L) return;
      frozen.finalBackward(s.pos, s.vector, g, (b * T + s.pos) * D);
      state[b] = RowState.OnePosition;
    });
    for (let l = Math.min(top, L - 1); l >= 0; l--) {
      if (l < top) {
        yield* this.readSources(l, specs, state, g, out);
        const skip = set.layers[l].skip;
        if (skip) yield* this.skipBackward(l, skip, specs, state, g);
      }
      specs.forEach((s, b) => {
        if (s.layer !== l) return;
        frozen.inputBackward(l, set.inputHook, s.pos, s.vector, g, (b * T + s.pos) * D);
        state[b] = RowState.OnePosition;
      });
      yield* this.attentionBackward(l, specs, state, bases, g, out);
    }
    const tokenCol = this.r.features.length + L * T;
    specs.forEach((s, b) => {
      for (let p = 0; p <= s.pos; p++) out[b * this.nNodes + tokenCol + p] += dot(g, (b * T + p) * D, frozen.embed, p * D, D);
    });
  }

  /**
   * Every source writing into layer l's MLP output, dotted with the gradient there: at each
   * position, the rows whose gradient is non-zero there times that position's writers, every
   * position in one batched product.
   */
  private *readSources(l: number, specs: readonly TargetRow[], state: Uint8Array, g: Float32Array, out: Float32Array): ProductSteps {
    const T = this.r.frozen.nPos;
    const D = this.r.frozen.dModel;
    const rowsAt: number[][] = Array.from({ length: T }, () => []);
    for (let b = 0; b < specs.length; b++) {
      if (state[b] === RowState.NotStarted) continue;
      const pos = specs[b].pos;
      if (state[b] === RowState.OnePosition) rowsAt[pos].push(b);
      else for (let p = 0; p <= pos; p++) rowsAt[p].push(b);
    }
    const most = Math.max(...rowsAt.map((rows) => rows.length));
    if (most === 0) return;
    const gathered = this.scratch.take("sources.gathered", T * most * D);
    rowsAt.forEach((rows, p) => rows.forEach((b, i) => gathered.set(g.subarray((b * T + p) * D, (b * T + p + 1) * D), (p * most + i) * D)));
    const { cols, byPosition, width } = this.writers[l];
    const used = { m: Int32Array.from(rowsAt, (rows) => rows.length), n: Int32Array.from(cols, (c) => c.length) };
    const effects = yield batchedProduct(gathered, byPosition, T, most, D, width, used, this.scratch.take("sources.effects", T * most * width));
    rowsAt.forEach((rows, p) => {
      const colsAt = cols[p];
      rows.forEach((b, i) => {
        const row = b * this.nNodes;
        const at = (p * most + i) * width;
        for (let j = 0; j < colsAt.length; j++) out[row + colsAt[j]] += effects[at + j];
      });
    });
  }

  /**
   * The transcoder's skip connection carries the gradient at layer l's MLP output back to its
   * input: every started row's positions stacked into one product (rows own disjoint parts of g).
   */
  private *skipBackward(l: number, skip: Float32Array, specs: readonly TargetRow[], state: Uint8Array, g: Float32Array): ProductSteps {
    const { frozen, transcoders: set } = this.r;
    const T = frozen.nPos;
    const D = frozen.dModel;
    const segments: { start: number; first: number; count: number }[] = [];
    let total = 0;
    for (let b = 0; b < specs.length; b++) {
      const s = specs[b];
      if (state[b] === RowState.NotStarted) continue;
      const first = state[b] === RowState.OnePosition ? s.pos : 0;
      if (state[b] === RowState.Basis) state[b] = RowState.Spread;
      const count = s.pos + 1 - first;
      segments.push({ start: (b * T + first) * D, first, count });
      total += count;
    }
    if (total === 0) return;
    const stacked = this.scratch.take("skip gradients", total * D);
    let at = 0;
    for (const { start, count } of segments) {
      stacked.set(g.subarray(start, start + count * D), at * D);
      at += count;
    }
    const through = yield product(stacked, skip, total, D, D, this.scratch.take("skip products", total * D));
    at = 0;
    for (const { start, first, count } of segments) {
      for (let i = 0; i < count; i++, at++) frozen.inputBackward(l, set.inputHook, first + i, through.subarray(at * D, (at + 1) * D), g, start + i * D);
    }
  }

  /** g <- g + attention_l^T g for every started row (the residual stream carries g past the attention). */
  private *attentionBackward(l: number, specs: readonly TargetRow[], state: Uint8Array, bases: (RowBasis | undefined)[], g: Float32Array, out: Float32Array): ProductSteps {
    const { frozen } = this.r;
    const T = frozen.nPos;
    const D = frozen.dModel;
    const H = frozen.weights.nHeads;
    const nb = H + 1;
    const delta = this.deltaBuffer(g.length);
    const single = specs.flatMap((s, b) => (state[b] === RowState.OnePosition ? [b] : []));
    if (single.length > 0) {
      const at = this.scratch.take("single.at", single.length * D);
      single.forEach((b, i) => at.set(g.subarray((b * T + specs[b].pos) * D, (b * T + specs[b].pos + 1) * D), i * D));
      const positions = Int32Array.from(single, (b) => specs[b].pos);
      const y = yield* frozen.attentionBackwardAtOnePosition(l, at, single.length, positions, delta, Int32Array.from(single, (b) => b * T), this.scratch);
      if (l > 0) single.forEach((b, i) => (bases[b] = this.basisBelow(l, specs[b].pos, at.subarray(i * D, (i + 1) * D), y, i)));
    }
    const fromBasis = specs.flatMap((s, b) => (state[b] === RowState.Basis && this.basisIsCheaper(s.pos + 1, nb) ? [b] : []));
    if (fromBasis.length > 0) {
      const V = this.scratch.take("basis.vectors", fromBasis.length * nb * D);
      fromBasis.forEach((b, i) => V.set((bases[b] as RowBasis).vectors, i * nb * D));
      const c = fromBasis.map((b) => (bases[b] as RowBasis).coefficients);
      yield* frozen.attentionBackwardFromBasis(l, V, nb, c, Int32Array.from(fromBasis, (b) => specs[b].pos), delta, Int32Array.from(fromBasis, (b) => b * T), this.scratch);
    }
    const viaBasis = new Set(fromBasis);
    const dense = specs.flatMap((s, b) => ((state[b] === RowState.Spread || state[b] === RowState.Basis) && !viaBasis.has(b) ? [b] : []));
    // Below layer 0's attention only the embeddings read the gradient: credit them directly.
    const toTokens = l === 0 ? dense : [];
    if (toTokens.length > 0) yield* this.tokensThroughFirstAttention(toTokens, specs, g, out);
    const spans = dense.filter((b) => !toTokens.includes(b)).map((b) => ({ start: b * T, extent: specs[b].pos + 1 }));
    if (spans.length > 0) yield* frozen.attentionBackward(l, g, spans, delta, this.scratch);
    for (let b = 0; b < specs.length; b++) {
      if (state[b] === RowState.NotStarted) continue;
      const to = (b * T + specs[b].pos + 1) * D;
      for (let i = b * T * D; i < to; i++) {
        g[i] += delta[i];
        delta[i] = 0;
      }
      state[b] = state[b] === RowState.OnePosition && l > 0 ? RowState.Basis : RowState.Spread;
      if (state[b] === RowState.Spread) bases[b] = undefined;
    }
  }

  private deltaBuffer(length: number): Float32Array {
    if (this.delta.length < length) this.delta = new Float32Array(length);
    return this.delta;
  }

  /**
   * Token columns of spread rows through layer 0's frozen attention, without carrying their
   * gradient below it. The embedding at k reaches the output at q through head h as
   * inv1[k] P[h, q, k] o[h, k], o[h, k] its value vector's output (headOutputs), so its column
   * gains sum over q >= k and h of inv1[k] P[h, q, k] (g[q] · o[h, k]): (k + 1) H dots of d_model
   * per query instead of two d_model x d_model products per position. (The residual path, e[k] ·
   * g[k], is added with every row's at the end.)
   */
  private *tokensThroughFirstAttention(rows: readonly number[], specs: readonly TargetRow[], g: Float32Array, out: Float32Array): ProductSteps {
    const { frozen } = this.r;
    const T = frozen.nPos;
    const D = frozen.dModel;
    const H = frozen.weights.nHeads;
    const outputs = this.headOutputs();
    const { pattern: P, invScale1: inv } = frozen.layers[0];
    const tokenCol = this.r.features.length + frozen.nLayers * T;
    const last = Math.max(...rows.map((b) => specs[b].pos));
    for (let q = 0; q <= last; q++) {
      const active = rows.filter((b) => specs[b].pos >= q);
      const gathered = this.scratch.take("tokens.gathered", active.length * D);
      active.forEach((b, i) => gathered.set(g.subarray((b * T + q) * D, (b * T + q + 1) * D), i * D));
      const width = (q + 1) * H;
      const dots = yield product(gathered, outputs, active.length, D, width, this.scratch.take("tokens.dots", active.length * width));
      active.forEach((b, i) => {
        const row = b * this.nNodes + tokenCol;
        for (let k = 0; k <= q; k++) {
          let s = 0;
          for (let h = 0; h < H; h++) s += P[(h * T + q) * T + k] * dots[i * width + k * H + h];
          out[row + k] += inv[k] * s;
        }
      });
    }
  }

  /**
   * o[h, k] [T * H, d_model], row k * H + h: what the embedding at k adds to layer 0's attention
   * output through head h per unit of pattern and norm scale, (norm1's linear part of e[k]) W_V,h W_O,h.
   */
  private headOutputs(): Float32Array {
    if (this.firstLayerOutputs) return this.firstLayerOutputs;
    const { frozen } = this.r;
    const T = frozen.nPos;
    const { dModel: D, nHeads: H, nKvHeads: KV, dHead: Dh } = frozen.weights;
    const block = frozen.weights.blocks[0];
    const group = H / KV;
    const normed = new Float32Array(T * D);
    for (let k = 0; k < T; k++) normLinearForward(block.norm1, frozen.embed, k * D, normed, k * D, D);
    const values = new Float32Array(T * KV * Dh);
    matmul(normed, block.W_V, values, T, D, KV * Dh);
    const outputs = new Float32Array(T * H * D);
    for (let k = 0; k < T; k++) {
      for (let h = 0; h < H; h++) {
        const v = values.subarray((k * KV + Math.floor(h / group)) * Dh, (k * KV + Math.floor(h / group) + 1) * Dh);
        matmul(v, block.W_O.subarray(h * Dh * D, (h + 1) * Dh * D), outputs.subarray((k * H + h) * D, (k * H + h + 1) * D), 1, Dh, D);
      }
    }
    return (this.firstLayerOutputs = outputs);
  }

  /** Row i's gradient below layer l's attention in basis form (see RowBasis): its vector at `pos`, then one per head. */
  private basisBelow(l: number, pos: number, own: Float32Array, y: readonly Float32Array[], i: number): RowBasis {
    const { frozen } = this.r;
    const T = frozen.nPos;
    const D = frozen.dModel;
    const H = y.length;
    const nb = H + 1;
    const vectors = new Float32Array(nb * D);
    vectors.set(own, 0);
    y.forEach((yh, h) => vectors.set(yh.subarray(i * D, (i + 1) * D), (1 + h) * D));
    const { pattern, invScale1 } = frozen.layers[l];
    const coefficients = new Float32Array((pos + 1) * nb);
    coefficients[pos * nb] = 1;
    for (let k = 0; k <= pos; k++) for (let h = 0; h < H; h++) coefficients[k * nb + 1 + h] = invScale1[k] * pattern[(h * T + pos) * T + k];
    return { vectors, coefficients };
  }

  /** Multiply-adds of the basis form against the dense form for a row over `positions` positions. */
  private basisIsCheaper(positions: number, nb: number): boolean {
    const { dModel: D, nHeads: H } = this.r.frozen.weights;
    const dense = 2 * positions * D * D;
    const basis = 2 * nb * D * D + positions * H * nb * D + (positions * positions * H * nb) / 2;
    return basis < dense;
  }
}
