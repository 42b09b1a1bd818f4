/**
 * Inspect a text: for each token, its surprisal, the next-token predictions, the entropy, the
 * residual-stream norm after each block, and the logit lens at each block. One forward pass with a
 * cache, then the logit lens (chunked, reduced in its graph) on the last block for every token and
 * on the blocks asked for; the rest of the per-block table when it is cheap, else on request
 * (lensTable), from the residual stream kept by inspectWithResiduals.
 */
import { LoupeError, throwIfAborted } from "./errors";
import type { HookedModel } from "./model/hooked-model";
import { blockHook } from "./model/hooks";
import { l2norm } from "./tensor/tensor";

export interface TokenPrediction {
  readonly id: number;
  readonly text: string;
  readonly prob: number;
}

export interface LayerLens {
  /** The lens's most likely next token after this block. */
  readonly top: TokenPrediction;
  /** Probability this block's lens gives the token that actually comes next (null at the last token). */
  readonly nextTokenProb: number | null;
  /** Probability this block's lens gives the model's final top prediction: 1 means the answer is already there. */
  readonly agreement: number;
}

export interface TokenReport {
  /** Index among the text's own tokens (a leading <s> the model reads is not reported). */
  readonly index: number;
  readonly id: number;
  readonly text: string;
  /** UTF-16 range of the token in the inspected text. */
  readonly start: number;
  readonly end: number;
  /** -log2 p(token | tokens before it), in bits; null for the first token unless a leading <s> predicts it. */
  readonly surprisal: number | null;
  /** Entropy of the model's next-token distribution at this token, in bits. */
  readonly entropy: number;
  /** The model's most likely next tokens at this position. */
  readonly top: TokenPrediction[];
  /** L2 norm of blocks.{L}.hook_resid_post at this token, one per layer. */
  readonly residNorm: number[];
  /**
   * Logit lens after each block; null for a block not computed up front (a large model's long
   * text: see InspectOptions.lensLayers), which lensTable computes when asked for.
   */
  readonly lens: (LayerLens | null)[];
}

export interface InspectResult {
  readonly modelFolder: string;
  readonly nLayers: number;
  readonly text: string;
  readonly tokens: TokenReport[];
  /** Windows: texts longer than the context window are read in overlapping windows. */
  readonly windows: number;
  /** Windows taken from `previous` (unchanged tokens) instead of run again. */
  readonly reusedWindows: number;
  readonly elapsedMs: number;
}

export interface InspectOptions {
  /** Number of next-token predictions per token (default 5). */
  readonly topK?: number;
  /** Refuse texts longer than this many tokens (the model's context window is a limit too). */
  readonly maxTokens?: number;
  /**
   * An earlier inspection by the same model, e.g. of the text before an edit. Windows whose tokens,
   * and the token after them, are unchanged are taken from it instead of run again (the result is
   * the same: each window sees only its own tokens).
   */
  readonly previous?: InspectResult;
  /**
   * Blocks whose logit lens every token needs (the block a "logit-lens:L" colouring reads). The
   * last block's is always computed (it is the model's own prediction); every block's is when the
   * whole table costs at most `eagerLensLogits`.
   */
  readonly lensLayers?: readonly number[];
  /** Vocabulary rows (blocks x tokens x d_vocab) the whole per-block table may cost to be computed up front (default EAGER_LENS_LOGITS). */
  readonly eagerLensLogits?: number;
  readonly signal?: AbortSignal;
}

/**
 * Up to this many logits (blocks x tokens x d_vocab), the whole per-block lens is computed with
 * the inspection: the reference model's whole context (4 x 256 x 1,024), GPT-2 small up to 111
 * tokens, SmolLM2-135M up to 45.
 * Past it the table would cost more than the forward pass (SmolLM2-135M at 1,024 tokens: 30 x
 * 1,024 x 49,152, about 1.7 TFLOP), so only the blocks asked for are.
 */
export const EAGER_LENS_LOGITS = 2 ** 26;

/** The residual stream of an inspection's windows, kept so that lensTable need not run the model again. */
export interface InspectionResiduals {
  readonly modelFolder: string;
  readonly text: string;
  readonly topK: number;
  readonly windows: readonly WindowResiduals[];
}

interface WindowResiduals {
  /** Text tokens [from, to) were run after the leading tokens; the window reports tokens keepFrom..to-1. */
  readonly from: number;
  readonly to: number;
  readonly keepFrom: number;
  /** blocks.{L}.hook_resid_post for each block L, [lead + to - from, d_model]. */
  readonly resid: readonly Float32Array[];
  /** The model's top prediction at each run position. */
  readonly finalTop: Int32Array;
}

