#!/usr/bin/env node
/**
 * `loupe`: the command line over src/core, for CI and benchmarks.
 *   loupe inspect FILE|- [--model DIR] [--top-k N] [--json]
 *   loupe generate FILE|- [--model DIR] [--max-tokens N] [--temperature T --seed S] [--stop STR]... [--json]
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { LoupeError } from "../core/errors";
import { inspectText, type InspectResult } from "../core/inspect";
import { HookedModel } from "../core/model/hooked-model";
import { fixed, renderTable, visibleToken } from "./format";

const USAGE = `Usage:
  loupe inspect FILE|- [--model DIR] [--top-k N] [--json]
      Each token with its surprisal (bits), entropy, top next-token predictions and the
      residual-stream norm after each block.
  loupe generate FILE|- [--model DIR] [--max-tokens N] [--temperature T --seed S] [--stop STR]... [--json]
      Continue the text (greedy unless --temperature > 0).

  --model DIR   a Hugging Face GPT-2-family folder (config.json, model.safetensors, tokenizer.json);
                default: the bundled reference model.`;

/** The bundled reference model, next to the built CLI (dist/cli.js -> models/reference). */
export function bundledModelFolder(): string {
  const candidates = [path.join(__dirname, "..", "models", "reference"), path.join(__dirname, "..", "..", "models", "reference")];
  return candidates.find((c) => fs.existsSync(path.join(c, "config.json"))) ?? candidates[0];
}

function readInput(file: string | undefined): string {
  if (file === undefined) throw new LoupeError("bad-argument", `Missing input file (use - for standard input).\n\n${USAGE}`);
  if (file === "-") return fs.readFileSync(0, "utf8");
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    throw new LoupeError("missing-file", `Cannot read ${file}.`, file);
  }
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new LoupeError("bad-argument", `--${name} must be a positive integer (got ${value}).`);
  return n;
}

export function formatInspect(result: InspectResult, topK: number): string {
  const header = ["#", "token", "surprisal", "entropy", `top-${topK} next`, ...Array.from({ length: result.nLayers }, (_, l) => `|resid ${l}|`)];
  const rows = result.tokens.map((t) => [
    String(t.index),
    `"${visibleToken(t.text)}"`,
    fixed(t.surprisal),
    fixed(t.entropy),
    t.top.slice(0, topK).map((p) => `"${visibleToken(p.text)}" ${(p.prob * 100).toFixed(0)}%`).join(" "),
    ...t.residNorm.map((n) => fixed(n, 1)),
  ]);
  const known = result.tokens.filter((t) => t.surprisal !== null);
  const mean = known.reduce((s, t) => s + (t.surprisal ?? 0), 0) / Math.max(1, known.length);
  return `${renderTable(header, rows)}\n\n${result.tokens.length} tokens, mean surprisal ${mean.toFixed(2)} bits, ${result.elapsedMs.toFixed(0)} ms (${result.modelFolder})`;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      "top-k": { type: "string" },
      json: { type: "boolean", default: false },
      "max-tokens": { type: "string" },
      temperature: { type: "string" },
      seed: { type: "string" },
      stop: { type: "string", multiple: true },
    },
  });
  const folder = values.model ?? bundledModelFolder();
  switch (command) {
    case "inspect": {
      const text = readInput(positionals[0]);
      const topK = positiveInt(values["top-k"], "top-k", 5);
      const model = await HookedModel.load(folder);
      try {
        const result = await inspectText(model, text, { topK });
        process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatInspect(result, topK)}\n`);
      } finally {
        await model.dispose();
      }
      return 0;
    }
    case "generate": {
      const text = readInput(positionals[0]);
      const model = await HookedModel.load(folder);
      try {
        const temperature = values.temperature === undefined ? 0 : Number(values.temperature);
        const seed = values.seed === undefined ? (temperature > 0 ? 0 : undefined) : Number(values.seed);
        const generation = await model.generate(text, {
          maxNewTokens: positiveInt(values["max-tokens"], "max-tokens", 64),
          temperature,
          seed,
          stop: values.stop,
        });
        process.stdout.write(values.json ? `${JSON.stringify(generation, null, 2)}\n` : `${text}${generation.text}\n`);
      } finally {
        await model.dispose();
      }
      return 0;
    }
    default:
      throw new LoupeError("bad-argument", `Unknown command "${command}".\n\n${USAGE}`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const message = error instanceof LoupeError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
      process.stderr.write(`loupe: ${message}\n`);
      process.exit(error instanceof LoupeError ? 2 : 1);
    },
  );
}
