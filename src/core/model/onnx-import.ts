/**
 * Import of an existing decoder .onnx (an Optimum or torch.onnx export): the residual stream found
 * by structure (onnx-structure.ts) becomes TransformerLens hooks with the same (gain, write)
 * intervention inputs as Loupe's own graphs, and the graph's inputs are adapted to the ones
 * HookedModel feeds (input_ids, position_ids, float attention_mask). Past keys and values of a
 * with-past export are fed empty from inside the graph, so the model runs on whole sequences.
 *
 * Weights are not copied: initializers stored inside the .onnx become external references to
 * their own bytes in that file, so the rewritten graph stays small (as Loupe's built graphs do).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as onnx from "onnx-buf";
import { LoupeError } from "../errors";
import { Tokenizer } from "../tokenizer";
import { readModelConfig, type ModelConfig } from "./config";
import { gainInput, GRAPH_IO, insertHookPoint, LENS_IO, writeInput, type HookGraph } from "./hook-point";
import { blockHook, hookNamesFor, type BlockHookSuffix } from "./hooks";
import { cacheHeads } from "./kv-cache";
import { findWeightsFile } from "./model-weights";
import { realLocations } from "./real-paths";
import { DataType } from "./onnx-graph";
import { findResidualStructure, FUSED_ATTENTION_OPS, FUSED_RESIDUAL_OPS, GraphIndex, StructureError, tracesToInput, type ResidualStructure } from "./onnx-structure";
import { checkTokenizerFitsModel } from "./tokenizer-check";

/**
 * Where exports put the decoder, in order of preference: Optimum writes model.onnx at the top or
 * under onnx/; older Optimum versions wrote decoder_model.onnx beside a merged one (refused clearly).
 */
export const ONNX_MODEL_FILES = ["", "onnx"].flatMap((dir) => ["model.onnx", "decoder_model.onnx", "decoder_model_merged.onnx"].map((f) => path.join(dir, f)));
/** Default-domain opsets the import accepts: Softmax's last-axis meaning and the ops it inserts need 13. */
export const MIN_OPSET = 13;
export const MAX_OPSET = 23;
/** Initializers at least this large are referenced in the source file rather than copied. */
const EXTERNALIZE_BYTES = 1024;

export interface ImportedGraph {
  readonly bytes: Uint8Array;
  /** Hooks the graph provides, in forward order. */
  readonly hookNames: string[];
  /** TransformerLens hooks it cannot provide, each with the reason. */
  readonly unavailable: ReadonlyMap<string, string>;
  readonly modelFile: string;
  /** The real folder of the graph's external data (a hub snapshot's symlinks followed): onnxruntime's weights folder. */
  readonly dataDir: string;
  /** The logit lens (LENS_IO) cut from the graph's final norm and LM head; undefined when the tail depends on more than the residual stream. */
  readonly lensBytes?: Uint8Array;
}

export interface OnnxFolder {
  readonly dir: string;
  readonly cfg: ModelConfig;
  readonly modelFile: string;
  readonly tokenizer: Tokenizer;
}

/** The decoder .onnx of a folder without model.safetensors, or undefined (then the folder is a safetensors one). */
export function findOnnxModelFile(dir: string): string | undefined {
  if (findWeightsFile(dir) !== undefined) return undefined;
  return ONNX_MODEL_FILES.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
}

/** config.json and tokenizer.json of an ONNX folder, checked like a safetensors folder's (without reading the graph). */
export function openOnnxFolder(dir: string, modelFile: string): OnnxFolder {
  const { cfg, tokenizer, check } = readOnnxFolder(dir);
  check();
  return { dir, cfg, modelFile, tokenizer };
}

/**
 * An ONNX folder with its graph imported. The graph is checked against config.json (its token
 * embedding against vocab_size) before the tokenizer is, so a wrong config.json is named as such.
 */
