/**
 * Weights as graph values: a safetensors entry looked up by its Hugging Face name (with or without
 * the model class's prefix), checked against the shape config.json implies, referenced from the
 * file as an external initializer (no copy into the graph) and cast to float32 when stored as
 * f16 or bf16. Shared by the GPT-2 and Llama builders.
 *
 * Compact weights (LoadOptions.compactWeights): onnxruntime folds a Cast whose input is an
 * initializer when the session is created, so an f16/bf16 model sits in memory as float32. In
 * compact mode a weight matrix's Cast instead takes its input through a Reshape whose target
 * shape is computed from an activation of the layer that uses it (the caller's `after`): nothing
 * can fold it, and it cannot run before that activation exists, so each float32 copy lives only
 * from just before its consumer to just after. Without that data dependency the unfolded Casts
 * could all run at the start of a run and every copy would be alive at once. Row lookups
 * (embeddings) gather from the stored tensor and cast only the rows taken; the unembedding is
 * cast in slices (timesTransposed). Measured with bench/models/compact-weights.ts on a bf16
 * SmolLM2-135M shape: 0.35 GB above the process's base after a short run instead of 1.4 GB; only
 * lowering onnxruntime's constant-folding size limit (no data dependency) peaked higher, and
 * turning its memory arena off did not help.
 */
import { LoupeError } from "../errors";
import { DataType, type GraphBuilder } from "./onnx-graph";
import type { SafetensorsIndex, TensorEntry } from "./safetensors";

const DTYPE_TO_ONNX: Record<string, DataType> = {
  F32: DataType.FLOAT,
  F16: DataType.FLOAT16,
  BF16: DataType.BFLOAT16,
};

/** Slices the unembedding is cast in, in compact mode: 3072 x 576 floats (7 MB) each for SmolLM2. */
const UNEMBED_SLICES = 16;

/** How the unembedding is computed (WeightTable.timesTransposed): for a model's forward, or for the chunked logit lens. */
export type UnembedForm = "forward" | "rows-independent";

/** What a graph's weights are laid out for (see WeightTable.timesTransposed). */
export interface WeightLayout {
  /** Cast f16/bf16 matrices at run time instead of folding them to float32 at load. */
  readonly compact?: boolean;
  /** Runs of one or a few rows (a decode-only graph): the unembedding in the layout one-row kernels read fastest. */
  readonly fewRows?: boolean;
}

export class WeightTable {
  /** Initializer names already declared: a weight read twice (a tied embedding) is declared once. */
  private readonly declared = new Map<string, string>();
  /** Load-time float32 casts already made: a weight read twice is folded into one float32 copy, not two. */
  private readonly casts = new Map<string, string>();
  /** Per activation, a runtime int64 [0] derived from its shape (compact mode). */
  private readonly zeros = new Map<string, string>();
  /** Float32 [width, rows] transposes folded at session creation (few-rows layout), by weight. */
  private readonly transposes = new Map<string, string>();
  private readonly compact: boolean;
  protected readonly fewRows: boolean;

  /**
   * @param prefix the name prefix of the full model class ("transformer." for GPT2LMHeadModel,
   *   "model." for LlamaForCausalLM), or several to try in order; names are tried with it first, then bare.
   * @param missingHint said after "has no tensor …" to explain what needed it.
   * @param layout compact: cast f16/bf16 matrices at run time; fewRows: lay the unembedding out for one-row runs.
   */
  constructor(
    protected readonly index: SafetensorsIndex,
    private readonly g: GraphBuilder,
    prefix: string | readonly string[],
    private readonly missingHint: string,
    layout: WeightLayout = {},
  ) {
    this.prefixes = typeof prefix === "string" ? [prefix] : prefix;
    this.compact = layout.compact ?? false;
    this.fewRows = layout.fewRows ?? false;
  }

  private readonly prefixes: readonly string[];

  private find(name: string): TensorEntry | undefined {
    for (const prefix of this.prefixes) {
      const entry = this.index.tensors.get(`${prefix}${name}`);
      if (entry) return entry;
    }
    return this.index.tensors.get(name);
  }

