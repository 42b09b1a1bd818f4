/**
 * The unembedding of a decode step alone, in every layout onnxruntime's CPU kernels could read it:
 * logits = x @ W_U^T for one row x [1, d_model] and a [d_vocab, d_model] table (Gemma 3 270M's
 * tied 262,144 x 640 by default), random weights, each layout in its own child process (its peak
 * resident memory is its own). Times are per call, median of the repetitions after one warm-up.
 *
 *   npx tsx bench/models/unembed-layouts.ts                   (Gemma 3 270M's table, 2 threads)
 *   npx tsx bench/models/unembed-layouts.ts --vocab=151936 --width=1024   (Qwen3-0.6B's)
 *   npx tsx bench/models/unembed-layouts.ts --rows=16 --layouts=gemm-transB,matmul-transposed-prepacked
 *
 * The layouts: the table as stored [V, D] in a Gemm with transB, hidden from prepacking (what the
 * model graphs did) or prepacked; a transposed copy [D, V] in a MatMul, prepacked or not; the
 * table as the MatMul's first input (the logit lens's form); f16 and bf16 tables (a half-precision
 * MatMul where onnxruntime has one, else a cast per run).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { DataType, GraphBuilder } from "../../src/core/model/onnx-graph";
import { float32ToHalf } from "../../src/core/model/safetensors";
import { peakMb } from "../scale/texts";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);

const LAYOUTS = [
  "gemm-transB",
  "gemm-transB-prepacked",
  "matmul-transposed-file",
  "matmul-transposed-at-load",
  "matmul-transposed-at-load-prepacked",
  "matmul-table-first",
  "f16-matmul-transposed",
  "bf16-cast-16-slices",
  "bf16-cast-64-slices",
  "bf16-transposed-cast-16-slices",
  "bf16-transposed-cast-64-slices",
  "bf16-f32-transposed-at-load",
] as const;
type Layout = (typeof LAYOUTS)[number];

interface Row {
  readonly msPerCall: number;
  readonly cpuMsPerCall: number;
  readonly loadedMb: number;
  readonly peakMb: number;
  readonly maxError: number;
}

/** The stored tables (written once by the parent): float32 [V, D], its transpose, bf16 [V, D] (the float32 values truncated). */
const FILES = { f32: "table-f32.bin", f32T: "table-f32-t.bin", bf16: "table-bf16.bin", f16T: "table-f16-t.bin" } as const;

/** Deterministic pseudo-random floats in [-0.05, 0.05): the values do not matter for the timing. */
function randomFloats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 0.1;
  }
  return out;
}

function writeTables(folder: string, V: number, D: number): void {
  const table = randomFloats(V * D, 7);
  const bytes = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  fs.writeFileSync(path.join(folder, FILES.f32), bytes(table));
  const bits = new Uint32Array(table.buffer);
  const bf16 = new Uint16Array(V * D);
  for (let i = 0; i < bf16.length; i++) bf16[i] = bits[i] >>> 16;
  fs.writeFileSync(path.join(folder, FILES.bf16), bytes(bf16));
  const transposed = new Float32Array(V * D);
  for (let r = 0; r < V; r++) for (let c = 0; c < D; c++) transposed[c * V + r] = table[r * D + c];
  fs.writeFileSync(path.join(folder, FILES.f32T), bytes(transposed));
  const halves = new Uint16Array(V * D);
  for (let i = 0; i < halves.length; i += 1 << 20) halves.set(float32ToHalf(transposed.subarray(i, i + (1 << 20))), i);
  fs.writeFileSync(path.join(folder, FILES.f16T), bytes(halves));
}

/** Row v of the table a layout reads, as float32 (bf16 layouts: the bf16 values). */
function tableRow(folder: string, layout: Layout, v: number, V: number, D: number): Float32Array {
  const bf16 = layout.startsWith("bf16");
  const raw = Buffer.alloc(D * (bf16 ? 2 : 4));
  const fd = fs.openSync(path.join(folder, bf16 ? FILES.bf16 : FILES.f32), "r");
  fs.readSync(fd, raw, 0, raw.length, v * raw.length);
  fs.closeSync(fd);
  if (!bf16) return new Float32Array(raw.buffer, raw.byteOffset, D).slice();
  const bits = new Uint32Array(D);
  for (let d = 0; d < D; d++) bits[d] = raw.readUInt16LE(2 * d) << 16;
  void V;
  return new Float32Array(bits.buffer);
}

