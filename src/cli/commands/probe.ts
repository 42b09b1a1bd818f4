import * as path from "node:path";
import { LoupeError } from "../../core/errors";
import {
  loadProbe,
  parseProbeDataset,
  type Pooling,
  type ProbeApplication,
  probeFileName,
  probeFolder,
  type ProbeTraining,
  saveProbe,
} from "../../core/probes";
import { finiteNumber, positiveInt, readInput, stringList, stringOption, withBackend, type Command, type CommandArgs } from "../command";
import { fixed, renderTable, visibleToken } from "../format";

const USAGE = `loupe probe train DATA (--hook H ... | --all-layers) [--concept LABEL] [--pooling mean|last]
      [--folds K] [--c C] [--class-weight balanced|none] [--seed N] [--out FILE] [--model DIR] [--json]
    Train a logistic-regression probe on a JSONL dataset ({"text","label"} per line for prompts,
    {"text","spans":[{"start","end","label"}]} for tokens; --concept LABEL probes one span label
    against the rest). Reports k-fold accuracy, control-task accuracy (Hewitt & Liang) and
    selectivity per hook, and saves the best probe (default .loupe/probes/<data>.<hook>.json).
loupe probe apply PROBE FILE|- [--model DIR] [--json]
    Score each token of a text with a saved probe (and the whole text, for a prompt-level probe).`;

export function formatTrain(training: ProbeTraining, saved: string): string {
  const header = ["hook", "cv acc", "cv bal acc", "control acc", "selectivity", "train acc", "iters", "s"];
  const rows = training.hooks.map(({ hook, metrics: m, seconds }) => {
    return [
      `${hook === training.best ? "*" : " "} ${hook}`,
      fixed(m.cv?.accuracy ?? null, 3),
      fixed(m.cv?.balancedAccuracy ?? null, 3),
      fixed(m.control?.accuracy ?? null, 3),
      fixed(m.selectivity ?? null, 3),
      fixed(m.trainAccuracy, 3),
      `${m.iterations}${m.converged ? "" : "!"}`,
      fixed(seconds, 2),
    ];
  });
  const m = training.hooks.find((h) => h.hook === training.best)!.metrics;
  const counts = Object.entries(m.classCounts)
    .map(([c, n]) => `${c} ${n}`)
    .join(", ");
  const lines = [
    renderTable(header, rows),
    "",
    `${m.rows} rows; classes: ${counts}; majority baseline ${fixed(m.majorityBaseline, 3)}${m.cv ? `; ${m.cv.folds}-fold cross-validation` : ""}.`,
    ...warningLines(training),
    `best: ${training.best}; saved to ${saved}`,
  ];
  return lines.join("\n");
}

/** Each warning once: data warnings are the same for every hook, fit warnings name their hook. */
function warningLines(training: ProbeTraining): string[] {
  const lines = new Set<string>();
  for (const { hook, metrics } of training.hooks) {
    for (const w of metrics.warnings) lines.add(`warning: ${/^(Classes are|The smallest class)/.test(w) ? w : `${hook}: ${w}`}`);
  }
  return [...lines];
}

export function formatApply(result: ProbeApplication): string {
  const showAll = result.classes.length <= 6;
  const header = ["#", "token", "label", ...(showAll ? result.classes.map((c) => `p(${c})`) : ["p"])];
  const rows = result.tokens.map((t) => [
    String(t.index),
    `"${visibleToken(t.text)}"`,
    t.label,
    ...(showAll ? t.probs.map((p) => fixed(p, 3)) : [fixed(Math.max(...t.probs), 3)]),
  ]);
  const verdict = result.sequence
    ? `\ntext: ${result.sequence.label} (${result.classes.map((c, i) => `${c} ${fixed(result.sequence?.probs[i] ?? null, 3)}`).join(", ")})`
    : "";
  return `${renderTable(header, rows)}${verdict}\n${result.hook}, ${result.level}-level probe`;
}

async function train(args: CommandArgs): Promise<number> {
  const { values, positionals, io } = args;
  const dataFile = positionals[1];
  const dataset = parseProbeDataset(readInput(dataFile, io, "dataset (JSONL)"), dataFile === "-" ? "<stdin>" : dataFile);
  const hooksGiven = stringList(values, "hook");
  if (!hooksGiven === !values["all-layers"]) throw new LoupeError("bad-argument", "Give --hook NAME (one or more) or --all-layers.\n\n  " + USAGE);
  const pooling = stringOption(values, "pooling") ?? "mean";
  if (pooling !== "mean" && pooling !== "last") throw new LoupeError("bad-argument", `--pooling must be mean or last (got ${pooling}).`);
  const classWeight = stringOption(values, "class-weight") ?? "balanced";
  if (classWeight !== "balanced" && classWeight !== "none") throw new LoupeError("bad-argument", `--class-weight must be balanced or none (got ${classWeight}).`);
  const concept = stringOption(values, "concept");
  const folds = values.folds === "0" ? 0 : positiveInt(values, "folds", 5);
  const C = finiteNumber(values, "c", 1);
  const seed = finiteNumber(values, "seed", 0);

  const training = await withBackend(args, (backend) =>
    backend.request("trainProbes", { dataFile: dataset.file, dataset, hooks: hooksGiven, pooling: pooling as Pooling, concept, folds, C, classWeight, seed }),
  );
  const out = stringOption(values, "out") ?? path.join(probeFolder(process.cwd()), probeFileName(dataFile === "-" ? "stdin" : dataFile, training.best, concept));
  saveProbe(out, training.probes[training.best]);
  if (values.json) {
    const { probes: _probes, ...summary } = training;
    io.out(`${JSON.stringify({ ...summary, saved: out }, null, 2)}\n`);
  } else {
    io.out(`${formatTrain(training, out)}\n`);
  }
  return 0;
}

async function apply(args: CommandArgs): Promise<number> {
  const { values, positionals, io } = args;
  if (positionals[1] === undefined) throw new LoupeError("bad-argument", `Missing the probe file.\n\n  ${USAGE}`);
  const probe = loadProbe(positionals[1]);
  const text = readInput(positionals[2], io, "text file");
  const result = await withBackend(args, (backend) => backend.request("applyProbe", { probe, text }));
  io.out(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatApply(result)}\n`);
  return 0;
}

export const probeCommand: Command = {
  name: "probe",
  usage: USAGE,
  options: {
    hook: { type: "string", multiple: true },
    "all-layers": { type: "boolean", default: false },
    concept: { type: "string" },
    pooling: { type: "string" },
    folds: { type: "string" },
    c: { type: "string" },
    "class-weight": { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
  },
  async run(args) {
    const sub = args.positionals[0];
    if (sub === "train") return train(args);
    if (sub === "apply") return apply(args);
    throw new LoupeError("bad-argument", `${sub === undefined ? "Missing" : `Unknown`} probe subcommand${sub === undefined ? "" : ` "${sub}"`}: use train or apply.\n\n  ${USAGE}`);
  },
};
