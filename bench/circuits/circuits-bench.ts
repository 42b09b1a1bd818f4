/**
 * bench:circuits: attribution graphs on the reference model against its designed ground truth.
 *
 *   npx tsx bench/circuits/circuits-bench.ts [--plt models/reference/transcoders/plt]
 *       [--clt models/reference/transcoders/clt] [--items 40] [--seed 5]
 *
 * (a) held-out IOI items, target the logit difference IO - S: are the IO and S2 name tokens among
 *     the top 3 token nodes by influence; replacement and completeness scores, PLT vs CLT;
 * (b) held-out induction items cut in the middle of the repeat, target the next token: is the
 *     token after the earlier copy the top token node (the current, last token and the first, the
 *     attention sink, left out);
 * (c) zeroing each graph's 10 most influential feature nodes: the graph's predicted change of the
 *     target against the constrained (frozen) and free (real model) changes, Pearson over items;
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
import { buildReplacement, attributeReplacement, graphScores, interveneOnFeatures, loadTranscoders, pruneGraph, tokenNode, trace, type TranscoderSet } from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { firstDistinctTokens } from "../../src/core/patching/metrics";
import { renderTable } from "../../src/cli/format";
import { generateHeldout } from "../tasks/generate";
import { scaleChild, scaleRows } from "./scale-row";
import type { TaskRecord } from "../tasks/record";

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const f3 = (x: number) => x.toFixed(3);

function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** Token positions of a span's characters. */
function positionsOf(offsets: readonly (readonly [number, number])[], span: { start: number; end: number } | undefined): number[] {
  if (!span) return [];
  return offsets.flatMap(([s, e], i) => (s < span.end && e > span.start ? [i] : []));
}

/** Token nodes ranked by influence, most first. */
function rankedTokens(nodeInfluence: Float64Array, firstToken: number, count: number, leaveOut?: number): number[] {
  return Array.from({ length: count }, (_, p) => p).filter((p) => p !== leaveOut).sort((a, b) => nodeInfluence[firstToken + b] - nodeInfluence[firstToken + a]);
}

async function ioiSection(model: HookedModel, name: string, set: TranscoderSet, items: readonly TaskRecord[], rows: string[][], zeroing: { predicted: number[]; constrained: number[]; free: number[] }): Promise<void> {
  let io = 0;
  let s2 = 0;
  let both = 0;
  let n = 0;
  const replacement: number[] = [];
  const completeness: number[] = [];
  for (const r of items) {
    const prompt = String(r.meta.prompt);
    const enc = model.tokenizer.encode(prompt);
    const pair = firstDistinctTokens(model.tokenizer, String(r.meta.answer), String(r.meta.wrong));
    const tokens = [...enc.ids, ...pair.prefix];
    const rep = await buildReplacement(model, set, tokens);
    const g = attributeReplacement(rep, { targets: { kind: "difference", token: pair.answer, contrast: pair.wrong } }, (id) => model.tokenizer.decode([id]));
    const pruned = pruneGraph(g.adjacency, g.layout, g.targets.map((t) => t.probability));
    const scores = graphScores(g.adjacency, g.layout, g.targets.map((t) => t.probability));
    replacement.push(scores.replacement);
    completeness.push(scores.completeness);
    const top = rankedTokens(pruned.nodeInfluence, tokenNode(g.layout, 0), tokens.length).slice(0, 3);
    const ioPos = positionsOf(enc.offsets, r.spans.find((x) => x.label === "name-io"));
    const s2Pos = positionsOf(enc.offsets, r.spans.find((x) => x.label === "name-s2"));
    const hitIo = ioPos.some((p) => top.includes(p));
    const hitS2 = s2Pos.some((p) => top.includes(p));
    n++;
    if (hitIo) io++;
    if (hitS2) s2++;
    if (hitIo && hitS2) both++;
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
  rows.push([`${name}: ioi, both`, pct(both / n), ""]);
  rows.push([`${name}: replacement score (mean)`, f3(mean(replacement)), "token / (token + error) influence"]);
  rows.push([`${name}: completeness score (mean)`, f3(mean(completeness)), "non-error share of inputs, by influence"]);
}

async function inductionSection(model: HookedModel, name: string, set: TranscoderSet, items: readonly TaskRecord[], rows: string[][]): Promise<void> {
  let hits = 0;
  let inTop2 = 0;
  let separatorTop = 0;
  let n = 0;
  for (const r of items) {
    const enc = model.tokenizer.encode(r.text);
    const repeatStart = Number(r.meta.repeatStart);
    const first = enc.offsets.findIndex(([s]) => s >= repeatStart);
    const end = enc.offsets.findIndex(([s]) => s >= r.text.length - 1);
    const t = first + Math.floor((end - first) / 2);
    if (first < 2 || t + 1 >= enc.ids.length) continue;
    const tokens = enc.ids.slice(0, t + 1);
    // The earlier copy: the latest j in the first half whose token and predecessor match t's.
    let j = -1;
    for (let k = first - 1; k > 0; k--) if (tokens[k] === tokens[t] && tokens[k - 1] === tokens[t - 1]) { j = k; break; }
    if (j < 0) continue;
    const separator = first - 1;
    const rep = await buildReplacement(model, set, tokens);
    const g = attributeReplacement(rep, { targets: { kind: "token", token: enc.ids[t + 1] } }, (id) => model.tokenizer.decode([id]));
    const pruned = pruneGraph(g.adjacency, g.layout, g.targets.map((x) => x.probability));
    n++;
    // Position 0 is left out as well as the last token: with no BOS in front, the first token is
    // the attention sink every head falls back on (circuit-tracer makes it a constant BOS).
    const ranked = rankedTokens(pruned.nodeInfluence, tokenNode(g.layout, 0), tokens.length, t).filter((p) => p !== 0);
    if (ranked[0] === j + 1) hits++;
    if (ranked.slice(0, 2).includes(j + 1)) inTop2++;
    if (ranked[0] === separator) separatorTop++;
  }
  rows.push([`${name}: induction, the token after the earlier copy is the top token node (first and last tokens left out)`, pct(hits / n), `>= 90%; ${n} items`]);
  rows.push([`${name}: induction, ... among the top 2`, pct(inTop2 / n), `the " |" separator is top in ${pct(separatorTop / n)}`]);
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
      model: { type: "string", default: "models/reference" },
      plt: { type: "string", default: "models/reference/transcoders/plt" },
      clt: { type: "string", default: "models/reference/transcoders/clt" },
      items: { type: "string", default: "40" },
      seed: { type: "string", default: "5" },
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
      const prompt = model.toTokens(generateHeldout(seed + 1, "arith-cot", 1)[0].text).slice(0, 30);
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
