/**
 * How a circuit trace shows in the editor: a colour strength per token by its influence on the
 * target (circuit-tracer's influence of the token's embedding node), and hover text with the
 * strongest paths. Pure.
 */
import type { CircuitToken, CircuitTrace } from "../requests/circuits";
import { codeSpan } from "./faithfulness-view";
import { LEVELS } from "./lenses";

/** Level 1..LEVELS for tokens with influence, relative to the most influential; none for the rest. */
export function circuitLevels(trace: CircuitTrace): { index: number; level: number }[] {
  const max = Math.max(0, ...trace.tokens.map((t) => t.influence));
  if (max <= 0) return [];
  return trace.tokens.flatMap((t, index) => (t.influence > 0 && t.end > t.start ? [{ index, level: Math.max(1, Math.ceil((t.influence / max) * LEVELS)) }] : []));
}

export function circuitTargetText(trace: CircuitTrace): string {
  return trace.targets.map((t) => `${codeSpan(t.label)} (p = ${t.probability.toFixed(3)})`).join(", ");
}

export function circuitHoverMarkdown(trace: CircuitTrace, index: number): string {
  const token: CircuitToken = trace.tokens[index];
  const total = trace.tokens.reduce((sum, t) => sum + t.influence, 0);
  const share = total > 0 ? ` (${((token.influence / total) * 100).toFixed(0)}% of the prompt tokens' influence)` : "";
  const fromHere = trace.paths.filter((p) => p.fromToken === index);
  const shownPaths = fromHere.length ? fromHere : trace.paths;
  return [
    `**Circuit influence on ${circuitTargetText(trace)}**`,
    "",
    `Token ${codeSpan(token.text)}: influence ${token.influence.toFixed(4)}${share}`,
    "",
    `Replacement score ${trace.replacementScore.toFixed(3)}, completeness ${trace.completenessScore.toFixed(3)}`,
    "",
    fromHere.length ? "Strongest paths from this token:" : "Strongest paths (none from this token):",
    "",
    ...shownPaths.map((p) => `- ${p.score.toFixed(4)} ${codeSpan(p.nodes.join(" → "))}`),
  ].join("\n");
}
