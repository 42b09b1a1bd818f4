/**
 * Where a model folder keeps its weights: one model.safetensors, or shards listed by
 * model.safetensors.index.json (what save_pretrained writes past max_shard_size, and what most
 * hub checkpoints above a few GB are). Both come back as one SafetensorsIndex.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { knownMissingOnHub } from "../hub/cache-layout";
import { readSafetensorsIndex, readShardedSafetensorsIndex, type SafetensorsIndex } from "./safetensors";

export const SINGLE_WEIGHTS_FILE = "model.safetensors";
export const SHARD_INDEX_FILE = "model.safetensors.index.json";

/** The weights file a folder uses (the single file, else the shard index), or undefined when it has neither. */
export function findWeightsFile(dir: string): string | undefined {
  return [SINGLE_WEIGHTS_FILE, SHARD_INDEX_FILE].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
}

/** Read the headers of a folder's weights; throws a LoupeError saying how to save them when absent. */
export function openModelWeights(dir: string): SafetensorsIndex {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LoupeError("missing-file", `Model folder ${dir} does not exist. Choose a folder with config.json, model.safetensors and tokenizer.json, or a cached repo id (ORG/NAME).`, dir);
  }
  const weightsFile = findWeightsFile(dir);
  if (weightsFile === undefined) {
    const shards = fs.readdirSync(dir).some((f) => /^model-\d+-of-\d+\.safetensors$/.test(f));
    throw new LoupeError(
      "missing-file",
      shards
        ? `${dir} holds safetensors shards but no ${SHARD_INDEX_FILE} saying which tensor is in which. Copy the index beside the shards (save_pretrained writes it).`
        : knownMissingOnHub(dir, SINGLE_WEIGHTS_FILE) && knownMissingOnHub(dir, SHARD_INDEX_FILE)
          ? `The hub repository of ${dir} has no ${SINGLE_WEIGHTS_FILE} or ${SHARD_INDEX_FILE} (the Hugging Face cache records both as missing), so downloading again will not bring them. Loupe reads safetensors weights or a decoder .onnx: pick a repo with either, or convert this one with save_pretrained(safe_serialization=True).`
          : `No ${SINGLE_WEIGHTS_FILE} (or ${SHARD_INDEX_FILE} with its shards) in ${dir}. Save the model with save_pretrained(safe_serialization=True).`,
      path.join(dir, SINGLE_WEIGHTS_FILE),
    );
  }
  return path.basename(weightsFile) === SHARD_INDEX_FILE ? readShardedSafetensorsIndex(weightsFile) : readSafetensorsIndex(weightsFile);
}
