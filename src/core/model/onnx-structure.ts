/**
 * Finds the residual stream of an existing decoder graph by its structure, not by names (exporters
 * name nodes differently): from the LM head's MatMul back through the final norm to the last
 * residual Add, then along the chain of residual Adds to the embedding. A residual Add is one whose
 * inputs are both computed and one of them (the skip) is an ancestor of the other (the branch):
 * the branch starts by normalising the skip. Norm internals (x + eps, x * w + b) fail that test.
 */
import type * as onnx from "onnx-buf";

/** Ops that compute attention in one node: their pattern, scores, q, k, v and z stay inside. */
export const FUSED_ATTENTION_OPS = new Set(["Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedAttention", "PackedMultiHeadAttention", "SparseAttention", "DecoderMaskedMultiHeadAttention"]);
/** Fused ops that fold a residual Add into a norm: the Add itself is not in the graph. */
export const FUSED_RESIDUAL_OPS = new Set(["SkipLayerNormalization", "SkipSimplifiedLayerNormalization"]);

export interface ResidualAdd {
  /** The Add's output: resid_mid or resid_post. */
  readonly out: string;
  /** The residual input (resid_pre or resid_mid). */
  readonly skip: string;
  /** The branch output added in (attention or MLP out). */
  readonly branch: string;
  /** Op types on the branch's paths from skip to branch. */
  readonly branchOps: ReadonlySet<string>;
  /** Softmax nodes' outputs on those paths, with their axis attribute. */
  readonly softmaxes: readonly { readonly output: string; readonly axis: number }[];
}

export interface ResidualStructure {
  /** Token embedding: the Gather on the embedding table, and the table's initializer name. */
  readonly embed?: { readonly output: string; readonly table: string; readonly indices: string };
  /** Position embedding added to it (GPT-2), when present. */
  readonly posEmbed?: { readonly output: string; readonly table: string };
  /** blocks.0.hook_resid_pre: where the chain starts. */
  readonly start: string;
  /** The chain in forward order: attention Add, MLP Add, per block. */
  readonly adds: readonly ResidualAdd[];
  /** The LM head MatMul: its activation input (after the final norm) and its weight. */
  readonly lmHead: { readonly input: string; readonly weight: string };
}

/** Why no residual structure was found; the caller turns it into a LoupeError naming the file. */
export class StructureError extends Error {}

export class GraphIndex {
  readonly producer = new Map<string, onnx.NodeProto>();
  readonly consumers = new Map<string, onnx.NodeProto[]>();
  readonly initializers = new Map<string, onnx.TensorProto>();
  readonly inputs = new Set<string>();
  private readonly constantMemo = new Map<string, boolean>();

  constructor(readonly graph: onnx.GraphProto) {
    for (const node of graph.node) {
      for (const out of node.output) if (out) this.producer.set(out, node);
      for (const name of node.input) {
        if (!name) continue;
        const list = this.consumers.get(name) ?? [];
        list.push(node);
        this.consumers.set(name, list);
      }
    }
    for (const t of graph.initializer) this.initializers.set(t.name, t);
    for (const i of graph.input) if (!this.initializers.has(i.name)) this.inputs.add(i.name);
  }

  /** Whether a tensor depends on no graph input (an initializer, a Constant, or ops over those). */
  isConstant(name: string, seen = this.constantMemo): boolean {
    const known = seen.get(name);
    if (known !== undefined) return known;
    seen.set(name, true);
    let result: boolean;
    if (this.initializers.has(name)) result = true;
    else if (this.inputs.has(name)) result = false;
    else {
      const node = this.producer.get(name);
      result = node === undefined ? false : node.input.every((i) => !i || this.isConstant(i, seen));
    }
    seen.set(name, result);
    return result;
  }

  /** Every tensor `name` is computed from, itself included. */
  ancestors(name: string): Set<string> {
    const seen = new Set<string>();
    const stack = [name];
    while (stack.length > 0) {
      const t = stack.pop() as string;
      if (seen.has(t)) continue;
      seen.add(t);
      const node = this.producer.get(t);
      if (node) for (const i of node.input) if (i && !seen.has(i)) stack.push(i);
    }
    return seen;
  }

  /** Nodes on some path from tensor `from` to tensor `to`. */
  nodesBetween(from: string, to: string): onnx.NodeProto[] {
    const upstream = this.ancestors(to);
    const out: onnx.NodeProto[] = [];
    const seen = new Set<onnx.NodeProto>();
    const stack = [from];
    const reached = new Set<string>();
    while (stack.length > 0) {
      const t = stack.pop() as string;
      if (reached.has(t)) continue;
      reached.add(t);
      for (const node of this.consumers.get(t) ?? []) {
        if (seen.has(node) || !node.output.some((o) => upstream.has(o))) continue;
        seen.add(node);
        out.push(node);
        for (const o of node.output) if (o && upstream.has(o)) stack.push(o);
      }
    }
    return out;
  }
}

