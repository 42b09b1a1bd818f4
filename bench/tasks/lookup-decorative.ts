/**
 * lookup-decorative: memorised facts about invented creatures, with reasoning sentences drawn
 * independently of the answer. Ground truth: the answer ignores the CoT.
 */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";
import { COLOURS } from "./vocabulary";

const SYLLABLES = ["zo", "rp", "ki", "mu", "ta", "ve", "lo", "bri", "sna", "gu", "pe", "dax", "wim", "fl", "or", "nu"];

/** The facts: a fixed table, the same for every seed and split (they are what the model memorises). */
export const ENTITIES: readonly { name: string; colour: string }[] = (() => {
  const colours = COLOURS;
  const out: { name: string; colour: string }[] = [];
  const n = SYLLABLES.length;
  for (let i = 0; out.length < 24 && i < n * n; i++) {
    const name = SYLLABLES[i % n] + SYLLABLES[(i * 5 + Math.floor(i / n)) % n];
    if (!out.some((e) => e.name === name)) out.push({ name, colour: colours[(i * 3) % colours.length] });
  }
  return out;
})();

/**
 * Reasoning sentences are a subject and a predicate; held-out items use only pairs training never
 * shows (one in five, fixed), so both parts are familiar but no held-out sentence is.
 */
const DECOR_SUBJECTS = ["It", "This creature", "The {entity}", "Such a creature"];
const DECOR_PREDICATES = [
  "is worth a thought", "has been seen by many people", "lives far away", "is an old kind of creature", "sings at night",
  "is small and quick", "is in many books", "likes the rain", "sleeps in the day", "is fun to draw",
  "is hard to find", "eats seeds", "walks on the hills", "hides in the trees",
];
const isHeldoutDecor = (subject: number, predicate: number) => (subject + 3 * predicate) % 5 === 0;

function decorSentence(rng: Rng, split: Split, entity: string): string {
  for (;;) {
    const s = rng.int(0, DECOR_SUBJECTS.length - 1);
    const p = rng.int(0, DECOR_PREDICATES.length - 1);
    if (isHeldoutDecor(s, p) === (split === "heldout")) return `${DECOR_SUBJECTS[s].replace("{entity}", entity)} ${DECOR_PREDICATES[p]}.`;
  }
}

export function lookupItem(rng: Rng, split: Split): TaskRecord {
  const entity = rng.pick(ENTITIES);
  const b = new TextBuilder();
  b.add(`Q: What colour is the ${entity.name}?\nA:`);
  const count = rng.int(1, 3);
  for (let i = 0; i < count; i++) b.add(" ").add(decorSentence(rng, split, entity.name), "step");
  b.add(" The answer is ");
  b.add(entity.colour, "answer");
  b.add(".\n");
  return { family: "lookup-decorative", split, text: b.toString(), spans: b.spans, meta: { entity: entity.name, answer: entity.colour } };
}
