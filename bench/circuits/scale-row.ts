/**
 * bench:circuits --shape gpt2-124m: attribution at GPT-2 small's shape (random weights, 12 layers,
 * d_model 768) with a random TopK PLT of d_tc 8192, a 64-token prompt and at most
 * --max-feature-nodes feature rows (7,500 by default), against the same rows by PyTorch autograd
 * (bench/torch/attribution_rows_torch.py) in the same run. Each side runs in its own process so its
 * peak RSS is its own; both include the model's weights and the transcoders.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { attributeReplacement, buildReplacement, loadTranscoders, logitNode, nodeTotal, randomTranscoders, saveTranscoders } from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { SHAPES, writeRandomModel } from "../scale/random-model";
import { generateHeldout } from "../tasks/generate";

const D_TRANSCODER = 8192;
const TOPK = 32;

export interface ScaleOptions {
  readonly tokens: number;
  readonly maxFeatureNodes: number;
  readonly threads: number;
}

interface LoupeSide {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly peakMb: number;
  readonly loadedMb: number;
  readonly activeFeatures: number;
  readonly rows: number;
  readonly job: string;
}

function rssMb(field: "VmHWM" | "VmRSS"): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

/** Writes the random model and transcoders once, then runs each side in a child process. */
export async function scaleRows(options: ScaleOptions): Promise<string[][]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-circuits-124m-"));
  try {
    const shape = SHAPES["gpt2-small"];
    writeRandomModel(path.join(dir, "model"), shape);
    saveTranscoders(path.join(dir, "plt"), randomTranscoders({ kind: "plt", nLayers: shape.layers, dModel: shape.dModel, dTranscoder: D_TRANSCODER, activation: { kind: "topk", k: TOPK }, seed: 11 }));
    const out = execFileSync(process.execPath, [...process.execArgv, path.join(__dirname, "circuits-bench.ts"), "--child-scale", dir, String(options.tokens), String(options.maxFeatureNodes), String(options.threads)], { encoding: "utf8", maxBuffer: 1 << 26 });
    const loupe = JSON.parse(out.trim().split("\n").pop() as string) as LoupeSide;
    const torchOut = execFileSync("/usr/bin/python3", [path.join(__dirname, "..", "torch", "attribution_rows_torch.py"), loupe.job], { encoding: "utf8", env: { ...process.env, OMP_NUM_THREADS: String(options.threads) } });
    const torch = JSON.parse(torchOut.trim().split("\n").pop() as string) as { rows: number; seconds: number; cpu_seconds: number; peak_rss_mb: number; max_relative_row_error: number };
    const what = `${options.tokens} tokens, ${loupe.activeFeatures} active features, ${loupe.rows} rows`;
    return [
      [`gpt2-124m shape, PLT d_tc ${D_TRANSCODER} TopK ${TOPK}: Loupe rows (capture + replacement + rows)`, `${loupe.wallMs.toFixed(0)} ms wall, ${loupe.cpuMs.toFixed(0)} ms CPU`, what],
      ["... PyTorch autograd, batched backward (same rows)", `${(1000 * torch.seconds).toFixed(0)} ms wall, ${(1000 * torch.cpu_seconds).toFixed(0)} ms CPU`, `${torch.rows} rows; Loupe / PyTorch ${(loupe.wallMs / (1000 * torch.seconds)).toFixed(2)}x wall, ${(loupe.cpuMs / (1000 * torch.cpu_seconds)).toFixed(2)}x CPU`],
      ["... peak RSS, Loupe (after loading the model)", `${loupe.peakMb.toFixed(0)} MB (${loupe.loadedMb.toFixed(0)} MB)`, `${options.threads} threads; weights in f32`],
      ["... peak RSS, PyTorch", `${torch.peak_rss_mb.toFixed(0)} MB`, ""],
      ["... largest |torch - loupe| / row max, checked rows", torch.max_relative_row_error.toExponential(2), "2 logit rows and 2 feature rows over the kept nodes"],
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The Loupe side, in its own process: times the graph and writes the job for PyTorch. */
export async function scaleChild(dir: string, nTokens: number, maxFeatureNodes: number, threads: number): Promise<void> {
  const model = await HookedModel.load(path.join(dir, "model"), { cacheDir: null, threads });
  try {
    const set = loadTranscoders(path.join(dir, "plt"));
    const text = generateHeldout(3, "arith-cot", 8).map((r) => r.text).join(" ");
    const tokens = model.toTokens(text).slice(0, nTokens);
    if (tokens.length < nTokens) throw new Error(`the prompt has only ${tokens.length} tokens`);
    const loadedMb = rssMb("VmRSS");
    const started = performance.now();
    const cpu = process.cpuUsage();
    const r = await buildReplacement(model, set, tokens);
    const g = attributeReplacement(r, { maxFeatureNodes }, String);
    const used = process.cpuUsage(cpu);
    const wallMs = performance.now() - started;
    const n = nodeTotal(g);
    const columns = n - g.layout.nLogits;
    const check = [0, 1].filter((j) => j < g.targets.length).map((j) => ({ row: j, values: Array.from(g.adjacency.subarray(logitNode(g.layout, j) * n, logitNode(g.layout, j) * n + columns)) }));
    for (const i of [0, g.features.length - 1]) check.push({ row: g.targets.length + i, values: Array.from(g.adjacency.subarray(i * n, i * n + columns)) });
    const job = path.join(dir, "job.json");
    fs.writeFileSync(job, JSON.stringify({
      model: path.join(dir, "model"),
      transcoders: path.join(dir, "plt"),
      k: TOPK,
      threads,
      batch: 64,
      tokens,
      logit_vectors: g.targets.map((t) => Array.from(t.vector)),
      rows: g.features.map((f) => [f.layer, f.pos, f.feature]),
      check: check.map((c) => ({ ...c, features: g.features.map((f) => [f.layer, f.pos, f.feature]) })),
    }));
    const result: LoupeSide = { wallMs, cpuMs: (used.user + used.system) / 1000, peakMb: rssMb("VmHWM"), loadedMb, activeFeatures: g.activeFeatureCount, rows: g.features.length + g.targets.length, job };
    console.log(JSON.stringify(result));
  } finally {
    await model.dispose();
  }
}
