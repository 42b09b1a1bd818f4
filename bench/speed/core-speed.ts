/**
 * Core speed: Loupe's hooked forward (every hook cached) vs its plain forward, and vs the same
 * model in PyTorch eager with forward hooks, measured in the same run on random GPT-2 weights.
 *
 *   npm run bench:core            (needs Debian's python3-torch for the PyTorch column)
 *
 * Prints a table of medians and ratios. Targets (issue 2): hooked forward at least as fast as
 * PyTorch eager; full-cache overhead under 30% of the plain forward.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HookedModel } from "../../src/core/model/hooked-model";

interface Size {
  readonly name: string;
  readonly layers: number;
  readonly dModel: number;
  readonly heads: number;
  readonly vocab: number;
}

const SIZES: Size[] = [
  { name: "reference-size (4L, d128)", layers: 4, dModel: 128, heads: 4, vocab: 2048 },
  { name: "medium (8L, d512)", layers: 8, dModel: 512, heads: 8, vocab: 8192 },
];
const TOKENS = 256;
const REPS = Number(process.env.BENCH_REPS ?? 10);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const PYTHON = process.env.LOUPE_TORCH_PYTHON ?? "/usr/bin/python3";
const ROOT = path.join(__dirname, "..", "..");
const TORCH_SCRIPT = path.join(ROOT, "bench", "torch", "time_forward.py");
const TOKENIZER = path.join(ROOT, "test", "fixtures", "tiny-gpt2", "tokenizer.json");

/**
 * Median milliseconds of each function, warm. The functions take turns, round after round, so
 * that other processes' load on a shared machine falls on all of them alike; each timed run
 * follows an untimed run of the same function, so that it mostly pays for collecting its own
 * garbage (a full cache is ~100 MB of fresh buffers a run), not another function's.
 */
async function interleavedMedians(fns: readonly (() => Promise<unknown>)[], reps: number): Promise<number[]> {
  for (const fn of fns) await fn();
  const times = fns.map((): number[] => []);
  for (let round = 0; round < reps; round++) {
    for (const [i, fn] of fns.entries()) {
      await fn();
      const start = performance.now();
      await fn();
      times[i].push(performance.now() - start);
    }
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
}

function torchTiming(folder: string): { plain_ms: number; cache_ms: number } | undefined {
  try {
    const out = execFileSync(PYTHON, [TORCH_SCRIPT, folder, "--tokens", String(TOKENS), "--reps", String(REPS), "--threads", String(THREADS)], { encoding: "utf8" });
    return JSON.parse(out.trim().split("\n").pop() ?? "{}");
  } catch (error) {
    process.stderr.write(`PyTorch column skipped (${(error as Error).message.split("\n")[0]}). Install python3-torch and libopenblas0-pthread.\n`);
    return undefined;
  }
}

function writeRandomModel(size: Size): string {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-bench-"));
  execFileSync(PYTHON, [TORCH_SCRIPT, folder, "--write-random", "--layers", String(size.layers), "--d-model", String(size.dModel), "--heads", String(size.heads), "--vocab", String(size.vocab), "--ctx", String(TOKENS)]);
  fs.copyFileSync(TOKENIZER, path.join(folder, "tokenizer.json"));
  return folder;
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const size of SIZES) {
    const folder = writeRandomModel(size);
    const model = await HookedModel.load(folder, { cacheDir: null, threads: THREADS });
    const tokens = Array.from({ length: TOKENS }, (_, i) => (i * 7919) % size.vocab);
    const [plain, cached, residOnly] = await interleavedMedians(
      [
        () => model.run(tokens),
        () => model.runWithCache(tokens),
        // What SAEs, probes and patching read: the residual stream and the block outputs, not the T x T patterns.
        () => model.runWithCache(tokens, { names: (n) => /hook_(resid_\w+|attn_out|mlp_out)$/.test(n) }),
      ],
      REPS,
    );
    // What the overhead is made of: onnxruntime-node copies every fetched output into a fresh buffer.
    const full = await model.runWithCache(tokens);
    const cachedMb = full.cache.names.reduce((sum, name) => sum + full.cache.get(name).data.byteLength, 0) / 2 ** 20;
    const logitsMb = full.logits.data.byteLength / 2 ** 20;
    await model.dispose();
    const torch = torchTiming(folder);
    fs.rmSync(folder, { recursive: true, force: true });
    rows.push([
      size.name,
      plain.toFixed(1),
      cached.toFixed(1),
      `${(((cached - plain) / plain) * 100).toFixed(0)}%`,
      `${cachedMb.toFixed(0)} (logits ${logitsMb.toFixed(0)})`,
      `${(((residOnly - plain) / plain) * 100).toFixed(0)}%`,
      torch ? torch.plain_ms.toFixed(1) : "-",
      torch ? torch.cache_ms.toFixed(1) : "-",
      torch ? `${(torch.cache_ms / cached).toFixed(2)}x` : "-",
    ]);
  }
  const header = ["model", "loupe plain ms", "loupe all-hooks ms", "all-hooks overhead", "MB cached a run", "resid+outs overhead", "torch plain ms", "torch hooks ms", "torch/loupe (hooked)"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(" | ");
  console.log(`forward of ${TOKENS} tokens, batch 1, ${THREADS} threads, median of ${REPS} (${os.cpus()[0]?.model ?? "cpu"})`);
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const r of rows) console.log(line(r));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
