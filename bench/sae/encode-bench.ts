/**
 * Encode time of wide dictionaries (issue 28):
 *
 *   npx tsx bench/sae/encode-bench.ts [--tokens 300] [--d-in 640] [--widths 16384,65536] [--python /usr/bin/python3]
 *
 * For each width, a random JumpReLU SAE (Gemma Scope's architecture, d_model 640 as Gemma 3 270M)
 * encodes the same random [tokens, d_in] activations three ways, in this one run:
 * - Loupe's onnxruntime encoder (encodeFast: one Gemm with W_enc fed as an input, then the
 *   activation in JavaScript), first call (session build included) and the best of 3 warm calls;
 * - the same Gemm with W_enc and b_enc as graph initializers (Loupe's encoder before: the weights
 *   copied through protobuf into onnxruntime), first call and best of 3 warm calls;
 * - Loupe's JavaScript loop (Sae.encode), one call;
 * - PyTorch (bench/sae/torch_encode.py: x @ W_enc + b_enc, JumpReLU), best of 3, on the same bytes.
 * Ratios are against PyTorch; Loupe's features are compared with PyTorch's (largest difference
 * where both fire; entries that fire in one only, out of tokens x d_sae). Peak memory is
 * this process's and the Python process's maximum resident set. Numbers are whatever the run gives.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { renderTable } from "../../src/cli/format";
import { Sae } from "../../src/core/sae/sae";
import * as ort from "onnxruntime-node";
import { DataType, GraphBuilder } from "../../src/core/model/onnx-graph";
import { encodeFast } from "../../src/core/sae/encoder-session";
import { seededRandom } from "../../src/core/tensor/random";

const { values } = parseArgs({ options: { tokens: { type: "string", default: "300" }, "d-in": { type: "string", default: "640" }, widths: { type: "string", default: "16384,65536" }, python: { type: "string", default: "/usr/bin/python3" } } });
const T = Number(values.tokens);
const D = Number(values["d-in"]);
const widths = String(values.widths).split(",").map(Number);

function randomArray(n: number, random: () => number, scale: number, shift = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (random() * 2 - 1) * scale + shift;
  return out;
}

async function timeMs(fn: () => unknown | Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * How two encodings agree: the largest difference where both fire, and how many entries fire in
 * one only (a pre-activation within float error of its threshold flips; random weights put many there).
 */
function agreement(a: Float32Array, b: Float32Array): string {
  let m = 0;
  let flips = 0;
  for (let i = 0; i < a.length; i++) {
    if ((a[i] > 0) !== (b[i] > 0)) flips++;
    else m = Math.max(m, Math.abs(a[i] - b[i]));
  }
  return `${m.toExponential(1)}, ${flips} flips`;
}

