/**
 * Regenerates test/fixtures/tiny-gpt2/tokenizer.json (and the copies beside the f16/bf16 fixture
 * models): a byte-level BPE with exactly 320 entries, the 256 byte tokens, 63 merges and
 * <|endoftext|> as id 319, matching the tiny random model's vocab_size. Deterministic: running it
 * again rewrites the same bytes (a unit test checks this).
 *
 *   npx tsx bench/tokenizer/make-fixture.ts
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type ByteLevelBpeJson, trainByteLevelBpe, writeTokenizer } from "./train-bpe";

const TEXT = `Once upon a time there was a little fox who lived in the green forest.
The fox liked to run and play with the other animals. One day the fox met a blue bird.
"Hello," said the bird. "Do you want to play?" The fox was happy and they played all day.
When Mia and Leo went to the park, Leo gave a ball to Mia. Then Mia said thank you.
Tom has 3 apples and gets 4 more. 3 + 4 = 7. The answer is 7.
It is not raining today, and the children are not sad. They are playing in the garden.`;

export const FIXTURE_VOCAB_SIZE = 320;
export const FIXTURE_FOLDERS = ["tiny-gpt2", "tiny-gpt2-f16", "tiny-gpt2-bf16"];

export function buildFixtureTokenizer(): ByteLevelBpeJson {
  return trainByteLevelBpe([TEXT.repeat(3)], { vocabSize: FIXTURE_VOCAB_SIZE });
}

if (require.main === module) {
  const root = path.join(__dirname, "..", "..", "test", "fixtures");
  const tokenizer = buildFixtureTokenizer();
  for (const folder of FIXTURE_FOLDERS) {
    if (fs.existsSync(path.join(root, folder))) writeTokenizer(path.join(root, folder, "tokenizer.json"), tokenizer);
  }
  console.log(`wrote tokenizer.json (${FIXTURE_VOCAB_SIZE} entries) into the tiny-gpt2 fixtures`);
}
