/**
 * The request layer (src/core/requests): one declaration per request, answered the same way by the
 * worker process (the editor's backend) and in process (the CLI's), with the patching metric chosen
 * in one place.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { LoupeError } from "../../../src/core/errors";
import type { PatchingResult } from "../../../src/core/patching";
import { bindRequests, InProcessBackend, ModelSession, patchingInputs, REQUESTS, type Backend, type PatchParams } from "../../../src/core/requests";
import { WorkerClient } from "../../../src/worker/client";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const CLEAN = "When Mia and Leo went to the park, Leo gave a ball to";
const CORRUPT = "When Mia and Leo went to the park, Mia gave a ball to";
const loadTiny = { folder: TINY_GPT2, cacheDir: null, threads: 1 };

describe("request layer", function () {
  this.timeout(60_000);
  let local: InProcessBackend;
  before(async () => {
    local = new InProcessBackend();
    await local.request("load", loadTiny);
  });
  after(async () => local?.dispose());

  it("binds every catalogue request, and nothing else, for a server to dispatch on", () => {
    const bound = bindRequests(new ModelSession());
    assert.deepEqual(Object.keys(bound).sort(), Object.keys(REQUESTS).sort());
    for (const name of Object.keys(REQUESTS)) assert.equal(typeof bound[name as keyof typeof bound], "function", name);
  });

  it("says what a load did with the graph: built, read from the cache, or nothing because the model was already loaded", async () => {
    const cacheDir = scratchDir("load-graph");
    const first = new InProcessBackend();
    const second = new InProcessBackend();
    try {
      const params = { folder: TINY_GPT2, cacheDir, threads: 1 };
      assert.equal((await first.request("load", params)).graph, "built");
      assert.equal((await first.request("load", params)).graph, "already-loaded", "a reload of the loaded model builds nothing");
      assert.equal((await second.request("load", params)).graph, "cache");
      assert.equal((await second.request("load", { ...params, threads: 2 })).graph, "cache", "another thread count loads again, from the cache");
    } finally {
      await Promise.all([first.dispose(), second.dispose()]);
    }
  });

  it("chooses the patching metric from the answers given, or as asked", () => {
    const model = local.session.model;
    assert.equal(patchingInputs(model, { clean: CLEAN, corrupted: CORRUPT }).metric.kind, "kl");
    assert.equal(patchingInputs(model, { clean: CLEAN, corrupted: CORRUPT, answer: " Mia" }).metric.kind, "logprob");
    assert.equal(patchingInputs(model, { clean: CLEAN, corrupted: CORRUPT, answer: " Mia", wrong: " Leo" }).metric.kind, "logit-diff");
    assert.equal(patchingInputs(model, { clean: CLEAN, corrupted: CORRUPT, answer: " Mia", wrong: " Leo", metric: "logprob" }).metric.kind, "logprob");
    assert.throws(() => patchingInputs(model, { clean: CLEAN, corrupted: CORRUPT, metric: "logprob" }), /needs an answer/);
    assert.throws(() => patchingInputs(model, { clean: CLEAN, corrupted: CORRUPT, wrong: " Leo" }), /needs an answer and a wrong answer/);
  });

  it("with firstDistinct, appends the answers' shared tokens to both prompts, outside the clean text", () => {
    const model = local.session.model;
    const plain = patchingInputs(model, { clean: CLEAN, corrupted: CORRUPT });
    const split = patchingInputs(model, { clean: CLEAN, corrupted: CORRUPT, answer: " Kai", wrong: " Kim", firstDistinct: true });
    const added = split.clean.length - plain.clean.length;
    assert.ok(added > 0, "the shared ' K…' tokens are appended");
    assert.equal(split.corrupted.length - plain.corrupted.length, added);
    assert.equal(split.cleanOffsets.length, split.clean.length, "one range per clean token, for the panel's reveal");
    assert.deepEqual(split.cleanOffsets.slice(-added), Array.from({ length: added }, () => [CLEAN.length, CLEAN.length]));
    assert.notEqual(split.metric.kind === "logit-diff" && split.metric.answer, split.metric.kind === "logit-diff" && split.metric.wrong);
  });

  it("refuses an unknown request and a cancelled one before running anything", async () => {
    const unknown = local as unknown as { request(method: string, params: unknown): Promise<unknown> };
    await assert.rejects(unknown.request("noSuchRequest", {}), (e: unknown) => e instanceof LoupeError && /no request "noSuchRequest"/.test(e.message));
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(local.request("inspect", { text: "Mia" }, { signal: controller.signal }), (e: unknown) => e instanceof LoupeError && e.code === "cancelled");
  });

  it("trainProbes reads a workspace dataset as the editor does: no link, nothing outside the workspace", async () => {
    const workspace = scratchDir("probe-workspace");
    const outside = path.join(scratchDir("probe-outside"), "secret.jsonl");
    const lines = ["the cat is happy", "the dog is sad", "a happy day", "a sad day"].map((text, i) => JSON.stringify({ text, label: i % 2 ? "neg" : "pos" }));
    fs.writeFileSync(outside, lines.join("\n"));
    fs.symlinkSync(outside, path.join(workspace, "data.jsonl"));
    const params = { hooks: ["blocks.0.hook_resid_post"], folds: 2 };
    const refusal = (e: unknown) => e instanceof LoupeError && e.code === "unsafe-path" && /data\.jsonl: it is a symbolic link/.test(e.message);
    await assert.rejects(local.request("trainProbes", { dataFile: path.join(workspace, "data.jsonl"), root: workspace, ...params }), refusal);
    await assert.rejects(local.request("trainProbes", { dataFile: outside, root: workspace, ...params }), (e: unknown) => e instanceof LoupeError && /outside/.test(e.message));
    // The same file, plain and inside: trained (and, without a root, a file the user picked anywhere).
    fs.rmSync(path.join(workspace, "data.jsonl"));
    fs.copyFileSync(outside, path.join(workspace, "data.jsonl"));
    const trained = await local.request("trainProbes", { dataFile: path.join(workspace, "data.jsonl"), root: workspace, ...params });
    assert.deepEqual(trained.hooks.map((h) => h.hook), params.hooks);
    assert.equal((await local.request("trainProbes", { dataFile: outside, ...params })).best, params.hooks[0]);
  });

  it("forwards progress from the request to the caller", async () => {
    const seen: Array<[number, number]> = [];
    await local.request("generate", { prompt: "Mia", maxNewTokens: 3, stopAtEos: false }, { onProgress: (done, total) => seen.push([done, total]) });
    assert.deepEqual(seen, [
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
  });

  it("caps the tokens 'adding mistakes' writes with the faithfulness request's maxNewTokens, and refuses a cap that is not a positive integer", async () => {
    const text = "Q: 8 - 3?\nA: 8 - 3 = 5. 5 + 7 = 12. The answer is 12.";
    const free = await local.request("faithfulness", { text, track: "written" });
    const capped = await local.request("faithfulness", { text, track: "written", maxNewTokens: 1 });
    assert.ok(capped.steps.some((s) => s.mistake), "a step was corrupted");
    // Each corrupted step's rewrite takes one decoding pass per token it writes.
    assert.ok(capped.forwardPasses < free.forwardPasses, `${capped.forwardPasses} passes capped vs ${free.forwardPasses}`);
    for (const bad of [0, -2, 1.5]) {
      await assert.rejects(local.request("faithfulness", { text, maxNewTokens: bad }), (e: unknown) => e instanceof LoupeError && e.code === "bad-argument" && /maxNewTokens .* positive whole number/.test(e.message));
    }
  });

  it("answers patch requests with --metric and --first-distinct the same in the worker (the editor's backend) as on the command line", async () => {
    const dir = scratchDir("requests");
    fs.writeFileSync(path.join(dir, "clean.txt"), CLEAN);
    fs.writeFileSync(path.join(dir, "corrupt.txt"), CORRUPT);
    const cases: Array<{ flags: string[]; params: Omit<PatchParams, "clean" | "corrupted">; label: RegExp }> = [
      // A wrong answer given, yet the log-prob asked for: the editor's old copy could only infer logit-diff.
      { flags: ["--answer", " Mia", "--wrong", " Leo", "--metric", "logprob"], params: { answer: " Mia", wrong: " Leo", metric: "logprob" }, label: /log/ },
      { flags: ["--answer", " Kai", "--wrong", " Kim", "--first-distinct"], params: { answer: " Kai", wrong: " Kim", firstDistinct: true }, label: /logit/ },
    ];
    const worker: Backend = new WorkerClient(path.join(FIXTURES, "worker-test-entry.ts"), { execArgv: ["--import", "tsx"], onOutput: () => undefined });
    try {
      await worker.request("load", loadTiny);
      for (const { flags, params, label } of cases) {
        const chunks: string[] = [];
        const argv = ["patch", "--model", TINY_GPT2, "--clean", path.join(dir, "clean.txt"), "--corrupt", path.join(dir, "corrupt.txt"), ...flags, "--sweep", "resid_pre", "--json"];
        await main(argv, { out: (t) => void chunks.push(t), readStdin: () => "" });
        const cli = JSON.parse(chunks.join("")) as PatchingResult;
        const { result, cleanOffsets } = await worker.request("patch", { clean: CLEAN, corrupted: CORRUPT, ...params, sweeps: ["resid_pre"] });
        assert.match(result.metricLabel, label);
        assert.equal(result.metricLabel, cli.metricLabel);
        assert.deepEqual(result.tokens, cli.tokens);
        assert.equal(cleanOffsets.length, result.tokens.clean.length);
        const [mine, theirs] = [result.sweeps[0].normalised, cli.sweeps[0].normalised];
        assert.equal(mine.length, theirs.length);
        for (let i = 0; i < mine.length; i++) assert.ok(Object.is(mine[i], theirs[i]) || Math.abs(mine[i] - theirs[i]) < 1e-9, `${flags.join(" ")}, cell ${i}: ${mine[i]} vs ${theirs[i]}`);
      }
    } finally {
      await worker.dispose();
    }
  });
});
