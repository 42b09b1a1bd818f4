/**
 * `.loupe/audit.json`: which rules run, their thresholds and severities. Validated by hand so each
 * mistake gets a message naming the file, the key and what was expected; schemas/audit.schema.json
 * describes the same shape for the editor's JSON completion (a test keeps the two in step).
 */
import { LoupeError } from "../errors";
import { unsafePatternReason } from "../regex-guard";

export type Severity = "error" | "warning" | "information";
export const SEVERITIES: readonly Severity[] = ["error", "warning", "information"];

export interface RuleBase {
  readonly enabled: boolean;
  readonly severity: Severity;
}

export interface ProbeMonitor {
  /** A probe JSON file (from `loupe probe train`), relative to the workspace or absolute. */
  readonly probe: string;
  /** The class whose score is watched. */
  readonly label: string;
  /** Tokens scoring at least this probability are reported. */
  readonly threshold: number;
  readonly severity: Severity;
}

export interface FeatureMonitor {
  /** A SAELens folder (cfg.json + sae_weights.safetensors), relative to the workspace or absolute. */
  readonly sae: string;
  /** Latent index. */
  readonly feature: number;
  /** Activation at or above which a token is reported. */
  readonly threshold: number;
  /** Shown in messages, e.g. the feature's label. */
  readonly label?: string;
  readonly severity: Severity;
}

export interface AuditConfig {
  readonly rules: {
    readonly "cot-not-load-bearing": RuleBase & { readonly threshold: number };
    readonly "unverbalised-hint": RuleBase;
    readonly "high-surprisal": RuleBase & { readonly bits: number; readonly minTokens: number };
    readonly "prompt-truncated": RuleBase;
  };
  readonly probes: readonly ProbeMonitor[];
  readonly features: readonly FeatureMonitor[];
  readonly faithfulness: {
    readonly answerMarker?: string;
    readonly reasoningCues?: readonly string[];
    readonly hintPattern?: string;
    readonly mistakes: boolean;
  };
}

export type RuleCode = keyof AuditConfig["rules"] | "probe-monitor" | "feature-monitor";

export const DEFAULT_AUDIT_CONFIG: AuditConfig = {
  rules: {
    // 0.5 sits between arith-cot (>= 0.83) and lookup-decorative (<= 0.31) on training-split items.
    "cot-not-load-bearing": { enabled: true, severity: "warning", threshold: 0.5 },
    "unverbalised-hint": { enabled: true, severity: "warning" },
    "high-surprisal": { enabled: true, severity: "information", bits: 14, minTokens: 3 },
    "prompt-truncated": { enabled: true, severity: "warning" },
  },
  probes: [],
  features: [],
  faithfulness: { mistakes: true },
};

type Json = unknown;

class Checker {
  constructor(private readonly file: string) {}

  fail(path: string, expected: string, got: Json): never {
    throw new LoupeError("bad-file", `${this.file}: ${path} must be ${expected} (got ${JSON.stringify(got) ?? "nothing"}).`, this.file);
  }

  object(value: Json, path: string, allowed: readonly string[]): Record<string, Json> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) this.fail(path, "an object", value);
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        throw new LoupeError("bad-file", `${this.file}: unknown key "${path === "(top level)" ? key : `${path}.${key}`}". Known keys here: ${allowed.join(", ")}.`, this.file);
      }
    }
    return value as Record<string, Json>;
  }

  boolean(value: Json, path: string, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== "boolean") this.fail(path, "true or false", value);
    return value;
  }

  number(value: Json, path: string, fallback: number, min: number, max = Infinity, integer = false): number {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      this.fail(path, `${integer ? "an integer" : "a number"} from ${min}${max === Infinity ? " up" : ` to ${max}`}`, value);
    }
    return value;
  }

  string(value: Json, path: string): string {
    if (typeof value !== "string" || value.trim() === "") this.fail(path, "a non-empty string", value);
    return value;
  }

  severity(value: Json, path: string, fallback: Severity): Severity {
    if (value === undefined) return fallback;
    if (!SEVERITIES.includes(value as Severity)) this.fail(path, `one of ${SEVERITIES.join(", ")}`, value);
    return value as Severity;
  }
}

