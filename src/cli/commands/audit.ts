import * as path from "node:path";
import { auditFiles, DEFAULT_AUDIT_CONFIG, expandGlobs, formatAuditText, parseAuditConfig, probeMonitors, reachesLevel, SEVERITIES, toSarif, type Severity } from "../../core/audit";
import { readTextSafely, writeFileSafely, type SafeFileOptions } from "../../core/safe-fs";
import { LoupeError } from "../../core/errors";
import { loadModel, stringOption, textOptions, type Command } from "../command";

const FORMATS = ["text", "json", "sarif"] as const;

export const auditCommand: Command = {
  name: "audit",
  usage: `loupe audit FILE|GLOB... [--model DIR] [--config FILE] [--format text|json|sarif] [--out FILE] [--fail-on error|warning|information|none]
    Quick audit of prompt files: CoT not load-bearing, unverbalised hints, high-surprisal spans,
    truncation by the context window, probe monitors (rules in .loupe/audit.json). Exit code 1 when
    a finding reaches --fail-on (default error) or a file cannot be audited; 2 on bad arguments.`,
  options: { config: { type: "string" }, format: { type: "string" }, out: { type: "string" }, "fail-on": { type: "string" } },
  async run({ values, positionals, modelFolder, io }) {
    if (positionals.length === 0) throw new LoupeError("bad-argument", "Name the prompt files to audit (paths or quoted globs such as 'prompts/**/*.txt').");
    const format = stringOption(values, "format") ?? (values.json ? "json" : "text");
    if (!(FORMATS as readonly string[]).includes(format)) throw new LoupeError("bad-argument", `--format must be one of ${FORMATS.join(", ")} (got ${format}).`);
    const failOn = stringOption(values, "fail-on") ?? "error";
    if (failOn !== "none" && !SEVERITIES.includes(failOn as Severity)) throw new LoupeError("bad-argument", `--fail-on must be one of ${SEVERITIES.join(", ")}, none (got ${failOn}).`);
    const configOption = stringOption(values, "config");
    const configFile = configOption ?? path.join(".loupe", "audit.json");
    const configText = readConfig(configFile, configOption === undefined ? { root: process.cwd() } : {});
    const config = configText !== undefined ? parseAuditConfig(configText, configFile) : configOption === undefined ? DEFAULT_AUDIT_CONFIG : readConfigMissing(configFile);
    const files = expandGlobs(positionals);
    if (files.length === 0) throw new LoupeError("bad-argument", `No files match ${positionals.join(" ")}.`);

    const model = await loadModel(modelFolder, values);
    try {
      const probes = probeMonitors(model, config, configFile ? path.dirname(path.dirname(path.resolve(configFile))) : process.cwd());
      const audits = await auditFiles(model, files, config, { probes, text: textOptions(io) });
      const output =
        format === "sarif"
          ? `${JSON.stringify(toSarif(audits), null, 2)}\n`
          : format === "json"
            ? `${JSON.stringify(audits.map(({ text: _text, ...rest }) => rest), null, 2)}\n`
            : `${formatAuditText(audits)}\n`;
      const out = stringOption(values, "out");
      if (out) writeFileSafely(out, output);
      else io.out(output);
      return reachesLevel(audits, failOn as Severity | "none") ? 1 : 0;
    } finally {
      await model.dispose();
    }
  },
};

/** The audit config's text, or undefined when there is none; the workspace's own is never read through a link. */
function readConfig(file: string, options: SafeFileOptions): string | undefined {
  try {
    return readTextSafely(file, options);
  } catch (error) {
    if (error instanceof LoupeError) throw error;
    return readConfigMissing(file);
  }
}

function readConfigMissing(file: string): never {
  throw new LoupeError("missing-file", `Cannot read the audit config ${file}.`, file);
}
