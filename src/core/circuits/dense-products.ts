/**
 * The attribution's dense products, C[M, N] = A[M, K] @ B[N, K]^T, asked for by the row
 * computation as steps of a generator (`const c = yield product(a, b, m, k, n)`) so one algorithm
 * runs two ways: synchronously on the JavaScript kernel (linalg.ts), or asynchronously with the
 * big products in onnxruntime, whose blocked SIMD Gemm takes about a quarter of the CPU of the
 * scalar loop and spreads over the intra-op threads. Products below ORT_MIN_MULTIPLY_ADDS stay in
 * JavaScript: a session run costs tens of microseconds before any arithmetic.
 *
 * The two ways agree within float32 rounding: the JavaScript kernel sums in float64 (V8's number),
 * onnxruntime in float32.
 */
import * as os from "node:os";
import * as ort from "onnxruntime-node";
import { DataType, GraphBuilder } from "../model/onnx-graph";
import { matmulTransposed } from "./linalg";

/** One product A[m, k] @ B[n, k]^T, row-major. */
export interface Product {
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly m: number;
  readonly k: number;
  readonly n: number;
}

/** A computation that asks for products and finally returns T. */
export type ProductSteps<T = void> = Generator<Product, T, Float32Array>;

export function product(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Product {
  return { a: a.length === m * k ? a : a.subarray(0, m * k), b: b.length === n * k ? b : b.subarray(0, n * k), m, k, n };
}

function productInJs(p: Product): Float32Array {
  const c = new Float32Array(p.m * p.n);
  if (p.m > 0 && p.n > 0) matmulTransposed(p.a, p.b, c, p.m, p.k, p.n);
  return c;
}

/** Runs `steps` with every product on the JavaScript kernel. */
export function runInJs<T>(steps: ProductSteps<T>): T {
  let next = steps.next();
  while (!next.done) next = steps.next(productInJs(next.value));
  return next.value;
}

/**
 * Products of at least this many multiply-adds go to onnxruntime. Measured on the reference model's
 * shapes (bench/speed/trace-speed.ts --threshold): a run's fixed cost is worth about 40k
 * multiply-adds of the JavaScript kernel.
 */
export const ORT_MIN_MULTIPLY_ADDS = 1 << 16;

export interface OrtProductOptions {
  /** onnxruntime intra-op threads (default: every core). */
  readonly threads?: number;
  readonly minMultiplyAdds?: number;
}

const sessions = new Map<number, Promise<ort.InferenceSession>>();

/** One Gemm(A, B, transB) with both operands as inputs; cached per thread count for the process. */
function gemmSession(threads: number): Promise<ort.InferenceSession> {
  let session = sessions.get(threads);
  if (!session) {
    const g = new GraphBuilder();
    const a = g.input("a", DataType.FLOAT, ["m", "k"]);
    const b = g.input("b", DataType.FLOAT, ["n", "k"]);
    g.op("Gemm", [a, b], { transB: 1 }, "c");
    g.output("c", DataType.FLOAT);
    session = ort.InferenceSession.create(g.toBytes("attribution_product"), {
      graphOptimizationLevel: "all",
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
    });
    session.catch(() => sessions.delete(threads));
    sessions.set(threads, session);
  }
  return session;
}

/** Runs `steps` with products of at least `minMultiplyAdds` in onnxruntime, the rest in JavaScript. */
export async function runWithOrt<T>(steps: ProductSteps<T>, options: OrtProductOptions = {}): Promise<T> {
  const session = await gemmSession(Math.max(1, options.threads ?? os.availableParallelism()));
  const least = options.minMultiplyAdds ?? ORT_MIN_MULTIPLY_ADDS;
  let next = steps.next();
  while (!next.done) {
    const p = next.value;
    let c: Float32Array;
    if (p.m * p.k * p.n < least || p.m === 0 || p.n === 0) c = productInJs(p);
    else {
      const out = await session.run({ a: new ort.Tensor("float32", p.a, [p.m, p.k]), b: new ort.Tensor("float32", p.b, [p.n, p.k]) });
      c = out.c.data as Float32Array;
    }
    next = steps.next(c);
  }
  return next.value;
}
