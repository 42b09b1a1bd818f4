/**
 * Memory and speed of LoadOptions.compactWeights on a random SmolLM2-135M-shaped model (the shape
 * bench/torch/time_llama.py writes), stored as F32, BF16 and F16.
 * - Memory: each (weights, mode) cell loads in its own child process, so its peak resident memory
 *   (VmHWM) is that cell's alone: after load (graphs built, model and lens sessions created), after
 *   a 16-token forward (weights, little activation memory), after two 256-token forwards.
 * - Speed: one more child per weights file loads both modes and alternates them (forward on 256
 *   tokens, median; greedy generation with the key/value cache, best of the repetitions), so a
 *   busy machine slows both alike; "vs default" is the median of the paired ratios.
 *
 *   npx tsx bench/models/compact-weights.ts     (LOUPE_BENCH_DIR=folder keeps the written models;
 *                                               BENCH_DTYPES=BF16, BENCH_REPS, BENCH_THREADS (default 1))
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { HookedModel } from "../../src/core/model/hooked-model";
import { float32ToBf16, float32ToHalf } from "../../src/core/model/safetensors";

const TOKENS = 256;
const REPS = Number(process.env.BENCH_REPS ?? 2);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const NEW = Number(process.env.BENCH_NEW ?? 8);
const FIXTURES = path.join(__dirname, "..", "..", "test", "fixtures");
type Dtype = "F32" | "BF16" | "F16";

// SmolLM2-135M's config.json (as bench/torch/time_llama.py's preset): 134.5M parameters, tied embeddings.
const SMOLLM2 = {
  model_type: "llama", architectures: ["LlamaForCausalLM"], vocab_size: 49152, hidden_size: 576,
  intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
  head_dim: 64, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000.0,
  rope_scaling: null, hidden_act: "silu", tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2,
};

function smollmTensors(): Array<[string, number[]]> {
  const { hidden_size: D, intermediate_size: M, num_attention_heads: H, num_key_value_heads: KV, head_dim: Dh, vocab_size: V } = SMOLLM2;
  const out: Array<[string, number[]]> = [["model.embed_tokens.weight", [V, D]], ["model.norm.weight", [D]]];
  for (let L = 0; L < SMOLLM2.num_hidden_layers; L++) {
    const p = `model.layers.${L}`;
    out.push(
      [`${p}.input_layernorm.weight`, [D]], [`${p}.post_attention_layernorm.weight`, [D]],
      [`${p}.self_attn.q_proj.weight`, [H * Dh, D]], [`${p}.self_attn.k_proj.weight`, [KV * Dh, D]],
      [`${p}.self_attn.v_proj.weight`, [KV * Dh, D]], [`${p}.self_attn.o_proj.weight`, [D, H * Dh]],
      [`${p}.mlp.gate_proj.weight`, [M, D]], [`${p}.mlp.up_proj.weight`, [M, D]], [`${p}.mlp.down_proj.weight`, [D, M]],
    );
  }
  return out;
}

/** Writes config.json, a random model.safetensors in `dtype` (tensor by tensor, no whole-model buffer) and a small tokenizer. */
function writeModel(folder: string, dtype: Dtype): void {
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, "config.json"), JSON.stringify(SMOLLM2, null, 2));
  // Its <s> and </s> ids match the config; the bench feeds ids directly.
  fs.copyFileSync(path.join(FIXTURES, "tiny-llama", "tokenizer.json"), path.join(folder, "tokenizer.json"));
  const width = dtype === "F32" ? 4 : 2;
  const tensors = smollmTensors();
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * width;
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let text = JSON.stringify(header);
  text += " ".repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
  const fd = fs.openSync(path.join(folder, "model.safetensors"), "w");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  fs.writeSync(fd, len);
  fs.writeSync(fd, text);
  let seed = 7;
  for (const [, shape] of tensors) {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    if (shape.length === 1) values.fill(1); // norm gains
    else for (let i = 0; i < n; i++) values[i] = ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.1;
    let buf: Buffer;
    if (dtype === "F32") buf = Buffer.from(values.buffer);
    else {
      const u16 = dtype === "BF16" ? float32ToBf16(values) : float32ToHalf(values);
      buf = Buffer.from(u16.buffer);
    }
    fs.writeSync(fd, buf);
  }
  fs.closeSync(fd);
}

function statusMb(field: "VmHWM" | "VmRSS" | "RssAnon" | "RssFile"): number {
  const line = fs.readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(`${field}:`));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

interface MemoryCell {
  baseMb: number;
  loadPeakMb: number;
  shortPeakMb: number;
  runPeakMb: number;
  rssAnonMb: number;
  rssFileMb: number;
}

interface Timing {
  forwardMs: [number, number];
  forwardRatio: number;
  generateTokS: [number, number];
  maxLogitDiff: number;
}

