/**
 * Training a probe on extracted features: label encoding, standardise-then-fit, k-fold
 * cross-validation of the task and of its control task, and the final fit on every row.
 */
import { LoupeError, throwIfAborted } from "../errors";
import { controlTask } from "./control-task";
import { groupedFolds, stratifiedFolds } from "./cross-validation";
import { classCounts, type ClassWeight, fitLogistic, type LogisticFit, type LogisticOptions, predict } from "./logistic";
import { accuracy, balancedAccuracy, confusionMatrix, majorityBaseline } from "./metrics";
import { fitStandardiser, standardise, type Standardiser } from "./standardise";

export interface EncodedLabels {
  /** Sorted class names. */
  readonly classes: string[];
  /** Class index of each row. */
  readonly y: Int32Array;
}

/**
 * Class indices for string labels. One class only is an error the user must fix: there is nothing
 * to separate. `source` names the data in the message.
 */
export function encodeLabels(labels: readonly string[], source = "the data"): EncodedLabels {
  const classes = [...new Set(labels)].sort();
  if (classes.length === 0) throw new LoupeError("empty-input", `${source} has no labelled examples.`);
  if (classes.length === 1) {
    throw new LoupeError(
      "bad-argument",
      `${source} has only one class ("${classes[0]}", ${labels.length} examples); a probe needs examples of at least two labels to tell apart. Add examples of another label.`,
    );
  }
  const index = new Map(classes.map((c, i) => [c, i]));
  return { classes, y: Int32Array.from(labels, (l) => index.get(l) ?? 0) };
}

export interface FittedProbe {
  readonly standardiser: Standardiser;
  readonly fit: LogisticFit;
}

/** Standardise on the given rows, then fit. */
export function fitStandardised(X: ArrayLike<number>, n: number, d: number, y: ArrayLike<number>, K: number, options: LogisticOptions = {}): FittedProbe {
  const standardiser = fitStandardiser(X, n, d);
  return { standardiser, fit: fitLogistic(standardise(X, n, d, standardiser), n, d, y, K, options) };
}

export function predictRows(p: FittedProbe, X: ArrayLike<number>, n: number): Int32Array {
  return predict(p.fit, standardise(X, n, p.fit.dim, p.standardiser), n);
}

export interface CvScores {
  readonly folds: number;
  /** Out-of-fold accuracy over every row. */
  readonly accuracy: number;
  readonly balancedAccuracy: number;
  readonly foldAccuracy: number[];
  /** Out-of-fold confusion matrix: [true class][predicted class] counts. */
  readonly confusion: number[][];
}

export interface CvOptions extends LogisticOptions {
  /** Number of folds (default 5). */
  readonly folds?: number;
  readonly seed?: number;
  /** Rows sharing a group stay in one fold (token rows of one text). */
  readonly groups?: ArrayLike<number>;
  readonly signal?: AbortSignal;
}

/** Fold index of each row: grouped when groups are given, else stratified. */
export function foldAssignment(y: ArrayLike<number>, K: number, options: CvOptions): Int32Array {
  const k = options.folds ?? 5;
  return options.groups ? groupedFolds(options.groups, k, options.seed ?? 0) : stratifiedFolds(y, K, k, options.seed ?? 0);
}

/**
 * k-fold cross-validation with fixed folds. A training fold that lacks a class is fitted on the
 * classes it has (the probe then never predicts the missing one), as sklearn would.
 */
export function crossValidate(X: ArrayLike<number>, n: number, d: number, y: ArrayLike<number>, K: number, fold: Int32Array, options: CvOptions = {}): CvScores {
  const k = fold.reduce((a, b) => Math.max(a, b), 0) + 1;
  const pred = new Int32Array(n);
  const foldAccuracy: number[] = [];
  for (let f = 0; f < k; f++) {
    throwIfAborted(options.signal);
    const trainRows: number[] = [];
    const testRows: number[] = [];
    for (let i = 0; i < n; i++) (fold[i] === f ? testRows : trainRows).push(i);
    if (testRows.length === 0) continue;
    const present = [...new Set(trainRows.map((i) => y[i]))].sort((a, b) => a - b);
    const testTruth = testRows.map((i) => y[i]);
    let testPred: number[];
    if (present.length < 2) {
      // Nothing to fit: the only answer the training fold knows.
      testPred = testRows.map(() => present[0] ?? 0);
    } else {
      const compact = new Map(present.map((c, i) => [c, i]));
      const weights = Array.isArray(options.classWeight) ? present.map((c) => (options.classWeight as readonly number[])[c]) : options.classWeight;
      const fitted = fitStandardised(gather(X, trainRows, d), trainRows.length, d, Int32Array.from(trainRows, (i) => compact.get(y[i]) ?? 0), present.length, { ...options, classWeight: weights });
      testPred = [...predictRows(fitted, gather(X, testRows, d), testRows.length)].map((c) => present[c]);
    }
    testRows.forEach((row, i) => (pred[row] = testPred[i]));
    foldAccuracy.push(accuracy(testTruth, testPred));
  }
  const truth = Int32Array.from({ length: n }, (_, i) => y[i]);
  return { folds: k, accuracy: accuracy(truth, pred), balancedAccuracy: balancedAccuracy(truth, pred, K), foldAccuracy, confusion: confusionMatrix(truth, pred, K) };
}

