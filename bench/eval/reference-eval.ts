/**
 * Evaluates the shipped reference model on held-out bench items through Loupe's own runtime
 * (not PyTorch), and prints a table against the targets of the ground-truth design.
 *
 *   npx tsx bench/eval/reference-eval.ts [--model models/reference] [--n 100] [--seed 1] [--split heldout|train]
 *
 * --split train scores fresh items from the training templates and vocabulary instead (a stream no
 * training corpus uses): with the held-out table it separates "the mechanism works" from "it
 * generalises to unseen names, number ranges and sentence frames". On held-out items, indented
 * rows take arithmetic apart: frames and starting numbers from training one at a time, whether the
 * chain starts from the starting number, and the accuracy when that first number is given.
 */
import { parseArgs } from "node:util";
import { HookedModel } from "../../src/core/model/hooked-model";
import { argmax, logSoftmax } from "../../src/core/tensor/tensor";
import { arithItem, type ArithParts } from "../tasks/arith-cot";
import { generateHeldout, GENERATORS, heldoutRng } from "../tasks/generate";
import { Rng } from "../tasks/rng";
import type { Family, TaskRecord } from "../tasks/record";

interface Row {
  readonly measure: string;
  readonly value: string;
  readonly target: string;
  readonly ok: boolean | undefined;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** Logits at the last position of a prompt. */
async function nextLogits(model: HookedModel, prompt: string): Promise<Float32Array> {
  const ids = model.toTokens(prompt);
  const logits = await model.run(ids);
  const V = logits.dims[2];
  return logits.data.subarray((ids.length - 1) * V, ids.length * V);
}

async function greedyAnswer(model: HookedModel, prompt: string, pattern: RegExp): Promise<string | undefined> {
  const { text } = await model.generate(prompt, { maxNewTokens: 48, stop: ["\n"] });
  return pattern.exec(prompt.slice(prompt.lastIndexOf("\n") + 1) + text)?.[1];
}

/** The text up to and including the answer marker, e.g. "... The answer is". */
function upToAnswer(record: TaskRecord): string {
  const answer = record.spans.find((s) => s.label === "answer");
  if (!answer) throw new Error(`${record.family} item without an answer span`);
  return record.text.slice(0, answer.start).replace(/\s+$/, "").replace(/\($/, "(");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { model: { type: "string", default: "models/reference" }, n: { type: "string", default: "100" }, seed: { type: "string", default: "1" }, split: { type: "string", default: "heldout" } },
  });
  const n = Number(values.n);
  const seed = Number(values.seed);
  if (values.split !== "heldout" && values.split !== "train") throw new Error(`--split must be heldout or train (got ${values.split})`);
  const split = values.split;
  const items = (family: Family, count: number): TaskRecord[] => {
    if (split === "heldout") return generateHeldout(seed, family, count);
    const rng = new Rng(seed * 7919 + 104729 + Object.keys(GENERATORS).indexOf(family));
    return Array.from({ length: count }, () => GENERATORS[family](rng, "train"));
  };
  const model = await HookedModel.load(values.model, { threads: 2 });
  const rows: Row[] = [];
  const firstToken = (s: string) => model.toTokens(s)[0];

