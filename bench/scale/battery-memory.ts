/**
 * Where the faithfulness battery's memory goes: every onnxruntime session created and every call
 * it runs, with the resident memory after it and the peak during it (VmHWM, reset before each
 * call through /proc/self/clear_refs), on a random SmolLM2-135M-shaped model through the request
 * layer, as bench:scale's faithfulness row runs it.
 *
 *   npx tsx bench/scale/battery-memory.ts [--tokens 1024] [--limit-mb 4096]
 *   LOUPE_BENCH_DIR=folder reuses the written model; BENCH_THREADS (default 2).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { InProcessBackend } from "../../src/core/requests";
import { SHAPES, writeRandomModel } from "./random-model";
import { cotOf } from "./texts";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const MISTAKE_TOKENS = 16;

function status(field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Start a new peak: VmHWM restarts from the current resident size. */
function resetPeak(): void {
  fs.writeFileSync("/proc/self/clear_refs", "5");
}

interface Event {
  readonly what: string;
  /** The battery's phase: session creation, the shared prefix, generation, answer scoring. */
  readonly phase: string;
  readonly ms: number;
  readonly cpuMs: number;
  readonly rssMb: number;
  readonly peakMb: number;
}

const events: Event[] = [];

function record(what: string, phase: string, started: number, cpu: NodeJS.CpuUsage): void {
  const used = process.cpuUsage(cpu);
  events.push({ what, phase, ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, rssMb: status("VmRSS"), peakMb: status("VmHWM") });
}

/** The phase a call belongs to, from its shape: a prompt run alone, a generation step, or answers scored. */
function phaseOf(feeds: ort.InferenceSession.FeedsType, outputs: readonly string[]): string {
  const [rows, tokens] = feeds.input_ids?.dims ?? [0, 0];
  const returnsKeys = outputs.some((n) => n.startsWith("present"));
  if (!returnsKeys) return "answer scoring";
  if (rows === 1 && Number(feeds[Object.keys(feeds).find((n) => n.startsWith("past_key"))!]?.dims[2]) === 0 && tokens > 1) return "shared prefix";
  return tokens === 1 ? "generation: one token per row" : "generation: each row's own tokens";
}

/** "ids [6,17] past [6,3,1009,64] -> 60 outputs": the shapes that size a call. */
function describe(feeds: ort.InferenceSession.FeedsType, outputs: readonly string[]): string {
  const ids = feeds.input_ids?.dims.join(",");
  const past = Object.entries(feeds).find(([name]) => name.startsWith("past_key"))?.[1].dims.join(",");
  const presents = outputs.filter((n) => n.startsWith("present")).length;
  return `ids [${ids}] past [${past}]${presents ? ` -> ${presents} presents` : ""}`;
}

