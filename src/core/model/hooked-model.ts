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
import { Tokenizer } from "../tokenizer";
import { ActivationCache } from "./activation-cache";
import { readModelConfig, type ModelConfig } from "./config";
import { chooseNextToken, type SamplingOptions } from "./sampling";
import { buildGpt2Graph, buildGpt2LensGraph, gainInput, GRAPH_INPUTS, LENS_IO, writeInput } from "./gpt2-graph";
import { cachedGraph, defaultCacheDir, graphKey } from "./graph-cache";
import { allHookNames } from "./hooks";
import { compileInterventions, type Intervention } from "./interventions";
import { readSafetensorsIndex } from "./safetensors";

export type TokenBatch = readonly (readonly number[])[];

export interface LoadOptions {
  /** Where built graphs are cached; `null` disables the cache. Default: $LOUPE_CACHE_DIR or ~/.cache/loupe. */
  readonly cacheDir?: string | null;
  /** onnxruntime intra-op threads; default: the number of CPUs. */
  readonly threads?: number;
}

export interface RunOptions {
  /** Hooks to return in the cache: a list of names or a filter. */
  readonly names?: readonly string[] | ((name: string) => boolean);
  readonly signal?: AbortSignal;
}

export interface RunResult {
  /** [batch, pos, d_vocab] */
  readonly logits: Tensor;
  readonly cache: ActivationCache;
  /** Real (unpadded) length of each sequence in the batch. */
  readonly lengths: readonly number[];
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

  private constructor(
    readonly folder: string,
    readonly cfg: ModelConfig,
    readonly tokenizer: Tokenizer,
    private readonly session: ort.InferenceSession,
    private readonly lensSession: ort.InferenceSession,
    readonly graphFromCache: boolean,
  ) {
    this.hookNames = allHookNames(cfg.nLayers);
    this.hookSet = new Set(this.hookNames);
    // One shared zero broadcasts to every hook: the identity intervention.
    const zero = new ort.Tensor("float32", new Float32Array(1), [1]);
    this.idleInterventions = {};
    for (const name of this.hookNames) {
      this.idleInterventions[gainInput(name)] = zero;
      this.idleInterventions[writeInput(name)] = zero;
    }
  }

