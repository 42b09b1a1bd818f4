#!/usr/bin/env node
/**
 * `loupe`: the command line over src/core, for CI and benchmarks. Each subcommand is a module in
 * ./commands; this file only dispatches.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { errorText, LoupeError } from "../core/errors";
import { resolveModelFolder } from "../core/hub/model-reference";
import { bundledModelFolder, COMMON_OPTIONS, type CliIo, type Command } from "./command";
import { auditCommand } from "./commands/audit";
import { faithfulnessCommand } from "./commands/faithfulness";
import { generateCommand } from "./commands/generate";
import { inspectCommand } from "./commands/inspect";
import { patchCommand } from "./commands/patch";
import { probeCommand } from "./commands/probe";
import { attributeCommand } from "./commands/attribute";
import { featuresCommand } from "./commands/features";
import { saeCommand } from "./commands/sae";
import { steerCommand } from "./commands/steer";
import { pullCommand } from "./commands/pull";
import { labelsCommand } from "./commands/labels";
import { traceCommand } from "./commands/trace";
import { transcoderCommand } from "./commands/transcoder";
import { interveneCommand } from "./commands/intervene";

export { bundledModelFolder } from "./command";
export { formatInspect } from "./commands/inspect";

const COMMANDS: readonly Command[] = [inspectCommand, generateCommand, patchCommand, attributeCommand, faithfulnessCommand, probeCommand, auditCommand, featuresCommand, steerCommand, saeCommand, pullCommand, labelsCommand, traceCommand, transcoderCommand, interveneCommand];

const COMMON_OPTIONS_HELP = `  --model DIR|ORG/NAME[@REV]
                a Hugging Face GPT-2- or Llama-family folder (config.json, model.safetensors or its shards,
                tokenizer.json), or a repo id in the Hugging Face cache (see loupe pull);
                default: the bundled reference model.
  --json        machine-readable output.
  --compact-weights
                keep f16/bf16 weights in memory as stored, cast to float32 layer by layer during every run
                (a bf16 model takes about a quarter of the memory once loaded; runs are slower, generation most).
  --ungroup-grouped-query-attention
                grouped-query models: attn.hook_k and attn.hook_v get one slot per query head instead of one per
                key/value head (TransformerLens's ungroup_grouped_query_attention), e.g. for an SAE trained so.
  --max-memory-mb N
                refuse a model whose weights would need more than N MB once loaded, and any run that would
                pass N MB with its activations (the editor's loupe.maxModelMemoryMB); default: no limit
                (loupe trace: 4096 for its graph).
  --encoding E  how input files are decoded (default utf-8; e.g. latin1, utf-16le). Text that is not
                valid in it is refused, never read as replacement characters.
  -h, --help    this command's usage (loupe COMMAND --help).`;

/** The usage of these commands (all of them: `loupe --help`), then the options every command takes. */
export function usage(commands: readonly Command[] = COMMANDS): string {
  return `Usage:\n${commands.map((c) => `  ${c.usage.replace(/\n/g, "\n  ")}`).join("\n")}\n\n${COMMON_OPTIONS_HELP}`;
}

function isHelp(arg: string): boolean {
  return arg === "--help" || arg === "-h";
}

const interrupted = new AbortController();

const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  readStdin: () => fs.readFileSync(0),
  progress: (text) => void process.stderr.write(`${text}\n`),
  signal: interrupted.signal,
};

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || isHelp(name) || name === "help") {
    // `loupe help CMD` is `loupe CMD --help`.
    const asked = name === "help" && rest[0] !== undefined ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    io.out(`${usage(asked ? [asked] : COMMANDS)}\n`);
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new LoupeError("bad-argument", `Unknown command "${name}".\n\n${usage()}`);
  // --help or -h anywhere before "--" (after a subcommand too) prints this command's usage.
  const optionArgs = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (optionArgs.some(isHelp)) {
    io.out(`${usage([command])}\n`);
    return 0;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, options: { ...COMMON_OPTIONS, ...command.options } });
  } catch (error) {
    throw new LoupeError("bad-argument", `${error instanceof Error ? error.message : String(error)}\n\n  ${command.usage}`);
  }
  const modelFolder = typeof parsed.values.model === "string" ? resolveModelFolder(parsed.values.model) : bundledModelFolder();
  const encoding = typeof parsed.values.encoding === "string" ? parsed.values.encoding : undefined;
  return command.run({ values: parsed.values, positionals: parsed.positionals, modelFolder, io: encoding ? { ...io, encoding } : io });
}

/**
 * Exit once everything written has reached the pipe or terminal. process.exit does not wait for
 * a pipe's pending writes (stdout to a pipe is asynchronous on POSIX): output longer than the
 * pipe's buffer was cut short with exit code 0.
 */
function exitAfterOutput(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = () => --pending === 0 && process.exit(code);
  process.stdout.write("", done);
  process.stderr.write("", done);
}

/** A reader that went away (EPIPE: `loupe ... | head`) ends the run quietly, with the run's code so far. */
function endQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(typeof process.exitCode === "number" ? process.exitCode : 0);
    throw error;
  });
}

if (require.main === module) {
  endQuietlyOnClosedPipe(process.stdout);
  endQuietlyOnClosedPipe(process.stderr);
  // The first Ctrl+C asks long jobs to stop; a second one exits at once.
  process.once("SIGINT", () => {
    interrupted.abort();
    process.once("SIGINT", () => process.exit(130));
  });
  main(process.argv.slice(2)).then(exitAfterOutput, (error: unknown) => {
    const message = error instanceof LoupeError ? errorText(error, "cli") : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`loupe: ${message}\n`);
    exitAfterOutput(error instanceof LoupeError ? 2 : 1);
  });
}
