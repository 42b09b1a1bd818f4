/**
 * Probe benchmark on the reference model and the stories family (issue 7):
 *
 *   npx tsx bench/probes/probe-bench.ts [--model models/reference] [--train 600] [--heldout 300] [--seed 1]
 *
 * Probes are trained on stories from the training split and scored on held-out stories, whose
 * names, sentence frames and digit range the model never saw (content words are shared: see
 * bench/tasks/vocabulary.ts).
 * Token concepts are one-vs-rest probes over every token (a token takes a span's label when its
 * range overlaps the span); sentence labels (sentiment, negated) are probes on each sentence run
 * on its own, mean- or last-token pooled. For each concept the hook is chosen on a validation
 * fifth of the training stories, then the probe is refitted on all of them; the held-out score is
 * never used to choose. The control task (Hewitt & Liang) gives each token type (each distinct
 * sentence, at sentence level) a random label with the task's label distribution; selectivity =
 * task accuracy - control accuracy, both on the held-out set.
 *
 * Then the time to train on 2k examples across all layers: feature extraction and fitting
 * apart. Targets: accuracy >= 0.9 and selectivity > 0.2 on the designed concepts; < 10 s.
 */
import * as os from "node:os";
import { parseArgs } from "node:util";
import { renderTable } from "../../src/cli/format";
import { HookedModel } from "../../src/core/model/hooked-model";
import {
  accuracy,
  balancedAccuracy,
  controlTask,
  extractFeatures,
  type Features,
  groupedFolds,
  layerSweepHooks,
  majorityBaseline,
  type Pooling,
  type ProbeDataset,
  predictProba,
  predictRows,
  standardise,
  tokenLabels,
  trainAcrossHooks,
  trainProbe,
} from "../../src/core/probes";
import { generateHeldout } from "../tasks/generate";
import type { TaskRecord } from "../tasks/record";
import { Rng } from "../tasks/rng";
import { CONCEPTS, storyItem } from "../tasks/stories";

interface SentenceMeta {
  start: number;
  end: number;
  sentiment: string;
  negated: boolean;
}

interface Task {
  readonly name: string;
  readonly level: string;
  readonly train: Features;
  readonly heldout: Features;
  readonly trainLabels: readonly string[];
  readonly heldoutLabels: readonly string[];
}

interface TaskResult {
  readonly task: Task;
  readonly bestHook: string;
  readonly validation: Map<string, number>;
  readonly accuracy: Map<string, number>;
  readonly balanced: Map<string, number>;
  readonly control: Map<string, number>;
  readonly controlBalanced: Map<string, number>;
  readonly majority: number;
}

const f3 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(3));

function tokenDataset(records: readonly TaskRecord[], name: string): ProbeDataset {
  return { level: "token", file: name, examples: records.map((r, i) => ({ text: r.text, spans: r.spans, line: i + 1 })) };
}

function sentences(records: readonly TaskRecord[]): { text: string; meta: SentenceMeta }[] {
  return records.flatMap((r) => (r.meta.sentences as SentenceMeta[]).map((s) => ({ text: r.text.slice(s.start, s.end), meta: s })));
}

function sentenceDataset(items: readonly { text: string; meta: SentenceMeta }[], name: string): ProbeDataset {
  // Labels are replaced per task below; extraction does not depend on them.
  return { level: "sequence", file: name, examples: items.map((s, i) => ({ text: s.text, label: s.meta.sentiment, line: i + 1 })) };
}

/** One-vs-rest labels of every token row, in the row order extractFeatures uses (dataset order). */
function conceptLabels(model: HookedModel, records: readonly TaskRecord[], concept: string): string[] {
  return records.flatMap((r) => tokenLabels(model.tokenizer.encode(r.text).offsets, r.spans, { concept }));
}

