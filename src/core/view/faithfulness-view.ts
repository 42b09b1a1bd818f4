/**
 * How a faithfulness report looks in the editor: a colour strength and an after-line label per
 * step, hover text that explains each number, the CodeLens title, and the findings that become
 * Diagnostics. Pure, so it is tested without VS Code.
 */
import type { FaithfulnessReport, FaithfulnessWithCircuit, StepScore } from "../faithfulness";
import { LEVELS } from "./lenses";
import { escapeMarkdown, oneLine } from "./markdown";

/** A warning or note about a prompt, in offsets of the analysed text. */
export interface Finding {
  readonly start: number;
  readonly end: number;
  readonly severity: "warning" | "information";
  readonly code: "cot-not-load-bearing" | "unverbalised-hint" | "cot-partly-load-bearing";
  readonly message: string;
}

const pct = (p: number | null) => (p === null ? "–" : `${(p * 100).toFixed(1)}%`);
const num = (x: number | null, digits = 2) => (x === null ? "–" : x.toFixed(digits));

/** 1..LEVELS: background strength of a step, by its importance (0 shows the faintest colour). */
export function stepLevel(step: StepScore): number {
  return Math.min(LEVELS, 1 + Math.floor(step.importance * LEVELS));
}

/** Steps grouped by the line they end on, in order. */
export function stepsByLine(steps: readonly StepScore[], lineOf: (offset: number) => number): { line: number; steps: StepScore[] }[] {
  const groups: { line: number; steps: StepScore[] }[] = [];
  for (const step of steps) {
    const line = lineOf(Math.max(step.start, step.end - 1));
    const last = groups[groups.length - 1];
    if (last?.line === line) last.steps.push(step);
    else groups.push({ line, steps: [step] });
  }
  return groups;
}

/** The label after a line: each step on it with its role and importance, e.g. "◇ 1: 0.00   ◆ 2: 1.00 load-bearing". */
export function stepLineLabel(steps: readonly StepScore[]): string {
  const parts = steps.map((s) => `${s.loadBearing ? "◆" : "◇"} ${s.index + 1}: ${num(s.importance)}`);
  const roles = steps.length === 1 ? ` ${steps[0].loadBearing ? "load-bearing" : "decorative"}` : "";
  return `    ${parts.join("   ")}${roles}`;
}

export function codeLensTitle(report: FaithfulnessReport): string {
  const overall = report.scores.overall;
  const verdict = { "load-bearing": "answer rests on the reasoning", partly: "answer rests partly on the reasoning", decorative: "answer ignores the reasoning", unknown: "not enough scored" }[report.verdict];
  const hint = report.hint?.unverbalised ? " · ⚠ follows an unverbalised hint" : "";
  return `CoT faithfulness ${num(overall)}: ${verdict}${hint} · ${report.steps.length} steps · ${report.forwardPasses} passes, ${report.elapsedMs.toFixed(0)} ms`;
}

/** Markdown for a hover on a step. Step text is the user's: it is escaped, never rendered. */
export function stepHoverMarkdown(step: StepScore, report: FaithfulnessWithCircuit): string {
  const lines = [
    `**Step ${step.index + 1} of ${report.steps.length}: ${step.loadBearing ? "load-bearing" : "decorative"}** (importance ${num(step.importance)})`,
    "",
    `Tracked answer: ${codeSpan(report.answer.text.trim())} (p = ${pct(report.answer.prob)} after the full reasoning)`,
    "",
    "| test | result | meaning |",
    "| --- | --- | --- |",
    `| early answering | p = ${pct(step.probAfter)} | the answer's probability with the reasoning cut right after this step |`,
  ];
  if (step.removed) {
    const changed = step.removed.answerChanged ? `; the model then answers ${codeSpan((step.removed.writesInstead ?? "").trim() + "…")}` : "; the answer stays";
    lines.push(`| step removed | Δ log p = ${num(step.removed.logprobDelta)} | p = ${pct(step.removed.prob)} without this step${changed} |`);
  }
  if (step.mistake) {
    lines.push(
      `| mistake added | ${step.mistake.followed ? "followed" : "ignored"} | with ${codeSpan(step.mistake.corrupted)} the model regenerates the rest and answers ${step.mistake.answer === null ? "nothing" : `${codeSpan(step.mistake.answer.trim())}`} |`,
    );
  }
  const circuit = report.circuit;
  const share = circuit?.steps[step.index];
  if (circuit && share) {
    lines.push(
      `| through the circuit | ${pct(share.share)} | of the answer's influence in its attribution graph (${codeSpan(circuit.target.trim())}) enters through this step's ${share.tokens} tokens; all steps ${pct(circuit.reasoning)}, the question ${pct(circuit.question)}, unexplained (errors) ${pct(circuit.errors)} |`,
    );
  }
  lines.push("", "Importance is the relative drop of p(answer) when the step is removed. A step is load-bearing when removing or corrupting it changes the answer.");
  if (circuit) lines.push("The circuit share reads the model's computation rather than its output: how much of the answer's graph influence (transcoder features, frozen attention) traces back to the step's token embeddings.");
  return lines.join("\n");
}

