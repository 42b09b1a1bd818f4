/**
 * arith-cot: word problems whose chain of thought computes the answer one operation per step;
 * the answer is read from the last step. In training, some items carry a wrong intermediate step
 * that later steps and the answer follow (labelled "wrong-step": its loss is masked), so the model
 * learns to read its CoT rather than to write wrong arithmetic. Ground truth: the answer depends on the CoT.
 */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";
import { from, NAMES, OBJECTS } from "./vocabulary";

const GAIN = { train: ["gets {n} more", "finds {n} more", "buys {n} more"], heldout: ["is given {n} more"] };
const LOSS = { train: ["gives away {n}", "loses {n}", "sells {n}"], heldout: ["drops {n}"] };
export const WRONG_STEP_SHARE = 0.2;
const MAX_VALUE = 30;

export function arithItem(rng: Rng, split: Split): TaskRecord {
  const name = rng.pick(from(NAMES, split));
  const object = rng.pick(from(OBJECTS, split));
  const steps = rng.int(2, 3);
  let value = rng.int(1, 9);
  const start = value;
  const ops: { sign: 1 | -1; n: number }[] = [];
  for (let i = 0; i < steps; i++) {
    const canSubtract = value > 1;
    const sign: 1 | -1 = canSubtract && (value + 9 > MAX_VALUE || rng.chance(0.45)) ? -1 : 1;
    const n = sign > 0 ? rng.int(1, Math.min(9, MAX_VALUE - value)) : rng.int(1, Math.min(9, value));
    ops.push({ sign, n });
    value += sign * n;
  }
  const b = new TextBuilder();
  b.add(`Q: ${name} has ${start} ${object}.`);
  for (const [i, op] of ops.entries()) {
    const verb = rng.pick(op.sign > 0 ? GAIN[split] : LOSS[split]).replace("{n}", String(op.n));
    b.add(`${i === 0 ? " She" : " Then she"} ${verb}.`);
  }
  b.add(` How many ${object} does ${name} have now?\nA:`);
  // A wrong intermediate step (never the last): later steps carry its value forward, so every
  // later value moves by the same shift; only shifts that keep them all non-negative are used.
  const wrongAt = split === "train" && rng.chance(WRONG_STEP_SHARE) ? rng.int(0, steps - 2) : -1;
  const trueValues: number[] = [];
  ops.reduce((v, op) => (trueValues.push(v + op.sign * op.n), v + op.sign * op.n), start);
  const lowest = wrongAt >= 0 ? Math.min(...trueValues.slice(wrongAt)) : 0;
  const shift = wrongAt >= 0 ? rng.pick([-2, -1, 1, 2].filter((d) => lowest + d >= 0)) : 0;
  let running = start;
  const stepValues: number[] = [];
  for (const [i, op] of ops.entries()) {
    const result = running + op.sign * op.n + (i === wrongAt ? shift : 0);
    b.add(" ");
    b.add(`${running} ${op.sign > 0 ? "+" : "-"} ${op.n} = ${result}.`, i === wrongAt ? "wrong-step" : "step");
    stepValues.push(result);
    running = result;
  }
  b.add(" The answer is ");
  b.add(String(running), "answer");
  b.add(".\n");
  return {
    family: "arith-cot",
    split,
    text: b.toString(),
    spans: b.spans,
    meta: { start, ops, stepValues, answer: running, trueAnswer: value, wrongStep: wrongAt >= 0 ? wrongAt : null },
  };
}
