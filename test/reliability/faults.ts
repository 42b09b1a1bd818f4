/**
 * Fault scenarios, shared by test/unit/reliability/faults.test.ts and bench/reliability: each injects faults
 * into a real worker process (or the loader) and asserts the outcome a user must see: a clear
 * LoupeError for the request that was hit, a working next request, no process left behind.
 * Each returns how many faults it injected.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LoupeError } from "../../src/core/errors";
import { checkModelFits, estimateModelMemory } from "../../src/core/model/memory-limit";
import { WorkerClient } from "../../src/worker/client";
import type { TestMethods } from "../fixtures/worker-test-entry";
import { copyTinyModel, FIXTURES, scratchDir, TINY_GPT2 } from "../helpers/fixtures";
import { isAlive } from "../helpers/process";

const ENTRY = path.join(FIXTURES, "worker-test-entry.ts");
export const REFERENCE = path.join(__dirname, "..", "..", "models", "reference");

export function startWorker(options: { cancelGraceMs?: number } = {}): WorkerClient<TestMethods> {
  return new WorkerClient<TestMethods>(ENTRY, { execArgv: ["--import", "tsx"], onOutput: () => undefined, ...options });
}

export async function gone(pid: number, limitMs = 20_000): Promise<boolean> {
  for (let waited = 0; waited < limitMs; waited += 50) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return false;
}

/** Pids whose parent is this process (Linux /proc): what a leak would leave behind. */
export function childPids(): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // Field 4 (ppid) follows the command in parentheses, which may itself hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

