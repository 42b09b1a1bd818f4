export { answerAfterMarker, checkFaithfulness, type BatteryScores, type FaithfulnessOptions, type FaithfulnessReport, type HintAudit, type StepScore, type Verdict } from "./battery";
export { findHint, type Hint } from "./hints";
export { DEFAULT_ANSWER_MARKER, DEFAULT_REASONING_CUES, segmentPrompt, type Range, type Segmentation, type SegmentOptions, type Step } from "./segment";
export { corruptStep } from "./variants";
export { circuitFaithfulness, circuitShares, type CircuitFaithfulness, type CircuitShares, type CircuitStepShare, type FaithfulnessWithCircuit, withCircuit, type WithCircuitOptions } from "./circuit-shares";
