/**
 * Writes the feature statistics shipped beside the reference model's transcoder sets (dev-time,
 * like training): layer_{i}.feature-stats.json in each set folder, on the same corpus as the
 * bundled SAE's statistics (bench/sae/make-feature-stats.ts: fresh training-split text of every
 * family, stories carrying concept labels).
 *
 *   npx tsx bench/circuits/make-transcoder-stats.ts [--model models/reference] [--sets plt,clt] [--texts 1000] [--seed 11]
 *       [--transcoders DIR (holding the sets; default MODEL/transcoders)]
 *
 * The same numbers are what `loupe transcoder stats CORPUS.jsonl --transcoders DIR` writes.
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { formatStatsSummary } from "../../src/cli/commands/features";
import { computeTranscoderFeatureStats, loadTranscoders, writeTranscoderFeatureStats } from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { generateTrain } from "../tasks/generate";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: "models/reference" },
      sets: { type: "string", default: "plt,clt" },
      texts: { type: "string", default: "1000" },
      seed: { type: "string", default: "11" },
      transcoders: { type: "string" },
    },
  });
  const records = generateTrain(Number(values.seed), Number(values.texts));
  const corpus = records.map((r) => (r.family === "stories" ? { text: r.text, spans: r.spans } : { text: r.text }));
  const model = await HookedModel.load(values.model);
  try {
    for (const kind of values.sets.split(",")) {
      const folder = path.join(values.transcoders ?? path.join(values.model, "transcoders"), kind);
      const started = performance.now();
      const stats = await computeTranscoderFeatureStats(model, loadTranscoders(folder), corpus, {
        description: `${records.length} training-split texts of every family (bench generator, seed ${values.seed})`,
        topContexts: 5,
        contextBefore: 8,
        logitTokens: 5,
      });
      const files = writeTranscoderFeatureStats(folder, stats);
      console.log(stats.map((s, l) => formatStatsSummary(s, files[l])).join("\n"));
      console.log(`${kind}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    }
  } finally {
    await model.dispose();
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
