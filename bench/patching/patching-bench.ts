/**
 * Activation patching and token attribution on the reference model's held-out tasks, and the speed
 * of a batched residual sweep against one run per patch and against PyTorch, in the same run.
 *
 *   npx tsx bench/patching/patching-bench.ts [--model models/reference] [--seed 1] [--pairs 20]
 *       [--items 50] [--speed-tokens 20] [--reps 7] [--threads 2] [--sections patching,speed,attribution]
 *
 * (a) mean residual-stream heatmap (denoising, blocks.L.hook_resid_pre) over held-out ioi pairs
 *     that share one token layout, so that positions line up; (b) top heads by head patching (z,
 *     all positions); (c) speed, against Loupe's own one-run-per-patch loop (same prefix reuse and
 *     block skipping, no batching) and a plain full forward per patch; (d) attribution accuracy on
 *     ioi and induction items.
 * Held-out names split into several tokens with this tokenizer, so answers are scored by their
 * first differing tokens (the shared tokens, often " ", are appended to both prompts); pairs whose
 * first differing tokens are string prefixes of one another (" " vs " L") are left out, as that
 * logit difference is about tokenization rather than which name; and only pairs whose corrupted
 * name has as many tokens as the subject are used (patching needs aligned prompts). Normalised
 * values are (mean patched - mean corrupted) / (mean clean - mean corrupted) over the pairs:
 * per-pair normalisation divides by tiny gaps on a weak model. The same measures on items from
 * the training distribution (names and templates the model has seen) follow as a contrast.
 */
import { execFileSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { LoupeError } from "../../src/core/errors";
import { HookedModel } from "../../src/core/model/hooked-model";
import { attributeTokens, attributionTargets, type AblationMethod, type AttributionResult } from "../../src/core/patching/attribution";
import { firstDistinctTokens, logSoftmax64 } from "../../src/core/patching/metrics";
import { patchingSweeps, type PatchingResult } from "../../src/core/patching/sweep";
import { generateHeldout } from "../tasks/generate";
import { ioiItem } from "../tasks/ioi";
import type { TaskRecord } from "../tasks/record";
import { Rng } from "../tasks/rng";

const ROOT = path.join(__dirname, "..", "..");
const PYTHON = process.env.LOUPE_TORCH_PYTHON ?? "/usr/bin/python3";
const TORCH_SCRIPT = path.join(ROOT, "bench", "patching", "torch_sweep.py");

const { values } = parseArgs({
  options: {
    model: { type: "string", default: path.join(ROOT, "models", "reference") },
    seed: { type: "string", default: "1" },
    pairs: { type: "string", default: "20" },
    items: { type: "string", default: "50" },
    "speed-tokens": { type: "string", default: "20" },
    reps: { type: "string", default: "7" },
    threads: { type: "string", default: "2" },
    sections: { type: "string", default: "patching,speed,attribution" },
  },
});
const SEED = Number(values.seed);
const PAIRS = Number(values.pairs);
const ITEMS = Number(values.items);
const SPEED_TOKENS = Number(values["speed-tokens"]);
const REPS = Number(values.reps);
const THREADS = Number(values.threads);
const SECTIONS = new Set(values.sections.split(","));

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const q = (s: string) => JSON.stringify(s);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** An ioi pair ready to patch: aligned token ids, the first differing answer tokens, and each position's role. */
interface IoiPair {
  readonly record: TaskRecord;
  readonly clean: number[];
  readonly corrupted: number[];
  readonly answer: number;
  readonly wrong: number;
  /** "IO", "S1", "S2", "end" (the last prompt token), "prefix" (appended answer tokens) or "" per position. */
  readonly roles: string[];
  /** Positions line up between pairs with the same layout. */
  readonly layout: string;
}

const ROLE: Record<string, string> = { "name-io": "IO", "name-s1": "S1", "name-s2": "S2" };

function ioiPair(model: HookedModel, r: TaskRecord): IoiPair | undefined {
  const prompt = String(r.meta.prompt);
  const enc = model.tokenizer.encode(prompt);
  const corrupted = model.toTokens(String(r.meta.corrupted));
  if (corrupted.length !== enc.ids.length) return undefined;
  const pair = firstDistinctTokens(model.tokenizer, String(r.meta.answer), String(r.meta.wrong));
  const [a, w] = [model.tokenizer.tokenText(pair.answer), model.tokenizer.tokenText(pair.wrong)];
  if (a.startsWith(w) || w.startsWith(a)) return undefined;
  const roles = enc.offsets.map(([s, e]) => {
    const span = r.spans.find((x) => ROLE[x.label] && s < x.end && e > x.start);
    return span ? ROLE[span.label] : "";
  });
  roles[roles.length - 1] ||= "end";
  const allRoles = [...roles, ...pair.prefix.map(() => "prefix")];
  return {
    record: r,
    clean: [...enc.ids, ...pair.prefix],
    corrupted: [...corrupted, ...pair.prefix],
    answer: pair.answer,
    wrong: pair.wrong,
    roles: allRoles,
    layout: allRoles.map((x) => x || ".").join(" "),
  };
}

/** Position labels for a group: the token where every pair has the same one, else its role and index in the role. */
function positionLabels(model: HookedModel, group: readonly IoiPair[]): string[] {
  const first = group[0];
  const seen = new Map<string, number>();
  return first.clean.map((id, t) => {
    const role = first.roles[t];
    const counter = role && role !== "end" && role !== "prefix" ? (seen.set(role, (seen.get(role) ?? -1) + 1), `${role}[${seen.get(role)}]`) : "";
    if (group.every((p) => p.clean[t] === id)) return `${q(model.tokenizer.tokenText(id))}${counter ? ` ${counter}` : ""}${role === "end" ? " end" : ""}`;
    return counter || `~${q(model.tokenizer.tokenText(id))}`;
  });
}

/** Mean over pairs of raw metrics, normalised by the mean clean and corrupted metrics. */
function meanNormalised(results: readonly PatchingResult[], sweep: number): number[] {
  const n = results.length;
  const clean = results.reduce((s, r) => s + r.baselines.clean, 0) / n;
  const corrupted = results.reduce((s, r) => s + r.baselines.corrupted, 0) / n;
  const size = results[0].sweeps[sweep].raw.length;
  return Array.from({ length: size }, (_, i) => (results.reduce((s, r) => s + r.sweeps[sweep].raw[i], 0) / n - corrupted) / (clean - corrupted));
}

/** (a) and (b) on one pool of ioi items. */
async function patchingSection(model: HookedModel, title: string, pool: readonly TaskRecord[]): Promise<void> {
  const pairs = pool.map((r) => ioiPair(model, r)).filter((p): p is IoiPair => p !== undefined);
  const groups = new Map<string, IoiPair[]>();
  for (const p of pairs) groups.set(p.layout, [...(groups.get(p.layout) ?? []), p]);
  const [layout, members] = [...groups.entries()].sort((a, b) => b[1].length - a[1].length)[0];
  const group = members.slice(0, PAIRS);
  const { nLayers: L, nHeads: H } = model.cfg;
  const T = group[0].clean.length;

  const results: PatchingResult[] = [];
  let degenerate = 0;
  for (const p of group) {
    try {
      results.push(await patchingSweeps(model, { clean: p.clean, corrupted: p.corrupted, metric: { kind: "logit-diff", answer: p.answer, wrong: p.wrong }, sweeps: ["resid_pre", "heads"] }));
    } catch (error) {
      if (!(error instanceof LoupeError)) throw error;
      degenerate++;
    }
  }
  const meanClean = results.reduce((s, r) => s + r.baselines.clean, 0) / results.length;
  const meanCorrupt = results.reduce((s, r) => s + r.baselines.corrupted, 0) / results.length;
  const cleanRight = results.filter((r) => r.baselines.clean > 0).length;
  const gap = meanClean - meanCorrupt;
  const absGap = results.reduce((s, r) => s + Math.abs(r.baselines.clean - r.baselines.corrupted), 0) / results.length;
  console.log(`\n(a) ${title}: residual stream, denoising, blocks.{L}.hook_resid_pre, metric logit(IO) - logit(S) at their first differing token`);
  console.log(
    `${pairs.length} of ${pool.length} generated pairs are usable (aligned, distinct answer tokens); the largest layout group has ${members.length}; using ${results.length}` +
      (degenerate ? ` (${degenerate} more had equal clean and corrupted metrics)` : "") +
      `\nlayout: ${layout}\nmean logit diff: clean ${meanClean.toFixed(3)}, corrupted ${meanCorrupt.toFixed(3)} (gap ${gap.toFixed(3)}; mean per-pair |gap| ${absGap.toFixed(3)}); the clean run prefers IO in ${cleanRight}/${results.length}`,
  );
  if (Math.abs(gap) < 0.1 || Math.abs(gap) < 0.25 * absGap) {
    console.log("NOTE: the model hardly tells these clean prompts from the corrupted ones, so normalising divides by a gap near 0: the map below is mostly noise.");
  }
  const labels = positionLabels(model, group);
  const resid = meanNormalised(results, 0);
  console.log(table(["#", "token / role", ...Array.from({ length: L }, (_, l) => `L${l}`)], labels.map((label, t) => [String(t), label, ...Array.from({ length: L }, (_, l) => resid[l * T + t].toFixed(2))])));
  const strongest = Array.from({ length: L }, (_, l) => {
    let best = 0;
    for (let t = 1; t < T; t++) if (resid[l * T + t] > resid[l * T + best]) best = t;
    return `L${l}: ${best} ${labels[best]} (${resid[l * T + best].toFixed(2)})`;
  });
  console.log(`strongest position per layer: ${strongest.join("; ")}`);
  const s2 = group[0].roles.flatMap((r, t) => (r === "S2" ? [t] : []));
  const end = T - 1;
  console.log(
    "design predicts: S2 in early layers, the final position in late ones. Share of each layer's positive restoring effect at S2 / at the final position: " +
      Array.from({ length: L }, (_, l) => {
        const total = Array.from({ length: T }, (_, t) => Math.max(0, resid[l * T + t])).reduce((a, b) => a + b, 0);
        const atS2 = s2.reduce((sum, t) => sum + Math.max(0, resid[l * T + t]), 0);
        return `L${l} ${pct(atS2 / total)} / ${pct(Math.max(0, resid[l * T + end]) / total)}`;
      }).join(", "),
  );

  console.log(`\n(b) ${title}: head patching (denoising, blocks.{L}.attn.hook_z, all positions), same pairs`);
  const heads = meanNormalised(results, 1);
  const order = heads.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
  console.log(table(["rank", "head", "normalised"], order.slice(0, 5).map(([v, i], k) => [String(k + 1), `L${Math.floor(i / H)}H${i % H}`, v.toFixed(3)])));
  console.log(`most negative: ${order.slice(-2).reverse().map(([v, i]) => `L${Math.floor(i / H)}H${i % H} ${v.toFixed(3)}`).join(", ")}`);
}

/** Items of the training distribution: names and templates the model was trained on (a contrast, not held out). */
function trainDistribution(family: "ioi", count: number): TaskRecord[] {
  const rng = new Rng(SEED * 7919 + 5);
  return Array.from({ length: count }, () => ioiItem(rng, "train"));
}

interface TorchTiming {
  loop_ms: number;
  loop_cpu_ms: number;
  batched_ms: number;
  batched_cpu_ms: number;
  loop_grid: number[][];
  batched_grid: number[][];
  torch: string;
  threads: number;
}

function torchSweep(folder: string, clean: number[], corrupted: number[], answer: number, wrong: number): TorchTiming | undefined {
  try {
    const input = JSON.stringify({ folder, clean, corrupted, answer, wrong, reps: REPS, threads: THREADS });
    const out = execFileSync(PYTHON, [TORCH_SCRIPT], { input, encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
    return JSON.parse(out.trim().split("\n").pop() ?? "{}") as TorchTiming;
  } catch (error) {
    process.stderr.write(`PyTorch column skipped (${(error as Error).message.split("\n")[0]}). Install python3-torch.\n`);
    return undefined;
  }
}

async function speedSection(model: HookedModel, folder: string, pair: IoiPair): Promise<void> {
  // The pair's last SPEED_TOKENS tokens: still aligned, still ending where the answer is scored.
  const clean = pair.clean.slice(-SPEED_TOKENS);
  const corrupted = pair.corrupted.slice(-SPEED_TOKENS);
  const metric = { kind: "logit-diff", answer: pair.answer, wrong: pair.wrong } as const;
  const { nLayers: L } = model.cfg;
  const T = clean.length;
  const sweep = (batchSize: number, skipIdentical: boolean) => patchingSweeps(model, { clean, corrupted, metric, sweeps: ["resid_pre"], batchSize, skipIdentical });
  const loupeRun = (batch: number, skip: boolean) => async () => (await sweep(batch, skip)).calls;
  const NAIVE = "loupe one full forward per patch (no prefix reuse or block skipping)";
  let naiveRaw: number[] = [];
  // What a TransformerLens user writes: cache the clean run, then run_with_hooks on the whole
  // corrupted prompt once per patch. The PyTorch loop below does the same.
  const naive = async () => {
    const names = Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`);
    const { cache } = await model.runWithCache(clean, { names });
    const raw: number[] = [];
    for (const hook of names) {
      for (let t = 0; t < T; t++) {
        const { logits } = await model.runWithHooks(corrupted, [{ hook, kind: "replace", source: cache.get(hook), positions: [t] }], { logitPositions: [T - 1] });
        raw.push(logits.data[metric.answer] - logits.data[metric.wrong]);
      }
    }
    naiveRaw = raw;
    return 1 + L * T;
  };
  const methods = [
    { label: "loupe batched, 16 rows a call (default)", run: loupeRun(16, false) },
    { label: "loupe batched, 8 rows a call", run: loupeRun(8, false) },
    { label: "loupe batched, 32 rows a call", run: loupeRun(32, false) },
    { label: "loupe batched, 64 rows a call", run: loupeRun(64, false) },
    { label: "loupe one run per patch", run: loupeRun(1, false) },
    { label: NAIVE, run: naive },
    { label: "loupe batched 16, identical patches skipped (default)", run: loupeRun(16, true) },
    { label: "loupe one run per patch, identical skipped", run: loupeRun(1, true) },
  ];
  const TORCH_LOOP = "pytorch eager + hooks, one run per patch";
  const TORCH_BATCHED = "pytorch eager + hooks, one batched run";
  const calls = new Map<string, number>([
    [TORCH_LOOP, L * T],
    [TORCH_BATCHED, 1],
  ]);
  // Each method runs warm (its buffers paged in: the first runs of a new batch shape pay page
  // faults), then the methods take turns, round after round, so that other processes' load
  // falls on all of them alike; each timed run follows an untimed one of the same method, so it
  // collects its own garbage rather than the previous method's. Wall time and this process's CPU
  // time (user + system) are both kept: on a shared machine the wall clock also counts time
  // spent waiting for a core.
  const wall = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  for (const m of methods) for (let i = 0; i < 3; i++) calls.set(m.label, await m.run());
  for (let round = 0; round < REPS; round++) {
    for (const m of methods) {
      await m.run();
      const start = performance.now();
      const startCpu = process.cpuUsage();
      await m.run();
      const used = process.cpuUsage(startCpu);
      wall.set(m.label, [...(wall.get(m.label) ?? []), performance.now() - start]);
      cpu.set(m.label, [...(cpu.get(m.label) ?? []), (used.user + used.system) / 1000]);
    }
  }
  const torch = torchSweep(folder, clean, corrupted, pair.answer, pair.wrong);
  if (torch) {
    // The python helper reports medians of its own REPS runs.
    wall.set(TORCH_LOOP, [torch.loop_ms]);
    cpu.set(TORCH_LOOP, [torch.loop_cpu_ms]);
    wall.set(TORCH_BATCHED, [torch.batched_ms]);
    cpu.set(TORCH_BATCHED, [torch.batched_cpu_ms]);
  }
  const sorted = (m: Map<string, number[]>, label: string) => [...(m.get(label) ?? [])].sort((a, b) => a - b);
  const median = (m: Map<string, number[]>, label: string) => sorted(m, label)[Math.floor(sorted(m, label).length / 2)];
  // Other processes only ever add wall time: the fastest run is the steadiest wall estimate.
  const fastest = (label: string) => sorted(wall, label)[0];
  const loupe = await sweep(16, false);

  console.log(
    `\n(c) speed: full residual sweep (blocks.{L}.hook_resid_pre, ${L} layers x ${T} positions = ${L * T} patched runs), ${THREADS} thread(s), ` +
      `${REPS} warm runs each (${os.cpus()[0]?.model ?? "cpu"}, ${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)})`,
  );
  const order = [...methods.slice(0, 6).map((m) => m.label), ...(torch ? [TORCH_LOOP, TORCH_BATCHED] : []), ...methods.slice(6).map((m) => m.label)];
  const baseCpu = median(cpu, methods[0].label);
  console.log(
    table(
      ["method", "calls", "wall ms fastest", "wall ms median", "cpu ms median", "cpu / batched 16"],
      order.map((label) => [label, String(calls.get(label)), fastest(label).toFixed(1), median(wall, label).toFixed(1), median(cpu, label).toFixed(1), `${(median(cpu, label) / baseCpu).toFixed(2)}x`]),
    ),
  );
  const batchedLabels = methods.slice(0, 4).map((m) => m.label);
  const bestCpu = Math.min(...batchedLabels.map((l) => median(cpu, l)));
  const bestWall = Math.min(...batchedLabels.map((l) => fastest(l)));
  const ratios = (label: string) => `${(median(cpu, label) / bestCpu).toFixed(2)}x cpu, ${(fastest(label) / bestWall).toFixed(2)}x wall`;
  console.log(
    `vs the best batched: one run per patch ${ratios("loupe one run per patch")} (target >= 5x); one full forward per patch ${ratios(NAIVE)}` +
      (torch ? `; pytorch loop ${ratios(TORCH_LOOP)}; pytorch batched ${ratios(TORCH_BATCHED)}` : ""),
  );
  console.log("loupe times include the call that caches both prompts; pytorch times exclude caching the clean run.");
  const naiveDiff = Math.max(...naiveRaw.map((v, i) => Math.abs(v - loupe.sweeps[0].raw[i])));
  console.log(`one full forward per patch vs the batched sweep: max |difference| over the ${L * T} metrics = ${naiveDiff.toExponential(2)}`);
  if (torch) {
    let diff = 0;
    for (let l = 0; l < L; l++) for (let t = 0; t < T; t++) diff = Math.max(diff, Math.abs(torch.loop_grid[l][t] - loupe.sweeps[0].raw[l * T + t]), Math.abs(torch.batched_grid[l][t] - loupe.sweeps[0].raw[l * T + t]));
    console.log(`same sweep in both: max |loupe - pytorch| over the ${L * T} metrics = ${diff.toExponential(2)} (torch ${torch.torch}, ${torch.threads} thread(s))`);
  }
}

/** Index of the largest non-null attribution among the first `limit` values. */
function topIndex(values: readonly (number | null)[], limit = values.length): number {
  let best = -1;
  values.slice(0, limit).forEach((v, i) => {
    if (v !== null && (best < 0 || v > (values[best] as number))) best = i;
  });
  return best;
}

const METHODS: ReadonlyArray<{ readonly name: string; readonly method: AblationMethod }> = [
  { name: "mask", method: "mask" },
  { name: "embed (zero)", method: "embed" },
];

/** IO-name attribution on ioi items: the top token among those before the last (which mask cannot measure). */
async function ioiAttribution(model: HookedModel, title: string, records: readonly TaskRecord[], rows: string[][]): Promise<void> {
  const prefers: boolean[] = [];
  for (const r of records) prefers.push(await prefersAnswer(model, String(r.meta.prompt), model.toTokens(String(r.meta.answer)), model.toTokens(String(r.meta.wrong))));
  // The metric: log p(IO) asks what makes the IO name likely at all (the verb and object do too);
  // the logit difference IO - S (at their first differing tokens) asks what makes the model pick IO over S.
  const metrics = [{ label: "log p(IO)", contrast: false }, { label: "logit diff IO - S", contrast: true }];
  for (const { name: methodName, method } of METHODS) for (const metric of metrics) {
    const name = `${methodName}, ${metric.label}`;
    let tokenHits = 0;
    let wordHits = 0;
    let hitsWhenRight = 0;
    let right = 0;
    let lastWins = 0;
    let neighbourWins = 0;
    const topRoles = new Map<string, number>();
    for (const [i, r] of records.entries()) {
      const prompt = String(r.meta.prompt);
      const targets = attributionTargets(model.tokenizer, String(r.meta.answer), metric.contrast ? String(r.meta.wrong) : undefined);
      const res = await attributeTokens(model, prompt, { ...targets, method });
      const io = r.spans.find((x) => x.label === "name-io");
      if (!io) throw new Error("ioi item without an IO span");
      const n = res.tokens.length;
      const t = topIndex(res.tokens.map((x) => x.attribution), n - 1);
      const hit = t >= 0 && res.tokens[t].start < io.end && res.tokens[t].end > io.start;
      if (hit) tokenHits++;
      if (topIndex(res.tokens.map((x) => x.attribution)) === n - 1) lastWins++;
      const words = res.words.filter((w) => !w.tokens.includes(n - 1));
      const word = words[topIndex(words.map((w) => w.attribution))];
      if (word && word.start === io.start && word.end === io.end) wordHits++;
      // The word the answer position reads as its neighbour (the object in "gave a ball to").
      if (word && word === words[words.length - 1]) neighbourWins++;
      const role = word ? (r.spans.find((x) => x.start === word.start && x.end === word.end)?.label ?? q(word.text)) : "none";
      topRoles.set(role, (topRoles.get(role) ?? 0) + 1);
      if (prefers[i]) {
        right++;
        if (hit) hitsWhenRight++;
      }
    }
    const common = [...topRoles.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, v]) => `${k} ${v}`).join(", ");
    rows.push([`${title}, ${name}: top token is in the IO name`, pct(tokenHits / records.length), `>= 90%; on the ${right} items where the model prefers IO: ${pct(hitsWhenRight / Math.max(1, right))}`]);
    rows.push([`${title}, ${name}: top word is the IO name`, pct(wordHits / records.length), `top words: ${common}; the word just before the last token in ${pct(neighbourWins / records.length)}`]);
    if (method === "embed") rows.push([`${title}, ${name}: the last token, if counted, is top`, pct(lastWins / records.length), "mask cannot measure it"]);
  }
  rows.push([`${title}: (context) the model prefers the IO name over S`, pct(prefers.filter(Boolean).length / records.length), "full-name log-prob, summed over its tokens"]);
}

async function inductionAttribution(model: HookedModel, records: readonly TaskRecord[], rows: string[][]): Promise<void> {
  const cuts = records.flatMap((r) => inductionCuts(model, r));
  for (const { name, method } of METHODS) {
    const byThird = [0, 0, 0].map(() => ({ hits: 0, separator: 0, neighbour: 0, n: 0 }));
    for (const cut of cuts) {
      const res: AttributionResult = await attributeTokens(model, model.toString(cut.prompt), { answer: [cut.answer], method, groups: false });
      // The cut must re-encode to the same tokens, or positions would not mean what we think.
      if (res.tokens.length !== cut.prompt.length || res.tokens.some((x, i) => x.id !== cut.prompt[i])) continue;
      const t = topIndex(res.tokens.map((x) => x.attribution), res.tokens.length - 1);
      const bucket = byThird[Math.min(2, Math.floor(3 * cut.progress))];
      bucket.n++;
      if (t === cut.expected) bucket.hits++;
      if (t === cut.separator) bucket.separator++;
      if (t === res.tokens.length - 2 && t !== cut.expected) bucket.neighbour++;
    }
    const all = byThird.reduce((a, b) => ({ hits: a.hits + b.hits, separator: a.separator + b.separator, neighbour: a.neighbour + b.neighbour, n: a.n + b.n }), { hits: 0, separator: 0, neighbour: 0, n: 0 });
    const thirds = byThird.map((b) => pct(b.hits / Math.max(1, b.n))).join(" / ");
    rows.push([`induction (${all.n} cuts in ${records.length} items), ${name}: top is the token after the earlier copy`, pct(all.hits / Math.max(1, all.n)), `early / middle / late third of the repeat: ${thirds}; the " |" separator is top in ${pct(all.separator / Math.max(1, all.n))}, the token just before the last in ${pct(all.neighbour / Math.max(1, all.n))}`]);
  }
}

async function attributionSection(model: HookedModel): Promise<void> {
  console.log("\n(d) attribution: is the largest attribution (among tokens before the last) on the token the task's design names?");
  const rows: string[][] = [];
  await ioiAttribution(model, `ioi held-out (${ITEMS})`, generateHeldout(SEED, "ioi", ITEMS), rows);
  await inductionAttribution(model, generateHeldout(SEED, "induction", ITEMS), rows);
  await ioiAttribution(model, `ioi training distribution (${ITEMS})`, trainDistribution("ioi", ITEMS), rows);
  console.log(table(["measure", "value", "target / note"], rows));
}

async function prefersAnswer(model: HookedModel, prompt: string, answer: number[], wrong: number[]): Promise<boolean> {
  const score = async (cont: number[]) => {
    const ids = [...model.toTokens(prompt), ...cont];
    const logits = await model.run(ids.slice(0, -1));
    const V = logits.dims[2];
    const P = ids.length - cont.length;
    return cont.reduce((s, id, k) => s + logSoftmax64(logits.data.subarray((P - 1 + k) * V, (P + k) * V))[id], 0);
  };
  return (await score(answer)) > (await score(wrong));
}

interface InductionCut {
  readonly prompt: number[];
  readonly answer: number;
  /** The token after the earlier copy of the prompt's last token. */
  readonly expected: number;
  /** Index of the " |" separator token. */
  readonly separator: number;
  /** How far into the repeat the cut is, 0..1. */
  readonly progress: number;
}

/**
 * Every cut inside an induction item's repeat where the prompt's last token has exactly one
 * earlier copy; the answer is the next token, and the design says the token after that earlier
 * copy is what the model copies.
 */
function inductionCuts(model: HookedModel, r: TaskRecord): InductionCut[] {
  const enc = model.tokenizer.encode(r.text);
  const first = r.spans.find((s) => s.label === "first");
  const repeat = r.spans.find((s) => s.label === "repeat");
  if (!first || !repeat) return [];
  const at = (c: number) => enc.offsets.findIndex(([s, e]) => s <= c && c < e);
  const firstStart = at(first.start);
  const repeatStart = at(repeat.start);
  const repeatEnd = at(repeat.end - 1);
  const shift = repeatStart - firstStart;
  for (let k = repeatStart; k <= repeatEnd; k++) if (enc.ids[k] !== enc.ids[k - shift]) return [];
  const cuts: InductionCut[] = [];
  for (let j = repeatStart + 1; j <= repeatEnd; j++) {
    const current = enc.ids[j - 1];
    if (enc.ids.slice(0, repeatStart).filter((id) => id === current).length !== 1) continue;
    cuts.push({ prompt: enc.ids.slice(0, j), answer: enc.ids[j], expected: j - shift, separator: repeatStart - 1, progress: (j - repeatStart) / (repeatEnd - repeatStart + 1) });
  }
  return cuts;
}

async function main(): Promise<void> {
  const folder = path.resolve(values.model);
  const model = await HookedModel.load(folder, { threads: THREADS });
  console.log(`patching bench on ${folder} (${model.cfg.nLayers} layers, ${model.cfg.nHeads} heads, d_model ${model.cfg.dModel}), seed ${SEED}`);
  try {
    const heldout = generateHeldout(SEED, "ioi", 3000);
    if (SECTIONS.has("patching")) {
      await patchingSection(model, "held-out ioi", heldout);
      await patchingSection(model, "training-distribution ioi (contrast, not held out)", trainDistribution("ioi", 400));
    }
    if (SECTIONS.has("speed")) {
      const pair = heldout.map((r) => ioiPair(model, r)).find((p) => p !== undefined);
      if (!pair) throw new Error("no aligned held-out ioi pair for the speed test");
      await speedSection(model, folder, pair);
    }
    if (SECTIONS.has("attribution")) await attributionSection(model);
  } finally {
    await model.dispose();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
