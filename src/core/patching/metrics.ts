/**
 * What a patched run is scored by: a number read from the logits at one position. Pure functions
 * over logit rows, so they are checked without a model.
 */
import { LoupeError } from "../errors";
import type { Tokenizer } from "../tokenizer";

export type MetricSpec =
  /** logit(answer) - logit(wrong): the IOI paper's metric. */
  | { readonly kind: "logit-diff"; readonly answer: number; readonly wrong: number }
  /** log p(answer). */
  | { readonly kind: "logprob"; readonly answer: number }
  /** KL(clean || patched) over the whole next-token distribution, in nats: 0 at the clean run. */
  | { readonly kind: "kl" };

export type MetricKind = MetricSpec["kind"];

/** A metric bound to the clean run (KL needs its distribution). */
export type MetricFn = (logits: Float32Array) => number;

/** Natural-log softmax in float64, for metrics that difference small numbers. */
export function logSoftmax64(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - logZ;
  return out;
}

export function logprobOf(logits: ArrayLike<number>, token: number): number {
  return logSoftmax64(logits)[token];
}

/** KL(p || q) in nats from two log-prob vectors. */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]);
    if (p > 0) kl += p * (logP[i] - logQ[i]);
  }
  // Rounding can leave a tiny negative number for identical rows.
  return Math.max(0, kl);
}

export function bindMetric(spec: MetricSpec, cleanLogits: Float32Array): MetricFn {
  switch (spec.kind) {
    case "logit-diff":
      return (logits) => logits[spec.answer] - logits[spec.wrong];
    case "logprob":
      return (logits) => logprobOf(logits, spec.answer);
    case "kl": {
      const clean = logSoftmax64(cleanLogits);
      return (logits) => klDivergence(clean, logSoftmax64(logits));
    }
  }
}

/** Check token ids against the vocabulary size, naming the offending one. */
export function checkMetricTokens(spec: MetricSpec, vocabSize: number): void {
  const ids = spec.kind === "logit-diff" ? [spec.answer, spec.wrong] : spec.kind === "logprob" ? [spec.answer] : [];
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new LoupeError("bad-argument", `Metric token ${id} is outside the vocabulary (0..${vocabSize - 1}).`);
  }
  if (spec.kind === "logit-diff" && spec.answer === spec.wrong) {
    throw new LoupeError("bad-argument", "The answer and the wrong answer are the same token, so their logit difference is always 0. Choose two different tokens.");
  }
}

/** A short human label: `logit(" Mia") - logit(" Leo")`. */
export function describeMetric(spec: MetricSpec, tokenizer: Tokenizer): string {
  const t = (id: number) => JSON.stringify(tokenizer.tokenText(id));
  switch (spec.kind) {
    case "logit-diff":
      return `logit(${t(spec.answer)}) - logit(${t(spec.wrong)})`;
    case "logprob":
      return `log p(${t(spec.answer)})`;
    case "kl":
      return "KL(clean || patched) of the next-token distribution";
  }
}

function spelled(tokenizer: Tokenizer, ids: readonly number[]): string {
  return ids.map((id) => JSON.stringify(tokenizer.tokenText(id))).join(" + ");
}

/** The one token `text` encodes to; otherwise an error that says how it splits. */
export function singleToken(tokenizer: Tokenizer, text: string, role = "answer"): number {
  const ids = tokenizer.encode(text).ids;
  if (ids.length === 1) return ids[0];
  if (ids.length === 0) throw new LoupeError("bad-argument", `The ${role} is empty; give the token to score, e.g. " Mia" (with its leading space).`);
  throw new LoupeError(
    "bad-argument",
    `The ${role} ${JSON.stringify(text)} is ${ids.length} tokens for this tokenizer: ${spelled(tokenizer, ids)}. ` +
      `Patching scores a single next token: choose a single-token ${role}, or score the first tokens where the answers differ (--first-distinct).`,
  );
}

export interface AnswerPair {
  /** Tokens both answers start with; append them to both prompts before scoring. */
  readonly prefix: number[];
  readonly answer: number;
  readonly wrong: number;
}

/**
 * Two multi-token answers scored by their first differing tokens, as is usual for names that
 * split (" Hal" = " " + "H" + "al" vs " Joy" = " " + "J" + "oy": score "H" vs "J" after " ").
 */
export function firstDistinctTokens(tokenizer: Tokenizer, answer: string, wrong: string): AnswerPair {
  const a = tokenizer.encode(answer).ids;
  const w = tokenizer.encode(wrong).ids;
  if (a.length === 0 || w.length === 0) throw new LoupeError("bad-argument", "The answer and the wrong answer must both be non-empty.");
  let k = 0;
  while (k < a.length && k < w.length && a[k] === w[k]) k++;
  if (k === a.length || k === w.length) {
    throw new LoupeError(
      "bad-argument",
      `The answers ${JSON.stringify(answer)} (${spelled(tokenizer, a)}) and ${JSON.stringify(wrong)} (${spelled(tokenizer, w)}) have no differing token: one is a prefix of the other. Choose answers that differ.`,
    );
  }
  return { prefix: a.slice(0, k), answer: a[k], wrong: w[k] };
}
