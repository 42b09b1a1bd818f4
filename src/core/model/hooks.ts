/**
 * TransformerLens hook vocabulary, and the one place that reads hook names: a hook's block, its
 * suffix, the layout and shape of its activation, its head axis. Every name here is both readable
 * (a graph output) and writable (an intervention point) in graphs Loupe builds.
 */
import type { ModelConfig } from "./config";

/** Hooks that exist once per model (ln_final.hook_scale in RMSNorm models only). */
export const GLOBAL_HOOKS = ["hook_embed", "hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized"] as const;

/**
 * Hooks that exist once per block; the full name is `blocks.{L}.{suffix}`. In forward order. Not
 * every model has every one (blockSuffixesFor): GPT-2 has neither rotary nor RMSNorm scales.
 */
export const BLOCK_HOOK_SUFFIXES = [
  "hook_resid_pre",
  "ln1.hook_scale",
  "attn.hook_q",
  "attn.hook_k",
  "attn.hook_v",
  "attn.hook_rot_q",
  "attn.hook_rot_k",
  "attn.hook_attn_scores",
  "attn.hook_pattern",
  "attn.hook_z",
  "ln1_post.hook_scale",
  "ln1_post.hook_normalized",
  "hook_attn_out",
  "hook_resid_mid",
  "ln2.hook_scale",
  "mlp.hook_pre",
  "mlp.hook_post",
  "ln2_post.hook_scale",
  "ln2_post.hook_normalized",
  "hook_mlp_out",
  "hook_resid_post",
] as const;

export type BlockHookSuffix = (typeof BLOCK_HOOK_SUFFIXES)[number];

export function blockHook(layer: number, suffix: BlockHookSuffix): string {
  return `blocks.${layer}.${suffix}`;
}

/** `blocks.{L}.{suffix}`: how a hook at every layer is written in plans and messages. */
export function blockHookTemplate(suffix: BlockHookSuffix): string {
  return `blocks.{L}.${suffix}`;
}

const BLOCK_NAME = /^blocks\.(\d+)\.(.+)$/;

