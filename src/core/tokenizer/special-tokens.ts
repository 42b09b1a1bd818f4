/** Which added tokens end or begin a text, by the names model families give them. */
import type { AddedTokenSpec } from "./tokenizer-spec";

/** In order of preference: GPT-2 uses <|endoftext|> for both ends. */
const EOS_NAMES = ["<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|im_end|>", "<|eot_id|>"];
const BOS_NAMES = ["<s>", "<|begin_of_text|>", "<bos>", "<|endoftext|>"];

export function findEndOfText(added: readonly AddedTokenSpec[]): number | undefined {
  return findByName(added, EOS_NAMES);
}

export function findBeginningOfText(added: readonly AddedTokenSpec[]): number | undefined {
  return findByName(added, BOS_NAMES);
}

function findByName(added: readonly AddedTokenSpec[], names: readonly string[]): number | undefined {
  for (const name of names) {
    const token = added.find((t) => t.content === name);
    if (token) return token.id;
  }
  return undefined;
}
