import * as path from "node:path";
import * as vscode from "vscode";
import type { ChatLayout } from "../core/chat/chat-layout";
import { featuresInChat } from "../core/chat/chat-results";
import { labelIn } from "../core/sae/feature-labels";
import type { TokenFeaturesResult } from "../core/sae/token-features";
import { featureHoverMarkdown, featureTokenLevels } from "../core/view/feature-dashboard";
import { chosenSaeFolder, labelsFor, pickFeature } from "./sae-workspace";
import type { ModelHost } from "./model-host";
import { announceChat, chatTargetIfChat, onChatFile } from "./chat-target";
import { EditorLens } from "./editor-lens";
import { runOnSelection } from "./selection-command";

type FeatureToken = TokenFeaturesResult["tokens"][number];

interface Shown {
  readonly startOffset: number;
  /** What the model read: the selection, or the chat rendered from it. */
  readonly text: string;
  /** The chat the text was rendered from: results go back onto its file. */
  readonly chat?: ChatLayout;
  result: TokenFeaturesResult;
  /** Colour by this feature's activation instead of each token's strongest one. */
  focus?: number;
  /** The user's labels of the features the result lists (feature index -> label). */
  labels: Readonly<Record<string, string>>;
}

/** Show SAE Features: token backgrounds by SAE activation, hovers with each token's top features. */
export class FeatureLens extends EditorLens<Shown, FeatureToken> {
  constructor(private readonly models: ModelHost) {
    super();
  }

  /** Colour the selection (or document) by SAE features; with `pickFeature`, by one feature the user picks. */
  show(args?: { pickFeature?: unknown }): Promise<void> {
    return runOnSelection(this.models, {
      noEditor: "Loupe: open a text editor and select the text to read SAE features of.",
      blank: "Loupe: select some text to read SAE features of.",
      blankIsInformation: true,
      run: async (target, _asked, model) => {
        const { editor, document, startOffset } = target;
        const saeFolder = chosenSaeFolder(model.folder);
        if (!saeFolder) {
          void vscode.window.showWarningMessage(`Loupe: no SAE for ${path.basename(model.folder)}. Set loupe.saePath to an SAE folder made for this model (SAELens, Gemma Scope or Llama Scope) or RELEASE/SAE_ID.`);
          return;
        }
        let focus: number | undefined;
        if (args?.pickFeature === true) {
          const { d_sae } = await this.models.request("saeSummary", { saeFolder });
          focus = await pickFeature(this.models, saeFolder, d_sae, "Loupe: colour tokens by which feature?");
          if (focus === undefined) return;
        }
        const chat = chatTargetIfChat(target, model, () => "as-written");
        const text = chat?.text ?? target.text;
        const read = await this.models.run("features", { text, saeFolder, topK: 5, focus }, { title: "Loupe: reading SAE features…", location: vscode.ProgressLocation.Window });
        const result = onChatFile(chat, read, featuresInChat);
        const labels = await labelsFor(this.models, saeFolder, shownFeatures(result), (m) => void vscode.window.showWarningMessage(m));
        this.shown.set(document.uri.toString(), { startOffset, text, chat, result, focus, labels });
        this.draw(editor);
        if (chat) announceChat(chat, read.tokens, "read for SAE features");
      },
    });
  }

  /**
   * Colour the shown text by one feature (from the dashboard), or by each token's strongest again.
   * The lens holds only each token's top features, so it asks the worker for the focused one's
   * activation at every token.
   */
  async focus(saeFolder: string, feature: number | undefined): Promise<void> {
    const same = [...this.shown.values()].filter((shown) => path.resolve(shown.result.saeFolder) === path.resolve(saeFolder));
    for (const shown of same) {
      shown.focus = feature;
      if (feature === undefined || shown.result.focus?.feature === feature) continue;
      try {
        shown.result = onChatFile(shown.chat, await this.models.request("features", { text: shown.text, saeFolder, topK: 5, focus: feature }), featuresInChat);
        shown.labels = await labelsFor(this.models, saeFolder, shownFeatures(shown.result));
      } catch {
        // Keep colouring by the top features; the dashboard itself is unaffected.
      }
    }
    for (const editor of vscode.window.visibleTextEditors) this.draw(editor);
  }

  /** Labels changed on disk (the dashboard saved one): hovers read them again. */
  async reloadLabels(): Promise<void> {
    for (const shown of this.shown.values()) shown.labels = await labelsFor(this.models, shown.result.saeFolder, shownFeatures(shown.result));
  }

  protected tokens(shown: Shown): readonly FeatureToken[] {
    return shown.result.tokens;
  }

  protected heat(shown: Shown): Iterable<{ token: FeatureToken; level: number }> {
    return featureTokenLevels(shown.result, shown.focus).map(({ index, level }) => ({ token: shown.result.tokens[index], level }));
  }

  protected hoverMarkdown(shown: Shown, token: FeatureToken): vscode.MarkdownString {
    const markdown = new vscode.MarkdownString(featureHoverMarkdown(shown.result, token.index, (f) => labelIn(shown.labels, f)));
    // Links may run this one command and nothing else.
    markdown.isTrusted = { enabledCommands: ["loupe.exploreFeature"] };
    markdown.supportHtml = false;
    return markdown;
  }
}

/** The features a result lists (and the focused one): the only labels its hovers need. */
function shownFeatures(result: TokenFeaturesResult): number[] {
  return [...new Set([...Object.keys(result.maxByFeature).map(Number), ...(result.focus ? [result.focus.feature] : [])])];
}