const LOG2E = Math.LOG2E;

export async function inspectText(model: HookedModel, text: string, options: InspectOptions = {}): Promise<InspectResult> {
  return (await inspectWithResiduals(model, text, options)).result;
}

/** inspectText, also returning the residual stream of the windows it ran (not those reused from `previous`). */
export async function inspectWithResiduals(model: HookedModel, text: string, options: InspectOptions = {}): Promise<{ result: InspectResult; residuals: InspectionResiduals }> {
  const started = performance.now();
  if (text.length === 0) throw new LoupeError("empty-input", "Nothing to inspect: the selection is empty.");
  // The model reads the prompt with its template's leading tokens (Llama's <s>: see
  // HookedModel.encode); they are context, not text, so only the text's own tokens are reported.
  const encoding = model.encode(text);
  const leading = encoding.ids.slice(0, encoding.lead);
  const ids = encoding.ids.slice(encoding.lead);
  const offsets = encoding.offsets.slice(encoding.lead);
  if (ids.length === 0) throw new LoupeError("empty-input", "Nothing to inspect: the text has no tokens.");
  if (options.maxTokens !== undefined && ids.length > options.maxTokens) {
    throw new LoupeError("context-overflow", `The selection is ${ids.length} tokens; Loupe is set to inspect at most ${options.maxTokens} (setting loupe.maxTokens). Select a shorter passage.`);
  }
  const k = Math.max(1, Math.floor(options.topK ?? 5));
  // Text longer than the context window is read in overlapping windows; each token is reported
  // from the earliest window that holds it, so it keeps at least half a window of context. Every
  // window starts with the leading tokens, so they count against its size.
  const lensLayers = checkLensLayers(model, options.lensLayers ?? []);
  const eager = options.eagerLensLogits ?? EAGER_LENS_LOGITS;
  const tokens: TokenReport[] = [];
  const reusable = reusableReports(model, options.previous, ids, k, lensLayers);
  const kept: WindowResiduals[] = [];
  let reusedWindows = 0;
  const spans = textWindows(model, leading.length, ids.length);
  for (const { from, to, keepFrom } of spans) {
    const reused = reusable(keepFrom, to);
    if (reused) {
      tokens.push(...reused.map((r) => ({ ...r, start: offsets[r.index][0], end: offsets[r.index][1] })));
      reusedWindows++;
    } else {
      const T = leading.length + to - from;
      const layers = model.cfg.nLayers * T * model.cfg.dVocab <= eager ? "all" : lensLayers;
      const window = await inspectWindow(model, leading, ids, offsets, { from, to, keepFrom }, k, layers, options.signal);
      tokens.push(...window.reports);
      kept.push(window.residuals);
    }
  }
  const result = { modelFolder: model.folder, nLayers: model.cfg.nLayers, text, tokens, windows: spans.length, reusedWindows, elapsedMs: performance.now() - started };
  return { result, residuals: { modelFolder: model.folder, text, topK: k, windows: kept } };
}

interface TextWindow {
  readonly from: number;
  readonly to: number;
  readonly keepFrom: number;
}

/**
 * Text longer than the context window is read in overlapping windows; each token is reported
 * from the earliest window that holds it, so it keeps at least half a window of context. Every
 * window starts with the leading tokens, so they count against its size.
 */
function textWindows(model: HookedModel, lead: number, n: number): TextWindow[] {
  const W = model.cfg.nCtx - lead;
  if (W < 1) throw new LoupeError("context-overflow", `The model's context window (${model.cfg.nCtx}) holds no text after the tokenizer's ${lead} leading tokens.`);
  const stride = Math.max(1, W - Math.floor(W / 2));
  const spans: TextWindow[] = [];
  let reported = 0;
  for (let from = 0; reported < n; from += stride) {
    const to = Math.min(n, from + W);
    spans.push({ from, to, keepFrom: reported });
    reported = to;
  }
  return spans;
}

function checkLensLayers(model: HookedModel, layers: readonly number[]): number[] {
  const L = model.cfg.nLayers;
  for (const layer of layers) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new LoupeError("bad-argument", `Logit lens block ${layer} is not one of this model's blocks (0..${L - 1}).`);
  }
  return [...new Set([...layers, L - 1])].sort((a, b) => a - b);
}

