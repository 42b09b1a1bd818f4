import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LoupeError } from "../../../src/core/errors";
import { hubCacheDir, modelName, parseRepoRef } from "../../../src/core/hub/cache-layout";
import { listCachedModels } from "../../../src/core/hub/cached-models";
import { resolveModelFolder } from "../../../src/core/hub/model-reference";
import { describeModelFolder } from "../../../src/core/model/folder-check";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { checkModelFits, estimateModelMemory } from "../../../src/core/model/memory-limit";
import { openModelFolder } from "../../../src/core/model/model-folder";
import { scratchDir, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";
import { cacheRepo, folderFiles, shardedFolderFiles, withEnv, writeFolder } from "../../helpers/hub-cache";

const PROMPT = "When Mia and Leo went to the park";

async function logitsOf(reference: string): Promise<Float32Array> {
  const model = await HookedModel.load(reference, { cacheDir: null, threads: 1 });
  try {
    return (await model.run(model.toTokens(PROMPT))).data;
  } finally {
    await model.dispose();
  }
}

describe("hub cache: where it is", () => {
  it("follows huggingface_hub: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub", () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: "/a/hub", HF_HOME: "/b", XDG_CACHE_HOME: "/c" }), "/a/hub");
    assert.equal(hubCacheDir({ HF_HOME: "/b", XDG_CACHE_HOME: "/c" }), "/b/hub");
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: "/c" }), "/c/huggingface/hub");
    assert.equal(hubCacheDir({}), path.join(os.homedir(), ".cache", "huggingface", "hub"));
  });

  it("names a snapshot folder by its repo id (what probes and SAEs record), any other folder by its name", () => {
    assert.equal(modelName("/c/hub/models--HuggingFaceTB--SmolLM2-135M/snapshots/0123abc"), "HuggingFaceTB/SmolLM2-135M");
    assert.equal(modelName("/c/hub/models--a--b/snapshots/0123abc/"), "a/b");
    assert.equal(modelName("/models/reference"), "reference");
    assert.equal(modelName("/x/snapshots/0123abc"), "0123abc");
  });

  it("reads ORG/NAME[@REVISION] and nothing else as a repo id", () => {
    assert.deepEqual(parseRepoRef("HuggingFaceTB/SmolLM2-135M-Instruct"), { repoId: "HuggingFaceTB/SmolLM2-135M-Instruct", revision: "main" });
    assert.deepEqual(parseRepoRef("org/name@refs/pr/3"), { repoId: "org/name", revision: "refs/pr/3" });
    assert.deepEqual(parseRepoRef("gpt2@v1"), { repoId: "gpt2", revision: "v1" }, "an id without an organisation, as gpt2 and distilgpt2 are");
    for (const bad of ["-name", "name.", "a/-b", "a/b/c", "/abs/path", "org/na--me", "org/..", "org/name@", "org/name@../x", "C:\\models\\x", "./x/y"]) {
      assert.equal(parseRepoRef(bad), undefined, bad);
    }
  });
});