export function importOnnxFolder(dir: string, modelFile: string, options: ImportOptions = {}): OnnxFolder & { readonly imported: ImportedGraph } {
  const { cfg, tokenizer, check } = readOnnxFolder(dir);
  const imported = importOnnxDecoder(modelFile, cfg, options);
  check();
  return { dir, cfg, modelFile, tokenizer, imported };
}

function readOnnxFolder(dir: string): { cfg: ModelConfig; tokenizer: Tokenizer; check: () => void } {
  const cfg = readModelConfig(dir);
  const tokenizerFile = path.join(dir, "tokenizer.json");
  if (!fs.existsSync(tokenizerFile)) {
    throw new LoupeError("missing-file", `No tokenizer.json in ${dir}. Save the tokenizer beside the model (tokenizer.save_pretrained with a fast tokenizer).`, tokenizerFile);
  }
  const tokenizer = Tokenizer.fromFile(tokenizerFile);
  return { cfg, tokenizer, check: () => checkTokenizerFitsModel(tokenizer, cfg, tokenizerFile) };
}

/**
 * Check a folder holding a decoder .onnx without starting onnxruntime (for `Loupe: Select Model…`):
 * its config, tokenizer and residual stream. Undefined when the folder is not an ONNX one.
 */
export function checkOnnxFolder(folder: string): (OnnxFolder & Pick<ImportedGraph, "hookNames" | "unavailable">) | undefined {
  const dir = path.resolve(folder);
  const modelFile = fs.existsSync(dir) && fs.statSync(dir).isDirectory() ? findOnnxModelFile(dir) : undefined;
  if (!modelFile) return undefined;
  const { imported, ...opened } = importOnnxFolder(dir, modelFile);
  return { ...opened, hookNames: imported.hookNames, unavailable: imported.unavailable };
}

export interface ImportOptions {
  /**
   * Expose attention patterns found as one Softmax per attention branch (default true). HookedModel
   * turns this off when a test run shows they are not [batch, head, query, key] (a Softmax over
   * heads folded into the batch, say).
   */
  readonly patterns?: boolean;
}

/** Read `modelFile`, find its residual stream, and rewrite it with hooks. Throws a LoupeError naming the file. */
export function importOnnxDecoder(modelFile: string, cfg: ModelConfig, options: ImportOptions = {}): ImportedGraph {
  const fail = (code: ProblemCode, why: string): never => {
    throw new LoupeError(code, `${modelFile}: ${why}`, modelFile);
  };
  const bytes = fs.readFileSync(modelFile);
  let model: onnx.ModelProto;
  try {
    model = fromBinary(onnx.ModelProtoSchema, bytes);
  } catch (error) {
    return fail("bad-file", `not a readable ONNX model (${(error as Error).message}).`);
  }
  const graph = model.graph;
  if (!graph) return fail("bad-file", "the file holds no ONNX graph.");
  // Every reason is reported at once, in the order a user fixes them: what needs a new export
  // first (it changes everything after), then what config.json gets wrong.
  const problems = new ImportProblems(modelFile);
  if (!checkExport(model, graph, problems)) return problems.throw();

  const index = new GraphIndex(graph);
  const logitsOutput = graph.output.find((o) => o.name === GRAPH_IO.logits) ?? graph.output.find((o) => /logits/i.test(o.name)) ?? (graph.output.length === 1 ? graph.output[0] : undefined);
  const notDecoder = `this is not a decoder Loupe can import: it needs an input of token ids (input_ids) and a logits output (found inputs ${[...index.inputs].join(", ") || "none"}; outputs ${graph.output.map((o) => o.name).join(", ")}).`;
  if (!logitsOutput) return problems.add("unsupported-architecture", notDecoder).throw();
  const logits = logitsOutput.name;
  let structure: ResidualStructure;
  try {
    structure = findResidualStructure(index, logits);
  } catch (error) {
    if (!(error instanceof StructureError)) throw error;
    const merged = graph.node.some((n) => n.opType === "If") ? " The network sits inside an If node (a merged decoder, decoder_model_merged.onnx): import decoder_model.onnx or model.onnx instead." : "";
    return problems.add("unsupported-architecture", `no residual stream found: ${error.message}.${merged}`).throw();
  }
  checkAgainstConfig(structure, index, cfg, problems);
  // The token ids are what the embedding Gather indexes, whatever the input is called.
  const idsInput = (structure.embed && tracesToInput(index, structure.embed.indices)) ?? [...index.inputs].find((n) => /input_ids|^ids$|tokens/i.test(n));
  if (!idsInput) problems.add("unsupported-architecture", notDecoder);
  if (!idsInput || problems.any) return problems.throw();

  const { hookNames, unavailable, points } = planHooks(structure, cfg, options.patterns ?? true);
  // Weights become references first, so neither graph below copies them.
  externalizeWeights(graph, bytes, path.basename(modelFile));
  const dataDir = followExternalData(graph, path.dirname(modelFile));
  // The lens graph is cut out before the rewrite changes the nodes it shares.
  const lensBytes = buildImportedLens(model, index, structure.adds[structure.adds.length - 1].out, logits);
  const rewriter = new Rewriter(graph, fail);
  rewriter.adaptInputs(index, idsInput, cfg);
  rewriter.setLogits(logits);
  for (const [hook, tensor] of points) rewriter.insertHook(hook, tensor);
  return { bytes: toBinary(onnx.ModelProtoSchema, model), lensBytes, hookNames, unavailable, modelFile, dataDir };
}

