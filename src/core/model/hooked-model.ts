/**
 * HookedModel: a transformer in onnxruntime with every TransformerLens hook readable and writable.
 *
 *   const model = await HookedModel.load(folder);
 *   const { logits, cache } = await model.runWithCache(model.toTokens("When Mia and Leo…"), { names: ["blocks.0.hook_resid_post"] });
 *   const patched = await model.runWithHooks(tokens, [{ hook: "blocks.1.hook_resid_pre", kind: "replace", source, positions: [4] }]);
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as ort from "onnxruntime-node";
import { LoupeError, throwIfAborted } from "../errors";
import { seededRandom } from "../tensor/random";
import { tensor, type Tensor } from "../tensor/tensor";
import type { Encoding, Tokenizer } from "../tokenizer";
import { ActivationCache } from "./activation-cache";
import type { ModelConfig } from "./config";
import { chooseNextToken, type SamplingOptions } from "./sampling";
import { buildFetchGatedDecodeGraph, buildFetchGatedModelGraph, buildLensGraph, fetchedOutputs, graphKeyParts } from "./build-graph";
import { gainInput, GRAPH_IO, LENS_IO, LOGIT_POSITIONS, PAST_IO, POSITION_OFFSETS, residInput, writeInput } from "./hook-point";
import { FETCH_HOOKS, gateHookOutputs } from "./fetched-hooks";
import { cachedGraph, defaultCacheDir, graphKey } from "./graph-cache";
import type { GraphOptions } from "./graph-options";
import { hookDims, hookLayout, hookNamesFor, isKeyValueHook, narrowedByLogitPositions, positionAxis, type HookDims } from "./hooks";
import { cacheHeads, KvCache, type KeyValues } from "./kv-cache";
import { stopTokenIds } from "./stop-tokens";
import { compileInterventions, type Intervention } from "./interventions";
import { resolveModelFolder } from "../hub/model-reference";
import { checkRunFits, estimateModelMemory, estimateRunBytes, lensChunkRows, type RunShape } from "./memory-limit";
import { openModelFolder } from "./model-folder";
import { findOnnxModelFile, importOnnxDecoder, importOnnxFolder, type ImportedGraph } from "./onnx-import";
import { emptySlots, fedLogitPositions, firstPosition, leadingEmptySlots, padBatch, pickPositions, rowsAtHook, selectPositions, undoubled, type PaddedBatch, type TokenBatch } from "./run-layout";
import { runFailure } from "./run-failure";
import type { SafetensorsIndex } from "./safetensors";
import { checkIdsInVocabulary } from "./tokenizer-check";

export { cacheHeads, prefixKeyValues, type KeyValues } from "./kv-cache";
export type { TokenBatch } from "./run-layout";

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
   * Grouped-query models (most Llama-family ones): attn.hook_k and attn.hook_v get one slot per
   * query head, each key/value head repeated for its group, instead of one per key/value head
   * (TransformerLens's ungroup_grouped_query_attention; off by default, as there). Interventions
   * there then address query heads, and a run that changes one head of a group cannot return the
   * key/value cache. No effect on other models.
   */
  readonly ungroupGroupedQueryAttention?: boolean;
  /**
   * Refuse, before it runs, a forward call whose activations with the weights would pass this many
   * bytes (loupe.maxModelMemoryMB); the logit lens is chunked to stay well within it. No limit when undefined.
   */
  readonly maxMemoryBytes?: number;
  /**
   * Run generation steps and other runs that read and change no hook on a second graph without hook
   * points (default true; see runsOnDecodeGraph). false: every run uses the hooked graph.
   */
  readonly decodeGraph?: boolean;
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
  /**
   * With a prefix of the run's batch: how many of each row's prefix slots, at the start, hold no
   * token, so rows whose prefixes differ in length run together (aligned on the right, as
   * stackKeyValues lays them out). Those slots are masked out, and each row's positions count only
   * its real tokens. Needs supportsPrefixPadding; not with startAt.
   */
  readonly prefixPadding?: readonly number[];
  /**
   * With a prefix: which of each row's prefix slots hold a token ([batch, prefix tokens], 1 = a
   * token), the others masked out and not counted in the row's positions. Rows that share the
   * start of one prompt then run from its batch-1 prefix, each seeing its first n tokens, without
   * a copy per row; and a batch's returned keys and values, empty slots and all, are the next
   * call's prefix as they are. Needs supportsPrefixSlots; not with prefixPadding or startAt.
   */
  readonly prefixSlots?: Uint8Array;
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


export interface RunResult {
  /** [batch, pos, d_vocab], or [batch, k, d_vocab] for the `logitPositions` asked for. */
  readonly logits: Tensor;
  readonly cache: ActivationCache;
  /** Real (unpadded) length of each sequence in the batch. */
  readonly lengths: readonly number[];
  /** With `keyValues: true`: the keys and values of prefix and tokens. */
  readonly keyValues?: KeyValues;
}

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens?: number;
  /** Stop when the continuation contains one of these strings (the string is cut off). */
  readonly stop?: readonly string[];
  /**
   * Stop at an end-of-sequence token (default true): generation_config.json's eos_token_id (all of
   * them), config.json's, the tokenizer's, and at a BOS the model emits (stop-tokens.ts).
   */
  readonly stopAtEos?: boolean;
  readonly interventions?: readonly Intervention[];
  /** A hook rewritten from its own activation at every position (SAE feature steering); see HookRewrite. */
  readonly rewrite?: HookRewrite;
  readonly signal?: AbortSignal;
  /** Called after each new token, with the logits it was chosen from. */
  readonly onToken?: (step: number, logits: Float32Array) => void;
}

