/**
 * HookedModel: a transformer in onnxruntime with every TransformerLens hook readable and writable.
 *
 *   const model = await HookedModel.load(folder);
 *   const { logits, cache } = await model.runWithCache(model.toTokens("When Mia and Leo…"), { names: ["blocks.0.hook_resid_post"] });
 *   const patched = await model.runWithHooks(tokens, [{ hook: "blocks.1.hook_resid_pre", kind: "replace", source, positions: [4] }]);
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { LoupeError, throwIfAborted } from "../errors";
import { seededRandom } from "../tensor/random";
import { tensor, type Tensor } from "../tensor/tensor";
import type { Encoding, Tokenizer } from "../tokenizer";
import { ActivationCache } from "./activation-cache";
import type { ModelConfig } from "./config";
import { chooseNextToken, type SamplingOptions } from "./sampling";
import { buildLensGraph, buildModelGraph, graphCacheName } from "./build-graph";
import { gainInput, GRAPH_INPUTS, LENS_IO, LOGIT_POSITIONS, PAST_IO, residInput, writeInput } from "./gpt2-graph";
import { FETCH_HOOKS, gateHookOutputs } from "./fetched-hooks";
import { cachedGraph, defaultCacheDir, graphKey } from "./graph-cache";
import { hookLayer, hookLayout, hookNamesFor } from "./hooks";
import { KvCache } from "./kv-cache";
import { compileInterventions, type CompiledHook, type Intervention } from "./interventions";
import { checkRunFits, estimateModelMemory, estimateRunBytes, lensChunkRows, type RunShape } from "./memory-limit";
import { openModelFolder } from "./model-folder";
import { findOnnxModelFile, importOnnxDecoder, openOnnxFolder, type ImportedGraph } from "./onnx-import";

export type TokenBatch = readonly (readonly number[])[];

/** A prompt's tokens: the template's leading tokens (if any), then the text's own. */
export interface PromptEncoding extends Encoding {
  /** How many tokens lead the text's own (Llama's <s>: 1; GPT-2: 0); their ranges are [0, 0]. */
  readonly lead: number;
}

export interface LoadOptions {
  /** Where built graphs are cached; `null` disables the cache. Default: $LOUPE_CACHE_DIR or ~/.cache/loupe. */
  readonly cacheDir?: string | null;
  /** onnxruntime intra-op threads; default: the number of CPUs. */
  readonly threads?: number;
  /**
   * Keep f16/bf16 weight matrices in memory as stored, casting each to float32 just before use in
   * every run, instead of once at load (see WeightTable). Less memory, slower runs; no effect on
   * float32 weights or imported .onnx models.
   */
  readonly compactWeights?: boolean;
  /**
   * Refuse, before it runs, a forward call whose activations with the weights would pass this many
   * bytes (loupe.maxModelMemoryMB); the logit lens is chunked to stay well within it. No limit when undefined.
   */
  readonly maxMemoryBytes?: number;
}

/** Bytes the logit lens's [rows, d_vocab] temporaries may take per call when no limit says less. */
export const DEFAULT_LENS_BUDGET_BYTES = 64 * 1024 * 1024;

export interface LensOptions {
  /** Bytes the [rows, d_vocab] temporaries of one lens call may take (default: DEFAULT_LENS_BUDGET_BYTES, less under a tight limit). */
  readonly budgetBytes?: number;
  readonly signal?: AbortSignal;
}

export interface RunOptions {
  /** Hooks to return in the cache: a list of names or a filter. */
  readonly names?: readonly string[] | ((name: string) => boolean);
  readonly signal?: AbortSignal;
  /**
   * Positions (of the tokens passed) whose logits to compute; logits is then [batch, k, d_vocab]
   * in this order. Default: every position. Where the graph supports it (GPT-2), the last block
   * then also runs only there after its keys and values: its hooks from attn.hook_attn_scores on,
   * and ln_final.hook_normalized, hold those k positions (in this order), and interventions there
   * at other positions change nothing that is returned.
   */
  readonly logitPositions?: readonly number[];
  /**
   * false: no logits (RunResult.logits is [batch, 0, d_vocab]), and where the graph allows it the
   * unembedding is not computed at all: for callers that read only hooks, or reduce the last
   * block's residual stream themselves (the logit lens).
   */
  readonly logits?: boolean;
  /**
   * Continue from earlier tokens instead of running them again: their keys and values at every
   * layer (from a run with `keyValues: true`, cut with `prefixKeyValues`), batch 1 or the run's
   * batch. The tokens passed come after them; hook activations, interventions and logit positions
   * cover only these tokens (attention patterns and scores span prefix and tokens as keys, and
   * cannot be intervened on here). The prefix is taken as unpadded.
   */
  readonly prefix?: KeyValues;
  /** Also return every layer's keys and values (RunResult.keyValues). */
  readonly keyValues?: boolean;
  /**
   * Start rows at a later block, their blocks.{L}.hook_resid_pre given rather than computed:
   * `layers[b]` is row b's first block (0: from its tokens), non-decreasing over the batch, and
   * `resid` [rows with layers[b] > 0, pos, d_model] holds those rows' activations in row order.
   * Block L's hooks (activations, interventions, keys and values) then hold only the rows started
   * at or before it, the batch's first ones; hook_embed and hook_pos_embed only the rows started
   * at 0. A later row's tokens set its length and mask; their ids are not used.
   */
  readonly startAt?: StartAt;
}

