/**
 * The hostile workspace (issue 22): a repository whose every file is the attacker's. It commits
 * links from .loupe/ to a "home" folder beside it, settings that turn the memory guard off and plant
 * an exponential regex, oversized labels and JSONL files, a 10M-feature SAE config, a 1,024-layer
 * model config and a tokenizer with a catastrophic Split pattern, and a feature-stats.json and a
 * feature-labels.json just under their caps (256 MB, 16 MB) that are valid and must be parsed.
 * Every command path that can reach those files runs on it: the core calls the editor commands
 * make (as in src/extension), the requests it sends the worker (a real worker process, so what is
 * timed is what the editor's thread pays: the request and the reply) and the CLI commands, in the
 * repository as the working folder.
 *
 * Checked on the file system: nothing outside the repository changes, no file Loupe did not create
 * is rewritten. Checked on the clock: no synchronous step on a workspace file takes over 100 ms of
 * the extension host's thread (sync calls timed one by one, async reads under an event-loop delay
 * monitor). Checked in words: every refusal is a LoupeError naming the file and saying what to do.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { addProbeMonitor, parseAuditConfig } from "../../src/core/audit";
import { LoupeError } from "../../src/core/errors";
import { readModelConfig } from "../../src/core/model/config";
import { encodeSafetensors } from "../../src/core/model/safetensors";
import { appendToDataset, readProbeDatasetAsync, saveProbe, type ProbeFile } from "../../src/core/probes";
import { compileGuardedPattern } from "../../src/core/regex-guard";
import { readTextSafelyAsync } from "../../src/core/safe-fs";
import { readSaeConfig } from "../../src/core/sae/config";
import { MAX_FEATURE_LABELS_BYTES } from "../../src/core/sae/feature-labels";
import { MAX_FEATURE_STATS_BYTES } from "../../src/core/sae/feature-stats-file";
import { FEATURE_STATS_FORMAT, FEATURE_STATS_VERSION } from "../../src/core/sae/features";
import { RESTRICTED_SETTINGS, settingValue } from "../../src/core/setting-trust";
import { Tokenizer } from "../../src/core/tokenizer";
import { WorkerClient } from "../../src/worker/client";
import { scratchDir, TINY_GPT2 } from "../helpers/fixtures";

export const BLOCK_LIMIT_MS = 100;
const ROOT = path.join(__dirname, "..", "..");
const HOOK = "blocks.0.hook_resid_post";
/** A refusal must say what to do about it. */
const ADVICE = /\b(remove|replace|delete|fix|shorten|split|use|rewrite|choose|trust|move)\b/i;

export interface StepOutcome {
  readonly step: string;
  /** "refused" with its message, or "ok" (nothing hostile reached, or handled safely). */
  readonly result: "refused" | "ok";
  readonly message?: string;
  /** Longest synchronous stretch on the calling thread, ms. */
  readonly blockedMs: number;
}

export interface HostileReport {
  readonly steps: StepOutcome[];
  readonly outsideChanged: string[];
  readonly workspaceRewritten: string[];
  readonly unclearRefusals: string[];
  readonly slowSteps: string[];
}

interface Layout {
  readonly base: string;
  readonly repo: string;
  readonly home: string;
}

