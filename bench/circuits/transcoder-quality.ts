/**
 * The quality report of several transcoder sets on one held-out text list, so sets trained on
 * different corpora compare in the same conditions: by default the last tenth of the corpus
 * train-reference-transcoders.ts writes (the part its quality.json is scored on).
 *
 *   npx tsx bench/circuits/transcoder-quality.ts --sets DIR[,DIR...] [--texts 6500] [--seed 23] [--model models/reference]
 */
import { parseArgs } from "node:util";
import { renderTable } from "../../src/cli/format";
import { evaluateTranscoders, loadTranscoders } from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { generateTrain } from "../tasks/generate";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { model: { type: "string", default: "models/reference" }, sets: { type: "string", default: "models/reference/transcoders/plt,models/reference/transcoders/clt" }, texts: { type: "string", default: "6500" }, seed: { type: "string", default: "23" } },
  });
  const corpus = generateTrain(Number(values.seed), Number(values.texts)).map((r) => r.text);
  const held = corpus.slice(corpus.length - Math.max(1, Math.floor(corpus.length / 10)));
  const model = await HookedModel.load(values.model);
  const rows: string[][] = [];
  try {
    for (const dir of values.sets.split(",")) {
      const q = await evaluateTranscoders(model, loadTranscoders(dir), held);
      const perLayer = (xs: number[], f: (x: number) => string) => xs.map(f).join(" / ");
      rows.push([dir, perLayer(q.nmse, (x) => x.toFixed(3)), perLayer(q.l0, (x) => x.toFixed(1)), perLayer(q.deadFraction, (x) => `${(100 * x).toFixed(1)}%`), `${(100 * q.ceRecovered).toFixed(1)}%`, q.ceReplaced.toFixed(3)]);
    }
  } finally {
    await model.dispose();
  }
  console.log(`${held.length} held-out texts (the last tenth of ${corpus.length} training-split texts, seed ${values.seed})\n`);
  console.log(renderTable(["set", "normalised MSE by layer", "L0 by layer", "dead by layer", "CE recovered", "CE replaced"], rows));
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
