/**
 * The probe panel's data and its message protocol. The extension posts a `ProbePanelState`; the
 * webview answers with `ProbePanelRequest`s, which are checked here before anything acts on them
 * (a webview is untrusted input: its page renders user text).
 */
import type { ReadyRequest } from "./panel-protocol";
import type { ProbeTraining } from "../probes";

export interface HookRow {
  readonly hook: string;
  readonly accuracy: number | null;
  readonly balancedAccuracy: number | null;
  readonly control: number | null;
  readonly selectivity: number | null;
  readonly trainAccuracy: number;
}

export interface ProbePanelState {
  readonly title: string;
  readonly data: string;
  readonly level: "token" | "sequence";
  readonly concept: string | null;
  readonly classes: readonly string[];
  readonly classCounts: Readonly<Record<string, number>>;
  readonly majorityBaseline: number;
  readonly folds: number;
  readonly best: string;
  readonly rows: readonly HookRow[];
  /** Out-of-fold confusion matrix at each hook ([true][predicted]). */
  readonly confusion: Readonly<Record<string, number[][]>>;
  readonly warnings: readonly string[];
}

export function probePanelState(training: ProbeTraining, title: string): ProbePanelState {
  const best = training.hooks.find((h) => h.hook === training.best) ?? training.hooks[0];
  const m = best.metrics;
  return {
    title,
    data: training.data,
    level: training.level,
    concept: training.concept ?? null,
    classes: training.classes,
    classCounts: m.classCounts,
    majorityBaseline: m.majorityBaseline,
    folds: m.cv?.folds ?? 0,
    best: training.best,
    rows: training.hooks.map(({ hook, metrics }) => ({
      hook,
      accuracy: metrics.cv?.accuracy ?? null,
      balancedAccuracy: metrics.cv?.balancedAccuracy ?? null,
      control: metrics.control?.accuracy ?? null,
      selectivity: metrics.selectivity ?? null,
      trainAccuracy: metrics.trainAccuracy,
    })),
    confusion: Object.fromEntries(training.hooks.filter((h) => h.metrics.cv).map((h) => [h.hook, h.metrics.cv!.confusion])),
    warnings: [...new Set(training.hooks.flatMap((h) => h.metrics.warnings))],
  };
}

export type ProbePanelRequest =
  | ReadyRequest
  | { readonly type: "apply"; readonly hook: string; readonly label: string }
  | { readonly type: "save"; readonly hook: string }
  | { readonly type: "monitor"; readonly hook: string; readonly label: string; readonly threshold: number };

/** The request if `message` is a well-formed one naming a known hook and class; else null. */
export function parseProbePanelRequest(message: unknown, state: Pick<ProbePanelState, "rows" | "classes">): ProbePanelRequest | null {
  if (typeof message !== "object" || message === null) return null;
  const m = message as Record<string, unknown>;
  const hookOk = typeof m.hook === "string" && state.rows.some((r) => r.hook === m.hook);
  const labelOk = typeof m.label === "string" && state.classes.includes(m.label);
  switch (m.type) {
    case "ready":
      return Object.keys(m).length === 1 ? { type: "ready" } : null;
    case "apply":
      return hookOk && labelOk ? { type: "apply", hook: m.hook as string, label: m.label as string } : null;
    case "save":
      return hookOk ? { type: "save", hook: m.hook as string } : null;
    case "monitor":
      return hookOk && labelOk && typeof m.threshold === "number" && Number.isFinite(m.threshold) && m.threshold >= 0 && m.threshold <= 1
        ? { type: "monitor", hook: m.hook as string, label: m.label as string, threshold: m.threshold }
        : null;
    default:
      return null;
  }
}

/** The class a lens or monitor watches by default: the rarer side of a binary probe, else the first non-"none". */
export function defaultWatchedLabel(classes: readonly string[], counts: Readonly<Record<string, number>>): string {
  const candidates = classes.filter((c) => c !== "none" && c !== "O");
  const pool = candidates.length > 0 ? candidates : [...classes];
  return pool.reduce((a, b) => ((counts[b] ?? 0) < (counts[a] ?? 0) ? b : a));
}
