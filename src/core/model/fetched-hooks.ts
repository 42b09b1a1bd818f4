/**
 * Hooks computed only when fetched. onnxruntime runs every node of a graph and keeps every graph
 * output alive until the run ends, fetched or not (microsoft/onnxruntime#16483, #27615): with
 * every hook a graph output, a run holds every activation of every block at once (SmolLM2-135M
 * at 1,024 tokens: about 3.4 GB, two thirds of it attention patterns and scores).
 *
 * This pass puts each hook output behind an `If` on one boolean of the FETCH_HOOKS input: the
 * branch taken when the hook is fetched returns the activation, the other an empty tensor. The
 * activation itself is then an ordinary intermediate that onnxruntime frees after its last use.
 * The arithmetic is untouched (the activation had a consumer outside the block before, the graph
 * output, and has one now, the If), so results are bit-identical to the ungated graph.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as onnx from "onnx-buf";
import { DataType } from "./onnx-graph";

/** [hooks + computed] bool input: which outputs a run returns, in the order of `gateHookOutputs`'s `hooks`, then `computed`. */
export const FETCH_HOOKS = "fetch_hooks";

/** [0]: Slice bounds that keep nothing. */
const NOTHING = `${FETCH_HOOKS}::nothing`;

/**
 * Rewrites a model's bytes so that the outputs named in `hooks` are returned only when fetched
 * (see above), and those in `computed` (outputs nothing else reads, such as the logits) are not
 * even computed unless fetched: the nodes only each needs move into its If's branch.
 */
export function gateHookOutputs(bytes: Uint8Array, hooks: readonly string[], computed: readonly string[] = []): Uint8Array {
  const model = fromBinary(onnx.ModelProtoSchema, bytes);
  const graph = model.graph;
  if (!graph) throw new Error("internal: a model without a graph");
  const gated = new Set(hooks);
  const outputs = new Set(graph.output.map((o) => o.name));
  const missing = hooks.find((h) => !outputs.has(h));
  if (missing !== undefined) throw new Error(`internal: hook ${missing} is not an output of the graph`);
  const rename = new Map(hooks.map((h) => [h, `${h}::value`]));
  const after = new Map(hooks.map((h) => [h, `${h}::after`]));
  // The activation keeps flowing under its new name; the hook's name now belongs to the If's output.
  // Its consumers read it through a Reshape to its own shape that waits for the If: onnxruntime
  // orders nodes depth-first from the graph's leaves, and an If nothing reads would run last,
  // keeping every activation alive until the end of the run.
  for (const node of graph.node) {
    node.input = node.input.map((name) => after.get(name) ?? name);
    node.output = node.output.map((name) => rename.get(name) ?? name);
  }
  const nodes: onnx.NodeProto[] = [];
  const initializers: onnx.TensorProto[] = [create(onnx.TensorProtoSchema, { name: NOTHING, dims: [1n], dataType: DataType.INT64, int64Data: [0n] })];
  hooks.forEach((hook, i) => {
    const flag = fetchFlag(hook, i, nodes, initializers);
    const thenBranch = branch(`${hook}::then`, [node("Identity", [rename.get(hook) ?? hook], [`${hook}::then_out`], `Identity:${hook}::then`)], `${hook}::then_out`);
    const value = rename.get(hook) ?? hook;
    // An empty shape that exists once the If has run: its Shape cut to nothing (Slice, not Shape's
    // `end`, which needs opset 15 where imported graphs may declare 13).
    nodes.push(node("Shape", [hook], [`${hook}::fetched_shape`], `Shape:${hook}::fetched_shape`));
    nodes.push(node("Slice", [`${hook}::fetched_shape`, NOTHING, NOTHING], [`${hook}::ran`], `Slice:${hook}::ran`));
    nodes.push(node("Shape", [value], [`${hook}::shape`], `Shape:${hook}::shape`));
    nodes.push(create(onnx.NodeProtoSchema, { opType: "Concat", name: `Concat:${hook}::shape_after`, input: [`${hook}::shape`, `${hook}::ran`], output: [`${hook}::shape_after`], attribute: [create(onnx.AttributeProtoSchema, { name: "axis", type: onnx.AttributeProto_AttributeType.INT, i: 0n })] }));
    nodes.push(node("Reshape", [value, `${hook}::shape_after`], [after.get(hook) ?? hook], `Reshape:${hook}::after`));
    nodes.push(ifNode(hook, flag, thenBranch, emptyBranch(hook)));
  });
  graph.node.push(...nodes.splice(0));
  // Once every hook's gate is in the graph, so that a hook's value is seen to feed its own If too.
  computed.forEach((name, i) => {
    const producers = takeExclusiveProducers(graph, name);
    const flag = fetchFlag(name, hooks.length + i, nodes, initializers);
    for (const producer of producers) producer.output = producer.output.map((o) => (o === name ? `${name}::then_out` : o));
    nodes.push(ifNode(name, flag, branch(`${name}::then`, producers, `${name}::then_out`), emptyBranch(name)));
  });
  graph.node.push(...nodes);
  graph.initializer.push(...initializers);
  graph.input.push(
    create(onnx.ValueInfoProtoSchema, {
      name: FETCH_HOOKS,
      type: create(onnx.TypeProtoSchema, {
        value: {
          case: "tensorType",
          value: create(onnx.TypeProto_TensorSchema, {
            elemType: DataType.BOOL,
            shape: create(onnx.TensorShapeProtoSchema, { dim: [create(onnx.TensorShapeProto_DimensionSchema, { value: { case: "dimValue", value: BigInt(hooks.length + computed.length) } })] }),
          }),
        },
      }),
    }),
  );
  // Declared output types stay (float32); a gated output's shape is no longer fixed.
  for (const output of graph.output) if ((gated.has(output.name) || computed.includes(output.name)) && output.type?.value.case === "tensorType") output.type.value.value.shape = undefined;
  return toBinary(onnx.ModelProtoSchema, model);
}