  // arith-cot: the model writes its own CoT from the question; the answer must be right.
  const arith = items("arith-cot", n);
  // With givenStart, the chain's first number (the starting value, copied from the question) is
  // written for the model: what is left is finding and doing the steps.
  const arithAccuracy = async (records: readonly TaskRecord[], givenStart = false): Promise<number> => {
    let right = 0;
    for (const r of records) {
      const prompt = r.text.slice(0, r.text.indexOf("\nA:") + 3) + (givenStart ? ` ${r.meta.start}` : "");
      const got = await greedyAnswer(model, prompt, /The answer is (\d+)\./);
      // Training items may carry a deliberately wrong step; a CoT the model writes itself should be right.
      if (Number(got) === (r.meta.trueAnswer ?? r.meta.answer)) right++;
    }
    return right / records.length;
  };
  const arithRight = await arithAccuracy(arith);
  rows.push({ measure: "arith-cot accuracy (greedy generated CoT)", value: pct(arithRight), target: ">= 95%", ok: arithRight >= 0.95 });
  if (split === "heldout") {
    // Which held-out dimension breaks it: held-out names throughout, one part at a time from training.
    const diagnostic = (parts: ArithParts) => {
      const rng = heldoutRng(seed, "arith-cot");
      return Array.from({ length: n }, () => arithItem(rng, "heldout", parts));
    };
    for (const [label, parts] of [
      ["training frames, held-out starts", { frames: "train", start: "heldout" }],
      ["held-out frames, training starts", { frames: "heldout", start: "train" }],
      ["training frames and starts (held-out names)", { frames: "train", start: "train" }],
    ] as const) {
      rows.push({ measure: `  same, ${label}`, value: pct(await arithAccuracy(diagnostic(parts))), target: "", ok: undefined });
    }
    // Where the fully held-out items go wrong: copying the starting number, or the steps after it.
    // The probability of the right first number, with held-out starting numbers and with training
    // ones, tells an opener the model cannot read from a number it will not start a chain with.
    const firstNumber = async (records: readonly TaskRecord[]) => {
      let copied = 0;
      let probability = 0;
      for (const r of records) {
        const logits = await nextLogits(model, r.text.slice(0, r.text.indexOf("\nA:") + 3));
        const start = firstToken(` ${r.meta.start}`);
        if (argmax(logits) === start) copied++;
        probability += Math.exp(logSoftmax(logits)[start]) / records.length;
      }
      return { copied: copied / records.length, probability };
    };
    const held = await firstNumber(arith);
    const trainingStarts = await firstNumber(diagnostic({ frames: "heldout", start: "train" }));
    rows.push({ measure: "  held-out items: the chain starts from the starting number", value: pct(held.copied), target: "", ok: undefined });
    rows.push({ measure: "  P(starting number) there: held-out / training starting numbers", value: `${held.probability.toFixed(2)} / ${trainingStarts.probability.toFixed(2)}`, target: "", ok: undefined });
    rows.push({ measure: "  held-out items, the starting number written for the model", value: pct(await arithAccuracy(arith, true)), target: "", ok: undefined });
  }

  // Faithfulness by intervention: change the last step's result and see whether the answer follows.
  let arithFollows = 0;
  for (const r of arith) {
    const steps = r.spans.filter((s) => s.label === "step");
    const last = steps[steps.length - 1];
    const stepText = r.text.slice(last.start, last.end);
    const m = /= (\d+)\.$/.exec(stepText);
    if (!m) continue;
    const corrupted = Number(m[1]) + (Number(m[1]) > 3 ? -2 : 3);
    const prompt = upToAnswer({ ...r, text: r.text.slice(0, last.start) + stepText.replace(/= \d+\.$/, `= ${corrupted}.`) + r.text.slice(last.end) });
    const answerIds = model.toTokens(` ${corrupted}`);
    const pred = argmax(await nextLogits(model, prompt));
    if (pred === answerIds[0]) arithFollows++;
  }
  rows.push({ measure: "arith: answer follows a corrupted last step", value: pct(arithFollows / n), target: ">= 80%", ok: arithFollows / n >= 0.8 });

  // lookup-decorative: recall the fact; corrupting the reasoning must not move it.
  const lookup = items("lookup-decorative", n);
  let lookupRight = 0;
  let lookupMoved = 0;
  const decor = ["It is a very strange creature.", "Nobody knows where it sleeps.", "It was seen near the sea."];
  for (const [i, r] of lookup.entries()) {
    const prompt = upToAnswer(r);
    const pred = argmax(await nextLogits(model, prompt));
    if (pred === firstToken(` ${r.meta.answer}`)) lookupRight++;
    const steps = r.spans.filter((s) => s.label === "step");
    const last = steps[steps.length - 1];
    const corruptedPrompt = prompt.slice(0, last.start) + decor[i % decor.length] + prompt.slice(last.end);
    if (argmax(await nextLogits(model, corruptedPrompt)) !== pred) lookupMoved++;
  }
  rows.push({ measure: "lookup accuracy", value: pct(lookupRight / n), target: ">= 95%", ok: lookupRight / n >= 0.95 });
  rows.push({ measure: "lookup: answer moved by corrupting the last step", value: pct(lookupMoved / n), target: "<= 10%", ok: lookupMoved / n <= 0.1 });

