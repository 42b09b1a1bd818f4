/**
 * Why induction graphs put "Repeat" (the first prompt word) on top, with CLT above all
 * (bench:circuits (b)): where each token's influence goes in, on held-out induction items cut as
 * bench:circuits cuts them, PLT beside CLT, and what the real model says.
 *
 *   real model       zero one token's embedding (hook_embed at that position; positions stay) and
 *                    measure the target's logit: the tokens the model itself needs, by |change|
 *   influence        circuit-tracer's node influence (what the metric ranks); a source's influence
 *                    split by what it feeds: features at its own position, features at other
 *                    positions (only through attention), the logit directly
 *   the copy token   the token after the earlier copy; its layer-0 error node (what the
 *                    transcoders leave of the MLP there) beside it
 *   "Repeat" readers layer-0 feature nodes at the copy's position whose largest input is the
 *                    "Repeat" token, reached through layer 0's attention
 *   error by layer   each layer's error nodes' influence (all positions, and the copy position's),
 *                    as a share of all token and error influence (the replacement score's parts)
 *
 *   npx tsx bench/circuits/induction-sources.ts [--items 40] [--seed 5] [--plt DIR] [--clt DIR]
 */
import { parseArgs } from "node:util";
import { attributeReplacement, buildReplacement, errorNode, loadTranscoders, logitNode, nodeTotal, pruneGraph, tokenNode, type AttributionGraph } from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { renderTable } from "../../src/cli/format";
import { generateHeldout } from "../tasks/generate";
import { inductionCut, type InductionCut } from "./induction-cut";
import { REFERENCE_OPTIONS } from "./stats";

const f3 = (x: number) => x.toFixed(3);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (hits: number, n: number) => `${((100 * hits) / n).toFixed(0)}%`;

/** The target's logit change when each prompt position's token embedding is zeroed, in the real model. */
async function occlusion(model: HookedModel, cut: InductionCut): Promise<number[]> {
  const T = cut.tokens.length;
  const V = model.cfg.dVocab;
  const run = async (pos?: number) => {
    const { logits } = await model.runWithHooks(cut.tokens, pos === undefined ? [] : [{ hook: "hook_embed", kind: "zero", positions: [pos] }], { logitPositions: [T - 1] });
    return logits.data[logits.data.length - V + cut.next];
  };
  const clean = await run();
  const out: number[] = [];
  for (let p = 0; p < T; p++) out.push(p < cut.encoding.lead ? 0 : (await run(p)) - clean);
  return out;
}

