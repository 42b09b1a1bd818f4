/**
 * Normalised patching scores (Zhang & Nanda 2023): 0 = the corrupted run's metric, 1 = the clean
 * run's, in both directions. Denoising (clean into corrupted) reads as "how much this restores";
 * noising (corrupted into clean) as "how much is left when this is broken", so near 0 = necessary.
 */
import { LoupeError } from "../errors";

export interface Baselines {
  readonly clean: number;
  readonly corrupted: number;
}

/** Gaps this small are rounding, not a difference the prompts make. */
export function isDegenerate(b: Baselines): boolean {
  return !(Math.abs(b.clean - b.corrupted) > 1e-6 * Math.max(1, Math.abs(b.clean), Math.abs(b.corrupted)));
}

/** NaN when the clean and corrupted metrics coincide: there is no scale to normalise by. */
export function normalise(value: number, b: Baselines): number {
  return isDegenerate(b) ? Number.NaN : (value - b.corrupted) / (b.clean - b.corrupted);
}

export function normaliseAll(values: readonly number[], b: Baselines): number[] {
  return values.map((v) => normalise(v, b));
}

/** The error a sweep raises before spending any runs on prompts that do not differ. */
export function requireGap(b: Baselines, metricLabel: string): void {
  if (!isDegenerate(b)) return;
  throw new LoupeError(
    "bad-argument",
    `The clean and corrupted prompts give the same ${metricLabel} (${b.clean.toFixed(4)}), so there is nothing for patching to restore. ` +
      "Make the corrupted prompt change what the answer depends on (for example, swap the name the answer repeats).",
  );
}
