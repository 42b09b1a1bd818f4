/**
 * Token attribution by ablation: how much the answer's log-prob drops when one prompt token (or
 * word, or line) is taken away, every ablation a batch row of a few onnxruntime calls.
 *
 * Two ways to take a token away:
 * - "embed" (the default): its token embedding is replaced by a baseline (zero by default, or a
 *   chosen token); its position embedding stays. Measures every token, the last included. Not
 *   the end-of-text token by default: models read it as a document boundary, which disturbs
 *   everything after it.
 * - "mask" (attention knockout, Geva et al. 2023): no later position may attend to it, at any
 *   layer or head. Its information can then reach the answer by no path, so this is an exact
 *   removal, but the last prompt token (where the answer is read) cannot be measured, and a
 *   position robbed of its neighbour reads the prompt as nothing it was trained on: on held-out
 *   IOI prompts the word just before the answer position outweighs the IO name three times in four
 *   (bench:patching), which is why it is not the default.
 *
 * With a contrast token the metric is the logit difference (TransformerLens's logit_diff) at the
 * answer's last position: log p(answer's last token) - log p(contrast). That asks what made the
 * model prefer this answer to that one ("Mia" over "Leo"), not what made the answer likely at all,
 * which the rest of the sentence ("gave a ball to") also does.
 */
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { blockHook } from "../model/hooks";
import { argmax, tensor, type Tensor } from "../tensor/tensor";
import { runVariants, type RowIntervention } from "./batched-runs";
import type { Tokenizer } from "../tokenizer";
import { firstDistinctTokens, logSoftmax64 } from "./metrics";
import { range } from "./plan";
import { lineSegments, wordSegments, type Segment } from "./segments";

export type AblationMethod = "mask" | "embed";

/** Added to a knocked-out key's attention score: its softmax weight underflows to exactly 0. */
export const KNOCKOUT_SCORE = -1e9;

