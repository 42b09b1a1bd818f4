/**
 * Transcoder sets on disk in circuit-tracer's layout, so sets trained with it load in Loupe and
 * Loupe's load there:
 *
 *   config.yaml   model_kind (transcoder_set | cross_layer_transcoder), feature_input_hook,
 *                 feature_output_hook, optional transcoders (one path per layer), activation, k, scan
 *   PLT           layer_{i}.safetensors: W_enc [d_tc, d_model], W_dec [d_tc, d_model], b_enc, b_dec,
 *                 optional activation_function.threshold (JumpReLU) and W_skip [d_model, d_model]
 *   CLT           W_enc_{i}.safetensors: W_enc_i, b_enc_i, b_dec_i, optional threshold_i;
 *                 W_dec_{i}.safetensors: W_dec_i [d_tc, n_layers - i, d_model]
 *
 * Loupe writes no `transcoders` list: circuit-tracer then finds layer_{i}.safetensors itself when
 * the folder is uploaded as a Hugging Face repo (a list would hold paths it resolves from its own
 * working directory). Loupe reads a list, relative to config.yaml's folder, or circuit-tracer's
 * hf://ORG/NAME/PATH[?revision=REV] entries, found in the Hugging Face cache (never downloaded here).
 * A listed PLT file may also be a Gemma Scope transcoder: params.npz (W_enc [d_model, d_tc],
 * threshold) or Gemma Scope 2's params.safetensors (w_enc, w_dec, threshold, affine_skip_connection).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { LoupeError } from "../errors";
import { DEFAULT_REVISION, formatRepoRef, hubCacheDir, parseRepoRef, snapshotDir, type Environment } from "../hub/cache-layout";
import { cachedCommit } from "../hub/model-reference";
import { readNpz } from "../sae/npz";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32, type SafetensorsIndex, type TensorToWrite } from "../model/safetensors";
import { transpose } from "../sae/kernels";
import {
  checkTranscoderSet,
  decoderLayers,
  type FeatureInputHook,
  type FeatureOutputHook,
  type TranscoderActivation,
  type TranscoderLayer,
  type TranscoderSet,
} from "./transcoder";

export const TRANSCODER_CONFIG = "config.yaml";
const INPUT_HOOKS: readonly FeatureInputHook[] = ["mlp.hook_in", "ln2.hook_normalized", "hook_resid_mid"];
const OUTPUT_HOOKS: readonly FeatureOutputHook[] = ["hook_mlp_out", "mlp.hook_out"];

interface ParsedConfig {
  readonly modelKind: "transcoder_set" | "cross_layer_transcoder";
  readonly inputHook: FeatureInputHook;
  readonly outputHook: FeatureOutputHook;
  readonly transcoders?: readonly string[];
  readonly activation?: string;
  readonly k?: number;
  readonly scan?: string;
}

function parseConfig(file: string): ParsedConfig {
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    throw new LoupeError("bad-file", `${file} is not valid YAML: ${(error as Error).message}. Fix it, or write it again with \`loupe transcoder train\`.`, file);
  }
  if (typeof raw !== "object" || raw === null) throw new LoupeError("bad-file", `${file} must be a YAML mapping with model_kind, feature_input_hook and feature_output_hook.`, file);
  const cfg = raw as Record<string, unknown>;
  const kind = cfg.model_kind;
  if (kind !== "transcoder_set" && kind !== "cross_layer_transcoder") {
    throw new LoupeError("bad-file", `${file}: model_kind is ${JSON.stringify(kind)}; expected transcoder_set (per-layer) or cross_layer_transcoder.`, file);
  }
  const hook = <T extends string>(key: string, allowed: readonly T[]): T => {
    const value = String(cfg[key] ?? "").replace(/^blocks\.\d+\./, "");
    if (!(allowed as readonly string[]).includes(value)) {
      throw new LoupeError("bad-file", `${file}: ${key} is ${JSON.stringify(cfg[key])}; Loupe reads ${allowed.join(", ")} (TransformerLens names).`, file);
    }
    return value as T;
  };
  const transcoders = cfg.transcoders;
  if (transcoders !== undefined && !(Array.isArray(transcoders) && transcoders.every((p) => typeof p === "string"))) {
    throw new LoupeError("bad-file", `${file}: transcoders must be a list of file paths, one per layer.`, file);
  }
  return {
    modelKind: kind,
    inputHook: hook("feature_input_hook", INPUT_HOOKS),
    outputHook: hook("feature_output_hook", OUTPUT_HOOKS),
    transcoders: transcoders as string[] | undefined,
    activation: typeof cfg.activation === "string" ? cfg.activation : undefined,
    k: typeof cfg.k === "number" ? cfg.k : undefined,
    scan: typeof cfg.scan === "string" ? cfg.scan : undefined,
  };
}

/** Files numbered by layer (`layer_3.safetensors`), checked to run 0..n-1 without gaps. */
function numberedFiles(dir: string, pattern: RegExp, what: string): string[] {
  const found = new Map<number, string>();
  for (const name of fs.readdirSync(dir)) {
    const m = pattern.exec(name);
    if (m) found.set(Number(m[1]), path.join(dir, name));
  }
  if (found.size === 0) throw new LoupeError("missing-file", `${dir} has no ${what} files; a transcoder folder holds config.yaml and one file per layer.`, dir);
  const files: string[] = [];
  for (let i = 0; i < found.size; i++) {
    const file = found.get(i);
    if (!file) throw new LoupeError("missing-file", `${dir}: ${what} for layer ${i} is missing (found layers ${[...found.keys()].sort((a, b) => a - b).join(", ")}).`, dir);
    files.push(file);
  }
  return files;
}

