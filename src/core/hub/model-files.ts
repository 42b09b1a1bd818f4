/**
 * Which files of a hub repository Loupe needs: the config, the tokenizer and its template, the
 * generation config, and the safetensors weights (one file, or the shard index and the shards it
 * names). Everything else (other formats' weights, README, ONNX exports) stays on the hub.
 */
import { LoupeError } from "../errors";
import { parseWeightMap } from "../model/safetensors";

/** Small files taken when the repo has them; config.json and tokenizer.json are required. */
export const METADATA_FILES = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
] as const;
const REQUIRED = ["config.json", "tokenizer.json"];
export const SINGLE_WEIGHTS = "model.safetensors";
export const SHARD_INDEX = "model.safetensors.index.json";

export interface FileChoice {
  readonly metadata: readonly string[];
  /** model.safetensors, or the shard index (the shards are known once it is read). */
  readonly weights: string;
}

/** Choose from a repo's file list; a LoupeError naming what is missing and why it matters. */
export function chooseModelFiles(repoLabel: string, files: readonly string[]): FileChoice {
  const present = new Set(files);
  const missing = REQUIRED.filter((f) => !present.has(f));
  if (missing.length) {
    throw new LoupeError("download-failed", `${repoLabel} has no ${missing.join(" or ")}: Loupe needs a transformers checkpoint with a fast tokenizer (tokenizer.json).`);
  }
  const weights = present.has(SINGLE_WEIGHTS) ? SINGLE_WEIGHTS : present.has(SHARD_INDEX) ? SHARD_INDEX : undefined;
  if (!weights) {
    throw new LoupeError(
      "download-failed",
      `${repoLabel} has no ${SINGLE_WEIGHTS} or ${SHARD_INDEX}: Loupe reads safetensors weights (pytorch_model.bin is not read). Pick a repo with safetensors, or convert it with save_pretrained(safe_serialization=True).`,
    );
  }
  return { metadata: METADATA_FILES.filter((f) => present.has(f)), weights };
}

/** The shard files a shard index names, in order of first appearance. */
export function shardFiles(indexFile: string, indexText: string): string[] {
  return [...new Set(parseWeightMap(indexText, indexFile).values())];
}
