/**
 * Linear probes: logistic regression on any hook, at token level (labelled spans) or sequence
 * level (labelled prompts), with k-fold cross-validation and Hewitt & Liang control tasks.
 *
 *   const data = readProbeDataset("sentiment.jsonl");
 *   const features = await extractFeatures(model, data);           // every layer, one pass a batch
 *   const { best } = trainAcrossHooks(features);                     // CV accuracy, control, selectivity
 *   saveProbe(path.join(probeFolder(root), "sentiment.json"), toProbeFile(best.probe, {...}));
 *   const scores = await applyProbe(model, loadProbe(file), "Mia was not happy.");
 */
export { applyProbe, checkProbeFits, scoreRows, type ProbeApplication, type TokenScore } from "./apply";
export { controlTask, typeOfString, type ControlTask } from "./control-task";
export { groupedFolds, stratifiedFolds } from "./cross-validation";
export { appendToDataset, labelLines, OUTSIDE_LABEL, parseProbeDataset, readProbeDataset, readProbeDatasetAsync, spanLabels, tokenLabels, toJsonl, type LabelledSpan, type ProbeDataset, type SequenceExample, type TokenExample } from "./dataset";
export { checkProbeHook, extractFeatures, layerSweepHooks, tokenActivations, type FeatureOptions, type Features, type Pooling } from "./features";
export { minimizeLbfgs, type LbfgsOptions, type LbfgsResult } from "./lbfgs";
export { classCounts, fitLogistic, predict, predictProba, type ClassWeight, type LogisticFit, type LogisticModel, type LogisticOptions } from "./logistic";
export { accuracy, balancedAccuracy, confusionMatrix, majorityBaseline } from "./metrics";
export { loadProbe, probeFileName, probeFolder, probeModel, saveProbe, toProbeFile, validateProbe, type ProbeFile, type ProbeFileContext } from "./probe-file";
export { fitStandardiser, standardise, type Standardiser } from "./standardise";
export { trainAcrossHooks, type HookProbe, type SweepResult } from "./sweep";
export { crossValidate, encodeLabels, fitStandardised, foldAssignment, predictRows, trainProbe, type CvScores, type ProbeMetrics, type TrainedProbe, type TrainProbeOptions } from "./train";
export { trainProbes, type ProbeTraining, type ProbeTrainingOptions } from "./workflow";