/**
 * An edit of one hook that depends on the hook's own activation, position by position: `rewrite`
 * gets the activation at the positions a run computes, [1, n, ...] (read in a run with the other
 * interventions and without this one), and returns its replacement there. A hook is read before
 * it is written, so its value at a position never depends on the rewrite at earlier ones: a
 * generation with a key/value cache reads it at each new token, then runs that token again with
 * the replacement, and continues exactly as a rerun of the whole sequence would.
 */
export interface HookRewrite {
  readonly hook: string;
  readonly rewrite: (activation: Tensor, signal?: AbortSignal) => Promise<Tensor> | Tensor;
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
  /** The sizes that set each hook's shape (hooks.ts hookShape): attn.hook_k|v's head count included. */
  readonly hookDims: HookDims;
  private readonly hookSet: ReadonlySet<string>;
  private readonly idleFeeds: Record<string, ort.Tensor>;
  /** The idle feeds of the decode-only graph: those above less the hook points' and startAt's inputs. */
  private readonly idleDecodeFeeds: Record<string, ort.Tensor> = {};
  /** Whether the graph takes past keys/values (RunOptions.prefix) and logit positions. */
  private readonly hasPast: boolean;
  private readonly hasLogitPositions: boolean;
  private readonly hasStartAt: boolean;
  /** Whether rows' positions can start after empty prefix slots (RunOptions.prefixPadding). */
  private readonly hasPrefixPadding: boolean;
  /** Whether hook outputs are computed only when fetched (FETCH_HOOKS); otherwise a run holds them all. */
  private readonly hasFetchMask: boolean;
  /** The outputs FETCH_HOOKS gates, in its order (the logits follow them). */
  private readonly gatedOutputs: readonly string[];
  /** The memory limit a run is checked against, with the weights' share of it. */
  private memoryLimit?: { readonly maxBytes: number; readonly weightsBytes: number };

  /** The tokens that end a generation (read once, at the first generate). */
  private stopIds: Set<number> | undefined;

  private constructor(
    readonly folder: string,
    readonly cfg: ModelConfig,
    readonly tokenizer: Tokenizer,
    private readonly session: ort.InferenceSession,
    private readonly lensSession: LazySession | undefined,
    /** The same model without hook points (GraphOptions.decodeOnly), for runs that read and change no hook; none for imported graphs. */
    private readonly decodeSession: LazySession | undefined,
    readonly graphFromCache: boolean,
    graphOptions: GraphOptions,
    /** For an imported .onnx: the hooks its graph provides, and why the others are missing. */
    private readonly imported?: Pick<ImportedGraph, "hookNames" | "unavailable" | "modelFile">,
  ) {
    this.hookNames = imported?.hookNames ?? hookNamesFor(cfg);
    this.hookDims = hookDims(cfg, graphOptions);
    this.hookSet = new Set(this.hookNames);
    // What every run feeds unless it says otherwise. One shared zero broadcasts to every hook: the identity intervention.
    const zero = new ort.Tensor("float32", new Float32Array(1), [1]);
    this.idleFeeds = {};
    for (const name of this.hookNames) {
      this.idleFeeds[gainInput(name)] = zero;
      this.idleFeeds[writeInput(name)] = zero;
    }
    this.hasPast = session.inputNames.includes(PAST_IO.pastKey(0));
    this.hasLogitPositions = session.inputNames.includes(LOGIT_POSITIONS);
    this.hasStartAt = cfg.nLayers > 1 && session.inputNames.includes(residInput(1));
    this.hasFetchMask = session.inputNames.includes(FETCH_HOOKS);
    // Rotary graphs take per-row offsets; a built GPT-2 graph reads per-row position_ids.
    const hasOffsets = session.inputNames.includes(POSITION_OFFSETS);
    this.hasPrefixPadding = this.hasPast && (hasOffsets || (cfg.architecture === "gpt2" && !imported));
    if (hasOffsets) this.idleFeeds[POSITION_OFFSETS] = this.idleDecodeFeeds[POSITION_OFFSETS] = new ort.Tensor("int64", new BigInt64Array(1), [1]);
    this.gatedOutputs = imported ? imported.hookNames : fetchedOutputs(cfg);

    if (this.hasPast) {
      const empty = new ort.Tensor("float32", new Float32Array(0), [1, cacheHeads(cfg), 0, cfg.dHead]);
      for (let L = 0; L < cfg.nLayers; L++) {
        this.idleFeeds[PAST_IO.pastKey(L)] = this.idleDecodeFeeds[PAST_IO.pastKey(L)] = empty;
        this.idleFeeds[PAST_IO.pastValue(L)] = this.idleDecodeFeeds[PAST_IO.pastValue(L)] = empty;
      }
    }
  }

