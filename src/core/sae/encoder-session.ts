/**
 * Encoding with onnxruntime for wide dictionaries (16k to 262k latents): the pre-activations
 * sae_in @ W_enc + b_enc are one Gemm in a small graph holding the encoder, run on every core with
 * ORT's blocked kernels; normalisation before it and the activation after it stay in Sae, which
 * are linear in rows x (d_in + d_sae). Narrow SAEs keep the JavaScript loop: building a session
 * costs more than it saves.
 *
 *   const { features } = await encodeFast(sae, x, rows);
 */
import * as os from "node:os";
import * as ort from "onnxruntime-node";
import { DataType, GraphBuilder } from "../model/onnx-graph";
import type { Sae, SaeEncoding } from "./sae";

/** Encoders with at least this many weights run in onnxruntime (16k x 640 has 10M). */
export const ORT_ENCODER_MIN_WEIGHTS = 1 << 22;

const sessions = new WeakMap<Sae, Promise<ort.InferenceSession>>();

/** sae.encode, through an onnxruntime session when the encoder is wide (or `minWeights` says so). */
export async function encodeFast(sae: Sae, x: Float32Array, rows = x.length / sae.d_in, options: { minWeights?: number } = {}): Promise<SaeEncoding> {
  if (sae.d_in * sae.d_sae < (options.minWeights ?? ORT_ENCODER_MIN_WEIGHTS) || rows === 0) return sae.encode(x, rows);
  const { sae_in, norm } = sae.encoderInput(x, rows);
  let session = sessions.get(sae);
  if (!session) {
    session = encoderSession(sae);
    sessions.set(sae, session);
  }
  const out = await (await session).run({ sae_in: new ort.Tensor("float32", sae_in, [rows, sae.d_in]) });
  const pre = out.hidden_pre.data as Float32Array;
  return { features: sae.activate(pre, rows), rows, norm };
}

function encoderSession(sae: Sae): Promise<ort.InferenceSession> {
  const g = new GraphBuilder();
  const input = g.input("sae_in", DataType.FLOAT, ["rows", sae.d_in]);
  const W = g.floatInitializer("W_enc", [sae.d_in, sae.d_sae], sae.weights.W_enc);
  const b = g.floatInitializer("b_enc", [sae.d_sae], sae.weights.b_enc);
  g.op("Gemm", [input, W, b], {}, "hidden_pre");
  g.output("hidden_pre", DataType.FLOAT);
  return ort.InferenceSession.create(g.toBytes("sae_encoder"), {
    graphOptimizationLevel: "all",
    intraOpNumThreads: Math.max(1, os.availableParallelism()),
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
}
