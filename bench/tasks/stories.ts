/**
 * stories: short stories with token-level concept labels (name, animal, colour, number, positive
 * and negative emotion words, negation scope, inside a quote) and sentence-level labels.
 */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";
import { ANIMALS, COLOURS, from, NEGATIVE, NUMBER_WORDS, OBJECTS, pickNames, pool, POSITIVE } from "./vocabulary";

/**
 * Several verbs (or quote openers) per sentence kind, so that a concept word is met in many frames
 * and what the model learns about it is not bound to one. The last two of each list are held out:
 * held-out stories use only those, so every held-out sentence is in a frame training never shows.
 */
const SAW = pool(["saw", "found", "fed", "drew", "chased", "watched", "liked", "helped", "met", "spotted"], 2);
const HAD = pool(["had", "got", "bought", "kept", "lost", "sold", "made", "packed", "counted", "carried"], 2);
const WAS = pool(["was", "felt", "looked", "is", "stayed", "became", "seemed", "sounded"], 2);
const SAID = pool(["I like the", "I love the", "Look at the", "I want the", "Here is the", "We saw the", "What a nice", "I drew the"], 2);
const FELT = pool(["felt", "was", "got", "grew", "is", "looked", "seemed", "became"], 2);
const NEAR = pool(["ran to", "sat by", "walked to", "looked at", "came to", "slept near", "hid from", "waved at"], 2);
const SAYS = pool(["I feel", "I am", "We are", "You look", "They seem", "I was"], 2);
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
    const kind = rng.int(0, 6);
    // An emotion word, negated at `rate`, written at the builder's end; returns the sentence's sentiment.
    const emotion = (rate: number): Sentence["sentiment"] => {
      const positive = rng.chance(0.5);
      negated = rng.chance(rate);
      const scope = b.length;
      if (negated) b.add("not ");
      b.add(rng.pick(positive ? POSITIVE : NEGATIVE), positive ? "emotion-positive" : "emotion-negative");
      if (negated) b.mark(scope, b.length, "negation");
      return positive !== negated ? "positive" : "negative";
    };
    if (kind === 0) {
      b.add(hero, "name").add(` ${rng.pick(from(SAW, split))} a `).add(rng.pick(COLOURS), "colour").add(" ").add(rng.pick(ANIMALS), "animal").add(".");
    } else if (kind === 1) {
      const n = rng.chance(0.5) ? String(rng.int(DIGITS[split][0], DIGITS[split][1])) : rng.pick(NUMBER_WORDS);
      b.add(hero, "name").add(` ${rng.pick(from(HAD, split))} `).add(n, "number").add(` ${rng.pick(OBJECTS)}.`);
    } else if (kind === 2) {
      b.add(hero, "name").add(` ${rng.pick(from(WAS, split))} `);
      sentiment = emotion(0.35);
      b.add(".");
    } else if (kind === 3) {
      b.add('"');
      const quoteStart = b.length;
      b.add(`${rng.pick(from(SAID, split))} `).add(rng.pick(COLOURS), "colour").add(" ").add(rng.pick(ANIMALS), "animal");
      b.mark(quoteStart, b.length, "quote");
      b.add(',"').add(" said ").add(friend, "name").add(".");
      sentiment = "positive";
    } else if (kind === 4) {
      b.add("The ").add(rng.pick(ANIMALS), "animal").add(` ${rng.pick(from(FELT, split))} `).add(rng.pick(NEGATIVE), "emotion-negative").add(".");
      sentiment = "negative";
    } else if (kind === 5) {
      b.add("The ").add(rng.pick(COLOURS), "colour").add(" ").add(rng.pick(ANIMALS), "animal").add(` ${rng.pick(from(NEAR, split))} `).add(hero, "name").add(".");
    } else {
      b.add('"');
      const quoteStart = b.length;
      b.add(`${rng.pick(from(SAYS, split))} `);
      sentiment = emotion(0.35);
      b.mark(quoteStart, b.length, "quote");
      b.add(',"').add(" said ").add(friend, "name").add(".");
    }
    sentences.push({ start, end: b.length, sentiment, negated });
  }
  b.add("\n");
  return { family: "stories", split, text: b.toString(), spans: b.spans, meta: { sentences } };
}
