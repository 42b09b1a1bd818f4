/**
 * Generates the bench corpus: JSONL records per split, a pure function of the seed.
 *
 *   npx tsx bench/tasks/generate.ts --seed 1 --out bench/data [--train 60000] [--heldout 300]
 *
 * Writes train.jsonl (mixed families), heldout-<family>.jsonl, and train.txt (texts joined by
 * <|endoftext|>, for the tokenizer).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { arithItem } from "./arith-cot";
import { hintedItem } from "./hinted-choice";
import { inductionItem } from "./induction";
import { ioiItem } from "./ioi";
import { lookupItem } from "./lookup-decorative";
import type { Family, Split, TaskRecord } from "./record";
import { Rng } from "./rng";
import { storyItem } from "./stories";

export const GENERATORS: Record<Family, (rng: Rng, split: Split) => TaskRecord> = {
  "arith-cot": arithItem,
  "lookup-decorative": lookupItem,
  "hinted-choice": hintedItem,
  ioi: ioiItem,
  induction: inductionItem,
  stories: storyItem,
};

/** Share of each family in the training mix. */
export const TRAIN_MIX: Record<Family, number> = {
  "arith-cot": 0.36,
  "lookup-decorative": 0.14,
  "hinted-choice": 0.12,
  ioi: 0.14,
  induction: 0.1,
  stories: 0.14,
};

export function generateTrain(seed: number, count: number): TaskRecord[] {
  const rng = new Rng(seed);
  const families = Object.keys(TRAIN_MIX) as Family[];
  const out: TaskRecord[] = [];
  for (let i = 0; i < count; i++) {
    let r = rng.float();
    let family = families[families.length - 1];
    for (const f of families) {
      if (r < TRAIN_MIX[f]) {
        family = f;
        break;
      }
      r -= TRAIN_MIX[f];
    }
    out.push(GENERATORS[family](rng, "train"));
  }
  return out;
}

/** The random stream of a family's held-out items: a different stream from training, offset per family. */
export function heldoutRng(seed: number, family: Family): Rng {
  return new Rng(seed * 1000 + 17 + Object.keys(GENERATORS).indexOf(family));
}

export function generateHeldout(seed: number, family: Family, count: number): TaskRecord[] {
  const rng = heldoutRng(seed, family);
  return Array.from({ length: count }, () => GENERATORS[family](rng, "heldout"));
}

function writeJsonl(file: string, records: readonly TaskRecord[]): void {
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
}

if (require.main === module) {
  const { values } = parseArgs({ options: { seed: { type: "string", default: "1" }, out: { type: "string", default: "bench/data" }, train: { type: "string", default: "60000" }, heldout: { type: "string", default: "300" } } });
  const seed = Number(values.seed);
  fs.mkdirSync(values.out, { recursive: true });
  const train = generateTrain(seed, Number(values.train));
  writeJsonl(path.join(values.out, "train.jsonl"), train);
  fs.writeFileSync(path.join(values.out, "train.txt"), train.map((r) => r.text).join("<|endoftext|>"));
  for (const family of Object.keys(GENERATORS) as Family[]) writeJsonl(path.join(values.out, `heldout-${family}.jsonl`), generateHeldout(seed, family, Number(values.heldout)));
  console.log(`wrote ${train.length} training items and held-out sets to ${values.out}`);
}
