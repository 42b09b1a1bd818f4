import { LoupeError } from "../../core/errors";
import { DEFAULT_BATCH_ROWS } from "../../core/patching/batched-runs";
import type { MetricKind } from "../../core/patching/metrics";
import { parsePairFile } from "../../core/patching/pairs";
import { isSweepKind, type SweepKind } from "../../core/patching/plan";
import { DEFAULT_SWEEPS, type Direction, type PatchingResult, type SweepResult } from "../../core/patching/sweep";
import { positiveInt, readInput, stringOption, withBackend, type CliIo, type Command, type ParsedValues } from "../command";
import { fixed, renderTable, visibleToken } from "../format";

/** Editors end files with a newline; a prompt to be continued almost never means it. */
export function withoutFinalNewline(text: string): string {
  return text.replace(/\r?\n$/, "");
}

const quoted = (text: string) => `"${visibleToken(text)}"`;

function layerLabel(l: number): string {
  return `L${l}`;
}

/** Rows = tokens (clean, and corrupted where it differs), columns = layers. */
function positionTable(result: PatchingResult, sweep: SweepResult): string {
  const [L, T] = sweep.shape;
  const header = ["#", "clean", "corrupted", ...Array.from({ length: L }, (_, l) => layerLabel(l))];
  const rows = Array.from({ length: T }, (_, t) => {
    const clean = result.tokens.clean[t];
    const corrupted = result.tokens.corrupted[t];
    return [
      String(t),
      quoted(clean.text),
      corrupted.id === clean.id ? "" : quoted(corrupted.text),
      ...Array.from({ length: L }, (_, l) => fixed(sweep.normalised[l * T + t])),
    ];
  });
  const strongest = Array.from({ length: L }, (_, l) => {
    let best = 0;
    for (let t = 1; t < T; t++) if (sweep.normalised[l * T + t] > sweep.normalised[l * T + best]) best = t;
    return `${layerLabel(l)} ${best} ${quoted(result.tokens.clean[best].text)} (${fixed(sweep.normalised[l * T + best])})`;
  });
  return `${renderTable(header, rows)}\nstrongest per layer: ${strongest.join("; ")}`;
}

function headTable(sweep: SweepResult): string {
  const [L, H] = sweep.shape;
  const header = ["layer", ...Array.from({ length: H }, (_, h) => `H${h}`)];
  const rows = Array.from({ length: L }, (_, l) => [layerLabel(l), ...Array.from({ length: H }, (_, h) => fixed(sweep.normalised[l * H + h]))]);
  const order = sweep.normalised.map((v, i) => [v, i] as const).filter(([v]) => Number.isFinite(v)).sort((a, b) => Math.abs(b[0]) - Math.abs(a[0]));
  const top = order.slice(0, 5).map(([v, i]) => `L${Math.floor(i / H)}H${i % H} ${fixed(v)}`);
  return `${renderTable(header, rows)}\nlargest effects: ${top.join(", ")}`;
}

function headByPositionTable(result: PatchingResult, sweep: SweepResult, count = 10): string {
  const [, H, T] = sweep.shape;
  const order = sweep.normalised.map((v, i) => [v, i] as const).filter(([v]) => Number.isFinite(v)).sort((a, b) => Math.abs(b[0]) - Math.abs(a[0]));
  const rows = order.slice(0, count).map(([v, i]) => {
    const t = i % T;
    const h = Math.floor(i / T) % H;
    const l = Math.floor(i / (T * H));
    return [`L${l}H${h}`, String(t), quoted(result.tokens.clean[t].text), fixed(v)];
  });
  return `${renderTable(["head", "#", "token", "normalised"], rows)}\n(the ${count} largest of ${sweep.normalised.length} cells; --json has all)`;
}

export function formatPatching(result: PatchingResult): string {
  const { baselines } = result;
  const what =
    result.direction === "denoising"
      ? "denoising: each cell patches one clean activation into the corrupted run (1 = restores the clean answer)"
      : "noising: each cell patches one corrupted activation into the clean run (near 0 = the clean answer needs it)";
  const parts = [
    `metric ${result.metricLabel} at token ${result.position} ${quoted(result.tokens.clean[result.position].text)}: clean ${fixed(baselines.clean, 3)}, corrupted ${fixed(baselines.corrupted, 3)}`,
    `${what}; normalised: 0 = corrupted, 1 = clean (Zhang & Nanda 2023)`,
  ];
  for (const sweep of result.sweeps) {
    const title = `\n${sweep.kind} (${sweep.hookPattern}${sweep.kind === "heads" ? ", all positions" : ""})`;
    const body = sweep.kind === "heads" ? headTable(sweep) : sweep.kind === "heads_by_pos" ? headByPositionTable(result, sweep) : positionTable(result, sweep);
    parts.push(title, body);
  }
  const skipped = result.sweeps.reduce((s, r) => s + r.skipped, 0);
  parts.push(
    `\n${result.variantsRun} patched runs in ${result.calls} onnxruntime calls, ${result.elapsedMs.toFixed(0)} ms` +
      (skipped ? ` (${skipped} cells patch identical activations and took the base run's value)` : ""),
  );
  return parts.join("\n");
}