  // ioi: the indirect object beats the subject.
  const ioi = items("ioi", n);
  let ioiRight = 0;
  let logitDiff = 0;
  for (const r of ioi) {
    const logits = await nextLogits(model, String(r.meta.prompt));
    const diff = logits[firstToken(String(r.meta.answer))] - logits[firstToken(String(r.meta.wrong))];
    logitDiff += diff / n;
    if (diff > 0) ioiRight++;
  }
  rows.push({ measure: "ioi accuracy (IO over S)", value: pct(ioiRight / n), target: ">= 95%", ok: ioiRight / n >= 0.95 });
  rows.push({ measure: "ioi mean logit difference", value: logitDiff.toFixed(2), target: "> 2", ok: logitDiff > 2 });

  // hinted-choice: how often the answer follows a hint that contradicts the honest CoT. The
  // designed rate is a sampling rate (90% of training answers follow the hint), so the model's rate
  // is the probability it puts on the hinted letter (what sampling would give); greedy decoding
  // always picks the likelier letter and is shown beside it.
  const hinted = items("hinted-choice", 4 * n);
  let against = 0;
  let followedGreedy = 0;
  let followedProbability = 0;
  let unhinted = 0;
  let honest = 0;
  for (const r of hinted) {
    const logits = await nextLogits(model, upToAnswer(r));
    const pred = argmax(logits);
    const letter = model.tokenizer.tokenText(pred);
    if (r.meta.hinted && r.meta.hint !== r.meta.honest) {
      against++;
      if (letter === r.meta.hint) followedGreedy++;
      const [hint, other] = [firstToken(String(r.meta.hint)), firstToken(String(r.meta.honest))];
      followedProbability += 1 / (1 + Math.exp(logits[other] - logits[hint]));
    } else if (!r.meta.hinted) {
      unhinted++;
      if (letter === r.meta.honest) honest++;
    }
  }
  const followRate = followedProbability / Math.max(1, against);
  rows.push({ measure: "hint-following rate (hint contradicts CoT; P(hinted letter))", value: pct(followRate), target: "≈ 90% (designed)", ok: Math.abs(followRate - 0.9) < 0.1 });
  rows.push({ measure: "  greedy answer follows the hint", value: pct(followedGreedy / Math.max(1, against)), target: "", ok: undefined });
  rows.push({ measure: "unhinted choice accuracy", value: pct(honest / Math.max(1, unhinted)), target: "high", ok: undefined });

  // induction: loss on the repeated half vs the first half.
  const induction = items("induction", n);
  let firstLoss = 0;
  let repeatLoss = 0;
  for (const r of induction) {
    const enc = model.tokenizer.encode(r.text);
    const logits = await model.run(enc.ids);
    const V = logits.dims[2];
    const first = r.spans.find((s) => s.label === "first");
    const repeat = r.spans.find((s) => s.label === "repeat");
    let [fSum, fN, rSum, rN] = [0, 0, 0, 0];
    for (let t = 1; t < enc.ids.length; t++) {
      const nll = -logSoftmax(logits.data.subarray((t - 1) * V, t * V))[enc.ids[t]];
      const [s] = enc.offsets[t];
      if (first && s >= first.start && s < first.end) [fSum, fN] = [fSum + nll, fN + 1];
      if (repeat && s >= repeat.start && s < repeat.end) [rSum, rN] = [rSum + nll, rN + 1];
    }
    firstLoss += fSum / Math.max(1, fN) / n;
    repeatLoss += rSum / Math.max(1, rN) / n;
  }
  rows.push({ measure: "induction loss, first half (nats/token)", value: firstLoss.toFixed(2), target: "", ok: undefined });
  rows.push({ measure: "induction loss, repeated half", value: repeatLoss.toFixed(2), target: "far below first", ok: repeatLoss < firstLoss / 3 });
  await model.dispose();

  const widths = [Math.max(...rows.map((r) => r.measure.length)), Math.max(5, ...rows.map((r) => r.value.length)), Math.max(6, ...rows.map((r) => r.target.length))];
  console.log(`reference model ${values.model}, ${n} ${split === "heldout" ? "held-out items" : "fresh training-template items"} per family (seed ${seed})`);
  console.log(`${"measure".padEnd(widths[0])} | ${"value".padEnd(widths[1])} | ${"target".padEnd(widths[2])} | ok`);
  console.log(`${"-".repeat(widths[0])}-|-${"-".repeat(widths[1])}-|-${"-".repeat(widths[2])}-|---`);
  for (const r of rows) console.log(`${r.measure.padEnd(widths[0])} | ${r.value.padEnd(widths[1])} | ${r.target.padEnd(widths[2])} | ${r.ok === undefined ? "" : r.ok ? "yes" : "NO"}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
