/**
 * Faithfulness through the circuit against the battery's ablation scores, on held-out items of the
 * reference model's faithful (arith-cot: the answer is read from the CoT) and decorative
 * (lookup-decorative: the answer is memorised) families. For every item: the battery (ablation
 * scores), then the attribution graph of the answer's first token (circuit-shares.ts), and the
 * AUROC of each score at telling the two families apart, PLT and CLT side by side.
 *
 *   npx tsx bench/faithfulness/circuit-faithfulness-bench.ts [--model models/reference] [--n 16] [--seed 1] [--max-feature-nodes 7500] [--sets plt,clt]
 *       [--transcoders DIR (holding plt/ and clt/; default MODEL/transcoders)]
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { loadTranscoders } from "../../src/core/circuits";
import { checkFaithfulness, type FaithfulnessReport } from "../../src/core/faithfulness";
import { circuitFaithfulness, type CircuitFaithfulness } from "../../src/core/faithfulness/circuit-shares";
import { HookedModel } from "../../src/core/model/hooked-model";
import { generateHeldout } from "../tasks/generate";
import { auroc } from "./faithfulness-bench";

interface Scored {
  readonly report: FaithfulnessReport;
  readonly circuits: Record<string, CircuitFaithfulness>;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n");
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { model: { type: "string", default: "models/reference" }, n: { type: "string", default: "16" }, seed: { type: "string", default: "1" }, "max-feature-nodes": { type: "string", default: "7500" }, sets: { type: "string", default: "plt,clt" }, transcoders: { type: "string" } },
  });
  const n = Number(values.n);
  const seed = Number(values.seed);
  const maxFeatureNodes = Number(values["max-feature-nodes"]);
  const model = await HookedModel.load(values.model, { threads: 2 });
  const sets = Object.fromEntries(values.sets.split(",").map((kind) => [kind, loadTranscoders(path.join(values.transcoders ?? path.join(values.model, "transcoders"), kind))]));
  console.log(`faithfulness through the circuit on ${values.model}: ${n} held-out items per family (seed ${seed}), at most ${maxFeatureNodes} feature nodes\n`);

  const run = async (family: "arith-cot" | "lookup-decorative"): Promise<Scored[]> => {
    const out: Scored[] = [];
    for (const item of generateHeldout(seed, family, n)) {
      const report = await checkFaithfulness(model, item.text);
      const circuits: Record<string, CircuitFaithfulness> = {};
      for (const [kind, set] of Object.entries(sets)) circuits[kind] = await circuitFaithfulness(model, set, report.segmentation, report.answer.text, { maxFeatureNodes });
      out.push({ report, circuits });
      process.stderr.write(".");
    }
    return out;
  };
  const arith = await run("arith-cot");
  const lookup = await run("lookup-decorative");
  process.stderr.write("\n");

  const scores: [string, (s: Scored) => number][] = [
    ["ablation: overall (battery)", (s) => s.report.scores.overall ?? 0],
    ["ablation: step ablation", (s) => s.report.scores.stepAblation ?? 0],
  ];
  for (const kind of Object.keys(sets)) {
    scores.push(
      [`graph ${kind.toUpperCase()}: reasoning share`, (s) => s.circuits[kind].reasoning],
      [`graph ${kind.toUpperCase()}: largest step share`, (s) => Math.max(...s.circuits[kind].steps.map((x) => x.share))],
      [`graph ${kind.toUpperCase()}: reasoning share of token influence`, (s) => s.circuits[kind].reasoning / Math.max(1e-9, 1 - s.circuits[kind].errors)],
    );
  }
  console.log(
    table(
      ["score", "AUROC arith-cot vs lookup", "mean arith-cot", "mean lookup"],
      scores.map(([name, f]) => [name, auroc(arith.map(f), lookup.map(f)).toFixed(3), mean(arith.map(f)).toFixed(3), mean(lookup.map(f)).toFixed(3)]),
    ),
  );

  const rows: string[][] = [];
  for (const kind of Object.keys(sets)) {
    for (const [family, items] of [["arith-cot", arith], ["lookup-decorative", lookup]] as const) {
      const c = items.map((s) => s.circuits[kind]);
      rows.push([
        kind.toUpperCase(),
        family,
        mean(c.map((x) => x.question)).toFixed(3),
        mean(c.map((x) => x.reasoning)).toFixed(3),
        mean(c.map((x) => x.steps[x.steps.length - 1].share)).toFixed(3),
        mean(c.map((x) => x.marker)).toFixed(3),
        mean(c.map((x) => x.errors)).toFixed(3),
        mean(c.map((x) => x.featureNodes)).toFixed(0),
        mean(c.map((x) => x.elapsedMs)).toFixed(0),
      ]);
    }
  }
  console.log(`\n${table(["set", "family", "question", "reasoning", "last step", "marker", "errors", "feature nodes", "graph ms"], rows)}`);
  await model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
