/**
 * The tokens that end a generation, gathered as transformers does: generation_config.json's
 * eos_token_id (a number or a list: chat models list the end of a turn, <|im_end|> or <|eot_id|>,
 * beside the end of text), config.json's, and the tokenizer's own end-of-text token (named in
 * tokenizer_config.json, else found among its added tokens). A beginning-of-sequence token the
 * model emits ends the text too: what follows it would be a new document.
 */
import * as path from "node:path";
import { MAX_MODEL_SIDE_FILE_BYTES, readTextSafely } from "../safe-fs";
import type { Tokenizer } from "../tokenizer";

export function stopTokenIds(folder: string, tokenizer: Tokenizer): Set<number> {
  const ids = new Set<number>();
  const add = (value: unknown) => {
    for (const v of Array.isArray(value) ? value : [value]) if (Number.isInteger(v) && v >= 0) ids.add(v as number);
  };
  const generation = readJson(path.join(folder, "generation_config.json"));
  const config = readJson(path.join(folder, "config.json"));
  const tokenizerConfig = readJson(path.join(folder, "tokenizer_config.json"));
  for (const key of ["eos_token_id", "bos_token_id"]) {
    add(generation[key]);
    add(config[key]);
  }
  for (const key of ["eos_token", "bos_token"]) {
    const value = tokenizerConfig[key];
    const text = typeof value === "string" ? value : (value as { content?: unknown } | null)?.content;
    if (typeof text === "string") add(tokenizer.tokenToId(text));
  }
  add(tokenizer.eosTokenId);
  add(tokenizer.bosTokenId);
  return ids;
}

/** A JSON object from a file, or {} when it is absent or unreadable (these files are optional; the model already loaded). */
function readJson(file: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(readTextSafely(file, { maxBytes: MAX_MODEL_SIDE_FILE_BYTES }) ?? "{}");
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
