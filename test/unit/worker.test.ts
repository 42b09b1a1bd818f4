import { strict as assert } from "node:assert";
import * as path from "node:path";
import { LoupeError } from "../../src/core/errors";
import { inspectText } from "../../src/core/inspect";
import { HookedModel } from "../../src/core/model/hooked-model";
import { maxAbsDiff } from "../../src/core/tensor/tensor";
import { WorkerClient } from "../../src/worker/client";
import type { Method } from "../../src/worker/protocol";
import { TINY_GPT2 } from "../helpers/fixtures";

const ENTRY = path.join(__dirname, "..", "fixtures", "worker-test-entry.ts");

function client(cancelGraceMs = 2000): WorkerClient {
  return new WorkerClient(ENTRY, { execArgv: ["--import", "tsx"], cancelGraceMs });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function rejectsWithCode(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => e instanceof LoupeError && e.code === code && (!pattern || pattern.test(e.message)));
}

const loadTiny = { folder: TINY_GPT2, cacheDir: null, threads: 1 };

describe("worker process", function () {
  this.timeout(60_000);
  let worker: WorkerClient;
  afterEach(async () => worker?.dispose());

  it("inspects text in the worker exactly as in-process", async () => {
    worker = client();
    const info = await worker.request("load", loadTiny);
    assert.equal(info.config.nLayers, 2);
    assert.ok(info.hookNames.includes("blocks.1.hook_resid_post"));
    const text = "When Mia and Leo went to the park";
    const remote = await worker.request("inspect", { text, topK: 3 });
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    const local = await inspectText(model, text, { topK: 3 });
    await model.dispose();
    assert.deepEqual(remote.tokens.map((t) => [t.id, t.start, t.end]), local.tokens.map((t) => [t.id, t.start, t.end]));
    assert.deepEqual(remote.tokens.map((t) => t.top.map((p) => p.id)), local.tokens.map((t) => t.top.map((p) => p.id)));
  });

  it("sends activations back as typed arrays", async () => {
    worker = client();
    await worker.request("load", loadTiny);
    const { logits, cache } = await worker.request("runWithCache", { tokens: [[1, 2, 3]], names: ["blocks.0.hook_resid_post"] });
    assert.ok(logits.data instanceof Float32Array);
    assert.deepEqual(logits.dims, [1, 3, 320]);
    assert.deepEqual(cache["blocks.0.hook_resid_post"].dims, [1, 3, 32]);
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    assert.equal(maxAbsDiff(logits.data, (await model.run([1, 2, 3])).data), 0);
    await model.dispose();
  });

  it("returns user errors with their code and file", async () => {
    worker = client();
    await rejectsWithCode(worker.request("load", { folder: "/no/such/model", cacheDir: null }), "missing-file", /\/no\/such\/model/);
    await rejectsWithCode(worker.request("inspect", { text: "hi" }), "bad-argument", /No model is loaded/);
    // An unexpected exception is reported, and the worker lives on.
    await rejectsWithCode(worker.request("fail" as Method, {} as never), "bad-argument", /Internal error.*boom/);
    assert.ok((await worker.request("ping", {})).pid > 0);
  });

  it("cancels a long job through its signal, and the next request works", async () => {
    worker = client();
    await worker.request("load", loadTiny);
    const controller = new AbortController();
    let progressed = false;
    const job = worker.request("slow" as Method, {} as never, { signal: controller.signal, onProgress: () => (progressed = true) });
    setTimeout(() => controller.abort(), 200);
    await rejectsWithCode(job, "cancelled");
    assert.ok(progressed, "progress messages arrive");
    const pid = worker.pid;
    const after = await worker.request("inspect", { text: "Leo" });
    assert.ok(after.tokens.length > 0);
    assert.equal(worker.pid, pid, "a job that honours cancellation does not cost a restart");
  });

  it("turns a crash into a clear error, then restarts and reloads the model", async () => {
    worker = client();
    await worker.request("load", loadTiny);
    const firstPid = worker.pid;
    await rejectsWithCode(worker.request("crash" as Method, {} as never), "worker-crashed", /stopped unexpectedly \(signal SIGKILL\).*restarts/);
    const result = await worker.request("inspect", { text: "Mia gave a ball" });
    assert.ok(result.tokens.length > 0, "the model was loaded again without being asked");
    assert.notEqual(worker.pid, firstPid);
    assert.ok(firstPid !== undefined && !isAlive(firstPid));
  });

  it("kills a worker that ignores cancellation after the grace period", async () => {
    worker = client(300);
    await worker.request("load", loadTiny);
    const hungPid = worker.pid;
    const controller = new AbortController();
    const job = worker.request("hang" as Method, {} as never, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await rejectsWithCode(job, "cancelled", /restarted/);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(hungPid !== undefined && !isAlive(hungPid), "the hung worker is gone");
    assert.ok((await worker.request("inspect", { text: "ok" })).tokens.length > 0);
  });

  it("leaves no process behind after dispose", async () => {
    worker = client();
    await worker.request("ping", {});
    const pid = worker.pid;
    assert.ok(pid !== undefined && isAlive(pid));
    await worker.dispose();
    assert.ok(!isAlive(pid));
    await rejectsWithCode(worker.request("ping", {}), "worker-crashed", /shut down/);
  });
});