export interface StartAt {
  readonly layers: readonly number[];
  readonly resid: Tensor;
}

/**
 * Keys and values of a run's tokens, one [batch, heads, tokens, d_head] tensor per layer; heads
 * are the key/value heads (cacheHeads), fewer than the query heads in a grouped-query model.
 */
export interface KeyValues {
  readonly keys: readonly Tensor[];
  readonly values: readonly Tensor[];
}

export interface RunResult {
  /** [batch, pos, d_vocab], or [batch, k, d_vocab] for the `logitPositions` asked for. */
  readonly logits: Tensor;
  readonly cache: ActivationCache;
  /** Real (unpadded) length of each sequence in the batch. */
  readonly lengths: readonly number[];
  /** With `keyValues: true`: the keys and values of prefix and tokens. */
  readonly keyValues?: KeyValues;
}

/** The first `length` tokens of batch row `row` of `kv`, as a batch-1 prefix for RunOptions.prefix. */
export function prefixKeyValues(kv: KeyValues, row: number, length: number): KeyValues {
  const cut = (t: Tensor): Tensor => {
    const [B, H, T, Dh] = t.dims;
    if (!Number.isInteger(row) || row < 0 || row >= B) throw new LoupeError("bad-argument", `prefixKeyValues: batch row ${row} is out of range (0..${B - 1}).`);
    if (!Number.isInteger(length) || length < 0 || length > T) throw new LoupeError("bad-argument", `prefixKeyValues: a prefix of ${length} tokens is not within the ${T} cached.`);
    const out = new Float32Array(H * length * Dh);
    for (let h = 0; h < H; h++) out.set(t.data.subarray(((row * H + h) * T) * Dh, ((row * H + h) * T + length) * Dh), h * length * Dh);
    return tensor(out, [1, H, length, Dh]);
  };
  return { keys: kv.keys.map(cut), values: kv.values.map(cut) };
}

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens?: number;
  /** Stop when the continuation contains one of these strings (the string is cut off). */
  readonly stop?: readonly string[];
  /** Stop at the end-of-text token (default true). */
  readonly stopAtEos?: boolean;
  readonly interventions?: readonly Intervention[];
  /**
   * More interventions computed before each step from the tokens so far: for edits that depend on
   * the run's own activations (SAE feature steering reads the hook, then rewrites it).
   */
  readonly interventionsAt?: (tokens: readonly number[], signal?: AbortSignal) => Promise<readonly Intervention[]>;
  readonly signal?: AbortSignal;
  /** Called after each new token. */
  readonly onToken?: (step: number) => void;
}

export interface Generation {
  readonly tokens: number[];
  readonly text: string;
  readonly stopReason: "max-tokens" | "eos" | "stop-string" | "context";
}

export interface LensResult {
  readonly k: number;
  /** [n, k] token ids, most likely first. */
  readonly topIds: Int32Array;
  /** [n, k] log-probs of those tokens. */
  readonly topLogprobs: Float32Array;
  /** Targets per row. */
  readonly m: number;
  /** [n, m] log-probs of each row's target tokens. */
  readonly targetLogprob: Float32Array;
  /** [n] entropy of each row's distribution, in nats. */
  readonly entropy: Float32Array;
}

export class HookedModel {
  readonly hookNames: readonly string[];
  private readonly hookSet: ReadonlySet<string>;
  private readonly idleInterventions: Record<string, ort.Tensor>;
  /** Whether the graph takes past keys/values (RunOptions.prefix) and logit positions. */
  private readonly hasPast: boolean;
  private readonly hasLogitPositions: boolean;
  private readonly hasStartAt: boolean;
  /** Whether hook outputs are computed only when fetched (FETCH_HOOKS); otherwise a run holds them all. */
  private readonly hasFetchMask: boolean;
  /** The memory limit a run is checked against, with the weights' share of it. */
  private memoryLimit?: { readonly maxBytes: number; readonly weightsBytes: number };

  private constructor(
    readonly folder: string,
    readonly cfg: ModelConfig,
    readonly tokenizer: Tokenizer,
    private readonly session: ort.InferenceSession,
    private readonly lensSession: ort.InferenceSession | undefined,
    readonly graphFromCache: boolean,
    /** For an imported .onnx: the hooks its graph provides, and why the others are missing. */
    private readonly imported?: Pick<ImportedGraph, "hookNames" | "unavailable" | "modelFile">,
  ) {
    this.hookNames = imported?.hookNames ?? hookNamesFor(cfg);
    this.hookSet = new Set(this.hookNames);
    // One shared zero broadcasts to every hook: the identity intervention.
    const zero = new ort.Tensor("float32", new Float32Array(1), [1]);
    this.idleInterventions = {};
    for (const name of this.hookNames) {
      this.idleInterventions[gainInput(name)] = zero;
      this.idleInterventions[writeInput(name)] = zero;
    }
    this.hasPast = session.inputNames.includes(PAST_IO.pastKey(0));
    this.hasLogitPositions = session.inputNames.includes(LOGIT_POSITIONS);
    this.hasStartAt = cfg.nLayers > 1 && session.inputNames.includes(residInput(1));
    this.hasFetchMask = session.inputNames.includes(FETCH_HOOKS);

    if (this.hasPast) {
      const empty = new ort.Tensor("float32", new Float32Array(0), [1, cacheHeads(cfg), 0, cfg.dHead]);
      for (let L = 0; L < cfg.nLayers; L++) {
        this.idleInterventions[PAST_IO.pastKey(L)] ??= empty;
        this.idleInterventions[PAST_IO.pastValue(L)] ??= empty;
      }
    }
  }