/** How `source`'s influence divides over what it feeds: (influence[t] + weight[t]) x Â[t, source]. */
function influenceInto(g: AttributionGraph, influence: Float64Array, source: number, pos: number): { ownPosition: number; otherPositions: number; logit: number } {
  const n = nodeTotal(g);
  const A = g.adjacency;
  const out = { ownPosition: 0, otherPositions: 0, logit: 0 };
  for (let t = 0; t < n; t++) {
    const a = Math.abs(A[t * n + source]);
    if (a === 0) continue;
    let rowSum = 0;
    for (let s = 0; s < n; s++) rowSum += Math.abs(A[t * n + s]);
    const isLogit = t >= logitNode(g.layout, 0);
    const share = ((isLogit ? g.targets[t - logitNode(g.layout, 0)].probability : influence[t]) * a) / rowSum;
    if (isLogit) out.logit += share;
    else if (g.features[t].pos === pos) out.ownPosition += share;
    else out.otherPositions += share;
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: REFERENCE_OPTIONS,
  });
  const model = await HookedModel.load(values.model, { threads: 2 });
  const cuts = generateHeldout(Number(values.seed), "induction", Number(values.items)).flatMap((r) => inductionCut(model, r) ?? []);
  const rows: string[][] = [];
  const real: number[][] = [];
  for (const cut of cuts) real.push(await occlusion(model, cut));
  // The current (last) token is the induction head's query: zeroing it breaks the copy whatever the source.
  const topByModel = real.map((changes, i) => changes.map((_, p) => p).filter((p) => p !== changes.length - 1).sort((a, b) => Math.abs(changes[b]) - Math.abs(changes[a]))[0] === cuts[i].copy);
  const repeatAt = cuts[0].encoding.lead;
  rows.push(["real model", 'zeroing the copy token\'s embedding: target logit change (mean)', f3(mean(real.map((c, i) => c[cuts[i].copy]))), `top by |change| (the current token left out) in ${pct(topByModel.filter(Boolean).length, cuts.length)} of items`]);
  rows.push(["real model", 'zeroing "Repeat"\'s embedding: target logit change (mean)', f3(mean(real.map((c) => c[repeatAt]))), `mean |change| ${f3(mean(real.map((c) => Math.abs(c[repeatAt]))))}`]);
  for (const [name, dir] of [["PLT", values.plt], ["CLT", values.clt]] as const) {
    const set = loadTranscoders(dir);
    const stats = { attentionToRepeat: [] as number[], attentionToBos: [] as number[], copy: [] as number[], repeat: [] as number[], copyError: [] as number[], errors: [] as number[], repeatOwn: [] as number[], repeatOther: [] as number[], repeatLogit: [] as number[], readers: [] as number[], readerActivation: [] as number[], copyFeatures: [] as number[], tokens: [] as number[], errorByLayer: [] as number[][], copyErrorByLayer: [] as number[][] };
    let repeatTop = 0;
    for (const cut of cuts) {
      const rep = await buildReplacement(model, set, cut.tokens);
      const g = attributeReplacement(rep, { targets: { kind: "token", token: cut.next } }, (id) => model.tokenizer.decode([id]));
      const { nodeInfluence: inf } = pruneGraph(g.adjacency, g.layout, g.targets.map((x) => x.probability));
      const { layout } = g;
      const H = rep.frozen.weights.nHeads;
      const pattern = rep.frozen.layers[0].pattern;
      const attention = (key: number) => mean(Array.from({ length: H }, (_, h) => pattern[(h * cut.tokens.length + cut.copy) * cut.tokens.length + key]));
      stats.attentionToRepeat.push(attention(repeatAt));
      stats.attentionToBos.push(attention(0));
      const n = nodeTotal(g);
      const T = cut.tokens.length;
      const tokenInf = Array.from({ length: T }, (_, p) => (p < cut.encoding.lead ? -1 : inf[tokenNode(layout, p)]));
      if (tokenInf.indexOf(Math.max(...tokenInf)) === repeatAt) repeatTop++;
      stats.copy.push(inf[tokenNode(layout, cut.copy)]);
      stats.repeat.push(inf[tokenNode(layout, repeatAt)]);
      stats.copyError.push(inf[errorNode(layout, 0, cut.copy)]);
      let errors = 0;
      for (let i = layout.nFeatures; i < layout.nFeatures + layout.nErrors; i++) errors += inf[i];
      stats.errors.push(errors);
      let tokens = 0;
      for (let p = cut.encoding.lead; p < T; p++) tokens += inf[tokenNode(layout, p)];
      stats.tokens.push(tokens);
      const layers = Array.from({ length: set.nLayers }, (_, l) => l);
      stats.errorByLayer.push(layers.map((l) => Array.from({ length: T }, (_, p) => inf[errorNode(layout, l, p)]).reduce((a, b) => a + b, 0) / (tokens + errors)));
      stats.copyErrorByLayer.push(layers.map((l) => inf[errorNode(layout, l, cut.copy)] / (tokens + errors)));
      const into = influenceInto(g, inf, tokenNode(layout, repeatAt), repeatAt);
      stats.repeatOwn.push(into.ownPosition);
      stats.repeatOther.push(into.otherPositions);
      stats.repeatLogit.push(into.logit);
      const atCopy = g.features.map((f, i) => ({ f, i })).filter(({ f }) => f.layer === 0 && f.pos === cut.copy);
      const readers = atCopy.filter(({ i }) => {
        let best = -1;
        let bestValue = 0;
        for (let s = 0; s < n; s++) if (Math.abs(g.adjacency[i * n + s]) > bestValue) [best, bestValue] = [s, Math.abs(g.adjacency[i * n + s])];
        return best === tokenNode(layout, repeatAt);
      });
      stats.copyFeatures.push(atCopy.length);
      stats.readers.push(readers.length);
      if (readers.length) stats.readerActivation.push(mean(readers.map(({ f }) => f.activation)));
    }
    const N = cuts.length;
    rows.push([name, '"Repeat" is the top token node by influence', pct(repeatTop, N), `${N} items`]);
    rows.push([name, "influence: the copy token / \"Repeat\" (mean)", `${f3(mean(stats.copy))} / ${f3(mean(stats.repeat))}`, ""]);
    rows.push([name, "influence: the copy position's layer-0 error node / every error node (mean)", `${f3(mean(stats.copyError))} / ${f3(mean(stats.errors))}`, "the copy token's identity left in the error is credited to no token"]);
    const byLayer = (xs: number[][]) => xs[0].map((_, l) => `L${l} ${f3(mean(xs.map((x) => x[l])))}`).join(", ");
    rows.push([name, "error share of token + error influence (mean)", f3(mean(stats.errors.map((e, i) => e / (e + stats.tokens[i])))), "1 - the replacement score's terms"]);
    rows.push([name, "  by layer, every position", byLayer(stats.errorByLayer), ""]);
    rows.push([name, "  by layer, the copy position", byLayer(stats.copyErrorByLayer), ""]);
    rows.push([name, '"Repeat"\'s influence: into features at its own position / at other positions / the logit', `${f3(mean(stats.repeatOwn))} / ${f3(mean(stats.repeatOther))} / ${f3(mean(stats.repeatLogit))}`, "other positions: through attention"]);
    if (name === "PLT") rows.push(["real model", 'layer 0\'s attention from the copy position to "Repeat" / to the BOS (mean over heads)', `${f3(mean(stats.attentionToRepeat))} / ${f3(mean(stats.attentionToBos))}`, "the same for every set (frozen from the prompt)"]);
    rows.push([name, "layer-0 features at the copy position: all / largest input \"Repeat\" (mean)", `${f3(mean(stats.copyFeatures))} / ${f3(mean(stats.readers))}`, `their activation ${stats.readerActivation.length ? f3(mean(stats.readerActivation)) : "-"}`]);
  }
  console.log(`${cuts.length} held-out induction items (seed ${values.seed}), cut in the middle of the repeat, traced behind the BOS\n`);
  console.log(renderTable(["set", "measure", "value", "note"], rows));
  await model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
