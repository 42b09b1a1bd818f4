/**
 * Greedy generation before and after, in one process: HookedModel from a git revision's src/ (the
 * code before a change) and from this checkout, loaded on the same random-weight model and run
 * turn about, so each sees the same load. Per generated token (prompt of 16 tokens included, as
 * users wait for it): wall and CPU milliseconds, minimum and median over the rounds; and whether
 * both chose the same tokens.
 *
 *   npx tsx bench/models/generation-speed.ts                         (Gemma 3 270M's shape, f32)
 *   npx tsx bench/models/generation-speed.ts --preset qwen3-0.6b --threads 1,2 --rounds 5
 *   npx tsx bench/models/generation-speed.ts --dtype BF16 [--compact]  (stored as published; compactWeights)
 *   npx tsx bench/models/generation-speed.ts --baseline 8b9e1dd --new 32 --model /tmp/folder
 *
 * Models are written by bench/torch/time_llama.py (presets gemma3-270m, qwen3-0.6b, smollm2-135m)
 * into a temporary folder unless --model names one that has them. Peak memory is not measured here
 * (both models share the process): bench:models and bench:decode run one model a process.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { LoadOptions } from "../../src/core/model/hooked-model";
import { HookedModel } from "../../src/core/model/hooked-model";
import { revisionSrc } from "../speed/revision-src";

const PYTHON = process.env.LOUPE_TORCH_PYTHON ?? "/usr/bin/python3";
const PROMPT_TOKENS = 16;

interface Generator {
  generate(prompt: readonly number[], options: { maxNewTokens: number; stopAtEos: boolean }): Promise<{ tokens: number[] }>;
  dispose(): Promise<void>;
}
type Load = (folder: string, options: LoadOptions) => Promise<Generator>;

interface Timing {
  readonly wall: number[];
  readonly cpu: number[];
  tokens: number[];
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const least = (xs: readonly number[]) => Math.min(...xs);

async function timeGeneration(model: Generator, prompt: readonly number[], newTokens: number, into: Timing): Promise<void> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const { tokens } = await model.generate(prompt, { maxNewTokens: newTokens, stopAtEos: false });
  const used = process.cpuUsage(cpu);
  into.wall.push((performance.now() - start) / tokens.length);
  into.cpu.push((used.user + used.system) / 1000 / tokens.length);
  into.tokens = tokens;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      preset: { type: "string", default: "gemma3-270m" },
      dtype: { type: "string", default: "F32" },
      compact: { type: "boolean", default: false },
      baseline: { type: "string", default: "8b9e1dd" },
      threads: { type: "string", default: "2" },
      rounds: { type: "string", default: "4" },
      new: { type: "string", default: "32" },
      model: { type: "string" },
    },
  });
  const folder = values.model ?? fs.mkdtempSync(path.join(os.tmpdir(), `loupe-generation-${values.preset}-`));
  if (!fs.existsSync(path.join(folder, "model.safetensors"))) {
    execFileSync(PYTHON, [path.join(__dirname, "..", "torch", "time_llama.py"), folder, "--write-random", "--preset", values.preset, "--dtype", values.dtype]);
  }
  const baselineDir = revisionSrc(values.baseline, "loupe-generation-baseline-");
  const before = (await import(path.join(baselineDir, "src", "core", "model", "hooked-model.ts"))) as { HookedModel: { load: Load } };
  const variants: Array<[string, Load]> = [
    [`before (${values.baseline})`, (f, o) => before.HookedModel.load(f, o)],
    ["after (this checkout)", (f, o) => HookedModel.load(f, o)],
  ];
  const newTokens = Number(values.new);
  const rounds = Number(values.rounds);
  const load = os.loadavg()[0];
  const lines: string[] = [];
  try {
    for (const threads of values.threads.split(",").map(Number)) {
      const models = await Promise.all(variants.map(([, loadModel]) => loadModel(folder, { cacheDir: null, threads, compactWeights: values.compact })));
      const prompt = Array.from({ length: PROMPT_TOKENS }, (_, i) => 100 + 7 * i);
      const timings: Timing[] = models.map(() => ({ wall: [], cpu: [], tokens: [] }));
      // A first generation each creates the decode graph's session: not timed.
      for (const model of models) await model.generate(prompt, { maxNewTokens: 2, stopAtEos: false });
      for (let r = 0; r < rounds; r++) for (const [i, model] of models.entries()) await timeGeneration(model, prompt, newTokens, timings[i]);
      const [first, last] = timings;
      const same = first.tokens.length === last.tokens.length && first.tokens.every((t, i) => t === last.tokens[i]);
      variants.forEach(([name], i) => {
        const t = timings[i];
        const ratio = i === 0 ? "" : `${(median(t.cpu) / median(first.cpu)).toFixed(2)}x`;
        lines.push(`| ${threads} | ${name} | ${least(t.wall).toFixed(1)} | ${median(t.wall).toFixed(1)} | ${(1000 / least(t.wall)).toFixed(1)} | ${least(t.cpu).toFixed(1)} | ${median(t.cpu).toFixed(1)} | ${ratio} | ${i === 0 ? "" : same ? "yes" : "NO"} |`);
      });
      await Promise.all(models.map((m) => m.dispose()));
    }
  } finally {
    fs.rmSync(baselineDir, { recursive: true, force: true });
  }
  const stored = `${values.dtype.toLowerCase()}${values.compact ? ", compactWeights" : ""}`;
  console.log(`\ngreedy generation, random ${values.preset} shape (weights ${stored}), ${newTokens} tokens after ${PROMPT_TOKENS}, ${rounds} rounds turn about; ${os.cpus().length} CPUs, load average ${load.toFixed(1)} at start and ${os.loadavg()[0].toFixed(1)} at the end`);
  console.log("| threads | code | wall ms / token, min | median | tok/s at min | CPU ms / token, min | median | CPU vs before (median) | same tokens |\n|---:|---|---:|---:|---:|---:|---:|---:|---|");
  for (const line of lines) console.log(line);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
