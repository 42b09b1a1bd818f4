/**
 * Rows of the attribution graph through the transposed frozen model. A batch of target read-out
 * vectors walks down the layers as gradients [batch, position, d_model]; at each layer, every
 * source writing there (a feature's activation x decoder row, an error) is dotted with the
 * gradient at its position, as one row-times-row product per position. A row is non-zero only at
 * positions up to its target's (attention is causal), and at its target's position alone until its
 * first attention layer, where the pattern's mixing is applied after W_V^T instead of before it.
 */
import { dot, matmulTransposed } from "./linalg";
import type { ReplacementModel } from "./replacement";
import { decoderLayers, decoderRow } from "./transcoder";

/** A target row: what to carry back, and where it is read. */
export interface TargetRow {
  /** Layer whose MLP input it reads; nLayers for a logit (read after the last block). */
  readonly layer: number;
  readonly pos: number;
  readonly vector: Float32Array;
}

/** The sources writing into one (layer, position): their node columns and output vectors [n, d_model], the error last. */
interface Writers {
  readonly cols: Int32Array;
  readonly vectors: Float32Array;
}

/** Where a row's gradient is non-zero. */
const enum RowState {
  /** Its target reads a layer further down: nothing yet. */
  NotStarted,
  /** At its target's position only (before its first attention layer). */
  OnePosition,
  /** At every position up to its target's. */
  Spread,
}

export class RowComputer {
  /** writers[l][p]: every source writing into layer l's MLP output at position p. */
  private readonly writers: Writers[][];

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
    this.writers = lists.map((perPos, l) =>
      perPos.map(({ cols, rows }, p) => {
        cols.push(features.length + l * T + p);
        rows.push(errors[l].subarray(p * D, (p + 1) * D));
        const vectors = new Float32Array(rows.length * D);
        rows.forEach((v, i) => vectors.set(v, i * D));
        return { cols: Int32Array.from(cols), vectors };
      }),
    );
  }

  /** Fill `out` ([specs.length, nNodes], zeroed) with each target's row. */
  compute(specs: readonly TargetRow[], out: Float32Array): void {
    const { frozen, transcoders: set } = this.r;
    const T = frozen.nPos;
    const L = frozen.nLayers;
    const D = frozen.dModel;
    const B = specs.length;
    const top = Math.max(...specs.map((s) => s.layer));
    const state = new Uint8Array(B).fill(RowState.NotStarted);
    const g = new Float32Array(B * T * D);
    specs.forEach((s, b) => {
      if (s.layer !== L) return;
      frozen.finalBackward(s.pos, s.vector, g, (b * T + s.pos) * D);
      state[b] = RowState.OnePosition;
    });
    for (let l = Math.min(top, L - 1); l >= 0; l--) {
      if (l < top) {
        this.readSources(l, specs, state, g, out);
        const skip = set.layers[l].skip;
        if (skip) this.skipBackward(l, skip, specs, state, g);
      }
      specs.forEach((s, b) => {
        if (s.layer !== l) return;
        frozen.inputBackward(l, set.inputHook, s.pos, s.vector, g, (b * T + s.pos) * D);
        state[b] = RowState.OnePosition;
      });
      this.attentionBackward(l, specs, state, g);
    }
    const tokenCol = this.r.features.length + L * T;
    specs.forEach((s, b) => {
      for (let p = 0; p <= s.pos; p++) out[b * this.nNodes + tokenCol + p] = dot(g, (b * T + p) * D, frozen.embed, p * D, D);
    });
  }

  /** Every source writing into layer l's MLP output, dotted with the gradient there. */
  private readSources(l: number, specs: readonly TargetRow[], state: Uint8Array, g: Float32Array, out: Float32Array): void {
    const T = this.r.frozen.nPos;
    const D = this.r.frozen.dModel;
    const rows: number[] = [];
    const gathered = new Float32Array(specs.length * D);
    for (let p = 0; p < T; p++) {
      rows.length = 0;
      specs.forEach((s, b) => {
        if (state[b] === RowState.Spread ? p <= s.pos : state[b] === RowState.OnePosition && p === s.pos) rows.push(b);
      });
      if (rows.length === 0) continue;
      rows.forEach((b, i) => gathered.set(g.subarray((b * T + p) * D, (b * T + p + 1) * D), i * D));
      const { cols, vectors } = this.writers[l][p];
      const n = cols.length;
      const effects = new Float32Array(rows.length * n);
      matmulTransposed(gathered, vectors, effects, rows.length, D, n);
      rows.forEach((b, i) => {
        const row = b * this.nNodes;
        for (let j = 0; j < n; j++) out[row + cols[j]] += effects[i * n + j];
      });
    }
  }

  /** The transcoder's skip connection carries the gradient at layer l's MLP output back to its input. */
  private skipBackward(l: number, skip: Float32Array, specs: readonly TargetRow[], state: Uint8Array, g: Float32Array): void {
    const { frozen, transcoders: set } = this.r;
    const T = frozen.nPos;
    const D = frozen.dModel;
    specs.forEach((s, b) => {
      if (state[b] === RowState.NotStarted) return;
      const first = state[b] === RowState.OnePosition ? s.pos : 0;
      const count = s.pos + 1 - first;
      const through = new Float32Array(count * D);
      matmulTransposed(g.subarray((b * T + first) * D, (b * T + s.pos + 1) * D), skip, through, count, D, D);
      for (let i = 0; i < count; i++) frozen.inputBackward(l, set.inputHook, first + i, through.subarray(i * D, (i + 1) * D), g, (b * T + first + i) * D);
    });
  }

  /** g <- g + attention_l^T g for every started row (the residual stream carries g past the attention). */
  private attentionBackward(l: number, specs: readonly TargetRow[], state: Uint8Array, g: Float32Array): void {
    const { frozen } = this.r;
    const T = frozen.nPos;
    const D = frozen.dModel;
    const delta = new Float32Array(g.length);
    const single = specs.flatMap((s, b) => (state[b] === RowState.OnePosition ? [b] : []));
    if (single.length > 0) {
      const at = new Float32Array(single.length * D);
      single.forEach((b, i) => at.set(g.subarray((b * T + specs[b].pos) * D, (b * T + specs[b].pos + 1) * D), i * D));
      const positions = Int32Array.from(single, (b) => specs[b].pos);
      const bases = Int32Array.from(single, (b) => b * T);
      frozen.attentionBackwardAtOnePosition(l, at, single.length, positions, delta, bases);
    }
    specs.forEach((s, b) => {
      if (state[b] !== RowState.Spread) return;
      const from = b * T * D;
      const to = (b * T + s.pos + 1) * D;
      frozen.attentionBackward(l, g.subarray(from, to), s.pos + 1, delta.subarray(from, to));
    });
    specs.forEach((s, b) => {
      if (state[b] === RowState.NotStarted) return;
      const to = (b * T + s.pos + 1) * D;
      for (let i = b * T * D; i < to; i++) g[i] += delta[i];
      state[b] = RowState.Spread;
    });
  }
}
