import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { ColorScale } from "../core/view/lenses";
import { settingValue } from "../core/setting-trust";
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

/** A restricted setting (RESTRICTED_SETTINGS): in Restricted Mode the workspace's own value is ignored. */
export function restrictedSetting<T>(section: string, key: string, fallback: T): T {
  return settingValue(vscode.workspace.getConfiguration(section).inspect<T>(key), vscode.workspace.isTrusted, fallback);
}

export function readSettings(): LoupeSettings {
  const c = vscode.workspace.getConfiguration("loupe");
  return {
    modelPath: restrictedSetting("loupe", "modelPath", ""),
    defaultLens: c.get<string>("defaultLens", "surprisal"),
    maxTokens: Math.max(1, restrictedSetting("loupe", "maxTokens", 1024)),
    colorScale: c.get<string>("colorScale") === "absolute" ? "absolute" : "relative",
    maxModelBytes: megabytes(restrictedSetting("loupe", "maxModelMemoryMB", 4096)),
    compactWeights: restrictedSetting<boolean>("loupe", "compactWeights", false) === true,
    attributionMethod: c.get<string>("attribution.method") === "mask" ? "mask" : "embed",
    faithfulness: {
      answerMarker: c.get<string>("faithfulness.answerMarker") || undefined,
      reasoningCues: nonEmpty(c.get<string[]>("faithfulness.reasoningCues")),
      hintPattern: restrictedSetting("loupe", "faithfulness.hintPattern", "") || undefined,
      track: c.get<string>("faithfulness.track") === "written" ? "written" : "model",
      mistakes: c.get<boolean>("faithfulness.addMistakes", true),
      generate: c.get<boolean>("faithfulness.generateWhenMissing", false),
      // 0 (the default): as many as the rest of the reasoning and the answer take.
      ...positiveInteger("maxNewTokens", c.get<number>("faithfulness.maxNewTokens", 0)),
      // The circuit view needs a transcoder set; without one the report says so in a note.
      ...(c.get<boolean>("faithfulness.traceCircuit", false) ? { circuit: "if-available" as const, transcoders: transcoderSetting() } : {}),
    },
  };
}

function nonEmpty(list: string[] | undefined): string[] | undefined {
  const kept = (list ?? []).filter((s) => typeof s === "string" && s.trim() !== "");
  return kept.length ? kept : undefined;
}

/** `{ [key]: n }` for a positive integer n, else nothing (the option's default). */
function positiveInteger<K extends string>(key: K, n: number | undefined): { [P in K]?: number } {
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? ({ [key]: n } as { [P in K]?: number }) : {};
}

function megabytes(mb: number | undefined): number | undefined {
  return typeof mb === "number" && Number.isFinite(mb) && mb > 0 ? mb * 1024 * 1024 : undefined;
}

/**
 * loupe.transcoderPath (trusted workspaces only), relative to the first workspace folder when that
 * exists, else as given (a cached hub repository ORG/NAME); undefined: the model's own set.
 */
export function transcoderSetting(): string | undefined {
  const setting = restrictedSetting("loupe", "transcoderPath", "");
  if (!setting) return undefined;
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (path.isAbsolute(setting) || !root) return setting;
  const inWorkspace = path.join(root, setting);
  return fs.existsSync(inWorkspace) ? inWorkspace : setting;
}