export interface AttributionOptions {
  /** Tokens whose log-prob is explained, continuing the text; default the model's most likely next token. */
  readonly answer?: readonly number[];
  /**
   * A competing token for the answer's last position: attribute the logit difference answer -
   * contrast there instead of log p(answer). For answers that share a first part (" Lomira" vs
   * " Lotak"), put the shared tokens in `answer` and the first differing ones at its end and here
   * (metrics.firstDistinctTokens).
   */
  readonly contrast?: number;
  /** Default "embed". */
  readonly method?: AblationMethod;
  /** For "embed": the token whose embedding stands in, or "zero" (the default). */
  readonly baseline?: number | "zero";
  /** Also attribute to whole words and lines (default true). */
  readonly groups?: boolean;
  /** Ablations per onnxruntime call (default DEFAULT_BATCH_ROWS, 16). */
  readonly batchSize?: number;
  readonly memoryBudgetBytes?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface TokenAttribution {
  /** Index among the text's own tokens (a leading <s> the model reads is not attributed to). */
  readonly index: number;
  readonly id: number;
  readonly text: string;
  readonly start: number;
  readonly end: number;
  /**
   * metric - metric with the token ablated, nats, where the metric is log p(answer) or, with a
   * contrast, the logit difference: > 0 when the token supports the answer; null when the method
   * cannot remove it.
   */
  readonly attribution: number | null;
}

export interface SegmentAttribution extends Segment {
  readonly attribution: number | null;
}

export interface AttributionResult {
  readonly text: string;
  readonly method: AblationMethod;
  /** The stand-in for "embed": a token, or zero. */
  readonly baseline: { readonly id: number; readonly text: string } | "zero" | null;
  readonly answer: {
    readonly ids: number[];
    readonly text: string;
    /** log p of the whole answer given the text, nats. */
    readonly logprob: number;
    /** Whether the answer's first token is the model's top prediction. */
    readonly isTop: boolean;
  };
  /** With a contrast: the token and the clean logit difference answer - contrast (nats). */
  readonly contrast: { readonly id: number; readonly text: string; readonly logitDiff: number } | null;
  readonly tokens: TokenAttribution[];
  readonly words: SegmentAttribution[];
  readonly lines: SegmentAttribution[];
  readonly calls: number;
  readonly elapsedMs: number;
}

/** Sum of the answer tokens' log-probs; logits rows are at the positions that predict them. */
export function answerLogprob(rows: readonly Float32Array[], answer: readonly number[]): number {
  let sum = 0;
  answer.forEach((id, k) => (sum += logSoftmax64(rows[k])[id]));
  return sum;
}

/**
 * Knock out the keys in `group` for every later query outside it, in every layer. Queries inside
 * the group are left alone: nothing outside reads them any more, and masking all their keys would
 * leave a row with nothing to attend to. Null when the group holds the last prompt token.
 */
export function knockoutInterventions(nLayers: number, seqLen: number, promptLength: number, group: readonly number[]): RowIntervention[] | null {
  if (group.includes(promptLength - 1)) return null;
  const inGroup = new Set(group);
  const first = Math.min(...group);
  const vector = new Float32Array(seqLen);
  for (const t of group) vector[t] = KNOCKOUT_SCORE;
  const queries = range(seqLen).filter((q) => q > first && !inGroup.has(q));
  return range(nLayers).map((layer) => ({ hook: blockHook(layer, "attn.hook_attn_scores"), kind: "add", vector, positions: queries }));
}

export function embeddingInterventions(baseline: Tensor, group: readonly number[]): RowIntervention[] {
  return [{ hook: "hook_embed", kind: "replace", source: baseline, positions: [...group] }];
}

/**
 * The answer tokens and contrast token for texts as a user types them (" Mia", " Leo"): the answer
 * continues the prompt, so it is encoded alone (no <s>); with a contrast, it stops at the first
 * token where the two differ, which is where their logit difference is read.
 */
export function attributionTargets(tokenizer: Tokenizer, answer?: string, contrast?: string): { answer?: number[]; contrast?: number } {
  if (contrast !== undefined && answer === undefined) throw new LoupeError("bad-argument", "A contrast needs an answer: the logit difference is answer - contrast.");
  if (answer === undefined) return {};
  // An empty answer is refused by attributeTokens, as when given as tokens.
  if (contrast === undefined) return { answer: tokenizer.encode(answer).ids };
  const pair = firstDistinctTokens(tokenizer, answer, contrast);
  return { answer: [...pair.prefix, pair.answer], contrast: pair.wrong };
}

export async function attributeTokens(model: HookedModel, text: string, options: AttributionOptions = {}): Promise<AttributionResult> {
  const started = performance.now();
  const method = options.method ?? "embed";
  if (method !== "mask" && method !== "embed") throw new LoupeError("bad-argument", `Unknown ablation method "${String(method)}": mask or embed.`);
  // The prompt as the model reads it, with Llama's <s> in front (HookedModel.encode). The leading
  // tokens are context, not text: they are never ablated, reported or grouped into words or lines.
  const encoding = model.encode(text);
  const prompt = encoding.ids;
  const lead = encoding.lead;
  if (prompt.length === lead) throw new LoupeError("empty-input", "Nothing to attribute: the selection has no tokens.");
  const P = prompt.length;
  const offsets = encoding.offsets.slice(lead);
  const V = model.cfg.dVocab;
  let calls = 0;

  // The clean run: it picks the default answer and gives the log-prob every ablation is compared to.
  let answer = options.answer ? [...options.answer] : undefined;
  if (answer?.length === 0) throw new LoupeError("bad-argument", "The answer is empty; give the text that should follow the selection.");
  for (const id of answer ?? []) if (!Number.isInteger(id) || id < 0 || id >= V) throw new LoupeError("bad-argument", `Answer token ${id} is outside the vocabulary (0..${V - 1}).`);
  const contrast = options.contrast;
  if (contrast !== undefined && (!Number.isInteger(contrast) || contrast < 0 || contrast >= V)) throw new LoupeError("bad-argument", `Contrast token ${contrast} is outside the vocabulary (0..${V - 1}).`);
  const input = [...prompt, ...(answer ?? []).slice(0, -1)];
  // Logits where the answer is read only (P - 1 onwards): the rest of [positions, d_vocab] is never looked at.
  const logitPositions = Array.from({ length: input.length - (P - 1) }, (_, k) => P - 1 + k);
  const { logits: clean, keyValues } = await model.runWithHooks(input, [], { signal: options.signal, keyValues: model.supportsPrefix, logitPositions });
  calls++;
  const rowAt = (p: number) => clean.data.subarray((p - (P - 1)) * V, (p - (P - 1) + 1) * V);
  const top = argmax(rowAt(P - 1));
  answer ??= [top];
  const answerPositions = answer.map((_, k) => P - 1 + k);
  const cleanLogprob = answerLogprob(answerPositions.map(rowAt), answer);
  if (contrast !== undefined && contrast === answer[answer.length - 1]) {
    throw new LoupeError("bad-argument", `The contrast is the answer's own last token ("${model.tokenizer.tokenText(contrast)}"): their logit difference is always zero. Choose a different token.`);
  }
  // The metric every ablation is compared by: log p(answer), or the logit difference to the contrast.
  const metric = (rows: readonly Float32Array[]): number => {
    if (contrast === undefined) return answerLogprob(rows, answer);
    const last = logSoftmax64(rows[rows.length - 1]);
    return last[answer[answer.length - 1]] - last[contrast];
  };
  const cleanMetric = contrast === undefined ? cleanLogprob : metric(answerPositions.map(rowAt));

  // Ablation groups: tokens, then words and lines; identical groups run once.
  // Segments and reported indices count the text's own tokens; a group's positions are lead later.
  const words = options.groups === false ? [] : wordSegments(text, offsets);
  const lines = options.groups === false ? [] : lineSegments(text, offsets);
  const groups = [...offsets.map((_, t) => [t]), ...words.map((w) => w.tokens), ...lines.map((l) => l.tokens)].map((g) => g.map((t) => t + lead));
  const keyOf = (g: readonly number[]) => g.join(",");
  const unique = new Map<string, readonly number[]>();
  for (const g of groups) unique.set(keyOf(g), g);

  let baseline: AttributionResult["baseline"] = null;
  let build: (group: readonly number[]) => RowIntervention[] | null;
  if (method === "mask") {
    build = (g) => knockoutInterventions(model.cfg.nLayers, input.length, P, g);
  } else {
    const choice = options.baseline ?? "zero";
    const vector = new Float32Array(model.cfg.dModel);
    if (choice !== "zero") {
      if (!Number.isInteger(choice) || choice < 0 || choice >= V) throw new LoupeError("bad-argument", `Baseline token ${choice} is outside the vocabulary (0..${V - 1}).`);
      const { cache } = await model.runWithCache([choice], { names: ["hook_embed"], logits: false, signal: options.signal });
      calls++;
      vector.set(cache.get("hook_embed").data);
      baseline = { id: choice, text: model.tokenizer.tokenText(choice) };
    } else {
      baseline = "zero";
    }
    const source = tensor(new Float32Array(input.length * vector.length), [1, input.length, vector.length]);
    for (let t = 0; t < input.length; t++) source.data.set(vector, t * vector.length);
    build = (g) => embeddingInterventions(source, g);
  }

  // Groups the method cannot ablate keep a null attribution.
  const runnable = [...unique].flatMap(([key, g]) => {
    const ivs = build(g);
    return ivs ? [{ key, ivs }] : [];
  });
  const runs = await runVariants(
    model,
    input,
    runnable.map((r) => r.ivs),
    {
      positions: answerPositions,
      batchSize: options.batchSize,
      memoryBudgetBytes: options.memoryBudgetBytes,
      signal: options.signal,
      onProgress: options.onProgress,
      keyValues: keyValues && { kv: keyValues, row: 0 },
    },
  );
  calls += runs.calls;
  throwIfAborted(options.signal);
  const effect = new Map<string, number>();
  runnable.forEach(({ key }, r) => effect.set(key, cleanMetric - metric(runs.logits[r])));
  const of = (g: readonly number[]) => effect.get(keyOf(g.map((t) => t + lead))) ?? null;

  return {
    text,
    method,
    baseline,
    answer: { ids: answer, text: model.toString(answer), logprob: cleanLogprob, isTop: answer[0] === top },
    contrast: contrast === undefined ? null : { id: contrast, text: model.tokenizer.tokenText(contrast), logitDiff: cleanMetric },
    tokens: offsets.map(([start, end], t) => {
      const id = prompt[lead + t];
      return { index: t, id, text: model.tokenizer.tokenText(id), start, end, attribution: of([t]) };
    }),
    words: words.map((w) => ({ ...w, attribution: of(w.tokens) })),
    lines: lines.map((l) => ({ ...l, attribution: of(l.tokens) })),
    calls,
    elapsedMs: performance.now() - started,
  };
}
