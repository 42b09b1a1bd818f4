import type { InspectResult } from "../../core/inspect";
import { inspectText } from "../../core/inspect";
import { HookedModel } from "../../core/model/hooked-model";
import { loadOptions, positiveInt, readInput, type Command } from "../command";
import { fixed, renderTable, visibleToken } from "../format";

export function formatInspect(result: InspectResult, topK: number): string {
  const header = ["#", "token", "surprisal (bits)", "entropy (bits)", `top-${topK} next`, ...Array.from({ length: result.nLayers }, (_, l) => `|resid ${l}|`)];
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
  const notes = [
    "surprisal: -log2 of the probability the model gave this token before seeing it; entropy: of its prediction for the next token; |resid L|: residual-stream norm after block L.",
    // Without a leading <s>, the first token is read, not predicted.
    ...(result.tokens[0]?.surprisal === null ? ['"-" at token 0: the first token has no surprisal, since nothing before it predicts it (the mean leaves it out).'] : []),
  ];
  return `${renderTable(header, rows)}\n\n${notes.join("\n")}\n${result.tokens.length} tokens, mean surprisal ${mean.toFixed(2)} bits, ${result.elapsedMs.toFixed(0)} ms (${result.modelFolder})`;
}

export const inspectCommand: Command = {
  name: "inspect",
  usage: `loupe inspect FILE|- [--model DIR] [--top-k N] [--json]
    Each token with its surprisal (bits), entropy, top next-token predictions and the
    residual-stream norm after each block.`,
  options: { "top-k": { type: "string" } },
  async run({ values, positionals, modelFolder, io }) {
    const text = readInput(positionals[0], io);
    const topK = positiveInt(values, "top-k", 5);
    const model = await HookedModel.load(modelFolder, loadOptions(values));
    try {
      const result = await inspectText(model, text, { topK });
      io.out(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatInspect(result, topK)}\n`);
    } finally {
      await model.dispose();
    }
    return 0;
  },
};
