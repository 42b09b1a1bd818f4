/**
 * What a model folder must hold, checked without building or running anything: config.json of an
 * architecture Loupe builds, model.safetensors (or its shards and their index) with readable
 * headers, and a tokenizer.json
 * that belongs to the config. HookedModel.load starts here; `Loupe: Select Model…` calls it before
 * remembering a folder, so a wrong choice is explained at once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { Tokenizer } from "../tokenizer";
import { readModelConfig, type ModelConfig } from "./config";
import { openModelWeights } from "./model-weights";
import type { SafetensorsIndex } from "./safetensors";
import { checkTokenizerFitsModel } from "./tokenizer-check";

export interface ModelFolder {
  readonly dir: string;
  readonly cfg: ModelConfig;
  /** model.safetensors, or model.safetensors.index.json for a sharded checkpoint. */
  readonly weightsFile: string;
  readonly weights: SafetensorsIndex;
  readonly tokenizer: Tokenizer;
}

/** Read and check a Hugging Face model folder; throws a LoupeError naming the file at fault. */
export function openModelFolder(folder: string): ModelFolder {
  const dir = path.resolve(folder);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LoupeError("missing-file", `Model folder ${dir} does not exist. Choose a folder with config.json, model.safetensors and tokenizer.json.`, dir);
  }
  const cfg = readModelConfig(dir);
  const weights = openModelWeights(dir);
  const tokenizerFile = path.join(dir, "tokenizer.json");
  if (!fs.existsSync(tokenizerFile)) {
    throw new LoupeError("missing-file", `No tokenizer.json in ${dir}. Save the tokenizer beside the model (tokenizer.save_pretrained with a fast tokenizer).`, tokenizerFile);
  }
  const tokenizer = Tokenizer.fromFile(tokenizerFile);
  checkTokenizerFitsModel(tokenizer, cfg, tokenizerFile);
  return { dir, cfg, weightsFile: weights.path, weights, tokenizer };
}