function benchIds(): number[] {
  let s = 3;
  return Array.from({ length: TOKENS }, () => 3 + ((s = (s * 1103515245 + 12345) % 2147483648) % (SMOLLM2.vocab_size - 3)));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function memoryChild(folder: string, compact: boolean): Promise<MemoryCell> {
  const baseMb = statusMb("VmHWM");
  const model = await HookedModel.load(folder, { cacheDir: null, threads: THREADS, compactWeights: compact });
  const loadPeakMb = statusMb("VmHWM");
  const ids = benchIds();
  // A short run first: its peak is the weights' (and the runtime's) with little activation memory.
  await model.run(ids.slice(0, 16));
  const shortPeakMb = statusMb("VmHWM");
  // Twice: onnxruntime plans its memory pattern on the first run of a shape and uses it from the second.
  await model.run(ids);
  await model.run(ids);
  const cell = { baseMb, loadPeakMb, shortPeakMb, runPeakMb: statusMb("VmHWM"), rssAnonMb: statusMb("RssAnon"), rssFileMb: statusMb("RssFile") };
  await model.dispose();
  return cell;
}

async function timingChild(folder: string): Promise<Timing> {
  const models = [
    await HookedModel.load(folder, { cacheDir: null, threads: THREADS }),
    await HookedModel.load(folder, { cacheDir: null, threads: THREADS, compactWeights: true }),
  ];
  const ids = benchIds();
  const first = [await models[0].run(ids), await models[1].run(ids)];
  let maxLogitDiff = 0;
  for (let i = 0; i < first[0].data.length; i++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(first[0].data[i] - first[1].data[i]));
  const times: [number[], number[]] = [[], []];
  for (let r = 0; r < REPS; r++) {
    for (const m of [0, 1]) {
      const t = performance.now();
      await models[m].run(ids);
      times[m].push(performance.now() - t);
    }
  }
  const best = [0, 0];
  for (let r = 0; r < Math.min(REPS, 3); r++) {
    for (const m of [0, 1]) {
      const t = performance.now();
      const gen = await models[m].generate(ids.slice(0, 16), { maxNewTokens: NEW, stopAtEos: false });
      best[m] = Math.max(best[m], gen.tokens.length / ((performance.now() - t) / 1000));
    }
  }
  await Promise.all(models.map((m) => m.dispose()));
  return {
    forwardMs: [median(times[0]), median(times[1])],
    forwardRatio: median(times[1].map((t, i) => t / times[0][i])),
    generateTokS: [best[0], best[1]],
    maxLogitDiff,
  };
}

/** Run this file as a child process and return the JSON it prints. */
function inChild<T>(...args: string[]): T {
  const out = execFileSync(process.execPath, [...process.execArgv, __filename, ...args], { encoding: "utf8" });
  return JSON.parse(out.split("\n").find((l) => l.startsWith("RESULT "))!.slice(7)) as T;
}

async function main(): Promise<void> {
  if (process.argv[2] === "--memory" || process.argv[2] === "--timing") {
    const result = process.argv[2] === "--memory" ? await memoryChild(process.argv[3], process.argv[4] === "compact") : await timingChild(process.argv[3]);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    return;
  }
  const dir = process.env.LOUPE_BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "loupe-compact-bench-"));
  const dtypes = (process.env.BENCH_DTYPES ?? "F32,BF16,F16").split(",") as Dtype[];
  const rows: string[] = [];
  for (const dtype of dtypes) {
    const folder = path.join(dir, `smollm2-135m-${dtype.toLowerCase()}`);
    if (!fs.existsSync(path.join(folder, "model.safetensors"))) writeModel(folder, dtype);
    const fileMb = fs.statSync(path.join(folder, "model.safetensors")).size / 2 ** 20;
    // A fresh process per memory cell: its peak resident memory is this cell's alone.
    const memory = [inChild<MemoryCell>("--memory", folder, "default"), inChild<MemoryCell>("--memory", folder, "compact")];
    const timing = inChild<Timing>("--timing", folder);
    process.stderr.write(`${dtype}: ${JSON.stringify({ memory, timing })}\n`);
    for (const m of [0, 1]) {
      const cell = memory[m];
      const short = cell.shortPeakMb - cell.baseMb;
      const vs = (a: number, b: number) => (m === 0 ? "1.00x" : `${(a / b).toFixed(2)}x`);
      rows.push(
        `| ${dtype} | ${m ? "compact" : "default"} | ${fileMb.toFixed(0)} | ${cell.loadPeakMb.toFixed(0)} | ${cell.shortPeakMb.toFixed(0)} | ${short.toFixed(0)} (${(short / fileMb).toFixed(2)}x file) | ` +
          `${cell.runPeakMb.toFixed(0)} | ${vs(cell.runPeakMb, memory[0].runPeakMb)} | ${timing.forwardMs[m].toFixed(0)} | ${m ? `${timing.forwardRatio.toFixed(2)}x` : "1.00x"} | ` +
          `${timing.generateTokS[m].toFixed(1)} | ${vs(timing.generateTokS[m], timing.generateTokS[0])} |`,
      );
    }
    rows.push(`|  | (compact vs default: max logit difference ${timing.maxLogitDiff.toExponential(1)}) | | | | | | | | | | |`);
  }
  console.log(`\ncompact weights: random SmolLM2-135M shape, ${THREADS} thread(s), ${REPS} repetitions, ${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)}`);
  console.log(`(peaks are VmHWM of the whole process, node and onnxruntime included; "minus base" subtracts the peak before loading)`);
  console.log(
    `| weights | mode | file MB | peak after load MB | peak after 16-token forward MB | that minus base MB | peak after ${TOKENS}-token forwards MB | vs default | forward ${TOKENS} tokens ms | vs default | generate tok/s (KV cache, ${NEW} tokens) | vs default |`,
  );
  console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) console.log(r);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