  /**
   * Load a Hugging Face GPT-2- or Llama-family folder: config.json, model.safetensors, tokenizer.json.
   * A folder with a decoder .onnx (model.onnx or onnx/model.onnx) instead of model.safetensors is
   * imported (onnx-import.ts): its residual stream becomes hooks; hookNames lists what it provides.
   */
  static async load(folder: string, options: LoadOptions = {}): Promise<HookedModel> {
    // A folder with a decoder .onnx and no model.safetensors: import the graph as it is.
    const onnxFile = fs.existsSync(folder) && fs.statSync(folder).isDirectory() ? findOnnxModelFile(path.resolve(folder)) : undefined;
    if (onnxFile) return HookedModel.loadOnnx(path.resolve(folder), onnxFile, options);
    const { dir, cfg, weightsFile, weights, tokenizer } = openModelFolder(folder);
    const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir ?? undefined;
    const compactWeights = options.compactWeights ?? false;
    // The compact graph differs from the default one, so the option is part of the key (appended
    // only when on, so graphs cached before the option existed stay valid).
    const key = (graphName: string) =>
      graphKey([graphName, JSON.stringify(cfg), path.basename(weightsFile), weights.headerText, ...(compactWeights ? ["compact-weights"] : [])]);
    // Hooks are computed only when fetched (fetched-hooks.ts): a run holds only what it returns.
    const graph = cachedGraph(cacheDir, key(`${graphCacheName(cfg, "model")}:${FETCH_HOOKS}`), () => {
      const built = buildModelGraph(cfg, weights, { compactWeights });
      return gateHookOutputs(built.bytes, fetchedOutputs(cfg), [GRAPH_INPUTS.logits]);
    });
    const lensGraph = cachedGraph(cacheDir, key(graphCacheName(cfg, "lens")), () => buildLensGraph(cfg, weights, { compactWeights }));
    const session = await createSession(graph.bytes, dir, options.threads);
    const lensSession = await createSession(lensGraph.bytes, dir, options.threads);
    const model = new HookedModel(dir, cfg, tokenizer, session, lensSession, graph.fromCache);
    if (options.maxMemoryBytes !== undefined) model.memoryLimit = { maxBytes: options.maxMemoryBytes, weightsBytes: estimateModelMemory(dir, compactWeights).estimatedBytes };
    return model;
  }

  private static async loadOnnx(dir: string, modelFile: string, options: LoadOptions): Promise<HookedModel> {
    const { cfg, tokenizer } = openOnnxFolder(dir, modelFile);
    let imported = importOnnxDecoder(modelFile, cfg);
    // External data (a side file, or the .onnx's own bytes) is found beside the model file.
    let session = await createSession(imported.bytes, path.dirname(modelFile), options.threads);
    let headed: boolean;
    try {
      headed = await patternsHaveHeads(session, imported.hookNames, cfg);
    } catch (error) {
      await session.release();
      throw new LoupeError("bad-file", `${modelFile}: onnxruntime loaded the imported graph but could not run it on two tokens: ${(error as Error).message}`, modelFile);
    }
    if (!headed) {
      await session.release();
      imported = importOnnxDecoder(modelFile, cfg, { patterns: false });
      session = await createSession(imported.bytes, path.dirname(modelFile), options.threads);
    }
    const lensSession = imported.lensBytes ? await createSession(imported.lensBytes, path.dirname(modelFile), options.threads) : undefined;
    const model = new HookedModel(dir, cfg, tokenizer, session, lensSession, false, imported);
    if (options.maxMemoryBytes !== undefined) model.memoryLimit = { maxBytes: options.maxMemoryBytes, weightsBytes: fs.statSync(modelFile).size };
    return model;
  }

  /** Whether this model was imported from an existing .onnx (hooks found by structure; see hookNames). */
  get isImported(): boolean {
    return this.imported !== undefined;
  }

  /**
   * A prompt as the model reads it. Where the tokenizer's post-processor puts tokens before a text
   * (Llama's <s>, Llama 3's <|begin_of_text|>), they lead it, as Hugging Face's default
   * `tokenizer(text)` and TransformerLens's `to_tokens` (prepend_bos) do: these models were trained
   * with them and predict much worse without. Tokens a template puts after the text (an EOS) are
   * left off: a prompt is continued, not ended. GPT-2, Qwen2 and the reference model add nothing
   * before a text, so their prompts are the text's own tokens. The leading tokens have the empty
   * range [0, 0]: nothing in the text to draw.
   *
   * Fragments that continue a text (an answer such as " Mia", a count of a slice's tokens) are
   * encoded with `tokenizer.encode(text)` instead.
   */
  encode(text: string): PromptEncoding {
    const own = this.tokenizer.encode(text);
    // null: the post-processor does something no probe text could place; read the text alone.
    const leading = this.tokenizer.leadingTemplateIds() ?? [];
    if (leading.length === 0) return { ...own, lead: 0 };
    return {
      ids: [...leading, ...own.ids],
      tokens: [...leading.map((id) => this.tokenizer.idToToken(id) ?? ""), ...own.tokens],
      offsets: [...leading.map((): [number, number] => [0, 0]), ...own.offsets],
      lead: leading.length,
    };
  }