/** Parse and validate an audit config; missing keys take the defaults. */
export function parseAuditConfig(content: string, file = ".loupe/audit.json"): AuditConfig {
  let json: Json;
  try {
    json = JSON.parse(content);
  } catch (error) {
    throw new LoupeError("bad-file", `${file} is not valid JSON: ${(error as Error).message}`, file);
  }
  const c = new Checker(file);
  const top = c.object(json, "(top level)", ["$schema", "rules", "probes", "features", "faithfulness"]);
  const d = DEFAULT_AUDIT_CONFIG.rules;
  const rules = c.object(top.rules ?? {}, "rules", Object.keys(d));
  const rule = (name: keyof typeof d, extra: readonly string[]) => c.object(rules[name] ?? {}, `rules.${name}`, ["enabled", "severity", ...extra]);
  const base = (name: keyof typeof d, r: Record<string, Json>): RuleBase => ({
    enabled: c.boolean(r.enabled, `rules.${name}.enabled`, d[name].enabled),
    severity: c.severity(r.severity, `rules.${name}.severity`, d[name].severity),
  });
  const cot = rule("cot-not-load-bearing", ["threshold"]);
  const hint = rule("unverbalised-hint", []);
  const surprisal = rule("high-surprisal", ["bits", "minTokens"]);
  const truncated = rule("prompt-truncated", []);

  const probesJson = top.probes ?? [];
  if (!Array.isArray(probesJson)) c.fail("probes", "a list", probesJson);
  const probes = (probesJson as Json[]).map((p, i): ProbeMonitor => {
    const o = c.object(p, `probes[${i}]`, ["probe", "label", "threshold", "severity"]);
    return {
      probe: c.string(o.probe, `probes[${i}].probe`),
      label: c.string(o.label, `probes[${i}].label`),
      threshold: c.number(o.threshold, `probes[${i}].threshold`, 0.5, 0, 1),
      severity: c.severity(o.severity, `probes[${i}].severity`, "warning"),
    };
  });

  const featuresJson = top.features ?? [];
  if (!Array.isArray(featuresJson)) c.fail("features", "a list", featuresJson);
  const features = (featuresJson as Json[]).map((x, i): FeatureMonitor => {
    const o = c.object(x, `features[${i}]`, ["sae", "feature", "threshold", "label", "severity"]);
    return {
      sae: c.string(o.sae, `features[${i}].sae`),
      feature: c.number(o.feature, `features[${i}].feature`, NaN, 0, Infinity, true),
      threshold: c.number(o.threshold, `features[${i}].threshold`, NaN, 0),
      label: o.label === undefined ? undefined : c.string(o.label, `features[${i}].label`),
      severity: c.severity(o.severity, `features[${i}].severity`, "warning"),
    };
  });
  for (const [i, m] of features.entries()) {
    if (Number.isNaN(m.feature)) c.fail(`features[${i}].feature`, "a latent index (an integer from 0)", undefined);
    if (Number.isNaN(m.threshold)) c.fail(`features[${i}].threshold`, "the activation to report from (a number from 0)", undefined);
  }

  const f = c.object(top.faithfulness ?? {}, "faithfulness", ["answerMarker", "reasoningCues", "hintPattern", "mistakes"]);
  if (f.reasoningCues !== undefined && (!Array.isArray(f.reasoningCues) || f.reasoningCues.some((x) => typeof x !== "string" || x === ""))) {
    c.fail("faithfulness.reasoningCues", "a list of non-empty strings", f.reasoningCues);
  }
  const hintPattern = f.hintPattern === undefined ? undefined : c.string(f.hintPattern, "faithfulness.hintPattern");
  if (hintPattern !== undefined) {
    const unsafe = unsafePatternReason(hintPattern);
    if (unsafe) c.fail("faithfulness.hintPattern", `a regular expression without nested repetition or backreferences (${unsafe}; rewrite "(a+)+" as "a+")`, hintPattern);
    try {
      new RegExp(hintPattern);
    } catch (error) {
      c.fail("faithfulness.hintPattern", `a regular expression (${(error as Error).message})`, hintPattern);
    }
  }

  return {
    rules: {
      "cot-not-load-bearing": { ...base("cot-not-load-bearing", cot), threshold: c.number(cot.threshold, "rules.cot-not-load-bearing.threshold", d["cot-not-load-bearing"].threshold, 0, 1) },
      "unverbalised-hint": base("unverbalised-hint", hint),
      "high-surprisal": {
        ...base("high-surprisal", surprisal),
        bits: c.number(surprisal.bits, "rules.high-surprisal.bits", d["high-surprisal"].bits, 0),
        minTokens: c.number(surprisal.minTokens, "rules.high-surprisal.minTokens", d["high-surprisal"].minTokens, 1, Infinity, true),
      },
      "prompt-truncated": base("prompt-truncated", truncated),
    },
    probes,
    features,
    faithfulness: {
      answerMarker: f.answerMarker === undefined ? undefined : c.string(f.answerMarker, "faithfulness.answerMarker"),
      reasoningCues: f.reasoningCues as string[] | undefined,
      hintPattern,
      mistakes: c.boolean(f.mistakes, "faithfulness.mistakes", true),
    },
  };
}
