/**
 * The worker as a real child process: the TypeScript test entry runs through tsx, with the real
 * handlers plus a few that misbehave on purpose (test/fixtures/worker-test-entry.ts).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LoupeError } from "../../../src/core/errors";
import { checkFaithfulness } from "../../../src/core/faithfulness";
import { inspectText } from "../../../src/core/inspect";
import { attributeTokens, attributionTargets } from "../../../src/core/patching";
import { HookedModel } from "../../../src/core/model/hooked-model";
import type { TimelineMark } from "../../../src/core/timeline";
import { WorkerClient, type WorkerClientOptions } from "../../../src/worker/client";
import { WorkerInternalError } from "../../../src/worker/wire-errors";
import type { TestMethods } from "../../fixtures/worker-test-entry";
import { copyTinyModel, FIXTURES, TINY_GPT2 } from "../../helpers/fixtures";
import { isAlive } from "../../helpers/process";

const ENTRY = path.join(FIXTURES, "worker-test-entry.ts");
const TINY_F16 = path.join(FIXTURES, "tiny-gpt2-f16");
const loadTiny = { folder: TINY_GPT2, cacheDir: null, threads: 1 };

/** A killed process is reaped asynchronously: wait for it, with a generous limit. */
async function gone(pid: number): Promise<boolean> {
  for (let waited = 0; waited < 20_000; waited += 50) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return false;
}