type ProblemCode = "bad-file" | "unsupported-architecture";
type Fail = (code: ProblemCode, why: string) => never;

/** What stops an import, gathered so that one error lists them all (a single one reads as before). */
class ImportProblems {
  private readonly list: Array<{ code: ProblemCode; why: string }> = [];

  constructor(private readonly modelFile: string) {}

  get any(): boolean {
    return this.list.length > 0;
  }

  add(code: ProblemCode, why: string): this {
    this.list.push({ code, why });
    return this;
  }

  throw(): never {
    const [first] = this.list;
    if (!first) throw new Error("internal: no import problem to report");
    if (this.list.length === 1) throw new LoupeError(first.code, `${this.modelFile}: ${first.why}`, this.modelFile);
    const reasons = this.list.map((p, i) => `  ${i + 1}. ${p.why}`).join("\n");
    throw new LoupeError(first.code, `${this.modelFile} cannot be imported, for ${this.list.length} reasons (fix them in this order):\n${reasons}`, this.modelFile);
  }
}

/**
 * What only a new export fixes: the opset, an empty graph, residual Adds that onnxruntime's
 * optimizer fused away. False when the graph cannot be searched for a residual stream.
 */
function checkExport(model: onnx.ModelProto, graph: onnx.GraphProto, problems: ImportProblems): boolean {
  const opset = model.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx");
  const version = opset ? Number(opset.version) : 0;
  if (version < MIN_OPSET || version > MAX_OPSET) {
    problems.add("unsupported-architecture", `opset ${version} is not supported; Loupe imports decoders exported with opset ${MIN_OPSET} to ${MAX_OPSET} (torch.onnx.export(..., opset_version=17)).`);
  }
  if (graph.node.length === 0) {
    problems.add("bad-file", `its graph has zero nodes (${graph.initializer.length} initializers): there is no network in it to import; export the model again.`);
    return false;
  }
  const fused = [...new Set(graph.node.filter((n) => FUSED_RESIDUAL_OPS.has(n.opType)).map((n) => n.opType))];
  if (fused.length > 0) {
    problems.add("unsupported-architecture", `the residual Adds are fused into ${fused.join(" and ")} nodes (an onnxruntime-optimized graph); export the model again without onnxruntime optimizations.`);
  }
  return fused.length === 0;
}

