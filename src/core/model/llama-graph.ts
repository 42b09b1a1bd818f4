/**
 * Builds the ONNX graph of a Llama-family model (Llama, SmolLM, TinyLlama, Mistral, Qwen2) from its
 * safetensors weights: RMSNorm, rotary position embeddings, SwiGLU MLP, grouped-query attention,
 * optional q/k/v bias, tied or untied unembedding.
 *
 * Hooks and interventions are the GPT-2 graph's (hook-point.ts), under the same TransformerLens
 * names, so everything above HookedModel is architecture-blind. Where Llama differs from GPT-2:
 * - there is no hook_pos_embed (positions enter through rotary embeddings inside attention);
 * - attn.hook_q and attn.hook_k are taken before the rotation (and before Qwen3's and Gemma 3's
 *   per-head q/k norms), attn.hook_rot_q and attn.hook_rot_k after both, as in TransformerLens;
 * - every RMSNorm's divisor sqrt(mean(x^2) + eps) is a hook, [batch, pos, 1] (ln1.hook_scale,
 *   ln2.hook_scale, ln_final.hook_scale; Gemma's ln1_post and ln2_post too): replacing it with a
 *   cached value freezes the norm, as attribution graphs need;
 * - attn.hook_k and attn.hook_v have one slot per key/value head ([batch, pos, n_kv_heads, d_head],
 *   TransformerLens's default): an intervention on key/value head j acts on every query head of
 *   its group. With GraphOptions.ungroupGroupedQueryAttention they have one slot per query head
 *   instead, the shared heads repeated first (TransformerLens's ungroup_grouped_query_attention);
 * - ln_final.hook_normalized is x / rms(x), before the RMSNorm gain (TransformerLens's RMSNorm);
 * - mlp.hook_pre is the gate projection, mlp.hook_post is silu(gate) * up.
 *
 * Keys and values of earlier tokens can be fed back (past_key:L, past_value:L; each layer's
 * present_key:L and present_value:L are outputs), so generation runs one new token at a time. The
 * cache holds one slot per key/value head ([batch, n_kv_heads, tokens, d_head]) either way.
 * attention_mask covers past and new tokens. Fed empty pasts ([1, n_kv_heads, 0, d_head], as
 * HookedModel does for a plain run), a run is exactly the plain full-sequence run. (They must be
 * fed: onnxruntime-node passes only declared inputs, so an initializer cannot be their default.)
 *
 * As in the GPT-2 graph, rows may start at a later block from their hook_resid_pre (resid_in:L),
 * so a patching sweep skips the blocks before each patch.
 */
import { LoupeError } from "../errors";
import type { LlamaConfig, RopeScaling } from "./config";
import type { BuiltGraph, GraphOptions } from "./graph-options";
import { GRAPH_IO, HookPoints, LENS_IO, LOGIT_POSITIONS, MASKED_SCORE, PAST_IO, POSITION_OFFSETS, residInput } from "./hook-point";
import { blockHook, hookNamesFor } from "./hooks";
import { DataType, GraphBuilder } from "./onnx-graph";
import { float32ToBf16, float32ToHalf, halfToFloat32, toFloat32, type SafetensorsIndex } from "./safetensors";
import { WeightTable, type UnembedForm, type WeightLayout } from "./weight-table";

/** The Llama-family weight table: HF names with or without the `model.` prefix (LlamaModel vs LlamaForCausalLM). */
class LlamaWeights extends WeightTable {
  constructor(
    index: SafetensorsIndex,
    private readonly graph: GraphBuilder,
    private readonly cfg: LlamaConfig,
    layout: WeightLayout,
  ) {
    super(index, graph, cfg.weightPrefixes, `a "${cfg.modelType}" model with this config.json needs it.`, layout);
  }

  /** The unembedding [V, D]: lm_head.weight, or the token embedding when tied. */
  unembeddingName(): string {
    if (this.cfg.tiedEmbeddings) return "embed_tokens.weight";
    if (!this.has("lm_head.weight")) {
      if (this.cfg.modelType === "gemma3_text" && !this.has("embed_tokens.weight")) throw noGemmaTextWeights(this.index.path, this.cfg);
      const file = this.index.path;
      throw new LoupeError("bad-file", `${file} has no "lm_head.weight" but config.json says the embeddings are untied (tie_word_embeddings is not true).`, file);
    }
    return "lm_head.weight";
  }