/**
 * Reports for tokens [keepFrom, to) that `previous` already holds, or undefined. A token's report
 * depends on the tokens of its window and on the token after it (the logit lens's next-token
 * probability), so a window is reusable when every token up to and including the one after it is
 * unchanged, or when both texts end where the window ends.
 */
function reusableReports(
  model: HookedModel,
  previous: InspectResult | undefined,
  ids: readonly number[],
  k: number,
  lensLayers: readonly number[],
): (keepFrom: number, to: number) => TokenReport[] | undefined {
  if (!previous || previous.modelFolder !== model.folder || previous.nLayers !== model.cfg.nLayers || previous.tokens[0]?.top.length !== k) return () => undefined;
  // Blocks asked for now that the earlier inspection left out cannot be taken from it.
  if (lensLayers.some((layer) => previous.tokens.some((t) => t.lens[layer] === null))) return () => undefined;
  const old = previous.tokens;
  let common = 0;
  while (common < ids.length && common < old.length && old[common].id === ids[common]) common++;
  return (keepFrom, to) => {
    const sameNext = to < ids.length ? common >= to + 1 : common >= to && old.length === ids.length;
    return sameNext && common >= to ? old.slice(keepFrom, to) : undefined;
  };
}

/**
 * Run the leading tokens then ids[from, to), and report tokens keepFrom..to-1 (indices into the
 * text's tokens) with the lens at `layers` (the last block among them); lens targets look past the window.
 */
async function inspectWindow(
  model: HookedModel,
  leading: readonly number[],
  allIds: readonly number[],
  offsets: ReadonlyArray<readonly [number, number]>,
  span: TextWindow,
  k: number,
  layers: readonly number[] | "all",
  signal: AbortSignal | undefined,
): Promise<{ reports: TokenReport[]; residuals: WindowResiduals }> {
  const { from, to, keepFrom } = span;
  const L = model.cfg.nLayers;
  const D = model.cfg.dModel;
  const P = leading.length;
  const ids = [...leading, ...allIds.slice(from, to)];
  const T = ids.length;
  const residNames = Array.from({ length: L }, (_, layer) => blockHook(layer, "hook_resid_post"));
  // No logits: the last block's lens is the model's prediction, reduced in the lens graph chunk by chunk.
  const { cache } = await model.runWithCache(ids, { names: residNames, logits: false, signal });
  throwIfAborted(signal);
  const resid = residNames.map((name) => cache.get(name).data);
  const residNorm = (t: number) => resid.map((r) => l2norm(r.subarray(t * D, (t + 1) * D)));

  const window: WindowResiduals = { from, to, keepFrom, resid, finalTop: new Int32Array(T) };
  const positions = Array.from({ length: T - (P + keepFrom - from) }, (_, i) => P + keepFrom - from + i);
  // The last block first: its top predictions are every other block's agreement target.
  const final = await windowLens(model, allIds, window, [L - 1], Array.from({ length: T }, (_, t) => t), k, signal);
  const others = layers === "all" ? Array.from({ length: L - 1 }, (_, layer) => layer) : layers.filter((layer) => layer !== L - 1);
  const table = others.length ? await windowLens(model, allIds, window, others, positions, k, signal) : undefined;

  const reports: TokenReport[] = [];
  for (const t of positions) {
    const id = ids[t];
    const [start, end] = offsets[from + t - P];
    const last = final.at(L - 1, t);
    const lens: (LayerLens | null)[] = Array.from({ length: L }, (_, layer) => (layer === L - 1 ? last.layer : table && others.includes(layer) ? table.at(layer, t).layer : null));
    reports.push({
      index: from + t - P,
      id,
      text: model.tokenizer.tokenText(id),
      start,
      end,
      // After a leading <s>, the first token of the text is predicted too.
      surprisal: t === 0 ? null : -final.at(L - 1, t - 1).nextLogprob * LOG2E,
      entropy: last.entropy * LOG2E,
      top: last.top,
      residNorm: residNorm(t),
      lens,
    });
  }
  return { reports, residuals: window };
}

interface LensCell {
  readonly layer: LayerLens;
  /** Log-prob of the token that actually comes next (0 at the text's end). */
  readonly nextLogprob: number;
  /** Entropy, nats. */
  readonly entropy: number;
  readonly top: TokenPrediction[];
}

/**
 * The logit lens of a window's residual stream at some blocks and run positions. Called with the
 * last block alone, it also fills the window's finalTop (its agreement target is its own top).
 */
