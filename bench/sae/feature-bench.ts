/**
 * SAE feature benchmark on the reference model (issue 5): do single SAE features recover the
 * stories family's ground-truth concepts?
 *
 *   npx tsx bench/sae/feature-bench.ts [--model models/reference] [--sae DIR]
 *       [--hook blocks.1.hook_resid_post] [--train-texts 4000] [--families stories,...] [--d-sae 1024] [--k 32] [--epochs 3]
 *       [--batch 512] [--seed 1] [--eval-texts 400] [--heldout 300] [--out DIR]
 *
 * The SAE: --sae loads one (e.g. the shipped models/reference/sae/blocks.1.hook_resid_post, made
 * by sae-bench.ts); without it, one is trained here with sae-bench.ts's recipe (trainTopKSae on
 * the hook's activations over generateTrain texts, mixed families).
 *
 * Feature statistics are computed on an evaluation corpus of fresh training-split stories (a seed
 * no training corpus uses). Per concept label, the best single feature and its activation threshold
 * are picked there by F1 (token above the threshold vs token inside a span of the label; "any":
 * whenever it fires); that same feature at that threshold is then scored on the held-out stories
 * (generateHeldout: names, sentence frames and digits the training split never uses), so the
 * held-out column carries no selection bias. "held-out, any firing" scores the same feature with
 * no threshold (how this bench scored before thresholds); "best held-out" re-picks the feature
 * and threshold on held-out itself, for reference.
 *
 * Target (issue 5): F1 >= 0.8 for at least 5 of the 7 concepts name, animal, colour, number,
 * positive / negative emotion word (counted as met only when both are), negation scope, inside a
 * quote. The "emotion (either)" row pools the two emotion labels, for information only.
 */
import * as os from "node:os";
import { parseArgs } from "node:util";
import { renderTable } from "../../src/cli/format";
import { HookedModel } from "../../src/core/model/hooked-model";
import { gatherActivations, loadSae, saveSae, trainTopKSae, type Sae } from "../../src/core/sae";
import { writeFeatureStats } from "../../src/core/sae/feature-stats-file";
import { accumulateFeatureStats, computeFeatureStats, type ConceptMatch, type CorpusText } from "../../src/core/sae/features";
import { generateHeldout, generateTrain, GENERATORS } from "../tasks/generate";
import type { TaskRecord } from "../tasks/record";
import { Rng } from "../tasks/rng";
import { CONCEPTS } from "../tasks/stories";

const TARGET_F1 = 0.8;
const EMOTION_EITHER = "emotion (either)";

/** The issue's seven concepts, each one or more labels that must all reach the target. */
const ISSUE_CONCEPTS: ReadonlyArray<{ name: string; labels: readonly string[] }> = [
  { name: "name", labels: ["name"] },
  { name: "animal", labels: ["animal"] },
  { name: "colour", labels: ["colour"] },
  { name: "number", labels: ["number"] },
  { name: "positive / negative emotion word", labels: ["emotion-positive", "emotion-negative"] },
  { name: "negation scope", labels: ["negation"] },
  { name: "inside a quote", labels: ["quote"] },
];

const f3 = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(3));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function corpusOf(records: readonly TaskRecord[]): CorpusText[] {
  return records.map((r) => {
    const emotions = r.spans.filter((s) => s.label === "emotion-positive" || s.label === "emotion-negative").map((s) => ({ ...s, label: EMOTION_EITHER }));
    return { text: r.text, spans: [...r.spans, ...emotions] };
  });
}