/** The encoder as Loupe built it before: W_enc and b_enc as initializers inside the graph. */
async function initializerSession(D: number, S: number, W_enc: Float32Array, b_enc: Float32Array): Promise<ort.InferenceSession> {
  const g = new GraphBuilder();
  const input = g.input("sae_in", DataType.FLOAT, ["rows", D]);
  g.op("Gemm", [input, g.floatInitializer("W_enc", [D, S], W_enc), g.floatInitializer("b_enc", [S], b_enc)], {}, "hidden_pre");
  g.output("hidden_pre", DataType.FLOAT);
  return ort.InferenceSession.create(g.toBytes("sae_encoder"), { graphOptimizationLevel: "all", intraOpNumThreads: os.availableParallelism(), interOpNumThreads: 1, logSeverityLevel: 3 });
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  let peakRss = process.memoryUsage().rss;
  for (const S of widths) {
    const random = seededRandom(S);
    const weights = {
      W_enc: randomArray(D * S, random, 1 / Math.sqrt(D)),
      b_enc: randomArray(S, random, 0.1),
      W_dec: new Float32Array(S * D),
      b_dec: randomArray(D, random, 0.1),
      threshold: randomArray(S, random, 0.2, 0.4),
    };
    const sae = new Sae(
      { architecture: "jumprelu", d_in: D, d_sae: S, hook_name: "blocks.6.hook_resid_post", rescale_acts_by_decoder_norm: false, apply_b_dec_to_input: false, normalize_activations: "none", finetuning_scaling_factor: false, dtype: "float32" },
      weights,
    );
    const x = randomArray(T * D, random, 2);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-encode-bench-"));
    for (const [name, data] of Object.entries({ x, W_enc: weights.W_enc, b_enc: weights.b_enc, threshold: weights.threshold })) fs.writeFileSync(path.join(dir, `${name}.f32`), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const py = spawnSync(values.python as string, [path.join(__dirname, "torch_encode.py"), dir, String(T), String(D), String(S)], { encoding: "utf8" });
    if (py.status !== 0) throw new Error(`torch_encode.py failed: ${py.stderr}`);
    const torch = JSON.parse(py.stdout) as { ms: number; peak_rss_mb: number; threads: number };
    const torchFeatures = new Float32Array(fs.readFileSync(path.join(dir, "features.f32")).buffer.slice(0));

    let fast = await encodeFast(sae, x, T);
    // A fresh Sae object gets a fresh session: what opening a dictionary costs.
    const sessionAndFirst = await timeMs(async () => (fast = await encodeFast(new Sae(sae.cfg, weights), x, T)));
    let warm = Infinity;
    for (let i = 0; i < 3; i++) warm = Math.min(warm, await timeMs(async () => (fast = await encodeFast(sae, x, T))));
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    let session: ort.InferenceSession | undefined;
    // The same work as encodeFast: the Gemm, then the activation in JavaScript.
    const encodeWith = async (s: ort.InferenceSession) => sae.activate((await s.run({ sae_in: new ort.Tensor("float32", x, [T, D]) })).hidden_pre.data as Float32Array, T);
    const initializerFirst = await timeMs(async () => {
      session = await initializerSession(D, S, weights.W_enc, weights.b_enc);
      await encodeWith(session);
    });
    let initializerWarm = Infinity;
    for (let i = 0; i < 3; i++) initializerWarm = Math.min(initializerWarm, await timeMs(() => encodeWith(session!)));
    await session!.release();
    let js = sae.encode(x, T);
    const jsMs = await timeMs(() => (js = sae.encode(x, T)));
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    fs.rmSync(dir, { recursive: true, force: true });

    const ratio = (ms: number) => `${(ms / torch.ms).toFixed(2)}x`;
    rows.push([`${S} (${(S / 1024).toFixed(0)}k)`, "PyTorch (reference)", torch.ms.toFixed(1), "1.00x", "-", `${torch.peak_rss_mb.toFixed(0)} MB (${torch.threads} threads)`]);
    rows.push(["", "Loupe onnxruntime, warm", warm.toFixed(1), ratio(warm), agreement(fast.features, torchFeatures), ""]);
    rows.push(["", "Loupe onnxruntime, new session", sessionAndFirst.toFixed(1), ratio(sessionAndFirst), "", ""]);
    rows.push(["", "W_enc as initializer (before), warm", initializerWarm.toFixed(1), ratio(initializerWarm), "", ""]);
    rows.push(["", "W_enc as initializer (before), new session", initializerFirst.toFixed(1), ratio(initializerFirst), "", ""]);
    rows.push(["", "Loupe JavaScript loop", jsMs.toFixed(1), ratio(jsMs), agreement(js.features, torchFeatures), `${(peakRss / 2 ** 20).toFixed(0)} MB (Loupe process)`]);
  }
  console.log(`Encode ${T} tokens, d_in ${D}, JumpReLU, random weights; ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? "?"})\n`);
  console.log(renderTable(["d_sae", "encoder", "ms", "vs PyTorch", "vs PyTorch: max |diff| where both fire, flips", "peak memory"], rows));
}

void main();