  /** Whether prompts start with the template's leading tokens (a BOS such as Llama's <s>); see encode. */
  get prependsBos(): boolean {
    return (this.tokenizer.leadingTemplateIds() ?? []).length > 0;
  }

  /** Token ids of a prompt: `encode(text).ids`, with Llama's <s> in front where its tokenizer puts one. */
  toTokens(text: string): number[] {
    return this.encode(text).ids;
  }

  toString(tokens: readonly number[]): string {
    return this.tokenizer.decode([...tokens]);
  }

  /** Logits only. */
  async run(tokens: readonly number[] | TokenBatch, options: Omit<RunOptions, "names" | "keyValues"> = {}): Promise<Tensor> {
    return (await this.forward(asBatch(tokens), [], [], options)).logits;
  }

  async runWithCache(tokens: readonly number[] | TokenBatch, options: RunOptions = {}): Promise<RunResult> {
    return this.forward(asBatch(tokens), [], this.selectHooks(options.names ?? (() => true)), options);
  }

  async runWithHooks(tokens: readonly number[] | TokenBatch, interventions: readonly Intervention[], options: RunOptions = {}): Promise<RunResult> {
    return this.forward(asBatch(tokens), interventions, this.selectHooks(options.names ?? []), options);
  }

  /** Whether this model's graph can continue from a prefix's keys and values (RunOptions.prefix). */
  get supportsPrefix(): boolean {
    return this.hasPast;
  }

  /** Whether this model's graph can start rows at a later block (RunOptions.startAt). */
  get supportsStartAt(): boolean {
    return this.hasStartAt;
  }

