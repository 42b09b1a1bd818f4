/** induction: a random sequence of short made-up words, then the same sequence again. */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";

const CONSONANTS = "bdfgklmnprstvz";
const VOWELS = "aeiou";

function word(rng: Rng): string {
  return rng.pick([...CONSONANTS]) + rng.pick([...VOWELS]) + rng.pick([...CONSONANTS]);
}

export function inductionItem(rng: Rng, split: Split): TaskRecord {
  const count = split === "train" ? rng.int(6, 12) : rng.int(13, 16);
  const words = Array.from({ length: count }, () => word(rng));
  const sequence = words.join(" ");
  const b = new TextBuilder();
  b.add("Repeat: ");
  b.add(sequence, "first");
  b.add(" | ");
  const repeatStart = b.length;
  b.add(sequence, "repeat");
  b.add("\n");
  return { family: "induction", split, text: b.toString(), spans: b.spans, meta: { words, repeatStart } };
}
