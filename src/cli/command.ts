/**
 * One `loupe` subcommand: its usage text, its own options, and what it does. Commands live in
 * src/cli/commands/ and are listed in main.ts, so adding one touches one line there.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ParseArgsConfig } from "node:util";
import { LoupeError } from "../core/errors";
import { HookedModel, type LoadOptions } from "../core/model/hooked-model";
import { checkModelFits } from "../core/model/memory-limit";
import { InProcessBackend } from "../core/requests";
import { decodeText, readTextFile, type TextOptions } from "../core/text-file";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;
export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CliIo {
  /** Standard output (tests capture it). */
  out(text: string): void;
  /** Standard input, read whole, for `-`: bytes (decoded like a file) or text already decoded. */
  readStdin(): string | Uint8Array;
  /** How input files and standard input are decoded (--encoding; default UTF-8, strictly). */
  readonly encoding?: string;
  /** Progress lines for long jobs (standard error; tests may leave it out). */
  progress?(text: string): void;
  /** Fires when the user interrupts (Ctrl+C): long jobs stop cleanly and save nothing. */
  readonly signal?: AbortSignal;
}

export interface CommandArgs {
  readonly values: ParsedValues;
  readonly positionals: readonly string[];
  /** --model, or the bundled reference model. */
  readonly modelFolder: string;
  readonly io: CliIo;
}

export interface Command {
  readonly name: string;
  /** Lines shown by `loupe --help`, starting with the synopsis. */
  readonly usage: string;
  readonly options: OptionSpec;
  run(args: CommandArgs): Promise<number>;
}

/** Options every command takes. */
export const COMMON_OPTIONS: OptionSpec = {
  model: { type: "string" },
  json: { type: "boolean", default: false },
  "compact-weights": { type: "boolean", default: false },
  "ungroup-grouped-query-attention": { type: "boolean", default: false },
  encoding: { type: "string" },
  "max-memory-mb": { type: "string" },
};

/** How the common options ask for the model to be loaded (--compact-weights, --ungroup-grouped-query-attention, --max-memory-mb). */
export function loadOptions(values: ParsedValues): LoadOptions {
  const limitMB = stringOption(values, "max-memory-mb") === undefined ? undefined : positiveInt(values, "max-memory-mb", 1);
  return {
    compactWeights: values["compact-weights"] === true,
    ungroupGroupedQueryAttention: values["ungroup-grouped-query-attention"] === true,
    ...(limitMB === undefined ? {} : { maxMemoryBytes: limitMB * 2 ** 20 }),
  };
}

/** The --model folder, loaded in process; refused before loading when its weights would pass --max-memory-mb (as the editor's worker does). */
export async function loadModel(modelFolder: string, values: ParsedValues): Promise<HookedModel> {
  const options = loadOptions(values);
  checkModelFits(modelFolder, options.maxMemoryBytes, options.compactWeights);
  return HookedModel.load(modelFolder, options);
}

/**
 * Load the --model folder into an in-process backend, run the command's requests on it, and
 * release it: commands ask through the same request layer as the editor (src/core/requests).
 */
export async function withBackend<T>(args: CommandArgs, run: (backend: InProcessBackend) => Promise<T>, backend = new InProcessBackend()): Promise<T> {
  try {
    const { maxMemoryBytes, ...options } = loadOptions(args.values);
    await backend.request("load", { folder: args.modelFolder, ...options, maxModelBytes: maxMemoryBytes });
    return await run(backend);
  } finally {
    await backend.dispose();
  }
}

/** The bundled reference model, next to the built CLI (dist/cli.js -> models/reference). */
export function bundledModelFolder(): string {
  const candidates = [path.join(__dirname, "..", "models", "reference"), path.join(__dirname, "..", "..", "models", "reference")];
  return candidates.find((c) => fs.existsSync(path.join(c, "config.json"))) ?? candidates[0];
}

export function readInput(file: string | undefined, io: CliIo, what = "input file"): string {
  if (file === undefined) throw new LoupeError("bad-argument", `Missing ${what} (use - for standard input). See loupe --help.`);
  if (file === "-") {
    const input = io.readStdin();
    return typeof input === "string" ? input : decodeText(input, "standard input", textOptions(io));
  }
  return readTextFile(file, textOptions(io));
}

/** How input text is decoded: --encoding, and advice that names it when bytes do not fit. */
export function textOptions(io: CliIo): TextOptions {
  return { encoding: io.encoding, advice: "or pass its encoding (--encoding latin1 for Latin-1 or Windows-1252 text)" };
}

export function stringOption(values: ParsedValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function positiveInt(values: ParsedValues, name: string, fallback: number): number {
  const value = stringOption(values, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new LoupeError("bad-argument", `--${name} must be a positive integer (got ${value}).`);
  return n;
}

export function finiteNumber(values: ParsedValues, name: string, fallback: number): number {
  const value = stringOption(values, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new LoupeError("bad-argument", `--${name} must be a number (got ${value}).`);
  return n;
}

export function stringList(values: ParsedValues, name: string): string[] | undefined {
  const v = values[name];
  return Array.isArray(v) ? v.map(String) : typeof v === "string" ? [v] : undefined;
}