  /**
   * Continue each prompt. Greedy by default; `temperature` > 0 samples with a seeded generator.
   * Where the graph takes past keys and values and there are no interventions, each step runs only
   * the new token (KvCache); otherwise every step reruns the whole sequence.
   */
  async generate(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<Generation> {
    const tokens = typeof prompt === "string" ? this.toTokens(prompt) : [...prompt];
    if (tokens.length === 0) throw new LoupeError("empty-input", "Nothing to continue: the prompt is empty.");
    const maxNew = options.maxNewTokens ?? 32;
    const stopAtEos = options.stopAtEos ?? true;
    const eos = this.tokenizer.eosTokenId ?? this.cfg.eosTokenId;
    const start = tokens.length;
    const random = options.seed === undefined ? undefined : seededRandom(options.seed);
    let stopReason: Generation["stopReason"] = "max-tokens";
    // Plain generation reuses keys and values where the graph takes them; interventions rerun the whole sequence.
    const kv =
      this.hasPast && !options.interventions?.length && !options.interventionsAt
        ? new KvCache((fresh, prefix) => this.runWithCache(fresh, { names: [], prefix, keyValues: true, logitPositions: [fresh.length - 1], signal: options.signal }))
        : undefined;
    for (let step = 0; step < maxNew; step++) {
      throwIfAborted(options.signal);
      if (tokens.length >= this.cfg.nCtx) {
        stopReason = "context";
        break;
      }
      let last: Float32Array;
      if (kv) {
        last = await kv.nextLogits(tokens);
      } else {
        const stepInterventions = options.interventionsAt ? await options.interventionsAt(tokens, options.signal) : [];
        // The last position's logits only: the next token is read there.
        const { logits } = await this.forward([tokens], [...(options.interventions ?? []), ...stepInterventions], [], { signal: options.signal, logitPositions: [tokens.length - 1] });
        last = logits.data;
      }
      const next = chooseNextToken(last, options, random);
      if (stopAtEos && next === eos) {
        stopReason = "eos";
        break;
      }
      tokens.push(next);
      options.onToken?.(step);
      if (options.stop?.length) {
        const text = this.tokenizer.decodeContinuation(tokens.slice(0, start), tokens.slice(start));
        const cut = firstStop(text, options.stop);
        if (cut !== undefined) {
          return { tokens: tokens.slice(start), text: text.slice(0, cut), stopReason: "stop-string" };
        }
      }
    }
    const generated = tokens.slice(start);
    return { tokens: generated, text: this.tokenizer.decodeContinuation(tokens.slice(0, start), generated), stopReason };
  }

  /**
   * The logit lens: residual-stream vectors [n, d_model] through ln_final and the unembedding.
   * Returns each row's top-k tokens, the log-probs of the row's target tokens (the same number for
   * every row), and the entropy (nats). Rows go through in chunks whose [rows, d_vocab]
   * temporaries fit the budget, each reduced in the graph: memory stays bounded whatever n is.
   */
  async lens(resid: Float32Array, targets: readonly (readonly number[])[], k: number, options: LensOptions = {}): Promise<LensResult> {
    const D = this.cfg.dModel;
    const n = targets.length;
    const m = targets[0]?.length ?? 0;
    if (n === 0 || m === 0 || targets.some((t) => t.length !== m)) throw new LoupeError("bad-shape", "lens: give every row the same, non-zero number of targets.");
    if (resid.length !== n * D) throw new LoupeError("bad-shape", `lens: ${resid.length} values are not ${n} vectors of d_model ${D}.`);
    for (const row of targets) for (const t of row) if (!Number.isInteger(t) || t < 0 || t >= this.cfg.dVocab) throw new LoupeError("bad-argument", `lens: target ${t} is outside the vocabulary.`);
    const kk = Math.max(1, Math.min(Math.floor(k), this.cfg.dVocab));
    const session = this.lensSession;
    if (!session) {
      throw new LoupeError("bad-argument", `The logit lens is not available for ${this.imported?.modelFile ?? this.folder}: it is an imported .onnx whose final norm and unembedding read more than the residual stream, so they cannot run alone. Load the model's safetensors folder for the lens.`);
    }
    const rows = lensChunkRows(this.cfg.dVocab, options.budgetBytes ?? this.lensBudgetBytes());
    const result = { k: kk, m, topIds: new Int32Array(n * kk), topLogprobs: new Float32Array(n * kk), targetLogprob: new Float32Array(n * m), entropy: new Float32Array(n) };
    const kTensor = new ort.Tensor("int64", BigInt64Array.of(BigInt(kk)), [1]);
    for (let from = 0; from < n; from += rows) {
      throwIfAborted(options.signal);
      const to = Math.min(n, from + rows);
      const out = await session.run({
        [LENS_IO.resid]: new ort.Tensor("float32", resid.subarray(from * D, to * D), [to - from, D]),
        [LENS_IO.target]: new ort.Tensor("int64", BigInt64Array.from(targets.slice(from, to).flat(), (t) => BigInt(t)), [to - from, m]),
        [LENS_IO.k]: kTensor,
      });
      result.topIds.set(Int32Array.from(out[LENS_IO.topIds].data as BigInt64Array, Number), from * kk);
      result.topLogprobs.set(out[LENS_IO.topLogprobs].data as Float32Array, from * kk);
      result.targetLogprob.set(out[LENS_IO.targetLogprob].data as Float32Array, from * m);
      result.entropy.set(out[LENS_IO.entropy].data as Float32Array, from);
    }
    return result;
  }

  /** The lens's per-call budget: the default, or less when the memory limit leaves less room beside the weights. */
  private lensBudgetBytes(): number {
    if (!this.memoryLimit) return DEFAULT_LENS_BUDGET_BYTES;
    const spare = this.memoryLimit.maxBytes - this.memoryLimit.weightsBytes;
    return Math.max(0, Math.min(DEFAULT_LENS_BUDGET_BYTES, spare / 4));
  }

  /** Throws before a forward call whose activations with the weights would pass the memory limit (LoadOptions.maxMemoryBytes). */
  checkRunMemory(shape: RunShape, what?: string): void {
    if (this.memoryLimit) checkRunFits(this.cfg, shape, this.memoryLimit, what);
  }

  /** Whether the memory limit leaves room for a forward call of this shape. */
  runFits(shape: RunShape): boolean {
    return !this.memoryLimit || this.memoryLimit.weightsBytes + estimateRunBytes(this.cfg, shape) <= this.memoryLimit.maxBytes;
  }

  async dispose(): Promise<void> {
    await this.session.release();
    await this.lensSession?.release();
  }

  private selectHooks(names: readonly string[] | ((name: string) => boolean)): string[] {
    if (typeof names === "function") return this.hookNames.filter(names);
    for (const name of names) this.checkHook(name);
    return [...names];
  }

  private checkHook(name: string): void {
    if (this.hookSet.has(name)) return;
    const missing = this.imported?.unavailable.get(name);
    if (missing) {
      throw new LoupeError("bad-argument", `Hook "${name}" is not available in the imported model ${this.imported?.modelFile}: ${missing}. Its hooks are: ${this.hookNames.join(", ")}.`, this.imported?.modelFile);
    }
    throw new LoupeError("bad-argument", `Unknown hook "${name}". This model's hooks are TransformerLens names such as blocks.0.hook_resid_post (0..${this.cfg.nLayers - 1}).`);
  }

  private async forward(batch: TokenBatch, interventions: readonly Intervention[], fetch: readonly string[], options: Omit<RunOptions, "names">): Promise<RunResult> {
    const signal = options.signal;
    throwIfAborted(signal);
    if (batch.length === 0 || batch.some((row) => row.length === 0)) {
      throw new LoupeError("empty-input", "Nothing to run: the text is empty. Select some text first.");
    }
    const lengths = batch.map((row) => row.length);
    const T = Math.max(...lengths);
    const B = batch.length;
    const prefix = options.prefix;
    const P = prefix ? this.checkPrefix(prefix, B, interventions) : 0;
    if (P + T > this.cfg.nCtx) {
      throw new LoupeError(
        "context-overflow",
        `The text is ${P + T} tokens long but this model's context window is ${this.cfg.nCtx} tokens. Select a shorter passage.`,
      );
    }
    // Rows present at each block: those started at or before it.
    const starts = options.startAt ? this.checkStartAt(options.startAt, B, T) : undefined;
    const B0 = starts ? starts.filter((l) => l === 0).length : B;
    const rowsAt = (hook: string): number => {
      const layer = hookLayer(hook);
      if (!starts) return B;
      if (layer === undefined) return hook === "hook_embed" || hook === "hook_pos_embed" ? B0 : B;
      return starts.filter((l) => l <= layer).length;
    };
    const logitPositions = options.logitPositions;
    const logitRows = options.logits === false && this.hasFetchMask ? 0 : logitPositions?.length;
    this.checkRunMemory({ batch: B, positions: T, prefix: P, hooks: this.hasFetchMask ? fetch : this.hookNames, logitPositions: logitRows, keyValues: options.keyValues || (!this.hasFetchMask && this.hasPast) });
    for (const p of logitPositions ?? []) {
      if (!Number.isInteger(p) || p < 0 || p >= T) throw new LoupeError("bad-argument", `Logit position ${p} is outside the tokens run (0..${T - 1}).`);
    }
    const pad = this.tokenizer.eosTokenId ?? 0;
    const ids = new BigInt64Array(B * T);
    const positions = new BigInt64Array(B * T);
    // The mask covers prefix (all real) and tokens.
    const mask = new Float32Array(B * (P + T));
    batch.forEach((row, b) => {
      mask.fill(1, b * (P + T), b * (P + T) + P);
      for (let t = 0; t < T; t++) {
        const real = t < row.length;
        const id = real ? row[t] : pad;
        if (!Number.isInteger(id) || id < 0 || id >= this.cfg.dVocab) {
          throw new LoupeError("bad-argument", `Token id ${id} is outside the vocabulary (0..${this.cfg.dVocab - 1}).`);
        }
        ids[b * T + t] = BigInt(id);
        positions[b * T + t] = BigInt(P + t);
        mask[b * (P + T) + P + t] = real ? 1 : 0;
      }
    });
    const feeds: Record<string, ort.Tensor> = {
      ...this.idleInterventions,
      [GRAPH_INPUTS.ids]: new ort.Tensor("int64", ids.subarray(0, B0 * T), [B0, T]),
      [GRAPH_INPUTS.positions]: new ort.Tensor("int64", positions.subarray(0, B0 * T), [B0, T]),
      [GRAPH_INPUTS.mask]: new ort.Tensor("float32", mask, [B, P + T]),
    };
    if (this.hasStartAt) {
      const D = this.cfg.dModel;
      let offset = 0;
      for (let L = 1; L < this.cfg.nLayers; L++) {
        const n = starts ? starts.filter((l) => l === L).length : 0;
        const data = options.startAt ? options.startAt.resid.data.subarray(offset * T * D, (offset + n) * T * D) : new Float32Array(0);
        feeds[residInput(L)] = new ort.Tensor("float32", data, [n, T, D]);
        offset += n;
      }
    }
    if (this.hasLogitPositions) {
      // One position asked for runs twice: with a single query the last block's attention matmul
      // takes another path in onnxruntime (a vector product) whose rounding differs from the full run's.
      const chosen = logitPositions ? (logitPositions.length === 1 ? [logitPositions[0], logitPositions[0]] : logitPositions) : Array.from({ length: T }, (_, t) => t);
      feeds[LOGIT_POSITIONS] = new ort.Tensor("int64", BigInt64Array.from(chosen, BigInt), [chosen.length]);
    }
    if (prefix) {
      prefix.keys.forEach((k, L) => (feeds[PAST_IO.pastKey(L)] = new ort.Tensor("float32", k.data, k.dims)));
      prefix.values.forEach((v, L) => (feeds[PAST_IO.pastValue(L)] = new ort.Tensor("float32", v.data, v.dims)));
    }
    if (starts) {
      for (const iv of interventions) {
        const missing = iv.batch?.find((b) => b >= rowsAt(iv.hook));
        if (missing !== undefined) throw new LoupeError("bad-argument", `Intervention at ${iv.hook}: batch row ${missing} starts after that hook.`);
      }
    }
    for (const iv of interventions) this.checkHook(iv.hook);
    const narrowed = logitPositions && this.hasLogitPositions ? (logitPositions.length === 1 ? [logitPositions[0], logitPositions[0]] : logitPositions) : undefined;
    for (const [hook, compiled] of compileInterventions(this.cfg, this.hookSet, interventions, B, T)) {
      // The last block's later hooks hold only the logit positions: pick those.
      const c = narrowed && this.atLogitPositions(hook) ? selectPositions(compiled, hookLayout(hook) === "pattern" ? 2 : 1, narrowed) : compiled;
      // Rows started after this hook's block are not in its activation: drop them (rows lead).
      const rows = rowsAt(hook);
      const size = c.gain.length / B;
      const dims = [rows, ...c.dims.slice(1)];
      feeds[gainInput(hook)] = new ort.Tensor("float32", rows === B ? c.gain : c.gain.subarray(0, rows * size), dims);
      feeds[writeInput(hook)] = new ort.Tensor("float32", rows === B ? c.write : c.write.subarray(0, rows * size), dims);
    }
    const kvNames: string[] = [];
    if (options.keyValues) {
      if (!this.hasPast) throw new LoupeError("bad-argument", "This model's graph does not return keys and values.");
      // The cache holds one slot per key/value head: per-head changes within a group cannot be kept.
      const split = cacheHeads(this.cfg) < this.cfg.nHeads && interventions.find((iv) => /\.attn\.hook_[kv]$/.test(iv.hook));
      if (split) throw new LoupeError("bad-argument", `Intervention at ${split.hook}: this model shares each key/value head among ${this.cfg.nHeads / cacheHeads(this.cfg)} query heads, so its key/value cache cannot hold the change; run without returning keys and values.`);
      for (let L = 0; L < this.cfg.nLayers; L++) kvNames.push(PAST_IO.presentKey(L), PAST_IO.presentValue(L));
    }
    if (this.hasFetchMask) {
      const wanted = new Set([...fetch, ...kvNames]);
      if (options.logits !== false) wanted.add(GRAPH_INPUTS.logits);
      const mask = Uint8Array.from([...fetchedOutputs(this.cfg), GRAPH_INPUTS.logits], (name) => (wanted.has(name) ? 1 : 0));
      feeds[FETCH_HOOKS] = new ort.Tensor("bool", mask, [mask.length]);
    }
    const withLogits = options.logits !== false;
    const outputs = await this.session.run(feeds, [...(withLogits ? [GRAPH_INPUTS.logits] : []), ...fetch, ...kvNames]);
    throwIfAborted(signal);
    const cache = new Map<string, Tensor>();
    // Drop the doubled single position (see above).
    const single = narrowed && narrowed.length !== logitPositions?.length;
    for (const name of fetch) {
      const t = fromOrt(outputs[name]);
      cache.set(name, single && this.atLogitPositions(name) ? firstPosition(t, hookLayout(name) === "pattern" ? 2 : 1) : t);
    }
    let logits = withLogits ? fromOrt(outputs[GRAPH_INPUTS.logits]) : tensor(new Float32Array(0), [B, 0, this.cfg.dVocab]);
    if (single && withLogits) logits = firstPosition(logits, 1);
    // A graph without a logit_positions input computed them all: pick the rows asked for.
    if (logitPositions && !this.hasLogitPositions && withLogits) logits = pickPositions(logits, logitPositions);
    const keyValues = options.keyValues
      ? {
          keys: Array.from({ length: this.cfg.nLayers }, (_, L) => fromOrt(outputs[PAST_IO.presentKey(L)])),
          values: Array.from({ length: this.cfg.nLayers }, (_, L) => fromOrt(outputs[PAST_IO.presentValue(L)])),
        }
      : undefined;
    return { logits, cache: new ActivationCache(cache), lengths, keyValues };
  }

  private checkStartAt(startAt: StartAt, batch: number, seq: number): readonly number[] {
    if (!this.hasStartAt) throw new LoupeError("bad-argument", "This model's graph cannot start rows at a later block; run them from their tokens.");
    const { layers, resid } = startAt;
    const n = this.cfg.nLayers;
    if (layers.length !== batch) throw new LoupeError("bad-shape", `startAt gives first blocks for ${layers.length} rows; the batch has ${batch}.`);
    layers.forEach((l, b) => {
      if (!Number.isInteger(l) || l < 0 || l >= n) throw new LoupeError("bad-argument", `startAt: block ${l} is not one of this model's blocks (0..${n - 1}).`);
      if (b > 0 && l < layers[b - 1]) throw new LoupeError("bad-argument", "startAt: order the rows by their first block (rows that start later come after).");
    });
    const later = layers.filter((l) => l > 0).length;
    const expected = [later, seq, this.cfg.dModel];
    if (resid.dims.length !== 3 || resid.dims.some((d, i) => d !== expected[i])) {
      throw new LoupeError("bad-shape", `startAt: resid has shape [${resid.dims.join(", ")}]; expected [${expected.join(", ")}].`);
    }
    return layers;
  }

  /** Whether a hook is computed at the logit positions only when they are given (RunOptions.logitPositions). */
  atLogitPositions(hook: string): boolean {
    if (hook === "ln_final.hook_normalized") return true;
    const last = this.cfg.nLayers - 1;
    return hookLayer(hook) === last && !/\.(hook_resid_pre|attn\.hook_[qkv])$/.test(hook);
  }

  /** The prefix's token count, after checking that it fits this model and this run. */
  private checkPrefix(prefix: KeyValues, batch: number, interventions: readonly Intervention[]): number {
    if (!this.hasPast) throw new LoupeError("bad-argument", "This model's graph cannot continue from a prefix; run the whole sequence.");
    const { nLayers, dHead } = this.cfg;
    const nHeads = cacheHeads(this.cfg);
    const all = [...prefix.keys, ...prefix.values];
    if (prefix.keys.length !== nLayers || prefix.values.length !== nLayers) {
      throw new LoupeError("bad-shape", `The prefix has keys and values for ${prefix.keys.length} and ${prefix.values.length} layers; this model has ${nLayers}.`);
    }
    const P = all[0].dims[2];
    for (const t of all) {
      const [b, h, p, d] = t.dims;
      if (t.dims.length !== 4 || (b !== 1 && b !== batch) || h !== nHeads || p !== P || d !== dHead) {
        throw new LoupeError("bad-shape", `A prefix key/value tensor has shape [${t.dims.join(", ")}]; expected [1 or ${batch}, ${nHeads}, ${P}, ${dHead}].`);
      }
    }
    const pattern = interventions.find((iv) => hookLayout(iv.hook) === "pattern");
    if (P > 0 && pattern) throw new LoupeError("bad-argument", `Intervention at ${pattern.hook}: attention patterns and scores cannot be changed in a run that continues from a prefix.`);
    return P;
  }
}

/**
 * The outputs a built graph returns only when fetched (FETCH_HOOKS, in this order, then the
 * logits): every hook, then every layer's keys and values.
 */
function fetchedOutputs(cfg: ModelConfig): string[] {
  const kv = Array.from({ length: cfg.nLayers }, (_, L) => [PAST_IO.presentKey(L), PAST_IO.presentValue(L)]).flat();
  return [...hookNamesFor(cfg), ...kv];
}

/** Heads per layer in the key/value cache: one per key/value head (a Llama graph shares them among query heads). */
export function cacheHeads(cfg: ModelConfig): number {
  return cfg.architecture === "llama" ? cfg.nKvHeads : cfg.nHeads;
}

/**
 * Whether an imported graph's attention patterns are [batch, head, query, key], checked on two
 * tokens: the Softmax was chosen by structure, and its layout is known only once it runs.
 */
async function patternsHaveHeads(session: ort.InferenceSession, hookNames: readonly string[], cfg: ModelConfig): Promise<boolean> {
  const patterns = hookNames.filter((n) => hookLayout(n) === "pattern");
  if (patterns.length === 0) return true;
  const zero = new ort.Tensor("float32", new Float32Array(1), [1]);
  const feeds: Record<string, ort.Tensor> = {
    [GRAPH_INPUTS.ids]: new ort.Tensor("int64", new BigInt64Array(2), [1, 2]),
    [GRAPH_INPUTS.positions]: new ort.Tensor("int64", BigInt64Array.of(0n, 1n), [1, 2]),
    [GRAPH_INPUTS.mask]: new ort.Tensor("float32", Float32Array.of(1, 1), [1, 2]),
  };
  for (const name of hookNames) feeds[gainInput(name)] = feeds[writeInput(name)] = zero;
  const out = await session.run(feeds, patterns);
  return patterns.every((n) => out[n].dims.join() === [1, cfg.nHeads, 2, 2].join());
}

async function createSession(bytes: Uint8Array, weightsFolder: string, threads?: number): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: "all",
    intraOpNumThreads: threads ?? Math.max(1, os.availableParallelism()),
    interOpNumThreads: 1,
    executionMode: "sequential",
    logSeverityLevel: 3,
    extra: { session: { model_external_initializers_file_folder_path: weightsFolder } },
  };
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (error) {
    throw new LoupeError("bad-file", `onnxruntime could not load the model built from ${weightsFolder}: ${(error as Error).message}`, weightsFolder);
  }
}

