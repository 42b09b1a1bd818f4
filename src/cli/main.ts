#!/usr/bin/env node
/**
 * `loupe`: the command line over src/core, for CI and benchmarks. Each subcommand is a module in
 * ./commands; this file only dispatches.
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { LoupeError } from "../core/errors";
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

export { bundledModelFolder } from "./command";
export { formatInspect } from "./commands/inspect";

const COMMANDS: readonly Command[] = [inspectCommand, generateCommand, patchCommand, attributeCommand, faithfulnessCommand, probeCommand, auditCommand, featuresCommand, steerCommand, saeCommand, pullCommand];

export function usage(): string {
  return `Usage:\n${COMMANDS.map((c) => `  ${c.usage.replace(/\n/g, "\n  ")}`).join("\n")}

  --model DIR|ORG/NAME[@REV]
                a Hugging Face GPT-2- or Llama-family folder (config.json, model.safetensors or its shards,
                tokenizer.json), or a repo id in the Hugging Face cache (see loupe pull);
                default: the bundled reference model.
  --json        machine-readable output.
  --compact-weights
                keep f16/bf16 weights in memory as stored, cast to float32 layer by layer during every run
                (a bf16 model takes about a quarter of the memory once loaded; runs are slower, generation most).
  --ungroup-grouped-query-attention
                grouped-query models: attn.hook_k and attn.hook_v get one slot per query head instead of one per
                key/value head (TransformerLens's ungroup_grouped_query_attention), e.g. for an SAE trained so.`;
}

const interrupted = new AbortController();

const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  readStdin: () => fs.readFileSync(0, "utf8"),
  progress: (text) => void process.stderr.write(`${text}\n`),
  signal: interrupted.signal,
};

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    io.out(`${usage()}\n`);
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new LoupeError("bad-argument", `Unknown command "${name}".\n\n${usage()}`);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, options: { ...COMMON_OPTIONS, ...command.options } });
  } catch (error) {
    throw new LoupeError("bad-argument", `${error instanceof Error ? error.message : String(error)}\n\n  ${command.usage}`);
  }
  const modelFolder = typeof parsed.values.model === "string" ? resolveModelFolder(parsed.values.model) : bundledModelFolder();
  return command.run({ values: parsed.values, positionals: parsed.positionals, modelFolder, io });
}

if (require.main === module) {
  // The first Ctrl+C asks long jobs to stop; a second one exits at once.
  process.once("SIGINT", () => {
    interrupted.abort();
    process.once("SIGINT", () => process.exit(130));
  });
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const message = error instanceof LoupeError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
      process.stderr.write(`loupe: ${message}\n`);
      process.exit(error instanceof LoupeError ? 2 : 1);
    },
  );
}
