/**
 * The fuzz runner. Cases run in a worker thread so that a case stuck in a loop can be stopped:
 * the main thread arms a timer at each case's start and, if it fires, terminates the thread,
 * records a hang and carries on from the next case in a fresh thread. Every case is a pure
 * function of (seed, target, index): `npx tsx test/reliability/fuzz.ts TARGET INDEX [SEED]` replays one.
 */
import * as fs from "node:fs";
import { Worker } from "node:worker_threads";
import { caseSeed, Prng } from "./prng";
import { isCleanRejection, scratch, TARGETS, targetByName, type FuzzContext, type FuzzTarget } from "./targets";

export type Outcome = "accepted" | "rejected" | "crash";

export interface CaseResult {
  readonly outcome: Outcome;
  /** The error of a crash (stack head), or the rejection message. */
  readonly message?: string;
  readonly ms: number;
}

export interface Failure {
  readonly target: string;
  readonly index: number;
  readonly kind: "crash" | "hang";
  readonly message: string;
}

export interface TargetStats {
  readonly target: string;
  tried: number;
  accepted: number;
  rejected: number;
  crashes: number;
  hangs: number;
  slowestMs: number;
}

export interface FuzzReport {
  readonly seed: number;
  readonly targets: TargetStats[];
  readonly failures: Failure[];
  readonly elapsedMs: number;
}

export interface FuzzOptions {
  readonly seed?: number;
  /** Cases per target of weight 1; a target of weight w gets cases / w. */
  readonly cases: number;
  /** A case running longer than this is a hang (ms, default 5000). */
  readonly timeoutMs?: number;
  /** Only these targets (default: all). */
  readonly only?: readonly string[];
}

export const DEFAULT_SEED = 0x10ce;

export function casesFor(target: FuzzTarget, cases: number): number {
  return Math.max(1, Math.round(cases / (target.weight ?? 1)));
}

/** Run one case in this thread. */
export async function runCase(target: FuzzTarget, seed: number, index: number, ctx: FuzzContext): Promise<CaseResult> {
  const rng = new Prng(caseSeed(seed, target.name, index));
  const started = performance.now();
  try {
    const said = await target.run(rng, ctx);
    return { outcome: said === "rejected" ? "rejected" : "accepted", ms: performance.now() - started };
  } catch (error) {
    const ms = performance.now() - started;
    if (isCleanRejection(error)) return { outcome: "rejected", message: (error as Error).message, ms };
    const text = error instanceof Error ? `${error.name}: ${error.message}\n${(error.stack ?? "").split("\n").slice(1, 6).join("\n")}` : String(error);
    return { outcome: "crash", message: text, ms };
  }
}

interface Job {
  /** Scratch folder, owned by the main thread (a terminated thread cannot clean up). */
  readonly dir: string;
  readonly target: string;
  readonly seed: number;
  readonly from: number;
  readonly to: number;
}

type FromWorker = { type: "start"; target: string; index: number } | { type: "result"; target: string; index: number; result: CaseResult } | { type: "finished" };

/** Worker side: run the jobs it is sent. */
export function serveFuzzJobs(port: { on(event: "message", f: (job: Job) => void): void; postMessage(m: FromWorker): void }): void {
  port.on("message", async (job: Job) => {
    const target = targetByName(job.target);
    for (let index = job.from; index < job.to; index++) {
      port.postMessage({ type: "start", target: job.target, index });
      const result = await runCase(target, job.seed, index, { dir: job.dir });
      port.postMessage({ type: "result", target: job.target, index, result });
    }
    port.postMessage({ type: "finished" });
  });
}

function startWorker(): Worker {
  // Worker threads do not inherit tsx's loader: register it for TypeScript in the thread first.
  const code = `require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(require.resolve("./fuzz-worker.ts"))});`;
  return new Worker(code, { eval: true, stdout: true, stderr: false });
}

