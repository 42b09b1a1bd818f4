/**
 * `loupe pull` against a hub stand-in on 127.0.0.1 (test/helpers/hub-server.ts): a two-shard
 * checkpoint of random F32 weights (BENCH_PULL_MB in all, default 256) plus the tiny Llama's config
 * and tokenizer. Each row runs in its own child process, so its peak resident memory (VmHWM) is its
 * own; the server and its copy of the files live in this process.
 * - reference: fetch each file whole (arrayBuffer) and write it, as a naive downloader does;
 * - pull: pullModel into an empty cache (streamed to blobs/*.incomplete, sha256 checked, renamed);
 * - resume: the first shard's transfer cut halfway, then pull again (the time of the second pull);
 * - cached: pull when every blob is already there (HEAD requests only).
 *
 *   npx tsx bench/models/hub-pull.ts
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pullModel } from "../../src/core/hub/download";
import { folderFiles, shardSafetensors } from "../../test/helpers/hub-cache";
import { startFakeHub } from "../../test/helpers/hub-server";

const REPO = "bench/random-llama";
const COMMIT = "feedfacefeedfacefeedfacefeedfacefeedface";

function peakMb(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Child: one measured job; prints {ms, peakMb}. */
async function child(job: string, endpoint: string, cache: string): Promise<void> {
  const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: endpoint, HF_HOME: path.join(cache, "home") };
  const started = performance.now();
  if (job === "reference") {
    fs.mkdirSync(cache, { recursive: true });
    const files = ["config.json", "tokenizer.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    for (const f of files) {
      const response = await fetch(`${endpoint}/${REPO}/resolve/main/${f}`, { headers: { "Accept-Encoding": "identity" } });
      fs.writeFileSync(path.join(cache, f), Buffer.from(await response.arrayBuffer()));
    }
  } else {
    await pullModel(REPO, { env }).catch((e: Error) => {
      if (job !== "cut") throw e;
    });
  }
  process.stdout.write(JSON.stringify({ ms: performance.now() - started, peakMb: peakMb() }));
}

/** Asynchronous: the server answering the child lives in this process's event loop. */
async function runChild(job: string, endpoint: string, cache: string): Promise<{ ms: number; peakMb: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", __filename, "--child", job, endpoint, cache], { encoding: "utf8" });
  return JSON.parse(stdout) as { ms: number; peakMb: number };
}

async function main(): Promise<void> {
  const megabytes = Number(process.env.BENCH_PULL_MB ?? 256);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-pull-bench-"));
  try {
    // One random F32 tensor per shard half: written as a single file, then split as save_pretrained does.
    const half = Math.floor((megabytes * 1024 * 1024) / 8) * 4;
    const single = path.join(work, "model.safetensors");
    const header = JSON.stringify({ a: { dtype: "F32", shape: [half / 4], data_offsets: [0, half] }, b: { dtype: "F32", shape: [half / 4], data_offsets: [half, 2 * half] } });
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(single, Buffer.concat([length, Buffer.from(header), randomBytes(2 * half)]));
    const { "model.safetensors": _unused, ...metadata } = folderFiles(path.join(__dirname, "..", "..", "test", "fixtures", "tiny-llama"));
    const files = { ...metadata, ...shardSafetensors(single, 2) };
    fs.rmSync(single);
    const total = Object.values(files).reduce((s, b) => s + b.length, 0);
    const hub = await startFakeHub([{ repoId: REPO, commit: COMMIT, files }], { lifetimeMs: 3_600_000, chunkBytes: 1024 * 1024 });
    try {
      const rows: Array<[string, { ms: number; peakMb: number }]> = [];
      rows.push(["reference: fetch whole files", await runChild("reference", hub.endpoint, path.join(work, "reference"))]);
      rows.push(["pull into an empty cache", await runChild("pull", hub.endpoint, path.join(work, "pull"))]);
      rows.push(["pull, every blob cached", await runChild("pull", hub.endpoint, path.join(work, "pull"))]);
      hub.cutNextTransfer("model-00001-of-00002.safetensors", Math.floor(half / 2));
      await runChild("cut", hub.endpoint, path.join(work, "resume"));
      rows.push(["pull resuming a shard cut halfway", await runChild("pull", hub.endpoint, path.join(work, "resume"))]);
      const reference = rows[0][1].ms;
      console.log(`${(total / 1024 ** 2).toFixed(0)} MB in 5 files (two shards) from 127.0.0.1; one child process per row`);
      console.log("| run | time (ms) | MB/s | vs reference | peak RSS (MB) |");
      console.log("| --- | --- | --- | --- | --- |");
      for (const [name, r] of rows) console.log(`| ${name} | ${r.ms.toFixed(0)} | ${(total / 1024 ** 2 / (r.ms / 1000)).toFixed(0)} | ${(r.ms / reference).toFixed(2)}x | ${r.peakMb.toFixed(0)} |`);
    } finally {
      await hub.close();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--child") void child(process.argv[3], process.argv[4], process.argv[5]);
else void main();
