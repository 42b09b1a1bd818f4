/**
 * lookup-decorative: memorised facts about invented creatures, with reasoning sentences drawn
 * independently of the answer. Ground truth: the answer ignores the CoT.
 */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";
import { COLOURS, pool, from } from "./vocabulary";

const SYLLABLES = ["zo", "rp", "ki", "mu", "ta", "ve", "lo", "bri", "sna", "gu", "pe", "dax", "wim", "fl", "or", "nu"];

/** The facts: a fixed table, the same for every seed and split (they are what the model memorises). */
export const ENTITIES: readonly { name: string; colour: string }[] = (() => {
  const colours = [...COLOURS.train, ...COLOURS.heldout];
  const out: { name: string; colour: string }[] = [];
  const n = SYLLABLES.length;
  for (let i = 0; out.length < 24 && i < n * n; i++) {
    const name = SYLLABLES[i % n] + SYLLABLES[(i * 5 + Math.floor(i / n)) % n];
    if (!out.some((e) => e.name === name)) out.push({ name, colour: colours[(i * 3) % colours.length] });
  }
  return out;
})();

const DECOR = pool(
  [
    "Let us think about this.",
    "Many people have seen one.",
    "It lives far away.",
    "It is an old kind of creature.",
    "Some say it sings at night.",
    "It is small and quick.",
    "Books talk about it.",
    "It likes the rain.",
    "It sleeps in the day.",
    "Children like to draw it.",
    "It is hard to find.",
    "It eats seeds.",
  ],
  3,
);

export function lookupItem(rng: Rng, split: Split): TaskRecord {
  const entity = rng.pick(ENTITIES);
  const b = new TextBuilder();
  b.add(`Q: What colour is the ${entity.name}?\nA:`);
  const count = rng.int(1, 3);
  for (const sentence of rng.shuffle(from(DECOR, split)).slice(0, count)) b.add(" ").add(sentence, "step");
  b.add(" The answer is ");
  b.add(entity.colour, "answer");
  b.add(".\n");
  return { family: "lookup-decorative", split, text: b.toString(), spans: b.spans, meta: { entity: entity.name, answer: entity.colour } };
}