/** Markdown for the whole battery (the CodeLens and the Diagnostic link to it). */
export function reportSummaryMarkdown(report: FaithfulnessWithCircuit): string {
  const s = report.scores;
  const lines = [
    `**CoT faithfulness: ${num(s.overall)}** (${report.verdict})`,
    "",
    "| test | score | meaning |",
    "| --- | --- | --- |",
    `| early answering | ${num(s.earlyAnswering)} | area over the curve of p(answer) as the reasoning is cut earlier (Lanham et al. 2023) |`,
    `| step ablation | ${num(s.stepAblation)} | largest relative drop of p(answer) when one step is removed |`,
    `| adding mistakes | ${num(s.mistakes)} | share of corrupted steps after which the regenerated answer changes |`,
    `| filler tokens | ${num(s.filler)} | drop of p(answer) when the reasoning is replaced by ${report.fillerTokens} filler tokens |`,
    ...(report.circuit ? [`| through the circuit | ${num(report.circuit.reasoning)} | share of the answer's attribution-graph influence entering through the reasoning's tokens (question ${num(report.circuit.question)}, errors ${num(report.circuit.errors)}; transcoders ${codeSpan(report.circuit.transcoders)}) |`] : []),
    "",
    `Answer ${codeSpan(report.answer.text.trim())}: p = ${pct(report.answer.prob)} with the reasoning, ${pct(report.noCotProb)} without, ${pct(report.fillerProb)} with filler.`,
  ];
  if (report.hint) {
    const h = report.hint;
    lines.push(
      "",
      `Hint ${codeSpan(h.hint.text)}: the model picks (${h.choice}) with it and (${h.choiceWithoutHint}) without; moved to another option it follows ${h.followsMovedHint} of ${h.movedPlacements} times. ` +
        (h.mentionedBy.length ? `The reasoning mentions it (${h.mentionedBy.map(escapeMarkdown).join(", ")}).` : "The reasoning never mentions it."),
    );
  }
  for (const note of report.notes) lines.push("", `_${escapeMarkdown(note)}_`);
  return lines.join("\n");
}

/** Warnings for the Problems panel (and the quick audit). */
export function faithfulnessFindings(report: FaithfulnessReport): Finding[] {
  const findings: Finding[] = [];
  const steps = report.steps;
  if (steps.length > 0 && (report.verdict === "decorative" || report.verdict === "partly")) {
    const decorative = report.verdict === "decorative";
    findings.push({
      start: steps[0].start,
      end: steps[steps.length - 1].end,
      severity: decorative ? "warning" : "information",
      code: decorative ? "cot-not-load-bearing" : "cot-partly-load-bearing",
      message: decorative
        ? `The answer does not depend on this reasoning (faithfulness ${num(report.scores.overall)}): removing, cutting or corrupting the steps leaves "${report.answer.text.trim()}" in place.`
        : `The answer depends only partly on this reasoning (faithfulness ${num(report.scores.overall)}).`,
    });
  }
  const h = report.hint;
  if (h?.unverbalised) {
    findings.push({
      start: h.hint.start,
      end: h.hint.end,
      severity: "warning",
      code: "unverbalised-hint",
      message: `The answer follows this hint, which the reasoning never mentions: (${h.choice}) with it, (${h.choiceWithoutHint}) without it.`,
    });
  }
  return findings;
}

export { escapeMarkdown };

/** Inline code for user text in a table cell: backticks, line breaks and pipes cannot end the span or the cell. */
export function codeSpan(text: string): string {
  return `\`${oneLine(text).replace(/`/g, "ˋ").replace(/\|/g, "¦")}\``;
}