/** Copy the given rows of X into a new [rows, d] array. */
export function gather(X: ArrayLike<number>, rows: readonly number[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) out[i * d + j] = X[r * d + j];
  });
  return out;
}

export interface TrainProbeOptions extends LogisticOptions {
  /** Cross-validation folds; 0 skips cross-validation (default 5). */
  readonly folds?: number;
  readonly seed?: number;
  /** Also cross-validate a control task (needs types; default true). */
  readonly control?: boolean;
  readonly signal?: AbortSignal;
}

export interface ProbeMetrics {
  readonly rows: number;
  readonly classCounts: Record<string, number>;
  /** Weight each class got in the loss. */
  readonly classWeights: Record<string, number>;
  readonly majorityBaseline: number;
  readonly trainAccuracy: number;
  readonly cv?: CvScores;
  /** Cross-validated accuracy on the control task (same folds, same probe). */
  readonly control?: CvScores;
  /** cv.accuracy - control.accuracy (Hewitt & Liang). */
  readonly selectivity?: number;
  readonly iterations: number;
  readonly converged: boolean;
  /** Things the user should know: unbalanced classes, no convergence, too few examples of a class. */
  readonly warnings: string[];
}

export interface TrainedProbe extends FittedProbe, EncodedLabels {
  readonly metrics: ProbeMetrics;
}

/** Imbalance above this max/min class ratio is reported. */
const UNBALANCED_RATIO = 3;

/**
 * Train a probe on rows X ([n, d]) with string labels: cross-validate it and its control task,
 * then fit on every row. Class weights default to "balanced" (sklearn's default is none): probe
 * labels are usually rare ("name" among thousands of "none" tokens) and an unweighted probe
 * would learn the majority.
 */
export function trainProbe(
  X: ArrayLike<number>,
  n: number,
  d: number,
  labels: readonly string[],
  options: TrainProbeOptions & { groups?: ArrayLike<number>; types?: ArrayLike<number>; source?: string } = {},
): TrainedProbe {
  const { classes, y } = encodeLabels(labels, options.source);
  const K = classes.length;
  const counts = classCounts(y, K);
  const classWeight: ClassWeight = options.classWeight ?? "balanced";
  const fitOptions: LogisticOptions = { C: options.C, classWeight, maxIter: options.maxIter, tol: options.tol };
  const warnings: string[] = [];
  const min = Math.min(...counts);
  const max = Math.max(...counts);
  const countText = classes.map((c, i) => `${c}: ${counts[i]}`).join(", ");
  if (max / min > UNBALANCED_RATIO) {
    warnings.push(
      classWeight === "balanced"
        ? `Classes are unbalanced (${countText}); "balanced" class weights applied. Compare balanced accuracy and the majority baseline, not accuracy alone.`
        : `Classes are unbalanced (${countText}) and no class weights are applied: the probe may learn the majority class.`,
    );
  }

  let cv: CvScores | undefined;
  let control: CvScores | undefined;
  const folds = options.folds ?? 5;
  if (folds > 0) {
    const k = options.groups ? folds : Math.min(folds, n);
    if (!options.groups && min < k) warnings.push(`The smallest class has ${min} examples, fewer than the ${k} folds: some folds miss it.`);
    const cvOptions: CvOptions = { ...fitOptions, folds: k, seed: options.seed, groups: options.groups, signal: options.signal };
    const fold = foldAssignment(y, K, cvOptions);
    cv = crossValidate(X, n, d, y, K, fold, cvOptions);
    if (options.control !== false && options.types) {
      const yControl = controlTask(y, K, options.seed ?? 0).labels(options.types);
      control = crossValidate(X, n, d, yControl, K, fold, cvOptions);
    }
  }

  const fitted = fitStandardised(X, n, d, y, K, fitOptions);
  if (!fitted.fit.converged) warnings.push(`The optimiser stopped after ${fitted.fit.iterations} iterations without converging; raise maxIter or lower C.`);
  const trainAccuracy = accuracy(y, predictRows(fitted, X, n));
  return {
    ...fitted,
    classes,
    y,
    metrics: {
      rows: n,
      classCounts: Object.fromEntries(classes.map((c, i) => [c, counts[i]])),
      classWeights: Object.fromEntries(classes.map((c, i) => [c, fitted.fit.classWeights[i]])),
      majorityBaseline: majorityBaseline(y, K),
      trainAccuracy,
      cv,
      control,
      selectivity: cv && control ? cv.accuracy - control.accuracy : undefined,
      iterations: fitted.fit.iterations,
      converged: fitted.fit.converged,
      warnings,
    },
  };
}
