/**
 * Builds the ONNX graph of a GPT-2-family model straight from its safetensors weights.
 *
 * Every TransformerLens hook is a graph output and an intervention point (hook-point.ts), and the
 * graph's inputs and outputs are the ones named there: past keys and values, rows that start at a
 * later block (resid_in:L) and logit positions included.
 */
import type { Gpt2Config as ModelConfig } from "./config";
import type { BuiltGraph, GraphOptions } from "./graph-options";
import { GRAPH_IO, HookPoints, LENS_IO, LOGIT_POSITIONS, MASKED_SCORE, PAST_IO, residInput } from "./hook-point";
import { hookNamesFor } from "./hooks";
import { DataType, GraphBuilder } from "./onnx-graph";
import type { SafetensorsIndex } from "./safetensors";
import { WeightTable } from "./weight-table";

export function buildGpt2Graph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): BuiltGraph {
  const g = new GraphBuilder();
  const w = new WeightTable(weights, g, "transformer.", "is this a GPT-2 checkpoint?", { compact: options.compactWeights, fewRows: options.decodeOnly });
  const { dModel: D, nHeads: H, dHead: Dh, dMlp: M, nCtx, dVocab: V } = cfg;
  // Tied models unembed with the token embedding; untied ones carry lm_head.weight [V, D].
  const unembedName = cfg.tiedEmbeddings || !w.has("lm_head.weight") ? "wte.weight" : "lm_head.weight";

  const ids = g.input(GRAPH_IO.ids, DataType.INT64, ["batch", "pos"]);
  const positions = g.input(GRAPH_IO.positions, DataType.INT64, ["batch", "pos"]);
  const mask = g.input(GRAPH_IO.mask, DataType.FLOAT, ["batch", "total"]);
  const logitPositions = g.input(LOGIT_POSITIONS, DataType.INT64, ["k"]);
  // Keys and values of earlier tokens (batch 1, stretched over the batch, or the run's batch): a run
  // can continue from a prefix without recomputing it. Empty ([1, H, 0, Dh]) for a plain run.
  const past: Array<[string, string]> = [];
  for (let L = 0; L < cfg.nLayers; L++) {
    const pair: [string, string] = [PAST_IO.pastKey(L), PAST_IO.pastValue(L)];
    for (const name of pair) g.input(name, DataType.FLOAT, ["past_batch", H, "past", Dh]);
    past.push(pair);
  }

  const hooks = new HookPoints(g, !options.decodeOnly);

  // Shape constants.
  const shapeHeads = g.int64Initializer("shape:heads", [4], [0, 0, H, Dh]);
  const shapeFlat = g.int64Initializer("shape:flat", [3], [0, 0, D]);
  const splitQkv = g.int64Initializer("split:qkv", [3], [D, D, D]);
  const invSqrtDh = g.floatInitializer("scale:attn", [], [1 / Math.sqrt(Dh)]);
  const maskedScore = g.floatInitializer("masked_score", [], [MASKED_SCORE]);
  const ones = g.floatInitializer("ln:ones", [D], new Float32Array(D).fill(1));
  const zeros = g.floatInitializer("ln:zeros", [D], new Float32Array(D));

  // Attention mask: causal AND key-not-padding, shape [batch, 1, query, key], built from the
  // lengths at run time (an n_positions² constant would make a long-context config cost gigabytes
  // before any weight is read). With a past of P tokens, query i sees keys 0..P+i.
  const idsShape = g.op("Shape", [ids]);
  const zeroScalar = g.int64Initializer("const:zero_scalar", [], [0]);
  const oneScalar = g.int64Initializer("const:one_scalar", [], [1]);
  const seqLen = g.op("Gather", [idsShape, oneScalar], { axis: 0 });
  const pastLen = g.op("Gather", [g.op("Shape", [past[0][0]]), g.int64Initializer("const:two_scalar", [], [2])], { axis: 0 });
  const queries = g.op("Add", [g.op("Range", [zeroScalar, seqLen, oneScalar]), pastLen]);
  const keys = g.op("Range", [zeroScalar, g.op("Add", [pastLen, seqLen]), oneScalar]);
  const queryIndex = g.op("Unsqueeze", [queries, g.int64Initializer("axes:1", [1], [1])]);
  const keyIndex = g.op("Unsqueeze", [keys, g.int64Initializer("axes:0", [1], [0])]);
  const causal = g.op("LessOrEqual", [keyIndex, queryIndex]);
  const zero1 = g.int64Initializer("const:zero", [1], [0]);
  const one1 = g.int64Initializer("const:one", [1], [1]);
  // batchOnes ([rows, 1, 1, 1]) stretches a batch-1 past over the rows a block sees.
  const withPast = (pastName: string, x: string, presentName: string, batchOnes: string): string => {
    const all = g.op("Concat", [g.op("Expand", [pastName, batchOnes]), g.op("Transpose", [x], { perm: [0, 2, 1, 3] })], { axis: 2 }, presentName);
    g.output(presentName, DataType.FLOAT);
    return all;
  };
  const keyOk = g.op("Unsqueeze", [g.op("Cast", [mask], { to: DataType.BOOL }), g.int64Initializer("axes:key", [2], [1, 2])]);
  const allowed = g.op("And", [causal, keyOk], {}, "mask:allowed");
  const ones3 = g.int64Initializer("const:ones3", [3], [1, 1, 1]);

  /** LayerNorm split as TransformerLens does: hook_normalized sees (x - mean) / std, before the affine. */
  const layerNorm = (x: string, prefix: string, normalizedHook?: string): string => {
    const epsilon = { floatValue: cfg.layerNormEps };
    // Without a hook to expose, one fused op applies the affine too (two passes fewer).
    if (!normalizedHook || !hooks.enabled) return g.op("LayerNormalization", [x, w.get(`${prefix}.weight`, [D]), w.get(`${prefix}.bias`, [D])], { axis: -1, epsilon });
    const normalized = hooks.at(normalizedHook, g.op("LayerNormalization", [x, ones, zeros], { axis: -1, epsilon }));
    const scaled = g.op("Mul", [normalized, w.get(`${prefix}.weight`, [D])]);
    return g.op("Add", [scaled, w.get(`${prefix}.bias`, [D])]);
  };
  const linear = (x: string, prefix: string, dIn: number, dOut: number): string =>
    g.op("Add", [g.op("MatMul", [x, w.get(`${prefix}.weight`, [dIn, dOut], x)]), w.get(`${prefix}.bias`, [dOut])]);

  const embed = hooks.at("hook_embed", w.rows("wte.weight", [V, D], ids, { unembedding: unembedName === "wte.weight" }));
  const posEmbed = hooks.at("hook_pos_embed", w.rows("wpe.weight", [nCtx, D], positions));
  let resid = g.op("Add", [embed, posEmbed]);

  for (let L = 0; L < cfg.nLayers; L++) {
    const p = `h.${L}`;
    // Rows started at block L (RunOptions.startAt) join here; a decode-only graph takes none.
    if (L > 0 && hooks.enabled) resid = g.op("Concat", [resid, g.input(residInput(L), DataType.FLOAT, [`rows:${L}`, "pos", D])], { axis: 0 });
    // The rows this block sees: the first ones of the batch.
    const rowsHere = g.op("Slice", [g.op("Shape", [resid]), zero1, one1]);
    const allowedHere = g.op("Slice", [allowed, zero1, rowsHere, zero1]);
    const batchOnes = g.op("Concat", [rowsHere, ones3], { axis: 0 });
    resid = hooks.block(L, "hook_resid_pre", resid);
    const qkv = linear(layerNorm(resid, `${p}.ln_1`), `${p}.attn.c_attn`, D, 3 * D);
    const [qFlat, kFlat, vFlat] = g.opMulti("Split", [qkv, splitQkv], [g.fresh("q"), g.fresh("k"), g.fresh("v")], { axis: -1 });
    const q = hooks.block(L, "attn.hook_q", g.op("Reshape", [qFlat, shapeHeads]));
    const k = hooks.block(L, "attn.hook_k", g.op("Reshape", [kFlat, shapeHeads]));
    const v = hooks.block(L, "attn.hook_v", g.op("Reshape", [vFlat, shapeHeads]));
    // The last block needs every position's keys and values, but nothing reads its other outputs
    // except at the positions whose logits are computed: from its queries on, it runs only there.
    const last = L === cfg.nLayers - 1;
    const queries = last ? g.op("Gather", [q, logitPositions], { axis: 1 }) : q;
    const queryMask = last ? g.op("Gather", [allowedHere, logitPositions], { axis: 2 }) : allowedHere;
    if (last) resid = g.op("Gather", [resid, logitPositions], { axis: 1 });
    const qT = g.op("Transpose", [queries], { perm: [0, 2, 1, 3] });
    const kT = g.op("Transpose", [withPast(past[L][0], k, PAST_IO.presentKey(L), batchOnes)], { perm: [0, 1, 3, 2] });
    const vT = withPast(past[L][1], v, PAST_IO.presentValue(L), batchOnes);
    const rawScores = g.op("Mul", [g.op("MatMul", [qT, kT]), invSqrtDh]);
    const scores = hooks.block(L, "attn.hook_attn_scores", g.op("Where", [queryMask, rawScores, maskedScore]));
    const pattern = hooks.block(L, "attn.hook_pattern", g.op("Softmax", [scores], { axis: -1 }));
    const z = hooks.block(L, "attn.hook_z", g.op("Transpose", [g.op("MatMul", [pattern, vT])], { perm: [0, 2, 1, 3] }));
    const attnOut = hooks.block(L, "hook_attn_out", linear(g.op("Reshape", [z, shapeFlat]), `${p}.attn.c_proj`, D, D));
    resid = hooks.block(L, "hook_resid_mid", g.op("Add", [resid, attnOut]));
    const pre = hooks.block(L, "mlp.hook_pre", linear(layerNorm(resid, `${p}.ln_2`), `${p}.mlp.c_fc`, D, M));
    const post = hooks.block(L, "mlp.hook_post", activation(g, cfg.activation, pre));
    const mlpOut = hooks.block(L, "hook_mlp_out", linear(post, `${p}.mlp.c_proj`, M, D));
    resid = hooks.block(L, "hook_resid_post", g.op("Add", [resid, mlpOut]));
  }

  const final = layerNorm(resid, "ln_f", "ln_final.hook_normalized");
  w.timesTransposed(final, unembedName, [V, D], "forward", GRAPH_IO.logits);
  g.output(GRAPH_IO.logits, DataType.FLOAT);

  hooks.checkAgainst(hookNamesFor(cfg), "GPT-2");
  return { bytes: g.toBytes("loupe-gpt2"), hookNames: hooks.enabled ? hooks.names : [] };
}

