/**
 * The attribution's dense products, C[M, N] = A[M, K] @ B[N, K]^T (or batches of C = A @ B), asked for by the row
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

/** A[m, k] @ B[n, k]^T, or with `batch`, A[i] @ B[i] for A [batch, m, k], B [batch, k, n]; row-major. */
export interface Product {
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly batch?: number;
  /** With `batch`: the rows of A[i] and columns of B[i] in use (the rest is padding, which the JavaScript kernel skips). */
  readonly used?: { readonly m: Int32Array; readonly n: Int32Array };
  /** Where C goes (a Scratch buffer); a new array when absent. */
  readonly out?: Float32Array;
}

/** A computation that asks for products and finally returns T. */
export type ProductSteps<T = void> = Generator<Product, T, Float32Array>;

export function product(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array): Product {
  return { a: a.length === m * k ? a : a.subarray(0, m * k), b: b.length === n * k ? b : b.subarray(0, n * k), m, k, n, ...(out ? { out: out.subarray(0, m * n) } : {}) };
}

/** C[i] = A[i] @ B[i] for i < batch: A [batch, m, k], B [batch, k, n] -> C [batch, m, n]. */
export function batchedProduct(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, used?: Product["used"], out?: Float32Array): Product {
  return { a: a.subarray(0, batch * m * k), b: b.subarray(0, batch * k * n), m, k, n, batch, ...(used ? { used } : {}), ...(out ? { out: out.subarray(0, batch * m * n) } : {}) };
}

/**
 * Float32 work buffers reused from batch to batch, one per purpose: the row computation's big
 * temporaries (a batch's gradients, gathered operands, product outputs) would otherwise be
 * megabytes of garbage per layer, and collecting them cost more than some of the products.
 */
export class Scratch {
  private readonly buffers = new Map<string, Float32Array>();

  /** `length` floats for `purpose`, zeroed when `zero`; valid until the next take for the same purpose. */
  take(purpose: string, length: number, zero = false): Float32Array {
    const held = this.buffers.get(purpose);
    if (!held || held.length < length) {
      const fresh = new Float32Array(length);
      this.buffers.set(purpose, fresh);
      return fresh;
    }
    const view = held.subarray(0, length);
    if (zero) view.fill(0);
    return view;
  }
}

function multiplyAdds(p: Product): number {
  return (p.batch ?? 1) * p.m * p.k * p.n;
}

function productInJs(p: Product): Float32Array {
  const { m, k, n } = p;
  if (p.batch === undefined) {
    const c = p.out ?? new Float32Array(m * n);
    if (m > 0 && n > 0) matmulTransposed(p.a, p.b, c, m, k, n);
    return c;
  }
  const c = p.out ? p.out.fill(0) : new Float32Array(p.batch * m * n);
  const { a, b } = p;
  for (let i = 0; i < p.batch; i++) {
    const rows = p.used ? p.used.m[i] : m;
    const cols = p.used ? p.used.n[i] : n;
    for (let r = 0; r < rows; r++) {
      const ci = (i * m + r) * n;
      for (let kk = 0; kk < k; kk++) {
        const x = a[(i * m + r) * k + kk];
        if (x === 0) continue;
        const bi = (i * k + kk) * n;
        for (let j = 0; j < cols; j++) c[ci + j] += x * b[bi + j];
      }
    }
  }
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

interface ProductSessions {
  /** Gemm(A, B, transB = 1). */
  readonly transposed: ort.InferenceSession;
  /** MatMul over a leading batch axis. */
  readonly batched: ort.InferenceSession;
}

const sessions = new Map<number, Promise<ProductSessions>>();

/** Both operands are graph inputs, so one session serves every shape; cached per thread count for the process. */
function productSessions(threads: number): Promise<ProductSessions> {
  let pending = sessions.get(threads);
  if (!pending) {
    const options: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: "all",
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
      // Between the many short runs the pool's threads sleep instead of spinning: spinning burns a
      // core while JavaScript does the work between products (and another process's turn on a busy machine).
      extra: { session: { intra_op: { allow_spinning: "0" } } },
    };
    const gemm = new GraphBuilder();
    gemm.op("Gemm", [gemm.input("a", DataType.FLOAT, ["m", "k"]), gemm.input("b", DataType.FLOAT, ["n", "k"])], { transB: 1 }, "c");
    gemm.output("c", DataType.FLOAT);
    const matmul = new GraphBuilder();
    matmul.op("MatMul", [matmul.input("a", DataType.FLOAT, ["batch", "m", "k"]), matmul.input("b", DataType.FLOAT, ["batch", "k", "n"])], {}, "c");
    matmul.output("c", DataType.FLOAT);
    pending = Promise.all([ort.InferenceSession.create(gemm.toBytes("attribution_product"), options), ort.InferenceSession.create(matmul.toBytes("attribution_batched_product"), options)]).then(([transposed, batched]) => ({ transposed, batched }));
    pending.catch(() => sessions.delete(threads));
    sessions.set(threads, pending);
  }
  return pending;
}

/** Runs `steps` with products of at least `minMultiplyAdds` in onnxruntime, the rest in JavaScript. */
export async function runWithOrt<T>(steps: ProductSteps<T>, options: OrtProductOptions = {}): Promise<T> {
  const { transposed, batched } = await productSessions(Math.max(1, options.threads ?? os.availableParallelism()));
  const least = options.minMultiplyAdds ?? ORT_MIN_MULTIPLY_ADDS;
  let next = steps.next();
  while (!next.done) {
    const p = next.value;
    let c: Float32Array;
    if (multiplyAdds(p) < least || p.m === 0 || p.n === 0 || p.batch === 0) c = productInJs(p);
    else {
      const [session, aShape, bShape, cShape] = p.batch === undefined ? [transposed, [p.m, p.k], [p.n, p.k], [p.m, p.n]] : [batched, [p.batch, p.m, p.k], [p.batch, p.k, p.n], [p.batch, p.m, p.n]];
      const feeds = { a: new ort.Tensor("float32", p.a, aShape), b: new ort.Tensor("float32", p.b, bShape) };
      // onnxruntime writes into p.out itself when given: no copy, no garbage.
      const out = await session.run(feeds, p.out ? { c: new ort.Tensor("float32", p.out, cShape) } : ["c"]);
      c = p.out ?? (out.c.data as Float32Array);
    }
    next = steps.next(c);
  }
  return next.value;
}
