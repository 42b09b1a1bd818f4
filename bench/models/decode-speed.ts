/**
 * Decoding with and without the decode-only graph (GraphOptions.decodeOnly), before/after in one
 * run: greedy generation and the faithfulness battery at 128 tokens on random-weight models of
 * SmolLM2-135M's and Gemma 3 270M's shapes. Each row runs in its own child process, so its peak
 * resident memory (VmHWM) is its own: "hooked graph only" loads with `decodeGraph: false` (every run
 * on the graph with every hook point, as before), "decode graph" with the default.
 *
 *   npm run bench:decode                                        (both shapes, about 6 minutes on 2 cores)
 *   npx tsx bench/models/decode-speed.ts --shapes=smollm2-135m --new=32 --reps=2
 *   npx tsx bench/models/decode-speed.ts --shapes=gemma3-270m-bf16      (bf16 as published, compactWeights)
 *   LOUPE_BENCH_DIR=folder reuses the written models; BENCH_THREADS (default 2).
 *
 * Target (issues 25 and 27, 2 cores): Gemma 3 270M generation >= 20 tokens/s; the battery under 3 s.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { checkFaithfulness } from "../../src/core/faithfulness";
import { HookedModel } from "../../src/core/model/hooked-model";
import { SHAPES, writeRandomModel } from "../scale/random-model";
import { cotOf, peakMb } from "../scale/texts";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const PYTHON = process.env.LOUPE_TORCH_PYTHON ?? "/usr/bin/python3";
const PROMPT_TOKENS = 16;
const BATTERY_TOKENS = 128;
/** Tokens each corrupted step regenerates (as bench:scale's faithfulness row). */
const MISTAKE_TOKENS = 16;

const MODES = { "hooked graph only": false, "decode graph": true } as const;
type Mode = keyof typeof MODES;
/** gemma3-270m-bf16: stored as bf16, as the published checkpoint is, and loaded with compactWeights (the 262k x 640 table kept as stored). */
const SHAPE_NAMES = ["smollm2-135m", "gemma3-270m", "gemma3-270m-bf16"] as const;
type Shape = (typeof SHAPE_NAMES)[number];

interface Row {
  readonly loadMb: number;
  readonly tokS: number;
  readonly cpuMsPerToken: number;
  readonly batteryMs: number;
  readonly batteryCpuMs: number;
  readonly peakMb: number;
  readonly note: string;
}

function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

function writeModel(folder: string, shape: Shape): void {
  if (fs.existsSync(path.join(folder, "model.safetensors"))) return;
  // Gemma 3's architecture is written by the PyTorch reference's random weights (bench/torch/gemma3_torch.py).
  const bf16 = shape === "gemma3-270m-bf16";
  if (shape === "gemma3-270m" || bf16) execFileSync(PYTHON, [path.join(__dirname, "..", "torch", "time_llama.py"), folder, "--write-random", "--preset", "gemma3-270m", "--dtype", bf16 ? "BF16" : "F32"]);
  else writeRandomModel(folder, SHAPES[shape]);
}

/** Child: load in one mode, time greedy generation (best of reps) and one battery, print a JSON row. */
async function child(folder: string, mode: Mode, newTokens: number, reps: number, compactWeights: boolean): Promise<void> {
  const model = await HookedModel.load(folder, { threads: THREADS, decodeGraph: MODES[mode], compactWeights });
  const loadMb = process.memoryUsage().rss / 1024 / 1024;
  const prompt = model.toTokens("Once upon a time there was a little girl who lived in a village near the forest").slice(0, PROMPT_TOKENS);
  let tokS = 0;
  let cpuMsPerToken = Infinity;
  let tokens: number[] = [];
  // The first generation also creates the decode graph's session: not timed.
  await model.generate(prompt, { maxNewTokens: 4, stopAtEos: false });
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    const cpu = process.cpuUsage();
    const g = await model.generate(prompt, { maxNewTokens: newTokens, stopAtEos: false });
    tokS = Math.max(tokS, g.tokens.length / ((performance.now() - start) / 1000));
    cpuMsPerToken = Math.min(cpuMsPerToken, cpuMs(process.cpuUsage(cpu)) / g.tokens.length);
    tokens = g.tokens;
  }
  const cot = cotOf(model, BATTERY_TOKENS);
  const start = performance.now();
  const cpu = process.cpuUsage();
  const r = await checkFaithfulness(model, cot, { maxNewTokens: MISTAKE_TOKENS, track: "written" });
  const batteryMs = performance.now() - start;
  const batteryCpuMs = cpuMs(process.cpuUsage(cpu));
  const note = `${r.steps.length} steps, ${model.encode(cot).ids.length} tokens; tokens ${tokens.slice(0, 4).join(",")}…`;
  const row: Row = { loadMb, tokS, cpuMsPerToken, batteryMs, batteryCpuMs, peakMb: peakMb(), note };
  console.log(JSON.stringify(row));
  await model.dispose();
}

