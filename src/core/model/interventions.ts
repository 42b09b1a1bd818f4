/**
 * Interventions at hooks, compiled to the (gain, write) inputs of the hook point: out = x * (1 + gain) + write (hook-point.ts).
 * Every kind is an affine map of x, so several interventions on one hook compose exactly.
 */
import { LoupeError } from "../errors";
import { numel, strides, type Tensor } from "../tensor/tensor";
import { hookLayout, hookShape, layoutAxes, type HookDims, type HookLayout } from "./hooks";

interface Selection {
  readonly hook: string;
  /** Batch rows to change; default all. */
  readonly batch?: readonly number[];
  /** Positions to change (query positions for attention patterns); default all. */
  readonly positions?: readonly number[];
  /**
   * Heads to change, for per-head hooks (q, k, v, z, scores, pattern); default all. On attn.hook_k
   * and attn.hook_v these are key/value heads (HookDims.keyValueHeads).
   */
  readonly heads?: readonly number[];
}

export type Intervention = Selection &
  (
    | { readonly kind: "replace"; /** Same layout as the hook's activation, batch 1 (used for every row) or the run's batch. */ readonly source: Tensor }
    | { readonly kind: "add"; /** One vector over the hook's last axis, added at every selected slot. */ readonly vector: ArrayLike<number> }
    | { readonly kind: "scale"; readonly factor: number }
    | { readonly kind: "zero" }
  );

export interface CompiledHook {
  readonly gain: Float32Array;
  readonly write: Float32Array;
  readonly dims: number[];
}

/** Compile interventions into dense (gain, write) arrays, one pair per touched hook. */
export function compileInterventions(
  dims: HookDims,
  hookNames: ReadonlySet<string>,
  interventions: readonly Intervention[],
  batch: number,
  seq: number,
): Map<string, CompiledHook> {
  const compiled = new Map<string, CompiledHook>();
  for (const iv of interventions) {
    if (!hookNames.has(iv.hook)) {
      throw new LoupeError("bad-argument", `Unknown hook "${iv.hook}". Hooks look like "blocks.0.hook_resid_pre" (TransformerLens names).`);
    }
    let target = compiled.get(iv.hook);
    if (!target) {
      const shape = hookShape(dims, iv.hook, batch, seq);
      target = { gain: new Float32Array(numel(shape)), write: new Float32Array(numel(shape)), dims: shape };
      compiled.set(iv.hook, target);
    }
    apply(target, iv, hookLayout(iv.hook));
  }
  return compiled;
}

function checkIndices(what: string, indices: readonly number[] | undefined, size: number, hook: string): readonly number[] {
  if (!indices) return Array.from({ length: size }, (_, i) => i);
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= size) {
      throw new LoupeError("bad-argument", `Intervention at ${hook}: ${what} ${i} is out of range (0..${size - 1}).`);
    }
  }
  return indices;
}

function apply(target: CompiledHook, iv: Intervention, layout: HookLayout): void {
  const [B] = target.dims;
  const st = strides(target.dims);
  const last = target.dims[target.dims.length - 1];
  const { position: posAxis, head: headAxis } = layoutAxes(layout);
  const rows = checkIndices("batch row", iv.batch, B, iv.hook);
  const positions = checkIndices("position", iv.positions, target.dims[posAxis], iv.hook);
  if (iv.heads && headAxis === undefined) throw new LoupeError("bad-argument", `Intervention at ${iv.hook}: this hook has no head axis.`);
  const heads = headAxis === undefined ? [0] : checkIndices("head", iv.heads, target.dims[headAxis], iv.hook);

  if (iv.kind === "add" && iv.vector.length !== last) {
    throw new LoupeError("bad-shape", `Intervention at ${iv.hook}: the vector has ${iv.vector.length} values but the hook's last axis has ${last}.`);
  }
  let sourceStrides: number[] | undefined;
  if (iv.kind === "replace") {
    const expected = target.dims.slice(1);
    const got = iv.source.dims;
    const sameInner = got.length === target.dims.length && got.slice(1).every((d, i) => d === expected[i]);
    if (!sameInner || (got[0] !== 1 && got[0] !== B)) {
      throw new LoupeError(
        "bad-shape",
        `Intervention at ${iv.hook}: the replacement has shape [${got.join(", ")}] but the hook's activation is [${target.dims.join(", ")}] (batch 1 or ${B}).`,
      );
    }
    sourceStrides = strides(got);
  }

  for (const b of rows) {
    for (const p of positions) {
      for (const h of heads) {
        let offset = b * st[0] + p * st[posAxis];
        if (headAxis !== undefined) offset += h * st[headAxis];
        let sourceOffset = 0;
        if (sourceStrides) {
          const sb = iv.kind === "replace" && iv.source.dims[0] === 1 ? 0 : b;
          sourceOffset = sb * sourceStrides[0] + p * sourceStrides[posAxis] + (headAxis !== undefined ? h * sourceStrides[headAxis] : 0);
        }
        for (let i = 0; i < last; i++) {
          const at = offset + i;
          switch (iv.kind) {
            case "replace":
              target.gain[at] = -1;
              target.write[at] = iv.source.data[sourceOffset + i];
              break;
            case "add":
              target.write[at] += iv.vector[i];
              break;
            case "scale":
              target.gain[at] = iv.factor * (1 + target.gain[at]) - 1;
              target.write[at] *= iv.factor;
              break;
            case "zero":
              target.gain[at] = -1;
              target.write[at] = 0;
              break;
          }
        }
      }
    }
  }
}
