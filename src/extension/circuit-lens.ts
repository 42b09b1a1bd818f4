import * as vscode from "vscode";
import { continuationEnding } from "../core/chat/chat-layout";
import { circuitInChat } from "../core/chat/chat-results";
import type { CircuitToken, CircuitTrace } from "../core/requests";
import { mark, type TimelineMark } from "../core/timeline";
import { circuitHoverMarkdown, circuitLevels } from "../core/view/circuit-view";
import type { CircuitPanel } from "./circuit-panel";
import { announceChat, chatTargetIfChat, onChatFile } from "./chat-target";
import { EditorLens } from "./editor-lens";
import type { ModelHost } from "./model-host";
import { runOnSelection } from "./selection-command";
import { transcoderSetting } from "./settings";

interface Shown {
  readonly startOffset: number;
  readonly trace: CircuitTrace;
}

/**
 * Loupe: Trace Circuit…: an attribution graph of the selection's next token through a transcoder
 * set (in the worker), shown as the "Circuit influence" lens: each token coloured by its influence
 * on the target, its hover giving that influence and the strongest paths.
 */
export class CircuitLens extends EditorLens<Shown, CircuitToken> {
  constructor(
    private readonly models: ModelHost,
    private readonly panel: CircuitPanel,
  ) {
    super();
  }

  trace(): Promise<void> {
    return runOnSelection(this.models, {
      noEditor: "Loupe: select the prompt whose next token you want traced.",
      blank: "Loupe: nothing to trace in this selection.",
      trimFinalNewline: true,
      ask: askAnswer,
      run: async (target, { answer }, model) => {
        const timeline: TimelineMark[] = [];
        mark(timeline, "extension: trace asked");
        const chat = chatTargetIfChat(target, model, continuationEnding);
        this.panel.showTracing(target.document.uri);
        const run = this.models.run("traceCircuit", { text: chat?.text ?? target.text, answer, transcoders: transcoderSetting(), graphFile: PANEL_PRUNING }, { title: "Loupe: tracing the circuit…" }, timeline);
        const { graph, ...traced } = await run.catch((error: unknown) => {
          this.panel.traceEnded(error);
          throw error;
        });
        mark(timeline, "extension: trace returned");
        // The panel reveals a node's token through these ranges: on a chat, the message text in the file.
        const trace = onChatFile(chat, traced, circuitInChat);
        this.shown.set(target.document.uri.toString(), { startOffset: target.startOffset, trace });
        this.draw(target.editor);
        mark(timeline, "extension: lens drawn");
        if (graph) this.panel.showTrace(trace, graph, target.document.uri, target.startOffset, timeline);
        if (chat) announceChat(chat, traced.tokens, "traced");
      },
    });
  }

  protected tokens(shown: Shown): readonly CircuitToken[] {
    return shown.trace.tokens;
  }

  protected heat(shown: Shown): Iterable<{ token: CircuitToken; level: number }> {
    return circuitLevels(shown.trace).map(({ index, level }) => ({ token: shown.trace.tokens[index], level }));
  }

  protected hoverMarkdown(shown: Shown, token: CircuitToken): vscode.MarkdownString {
    const markdown = new vscode.MarkdownString(circuitHoverMarkdown(shown.trace, shown.trace.tokens.indexOf(token)));
    markdown.isTrusted = false;
    return markdown;
  }
}

/**
 * The panel's graph is pruned loosely so its sliders can prune further in the page; they start at
 * circuit-tracer's defaults (0.8, 0.98).
 */
const PANEL_PRUNING = { nodeThreshold: 0.95, edgeThreshold: 0.995 };

/** The answer token to trace (empty: the model's top prediction); undefined when dismissed. */
async function askAnswer(): Promise<{ answer?: string } | undefined> {
  const answer = await vscode.window.showInputBox({
    title: "Loupe: trace which next token?",
    prompt: "One token, with its leading space (e.g. \" Mia\"). Empty: the model's most likely next tokens.",
  });
  if (answer === undefined) return undefined;
  return answer === "" ? {} : { answer };
}