  /**
   * Gemma 3's 262k-row embedding (tied to the unembedding) stays as stored in the hooked graph
   * whatever the mode: a float32 copy of it would be most of a 270M model's memory. The decode
   * graph (few rows a run) holds it as a float32 transpose unless compactWeights asks otherwise:
   * a cast of the whole table every step made the unembedding most of a step (bf16 Gemma 3 270M,
   * one thread: 97 -> 39 ms CPU a step for 0.34 GB more; bench/models/decode-speed.ts).
   */
  private get compactEmbedding(): boolean | undefined {
    return this.cfg.modelType === "gemma3_text" && !this.fewRows ? true : undefined;
  }

  /** The token embedding's rows for `ids`, as float32. */
  embed(ids: string): string {
    return this.rows("embed_tokens.weight", [this.cfg.dVocab, this.cfg.dModel], ids, { compact: this.compactEmbedding, unembedding: this.unembeddingName() === "embed_tokens.weight" });
  }

  /** x @ W_U in the given form (WeightTable.timesTransposed; in compact mode W_U is cast in slices during the run). */
  unembed(x: string, form: UnembedForm, output?: string): string {
    const name = this.unembeddingName();
    return this.timesTransposed(x, name, [this.cfg.dVocab, this.cfg.dModel], form, output, name === "embed_tokens.weight" ? this.compactEmbedding : undefined);
  }

  /** An RMSNorm gain [n]: w, or 1 + w for Gemma's offset gains (folded at load). */
  gain(name: string, n: number): string {
    const weight = this.get(name, [n]);
    return this.cfg.normGainOffset === 0 ? weight : this.graph.op("Add", [weight, this.graph.floatInitializer(this.graph.fresh("const:one"), [], [1])]);
  }
}

/** A Gemma 3 folder whose weights hold no text model (a vision tower alone, or another variant). */
function noGemmaTextWeights(file: string, cfg: LlamaConfig): LoupeError {
  return new LoupeError(
    "bad-file",
    `${file} has no Gemma 3 text weights: no "${cfg.weightPrefixes[0]}embed_tokens.weight" (nor under ${cfg.weightPrefixes.slice(1).join(", ") || "another prefix"}). Loupe runs Gemma 3's text model; choose a checkpoint that includes it.`,
    file,
  );
}

/**
 * x as a weight of this dtype stores it: HF multiplies Gemma's embeddings by sqrt(hidden_size)
 * cast to the weights' dtype (25.25 for a bf16 640-wide model, not 25.298).
 */
export function roundToDtype(x: number, dtype: string | undefined): number {
  if (dtype === "BF16") return toFloat32(new Uint8Array(float32ToBf16([x]).buffer), "BF16", "embed_scale")[0];
  if (dtype === "F16") return halfToFloat32(float32ToHalf([x]))[0];
  return Math.fround(x);
}

/**
 * Rotary inverse frequencies, one per pair of dimensions, after the config's rope scaling.
 * Computed in float64 and rounded once, so every position's angle is pos * invFreq in float32.
 */
