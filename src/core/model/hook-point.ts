/**
 * The contract between HookedModel and every graph it runs (built from safetensors by
 * gpt2-graph.ts and llama-graph.ts, or imported by onnx-import.ts): the names of the graph's
 * inputs and outputs, and the hook point itself.
 *
 * A hook point routes a value x through
 *   out = x * (1 + gain) + write
 * with `gain:{hook}` and `write:{hook}` graph inputs, and makes `out` the graph output `{hook}`.
 * Fed zeros (one zero element broadcasts), it is exactly the identity, so a run with no
 * interventions is bit-identical to a plain run. Replace, add, scale and zero are all choices of
 * (gain, write) per batch row and position (interventions.ts). x * (1 + gain) reads x once: the
 * idle one-element 1 + gain costs nothing, where x + x * gain would take a second pass.
 * (A sparse form, GatherND/ScatterND over the changed slots only, measured no faster on the
 * reference model's sweeps and slower per call: onnxruntime copies x for ScatterND anyway.)
 */
import { blockHook, type BlockHookSuffix } from "./hooks";
import { DataType, type GraphBuilder } from "./onnx-graph";

/** Inputs every graph takes and its logits output. */
export const GRAPH_IO = {
  /** input_ids [batch, pos], int64. */
  ids: "input_ids",
  /** position_ids [batch, pos], int64 (rotary graphs read positions from the past length instead). */
  positions: "position_ids",
  /** attention_mask [batch, past + pos], float: 1 for a real token, 0 for padding. */
  mask: "attention_mask",
  /** [batch, pos or k, d_vocab]. */
  logits: "logits",
} as const;

/**
 * logit_positions [k], int64: the positions whose logits are computed. The last block then runs its
 * attention queries, MLP and everything after only there (keys and values at every position): its
 * hooks from attn_scores on, and ln_final.hook_normalized, hold those positions only
 * (hooks.ts narrowedByLogitPositions). A patched run is scored at one position, and the last block
 * and the unembedding are most of a small model's work. Built graphs have it; imported ones do not.
 */
export const LOGIT_POSITIONS = "logit_positions";

/**
 * position_offsets [1 or batch], int64, in rotary graphs: empty slots at the start of each row's past
 * (RunOptions.prefixPadding: pasts of different lengths aligned on the right, so rows of different
 * lengths decode in one call). A row's tokens rotate at their slot less its offset; the mask hides
 * the empty slots. Fed [0] otherwise. GPT-2 graphs need none: their position_ids are per row.
 */
export const POSITION_OFFSETS = "position_offsets";

/**
 * resid_in:L [rows, pos, d_model], for L >= 1: rows that start at block L, their hook_resid_pre
 * given. They join the batch after the rows already there, so block L sees the rows started at or
 * before it (attention_mask covers every row, in that order). Empty ([0, pos, d_model]) for a plain run.
 */
export function residInput(layer: number): string {
  return `resid_in:${layer}`;
}

/**
 * Key/value cache inputs and outputs, [batch, key/value heads, tokens, d_head], keys after any
 * rotary embedding. A past of batch 1 is stretched over the run's rows; empty ([1, heads, 0, d_head])
 * for a plain run.
 */
export const PAST_IO = {
  pastKey: (layer: number) => `past_key:${layer}`,
  pastValue: (layer: number) => `past_value:${layer}`,
  presentKey: (layer: number) => `present_key:${layer}`,
  presentValue: (layer: number) => `present_value:${layer}`,
} as const;

export function gainInput(hook: string): string {
  return `gain:${hook}`;
}
export function writeInput(hook: string): string {
  return `write:${hook}`;
}

/** Masked attention scores (attn.hook_attn_scores) hold this value rather than -inf, so a fully masked row (padding) stays finite. */
export const MASKED_SCORE = -1e9;

/** Inputs and outputs of the logit-lens graph: residual vectors [n, d_model] in, small reductions out. */
export const LENS_IO = { resid: "resid", target: "target", k: "k", topLogprobs: "top_logprobs", topIds: "top_ids", targetLogprob: "target_logprob", entropy: "entropy" } as const;

/** What inserting a hook point needs of a graph being written: GraphBuilder, or the importer's rewriter. */
export interface HookGraph {
  /** Declare a float graph input with exactly this name (shape left to broadcasting). */
  floatInput(name: string): string;
  /** Add one node; its output is `output` when given, else a fresh name. */
  node(opType: "Add" | "Mul", inputs: string[], output?: string): string;
  /** Declare a float graph output. */
  floatOutput(name: string): void;
  /** A float scalar 1, one initializer shared by every hook. */
  one(): string;
}

/** Route `x` through the hook point `hook` (see the header); returns the hooked value, named `hook`. */
export function insertHookPoint(g: HookGraph, hook: string, x: string): string {
  const gain = g.floatInput(gainInput(hook));
  const write = g.floatInput(writeInput(hook));
  const kept = g.node("Mul", [x, g.node("Add", [gain, g.one()])]);
  const out = g.node("Add", [kept, write], hook);
  g.floatOutput(hook);
  return out;
}

/** A GraphBuilder seen as a HookGraph. */
export function builderHookGraph(g: GraphBuilder): HookGraph {
  let one: string | undefined;
  return {
    floatInput: (name) => g.input(name, DataType.FLOAT),
    node: (opType, inputs, output) => g.op(opType, inputs, {}, output),
    floatOutput: (name) => g.output(name, DataType.FLOAT),
    one: () => (one ??= g.floatInitializer("const:one_f", [], [1])),
  };
}

/**
 * The hook points of a graph built from weights, recorded in the order they are inserted, so the
 * builder can check it made exactly the hooks HookedModel expects (hooks.ts hookNamesFor).
 */
export class HookPoints {
  readonly names: string[] = [];
  private readonly graph: HookGraph;

  /** @param enabled false for a decode-only graph (GraphOptions.decodeOnly): every hook point is the value itself. */
  constructor(
    g: GraphBuilder,
    readonly enabled = true,
  ) {
    this.graph = builderHookGraph(g);
  }

  /** A hook point named `name` on `x` (`x` itself when hooks are disabled). */
  at(name: string, x: string): string {
    this.names.push(name);
    return this.enabled ? insertHookPoint(this.graph, name, x) : x;
  }

  /** A hook point named `blocks.{layer}.{suffix}` on `x`. */
  block(layer: number, suffix: BlockHookSuffix, x: string): string {
    return this.at(blockHook(layer, suffix), x);
  }

  /** Throw unless the hooks made are `expected`, in that order (an internal error: a builder bug). */
  checkAgainst(expected: readonly string[], graph: string): void {
    if (!this.enabled) return;
    if (expected.length !== this.names.length || expected.some((name, i) => name !== this.names[i])) {
      throw new Error(`internal: the ${graph} graph's hooks differ from hookNamesFor`);
    }
  }
}
