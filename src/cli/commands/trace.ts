import * as fs from "node:fs";
import * as path from "node:path";
import { loadTranscoders, logitNode, strongestPaths, targetToken, toCompactGraphFile, toGraphFile, trace, type AttributionGraph, type TargetSpec, type Trace } from "../../core/circuits";
import { LoupeError } from "../../core/errors";
import { HookedModel } from "../../core/model/hooked-model";
import { finiteNumber, loadOptions, positiveInt, readInput, stringOption, type Command, type ParsedValues } from "../command";
import { fixed, visibleToken } from "../format";
import { withoutFinalNewline } from "./patch";

/** The bundled model's own transcoders, when --transcoders is not given. */
export function defaultTranscoders(modelFolder: string): string {
  const dir = path.join(modelFolder, "transcoders", "plt");
  if (!fs.existsSync(dir)) throw new LoupeError("bad-argument", `--transcoders DIR is required: ${modelFolder} ships no transcoders (train a set with \`loupe transcoder train\`).`);
  return dir;
}

function nodeLabel(graph: AttributionGraph, i: number, text: (id: number) => string): string {
  const { nFeatures, nErrors, nTokens } = graph.layout;
  const T = nTokens;
  const tok = (pos: number) => `"${visibleToken(text(graph.tokens[pos]))}"@${pos}`;
  if (i < nFeatures) {
    const f = graph.features[i];
    return `L${f.layer}/${f.feature} at ${tok(f.pos)}`;
  }
  if (i < nFeatures + nErrors) return `error L${Math.floor((i - nFeatures) / T)} at ${tok((i - nFeatures) % T)}`;
  if (i < nFeatures + nErrors + nTokens) return tok(i - nFeatures - nErrors);
  return `logit "${visibleToken(graph.targets[i - nFeatures - nErrors - nTokens].label)}"`;
}

function summary(t: Trace, text: (id: number) => string) {
  const { graph, pruned } = t;
  const keptFeatures = pruned.nodeMask.subarray(0, graph.layout.nFeatures).reduce((a, b) => a + b, 0);
  const paths = strongestPaths(graph, pruned, logitNode(graph.layout, 0)).map((p) => ({ score: p.score, nodes: p.nodes.map((i) => nodeLabel(graph, i, text)) }));
  return {
    targets: graph.targets.map((x) => ({ label: x.label, token: x.token ?? null, probability: x.probability })),
    activeFeatures: graph.activeFeatureCount,
    featureNodes: graph.layout.nFeatures,
    keptFeatureNodes: keptFeatures,
    keptEdges: pruned.edgeMask.reduce((a, b) => a + b, 0),
    replacementScore: t.scores.replacement,
    completenessScore: t.scores.completeness,
    prunedReplacementScore: t.prunedScores.replacement,
    prunedCompletenessScore: t.prunedScores.completeness,
    elapsedMs: t.elapsedMs,
    paths,
  };
}

export function formatTrace(s: ReturnType<typeof summary>, out?: string): string {
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
  const text = (id: number) => model.tokenizer.decode([id]);
  const encode = (s: string) => model.tokenizer.encode(s).ids;
  const answer = stringOption(values, "answer");
  const contrast = stringOption(values, "contrast");
  if (contrast !== undefined && answer === undefined) throw new LoupeError("bad-argument", "--contrast needs --answer: the target is the logit difference answer - contrast.");
  if (answer === undefined) return { kind: "top" };
  const token = targetToken(encode, text, answer, "answer");
  return contrast === undefined ? { kind: "token", token } : { kind: "difference", token, contrast: targetToken(encode, text, contrast, "contrast") };
}

export const traceCommand: Command = {
  name: "trace",
  usage: `loupe trace PROMPT_FILE|- [--transcoders DIR] [--out GRAPH.json [--compact]] [--answer TOK [--contrast TOK]] [--node-threshold 0.8] [--edge-threshold 0.98] [--max-feature-nodes N] [--max-memory-mb 4096] [--model DIR] [--json]
    An attribution graph (circuit-tracer's semantics) of the prompt's next token through a
    transcoder set (circuit-tracer's folder layout; default: the bundled model's PLT set): the
    top tokens to probability 0.95 (at most 10), or --answer, or the logit difference --answer -
    --contrast. --out writes circuit-tracer's graph JSON (its frontend and Neuronpedia read it;
    --compact: Loupe's columnar form); without it, prints the strongest paths from tokens to the target.`,
  options: {
    transcoders: { type: "string" },
    out: { type: "string" },
    compact: { type: "boolean", default: false },
    answer: { type: "string" },
    contrast: { type: "string" },
    "node-threshold": { type: "string" },
    "edge-threshold": { type: "string" },
    "max-feature-nodes": { type: "string" },
    "max-memory-mb": { type: "string" },
  },
  async run({ values, positionals, modelFolder, io }) {
    const prompt = withoutFinalNewline(readInput(positionals[0], io, "prompt file"));
    const nodeThreshold = finiteNumber(values, "node-threshold", 0.8);
    const edgeThreshold = finiteNumber(values, "edge-threshold", 0.98);
    for (const [name, v] of [["node-threshold", nodeThreshold], ["edge-threshold", edgeThreshold]] as const) {
      if (!(v > 0 && v <= 1)) throw new LoupeError("bad-argument", `--${name} must be in (0, 1] (got ${v}).`);
    }
    const transcoders = loadTranscoders(stringOption(values, "transcoders") ?? defaultTranscoders(modelFolder));
    const model = await HookedModel.load(modelFolder, loadOptions(values));
    try {
      const text = (id: number) => model.tokenizer.decode([id]);
      const targets = targetSpecOf(values, model);
      const tokens = model.toTokens(prompt);
      const result = await trace(model, transcoders, tokens, {
        targets,
        nodeThreshold,
        edgeThreshold,
        maxFeatureNodes: positiveInt(values, "max-feature-nodes", 7500),
        maxMemoryBytes: positiveInt(values, "max-memory-mb", 4096) * 2 ** 20,
        signal: io.signal,
      });
      const s = summary(result, text);
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
      io.out(values.json ? `${JSON.stringify(s, null, 2)}\n` : `${formatTrace(s, out)}\n`);
    } finally {
      await model.dispose();
    }
    return 0;
  },
};
