import type { InspectResult } from "../../core/inspect";
import { inspectText } from "../../core/inspect";
import { HookedModel } from "../../core/model/hooked-model";
import { LoupeError } from "../../core/errors";
import { loadOptions, positiveInt, readInput, stringOption, type Command } from "../command";
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
  usage: `loupe inspect FILE|- [--model DIR] [--top-k N] [--lens all|L,L…] [--json]
    Each token with its surprisal (bits), entropy, top next-token predictions and the
    residual-stream norm after each block. The JSON's per-block logit lens holds the last
    block, the blocks named by --lens (all: every block), and every block when that is cheap
    (a small model or a short text); null where it was left out.`,
  options: { "top-k": { type: "string" }, lens: { type: "string" } },
  async run({ values, positionals, modelFolder, io }) {
    const text = readInput(positionals[0], io);
    const topK = positiveInt(values, "top-k", 5);
    const model = await HookedModel.load(modelFolder, loadOptions(values));
    try {
      const result = await inspectText(model, text, { topK, ...lensOption(stringOption(values, "lens")) });
      io.out(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatInspect(result, topK)}\n`);
    } finally {
      await model.dispose();
    }
    return 0;
  },
};

/** --lens all: every block's lens; --lens 3,5: those blocks' (the last block's is always there). */
function lensOption(value: string | undefined): { lensLayers?: number[]; eagerLensLogits?: number } {
  if (value === undefined) return {};
  if (value === "all") return { eagerLensLogits: Infinity };
  const layers = value.split(",").map(Number);
  if (layers.some((l) => !Number.isInteger(l) || l < 0)) throw new LoupeError("bad-argument", `--lens must be "all" or block numbers such as 3,5 (got ${value}).`);
  return { lensLayers: layers };
}
