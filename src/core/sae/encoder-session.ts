/**
 * Encoding with onnxruntime for wide dictionaries (16k to 262k latents): the pre-activations
 * sae_in @ W_enc + b_enc are one Gemm in a small graph, run on every core with ORT's blocked
 * kernels; normalisation before it and the activation after it stay in Sae, which are linear in
 * rows x (d_in + d_sae). Narrow SAEs keep the JavaScript loop.
 *
 * W_enc and b_enc are graph inputs, fed from the Sae's own arrays on every run, not initializers:
 * an initializer is copied into the protobuf and again into onnxruntime (seconds and twice the
 * encoder's size for 65k x 640), while a weight input costs onnxruntime one packing pass per run,
 * small beside the Gemm itself (bench:sae-encode measures both).
 *
 *   const { features } = await encodeFast(sae, x, rows);
 */
import * as os from "node:os";
import * as ort from "onnxruntime-node";
import { DataType, GraphBuilder } from "../model/onnx-graph";
import type { Sae, SaeEncoding } from "./sae";

/** Encoders with at least this many weights run in onnxruntime (16k x 640 has 10M). */
export const ORT_ENCODER_MIN_WEIGHTS = 1 << 22;

interface EncoderSession {
  readonly session: ort.InferenceSession;
  readonly W_enc: ort.Tensor;
  readonly b_enc: ort.Tensor;
}

const sessions = new WeakMap<Sae, Promise<EncoderSession>>();

/** sae.encode, through an onnxruntime session when the encoder is wide (or `minWeights` says so). */
export async function encodeFast(sae: Sae, x: Float32Array, rows = x.length / sae.d_in, options: { minWeights?: number } = {}): Promise<SaeEncoding> {
  if (sae.d_in * sae.d_sae < (options.minWeights ?? ORT_ENCODER_MIN_WEIGHTS) || rows === 0) return sae.encode(x, rows);
  const { sae_in, norm } = sae.encoderInput(x, rows);
  let session = sessions.get(sae);
  if (!session) {
    session = encoderSession(sae);
    sessions.set(sae, session);
  }
  const { session: run, W_enc, b_enc } = await session;
  const out = await run.run({ sae_in: new ort.Tensor("float32", sae_in, [rows, sae.d_in]), W_enc, b_enc });
  const pre = out.hidden_pre.data as Float32Array;
  return { features: sae.activate(pre, rows), rows, norm };
}

async function encoderSession(sae: Sae): Promise<EncoderSession> {
  const g = new GraphBuilder();
  const input = g.input("sae_in", DataType.FLOAT, ["rows", sae.d_in]);
  const W = g.input("W_enc", DataType.FLOAT, [sae.d_in, sae.d_sae]);
  const b = g.input("b_enc", DataType.FLOAT, [sae.d_sae]);
  g.op("Gemm", [input, W, b], {}, "hidden_pre");
  g.output("hidden_pre", DataType.FLOAT);
  const session = await ort.InferenceSession.create(g.toBytes("sae_encoder"), {
    graphOptimizationLevel: "all",
    intraOpNumThreads: Math.max(1, os.availableParallelism()),
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  return {
    session,
    W_enc: new ort.Tensor("float32", sae.weights.W_enc, [sae.d_in, sae.d_sae]),
    b_enc: new ort.Tensor("float32", sae.weights.b_enc, [sae.d_sae]),
  };
}
