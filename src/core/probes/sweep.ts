/**
 * One probe per hook on the same rows, and the best hook: the layer sweep of probing papers.
 * The best hook is chosen by cross-validated accuracy (training accuracy when folds = 0), never
 * by the held-out score a caller may report afterwards.
 */
import { throwIfAborted } from "../errors";
import type { Features } from "./features";
import { trainProbe, type TrainedProbe, type TrainProbeOptions } from "./train";

export interface HookProbe {
  readonly hook: string;
  readonly probe: TrainedProbe;
  /** Seconds spent fitting this hook (cross-validation included). */
  readonly seconds: number;
}

export interface SweepResult {
  readonly probes: HookProbe[];
  readonly best: HookProbe;
}

export function trainAcrossHooks(features: Features, options: TrainProbeOptions & { source?: string; onHook?: (hook: string, index: number) => void } = {}): SweepResult {
  const probes = features.hooks.map((hook, index): HookProbe => {
    throwIfAborted(options.signal);
    options.onHook?.(hook, index);
    const started = performance.now();
    const d = features.dims.get(hook) ?? 0;
    const probe = trainProbe(features.data.get(hook) ?? new Float32Array(0), features.rows, d, features.labels, {
      ...options,
      groups: features.level === "token" ? features.groups : undefined,
      types: features.types,
    });
    return { hook, probe, seconds: (performance.now() - started) / 1000 };
  });
  const score = (p: HookProbe) => p.probe.metrics.cv?.accuracy ?? p.probe.metrics.trainAccuracy;
  const best = probes.reduce((a, b) => (score(b) > score(a) ? b : a));
  return { probes, best };
}