/** Run every target's cases in a worker thread, with a hang limit per case. */
export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed ?? DEFAULT_SEED;
  const timeoutMs = options.timeoutMs ?? 5000;
  const targets = options.only ? options.only.map(targetByName) : TARGETS;
  const started = performance.now();
  const failures: Failure[] = [];
  const stats: TargetStats[] = [];
  let worker: Worker | undefined;
  const dir = scratch();
  try {
    for (const target of targets) {
      const s: TargetStats = { target: target.name, tried: 0, accepted: 0, rejected: 0, crashes: 0, hangs: 0, slowestMs: 0 };
      stats.push(s);
      const total = casesFor(target, options.cases);
      let next = 0;
      while (next < total) {
        worker ??= startWorker();
        const w = worker;
        next = await new Promise<number>((resolve, reject) => {
          let current = next;
          let timer: NodeJS.Timeout | undefined;
          const done = (resumeAt: number) => {
            clearTimeout(timer);
            w.removeAllListeners("message");
            w.removeAllListeners("error");
            w.removeAllListeners("exit");
            resolve(resumeAt);
          };
          w.on("message", (m: FromWorker) => {
            if (m.type === "start") {
              current = m.index;
              clearTimeout(timer);
              timer = setTimeout(() => {
                s.tried++;
                s.hangs++;
                failures.push({ target: target.name, index: current, kind: "hang", message: `no answer within ${timeoutMs} ms` });
                void w.terminate();
                worker = undefined;
                done(current + 1);
              }, timeoutMs);
            } else if (m.type === "result") {
              clearTimeout(timer);
              s.tried++;
              s[m.result.outcome === "accepted" ? "accepted" : m.result.outcome === "rejected" ? "rejected" : "crashes"]++;
              s.slowestMs = Math.max(s.slowestMs, m.result.ms);
              if (m.result.outcome === "crash") failures.push({ target: target.name, index: m.index, kind: "crash", message: m.result.message ?? "" });
            } else done(total);
          });
          // The thread itself died (out of memory, a native fault): the case running is a crash.
          w.on("error", (error) => {
            s.tried++;
            s.crashes++;
            failures.push({ target: target.name, index: current, kind: "crash", message: `worker thread died: ${error.message}` });
            worker = undefined;
            done(current + 1);
          });
          w.once("exit", () => worker === w && reject(new Error("fuzz worker exited unexpectedly")));
          w.postMessage({ dir, target: target.name, seed, from: next, to: total } satisfies Job);
        });
      }
    }
  } finally {
    await worker?.terminate();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { seed, targets: stats, failures, elapsedMs: performance.now() - started };
}

export function formatFuzzReport(report: FuzzReport): string {
  const rows = report.targets.map((t) => `  ${t.target.padEnd(20)} ${String(t.tried).padStart(6)} ${String(t.accepted).padStart(8)} ${String(t.rejected).padStart(8)} ${String(t.crashes).padStart(7)} ${String(t.hangs).padStart(5)} ${t.slowestMs.toFixed(0).padStart(8)}`);
  const lines = [`  ${"target".padEnd(20)} ${"tried".padStart(6)} ${"accepted".padStart(8)} ${"rejected".padStart(8)} ${"crashes".padStart(7)} ${"hangs".padStart(5)} ${"slowest".padStart(8)}`, ...rows];
  for (const f of report.failures.slice(0, 20)) lines.push(`  ${f.kind} ${f.target} #${f.index} (seed ${report.seed}): ${f.message.split("\n").join("\n      ")}`);
  return lines.join("\n");
}

// Replay one case in this thread: npx tsx test/reliability/fuzz.ts TARGET INDEX [SEED]
if (require.main === module) {
  const [name, index, seed] = process.argv.slice(2);
  const dir = scratch();
  runCase(targetByName(name), seed ? Number(seed) : DEFAULT_SEED, Number(index), { dir })
    .then((r) => console.log(r.outcome, r.message ?? "", `${r.ms.toFixed(0)} ms`))
    .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}