function fromOrt(t: ort.Tensor | undefined): Tensor {
  if (!t || t.type !== "float32") throw new Error("internal: expected a float32 output from onnxruntime");
  return tensor(t.data as Float32Array, t.dims.map(Number));
}

/** Index 0 of one axis, kept as an axis of size 1. */
function firstPosition(t: Tensor, axis: number): Tensor {
  const outer = t.dims.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = t.dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) out.set(t.data.subarray(o * t.dims[axis] * inner, (o * t.dims[axis] + 1) * inner), o * inner);
  const dims = [...t.dims];
  dims[axis] = 1;
  return tensor(out, dims);
}

/** Compiled (gain, write) at the given indices of one axis. */
function selectPositions(c: CompiledHook, axis: number, positions: readonly number[]): CompiledHook {
  const outer = c.dims.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = c.dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  const n = c.dims[axis];
  const gain = new Float32Array(outer * positions.length * inner);
  const write = new Float32Array(gain.length);
  for (let o = 0; o < outer; o++) {
    positions.forEach((p, k) => {
      const from = (o * n + p) * inner;
      const to = (o * positions.length + k) * inner;
      gain.set(c.gain.subarray(from, from + inner), to);
      write.set(c.write.subarray(from, from + inner), to);
    });
  }
  const dims = [...c.dims];
  dims[axis] = positions.length;
  return { gain, write, dims };
}

/** Rows [batch, k, vocab] of the given positions from full logits [batch, pos, vocab]. */
function pickPositions(logits: Tensor, positions: readonly number[]): Tensor {
  const [B, T, V] = logits.dims;
  const out = new Float32Array(B * positions.length * V);
  for (let b = 0; b < B; b++) positions.forEach((p, k) => out.set(logits.data.subarray((b * T + p) * V, (b * T + p + 1) * V), (b * positions.length + k) * V));
  return tensor(out, [B, positions.length, V]);
}

function asBatch(tokens: readonly number[] | TokenBatch): TokenBatch {
  return tokens.length > 0 && Array.isArray(tokens[0]) ? (tokens as TokenBatch) : [tokens as readonly number[]];
}

function firstStop(text: string, stops: readonly string[]): number | undefined {
  let cut: number | undefined;
  for (const s of stops) {
    const at = s ? text.indexOf(s) : -1;
    if (at >= 0 && (cut === undefined || at < cut)) cut = at;
  }
  return cut;
}