/** Build the repository and the home folder its links point into. */
export function buildHostileWorkspace(): Layout {
  const base = scratchDir("hostile-ws");
  const home = path.join(base, "home");
  const repo = path.join(base, "repo");
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(home, ".bashrc"), "export PATH=/usr/bin\n");
  fs.writeFileSync(path.join(home, "notes.jsonl"), '{"text": "mine", "label": "x"}\n');
  fs.writeFileSync(path.join(home, "probe.json"), "{}\n");
  const loupe = path.join(repo, ".loupe");
  for (const d of ["datasets", "probes"]) fs.mkdirSync(path.join(loupe, d), { recursive: true });
  const link = (target: string, at: string) => fs.symlinkSync(path.relative(path.dirname(at), target), at);
  link(path.join(home, ".bashrc"), path.join(loupe, "audit.json"));
  link(path.join(home, "notes.jsonl"), path.join(loupe, "datasets", "labels.jsonl"));
  link(path.join(home, "probe.json"), path.join(loupe, "probes", `data.${HOOK}.json`));
  link(path.join(home, "created-by-loupe.json"), path.join(loupe, "feature-labels.json")); // dangling
  fs.mkdirSync(path.join(repo, ".vscode"));
  fs.writeFileSync(path.join(repo, ".vscode", "settings.json"), JSON.stringify({ "loupe.maxModelMemoryMB": 0, "loupe.faithfulness.hintPattern": "(a+)+$" }));
  fs.writeFileSync(path.join(repo, "data.jsonl"), Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: i % 2 ? "It was not red." : "It was red.", label: i % 2 ? "neg" : "pos" })).join("\n"));
  fs.writeFileSync(path.join(repo, "story.txt"), "Mia saw a red fox.\n");

  // Oversized files: sparse, so they cost nothing to make and everything to read whole.
  const bloated = path.join(repo, "bloated", ".loupe");
  fs.mkdirSync(bloated, { recursive: true });
  sparse(path.join(bloated, "feature-labels.json"), 83 * 1024 * 1024, '{"version": 1, "saes": {"x": {"1": "');
  sparse(path.join(repo, "bloated", "one-line.jsonl"), 200 * 1024 * 1024, '{"text": "');
  // Near the caps and valid: parsed, so they must be parsed off the editor's thread.
  const nearCap = path.join(repo, "near-cap");
  fs.mkdirSync(path.join(nearCap, "sae"), { recursive: true });
  fs.mkdirSync(path.join(nearCap, ".loupe"));
  writeNearCapSae(path.join(nearCap, "sae"));
  writeNearCapStats(path.join(nearCap, "sae", "feature-stats.json"), MAX_FEATURE_STATS_BYTES - 4 * 1024 * 1024);
  writeNearCapLabels(path.join(nearCap, ".loupe", "feature-labels.json"), MAX_FEATURE_LABELS_BYTES - 512 * 1024);

  const sae = path.join(repo, "sae");
  fs.mkdirSync(sae);
  fs.writeFileSync(path.join(sae, "cfg.json"), JSON.stringify({ d_in: 32, d_sae: 10_000_000, architecture: "standard", apply_b_dec_to_input: true, normalize_activations: "none", metadata: { hook_name: HOOK } }));

  const model = path.join(repo, "model");
  fs.mkdirSync(model);
  const config = JSON.parse(fs.readFileSync(path.join(TINY_GPT2, "config.json"), "utf8")) as Record<string, unknown>;
  fs.writeFileSync(path.join(model, "config.json"), JSON.stringify({ ...config, n_layer: 1024, n_positions: 16384, padding: "x".repeat(512 * 1024) }));
  const tokenizer = JSON.parse(fs.readFileSync(path.join(TINY_GPT2, "tokenizer.json"), "utf8")) as Record<string, unknown>;
  tokenizer.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: "(a+)+$" }, behavior: "Isolated", invert: false }, tokenizer.pre_tokenizer] };
  fs.writeFileSync(path.join(model, "tokenizer.json"), JSON.stringify(tokenizer));
  return { base, repo, home };
}

/** The near-cap feature-stats.json's SAE: many features with realistic contexts, the costliest shape to parse. */
export const NEAR_CAP_SAE = { hook_name: HOOK, d_in: 32, d_sae: 80_000 };
const NEAR_CAP_LABELS_KEY = "near-cap";

