/**
 * Lenses: what colours a token. Each lens maps an inspection to one value per token, and a colour
 * scale maps values to a few discrete strengths (editors can only afford a handful of decoration types).
 */
import type { InspectResult, TokenReport } from "../inspect";

export type Lens =
  | { readonly kind: "surprisal" }
  | { readonly kind: "entropy" }
  /** How much the logit lens after block `layer` already agrees with the model's final prediction. */
  | { readonly kind: "logit-lens"; readonly layer: number };

export type ColorScale = "relative" | "absolute";

/** Number of colour strengths (decoration types) per lens. */
export const LEVELS = 6;

export function lensLabel(lens: Lens): string {
  switch (lens.kind) {
    case "surprisal":
      return "surprisal";
    case "entropy":
      return "entropy";
    case "logit-lens":
      return `logit lens @ block ${lens.layer}`;
  }
}

/** Parse a lens id as stored in settings: "surprisal", "entropy", "logit-lens:2". */
export function parseLens(id: string, nLayers?: number): Lens | undefined {
  if (id === "surprisal" || id === "entropy") return { kind: id };
  const match = /^logit-lens(?::(\d+))?$/.exec(id);
  if (!match) return undefined;
  const layer = match[1] === undefined ? Math.max(0, (nLayers ?? 1) - 2) : Number(match[1]);
  // A setting such as "logit-lens:99999999999999999999" is no layer at all.
  if (!Number.isSafeInteger(layer) || (nLayers !== undefined && layer >= nLayers)) return undefined;
  return { kind: "logit-lens", layer };
}

export function lensId(lens: Lens): string {
  return lens.kind === "logit-lens" ? `logit-lens:${lens.layer}` : lens.kind;
}

/** The value a lens shows for one token; null where it has none (the first token has no surprisal). */
export function lensValue(token: TokenReport, lens: Lens): number | null {
  switch (lens.kind) {
    case "surprisal":
      return token.surprisal;
    case "entropy":
      return token.entropy;
    case "logit-lens":
      return token.lens[lens.layer]?.agreement ?? null;
  }
}

/** The value that maps to full colour under the absolute scale. */
function absoluteMax(lens: Lens, vocabBits: number): number {
  switch (lens.kind) {
    case "surprisal":
      return 15;
    case "entropy":
      return vocabBits;
    case "logit-lens":
      return 1;
  }
}

export interface TokenLevel {
  readonly index: number;
  readonly value: number;
  /** 1..LEVELS; tokens with no value or a value of 0 get no colour at all. */
  readonly level: number;
}

/**
 * Colour strengths for every token that has a value. "relative": the strongest token in this
 * inspection gets full colour; "absolute": fixed ranges, comparable across selections.
 */
export function tokenLevels(result: InspectResult, lens: Lens, scale: ColorScale, vocabSize: number): TokenLevel[] {
  const values = result.tokens.map((t) => lensValue(t, lens));
  const known = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const max = scale === "relative" ? Math.max(0, ...known) : absoluteMax(lens, Math.log2(Math.max(2, vocabSize)));
  const out: TokenLevel[] = [];
  values.forEach((value, index) => {
    if (value === null || !Number.isFinite(value) || max <= 0) return;
    const level = Math.min(LEVELS, Math.ceil((Math.max(0, value) / max) * LEVELS));
    if (level > 0) out.push({ index, value, level });
  });
  return out;
}
