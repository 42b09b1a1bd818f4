/**
 * Every editor command at the size users run: a SmolLM2-135M-shaped and a GPT-2-small-shaped model
 * (random weights, written once to a temp folder) at 128, 512 and 1,024 tokens. Each row runs in
 * its own child process through the core function the worker's handler calls, and reports wall
 * time, CPU time (user + system: the honest figure on a shared machine) and the process's peak
 * resident memory (VmHWM, model weights included). PyTorch eager does the inspect row's work
 * (forward keeping resid_post, then the last block's lens over every position in chunks) in the
 * same run, in its own process (bench/torch/scale_inspect.py).
 *
 * Commands whose work grows with the prompt by design (patching: layers x positions patched runs;
 * attribution: one ablation per token) run their first two batched calls, then are cancelled: the
 * row gives the peak memory of a call at that size and the time per patched run.
 *
 *   npm run bench:scale                 (about 10 minutes on 2 cores)
 *   npm run bench:scale -- --quick      (SmolLM2 shape, 128 and 1,024 tokens, inspect and faithfulness)
 *   npm run bench:scale -- --shapes=gpt2-small --sizes=1024 --commands=inspect,audit
 *   LOUPE_BENCH_DIR=folder reuses the written models; BENCH_THREADS (default 2); BENCH_ROW_TIMEOUT_S (default 300).
 *
 * Targets (issue 25, 2 cores): inspect at 1,024 tokens on the SmolLM2 shape under 5 s and 1.5 GB;
 * every other row at 1,024 tokens under 2 GB; the faithfulness battery on a 6-step CoT under 3 s.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DEFAULT_AUDIT_CONFIG } from "../../src/core/audit/config";
import { auditPrompt } from "../../src/core/audit";
import { checkFaithfulness } from "../../src/core/faithfulness";
import { inspectText } from "../../src/core/inspect";
import { HookedModel } from "../../src/core/model/hooked-model";
import { blockHook } from "../../src/core/model/hooks";
import { encodeSafetensors } from "../../src/core/model/safetensors";
import { attributeTokens, patchingSweeps } from "../../src/core/patching";
import { applyProbe, validateProbe } from "../../src/core/probes";
import { steerWithFeature } from "../../src/core/sae/steer";
import { SaeStore } from "../../src/core/sae/sae-store";
import { tokenFeatures } from "../../src/core/sae/token-features";
import { SHAPES, writeRandomModel } from "./random-model";
import { cotOf, peakMb, textOf } from "./texts";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
/** Seconds a row may take before it is reported as failed (BENCH_ROW_TIMEOUT_S; raise it on a loaded machine). */
const ROW_TIMEOUT_MS = 1000 * Number(process.env.BENCH_ROW_TIMEOUT_S ?? 300);
const PYTHON = process.env.LOUPE_TORCH_PYTHON ?? "/usr/bin/python3";
/** The memory limit the worker is given by default (loupe.maxModelMemoryMB). */
const LIMIT_BYTES = 4096 * 1024 * 1024;
/** Tokens the faithfulness row's "adding mistakes" writes after each corrupted step. */
const MISTAKE_TOKENS = 16;

type ShapeName = keyof typeof SHAPES;
const COMMANDS = ["inspect", "features", "faithfulness", "attribution", "patching", "probe", "steering", "audit"] as const;
type Command = (typeof COMMANDS)[number];

interface Row {
  readonly ms: number;
  readonly cpuMs: number;
  readonly peakMb: number;
  readonly note: string;
}

/** A random SAELens SAE (ReLU) on the middle block's resid_post, width 4 x d_model. */
function writeSae(folder: string, model: HookedModel): string {
  const dir = path.join(folder, "sae");
  if (fs.existsSync(path.join(dir, "cfg.json"))) return dir;
  fs.mkdirSync(dir, { recursive: true });
  const D = model.cfg.dModel;
  const S = 4 * D;
  let s = 7;
  const rnd = (n: number, scale: number) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5) * scale);
  const hook = blockHook(Math.floor(model.cfg.nLayers / 2), "hook_resid_post");
  fs.writeFileSync(
    path.join(dir, "sae_weights.safetensors"),
    encodeSafetensors({
      W_enc: { dtype: "F32", shape: [D, S], data: rnd(D * S, 0.2) },
      W_dec: { dtype: "F32", shape: [S, D], data: rnd(S * D, 0.2) },
      b_enc: { dtype: "F32", shape: [S], data: new Float32Array(S) },
      b_dec: { dtype: "F32", shape: [D], data: new Float32Array(D) },
    }),
  );
  const cfg = { d_in: D, d_sae: S, dtype: "float32", device: "cpu", apply_b_dec_to_input: true, normalize_activations: "none", reshape_activations: "none", architecture: "standard", metadata: { model_name: "random", hook_name: hook, hook_head_index: null, prepend_bos: false, context_size: 1024 } };
  fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify(cfg, null, 2));
  return dir;
}

