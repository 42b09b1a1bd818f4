import { continuationEnding } from "../../core/chat/chat-layout";
import { chatReasoningCue, faithfulnessInChat, messageView } from "../../core/chat/chat-results";
import { LoupeError } from "../../core/errors";
import type { FaithfulnessReport, FaithfulnessWithCircuit } from "../../core/faithfulness";
import { CHAT_OPTION, CHAT_USAGE_CONTINUED, chatInput, withMessages } from "../chat-input";
import { positiveInt, readInput, stringOption, withBackend, type Command } from "../command";
import { fixed, renderTable, visibleToken } from "../format";

const pct = (p: number | null) => (p === null ? "-" : `${(p * 100).toFixed(1)}%`);

export function formatFaithfulness(r: FaithfulnessWithCircuit): string {
  const circuit = r.circuit;
  const rows = r.steps.map((s, i) => [
    String(s.index + 1),
    s.loadBearing ? "load-bearing" : "decorative",
    fixed(s.importance),
    pct(s.probAfter),
    s.removed ? `${fixed(s.removed.logprobDelta)}${s.removed.answerChanged ? ` -> "${visibleToken(s.removed.writesInstead ?? "")}"` : ""}` : "-",
    s.mistake ? `${s.mistake.followed ? "follows" : "ignores"} (${s.mistake.answer === null ? "no answer" : `"${visibleToken(s.mistake.answer.trim())}"`})` : "-",
    ...(circuit ? [pct(circuit.steps[i].share)] : []),
    `"${visibleToken(s.text)}"`,
  ]);
  const sc = r.scores;
  const lines = [
    renderTable(["step", "role", "importance", "p(answer) after", "removed: Δlog p", "mistake here", ...(circuit ? ["circuit share"] : []), "text"], rows),
    "",
    `answer: "${visibleToken(r.answer.text.trim())}" p=${pct(r.answer.prob)}${r.answer.written !== null ? ` (written: "${visibleToken(r.answer.written)}")` : ""}; without CoT p=${pct(r.noCotProb)}; with ${r.fillerTokens} filler tokens p=${pct(r.fillerProb)}`,
    `early answering ${fixed(sc.earlyAnswering)} · step ablation ${fixed(sc.stepAblation)} · adding mistakes ${fixed(sc.mistakes)} · filler ${fixed(sc.filler)}`,
    `overall ${fixed(sc.overall)}: ${VERDICT[r.verdict]}`,
  ];
  if (r.hint) {
    const h = r.hint;
    lines.push(
      `hint "${h.hint.text}": answer (${h.choice}) with it, (${h.choiceWithoutHint}) without; follows it to ${h.followsMovedHint}/${h.movedPlacements} other options; ` +
        (h.unverbalised ? "UNVERBALISED influence: the CoT never mentions it" : h.influential ? `influential, and the CoT mentions it (${h.mentionedBy.join(", ")})` : "no influence"),
    );
  }
  if (circuit) {
    lines.push(
      `through the circuit (${circuit.transcoders}, target "${visibleToken(circuit.target)}" p=${pct(circuit.probability)}, ${circuit.featureNodes} feature nodes): ` +
        `reasoning ${pct(circuit.reasoning)} of the answer's influence · question ${pct(circuit.question)} · marker ${pct(circuit.marker)} · errors ${pct(circuit.errors)}`,
    );
  }
  if (r.generated !== null) lines.push(`reasoning written by the model: "${visibleToken(r.generated)}"`);
  for (const note of r.notes) lines.push(`note: ${note}`);
  lines.push(`${r.forwardPasses} forward passes (${r.batchedRows} prompt variants), ${r.elapsedMs.toFixed(0)} ms`);
  return lines.join("\n");
}

const VERDICT: Record<FaithfulnessReport["verdict"], string> = {
  "load-bearing": "the answer rests on the reasoning",
  partly: "the answer rests partly on the reasoning",
  decorative: "the answer does not depend on the reasoning",
  unknown: "not enough could be scored",
};

export const faithfulnessCommand: Command = {
  name: "faithfulness",
  usage: `loupe faithfulness FILE|- [--model DIR] [--marker TEXT] [--generate] [--track model|written] [--no-mistakes] [--max-tokens N] [--graph [--transcoders DIR]] [--chat] [--json]
    Does the answer depend on the chain of thought? Early answering, step ablation, adding
    mistakes, filler tokens and a hint audit, per step and overall. With --graph, also the share
    of the answer's influence in its attribution graph that enters through each step's tokens
    (transcoders: DIR, default the model's own PLT set). --max-tokens caps the tokens "adding
    mistakes" writes after each corrupted step (default: the rest of the reasoning and the answer). Exit code 1 when the answer does not
    depend on the reasoning or follows a hint the reasoning never mentions.
    ${CHAT_USAGE_CONTINUED} The chain of thought is the last assistant message.`,
  options: {
    marker: { type: "string" },
    generate: { type: "boolean", default: false },
    track: { type: "string" },
    "no-mistakes": { type: "boolean", default: false },
    "max-tokens": { type: "string" },
    graph: { type: "boolean", default: false },
    transcoders: { type: "string" },
    ...CHAT_OPTION,
  },
  async run(args) {
    const { values, positionals, modelFolder, io } = args;
    const input = readInput(positionals[0], io);
    const chat = chatInput(values, input, positionals[0] ?? "-", modelFolder, continuationEnding);
    const track = stringOption(values, "track") ?? "model";
    if (track !== "model" && track !== "written") throw new LoupeError("bad-argument", `--track must be "model" or "written" (got ${track}).`);
    const transcoders = stringOption(values, "transcoders");
    if (transcoders !== undefined && values.graph !== true) throw new LoupeError("bad-argument", "--transcoders names the set for --graph: add --graph to trace the answer through the circuit.");
    const answerMarker = stringOption(values, "marker");
    const generate = values.generate === true;
    const params = {
      text: chat?.text ?? input,
      answerMarker,
      ...(chat ? { reasoningCues: [chatReasoningCue(chat, { answerMarker, generate })] } : {}),
      generate,
      track,
      mistakes: values["no-mistakes"] !== true,
      ...(values["max-tokens"] !== undefined ? { maxNewTokens: positiveInt(values, "max-tokens", 0) } : {}),
      ...(values.graph === true ? { circuit: "required" as const, transcoders } : {}),
    } as const;
    const report = await withBackend(args, (backend) => backend.request("faithfulness", params));
    const json = chat ? withMessages(chat, faithfulnessInChat(report, messageView(chat))) : report;
    io.out(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${formatFaithfulness(report)}\n`);
    return report.verdict === "decorative" || report.hint?.unverbalised ? 1 : 0;
  },
};
