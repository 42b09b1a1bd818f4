import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const FIXTURES = path.join(__dirname, "..", "fixtures");
export const TINY_GPT2 = path.join(FIXTURES, "tiny-gpt2");
export const TINY_LLAMA = path.join(FIXTURES, "tiny-llama");

export interface Reference {
  config: Record<string, unknown>;
  prompts: { tokens: number[]; logits: number[]; hooks: Record<string, { shape: number[]; data: number[] }> }[];
  patch: { clean: number[]; corrupt: number[]; hook: string; position: number; patched_logits: number[]; corrupt_logits: number[] };
  dtypes: Record<"F16" | "BF16", { tokens: number[]; logits: number[] }>;
}

export function readReference(): Reference {
  return JSON.parse(fs.readFileSync(path.join(TINY_GPT2, "reference.json"), "utf8")) as Reference;
}

/** A scratch folder removed after the test run. */
export function scratchDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `loupe-${prefix}-`));
}

/** Copy the tiny model to a scratch folder so a test can break it. */
export function copyTinyModel(): string {
  const dir = scratchDir("model");
  for (const file of fs.readdirSync(TINY_GPT2)) fs.copyFileSync(path.join(TINY_GPT2, file), path.join(dir, file));
  return dir;
}
