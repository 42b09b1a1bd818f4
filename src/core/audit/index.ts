export { auditPrompt, highRuns, type AuditFinding, type ProbeMonitorRunner, type PromptAudit } from "./audit";
export { DEFAULT_AUDIT_CONFIG, parseAuditConfig, SEVERITIES, type AuditConfig, type ProbeMonitor, type RuleCode, type Severity } from "./config";
export { auditFiles, expandGlobs, globToRegExp, lineColumn, readPromptFile, type FileAudit } from "./files";
export { probeMonitors } from "./probe-monitors";
export { formatAuditText, reachesLevel, RULES, toSarif } from "./report";
export { addProbeMonitor, AUDIT_CONFIG_FILE, withProbeMonitor, type ProbeMonitorEntry } from "./monitor-file";
