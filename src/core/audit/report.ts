/** Audit results as text for a terminal, and as SARIF 2.1.0 for code-scanning tools. */
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { RuleCode, Severity } from "./config";
import { lineColumn, type FileAudit } from "./files";

export const RULES: Readonly<Record<RuleCode, { readonly name: string; readonly description: string }>> = {
  "cot-not-load-bearing": {
    name: "CotNotLoadBearing",
    description: "The answer does not depend on the chain of thought before it: cutting, removing or corrupting the reasoning leaves it in place (CoT faithfulness battery).",
  },
  "unverbalised-hint": {
    name: "UnverbalisedHint",
    description: "A hint in the question moves the answer, and the reasoning never mentions it.",
  },
  "high-surprisal": {
    name: "HighSurprisal",
    description: "A run of tokens the model finds very unlikely: a typo, garbled text or out-of-distribution content.",
  },
  "prompt-truncated": {
    name: "PromptTruncated",
    description: "The prompt is longer than the model's context window; the rest is cut off.",
  },
  "feature-monitor": {
    name: "FeatureMonitor",
    description: "A configured SAE feature fires at or above its threshold.",
  },
  "probe-monitor": {
    name: "ProbeMonitor",
    description: "A configured linear probe scores tokens above its threshold for the watched label.",
  },
};

const RANK: Record<Severity, number> = { information: 0, warning: 1, error: 2 };

/** Whether any finding (or broken file) reaches the `--fail-on` level. */
export function reachesLevel(audits: readonly FileAudit[], level: Severity | "none"): boolean {
  if (level === "none") return false;
  return audits.some((a) => (a.error !== undefined && RANK[level] <= RANK.error) || a.findings.some((f) => RANK[f.severity] >= RANK[level]));
}

export function formatAuditText(audits: readonly FileAudit[]): string {
  const lines: string[] = [];
  let findings = 0;
  for (const a of audits) {
    if (a.error !== undefined) lines.push(`${a.file}: error: ${a.error}`);
    for (const f of a.findings) {
      const { line, column } = lineColumn(a.text, f.start);
      lines.push(`${a.file}:${line}:${column}: ${f.severity} [${f.code}] ${f.message}`);
      findings++;
    }
  }
  const broken = audits.filter((a) => a.error !== undefined).length;
  lines.push(`${audits.length} file(s) audited, ${findings} finding(s)${broken ? `, ${broken} file(s) could not be audited` : ""}.`);
  return lines.join("\n");
}

const SARIF_LEVEL: Record<Severity, "error" | "warning" | "note"> = { error: "error", warning: "warning", information: "note" };

/** A SARIF 2.1.0 log; file locations are relative to `baseDir` (uriBaseId SRCROOT). */
export function toSarif(audits: readonly FileAudit[], options: { baseDir?: string; version?: string } = {}): object {
  const baseDir = path.resolve(options.baseDir ?? process.cwd());
  const ruleIds = Object.keys(RULES) as RuleCode[];
  const uri = (file: string) => {
    const rel = path.relative(baseDir, path.resolve(file));
    return rel.startsWith("..") || path.isAbsolute(rel) ? pathToFileURL(path.resolve(file)).href : rel.split(path.sep).map(encodeURIComponent).join("/");
  };
  const results = audits.flatMap((a) =>
    a.findings.map((f) => {
      const start = lineColumn(a.text, f.start);
      const end = lineColumn(a.text, f.end);
      return {
        ruleId: f.code,
        ruleIndex: ruleIds.indexOf(f.code),
        level: SARIF_LEVEL[f.severity],
        message: { text: f.message },
        locations: [
          {
            physicalLocation: {
              artifactLocation: { uri: uri(a.file), uriBaseId: "SRCROOT" },
              region: { startLine: start.line, startColumn: start.column, endLine: end.line, endColumn: end.column, charOffset: f.start, charLength: f.end - f.start },
            },
          },
        ],
        properties: { evidence: f.evidence },
      };
    }),
  );
  const broken = audits.filter((a) => a.error !== undefined);
  return {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [
      {
        tool: {
          driver: {
            name: "Loupe",
            version: options.version ?? "0.1.0",
            rules: ruleIds.map((id) => ({ id, name: RULES[id].name, shortDescription: { text: RULES[id].description } })),
          },
        },
        originalUriBaseIds: { SRCROOT: { uri: pathToFileURL(baseDir + path.sep).href } },
        columnKind: "utf16CodeUnits",
        invocations: [
          {
            executionSuccessful: broken.length === 0,
            toolExecutionNotifications: broken.map((a) => ({
              level: "error",
              message: { text: a.error ?? "" },
              locations: [{ physicalLocation: { artifactLocation: { uri: uri(a.file), uriBaseId: "SRCROOT" } } }],
            })),
          },
        ],
        results,
      },
    ],
  };
}