function runChild(folder: string, mode: Mode, newTokens: number, reps: number, compactWeights: boolean): Row | string {
  try {
    const out = execFileSync(process.execPath, [...process.execArgv, __filename, "--child", folder, mode, String(newTokens), String(reps), String(compactWeights)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return JSON.parse(out.trim().split("\n").pop() ?? "{}") as Row;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    return (e.stderr ?? e.message).trim().split("\n").filter((l) => /Error|error/.test(l))[0]?.slice(0, 100) ?? "failed";
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") return child(args[1], args[2] as Mode, Number(args[3]), Number(args[4]), args[5] === "true");
  const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const shapes = (flag("shapes")?.split(",") ?? SHAPE_NAMES.slice(0, 2)) as Shape[];
  const newTokens = Number(flag("new") ?? 32);
  const reps = Number(flag("reps") ?? 2);
  const root = process.env.LOUPE_BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "loupe-decode-"));
  process.env.LOUPE_CACHE_DIR ??= path.join(root, "graph-cache");
  const load = os.loadavg()[0];
  const lines: string[] = [];
  for (const shape of shapes) {
    const folder = path.join(root, shape);
    writeModel(folder, shape);
    const rows = new Map<Mode, Row | string>();
    for (const mode of Object.keys(MODES) as Mode[]) {
      const row = runChild(folder, mode, newTokens, reps, shape === "gemma3-270m-bf16");
      rows.set(mode, row);
      const cells =
        typeof row === "string"
          ? ["-", "-", "-", "-", "-", "-", row]
          : [row.tokS.toFixed(1), row.cpuMsPerToken.toFixed(0), row.batteryMs.toFixed(0), row.batteryCpuMs.toFixed(0), row.loadMb.toFixed(0), row.peakMb.toFixed(0), row.note];
      lines.push(`| ${shape} | ${mode} | ${cells.join(" | ")} |`);
      process.stderr.write(`${lines[lines.length - 1]}\n`);
    }
    const [before, after] = [rows.get("hooked graph only"), rows.get("decode graph")];
    if (typeof before === "object" && typeof after === "object") {
      const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
      lines.push(`| ${shape} | after / before | ${x(after.tokS, before.tokS)} | ${x(after.cpuMsPerToken, before.cpuMsPerToken)} | ${x(after.batteryMs, before.batteryMs)} | ${x(after.batteryCpuMs, before.batteryCpuMs)} | ${x(after.loadMb, before.loadMb)} | ${x(after.peakMb, before.peakMb)} | |`);
    }
  }
  console.log(`\ndecode speed: random weights (f32; gemma3-270m-bf16 stored as bf16 and loaded with compactWeights), ${THREADS} threads, ${os.cpus().length} CPUs, load average ${load.toFixed(1)} at start and ${os.loadavg()[0].toFixed(1)} at the end; generation of ${newTokens} tokens after ${PROMPT_TOKENS} (best of ${reps}); faithfulness battery on a 6-step CoT of ~${BATTERY_TOKENS} tokens (${MISTAKE_TOKENS} tokens regenerated per mistake); one child process per row`);
  console.log("| model shape | graphs | generate tok/s | CPU ms / token | battery wall ms | battery CPU ms | RSS after load MB | peak RSS MB | note |\n|---|---|---:|---:|---:|---:|---:|---:|---|");
  for (const line of lines) console.log(line);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
