/**
 * Published dictionaries Loupe knows by SAELens's names (`RELEASE/SAE_ID`), with the facts from
 * SAELens's pretrained_saes.yaml: the hub repository, the folder of each SAE in it, its hook, the
 * model it was trained on, its Neuronpedia source and the TransformerLens weight processing the
 * model had during training. Only releases for models Loupe loads (or is about to) are listed.
 *
 * Ids are matched by pattern, so a release with hundreds of SAEs (every layer x width x L0) is one
 * row; an id the pattern accepts but the repository lacks fails at download with the hub's answer.
 */

/** How the files of one SAE are laid out in its folder. */
export type SaeFileFormat =
  /** cfg.json + sae_weights.safetensors (+ sparsity.safetensors). */
  | "saelens"
  /** Gemma Scope 1: params.npz with W_enc, W_dec, b_enc, b_dec, threshold (JumpReLU). */
  | "gemma-scope"
  /** Gemma Scope 2: params.safetensors (w_enc, w_dec, b_enc, b_dec, threshold) + config.json. */
  | "gemma-scope-2"
  /** Llama Scope: hyperparams.json + checkpoints/final.safetensors (encoder.weight, decoder.weight, biases). */
  | "llama-scope";

/**
 * TransformerLens's from_pretrained processing of the model the SAE was trained on. Loupe runs the
 * unprocessed model and maps activations at the SAE's hook to what the processed model gives
 * (see processing.ts).
 */
export interface ModelProcessing {
  readonly fold_ln: boolean;
  readonly center_writing_weights: boolean;
  readonly center_unembed: boolean;
}

export const NO_PROCESSING: ModelProcessing = { fold_ln: false, center_writing_weights: false, center_unembed: false };

export interface SaeRelease {
  readonly release: string;
  /** Hub repository holding the files. */
  readonly repo: string;
  /** The model's name in SAELens (TransformerLens's name) and its hub repo, which Loupe loads. */
  readonly model: string;
  readonly hubModel: string;
  readonly format: SaeFileFormat;
  /** The SAE ids of the release. */
  readonly ids: RegExp;
  /** An example id, for messages. */
  readonly example: string;
  /** The folder in the repository holding an SAE's files. */
  readonly path: (id: string) => string;
  /** The id whose folder is `folder`, where ids are not folder names (path's inverse). */
  readonly idOfPath?: (folder: string) => string | undefined;
  /** The TransformerLens hook an SAE reads (needed where the files do not say). */
  readonly hook: (id: string) => string;
  /** Neuronpedia's {model}/{source} for an SAE, when Neuronpedia hosts it. */
  readonly neuronpedia?: (id: string) => string | undefined;
  readonly processing: ModelProcessing;
}

const layerOf = (id: string): number => Number(/(?:blocks\.|layer_)(\d+)/.exec(id)?.[1]);

function gemmaScope2(size: "270m" | "1b", site: "res" | "res-all"): SaeRelease {
  const folder = site === "res" ? "resid_post" : "resid_post_all";
  const npModel = `gemma-3-${size}`;
  return {
    release: `gemma-scope-2-${size}-pt-${site}`,
    repo: `google/gemma-scope-2-${size}-pt`,
    model: `google/gemma-3-${size}${size === "1b" ? "-pt" : ""}`,
    hubModel: `google/gemma-3-${size}${size === "1b" ? "-pt" : ""}`,
    format: "gemma-scope-2",
    ids: /^layer_\d+_width_(16k|65k|262k|1m)_l0_(small|medium|big)$/,
    example: "layer_12_width_16k_l0_medium",
    path: (id) => `${folder}/${id}`,
    hook: (id) => `blocks.${layerOf(id)}.hook_resid_post`,
    // Neuronpedia hosts the 16k residual dictionaries as {layer}-gemmascope-2-res-16k.
    neuronpedia: (id) => (/_width_16k_/.test(id) ? `${npModel}/${layerOf(id)}-gemmascope-2-res-16k` : undefined),
    processing: NO_PROCESSING,
  };
}

