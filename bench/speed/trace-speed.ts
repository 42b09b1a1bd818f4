/**
 * trace() speed (issue 23's "30-token graph under 1 s on 2 cores"), before and after, in one run:
 *
 *   npm run bench:trace-speed -- [--runs 7] [--baseline ef8fea4] [--threads 1,2]
 *   npm run bench:trace-speed -- --shape gpt2-124m [--max-feature-nodes 7500] [--tokens 64] [--threads 2] [--torch]
 *
 * Reference model, 30-token prompt behind its BOS, PLT and CLT: each variant runs the three stages
 * trace() runs (capture + replacement, rows, pruning + scores), interleaved run by run so each sees
 * the same load; the table gives medians and minima of wall and CPU time per stage and in all.
 * Variants: `--baseline REV` (default ef8fea4, the commit before this change; "none" to skip): that revision's src/ (git archive into a
 * temporary folder), the code before this change; "js": every product on the JavaScript kernel;
 * "onnxruntime, N threads": the big products in onnxruntime (trace()'s default path uses every
 * core). CPU time is the fair figure on a shared machine: wall time counts other processes' turns.
 *
 * --shape gpt2-124m: GPT-2 small's shape with random weights and a random TopK PLT of d_tc 8192
 * (the issue's 124M row; random weights are fine for timing), 64 tokens, --max-feature-nodes rows,
 * in a child process so its peak RSS is its own; with --torch, the same rows by PyTorch autograd
 * (bench/torch/attribution_rows_torch.py) in the same run.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as circuits from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { renderTable } from "../../src/cli/format";
import { SHAPES, writeRandomModel } from "../scale/random-model";
import { revisionSrc } from "./revision-src";

const REPO = path.join(__dirname, "..", "..");
/** The last commit before the attribution products went to onnxruntime. */
const BEFORE = "ef8fea4";
const PROMPT = "Q: Tom has 3 apples and buys 4 more, then gives 2 away. How many apples does he have now? A: 3 + 4 = 7, 7 - 2 = 5. The answer is 5.";

type Circuits = Pick<typeof circuits, "buildReplacement" | "attributeReplacement" | "pruneGraph" | "graphScores" | "loadTranscoders">;
type Graph = circuits.AttributionGraph;

interface Variant {
  readonly name: string;
  readonly code: Circuits;
  readonly rows: (r: circuits.ReplacementModel) => Promise<Graph> | Graph;
}