/** The block of `blocks.{L}.{suffix}`, or undefined for a global hook (hook_embed, ln_final.hook_normalized). */
export function layerOf(name: string): number | undefined {
  const match = BLOCK_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** What follows `blocks.{L}.` (`attn.hook_z`), or undefined for a global hook. */
export function suffixOf(name: string): string | undefined {
  return BLOCK_NAME.exec(name)?.[2];
}

/** Whether `name` is `blocks.{L}.{suffix}` for some layer L. */
export function isBlockHook(name: string, suffix: BlockHookSuffix): boolean {
  return suffixOf(name) === suffix;
}

/** attn.hook_k, attn.hook_rot_k and attn.hook_v: the hooks whose heads are the key/value heads (see HookDims.keyValueHeads). */
export function isKeyValueHook(name: string): boolean {
  const suffix = suffixOf(name);
  return suffix === "attn.hook_k" || suffix === "attn.hook_rot_k" || suffix === "attn.hook_v";
}

/**
 * The layout of a hook's activation, so callers know what each axis means.
 * `resid` is [batch, pos, d_model]; `heads` is [batch, pos, head, d_head];
 * `pattern` is [batch, head, query_pos, key_pos]; `mlp` is [batch, pos, d_mlp]; `scale` is
 * [batch, pos, 1] (a norm's divisor, one per token).
 */
export type HookLayout = "resid" | "heads" | "pattern" | "mlp" | "scale";

const LAYOUT_OF_SUFFIX: ReadonlyMap<string, HookLayout> = new Map([
  ["attn.hook_q", "heads"],
  ["attn.hook_k", "heads"],
  ["attn.hook_v", "heads"],
  ["attn.hook_rot_q", "heads"],
  ["attn.hook_rot_k", "heads"],
  ["attn.hook_z", "heads"],
  ["attn.hook_attn_scores", "pattern"],
  ["attn.hook_pattern", "pattern"],
  ["mlp.hook_pre", "mlp"],
  ["mlp.hook_post", "mlp"],
  ["ln1.hook_scale", "scale"],
  ["ln2.hook_scale", "scale"],
  ["ln1_post.hook_scale", "scale"],
  ["ln2_post.hook_scale", "scale"],
]);

export function hookLayout(name: string): HookLayout {
  if (name === "ln_final.hook_scale") return "scale";
  const suffix = suffixOf(name);
  return (suffix !== undefined ? LAYOUT_OF_SUFFIX.get(suffix) : undefined) ?? "resid";
}

/** Where the (query) position axis and the head axis sit in an activation of this layout. */
export function layoutAxes(layout: HookLayout): { readonly position: 1 | 2; readonly head?: 1 | 2 } {
  switch (layout) {
    case "heads":
      return { position: 1, head: 2 };
    case "pattern":
      return { position: 2, head: 1 };
    default:
      return { position: 1 };
  }
}

/** The axis of a hook's activation that holds (query) positions. */
export function positionAxis(name: string): 1 | 2 {
  return layoutAxes(hookLayout(name)).position;
}

/** ln_final's hooks: its scale (RMSNorm models) and the normalized stream. */
function isFinalNormHook(name: string): boolean {
  return name === "ln_final.hook_normalized" || name === "ln_final.hook_scale";
}

/**
 * The block whose rows hold this hook when rows start at different blocks (RunOptions.startAt):
 * its own; hook_embed and hook_pos_embed feed block 0; ln_final comes after the last block.
 */
export function blockOf(name: string, nLayers: number): number {
  return layerOf(name) ?? (isFinalNormHook(name) ? nLayers - 1 : 0);
}

/**
 * Whether a hook holds only the logit positions when a run asks for some (RunOptions.logitPositions):
 * the last block runs at every position up to its keys and values, and from its attention scores
 * on only there; ln_final follows it.
 */
export function narrowedByLogitPositions(name: string, nLayers: number): boolean {
  if (isFinalNormHook(name)) return true;
  const suffix = suffixOf(name);
  if (layerOf(name) !== nLayers - 1 || suffix === undefined) return false;
  const at = BLOCK_HOOK_SUFFIXES.indexOf(suffix as BlockHookSuffix);
  return at >= BLOCK_HOOK_SUFFIXES.indexOf("attn.hook_attn_scores");
}

/** What a model's blocks have besides GPT-2's hooks. */
export interface HookFamily {
  readonly architecture: string;
  /**
   * Gemma's norms on the attention and MLP outputs before they join the residual (TransformerLens's
   * ln1_post and ln2_post): their scales and x / rms(x), before the gain.
   */
  readonly postNorms?: boolean;
}

/** Rotary keys and queries and RMSNorm scales: the Llama family's, absent from GPT-2. */
const ROTARY_RMS_SUFFIXES: ReadonlySet<string> = new Set(["ln1.hook_scale", "attn.hook_rot_q", "attn.hook_rot_k", "ln2.hook_scale"]);
const POST_NORM_SUFFIXES: ReadonlySet<string> = new Set(["ln1_post.hook_scale", "ln1_post.hook_normalized", "ln2_post.hook_scale", "ln2_post.hook_normalized"]);

/** The block hook suffixes a model has, in forward order. */
export function blockSuffixesFor(family: HookFamily): BlockHookSuffix[] {
  const rotary = family.architecture !== "gpt2";
  return BLOCK_HOOK_SUFFIXES.filter((s) => (rotary || !ROTARY_RMS_SUFFIXES.has(s)) && (family.postNorms || !POST_NORM_SUFFIXES.has(s)));
}

/**
 * Every hook name of a model in forward order. GPT-2 has positional embeddings and LayerNorm
 * without a scale hook; rotary models (the Llama family) have no hook_pos_embed, and have the
 * rotated queries and keys and every RMSNorm's scale; Gemma's have the post-norm hooks.
 */
export function hookNamesFor(cfg: HookFamily & { readonly nLayers: number }): string[] {
  const gpt2 = cfg.architecture === "gpt2";
  const suffixes = blockSuffixesFor(cfg);
  const names: string[] = gpt2 ? ["hook_embed", "hook_pos_embed"] : ["hook_embed"];
  for (let layer = 0; layer < cfg.nLayers; layer++) for (const suffix of suffixes) names.push(blockHook(layer, suffix));
  if (!gpt2) names.push("ln_final.hook_scale");
  names.push("ln_final.hook_normalized");
  return names;
}

/**
 * The sizes that set every hook's shape. `keyValueHeads` is the head axis of attn.hook_k and
 * attn.hook_v: a grouped-query model's key/value heads (TransformerLens's default), or one slot per
 * query head when they are ungrouped (LoadOptions.ungroupGroupedQueryAttention).
 */
export interface HookDims {
  readonly nLayers: number;
  readonly dModel: number;
  readonly nHeads: number;
  readonly keyValueHeads: number;
  readonly dHead: number;
  readonly dMlp: number;
}

export function hookDims(cfg: ModelConfig, options: { readonly ungroupGroupedQueryAttention?: boolean } = {}): HookDims {
  const { nLayers, dModel, nHeads, dHead, dMlp } = cfg;
  const grouped = cfg.architecture === "llama" && !options.ungroupGroupedQueryAttention;
  return { nLayers, dModel, nHeads, keyValueHeads: grouped ? cfg.nKvHeads : nHeads, dHead, dMlp };
}

/** The size of a hook's head axis, or undefined when it has none. */
export function headsAt(dims: HookDims, name: string): number | undefined {
  const layout = hookLayout(name);
  if (layout === "pattern") return dims.nHeads;
  if (layout !== "heads") return undefined;
  return isKeyValueHook(name) ? dims.keyValueHeads : dims.nHeads;
}

/** The full activation shape of a hook for a run of `batch` sequences of `seq` tokens. */
export function hookShape(dims: HookDims, name: string, batch: number, seq: number): number[] {
  switch (hookLayout(name)) {
    case "resid":
      return [batch, seq, dims.dModel];
    case "heads":
      return [batch, seq, headsAt(dims, name) ?? dims.nHeads, dims.dHead];
    case "pattern":
      return [batch, dims.nHeads, seq, seq];
    case "mlp":
      return [batch, seq, dims.dMlp];
    case "scale":
      return [batch, seq, 1];
  }
}