async function windowLens(
  model: HookedModel,
  allIds: readonly number[],
  window: WindowResiduals,
  layers: readonly number[],
  positions: readonly number[],
  k: number,
  signal: AbortSignal | undefined,
): Promise<{ at(layer: number, t: number): LensCell }> {
  const D = model.cfg.dModel;
  const L = model.cfg.nLayers;
  const T = window.finalTop.length;
  const P = T - (window.to - window.from);
  const lastOnly = layers.length === 1 && layers[0] === L - 1;
  // Position t of the run is text token from + t - P; the lens sees the token after it even past the window.
  const next = (t: number) => (window.from + t - P + 1 < allIds.length ? allIds[window.from + t - P + 1] : null);
  const n = layers.length * positions.length;
  const resid = new Float32Array(n * D);
  const targets: number[][] = [];
  layers.forEach((layer, i) =>
    positions.forEach((t, j) => {
      resid.set(window.resid[layer].subarray(t * D, (t + 1) * D), (i * positions.length + j) * D);
      targets.push([next(t) ?? 0, lastOnly ? 0 : window.finalTop[t]]);
    }),
  );
  const lens = await model.lens(resid, targets, k, { signal });
  throwIfAborted(signal);
  const prediction = (row: number, j: number): TokenPrediction => {
    const id = lens.topIds[row * lens.k + j];
    return { id, text: model.tokenizer.tokenText(id), prob: Math.exp(lens.topLogprobs[row * lens.k + j]) };
  };
  if (lastOnly) positions.forEach((t, j) => (window.finalTop[t] = lens.topIds[j * lens.k]));
  const rowOf = new Map<number, number>();
  layers.forEach((layer, i) => positions.forEach((t, j) => rowOf.set(layer * T + t, i * positions.length + j)));
  return {
    at(layer, t) {
      const row = rowOf.get(layer * T + t);
      if (row === undefined) throw new Error(`internal: no lens row for block ${layer}, position ${t}`);
      const top = Array.from({ length: lens.k }, (_, j) => prediction(row, j));
      const nextLogprob = lens.targetLogprob[row * 2];
      return {
        layer: {
          top: top[0],
          nextTokenProb: next(t) !== null ? Math.exp(nextLogprob) : null,
          agreement: lastOnly ? top[0].prob : Math.exp(lens.targetLogprob[row * 2 + 1]),
        },
        nextLogprob,
        entropy: lens.entropy[row],
        top,
      };
    },
  };
}

/**
 * The per-block logit lens of one token (index among the text's own tokens), as the inspection's
 * hover shows it: from the residual stream the inspection kept when it holds the token's window,
 * else by running that window again.
 */
export async function lensTable(model: HookedModel, text: string, index: number, options: { readonly residuals?: InspectionResiduals; readonly topK?: number; readonly signal?: AbortSignal } = {}): Promise<LayerLens[]> {
  const encoding = model.encode(text);
  const leading = encoding.ids.slice(0, encoding.lead);
  const ids = encoding.ids.slice(encoding.lead);
  if (!Number.isInteger(index) || index < 0 || index >= ids.length) throw new LoupeError("bad-argument", `Token ${index} is not one of the text's ${ids.length} tokens.`);
  const k = Math.max(1, Math.floor(options.topK ?? 5));
  const kept = options.residuals;
  const usable = kept && kept.modelFolder === model.folder && kept.text === text;
  let window = usable ? kept.windows.find((w) => index >= w.keepFrom && index < w.to) : undefined;
  if (!window) {
    const span = textWindows(model, leading.length, ids.length).find((w) => index >= w.keepFrom && index < w.to);
    if (!span) throw new Error(`internal: no window holds token ${index}`);
    window = (await inspectWindow(model, leading, ids, encoding.offsets.slice(encoding.lead), { ...span, keepFrom: index }, k, [], options.signal)).residuals;
  }
  const t = leading.length + index - window.from;
  const L = model.cfg.nLayers;
  const layers = Array.from({ length: L }, (_, layer) => layer);
  const cells = await windowLens(model, ids, window, layers.slice(0, L - 1), [t], k, options.signal);
  const last = await windowLens(model, ids, { ...window, finalTop: Int32Array.from(window.finalTop) }, [L - 1], [t], k, options.signal);
  return layers.map((layer) => (layer === L - 1 ? last.at(layer, t).layer : cells.at(layer, t).layer));
}
