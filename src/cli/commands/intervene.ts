import { buildReplacement, interveneOnFeatures, selectTargets, traceEncoding, type FeatureEdit } from "../../core/circuits";
import { attributeReplacementAsync, pruneGraph } from "../../core/circuits";
import { LoupeError } from "../../core/errors";
import { loadModel, positiveInt, readInput, stringList, stringOption, type Command } from "../command";
import { fixed, visibleToken } from "../format";
import { withoutFinalNewline } from "./patch";
import { targetSpecOf, transcodersOption } from "./trace";

/** "L/F@P" or "L/F@P=V". */
function parseEdit(spec: string, kind: FeatureEdit["kind"]): FeatureEdit {
  const m = /^(\d+)\/(\d+)@(\d+)(?:=(-?[\d.eE+-]+))?$/.exec(spec);
  if (!m || (kind !== "zero") !== (m[4] !== undefined)) {
    throw new LoupeError("bad-argument", `--${kind} ${spec}: write LAYER/FEATURE@POSITION${kind === "zero" ? "" : "=VALUE"}, e.g. 1/42@7${kind === "zero" ? "" : "=2"}.`);
  }
  return { layer: Number(m[1]), feature: Number(m[2]), pos: Number(m[3]), kind, value: m[4] === undefined ? undefined : Number(m[4]) };
}

export const interveneCommand: Command = {
  name: "intervene",
  usage: `loupe intervene PROMPT_FILE|- [--transcoders DIR|ORG/NAME] [--zero L/F@P]... [--scale L/F@P=X]... [--set L/F@P=V]... [--top N] [--answer TOK [--contrast TOK]] [--model DIR] [--json]
    Edit transcoder features (layer L, feature F, position P) and compare the attribution graph's
    predicted change of the target with the model's: constrained (attention, norms and other
    features frozen: direct effects only) and free (the real model recomputes everything after the
    edit). --top N zeroes the N most influential feature nodes of the pruned graph.`,
  options: {
    transcoders: { type: "string" },
    zero: { type: "string", multiple: true },
    scale: { type: "string", multiple: true },
    set: { type: "string", multiple: true },
    top: { type: "string" },
    answer: { type: "string" },
    contrast: { type: "string" },
  },
  async run({ values, positionals, modelFolder, io }) {
    const prompt = withoutFinalNewline(readInput(positionals[0], io, "prompt file"));
    const transcoders = transcodersOption(values, modelFolder);
    const model = await loadModel(modelFolder, values);
    try {
      const text = (id: number) => model.tokenizer.decode([id]);
      const r = await buildReplacement(model, transcoders, traceEncoding(model, prompt).ids, io.signal);
      const spec = targetSpecOf(values, model);
      const target = selectTargets(spec, r.frozen.weights, r.frozen.lastLogits, text)[0];
      const edits: FeatureEdit[] = [
        ...(stringList(values, "zero") ?? []).map((s) => parseEdit(s, "zero")),
        ...(stringList(values, "scale") ?? []).map((s) => parseEdit(s, "scale")),
        ...(stringList(values, "set") ?? []).map((s) => parseEdit(s, "set")),
      ];
      if (stringOption(values, "top") !== undefined) {
        const n = positiveInt(values, "top", 10);
        const graph = await attributeReplacementAsync(r, { targets: spec, signal: io.signal }, text);
        const pruned = pruneGraph(graph.adjacency, graph.layout, graph.targets.map((t) => t.probability));
        const top = graph.features.map((f, i) => ({ f, inf: pruned.nodeInfluence[i] })).sort((a, b) => b.inf - a.inf).slice(0, n);
        edits.push(...top.map(({ f }) => ({ layer: f.layer, pos: f.pos, feature: f.feature, kind: "zero" as const })));
      }
      const result = await interveneOnFeatures(model, r, target, edits, { signal: io.signal });
      if (values.json === true) {
        io.out(`${JSON.stringify({ edits, ...result }, null, 2)}\n`);
      } else {
        io.out(
          [
            `target "${visibleToken(result.target)}": ${fixed(result.baseline, 3)} on the prompt; ${edits.length} feature edits`,
            `predicted change (graph)       ${fixed(result.predicted, 4)}`,
            `constrained change (frozen)    ${fixed(result.constrained, 4)}`,
            `free change (the real model)   ${result.free === undefined ? "- (a direction target has no logit to read)" : fixed(result.free, 4)}`,
          ].join("\n") + "\n",
        );
      }
    } finally {
      await model.dispose();
    }
    return 0;
  },
};
