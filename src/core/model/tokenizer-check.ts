/** Checks that a model folder's tokenizer.json belongs to its config.json. */
import { LoupeError } from "../errors";
import type { Encoding, Tokenizer } from "../tokenizer";
import type { ModelConfig } from "./config";

/**
 * A tokenizer whose own vocabulary has more ids than the model's vocab_size belongs to another
 * model. Added tokens past vocab_size are allowed (some checkpoints ship them): a prompt that
 * produces one is refused when it is encoded (checkIdsInVocabulary). A tokenizer in which the
 * ids config.json names as beginning/end of text are ordinary tokens belongs to another model
 * too: every family Loupe builds keeps those as special added tokens (a GPT-2 tokenizer beside a
 * Llama config trips this, though it is smaller than the vocabulary).
 */
export function checkTokenizerFitsModel(tokenizer: Tokenizer, cfg: ModelConfig, tokenizerFile: string): void {
  if (tokenizer.modelVocabSize > cfg.dVocab) {
    throw new LoupeError(
      "tokenizer-mismatch",
      `${tokenizerFile} has ${tokenizer.modelVocabSize} tokens but config.json's vocab_size is ${cfg.dVocab}: the tokenizer belongs to another model.`,
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

/**
 * Refuse a prompt that produced an id past the model's embedding (an added token of the
 * tokenizer beyond vocab_size), naming the token, where it is in the text, and the tokenizer.
 */
export function checkIdsInVocabulary(text: string, encoding: Encoding, dVocab: number, tokenizerFile: string): void {
  const at = encoding.ids.findIndex((id) => id >= dVocab);
  if (at < 0) return;
  const [start, end] = encoding.offsets[at];
  throw new LoupeError(
    "tokenizer-mismatch",
    `The text has ${JSON.stringify(text.slice(start, end) || encoding.tokens[at])} at characters ${start}-${end}, which ${tokenizerFile} encodes as id ${encoding.ids[at]}, a token it adds past the model's vocabulary (vocab_size ${dVocab}): the model has no embedding for it. Rewrite that part of the text.`,
    tokenizerFile,
  );
}
