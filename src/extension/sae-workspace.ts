/**
 * Where SAE things live for the open workspace: the SAE for a model, the user's feature labels
 * (.loupe/feature-labels.json) and the feature picker shared by the lens, dashboard and steering.
 * Labels and feature-stats.json are parsed by the worker (requests/feature-files.ts), never here.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { resolveSaeReference } from "../core/sae/releases/reference";
import { SAE_CFG_FILENAME } from "../core/sae/config";
import { FEATURE_LABELS_FILE, saeLabelKey } from "../core/sae/feature-labels";
import { describeError } from "./errors";
import type { LabelsFileParams } from "../core/requests";
import type { ModelHost } from "./model-host";
import { restrictedSetting } from "./settings";
import { confinedIfInWorkspace } from "./workspace-files";

/** Where the workspace keeps user labels, or undefined without a folder open. */
export function labelsFile(): string | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? path.join(folder.uri.fsPath, FEATURE_LABELS_FILE) : undefined;
}

export function labelKey(saeFolder: string): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? saeLabelKey(folder.uri.fsPath, saeFolder) : saeFolder.split(path.sep).join("/");
}

/** Where the worker finds this SAE's labels, when a folder is open. */
function labelsLocation(saeFolder: string): LabelsFileParams | undefined {
  const file = labelsFile();
  return file ? { file, key: labelKey(saeFolder), ...confinedIfInWorkspace(file) } : undefined;
}

/**
 * The user's labels of `features` of one SAE (feature index -> label), read and parsed by the
 * worker (the file may be 16 MB); none when the file is missing or broken (reported through `onError`).
 */
export async function labelsFor(models: ModelHost, saeFolder: string, features: readonly number[], onError?: (message: string) => void): Promise<Readonly<Record<string, string>>> {
  const where = labelsLocation(saeFolder);
  if (!where || features.length === 0) return {};
  try {
    return await models.request("featureLabels", { ...where, features });
  } catch (error) {
    onError?.(describeError(error) ?? String(error));
    return {};
  }
}

/**
 * The SAE for a model: the loupe.saePath setting (trusted workspaces only), else the model folder's
 * sae/<hook> folder (the bundled model ships one), else undefined.
 */
export function chosenSaeFolder(modelFolder: string): string | undefined {
  const setting = restrictedSetting("loupe", "saePath", "");
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
 * too ("#713" matches). The worker builds the entries from feature-stats.json.
 */
export async function pickFeature(models: ModelHost, saeFolder: string, d_sae: number, title: string): Promise<number | undefined> {
  const picks = await models.request("featurePicks", { saeFolder, d_sae, labels: labelsLocation(saeFolder) });
  for (const warning of picks.warnings) void vscode.window.showWarningMessage(warning);
  const picked = await vscode.window.showQuickPick(picks.items, {
    title,
    placeHolder: picks.hasStats ? "Search by label, concept or promoted token, or type #index" : "Type #index (no feature statistics for this SAE: no concepts to search)",
    matchOnDescription: true,
    matchOnDetail: true,
  });
  return picked?.feature;
}
