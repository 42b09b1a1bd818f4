/**
 * Inspect a text: for each token, its surprisal, the next-token predictions, the entropy, the
 * residual-stream norm after each block, and the logit lens at each block. One forward pass with a
 * cache plus one batched logit-lens call for all layers and positions.
 */
import { LoupeError, throwIfAborted } from "./errors";
import type { HookedModel } from "./model/hooked-model";
import { blockHook } from "./model/hooks";
import { argmax, l2norm } from "./tensor/tensor";

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
  /** Logit lens after each block. */
  readonly lens: LayerLens[];
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
  readonly signal?: AbortSignal;
}

const LOG2E = Math.LOG2E;

export async function inspectText(model: HookedModel, text: string, options: InspectOptions = {}): Promise<InspectResult> {
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
  const W = model.cfg.nCtx - leading.length;
  if (W < 1) throw new LoupeError("context-overflow", `The model's context window (${model.cfg.nCtx}) holds no text after the tokenizer's ${leading.length} leading tokens.`);
  const stride = Math.max(1, W - Math.floor(W / 2));
  const tokens: TokenReport[] = [];
  const reusable = reusableReports(model, options.previous, ids, k);
  let windows = 0;
  let reusedWindows = 0;
  for (let from = 0; tokens.length < ids.length; from += stride) {
    const to = Math.min(ids.length, from + W);
    const reused = reusable(tokens.length, to);
    if (reused) {
      tokens.push(...reused.map((r) => ({ ...r, start: offsets[r.index][0], end: offsets[r.index][1] })));
      reusedWindows++;
    } else {
      tokens.push(...(await inspectWindow(model, leading, ids, offsets, from, to, tokens.length, k, options.signal)));
    }
    windows++;
  }
  return { modelFolder: model.folder, nLayers: model.cfg.nLayers, text, tokens, windows, reusedWindows, elapsedMs: performance.now() - started };
}

/**
 * Reports for tokens [keepFrom, to) that `previous` already holds, or undefined. A token's report
 * depends on the tokens of its window and on the token after it (the logit lens's next-token
 * probability), so a window is reusable when every token up to and including the one after it is
 * unchanged, or when both texts end where the window ends.
 */
function reusableReports(model: HookedModel, previous: InspectResult | undefined, ids: readonly number[], k: number): (keepFrom: number, to: number) => TokenReport[] | undefined {
  if (!previous || previous.modelFolder !== model.folder || previous.nLayers !== model.cfg.nLayers || previous.tokens[0]?.top.length !== k) return () => undefined;
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
 * text's tokens); lens targets look past the window.
 */
async function inspectWindow(
  model: HookedModel,
  leading: readonly number[],
  allIds: readonly number[],
  offsets: ReadonlyArray<readonly [number, number]>,
  from: number,
  to: number,
  keepFrom: number,
  k: number,
  signal: AbortSignal | undefined,
): Promise<TokenReport[]> {
  const L = model.cfg.nLayers;
  const D = model.cfg.dModel;
  const P = leading.length;
  const ids = [...leading, ...allIds.slice(from, to)];
  const T = ids.length;
  const residNames = Array.from({ length: L }, (_, layer) => blockHook(layer, "hook_resid_post"));
  const { logits, cache } = await model.runWithCache(ids, { names: residNames, signal });
  throwIfAborted(signal);
  const V = logits.dims[2];
  const finalTop = Array.from({ length: T }, (_, t) => argmax(logits.data.subarray(t * V, (t + 1) * V)));

  // One lens call over every (layer, position): rows are layer-major.
  const resid = new Float32Array(L * T * D);
  residNames.forEach((name, layer) => resid.set(cache.get(name).data.subarray(0, T * D), layer * T * D));
  // Two targets per row: the token that actually comes next (even past the window), and the model's final top prediction.
  // Position t of the run is text token from + t - P.
  const next = (t: number) => (from + t - P + 1 < allIds.length ? allIds[from + t - P + 1] : null);
  const targets: number[][] = [];
  for (let layer = 0; layer < L; layer++) for (let t = 0; t < T; t++) targets.push([next(t) ?? 0, finalTop[t]]);
  const lens = await model.lens(resid, targets, k);
  throwIfAborted(signal);

  const prediction = (row: number, j: number): TokenPrediction => {
    const id = lens.topIds[row * lens.k + j];
    return { id, text: model.tokenizer.tokenText(id), prob: Math.exp(lens.topLogprobs[row * lens.k + j]) };
  };
  const finalRow = (t: number) => (L - 1) * T + t;
  const reports: TokenReport[] = [];
  for (let t = P + keepFrom - from; t < T; t++) {
    const id = ids[t];
    const [start, end] = offsets[from + t - P];
    reports.push({
      index: from + t - P,
      id,
      text: model.tokenizer.tokenText(id),
      start,
      end,
      // After a leading <s>, the first token of the text is predicted too.
      surprisal: t === 0 ? null : -lens.targetLogprob[finalRow(t - 1) * 2] * LOG2E,
      entropy: lens.entropy[finalRow(t)] * LOG2E,
      top: Array.from({ length: lens.k }, (_, j) => prediction(finalRow(t), j)),
      residNorm: residNames.map((name) => l2norm(cache.get(name).data.subarray(t * D, (t + 1) * D))),
      lens: Array.from({ length: L }, (_, layer) => ({
        top: prediction(layer * T + t, 0),
        nextTokenProb: next(t) !== null ? Math.exp(lens.targetLogprob[(layer * T + t) * 2]) : null,
        agreement: Math.exp(lens.targetLogprob[(layer * T + t) * 2 + 1]),
      })),
    });
  }
  return reports;
}