/** The found structure against config.json: float32 weights (an export setting) first, then what config.json says. */
function checkAgainstConfig(s: ResidualStructure, index: GraphIndex, cfg: ModelConfig, problems: ImportProblems): void {
  const table = s.embed ? index.initializers.get(s.embed.table) : undefined;
  if (table && table.dataType !== DataType.FLOAT) problems.add("unsupported-architecture", "its weights are not float32; Loupe imports float32 exports (export without --fp16).");
  const blocks = s.adds.length / 2;
  if (s.adds.length !== 2 * cfg.nLayers) {
    problems.add(
      "unsupported-architecture",
      `the residual stream has ${s.adds.length} residual Adds (${Number.isInteger(blocks) ? `${blocks} blocks of attention + MLP` : "not two per block"}), but config.json gives ${cfg.nLayers} layers. Check that config.json belongs to this model.`,
    );
  }
  const isAttention = (ops: ReadonlySet<string>) => ops.has("Softmax") || [...ops].some((op) => FUSED_ATTENTION_OPS.has(op));
  const odd: number[] = [];
  for (let L = 0; 2 * L + 1 < s.adds.length; L++) {
    if (!isAttention(s.adds[2 * L].branchOps) || isAttention(s.adds[2 * L + 1].branchOps)) odd.push(L);
  }
  if (odd.length > 0) {
    problems.add("unsupported-architecture", `${odd.length === 1 ? `block ${odd[0]} is` : `blocks ${odd.join(", ")} are`} not an attention sublayer followed by an MLP sublayer (parallel attention and MLP, as in GPT-J, is not supported).`);
  }
  if (table) {
    const [V, D] = table.dims.map(Number);
    if (D !== cfg.dModel || V !== cfg.dVocab) {
      problems.add("bad-file", `the token embedding is [${V}, ${D}] but config.json gives vocab_size ${cfg.dVocab} and width ${cfg.dModel}. Check that config.json belongs to this model.`);
    }
  }
  const head = index.initializers.get(s.lmHead.weight);
  if (head && head.dims.length === 2 && !head.dims.map(Number).includes(cfg.dModel)) {
    problems.add("bad-file", `the LM head is [${head.dims.join(", ")}], which does not match config.json's width ${cfg.dModel}.`);
  }
}

/** Which tensor each hook reads, in forward order; and why the others are missing. */
function planHooks(s: ResidualStructure, cfg: ModelConfig, patterns: boolean): { hookNames: string[]; unavailable: Map<string, string>; points: Array<[string, string]> } {
  const points: Array<[string, string]> = [];
  const provided = new Set<string>();
  // Several hooks on one tensor run in forward order (hook_embed, then resid_pre when there is no
  // position embedding; resid_post, then the next resid_pre): each hooks the one before.
  const latest = new Map<string, string>();
  const add = (hook: string, tensor: string) => {
    points.push([hook, latest.get(tensor) ?? tensor]);
    latest.set(tensor, hook);
    provided.add(hook);
  };
  const reasons = new Map<string, string>();
  if (s.embed) add("hook_embed", s.embed.output);
  else reasons.set("hook_embed", "the residual stream does not start at an embedding Gather, so the token embedding alone is not a tensor of the graph");
  if (s.posEmbed) add("hook_pos_embed", s.posEmbed.output);
  else reasons.set("hook_pos_embed", "no position-embedding table is added to the token embedding in this graph");
  add(blockHook(0, "hook_resid_pre"), s.start);
  for (let L = 0; L < cfg.nLayers; L++) {
    const [attn, mlp] = [s.adds[2 * L], s.adds[2 * L + 1]];
    const fused = [...attn.branchOps].find((op) => FUSED_ATTENTION_OPS.has(op));
    // One last-axis Softmax on the attention branch is the pattern [batch, head, query, key].
    const softmax = attn.softmaxes.length === 1 && (attn.softmaxes[0].axis === -1 || attn.softmaxes[0].axis === 3) ? attn.softmaxes[0] : undefined;
    const inside = fused
      ? `block ${L}'s attention is one fused ${fused} node, which computes them internally and does not return them`
      : "Loupe maps only the residual stream (and the attention pattern, when it is one Softmax) of imported graphs; q, k, v, scores and z exist only in graphs Loupe builds from model.safetensors";
    for (const suffix of ["attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_z"] as BlockHookSuffix[]) reasons.set(blockHook(L, suffix), inside);
    if (softmax && !fused && patterns) add(blockHook(L, "attn.hook_pattern"), softmax.output);
    else if (softmax && !fused) reasons.set(blockHook(L, "attn.hook_pattern"), `block ${L}'s attention Softmax is not shaped [batch, head, query, key] (checked by a test run), so it is not exposed as the pattern`);
    else reasons.set(blockHook(L, "attn.hook_pattern"), fused ? inside : `block ${L}'s attention branch has ${attn.softmaxes.length} Softmax nodes where one over the last axis is needed, so its pattern cannot be told apart`);
    add(blockHook(L, "hook_attn_out"), attn.branch);
    add(blockHook(L, "hook_resid_mid"), attn.out);
    for (const suffix of ["mlp.hook_pre", "mlp.hook_post"] as BlockHookSuffix[]) reasons.set(blockHook(L, suffix), "the MLP's inner activations are not mapped in imported graphs");
    add(blockHook(L, "hook_mlp_out"), mlp.branch);
    add(blockHook(L, "hook_resid_post"), mlp.out);
    if (L + 1 < cfg.nLayers) add(blockHook(L + 1, "hook_resid_pre"), mlp.out);
  }
  reasons.set("ln_final.hook_normalized", "the imported final norm applies its scale in the same ops, so the value before the scale is not a tensor of the graph");
  const hookNames = hookNamesFor(cfg).filter((n) => provided.has(n));
  const unavailable = new Map<string, string>();
  for (const name of hookNamesFor(cfg)) if (!provided.has(name)) unavailable.set(name, reasons.get(name) ?? "not found in the imported graph");
  return { hookNames, unavailable, points };
}