/**
 * Removes from the graph, and returns in graph order, the node that makes the output `name` and
 * every node whose outputs feed only those nodes: the whole computation only `name` needs (the
 * unembedding is a MatMul between a Transpose and a Reshape, and each of them would otherwise
 * run, and hold its [positions, d_vocab] result, in every run). Nodes are in topological order,
 * so walking back from the end decides each node after all of its consumers.
 */
function takeExclusiveProducers(graph: onnx.GraphProto, name: string): onnx.NodeProto[] {
  const at = graph.node.findIndex((n) => n.output.includes(name));
  if (at < 0 || graph.node.some((n) => n.input.includes(name))) throw new Error(`internal: ${name} is not an output that only the caller reads`);
  const graphOutputs = new Set(graph.output.map((o) => o.name));
  const consumers = new Map<string, number[]>();
  graph.node.forEach((n, i) => readsOf(n).forEach((input) => consumers.set(input, [...(consumers.get(input) ?? []), i])));
  const taken = new Set([at]);
  for (let i = at - 1; i >= 0; i--) {
    const outputs = graph.node[i].output.filter((o) => o !== "");
    const feedsOnlyTaken = outputs.every((o) => !graphOutputs.has(o) && (consumers.get(o) ?? []).every((c) => taken.has(c)));
    if (feedsOnlyTaken && outputs.some((o) => consumers.has(o))) taken.add(i);
  }
  const producers = graph.node.filter((_, i) => taken.has(i));
  graph.node = graph.node.filter((_, i) => !taken.has(i));
  return producers;
}

/** The values a node reads: its inputs, and any outer-scope value its subgraphs (If, Loop) read by name. */
function readsOf(n: onnx.NodeProto): string[] {
  const subgraphs = n.attribute.flatMap((a) => [...(a.g ? [a.g] : []), ...a.graphs]);
  return [...n.input, ...subgraphs.flatMap((g) => g.node.flatMap(readsOf))];
}

/** The boolean FETCH_HOOKS[index], as a scalar for an If. */
function fetchFlag(name: string, index: number, nodes: onnx.NodeProto[], initializers: onnx.TensorProto[]): string {
  const flag = `${name}::fetched`;
  initializers.push(create(onnx.TensorProtoSchema, { name: `${name}::index`, dims: [], dataType: DataType.INT64, int64Data: [BigInt(index)] }));
  nodes.push(node("Gather", [FETCH_HOOKS, `${name}::index`], [flag], `Gather:${flag}`));
  return flag;
}

/** The branch taken when an output is not fetched: an empty float tensor. */
function emptyBranch(name: string): onnx.GraphProto {
  const empty = create(onnx.TensorProtoSchema, { name: `${name}::empty`, dims: [0n], dataType: DataType.FLOAT });
  const value = create(onnx.AttributeProtoSchema, { name: "value", type: onnx.AttributeProto_AttributeType.TENSOR, t: empty });
  return branch(`${name}::else`, [create(onnx.NodeProtoSchema, { opType: "Constant", name: `Constant:${name}::else`, output: [`${name}::else_out`], attribute: [value] })], `${name}::else_out`);
}

function ifNode(output: string, flag: string, thenBranch: onnx.GraphProto, elseBranch: onnx.GraphProto): onnx.NodeProto {
  return create(onnx.NodeProtoSchema, { opType: "If", name: `If:${output}`, input: [flag], output: [output], attribute: [graphAttribute("then_branch", thenBranch), graphAttribute("else_branch", elseBranch)] });
}

function node(opType: string, input: string[], output: string[], name: string): onnx.NodeProto {
  return create(onnx.NodeProtoSchema, { opType, name, input, output });
}

function branch(name: string, nodes: onnx.NodeProto[], output: string): onnx.GraphProto {
  const type = create(onnx.TypeProtoSchema, { value: { case: "tensorType", value: create(onnx.TypeProto_TensorSchema, { elemType: DataType.FLOAT }) } });
  return create(onnx.GraphProtoSchema, { name, node: nodes, output: [create(onnx.ValueInfoProtoSchema, { name: output, type })] });
}

function graphAttribute(name: string, g: onnx.GraphProto): onnx.AttributeProto {
  return create(onnx.AttributeProtoSchema, { name, type: onnx.AttributeProto_AttributeType.GRAPH, g });
}
