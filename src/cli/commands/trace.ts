import * as fs from "node:fs";
import * as path from "node:path";
import { bundledTranscoders, loadTranscoders, summariseTrace, targetSpecFor, toCompactGraphFile, toGraphFile, trace, traceEncoding, type TargetSpec, type TraceSummary, type TranscoderSet } from "../../core/circuits";
import { continuationEnding } from "../../core/chat/chat-layout";
import { LoupeError } from "../../core/errors";
import { circuitTokens } from "../../core/requests/circuits";
import type { HookedModel } from "../../core/model/hooked-model";
import { CHAT_OPTION, CHAT_USAGE_CONTINUED, chatInput, withMessages } from "../chat-input";
import { finiteNumber, loadModel, positiveInt, readInput, stringOption, type Command, type ParsedValues } from "../command";
import { fixed, visibleToken } from "../format";
import { withoutFinalNewline } from "./patch";

/** --transcoders, or the model folder's own set (the bundled model ships one). */
export function transcodersOption(values: ParsedValues, modelFolder: string): TranscoderSet {
  return loadTranscoders(stringOption(values, "transcoders") ?? bundledTranscoders(modelFolder));
}

export function formatTrace(s: TraceSummary, out?: string): string {
  return [
    `target ${s.targets.map((t) => `"${visibleToken(t.label)}" (p=${fixed(t.probability, 3)})`).join(", ")}`,
    `${s.activeFeatures} active features, ${s.featureNodes} feature nodes; pruned to ${s.keptFeatureNodes} features and ${s.keptEdges} edges`,
    `replacement score ${fixed(s.replacementScore, 3)}, completeness ${fixed(s.completenessScore, 3)} (pruned graph: ${fixed(s.prunedReplacementScore, 3)}, ${fixed(s.prunedCompletenessScore, 3)})`,
    ...(out ? [`graph written to ${out}`] : ["", `strongest paths to ${s.targets[0] ? `"${visibleToken(s.targets[0].label)}"` : "the target"} (score = product of each edge's share of its target's input):`, ...s.paths.map((p) => `  ${fixed(p.score, 4)}  ${p.nodes.join(" -> ")}`)]),
    `${s.elapsedMs.toFixed(0)} ms`,
  ].join("\n");
}

/** --answer / --contrast as a target: the top tokens without them. */
export function targetSpecOf(values: ParsedValues, model: HookedModel): TargetSpec {
  return targetSpecFor(model, stringOption(values, "answer"), stringOption(values, "contrast"));
}

export const traceCommand: Command = {
  name: "trace",
  usage: `loupe trace PROMPT_FILE|- [--transcoders DIR|ORG/NAME] [--out GRAPH.json [--compact]] [--answer TOK [--contrast TOK]] [--node-threshold 0.8] [--edge-threshold 0.98] [--max-feature-nodes N] [--max-memory-mb 4096] [--chat] [--model DIR] [--json]
    An attribution graph (circuit-tracer's semantics) of the prompt's next token through a
    transcoder set (circuit-tracer's folder layout; default: the bundled model's PLT set): the
    top tokens to probability 0.95 (at most 10), or --answer, or the logit difference --answer -
    --contrast. --out writes circuit-tracer's graph JSON (its frontend and Neuronpedia read it;
    --compact: Loupe's columnar form); without it, prints the strongest paths from tokens to the target.
    ${CHAT_USAGE_CONTINUED} With --chat, --json lists each token's influence.`,
  options: {
    transcoders: { type: "string" },
    out: { type: "string" },
    compact: { type: "boolean", default: false },
    answer: { type: "string" },
    contrast: { type: "string" },
    "node-threshold": { type: "string" },
    "edge-threshold": { type: "string" },
    "max-feature-nodes": { type: "string" },
    ...CHAT_OPTION,
  },
  async run({ values, positionals, modelFolder, io }) {
    const input = readInput(positionals[0], io, "prompt file");
    const chat = chatInput(values, input, positionals[0] ?? "-", modelFolder, continuationEnding);
    const prompt = chat?.text ?? withoutFinalNewline(input);
    const nodeThreshold = finiteNumber(values, "node-threshold", 0.8);
    const edgeThreshold = finiteNumber(values, "edge-threshold", 0.98);
    for (const [name, v] of [["node-threshold", nodeThreshold], ["edge-threshold", edgeThreshold]] as const) {
      if (!(v > 0 && v <= 1)) throw new LoupeError("bad-argument", `--${name} must be in (0, 1] (got ${v}).`);
    }
    const transcoders = transcodersOption(values, modelFolder);
    const model = await loadModel(modelFolder, values);
    try {
      const text = (id: number) => model.tokenizer.decode([id]);
      const targets = targetSpecOf(values, model);
      const encoding = traceEncoding(model, prompt);
      const result = await trace(model, transcoders, encoding.ids, {
        targets,
        nodeThreshold,
        edgeThreshold,
        maxFeatureNodes: positiveInt(values, "max-feature-nodes", 7500),
        maxMemoryBytes: positiveInt(values, "max-memory-mb", 4096) * 2 ** 20,
        signal: io.signal,
      });
      const s = summariseTrace(result, text);
      const out = stringOption(values, "out");
      if (out) {
        const file = toGraphFile(result.graph, result.pruned, {
          slug: path.basename(out).replace(/\.json$/, ""),
          prompt,
          tokenText: text,
          dVocab: model.cfg.dVocab,
          nodeThreshold,
          info: { generator: "loupe trace", model: path.basename(path.resolve(modelFolder)), transcoders: transcoders.source, transcoder_kind: transcoders.kind, replacement_score: s.replacementScore, completeness_score: s.completenessScore },
        });
        fs.writeFileSync(out, JSON.stringify(values.compact ? toCompactGraphFile(file) : file));
      }
      // A chat's tokens, each with its influence and its message (or the template), as the editor's lens has them.
      const json = chat
        ? withMessages(chat, { ...s, tokens: circuitTokens(encoding, text, s.tokenInfluence).map(chat.withPlace) })
        : s;
      io.out(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${formatTrace(s, out)}\n`);
    } finally {
      await model.dispose();
    }
    return 0;
  },
};
