/**
 * Probe features from a HookedModel: one row per token (token-level data) or per text (sequence
 * level, mean- or last-token pooled), for any number of hooks from one cached forward pass per
 * batch of texts. Texts are batched by length so little compute goes to padding; padding sits to
 * the right, and attention is causal, so real positions are unaffected by it.
 */
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { blockHook, hookLayout } from "../model/hooks";
import type { Tensor } from "../tensor/tensor";
import { typeOfString } from "./control-task";
import { type ProbeDataset, tokenLabels, type TokenLabelOptions } from "./dataset";

export type Pooling = "mean" | "last";

export interface FeatureOptions extends TokenLabelOptions {
  /** Hook names (TransformerLens); default: every layer, see layerSweepHooks. */
  readonly hooks?: readonly string[];
  /** Sequence level only (default "mean"). */
  readonly pooling?: Pooling;
  /** Texts per forward pass (default 32). */
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (doneTexts: number, totalTexts: number) => void;
}

export interface Features {
  readonly level: "token" | "sequence";
  readonly pooling?: Pooling;
  readonly hooks: readonly string[];
  /** Row width per hook (d_model, n_heads*d_head or d_mlp). */
  readonly dims: ReadonlyMap<string, number>;
  /** [rows, width] per hook, row-major. */
  readonly data: ReadonlyMap<string, Float32Array>;
  readonly rows: number;
  readonly labels: readonly string[];
  /** Index of the example (text) each row came from: rows of one text stay in one CV fold. */
  readonly groups: Int32Array;
  /** Control-task type of each row: the token id (token level) or a hash of the text (sequence). */
  readonly types: Int32Array;
}

/** The residual stream before block 0 and after every block: one probe per layer. */
export function layerSweepHooks(nLayers: number): string[] {
  return [blockHook(0, "hook_resid_pre"), ...Array.from({ length: nLayers }, (_, l) => blockHook(l, "hook_resid_post"))];
}

/** Check that a probe can read `name` on this model: a per-position hook (not an attention pattern). */
export function checkProbeHook(model: HookedModel, name: string): void {
  if (!model.hookNames.includes(name)) {
    const last = model.cfg.nLayers - 1;
    throw new LoupeError(
      "bad-argument",
      `Unknown hook "${name}". Use a TransformerLens name such as blocks.${last}.hook_resid_post, blocks.0.hook_resid_pre, blocks.${last}.hook_mlp_out (layers 0..${last}).`,
    );
  }
  if (hookLayout(name) === "pattern") {
    throw new LoupeError("bad-argument", `${name} is an attention pattern (one row per key position), not one vector per token; probe blocks.L.attn.hook_z or the residual stream instead.`);
  }
}

/** Activations of one hook for one text: [tokens, width]. */
export async function tokenActivations(model: HookedModel, ids: readonly number[], hook: string, signal?: AbortSignal): Promise<{ data: Float32Array; width: number }> {
  checkProbeHook(model, hook);
  const { cache } = await model.runWithCache(ids, { names: [hook], logits: false, signal });
  const t = cache.get(hook);
  const width = rowWidth(t);
  return { data: t.data.slice(0, ids.length * width), width };
}

export async function extractFeatures(model: HookedModel, dataset: ProbeDataset, options: FeatureOptions = {}): Promise<Features> {
  const hooks = [...(options.hooks ?? layerSweepHooks(model.cfg.nLayers))];
  if (hooks.length === 0) throw new LoupeError("bad-argument", "Name at least one hook to probe.");
  for (const h of hooks) checkProbeHook(model, h);
  const pooling = options.pooling ?? "mean";
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 32));
  const level = dataset.level;

  // Tokenise everything first so errors (too long) come before any compute. The model reads each
  // text as a prompt (Llama's <s> in front, HookedModel.encode); rows come from the text's own
  // tokens only, so a leading <s> is neither a token-level row nor part of a mean.
  const encoded = dataset.examples.map((e) => {
    const enc = model.encode(e.text);
    if (enc.ids.length === enc.lead) throw new LoupeError("empty-input", `${dataset.file}:${e.line}: the text has no tokens.`, dataset.file);
    if (enc.ids.length > model.cfg.nCtx) {
      throw new LoupeError("context-overflow", `${dataset.file}:${e.line}: the text is ${enc.ids.length} tokens; the model's context window is ${model.cfg.nCtx}. Shorten or split it.`, dataset.file);
    }
    return enc;
  });

  const labels: string[] = [];
  const groups: number[] = [];
  const types: number[] = [];
  const rowStart = new Int32Array(encoded.length);
  dataset.examples.forEach((example, e) => {
    rowStart[e] = labels.length;
    if (dataset.level === "token") {
      const { lead } = encoded[e];
      const ids = encoded[e].ids.slice(lead);
      const spans = dataset.examples[e].spans;
      const tokenLabelList = tokenLabels(encoded[e].offsets.slice(lead), spans, options);
      ids.forEach((id, t) => {
        labels.push(tokenLabelList[t]);
        groups.push(e);
        types.push(id);
      });
    } else {
      labels.push((example as { label: string }).label);
      groups.push(e);
      types.push(typeOfString(example.text) | 0);
    }
  });
  const rows = labels.length;

  const dims = new Map<string, number>();
  const data = new Map<string, Float32Array>();
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[a].ids.length - encoded[b].ids.length);
  let done = 0;
  for (let from = 0; from < order.length; from += batchSize) {
    throwIfAborted(options.signal);
    const batch = order.slice(from, from + batchSize);
    const { cache } = await model.runWithCache(
      batch.map((e) => encoded[e].ids),
      { names: hooks, logits: false, signal: options.signal },
    );
    for (const hook of hooks) {
      const t = cache.get(hook);
      const width = rowWidth(t);
      const T = t.dims[1];
      let out = data.get(hook);
      if (!out) {
        out = new Float32Array(rows * width);
        data.set(hook, out);
        dims.set(hook, width);
      }
      batch.forEach((e, b) => {
        const { lead } = encoded[e];
        const len = encoded[e].ids.length - lead;
        const base = (b * T + lead) * width;
        if (level === "token") {
          out.set(t.data.subarray(base, base + len * width), rowStart[e] * width);
        } else if (pooling === "last") {
          out.set(t.data.subarray(base + (len - 1) * width, base + len * width), rowStart[e] * width);
        } else {
          const dst = rowStart[e] * width;
          for (let p = 0; p < len; p++) {
            const src = base + p * width;
            for (let j = 0; j < width; j++) out[dst + j] += t.data[src + j];
          }
          for (let j = 0; j < width; j++) out[dst + j] /= len;
        }
      });
    }
    done += batch.length;
    options.onProgress?.(done, order.length);
  }
  return {
    level,
    pooling: level === "sequence" ? pooling : undefined,
    hooks,
    dims,
    data,
    rows,
    labels,
    groups: Int32Array.from(groups),
    types: Int32Array.from(types),
  };
}

/** Values per position: everything after [batch, pos]. */
function rowWidth(t: Tensor): number {
  return t.dims.slice(2).reduce((a, b) => a * b, 1);
}
