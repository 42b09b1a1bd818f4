/** The hover for one inspected token, as Markdown. Pure string building, shared by the editor and tests. */
import type { LayerLens, TokenReport } from "../inspect";
import { codeSpan } from "./markdown";

/** Show whitespace and control characters, and keep Markdown from interpreting the token. */
export function displayToken(text: string): string {
  const visible = JSON.stringify(text).slice(1, -1).replace(/ /g, "·");
  return visible.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}

function percent(p: number | null): string {
  return p === null ? "–" : `${(p * 100).toFixed(p < 0.01 ? 2 : 1)}%`;
}

/**
 * `table`: the token's per-block lens when its inspection left blocks out (lensTable computes them);
 * blocks still missing show dashes.
 */
export function tokenHoverMarkdown(token: TokenReport, table: readonly (LayerLens | null)[] = token.lens): string {
  const lines: string[] = [];
  lines.push(`**Loupe** token ${token.index}: ${codeSpan(JSON.stringify(token.text))} (id ${token.id})`);
  lines.push("");
  lines.push(`surprisal **${token.surprisal === null ? "–" : `${token.surprisal.toFixed(2)} bits`}** · next-token entropy ${token.entropy.toFixed(2)} bits`);
  lines.push("");
  lines.push("| next token | prob |");
  lines.push("|---|---:|");
  for (const p of token.top.slice(0, 5)) lines.push(`| ${displayToken(p.text)} | ${percent(p.prob)} |`);
  lines.push("");
  lines.push("| block | lens top | p(top) | p(actual next) | agreement | ‖resid‖ |");
  lines.push("|---:|---|---:|---:|---:|---:|");
  table.forEach((layer, L) => {
    const cells = layer ? [displayToken(layer.top.text), percent(layer.top.prob), percent(layer.nextTokenProb), percent(layer.agreement)] : ["–", "–", "–", "–"];
    lines.push(`| ${L} | ${cells.join(" | ")} | ${token.residNorm[L].toFixed(1)} |`);
  });
  return lines.join("\n");
}
