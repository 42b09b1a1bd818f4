/**
 * Regenerates test/fixtures/tiny-gpt2/tokenizer.json: 256 byte tokens, 63 merges and
 * <|endoftext|> (id 319), matching the tiny random model's vocab_size of 320.
 *
 *   npx tsx bench/tokenizer/make-fixture.ts
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { trainByteLevelBpe, writeTokenizer } from "./train-bpe";

const TEXT = `Once upon a time there was a little fox who lived in the green forest.
The fox liked to run and play with the other animals. One day the fox met a blue bird.
"Hello," said the bird. "Do you want to play?" The fox was happy and they played all day.
When Mia and Leo went to the park, Leo gave a ball to Mia. Then Mia said thank you.
Tom has 3 apples and gets 4 more. 3 + 4 = 7. The answer is 7.
It is not raining today, and the children are not sad. They are playing in the garden.`;

const root = path.join(__dirname, "..", "..", "test", "fixtures");
const tokenizer = trainByteLevelBpe([TEXT.repeat(3)], { vocabSize: 320 });
for (const folder of ["tiny-gpt2", "tiny-gpt2-f16", "tiny-gpt2-bf16"]) {
  if (fs.existsSync(path.join(root, folder))) writeTokenizer(path.join(root, folder, "tokenizer.json"), tokenizer);
}
console.log("wrote tokenizer.json (320 entries) into the tiny-gpt2 fixtures");
