/**
 * Writes the probe datasets shipped with Loupe as built-in examples (media/datasets/), from the
 * stories family with the training vocabulary and a seed the training corpus did not use:
 *   stories-concepts.jsonl   {text, spans}: name, animal, colour, number, emotion, negation, quote
 *   stories-sentiment.jsonl  {text, label}: one sentence per line, positive / negative / neutral
 *
 *   npx tsx bench/probes/make-datasets.ts
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { storyItem } from "../tasks/stories";
import { Rng } from "../tasks/rng";

const out = path.join(__dirname, "..", "..", "media", "datasets");
fs.mkdirSync(out, { recursive: true });
const rng = new Rng(424242);
const stories = Array.from({ length: 300 }, () => storyItem(rng, "train"));
fs.writeFileSync(path.join(out, "stories-concepts.jsonl"), stories.map((s) => JSON.stringify({ text: s.text.trimEnd(), spans: s.spans.filter((x) => x.end <= s.text.trimEnd().length) })).join("\n") + "\n");
const sentences = stories.flatMap((s) =>
  (s.meta.sentences as { start: number; end: number; sentiment: string }[]).map((x) => ({ text: s.text.slice(x.start, x.end), label: x.sentiment })),
);
fs.writeFileSync(path.join(out, "stories-sentiment.jsonl"), sentences.slice(0, 1000).map((x) => JSON.stringify(x)).join("\n") + "\n");
console.log(`wrote ${stories.length} stories and ${Math.min(1000, sentences.length)} sentences to ${out}`);
