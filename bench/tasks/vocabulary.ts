/**
 * Word pools. What the held-out split keeps unseen is what a model can generalise over: names,
 * number ranges and sentence frames (each family holds its own frames out). Content words
 * (animals, colours, objects, emotions) are shared, because no model can know what a word it has
 * never read means; holding them out measured out-of-vocabulary guessing, not the mechanisms.
 */
import type { Split } from "./record";

export interface Pool<T> {
  readonly train: readonly T[];
  readonly heldout: readonly T[];
}

export function pool<T>(items: readonly T[], heldoutCount: number): Pool<T> {
  return { train: items.slice(0, items.length - heldoutCount), heldout: items.slice(items.length - heldoutCount) };
}

export function from<T>(p: Pool<T>, split: Split): readonly T[] {
  return split === "train" ? p.train : p.heldout;
}

/** Names the tokenizer holds as single tokens; training only. */
const COMMON_NAMES = ["Mia", "Leo", "Sam", "Ana", "Tom", "Eva", "Max", "Zoe", "Ben", "Ivy", "Jon", "Amy", "Dan", "Liz", "Ray", "Kim", "Ned", "Pam", "Rob", "Sue", "Tim", "Ada", "Gus", "Fay"];

/**
 * Made-up names of several tokens each (initial + vowel + consonant + vowel [+ consonant]), so the
 * model must copy names it has never seen piece by piece. The initials are letters the tokenizer
 * joins to the leading space (" M", " L", ...): two names with different initials then differ in
 * their first token, which is what logit differences compare.
 */
export const NAME_INITIALS = ["A", "B", "L", "M", "R", "S", "T", "W"];
const NAME_VOWELS = ["a", "e", "i", "o", "u"];
const NAME_CONSONANTS = ["b", "d", "f", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"];
const NAME_ENDINGS = ["", "n", "r", "s", "l", "k"];

function madeUpNames(): string[] {
  const out: string[] = [];
  for (const i of NAME_INITIALS) for (const v of NAME_VOWELS) for (const c of NAME_CONSONANTS) for (const w of NAME_VOWELS) for (const e of NAME_ENDINGS) out.push(i + v + c + w + e);
  return out.filter((n) => !COMMON_NAMES.includes(n));
}

/** A fixed one-in-eight share of the made-up names is held out, chosen by a hash of the name. */
export function isHeldoutName(name: string): boolean {
  let h = 2166136261;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return (h >>> 0) % 8 === 0;
}

const MADE_UP = madeUpNames();
export const NAMES: Pool<string> = {
  train: [...COMMON_NAMES, ...MADE_UP.filter((n) => !isHeldoutName(n))],
  heldout: MADE_UP.filter(isHeldoutName),
};

/** A name: in training a common single-token name a third of the time, else a made-up one. */
export function pickName(rng: { pick<T>(items: readonly T[]): T; chance(p: number): boolean }, split: Split): string {
  return split === "train" && rng.chance(1 / 3) ? rng.pick(COMMON_NAMES) : rng.pick(split === "train" ? NAMES.train.slice(COMMON_NAMES.length) : NAMES.heldout);
}

/** Names with pairwise different initials (so their first tokens differ). */
export function pickNames(rng: { pick<T>(items: readonly T[]): T; chance(p: number): boolean }, split: Split, count: number): string[] {
  const out: string[] = [];
  while (out.length < count) {
    const name = pickName(rng, split);
    if (!out.some((n) => n[0] === name[0])) out.push(name);
  }
  return out;
}

export const ANIMALS = ["cat", "dog", "fox", "owl", "bear", "frog", "duck", "goat", "wolf", "mouse", "horse", "sheep", "crow", "deer"];
/** The order matters: lookup-decorative's facts index into it. */
export const COLOURS = ["red", "blue", "green", "yellow", "black", "white", "pink", "brown", "grey", "orange"];
export const OBJECTS = ["apples", "books", "coins", "cards", "shells", "stones", "pens", "cups", "eggs", "hats", "keys", "rings"];
export const PLACES = ["park", "shop", "lake", "school", "market", "beach", "farm", "zoo", "garden", "library"];
export const GIFTS = ["ball", "book", "kite", "drink", "map", "cake", "letter", "flower", "hat", "toy"];
export const POSITIVE = ["happy", "glad", "calm", "proud", "cheerful", "joyful", "excited", "hopeful"];
export const NEGATIVE = ["sad", "angry", "afraid", "upset", "tired", "lonely", "worried", "gloomy"];
export const NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine"];