function parseSweeps(values: ParsedValues): readonly SweepKind[] {
  const spec = stringOption(values, "sweep");
  if (spec === undefined) return DEFAULT_SWEEPS;
  const names = spec.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of names) if (!isSweepKind(name)) throw new LoupeError("bad-argument", `--sweep: unknown sweep "${name}"; choose from resid_pre, resid_mid, resid_post, attn_out, mlp_out, heads, heads_by_pos.`);
  return names as SweepKind[];
}

function parseDirection(values: ParsedValues): Direction {
  const d = stringOption(values, "direction") ?? "denoising";
  if (d !== "denoising" && d !== "noising") throw new LoupeError("bad-argument", `--direction must be denoising or noising (got ${d}).`);
  return d;
}

/** The two prompts and the answers given for them, from --clean/--corrupt or from a pair file. */
function promptTexts(values: ParsedValues, io: CliIo): { clean: string; corrupted: string; answer?: string; wrong?: string } {
  const pairsFile = stringOption(values, "pairs");
  const own = { answer: stringOption(values, "answer"), wrong: stringOption(values, "wrong") };
  if (pairsFile === undefined) {
    if (values.pair !== undefined) throw new LoupeError("bad-argument", "--pair picks a pair from --pairs FILE.");
    const clean = withoutFinalNewline(readInput(stringOption(values, "clean"), io, "--clean prompt file"));
    const corrupted = withoutFinalNewline(readInput(stringOption(values, "corrupt"), io, "--corrupt prompt file"));
    return { clean, corrupted, ...own };
  }
  if (values.clean !== undefined || values.corrupt !== undefined) throw new LoupeError("bad-argument", "Give --pairs, or --clean and --corrupt, not both.");
  const pairs = parsePairFile(readInput(pairsFile, io, "--pairs file"), pairsFile);
  const n = positiveInt(values, "pair", 1);
  if (n > pairs.length) throw new LoupeError("bad-argument", `--pair ${n}: ${pairsFile} holds ${pairs.length} pair(s).`);
  const pair = pairs[n - 1];
  // An answer given on the command line replaces the pair's answers, wrong one included.
  return { clean: pair.clean, corrupted: pair.corrupted, ...(own.answer !== undefined ? own : { answer: pair.answer, wrong: own.wrong ?? pair.wrong }) };
}

export const patchCommand: Command = {
  name: "patch",
  usage: `loupe patch (--clean FILE --corrupt FILE | --pairs FILE.jsonl [--pair N]) --answer TOKEN [--wrong TOKEN]
        [--metric logit-diff|logprob|kl] [--direction denoising|noising]
        [--sweep resid_pre,attn_out,mlp_out,heads,heads_by_pos,...] [--first-distinct] [--batch-size N] [--model DIR] [--json]
    Activation patching between two prompts of the same token length, scored at the last token
    (a single final newline in FILE is ignored). --first-distinct scores multi-token answers by
    their first differing tokens, appending the tokens they share to both prompts. --pairs reads
    a JSONL pair file, one {"clean", "corrupted", "answer"?, "wrong"?} a line, and patches pair N
    (default 1); --answer and --wrong override the pair's own.`,
  options: {
    clean: { type: "string" },
    corrupt: { type: "string" },
    pairs: { type: "string" },
    pair: { type: "string" },
    answer: { type: "string" },
    wrong: { type: "string" },
    metric: { type: "string" },
    direction: { type: "string" },
    sweep: { type: "string" },
    "first-distinct": { type: "boolean", default: false },
    "batch-size": { type: "string" },
  },
  async run(args) {
    const { values, io } = args;
    const direction = parseDirection(values);
    const sweeps = parseSweeps(values);
    const batchSize = positiveInt(values, "batch-size", DEFAULT_BATCH_ROWS);
    const prompts = promptTexts(values, io);
    const metric = stringOption(values, "metric") as MetricKind | undefined;
    // Unlike the editor, the command line does not fall back to KL unasked.
    if (metric === undefined && prompts.answer === undefined && prompts.wrong === undefined) {
      throw new LoupeError("bad-argument", "Say what to score: --answer ' Mia' --wrong ' Leo' (logit difference), --answer alone (log-prob), or --metric kl.");
    }
    const params = { ...prompts, metric, firstDistinct: values["first-distinct"] === true, direction, sweeps, batchSize };
    const { result } = await withBackend(args, (backend) => backend.request("patch", params));
    io.out(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatPatching(result)}\n`);
    return 0;
  },
};
