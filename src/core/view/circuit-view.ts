/**
 * How a circuit trace shows in the editor: a colour strength per token by its influence on the
 * target (circuit-tracer's influence of the token's embedding node), and hover text with the
 * strongest paths. Pure.
 */
import type { CircuitToken, CircuitTrace } from "../requests/circuits";
import { transcoderNeuronpediaUrl } from "../sae/releases/neuronpedia";
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
    ...shownPaths.map((p) => `- ${p.score.toFixed(4)} ${codeSpan(p.nodes.join(" → "))}${neuronpediaLinks(trace, p.nodes)}`),
  ].join("\n");
}

/** A path's features as links to their Neuronpedia pages, where the set is hosted there. */
function neuronpediaLinks(trace: CircuitTrace, nodes: readonly string[]): string {
  const links = nodes.flatMap((label) => {
    const feature = pathFeature(label);
    const url = feature && transcoderNeuronpediaUrl(trace.neuronpedia, feature.layer, feature.feature);
    return url ? [`[L${feature.layer}/${feature.feature}](${url})`] : [];
  });
  return links.length ? ` (Neuronpedia: ${links.join(", ")})` : "";
}

/** The feature a path node's label names: summary.ts's nodeLabel writes features as "L{layer}/{feature} at …". */
export function pathFeature(label: string): { layer: number; feature: number } | undefined {
  const m = /^L(\d+)\/(\d+) at /.exec(label);
  return m ? { layer: Number(m[1]), feature: Number(m[2]) } : undefined;
}
