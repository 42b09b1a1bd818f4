/**
 * bench:circuits: attribution graphs on the reference model against its designed ground truth.
 *
 *   npx tsx bench/circuits/circuits-bench.ts [--plt models/reference/transcoders/plt]
 *       [--clt models/reference/transcoders/clt] [--items 40] [--seed 5]
 *
 * Prompts are traced as circuit-tracer traces them, behind a constant special token (prompt.ts);
 * that token is not a prompt token and is never ranked.
 *
 * (a) held-out IOI items, target the logit difference IO - S: are the IO and S2 name tokens among
 *     the top 3 token nodes by influence; replacement and completeness scores, PLT vs CLT;
 * (b) held-out induction items cut in the middle of the repeat, target the next token: is the
 *     token after the earlier copy the top token node (also: with the current token left out,
 *     and by signed total effect instead of influence, to show what influence misses);
 * (c) zeroing each graph's 10 most influential feature nodes: the graph's predicted change of the
 *     target against the constrained (frozen) and free (real model) changes, Pearson over items;
 *     Why (b) and (c) fall short: induction-sources.ts (where the tokens' influence goes in, and what
 *     the real model needs) and free-intervention.ts (the free run four ways, with and without BOS).
 * (d) speed: a full graph of a 30-token prompt (model loaded; capture, rows, pruning, scores), wall
 *     and CPU time (the fair figure on a shared machine).
 *
 *   --speed-only: only (d).
 *   --shape gpt2-124m [--max-feature-nodes 7500] [--tokens 64] [--threads 2]: instead, the 124M row
 *     against PyTorch autograd (scale-row.ts); needs /usr/bin/python3 with python3-torch.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { parseArgs } from "node:util";
import { buildReplacement, attributeReplacement, graphScores, interveneOnFeatures, loadTranscoders, nodeTotal, pruneGraph, tokenNode, trace, traceEncoding, type AttributionGraph, type TranscoderSet } from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { firstDistinctTokens } from "../../src/core/patching/metrics";
import { renderTable } from "../../src/cli/format";
import { generateHeldout } from "../tasks/generate";
import { inductionCut } from "./induction-cut";
import { scaleChild, scaleRows } from "./scale-row";
import { pearson, REFERENCE_OPTIONS } from "./stats";
import type { TaskRecord } from "../tasks/record";

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const f3 = (x: number) => x.toFixed(3);

/** Token positions of a span's characters. */
function positionsOf(offsets: readonly (readonly [number, number])[], span: { start: number; end: number } | undefined): number[] {
  if (!span) return [];
  return offsets.flatMap(([s, e], i) => (s < span.end && e > span.start ? [i] : []));
}

/** Prompt token positions (the leading special token left out) ranked by `score`, most first. */
function rankedTokens(score: ArrayLike<number>, firstToken: number, count: number, lead: number): number[] {
  return Array.from({ length: count - lead }, (_, p) => p + lead).sort((a, b) => score[firstToken + b] - score[firstToken + a]);
}

/**
 * Each node's signed total effect on the first target through the graph's linearised paths: a
 * feature passes a change of its pre-activation on one to one, so a path's effect is the product of
 * its edges with each feature's edge weights taken per unit of its activation. For a token node
 * this is gradient x input of its embedding in the frozen replacement model. Not circuit-tracer's
 * influence (which sums |A| shares, so contributions that cancel both count); printed beside it to
 * show what the ranking by influence misses.
 */
function signedTotals(g: AttributionGraph): Float64Array {
  const n = nodeTotal(g);
  const A = g.adjacency;
  const F = g.layout.nFeatures;
  const total = new Float64Array(n);
  let current = new Float64Array(n);
  current[n - g.layout.nLogits] = 1;
  for (let depth = 0; depth < n && current.some((x) => x !== 0); depth++) {
    const next = new Float64Array(n);
    for (let t = 0; t < n; t++) {
      const x = current[t];
      if (x === 0) continue;
      for (let s = 0; s < n; s++) {
        const a = A[t * n + s];
        if (a !== 0) next[s] += (x * a) / (s < F ? g.features[s].activation : 1);
      }
    }
    for (let s = 0; s < n; s++) total[s] += next[s];
    current = next;
  }
  return total;
}

