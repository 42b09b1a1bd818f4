/**
 * stories: short stories with token-level concept labels (name, animal, colour, number, positive
 * and negative emotion words, negation scope, inside a quote) and sentence-level labels.
 */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";
import { ANIMALS, COLOURS, from, NAMES, NEGATIVE, NUMBER_WORDS, OBJECTS, POSITIVE } from "./vocabulary";

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
  const names = from(NAMES, split);
  const hero = rng.pick(names);
  const count = rng.int(3, 5);
  for (let i = 0; i < count; i++) {
    if (i > 0) b.add(" ");
    const start = b.length;
    let sentiment: Sentence["sentiment"] = "neutral";
    let negated = false;
    const kind = rng.int(0, 4);
    if (kind === 0) {
      b.add(hero, "name").add(" saw a ").add(rng.pick(from(COLOURS, split)), "colour").add(" ").add(rng.pick(from(ANIMALS, split)), "animal").add(".");
    } else if (kind === 1) {
      const n = rng.chance(0.5) ? String(rng.int(2, 9)) : rng.pick(NUMBER_WORDS);
      b.add(hero, "name").add(" had ").add(n, "number").add(` ${rng.pick(from(OBJECTS, split))}.`);
    } else if (kind === 2) {
      const positive = rng.chance(0.5);
      negated = rng.chance(0.35);
      const emotion = rng.pick(from(positive ? POSITIVE : NEGATIVE, split));
      b.add(hero, "name").add(" was ");
      const scope = b.length;
      if (negated) b.add("not ");
      b.add(emotion, positive ? "emotion-positive" : "emotion-negative");
      if (negated) b.mark(scope, b.length, "negation");
      b.add(".");
      sentiment = positive !== negated ? "positive" : "negative";
    } else if (kind === 3) {
      const friend = rng.pick(names);
      b.add('"');
      const quoteStart = b.length;
      b.add("I like the ").add(rng.pick(from(COLOURS, split)), "colour").add(" ").add(rng.pick(from(ANIMALS, split)), "animal");
      b.mark(quoteStart, b.length, "quote");
      b.add(',"').add(" said ").add(friend, "name").add(".");
      sentiment = "positive";
    } else {
      const emotion = rng.pick(from(NEGATIVE, split));
      b.add("The ").add(rng.pick(from(ANIMALS, split)), "animal").add(" felt ").add(emotion, "emotion-negative").add(".");
      sentiment = "negative";
    }
    sentences.push({ start, end: b.length, sentiment, negated });
  }
  b.add("\n");
  return { family: "stories", split, text: b.toString(), spans: b.spans, meta: { sentences } };
}
