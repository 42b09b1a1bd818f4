/**
 * Load: many consecutive inspections in one process on the reference model, with heap and RSS
 * sampled (after a full GC) every `every` runs. Shared by test/unit/reliability/load.test.ts and the bench.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import { inspectText, type InspectResult } from "../../src/core/inspect";
import { HookedModel } from "../../src/core/model/hooked-model";

/**
 * Bounds over 1,000 inspections. Retained heap is flat to within 0.5 MB, so 4 MB catches a leak of
 * 4 KB per inspection (keeping each result leaks about 50 KB). RSS moves in steps of several MB as
 * malloc and onnxruntime's arena settle (+22 MB over 4,000 runs, flat between steps; one CI run
 * saw +21 MB over the second half of 1,000), so its bounds are loose enough not to flake on a busy
 * machine and only catch a native leak of about 128 KB per inspection (an unreleased logits tensor
 * is more).
 */
export const LOAD_BOUNDS = { heapGrowthMb: 4, lateRssGrowthMb: 64, rssGrowthMb: 160 };

export interface MemorySample {
  readonly runs: number;
  readonly heapMb: number;
  readonly rssMb: number;
  readonly externalMb: number;
}

export interface LoadReport {
  readonly runs: number;
  readonly samples: MemorySample[];
  /** Growth from the first sample (taken after warm-up) to the largest later one. */
  readonly heapGrowthMb: number;
  readonly rssGrowthMb: number;
  /** RSS growth over the second half of the runs: a steady leak shows here, allocator settling does not. */
  readonly lateRssGrowthMb: number;
  readonly msPerRun: number;
}

const ROOT = path.join(__dirname, "..", "..");

/** A full collection, so samples measure what is retained, not what is waiting to be collected. */
function collector(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

function sample(runs: number, gc: () => void): MemorySample {
  gc();
  gc();
  const m = process.memoryUsage();
  const mb = (b: number) => b / (1024 * 1024);
  return { runs, heapMb: mb(m.heapUsed), rssMb: mb(m.rss), externalMb: mb(m.external + m.arrayBuffers) };
}

export interface LoadOptions {
  readonly runs?: number;
  readonly every?: number;
  readonly warmup?: number;
  readonly onSample?: (s: MemorySample) => void;
  /** Sees each result (a test keeps them all to show that the monitor catches a leak). */
  readonly onResult?: (result: InspectResult) => void;
}

export async function runLoad(options: LoadOptions = {}): Promise<LoadReport> {
  const runs = options.runs ?? 1000;
  const every = options.every ?? 100;
  const warmup = options.warmup ?? 20;
  const texts = ["story.txt", "ioi.txt", "arith-cot.txt", "hinted-choice.txt"].map((f) => fs.readFileSync(path.join(ROOT, "bench", "examples", f), "utf8").slice(0, 400));
  const gc = collector();
  const model = await HookedModel.load(path.join(ROOT, "models", "reference"), { cacheDir: null, threads: 1 });
  const samples: MemorySample[] = [];
  let timed = 0;
  try {
    // Warm-up fills onnxruntime's arenas and V8's code caches: growth is measured after it.
    for (let i = 0; i < warmup; i++) await inspectText(model, texts[i % texts.length]);
    samples.push(sample(0, gc));
    options.onSample?.(samples[0]);
    const started = performance.now();
    for (let i = 1; i <= runs; i++) {
      const result = await inspectText(model, texts[i % texts.length]);
      if (result.tokens.length === 0) throw new Error("an inspection returned no tokens");
      options.onResult?.(result);
      if (i % every === 0) {
        timed += performance.now();
        const s = sample(i, gc);
        samples.push(s);
        options.onSample?.(s);
        timed -= performance.now();
      }
    }
    timed += performance.now() - started;
  } finally {
    await model.dispose();
  }
  const first = samples[0];
  const half = samples[Math.floor((samples.length - 1) / 2)];
  return {
    runs,
    samples,
    heapGrowthMb: Math.max(...samples.map((s) => s.heapMb)) - first.heapMb,
    rssGrowthMb: Math.max(...samples.map((s) => s.rssMb)) - first.rssMb,
    lateRssGrowthMb: Math.max(...samples.filter((s) => s.runs >= half.runs).map((s) => s.rssMb)) - half.rssMb,
    msPerRun: timed / runs,
  };
}

export function formatCurve(samples: readonly MemorySample[]): string {
  const rows = samples.map((s) => `  ${String(s.runs).padStart(5)}  ${s.heapMb.toFixed(1).padStart(7)}  ${s.rssMb.toFixed(1).padStart(7)}  ${s.externalMb.toFixed(1).padStart(8)}`);
  return [`  ${"runs".padStart(5)}  ${"heap MB".padStart(7)}  ${"RSS MB".padStart(7)}  ${"ext. MB".padStart(8)}`, ...rows].join("\n");
}