/** The graph of one layout over the tables in `folder`. */
function buildLayout(layout: Layout, V: number, D: number): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input("x", DataType.FLOAT, ["n", D]);
  const table = (file: string, type: DataType, dims: number[]) => g.externalInitializer(g.fresh("table"), type, dims, { location: file, offset: 0, length: dims[0] * dims[1] * (type === DataType.FLOAT ? 4 : 2) });
  const zero = () => {
    const n = g.op("Shape", [x], { start: 0, end: 1 });
    return g.op("Sub", [n, n]);
  };
  // A runtime-computed shape (shape + (n - n)): the weight is no constant, so nothing prepacks it.
  const hidden = (w: string, dims: number[]) => g.op("Reshape", [w, g.op("Add", [g.int64Initializer(g.fresh("dims"), [2], dims), zero()])]);
  const f32 = (w: string) => g.op("Cast", [w], { to: DataType.FLOAT });
  const transposeAtLoad = (w: string) => g.op("Transpose", [w], { perm: [1, 0] });
  /** x times column slices [D, V/n] of a [D, V] table (or row slices [V/n, D] with transB), each cast to float32 during the run. */
  const sliced = (w: string, slices: number, transposed: boolean) => {
    const size = Math.ceil(V / slices);
    const axis = g.int64Initializer(g.fresh("axis"), [1], [transposed ? 1 : 0]);
    const parts: string[] = [];
    for (let s = 0; s < V; s += size) {
      const begin = g.op("Add", [g.int64Initializer(g.fresh("begin"), [1], [s]), zero()]);
      const slice = f32(g.op("Slice", [w, begin, g.int64Initializer(g.fresh("end"), [1], [Math.min(V, s + size)]), axis]));
      parts.push(transposed ? g.op("MatMul", [x, slice]) : g.op("Gemm", [x, slice], { transB: 1 }));
    }
    return g.op("Concat", parts, { axis: 1 }, "logits");
  };
  switch (layout) {
    case "gemm-transB":
      g.op("Gemm", [x, hidden(table(FILES.f32, DataType.FLOAT, [V, D]), [V, D])], { transB: 1 }, "logits");
      break;
    case "gemm-transB-prepacked":
      g.op("Gemm", [x, table(FILES.f32, DataType.FLOAT, [V, D])], { transB: 1 }, "logits");
      break;
    case "matmul-transposed-file":
      g.op("MatMul", [x, hidden(table(FILES.f32T, DataType.FLOAT, [D, V]), [D, V])], {}, "logits");
      break;
    case "matmul-transposed-at-load":
      g.op("MatMul", [x, hidden(transposeAtLoad(table(FILES.f32, DataType.FLOAT, [V, D])), [D, V])], {}, "logits");
      break;
    case "matmul-transposed-at-load-prepacked":
      g.op("MatMul", [x, transposeAtLoad(table(FILES.f32, DataType.FLOAT, [V, D]))], {}, "logits");
      break;
    case "matmul-table-first":
      g.op("Transpose", [g.op("MatMul", [table(FILES.f32, DataType.FLOAT, [V, D]), g.op("Transpose", [x], { perm: [1, 0] })])], { perm: [1, 0] }, "logits");
      break;
    case "f16-matmul-transposed":
      g.op("Cast", [g.op("MatMul", [g.op("Cast", [x], { to: DataType.FLOAT16 }), table(FILES.f16T, DataType.FLOAT16, [D, V])])], { to: DataType.FLOAT }, "logits");
      break;
    case "bf16-cast-16-slices":
      sliced(table(FILES.bf16, DataType.BFLOAT16, [V, D]), 16, false);
      break;
    case "bf16-cast-64-slices":
      sliced(table(FILES.bf16, DataType.BFLOAT16, [V, D]), 64, false);
      break;
    case "bf16-transposed-cast-16-slices":
      sliced(transposeAtLoad(table(FILES.bf16, DataType.BFLOAT16, [V, D])), 16, true);
      break;
    case "bf16-transposed-cast-64-slices":
      sliced(transposeAtLoad(table(FILES.bf16, DataType.BFLOAT16, [V, D])), 64, true);
      break;
    case "bf16-f32-transposed-at-load":
      g.op("MatMul", [x, hidden(transposeAtLoad(f32(table(FILES.bf16, DataType.BFLOAT16, [V, D]))), [D, V])], {}, "logits");
      break;
  }
  g.output("logits", DataType.FLOAT);
  return g.toBytes(`unembed-${layout}`);
}

