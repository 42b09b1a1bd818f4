/**
 * Word pools, each split into a training part and a held-out part that training never sees.
 * Held-out items use only the held-out names, objects and templates.
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

export const NAMES = pool(
  ["Mia", "Leo", "Sam", "Ana", "Tom", "Eva", "Max", "Zoe", "Ben", "Ivy", "Jon", "Amy", "Dan", "Liz", "Ray", "Kim", "Ned", "Pam", "Rob", "Sue", "Tim", "Ada", "Gus", "Fay", "Hal", "Joy", "Kai", "Lou", "Meg", "Otto"],
  6,
);
export const ANIMALS = pool(["cat", "dog", "fox", "owl", "bear", "frog", "duck", "goat", "wolf", "mouse", "horse", "sheep", "crow", "deer"], 3);
export const COLOURS = pool(["red", "blue", "green", "yellow", "black", "white", "pink", "brown", "grey", "orange"], 2);
export const OBJECTS = pool(["apples", "books", "coins", "cards", "shells", "stones", "pens", "cups", "eggs", "hats", "keys", "rings"], 3);
export const PLACES = pool(["park", "shop", "lake", "school", "market", "beach", "farm", "zoo", "garden", "library"], 2);
export const GIFTS = pool(["ball", "book", "kite", "drink", "map", "cake", "letter", "flower", "hat", "toy"], 2);
export const POSITIVE = pool(["happy", "glad", "calm", "proud", "cheerful", "joyful", "excited", "hopeful"], 2);
export const NEGATIVE = pool(["sad", "angry", "afraid", "upset", "tired", "lonely", "worried", "gloomy"], 2);
export const NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine"];
