/**
 * A small builder for ONNX graphs over the onnx-buf codec: enough to describe a transformer
 * without hand-writing protobuf messages. Weights can stay outside the graph (external data that
 * points into the original safetensors file), so a built graph is a few kilobytes.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import * as onnx from "onnx-buf";

export const DataType = onnx.TensorProto_DataType;
export type DataType = onnx.TensorProto_DataType;

export type AttributeValue = number | string | number[] | { floatValue: number } | { tensor: onnx.TensorProto };

/** A reference to a byte range of a file next to the model, read by onnxruntime at load time. */
export interface ExternalWeight {
  readonly location: string;
  readonly offset: number;
  readonly length: number;
}

export const OPSET = 20;

export class GraphBuilder {
  private readonly nodes: onnx.NodeProto[] = [];
  private readonly initializers: onnx.TensorProto[] = [];
  private readonly inputs: onnx.ValueInfoProto[] = [];
  private readonly outputs: onnx.ValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  /** A fresh tensor name with a readable prefix. */
  fresh(prefix: string): string {
    let name = prefix;
    while (this.used.has(name)) name = `${prefix}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  input(name: string, elemType: DataType, dims?: Array<string | number>): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declare a graph output. `elemType` may be omitted: onnxruntime infers it (a wrong one fails at load). */
  output(name: string, elemType?: DataType): void {
    this.outputs.push(elemType === undefined ? create(onnx.ValueInfoProtoSchema, { name }) : valueInfo(name, elemType));
  }

  externalInitializer(name: string, elemType: DataType, dims: readonly number[], where: ExternalWeight): string {
    this.used.add(name);
    this.initializers.push(
      create(onnx.TensorProtoSchema, {
        name,
        dims: dims.map(BigInt),
        dataType: elemType,
        dataLocation: onnx.TensorProto_DataLocation.EXTERNAL,
        externalData: [
          entry("location", where.location),
          entry("offset", String(where.offset)),
          entry("length", String(where.length)),
        ],
      }),
    );
    return name;
  }

  floatInitializer(name: string, dims: readonly number[], values: Float32Array | number[]): string {
    this.used.add(name);
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    this.initializers.push(
      create(onnx.TensorProtoSchema, {
        name,
        dims: dims.map(BigInt),
        dataType: DataType.FLOAT,
        rawData: Uint8Array.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)),
      }),
    );
    return name;
  }

  int64Initializer(name: string, dims: readonly number[], values: number[]): string {
    this.used.add(name);
    this.initializers.push(create(onnx.TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.INT64, int64Data: values.map(BigInt) }));
    return name;
  }

  boolInitializer(name: string, dims: readonly number[], values: Uint8Array): string {
    this.used.add(name);
    this.initializers.push(create(onnx.TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.BOOL, rawData: Uint8Array.from(values) }));
    return name;
  }

  /** Add a node with one output; returns the output's name. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, outputName?: string): string {
    const output = outputName ?? this.fresh(`${opType.toLowerCase()}`);
    if (outputName) this.used.add(outputName);
    this.opMulti(opType, inputs, [output], attributes);
    return output;
  }

  opMulti(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}): string[] {
    this.nodes.push(
      create(onnx.NodeProtoSchema, {
        opType,
        name: `${opType}:${outputs[0]}`,
        input: inputs,
        output: outputs,
        attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outputs;
  }

  toBytes(graphName: string, docString = ""): Uint8Array {
    const graph = create(onnx.GraphProtoSchema, {
      name: graphName,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    });
    const model = create(onnx.ModelProtoSchema, {
      irVersion: 9n,
      producerName: "loupe",
      docString,
      opsetImport: [create(onnx.OperatorSetIdProtoSchema, { domain: "", version: BigInt(OPSET) })],
      graph,
    });
    return toBinary(onnx.ModelProtoSchema, model);
  }
}

function entry(key: string, value: string): onnx.StringStringEntryProto {
  return create(onnx.StringStringEntryProtoSchema, { key, value });
}

function valueInfo(name: string, elemType: DataType, dims?: Array<string | number>): onnx.ValueInfoProto {
  const shape = dims
    ? create(onnx.TensorShapeProtoSchema, {
        dim: dims.map((d) =>
          create(onnx.TensorShapeProto_DimensionSchema, {
            value: typeof d === "string" ? { case: "dimParam", value: d } : { case: "dimValue", value: BigInt(d) },
          }),
        ),
      })
    : undefined;
  return create(onnx.ValueInfoProtoSchema, {
    name,
    type: create(onnx.TypeProtoSchema, {
      value: { case: "tensorType", value: create(onnx.TypeProto_TensorSchema, { elemType, shape }) },
    }),
  });
}

function attribute(name: string, value: AttributeValue): onnx.AttributeProto {
  const A = onnx.AttributeProto_AttributeType;
  if (typeof value === "string") return create(onnx.AttributeProtoSchema, { name, type: A.STRING, s: new TextEncoder().encode(value) });
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { floatValue } for floats`);
    return create(onnx.AttributeProtoSchema, { name, type: A.INT, i: BigInt(value) });
  }
  if (Array.isArray(value)) return create(onnx.AttributeProtoSchema, { name, type: A.INTS, ints: value.map(BigInt) });
  if ("floatValue" in value) return create(onnx.AttributeProtoSchema, { name, type: A.FLOAT, f: value.floatValue });
  return create(onnx.AttributeProtoSchema, { name, type: A.TENSOR, t: value.tensor });
}
