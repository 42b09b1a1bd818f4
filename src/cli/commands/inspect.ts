import type { InspectResult } from "../../core/inspect";
import { positiveInt, readInput, withBackend, type Command } from "../command";
import { fixed, renderTable, visibleToken } from "../format";

export function formatInspect(result: InspectResult, topK: number): string {
  const header = ["#", "token", "surprisal", "entropy", `top-${topK} next`, ...Array.from({ length: result.nLayers }, (_, l) => `|resid ${l}|`)];
  const rows = result.tokens.map((t) => [
    String(t.index),
    `"${visibleToken(t.text)}"`,
    fixed(t.surprisal),
    fixed(t.entropy),
    t.top.slice(0, topK).map((p) => `"${visibleToken(p.text)}" ${(p.prob * 100).toFixed(0)}%`).join(" "),
    ...t.residNorm.map((n) => fixed(n, 1)),
  ]);
  const known = result.tokens.filter((t) => t.surprisal !== null);
  const mean = known.reduce((s, t) => s + (t.surprisal ?? 0), 0) / Math.max(1, known.length);
  return `${renderTable(header, rows)}\n\n${result.tokens.length} tokens, mean surprisal ${mean.toFixed(2)} bits, ${result.elapsedMs.toFixed(0)} ms (${result.modelFolder})`;
}

export const inspectCommand: Command = {
  name: "inspect",
  usage: `loupe inspect FILE|- [--model DIR] [--top-k N] [--json]
    Each token with its surprisal (bits), entropy, top next-token predictions and the
    residual-stream norm after each block.`,
  options: { "top-k": { type: "string" } },
  async run(args) {
    const { values, positionals, io } = args;
    const text = readInput(positionals[0], io);
    const topK = positiveInt(values, "top-k", 5);
    const result = await withBackend(args, (backend) => backend.request("inspect", { text, topK }));
    io.out(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatInspect(result, topK)}\n`);
    return 0;
  },
};