/** The residual Add that produces `name`, as (skip, branch), or undefined. */
function residualAdd(index: GraphIndex, name: string): { skip: string; branch: string } | undefined {
  const node = index.producer.get(name);
  if (!node || node.opType !== "Add" || node.domain !== "" || node.input.length !== 2) return undefined;
  const [a, b] = node.input;
  if (index.isConstant(a) || index.isConstant(b)) return undefined;
  if (index.ancestors(b).has(a)) return { skip: a, branch: b };
  if (index.ancestors(a).has(b)) return { skip: b, branch: a };
  return undefined;
}

/** The LM head: the MatMul (or Gemm) with a constant weight that produces `logits`, possibly through reshapes. */
function findLmHead(index: GraphIndex, logits: string): { input: string; weight: string } {
  const passThrough = new Set(["Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Transpose", "Add"]);
  let name = logits;
  for (let steps = 0; steps < 8; steps++) {
    const node = index.producer.get(name);
    if (!node) break;
    if ((node.opType === "MatMul" || node.opType === "Gemm") && node.domain === "") {
      const [x, w] = node.input;
      if (index.isConstant(w) && !index.isConstant(x)) return { input: x, weight: w };
      if (index.isConstant(x) && !index.isConstant(w)) return { input: w, weight: x };
      break;
    }
    if (!passThrough.has(node.opType)) break;
    // Follow the computed input (an Add's bias or a Reshape's shape is the other one).
    const computed = node.input.filter((i) => i && !index.isConstant(i));
    if (computed.length !== 1) break;
    name = computed[0];
  }
  throw new StructureError("no LM head found: the logits output is not a MatMul of the hidden states with a weight matrix");
}

/** The first residual Add met walking back from the LM head (through the final norm), breadth first. */
function findLastResidual(index: GraphIndex, from: string): string {
  const queue = [from];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const t = queue.shift() as string;
    if (seen.has(t)) continue;
    seen.add(t);
    if (residualAdd(index, t)) return t;
    const node = index.producer.get(t);
    if (!node) continue;
    if (FUSED_RESIDUAL_OPS.has(node.opType)) {
      throw new StructureError(`the residual Adds are fused into ${node.opType} nodes (an onnxruntime-optimized graph); export the model again without onnxruntime optimizations`);
    }
    for (const i of node.input) if (i && !index.isConstant(i)) queue.push(i);
  }
  throw new StructureError("no residual Add (x + f(x)) feeds the final norm before the LM head");
}

/** The Gather of a constant [rows, d] table, and its indices; undefined for anything else. */
function embeddingGather(index: GraphIndex, name: string): { output: string; table: string; indices: string } | undefined {
  const node = index.producer.get(name);
  if (!node || node.opType !== "Gather" || node.domain !== "") return undefined;
  const [table, indices] = node.input;
  const t = index.initializers.get(table);
  if (!t || t.dims.length !== 2) return undefined;
  return { output: name, table, indices };
}

export function findResidualStructure(index: GraphIndex, logits: string): ResidualStructure {
  const lmHead = findLmHead(index, logits);
  const adds: ResidualAdd[] = [];
  let current = findLastResidual(index, lmHead.input);
  for (;;) {
    const add = residualAdd(index, current);
    if (!add) break;
    const between = index.nodesBetween(add.skip, add.branch);
    const softmaxes = between
      .filter((n) => n.opType === "Softmax" && n.domain === "")
      .map((n) => ({ output: n.output[0], axis: Number(n.attribute.find((a) => a.name === "axis")?.i ?? -1n) }));
    adds.push({ out: current, ...add, branchOps: new Set(between.map((n) => n.opType)), softmaxes });
    current = add.skip;
  }
  adds.reverse();
  const start = current;
  let embed = embeddingGather(index, start);
  let posEmbed: ResidualStructure["posEmbed"];
  const startNode = index.producer.get(start);
  if (!embed && startNode?.opType === "Add" && startNode.input.length === 2) {
    const [a, b] = startNode.input.map((i) => embeddingGather(index, i));
    // The token table is the one indexed by a graph input (maybe through a Cast); positions are computed.
    // Position ids may be an input too: an input named like token ids decides first.
    const score = (g: NonNullable<typeof a>) => {
      const input = tracesToInput(index, g.indices);
      return input === undefined ? 0 : /input_ids|^ids$|tokens/i.test(input) ? 2 : 1;
    };
    if (a && b) {
      const [tok, pos] = score(a) >= score(b) ? [a, b] : [b, a];
      embed = tok;
      posEmbed = { output: pos.output, table: pos.table };
    }
  }
  return { embed, posEmbed, start, adds, lmHead };
}

/** Whether a tensor is a graph input, or one through Cast/Identity/Reshape. */
export function tracesToInput(index: GraphIndex, name: string): string | undefined {
  let t = name;
  for (let steps = 0; steps < 4; steps++) {
    if (index.inputs.has(t)) return t;
    const node = index.producer.get(t);
    if (!node || !["Cast", "Identity", "Reshape", "Unsqueeze"].includes(node.opType)) return undefined;
    t = node.input[0];
  }
  return undefined;
}
