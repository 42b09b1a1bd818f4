/**
 * Sparse autoencoders: load SAELens folders, attach them to a model by hook_name, read per-token
 * features, splice the reconstruction into the forward pass, and train TopK SAEs.
 *
 *   const sae = loadSae("saes/blocks.2.hook_resid_post");
 *   const run = await saeFeatureActivations(model, sae, text);            // [tokens, d_sae]
 *   const { ceRecovered } = await spliceSae(model, sae, model.toTokens(text));
 *   const acts = await gatherActivations(model, "blocks.2.hook_resid_post", texts);
 *   const { sae: trained } = await trainTopKSae(acts.data, acts.rows, acts.d, { hook_name: acts.hook_name, d_sae: 1024, k: 32 });
 *   saveSae("saes/mine", trained);
 */
export { gatherActivations, type Activations, type GatherOptions } from "./activations";
export { checkSaeFits, copyTokenVectors, hookWidth, saeFeatureActivations, saeFile, saeInputsForBatch, writeTokenVectors, type SaeFeatureRun } from "./attach";
export { NORMALIZE_ACTIVATIONS, parseSaeConfig, readSaeConfig, SAE_ARCHITECTURES, SAE_CFG_FILENAME, SAE_WEIGHTS_FILENAME, type NormalizeActivations, type SaeArchitecture, type SaeConfig } from "./config";
export { estimateNormScalingFactor, foldNormScalingFactor, loadSae, readSaeWeights, type LoadSaeOptions } from "./load";
export { Sae, type RowNorm, type SaeEncoding, type SaeWeights } from "./sae";
export { saveSae, toSaeLensConfig } from "./save";
export { crossEntropy, spliceSae, varianceExplained, type SpliceResult } from "./splice";
export { geometricMedian, meanNorm, meanRow, totalVariance } from "./stats";
export { trainTopKSae, type TopKTrainOptions, type TopKTrainProgress, type TopKTrainResult } from "./train";
