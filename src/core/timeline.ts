/**
 * A request's hops stamped on one clock: where the time between a command and its result goes when
 * the work crosses processes (extension host -> worker -> extension host -> webview). Stamps are
 * wall-clock milliseconds with sub-millisecond resolution, comparable between processes on one
 * machine; bench:editor prints the gaps between them.
 */

/** One hop: what had just happened, and when (epoch ms). */
export interface TimelineMark {
  readonly hop: string;
  readonly at: number;
}

/** Now, as epoch milliseconds with performance.now()'s resolution. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Stamp `hop` now on `timeline` (when there is one). */
export function mark(timeline: TimelineMark[] | undefined, hop: string, at = wallClockMs()): void {
  timeline?.push({ hop, at });
}

/** Each hop with the milliseconds since the one before it and since `start` (default the first). */
export function timelineGaps(timeline: readonly TimelineMark[], start = timeline[0]?.at ?? 0): { hop: string; sinceLastMs: number; sinceStartMs: number }[] {
  const sorted = [...timeline].sort((a, b) => a.at - b.at);
  return sorted.map((m, i) => ({ hop: m.hop, sinceLastMs: m.at - (i > 0 ? sorted[i - 1].at : start), sinceStartMs: m.at - start }));
}

/** Whether `value` is a list of marks (a page checks what it was posted). */
export function isTimeline(value: unknown): value is TimelineMark[] {
  return Array.isArray(value) && value.every((m) => typeof m === "object" && m !== null && typeof (m as TimelineMark).hop === "string" && typeof (m as TimelineMark).at === "number");
}
