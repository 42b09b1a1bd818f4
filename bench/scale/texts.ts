/** Prompts of a chosen token length for the scale benches (bench:scale, bench/models/decode-speed.ts), and the process's peak memory. */
import * as fs from "node:fs";
import * as path from "node:path";
import type { HookedModel } from "../../src/core/model/hooked-model";

const STORY = fs.readFileSync(path.join(__dirname, "..", "examples", "story.txt"), "utf8");

/** VmHWM of this process, MB. */
export function peakMb(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

/** A text of exactly n tokens of the model (leading <s> included): the story, repeated. */
export function textOf(model: HookedModel, n: number, source = STORY): string {
  let text = source;
  while (model.encode(text).ids.length < n) text += source;
  const enc = model.encode(text);
  return text.slice(0, enc.offsets[n - 1][1]);
}

/** A 6-step chain of thought whose question is padded with story text to about n tokens. */
export function cotOf(model: HookedModel, n: number): string {
  const steps = ["First, Mia had 3 apples.", "Then Leo gave her 4 more.", "So she had 3 + 4 = 7.", "Then she ate 2.", "So 7 - 2 = 5 were left.", "She gave 1 to Leo, so 4."];
  const tail = `\nA: ${steps.join("\n")}\nThe answer is 4`;
  const question = `Q: ${textOf(model, Math.max(8, n - model.encode(tail).ids.length - 4))} How many apples does Mia have?`;
  return `${question}${tail}`;
}