  /** Load a Hugging Face GPT-2-family folder: config.json, model.safetensors, tokenizer.json. */
  static async load(folder: string, options: LoadOptions = {}): Promise<HookedModel> {
    const dir = path.resolve(folder);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      throw new LoupeError("missing-file", `Model folder ${dir} does not exist. Choose a folder with config.json, model.safetensors and tokenizer.json.`, dir);
    }
    const cfg = readModelConfig(dir);
    const weightsFile = path.join(dir, "model.safetensors");
    if (!fs.existsSync(weightsFile)) {
      const sharded = fs.readdirSync(dir).some((f) => /^model-\d+-of-\d+\.safetensors$/.test(f));
      throw new LoupeError(
        "missing-file",
        sharded
          ? `${dir} holds a sharded checkpoint; Loupe reads a single model.safetensors for now. Merge the shards (save_pretrained with a larger max_shard_size).`
          : `No model.safetensors in ${dir}. Save the model with save_pretrained(safe_serialization=True).`,
        weightsFile,
      );
    }
    const tokenizerFile = path.join(dir, "tokenizer.json");
    const tokenizer = Tokenizer.fromFile(tokenizerFile);
    if (tokenizer.vocabSize > cfg.dVocab) {
      throw new LoupeError(
        "tokenizer-mismatch",
        `${tokenizerFile} has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${cfg.dVocab}: the tokenizer belongs to another model.`,
        tokenizerFile,
      );
    }
    const weights = readSafetensorsIndex(weightsFile);
    const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir ?? undefined;
    const key = (graphName: string) => graphKey([graphName, JSON.stringify(cfg), path.basename(weightsFile), weights.headerText]);
    const graph = cachedGraph(cacheDir, key("model"), () => buildGpt2Graph(cfg, weights).bytes);
    const lensGraph = cachedGraph(cacheDir, key("lens"), () => buildGpt2LensGraph(cfg, weights));
    const session = await createSession(graph.bytes, dir, options.threads);
    const lensSession = await createSession(lensGraph.bytes, dir, options.threads);
    return new HookedModel(dir, cfg, tokenizer, session, lensSession, graph.fromCache);
  }

  /** Token ids of `text` (no special tokens are added: GPT-2 has no BOS convention). */
  toTokens(text: string): number[] {
    return this.tokenizer.encode(text).ids;
  }

  toString(tokens: readonly number[]): string {
    return this.tokenizer.decode([...tokens]);
  }

  /** Logits only. */
  async run(tokens: readonly number[] | TokenBatch, options: { signal?: AbortSignal } = {}): Promise<Tensor> {
    return (await this.forward(asBatch(tokens), [], [], options.signal)).logits;
  }

  async runWithCache(tokens: readonly number[] | TokenBatch, options: RunOptions = {}): Promise<RunResult> {
    return this.forward(asBatch(tokens), [], this.selectHooks(options.names ?? (() => true)), options.signal);
  }

  async runWithHooks(tokens: readonly number[] | TokenBatch, interventions: readonly Intervention[], options: RunOptions = {}): Promise<RunResult> {
    return this.forward(asBatch(tokens), interventions, this.selectHooks(options.names ?? []), options.signal);
  }

  /**
   * Continue each prompt. Greedy by default; `temperature` > 0 samples with a seeded generator.
   * Every step reruns the whole sequence (no KV cache yet), so cost grows with length.
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
    for (let step = 0; step < maxNew; step++) {
      throwIfAborted(options.signal);
      if (tokens.length >= this.cfg.nCtx) {
        stopReason = "context";
        break;
      }
      const stepInterventions = options.interventionsAt ? await options.interventionsAt(tokens, options.signal) : [];
      const { logits } = await this.forward([tokens], [...(options.interventions ?? []), ...stepInterventions], [], options.signal);
      const V = logits.dims[2];
      const last = logits.data.subarray((tokens.length - 1) * V, tokens.length * V);
      const next = chooseNextToken(last, options, random);
      if (stopAtEos && next === eos) {
        stopReason = "eos";
        break;
      }
      tokens.push(next);
      options.onToken?.(step);
      if (options.stop?.length) {
        const text = this.toString(tokens.slice(start));
        const cut = firstStop(text, options.stop);
        if (cut !== undefined) {
          return { tokens: tokens.slice(start), text: text.slice(0, cut), stopReason: "stop-string" };
        }
      }
    }
    const generated = tokens.slice(start);
    return { tokens: generated, text: this.toString(generated), stopReason };
  }

  /**
   * The logit lens: residual-stream vectors [n, d_model] through ln_final and the unembedding.
   * Returns each row's top-k tokens, the log-probs of the row's target tokens (the same number for
   * every row), and the entropy (nats).
   */
  async lens(resid: Float32Array, targets: readonly (readonly number[])[], k: number): Promise<LensResult> {
    const D = this.cfg.dModel;
    const n = targets.length;
    const m = targets[0]?.length ?? 0;
    if (n === 0 || m === 0 || targets.some((t) => t.length !== m)) throw new LoupeError("bad-shape", "lens: give every row the same, non-zero number of targets.");
    if (resid.length !== n * D) throw new LoupeError("bad-shape", `lens: ${resid.length} values are not ${n} vectors of d_model ${D}.`);
    for (const row of targets) for (const t of row) if (!Number.isInteger(t) || t < 0 || t >= this.cfg.dVocab) throw new LoupeError("bad-argument", `lens: target ${t} is outside the vocabulary.`);
    const kk = Math.max(1, Math.min(Math.floor(k), this.cfg.dVocab));
    const out = await this.lensSession.run({
      [LENS_IO.resid]: new ort.Tensor("float32", resid, [n, D]),
      [LENS_IO.target]: new ort.Tensor("int64", BigInt64Array.from(targets.flat(), (t) => BigInt(t)), [n, m]),
      [LENS_IO.k]: new ort.Tensor("int64", BigInt64Array.of(BigInt(kk)), [1]),
    });
    return {
      k: kk,
      m,
      topIds: Int32Array.from(out[LENS_IO.topIds].data as BigInt64Array, Number),
      topLogprobs: out[LENS_IO.topLogprobs].data as Float32Array,
      targetLogprob: out[LENS_IO.targetLogprob].data as Float32Array,
      entropy: out[LENS_IO.entropy].data as Float32Array,
    };
  }

  async dispose(): Promise<void> {
    await this.session.release();
    await this.lensSession.release();
  }

  private selectHooks(names: readonly string[] | ((name: string) => boolean)): string[] {
    if (typeof names === "function") return this.hookNames.filter(names);
    for (const name of names) {
      if (!this.hookSet.has(name)) {
        throw new LoupeError("bad-argument", `Unknown hook "${name}". This model's hooks are TransformerLens names such as blocks.0.hook_resid_post (0..${this.cfg.nLayers - 1}).`);
      }
    }
    return [...names];
  }

  private async forward(batch: TokenBatch, interventions: readonly Intervention[], fetch: readonly string[], signal?: AbortSignal): Promise<RunResult> {
    throwIfAborted(signal);
    if (batch.length === 0 || batch.some((row) => row.length === 0)) {
      throw new LoupeError("empty-input", "Nothing to run: the text is empty. Select some text first.");
    }
    const lengths = batch.map((row) => row.length);
    const T = Math.max(...lengths);
    if (T > this.cfg.nCtx) {
      throw new LoupeError(
        "context-overflow",
        `The text is ${T} tokens long but this model's context window is ${this.cfg.nCtx} tokens. Select a shorter passage.`,
      );
    }
    const B = batch.length;
    const pad = this.tokenizer.eosTokenId ?? 0;
    const ids = new BigInt64Array(B * T);
    const positions = new BigInt64Array(B * T);
    const mask = new Float32Array(B * T);
    batch.forEach((row, b) => {
      for (let t = 0; t < T; t++) {
        const real = t < row.length;
        const id = real ? row[t] : pad;
        if (!Number.isInteger(id) || id < 0 || id >= this.cfg.dVocab) {
          throw new LoupeError("bad-argument", `Token id ${id} is outside the vocabulary (0..${this.cfg.dVocab - 1}).`);
        }
        ids[b * T + t] = BigInt(id);
        positions[b * T + t] = BigInt(t);
        mask[b * T + t] = real ? 1 : 0;
      }
    });
    const feeds: Record<string, ort.Tensor> = {
      ...this.idleInterventions,
      [GRAPH_INPUTS.ids]: new ort.Tensor("int64", ids, [B, T]),
      [GRAPH_INPUTS.positions]: new ort.Tensor("int64", positions, [B, T]),
      [GRAPH_INPUTS.mask]: new ort.Tensor("float32", mask, [B, T]),
    };
    for (const [hook, c] of compileInterventions(this.cfg, this.hookSet, interventions, B, T)) {
      feeds[gainInput(hook)] = new ort.Tensor("float32", c.gain, c.dims);
      feeds[writeInput(hook)] = new ort.Tensor("float32", c.write, c.dims);
    }
    const outputs = await this.session.run(feeds, [GRAPH_INPUTS.logits, ...fetch]);
    throwIfAborted(signal);
    const cache = new Map<string, Tensor>();
    for (const name of fetch) cache.set(name, fromOrt(outputs[name]));
    return { logits: fromOrt(outputs[GRAPH_INPUTS.logits]), cache: new ActivationCache(cache), lengths };
  }
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