interface Sample {
  readonly wall: number[];
  readonly cpu: number[];
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function peakMb(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const least = (xs: readonly number[]) => Math.min(...xs);

/** `rev`'s src/ in a temporary folder beside this checkout's node_modules, loaded as a module. */
async function baselineCode(rev: string): Promise<{ code: Circuits; dir: string }> {
  const dir = revisionSrc(rev, "loupe-trace-baseline-");
  const code = (await import(path.join(dir, "src", "core", "circuits", "index.ts"))) as Circuits;
  return { code, dir };
}

async function referenceTable(values: { runs: string; baseline: string; threads: string }): Promise<void> {
  const runs = Number(values.runs);
  const model = await HookedModel.load(path.join(REPO, "models", "reference"));
  const variants: Variant[] = [];
  let baselineDir: string | undefined;
  if (values.baseline !== "none") {
    const { code, dir } = await baselineCode(values.baseline);
    baselineDir = dir;
    variants.push({ name: `before (${values.baseline})`, code, rows: (r) => code.attributeReplacement(r, {}, String) });
  }
  variants.push({ name: "JS kernel only", code: circuits, rows: (r) => circuits.attributeReplacementAsync(r, { products: "js" }, String) });
  for (const threads of values.threads.split(",").map(Number)) {
    variants.push({ name: `onnxruntime, ${threads} thread${threads > 1 ? "s" : ""}`, code: circuits, rows: (r) => circuits.attributeReplacementAsync(r, { threads }, String) });
  }
  const table: string[][] = [];
  try {
    const tokens = circuits.traceEncoding(model, PROMPT).ids.slice(0, 30);
    for (const kind of ["plt", "clt"]) {
      const stages = new Map<string, Sample[]>(variants.map((v) => [v.name, Array.from({ length: 4 }, () => ({ wall: [], cpu: [] }))]));
      let reference: Graph | undefined;
      let worst = 0;
      for (let run = 0; run < runs; run++) {
        for (const v of variants) {
          const set = v.code.loadTranscoders(path.join(REPO, "models", "reference", "transcoders", kind));
          const t = [performance.now()];
          const c = [cpuMs()];
          const mark = () => (t.push(performance.now()), c.push(cpuMs()));
          const r = await v.code.buildReplacement(model, set, tokens);
          mark();
          const g = await v.rows(r);
          mark();
          const probabilities = g.targets.map((x) => x.probability);
          const pruned = v.code.pruneGraph(g.adjacency, g.layout, probabilities, 0.8, 0.98);
          v.code.graphScores(g.adjacency, g.layout, probabilities, pruned.edgeMask);
          mark();
          const samples = stages.get(v.name) as Sample[];
          for (let s = 0; s < 3; s++) {
            samples[s].wall.push(t[s + 1] - t[s]);
            samples[s].cpu.push(c[s + 1] - c[s]);
          }
          samples[3].wall.push(t[3] - t[0]);
          samples[3].cpu.push(c[3] - c[0]);
          reference ??= g;
          let largest = 0;
          for (const x of reference.adjacency) largest = Math.max(largest, Math.abs(x));
          for (let i = 0; i < g.adjacency.length; i++) worst = Math.max(worst, Math.abs(g.adjacency[i] - reference.adjacency[i]) / largest);
        }
      }
      const base = stages.get(variants[0].name) as Sample[];
      for (const v of variants) {
        const s = stages.get(v.name) as Sample[];
        const cell = (x: Sample) => `${median(x.cpu).toFixed(0)} (${least(x.cpu).toFixed(0)})`;
        table.push([
          `${kind.toUpperCase()}: ${v.name}`,
          cell(s[0]),
          cell(s[1]),
          cell(s[2]),
          cell(s[3]),
          `${median(s[3].wall).toFixed(0)} (${least(s[3].wall).toFixed(0)})`,
          `${(median(s[3].cpu) / median(base[3].cpu)).toFixed(2)}x`,
        ]);
      }
      table.push([`${kind.toUpperCase()}: largest |A - A_first| / max |A| over every variant and run`, worst.toExponential(2), "", "", "", "", ""]);
    }
  } finally {
    await model.dispose();
    if (baselineDir) fs.rmSync(baselineDir, { recursive: true, force: true });
  }
  console.log(`Reference model, 30-token prompt (BOS + 29), ${runs} runs per variant, interleaved. CPU ms: median (least).`);
  console.log(renderTable(["variant", "capture + replacement", "rows", "prune + scores", "trace in all, CPU", "in all, wall", "CPU vs first"], table));
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} at the end, ${os.cpus().length} CPUs, peak RSS ${peakMb().toFixed(0)} MB`);
}

const D_TRANSCODER = 8192;
const TOPK = 32;

/** What the 124M child prints: times in ms, memory in MB, and the job file for PyTorch. */
type ScaleResult = Record<"wallMs" | "cpuMs" | "peakMb" | "loadedMb" | "activeFeatures" | "rows", number> & { readonly job: string };

/** The 124M row's Loupe side, in its own process. */
async function scaleChild(dir: string, nTokens: number, maxFeatureNodes: number, threads: number): Promise<void> {
  const model = await HookedModel.load(path.join(dir, "model"), { cacheDir: null, threads });
  try {
    const set = circuits.loadTranscoders(path.join(dir, "plt"));
    const tokens = model.toTokens(PROMPT.repeat(4)).slice(0, nTokens);
    const loadedMb = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1]) / 1024;
    const started = performance.now();
    const cpu = cpuMs();
    const r = await circuits.buildReplacement(model, set, tokens);
    const g = await circuits.attributeReplacementAsync(r, { maxFeatureNodes, threads }, String);
    const result: Omit<ScaleResult, "job"> = { wallMs: performance.now() - started, cpuMs: cpuMs() - cpu, peakMb: peakMb(), loadedMb, activeFeatures: g.activeFeatureCount, rows: g.features.length + g.targets.length };
    const n = circuits.nodeTotal(g);
    const columns = n - g.layout.nLogits;
    const rowValues = (node: number) => Array.from(g.adjacency.subarray(node * n, node * n + columns));
    const features = g.features.map((f) => [f.layer, f.pos, f.feature]);
    const check = [
      ...[0, 1].filter((j) => j < g.targets.length).map((j) => ({ row: j, values: rowValues(circuits.logitNode(g.layout, j)), features })),
      ...[0, g.features.length - 1].map((i) => ({ row: g.targets.length + i, values: rowValues(i), features })),
    ];
    const job = path.join(dir, "job.json");
    const torchJob = { model: path.join(dir, "model"), transcoders: path.join(dir, "plt"), k: TOPK, threads, batch: 64, tokens, logit_vectors: g.targets.map((t) => Array.from(t.vector)), rows: features, check };
    fs.writeFileSync(job, JSON.stringify(torchJob));
    console.log(JSON.stringify({ ...result, job }));
  } finally {
    await model.dispose();
  }
}

async function scaleTable(values: { tokens: string; "max-feature-nodes": string; threads: string; torch: boolean }): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-trace-124m-"));
  const threads = Number(values.threads.split(",")[0]);
  try {
    const shape = SHAPES["gpt2-small"];
    writeRandomModel(path.join(dir, "model"), shape);
    circuits.saveTranscoders(path.join(dir, "plt"), circuits.randomTranscoders({ kind: "plt", nLayers: shape.layers, dModel: shape.dModel, dTranscoder: D_TRANSCODER, activation: { kind: "topk", k: TOPK }, seed: 11 }));
    const out = execFileSync(process.execPath, [...process.execArgv, __filename, "--child-scale", dir, values.tokens, values["max-feature-nodes"], String(threads)], { encoding: "utf8", maxBuffer: 1 << 26 });
    const loupe = JSON.parse(out.trim().split("\n").pop() as string) as ScaleResult;
    const what = `${values.tokens} tokens, ${loupe.activeFeatures} active features, ${loupe.rows} rows`;
    const rows = [
      [`gpt2-124m shape (random weights), PLT d_tc ${D_TRANSCODER} TopK ${TOPK} (random): Loupe, capture + replacement + rows`, `${loupe.wallMs.toFixed(0)} ms wall, ${loupe.cpuMs.toFixed(0)} ms CPU`, what],
      ["... peak RSS, Loupe (after loading the model)", `${loupe.peakMb.toFixed(0)} MB (${loupe.loadedMb.toFixed(0)} MB)`, `${threads} threads; weights in f32`],
    ];
    if (values.torch) {
      // Loupe's side first: the PyTorch run can take many minutes.
      console.log(renderTable(["measure", "value", "note"], rows));
      const torchOut = execFileSync("/usr/bin/python3", [path.join(REPO, "bench", "torch", "attribution_rows_torch.py"), loupe.job], { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
      const torch = JSON.parse(torchOut.trim().split("\n").pop() as string) as { rows: number; seconds: number; cpu_seconds: number; peak_rss_mb: number; max_relative_row_error: number };
      rows.push(
        ["... PyTorch autograd, batched backward (same rows)", `${(1000 * torch.seconds).toFixed(0)} ms wall, ${(1000 * torch.cpu_seconds).toFixed(0)} ms CPU`, `${torch.rows} rows; Loupe / PyTorch ${(loupe.wallMs / (1000 * torch.seconds)).toFixed(2)}x wall, ${(loupe.cpuMs / (1000 * torch.cpu_seconds)).toFixed(2)}x CPU`],
        ["... peak RSS, PyTorch", `${torch.peak_rss_mb.toFixed(0)} MB`, ""],
        ["... largest |torch - loupe| / row max, checked rows", torch.max_relative_row_error.toExponential(2), "2 logit rows and 2 feature rows over the kept nodes"],
      );
    }
    console.log(renderTable(["measure", "value", "note"], rows));
    console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} at the end, ${os.cpus().length} CPUs`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child-scale") return scaleChild(argv[1], Number(argv[2]), Number(argv[3]), Number(argv[4]));
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "7" },
      baseline: { type: "string", default: BEFORE },
      threads: { type: "string", default: "1,2" },
      shape: { type: "string" },
      tokens: { type: "string", default: "64" },
      "max-feature-nodes": { type: "string", default: "7500" },
      torch: { type: "boolean", default: false },
    },
  });
  if (values.shape === undefined) return referenceTable(values);
  if (values.shape !== "gpt2-124m") throw new Error(`--shape ${values.shape}: the only shape is gpt2-124m`);
  return scaleTable(values);
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
