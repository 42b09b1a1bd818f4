/**
 * Writes the feature-stats.json shipped next to the bundled SAE (dev-time, like training):
 *
 *   npx tsx bench/sae/make-feature-stats.ts [--model models/reference]
 *       [--sae models/reference/sae/blocks.1.hook_resid_post] [--texts 3000] [--seed 11]
 *
 * The corpus is fresh training-split text of every family in the training mix (a seed no training
 * corpus uses), with the generator's span labels, so the dashboard's contexts come from the kind
 * of text the model knows; concept matches (F1) are scored on the stories among them.
 * The same numbers are what `loupe features --compute-stats CORPUS.jsonl` writes for any corpus.
 */
import { parseArgs } from "node:util";
import { HookedModel } from "../../src/core/model/hooked-model";
import { loadSae } from "../../src/core/sae";
import { formatStatsSummary } from "../../src/cli/commands/features";
import { writeFeatureStats } from "../../src/core/sae/feature-stats-file";
import { computeFeatureStats } from "../../src/core/sae/features";
import { generateTrain } from "../tasks/generate";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: "models/reference" },
      sae: { type: "string", default: "models/reference/sae/blocks.1.hook_resid_post" },
      texts: { type: "string", default: "3000" },
      seed: { type: "string", default: "11" },
    },
  });
  const records = generateTrain(Number(values.seed), Number(values.texts));
  const model = await HookedModel.load(values.model);
  try {
    const sae = loadSae(values.sae);
    const stats = await computeFeatureStats(
      model,
      sae,
      // Only stories carry concept labels for every concept they contain (other families mention
      // names and numbers without a "name" or "number" span), so only they count toward F1.
      records.map((r) => (r.family === "stories" ? { text: r.text, spans: r.spans } : { text: r.text })),
      { description: `${records.length} training-split texts of every family (bench generator, seed ${values.seed})`, topContexts: 8 },
    );
    console.log(formatStatsSummary(stats, writeFeatureStats(values.sae, stats)));
  } finally {
    await model.dispose();
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