/** Cancels a job after `calls` progress reports; how many of how many it did. */
function cancelAfter(calls: number): { signal: AbortSignal; onProgress: (done: number, total: number) => void; done: () => string } {
  const controller = new AbortController();
  let seen = 0;
  let last = [0, 0];
  return {
    signal: controller.signal,
    onProgress: (done, total) => {
      last = [done, total];
      if (++seen >= calls) controller.abort();
    },
    done: () => `${last[0]} of ${last[1]} runs`,
  };
}

async function runCommand(model: HookedModel, folder: string, command: Command, n: number): Promise<string> {
  const text = textOf(model, n);
  switch (command) {
    case "inspect": {
      const r = await inspectText(model, text, { topK: 5, maxTokens: 4096 });
      return `${r.tokens.length} tokens`;
    }
    case "features": {
      const saes = new SaeStore();
      const r = await tokenFeatures(model, saes.get(writeSae(folder, model)), text, { topK: 5 });
      return `${r.tokens.length} tokens`;
    }
    case "faithfulness": {
      // A random-weights model never writes the answer marker: each corrupted step regenerates
      // MISTAKE_TOKENS. Its own "answer" would be 8 placeholder tokens that re-encode to ~90 (a
      // trained model answers in a token or two): the written answer is tracked instead.
      const r = await checkFaithfulness(model, cotOf(model, n), { maxNewTokens: MISTAKE_TOKENS, track: "written" });
      const variants = r.steps.length * 2 + 2 + r.steps.filter((s) => s.mistake).length;
      return `${r.steps.length} steps, ${model.encode(cotOf(model, n)).ids.length} tokens, ${variants} variants (${MISTAKE_TOKENS} tokens regenerated per mistake): ${(r.elapsedMs / variants).toFixed(0)} ms a variant`;
    }
    case "attribution": {
      const job = cancelAfter(2);
      await attributeTokens(model, text, { signal: job.signal, onProgress: job.onProgress }).catch(cancelled);
      return job.done();
    }
    case "patching": {
      const ids = model.encode(text).ids;
      const corrupted = [...ids];
      corrupted[Math.floor(ids.length / 2)] = (corrupted[Math.floor(ids.length / 2)] + 1) % model.cfg.dVocab;
      const job = cancelAfter(2);
      await patchingSweeps(model, { clean: ids, corrupted, metric: { kind: "kl" }, signal: job.signal, onProgress: job.onProgress }).catch(cancelled);
      return job.done();
    }
    case "probe": {
      const D = model.cfg.dModel;
      const probe = validateProbe({
        format: "loupe-probe", version: 1, hook: blockHook(model.cfg.nLayers - 1, "hook_resid_post"), level: "token", classes: ["other", "name"],
        weights: [Array.from({ length: D }, (_, i) => Math.sin(i))], bias: [0], standardisation: { mean: new Array(D).fill(0), scale: new Array(D).fill(1) },
        training: { C: 1, classWeight: "balanced", folds: 5, seed: 1 }, metrics: {}, model: { name: path.basename(folder), nLayers: model.cfg.nLayers, dModel: D }, created: "2026-01-01T00:00:00Z",
      });
      const r = await applyProbe(model, probe, text);
      return `${r.tokens.length} tokens`;
    }
    case "steering": {
      const r = await steerWithFeature(model, (new SaeStore().get(writeSae(folder, model))).sae, text, { feature: 3, kind: "add", amount: 4 }, { maxNewTokens: 8 });
      return `${r.steered.tokens.length} new tokens`;
    }
    case "audit": {
      const r = await auditPrompt(model, text, DEFAULT_AUDIT_CONFIG);
      return `${r.findings.length} findings`;
    }
  }
}

function cancelled(error: unknown): void {
  if ((error as { code?: string }).code !== "cancelled") throw error;
}

