/**
 * Split a prompt into question, chain-of-thought steps and answer, with exact UTF-16 ranges so the
 * editor can decorate each step. Pure string work: no model.
 *
 *   Q: Max has 8 apples. She sells 3. How many apples does Max have now?
 *   A: 8 - 3 = 5. The answer is 5.
 *   └─question─┘└─step─┘└marker─────┘└answer┘
 *
 * The question ends at the reasoning cue ("A:" at the start of a line by default); the steps are the
 * sentences and lines between the cue and the last answer marker; the written answer, if any, runs
 * from the marker to the end of its sentence.
 */
import { LoupeError } from "../errors";

export interface Range {
  readonly start: number;
  readonly end: number;
}

export interface Step extends Range {
  readonly index: number;
  readonly text: string;
}

export interface Segmentation {
  readonly text: string;
  /** From the start of the text through the reasoning cue. */
  readonly question: Range;
  readonly steps: readonly Step[];
  /** The answer marker, e.g. "The answer is"; null when the text has none. */
  readonly marker: Range | null;
  /** What is written after the marker, up to the end of its sentence (without the full stop). */
  readonly writtenAnswer: (Range & { readonly text: string }) | null;
}

export interface SegmentOptions {
  /** Text that introduces the answer; the last occurrence counts. Default "The answer is". */
  readonly answerMarker?: string;
  /** Cues that end the question and start the reasoning, tried in order at line starts. Default ["A:", "Answer:"]. */
  readonly reasoningCues?: readonly string[];
}

export const DEFAULT_ANSWER_MARKER = "The answer is";
export const DEFAULT_REASONING_CUES: readonly string[] = ["A:", "Answer:", "Reasoning:", "Let's think step by step."];

export function segmentPrompt(text: string, options: SegmentOptions = {}): Segmentation {
  if (text.trim() === "") throw new LoupeError("empty-input", "The prompt is empty: select a question with its reasoning and answer.");
  const markerText = options.answerMarker ?? DEFAULT_ANSWER_MARKER;
  if (markerText.trim() === "") throw new LoupeError("bad-argument", "The answer marker is empty: set it to the words that introduce the answer, such as \"The answer is\".");
  const markerAt = text.lastIndexOf(markerText);
  const marker = markerAt >= 0 ? { start: markerAt, end: markerAt + markerText.length } : null;
  const reasoningEnd = marker ? marker.start : text.length;
  const question = findQuestion(text, reasoningEnd, options.reasoningCues ?? DEFAULT_REASONING_CUES);
  const steps = splitSteps(text, question.end, reasoningEnd);
  return { text, question, steps, marker, writtenAnswer: marker ? writtenAnswer(text, marker.end) : null };
}

/** The question runs through the last reasoning cue at a line start before the answer; else through the first line. */
function findQuestion(text: string, limit: number, cues: readonly string[]): Range {
  for (const cue of cues) {
    let best = -1;
    for (let at = text.indexOf(cue); at >= 0 && at + cue.length <= limit; at = text.indexOf(cue, at + 1)) {
      if (at === 0 || text[at - 1] === "\n") best = at;
    }
    if (best >= 0) return { start: 0, end: best + cue.length };
  }
  const newline = text.indexOf("\n");
  if (newline >= 0 && newline < limit) return { start: 0, end: newline + 1 };
  throw new LoupeError(
    "bad-argument",
    `Could not tell where the reasoning starts. Put it on its own line after the question, starting with one of ${cues.map((c) => JSON.stringify(c)).join(", ")}.`,
  );
}

/** Sentences and lines in [from, to), trimmed; a full stop inside a number ("3.5") does not end a sentence. */
export function splitSteps(text: string, from: number, to: number): Step[] {
  const steps: Step[] = [];
  let start = from;
  const push = (end: number) => {
    let s = start;
    let e = end;
    while (s < e && /\s/.test(text[s])) s++;
    while (e > s && /\s/.test(text[e - 1])) e--;
    if (e > s) steps.push({ index: steps.length, start: s, end: e, text: text.slice(s, e) });
    start = end;
  };
  for (let i = from; i < to; i++) {
    const c = text[i];
    if (c === "\n") push(i + 1);
    else if ((c === "." || c === "!" || c === "?") && (i + 1 >= to || /\s/.test(text[i + 1]))) push(i + 1);
  }
  push(to);
  return steps;
}

function writtenAnswer(text: string, from: number): (Range & { text: string }) | null {
  let end = from;
  while (end < text.length && text[end] !== "\n" && !(text[end] === "." && (end + 1 >= text.length || /\s/.test(text[end + 1])))) end++;
  let start = from;
  while (start < end && /\s/.test(text[start])) start++;
  return end > start ? { start, end, text: text.slice(start, end) } : null;
}