async function trainLikeSaeBench(model: HookedModel, hook: string, values: Record<string, string | undefined>, log: (line: string) => void): Promise<Sae> {
  const seed = Number(values.seed);
  const count = Number(values["train-texts"]);
  // --families: train on those families only (drawn from a longer mixed stream, in its order).
  const families = values.families ? new Set(values.families.split(",")) : undefined;
  const records = families ? generateTrain(seed, count * 12).filter((r) => families.has(r.family)).slice(0, count) : generateTrain(seed, count);
  if (records.length < count) throw new Error(`only ${records.length} training texts of ${values.families}`);
  const texts = records.map((r) => r.text);
  const acts = await gatherActivations(model, hook, texts, { batchSize: 32 });
  log(`  gathered ${acts.rows} tokens from ${texts.length} training texts`);
  const trained = await trainTopKSae(acts.data, acts.rows, acts.d, {
    hook_name: hook,
    d_sae: Number(values["d-sae"]),
    k: Number(values.k),
    epochs: Number(values.epochs),
    batchSize: Number(values.batch),
    seed,
    model_name: "loupe-reference",
    context_size: model.cfg.nCtx,
    progressEvery: 100,
    onProgress: (p) => log(`  step ${p.step}/${p.steps}: FVU ${p.fvu.toFixed(4)}, dead ${(100 * p.deadFraction).toFixed(1)}%, ${secs(p.elapsedMs)}`),
  });
  return trained.sae;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: "models/reference" },
      sae: { type: "string" },
      hook: { type: "string", default: "blocks.1.hook_resid_post" },
      "train-texts": { type: "string", default: "4000" },
      families: { type: "string" },
      "d-sae": { type: "string", default: "1024" },
      k: { type: "string", default: "32" },
      epochs: { type: "string", default: "3" },
      batch: { type: "string", default: "512" },
      seed: { type: "string", default: "1" },
      "eval-texts": { type: "string", default: "400" },
      heldout: { type: "string", default: "300" },
      out: { type: "string" },
    },
  });
  const seed = Number(values.seed);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const model = await HookedModel.load(values.model);
  let started = Date.now();
  const sae = values.sae ? loadSae(values.sae) : await trainLikeSaeBench(model, values.hook, values, log);
  const saeMs = Date.now() - started;
  if (values.out && !values.sae) saveSae(values.out, sae);

  // Fresh training-split stories from a stream no other corpus uses.
  const evalRng = new Rng(seed * 7919 + 104729);
  const evalRecords = Array.from({ length: Number(values["eval-texts"]) }, () => GENERATORS.stories(evalRng, "train"));
  const heldRecords = generateHeldout(seed, "stories", Number(values.heldout));
  started = Date.now();
  const evalStats = await computeFeatureStats(model, sae, corpusOf(evalRecords), { description: `${evalRecords.length} training-split stories (fresh seed)` });
  const statsMs = Date.now() - started;
  const heldBuilder = await accumulateFeatureStats(model, sae, corpusOf(heldRecords), { topContexts: 0 });
  const heldStats = heldBuilder.finish({ hook_name: sae.hookName, d_in: sae.d_in, architecture: sae.cfg.architecture });
  if (values.out) log(`  wrote ${writeFeatureStats(values.out, evalStats)}`);

  const best = new Map<string, { feature: number; evalMatch: ConceptMatch; held: ConceptMatch; heldBest: number }>();
  const table: string[][] = [];
  for (const label of [...CONCEPTS, EMOTION_EITHER]) {
    const c = evalStats.concepts.find((x) => x.label === label);
    const top = c?.features[0];
    if (!c || !top) {
      table.push([label, String(c?.tokens ?? 0), "-", "-", "-", "-", "-", "-", "-", "-"]);
      continue;
    }
    // The feature and its threshold as picked on the evaluation stories.
    const held = heldBuilder.conceptMatch(label, top.feature, top.threshold ?? 0);
    const heldAnyFiring = heldBuilder.conceptMatch(label, top.feature, 0);
    const heldBest = heldStats.concepts.find((x) => x.label === label)?.features[0]?.f1 ?? 0;
    best.set(label, { feature: top.feature, evalMatch: top, held, heldBest });
    const promoted = evalStats.features[top.feature].logits?.promoted.slice(0, 3).map((e) => JSON.stringify(e.token)).join(" ") ?? "";
    const above = top.threshold === undefined ? "any" : `> ${top.threshold.toPrecision(2)}`;
    table.push([label, String(c.tokens), `#${top.feature}`, above, f3(top.f1), `${f3(top.precision)} / ${f3(top.recall)}`, f3(held.f1), f3(heldAnyFiring.f1), f3(heldBest), promoted]);
  }

  const d = evalStats.features.map((f) => f.density);
  const dead = d.filter((x) => x === 0).length;
  console.log(`SAE feature bench: ${values.model} (d_model ${model.cfg.dModel}), SAE at ${sae.hookName} (${sae.cfg.architecture}, d_sae ${sae.d_sae}${sae.cfg.k ? `, k ${sae.cfg.k}` : ""}); ${values.sae ? `loaded from ${values.sae}` : `trained here with sae-bench's recipe on ${values["train-texts"]} training texts, seed ${seed}`}; ${os.cpus().length} CPUs`);
  console.log(`evaluation: ${evalStats.corpus.texts} fresh training-split stories, ${evalStats.corpus.tokens} tokens; held-out: ${heldStats.corpus.texts} stories (generateHeldout), ${heldStats.corpus.tokens} tokens`);
  console.log(`best single feature and activation threshold per label picked on the evaluation stories by F1 (token above the threshold vs token in a span); held-out F1 is the same feature's at the same threshold\n`);
  console.log(renderTable(["label", "tokens", "feature", "fires", "F1", "precision / recall", "held-out F1", "held-out, any firing", "best held-out", "top promoted logits"], table));
  console.log("");
  const verdicts = ISSUE_CONCEPTS.map(({ name, labels }) => {
    const evalOk = labels.every((l) => (best.get(l)?.evalMatch.f1 ?? 0) >= TARGET_F1);
    const heldOk = labels.every((l) => (best.get(l)?.held.f1 ?? 0) >= TARGET_F1);
    return { name, evalOk, heldOk };
  });
  const met = (key: "evalOk" | "heldOk") => verdicts.filter((v) => v[key]).length;
  console.log(
    renderTable(
      ["measure", "value"],
      [
        ["concepts at F1 >= 0.8 (evaluation stories)", `${met("evalOk")}/7: ${verdicts.filter((v) => v.evalOk).map((v) => v.name).join(", ") || "none"}`],
        ["concepts at F1 >= 0.8 (held-out, same features)", `${met("heldOk")}/7: ${verdicts.filter((v) => v.heldOk).map((v) => v.name).join(", ") || "none"}`],
        ["target: >= 5 of 7 concepts at F1 >= 0.8", `evaluation ${met("evalOk") >= 5 ? "met" : "NOT met"}; held-out ${met("heldOk") >= 5 ? "met" : "NOT met"}`],
        ["features that never fire on the evaluation stories", `${dead}/${sae.d_sae}`],
        [values.sae ? "load SAE" : "train SAE (gather + train)", secs(saeMs)],
        ["feature statistics (evaluation corpus, with logit effects)", secs(statsMs)],
      ],
    ),
  );
  await model.dispose();
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