class Rewriter implements HookGraph {
  private readonly names = new Set<string>();
  private readonly oneName: string;
  private counter = 0;

  constructor(
    private readonly graph: onnx.GraphProto,
    private readonly fail: Fail,
  ) {
    for (const n of graph.node) for (const t of [...n.input, ...n.output]) this.names.add(t);
    for (const t of [...graph.input, ...graph.output]) this.names.add(t.name);
    for (const t of graph.initializer) this.names.add(t.name);
    this.oneName = this.initializer("loupe::one", DataType.FLOAT, [], { floatData: [1] });
    graph.output = [];
  }

  private fresh(prefix: string): string {
    let name = prefix;
    while (this.names.has(name)) name = `${prefix}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** A name Loupe feeds or fetches; the graph must not use it already. */
  private claim(name: string): string {
    if (this.names.has(name)) this.fail("unsupported-architecture", `the graph already has a tensor named "${name}", which Loupe needs for its own inputs and hooks.`);
    this.names.add(name);
    return name;
  }

  private initializer(name: string, dataType: DataType, dims: number[], data: { floatData?: number[]; int64Data?: bigint[] }): string {
    const n = this.fresh(name);
    this.graph.initializer.push(create(onnx.TensorProtoSchema, { name: n, dims: dims.map(BigInt), dataType, ...data }));
    return n;
  }

  private addNode(opType: string, inputs: string[], outputs: string[], attribute: onnx.AttributeProto[] = []): void {
    this.graph.node.push(create(onnx.NodeProtoSchema, { opType, name: this.fresh(`loupe::${opType}`), input: inputs, output: outputs, attribute }));
  }

  private addInput(name: string, elemType: DataType, dims?: string[]): void {
    const shape = dims ? create(onnx.TensorShapeProtoSchema, { dim: dims.map((d) => create(onnx.TensorShapeProto_DimensionSchema, { value: { case: "dimParam", value: d } })) }) : undefined;
    this.graph.input.push(
      create(onnx.ValueInfoProtoSchema, { name, type: create(onnx.TypeProtoSchema, { value: { case: "tensorType", value: create(onnx.TypeProto_TensorSchema, { elemType, shape }) } }) }),
    );
  }

  /** Point every node that reads `from` at `to` instead. */
  private redirect(from: string, to: string): void {
    for (const node of this.graph.node) node.input = node.input.map((i) => (i === from ? to : i));
  }

  /**
   * Replace the graph's inputs with the ones HookedModel feeds. Inputs with Loupe's names are
   * renamed inside the graph first; types are converted with Cast (Optimum's mask is int64).
   */
  adaptInputs(index: GraphIndex, idsInput: string, cfg: ModelConfig): void {
    const originals = this.graph.input.filter((i) => index.inputs.has(i.name));
    this.graph.input = this.graph.input.filter((i) => !index.inputs.has(i.name));
    const elemType = (v: onnx.ValueInfoProto): number | undefined => (v.type?.value.case === "tensorType" ? v.type.value.value.elemType : undefined);
    const feed = (original: onnx.ValueInfoProto | undefined, loupeName: string, loupeType: DataType, dims: string[]) => {
      if (original) {
        let target = original.name;
        if (target === loupeName) {
          target = this.fresh(`${target}::model`);
          this.redirect(original.name, target);
        }
        const to = elemType(original) ?? loupeType;
        this.addNode("Cast", [loupeName], [target], [create(onnx.AttributeProtoSchema, { name: "to", type: onnx.AttributeProto_AttributeType.INT, i: BigInt(to) })]);
      }
      // An input the graph does not use is still declared: HookedModel feeds it either way.
      if (original?.name !== loupeName) this.claim(loupeName);
      this.addInput(loupeName, loupeType, dims);
    };
    const byName = (test: RegExp) => originals.find((i) => i.name !== idsInput && test.test(i.name));
    const mask = byName(/attention_mask|mask/i);
    const positions = byName(/position/i);
    const past = originals.filter((i) => i !== mask && i !== positions && i.name !== idsInput && /past|cache/i.test(i.name));
    const other = originals.find((i) => i.name !== idsInput && i !== mask && i !== positions && !past.includes(i));
    if (other) {
      this.fail("unsupported-architecture", `input "${other.name}" is not one Loupe can feed (it feeds token ids, attention_mask, position_ids and empty past keys and values).`);
    }
    feed(originals.find((i) => i.name === idsInput), GRAPH_IO.ids, DataType.INT64, ["batch", "pos"]);
    feed(positions, GRAPH_IO.positions, DataType.INT64, ["batch", "pos"]);
    feed(mask, GRAPH_IO.mask, DataType.FLOAT, ["batch", "total"]);
    if (past.length === 0) return;
    // Empty past keys and values: [batch, heads, 0, d_head], the batch taken from input_ids.
    const batch = this.fresh("loupe::batch");
    const shape = this.fresh("loupe::ids_shape");
    this.addNode("Shape", [GRAPH_IO.ids], [shape]);
    this.addNode("Slice", [shape, this.initializer("loupe::zero", DataType.INT64, [1], { int64Data: [0n] }), this.initializer("loupe::one_i", DataType.INT64, [1], { int64Data: [1n] })], [batch]);
    for (const input of past) {
      const declared = input.type?.value.case === "tensorType" ? input.type.value.value.shape?.dim : undefined;
      const dims = declared && declared.length > 0 ? declared : undefined;
      const rest = dims
        ? dims.slice(1).map((d, i) => {
            if (d.value.case === "dimValue") return d.value.value;
            if (typeof d.value.value === "string" && /past|seq|len/i.test(d.value.value)) return 0n;
            return this.fail("unsupported-architecture", `past input "${input.name}" has a dimension "${String(d.value.value)}" (axis ${i + 1}) that Loupe cannot size; it fills past keys and values as [batch, heads, 0, head_dim].`);
          })
        : [BigInt(cacheHeads(cfg)), 0n, BigInt(cfg.dHead)];
      const restName = this.initializer(`loupe::past_dims`, DataType.INT64, [rest.length], { int64Data: rest });
      const full = this.fresh("loupe::past_shape");
      this.addNode("Concat", [batch, restName], [full], [create(onnx.AttributeProtoSchema, { name: "axis", type: onnx.AttributeProto_AttributeType.INT, i: 0n })]);
      const zero = create(onnx.TensorProtoSchema, { dims: [1n], dataType: elemType(input) ?? DataType.FLOAT, rawData: new Uint8Array(bytesOf(elemType(input) ?? DataType.FLOAT)) });
      this.addNode("ConstantOfShape", [full], [input.name], [create(onnx.AttributeProtoSchema, { name: "value", type: onnx.AttributeProto_AttributeType.TENSOR, t: zero })]);
    }
  }

  /** The logits output under Loupe's name. */
  setLogits(name: string): void {
    if (name !== GRAPH_IO.logits) this.addNode("Identity", [name], [this.claim(GRAPH_IO.logits)]);
    this.output(GRAPH_IO.logits);
  }

  /** A hook point on `tensor` (hook-point.ts), read by everything that read the tensor. */
  insertHook(hook: string, tensor: string): void {
    // Claimed first, so a graph that already uses one of the names fails before anything changes.
    for (const name of [hook, gainInput(hook), writeInput(hook)]) this.claim(name);
    this.redirect(tensor, hook);
    insertHookPoint(this, hook, tensor);
  }

  // HookGraph, for insertHookPoint: the names it asks for were claimed by insertHook.
  floatInput(name: string): string {
    this.addInput(name, DataType.FLOAT);
    return name;
  }

  node(opType: string, inputs: string[], output?: string): string {
    const out = output ?? this.fresh(`loupe::${opType.toLowerCase()}`);
    this.addNode(opType, inputs, [out]);
    return out;
  }

  floatOutput(name: string): void {
    this.output(name);
  }

  one(): string {
    return this.oneName;
  }

  private output(name: string): void {
    // Name and element type only: onnxruntime infers the shape.
    this.graph.output.push(
      create(onnx.ValueInfoProtoSchema, { name, type: create(onnx.TypeProtoSchema, { value: { case: "tensorType", value: create(onnx.TypeProto_TensorSchema, { elemType: DataType.FLOAT }) } }) }),
    );
  }
}

function bytesOf(type: number): number {
  return type === DataType.DOUBLE || type === DataType.INT64 ? 8 : type === DataType.FLOAT16 || type === DataType.BFLOAT16 ? 2 : 4;
}

/** Large initializers stored in the file become references to their own bytes there (no copy in the rewritten graph). */
function externalizeWeights(graph: onnx.GraphProto, file: Uint8Array, location: string): void {
  for (const t of graph.initializer) {
    const raw = t.rawData;
    if (t.dataLocation === onnx.TensorProto_DataLocation.EXTERNAL || raw.length < EXTERNALIZE_BYTES || raw.buffer !== file.buffer) continue;
    const offset = raw.byteOffset - file.byteOffset;
    t.dataLocation = onnx.TensorProto_DataLocation.EXTERNAL;
    t.externalData = [
      create(onnx.StringStringEntryProtoSchema, { key: "location", value: location }),
      create(onnx.StringStringEntryProtoSchema, { key: "offset", value: String(offset) }),
      create(onnx.StringStringEntryProtoSchema, { key: "length", value: String(raw.length) }),
    ];
    t.rawData = new Uint8Array(0);
  }
}

/** Point every external-data location at the real file (see real-paths.ts); returns the folder they are relative to. */
function followExternalData(graph: onnx.GraphProto, modelDir: string): string {
  const entries = graph.initializer.flatMap((t) => t.externalData.filter((e) => e.key === "location"));
  const { dataDir, located } = realLocations(modelDir, [...new Set(entries.map((e) => e.value))]);
  for (const entry of entries) entry.value = located.get(entry.value)!;
  return dataDir;
}

/**
 * The logit lens of an imported graph: its own final norm and LM head (the nodes from the last
 * residual tensor to the logits), fed [n, d_model] as [1, n, d_model], then the same reductions
 * as Loupe's built lens graph. Undefined when those nodes read anything but the residual stream
 * and constants (a Reshape sized from input_ids, say).
 */
function buildImportedLens(model: onnx.ModelProto, index: GraphIndex, lastResid: string, logits: string): Uint8Array | undefined {
  const tail = index.nodesBetween(lastResid, logits);
  const produced = new Set([lastResid, ...tail.flatMap((n) => n.output)]);
  const constants = new Map<onnx.NodeProto, true>();
  const initializers = new Set<string>();
  const needConstant = (name: string): boolean => {
    if (!name || produced.has(name)) return true;
    if (index.initializers.has(name)) return initializers.add(name), true;
    const node = index.producer.get(name);
    if (!node || !index.isConstant(name)) return false;
    constants.set(node, true);
    return node.input.every(needConstant);
  };
  if (!tail.every((n) => n.input.every(needConstant)) || !produced.has(logits)) return undefined;
  const int = (name: string, dims: number[], values: bigint[]) => create(onnx.TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: DataType.INT64, int64Data: values });
  const node = (opType: string, input: string[], output: string[], attrs: Record<string, number> = {}) =>
    create(onnx.NodeProtoSchema, {
      opType,
      name: `loupe::${output[0]}`,
      input,
      output,
      attribute: Object.entries(attrs).map(([name, i]) => create(onnx.AttributeProtoSchema, { name, type: onnx.AttributeProto_AttributeType.INT, i: BigInt(i) })),
    });
  const tensorInput = (name: string, elemType: DataType) =>
    create(onnx.ValueInfoProtoSchema, { name, type: create(onnx.TypeProtoSchema, { value: { case: "tensorType", value: create(onnx.TypeProto_TensorSchema, { elemType }) } }) });
  const logprobs = "loupe::logprobs";
  const nodes = [
    node("Unsqueeze", [LENS_IO.resid, "loupe::axis0"], [lastResid]),
    ...constants.keys(),
    ...tail,
    node("Squeeze", [logits, "loupe::axis0"], ["loupe::logits"]),
    node("LogSoftmax", ["loupe::logits"], [logprobs], { axis: -1 }),
    node("TopK", [logprobs, LENS_IO.k], [LENS_IO.topLogprobs, LENS_IO.topIds], { axis: -1, largest: 1, sorted: 1 }),
    node("GatherElements", [logprobs, LENS_IO.target], [LENS_IO.targetLogprob], { axis: -1 }),
    node("Exp", [logprobs], ["loupe::probs"]),
    node("Mul", ["loupe::probs", logprobs], ["loupe::plogp"]),
    node("ReduceSum", ["loupe::plogp", "loupe::axis_last"], ["loupe::neg_entropy"], { keepdims: 0 }),
    node("Neg", ["loupe::neg_entropy"], [LENS_IO.entropy]),
  ];
  const graph = create(onnx.GraphProtoSchema, {
    name: "loupe-imported-lens",
    node: nodes,
    initializer: [...(model.graph?.initializer ?? []).filter((t) => initializers.has(t.name)), int("loupe::axis0", [1], [0n]), int("loupe::axis_last", [1], [-1n])],
    input: [tensorInput(LENS_IO.resid, DataType.FLOAT), tensorInput(LENS_IO.target, DataType.INT64), tensorInput(LENS_IO.k, DataType.INT64)],
    output: [tensorInput(LENS_IO.topLogprobs, DataType.FLOAT), tensorInput(LENS_IO.topIds, DataType.INT64), tensorInput(LENS_IO.targetLogprob, DataType.FLOAT), tensorInput(LENS_IO.entropy, DataType.FLOAT)],
  });
  return toBinary(onnx.ModelProtoSchema, create(onnx.ModelProtoSchema, { irVersion: model.irVersion, producerName: "loupe", opsetImport: model.opsetImport, graph }));
}
