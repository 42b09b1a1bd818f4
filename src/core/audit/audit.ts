/**
 * Quick audit of one prompt: each enabled rule looks at the model's view of the text and reports
 * findings with a range, a severity, a code, a message and the numbers behind it. Rules that need a
 * chain of thought run only on prompts that have one.
 */
import { throwIfAborted } from "../errors";
import { compileGuardedPattern } from "../regex-guard";
import { checkFaithfulness, segmentPrompt } from "../faithfulness";
import { inspectText } from "../inspect";
import type { HookedModel } from "../model/hooked-model";
import type { AuditConfig, RuleCode, Severity } from "./config";

export interface AuditFinding {
  /** UTF-16 range in the audited text. */
  readonly start: number;
  readonly end: number;
  readonly severity: Severity;
  readonly code: RuleCode;
  readonly message: string;
  readonly evidence: Readonly<Record<string, number | string | boolean>>;
}

export interface PromptAudit {
  readonly findings: AuditFinding[];
  /** Tokens the model saw (after truncation to its window). */
  readonly tokens: number;
  /** Rules that did not apply, and why (e.g. no chain of thought). */
  readonly skipped: string[];
}

/** Probe monitors, resolved by the caller (the core does not read workspace files for rules). */
export interface ProbeMonitorRunner {
  /** probe-monitor: a linear probe's class probability; feature-monitor: an SAE latent's activation. */
  readonly code: "probe-monitor" | "feature-monitor";
  readonly label: string;
  readonly threshold: number;
  readonly severity: Severity;
  readonly name: string;
  /** Added to each finding's evidence, e.g. the SAE folder and feature so the editor can open its dashboard. */
  readonly evidence?: Readonly<Record<string, number | string>>;
  /** Probability of `label` per token, with token ranges. */
  score(text: string, signal?: AbortSignal): Promise<{ start: number; end: number; prob: number }[]>;
}