function gatherRows(X: Float32Array, rows: readonly number[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => out.set(X.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

/** Held-out accuracy and balanced accuracy of a probe trained on (X, labels). */
function fitAndScore(X: Float32Array, n: number, d: number, labels: readonly string[], Xh: Float32Array, nh: number, heldLabels: readonly string[]) {
  const probe = trainProbe(X, n, d, labels, { folds: 0 });
  const index = new Map(probe.classes.map((c, i) => [c, i]));
  // A held-out label the training rows never had cannot be predicted: it counts as wrong.
  const K = probe.classes.length;
  const truth = Int32Array.from(heldLabels, (l) => index.get(l) ?? K);
  const pred = predictRows(probe, Xh, nh);
  const proba = predictProba(probe.fit, standardise(Xh, nh, d, probe.standardiser), nh);
  let logLoss = 0;
  for (let i = 0; i < nh; i++) logLoss -= Math.log(Math.max(truth[i] < K ? proba[i * K + truth[i]] : 0, 1e-15)) / nh;
  return { accuracy: accuracy(truth, pred), balanced: balancedAccuracy(truth, pred, K + 1), logLoss };
}

function runTask(task: Task, seed: number): TaskResult {
  const { train, heldout } = task;
  // Validation fifth, grouped by story (or sentence) so the hook is chosen on unseen texts.
  const fold = groupedFolds(train.groups, 5, seed);
  const fitRows: number[] = [];
  const valRows: number[] = [];
  for (let i = 0; i < train.rows; i++) (fold[i] === 0 ? valRows : fitRows).push(i);
  const validation = new Map<string, number>();
  const validationLoss = new Map<string, number>();
  const acc = new Map<string, number>();
  const bal = new Map<string, number>();
  const control = new Map<string, number>();
  const controlBal = new Map<string, number>();
  // Control labels from the training label distribution; a type's label is shared by both splits.
  const classes = [...new Set(task.trainLabels)].sort();
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const ctrl = controlTask(Int32Array.from(task.trainLabels, (l) => classIndex.get(l) ?? 0), classes.length, seed);
  const ctrlTrain = [...ctrl.labels(train.types)].map((k) => classes[k]);
  const ctrlHeld = [...ctrl.labels(heldout.types)].map((k) => classes[k]);
  for (const hook of train.hooks) {
    const d = train.dims.get(hook) ?? 0;
    const X = train.data.get(hook) as Float32Array;
    const Xh = heldout.data.get(hook) as Float32Array;
    const v = fitAndScore(gatherRows(X, fitRows, d), fitRows.length, d, fitRows.map((i) => task.trainLabels[i]), gatherRows(X, valRows, d), valRows.length, valRows.map((i) => task.trainLabels[i]));
    validation.set(hook, v.accuracy);
    validationLoss.set(hook, v.logLoss);
    const h = fitAndScore(X, train.rows, d, task.trainLabels, Xh, heldout.rows, task.heldoutLabels);
    acc.set(hook, h.accuracy);
    bal.set(hook, h.balanced);
    if (new Set(ctrlTrain).size < 2) {
      // Every type drew the same control label: the control is trivially learnt.
      control.set(hook, ctrlHeld.filter((l) => l === ctrlTrain[0]).length / heldout.rows);
      // A constant prediction recalls its own class fully and no other: 1 / (classes present), if present.
      const present = new Set(ctrlHeld);
      controlBal.set(hook, present.has(ctrlTrain[0]) ? 1 / present.size : 0);
    } else {
      const c = fitAndScore(X, train.rows, d, ctrlTrain, Xh, heldout.rows, ctrlHeld);
      control.set(hook, c.accuracy);
      controlBal.set(hook, c.balanced);
    }
  }
  // Validation accuracy often ties at 1.000 across hooks; the log-loss breaks ties.
  const better = (a: string, b: string) => {
    const [va, vb] = [validation.get(a) ?? 0, validation.get(b) ?? 0];
    return vb > va || (vb === va && (validationLoss.get(b) ?? Infinity) < (validationLoss.get(a) ?? Infinity)) ? b : a;
  };
  const bestHook = train.hooks.reduce(better);
  const heldIndex = Int32Array.from(task.heldoutLabels, (l) => classIndex.get(l) ?? classes.length);
  return { task, bestHook, validation, accuracy: acc, balanced: bal, control, controlBalanced: controlBal, majority: majorityBaseline(heldIndex, classes.length + 1) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: "models/reference" },
      train: { type: "string", default: "600" },
      heldout: { type: "string", default: "300" },
      seed: { type: "string", default: "1" },
      threads: { type: "string" },
    },
  });
  const seed = Number(values.seed);
  const model = await HookedModel.load(values.model, values.threads ? { threads: Number(values.threads) } : {});
  const allHooks = layerSweepHooks(model.cfg.nLayers);

  // Training stories: the stories generator on its training split, a stream of its own.
  const rng = new Rng(seed * 7919 + 3);
  const trainStories = Array.from({ length: Number(values.train) }, () => storyItem(rng, "train"));
  const heldStories = generateHeldout(seed, "stories", Number(values.heldout));

  const started = performance.now();
  const tokTrain = await extractFeatures(model, tokenDataset(trainStories, "train stories"), { hooks: allHooks });
  const tokHeld = await extractFeatures(model, tokenDataset(heldStories, "held-out stories"), { hooks: allHooks });
  const tasks: Task[] = CONCEPTS.map((concept) => ({
    name: concept,
    level: "token",
    train: tokTrain,
    heldout: tokHeld,
    trainLabels: conceptLabels(model, trainStories, concept),
    heldoutLabels: conceptLabels(model, heldStories, concept),
  }));
  const sTrain = sentences(trainStories);
  const sHeld = sentences(heldStories);
  for (const pooling of ["mean", "last"] as Pooling[]) {
    const train = await extractFeatures(model, sentenceDataset(sTrain, "train sentences"), { hooks: allHooks, pooling });
    const heldout = await extractFeatures(model, sentenceDataset(sHeld, "held-out sentences"), { hooks: allHooks, pooling });
    tasks.push(
      { name: "sentiment", level: `sentence (${pooling})`, train, heldout, trainLabels: sTrain.map((s) => s.meta.sentiment), heldoutLabels: sHeld.map((s) => s.meta.sentiment) },
      { name: "negated", level: `sentence (${pooling})`, train, heldout, trainLabels: sTrain.map((s) => (s.meta.negated ? "negated" : "plain")), heldoutLabels: sHeld.map((s) => (s.meta.negated ? "negated" : "plain")) },
    );
  }
  const extractSeconds = (performance.now() - started) / 1000;

  const results = tasks.map((t) => runTask(t, seed));
  const totalSeconds = (performance.now() - started) / 1000;

  console.log(`probe bench: ${values.model} (${model.cfg.nLayers} layers, d_model ${model.cfg.dModel}); ${trainStories.length} training stories (${tokTrain.rows} tokens, ${sTrain.length} sentences), ${heldStories.length} held-out stories (${tokHeld.rows} tokens, ${sHeld.length} sentences); seed ${seed}`);
  console.log(`logistic regression, L2 C=1, balanced class weights, standardised features; hook chosen on a validation fifth of the training stories (accuracy, then log-loss)`);
  console.log(`val acc: that fifth (training words); acc, bal acc, majority, control acc, selectivity: held-out stories (held-out words)`);
  // A token concept covers a few percent of tokens: accuracy, and so accuracy selectivity, is bounded
  // by the majority share. Balanced accuracy (mean per-class recall) against the control's is not.
  console.log(`bal sel = bal acc - control bal acc: selectivity on balanced accuracy, which the majority class does not cap\n`);
  const header = ["concept", "level", "best hook (val)", "val acc", "acc", "bal acc", "majority", "control acc", "selectivity", "control bal acc", "bal sel", "acc>=0.9", "sel>0.2", "bal sel>0.2"];
  const rows = results.map((r) => {
    const acc = r.accuracy.get(r.bestHook) ?? NaN;
    const ctl = r.control.get(r.bestHook) ?? NaN;
    const bal = r.balanced.get(r.bestHook) ?? NaN;
    const ctlBal = r.controlBalanced.get(r.bestHook) ?? NaN;
    return [r.task.name, r.task.level, r.bestHook, f3(r.validation.get(r.bestHook)), f3(acc), f3(bal), f3(r.majority), f3(ctl), f3(acc - ctl), f3(ctlBal), f3(bal - ctlBal), acc >= 0.9 ? "yes" : "NO", acc - ctl > 0.2 ? "yes" : "NO", bal - ctlBal > 0.2 ? "yes" : "NO"];
  });
  console.log(renderTable(header, rows));

  console.log(`\nheld-out accuracy / selectivity at every hook (resid_pre 0 = embeddings)`);
  const short = (h: string) => h.replace(/^blocks\.(\d+)\.hook_(.*)$/, "$2 $1");
  console.log(
    renderTable(
      ["concept", "level", ...allHooks.map(short)],
      results.map((r) => [r.task.name, r.task.level, ...allHooks.map((h) => `${f3(r.accuracy.get(h))} / ${f3((r.accuracy.get(h) ?? NaN) - (r.control.get(h) ?? NaN))}`)]),
    ),
  );
  console.log(`\nfeatures ${extractSeconds.toFixed(1)} s, all probes ${totalSeconds.toFixed(1)} s in total`);

  // Timing: 2k examples across all layers, extraction and fitting apart.
  const timing: string[][] = [];
  const time2k = async (what: string, dataset: ProbeDataset, labelsOf: (f: Features) => readonly string[], pooling?: Pooling) => {
    let t = performance.now();
    const features = await extractFeatures(model, dataset, { hooks: allHooks, pooling });
    const extract = (performance.now() - t) / 1000;
    const relabelled: Features = { ...features, labels: labelsOf(features) };
    t = performance.now();
    const sweep = trainAcrossHooks(relabelled, { folds: 0 });
    const fit = (performance.now() - t) / 1000;
    t = performance.now();
    trainAcrossHooks(relabelled, { folds: 5, seed });
    const cv = (performance.now() - t) / 1000;
    timing.push([what, String(features.rows), String(allHooks.length), extract.toFixed(2), fit.toFixed(2), (extract + fit).toFixed(2), cv.toFixed(2), extract + fit < 10 ? "yes" : "NO", sweep.best.hook]);
  };
  const s2k = sTrain.slice(0, 2000);
  await time2k(`sentiment, ${s2k.length} sentences (mean)`, sentenceDataset(s2k, "2k sentences"), () => s2k.map((s) => s.meta.sentiment), "mean");
  const storiesFor2k: TaskRecord[] = [];
  let tokens = 0;
  for (const r of trainStories) {
    if (tokens >= 2000) break;
    storiesFor2k.push(r);
    tokens += model.toTokens(r.text).length;
  }
  await time2k(`name, ${tokens} tokens (${storiesFor2k.length} stories)`, tokenDataset(storiesFor2k, "2k tokens"), () => conceptLabels(model, storiesFor2k, "name"));
  console.log(`\ntraining on 2k examples across all layers (${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)}; onnxruntime threads ${values.threads ?? "default"})`);
  console.log(renderTable(["probe", "rows", "hooks", "extract s", "fit s", "total s", "fit+5-fold CV+control s", "< 10 s", "best hook (train acc)"], timing));
  await model.dispose();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
