/**
 * Which files of a hub repository Loupe needs: the config, the tokenizer and its template, the
 * generation config, and the safetensors weights (one file, or the shard index and the shards it
 * names); in a repository with no safetensors (an ONNX-only export), the decoder .onnx Loupe would
 * import and its external data. Everything else (other formats, README, quantised variants) stays
 * on the hub.
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import { ONNX_MODEL_FILES } from "../model/onnx-import";
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
  /** model.safetensors, or the shard index (the shards are known once it is read), or a decoder .onnx and its external data. */
  readonly weights: readonly string[];
}

/** The decoder files an ONNX folder is loaded from, as repo paths, in the order Loupe looks for them. */
const ONNX_REPO_FILES = ONNX_MODEL_FILES.map((f) => f.split(path.sep).join("/"));

/** Choose from a repo's file list; a LoupeError naming what is missing and why it matters. */
export function chooseModelFiles(repoLabel: string, files: readonly string[]): FileChoice {
  const present = new Set(files);
  const missing = REQUIRED.filter((f) => !present.has(f));
  if (missing.length) {
    throw new LoupeError("download-failed", `${repoLabel} has no ${missing.join(" or ")}: Loupe needs a transformers checkpoint with a fast tokenizer (tokenizer.json).`);
  }
  const metadata = METADATA_FILES.filter((f) => present.has(f));
  if (present.has(SINGLE_WEIGHTS)) return { metadata, weights: [SINGLE_WEIGHTS] };
  if (present.has(SHARD_INDEX)) return { metadata, weights: [SHARD_INDEX] };
  const onnx = ONNX_REPO_FILES.find((f) => present.has(f));
  if (onnx) return { metadata, weights: [onnx, ...files.filter((f) => f.startsWith(`${onnx}_data`) || f.startsWith(`${onnx}.data`))] };
  throw new LoupeError(
    "download-failed",
    `${repoLabel} has no ${SINGLE_WEIGHTS}, ${SHARD_INDEX} or decoder .onnx (${ONNX_REPO_FILES.join(", ")}): Loupe reads safetensors weights or an ONNX export (pytorch_model.bin is not read). Pick a repo with either, or convert it with save_pretrained(safe_serialization=True).`,
  );
}

/** The shard files a shard index names, in order of first appearance. */
export function shardFiles(indexFile: string, indexText: string): string[] {
  return [...new Set(parseWeightMap(indexText, indexFile).values())];
}