export function ropeInverseFrequencies(cfg: { readonly dHead: number; readonly ropeTheta: number; readonly ropeScaling: RopeScaling }): Float32Array {
  const half = cfg.dHead / 2;
  const out = new Float32Array(half);
  const s = cfg.ropeScaling;
  for (let i = 0; i < half; i++) {
    let f = 1 / Math.pow(cfg.ropeTheta, (2 * i) / cfg.dHead);
    if (s.kind === "linear") {
      f /= s.factor;
    } else if (s.kind === "llama3") {
      // Llama 3.1's scheme: long wavelengths slow down by `factor`, short ones are kept, and the band
      // between blends the two by where the wavelength falls in the original context.
      const wavelength = (2 * Math.PI) / f;
      const longest = s.originalContext / s.lowFreqFactor;
      const shortest = s.originalContext / s.highFreqFactor;
      if (wavelength > longest) {
        f /= s.factor;
      } else if (wavelength >= shortest) {
        const smooth = (s.originalContext / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        f = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
    out[i] = f;
  }
  return out;
}

export function buildLlamaGraph(cfg: LlamaConfig, weights: SafetensorsIndex, options: GraphOptions = {}): BuiltGraph {
  const g = new GraphBuilder();
  const w = new LlamaWeights(weights, g, cfg, { compact: options.compactWeights, fewRows: options.decodeOnly });
  const { dModel: D, nHeads: H, nKvHeads: KV, dHead: Dh, dMlp: M } = cfg;
  const groups = H / KV;

  const ids = g.input(GRAPH_IO.ids, DataType.INT64, ["batch", "pos"]);
  // Declared for HookedModel's common feed; the rotary tables below read the positions from the past length.
  g.input(GRAPH_IO.positions, DataType.INT64, ["batch", "pos"]);
  const mask = g.input(GRAPH_IO.mask, DataType.FLOAT, ["batch", "pos"]);
  // The positions whose logits are computed (HookedModel feeds every position by default). As in
  // the GPT-2 graph, the last block runs only there from its queries on (its later hooks and
  // ln_final hold those positions only): a patched run is scored at one position.
  const logitPositions = g.input(LOGIT_POSITIONS, DataType.INT64, ["k"]);

  const hooks = new HookPoints(g, !options.decodeOnly);

  const shapeQ = g.int64Initializer("shape:q", [4], [0, 0, H, Dh]);
  const shapeKv = g.int64Initializer("shape:kv", [4], [0, 0, KV, Dh]);
  const shapeFlat = g.int64Initializer("shape:flat", [3], [0, 0, H * Dh]);
  const attnScale = g.floatInitializer("scale:attn", [], [cfg.attnScale]);
  const maskedScore = g.floatInitializer("masked_score", [], [MASKED_SCORE]);
  const two = g.floatInitializer("const:two", [], [2]);
  const eps = g.floatInitializer("rms:eps", [], [cfg.rmsNormEps]);
  const lastAxis = g.int64Initializer("axes:last", [1], [-1]);

  // Past keys/values: the run's batch, or batch 1 stretched over every row (a shared prefix, as
  // HookedModel's prefix runs feed for GPT-2 too); empty ([1, n_kv_heads, 0, d_head]) for a plain run.
  const past: Array<[string, string]> = [];
  for (let L = 0; L < cfg.nLayers; L++) {
    const pair = [PAST_IO.pastKey(L), PAST_IO.pastValue(L)] as [string, string];
    for (const name of pair) g.input(name, DataType.FLOAT, ["past_batch", KV, "past", Dh]);
    past.push(pair);
  }
  const zeroScalar = g.int64Initializer("const:zero_scalar", [], [0]);
  const oneScalar = g.int64Initializer("const:one_scalar", [], [1]);
  const idsShape = g.op("Shape", [ids]);
  const pastLen = g.op("Gather", [g.op("Shape", [past[0][0]]), g.int64Initializer("const:two_scalar", [], [2])], { axis: 0 });
  const ones3 = g.int64Initializer("const:ones3", [3], [1, 1, 1]);
  const zero1 = g.int64Initializer("const:zero1", [1], [0]);
  const one1 = g.int64Initializer("const:one1", [1], [1]);

  // Causal mask from the lengths (a table of max_position_embeddings squared would not fit
  // long-context models): new token i sees keys up to past + i; AND key-not-padding: [batch, 1, query, key].
  const seqLen = g.op("Gather", [idsShape, oneScalar], { axis: 0 });
  const queries = g.op("Add", [g.op("Range", [zeroScalar, seqLen, oneScalar]), pastLen]);
  const keys = g.op("Range", [zeroScalar, g.op("Add", [pastLen, seqLen]), oneScalar]);
  const queryIndex = g.op("Unsqueeze", [queries, g.int64Initializer("axes:1", [1], [1])]);
  const keyIndex = g.op("Unsqueeze", [keys, g.int64Initializer("axes:0", [1], [0])]);
  const causal = g.op("LessOrEqual", [keyIndex, queryIndex]);
  const keyOk = g.op("Unsqueeze", [g.op("Cast", [mask], { to: DataType.BOOL }), g.int64Initializer("axes:key", [2], [1, 2])]);
  const allowed = g.op("And", [causal, keyOk], {}, "mask:allowed");
  // Sliding-window layers (Gemma 3) also drop keys `window` or more tokens back: query - key < window.
  // Positions are absolute, so a cached run past the window masks exactly as a full one.
  let distance: string | undefined;
  const windowMasks = new Map<number, string>();
  const allowedAt = (L: number): string => {
    const window = cfg.layerWindows[L];
    if (window === undefined) return allowed;
    let masked = windowMasks.get(window);
    if (masked === undefined) {
      distance ??= g.op("Sub", [queryIndex, keyIndex]);
      const within = g.op("Less", [distance, g.int64Initializer(g.fresh("window"), [], [window])]);
      masked = g.op("And", [allowed, within], {}, g.fresh(`mask:window_${window}`));
      windowMasks.set(window, masked);
    }
    return masked;
  };

  // Rotary tables [1 or rows, pos, 1, Dh] from the query positions past..past+pos less each row's
  // position offset (POSITION_OFFSETS: [1] zero unless rows' pasts of different lengths are aligned
  // on the right), so with one offset they fit however many rows a block sees, even when no row
  // starts at block 0: angle = pos * invFreq, each frequency used for both halves of the head
  // (HF's rotate_half layout, not interleaved pairs).
  const offsets = g.op("Unsqueeze", [g.input(POSITION_OFFSETS, DataType.INT64, ["offset_rows"]), g.int64Initializer("axes:offset_rows", [1], [1])]);
  const rowPositions = g.op("Sub", [g.op("Unsqueeze", [queries, g.int64Initializer("axes:query_rows", [1], [0])]), offsets]);
  const headAxis = g.int64Initializer("axes:2", [1], [2]);
  const queryPositions = g.op("Unsqueeze", [g.op("Cast", [rowPositions], { to: DataType.FLOAT }), headAxis]);
  /** cos and signed sin tables for one set of rotary frequencies (`tag` names them: "" global, "local:" for Gemma's sliding layers). */
  const rotaryTables = (tag: string, frequencies: Float32Array): { cos: string; signedSin: string } => {
    const invFreq = g.floatInitializer(`rope:${tag}inv_freq`, [Dh / 2], frequencies);
    const angles = g.op("Mul", [queryPositions, invFreq]);
    const cosHalf = g.op("Cos", [angles]);
    const sinHalf = g.op("Sin", [angles]);
    const cos = g.op("Unsqueeze", [g.op("Concat", [cosHalf, cosHalf], { axis: -1 }), headAxis], {}, `rope:${tag}cos`);
    // rotate_half(x) = [-x2, x1]; folding the sign into sin leaves a swap of halves: x*cos + [x2, x1]*[-sin, sin].
    const signedSin = g.op("Unsqueeze", [g.op("Concat", [g.op("Neg", [sinHalf]), sinHalf], { axis: -1 }), headAxis], {}, `rope:${tag}sin`);
    return { cos, signedSin };
  };
  const globalRotary = rotaryTables("", ropeInverseFrequencies(cfg));
  // Gemma 3's sliding-window layers rotate with their own base and no scaling.
  const localRotary =
    cfg.ropeLocalTheta !== undefined && cfg.layerWindows.some((w) => w !== undefined)
      ? rotaryTables("local:", ropeInverseFrequencies({ dHead: Dh, ropeTheta: cfg.ropeLocalTheta, ropeScaling: { kind: "none" } }))
      : globalRotary;
  const halves = g.int64Initializer("split:rope", [2], [Dh / 2, Dh / 2]);
  const rotate = (x: string, { cos, signedSin }: { cos: string; signedSin: string }): string => {
    const [x1, x2] = g.opMulti("Split", [x, halves], [g.fresh("rope:x1"), g.fresh("rope:x2")], { axis: -1 });
    const swapped = g.op("Concat", [x2, x1], { axis: -1 });
    return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [swapped, signedSin])]);
  };

  /**
   * x / scale with scale = sqrt(mean(x^2) + eps) [.., 1] (TransformerLens's hook_scale, hooked when
   * named: freezing it makes the norm linear); unhooked, the pattern onnxruntime fuses into
   * SimplifiedLayerNormalization.
   */
  const rmsNormalize = (x: string, scaleHook?: string): string => {
    const meanSquare = g.op("ReduceMean", [g.op("Pow", [x, two]), lastAxis], { keepdims: 1 });
    const scale = g.op("Sqrt", [g.op("Add", [meanSquare, eps])]);
    return g.op("Div", [x, scaleHook ? hooks.at(scaleHook, scale) : scale]);
  };
  /** An RMSNorm [.., width] with its gain; `hooks` names its scale and normalized hooks where it has them. */
  const rmsNorm = (x: string, name: string, hookNames: { scale?: string; normalized?: string } = {}, width = D): string => {
    let normalized = rmsNormalize(x, hookNames.scale);
    if (hookNames.normalized) normalized = hooks.at(hookNames.normalized, normalized);
    return g.op("Mul", [normalized, w.gain(`${name}.weight`, width)]);
  };
  /** A block's norm `ln` (ln1, ln2, or Gemma's ln1_post, ln2_post): its scale hooked, and its normalized value where TransformerLens has the hook. */
  const blockNorm = (L: number, x: string, name: string, ln: "ln1" | "ln2" | "ln1_post" | "ln2_post"): string => {
    const post = ln === "ln1_post" || ln === "ln2_post";
    return rmsNorm(x, name, { scale: blockHook(L, `${ln}.hook_scale`), normalized: post ? blockHook(L, `${ln}.hook_normalized`) : undefined });
  };
  /** Qwen3's and Gemma 3's per-head norm of queries or keys [B, T, heads, Dh] (q_norm, k_norm), before rotary. */
  const headNorm = (x: string, name: string): string => (cfg.qkNorm ? rmsNorm(x, name, {}, Dh) : x);
  const softcap = (x: string, cap: number | undefined, output?: string): string => {
    if (cap === undefined) return output ? g.op("Identity", [x], {}, output) : x;
    const capValue = g.floatInitializer(g.fresh("softcap"), [], [cap]);
    return g.op("Mul", [g.op("Tanh", [g.op("Div", [x, capValue])]), capValue], {}, output);
  };
  /** HF Linear: weight [out, in], y = x W^T (+ b). */
  const linear = (x: string, name: string, dIn: number, dOut: number, bias: boolean): string => {
    const y = g.op("MatMul", [x, g.op("Transpose", [w.get(`${name}.weight`, [dOut, dIn], x)], { perm: [1, 0] })]);
    return bias ? g.op("Add", [y, w.get(`${name}.bias`, [dOut])]) : y;
  };
  /**
   * Each key/value head repeated for its group of query heads along the head axis: [B, T, KV, Dh]
   * -> [B, T, H, Dh] for new tokens (axis 2), [B, KV, P, Dh] -> [B, H, P, Dh] for the cache (axis 1).
   * Query head h reads key/value head h / groups.
   */
  const groupOfHead = g.int64Initializer("heads:group_of_head", [H], Array.from({ length: H }, (_, h) => Math.floor(h / groups)));
  const ungroup = (x: string, axis: 1 | 2): string => (groups === 1 ? x : g.op("Gather", [x, groupOfHead], { axis }));
  // Hooks with one slot per query head (the option) need the key/value heads repeated before them.
  const ungroupedHooks = (options.ungroupGroupedQueryAttention ?? false) && groups > 1;
  /** Query head kv * groups: the first of key/value head kv's group (ungrouped hooks only). */
  const firstOfGroup = ungroupedHooks ? g.int64Initializer("heads:first_of_group", [KV], Array.from({ length: KV }, (_, kv) => kv * groups)) : "";

  if (cfg.modelType === "gemma3_text" && !w.has("embed_tokens.weight")) throw noGemmaTextWeights(weights.path, cfg);
  let embedded = w.embed(ids);
  if (cfg.embedScale !== undefined) {
    embedded = g.op("Mul", [embedded, g.floatInitializer("scale:embed", [], [roundToDtype(cfg.embedScale, w.dtypeOf("embed_tokens.weight"))])]);
  }
  let resid = hooks.at("hook_embed", embedded);

  for (let L = 0; L < cfg.nLayers; L++) {
    const p = `layers.${L}`;
    // Rows started at block L (RunOptions.startAt) join here; a decode-only graph takes none.
    if (L > 0 && hooks.enabled) resid = g.op("Concat", [resid, g.input(residInput(L), DataType.FLOAT, [`rows:${L}`, "pos", D])], { axis: 0 });
    // The rows this block sees: the first ones of the batch. Expanding a past to [rows, 1, 1, 1]
    // stretches a batch-1 past over them and leaves a full one as it is.
    const rowsHere = g.op("Slice", [g.op("Shape", [resid]), zero1, one1]);
    const allowedHere = g.op("Slice", [allowedAt(L), zero1, rowsHere, zero1]);
    const rotary = cfg.layerWindows[L] === undefined ? globalRotary : localRotary;
    const batchOnes = g.op("Concat", [rowsHere, ones3], { axis: 0 });
    resid = hooks.block(L, "hook_resid_pre", resid);
    const x = blockNorm(L, resid, `${p}.input_layernorm`, "ln1");
    const q = hooks.block(L, "attn.hook_q", g.op("Reshape", [linear(x, `${p}.self_attn.q_proj`, D, H * Dh, cfg.qkvBias), shapeQ]));
    const keyValueHook = (suffix: "attn.hook_k" | "attn.hook_v", proj: string): string => {
      const grouped = g.op("Reshape", [linear(x, `${p}.self_attn.${proj}`, D, KV * Dh, cfg.qkvBias), shapeKv]);
      return hooks.block(L, suffix, ungroupedHooks ? ungroup(grouped, 2) : grouped);
    };
    const k = keyValueHook("attn.hook_k", "k_proj");
    const v = keyValueHook("attn.hook_v", "v_proj");
    // Queries and keys after the per-head norm (Qwen3, Gemma 3) and rotary: what the scores read.
    const rotatedQ = hooks.block(L, "attn.hook_rot_q", rotate(headNorm(q, `${p}.self_attn.q_norm`), rotary));
    const rotatedK = hooks.block(L, "attn.hook_rot_k", rotate(headNorm(k, `${p}.self_attn.k_norm`), rotary));
    // The last block needs every position's keys and values, but its queries only at the logit positions.
    const last = L === cfg.nLayers - 1;
    const qT = g.op("Transpose", [last ? g.op("Gather", [rotatedQ, logitPositions], { axis: 1 }) : rotatedQ], { perm: [0, 2, 1, 3] });
    const queryMask = last ? g.op("Gather", [allowedHere, logitPositions], { axis: 2 }) : allowedHere;
    if (last) resid = g.op("Gather", [resid, logitPositions], { axis: 1 });
    /**
     * Keys or values [rows, H, past + pos, Dh] for attention, from the past ones and this run's
     * x (hooked: [rows, pos, KV, Dh], or [rows, pos, H, Dh] when the hooks are ungrouped). The
     * cache output (present) keeps one slot per key/value head. From ungrouped hooks it takes the
     * first query head of each group, which is every head of it unless an intervention at
     * attn.hook_k or attn.hook_v set the heads of a group apart (HookedModel refuses to return the
     * cache then).
     */
    const withPast = (pastName: string, x: string, presentName: string): string => {
      const pastRows = g.op("Expand", [pastName, batchOnes]);
      const grouped = ungroupedHooks ? g.op("Gather", [x, firstOfGroup], { axis: 2 }) : x;
      const present = g.op("Concat", [pastRows, g.op("Transpose", [grouped], { perm: [0, 2, 1, 3] })], { axis: 2 }, presentName);
      g.output(presentName, DataType.FLOAT);
      if (!ungroupedHooks) return ungroup(present, 1);
      return g.op("Concat", [ungroup(pastRows, 1), g.op("Transpose", [x], { perm: [0, 2, 1, 3] })], { axis: 2 });
    };
    const kT = g.op("Transpose", [withPast(past[L][0], rotatedK, PAST_IO.presentKey(L))], { perm: [0, 1, 3, 2] });
    const vT = withPast(past[L][1], v, PAST_IO.presentValue(L));
    const rawScores = softcap(g.op("Mul", [g.op("MatMul", [qT, kT]), attnScale]), cfg.attnLogitSoftcap);
    const scores = hooks.block(L, "attn.hook_attn_scores", g.op("Where", [queryMask, rawScores, maskedScore]));
    const pattern = hooks.block(L, "attn.hook_pattern", g.op("Softmax", [scores], { axis: -1 }));
    const z = hooks.block(L, "attn.hook_z", g.op("Transpose", [g.op("MatMul", [pattern, vT])], { perm: [0, 2, 1, 3] }));
    let attnOut = linear(g.op("Reshape", [z, shapeFlat]), `${p}.self_attn.o_proj`, H * Dh, D, cfg.outBias);
    // Gemma normalises each branch's output again before it joins the residual (TransformerLens's ln1_post, ln2_post).
    if (cfg.postNorms) attnOut = blockNorm(L, attnOut, `${p}.post_attention_layernorm`, "ln1_post");
    attnOut = hooks.block(L, "hook_attn_out", attnOut);
    resid = hooks.block(L, "hook_resid_mid", g.op("Add", [resid, attnOut]));
    const y = blockNorm(L, resid, cfg.postNorms ? `${p}.pre_feedforward_layernorm` : `${p}.post_attention_layernorm`, "ln2");
    const pre = hooks.block(L, "mlp.hook_pre", linear(y, `${p}.mlp.gate_proj`, D, M, cfg.mlpBias));
    const up = linear(y, `${p}.mlp.up_proj`, D, M, cfg.mlpBias);
    const activated = cfg.mlpActivation === "silu" ? g.op("Mul", [pre, g.op("Sigmoid", [pre])]) : g.op("Gelu", [pre], { approximate: "tanh" });
    const post = hooks.block(L, "mlp.hook_post", g.op("Mul", [activated, up]));
    let mlpOut = linear(post, `${p}.mlp.down_proj`, M, D, cfg.mlpBias);
    if (cfg.postNorms) mlpOut = blockNorm(L, mlpOut, `${p}.post_feedforward_layernorm`, "ln2_post");
    mlpOut = hooks.block(L, "hook_mlp_out", mlpOut);
    resid = hooks.block(L, "hook_resid_post", g.op("Add", [resid, mlpOut]));
  }

  const final = rmsNorm(resid, "norm", { scale: "ln_final.hook_scale", normalized: "ln_final.hook_normalized" });
  if (cfg.finalLogitSoftcap === undefined) w.unembed(final, "forward", GRAPH_IO.logits);
  else softcap(w.unembed(final, "forward"), cfg.finalLogitSoftcap, GRAPH_IO.logits);
  g.output(GRAPH_IO.logits, DataType.FLOAT);

  hooks.checkAgainst(hookNamesFor(cfg), "Llama");
  return { bytes: g.toBytes("loupe-llama"), hookNames: hooks.enabled ? hooks.names : [] };
}

