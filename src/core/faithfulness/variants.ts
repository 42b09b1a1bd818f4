/**
 * Counterfactual versions of a segmented prompt, as plain text: the CoT cut after k steps, one step
 * removed, the CoT replaced by filler, one step corrupted. Pure string work, so the battery can build
 * every variant first and score them in a few batched forward passes.
 */
import type { Segmentation, Step } from "./segment";

/** A prompt ending in the answer marker; the battery appends the answer to score it. */
export interface Variant {
  readonly kind: "full" | "truncated" | "removed" | "filler" | "hint-removed" | "hint-moved";
  /** Steps kept (truncated: the first `step` steps), removed, or the hint's new option. */
  readonly step?: number;
  readonly label?: string;
  readonly prefix: string;
}

interface Parts {
  readonly question: string;
  /** Whitespace before each step, then the step. */
  readonly steps: readonly { readonly before: string; readonly text: string }[];
  /** Whitespace between the last step and the marker, then the marker. */
  readonly tail: string;
}

function parts(seg: Segmentation): Parts {
  if (!seg.marker) throw new Error("internal: variants need an answer marker");
  const { text } = seg;
  let previous = seg.question.end;
  const steps = seg.steps.map((s) => {
    const part = { before: text.slice(previous, s.start), text: s.text };
    previous = s.end;
    return part;
  });
  return { question: text.slice(0, seg.question.end), steps, tail: text.slice(previous, seg.marker.end) };
}

function join(p: Parts, keep: (i: number) => boolean, replace?: { index: number; text: string }): string {
  const cot = p.steps
    .map((s, i) => (keep(i) ? s.before + (replace?.index === i ? replace.text : s.text) : ""))
    .join("");
  return p.question + cot + p.tail;
}

/** The prompt as written, through the marker. */
export function fullPrefix(seg: Segmentation): string {
  return join(parts(seg), () => true);
}

/** Early answering: the CoT cut after 0..n-1 steps (n steps is the full prompt). */
export function truncations(seg: Segmentation): Variant[] {
  const p = parts(seg);
  return seg.steps.map((_, k) => ({ kind: "truncated", step: k, prefix: join(p, (i) => i < k) }));
}

/** Step ablation: each step removed in turn. */
export function removals(seg: Segmentation): Variant[] {
  const p = parts(seg);
  return seg.steps.map((s) => ({ kind: "removed", step: s.index, prefix: join(p, (i) => i !== s.index) }));
}

/** The CoT replaced by `filler` (chosen by the caller to match the CoT's token count). */
export function fillerVariant(seg: Segmentation, filler: string): Variant {
  const p = parts(seg);
  const before = p.steps[0]?.before ?? " ";
  return { kind: "filler", prefix: p.question + before + filler + p.tail };
}

/** The reasoning text between the question and the marker, as it is written. */
export function cotText(seg: Segmentation): string {
  if (seg.steps.length === 0) return "";
  return seg.text.slice(seg.steps[0].start, seg.steps[seg.steps.length - 1].end);
}

/** Everything before a corrupted step, then the corrupted step: the model regenerates from there. */
export function corruptedPrefix(seg: Segmentation, step: Step, corrupted: string): string {
  const p = parts(seg);
  return p.question + p.steps.slice(0, step.index).map((s) => s.before + s.text).join("") + p.steps[step.index].before + corrupted;
}

/**
 * A plausible mistake in a step: its last number moved by two (the result, in "a + b = c"), or, in a
 * step without numbers, the claim negated. Null when neither applies.
 */
export function corruptStep(text: string): string | null {
  const numbers = [...text.matchAll(/\d+/g)];
  const last = numbers[numbers.length - 1];
  if (last?.index !== undefined) {
    const value = Number(last[0]);
    const wrong = value >= 2 ? value - 2 : value + 2;
    return text.slice(0, last.index) + String(wrong) + text.slice(last.index + last[0].length);
  }
  const negated = text.replace(/\b(is|are|was|were|can|does|do|has|have)( not)?\b/i, (_m, verb: string, not?: string) => (not ? verb : `${verb} not`));
  if (negated !== text) return negated;
  const swapped = text.replace(/\b(bigger|smaller|larger|more|less|older|younger|true|false)\b/i, (w) => OPPOSITES[w.toLowerCase()] ?? w);
  return swapped !== text ? swapped : null;
}

const OPPOSITES: Record<string, string> = {
  bigger: "smaller",
  smaller: "bigger",
  larger: "smaller",
  more: "less",
  less: "more",
  older: "younger",
  younger: "older",
  true: "false",
  false: "true",
};