export function loupeError(code: string, pattern?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof LoupeError, `expected a LoupeError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

const load = (folder: string) => ({ folder, cacheDir: null, threads: 1 });

/**
 * The worker is killed from outside (the OOM killer, a user's kill) while it runs a real request
 * (generation on the reference model): that request fails as "worker-crashed", naming the method,
 * and the next request runs on a fresh worker with the model reloaded, with the same answer as before.
 */
export async function killWorkerMidRun(rounds = 1): Promise<number> {
  const worker = startWorker();
  try {
    await worker.request("load", load(REFERENCE));
    const before = await worker.request("inspect", { text: "Mia and Leo went to the park." });
    for (let r = 0; r < rounds; r++) {
      const pid = worker.pid;
      assert.ok(pid !== undefined);
      let killed = false;
      const running = worker.request("generate", { prompt: "Once upon a time", maxNewTokens: 200, stopAtEos: false }, {
        // The first progress message proves the handler is mid-run.
        onProgress: () => {
          if (!killed) process.kill(pid, "SIGKILL");
          killed = true;
        },
      });
      await assert.rejects(running, loupeError("worker-crashed", /signal SIGKILL\) while running "generate".*reloads the model/s));
      assert.ok(await gone(pid), "the killed worker is reaped");
      const after = await worker.request("inspect", { text: "Mia and Leo went to the park." });
      assert.deepEqual(after.tokens, before.tokens, "the fresh worker answers as the old one did");
      assert.notEqual(worker.pid, pid);
    }
  } finally {
    await worker.dispose();
  }
  return rounds;
}

/**
 * The model's files change under a loaded model. Deleted: the loaded model keeps working (the
 * open file lives on). Truncated: onnxruntime reads the weights through a memory map, so the
 * next run faults (SIGBUS) in the worker; the editor gets "worker-crashed", the reload names the
 * broken file, and loading a good model afterwards works.
 */
export async function changeModelFilesWhileLoaded(): Promise<number> {
  const worker = startWorker();
  try {
    const deleted = copyTinyModel();
    await worker.request("load", load(deleted));
    const before = await worker.request("inspect", { text: "Mia gave a ball" });
    fs.rmSync(deleted, { recursive: true });
    const after = await worker.request("inspect", { text: "Mia gave a ball" });
    assert.deepEqual(after.tokens, before.tokens, "a deleted model folder does not change the loaded model");

    const truncated = copyTinyModel();
    await worker.request("load", load(truncated));
    const weights = path.join(truncated, "model.safetensors");
    fs.truncateSync(weights, 100);
    const hit = await worker.request("inspect", { text: "Mia gave a ball" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Whether onnxruntime touches an unmapped page depends on its version: a crash must be a clean one.
    if (hit !== undefined) loupeError("worker-crashed", /while running "inspect"/)(hit);
    await assert.rejects(worker.request("inspect", { text: "Mia" }), (e: unknown) => e instanceof LoupeError && e.code === "bad-file" && e.message.includes(weights));
    await worker.request("load", load(TINY_GPT2));
    assert.equal((await worker.request("whichModel", {})).folder, TINY_GPT2);
    assert.ok((await worker.request("inspect", { text: "Mia" })).tokens.length > 0);
    fs.rmSync(truncated, { recursive: true, force: true });
  } finally {
    await worker.dispose();
  }
  return 2;
}

/**
 * A long real job (generation on the reference model) cancelled through its AbortSignal stops
 * within the grace period on the same worker (it honoured the signal, it was not killed), the
 * worker serves the next request, and after dispose no child process is left.
 */
export async function cancelLongJob(rounds = 1): Promise<number> {
  const childrenBefore = new Set(childPids());
  const worker = startWorker({ cancelGraceMs: 5000 });
  let pid: number | undefined;
  try {
    await worker.request("load", load(REFERENCE));
    pid = worker.pid;
    for (let r = 0; r < rounds; r++) {
      const controller = new AbortController();
      let steps = 0;
      const started = Date.now();
      const job = worker.request("generate", { prompt: "Once upon a time", maxNewTokens: 240, stopAtEos: false }, {
        signal: controller.signal,
        onProgress: () => {
          if (++steps === 3) controller.abort();
        },
      });
      await assert.rejects(job, loupeError("cancelled"));
      assert.ok(Date.now() - started < 30_000);
      assert.equal(worker.pid, pid, "the job stopped at its signal; the worker was not killed");
      assert.ok((await worker.request("inspect", { text: "Mia" })).tokens.length > 0, "the worker serves the next request");
    }
  } finally {
    await worker.dispose();
  }
  assert.ok(pid !== undefined && (await gone(pid)), "the worker is gone after dispose");
  const leaked = childPids().filter((p) => !childrenBefore.has(p));
  assert.deepEqual(leaked, [], "no child process outlives the client");
  return rounds;
}

/** Write a model folder whose model.safetensors claims `bytes` of float32 weights, as a sparse file (no disk used). */
export function hugeSparseModel(bytes: number): string {
  const dir = scratchDir("huge");
  for (const f of ["config.json", "tokenizer.json"]) fs.copyFileSync(path.join(TINY_GPT2, f), path.join(dir, f));
  const d = 1024;
  const rows = Math.ceil(bytes / 4 / d);
  const header = Buffer.from(JSON.stringify({ "wte.weight": { dtype: "F32", shape: [rows, d], data_offsets: [0, rows * d * 4] } }));
  const file = path.join(dir, "model.safetensors");
  const fd = fs.openSync(file, "w");
  try {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    fs.writeSync(fd, length, 0, 8, 0);
    fs.writeSync(fd, header, 0, header.length, 8);
    fs.ftruncateSync(fd, 8 + header.length + rows * d * 4);
  } finally {
    fs.closeSync(fd);
  }
  return dir;
}

/**
 * A model too large for the configured limit is refused before loading: at once, with
 * "model-too-large" naming the file and both sizes, the worker and its current model untouched.
 * The same limit lets a model that fits load.
 */
export async function refuseModelOverLimit(): Promise<number> {
  const huge = hugeSparseModel(6 * 1024 ** 3);
  const worker = startWorker();
  try {
    assert.ok(estimateModelMemory(huge).estimatedBytes >= 6 * 1024 ** 3);
    await worker.request("load", load(TINY_GPT2));
    const pid = worker.pid;
    const started = Date.now();
    await assert.rejects(worker.request("load", { ...load(huge), maxModelBytes: 1024 ** 3 }), loupeError("model-too-large", /model\.safetensors needs about 6144 MB .*more than the 1024 MB limit/));
    assert.ok(Date.now() - started < 5000, "refused from the header alone, not after reading 6 GB");
    assert.equal(worker.pid, pid, "the worker did not crash");
    assert.equal((await worker.request("whichModel", {})).folder, TINY_GPT2, "the loaded model is still the previous one");

    const tinyBytes = estimateModelMemory(TINY_GPT2).estimatedBytes;
    const small = copyTinyModel();
    await assert.rejects(worker.request("load", { ...load(small), maxModelBytes: tinyBytes - 1 }), loupeError("model-too-large"));
    await worker.request("load", { ...load(small), maxModelBytes: tinyBytes });
    assert.equal((await worker.request("whichModel", {})).folder, small, "a model within the limit loads");
    assert.throws(() => checkModelFits(small, 0), loupeError("bad-argument"));
    fs.rmSync(small, { recursive: true, force: true });
  } finally {
    await worker.dispose();
    fs.rmSync(huge, { recursive: true, force: true });
  }
  return 2;
}
