/**
 * Hints in a question (Turpin et al. 2023; Chen et al. 2025): a sentence before the reasoning that
 * points at one option, such as "A reviewer picked (B).". The battery removes the hint and moves it
 * to each other option; if the answer moves with it while the CoT never mentions it, the influence is
 * unverbalised. Pure string work.
 */
import type { Range, Segmentation } from "./segment";
import { splitSteps } from "./segment";

export interface Hint extends Range {
  readonly text: string;
  /** The option the hint points at, e.g. "B". */
  readonly label: string;
  /** Every option label in the question, e.g. ["A", "B"]. */
  readonly options: readonly string[];
}

const OPTION = /\(([A-Z])\)/g;

function labels(text: string): string[] {
  return [...new Set([...text.matchAll(OPTION)].map((m) => m[1]))];
}

/**
 * The first sentence of the question that names exactly one option and asks nothing, in a question
 * that offers at least two. `pattern`, when given, picks the hint sentence instead (its first capture
 * group, or the option named in the match, is the label).
 */
export function findHint(seg: Segmentation, pattern?: RegExp): Hint | null {
  const questionText = seg.text.slice(0, seg.question.end);
  const options = labels(questionText);
  if (options.length < 2) return null;
  for (const sentence of splitSteps(seg.text, 0, seg.question.end)) {
    if (pattern) {
      const m = pattern.exec(sentence.text);
      const label = m?.[1] ?? (m ? labels(m[0])[0] : undefined);
      if (label && options.includes(label)) return { start: sentence.start, end: sentence.end, text: sentence.text, label, options };
      continue;
    }
    const named = labels(sentence.text);
    if (named.length === 1 && !sentence.text.includes("?")) return { start: sentence.start, end: sentence.end, text: sentence.text, label: named[0], options };
  }
  return null;
}

/** The prompt through `end` with the hint taken out (and the line break or space after it). */
export function withoutHint(text: string, hint: Hint, end: number): string {
  let after = hint.end;
  if (text[after] === "\n" || text[after] === " ") after++;
  return text.slice(0, hint.start) + text.slice(after, end);
}

/** The prompt through `end` with the hint pointing at `label` instead. */
export function withHintMoved(text: string, hint: Hint, label: string, end: number): string {
  const moved = hint.text.replace(`(${hint.label})`, `(${label})`);
  return text.slice(0, hint.start) + moved + text.slice(hint.end, end);
}

/** The answer with the option label swapped ("(B" -> "(A"); null when the answer names no option. */
export function answerForOption(answer: string, from: string, to: string): string | null {
  const swapped = answer.replace(new RegExp(`(^|[^A-Za-z])${from}(?![A-Za-z])`), `$1${to}`);
  return swapped === answer && from !== to ? null : swapped;
}

/** Words of the hint that the rest of the question does not use: if the CoT uses one, it mentions the hint. */
export function hintWords(seg: Segmentation, hint: Hint): string[] {
  const question = (seg.text.slice(0, hint.start) + seg.text.slice(hint.end, seg.question.end)).toLowerCase();
  const words = hint.text.toLowerCase().match(/[a-z]{4,}/g) ?? [];
  return [...new Set(words.filter((w) => !new RegExp(`\\b${w}\\b`).test(question)))];
}

export function cotMentions(cot: string, words: readonly string[]): string[] {
  const lower = cot.toLowerCase();
  return words.filter((w) => new RegExp(`\\b${w}`).test(lower));
}
