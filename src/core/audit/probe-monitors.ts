/** Probe monitors of the audit config, resolved to runners: load each probe file once, check its label. */
import * as path from "node:path";
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { applyProbe, loadProbe } from "../probes";
import { checkSaeFits, loadSae, saeFeatureActivations } from "../sae";
import type { ProbeMonitorRunner } from "./audit";
import type { AuditConfig } from "./config";

/** Probe and SAE-feature monitors of the config, as runners (each file loaded once, checked against the model). */
export function probeMonitors(model: HookedModel, config: AuditConfig, baseDir: string): ProbeMonitorRunner[] {
  return [...probeRunners(model, config, baseDir), ...featureRunners(model, config, baseDir)];
}

function featureRunners(model: HookedModel, config: AuditConfig, baseDir: string): ProbeMonitorRunner[] {
  const saes = new Map<string, ReturnType<typeof loadSae>>();
  return config.features.map((monitor) => {
    const folder = path.resolve(baseDir, monitor.sae);
    const sae = saes.get(folder) ?? loadSae(folder);
    saes.set(folder, sae);
    checkSaeFits(model, sae);
    if (monitor.feature >= sae.d_sae) throw new LoupeError("bad-file", `The audit watches feature ${monitor.feature} of ${folder}, but that SAE has ${sae.d_sae} latents (0..${sae.d_sae - 1}).`, folder);
    const name = `${path.basename(folder)}#${monitor.feature}`;
    return {
      code: "feature-monitor" as const,
      label: monitor.label ?? `feature ${monitor.feature}`,
      threshold: monitor.threshold,
      severity: monitor.severity,
      name,
      evidence: { saeFolder: folder, feature: monitor.feature },
      async score(text: string, signal?: AbortSignal) {
        const run = await saeFeatureActivations(model, sae, text, { signal });
        // A leading <s> (run.lead) is not in the text: no finding can point at it.
        return (run.offsets ?? []).slice(run.lead).map(([start, end], t) => ({ start, end, prob: run.features[(run.lead + t) * run.d_sae + monitor.feature] }));
      },
    };
  });
}

function probeRunners(model: HookedModel, config: AuditConfig, baseDir: string): ProbeMonitorRunner[] {
  return config.probes.map((monitor) => {
    const file = path.resolve(baseDir, monitor.probe);
    const probe = loadProbe(file);
    const k = probe.classes.indexOf(monitor.label);
    if (k < 0) throw new LoupeError("bad-file", `The audit watches label "${monitor.label}" of ${file}, but that probe's classes are ${probe.classes.join(", ")}.`, file);
    return {
      code: "probe-monitor" as const,
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
