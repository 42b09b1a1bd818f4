import { continuationEnding } from "../../core/chat/chat-layout";
import { attributionInChat, messageView } from "../../core/chat/chat-results";
import { LoupeError } from "../../core/errors";
import type { AblationMethod, AttributionResult } from "../../core/patching/attribution";
import { DEFAULT_BATCH_ROWS } from "../../core/patching/batched-runs";
import { CHAT_OPTION, CHAT_USAGE_CONTINUED, chatInput, messageColumn, withMessages } from "../chat-input";
import { positiveInt, readInput, stringOption, withBackend, type Command } from "../command";
import { fixed, renderTable, visibleToken } from "../format";
import { withoutFinalNewline } from "./patch";

const quoted = (text: string) => `"${visibleToken(text)}"`;

/** A bar as long as |value| relative to the largest, so the strong tokens stand out. */
function bar(value: number | null, scale: number, width = 20): string {
  if (value === null || !Number.isFinite(value) || scale <= 0) return "";
  const n = Math.round((Math.abs(value) / scale) * width);
  return (value >= 0 ? "+" : "-").repeat(n);
}

/** `column`: an extra column after the token (the message each token of a chat belongs to). */
export function formatAttribution(result: AttributionResult, column?: { title: string; values: readonly string[] }): string {
  const how =
    result.method === "mask"
      ? "mask: no later token may attend to the ablated one"
      : `embed: its embedding replaced by ${result.baseline === "zero" || result.baseline === null ? "zeros" : quoted(result.baseline.text)}`;
  const scale = Math.max(0, ...result.tokens.map((t) => Math.abs(t.attribution ?? 0)));
  const tokenRows = result.tokens.map((t, i) => [String(t.index), quoted(t.text), ...(column ? [column.values[i]] : []), t.attribution === null ? "-" : fixed(t.attribution, 3), bar(t.attribution, scale)]);
  const lineScale = Math.max(0, ...result.lines.map((l) => Math.abs(l.attribution ?? 0)));
  const lineRows = result.lines.map((l) => [String(l.index + 1), l.attribution === null ? "-" : fixed(l.attribution, 3), bar(l.attribution, lineScale, 10), l.text.length > 60 ? `${l.text.slice(0, 57)}...` : l.text]);
  const words = result.words
    .filter((w) => w.attribution !== null)
    .sort((a, b) => (b.attribution ?? 0) - (a.attribution ?? 0))
    .slice(0, 5)
    .map((w) => `${quoted(w.text)} ${fixed(w.attribution, 3)}`);
  const unmeasured = result.tokens.some((t) => t.attribution === null) ? "\n- : the answer is read at this token, so masking cannot remove it (--method embed measures it)" : "";
  return [
    `answer ${quoted(result.answer.text)}: log p = ${fixed(result.answer.logprob, 3)}${result.answer.isTop ? " (the model's top prediction)" : ""}`,
    ...(result.contrast ? [`contrast ${quoted(result.contrast.text)}: logit difference ${quoted(result.answer.text)} - ${quoted(result.contrast.text)} = ${fixed(result.contrast.logitDiff, 3)}`] : []),
    result.contrast
      ? `attribution = logit difference - logit difference with the token ablated, nats; > 0 means the token makes the model prefer the answer to the contrast. Ablation by ${how}.`
      : `attribution = log p(answer) - log p(answer | token ablated), nats; > 0 means the token supports the answer. Ablation by ${how}.`,
    "",
    renderTable(["#", "token", ...(column ? [column.title] : []), "attribution", ""], tokenRows) + unmeasured,
    "",
    renderTable(["line", "attribution", "", "text"], lineRows),
    words.length ? `\nstrongest words: ${words.join(", ")}` : "",
    `\n${result.calls} onnxruntime calls, ${result.elapsedMs.toFixed(0)} ms`,
  ].join("\n");
}

export const attributeCommand: Command = {
  name: "attribute",
  usage: `loupe attribute FILE|- [--answer TEXT [--contrast TEXT]] [--method mask|embed] [--baseline TOKEN|zero] [--batch-size N] [--chat] [--model DIR] [--json]
    How much each token, word and line of the text raises the log-prob of the answer that follows
    it (default: the model's top next token), by ablating them in batched runs: embed (default)
    replaces its embedding (--baseline zero, the default, or a token); mask hides a token from
    every later one (it cannot measure the last token). --contrast attributes the logit
    difference answer - contrast instead (at their first differing tokens), as for IOI (" Mia" vs
    " Leo"). A single final newline in FILE is ignored.
    ${CHAT_USAGE_CONTINUED}`,
  options: { answer: { type: "string" }, contrast: { type: "string" }, method: { type: "string" }, baseline: { type: "string" }, "batch-size": { type: "string" }, ...CHAT_OPTION },
  async run(args) {
    const { values, positionals, modelFolder, io } = args;
    const input = readInput(positionals[0], io);
    const chat = chatInput(values, input, positionals[0] ?? "-", modelFolder, continuationEnding);
    // The rendered chat is the prompt exactly as the template wrote it.
    const text = chat?.text ?? withoutFinalNewline(input);
    const method = stringOption(values, "method") ?? "embed";
    if (method !== "mask" && method !== "embed") throw new LoupeError("bad-argument", `--method must be mask or embed (got ${method}).`);
    const baselineText = stringOption(values, "baseline");
    if (baselineText !== undefined && method !== "embed") throw new LoupeError("bad-argument", "--baseline applies to --method embed only.");
    const batchSize = positiveInt(values, "batch-size", DEFAULT_BATCH_ROWS);
    const params = { text, answer: stringOption(values, "answer"), contrast: stringOption(values, "contrast"), method: method as AblationMethod, baseline: baselineText, batchSize };
    const result = await withBackend(args, (backend) => backend.request("attribute", params));
    const json = chat ? withMessages(chat, attributionInChat(result, messageView(chat))) : result;
    io.out(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${formatAttribution(result, chat && messageColumn(chat, result.tokens))}\n`);
    return 0;
  },
};
