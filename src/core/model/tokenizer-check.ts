/** Checks that a model folder's tokenizer.json belongs to its config.json. */
import { LoupeError } from "../errors";
import type { Tokenizer } from "../tokenizer";
import type { ModelConfig } from "./config";

/**
 * A tokenizer with more ids than the model's vocab_size belongs to another model. So does one in
 * which the ids config.json names as beginning/end of text are ordinary tokens: every family Loupe
 * builds keeps those as special added tokens (a GPT-2 tokenizer beside a Llama config trips this,
 * though it is smaller than the vocabulary).
 */
export function checkTokenizerFitsModel(tokenizer: Tokenizer, cfg: ModelConfig, tokenizerFile: string): void {
  if (tokenizer.vocabSize > cfg.dVocab) {
    throw new LoupeError(
      "tokenizer-mismatch",
      `${tokenizerFile} has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${cfg.dVocab}: the tokenizer belongs to another model.`,
      tokenizerFile,
    );
  }
  if (tokenizer.specialTokenIds.size === 0) return;
  for (const [what, id] of [["beginning-of-text", cfg.bosTokenId], ["end-of-text", cfg.eosTokenId]] as const) {
    if (id === undefined || id >= tokenizer.vocabSize || tokenizer.specialTokenIds.has(id)) continue;
    const token = tokenizer.idToToken(id);
    if (token === undefined) continue;
    throw new LoupeError(
      "tokenizer-mismatch",
      `${tokenizerFile}: config.json's ${what} token is id ${id}, but in this tokenizer id ${id} is the ordinary token ${JSON.stringify(token)} (${tokenizer.vocabSize} tokens, vocab_size ${cfg.dVocab}): the tokenizer belongs to another model.`,
      tokenizerFile,
    );
  }
}
