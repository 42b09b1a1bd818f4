import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { readLinearModelWeights } from "../../../src/core/circuits/model-weights";
import { readModelConfig } from "../../../src/core/model/config";
import { scratchDir, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";
import { shardedFolderFiles, writeFolder } from "../../helpers/hub-cache";

describe("circuits: the frozen model's weights", () => {
  for (const folder of [TINY_GPT2, TINY_LLAMA]) {
    it(`reads ${folder.split("/").pop()} from shards (model.safetensors.index.json) as from one file`, () => {
      const sharded = writeFolder(scratchDir("sharded-weights"), shardedFolderFiles(folder, 3));
      assert.ok(!fs.existsSync(`${sharded}/model.safetensors`) && fs.existsSync(`${sharded}/model.safetensors.index.json`));
      const cfg = readModelConfig(folder);
      assert.deepEqual(readLinearModelWeights(sharded, cfg), readLinearModelWeights(folder, cfg));
    });
  }
});