/** The SAE the near-cap stats describe (zero weights): the worker reads stats only checked against their SAE. */
function writeNearCapSae(folder: string): void {
  const { hook_name, d_in, d_sae } = NEAR_CAP_SAE;
  fs.writeFileSync(path.join(folder, "cfg.json"), JSON.stringify({ d_in, d_sae, architecture: "standard", apply_b_dec_to_input: true, normalize_activations: "none", metadata: { hook_name } }));
  const zeros = (shape: number[]) => ({ dtype: "F32" as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  fs.writeFileSync(path.join(folder, "sae_weights.safetensors"), encodeSafetensors({ W_enc: zeros([d_in, d_sae]), b_enc: zeros([d_sae]), W_dec: zeros([d_sae, d_in]), b_dec: zeros([d_in]) }));
}

/**
 * A valid feature-stats.json just under `bytes`: NEAR_CAP_SAE.d_sae features, each with a histogram
 * and top contexts of 16 tokens (text, offsets, values), written in pieces from one template.
 */
function writeNearCapStats(file: string, bytes: number): void {
  const bins = 20;
  const words = Array.from({ length: 16 }, (_, i) => `word${i}`);
  const offsets = words.map((w, i) => words.slice(0, i).join(" ").length + (i ? 1 : 0)).map((start, i) => [start, start + words[i].length]);
  const context = JSON.stringify({ text: words.join(" "), offsets, values: words.map((_, i) => (i * 0.37) % 5), token: 3, value: 4.2 });
  const head = { format: FEATURE_STATS_FORMAT, version: FEATURE_STATS_VERSION, sae: { ...NEAR_CAP_SAE, architecture: "standard" }, corpus: { tokens: 1_000_000, description: "near-cap" }, histogram: { bins, log10Min: -3, log10Max: 2 }, concepts: [] };
  const featureHead = (f: number) => `{"index":${f},"fired":10,"density":0.00001,"meanActivation":1.5,"maxActivation":4.2,"histogram":[${Array.from({ length: bins }, (_, i) => i).join(",")}],"topContexts":[`;
  const fixed = JSON.stringify(head).length + '"features":[]'.length + NEAR_CAP_SAE.d_sae * (featureHead(NEAR_CAP_SAE.d_sae).length + 3);
  const contexts = Math.floor((bytes - fixed) / NEAR_CAP_SAE.d_sae / (context.length + 1));
  const body = Array.from({ length: contexts }, () => context).join(",") + "]}";
  const fd = fs.openSync(file, "w");
  try {
    fs.writeSync(fd, JSON.stringify(head).slice(0, -1) + ',"features":[');
    for (let start = 0; start < NEAR_CAP_SAE.d_sae; start += 1000) {
      const batch = Array.from({ length: Math.min(1000, NEAR_CAP_SAE.d_sae - start) }, (_, i) => featureHead(start + i) + body);
      fs.writeSync(fd, (start ? "," : "") + batch.join(","));
    }
    fs.writeSync(fd, "]}");
  } finally {
    fs.closeSync(fd);
  }
}

/** A valid feature-labels.json of about `bytes`: one SAE with a label on each of its first features. */
function writeNearCapLabels(file: string, bytes: number): void {
  const label = (f: number) => `feature ${f}: a label as long as Neuronpedia's explanations tend to be`;
  const count = Math.floor(bytes / (JSON.stringify(label(99_999)).length + 12));
  const map = Object.fromEntries(Array.from({ length: count }, (_, f) => [String(f), label(f)]));
  fs.writeFileSync(file, JSON.stringify({ version: 1, saes: { [NEAR_CAP_LABELS_KEY]: map } }));
}

function sparse(file: string, bytes: number, start: string): void {
  fs.writeFileSync(file, start);
  fs.truncateSync(file, bytes);
}

/** Every entry under `dir` (links not followed): its kind and its content's hash or link target. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (at: string) => {
    for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
      const file = path.join(at, entry.name);
      const rel = path.relative(dir, file);
      if (entry.isSymbolicLink()) out.set(rel, `link ${fs.readlinkSync(file)}`);
      else if (entry.isDirectory()) {
        out.set(rel, "dir");
        walk(file);
      } else {
        const stat = fs.statSync(file);
        // Sparse giants: size and mtime stand for the content.
        out.set(rel, stat.size > 16 * 1024 * 1024 ? `file ${stat.size} ${stat.mtimeMs}` : `file ${createHash("sha256").update(fs.readFileSync(file)).digest("hex")}`);
      }
    }
  };
  walk(dir);
  return out;
}

function changed(before: Map<string, string>, after: Map<string, string>, allowNew: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const [rel, v] of before) if (after.get(rel) !== v) out.push(`${rel}: ${v} -> ${after.get(rel) ?? "gone"}`);
  for (const rel of after.keys()) if (!before.has(rel) && !allowNew(rel)) out.push(`${rel}: new`);
  return out;
}

/**
 * Run one step: time its synchronous part, and turn a LoupeError into a refusal outcome. On a
 * shared machine the process may simply not be scheduled for a while, so a step over the limit is
 * tried twice more and its least blocked try counts: a real block repeats, a scheduling gap does not.
 */
async function step(name: string, run: () => unknown): Promise<StepOutcome> {
  let best = await tryStep(name, run);
  for (let retry = 0; retry < 2 && best.blockedMs > BLOCK_LIMIT_MS; retry++) {
    const again = await tryStep(name, run);
    if (again.blockedMs < best.blockedMs) best = again;
  }
  return best;
}

async function tryStep(name: string, run: () => unknown): Promise<StepOutcome> {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const started = performance.now();
  let result: StepOutcome["result"] = "ok";
  let message: string | undefined;
  let syncMs = 0;
  try {
    const value = run();
    syncMs = performance.now() - started;
    if (value instanceof Promise) await value;
  } catch (error) {
    syncMs = syncMs || performance.now() - started;
    if (!(error instanceof LoupeError)) throw error;
    result = "refused";
    message = error.message;
  }
  delay.disable();
  // The delay histogram counts the resolution itself; what is left is time the loop was blocked.
  const loopMs = Math.max(0, delay.max / 1e6 - 5);
  return { step: name, result, message, blockedMs: Math.max(syncMs, loopMs) };
}

function cli(repo: string, args: string[]): () => void {
  return () => {
    // tsx by absolute URL: the repository is the working folder, and it has no node_modules.
    const tsx = pathToFileURL(path.join(ROOT, "node_modules", "tsx", "dist", "loader.mjs")).href;
    const r = spawnSync(process.execPath, ["--import", tsx, path.join(ROOT, "src", "cli", "main.ts"), ...args], {
      cwd: repo,
      encoding: "utf8",
      timeout: 180_000,
      env: { ...process.env, LOUPE_CACHE_DIR: path.join(path.dirname(repo), "graph-cache") },
    });
    if (r.status === 0) return;
    const text = (r.stderr || r.stdout || String(r.error)).trim();
    // The CLI prints a LoupeError's message; anything else (a stack trace) is a crash.
    if (/^\s+at /m.test(text) || r.status === null) throw new Error(`loupe ${args.join(" ")} crashed: ${text}`);
    throw new LoupeError("bad-file", text);
  };
}

/** Drive every command path on the hostile workspace and report what happened. */
export async function runHostileWorkspace(options: { cli?: boolean } = {}): Promise<HostileReport> {
  const { base, repo, home } = buildHostileWorkspace();
  const outsideBefore = snapshot(home);
  const repoBefore = snapshot(repo);
  const loupe = path.join(repo, ".loupe");
  const probe = { format: "loupe-probe", version: 1, hook: HOOK } as unknown as ProbeFile;
  const steps: StepOutcome[] = [];
  const run = async (name: string, f: () => unknown) => steps.push(await step(name, f));
  const hostileSettings = { defaultValue: 4096, workspaceValue: 0 };

  await run("Add audit monitor (audit.json -> ~/.bashrc)", () => addProbeMonitor(repo, { probe: `.loupe/probes/data.${HOOK}.json`, label: "$(touch /tmp/pwned)", threshold: 0.5, severity: "warning" }));
  await run("Label Lines (datasets/labels.jsonl -> ~/notes.jsonl)", () => appendToDataset(path.join(loupe, "datasets", "labels.jsonl"), [{ text: "x", label: "y" }], { root: repo }));
  await run("Save probe (probes/*.json -> ~/probe.json)", () => saveProbe(path.join(loupe, "probes", `data.${HOOK}.json`), probe, { root: repo }));
  // The editor's worker: labels and feature stats are read there (src/core/requests/feature-files.ts).
  const worker = new WorkerClient(path.join(ROOT, "src", "worker", "main.ts"), { execArgv: ["--import", "tsx"], onOutput: () => undefined });
  // The editor's worker is running before any of these commands (it holds the model): start it untimed.
  await worker.request("featureLabels", { file: path.join(base, "none.json"), key: "x", features: [] });
  const dangling = { file: path.join(loupe, "feature-labels.json"), root: repo, key: "x" };
  await run("Label feature (dangling feature-labels.json)", () => worker.request("setFeatureLabel", { ...dangling, feature: 1, label: "x" }));
  await run("Feature lens reads labels (dangling link)", () => worker.request("featureLabels", { ...dangling, features: [1] }));
  await run("Quick Audit reads audit.json (link)", () => readTextSafelyAsync(path.join(loupe, "audit.json"), { root: repo }));
  await run("Feature lens reads an 83 MB feature-labels.json", () => worker.request("featureLabels", { file: path.join(repo, "bloated", ".loupe", "feature-labels.json"), root: repo, key: "x", features: [1] }));
  const nearCap = path.join(repo, "near-cap");
  const nearCapLabels = { file: path.join(nearCap, ".loupe", "feature-labels.json"), root: repo, key: NEAR_CAP_LABELS_KEY };
  const nearCapSae = path.join(nearCap, "sae");
  const mb = (file: string) => `${(fs.statSync(file).size / 1048576).toFixed(0)} MB`;
  await run(`Feature lens reads a ${mb(nearCapLabels.file)} feature-labels.json (worker)`, () => worker.request("featureLabels", { ...nearCapLabels, features: [0, 1, 2, 3, 4] }));
  await run(`Explore Feature reads a ${mb(path.join(nearCapSae, "feature-stats.json"))} feature-stats.json (worker)`, () =>
    worker.request("featureDashboard", { saeFolder: nearCapSae, feature: 7, sae: "near-cap/sae", hook_name: NEAR_CAP_SAE.hook_name, d_sae: NEAR_CAP_SAE.d_sae }),
  );
  await run("Explore Feature picker on both near-cap files (worker)", () => worker.request("featurePicks", { saeFolder: nearCapSae, d_sae: NEAR_CAP_SAE.d_sae, labels: nearCapLabels }));
  await run("Explore Feature picker on cfg.json d_sae 10,000,000", async () => worker.request("featurePicks", { saeFolder: path.join(repo, "sae"), d_sae: readSaeConfig(path.join(repo, "sae", "cfg.json")).d_sae }));
  await worker.dispose();
  await run("Train Probe reads a JSONL with a 200 MB line", () => readProbeDatasetAsync(path.join(repo, "bloated", "one-line.jsonl"), { root: repo }));
  await run("Restricted Mode: loupe.maxModelMemoryMB 0 ignored", () => {
    if (settingValue(hostileSettings, false, 4096) !== 4096) throw new Error("the workspace's 0 was honoured");
    if (!RESTRICTED_SETTINGS.includes("loupe.maxModelMemoryMB")) throw new Error("not restricted");
  });
  await run("Restricted Mode: hint pattern ignored", () => {
    if (settingValue({ defaultValue: "", workspaceValue: "(a+)+$" }, false, "") !== "") throw new Error("the workspace's pattern was honoured");
  });
  await run("Trusted workspace: hint pattern (a+)+$", () => compileGuardedPattern("(a+)+$", "", "The setting loupe.faithfulness.hintPattern"));
  await run("audit.json faithfulness.hintPattern (a+)+$", () => parseAuditConfig(JSON.stringify({ faithfulness: { hintPattern: "(a+)+$" } }), ".loupe/audit.json"));
  await run("Select Model: config.json with 1,024 layers", () => readModelConfig(path.join(repo, "model")));
  await run("Select Model: tokenizer.json Split (a+)+$", () => Tokenizer.fromFile(path.join(repo, "model", "tokenizer.json")));
  if (options.cli) {
    await run("loupe probe train (default output is a link out)", cli(repo, ["probe", "train", "data.jsonl", "--hook", HOOK, "--folds", "0"]));
    await run("loupe audit (.loupe/audit.json is a link out)", cli(repo, ["audit", "story.txt"]));
    await run("loupe features (feature-labels.json dangling)", cli(repo, ["features", "story.txt"]));
    await run("loupe inspect --model (1,024-layer config)", cli(repo, ["inspect", "--model", "model", "story.txt"]));
  }

  const outsideChanged = changed(outsideBefore, snapshot(home));
  const workspaceRewritten = changed(repoBefore, snapshot(repo));
  const unclearRefusals = steps
    .filter((s) => s.result === "refused" && !(ADVICE.test(s.message ?? "") && /[\\/.]|hintPattern/.test(s.message ?? "")))
    .map((s) => `${s.step}: ${s.message}`);
  // CLI steps run in a child process: their time is not the extension host's.
  const slowSteps = steps.filter((s) => !s.step.startsWith("loupe ") && s.blockedMs > BLOCK_LIMIT_MS).map((s) => `${s.step}: ${s.blockedMs.toFixed(0)} ms`);
  fs.rmSync(base, { recursive: true, force: true });
  return { steps, outsideChanged, workspaceRewritten, unclearRefusals, slowSteps };
}

export function formatHostileReport(report: HostileReport): string {
  const lines = report.steps.map((s) => `  ${s.result === "refused" ? "refused" : "ok     "} ${s.step} (${s.blockedMs.toFixed(0)} ms)${s.message ? `\n          ${s.message.split("\n")[0].slice(0, 220)}` : ""}`);
  lines.push(`  outside the workspace changed: ${report.outsideChanged.length ? report.outsideChanged.join("; ") : "nothing"}`);
  lines.push(`  workspace files rewritten: ${report.workspaceRewritten.length ? report.workspaceRewritten.join("; ") : "none"}`);
  lines.push(`  refusals without a file and a fix: ${report.unclearRefusals.length ? report.unclearRefusals.join("; ") : "none"}`);
  lines.push(`  steps over ${BLOCK_LIMIT_MS} ms on the calling thread: ${report.slowSteps.length ? report.slowSteps.join("; ") : "none"}`);
  return lines.join("\n");
}