  /**
   * Load a Hugging Face GPT-2- or Llama-family folder: config.json, model.safetensors (or its
   * shards), tokenizer.json; or a hub repo id (`ORG/NAME[@REV]`) already in the Hugging Face cache.
   * A folder with a decoder .onnx (model.onnx or onnx/model.onnx) instead of model.safetensors is
   * imported (onnx-import.ts): its residual stream becomes hooks; hookNames lists what it provides.
   */
  static async load(reference: string, options: LoadOptions = {}): Promise<HookedModel> {
    const folder = resolveModelFolder(reference);
    // A folder with a decoder .onnx and no model.safetensors: import the graph as it is.
    const onnxFile = fs.existsSync(folder) && fs.statSync(folder).isDirectory() ? findOnnxModelFile(folder) : undefined;
    if (onnxFile) return HookedModel.loadOnnx(folder, onnxFile, options);
    const { dir, cfg, weights, tokenizer } = openModelFolder(folder);
    const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir ?? undefined;
    const graphOptions: GraphOptions = { compactWeights: options.compactWeights ?? false, ungroupGroupedQueryAttention: options.ungroupGroupedQueryAttention ?? false };
    // A graph depends on the builder, the options that change it, the config and the weights (their files' names and header).
    const key = (part: "model" | "decode" | "lens", ...extra: string[]) => graphKey([...graphKeyParts(cfg, part, graphOptions), ...extra, JSON.stringify(cfg), weightLocations(weights), weights.headerText]);
    // Hooks, keys and values and logits are computed or returned only when fetched (fetched-hooks.ts): a run holds only what it returns.
    const graph = cachedGraph(cacheDir, key("model", FETCH_HOOKS), () => buildFetchGatedModelGraph(cfg, weights, graphOptions));
    const session = await createSession(graph.bytes, weights.dataDir, options.threads);
    const lensSession = new LazySession(() => createSession(cachedGraph(cacheDir, key("lens"), () => buildLensGraph(cfg, weights, graphOptions)).bytes, weights.dataDir, options.threads));
    const decodeSession = options.decodeGraph === false ? undefined : new LazySession(() => createSession(cachedGraph(cacheDir, key("decode", FETCH_HOOKS), () => buildFetchGatedDecodeGraph(cfg, weights, graphOptions)).bytes, weights.dataDir, options.threads));
    const model = new HookedModel(dir, cfg, tokenizer, session, lensSession, decodeSession, graph.fromCache, graphOptions);
    if (options.maxMemoryBytes !== undefined) model.memoryLimit = { maxBytes: options.maxMemoryBytes, weightsBytes: estimateModelMemory(dir, graphOptions.compactWeights).estimatedBytes };
    return model;
  }

