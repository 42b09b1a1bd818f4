import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { LoupeError } from "../../../src/core/errors";
import { pullModel, type PullProgress } from "../../../src/core/hub/download";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { chooseModelFiles } from "../../../src/core/hub/model-files";
import { FIXTURES, scratchDir, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";
import { folderFiles, shardedFolderFiles, withEnv } from "../../helpers/hub-cache";
import { startFakeHub, type FakeHub } from "../../helpers/hub-server";

const TINY_GPT2_ONNX = path.join(FIXTURES, "tiny-gpt2-onnx");
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const SHARDED = shardedFolderFiles(TINY_LLAMA, 2);
const REPO_FILES: Record<string, Buffer> = { ...SHARDED, "README.md": Buffer.from("# tiny"), "pytorch_model.bin": Buffer.alloc(64), "generation_config.json": Buffer.from(JSON.stringify({ eos_token_id: 2 })) };
const SHARD_1 = "model-00001-of-00002.safetensors";
const NEEDED = Object.keys(REPO_FILES).filter((f) => f !== "README.md" && f !== "pytorch_model.bin").sort();

// An ONNX export as the hub's onnx-community repos lay it out: onnx/ with quantised variants beside the model.
const ONNX_REPO: Record<string, Buffer> = {
  "config.json": fs.readFileSync(path.join(TINY_GPT2_ONNX, "config.json")),
  "tokenizer.json": fs.readFileSync(path.join(TINY_GPT2_ONNX, "tokenizer.json")),
  "onnx/model.onnx": fs.readFileSync(path.join(TINY_GPT2_ONNX, "model.onnx")),
  "onnx/model_quantized.onnx": Buffer.alloc(64),
  "README.md": Buffer.from("# onnx"),
};

async function sameLogits(reference: string, folder: string, cache: string): Promise<void> {
  const [fromHub, fromFolder] = await withEnv({ HF_HUB_CACHE: cache }, () =>
    Promise.all([HookedModel.load(reference, { cacheDir: null, threads: 1 }), HookedModel.load(folder, { cacheDir: null, threads: 1 })]),
  );
  try {
    const tokens = fromFolder.toTokens("the cat sat");
    assert.deepEqual((await fromHub.run(tokens)).data, (await fromFolder.run(tokens)).data);
  } finally {
    await Promise.all([fromHub.dispose(), fromFolder.dispose()]);
  }
}

function rejectsWith(code: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof LoupeError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

describe("loupe pull: downloads into the hub cache from a hub on 127.0.0.1", function () {
  this.timeout(60_000);
  let hub: FakeHub;
  let cache: string;
  const env = (extra: Record<string, string> = {}) => ({ HF_HUB_CACHE: cache, HF_ENDPOINT: hub.endpoint, HF_HOME: path.join(cache, "no-home"), ...extra });

  beforeEach(async () => {
    cache = scratchDir("pull");
    hub = await startFakeHub([
      { repoId: "loupe-test/tiny-llama", commit: COMMIT, files: REPO_FILES },
      { repoId: "loupe-test/gated", commit: COMMIT, files: folderFiles(TINY_GPT2), gatedToken: "hf_accepted" },
      { repoId: "tiny-gpt2", commit: COMMIT, files: folderFiles(TINY_GPT2) },
      { repoId: "loupe-test/onnx-only", commit: COMMIT, files: ONNX_REPO },
    ]);
  });
  afterEach(async () => {
    await hub.close();
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it("fetches only what Loupe needs, byte-identical, in huggingface_hub's layout, and the model then loads by repo id", async () => {
    const progress: PullProgress[] = [];
    const result = await pullModel("loupe-test/tiny-llama", { env: env(), onProgress: (p) => progress.push(p) });
    const repoDir = path.join(cache, "models--loupe-test--tiny-llama");
    assert.equal(result.commit, COMMIT);
    assert.equal(result.snapshot, path.join(repoDir, "snapshots", COMMIT));
    assert.equal(fs.readFileSync(path.join(repoDir, "refs", "main"), "utf8"), COMMIT);
    assert.deepEqual(fs.readdirSync(result.snapshot).sort(), NEEDED);
    for (const name of NEEDED) {
      const pointer = path.join(result.snapshot, name);
      assert.ok(fs.lstatSync(pointer).isSymbolicLink(), `${name} is a symlink`);
      assert.ok(!path.isAbsolute(fs.readlinkSync(pointer)), `${name} links relatively`);
      assert.ok(fs.realpathSync(pointer).startsWith(fs.realpathSync(path.join(repoDir, "blobs"))));
      assert.ok(fs.readFileSync(pointer).equals(REPO_FILES[name]), `${name} is byte-identical`);
    }
    // LFS blobs are named by their sha256, as the hub's X-Linked-Etag says.
    const shard = REPO_FILES[SHARD_1];
    assert.ok(fs.existsSync(path.join(repoDir, "blobs", createHash("sha256").update(shard).digest("hex"))));
    assert.deepEqual(fs.readdirSync(path.join(repoDir, "blobs")).filter((f) => f.endsWith(".incomplete")), []);
    // Progress in bytes, never backwards, ending at the total of every file fetched.
    const total = NEEDED.reduce((sum, f) => sum + REPO_FILES[f].length, 0);
    const last = progress[progress.length - 1];
    assert.deepEqual([last.bytes, last.totalBytes], [total, total]);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].bytes >= progress[i - 1].bytes);
    assert.ok(progress.filter((p) => p.file === SHARD_1).length > 2, "a shard reports progress while it arrives");

    const [fromHub, fromFolder] = await withEnv({ HF_HUB_CACHE: cache }, () =>
      Promise.all([HookedModel.load("loupe-test/tiny-llama", { cacheDir: null, threads: 1 }), HookedModel.load(TINY_LLAMA, { cacheDir: null, threads: 1 })]),
    );
    try {
      const tokens = fromFolder.toTokens("the cat sat");
      assert.deepEqual((await fromHub.run(tokens)).data, (await fromFolder.run(tokens)).data);
    } finally {
      await Promise.all([fromHub.dispose(), fromFolder.dispose()]);
    }

    // A second pull finds every blob in place and transfers nothing.
    const before = hub.requests.filter((r) => r.method === "GET" && !r.url.startsWith("/api/")).length;
    const again = await pullModel("loupe-test/tiny-llama", { env: env() });
    assert.ok(again.files.every((f) => f.how === "cached"));
    assert.equal(hub.requests.filter((r) => r.method === "GET" && !r.url.startsWith("/api/")).length, before);
  });

  it("loupe pull prints progress and where the model is; loupe inspect --model ORG/NAME then runs on it", async () => {
    const out: string[] = [];
    const progress: string[] = [];
    const io = { out: (t: string) => void out.push(t), readStdin: () => "the cat sat", progress: (t: string) => void progress.push(t) };
    await withEnv(env(), async () => {
      assert.equal(await main(["pull", "loupe-test/tiny-llama"], io), 0);
      assert.match(out.join(""), new RegExp(`loupe-test/tiny-llama at ${COMMIT}: ${NEEDED.length} files.*\\(${NEEDED.length} downloaded, 0 resumed, 0 already cached\\)`));
      assert.ok(progress.some((line) => /MB of [\d.]+ MB  model-00002-of-00002\.safetensors/.test(line)), progress.join("\n"));
      out.length = 0;
      assert.equal(await main(["inspect", "--model", "loupe-test/tiny-llama", "--json", "-"], io), 0);
      assert.ok((JSON.parse(out.join("")) as { tokens: unknown[] }).tokens.length > 0);
    });
  });

  it("pulls an ONNX-only repo (the decoder .onnx, not its variants) and an org-less id into models--NAME; both load by repo id", async () => {
    const onnx = await pullModel("loupe-test/onnx-only", { env: env() });
    assert.deepEqual(onnx.files.map((f) => f.path).sort(), ["config.json", "onnx/model.onnx", "tokenizer.json"]);
    await sameLogits("loupe-test/onnx-only", TINY_GPT2_ONNX, cache);
    const orgless = await pullModel("tiny-gpt2", { env: env() });
    assert.equal(orgless.snapshot, path.join(cache, "models--tiny-gpt2", "snapshots", COMMIT));
    await sameLogits("tiny-gpt2", TINY_GPT2, cache);
  });

  it("chooses an ONNX export's external data with it, and names what a repo without weights Loupe reads lacks", () => {
    const files = ["config.json", "tokenizer.json", "onnx/model.onnx", "onnx/model.onnx_data", "onnx/model_fp16.onnx", "onnx/model_fp16.onnx_data"];
    assert.deepEqual(chooseModelFiles("r", files).weights, ["onnx/model.onnx", "onnx/model.onnx_data"]);
    assert.deepEqual(chooseModelFiles("r", [...files, "model.safetensors"]).weights, ["model.safetensors"]);
    assert.throws(() => chooseModelFiles("org/bin", ["config.json", "tokenizer.json", "pytorch_model.bin"]), /org\/bin has no model\.safetensors, model\.safetensors\.index\.json or decoder \.onnx/);
  });

  it("resumes an interrupted transfer with a Range request and keeps nothing corrupt", async () => {
    hub.cutNextTransfer(SHARD_1, 40_000);
    await assert.rejects(pullModel("loupe-test/tiny-llama", { env: env() }), rejectsWith("download-failed", /pull again: a partial download resumes|stopped at/));
    const blobs = path.join(cache, "models--loupe-test--tiny-llama", "blobs");
    const partial = fs.readdirSync(blobs).find((f) => f.endsWith(".incomplete"));
    assert.ok(partial, "the partial shard is kept");
    const kept = fs.statSync(path.join(blobs, partial)).size;
    assert.ok(kept > 0 && kept <= 40_000);

    const result = await pullModel("loupe-test/tiny-llama", { env: env() });
    assert.equal(result.files.find((f) => f.path === SHARD_1)?.how, "resumed");
    assert.ok(hub.requests.some((r) => r.range === `bytes=${kept}-`), "the second pull asked for the rest only");
    assert.ok(fs.readFileSync(path.join(result.snapshot, SHARD_1)).equals(REPO_FILES[SHARD_1]));
  });

  it("stops when cancelled, keeping the partial file for the next pull", async () => {
    const controller = new AbortController();
    const pulling = pullModel("loupe-test/tiny-llama", { env: env(), signal: controller.signal, onProgress: (p) => p.file === SHARD_1 && controller.abort() });
    await assert.rejects(pulling, rejectsWith("cancelled", /cancelled/));
    assert.ok(!fs.existsSync(path.join(cache, "models--loupe-test--tiny-llama", "snapshots", COMMIT, SHARD_1)));
    const blobs = path.join(cache, "models--loupe-test--tiny-llama", "blobs");
    const partial = fs.readdirSync(blobs).find((f) => f.endsWith(".incomplete"));
    assert.ok(partial && fs.statSync(path.join(blobs, partial)).size < REPO_FILES[SHARD_1].length, "a partial shard is kept");
  });

  it("says the disk is full, and where, when a write fails with ENOSPC", async () => {
    // /dev/full answers every write with ENOSPC: the shard's partial file is made to point at it.
    const blobs = path.join(cache, "models--loupe-test--tiny-llama", "blobs");
    fs.mkdirSync(blobs, { recursive: true });
    fs.symlinkSync("/dev/full", path.join(blobs, `${createHash("sha256").update(REPO_FILES[SHARD_1]).digest("hex")}.incomplete`));
    await assert.rejects(pullModel("loupe-test/tiny-llama", { env: env() }), rejectsWith("download-failed", new RegExp(`disk holding the Hugging Face cache \\(${cache}\\) is full.*HF_HUB_CACHE`)));
  });

  it("makes no call at all when HF_HUB_OFFLINE is set", async () => {
    await assert.rejects(pullModel("loupe-test/tiny-llama", { env: env({ HF_HUB_OFFLINE: "1" }) }), rejectsWith("offline", /HF_HUB_OFFLINE/));
    assert.deepEqual(hub.requests, []);
  });

  it("says what to do for 401, 403 and 404, and reads the token from HF_TOKEN or HF_HOME/token", async () => {
    await assert.rejects(pullModel("loupe-test/gated", { env: env() }), rejectsWith("download-failed", /gated \(HTTP 401\).*accept its licence on http:\/\/127\.0\.0\.1:\d+\/loupe-test\/gated.*No token was sent/));
    await assert.rejects(pullModel("loupe-test/gated", { env: env({ HF_TOKEN: "hf_not_accepted" }) }), rejectsWith("download-failed", /gated \(HTTP 403\).*accept its licence.*not allowed/));
    await assert.rejects(pullModel("someone/missing", { env: env() }), rejectsWith("download-failed", /not found or is private \(HTTP 401\)/));
    await assert.rejects(pullModel("loupe-test/tiny-llama@nope", { env: env() }), rejectsWith("download-failed", /no revision "nope" \(HTTP 404\)/));
    assert.ok(hub.requests.some((r) => r.authorization === "Bearer hf_not_accepted"));

    const home = scratchDir("hf-home");
    fs.writeFileSync(path.join(home, "token"), "hf_accepted\n");
    const result = await pullModel("loupe-test/gated", { env: env({ HF_HOME: home }) });
    assert.ok(fs.readFileSync(path.join(result.snapshot, "model.safetensors")).equals(fs.readFileSync(path.join(TINY_GPT2, "model.safetensors"))));
  });
});
