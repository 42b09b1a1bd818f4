/**
 * Results of commands run on a rendered chat, placed back into the chat: every range a result holds
 * (tokens, words, lines, CoT steps, a hint) goes through one ChatView, which either annotates it
 * with its message (the CLI's --json) or moves it onto the chat file (the editor). Items keep their
 * places in their lists, so indices (a hover's token index, a path's token) still hold; the
 * template's own tokens get an empty range on the file, which nothing draws.
 */
import { LoupeError } from "../errors";
import { DEFAULT_ANSWER_MARKER, type FaithfulnessWithCircuit } from "../faithfulness";
import type { AttributionResult } from "../patching";
import type { CircuitTrace } from "../requests/circuits";
import type { TokenFeaturesResult } from "../sae/token-features";
import type { ChatLayout, Span } from "./chat-layout";

export interface ChatView {
  /** One range of the rendered text, annotated or moved. */
  readonly span: <T extends Span>(item: T) => T;
  /** The text the ranges index afterwards. */
  readonly text: string;
}

/** Ranges stay in the rendered text, each with its message and range there added. */
export function messageView(chat: ChatLayout): ChatView {
  return { span: chat.withPlace, text: chat.text };
}

/** Ranges move onto the chat file's text. */
export function fileView(chat: ChatLayout): ChatView {
  if (!chat.file) throw new Error("fileView needs a chat read from a file");
  return { span: chat.onFile, text: chat.file.text };
}

export function featuresInChat(result: TokenFeaturesResult, view: ChatView): TokenFeaturesResult {
  return { ...result, tokens: result.tokens.map(view.span) };
}

export function attributionInChat(result: AttributionResult, view: ChatView): AttributionResult {
  return { ...result, text: view.text, tokens: result.tokens.map(view.span), words: result.words.map(view.span), lines: result.lines.map(view.span) };
}

export function faithfulnessInChat(report: FaithfulnessWithCircuit, view: ChatView): FaithfulnessWithCircuit {
  const seg = report.segmentation;
  const orNull = <T extends Span>(range: T | null) => (range ? view.span(range) : null);
  return {
    ...report,
    text: view.text,
    segmentation: { ...seg, text: view.text, question: view.span(seg.question), steps: seg.steps.map(view.span), marker: orNull(seg.marker), writtenAnswer: orNull(seg.writtenAnswer) },
    steps: report.steps.map(view.span),
    hint: report.hint ? { ...report.hint, hint: view.span(report.hint.hint) } : null,
    ...(report.circuit ? { circuit: { ...report.circuit, steps: report.circuit.steps.map(view.span) } } : {}),
  };
}

/**
 * The faithfulness battery on a chat: the CoT is the last assistant message (or, with `generate`
 * after a user message, the reply the model writes). The battery's question ends at the last
 * reasoning cue that starts a line, so the cue is the rendered text from the start of the line
 * before that message to where its content starts (ChatML's "<|im_start|>assistant\n", or "A:"
 * in a template that writes "A: " before the assistant's words).
 */
export function chatReasoningCue(chat: ChatLayout, options: { answerMarker?: string; generate?: boolean }): string {
  const last = chat.messages.length - 1;
  const assistant = chat.messages[last].role === "assistant";
  const marker = options.answerMarker ?? DEFAULT_ANSWER_MARKER;
  if (!options.generate && !(assistant && chat.messages[last].content.includes(marker))) {
    throw new LoupeError(
      "bad-argument",
      `In a chat, the chain of thought is the last assistant message: end the chat with the assistant's reasoning and "${marker} …" (or set the marker, or let the model write the reply: generate).`,
    );
  }
  const start = assistant ? chat.rendered.spans[last]?.start : chat.text.length;
  if (start === undefined || start === 0) throw new LoupeError("bad-argument", "The chat template puts no question before the last assistant message: there is nothing for the reasoning to answer.");
  const line = chat.text.slice(chat.text.lastIndexOf("\n", start - 2) + 1, start);
  // Spaces after the role marker go with the reasoning, as after "A:" in a plain prompt: a variant
  // without the CoT then reads "A: The answer is", not "A:  The answer is".
  return line.replace(/[ \t]+$/, "") || line;
}

export function circuitInChat(trace: CircuitTrace, view: ChatView): CircuitTrace {
  return { ...trace, tokens: trace.tokens.map(view.span) };
}
