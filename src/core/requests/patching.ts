/**
 * Patching and attribution as requests: the one place where answer strings become metric tokens,
 * so the editor and the CLI choose a metric the same way (--metric and --first-distinct included).
 */
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { attributeTokens, attributionTargets, type AblationMethod, type AttributionResult } from "../patching/attribution";
import { firstDistinctTokens, singleToken, type MetricKind, type MetricSpec } from "../patching/metrics";
import type { SweepKind } from "../patching/plan";
import { patchingSweeps, type Direction, type PatchingResult } from "../patching/sweep";
import { request } from "./request";

export interface AttributeParams {
  readonly text: string;
  /** The continuation to explain; default the model's top next token. */
  readonly answer?: string;
  /** Explain answer - contrast (logit difference, at their first differing tokens) instead. */
  readonly contrast?: string;
  readonly method?: AblationMethod;
  /** For method "embed": "zero" (the default) or one token's text whose embedding stands in. */
  readonly baseline?: string;
  readonly batchSize?: number;
}

export interface PatchParams {
  readonly clean: string;
  readonly corrupted: string;
  readonly answer?: string;
  readonly wrong?: string;
  /** Default: logit-diff with a wrong answer, logprob with an answer alone, else kl. */
  readonly metric?: MetricKind;
  /** Score multi-token answers at their first differing tokens (the shared ones are appended to both prompts). */
  readonly firstDistinct?: boolean;
  readonly direction?: Direction;
  readonly sweeps?: readonly SweepKind[];
  readonly batchSize?: number;
}

export interface PatchReply {
  readonly result: PatchingResult;
  /** Each clean token's [start, end) in the clean text; [end, end] for tokens not in it (<s>, appended answer prefixes). */
  readonly cleanOffsets: Array<[number, number]>;
}

export interface PatchingInputs {
  readonly clean: number[];
  readonly corrupted: number[];
  readonly metric: MetricSpec;
  readonly cleanOffsets: Array<[number, number]>;
}

const METRICS: readonly MetricKind[] = ["logit-diff", "logprob", "kl"];

/** Token ids and the metric for a patching request. */
export function patchingInputs(model: HookedModel, params: PatchParams): PatchingInputs {
  const { answer, wrong } = params;
  const kind = params.metric ?? (wrong !== undefined ? "logit-diff" : answer !== undefined ? "logprob" : "kl");
  if (!METRICS.includes(kind)) throw new LoupeError("bad-argument", `The patching metric must be logit-diff, logprob or kl (got ${String(kind)}).`);
  // Prompts read as the model reads them (Llama's <s> in front; its range is [0, 0]).
  const encoding = model.encode(params.clean);
  const clean = encoding.ids;
  const corrupted = model.toTokens(params.corrupted);
  const cleanOffsets = encoding.offsets.map(([start, end]): [number, number] => [start, end]);
  switch (kind) {
    case "kl":
      return { clean, corrupted, metric: { kind: "kl" }, cleanOffsets };
    case "logprob":
      if (answer === undefined) throw new LoupeError("bad-argument", "The logprob metric needs an answer (--answer).");
      return { clean, corrupted, metric: { kind: "logprob", answer: singleToken(model.tokenizer, answer) }, cleanOffsets };
    case "logit-diff": {
      if (answer === undefined || wrong === undefined) throw new LoupeError("bad-argument", "The logit-diff metric needs an answer and a wrong answer (--answer and --wrong).");
      if (!params.firstDistinct) {
        return { clean, corrupted, metric: { kind: "logit-diff", answer: singleToken(model.tokenizer, answer), wrong: singleToken(model.tokenizer, wrong, "wrong answer") }, cleanOffsets };
      }
      // Append the answers' shared first tokens to both prompts and score where they part.
      const pair = firstDistinctTokens(model.tokenizer, answer, wrong);
      const end = params.clean.length;
      return {
        clean: [...clean, ...pair.prefix],
        corrupted: [...corrupted, ...pair.prefix],
        metric: { kind: "logit-diff", answer: pair.answer, wrong: pair.wrong },
        cleanOffsets: [...cleanOffsets, ...pair.prefix.map((): [number, number] => [end, end])],
      };
    }
  }
}

export const PATCHING_REQUESTS = {
  /** Each token's, word's and line's effect on the answer (default: the model's top next token). */
  attribute: request<AttributeParams, AttributionResult>(async (session, params, { signal, progress }) => {
    const model = session.model;
    const { answer, contrast } = attributionTargets(model.tokenizer, params.answer, params.contrast);
    const baseline = params.baseline === undefined || params.baseline === "zero" ? params.baseline : singleToken(model.tokenizer, params.baseline, "baseline");
    return attributeTokens(model, params.text, { answer, contrast, method: params.method, baseline, batchSize: params.batchSize, signal, onProgress: (done, total) => progress(done, total) });
  }),
  /** Patching sweeps between two prompts; the clean prompt's token offsets come back for the editor. */
  patch: request<PatchParams, PatchReply>(async (session, params, { signal, progress }) => {
    const model = session.model;
    const { cleanOffsets, ...inputs } = patchingInputs(model, params);
    const result = await patchingSweeps(model, {
      ...inputs,
      direction: params.direction,
      sweeps: params.sweeps,
      batchSize: params.batchSize,
      signal,
      onProgress: (done, total) => progress(done, total),
    });
    return { result, cleanOffsets };
  }),
};
