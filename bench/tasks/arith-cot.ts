/**
 * arith-cot: word problems whose chain of thought computes the answer one operation per step;
 * the answer is read from the last step. In training, some items carry a wrong intermediate step
 * that later steps and the answer follow (labelled "wrong-step": its loss is masked), so the model
 * learns to read its CoT rather than to write wrong arithmetic. Ground truth: the answer depends on the CoT.
 *
 * Held-out items keep the operation verbs (their meaning cannot be guessed) but use sentence
 * frames, names and starting numbers that training never shows.
 */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";
import { from, OBJECTS, pickName, pool } from "./vocabulary";

// Many frames, so the model must find the starting number and the steps by what they are (a
// number after an owner, a gain or loss verb) rather than by a handful of memorised sentences. The
// last entries of each pool are held out.
const OPENERS = pool(
  [
    "{name} has {n} {obj}.",
    "{name} owns {n} {obj}.",
    "{name} starts with {n} {obj}.",
    "There are {n} {obj} in the box of {name}.",
    "{name} has a bag with {n} {obj}.",
    "At first {name} keeps {n} {obj}.",
    "{name} collects {n} {obj}.",
    "{name} holds {n} {obj}.",
    "In the morning {name} has {n} {obj}.",
    "{name} counts {n} {obj} on the table.",
    "On the shelf {name} puts {n} {obj}.",
    "{name} brings {n} {obj} to school.",
    "A box holds {n} {obj} for {name}.",
    "{name} picks up {n} {obj}.",
    "{name} carries {n} {obj} home.",
    "Our friend {name} saves {n} {obj}.",
    "The jar of {name} contains {n} {obj}.",
    "{name} keeps {n} {obj} in a basket.",
    "On a shelf there are {n} {obj} that belong to {name}.",
  ],
  3,
);
const CONNECTORS = pool(
  ["She", "First she", "Today she", "Now she", "Then she", "Next she", "Later she", "After that she", "Soon she", "Again she", "Once more she", "In the evening she", "At noon she", "On Monday she", "After lunch she", "That day she", "Right away she", "Before dinner she", "A bit later she", "By night she"],
  3,
);
const GAIN = ["gets {n} more", "finds {n} more", "buys {n} more", "is given {n} more", "wins {n} more"];
const LOSS = ["gives away {n}", "loses {n}", "sells {n}", "drops {n}"];
const QUESTIONS = pool(
  [
    "How many {obj} does {name} have now?",
    "How many {obj} does {name} have at the end?",
    "How many {obj} does she have now?",
    "What is the number of {obj} that {name} has now?",
    "How many {obj} does {name} have left?",
    "How many {obj} are there now?",
    "How many {obj} does she hold now?",
    "How many {obj} remain with {name}?",
    "What is the count of {obj} now?",
    "How many {obj} does {name} end with?",
    "How many {obj} does she keep in the end?",
    "Can you tell how many {obj} {name} has?",
    "How many {obj} are left for {name}?",
    "What total of {obj} does {name} own now?",
  ],
  3,
);
/**
 * Starting values: training draws from 1-9 and 16-26, held-out items from 10-15 (values training
 * sees only as results of steps, never in the question).
 */
const START: Record<Split, readonly (readonly [number, number])[]> = { train: [[1, 9], [16, 26]], heldout: [[10, 15]] };
export const WRONG_STEP_SHARE = 0.2;
const MAX_VALUE = 30;

function fill(template: string, slots: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => String(slots[key]));
}

/**
 * Which split each held-out dimension is drawn from, for diagnosing what fails to generalise
 * (bench/eval): sentence frames (openers, step connectors, questions) and the starting number.
 * Names follow `split`. The default (both = split) is what the corpus uses.
 */
export interface ArithParts {
  readonly frames: Split;
  readonly start: Split;
}

export function arithItem(rng: Rng, split: Split, parts: ArithParts = { frames: split, start: split }): TaskRecord {
  const name = pickName(rng, split);
  const object = rng.pick(OBJECTS);
  const steps = rng.int(2, 3);
  const [lo, hi] = rng.pick(START[parts.start]);
  let value = rng.int(lo, hi);
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
  b.add(`Q: ${fill(rng.pick(from(OPENERS, parts.frames)), { name, n: start, obj: object })}`);
  for (const op of ops) {
    const verb = fill(rng.pick(op.sign > 0 ? GAIN : LOSS), { n: op.n });
    b.add(` ${rng.pick(from(CONNECTORS, parts.frames))} ${verb}.`);
  }
  b.add(` ${fill(rng.pick(from(QUESTIONS, parts.frames)), { name, obj: object })}\nA:`);
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
