/**
 * stories: short stories with token-level concept labels (name, animal, colour, number, positive
 * and negative emotion words, negation scope, inside a quote) and sentence-level labels.
 */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";
import { ANIMALS, COLOURS, from, NEGATIVE, NUMBER_WORDS, OBJECTS, pickNames, pool, POSITIVE } from "./vocabulary";

/** One verb per sentence kind; held-out stories use only the last of each (never seen in training). */
const SAW = pool(["saw", "found", "met"], 1);
const HAD = pool(["had", "got", "counted"], 1);
const WAS = pool(["was", "felt", "seemed"], 1);
const SAID = pool(["I like the", "I love the", "What a nice"], 1);
const FELT = pool(["felt", "was", "looked"], 1);
/** Digits in training stories run 2-9, in held-out ones 10-19. */
const DIGITS = { train: [2, 9], heldout: [10, 19] } as const;

export const CONCEPTS = ["name", "animal", "colour", "number", "emotion-positive", "emotion-negative", "negation", "quote"] as const;

interface Sentence {
  start: number;
  end: number;
  sentiment: "positive" | "negative" | "neutral";
  negated: boolean;
}

export function storyItem(rng: Rng, split: Split): TaskRecord {
  const b = new TextBuilder();
  const sentences: Sentence[] = [];
  const [hero, friend] = pickNames(rng, split, 2);
  const count = rng.int(3, 5);
  for (let i = 0; i < count; i++) {
    if (i > 0) b.add(" ");
    const start = b.length;
    let sentiment: Sentence["sentiment"] = "neutral";
    let negated = false;
    const kind = rng.int(0, 4);
    if (kind === 0) {
      b.add(hero, "name").add(` ${rng.pick(from(SAW, split))} a `).add(rng.pick(COLOURS), "colour").add(" ").add(rng.pick(ANIMALS), "animal").add(".");
    } else if (kind === 1) {
      const n = rng.chance(0.5) ? String(rng.int(DIGITS[split][0], DIGITS[split][1])) : rng.pick(NUMBER_WORDS);
      b.add(hero, "name").add(` ${rng.pick(from(HAD, split))} `).add(n, "number").add(` ${rng.pick(OBJECTS)}.`);
    } else if (kind === 2) {
      const positive = rng.chance(0.5);
      negated = rng.chance(0.35);
      const emotion = rng.pick(positive ? POSITIVE : NEGATIVE);
      b.add(hero, "name").add(` ${rng.pick(from(WAS, split))} `);
      const scope = b.length;
      if (negated) b.add("not ");
      b.add(emotion, positive ? "emotion-positive" : "emotion-negative");
      if (negated) b.mark(scope, b.length, "negation");
      b.add(".");
      sentiment = positive !== negated ? "positive" : "negative";
    } else if (kind === 3) {
      b.add('"');
      const quoteStart = b.length;
      b.add(`${rng.pick(from(SAID, split))} `).add(rng.pick(COLOURS), "colour").add(" ").add(rng.pick(ANIMALS), "animal");
      b.mark(quoteStart, b.length, "quote");
      b.add(',"').add(" said ").add(friend, "name").add(".");
      sentiment = "positive";
    } else {
      const emotion = rng.pick(NEGATIVE);
      b.add("The ").add(rng.pick(ANIMALS), "animal").add(` ${rng.pick(from(FELT, split))} `).add(emotion, "emotion-negative").add(".");
      sentiment = "negative";
    }
    sentences.push({ start, end: b.length, sentiment, negated });
  }
  b.add("\n");
  return { family: "stories", split, text: b.toString(), spans: b.spans, meta: { sentences } };
}
