import { strict as assert } from "node:assert";
import type { Tokenizer as NativeTokenizer } from "tokenizers";
import type { Tokenizer } from "../../src/core/tokenizer";

/** Assert that `ours` encodes `text` to the Rust tokenizer's ids, with its offsets (code points) as UTF-16 ranges. */
export async function assertMatchesRustTokenizer(ours: Tokenizer, oracle: NativeTokenizer, text: string): Promise<ReturnType<Tokenizer["encode"]>> {
  const encoded = ours.encode(text);
  const theirs = await oracle.encode(text, null, { addSpecialTokens: false });
  assert.deepEqual(encoded.ids, theirs.getIds(), `ids of ${JSON.stringify(text)}`);
  const toUtf16 = [0];
  for (const ch of text) toUtf16.push(toUtf16.at(-1)! + ch.length);
  assert.deepEqual(encoded.offsets, theirs.getOffsets().map(([s, e]) => [toUtf16[s], toUtf16[e]]), `offsets of ${JSON.stringify(text)}`);
  return encoded;
}
