/**
 * TransformerLens hook vocabulary. Every name here is both readable (a graph output) and
 * writable (an intervention point) in graphs Loupe builds.
 */

/** Hooks that exist once per model. */
export const GLOBAL_HOOKS = ["hook_embed", "hook_pos_embed", "ln_final.hook_normalized"] as const;

/** Hooks that exist once per block; the full name is `blocks.{L}.{suffix}`. */
export const BLOCK_HOOK_SUFFIXES = [
  "hook_resid_pre",
  "attn.hook_q",
  "attn.hook_k",
  "attn.hook_v",
  "attn.hook_attn_scores",
  "attn.hook_pattern",
  "attn.hook_z",
  "hook_attn_out",
  "hook_resid_mid",
  "mlp.hook_pre",
  "mlp.hook_post",
  "hook_mlp_out",
  "hook_resid_post",
] as const;

export type BlockHookSuffix = (typeof BLOCK_HOOK_SUFFIXES)[number];

export function blockHook(layer: number, suffix: BlockHookSuffix): string {
  return `blocks.${layer}.${suffix}`;
}

/** Every hook name of a model with `nLayers` blocks, in forward order. */
export function allHookNames(nLayers: number): string[] {
  const names: string[] = ["hook_embed", "hook_pos_embed"];
  for (let layer = 0; layer < nLayers; layer++) {
    for (const suffix of BLOCK_HOOK_SUFFIXES) names.push(blockHook(layer, suffix));
  }
  names.push("ln_final.hook_normalized");
  return names;
}

/**
 * The layout of a hook's activation, so callers know what each axis means.
 * `resid` is [batch, pos, d_model]; `heads` is [batch, pos, head, d_head];
 * `pattern` is [batch, head, query_pos, key_pos]; `mlp` is [batch, pos, d_mlp].
 */
export type HookLayout = "resid" | "heads" | "pattern" | "mlp";

export function hookLayout(name: string): HookLayout {
  if (/attn\.hook_(q|k|v|z)$/.test(name)) return "heads";
  if (/attn\.hook_(pattern|attn_scores)$/.test(name)) return "pattern";
  if (/mlp\.hook_(pre|post)$/.test(name)) return "mlp";
  return "resid";
}

/** Parse `blocks.{L}.{suffix}` into its layer, or undefined for global hooks. */
export function hookLayer(name: string): number | undefined {
  const match = /^blocks\.(\d+)\./.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Every hook name of a model in forward order: rotary models (the Llama family) have no hook_pos_embed. */
export function hookNamesFor(cfg: { readonly nLayers: number; readonly architecture: string }): string[] {
  const names = allHookNames(cfg.nLayers);
  return cfg.architecture === "gpt2" ? names : names.filter((name) => name !== "hook_pos_embed");
}
