import type { InspectResult } from "../../core/inspect";
import { LoupeError } from "../../core/errors";
import { traceChatTokens } from "../../core/chat/inspect-chat";
import { CHAT_OPTION, chatInput, messageColumn } from "../chat-input";
import { positiveInt, readInput, stringOption, withBackend, type Command } from "../command";
import { fixed, renderTable, visibleToken } from "../format";

/** `column`: an extra column after the token (the message each token of a chat belongs to). */
export function formatInspect(result: InspectResult, topK: number, column?: { title: string; values: readonly string[] }): string {
  const header = ["#", "token", ...(column ? [column.title] : []), "surprisal (bits)", "entropy (bits)", `top-${topK} next`, ...Array.from({ length: result.nLayers }, (_, l) => `|resid ${l}|`)];
  const rows = result.tokens.map((t, i) => [
    String(t.index),
    `"${visibleToken(t.text)}"`,
    ...(column ? [column.values[i]] : []),
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
  usage: `loupe inspect FILE|- [--model DIR] [--top-k N] [--lens all|L,L…] [--chat [--add-generation-prompt]] [--json]
    Each token with its surprisal (bits), entropy, top next-token predictions and the
    residual-stream norm after each block. --chat: FILE is a chat (JSON array or JSONL of
    {"role", "content"} messages), rendered with the model's chat template; each token is
    traced to its message (or marked as the template's). The JSON's per-block logit lens holds
    the last block, the blocks named by --lens (all: every block), and every block when that is
    cheap (a small model or a short text); null where it was left out.`,
  options: { "top-k": { type: "string" }, lens: { type: "string" }, ...CHAT_OPTION, "add-generation-prompt": { type: "boolean", default: false } },
  async run(args) {
    const { values, positionals, modelFolder, io } = args;
    const input = readInput(positionals[0], io);
    const chat = chatInput(values, input, positionals[0] ?? "-", modelFolder, () => (values["add-generation-prompt"] === true ? "generation-prompt" : "as-written"));
    const topK = positiveInt(values, "top-k", 5);
    const lens = lensOption(stringOption(values, "lens"));
    const result = await withBackend(args, (backend) => backend.request("inspect", { text: chat?.text ?? input, topK, ...lens }));
    if (!chat) {
      io.out(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatInspect(result, topK)}\n`);
    } else {
      io.out(values.json ? `${JSON.stringify(traceChatTokens(result, chat), null, 2)}\n` : `${formatInspect(result, topK, messageColumn(chat, result.tokens))}\n`);
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
