/**
 * Splicing an SAE into the forward pass: the hook's activation is replaced by the SAE's
 * reconstruction and the model runs on. How much next-token loss that costs, against the clean
 * run and against zero-ablating the hook, is the usual measure of whether the SAE keeps what the
 * model uses:
 *
 *   CE loss recovered = (CE_zero - CE_spliced) / (CE_zero - CE_clean)
 *
 * One cached clean run, then one batched run that holds the spliced and the zero-ablated copies.
 */
import type { HookedModel, TokenBatch } from "../model/hooked-model";
import type { Intervention } from "../model/interventions";
import { tensor, type Tensor } from "../tensor/tensor";
import { saeInputsForBatch, writeTokenVectors } from "./attach";
import type { Sae } from "./sae";

export interface SpliceResult {
  /** Mean next-token cross-entropy (nats) over every predicted position. */
  readonly ceClean: number;
  readonly ceSpliced: number;
  readonly ceZeroAblated: number;
  /** (ceZeroAblated - ceSpliced) / (ceZeroAblated - ceClean); 1 = no loss from splicing. NaN if zero-ablation costs nothing. */
  readonly ceRecovered: number;
  /** Positions scored (each sequence's tokens but the last). */
  readonly predictedTokens: number;
  /** 1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over the batch's tokens. */
  readonly varianceExplained: number;
  /** Mean number of active features per token. */
  readonly meanL0: number;
  /** [batch, pos, d_vocab] logits of the spliced run. */
  readonly splicedLogits: Tensor;
}

export async function spliceSae(model: HookedModel, sae: Sae, tokens: readonly number[] | TokenBatch, options: { signal?: AbortSignal } = {}): Promise<SpliceResult> {
  sae.requireAutoencoder("splicing");
  const batch = asBatch(tokens);
  const B = batch.length;
  const head = sae.cfg.hook_head_index;
  const { x, rows, activation, logits: clean } = await saeInputsForBatch(model, sae, batch, options.signal);
  const enc = sae.encode(x, rows);
  const recon = sae.decode(enc.features, rows, enc.norm);

  // Source for the doubled batch: rows [0, B) carry the reconstruction (the clean activation
  // elsewhere: padding, other heads); rows [B, 2B) are zero-ablated and need no source.
  const dims = [2 * B, ...activation.dims.slice(1)];
  const source = new Float32Array(activation.data.length * 2);
  source.set(activation.data);
  let at = 0;
  batch.forEach((row, b) => {
    writeTokenVectors(source, dims, b, row.length, head, recon, at, sae.d_in);
    at += row.length;
  });
  const heads = head === undefined ? undefined : [head];
  const first = Array.from({ length: B }, (_, b) => b);
  const second = first.map((b) => b + B);
  const interventions: Intervention[] = [
    { hook: sae.hookName, kind: "replace", source: tensor(source, dims), batch: first, heads },
    { hook: sae.hookName, kind: "zero", batch: second, heads },
  ];
  const { logits } = await model.runWithHooks([...batch, ...batch], interventions, { signal: options.signal });

  const ceClean = crossEntropy(clean, batch, 0);
  const ceSpliced = crossEntropy(logits, batch, 0);
  const ceZeroAblated = crossEntropy(logits, batch, B);
  const V = logits.dims[2];
  const T = logits.dims[1];
  return {
    ceClean: ceClean.mean,
    ceSpliced: ceSpliced.mean,
    ceZeroAblated: ceZeroAblated.mean,
    ceRecovered: (ceZeroAblated.mean - ceSpliced.mean) / (ceZeroAblated.mean - ceClean.mean),
    predictedTokens: ceClean.count,
    varianceExplained: varianceExplained(x, recon, rows, sae.d_in),
    meanL0: countNonZero(enc.features) / rows,
    splicedLogits: tensor(logits.data.slice(0, B * T * V), [B, T, V]),
  };
}

/** Mean next-token cross-entropy of batch rows [rowOffset, rowOffset + batch.length) of logits. */
export function crossEntropy(logits: Tensor, batch: TokenBatch, rowOffset: number): { mean: number; sum: number; count: number } {
  const [, T, V] = logits.dims;
  let sum = 0;
  let count = 0;
  batch.forEach((row, b) => {
    for (let t = 0; t + 1 < row.length; t++) {
      const base = ((rowOffset + b) * T + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (logits.data[base + v] > max) max = logits.data[base + v];
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits.data[base + v] - max);
      sum += max + Math.log(z) - logits.data[base + row[t + 1]];
      count++;
    }
  });
  return { mean: count ? sum / count : NaN, sum, count };
}

/** 1 - SSE / total variance, over rows of [rows, d] vectors. */
export function varianceExplained(x: Float32Array, xHat: Float32Array, rows: number, d: number): number {
  const mean = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) mean[j] += x[r * d + j] / rows;
  let sse = 0;
  let total = 0;
  for (let i = 0; i < rows * d; i++) {
    sse += (x[i] - xHat[i]) ** 2;
    total += (x[i] - mean[i % d]) ** 2;
  }
  return 1 - sse / total;
}

function countNonZero(values: Float32Array): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) n++;
  return n;
}

function asBatch(tokens: readonly number[] | TokenBatch): TokenBatch {
  return tokens.length > 0 && Array.isArray(tokens[0]) ? (tokens as TokenBatch) : [tokens as readonly number[]];
}
