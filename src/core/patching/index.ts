/** Activation patching sweeps and ablation attribution of prompt tokens. */
export { attributeTokens, attributionTargets, type AblationMethod, type AttributionOptions, type AttributionResult, type SegmentAttribution, type TokenAttribution } from "./attribution";
export { runVariants, type RowIntervention } from "./batched-runs";
export { describeMetric, firstDistinctTokens, singleToken, type AnswerPair, type MetricKind, type MetricSpec } from "./metrics";
export { isDegenerate, normalise, normaliseAll, type Baselines } from "./normalise";
export { HEAD_SWEEPS, isSweepKind, planSweep, POSITION_SWEEPS, SWEEP_KINDS, type HeadHook, type PatchTarget, type SweepKind } from "./plan";
export { parsePairFile, stringValueOffsets, type PatchingPair } from "./pairs";
export { lineSegments, wordSegments, type Segment } from "./segments";
export { checkAligned, DEFAULT_SWEEPS, patchActivations, patchingSweeps, type Direction, type PatchingOptions, type PatchingResult, type SweepResult } from "./sweep";
