/** Probe monitors of the audit config, resolved to runners: load each probe file once, check its label. */
import * as path from "node:path";
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { applyProbe, loadProbe } from "../probes";
import type { ProbeMonitorRunner } from "./audit";
import type { AuditConfig } from "./config";

export function probeMonitors(model: HookedModel, config: AuditConfig, baseDir: string): ProbeMonitorRunner[] {
  return config.probes.map((monitor) => {
    const file = path.resolve(baseDir, monitor.probe);
    const probe = loadProbe(file);
    const k = probe.classes.indexOf(monitor.label);
    if (k < 0) throw new LoupeError("bad-file", `The audit watches label "${monitor.label}" of ${file}, but that probe's classes are ${probe.classes.join(", ")}.`, file);
    return {
      label: monitor.label,
      threshold: monitor.threshold,
      severity: monitor.severity,
      name: path.basename(file),
      async score(text: string, signal?: AbortSignal) {
        const applied = await applyProbe(model, probe, text, { signal });
        return applied.tokens.map((t) => ({ start: t.start, end: t.end, prob: t.probs[k] }));
      },
    };
  });
}