describe("hub cache: a model by repo id", function () {
  this.timeout(60_000);
  let cache: string;
  before(() => {
    cache = scratchDir("hub");
    cacheRepo(cache, "loupe-test/tiny-gpt2", folderFiles(TINY_GPT2));
    cacheRepo(cache, "loupe-test/tiny-llama-sharded", shardedFolderFiles(TINY_LLAMA), { revision: "v1" });
    cacheRepo(path.join(cache, "copies"), "loupe-test/tiny-gpt2", folderFiles(TINY_GPT2), { copies: true });
  });
  after(() => fs.rmSync(cache, { recursive: true, force: true }));

  it("loads a snapshot of symlinks into blobs/ with the same logits as the folder, through HF_HUB_CACHE and through HF_HOME", async () => {
    const expected = await logitsOf(TINY_GPT2);
    const viaHubCache = await withEnv({ HF_HUB_CACHE: cache, HF_HOME: undefined }, () => logitsOf("loupe-test/tiny-gpt2"));
    assert.deepEqual(viaHubCache, expected);
    const home = scratchDir("hf-home");
    fs.symlinkSync(cache, path.join(home, "hub"));
    const viaHome = await withEnv({ HF_HUB_CACHE: undefined, HF_HOME: home }, () => logitsOf("loupe-test/tiny-gpt2"));
    assert.deepEqual(viaHome, expected);
  });

  it("loads a sharded Llama checkpoint from the cache at a tag, and by its commit hash, with the folder's logits", async () => {
    const expected = await logitsOf(TINY_LLAMA);
    await withEnv({ HF_HUB_CACHE: cache }, async () => {
      assert.deepEqual(await logitsOf("loupe-test/tiny-llama-sharded@v1"), expected);
      const commit = fs.readFileSync(path.join(cache, "models--loupe-test--tiny-llama-sharded", "refs", "v1"), "utf8");
      assert.deepEqual(await logitsOf(`loupe-test/tiny-llama-sharded@${commit}`), expected);
      assert.match(describeModelFolder("loupe-test/tiny-llama-sharded@v1"), /^llama model, 2 layers/);
      // The memory check counts every shard: the same weights as the single file, each shard's bytes on disk.
      const sharded = estimateModelMemory("loupe-test/tiny-llama-sharded@v1");
      assert.equal(sharded.estimatedBytes, estimateModelMemory(TINY_LLAMA).estimatedBytes);
      const shardBytes = fs.readdirSync(resolveModelFolder("loupe-test/tiny-llama-sharded@v1")).filter((f) => f.endsWith(".safetensors")).map((f) => fs.statSync(path.join(resolveModelFolder("loupe-test/tiny-llama-sharded@v1"), f)).size);
      assert.equal(sharded.fileBytes, shardBytes[0] + shardBytes[1]);
      assert.throws(() => checkModelFits("loupe-test/tiny-llama-sharded@v1", sharded.estimatedBytes - 1), /model\.safetensors\.index\.json needs about/);
    });
  });

  it("loads plain copies (a cache written without symlinks, as on Windows)", async () => {
    const expected = await logitsOf(TINY_GPT2);
    assert.deepEqual(await withEnv({ HF_HUB_CACHE: path.join(cache, "copies") }, () => logitsOf("loupe-test/tiny-gpt2")), expected);
  });

  it("lists the cached models with their revisions, and describes each for Select Model…", () => {
    const listed = listCachedModels(cache);
    assert.deepEqual(listed.map((m) => m.reference), ["loupe-test/tiny-gpt2", "loupe-test/tiny-llama-sharded@v1"]);
    assert.ok(listed.every((m) => fs.existsSync(path.join(m.snapshot, "config.json"))));
    // A snapshot fetched by commit hash has no ref: it is listed by its commit.
    const orphan = cacheRepo(cache, "loupe-test/by-commit", folderFiles(TINY_GPT2), { revision: "tmp" });
    fs.rmSync(path.join(cache, "models--loupe-test--by-commit", "refs"), { recursive: true });
    assert.ok(listCachedModels(cache).some((m) => m.reference === `loupe-test/by-commit@${orphan.commit}`));
    assert.match(describeModelFolder(listed[1].snapshot), /^llama model, 2 layers, d_model 48, vocabulary 363, \d+k parameters, 0\.3 MB$/);
  });

  it("prefers an existing folder to a repo id, and says how to download a repo that is not cached", async () => {
    await withEnv({ HF_HUB_CACHE: cache }, () => {
      const cwd = process.cwd();
      const dir = scratchDir("cwd");
      writeFolder(path.join(dir, "loupe-test", "tiny-gpt2"), folderFiles(TINY_GPT2));
      process.chdir(dir);
      try {
        assert.equal(resolveModelFolder("loupe-test/tiny-gpt2"), path.join(fs.realpathSync(dir), "loupe-test", "tiny-gpt2"));
      } finally {
        process.chdir(cwd);
      }
      assert.throws(
        () => openModelFolder(resolveModelFolder("someone/not-here")),
        (e: unknown) => e instanceof LoupeError && e.code === "missing-file" && /loupe pull someone\/not-here/.test(e.message) && e.message.includes(cache),
      );
      assert.throws(() => resolveModelFolder("loupe-test/tiny-gpt2@nope"), /cached at revision "nope"/);
    });
  });
});

describe("hub cache: repositories off the common path", function () {
  this.timeout(60_000);
  let cache: string;
  before(() => {
    cache = scratchDir("hub-odd");
  });
  after(() => fs.rmSync(cache, { recursive: true, force: true }));

  it("an id without an organisation (gpt2) lives in models--gpt2: listed, named and loaded by it", async () => {
    const { snapshot } = cacheRepo(cache, "gpt2", folderFiles(TINY_GPT2));
    assert.equal(modelName(snapshot), "gpt2");
    assert.deepEqual(listCachedModels(cache).map((m) => m.reference), ["gpt2"]);
    assert.deepEqual(await withEnv({ HF_HUB_CACHE: cache }, () => logitsOf("gpt2")), await logitsOf(TINY_GPT2));
  });

  it("a file huggingface_hub recorded in .no_exist/ is absent for good: the message says so instead of suggesting a download", () => {
    const noExist = (repoId: string, commit: string, file: string) => {
      const marker = path.join(cache, `models--${repoId.replace("/", "--")}`, ".no_exist", commit, file);
      fs.mkdirSync(path.dirname(marker), { recursive: true });
      fs.writeFileSync(marker, "");
    };
    const { "model.safetensors": _weights, ...binOnly } = folderFiles(TINY_GPT2);
    const bin = cacheRepo(cache, "loupe-test/bin-only", { ...binOnly, "pytorch_model.bin": Buffer.alloc(64) });
    const plain = /No model\.safetensors \(or model\.safetensors\.index\.json with its shards\)/;
    assert.throws(() => openModelFolder(bin.snapshot), plain, "without the record, the folder may just be incomplete");
    noExist("loupe-test/bin-only", bin.commit, "model.safetensors");
    noExist("loupe-test/bin-only", bin.commit, "model.safetensors.index.json");
    assert.throws(() => openModelFolder(bin.snapshot), (e: unknown) => e instanceof LoupeError && /has no model\.safetensors or model\.safetensors\.index\.json \(the Hugging Face cache records both as missing\)/.test(e.message));

    const { "tokenizer.json": _tokenizer, ...slow } = folderFiles(TINY_GPT2);
    const slowOnly = cacheRepo(cache, "loupe-test/slow-tokenizer", slow);
    noExist("loupe-test/slow-tokenizer", slowOnly.commit, "tokenizer.json");
    assert.throws(() => openModelFolder(slowOnly.snapshot), /has no tokenizer\.json \(the Hugging Face cache records it as missing\): it ships only a slow tokenizer/);
    // The records are not snapshots: nothing new is listed.
    assert.deepEqual(listCachedModels(cache).map((m) => m.reference), ["gpt2", "loupe-test/bin-only", "loupe-test/slow-tokenizer"]);
  });
});