  /** The stored dtype of the named weight ("F32", "BF16", ...), or undefined when absent. */
  dtypeOf(name: string): string | undefined {
    return this.find(name)?.dtype;
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  /**
   * A float32 graph value for the named weight, checked against the shape config.json implies.
   * @param after in compact mode, an activation the weight's consumer reads: an f16/bf16 weight is
   *   cast only once it exists (small weights such as norms and biases are passed without one and
   *   folded as usual).
   */
  get(name: string, shape: readonly number[], after?: string): string {
    const { stored, entry, elemType } = this.stored(name, shape);
    if (elemType === DataType.FLOAT) return stored;
    const cast = (input: string) => this.g.op("Cast", [input], { to: DataType.FLOAT }, this.g.fresh(`f32:${entry.name}`));
    // Compact: a cast of its own for each use, run just before it (see the module comment).
    if (this.compact && after) return cast(this.g.op("Reshape", [stored, this.runtimeShape(entry.shape, after)]));
    let folded = this.casts.get(entry.name);
    if (folded === undefined) {
      folded = cast(stored);
      this.casts.set(entry.name, folded);
    }
    return folded;
  }

  /**
   * Rows `indices` of the named [rows, width] weight (an embedding lookup), as float32.
   * @param compact gather from the stored f16/bf16 table even when the table is not in compact mode.
   * @param unembedding the table is also the unembedding (tied embeddings): with the few-rows
   *   layout, gather from the transpose the unembedding reads, so the session holds one copy.
   */
  rows(name: string, shape: readonly [number, number], indices: string, { compact = this.compact, unembedding = false }: { compact?: boolean; unembedding?: boolean } = {}): string {
    const { stored, entry, elemType } = this.stored(name, shape);
    if (compact && elemType !== DataType.FLOAT) {
      // Gather copies rows of any type: cast only what was taken, the table stays f16/bf16.
      return this.g.op("Cast", [this.g.op("Gather", [stored, indices], { axis: 0 })], { to: DataType.FLOAT }, this.g.fresh(`f32:${entry.name}`));
    }
    if (!(unembedding && this.fewRows)) return this.g.op("Gather", [this.get(name, shape), indices], { axis: 0 });
    // Columns of the [width, rows] transpose: [width, ...indices] -> [...indices, width].
    const columns = this.g.op("Gather", [this.transposed(name, shape), indices], { axis: 1 });
    return this.g.op("Transpose", [columns], { perm: [1, 2, 0] });
  }

  /**
   * x @ W^T for a [rows, width] weight W (the unembedding, [d_vocab, d_model]).
   *
   * "forward" (a model's logits), over many rows: a Gemm with transB over the rows of x, whose
   * product comes out [rows of x, d_vocab] as wanted, with no transposed copy of W or of the
   * product (Gemma 3 270M, 256 positions: 0.27 GB less at peak and a fifth less time than the
   * "rows-independent" form). W reaches it through a Reshape whose target is computed from x
   * (runtimeShape): not a constant there, so onnxruntime neither prepacks it nor folds a transposed
   * copy at session creation (either would sit beside the table Gather reads: Gemma 3 270M,
   * 0.67 GB in float32), and the Reshape aliases the table rather than copying it.
   *
   * "forward" with the few-rows layout (a decode-only graph, one row a step): a MatMul over W's
   * transpose [width, rows], folded once at session creation and hidden from prepacking the same
   * way. On one row onnxruntime's CPU MatMul streams that layout in about two thirds of the time
   * its transB Gemm takes over W as stored (bench/models/unembed-layouts.ts: Gemma 3 270M's
   * table, 23.6 vs 36.1 ms CPU a step on one thread); over 256 rows the Gemm is the faster one.
   * A tied embedding then gathers from the same transpose (rows), so the session still holds one
   * float32 table.
   *
   * "rows-independent" (the logit lens): (W @ x^T)^T, W read as stored as the MatMul's first
   * input. Each row's logits are then the same bits however many rows a call has (a Gemm's
   * one-row kernel sums in another order), so the chunked lens equals the one-call lens exactly.
   *
   * In compact mode an f16/bf16 W is cast a slice of rows at a time, each after `x` exists, and
   * the products are concatenated: a whole float32 copy of the unembedding would be the largest
   * allocation of a run.
   */
  timesTransposed(x: string, name: string, shape: readonly [number, number], form: UnembedForm, output?: string, compact = this.compact): string {
    const { stored, entry, elemType } = this.stored(name, shape);
    const g = this.g;
    const [rows, width] = shape;
    const flat = g.op("Reshape", [x, g.int64Initializer(g.fresh("shape:rows_width"), [2], [-1, width])]);
    const xT = form === "rows-independent" ? g.op("Transpose", [flat], { perm: [1, 0] }) : flat;
    const times = (w: string) => (form === "forward" ? g.op("Gemm", [flat, w], { transB: 1 }) : g.op("MatMul", [w, xT]));
    let product: string;
    if (compact && elemType !== DataType.FLOAT) {
      const sliceRows = Math.ceil(rows / UNEMBED_SLICES);
      const axis0 = g.int64Initializer(g.fresh(`axes:${entry.name}`), [1], [0]);
      const parts: string[] = [];
      for (let start = 0; start < rows; start += sliceRows) {
        const end = g.int64Initializer(g.fresh(`end:${entry.name}`), [1], [Math.min(rows, start + sliceRows)]);
        // A start computed from x: the Slice cannot be folded, nor run before x.
        const begin = g.op("Add", [g.int64Initializer(g.fresh(`start:${entry.name}`), [1], [start]), this.zero(flat)]);
        parts.push(times(g.op("Cast", [g.op("Slice", [stored, begin, end, axis0])], { to: DataType.FLOAT })));
      }
      product = parts.length === 1 ? parts[0] : g.op("Concat", parts, { axis: form === "forward" ? 1 : 0 });
    } else if (form === "forward" && this.fewRows) {
      product = g.op("MatMul", [flat, g.op("Reshape", [this.transposed(name, shape), this.runtimeShape([width, rows], flat)])]);
    } else {
      const weight = this.get(name, shape);
      product = times(form === "forward" ? g.op("Reshape", [weight, this.runtimeShape(entry.shape, flat)]) : weight);
    }
    if (form === "rows-independent") product = g.op("Transpose", [product], { perm: [1, 0] });
    const leading = g.op("Shape", [x], { end: -1 });
    return g.op("Reshape", [product, g.op("Concat", [leading, g.int64Initializer(g.fresh("const:rows"), [1], [rows])], { axis: 0 })], {}, output);
  }

  /**
   * The named [rows, width] weight's float32 transpose [width, rows], folded at session creation
   * (declared once). An f16/bf16 weight is transposed before it is cast, so the folding holds one
   * float32 copy at a time, not two.
   */
  private transposed(name: string, shape: readonly [number, number]): string {
    let t = this.transposes.get(name);
    if (t === undefined) {
      const { stored, elemType } = this.stored(name, shape);
      const g = this.g;
      const swapped = g.op("Transpose", [stored], { perm: [1, 0] }, elemType === DataType.FLOAT ? g.fresh(`transposed:${name}`) : undefined);
      t = elemType === DataType.FLOAT ? swapped : g.op("Cast", [swapped], { to: DataType.FLOAT }, g.fresh(`transposed:${name}`));
      this.transposes.set(name, t);
    }
    return t;
  }

  private stored(name: string, shape: readonly number[]): { stored: string; entry: TensorEntry; elemType: DataType } {
    const entry = this.find(name);
    const file = this.index.path;
    if (!entry) throw new LoupeError("bad-file", `${file} has no tensor "${this.prefixes[0]}${name}" (or "${name}"): ${this.missingHint}`, file);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new LoupeError(
        "bad-shape",
        `${file}: tensor "${entry.name}" has shape [${entry.shape.join(", ")}] but config.json implies [${shape.join(", ")}]. Check that config.json belongs to these weights.`,
        file,
      );
    }
    const elemType = DTYPE_TO_ONNX[entry.dtype];
    if (elemType === undefined) throw new LoupeError("bad-file", `${file}: tensor "${entry.name}" has dtype ${entry.dtype}; expected F32, F16 or BF16.`, file);
    let stored = this.declared.get(entry.name);
    if (stored === undefined) {
      stored = this.g.externalInitializer(`w:${entry.name}`, elemType, entry.shape, {
        location: entry.location,
        offset: entry.fileOffset,
        length: entry.byteLength,
      });
      this.declared.set(entry.name, stored);
    }
    return { stored, entry, elemType };
  }

  /**
   * A weight's shape, computed at run time from `after` (shape + (n - n) for n = its first
   * dimension): a value no optimizer can fold, so the Reshape and Cast behind it stay in the graph
   * and run after `after` is computed.
   */
  private runtimeShape(shape: readonly number[], after: string): string {
    const dims = this.g.int64Initializer(this.g.fresh("shape:weight"), [shape.length], [...shape]);
    return this.g.op("Add", [dims, this.zero(after)]);
  }

  /** int64 [0], computed from `after`'s shape: n - n for its first dimension n. */
  private zero(after: string): string {
    let zero = this.zeros.get(after);
    if (zero === undefined) {
      const n = this.g.op("Shape", [after], { start: 0, end: 1 });
      zero = this.g.op("Sub", [n, n]);
      this.zeros.set(after, zero);
    }
    return zero;
  }
}