async function ioiSection(model: HookedModel, name: string, set: TranscoderSet, items: readonly TaskRecord[], rows: string[][], zeroing: { predicted: number[]; constrained: number[]; free: number[] }): Promise<void> {
  let io = 0;
  let s2 = 0;
  let both = 0;
  let bothSigned = 0;
  let n = 0;
  const replacement: number[] = [];
  const completeness: number[] = [];
  for (const r of items) {
    const prompt = String(r.meta.prompt);
    const enc = traceEncoding(model, prompt);
    const pair = firstDistinctTokens(model.tokenizer, String(r.meta.answer), String(r.meta.wrong));
    const tokens = [...enc.ids, ...pair.prefix];
    const rep = await buildReplacement(model, set, tokens);
    const g = attributeReplacement(rep, { targets: { kind: "difference", token: pair.answer, contrast: pair.wrong } }, (id) => model.tokenizer.decode([id]));
    const pruned = pruneGraph(g.adjacency, g.layout, g.targets.map((t) => t.probability));
    const scores = graphScores(g.adjacency, g.layout, g.targets.map((t) => t.probability));
    replacement.push(scores.replacement);
    completeness.push(scores.completeness);
    const top = rankedTokens(pruned.nodeInfluence, tokenNode(g.layout, 0), tokens.length, enc.lead).slice(0, 3);
    const ioPos = positionsOf(enc.offsets, r.spans.find((x) => x.label === "name-io"));
    const s2Pos = positionsOf(enc.offsets, r.spans.find((x) => x.label === "name-s2"));
    const hitIo = ioPos.some((p) => top.includes(p));
    const hitS2 = s2Pos.some((p) => top.includes(p));
    n++;
    if (hitIo) io++;
    if (hitS2) s2++;
    if (hitIo && hitS2) both++;
    const signed = signedTotals(g).map(Math.abs);
    const topSigned = rankedTokens(signed, tokenNode(g.layout, 0), tokens.length, enc.lead).slice(0, 3);
    if (ioPos.some((p) => topSigned.includes(p)) && s2Pos.some((p) => topSigned.includes(p))) bothSigned++;
    if (zeroing) {
      const best = g.features.map((f, i) => ({ f, inf: pruned.nodeInfluence[i] })).sort((a, b) => b.inf - a.inf).slice(0, 10);
      const res = await interveneOnFeatures(model, rep, g.targets[0], best.map(({ f }) => ({ layer: f.layer, pos: f.pos, feature: f.feature, kind: "zero" as const })));
      zeroing.predicted.push(res.predicted);
      zeroing.constrained.push(res.constrained);
      zeroing.free.push(res.free ?? NaN);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  rows.push([`${name}: ioi, IO name among the top 3 token nodes`, pct(io / n), ">= 90%"]);
  rows.push([`${name}: ioi, S2 name among the top 3 token nodes`, pct(s2 / n), ">= 90%"]);
  rows.push([`${name}: ioi, both`, pct(both / n), `${n} items`]);
  rows.push([`${name}: ioi, both among the top 3 by |signed total effect| (not the metric)`, pct(bothSigned / n), "gradient x input through the linearised graph"]);
  rows.push([`${name}: replacement score (mean)`, f3(mean(replacement)), "token / (token + error) influence"]);
  rows.push([`${name}: completeness score (mean)`, f3(mean(completeness)), "non-error share of inputs, by influence"]);
}

async function inductionSection(model: HookedModel, name: string, set: TranscoderSet, items: readonly TaskRecord[], rows: string[][]): Promise<void> {
  let hits = 0;
  let hitsBesideCurrent = 0;
  let inTop2 = 0;
  let separatorTop = 0;
  let firstWordTop = 0;
  let signedHits = 0;
  let n = 0;
  for (const r of items) {
    const cut = inductionCut(model, r);
    if (!cut) continue;
    const { encoding: enc, tokens, copy, separator } = cut;
    const t = tokens.length - 1;
    const rep = await buildReplacement(model, set, tokens);
    const g = attributeReplacement(rep, { targets: { kind: "token", token: cut.next } }, (id) => model.tokenizer.decode([id]));
    const pruned = pruneGraph(g.adjacency, g.layout, g.targets.map((x) => x.probability));
    n++;
    // Every prompt token competes (the leading special token is a constant, not a prompt token).
    const ranked = rankedTokens(pruned.nodeInfluence, tokenNode(g.layout, 0), tokens.length, enc.lead);
    if (ranked[0] === copy) hits++;
    if (ranked.filter((p) => p !== t)[0] === copy) hitsBesideCurrent++;
    if (ranked.slice(0, 2).includes(copy)) inTop2++;
    if (ranked[0] === separator) separatorTop++;
    if (ranked[0] === enc.lead) firstWordTop++;
    if (rankedTokens(signedTotals(g), tokenNode(g.layout, 0), tokens.length, enc.lead)[0] === copy) signedHits++;
  }
  rows.push([`${name}: induction, the token after the earlier copy is the top token node`, pct(hits / n), `>= 90%; ${n} items`]);
  rows.push([`${name}: induction, ... top once the current (last) token is left out`, pct(hitsBesideCurrent / n), ""]);
  rows.push([`${name}: induction, ... among the top 2`, pct(inTop2 / n), `top instead: the " |" separator in ${pct(separatorTop / n)}, the first prompt token ("Repeat") in ${pct(firstWordTop / n)}`]);
  rows.push([`${name}: induction, ... top by signed total effect (not the metric)`, pct(signedHits / n), "gradient x input through the linearised graph"]);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child-scale") return scaleChild(argv[1], Number(argv[2]), Number(argv[3]), Number(argv[4]));
  const { values } = parseArgs({
    options: {
      "speed-only": { type: "boolean", default: false },
      shape: { type: "string" },
      "max-feature-nodes": { type: "string", default: "7500" },
      tokens: { type: "string", default: "64" },
      threads: { type: "string", default: "2" },
      ...REFERENCE_OPTIONS,
    },
  });
  if (values.shape !== undefined) {
    if (values.shape !== "gpt2-124m") throw new Error(`--shape ${values.shape}: the only shape is gpt2-124m`);
    const rows = await scaleRows({ tokens: Number(values.tokens), maxFeatureNodes: Number(values["max-feature-nodes"]), threads: Number(values.threads) });
    console.log(renderTable(["measure", "value", "note"], rows));
    console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} at the end, ${os.cpus().length} CPUs`);
    return;
  }
  const items = Number(values.items);
  const seed = Number(values.seed);
  const model = await HookedModel.load(values.model);
  const rows: string[][] = [];
  try {
    const ioi = generateHeldout(seed, "ioi", items);
    const induction = generateHeldout(seed, "induction", items);
    for (const [name, dir] of [["PLT", values.plt], ["CLT", values.clt]] as const) {
      if (!fs.existsSync(dir)) {
        rows.push([`${name}: no transcoders at ${dir}`, "-", ""]);
        continue;
      }
      const set = loadTranscoders(dir);
      const zeroing = { predicted: [] as number[], constrained: [] as number[], free: [] as number[] };
      if (!values["speed-only"]) {
        await ioiSection(model, name, set, ioi, rows, zeroing);
        rows.push([`${name}: zero the top-10 feature nodes, Pearson(predicted, constrained)`, f3(pearson(zeroing.predicted, zeroing.constrained)), `>= 0.9; ${zeroing.predicted.length} ioi items`]);
        rows.push([`${name}: zero the top-10 feature nodes, Pearson(predicted, free)`, f3(pearson(zeroing.predicted, zeroing.free)), "the real model: MLPs and attention respond"]);
        await inductionSection(model, name, set, induction, rows);
      }
      // (d) speed on a 30-token prompt.
      const prompt = traceEncoding(model, generateHeldout(seed + 1, "arith-cot", 1)[0].text).ids.slice(0, 30);
      const times: number[] = [];
      const cpu: number[] = [];
      let features = 0;
      for (let i = 0; i < 5; i++) {
        const used = process.cpuUsage();
        const t = await trace(model, set, prompt);
        const spent = process.cpuUsage(used);
        times.push(t.elapsedMs);
        cpu.push((spent.user + spent.system) / 1000);
        features = t.graph.features.length;
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      rows.push([`${name}: full graph of a 30-token prompt, median of 5`, `${median(times).toFixed(0)} ms wall, ${median(cpu).toFixed(0)} ms CPU`, `< 1000 ms; ${features} feature nodes; capture, rows, pruning and scores`]);
    }
  } finally {
    await model.dispose();
  }
  console.log(renderTable(["measure", "value", "target / note"], rows));
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} at the end, ${os.cpus().length} CPUs`);
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
