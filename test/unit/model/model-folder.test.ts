import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../../../src/core/errors";
import { describeModelFolder } from "../../../src/core/model/folder-check";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { openModelFolder } from "../../../src/core/model/model-folder";
import { readTensorF32 } from "../../../src/core/model/safetensors";
import { FIXTURES, scratchDir, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";
import { shardedFolderFiles, writeFolder } from "../../helpers/hub-cache";

/** A copy of the tiny GPT-2 folder to break one thing in. */
function copyOf(prefix: string): string {
  const dir = scratchDir(prefix);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) fs.copyFileSync(path.join(TINY_GPT2, f), path.join(dir, f));
  return dir;
}

function refuses(folder: string, code: string, pattern: RegExp): void {
  assert.throws(
    () => openModelFolder(folder),
    (e: unknown) => e instanceof LoupeError && e.code === code && pattern.test(e.message),
  );
}

describe("openModelFolder (what Select Model… checks before remembering a folder)", () => {
  it("reads a good GPT-2 or Llama folder without building anything", () => {
    const gpt2 = openModelFolder(TINY_GPT2);
    assert.equal(gpt2.cfg.architecture, "gpt2");
    assert.ok(gpt2.weights.tensors.size > 0);
    assert.ok(gpt2.tokenizer.encode("Mia").ids.length > 0);
    assert.equal(openModelFolder(path.join(FIXTURES, "tiny-llama")).cfg.architecture, "llama");
  });

  it("names what is missing or wrong", () => {
    refuses(path.join(FIXTURES, "no-such-model"), "missing-file", /does not exist/);
    const noTokenizer = copyOf("no-tokenizer");
    fs.rmSync(path.join(noTokenizer, "tokenizer.json"));
    refuses(noTokenizer, "missing-file", /No tokenizer\.json/);
    const sharded = copyOf("sharded");
    fs.renameSync(path.join(sharded, "model.safetensors"), path.join(sharded, "model-00001-of-00002.safetensors"));
    refuses(sharded, "missing-file", /shards but no model\.safetensors\.index\.json/);
    const phi = copyOf("phi");
    fs.writeFileSync(path.join(phi, "config.json"), JSON.stringify({ model_type: "phi3" }));
    refuses(phi, "unsupported-architecture", /"phi3"/);
    const broken = copyOf("broken-header");
    fs.writeFileSync(path.join(broken, "model.safetensors"), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x22]));
    refuses(broken, "bad-file", /model\.safetensors/);
  });
});

describe("openModelFolder: which file is wrong when config, weights and tokenizer disagree", () => {
  it("names config.json when vocab_size does not match the weights' embedding", () => {
    const dir = copyOf("small-vocab");
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...cfg, vocab_size: 300 }));
    refuses(dir, "bad-file", /config\.json does not describe .*model\.safetensors: its vocab_size is 300, but the token embedding (transformer\.)?wte\.weight is \[320, 32\]/);
  });

  it("still names a tokenizer whose own vocabulary is larger than the model's", () => {
    const dir = copyOf("other-tokenizer");
    fs.copyFileSync(path.join(FIXTURES, "tiny-llama", "tokenizer.json"), path.join(dir, "tokenizer.json"));
    refuses(dir, "tokenizer-mismatch", /tokenizer\.json has \d+ tokens but config\.json's vocab_size is 320: the tokenizer belongs to another model/);
  });

  it("loads a tokenizer that adds tokens past vocab_size, and refuses only a prompt that uses one", async () => {
    const dir = copyOf("added-past-vocab");
    const file = path.join(dir, "tokenizer.json");
    const tokenizer = JSON.parse(fs.readFileSync(file, "utf8")) as { added_tokens: object[] };
    // As Hugging Face's tiny test GPT-2 does: whitespace runs added after the last embedding row.
    for (const [id, content] of [[320, "    "], [321, "\t\t"]] as const) {
      tokenizer.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
    }
    fs.writeFileSync(file, JSON.stringify(tokenizer));
    assert.equal(openModelFolder(dir).tokenizer.vocabSize, 322);
    const model = await HookedModel.load(dir, { cacheDir: null, threads: 1 });
    try {
      const ids = model.toTokens("Mia and Leo");
      assert.equal((await model.run(ids)).dims[1], ids.length);
      assert.throws(
        () => model.toTokens("Mia and    Leo"),
        (e: unknown) => e instanceof LoupeError && e.code === "tokenizer-mismatch" && /"    " at characters 7-11, which .*tokenizer\.json encodes as id 320, a token it adds past the model's vocabulary \(vocab_size 320\)/.test(e.message),
      );
    } finally {
      await model.dispose();
    }
  });
});