const LLAMA_SCOPE_SITES = { r: { name: "res", hook: "hook_resid_post" }, a: { name: "att", hook: "hook_attn_out" }, m: { name: "mlp", hook: "hook_mlp_out" } } as const;

/**
 * Llama Scope (OpenMOSS): JumpReLU SAEs on every layer of Llama-3.1-8B at three sites, 8x (32k)
 * or 32x (131k) wide; SAELens's llama_scope_lx{r,a,m}_{8,32}x.
 */
function llamaScope(site: keyof typeof LLAMA_SCOPE_SITES, expansion: 8 | 32): SaeRelease {
  const { name, hook } = LLAMA_SCOPE_SITES[site];
  const S = site.toUpperCase();
  const layer = (id: string): number => Number(/^l(\d+)/.exec(id)?.[1]);
  return {
    release: `llama_scope_lx${site}_${expansion}x`,
    repo: `fnlp/Llama3_1-8B-Base-LX${S}-${expansion}x`,
    model: "meta-llama/Llama-3.1-8B",
    hubModel: "meta-llama/Llama-3.1-8B",
    format: "llama-scope",
    ids: new RegExp(`^l([0-9]|[12][0-9]|3[01])${site}_${expansion}x$`),
    example: `l15${site}_${expansion}x`,
    path: (id) => `Llama3_1-8B-Base-L${layer(id)}${S}-${expansion}x`,
    idOfPath: (folder) => {
      const m = new RegExp(`^Llama3_1-8B-Base-L(\\d+)${S}-${expansion}x$`).exec(folder);
      return m ? `l${m[1]}${site}_${expansion}x` : undefined;
    },
    hook: (id) => `blocks.${layer(id)}.${hook}`,
    neuronpedia: (id) => `llama3.1-8b/${layer(id)}-llamascope-${name}-${expansion === 8 ? "32k" : "131k"}`,
    // RMSNorm models: TransformerLens's processing leaves the residual stream as it is.
    processing: NO_PROCESSING,
  };
}

export const SAE_RELEASES: readonly SaeRelease[] = [
  {
    // Joseph Bloom's residual-stream SAEs: hook_resid_pre of every layer, and resid_post of the last.
    release: "gpt2-small-res-jb",
    repo: "jbloom/GPT2-Small-SAEs-Reformatted",
    model: "gpt2-small",
    hubModel: "openai-community/gpt2",
    format: "saelens",
    ids: /^blocks\.(\d|1[01])\.hook_resid_pre$|^blocks\.11\.hook_resid_post$/,
    example: "blocks.6.hook_resid_pre",
    path: (id) => id,
    hook: (id) => id,
    // Neuronpedia numbers these by the residual stream position: resid_post of layer 11 is "12".
    neuronpedia: (id) => `gpt2-small/${id.endsWith("hook_resid_post") ? layerOf(id) + 1 : layerOf(id)}-res-jb`,
    // The yaml's config_overrides.model_from_pretrained_kwargs: SAELens loads the model with these.
    processing: { fold_ln: false, center_writing_weights: true, center_unembed: false },
  },
  gemmaScope2("270m", "res"),
  gemmaScope2("270m", "res-all"),
  gemmaScope2("1b", "res"),
  gemmaScope2("1b", "res-all"),
  {
    // SAELens's llama-3-8b-it-res-jh: one residual SAE on Llama 3 8B Instruct, in SAELens's layout.
    release: "llama-3-8b-it-res-jh",
    repo: "Juliushanhanhan/llama-3-8b-it-res",
    model: "meta-llama/Meta-Llama-3-8B-Instruct",
    hubModel: "meta-llama/Meta-Llama-3-8B-Instruct",
    format: "saelens",
    ids: /^blocks\.25\.hook_resid_post$/,
    example: "blocks.25.hook_resid_post",
    path: (id) => id,
    hook: (id) => id,
    neuronpedia: () => "llama3-8b-it/25-res-jh",
    processing: NO_PROCESSING,
  },
  ...(["r", "a", "m"] as const).flatMap((site) => [llamaScope(site, 8), llamaScope(site, 32)]),
];

/** A release by name. */
export function findRelease(name: string): SaeRelease | undefined {
  return SAE_RELEASES.find((r) => r.release === name);
}