function tensorOf(index: SafetensorsIndex, name: string, shape: readonly number[] | undefined): Float32Array {
  const entry = index.tensors.get(name);
  if (!entry) throw new LoupeError("bad-file", `${index.path} has no tensor "${name}"; is this a circuit-tracer transcoder file?`, index.path);
  if (shape && (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i]))) {
    throw new LoupeError("bad-shape", `${index.path}: "${name}" has shape [${entry.shape.join(", ")}], expected [${shape.join(", ")}].`, index.path);
  }
  return readTensorF32(index, name);
}

function activationOf(cfg: ParsedConfig, hasThreshold: boolean, file: string): TranscoderActivation {
  if (cfg.activation === "topk") {
    if (cfg.k === undefined) throw new LoupeError("bad-file", `${file}: activation is topk but k is missing; add \`k: <features kept per token>\`.`, file);
    return { kind: "topk", k: cfg.k };
  }
  if (cfg.activation !== undefined && cfg.activation !== "relu" && cfg.activation !== "jumprelu" && cfg.activation !== "jump_relu") {
    throw new LoupeError("bad-file", `${file}: activation ${JSON.stringify(cfg.activation)} is not one of topk, relu, jumprelu.`, file);
  }
  // As in circuit-tracer: a threshold tensor alone means JumpReLU.
  return hasThreshold && cfg.activation !== "relu" ? { kind: "jumprelu" } : { kind: "relu" };
}

/** circuit-tracer's hf://ORG/NAME/PATH[?revision=REV]: the file in the Hugging Face cache. */
export function resolveHfUri(uri: string, configFile: string, env: Environment = process.env): string {
  const m = /^hf:\/\/([^/?]+\/[^/?]+)\/([^?]+)(?:\?revision=([^&]+))?$/.exec(uri);
  if (!m) throw new LoupeError("bad-file", `${configFile}: ${uri} is not hf://ORG/NAME/PATH[?revision=REV].`, configFile);
  const [, repoId, file, revision = DEFAULT_REVISION] = m;
  const cacheDir = hubCacheDir(env);
  const commit = cachedCommit(cacheDir, { repoId, revision });
  const found = commit === undefined ? undefined : path.join(snapshotDir(cacheDir, repoId, commit), ...file.split("/"));
  if (!found || !fs.existsSync(found)) {
    throw new LoupeError(
      "missing-file",
      `${configFile} lists ${uri}, which is not in the Hugging Face cache (${cacheDir}). Loupe reads transcoders offline: download the file first (e.g. \`huggingface-cli download ${repoId} ${file}\`), or set HF_HUB_CACHE or HF_HOME to the cache that holds it.`,
      found ?? cacheDir,
    );
  }
  return found;
}

