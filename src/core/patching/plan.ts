/**
 * Sweep planning, no model calls: which hook each cell of a sweep patches and where, the shape and
 * axis labels of the result, and how many patched variants fit in one onnxruntime call.
 */
import { LoupeError } from "../errors";
import { estimateRunBytes, type RunConfig } from "../model/memory-limit";
import { blockHook, blockHookTemplate, headsAt, hookShape, layoutAxes, hookLayout, type BlockHookSuffix, type HookDims } from "../model/hooks";
import { numel, strides, type Tensor } from "../tensor/tensor";

/** Per (layer, position) sweeps over a block's residual stream or its two outputs. */
export const POSITION_SWEEPS = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"] as const;
/** Per (layer, head) sweeps: over all positions at once, or per position too. */
export const HEAD_SWEEPS = ["heads", "heads_by_pos"] as const;
export const SWEEP_KINDS = [...POSITION_SWEEPS, ...HEAD_SWEEPS] as const;

export type PositionSweep = (typeof POSITION_SWEEPS)[number];
export type SweepKind = (typeof SWEEP_KINDS)[number];
/** Which per-head activation a head sweep patches; z (the head's output before W_O) by default. */
export type HeadHook = "z" | "q" | "k" | "v" | "pattern";

export type Axis = "layer" | "position" | "head";

/** One patched variant of a sweep. */
export interface PatchCell {
  readonly layer: number;
  /** Absent: every position. */
  readonly position?: number;
  readonly head?: number;
}

/** Where a patch replaces the base run's activation with the source run's (an Intervention minus kind and batch). */
export interface PatchTarget {
  readonly hook: string;
  readonly positions?: readonly number[];
  readonly heads?: readonly number[];
}

export interface SweepPlan {
  readonly kind: SweepKind;
  /** The hook name with {L} for the layer, e.g. blocks.{L}.hook_resid_pre. */
  readonly hookPattern: string;
  readonly axes: readonly Axis[];
  readonly shape: readonly number[];
  /** Row-major over `shape`. */
  readonly cells: readonly PatchCell[];
}

const SUFFIX: Record<PositionSweep, BlockHookSuffix> = {
  resid_pre: "hook_resid_pre",
  resid_mid: "hook_resid_mid",
  resid_post: "hook_resid_post",
  attn_out: "hook_attn_out",
  mlp_out: "hook_mlp_out",
};

const HEAD_SUFFIX: Record<HeadHook, BlockHookSuffix> = {
  z: "attn.hook_z",
  q: "attn.hook_q",
  k: "attn.hook_k",
  v: "attn.hook_v",
  pattern: "attn.hook_pattern",
};

export function isSweepKind(name: string): name is SweepKind {
  return (SWEEP_KINDS as readonly string[]).includes(name);
}

function sweepSuffix(kind: SweepKind, headHook: HeadHook): BlockHookSuffix {
  return kind === "heads" || kind === "heads_by_pos" ? HEAD_SUFFIX[headHook] : SUFFIX[kind];
}

export function sweepHook(kind: SweepKind, layer: number, headHook: HeadHook = "z"): string {
  return blockHook(layer, sweepSuffix(kind, headHook));
}

/** The cells of one sweep; a head sweep has one cell per head of the hook it patches (key/value heads on k and v). */
export function planSweep(kind: SweepKind, dims: HookDims, seqLen: number, headHook: HeadHook = "z"): SweepPlan {
  if (!isSweepKind(kind)) throw new LoupeError("bad-argument", `Unknown sweep "${String(kind)}"; choose from ${SWEEP_KINDS.join(", ")}.`);
  const L = dims.nLayers;
  const H = headsAt(dims, sweepHook(kind, 0, headHook)) ?? 0;
  const T = seqLen;
  const cells: PatchCell[] = [];
  const hookPattern = blockHookTemplate(sweepSuffix(kind, headHook));
  if (kind === "heads") {
    for (let layer = 0; layer < L; layer++) for (let head = 0; head < H; head++) cells.push({ layer, head });
    return { kind, hookPattern, axes: ["layer", "head"], shape: [L, H], cells };
  }
  if (kind === "heads_by_pos") {
    for (let layer = 0; layer < L; layer++) for (let head = 0; head < H; head++) for (let position = 0; position < T; position++) cells.push({ layer, head, position });
    return { kind, hookPattern, axes: ["layer", "head", "position"], shape: [L, H, T], cells };
  }
  for (let layer = 0; layer < L; layer++) for (let position = 0; position < T; position++) cells.push({ layer, position });
  return { kind, hookPattern, axes: ["layer", "position"], shape: [L, T], cells };
}