/** Child: load and time one layout over the tables in `folder`; print a JSON row. */
async function child(folder: string, layout: Layout, V: number, D: number, rows: number, reps: number): Promise<void> {
  const session = await ort.InferenceSession.create(buildLayout(layout, V, D), {
    graphOptimizationLevel: "all",
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    executionMode: "sequential",
    logSeverityLevel: 4,
    extra: { session: { model_external_initializers_file_folder_path: folder } },
  });
  const loadedMb = process.memoryUsage().rss / 1024 / 1024;
  const xData = randomFloats(rows * D, 11);
  const feeds = { x: new ort.Tensor("float32", xData, [rows, D]) };
  const out = (await session.run(feeds)).logits.data as Float32Array;
  // Row 0's logits against a float64 product with the stored table (f16: the float32 table).
  let maxError = 0;
  for (let v = 0; v < V; v += 4099) {
    const w = tableRow(folder, layout, v, V, D);
    let sum = 0;
    for (let d = 0; d < D; d++) sum += xData[d] * w[d];
    maxError = Math.max(maxError, Math.abs(out[v] - sum));
  }
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    const usage = process.cpuUsage();
    await session.run(feeds);
    const used = process.cpuUsage(usage);
    times.push(performance.now() - start);
    cpu.push((used.user + used.system) / 1000);
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  const row: Row = { msPerCall: median(times), cpuMsPerCall: median(cpu), loadedMb, peakMb: peakMb(), maxError };
  console.log(JSON.stringify(row));
  await session.release();
}

function runChild(folder: string, layout: Layout, V: number, D: number, rows: number, reps: number): Row | string {
  try {
    const out = execFileSync(process.execPath, [...process.execArgv, __filename, "--child", folder, layout, String(V), String(D), String(rows), String(reps)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return JSON.parse(out.trim().split("\n").pop() ?? "{}") as Row;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    return (e.stderr ?? e.message).trim().split("\n").find((l) => /rror/.test(l))?.slice(0, 140) ?? "failed";
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") return child(args[1], args[2] as Layout, Number(args[3]), Number(args[4]), Number(args[5]), Number(args[6]));
  const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const V = Number(flag("vocab") ?? 262144);
  const D = Number(flag("width") ?? 640);
  const rows = Number(flag("rows") ?? 1);
  const reps = Number(flag("reps") ?? 15);
  const layouts = (flag("layouts")?.split(",") ?? LAYOUTS) as Layout[];
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-unembed-"));
  writeTables(folder, V, D);
  const load = os.loadavg()[0];
  const lines: string[] = [];
  let reference: Row | undefined;
  for (const layout of layouts) {
    const row = runChild(folder, layout, V, D, rows, reps);
    if (typeof row === "object" && layout === layouts[0]) reference = row;
    const ratio = typeof row === "object" && reference ? `${(row.msPerCall / reference.msPerCall).toFixed(2)}x` : "";
    const cells = typeof row === "string" ? ["-", "-", "-", "-", "-", "", row] : [row.msPerCall.toFixed(1), row.cpuMsPerCall.toFixed(1), row.loadedMb.toFixed(0), row.peakMb.toFixed(0), row.maxError.toExponential(1), ratio, ""];
    lines.push(`| ${layout} | ${cells.join(" | ")} |`);
    process.stderr.write(`${lines[lines.length - 1]}\n`);
  }
  console.log(`\nunembedding alone: x [${rows}, ${D}] times a ${V} x ${D} table, random weights, ${THREADS} threads, ${os.cpus().length} CPUs, median of ${reps}, load average ${load.toFixed(1)} at start and ${os.loadavg()[0].toFixed(1)} at the end; one child process per layout`);
  console.log(`| layout | ms / call | CPU ms / call | RSS after load MB | peak RSS MB | max abs error vs float64 | time vs ${layouts[0]} | note |\n|---|---:|---:|---:|---:|---:|---:|---|`);
  for (const line of lines) console.log(line);
  fs.rmSync(folder, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