/**
 * The logit lens for a Llama-family model: residual vectors [N, d_model] through the final RMSNorm
 * and the unembedding, reduced in the graph as the GPT-2 lens is (top-k, target log-probs, entropy).
 */
export function buildLlamaLensGraph(cfg: LlamaConfig, weights: SafetensorsIndex, options: GraphOptions = {}): Uint8Array {
  const g = new GraphBuilder();
  const w = new LlamaWeights(weights, g, cfg, { compact: options.compactWeights });
  const D = cfg.dModel;
  const resid = g.input(LENS_IO.resid, DataType.FLOAT, ["n", D]);
  const target = g.input(LENS_IO.target, DataType.INT64, ["n", "m"]);
  const k = g.input(LENS_IO.k, DataType.INT64, [1]);
  const lastAxis = g.int64Initializer("axes:last", [1], [-1]);
  const meanSquare = g.op("ReduceMean", [g.op("Pow", [resid, g.floatInitializer("const:two", [], [2])]), lastAxis], { keepdims: 1 });
  const normalized = g.op("Div", [resid, g.op("Sqrt", [g.op("Add", [meanSquare, g.floatInitializer("rms:eps", [], [cfg.rmsNormEps])])])]);
  const scaled = g.op("Mul", [normalized, w.gain("norm.weight", D)]);
  const cap = cfg.finalLogitSoftcap;
  const logits = cap === undefined ? w.unembed(scaled, "rows-independent") : g.op("Mul", [g.op("Tanh", [g.op("Div", [w.unembed(scaled, "rows-independent"), g.floatInitializer("softcap", [], [cap])])]), "softcap"]);
  const logprobs = g.op("LogSoftmax", [logits], { axis: -1 });
  g.opMulti("TopK", [logprobs, k], [LENS_IO.topLogprobs, LENS_IO.topIds], { axis: -1, largest: 1, sorted: 1 });
  g.op("GatherElements", [logprobs, target], { axis: -1 }, LENS_IO.targetLogprob);
  const plogp = g.op("Mul", [g.op("Exp", [logprobs]), logprobs]);
  g.op("Neg", [g.op("ReduceSum", [plogp, lastAxis], { keepdims: 0 })], {}, LENS_IO.entropy);
  for (const name of [LENS_IO.topLogprobs, LENS_IO.targetLogprob, LENS_IO.entropy]) g.output(name, DataType.FLOAT);
  g.output(LENS_IO.topIds, DataType.INT64);
  return g.toBytes("loupe-llama-lens");
}
