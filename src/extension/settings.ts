import * as vscode from "vscode";
import type { ColorScale } from "../core/view/lenses";
import type { FaithfulnessParams } from "../core/requests";

/** Typed access to the `loupe.*` settings. */
export interface LoupeSettings {
  readonly modelPath: string;
  readonly defaultLens: string;
  readonly maxTokens: number;
  readonly colorScale: ColorScale;
  /** Refuse models whose weights need more than this many bytes in memory; undefined: no limit. */
  readonly maxModelBytes: number | undefined;
  /** Keep f16/bf16 weights as stored in memory (LoadOptions.compactWeights). */
  readonly compactWeights: boolean;
  readonly faithfulness: Omit<FaithfulnessParams, "text">;
  readonly attributionMethod: "mask" | "embed";
}

export function readSettings(): LoupeSettings {
  const c = vscode.workspace.getConfiguration("loupe");
  return {
    modelPath: c.get<string>("modelPath", ""),
    defaultLens: c.get<string>("defaultLens", "surprisal"),
    maxTokens: Math.max(1, c.get<number>("maxTokens", 1024)),
    colorScale: c.get<string>("colorScale") === "absolute" ? "absolute" : "relative",
    maxModelBytes: megabytes(c.get<number>("maxModelMemoryMB", 4096)),
    compactWeights: c.get<boolean>("compactWeights", false) === true,
    attributionMethod: c.get<string>("attribution.method") === "mask" ? "mask" : "embed",
    faithfulness: {
      answerMarker: c.get<string>("faithfulness.answerMarker") || undefined,
      reasoningCues: nonEmpty(c.get<string[]>("faithfulness.reasoningCues")),
      hintPattern: c.get<string>("faithfulness.hintPattern") || undefined,
      track: c.get<string>("faithfulness.track") === "written" ? "written" : "model",
      mistakes: c.get<boolean>("faithfulness.addMistakes", true),
      generate: c.get<boolean>("faithfulness.generateWhenMissing", false),
    },
  };
}

function nonEmpty(list: string[] | undefined): string[] | undefined {
  const kept = (list ?? []).filter((s) => typeof s === "string" && s.trim() !== "");
  return kept.length ? kept : undefined;
}

function megabytes(mb: number | undefined): number | undefined {
  return typeof mb === "number" && Number.isFinite(mb) && mb > 0 ? mb * 1024 * 1024 : undefined;
}