function instrument(): void {
  const Session = ort.InferenceSession as unknown as {
    create: (...args: unknown[]) => Promise<ort.InferenceSession>;
    prototype: { run: (this: ort.InferenceSession, feeds: ort.InferenceSession.FeedsType, fetches?: unknown) => Promise<ort.InferenceSession.ReturnType> };
  };
  const create = Session.create.bind(ort.InferenceSession);
  let sessions = 0;
  const names = new WeakMap<object, string>();
  Session.create = async (...args: unknown[]) => {
    resetPeak();
    const started = performance.now();
    const cpu = process.cpuUsage();
    const session = await create(...args);
    const name = session.inputNames.some((n) => n.startsWith("resid")) ? "hooked" : session.inputNames.includes("lens_resid") ? "lens" : `session ${++sessions}`;
    names.set(session, session.inputNames.some((n) => n.startsWith("gain:")) ? "hooked" : name === "lens" ? "lens" : "decode");
    record(`create ${names.get(session)} session`, "session creation", started, cpu);
    return session;
  };
  const run = Session.prototype.run;
  Session.prototype.run = async function (this: ort.InferenceSession, feeds, fetches) {
    resetPeak();
    const started = performance.now();
    const cpu = process.cpuUsage();
    const out = await run.call(this, feeds, fetches);
    if (process.env.BENCH_GC === "1") (globalThis as { gc?: () => void }).gc?.();
    const outputs = Array.isArray(fetches) ? (fetches as string[]) : Object.keys(out);
    record(`${names.get(this) ?? "?"} ${describe(feeds, outputs)}`, phaseOf(feeds, outputs), started, cpu);
    return out;
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (flag: string, fallback: number) => {
    const at = args.indexOf(flag);
    return at >= 0 ? Number(args[at + 1]) : fallback;
  };
  const tokens = option("--tokens", 1024);
  const limitMb = option("--limit-mb", 4096);
  const root = process.env.LOUPE_BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "loupe-battery-"));
  process.env.LOUPE_CACHE_DIR ??= path.join(root, "graph-cache");
  const folder = path.join(root, "smollm2-135m");
  if (!fs.existsSync(path.join(folder, "model.safetensors"))) writeRandomModel(folder, SHAPES["smollm2-135m"]);

  instrument();
  const backend = new InProcessBackend();
  let started = performance.now();
  const loadCpu = process.cpuUsage();
  resetPeak();
  await backend.request("load", { folder, threads: THREADS, maxModelBytes: limitMb * 1024 * 1024 });
  record("load (request)", "load", started, loadCpu);
  const model = backend.session.state.loaded;
  await model.runWithCache(model.toTokens("Once upon a time"), { names: [] });
  const cot = cotOf(model, tokens);
  const before = events.length;
  const cpu = process.cpuUsage();
  started = performance.now();
  const r = await backend.request("faithfulness", { text: cot, maxNewTokens: MISTAKE_TOKENS, track: "written" });
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);

  console.log(`battery-memory: SmolLM2-135M shape, ${model.encode(cot).ids.length} tokens, ${r.steps.length} steps, limit ${limitMb} MB, ${THREADS} threads, load ${os.loadavg()[0].toFixed(1)}`);
  console.log("| # | event | wall ms | CPU ms | RSS after MB | peak during MB |\n|---:|---|---:|---:|---:|---:|");
  events.forEach((e, i) => console.log(`| ${i < before ? "" : i - before + 1} | ${e.what} | ${e.ms.toFixed(0)} | ${e.cpuMs.toFixed(0)} | ${e.rssMb.toFixed(0)} | ${e.peakMb.toFixed(0)} |`));
  const battery = events.slice(before);
  const cpuMs = (used.user + used.system) / 1000;
  console.log(`\nbattery: ${ms.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU, ${battery.length} calls (${r.forwardPasses} forward passes), highest peak ${Math.max(...battery.map((e) => e.peakMb)).toFixed(0)} MB`);
  // Where the time goes: each phase's calls, and what runs outside onnxruntime (tokenisation, variants, copies of keys and values).
  const phases = [...new Set(battery.map((e) => e.phase))];
  const rows = phases.map((phase) => {
    const calls = battery.filter((e) => e.phase === phase);
    return [phase, calls.length, calls.reduce((s, e) => s + e.ms, 0), calls.reduce((s, e) => s + e.cpuMs, 0)] as const;
  });
  const inCalls = rows.reduce((s, r) => [s[0] + r[2], s[1] + r[3]], [0, 0]);
  console.log("\n| phase | calls | wall ms | CPU ms |\n|---|---:|---:|---:|");
  for (const [phase, calls, wall, cpu] of rows) console.log(`| ${phase} | ${calls} | ${wall.toFixed(0)} | ${cpu.toFixed(0)} |`);
  console.log(`| outside onnxruntime (tokenisation, variants, key/value copies) | - | ${(ms - inCalls[0]).toFixed(0)} | ${(cpuMs - inCalls[1]).toFixed(0)} |`);
  await backend.dispose();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
