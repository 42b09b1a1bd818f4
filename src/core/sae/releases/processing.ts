/**
 * What TransformerLens's weight processing changes at each hook, so that an SAE trained on a
 * processed HookedTransformer sees, on Loupe's unprocessed model, the activations it was trained on.
 *
 * - center_writing_weights subtracts the d_model mean from every matrix and bias that writes to the
 *   residual stream (W_E, W_pos, W_O, b_O, W_out, b_out). The stream is their sum, so every residual
 *   hook (hook_embed, hook_pos_embed, hook_resid_pre/mid/post, hook_attn_out, hook_mlp_out) becomes
 *   its own value minus its mean over d_model. LayerNorm subtracts that mean anyway, so nothing
 *   downstream of a LayerNorm changes.
 * - fold_ln moves LayerNorm's gain and bias into the next layer's weights. Attention and MLP
 *   activations (hook_q/k, hook_pre, hook_post, hook_pattern) keep their values; only the
 *   LayerNorm's own output (ln*.hook_normalized) loses its gain and bias, which depends on the model.
 * - fold_value_biases (on with fold_ln in from_pretrained) moves b_V into b_O: hook_v and hook_z
 *   lose b_V, again a model weight.
 * - center_unembed shifts every logit of a position by one constant: no hook changes.
 */
import { LoupeError } from "../../errors";
import type { ModelProcessing } from "./registry";

/** What to do to an activation before encoding: nothing, or subtract its mean over d_model. */
export type ActivationTransform = "none" | "center";

const RESIDUAL_WRITES = /(^|\.)hook_(embed|pos_embed|resid_pre|resid_mid|resid_post|attn_out|mlp_out)$/;
const NEEDS_MODEL_WEIGHTS = /(^|\.)(hook_normalized|hook_v|hook_z)$/;

/** The transform that gives `hook`'s activation under `processing`; a LoupeError where one cannot be made from the activation alone. */
export function processingTransform(hook: string, processing: ModelProcessing | undefined, source = "this SAE"): ActivationTransform {
  if (!processing || (!processing.fold_ln && !processing.center_writing_weights)) return "none";
  if (processing.fold_ln && NEEDS_MODEL_WEIGHTS.test(hook)) {
    throw new LoupeError(
      "unsupported-architecture",
      `${source} reads ${hook} of a TransformerLens model processed with fold_ln (and fold_value_biases), where that activation depends on the model's LayerNorm or value-bias weights. ` +
        `Loupe maps processed activations only at residual-stream, attention and MLP hooks; use a dictionary trained without processing (from_pretrained_no_processing) for this hook.`,
    );
  }
  return processing.center_writing_weights && RESIDUAL_WRITES.test(hook) ? "center" : "none";
}
