/**
 * Weights as graph values: a safetensors entry looked up by its Hugging Face name (with or without
 * the model class's prefix), checked against the shape config.json implies, referenced from the
 * file as an external initializer (no copy into the graph) and cast to float32 when stored as
 * f16 or bf16. Shared by the GPT-2 and Llama builders.
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import { DataType, type GraphBuilder } from "./onnx-graph";
import type { SafetensorsIndex, TensorEntry } from "./safetensors";

const DTYPE_TO_ONNX: Record<string, DataType> = {
  F32: DataType.FLOAT,
  F16: DataType.FLOAT16,
  BF16: DataType.BFLOAT16,
};

export class WeightTable {
  /**
   * @param prefix the name prefix of the full model class ("transformer." for GPT2LMHeadModel,
   *   "model." for LlamaForCausalLM); names are tried with it first, then bare.
   * @param missingHint said after "has no tensor …" to explain what needed it.
   */
  constructor(
    protected readonly index: SafetensorsIndex,
    private readonly g: GraphBuilder,
    private readonly prefix: string,
    private readonly missingHint: string,
  ) {}

  private find(name: string): TensorEntry | undefined {
    return this.index.tensors.get(`${this.prefix}${name}`) ?? this.index.tensors.get(name);
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  /** A float32 graph value for the named weight, checked against the shape config.json implies. */
  get(name: string, shape: readonly number[]): string {
    const entry = this.find(name);
    const file = this.index.path;
    if (!entry) throw new LoupeError("bad-file", `${file} has no tensor "${this.prefix}${name}" (or "${name}"): ${this.missingHint}`, file);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new LoupeError(
        "bad-shape",
        `${file}: tensor "${entry.name}" has shape [${entry.shape.join(", ")}] but config.json implies [${shape.join(", ")}]. Check that config.json belongs to these weights.`,
        file,
      );
    }
    const elemType = DTYPE_TO_ONNX[entry.dtype];
    if (elemType === undefined) throw new LoupeError("bad-file", `${file}: tensor "${entry.name}" has dtype ${entry.dtype}; expected F32, F16 or BF16.`, file);
    const stored = this.g.externalInitializer(`w:${entry.name}`, elemType, entry.shape, {
      location: path.basename(file),
      offset: entry.fileOffset,
      length: entry.byteLength,
    });
    return elemType === DataType.FLOAT ? stored : this.g.op("Cast", [stored], { to: DataType.FLOAT }, this.g.fresh(`f32:${entry.name}`));
  }
}
