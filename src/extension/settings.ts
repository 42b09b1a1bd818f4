import * as vscode from "vscode";
import type { ColorScale } from "../core/view/lenses";

/** Typed access to the `loupe.*` settings. */
export interface LoupeSettings {
  readonly modelPath: string;
  readonly defaultLens: string;
  readonly maxTokens: number;
  readonly colorScale: ColorScale;
}

export function readSettings(): LoupeSettings {
  const c = vscode.workspace.getConfiguration("loupe");
  return {
    modelPath: c.get<string>("modelPath", ""),
    defaultLens: c.get<string>("defaultLens", "surprisal"),
    maxTokens: Math.max(1, c.get<number>("maxTokens", 1024)),
    colorScale: c.get<string>("colorScale") === "absolute" ? "absolute" : "relative",
  };
}
