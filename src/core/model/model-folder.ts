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
import { knownMissingOnHub } from "../hub/cache-layout";
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
    const why = knownMissingOnHub(dir, "tokenizer.json")
      ? `The hub repository of ${dir} has no tokenizer.json (the Hugging Face cache records it as missing): it ships only a slow tokenizer. Save a fast one beside the model (AutoTokenizer.from_pretrained(...).save_pretrained) and open that folder.`
      : `No tokenizer.json in ${dir}. Save the tokenizer beside the model (tokenizer.save_pretrained with a fast tokenizer).`;
    throw new LoupeError("missing-file", why, tokenizerFile);
  }
  // The weights are the ground truth: a config.json that misdescribes them is blamed before the
  // tokenizer is measured against it.
  checkWeightsFitConfig(weights, cfg, path.join(dir, "config.json"));
  const tokenizer = Tokenizer.fromFile(tokenizerFile);
  checkTokenizerFitsModel(tokenizer, cfg, tokenizerFile);
  return { dir, cfg, weightsFile: weights.path, weights, tokenizer };
}

/** The token embedding's names, with and without the model class's prefix. */
const EMBEDDING_NAMES: Record<ModelConfig["architecture"], readonly string[]> = {
  gpt2: ["transformer.wte.weight", "wte.weight"],
  llama: ["model.embed_tokens.weight", "embed_tokens.weight"],
};

/** The token embedding [vocab_size, d_model] must be what config.json says; otherwise config.json is the file at fault. */
function checkWeightsFitConfig(weights: SafetensorsIndex, cfg: ModelConfig, configFile: string): void {
  const name = EMBEDDING_NAMES[cfg.architecture].find((n) => weights.tensors.has(n));
  const shape = name === undefined ? undefined : weights.tensors.get(name)?.shape;
  if (!shape || shape.length !== 2) return; // the graph builder names a missing or odd embedding
  const [rows, width] = shape;
  if (rows === cfg.dVocab && width === cfg.dModel) return;
  const wrong = rows !== cfg.dVocab ? `vocab_size is ${cfg.dVocab}` : `the model width is ${cfg.dModel}`;
  const fix = rows !== cfg.dVocab ? `set vocab_size to ${rows}` : `set the width (n_embd / hidden_size) to ${width}`;
  throw new LoupeError(
    "bad-file",
    `${configFile} does not describe ${weights.path}: its ${wrong}, but the token embedding ${name} is [${rows}, ${width}]. Use the config.json saved with these weights, or ${fix}.`,
    configFile,
  );
}
