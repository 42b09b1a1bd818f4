import * as path from "node:path";
import * as vscode from "vscode";
import { formatReleaseSae, neuronpediaIdOf, releaseSaeOfFolder } from "../core/sae/releases/reference";
import { labelIn } from "../core/sae/feature-labels";
import { parseFeatureDashboardRequest, type FeatureDashboardRequest, type FeatureDashboardState } from "../core/view/feature-dashboard";
import type { ReadyRequest } from "../core/view/panel-protocol";
import type { SaeSummary } from "../core/requests/feature-files";
import type { FeatureLens } from "./feature-lens";
import type { ModelHost } from "./model-host";
import { chosenSaeFolder, labelKey, labelsFile, labelsFor, pickFeature } from "./sae-workspace";
import { readSettings } from "./settings";
import { ScriptedPanel } from "./scripted-panel";
import { reportErrors } from "./errors";
import type { PageOptions } from "./webview-page";
import { writableWorkspaceFolder } from "./workspace-files";

/** What `loupe.exploreFeature` takes from hover links; anything else is asked for. */
interface ExploreArgs {
  readonly saeFolder?: unknown;
  readonly feature?: unknown;
}

/**
 * Loupe: Explore SAE Feature…: a dashboard for one feature (label, density, log-activation
 * histogram, top-activating contexts with their tokens highlighted, logit effects) read from the
 * SAE's feature-stats.json. The user's label is saved to .loupe/feature-labels.json. While the
 * dashboard is open, the feature lens colours the editor by the feature on show.
 */
export class FeatureDashboard extends ScriptedPanel<FeatureDashboardState, FeatureDashboardRequest> {
  private saeFolder = "";
  /** The SAE on show's width, hook and Neuronpedia id, as the worker read them. */
  private summary: SaeSummary | undefined;

  constructor(
    context: vscode.ExtensionContext,
    private readonly models: ModelHost,
    private readonly lens: FeatureLens,
  ) {
    super(context, { viewType: "loupe.feature", script: "features" });
  }

  async explore(args?: ExploreArgs): Promise<void> {
    await reportErrors(async () => {
      const saeFolder = typeof args?.saeFolder === "string" && args.saeFolder ? args.saeFolder : chosenSaeFolder(this.models.chosenFolder(readSettings().modelPath));
      if (!saeFolder) {
        void vscode.window.showWarningMessage("Loupe: no SAE for this model. Set loupe.saePath to an SAE folder (SAELens, Gemma Scope or Llama Scope) or RELEASE/SAE_ID.");
        return;
      }
      const summary = await this.models.request("saeSummary", { saeFolder });
      const { d_sae } = summary;
      let feature = typeof args?.feature === "number" && Number.isInteger(args.feature) ? args.feature : undefined;
      if (feature === undefined) {
        feature = await pickFeature(this.models, saeFolder, d_sae, `Loupe: explore which feature of ${path.basename(saeFolder)}?`);
        if (feature === undefined) return;
      }
      if (feature < 0 || feature >= d_sae) {
        void vscode.window.showWarningMessage(`Loupe: feature ${feature} is outside 0..${d_sae - 1}.`);
        return;
      }
      await this.show(saeFolder, summary, feature);
    });
  }

  /** The worker reads feature-stats.json (checked against this SAE's widths and hook) and builds the view. */
  private async show(saeFolder: string, summary: SaeSummary, feature: number): Promise<void> {
    const labels = await labelsFor(this.models, saeFolder, [feature], (m) => void vscode.window.showWarningMessage(m));
    this.saeFolder = saeFolder;
    this.summary = summary;
    const state = await this.models.request("featureDashboard", {
      saeFolder,
      feature,
      sae: shownSae(saeFolder),
      hook_name: summary.hook_name,
      d_sae: summary.d_sae,
      label: labelIn(labels, feature),
      neuronpedia: neuronpediaIdOf(saeFolder, summary.neuronpedia_id),
    });
    this.present(state, `Feature #${feature}${state.label ? `: ${state.label}` : ""}`);
    void this.lens.focus(saeFolder, feature);
  }

  /** Another feature (or the same one relabelled) of the SAE on show: its summary is already known. */
  private async showOnSameSae(feature: number): Promise<void> {
    await this.show(this.saeFolder, this.summary ?? (await this.models.request("saeSummary", { saeFolder: this.saeFolder })), feature);
  }

  protected override onClosed(): void {
    void this.lens.focus(this.saeFolder, undefined);
  }

  protected parse(message: unknown, state: FeatureDashboardState): FeatureDashboardRequest | null {
    return parseFeatureDashboardRequest(message, state);
  }

  protected async handle(request: Exclude<FeatureDashboardRequest, ReadyRequest>): Promise<void> {
    switch (request.type) {
      case "open":
        await this.showOnSameSae(request.feature);
        return;
      case "steer":
        await vscode.commands.executeCommand("loupe.steerFeature", { saeFolder: this.saeFolder, feature: request.feature });
        return;
      case "label": {
        // No folder, or Restricted Mode: say so, write nothing.
        const root = writableWorkspaceFolder("keep feature labels");
        const file = labelsFile();
        if (!root || !file) return;
        // Read, change one entry, write (in the worker): labels other windows saved meanwhile are kept.
        await this.models.request("setFeatureLabel", { file, root, key: labelKey(this.saeFolder), feature: request.feature, label: request.label });
        await this.lens.reloadLabels();
        await this.showOnSameSae(request.feature);
        return;
      }
    }
  }

  protected page(): PageOptions {
    return {
      css: `
.muted, .note { color: var(--vscode-descriptionForeground); }
.controls { display: flex; gap: .5em; align-items: center; flex-wrap: wrap; margin: .5em 0 1em; }
${FEATURE_CARD_CSS}`,
    };
  }
}

/** Styles of a feature's statistics (webview/shared/feature-card.ts): here and in the circuit panel's feature card. */
export const FEATURE_CARD_CSS = `
svg { width: 100%; max-width: 640px; }
rect.bin { fill: var(--vscode-charts-blue); }
.tick { fill: var(--vscode-descriptionForeground); font-size: 10px; }
.axis { stroke: var(--vscode-panel-border); }
.context { font-family: var(--vscode-editor-font-family); white-space: pre-wrap; margin: .25em 0; padding: .3em .5em; border-left: 3px solid var(--vscode-panel-border); }
.context .value { color: var(--vscode-descriptionForeground); margin-right: .8em; }
.tok { border-radius: 2px; background: color-mix(in srgb, var(--vscode-charts-orange) calc(var(--strength) * 70%), transparent); }
.tok.focus { outline: 1px solid var(--vscode-focusBorder); }
.logits { display: flex; gap: 2em; flex-wrap: wrap; }
.logits table { border-collapse: collapse; }
.logits td { padding: .1em .6em; font-family: var(--vscode-editor-font-family); }
.logits td.num { text-align: right; }
.pos { color: var(--vscode-charts-blue); } .neg { color: var(--vscode-charts-red); }`;

/** A published SAE by its RELEASE/SAE_ID (as loupe.saePath and `--sae` take it), a folder relative to the workspace. */
function shownSae(saeFolder: string): string {
  const published = releaseSaeOfFolder(saeFolder);
  return published ? formatReleaseSae(published) : vscode.workspace.asRelativePath(saeFolder);
}
