/**
 * Where SAE things live for the open workspace: the SAE for a model, the user's feature labels
 * (.loupe/feature-labels.json) and the feature picker shared by the lens, dashboard and steering.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { resolveSaeReference } from "../core/sae/releases/reference";
import { SAE_CFG_FILENAME } from "../core/sae/config";
import { featureLabel, FEATURE_LABELS_FILE, readFeatureLabels, saeLabelKey, type FeatureLabels } from "../core/sae/feature-labels";
import { FeatureStatsCache } from "../core/sae/feature-stats-file";
import type { FeatureStats } from "../core/sae/features";
import { featurePickItems } from "../core/view/feature-dashboard";
import { describeError } from "./errors";

/** Where the workspace keeps user labels, or undefined without a folder open. */
export function labelsFile(): string | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? path.join(folder.uri.fsPath, FEATURE_LABELS_FILE) : undefined;
}

export function labelKey(saeFolder: string): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? saeLabelKey(folder.uri.fsPath, saeFolder) : saeFolder.split(path.sep).join("/");
}

/** The user's labels, or none when the file is missing or broken (a broken file is reported once). */
export function readLabelsQuietly(onError?: (message: string) => void): FeatureLabels {
  const file = labelsFile();
  try {
    return file ? readFeatureLabels(file) : { version: 1, saes: {} };
  } catch (error) {
    onError?.(describeError(error) ?? String(error));
    return { version: 1, saes: {} };
  }
}

/**
 * The SAE for a model: the loupe.saePath setting (trusted workspaces only), else the model folder's
 * sae/<hook> folder (the bundled model ships one), else undefined.
 */
export function chosenSaeFolder(modelFolder: string): string | undefined {
  const setting = vscode.workspace.getConfiguration("loupe").get<string>("saePath", "");
  // A folder, or a published RELEASE/SAE_ID in the hub cache (a LoupeError says how to pull it).
  if (setting && vscode.workspace.isTrusted) return resolveSaeReference(setting).folder;
  const root = path.join(modelFolder, "sae");
  if (!fs.existsSync(root)) return undefined;
  const found = fs
    .readdirSync(root)
    .filter((name) => fs.existsSync(path.join(root, name, SAE_CFG_FILENAME)))
    .sort();
  return found.length ? path.join(root, found[0]) : undefined;
}

/**
 * Ask for a feature of the SAE in `saeFolder`: a quick pick over every feature, labelled ones and
 * concept matches first, searchable by label, concept and promoted tokens; typing an index works
 * too ("#713" matches).
 */
const statsCache = new FeatureStatsCache();

/** The SAE's feature-stats.json (cached across the lens, dashboard, picker and steering); throws when broken. */
export function readCachedFeatureStats(saeFolder: string): FeatureStats | undefined {
  return statsCache.get(saeFolder);
}

/** As readCachedFeatureStats, but a broken file is reported through `onError` and read as none. */
export function featureStatsFor(saeFolder: string, onError?: (message: string) => void): FeatureStats | undefined {
  try {
    return statsCache.get(saeFolder);
  } catch (error) {
    onError?.(describeError(error) ?? String(error));
    return undefined;
  }
}

export async function pickFeature(saeFolder: string, d_sae: number, title: string): Promise<number | undefined> {
  const stats = featureStatsFor(saeFolder, (m) => void vscode.window.showWarningMessage(m));
  const labels = readLabelsQuietly((m) => void vscode.window.showWarningMessage(m));
  const key = labelKey(saeFolder);
  const items = featurePickItems(d_sae, (f) => featureLabel(labels, key, f), stats);
  const picked = await vscode.window.showQuickPick(items, {
    title,
    placeHolder: stats ? "Search by label, concept or promoted token, or type #index" : "Type #index (no feature-stats.json next to this SAE: no labels to search)",
    matchOnDescription: true,
    matchOnDetail: true,
  });
  return picked?.feature;
}