  private static async loadOnnx(dir: string, modelFile: string, options: LoadOptions): Promise<HookedModel> {
    const opened = importOnnxFolder(dir, modelFile);
    const { cfg, tokenizer } = opened;
    let imported = opened.imported;
    // External data (a side file, or the .onnx's own bytes) is found beside the model file.
    // Hooks and logits behind the fetch mask, as in a built graph: a run holds only what it returns.
    let session = await createSession(gateImportedOutputs(imported), imported.dataDir, options.threads);
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
      session = await createSession(gateImportedOutputs(imported), imported.dataDir, options.threads);
    }
    const lensBytes = imported.lensBytes;
    const lensSession = lensBytes ? new LazySession(() => createSession(lensBytes, imported.dataDir, options.threads)) : undefined;
    const model = new HookedModel(dir, cfg, tokenizer, session, lensSession, undefined, false, {}, imported);
    if (options.maxMemoryBytes !== undefined) model.memoryLimit = { maxBytes: options.maxMemoryBytes, weightsBytes: fs.statSync(modelFile).size };
    return model;
  }

  /** What a run failure is blamed on: the imported .onnx, or the folder Loupe built the graph from. */
  private get modelFile(): string {
    return this.imported?.modelFile ?? this.folder;
  }

  /** Whether a run computes and holds only the hooks and logits it returns (fetched-hooks.ts), not every output of the graph. */
  get fetchesOnlyRequested(): boolean {
    return this.hasFetchMask;
  }

  /** Whether the decode-only graph (runsOnDecodeGraph) has been loaded: it is created at the first run that can use it. */
  get decodeGraphLoaded(): boolean {
    return this.decodeSession?.created ?? false;
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
   * range [0, 0]: nothing in the text to draw. A text that begins with them itself (a chat rendered
   * by its template) is read as written, as apply_chat_template's tokens are.
   *
   * Fragments that continue a text (an answer such as " Mia", a count of a slice's tokens) are
   * encoded with `tokenizer.encode(text)` instead.
   */
  encode(text: string): PromptEncoding {
    const own = this.tokenizer.encode(text);
    checkIdsInVocabulary(text, own, this.cfg.dVocab, this.tokenizer.source);
    // null: the post-processor does something no probe text could place; read the text alone.
    const leading = this.tokenizer.leadingTemplateIds() ?? [];
    // A text that already starts with them (a rendered chat template writes its own <s>) gets no second copy.
    const written = leading.every((id, i) => own.ids[i] === id);
    if (leading.length === 0 || written) return { ...own, lead: 0 };
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

  /** Whether rows with prefixes of different lengths can run together (RunOptions.prefixPadding). */
  get supportsPrefixPadding(): boolean {
    return this.hasPrefixPadding;
  }

  /**
   * Whether rows can see any of their prefix's slots (RunOptions.prefixSlots): as prefixPadding,
   * and no sliding-window layer, whose window counts slots, not tokens.
   */
  get supportsPrefixSlots(): boolean {
    return this.hasPrefixPadding && (this.cfg.architecture !== "llama" || this.cfg.layerWindows.every((w) => w === undefined));
  }

  /** Whether this model's graph can start rows at a later block (RunOptions.startAt). */
  get supportsStartAt(): boolean {
    return this.hasStartAt;
  }

  /**
   * Whether a run of new tokens after a key/value prefix applies `iv` as a rerun of the whole
   * sequence would: it acts at every position alike (no positions, no replacement tensor laid out
   * over the sequence), not on attention patterns (which span the prefix), and the cache can keep
   * its effect (keyValueOutputs).
   */
  private actsOnNewTokens(iv: Intervention): boolean {
    if (iv.positions !== undefined || iv.kind === "replace" || hookLayout(iv.hook) === "pattern") return false;
    return !isKeyValueHook(iv.hook) || this.hookDims.keyValueHeads === cacheHeads(this.cfg);
  }

  /**
   * Continue each prompt. Greedy by default; `temperature` > 0 samples with a seeded generator.
   * Where the graph takes past keys and values, each step runs only the new token (KvCache), with
   * the interventions and the rewrite applied to it: they act at every position, so the earlier
   * tokens' keys and values already hold their effect. Interventions at chosen positions, or that
   * the cache cannot carry (replacements, attention patterns), rerun the whole sequence each step.
   */
  async generate(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<Generation> {
    const tokens = typeof prompt === "string" ? this.toTokens(prompt) : [...prompt];
    if (tokens.length === 0) throw new LoupeError("empty-input", "Nothing to continue: the prompt is empty.");
    const maxNew = options.maxNewTokens ?? 32;
    const stopAtEos = options.stopAtEos ?? true;
    this.stopIds ??= stopTokenIds(this.folder, this.tokenizer);
    const stops = this.stopIds;
    const start = tokens.length;
    const random = options.seed === undefined ? undefined : seededRandom(options.seed);
    let stopReason: Generation["stopReason"] = "max-tokens";
    const { signal, rewrite } = options;
    const fixed = options.interventions ?? [];
    if (rewrite) this.checkHook(rewrite.hook);
    // The interventions of a run of `fresh` tokens: the fixed ones, and the rewrite read from a first run of the same tokens.
    const interventionsFor = async (fresh: readonly number[], prefix?: KeyValues): Promise<Intervention[]> => {
      if (!rewrite) return [...fixed];
      const { cache } = await this.forward([fresh], fixed, [rewrite.hook], { signal, prefix, logits: false });
      return [...fixed, { hook: rewrite.hook, kind: "replace", source: await rewrite.rewrite(cache.get(rewrite.hook), signal) }];
    };
    const cacheable = this.hasPast && [...fixed, ...(rewrite ? [{ hook: rewrite.hook, kind: "zero" } as const] : [])].every((iv) => this.actsOnNewTokens(iv));
    const kv = cacheable
      ? new KvCache(async (fresh, prefix) => this.forward([fresh], await interventionsFor(fresh, prefix), [], { signal, prefix, keyValues: true, logitPositions: [fresh.length - 1] }))
      : undefined;
    for (let step = 0; step < maxNew; step++) {
      throwIfAborted(signal);
      if (tokens.length >= this.cfg.nCtx) {
        stopReason = "context";
        break;
      }
      let last: Float32Array;
      if (kv) {
        last = await kv.nextLogits(tokens);
      } else {
        // The last position's logits only: the next token is read there.
        const { logits } = await this.forward([tokens], await interventionsFor(tokens), [], { signal, logitPositions: [tokens.length - 1] });
        last = logits.data;
      }
      const next = chooseNextToken(last, options, random);
      if (stopAtEos && stops.has(next)) {
        stopReason = "eos";
        break;
      }
      tokens.push(next);
      options.onToken?.(step, last);
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
    if (!this.lensSession) {
      throw new LoupeError("bad-argument", `The logit lens is not available for ${this.imported?.modelFile ?? this.folder}: it is an imported .onnx whose final norm and unembedding read more than the residual stream, so they cannot run alone. Load the model's safetensors folder for the lens.`);
    }
    const session = await this.lensSession.get();
    const rows = lensChunkRows(this.cfg.dVocab, options.budgetBytes ?? this.lensBudgetBytes());
    const result = { k: kk, m, topIds: new Int32Array(n * kk), topLogprobs: new Float32Array(n * kk), targetLogprob: new Float32Array(n * m), entropy: new Float32Array(n) };
    const kTensor = new ort.Tensor("int64", BigInt64Array.of(BigInt(kk)), [1]);
    for (let from = 0; from < n; from += rows) {
      throwIfAborted(options.signal);
      const to = Math.min(n, from + rows);
      const out = await runSession(session, this.modelFile, {
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

  /** Bytes the memory limit (LoadOptions.maxMemoryBytes) leaves beside the weights; undefined without a limit. */
  get spareMemoryBytes(): number | undefined {
    return this.memoryLimit && Math.max(0, this.memoryLimit.maxBytes - this.memoryLimit.weightsBytes);
  }

  /** Whether the memory limit leaves room for a forward call of this shape. */
  runFits(shape: RunShape): boolean {
    return !this.memoryLimit || this.memoryLimit.weightsBytes + estimateRunBytes(this.cfg, shape) <= this.memoryLimit.maxBytes;
  }

  async dispose(): Promise<void> {
    await this.session.release();
    await this.lensSession?.release();
    await this.decodeSession?.release();
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

  /**
   * One run of the graph: check and lay out the batch, feed tokens, rows started at later blocks,
   * logit positions, a prefix's keys and values and the interventions, then read the outputs back
   * in the shapes RunResult promises.
   */
  private async forward(batch: TokenBatch, interventions: readonly Intervention[], fetch: readonly string[], options: Omit<RunOptions, "names">): Promise<RunResult> {
    throwIfAborted(options.signal);
    let run = this.layOut(batch, interventions, options);
    const keyValueNames = options.keyValues ? this.keyValueOutputs(interventions) : [];
    const withLogits = options.logits !== false;
    const shape: RunShape = {
      batch: run.B,
      positions: run.T,
      prefix: run.P,
      prefixRows: options.prefix?.keys[0]?.dims[0],
      // A graph without the fetch mask holds every output, fetched or not.
      hooks: this.hasFetchMask ? fetch : this.hookNames,
      logitPositions: withLogits || !this.hasFetchMask ? options.logitPositions?.length : 0,
      keyValues: options.keyValues || (!this.hasFetchMask && this.hasPast),
    };
    const decodeSession = this.runsOnDecodeGraph(fetch, interventions, options) ? this.decodeSessionFor(shape) : undefined;
    // The decode graph agrees with the hooked one within rounding anyway: one logit position runs
    // once there, so a generation step unembeds one row (the one-row MatMul; see fedLogitPositions).
    if (decodeSession && run.narrowed?.doubled) run = { ...run, narrowed: undoubled(run.narrowed) };
    this.checkRunMemory(shape);
    const feeds: Record<string, ort.Tensor> = decodeSession
      ? { ...this.idleDecodeFeeds, ...this.tokenFeeds(run), ...this.logitPositionFeeds(run), ...prefixFeeds(options.prefix) }
      : {
          ...this.idleFeeds,
          ...this.tokenFeeds(run),
          ...this.startAtFeeds(run, options.startAt),
          ...this.logitPositionFeeds(run),
          ...prefixFeeds(options.prefix),
          ...this.interventionFeeds(run, interventions),
        };
    if (decodeSession) feeds[FETCH_HOOKS] = new ort.Tensor("bool", Uint8Array.of(withLogits ? 1 : 0), [1]);
    else if (this.hasFetchMask) feeds[FETCH_HOOKS] = this.fetchMask([...fetch, ...keyValueNames], withLogits);
    const session = decodeSession ? await decodeSession.get() : this.session;
    const names = [...(withLogits ? [GRAPH_IO.logits] : []), ...fetch, ...keyValueNames];
    const outputs = await runSession(session, this.modelFile, feeds, this.presentsPreallocated(run, names, keyValueNames, options.startAt));
    throwIfAborted(options.signal);
    return this.readOutputs(run, outputs, fetch, options);
  }

  /**
   * Whether a run goes to the decode-only graph: it reads no hook, changes none, starts no row at a
   * later block, and decodes (continues from a key/value prefix or returns keys and values): generation
   * steps, the faithfulness battery's rewrites and answer scoring, and the prefixes they continue
   * from. A plain forward stays on the hooked graph: its logits stay bit-identical to a hooked run's
   * (an identity intervention changes nothing), and it never loads a second graph. The decode
   * graph's logits agree with the hooked graph's within float rounding (onnxruntime fuses the norms
   * that no hook splits).
   */
  private runsOnDecodeGraph(fetch: readonly string[], interventions: readonly Intervention[], options: Omit<RunOptions, "names">): boolean {
    return fetch.length === 0 && interventions.length === 0 && options.startAt === undefined && (options.prefix !== undefined || options.keyValues === true);
  }

  /**
   * The decode graph's session for a run of this shape, or undefined to run it on the hooked graph.
   * onnxruntime gives each session its own copy of the weights (in-memory external data is copied
   * too, and prepacked matrices are per kernel), so the decode graph is loaded only where the memory
   * limit leaves room for a second copy beside the run; from then on run checks count both.
   */
  private decodeSessionFor(shape: RunShape): LazySession | undefined {
    const session = this.decodeSession;
    if (!session || session.created || !this.memoryLimit) return session;
    const { maxBytes, weightsBytes } = this.memoryLimit;
    if (2 * weightsBytes + estimateRunBytes(this.cfg, shape) > maxBytes) return undefined;
    this.memoryLimit = { maxBytes, weightsBytes: 2 * weightsBytes };
    return session;
  }

  /** Check a run's inputs against the model and each other, and work out its layout (RunLayout). */
  private layOut(batch: TokenBatch, interventions: readonly Intervention[], options: Omit<RunOptions, "names">): RunLayout {
    if (batch.length === 0 || batch.some((row) => row.length === 0)) {
      throw new LoupeError("empty-input", "Nothing to run: the text is empty. Select some text first.");
    }
    const B = batch.length;
    const P = options.prefix ? this.checkPrefix(options.prefix, B, interventions) : 0;
    const T = Math.max(...batch.map((row) => row.length));
    const slots = this.prefixSlotsOf(options, B, P);
    const padding = slots && emptySlots(slots, B, P);
    // The longest row in tokens: a prefix's empty slots take no position.
    const longest = Math.max(...batch.map((row, b) => P - (padding?.[b] ?? 0) + row.length));
    if (longest > this.cfg.nCtx) {
      throw new LoupeError(
        "context-overflow",
        `The text is ${longest} tokens long but this model's context window is ${this.cfg.nCtx} tokens. Select a shorter passage.`,
      );
    }
    const padded = padBatch(batch, P, this.tokenizer.eosTokenId ?? 0, this.cfg.dVocab, slots);
    const starts = options.startAt ? this.checkStartAt(options.startAt, B, T) : undefined;
    const asked = options.logitPositions;
    for (const p of asked ?? []) {
      if (!Number.isInteger(p) || p < 0 || p >= T) throw new LoupeError("bad-argument", `Logit position ${p} is outside the tokens run (0..${T - 1}).`);
    }
    const rowsAt = (hook: string) => rowsAtHook(hook, B, this.cfg.nLayers, starts);
    for (const iv of interventions) {
      this.checkHook(iv.hook);
      const missing = starts && iv.batch?.find((b) => b >= rowsAt(iv.hook));
      if (missing !== undefined) throw new LoupeError("bad-argument", `Intervention at ${iv.hook}: batch row ${missing} starts after that hook.`);
    }
    const narrowed = asked && this.hasLogitPositions ? fedLogitPositions(asked) : undefined;
    return { B, T, P, padding, padded, starts, rowsAt, fromTokens: rowsAt("hook_embed"), asked, narrowed };
  }

  /** Token ids and positions of the rows that start from their tokens; the mask of every row. */
  private tokenFeeds({ B, T, P, padding, padded, fromTokens }: RunLayout): Record<string, ort.Tensor> {
    // A rotary graph rotates each row from its first real prefix slot (the idle feed: every row from 0).
    const offsets: Record<string, ort.Tensor> = padding && this.idleFeeds[POSITION_OFFSETS] ? { [POSITION_OFFSETS]: new ort.Tensor("int64", BigInt64Array.from(padding, BigInt), [B]) } : {};
    return {
      ...offsets,
      [GRAPH_IO.ids]: new ort.Tensor("int64", padded.ids.subarray(0, fromTokens * T), [fromTokens, T]),
      [GRAPH_IO.positions]: new ort.Tensor("int64", padded.positions.subarray(0, fromTokens * T), [fromTokens, T]),
      [GRAPH_IO.mask]: new ort.Tensor("float32", padded.mask, [B, P + T]),
    };
  }

  /** resid_in:L for every block L >= 1: the given hook_resid_pre of the rows that start there (none for a plain run). */
  private startAtFeeds({ T, starts }: RunLayout, startAt: StartAt | undefined): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    if (!this.hasStartAt) return feeds;
    const D = this.cfg.dModel;
    let offset = 0;
    for (let L = 1; L < this.cfg.nLayers; L++) {
      const n = starts ? starts.filter((l) => l === L).length : 0;
      const data = startAt ? startAt.resid.data.subarray(offset * T * D, (offset + n) * T * D) : new Float32Array(0);
      feeds[residInput(L)] = new ort.Tensor("float32", data, [n, T, D]);
      offset += n;
    }
    return feeds;
  }

  /** The positions whose logits the graph computes: those asked for (see fedLogitPositions), else all. */
  private logitPositionFeeds({ T, narrowed }: RunLayout): Record<string, ort.Tensor> {
    if (!this.hasLogitPositions) return {};
    const chosen = narrowed?.positions ?? Array.from({ length: T }, (_, t) => t);
    return { [LOGIT_POSITIONS]: new ort.Tensor("int64", BigInt64Array.from(chosen, BigInt), [chosen.length]) };
  }

  /** gain:{hook} and write:{hook} of every hook an intervention touches, cut to the rows and positions the hook holds. */
  private interventionFeeds({ B, T, rowsAt, narrowed }: RunLayout, interventions: readonly Intervention[]): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [hook, compiled] of compileInterventions(this.hookDims, this.hookSet, interventions, B, T)) {
      // The last block's later hooks hold only the logit positions: pick those.
      const c = narrowed && narrowedByLogitPositions(hook, this.cfg.nLayers) ? selectPositions(compiled, positionAxis(hook), narrowed.positions) : compiled;
      // Rows started after this hook's block are not in its activation: drop them (rows lead).
      const rows = rowsAt(hook);
      const size = c.gain.length / B;
      const dims = [rows, ...c.dims.slice(1)];
      feeds[gainInput(hook)] = new ort.Tensor("float32", rows === B ? c.gain : c.gain.subarray(0, rows * size), dims);
      feeds[writeInput(hook)] = new ort.Tensor("float32", rows === B ? c.write : c.write.subarray(0, rows * size), dims);
    }
    return feeds;
  }

  /** FETCH_HOOKS: which of the gated outputs (fetchedOutputs, then the logits) this run returns. */
  private fetchMask(fetched: readonly string[], logits: boolean): ort.Tensor {
    const wanted = new Set(fetched);
    if (logits) wanted.add(GRAPH_IO.logits);
    const mask = Uint8Array.from([...this.gatedOutputs, GRAPH_IO.logits], (name) => (wanted.has(name) ? 1 : 0));
    return new ort.Tensor("bool", mask, [mask.length]);
  }

  /** The present_key:L and present_value:L outputs, after checking the cache can hold this run's changes. */
  private keyValueOutputs(interventions: readonly Intervention[]): string[] {
    if (!this.hasPast) throw new LoupeError("bad-argument", "This model's graph does not return keys and values.");
    // The cache holds one slot per key/value head: with ungrouped hooks, per-head changes within a group cannot be kept.
    const groups = this.hookDims.keyValueHeads / cacheHeads(this.cfg);
    const split = groups > 1 && interventions.find((iv) => isKeyValueHook(iv.hook));
    if (split) throw new LoupeError("bad-argument", `Intervention at ${split.hook}: this model shares each key/value head among ${groups} query heads, so its key/value cache cannot hold the change; run without returning keys and values.`);
    return Array.from({ length: this.cfg.nLayers }, (_, L) => [PAST_IO.presentKey(L), PAST_IO.presentValue(L)]).flat();
  }

  /**
   * The fetches of a run, its keys and values written into arrays allocated here: the binding
   * otherwise copies every output into a new array, a second copy of every layer's keys and values
   * (a long decode's largest outputs) alive beside onnxruntime's. Rows started at later blocks give
   * the layers different batches: those runs, and imported graphs, fetch as usual.
   */
  private presentsPreallocated({ B, T, P }: RunLayout, names: readonly string[], keyValueNames: readonly string[], startAt: StartAt | undefined): ort.InferenceSession.FetchesType {
    if (keyValueNames.length === 0 || startAt || this.imported) return names;
    const dims = [B, cacheHeads(this.cfg), P + T, this.cfg.dHead];
    const size = dims.reduce((a, b) => a * b, 1);
    const presents = new Set(keyValueNames);
    return Object.fromEntries(names.map((name) => [name, presents.has(name) ? new ort.Tensor("float32", new Float32Array(size), dims) : null]));
  }

  /** Logits, cached hooks and keys and values, in the shapes RunResult promises. */
  private readOutputs({ padded, asked, narrowed }: RunLayout, outputs: ort.InferenceSession.OnnxValueMapType, fetch: readonly string[], options: Omit<RunOptions, "names">): RunResult {
    const cache = new Map<string, Tensor>();
    // Drop the doubled single position (see fedLogitPositions).
    const doubled = narrowed?.doubled ?? false;
    for (const name of fetch) {
      const t = fromOrt(outputs[name]);
      cache.set(name, doubled && narrowedByLogitPositions(name, this.cfg.nLayers) ? firstPosition(t, positionAxis(name)) : t);
    }
    const withLogits = options.logits !== false;
    let logits = withLogits ? fromOrt(outputs[GRAPH_IO.logits]) : tensor(new Float32Array(0), [padded.lengths.length, 0, this.cfg.dVocab]);
    if (doubled && withLogits) logits = firstPosition(logits, 1);
    // A graph without a logit_positions input computed them all: pick the rows asked for.
    if (asked && !this.hasLogitPositions && withLogits) logits = pickPositions(logits, asked);
    const keyValues = options.keyValues
      ? {
          keys: Array.from({ length: this.cfg.nLayers }, (_, L) => fromOrt(outputs[PAST_IO.presentKey(L)])),
          values: Array.from({ length: this.cfg.nLayers }, (_, L) => fromOrt(outputs[PAST_IO.presentValue(L)])),
        }
      : undefined;
    return { logits, cache: new ActivationCache(cache), lengths: padded.lengths, keyValues };
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

  /** The prefix slots each row sees ([B, P]), from prefixPadding or prefixSlots after checking them; undefined: all of them. */
  private prefixSlotsOf({ prefixPadding: padding, prefixSlots: slots, startAt }: Omit<RunOptions, "names">, batch: number, P: number): Uint8Array | undefined {
    if (padding === undefined && slots === undefined) return undefined;
    const option = padding ? "prefixPadding" : "prefixSlots";
    if (!this.hasPrefixPadding) throw new LoupeError("bad-argument", "This model's graph cannot run rows whose prefixes differ in length together; run each row alone.");
    if (startAt) throw new LoupeError("bad-argument", `${option} cannot be combined with startAt.`);
    if (padding && slots) throw new LoupeError("bad-argument", "Give prefixPadding or prefixSlots, not both.");
    if (padding) {
      if (padding.length !== batch) throw new LoupeError("bad-shape", `prefixPadding gives ${padding.length} rows; the batch has ${batch}.`);
      const bad = padding.find((n) => !Number.isInteger(n) || n < 0 || n > P);
      if (bad !== undefined) throw new LoupeError("bad-argument", `prefixPadding: ${bad} empty slots is not within the prefix's ${P}.`);
      return leadingEmptySlots(padding, P);
    }
    if (!this.supportsPrefixSlots) throw new LoupeError("bad-argument", "This model has sliding-window layers, whose windows count prefix slots: give prefixes without empty slots inside (prefixPadding).");
    if (slots!.length !== batch * P) throw new LoupeError("bad-shape", `prefixSlots has ${slots!.length} entries; expected ${batch} rows of the prefix's ${P} slots.`);
    return slots;
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

/** An imported graph's bytes with its hooks and logits behind the fetch mask (in the order of its hookNames, then the logits). */
export function gateImportedOutputs(imported: Pick<ImportedGraph, "bytes" | "hookNames">): Uint8Array {
  return gateHookOutputs(imported.bytes, imported.hookNames, [GRAPH_IO.logits]);
}

/**
 * The data files a built graph references (its external initializers' locations): part of the
 * cache key, since two snapshots with the same headers keep their bytes in differently named blobs.
 * A single plain model.safetensors gives "model.safetensors", the key graphs were cached under before.
 */
function weightLocations(weights: SafetensorsIndex): string {
  return [...new Set([...weights.tensors.values()].map((e) => e.location))].join("\n");
}

/** The layout of one run, worked out by HookedModel.layOut before anything is fed. */
interface RunLayout {
  readonly B: number;
  /** Tokens per row after padding. */
  readonly T: number;
  /** Tokens of the prefix the run continues from (0: none). */
  readonly P: number;
  /** Empty slots of each row's prefix (RunOptions.prefixPadding, prefixSlots): its positions trail the prefix by as many. */
  readonly padding?: readonly number[];
  readonly padded: PaddedBatch;
  /** Each row's first block (RunOptions.startAt), or undefined when every row starts at block 0. */
  readonly starts?: readonly number[];
  /** Rows a hook's activation holds: those started at or before its block (they lead the batch). */
  readonly rowsAt: (hook: string) => number;
  /** Rows that start from their tokens. */
  readonly fromTokens: number;
  /** The logit positions asked for. */
  readonly asked?: readonly number[];
  /** The logit positions fed to a graph that narrows its last block to them. */
  readonly narrowed?: ReturnType<typeof fedLogitPositions>;
}

/** past_key:L and past_value:L from a prefix's keys and values (the idle feeds hold empty ones). */
function prefixFeeds(prefix: KeyValues | undefined): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  prefix?.keys.forEach((k, L) => (feeds[PAST_IO.pastKey(L)] = new ort.Tensor("float32", k.data, k.dims)));
  prefix?.values.forEach((v, L) => (feeds[PAST_IO.pastValue(L)] = new ort.Tensor("float32", v.data, v.dims)));
  return feeds;
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
    [GRAPH_IO.ids]: new ort.Tensor("int64", new BigInt64Array(2), [1, 2]),
    [GRAPH_IO.positions]: new ort.Tensor("int64", BigInt64Array.of(0n, 1n), [1, 2]),
    [GRAPH_IO.mask]: new ort.Tensor("float32", Float32Array.of(1, 1), [1, 2]),
  };
  for (const name of hookNames) feeds[gainInput(name)] = feeds[writeInput(name)] = zero;
  if (session.inputNames.includes(FETCH_HOOKS)) feeds[FETCH_HOOKS] = new ort.Tensor("bool", Uint8Array.from([...hookNames, GRAPH_IO.logits], (n) => (patterns.includes(n) ? 1 : 0)), [hookNames.length + 1]);
  const out = await session.run(feeds, patterns);
  return patterns.every((n) => out[n].dims.join() === [1, cfg.nHeads, 2, 2].join());
}

/** session.run, a failure inside onnxruntime reported as a LoupeError naming the model file and the node. */
async function runSession(session: ort.InferenceSession, modelFile: string, feeds: ort.InferenceSession.FeedsType, fetches?: ort.InferenceSession.FetchesType): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await (fetches ? session.run(feeds, fetches) : session.run(feeds));
  } catch (error) {
    throw runFailure(error, modelFile);
  }
}

/**
 * A session created on first use. The logit lens's graph holds its own copy of the final norm and
 * the unembedding (Gemma 3 270M: 0.67 GB in float32) and takes seconds to create; most commands
 * never run it.
 */
class LazySession {
  private session: Promise<ort.InferenceSession> | undefined;

  constructor(private readonly create: () => Promise<ort.InferenceSession>) {}

  /** Whether creation has begun (and not failed). */
  get created(): boolean {
    return this.session !== undefined;
  }

  get(): Promise<ort.InferenceSession> {
    // A failed creation is not remembered: the next call tries again (and reports again).
    this.session ??= this.create().catch((error: unknown) => {
      this.session = undefined;
      throw error;
    });
    return this.session;
  }

  async release(): Promise<void> {
    const pending = this.session;
    this.session = undefined;
    if (pending) await (await pending.catch(() => undefined))?.release();
  }
}

async function createSession(bytes: Uint8Array, weightsFolder: string, threads?: number): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: "all",
    intraOpNumThreads: threads ?? Math.max(1, os.availableParallelism()),
    interOpNumThreads: 1,
    executionMode: "sequential",
    // Fatal only: a failed run is reported once, as a LoupeError (runSession), not also as onnxruntime's log line.
    logSeverityLevel: 4,
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
