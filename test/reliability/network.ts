/**
 * Runs Loupe's main commands with every network API watched and blocked (net-watch.cjs, preloaded
 * through NODE_OPTIONS so that forked workers inherit it) and collects the attempts.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { WorkerClient } from "../../src/worker/client";
import { scratchDir } from "../helpers/fixtures";

export const ROOT = path.join(__dirname, "..", "..");
export const NET_WATCH = path.join(__dirname, "net-watch.cjs");

export interface NetAttempt {
  readonly pid: number;
  readonly api: string;
  /** "network": blocked; "local": a connect to a Unix socket path, let through and logged. */
  readonly kind: "network" | "local" | "loaded";
  readonly target: string;
  readonly argv: string[];
  readonly stack: string;
}

export interface WatchedRun {
  readonly name: string;
  readonly status: number | null;
  readonly stderr: string;
  readonly ms: number;
}

export function watchedEnv(log: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const existing = process.env.NODE_OPTIONS ? `${process.env.NODE_OPTIONS} ` : "";
  // A fresh graph cache: building the graph is part of what is watched.
  return { ...process.env, ...extra, NODE_OPTIONS: `${existing}--require ${NET_WATCH}`, LOUPE_NET_LOG: log, LOUPE_CACHE_DIR: path.join(path.dirname(log), "graph-cache") };
}

export function readAttempts(log: string): NetAttempt[] {
  if (!fs.existsSync(log)) return [];
  return fs
    .readFileSync(log, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as NetAttempt);
}

/** Run `node --import tsx ARGS` with the watch on (and `env` added to the environment). */
export function runWatched(name: string, args: readonly string[], log: string, env: NodeJS.ProcessEnv = {}): WatchedRun {
  const started = performance.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, env: watchedEnv(log, env), encoding: "utf8", timeout: 180_000 });
  return { name, status: r.status, stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}`, ms: performance.now() - started };
}

/** Deliberate attempts through each API: the watch must record every one (so a zero means something). */
export function runDeliberateAttempts(log: string): WatchedRun {
  const script = `
    const tryIt = (f) => { try { const r = f(); if (r && r.catch) r.catch(() => {}); if (r && r.on) r.on("error", () => {}); } catch {} };
    tryIt(() => require("node:net").connect(9, "127.0.0.1"));
    tryIt(() => require("node:dns").lookup("example.invalid", () => {}));
    tryIt(() => require("node:http").get("http://127.0.0.1:9/"));
    tryIt(() => require("node:https").request("https://127.0.0.1:9/"));
    tryIt(() => require("node:tls").connect(9, "127.0.0.1"));
    tryIt(() => fetch("http://127.0.0.1:9/"));
    tryIt(() => require("node:dns").promises.resolve4("example.invalid"));
    tryIt(() => require("node:dgram").createSocket("udp4").send("x", 9, "127.0.0.1"));
  `;
  return runWatched("deliberate attempts", ["-e", script], log);
}

/** Local socket connects made by something other than the test runner's TypeScript loader (tsx). */
export function unexpectedLocal(attempts: readonly NetAttempt[]): NetAttempt[] {
  return attempts.filter((a) => a.kind === "local" && !a.stack.includes(`node_modules${path.sep}tsx${path.sep}`));
}

export const DELIBERATE_APIS = ["net.connect", "dns.lookup", "http.get", "https.request", "tls.connect", "fetch", "dns.promises.resolve4", "dgram.send"];

/** The CLI commands a user runs, on the bundled reference model (the default). */
export function cliCommands(dir: string): Array<{ name: string; args: string[] }> {
  const ex = (f: string) => path.join(ROOT, "bench", "examples", f);
  const data = path.join(dir, "probe.jsonl");
  fs.writeFileSync(
    data,
    Array.from({ length: 24 }, (_, i) => JSON.stringify({ text: i % 2 ? `It was not ${["red", "blue", "green"][i % 3]}.` : `It was ${["red", "blue", "green"][i % 3]}.`, label: i % 2 ? "negated" : "plain" })).join("\n"),
  );
  const corrupt = path.join(dir, "ioi-corrupt.txt");
  fs.writeFileSync(corrupt, fs.readFileSync(ex("ioi.txt"), "utf8").replace(", Leo gave", ", Mia gave"));
  const cli = path.join(ROOT, "src", "cli", "main.ts");
  const probeOut = path.join(dir, "probes");
  return [
    { name: "inspect", args: [cli, "inspect", "--json", ex("story.txt")] },
    { name: "generate", args: [cli, "generate", "--max-tokens", "8", ex("story.txt")] },
    { name: "faithfulness", args: [cli, "faithfulness", "--json", ex("lookup-decorative.txt")] },
    { name: "audit", args: [cli, "audit", "--format", "sarif", ex("arith-cot.txt"), ex("hinted-choice.txt")] },
    { name: "attribute", args: [cli, "attribute", ex("ioi.txt")] },
    { name: "patch", args: [cli, "patch", "--clean", ex("ioi.txt"), "--corrupt", corrupt, "--answer", " Mia", "--wrong", " Leo", "--sweep", "resid_pre"] },
    { name: "probe train", args: [cli, "probe", "train", data, "--hook", "blocks.1.hook_resid_post", "--out", probeOut] },
  ];
}

/** The editor's path: a forked worker (which inherits NODE_OPTIONS) loading and running the model. */
export async function runWorkerWatched(log: string): Promise<WatchedRun> {
  const started = performance.now();
  const worker = new WorkerClient(path.join(ROOT, "src", "worker", "main.ts"), { execArgv: ["--import", "tsx"], env: watchedEnv(log), onOutput: () => undefined });
  let status = 0;
  let stderr = "";
  try {
    await worker.request("load", { folder: path.join(ROOT, "models", "reference") });
    await worker.request("inspect", { text: "Mia and Leo went to the park." });
    await worker.request("generate", { prompt: "Once upon a time", maxNewTokens: 4 });
    await worker.request("faithfulness", { text: fs.readFileSync(path.join(ROOT, "bench", "examples", "arith-cot.txt"), "utf8") });
  } catch (error) {
    status = 1;
    stderr = String(error);
  } finally {
    await worker.dispose();
  }
  return { name: "worker (editor path)", status, stderr, ms: performance.now() - started };
}

export function networkScratch(): { dir: string; log: string } {
  const dir = scratchDir("net");
  return { dir, log: path.join(dir, "net.log") };
}