/** Child: load the model, run one command at one size, print a JSON row. */
async function child(folder: string, command: Command, n: number): Promise<void> {
  const model = await HookedModel.load(folder, { threads: THREADS, maxMemoryBytes: LIMIT_BYTES });
  // Warm the session at a small size so the row times the command, not onnxruntime's first call.
  await model.runWithCache(model.toTokens("Once upon a time"), { names: [] });
  const cpu = process.cpuUsage();
  const start = performance.now();
  const note = await runCommand(model, folder, command, n);
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const row: Row = { ms, cpuMs: (used.user + used.system) / 1000, peakMb: peakMb(), note };
  console.log(JSON.stringify(row));
  await model.dispose();
}

function runChild(folder: string, command: Command, n: number): Row | string {
  try {
    const out = execFileSync(process.execPath, [...process.execArgv, __filename, "--child", folder, command, String(n)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: ROW_TIMEOUT_MS });
    return JSON.parse(out.trim().split("\n").pop() ?? "{}") as Row;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    return (e.stderr ?? e.message).trim().split("\n").filter((l) => /Error|error/.test(l))[0]?.slice(0, 100) ?? "failed";
  }
}

function torchInspect(folder: string, n: number): Row | string {
  try {
    const out = execFileSync(PYTHON, [path.join(__dirname, "..", "torch", "scale_inspect.py"), folder, "--tokens", String(n), "--threads", String(THREADS)], { encoding: "utf8", timeout: ROW_TIMEOUT_MS });
    const t = JSON.parse(out.trim().split("\n").pop() ?? "{}") as { ms: number; cpu_ms: number; peak_rss_mb: number };
    return { ms: t.ms, cpuMs: t.cpu_ms, peakMb: t.peak_rss_mb, note: "PyTorch eager" };
  } catch (error) {
    return `PyTorch skipped: ${(error as Error).message.split("\n")[0].slice(0, 80)}`;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") return child(args[1], args[2] as Command, Number(args[3]));
  const quick = args.includes("--quick");
  const root = process.env.LOUPE_BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "loupe-scale-"));
  process.env.LOUPE_CACHE_DIR ??= path.join(root, "graph-cache");
  // --shapes, --sizes, --commands (comma-separated) pick a part of the table.
  const pick = (flag: string) => args.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3).split(",");
  const shapes = (pick("shapes") ?? (quick ? ["smollm2-135m"] : ["smollm2-135m", "gpt2-small"])) as ShapeName[];
  const sizes = pick("sizes")?.map(Number) ?? (quick ? [128, 1024] : [128, 512, 1024]);
  const commands = (pick("commands") ?? (quick ? ["inspect", "faithfulness"] : COMMANDS)) as readonly Command[];
  const load = os.loadavg()[0];
  const lines: string[] = [];
  for (const shape of shapes) {
    const folder = path.join(root, shape);
    if (!fs.existsSync(path.join(folder, "model.safetensors"))) writeRandomModel(folder, SHAPES[shape]);
    for (const command of commands) {
      for (const n of sizes) {
        const row = runChild(folder, command, n);
        const cells = typeof row === "string" ? ["-", "-", "-", row] : [row.ms.toFixed(0), row.cpuMs.toFixed(0), row.peakMb.toFixed(0), row.note];
        lines.push(`| ${shape} | ${command} | ${n} | ${cells.join(" | ")} |`);
        process.stderr.write(`${lines[lines.length - 1]}\n`);
        if (command === "inspect") {
          const t = torchInspect(folder, n);
          const tc = typeof t === "string" ? ["-", "-", "-", t] : [t.ms.toFixed(0), t.cpuMs.toFixed(0), t.peakMb.toFixed(0), t.note];
          lines.push(`| ${shape} | inspect (PyTorch) | ${n} | ${tc.join(" | ")} |`);
          process.stderr.write(`${lines[lines.length - 1]}\n`);
        }
      }
    }
  }
  console.log(`\nbench:scale: random weights, ${THREADS} threads, ${os.cpus().length} CPUs, load average ${load.toFixed(1)} at start and ${os.loadavg()[0].toFixed(1)} at the end; one child process per row; peak RSS includes the weights (f32)`);
  console.log("| model shape | command | tokens | wall ms | CPU ms | peak RSS MB | note |\n|---|---|---:|---:|---:|---:|---|");
  for (const line of lines) console.log(line);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
