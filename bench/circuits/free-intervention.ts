/**
 * Why zeroing a graph's top-10 feature nodes moves the real model less like the graph predicts
 * since prompts are traced behind the BOS (bench:circuits (c), Pearson(predicted, free)): the free
 * intervention run four ways, on the same held-out IOI items traced with and without the leading
 * BOS, Pearson of each against the graph's prediction (direct effects, as bench:circuits) and
 * against the change through every path of the graph (the linearised replacement model).
 *
 *   fixed deltas     Loupe's `interveneOnFeatures`: each edited feature's decoder output changes by
 *                    (new - clean activation) x decoder row, whatever happens upstream
 *   recomputed       circuit-tracer's feature_intervention: an edited feature's change is taken
 *                    against its activation in the edited run (layers in order), so a feature set
 *                    to 0 is 0 even when an earlier edit moved its input
 *   live / frozen    attention patterns recomputed, or held at the prompt's (circuit-tracer's
 *                    default, freeze_attention=True); norms and MLPs are live in all four
 *   MLPs frozen      every MLP output held at the prompt's plus the edits' decoder change: what is
 *                    left of the real model's response is attention and the norms
 *   scaled by 0.9    a tenth of the edit, the change multiplied by 10: whether the graph's linear
 *                    prediction holds for small edits (then what zeroing adds is the model's
 *                    nonlinearity over a large edit, not an error of the graph)
 *
 *   npx tsx bench/circuits/free-intervention.ts [--items 40] [--seed 5] [--plt DIR] [--clt DIR]
 */
import { parseArgs } from "node:util";
import { attributeReplacement, buildReplacement, nodeTotal, type AttributionGraph, decoderLayers, decoderRow, encode, interveneOnFeatures, pruneGraph, transcoderInput, traceEncoding, loadTranscoders, type ActiveFeature, type ReplacementModel } from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { blockHook } from "../../src/core/model/hooks";
import type { Intervention } from "../../src/core/model/interventions";
import { firstDistinctTokens } from "../../src/core/patching/metrics";
import { tensor } from "../../src/core/tensor/tensor";
import { renderTable } from "../../src/cli/format";
import { generateHeldout } from "../tasks/generate";
import { pearson, REFERENCE_OPTIONS } from "./stats";

interface Variant {
  readonly recompute: boolean;
  readonly freezeAttention: boolean;
  /** Hold every MLP output at its prompt value plus the edits' decoder change (attention and norms live). */
  readonly freezeMlps?: boolean;
  /** Scale the features by this factor instead of zeroing them (a small edit: how far the graph's linear prediction holds). */
  readonly factor?: number;
}

/** The logit difference after the edits, run in the real model as `variant` says. */
async function freeRun(model: HookedModel, r: ReplacementModel, edits: readonly ActiveFeature[], answer: number, wrong: number, variant: Variant): Promise<number> {
  const { frozen, transcoders: set } = r;
  const T = frozen.nPos;
  const D = frozen.dModel;
  const L = frozen.nLayers;
  const F = set.dTranscoder;
  const deltas = Array.from({ length: L }, () => new Float32Array(T * D));
  const frozenPatterns: Intervention[] = variant.freezeAttention
    ? frozen.layers.map((layer, l) => ({ hook: blockHook(l, "attn.hook_pattern"), kind: "replace" as const, source: tensor(layer.pattern, [1, frozen.weights.nHeads, T, T]) }))
    : [];
  const frozenMlps = (): Intervention[] =>
    frozen.layers.map((layer, l) => {
      const out = layer.mlpOut.slice();
      deltas[l].forEach((x, i) => (out[i] += x));
      return { hook: blockHook(l, "hook_mlp_out"), kind: "replace", source: tensor(out, [1, T, D]) };
    });
  const interventions = (): Intervention[] => [
    ...frozenPatterns,
    ...(variant.freezeMlps ? frozenMlps() : []),
    ...deltas.flatMap((delta, l) => (variant.freezeMlps ? [] : Array.from({ length: T }, (_, p) => delta.subarray(p * D, (p + 1) * D)))
        .map((v, p) => ({ v, p }))
        .filter(({ v }) => v.some((x) => x !== 0))
        .map(({ v, p }): Intervention => ({ hook: blockHook(l, "hook_mlp_out"), kind: "add", vector: v, positions: [p] })),
    ),
  ];
  const addDelta = (f: ActiveFeature, change: number) => {
    for (let o = 0; o < decoderLayers(set, f.layer); o++) {
      const dec = decoderRow(set, f.layer, f.feature, f.layer + o);
      const delta = deltas[f.layer + o];
      for (let d = 0; d < D; d++) delta[f.pos * D + d] += change * dec[d];
    }
  };
  for (let l = 0; l < L; l++) {
    const here = edits.filter((f) => f.layer === l);
    if (here.length === 0) continue;
    let acts = r.acts[l];
    if (variant.recompute) {
      // The edited features' activations in the run with every earlier layer's edits applied.
      const { cache } = await model.runWithHooks([...frozen.tokens], interventions(), { names: [blockHook(l, "hook_resid_mid")] });
      acts = encode(set, l, transcoderInput(frozen.weights.blocks[l].norm2, set.inputHook, cache.get(blockHook(l, "hook_resid_mid")).data, T, D), T);
    }
    for (const f of here) addDelta(f, ((variant.factor ?? 0) - 1) * acts[f.pos * F + f.feature]);
  }
  const { logits } = await model.runWithHooks([...frozen.tokens], interventions(), { logitPositions: [T - 1] });
  const last = logits.data.subarray(logits.data.length - model.cfg.dVocab);
  return last[answer] - last[wrong];
}