export async function auditPrompt(
  model: HookedModel,
  text: string,
  config: AuditConfig,
  options: { signal?: AbortSignal; probes?: readonly ProbeMonitorRunner[] } = {},
): Promise<PromptAudit> {
  const { signal } = options;
  const findings: AuditFinding[] = [];
  const skipped: string[] = [];
  const rules = config.rules;

  // The model reads at most its window, leading <s> included (HookedModel.encode); later rules see what it sees.
  const encoding = model.encode(text);
  let seen = text;
  if (encoding.ids.length > model.cfg.nCtx) {
    const cut = encoding.offsets[model.cfg.nCtx][0];
    seen = text.slice(0, cut);
    if (rules["prompt-truncated"].enabled) {
      findings.push({
        start: cut,
        end: text.length,
        severity: rules["prompt-truncated"].severity,
        code: "prompt-truncated",
        message: `The model reads only the first ${model.cfg.nCtx} of this prompt's ${encoding.ids.length} tokens; everything from here on is cut off.`,
        evidence: { tokens: encoding.ids.length, window: model.cfg.nCtx },
      });
    }
  }
  const tokens = Math.min(encoding.ids.length, model.cfg.nCtx);
  if (seen.trim() === "") return { findings, tokens, skipped: ["the prompt is empty"] };

  const surprisal = rules["high-surprisal"];
  if (surprisal.enabled) {
    const inspection = await inspectText(model, seen, { topK: 1, signal });
    for (const run of highRuns(inspection.tokens.map((t) => t.surprisal), surprisal.bits, surprisal.minTokens, 1)) {
      const first = inspection.tokens[run.from];
      const last = inspection.tokens[run.to - 1];
      const bits = inspection.tokens.slice(run.from, run.to).map((t) => t.surprisal ?? 0);
      findings.push({
        start: first.start,
        end: last.end,
        severity: surprisal.severity,
        code: "high-surprisal",
        message: `${run.to - run.from} tokens the model finds very unlikely (mean ${mean(bits).toFixed(1)} bits, over ${surprisal.bits}): a typo, garbled text or something out of distribution?`,
        evidence: { tokens: run.to - run.from, meanBits: round(mean(bits)), maxBits: round(Math.max(...bits)) },
      });
    }
  }
  throwIfAborted(signal);

  const cotRule = rules["cot-not-load-bearing"];
  const hintRule = rules["unverbalised-hint"];
  if (cotRule.enabled || hintRule.enabled) {
    const f = config.faithfulness;
    const segmentOptions = { answerMarker: f.answerMarker, reasoningCues: f.reasoningCues };
    const hasCot = (() => {
      try {
        const seg = segmentPrompt(seen, segmentOptions);
        return seg.marker !== null && seg.steps.length > 0;
      } catch {
        return false;
      }
    })();
    if (!hasCot) {
      skipped.push("CoT rules: no reasoning followed by an answer marker");
    } else {
      const report = await checkFaithfulness(model, seen, { ...segmentOptions, hintPattern: f.hintPattern ? compileGuardedPattern(f.hintPattern, "", "The audit's faithfulness.hintPattern") : undefined, mistakes: f.mistakes, signal });
      const steps = report.steps;
      const overall = report.scores.overall;
      if (cotRule.enabled && overall !== null && overall < cotRule.threshold && steps.length > 0) {
        findings.push({
          start: steps[0].start,
          end: steps[steps.length - 1].end,
          severity: cotRule.severity,
          code: "cot-not-load-bearing",
          message: `The answer "${report.answer.text.trim()}" does not rest on this reasoning (faithfulness ${overall.toFixed(2)} < ${cotRule.threshold}): cutting, removing or corrupting the steps leaves it in place.`,
          evidence: {
            overall: round(overall),
            earlyAnswering: round(report.scores.earlyAnswering ?? NaN),
            stepAblation: round(report.scores.stepAblation ?? NaN),
            mistakes: round(report.scores.mistakes ?? NaN),
            filler: round(report.scores.filler ?? NaN),
            forwardPasses: report.forwardPasses,
          },
        });
      }
      const h = report.hint;
      if (hintRule.enabled && h?.unverbalised) {
        findings.push({
          start: h.hint.start,
          end: h.hint.end,
          severity: hintRule.severity,
          code: "unverbalised-hint",
          message: `The answer follows this hint, and the reasoning never mentions it: (${h.choice}) with the hint, (${h.choiceWithoutHint}) without.`,
          evidence: { choice: h.choice, choiceWithoutHint: h.choiceWithoutHint, hintedProb: round(h.probs[h.hint.label]), hintedProbWithout: round(h.probsWithoutHint[h.hint.label]) },
        });
      }
    }
  }

  for (const monitor of options.probes ?? []) {
    throwIfAborted(signal);
    const scores = await monitor.score(seen, signal);
    const runs = highRuns(scores.map((s) => s.prob), monitor.threshold, 1);
    for (const run of runs) {
      const probs = scores.slice(run.from, run.to).map((s) => s.prob);
      findings.push({
        start: scores[run.from].start,
        end: scores[run.to - 1].end,
        severity: monitor.severity,
        code: monitor.code,
        message:
          monitor.code === "probe-monitor"
            ? `Probe ${monitor.name} sees "${monitor.label}" here (p up to ${Math.max(...probs).toFixed(2)}, threshold ${monitor.threshold}).`
            : `SAE feature ${monitor.name} (${monitor.label}) fires here (activation up to ${Math.max(...probs).toFixed(2)}, threshold ${monitor.threshold}).`,
        evidence: { monitor: monitor.name, label: monitor.label, max: round(Math.max(...probs)), tokens: run.to - run.from, ...monitor.evidence },
      });
    }
  }
  findings.sort((a, b) => a.start - b.start || a.end - b.end);
  return { findings, tokens, skipped };
}

/**
 * Maximal runs of values >= threshold (nulls count as low), where runs separated by at most
 * `maxGap` low values merge; runs shorter than `minLength` are dropped.
 */
export function highRuns(values: readonly (number | null)[], threshold: number, minLength: number, maxGap = 0): { from: number; to: number }[] {
  const raw: { from: number; to: number }[] = [];
  let from = -1;
  values.forEach((v, i) => {
    const high = v !== null && v >= threshold;
    if (high && from < 0) from = i;
    if (!high && from >= 0) {
      raw.push({ from, to: i });
      from = -1;
    }
  });
  if (from >= 0) raw.push({ from, to: values.length });
  const merged: { from: number; to: number }[] = [];
  for (const run of raw) {
    const last = merged[merged.length - 1];
    if (last && run.from - last.to <= maxGap) last.to = run.to;
    else merged.push({ ...run });
  }
  return merged.filter((r) => r.to - r.from >= minLength);
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
