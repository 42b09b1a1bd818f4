/**
 * ioi: indirect-object sentences. "When Mia and Leo went to the park, Leo gave a ball to" -> " Mia".
 * The corrupted prompt puts a third name in place of the second mention of the subject. Names may
 * span several tokens; the three names have different initials, so their first tokens differ.
 * Held-out items use names and sentence frames training never shows.
 */
import { TextBuilder, type Split, type TaskRecord } from "./record";
import type { Rng } from "./rng";
import { from, GIFTS, pickNames, PLACES, pool } from "./vocabulary";

const TEMPLATES = pool(
  [
    "When {A} and {B} went to the {place}, {S} gave a {gift} to",
    "After {A} and {B} arrived at the {place}, {S} handed a {gift} to",
    "While {A} and {B} walked to the {place}, {S} threw a {gift} to",
    "{A} and {B} were at the {place}. {S} gave a {gift} to",
    "At the {place}, {A} and {B} sat down, and {S} passed a {gift} to",
    "When {A} and {B} got to the {place}, {S} sent a {gift} to",
    "{A} met {B} at the {place}, and then {S} gave a {gift} to",
    "Then {A} and {B} were at the {place}, and {S} passed a {gift} to",
    "Once {A} and {B} reached the {place}, {S} handed a {gift} to",
  ],
  2,
);

export function ioiItem(rng: Rng, split: Split): TaskRecord {
  const [io, s, c] = pickNames(rng, split, 3);
  const template = rng.pick(from(TEMPLATES, split));
  const ioFirst = rng.chance(0.5);
  const place = rng.pick(PLACES);
  const gift = rng.pick(GIFTS);
  const build = (subject2: string) => {
    const b = new TextBuilder();
    const parts = template.split(/(\{[A-Za-z]+\})/);
    for (const part of parts) {
      if (part === "{A}") b.add(ioFirst ? io : s, ioFirst ? "name-io" : "name-s1");
      else if (part === "{B}") b.add(ioFirst ? s : io, ioFirst ? "name-s1" : "name-io");
      else if (part === "{S}") b.add(subject2, "name-s2");
      else if (part === "{place}") b.add(place);
      else if (part === "{gift}") b.add(gift);
      else b.add(part);
    }
    return b;
  };
  const clean = build(s);
  const prompt = clean.toString();
  clean.add(" ");
  clean.add(io, "answer");
  clean.add(".\n");
  return {
    family: "ioi",
    split,
    text: clean.toString(),
    spans: clean.spans,
    meta: { prompt, corrupted: build(c).toString(), answer: ` ${io}`, wrong: ` ${s}`, io, s, c },
  };
}
