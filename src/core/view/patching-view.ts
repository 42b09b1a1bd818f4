/**
 * The patching panel's data, CSV export and message protocol. Pure; the webview draws the
 * heatmaps, the extension acts on validated requests.
 */
import type { ReadyRequest } from "./panel-protocol";
import type { PatchingResult, SweepResult } from "../patching";

/** One heatmap: rows (layers) by columns (positions or heads), normalised values and raw metrics. */
export interface Heatmap {
  readonly kind: string;
  readonly title: string;
  readonly rowLabels: string[];
  readonly columnLabels: string[];
  /** Clean-prompt token index of each column, for jumping to the editor; null for heads. */
  readonly columnPositions: (number | null)[];
  /** [row][column] */
  readonly normalised: number[][];
  readonly raw: number[][];
}

const TITLES: Record<string, string> = {
  resid_pre: "Residual stream (before each block)",
  resid_mid: "Residual stream (between attention and MLP)",
  resid_post: "Residual stream (after each block)",
  attn_out: "Attention output",
  mlp_out: "MLP output",
  heads: "Attention heads (all positions)",
  heads_by_pos: "Attention heads by position",
};

export function heatmaps(result: PatchingResult): Heatmap[] {
  const tokenLabel = (i: number) => `${i} ${JSON.stringify(result.tokens.clean[i]?.text ?? "").slice(1, -1)}`;
  return result.sweeps
    .filter((s) => s.shape.length === 2)
    .map((s: SweepResult) => {
      const [rows, cols] = s.shape;
      const byHead = s.axes[1] === "head";
      const grid = (values: number[]) => Array.from({ length: rows }, (_, r) => values.slice(r * cols, (r + 1) * cols));
      return {
        kind: s.kind,
        title: TITLES[s.kind] ?? s.kind,
        rowLabels: Array.from({ length: rows }, (_, r) => `L${r}`),
        columnLabels: Array.from({ length: cols }, (_, c) => (byHead ? `H${c}` : tokenLabel(c))),
        columnPositions: Array.from({ length: cols }, (_, c) => (byHead ? null : c)),
        normalised: grid(s.normalised),
        raw: grid(s.raw),
      };
    });
}

function csvCell(value: string | number): string {
  const text = typeof value === "number" ? (Number.isFinite(value) ? String(value) : "") : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Long format: one row per cell of every sweep. */
export function patchingCsv(result: PatchingResult): string {
  const lines = [["sweep", "layer", "position", "token", "head", "metric", "normalised"].join(",")];
  for (const s of result.sweeps) {
    const cols = s.shape[1] ?? 1;
    s.raw.forEach((raw, i) => {
      const layer = Math.floor(i / cols);
      const col = i % cols;
      const byHead = s.axes[1] === "head";
      const position = s.axes[1] === "position" ? col : s.axes[2] === "position" ? Math.floor(col / (s.shape[2] ?? 1)) : "";
      const head = byHead ? col : "";
      const token = typeof position === "number" ? (result.tokens.clean[position]?.text ?? "") : "";
      lines.push([s.kind, layer, position, token, head, raw, s.normalised[i]].map(csvCell).join(","));
    });
  }
  return `${lines.join("\n")}\n`;
}

/** What the patching page draws. */
export interface PatchingPanelState {
  readonly title: string;
  readonly summary: string;
  readonly heatmaps: Heatmap[];
}

export function patchingPanelState(r: PatchingResult): PatchingPanelState {
  return {
    title: `Activation patching (${r.direction})`,
    summary: `${r.metricLabel}: clean ${r.baselines.clean.toFixed(3)}, corrupted ${r.baselines.corrupted.toFixed(3)} · ${r.variantsRun} patched runs in ${r.calls} calls, ${r.elapsedMs.toFixed(0)} ms`,
    heatmaps: heatmaps(r),
  };
}

export type PatchingPanelRequest =
  | ReadyRequest
  | { readonly type: "reveal"; readonly position: number }
  | { readonly type: "exportCsv" }
  | { readonly type: "exportPng"; readonly dataUrl: string };

const PNG_PREFIX = "data:image/png;base64,";

/** A well-formed request about this result, or null. PNGs are capped at 20 MB of base64. */
export function parsePatchingRequest(message: unknown, tokenCount: number): PatchingPanelRequest | null {
  if (typeof message !== "object" || message === null) return null;
  const m = message as Record<string, unknown>;
  switch (m.type) {
    case "ready":
    case "exportCsv":
      return Object.keys(m).length === 1 ? { type: m.type } : null;
    case "reveal":
      return Number.isInteger(m.position) && (m.position as number) >= 0 && (m.position as number) < tokenCount ? { type: "reveal", position: m.position as number } : null;
    case "exportPng":
      return typeof m.dataUrl === "string" && m.dataUrl.startsWith(PNG_PREFIX) && m.dataUrl.length < 20_000_000 && /^[A-Za-z0-9+/=]*$/.test(m.dataUrl.slice(PNG_PREFIX.length))
        ? { type: "exportPng", dataUrl: m.dataUrl }
        : null;
    default:
      return null;
  }
}

export function pngBytes(dataUrl: string): Uint8Array {
  return Uint8Array.from(Buffer.from(dataUrl.slice(PNG_PREFIX.length), "base64"));
}
