/**
 * Select Model… and Download Model…: the bundled model, a folder, a hub repo id, or a model already
 * in the Hugging Face cache (each described by the worker: architecture, parameters, size, or why
 * it cannot load). Downloading is the only network access, and only on this command.
 */
import * as fs from "node:fs";
import * as vscode from "vscode";
import { LoupeError } from "../core/errors";
import { listCachedModels } from "../core/hub/cached-models";
import { hubCacheDir, parseRepoRef } from "../core/hub/cache-layout";
import { pullModel } from "../core/hub/download";
import { describeError } from "./errors";
import { abortSignalFor, type ModelHost } from "./model-host";

interface ModelItem extends vscode.QuickPickItem {
  readonly id: "bundled" | "folder" | "repo" | "download" | "cached";
  readonly reference?: string;
}

export async function selectModel(models: ModelHost): Promise<void> {
  const cached = listCachedModels(hubCacheDir());
  const picker = vscode.window.createQuickPick<ModelItem>();
  picker.title = "Loupe: select the model for this workspace";
  const fixed: ModelItem[] = [
    { label: "$(package) Bundled reference model", description: "trained on Loupe's synthetic bench; no download", id: "bundled" },
    { label: "$(folder-opened) Choose a model folder…", description: "config.json, model.safetensors (or shards), tokenizer.json", id: "folder" },
    { label: "$(symbol-key) Hugging Face repo id…", description: "ORG/NAME[@REV], from the Hugging Face cache", id: "repo" },
    { label: "$(cloud-download) Download from the Hugging Face hub…", description: "Loupe: Download Model…", id: "download" },
  ];
  const cachedItems: ModelItem[] = cached.map((m) => ({ label: `$(database) ${m.reference}`, description: "checking…", id: "cached", reference: m.reference }));
  const show = () =>
    (picker.items = [...fixed, ...(cachedItems.length ? [{ label: `In the Hugging Face cache (${hubCacheDir()})`, kind: vscode.QuickPickItemKind.Separator, id: "cached" as const }] : []), ...cachedItems]);
  show();
  picker.busy = cachedItems.length > 0;
  picker.show();
  // Describe the cached models in the worker while the list is open; a model that cannot load says why.
  void Promise.all(
    cachedItems.map(async (item, i) => {
      let description: string;
      try {
        description = await describeModel(models, item.reference!);
      } catch (error) {
        description = `$(warning) cannot load: ${describeError(error) ?? String(error)}`;
      }
      cachedItems[i] = { ...item, description };
      show();
    }),
  ).finally(() => (picker.busy = false));
  const picked = await new Promise<ModelItem | undefined>((resolve) => {
    picker.onDidAccept(() => resolve(picker.selectedItems[0]));
    picker.onDidHide(() => resolve(undefined));
  });
  // Hide before dispose: hiding hands focus back to the editor (a bare dispose left the palette unable to open).
  picker.hide();
  picker.dispose();
  if (!picked) return;
  if (picked.id === "bundled") {
    await models.rememberFolder(undefined);
    void vscode.window.showInformationMessage("Loupe: using the bundled reference model in this workspace.");
    return;
  }
  if (picked.id === "download") return downloadModel(models);
  let reference = picked.reference;
  if (picked.id === "folder") {
    reference = (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: "Use this model" }))?.[0]?.fsPath;
  } else if (picked.id === "repo") {
    reference = await askRepoId("Hugging Face repo id of a cached model");
  }
  if (reference) await useModel(models, reference);
}

/** Check a folder or repo id in the worker (config, weights, tokenizer; nothing built) before remembering it. */
async function useModel(models: ModelHost, reference: string): Promise<void> {
  let description: string;
  try {
    description = await describeModel(models, reference);
  } catch (error) {
    // A repo id that is not cached yet: offer the download rather than only saying how.
    const downloadable = error instanceof LoupeError && error.code === "missing-file" && parseRepoRef(reference) !== undefined && !fs.existsSync(reference);
    const choice = await vscode.window.showErrorMessage(`Loupe cannot use ${reference}: ${describeError(error) ?? String(error)}`, ...(downloadable ? ["Download"] : []));
    if (choice === "Download") await downloadModel(models, reference);
    return;
  }
  await models.rememberFolder(reference);
  void vscode.window.showInformationMessage(`Loupe: this workspace now uses ${reference} (${description}).`);
}

export async function downloadModel(models: ModelHost, repoId?: string): Promise<void> {
  const reference = repoId ?? (await askRepoId("Hugging Face repo id to download into the cache"));
  if (!reference) return;
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Loupe: downloading ${reference}`, cancellable: true },
      (progress, token) => {
        let shown = 0;
        return pullModel(reference, {
          signal: abortSignalFor(token),
          onProgress: ({ file, bytes, totalBytes }) => {
            const share = totalBytes ? (100 * bytes) / totalBytes : 0;
            if (file) progress.report({ message: `${file} (${(bytes / 1024 ** 2).toFixed(0)} of ${(totalBytes / 1024 ** 2).toFixed(0)} MB)`, increment: share - shown });
            shown = share;
          },
        });
      },
    );
    const use = await vscode.window.showInformationMessage(`Loupe: ${reference} is in the Hugging Face cache (${result.files.length} files).`, "Use in this workspace");
    if (use) await useModel(models, reference);
  } catch (error) {
    void vscode.window.showErrorMessage(`Loupe could not download ${reference}: ${describeError(error) ?? String(error)}`);
  }
}

/** What the worker says of a folder or repo id (nothing is built or loaded). */
async function describeModel(models: ModelHost, reference: string): Promise<string> {
  return (await models.request("describeFolder", { folder: reference })).description;
}

function askRepoId(prompt: string): Thenable<string | undefined> {
  return vscode.window.showInputBox({
    prompt,
    placeHolder: "HuggingFaceTB/SmolLM2-135M-Instruct",
    validateInput: (value) => (parseRepoRef(value.trim()) ? undefined : "ORG/NAME (or NAME, as gpt2), optionally @REVISION (a branch, tag or commit)"),
  });
}