/**
 * The target's change when `edited` features are zeroed, through every path of the graph: the
 * replacement model linearised at the prompt (each other feature passes a change of its
 * pre-activation on one to one, errors and tokens fixed). Features only feed later layers, so one
 * pass in node order (layer-major) settles every change.
 */
function changeThroughGraph(g: AttributionGraph, edited: ReadonlySet<number>): number {
  const n = nodeTotal(g);
  const F = g.layout.nFeatures;
  const A = g.adjacency;
  const change = new Float64Array(F);
  for (let t = 0; t < F; t++) {
    if (edited.has(t)) {
      change[t] = -g.features[t].activation;
      continue;
    }
    let pre = 0;
    for (let s = 0; s < t; s++) if (change[s] !== 0) pre += (A[t * n + s] / g.features[s].activation) * change[s];
    change[t] = pre;
  }
  const logit = n - g.layout.nLogits;
  let total = 0;
  for (let s = 0; s < F; s++) total += (A[logit * n + s] / g.features[s].activation) * change[s];
  return total;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: REFERENCE_OPTIONS,
  });
  const model = await HookedModel.load(values.model, { threads: 2 });
  const variants: [string, Variant][] = [
    ["fixed deltas, live attention (Loupe's free)", { recompute: false, freezeAttention: false }],
    ["fixed deltas, frozen attention", { recompute: false, freezeAttention: true }],
    ["recomputed, live attention", { recompute: true, freezeAttention: false }],
    ["recomputed, frozen attention (circuit-tracer's free)", { recompute: true, freezeAttention: true }],
    ["MLPs frozen (attention, norms live)", { recompute: false, freezeAttention: false, freezeMlps: true }],
    ["MLPs and attention frozen (norms live)", { recompute: false, freezeAttention: true, freezeMlps: true }],
    ["scaled by 0.9 instead of zeroed, x10 (Loupe's free)", { recompute: false, freezeAttention: false, factor: 0.9 }],
  ];
  const rows: string[][] = [];
  const items = generateHeldout(Number(values.seed), "ioi", Number(values.items));
  for (const [name, dir] of [["PLT", values.plt], ["CLT", values.clt]] as const) {
    const set = loadTranscoders(dir);
    for (const bos of [false, true]) {
      const predicted: number[] = [];
      const constrained: number[] = [];
      const checked: number[] = [];
      const throughGraph: number[] = [];
      const layersOfTop = new Array<number>(model.cfg.nLayers).fill(0);
      const free = variants.map(() => [] as number[]);
      let leadFeatures = 0;
      for (const r of items) {
        const prompt = String(r.meta.prompt);
        const enc = bos ? traceEncoding(model, prompt) : model.encode(prompt);
        const pair = firstDistinctTokens(model.tokenizer, String(r.meta.answer), String(r.meta.wrong));
        const tokens = [...enc.ids, ...pair.prefix];
        const rep = await buildReplacement(model, set, tokens);
        const g = attributeReplacement(rep, { targets: { kind: "difference", token: pair.answer, contrast: pair.wrong } }, (id) => model.tokenizer.decode([id]));
        const pruned = pruneGraph(g.adjacency, g.layout, g.targets.map((t) => t.probability));
        const topNodes = g.features.map((_, i) => i).sort((a, b) => pruned.nodeInfluence[b] - pruned.nodeInfluence[a]).slice(0, 10);
        const top = topNodes.map((i) => g.features[i]);
        leadFeatures += top.filter((f) => f.pos === enc.lead).length;
        top.forEach((f) => layersOfTop[f.layer]++);
        throughGraph.push(changeThroughGraph(g, new Set(topNodes)));
        const res = await interveneOnFeatures(model, rep, g.targets[0], top.map((f) => ({ layer: f.layer, pos: f.pos, feature: f.feature, kind: "zero" as const })));
        predicted.push(res.predicted);
        constrained.push(res.constrained);
        checked.push(res.free ?? NaN);
        const clean = rep.frozen.lastLogits[pair.answer] - rep.frozen.lastLogits[pair.wrong];
        for (const [i, [, v]] of variants.entries()) free[i].push(((await freeRun(model, rep, top, pair.answer, pair.wrong, v)) - clean) / (1 - (v.factor ?? 0)));
      }
      const where = bos ? "behind the BOS" : "no BOS (before)";
      const meanAbs = (xs: number[]) => (xs.reduce((s, x) => s + Math.abs(x), 0) / xs.length).toFixed(3);
      rows.push([name, where, "constrained", pearson(predicted, constrained).toFixed(3), meanAbs(constrained), `mean |predicted| ${meanAbs(predicted)}; top-10 features by layer ${layersOfTop.join("/")}, ${leadFeatures} on the first word`]);
      variants.forEach(([label], i) => rows.push([name, where, label, pearson(predicted, free[i]).toFixed(3), meanAbs(free[i]), `vs the change through every path of the graph ${pearson(throughGraph, free[i]).toFixed(3)}${i === 0 ? `; interveneOnFeatures agrees: ${pearson(checked, free[0]).toFixed(6)}` : ""}`]));
      rows.push([name, where, "through every path of the graph (linearised, not measured)", pearson(predicted, throughGraph).toFixed(3), meanAbs(throughGraph), ""]);
    }
  }
  console.log(`${items.length} held-out IOI items (seed ${values.seed}); zero each graph's 10 most influential feature nodes; target the logit difference IO - S\n`);
  console.log(renderTable(["set", "prompt", "change", "Pearson vs predicted (direct effects)", "mean |change|", "note"], rows));
  await model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
