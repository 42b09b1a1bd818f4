import * as path from "node:path";
import * as vscode from "vscode";
import { describeEdit, type FeatureEdit, type SteeringResult } from "../core/sae/steer";
import { chosenSaeFolder, pickFeature } from "./sae-workspace";
import type { ModelHost } from "./model-host";
import { runOnSelection } from "./selection-command";

/** What `loupe.steerFeature` takes from the dashboard; anything missing is asked for. */
interface SteerArgs {
  readonly saeFolder?: unknown;
  readonly feature?: unknown;
}

type Kind = FeatureEdit["kind"];

/** Read-only documents holding the two continuations, shown side by side in a diff editor. */
class ContinuationDocuments implements vscode.TextDocumentContentProvider {
  static readonly scheme = "loupe-steer";
  private readonly texts = new Map<string, string>();
  private next = 1;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.path) ?? "";
  }

  /** A new pair of documents (a fresh URI each run, so earlier comparisons stay as they were). */
  add(original: string, steered: string, label: string): [vscode.Uri, vscode.Uri] {
    const run = this.next++;
    const uri = (side: string) => vscode.Uri.from({ scheme: ContinuationDocuments.scheme, path: `/${run}/${side} (${label}).txt` });
    const left = uri("original");
    const right = uri("steered");
    this.texts.set(left.path, original);
    this.texts.set(right.path, steered);
    return [left, right];
  }
}

/**
 * Loupe: Steer with SAE Feature…: continue the selection twice, as is and with one feature
 * clamped, scaled, raised or zeroed at every position, and show both in a diff editor.
 */
export class SteeringController implements vscode.Disposable {
  private readonly documents = new ContinuationDocuments();
  private readonly disposables: vscode.Disposable[] = [];
  /** The last text editor with focus: the dashboard's Steer button runs while a webview has it. */
  private lastEditor: vscode.TextEditor | undefined = vscode.window.activeTextEditor;

  constructor(private readonly models: ModelHost) {
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(ContinuationDocuments.scheme, this.documents),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor && editor.document.uri.scheme !== ContinuationDocuments.scheme) this.lastEditor = editor;
      }),
    );
  }

  steer(args?: SteerArgs): Promise<void> {
    return runOnSelection(this.models, {
      editor: () => {
        const editor = vscode.window.activeTextEditor?.document.uri.scheme === ContinuationDocuments.scheme ? this.lastEditor : (vscode.window.activeTextEditor ?? this.lastEditor);
        return editor?.document.isClosed ? undefined : editor;
      },
      noEditor: "Loupe: open a text editor and select the prompt to continue.",
      blank: "Loupe: select the prompt to continue with a steered feature.",
      blankIsInformation: true,
      run: async ({ text }, _asked, model) => {
        const saeFolder = typeof args?.saeFolder === "string" && args.saeFolder ? args.saeFolder : chosenSaeFolder(model.folder);
        if (!saeFolder) {
          void vscode.window.showWarningMessage(`Loupe: no SAE for ${path.basename(model.folder)}. Set loupe.saePath to an SAELens folder made for this model.`);
          return;
        }
        const { d_sae } = await this.models.request("saeSummary", { saeFolder });
        const given = typeof args?.feature === "number" && Number.isInteger(args.feature) && args.feature >= 0 && args.feature < d_sae ? args.feature : undefined;
        const feature = given ?? (await pickFeature(this.models, saeFolder, d_sae, "Loupe: steer with which feature?"));
        if (feature === undefined) return;
        const max = await this.models.request("featureMaxActivation", { saeFolder, feature });
        const edit = await askEdit(feature, max ?? undefined);
        if (!edit) return;
        let last = 0;
        const result = await this.models.run("steer", { text, saeFolder, edit, maxNewTokens: 40 }, {
          title: `Loupe: generating with ${describeEdit(edit)}…`,
          report: (done, total) => {
            const increment = (100 * (done - last)) / total;
            last = done;
            return { increment };
          },
        });
        await this.show(text, result);
      },
    });
  }

  private async show(prompt: string, result: SteeringResult): Promise<void> {
    const label = describeEdit(result.edit);
    const [left, right] = this.documents.add(`${prompt}${result.original.text}`, `${prompt}${result.steered.text}`, label);
    await vscode.commands.executeCommand("vscode.diff", left, right, `Loupe: original ↔ ${label}`, { viewColumn: vscode.ViewColumn.Beside, preview: true });
    const p = result.prompt;
    if (p.firedAt === 0 && result.edit.kind !== "clamp" && result.edit.kind !== "add") {
      void vscode.window.showInformationMessage(`Loupe: feature ${result.edit.feature} does not fire on this prompt, so ${result.edit.kind === "zero" ? "zeroing" : "scaling"} it changes nothing there; clamp or raise it instead.`);
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

async function askEdit(feature: number, max: number | undefined): Promise<FeatureEdit | undefined> {
  const kinds: Array<vscode.QuickPickItem & { edit: Kind }> = [
    { edit: "clamp", label: "Clamp to a value…", description: "set the activation at every position" },
    { edit: "scale", label: "Scale by a factor…", description: "multiply the activation where it fires" },
    { edit: "add", label: "Raise or lower by an amount…", description: "add to the activation at every position" },
    { edit: "zero", label: "Zero it (ablate)", description: "remove the feature's contribution" },
  ];
  const picked = await vscode.window.showQuickPick(kinds, { title: `Loupe: how should feature #${feature} change?` });
  if (!picked) return undefined;
  if (picked.edit === "zero") return { feature, kind: "zero" };
  const suggestion = picked.edit === "scale" ? 4 : Math.max(1, Math.round((max ?? 5) * 2 * 10) / 10);
  const typed = await vscode.window.showInputBox({
    title: `Loupe: ${picked.label.replace("…", "")}`,
    value: String(suggestion),
    prompt: max === undefined ? "A number." : `A number. On the stats corpus this feature reached ${max.toFixed(2)}.`,
    validateInput: (v) => (v.trim() !== "" && Number.isFinite(Number(v)) ? undefined : "Type a number."),
  });
  if (typed === undefined) return undefined;
  const value = Number(typed);
  return picked.edit === "clamp" ? { feature, kind: "clamp", value } : picked.edit === "scale" ? { feature, kind: "scale", factor: value } : { feature, kind: "add", amount: value };
}