/**
 * The folder a transcoder reference names: an existing folder, else a hub repository ORG/NAME[@REV]
 * holding config.yaml at its root (as circuit-tracer's sets are published), found in the cache.
 */
export function resolveTranscoderFolder(reference: string, env: Environment = process.env): string {
  const asPath = path.resolve(reference);
  const ref = fs.existsSync(asPath) ? undefined : parseRepoRef(reference);
  if (!ref) return asPath;
  const cacheDir = hubCacheDir(env);
  const commit = cachedCommit(cacheDir, ref);
  const snapshot = commit === undefined ? undefined : snapshotDir(cacheDir, ref.repoId, commit);
  if (!snapshot || !fs.existsSync(path.join(snapshot, TRANSCODER_CONFIG))) {
    throw new LoupeError(
      "missing-file",
      `Transcoders ${formatRepoRef(ref)} are neither a folder (${asPath} does not exist) nor a repository with ${TRANSCODER_CONFIG} in the Hugging Face cache (${cacheDir}). ` +
        `Download the set first (e.g. \`huggingface-cli download ${ref.repoId}\`), or set HF_HUB_CACHE or HF_HOME to the cache that holds it.`,
      snapshot ?? cacheDir,
    );
  }
  return snapshot;
}

/** Read a transcoder set (config.yaml + safetensors) written by circuit-tracer or Loupe: a folder, or a cached hub repository ORG/NAME[@REV]. */
export function loadTranscoders(folder: string, env: Environment = process.env): TranscoderSet {
  const dir = resolveTranscoderFolder(folder, env);
  const configFile = path.join(dir, TRANSCODER_CONFIG);
  if (!fs.existsSync(configFile)) {
    throw new LoupeError("missing-file", `No ${TRANSCODER_CONFIG} in ${dir}. A transcoder folder holds circuit-tracer's config.yaml (model_kind, feature_input_hook, feature_output_hook) beside its safetensors files; train one with \`loupe transcoder train\`.`, configFile);
  }
  const cfg = parseConfig(configFile);
  const listed = cfg.transcoders?.map((p) => (/^hf:\/\//.test(p) ? resolveHfUri(p, configFile, env) : path.resolve(dir, p)));
  for (const file of listed ?? []) if (!fs.existsSync(file)) throw new LoupeError("missing-file", `${configFile} lists ${file}, which does not exist.`, file);
  const set = cfg.modelKind === "transcoder_set" ? readPlt(dir, cfg, listed, configFile) : readClt(dir, cfg, configFile);
  checkTranscoderSet(set);
  return set;
}

function readPlt(dir: string, cfg: ParsedConfig, listed: string[] | undefined, configFile: string): TranscoderSet {
  const files = listed ?? numberedFiles(dir, /^layer_(\d+)\.safetensors$/, "layer_{i}.safetensors");
  const layers = files.map(readPltLayer);
  const [F, D] = layers[0].size;
  const hasThreshold = layers[0].layer.threshold !== undefined;
  layers.forEach(({ size, layer }, i) => {
    if (size[0] !== F || size[1] !== D || (layer.threshold !== undefined) !== hasThreshold) {
      throw new LoupeError("bad-shape", `${files[i]}: layer ${i} is [${size.join(", ")}]${layer.threshold ? " with" : " without"} a threshold, but layer 0 is [${F}, ${D}]${hasThreshold ? " with" : " without"} one.`, files[i]);
    }
  });
  return transcoderSet("plt", dir, cfg, configFile, [F, D], hasThreshold, layers.map((l) => l.layer));
}

/** One PLT layer file in circuit-tracer's, Gemma Scope's (.npz) or Gemma Scope 2's layout, with its [d_tc, d_model]. */
function readPltLayer(file: string): { layer: TranscoderLayer; size: [number, number] } {
  if (file.endsWith(".npz")) {
    const arrays = readNpz(file);
    return gemmaScopeLayer(file, (name) => arrays.get(name), "W_enc", "W_dec", undefined);
  }
  const index = readSafetensorsIndex(file);
  if (index.tensors.has("w_enc")) {
    const get = (name: string) => {
      const entry = index.tensors.get(name);
      return entry && { shape: entry.shape, data: readTensorF32(index, name) };
    };
    return gemmaScopeLayer(file, get, "w_enc", "w_dec", "affine_skip_connection");
  }
  const enc = index.tensors.get("W_enc");
  if (!enc || enc.shape.length !== 2) throw new LoupeError("bad-file", `${file} has no 2-D W_enc [d_transcoder, d_model]; is this a circuit-tracer transcoder?`, file);
  const [F, D] = enc.shape;
  const W_skip = index.tensors.has("W_skip") ? tensorOf(index, "W_skip", [D, D]) : undefined;
  const layer: TranscoderLayer = {
    W_enc: tensorOf(index, "W_enc", [F, D]),
    b_enc: tensorOf(index, "b_enc", [F]),
    W_dec: tensorOf(index, "W_dec", [F, D]),
    b_dec: tensorOf(index, "b_dec", [D]),
    threshold: index.tensors.has("activation_function.threshold") ? tensorOf(index, "activation_function.threshold", [F]) : undefined,
    // circuit-tracer's PLT skip is x @ W_skip^T.
    skip: W_skip ? transpose(W_skip, D, D) : undefined,
  };
  return { layer, size: [F, D] };
}

/**
 * A Gemma Scope transcoder as circuit-tracer's gemma-scope loaders read it: W_enc [d_model, d_tc]
 * (transposed here), W_dec [d_tc, d_model], b_enc, b_dec, threshold (JumpReLU) and, in Gemma Scope
 * 2, affine_skip_connection A applied as x @ A.
 */
function gemmaScopeLayer(
  file: string,
  get: (name: string) => { shape: readonly number[]; data: Float32Array } | undefined,
  encName: string,
  decName: string,
  skipName: string | undefined,
): { layer: TranscoderLayer; size: [number, number] } {
  const tensor = (name: string, shape: readonly number[] | undefined): Float32Array => {
    const t = get(name);
    if (!t) throw new LoupeError("bad-file", `${file} has no tensor "${name}"; a Gemma Scope transcoder holds ${encName}, ${decName}, b_enc, b_dec and threshold.`, file);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new LoupeError("bad-shape", `${file}: "${name}" has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}].`, file);
    }
    return t.data;
  };
  const enc = get(encName);
  if (!enc || enc.shape.length !== 2) throw new LoupeError("bad-file", `${file} has no 2-D ${encName} [d_model, d_transcoder]; is this a Gemma Scope transcoder?`, file);
  const [D, F] = enc.shape;
  const layer: TranscoderLayer = {
    W_enc: transpose(enc.data, D, F),
    b_enc: tensor("b_enc", [F]),
    W_dec: tensor(decName, [F, D]),
    b_dec: tensor("b_dec", [D]),
    threshold: tensor("threshold", [F]),
    skip: skipName && get(skipName) ? tensor(skipName, [D, D]) : undefined,
  };
  return { layer, size: [F, D] };
}

function readClt(dir: string, cfg: ParsedConfig, configFile: string): TranscoderSet {
  const encFiles = numberedFiles(dir, /^W_enc_(\d+)\.safetensors$/, "W_enc_{i}.safetensors");
  const L = encFiles.length;
  const first = readSafetensorsIndex(encFiles[0]);
  const enc = first.tensors.get("W_enc_0");
  if (!enc || enc.shape.length !== 2) throw new LoupeError("bad-file", `${encFiles[0]} has no 2-D W_enc_0 [d_transcoder, d_model]; is this a circuit-tracer CLT?`, encFiles[0]);
  const [F, D] = enc.shape;
  const hasThreshold = first.tensors.has("threshold_0");
  const layers: TranscoderLayer[] = encFiles.map((file, i) => {
    const index = readSafetensorsIndex(file);
    const decFile = path.join(dir, `W_dec_${i}.safetensors`);
    if (!fs.existsSync(decFile)) throw new LoupeError("missing-file", `${dir}: W_dec_${i}.safetensors is missing (the CLT's decoders from layer ${i}).`, decFile);
    return {
      W_enc: tensorOf(index, `W_enc_${i}`, [F, D]),
      b_enc: tensorOf(index, `b_enc_${i}`, [F]),
      b_dec: tensorOf(index, `b_dec_${i}`, [D]),
      threshold: hasThreshold ? tensorOf(index, `threshold_${i}`, undefined) : undefined,
      W_dec: tensorOf(readSafetensorsIndex(decFile), `W_dec_${i}`, [F, L - i, D]),
    };
  });
  return transcoderSet("clt", dir, cfg, configFile, [F, D], hasThreshold, layers);
}

/** The set both readers return: sizes from the first encoder, hooks and scan from config.yaml. */
function transcoderSet(kind: TranscoderSet["kind"], dir: string, cfg: ParsedConfig, configFile: string, [F, D]: readonly number[], hasThreshold: boolean, layers: TranscoderLayer[]): TranscoderSet {
  return {
    kind,
    nLayers: layers.length,
    dModel: D,
    dTranscoder: F,
    activation: activationOf(cfg, hasThreshold, configFile),
    inputHook: cfg.inputHook,
    outputHook: cfg.outputHook,
    layers,
    source: dir,
    scan: cfg.scan,
  };
}

/** Write a set in circuit-tracer's layout; returns the files written (config.yaml first). */
export function saveTranscoders(folder: string, set: TranscoderSet, extra: Record<string, unknown> = {}): string[] {
  checkTranscoderSet(set);
  const dir = path.resolve(folder);
  fs.mkdirSync(dir, { recursive: true });
  const { dModel: D, dTranscoder: F, nLayers: L } = set;
  const f32 = (data: Float32Array, shape: number[]): TensorToWrite => ({ dtype: "F32", shape, data });
  const written: string[] = [];
  const write = (name: string, tensors: Record<string, TensorToWrite>) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, encodeSafetensors(tensors, { format: "pt" }));
    written.push(file);
  };
  set.layers.forEach((layer, i) => {
    if (set.kind === "plt") {
      const tensors: Record<string, TensorToWrite> = {
        W_enc: f32(layer.W_enc, [F, D]),
        W_dec: f32(layer.W_dec, [F, D]),
        b_enc: f32(layer.b_enc, [F]),
        b_dec: f32(layer.b_dec, [D]),
      };
      if (layer.threshold) tensors["activation_function.threshold"] = f32(layer.threshold, [F]);
      if (layer.skip) tensors.W_skip = f32(transpose(layer.skip, D, D), [D, D]);
      write(`layer_${i}.safetensors`, tensors);
    } else {
      if (layer.skip) throw new LoupeError("bad-argument", "circuit-tracer's CLT files have no place for a skip connection; train the CLT without one.");
      const tensors: Record<string, TensorToWrite> = { [`W_enc_${i}`]: f32(layer.W_enc, [F, D]), [`b_enc_${i}`]: f32(layer.b_enc, [F]), [`b_dec_${i}`]: f32(layer.b_dec, [D]) };
      if (layer.threshold) tensors[`threshold_${i}`] = f32(layer.threshold, [F]);
      write(`W_enc_${i}.safetensors`, tensors);
      write(`W_dec_${i}.safetensors`, { [`W_dec_${i}`]: f32(layer.W_dec, [F, decoderLayers(set, i), D]) });
    }
  });
  const config: Record<string, unknown> = {
    model_kind: set.kind === "plt" ? "transcoder_set" : "cross_layer_transcoder",
    feature_input_hook: set.inputHook,
    feature_output_hook: set.outputHook,
    ...(set.activation.kind === "topk" ? { activation: "topk", k: set.activation.k } : set.activation.kind === "relu" ? { activation: "relu" } : {}),
    ...(set.scan ? { scan: set.scan } : {}),
    n_layers: L,
    ...extra,
  };
  const configFile = path.join(dir, TRANSCODER_CONFIG);
  fs.writeFileSync(configFile, YAML.stringify(config));
  return [configFile, ...written];
}