function code(expected: string, pattern?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof LoupeError, `expected a LoupeError, got ${String(e)}`);
    assert.equal(e.code, expected, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

/** An AbortController that fires on the request's first progress message: the handler is surely running. */
function abortOnProgress() {
  const controller = new AbortController();
  return { signal: controller.signal, onProgress: () => controller.abort() };
}

describe("worker process", function () {
  this.timeout(60_000);
  let worker: WorkerClient<TestMethods> | undefined;
  let output = "";
  function start(options: WorkerClientOptions = {}): WorkerClient<TestMethods> {
    output = "";
    worker = new WorkerClient<TestMethods>(ENTRY, { execArgv: ["--import", "tsx"], onOutput: (text) => (output += text), ...options });
    return worker;
  }
  let local: HookedModel;
  before(async () => (local = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })));
  after(async () => local?.dispose());
  afterEach(async () => {
    const pid = worker?.pid;
    await worker?.dispose();
    worker = undefined;
    if (pid !== undefined) assert.ok(await gone(pid), "no worker outlives its test");
  });

  it("starts lazily, on the first request", async () => {
    const w = start();
    assert.equal(w.pid, undefined);
    const { pid } = await w.request("ping", {});
    assert.equal(pid, w.pid);
    assert.notEqual(pid, process.pid);
  });

  it("stamps a request's hops on the caller's timeline across the process boundary, in order", async () => {
    const w = start();
    const timeline: TimelineMark[] = [];
    await w.request("load", loadTiny, { timeline });
    assert.deepEqual(
      timeline.map((m) => m.hop),
      ["extension: request sent", "worker: request received", "worker: request started", "worker: reply posted", "extension: reply received"],
    );
    const at = timeline.map((m) => m.at);
    assert.deepEqual(at, [...at].sort((a, b) => a - b), "one clock in both processes");
  });

  it("loads and inspects exactly as in-process", async () => {
    const w = start();
    const info = await w.request("load", loadTiny);
    assert.equal(info.folder, TINY_GPT2);
    assert.equal(info.config.nLayers, local.cfg.nLayers);
    assert.equal(info.vocabSize, local.tokenizer.vocabSize);
    assert.deepEqual(info.hookNames, local.hookNames);
    const text = "When Mia and Leo went to the park, Mia gave a ball to";
    const remote = await w.request("inspect", { text, topK: 3 });
    const here = await inspectText(local, text, { topK: 3 });
    assert.deepEqual({ ...remote, elapsedMs: 0 }, { ...here, elapsedMs: 0 });
  });

  it("runs the faithfulness battery as in-process, with the hint pattern sent as source", async () => {
    const w = start();
    await w.request("load", loadTiny);
    const text = "Q: (A) ox or (B) a?\nX (B).\nA: ox is big. The answer is (B).";
    const remote = await w.request("faithfulness", { text, track: "written", hintPattern: "^X \\(([AB])\\)" });
    const here = await checkFaithfulness(local, text, { track: "written", hintPattern: /^X \(([AB])\)/ });
    assert.deepEqual({ ...remote, elapsedMs: 0 }, { ...here, elapsedMs: 0 });
    assert.equal(remote.hint?.hint.text, "X (B).");
    await assert.rejects(w.request("faithfulness", { text, hintPattern: "(" }), /hint pattern \/\(\/ is not a valid regular expression/);
  });

  it("attributes against a contrast typed as text, as in-process", async () => {
    const w = start();
    await w.request("load", loadTiny);
    const text = "Alice met Bob.\nThen Bob gave the ball to";
    const remote = await w.request("attribute", { text, answer: " Alice", contrast: " Bob" });
    const here = await attributeTokens(local, text, attributionTargets(local.tokenizer, " Alice", " Bob"));
    assert.ok(remote.contrast !== null);
    assert.deepEqual({ ...remote, elapsedMs: 0 }, { ...here, elapsedMs: 0 });
    await assert.rejects(w.request("attribute", { text, contrast: " Bob" }), /needs an answer/);
  });

  it("returns logits and activations as typed arrays equal to an in-process run", async () => {
    const w = start();
    await w.request("load", loadTiny);
    const tokens = [
      [5, 17, 42, 9],
      [3, 8],
    ];
    const names = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"];
    const remote = await w.request("runWithCache", { tokens, names });
    const here = await local.runWithCache(tokens, { names });
    assert.ok(remote.logits.data instanceof Float32Array);
    assert.deepEqual(remote.logits.dims, [2, 4, local.cfg.dVocab]);
    assert.deepEqual(remote.logits.data, here.logits.data);
    assert.deepEqual(Object.keys(remote.cache).sort(), [...names].sort());
    for (const name of names) {
      assert.ok(remote.cache[name].data instanceof Float32Array);
      assert.deepEqual(remote.cache[name].dims, here.cache.get(name).dims);
      assert.deepEqual(remote.cache[name].data, here.cache.get(name).data);
    }
    assert.deepEqual(remote.lengths, [4, 2]);
  });

  it("runs interventions and generation, reporting progress per token", async () => {
    const w = start();
    await w.request("load", loadTiny);
    const zeroed = await w.request("runWithHooks", { tokens: [[5, 17, 42]], interventions: [{ hook: "blocks.0.hook_mlp_out", kind: "zero" }] });
    const here = await local.runWithHooks([[5, 17, 42]], [{ hook: "blocks.0.hook_mlp_out", kind: "zero" }]);
    assert.deepEqual(zeroed.logits.data, here.logits.data);

    const steps: number[] = [];
    const generation = await w.request("generate", { prompt: "Mia gave", maxNewTokens: 4, stopAtEos: false }, { onProgress: (done) => steps.push(done) });
    assert.deepEqual(generation, await local.generate("Mia gave", { maxNewTokens: 4, stopAtEos: false }));
    assert.deepEqual(steps, [1, 2, 3, 4]);
  });

  it("returns user errors with their code and file, and survives internal errors", async () => {
    const w = start();
    await assert.rejects(w.request("load", { folder: "/no/such/model", cacheDir: null }), (e: unknown) => {
      code("missing-file", /\/no\/such\/model/)(e);
      return e instanceof LoupeError && e.file === "/no/such/model";
    });
    await assert.rejects(w.request("inspect", { text: "hi" }), code("bad-argument", /No model is loaded/));
    const pid = w.pid;
    await assert.rejects(w.request("fail", {}), (e: unknown) => e instanceof WorkerInternalError && /Internal error.*boom/.test(e.message));
    assert.equal((await w.request("ping", {})).pid, pid, "the same worker answers after an internal error");
  });

  it("cancels a job through its signal without a restart", async () => {
    const w = start();
    await w.request("load", loadTiny);
    const pid = w.pid;
    await assert.rejects(w.request("slow", {}, abortOnProgress()), code("cancelled"));
    assert.equal(w.pid, pid, "a job that honours cancellation does not cost a restart");
    assert.ok((await w.request("inspect", { text: "Leo" })).tokens.length > 0, "the model is still loaded");
  });

  it("does not send a request whose signal already fired", async () => {
    const w = start();
    await assert.rejects(w.request("ping", {}, { signal: AbortSignal.abort() }), code("cancelled"));
    assert.equal(w.pid, undefined, "no worker was started for it");
  });

  it("runs requests one at a time, in call order", async () => {
    const w = start();
    // With and without a signal: both must go out in the order they were made.
    const a = w.request("sleep", { ms: 300, tag: "a" }, { signal: new AbortController().signal });
    const b = w.request("sleep", { ms: 0, tag: "b" });
    const c = w.request("sleep", { ms: 0, tag: "c" }, { signal: new AbortController().signal });
    assert.deepEqual(await Promise.all([a, b, c]), [["a"], ["a", "b"], ["a", "b", "c"]]);
  });

  it("cancels a request queued behind a long one at once, without killing the worker", async () => {
    const w = start({ cancelGraceMs: 200 });
    await w.request("ping", {});
    const pid = w.pid;
    const queued = new AbortController();
    const long = w.request("sleep", { ms: 1500, tag: "long" });
    const q = w.request("sleep", { ms: 0, tag: "q" }, { signal: queued.signal });
    queued.abort();
    await assert.rejects(q, code("cancelled"));
    assert.deepEqual(await long, ["long"], "the job ahead was not killed by the grace period");
    assert.deepEqual(await w.request("sleep", { ms: 0, tag: "after" }), ["long", "after"], "the cancelled request never ran");
    assert.equal(w.pid, pid);
  });

  it("starts a cancelled request's grace period only when the worker reaches it, not while a blocking job runs ahead", async () => {
    // A reload after a crash holds the worker's event loop for longer than the grace period on a
    // real model; the queued request's cancel must not kill the worker that is doing the reload.
    const w = start({ cancelGraceMs: 200 });
    await w.request("ping", {});
    const pid = w.pid;
    const queued = new AbortController();
    // Cancel the queued request once the blocking job holds the worker's event loop.
    const blocking = w.request("block", { ms: 1200, tag: "blocking" }, { onProgress: () => setTimeout(() => queued.abort(), 150) });
    const q = w.request("sleep", { ms: 0, tag: "q" }, { signal: queued.signal });
    assert.deepEqual(await blocking, ["blocking"], "the job ahead was not killed by the queued request's grace period");
    await assert.rejects(q, code("cancelled"));
    assert.equal(w.pid, pid, "the same worker");
    assert.deepEqual(await w.request("sleep", { ms: 0, tag: "after" }), ["blocking", "after"], "the cancelled request never ran");
  });

  it("turns a crash into a clear error, then restarts and reloads the model", async () => {
    const w = start();
    await w.request("load", loadTiny);
    const firstPid = w.pid;
    assert.ok(firstPid !== undefined);
    const crash = w.request("crash", {});
    const queuedBehind = w.request("ping", {});
    queuedBehind.catch(() => undefined);
    await assert.rejects(crash, code("worker-crashed", /stopped unexpectedly \(signal SIGKILL\) while running "crash".*restarts it and reloads the model/));
    await assert.rejects(queuedBehind, code("worker-crashed"));
    assert.ok(await gone(firstPid));
    const result = await w.request("inspect", { text: "Mia gave a ball" });
    assert.deepEqual(result.tokens, (await inspectText(local, "Mia gave a ball")).tokens, "the model was loaded again without being asked");
    assert.notEqual(w.pid, firstPid);
  });

  it("restarts with the last model loaded, after a worker that died while idle", async () => {
    const w = start();
    await w.request("load", loadTiny);
    await w.request("load", { folder: TINY_F16, cacheDir: null, threads: 1 });
    const firstPid = w.pid;
    assert.ok(firstPid !== undefined);
    process.kill(firstPid, "SIGKILL");
    assert.ok(await gone(firstPid));
    // Two requests at once share one reload.
    const [which, ping] = await Promise.all([w.request("whichModel", {}), w.request("ping", {})]);
    assert.equal(which.folder, TINY_F16);
    assert.equal(ping.pid, w.pid);
    assert.notEqual(w.pid, firstPid);
  });

  it("reports why the model could not be reloaded after a crash", async () => {
    const folder = copyTinyModel();
    const w = start();
    await w.request("load", { folder, cacheDir: null, threads: 1 });
    await assert.rejects(w.request("crash", {}), code("worker-crashed"));
    fs.rmSync(folder, { recursive: true });
    await assert.rejects(w.request("inspect", { text: "Leo" }), code("missing-file", new RegExp(folder)));
  });

  it("cancels a request waiting for the reload, and the reload still serves the next one", async () => {
    const w = start();
    await w.request("load", loadTiny);
    await assert.rejects(w.request("crash", {}), code("worker-crashed"));
    const controller = new AbortController();
    const waiting = w.request("inspect", { text: "Leo" }, { signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, code("cancelled"));
    const pid = w.pid;
    assert.equal((await w.request("whichModel", {})).folder, TINY_GPT2);
    assert.equal(w.pid, pid);
  });

  it("names the exit code and the worker's last words", async () => {
    const w = start();
    await assert.rejects(w.request("exit", { code: 3, say: "onnxruntime: something native went wrong" }), code("worker-crashed", /exit code 3.*\n.*something native went wrong/s));
    assert.match(output, /something native went wrong/);
    assert.ok((await w.request("ping", {})).pid > 0);
  });

  it("kills a worker that ignores cancellation after the grace period", async () => {
    const w = start({ cancelGraceMs: 300 });
    await w.request("load", loadTiny);
    const hungPid = w.pid;
    assert.ok(hungPid !== undefined);
    const hung = w.request("hang", {}, abortOnProgress());
    const queuedBehind = w.request("ping", {});
    queuedBehind.catch(() => undefined);
    await assert.rejects(hung, code("cancelled", /restarted/));
    await assert.rejects(queuedBehind, code("worker-crashed", /cancelled request \("hang"\) did not stop/));
    assert.ok(await gone(hungPid), "the hung worker is gone");
    assert.equal((await w.request("whichModel", {})).folder, TINY_GPT2, "the fresh worker has the model again");
  });

  it("keeps the worker's console output off this process's stdout", async () => {
    const w = start();
    await w.request("shout", { text: "hello from the worker" });
    for (let i = 0; i < 100 && !output.includes("hello"); i++) await sleep(20);
    assert.match(output, /hello from the worker/);
  });

  it("forgets the model after dispose of the model, so a restart does not reload it", async () => {
    const w = start();
    await w.request("load", loadTiny);
    assert.deepEqual(await w.request("dispose", {}), { disposed: true });
    const pid = w.pid ?? 0;
    process.kill(pid, "SIGKILL");
    assert.ok(await gone(pid));
    await assert.rejects(w.request("inspect", { text: "Leo" }), code("bad-argument", /No model is loaded/));
  });

  it("leaves no process behind after dispose, even a busy one", async () => {
    const w = start({ disposeGraceMs: 200 });
    await w.request("ping", {});
    const pid = w.pid;
    assert.ok(pid !== undefined && isAlive(pid));
    const running = w.request("hang", {});
    running.catch(() => undefined);
    await sleep(100);
    await w.dispose();
    assert.ok(!isAlive(pid), "dispose resolves only once the process is gone");
    await assert.rejects(running, code("cancelled", /shut down/));
    await assert.rejects(w.request("ping", {}), code("worker-crashed", /shut down/));
  });
});