function activation(g: GraphBuilder, kind: ModelConfig["activation"], x: string): string {
  switch (kind) {
    case "gelu_new":
      return g.op("Gelu", [x], { approximate: "tanh" });
    case "gelu":
      return g.op("Gelu", [x]);
    case "relu":
      return g.op("Relu", [x]);
  }
}

/**
 * The logit lens as its own small graph: residual vectors [N, d_model] through ln_final and the
 * unembedding, reduced to top-k, the log-probs of a few target tokens per row and the entropy, so only small arrays
 * cross back into JavaScript whatever the vocabulary size.
 */
export function buildGpt2LensGraph(cfg: ModelConfig, weights: SafetensorsIndex, options: GraphOptions = {}): Uint8Array {
  const g = new GraphBuilder();
  const w = new WeightTable(weights, g, "transformer.", "is this a GPT-2 checkpoint?", { compact: options.compactWeights });
  const { dModel: D, dVocab: V } = cfg;
  const resid = g.input(LENS_IO.resid, DataType.FLOAT, ["n", D]);
  const target = g.input(LENS_IO.target, DataType.INT64, ["n", "m"]);
  const k = g.input(LENS_IO.k, DataType.INT64, [1]);
  const normalized = g.op("LayerNormalization", [resid, w.get("ln_f.weight", [D]), w.get("ln_f.bias", [D])], {
    axis: -1,
    epsilon: { floatValue: cfg.layerNormEps },
  });
  const unembedName = cfg.tiedEmbeddings || !w.has("lm_head.weight") ? "wte.weight" : "lm_head.weight";
  const logits = w.timesTransposed(normalized, unembedName, [V, D], "rows-independent");
  const logprobs = g.op("LogSoftmax", [logits], { axis: -1 });
  g.opMulti("TopK", [logprobs, k], [LENS_IO.topLogprobs, LENS_IO.topIds], { axis: -1, largest: 1, sorted: 1 });
  g.op("GatherElements", [logprobs, target], { axis: -1 }, LENS_IO.targetLogprob);
  // Entropy in nats: -sum p log p.
  const plogp = g.op("Mul", [g.op("Exp", [logprobs]), logprobs]);
  g.op("Neg", [g.op("ReduceSum", [plogp, g.int64Initializer("axes:sum", [1], [-1])], { keepdims: 0 })], {}, LENS_IO.entropy);
  for (const name of [LENS_IO.topLogprobs, LENS_IO.targetLogprob, LENS_IO.entropy]) g.output(name, DataType.FLOAT);
  g.output(LENS_IO.topIds, DataType.INT64);
  return g.toBytes("loupe-gpt2-lens");
}