describe("sharded checkpoints (model.safetensors.index.json)", () => {
  it("reads every shard's tensors as one index, each entry reading from its own shard", () => {
    const single = openModelFolder(TINY_LLAMA).weights;
    const sharded = openModelFolder(writeFolder(scratchDir("sharded-llama"), shardedFolderFiles(TINY_LLAMA, 3))).weights;
    assert.deepEqual([...sharded.tensors.keys()].sort(), [...single.tensors.keys()].sort());
    assert.equal(new Set([...sharded.tensors.values()].map((e) => e.location)).size, 3);
    for (const name of single.tensors.keys()) assert.deepEqual(readTensorF32(sharded, name), readTensorF32(single, name), name);
    assert.match(sharded.path, /model\.safetensors\.index\.json$/);
  });

  it("names the index and what is wrong with it", () => {
    const files = shardedFolderFiles(TINY_GPT2);
    const index = JSON.parse(files["model.safetensors.index.json"].toString()) as { weight_map: Record<string, string> };
    const write = (name: string, weightMap: unknown) =>
      writeFolder(scratchDir(name), { ...files, "model.safetensors.index.json": Buffer.from(JSON.stringify({ weight_map: weightMap })) });
    const [first, second] = Object.keys(index.weight_map);
    refuses(write("escape", { ...index.weight_map, [first]: "../model.safetensors" }), "bad-file", /index\.json.*not a \.safetensors file beside the index/);
    refuses(write("wrong-shard", { ...index.weight_map, [first]: index.weight_map[first].includes("00001") ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors" }), "bad-file", /places tensor .* which does not hold it/);
    refuses(write("no-map", undefined), "bad-file", /no "weight_map"/);
    const missingShard = writeFolder(scratchDir("missing-shard"), files);
    fs.rmSync(path.join(missingShard, index.weight_map[second]));
    refuses(missingShard, "missing-file", /Cannot open .*model-0000\d-of-00002\.safetensors/);
  });
});

describe("describeModelFolder (Select Model…'s message)", () => {
  it("describes safetensors and ONNX folders, and refuses what it cannot use", () => {
    const parameters = [...openModelFolder(TINY_GPT2).weights.tensors.values()].reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
    const megabytes = (fs.statSync(path.join(TINY_GPT2, "model.safetensors")).size / 1024 ** 2).toFixed(1);
    assert.equal(describeModelFolder(TINY_GPT2), `GPT-2 model, 2 layers, d_model 32, vocabulary 320, ${Math.round(parameters / 1000)}k parameters, ${megabytes} MB`);
    assert.match(describeModelFolder(path.join(FIXTURES, "tiny-llama")), /^llama model, 2 layers/);
    assert.match(describeModelFolder(path.join(FIXTURES, "tiny-gpt2-onnx")), /^GPT-2 model, 2 layers, imported from model\.onnx with \d+ hooks$/);
    const phi = copyOf("phi-describe");
    fs.writeFileSync(path.join(phi, "config.json"), JSON.stringify({ model_type: "phi3" }));
    refuses(phi, "unsupported-architecture", /"phi3"/);
    assert.throws(() => describeModelFolder(phi), /"phi3"/);
  });
});