export function cellTarget(plan: SweepPlan, cell: PatchCell, headHook: HeadHook = "z"): PatchTarget {
  return {
    hook: sweepHook(plan.kind, cell.layer, headHook),
    positions: cell.position === undefined ? undefined : [cell.position],
    heads: cell.head === undefined ? undefined : [cell.head],
  };
}

/**
 * Whether two batch-1 activations agree bit for bit where `target` patches them. Such a patch is
 * the identity, so a sweep can take the base run's metric instead of running it (every position
 * before the first token where the prompts differ, at every layer, by causality).
 */
export function sameAtTarget(a: Tensor, b: Tensor, target: PatchTarget): boolean {
  const layout = hookLayout(target.hook);
  const dims = a.dims;
  const st = strides(dims);
  const { position: posAxis, head: headAxis } = layoutAxes(layout);
  const last = dims[dims.length - 1];
  const positions = target.positions ?? range(dims[posAxis]);
  const heads = headAxis === undefined ? [0] : (target.heads ?? range(dims[headAxis]));
  for (const p of positions) {
    for (const h of heads) {
      const offset = p * st[posAxis] + (headAxis === undefined ? 0 : h * st[headAxis]);
      for (let i = 0; i < last; i++) if (!Object.is(a.data[offset + i], b.data[offset + i])) return false;
    }
  }
  return true;
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Default cap on the memory one batched call may take besides the weights. */
export const DEFAULT_MEMORY_BUDGET = 256 * 2 ** 20;

/** One batched call of patched variants, as far as its memory goes. */
export interface PatchedCall {
  readonly rows: number;
  /** Tokens run per row (after any prefix). */
  readonly positions: number;
  /** Tokens given as keys and values. */
  readonly prefix: number;
  /** Positions whose logits are returned. */
  readonly logitPositions: number;
  /** Hooks the rows change. */
  readonly hooks: Iterable<string>;
}

/**
 * Bytes one patched call allocates: the forward's own (estimateRunBytes: logits at the scored
 * positions, the block being computed, no hooks returned) plus the dense gain and write inputs,
 * [rows, ...hook shape], of every hook its rows change.
 */
export function patchedCallBytes(cfg: RunConfig, dims: HookDims, call: PatchedCall): number {
  let bytes = estimateRunBytes(cfg, { batch: call.rows, positions: call.positions, prefix: call.prefix, hooks: [], logitPositions: call.logitPositions });
  for (const hook of new Set(call.hooks)) bytes += 2 * 4 * numel(hookShape(dims, hook, call.rows, call.positions));
  return bytes;
}

/**
 * Consecutive [start, end) ranges of `total` items, each as long as `requested` allows and
 * `fits(start, end)` accepts, at least one item: the calls of a batched job.
 */
export function chunksWithin(total: number, requested: number, fits: (start: number, end: number) => boolean): Array<[number, number]> {
  if (!Number.isInteger(requested) || requested < 1) throw new LoupeError("bad-argument", `The batch size must be a positive integer (got ${requested}).`);
  const out: Array<[number, number]> = [];
  for (let start = 0; start < total; ) {
    let end = start + 1;
    while (end < total && end - start < requested && fits(start, end + 1)) end++;
    out.push([start, end]);
    start = end;
  }
  return out;
}
