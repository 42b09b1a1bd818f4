/**
 * Adding a probe monitor to a workspace's .loupe/audit.json (the probe panel's "Add to audit"). The
 * file may be anything a repository committed: a link, a broken or hostile JSON. It is changed only
 * when it parses as a JSON object with a list of probes (or does not exist), and replaced whole
 * without following links; otherwise the user is told what to fix and nothing is written.
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import { readTextSafely, writeFileSafely } from "../safe-fs";

export const AUDIT_CONFIG_FILE = path.join(".loupe", "audit.json");

export interface ProbeMonitorEntry {
  /** The probe file, relative to the workspace, with forward slashes. */
  readonly probe: string;
  readonly label: string;
  readonly threshold: number;
  readonly severity: "error" | "warning" | "info";
}

/** The text of audit.json with `monitor` added; `existing` undefined means no file yet. */
export function withProbeMonitor(existing: string | undefined, monitor: ProbeMonitorEntry, file = AUDIT_CONFIG_FILE): string {
  const refuse = (why: string): never => {
    throw new LoupeError("bad-file", `${file} ${why}, so Loupe did not change it (it never rewrites a file it cannot read). Fix or delete it, then add the monitor again.`, file);
  };
  let config: Record<string, unknown> = {};
  if (existing !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(existing);
    } catch (error) {
      return refuse(`is not valid JSON (${(error as Error).message})`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) return refuse("is not a JSON object");
    config = json as Record<string, unknown>;
    if (config.probes !== undefined && !Array.isArray(config.probes)) refuse(`has a "probes" entry that is not a list`);
  }
  const probes = Array.isArray(config.probes) ? config.probes : [];
  return `${JSON.stringify({ ...config, probes: [...probes, monitor] }, null, 2)}\n`;
}

/** Add `monitor` to `workspaceRoot`'s .loupe/audit.json (creating it); refuses links, paths leaving the root and unreadable files. */
export function addProbeMonitor(workspaceRoot: string, monitor: ProbeMonitorEntry): string {
  const file = path.join(workspaceRoot, AUDIT_CONFIG_FILE);
  const text = withProbeMonitor(readTextSafely(file, { root: workspaceRoot }), monitor, file);
  writeFileSafely(file, text, { root: workspaceRoot });
  return file;
}
