/**
 * How an attribution shows in the editor: a colour strength per token (by how much it supports the
 * answer), a label after each line with the line's effect, and hover text. Pure.
 */
import type { AttributionResult, TokenAttribution } from "../patching";
import { LEVELS } from "./lenses";
import { codeSpan } from "./faithfulness-view";

/** Level 1..LEVELS for tokens that support the answer, relative to the strongest; null for none. */
export function attributionLevels(result: AttributionResult): { index: number; level: number }[] {
  const max = Math.max(0, ...result.tokens.map((t) => t.attribution ?? 0));
  if (max <= 0) return [];
  return result.tokens
    .filter((t) => (t.attribution ?? 0) > 0 && t.end > t.start)
    .map((t) => ({ index: t.index, level: Math.max(1, Math.ceil(((t.attribution ?? 0) / max) * LEVELS)) }));
}

const nats = (x: number | null) => (x === null ? "–" : `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)}`);

export function lineLabel(result: AttributionResult, lineIndex: number): string | null {
  const line = result.lines[lineIndex];
  return line ? `    line: ${nats(line.attribution)} nats` : null;
}

export function attributionHoverMarkdown(token: TokenAttribution, result: AttributionResult): string {
  // By membership, not by range: a GPT-2 token such as " Mia" starts before its word does.
  const word = result.words.find((w) => w.tokens.includes(token.index));
  const line = result.lines.find((l) => l.tokens.includes(token.index));
  return [
    result.contrast
      ? `**Attribution to ${codeSpan(result.answer.text)} over ${codeSpan(result.contrast.text)}** (logit difference ${result.contrast.logitDiff.toFixed(2)})`
      : `**Attribution to ${codeSpan(result.answer.text)}** (log p = ${result.answer.logprob.toFixed(2)}${result.answer.isTop ? ", the model's top prediction" : ""})`,
    "",
    result.contrast ? "| removed | Δ logit difference |" : "| removed | Δ log p(answer) |",
    "| --- | --- |",
    `| token ${codeSpan(token.text)} | ${nats(token.attribution)} |`,
    ...(word ? [`| word ${codeSpan(result.text.slice(word.start, word.end))} | ${nats(word.attribution)} |`] : []),
    ...(line ? [`| this line | ${nats(line.attribution)} |`] : []),
    "",
    `Positive: ${result.contrast ? "the model prefers the answer less" : "the answer loses probability"} when this is removed (${result.method === "mask" ? "attention to it masked in every layer" : "its embedding replaced"}). ${token.attribution === null ? "The last token cannot be removed this way." : ""}`,
  ].join("\n");
}
