/**
 * Random transcoder sets of a chosen shape: untrained, for correctness tests (every code path of
 * the attribution with known dimensions) and for timing the attribution on a model no set was
 * trained for. Encoder biases are set so a chosen share of features is active.
 */
import { seededRandom } from "../tensor/random";
import type { FeatureInputHook, TranscoderActivation, TranscoderKind, TranscoderLayer, TranscoderSet } from "./transcoder";

export interface RandomTranscoderOptions {
  readonly kind: TranscoderKind;
  readonly nLayers: number;
  readonly dModel: number;
  readonly dTranscoder: number;
  readonly activation?: TranscoderActivation;
  readonly inputHook?: FeatureInputHook;
  readonly skip?: boolean;
  /** Added to every encoder bias: negative values make features rarer. */
  readonly encoderBias?: number;
  readonly seed?: number;
}

export function randomTranscoders(o: RandomTranscoderOptions): TranscoderSet {
  const rand = seededRandom(o.seed ?? 1);
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => normal() * scale);
  const { nLayers: L, dModel: D, dTranscoder: F } = o;
  const activation = o.activation ?? { kind: "relu" };
  const layers: TranscoderLayer[] = [];
  for (let l = 0; l < L; l++) {
    const nOut = o.kind === "plt" ? 1 : L - l;
    layers.push({
      W_enc: fill(F * D, 1 / Math.sqrt(D)),
      b_enc: Float32Array.from(fill(F, 0.1), (x) => x + (o.encoderBias ?? 0)),
      threshold: activation.kind === "jumprelu" ? Float32Array.from({ length: F }, () => 0.05 + 0.1 * rand()) : undefined,
      W_dec: fill(F * nOut * D, 1 / Math.sqrt(F)),
      b_dec: fill(D, 0.01),
      skip: o.skip ? fill(D * D, 0.1 / Math.sqrt(D)) : undefined,
    });
  }
  return { kind: o.kind, nLayers: L, dModel: D, dTranscoder: F, activation, inputHook: o.inputHook ?? "mlp.hook_in", outputHook: "hook_mlp_out", layers };
}
