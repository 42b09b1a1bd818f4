import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { stopTokenIds } from "../../../src/core/model/stop-tokens";
import { Tokenizer } from "../../../src/core/tokenizer";
import { scratchDir, TINY_LLAMA } from "../../helpers/fixtures";
import { folderFiles, writeFolder } from "../../helpers/hub-cache";

describe("generation stops at the end-of-sequence tokens a checkpoint declares", function () {
  this.timeout(30_000);
  const PROMPT = "the cat";

  /** The tiny Llama with extra files, generating greedily from PROMPT. */
  async function generateWith(extra: Record<string, unknown>) {
    const dir = writeFolder(scratchDir("stops"), folderFiles(TINY_LLAMA));
    for (const [name, json] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name), JSON.stringify(json));
    const model = await HookedModel.load(dir, { cacheDir: null, threads: 1 });
    try {
      return await model.generate(PROMPT, { maxNewTokens: 8 });
    } finally {
      await model.dispose();
    }
  }

  let free: number[];
  before(async () => {
    const model = await HookedModel.load(TINY_LLAMA, { cacheDir: null, threads: 1 });
    try {
      free = (await model.generate(PROMPT, { maxNewTokens: 8, stopAtEos: false })).tokens;
    } finally {
      await model.dispose();
    }
  });

  it("every id of generation_config.json's eos_token_id list ends the text", async () => {
    const at = free.findIndex((id, i) => i > 0 && !free.slice(0, i).includes(id));
    assert.ok(at > 0, `the free run ${free} has a token not seen before it`);
    const generation = await generateWith({ "generation_config.json": { eos_token_id: [2, free[at]] } });
    assert.deepEqual(generation.tokens, free.slice(0, at));
    assert.equal(generation.stopReason, "eos");
  });

  it("a BOS the model emits ends the text, and the tokenizer's named eos_token counts", () => {
    const dir = writeFolder(scratchDir("stop-ids"), folderFiles(TINY_LLAMA));
    const tokenizer = Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
    assert.deepEqual([...stopTokenIds(dir, tokenizer)].sort(), [1, 2]);
    const word = tokenizer.encode("cat").ids.at(-1)!;
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ eos_token: { content: tokenizer.idToToken(word) } }));
    fs.writeFileSync(path.join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: 7 }));
    assert.deepEqual([...stopTokenIds(dir, tokenizer)].sort((a, b) => a - b), [1, 2, 7, word].sort((a, b) => a - b));
  });
});
