/**
 * The one way an editor command runs on the selection: editor -> selection (or the whole document)
 * -> refuse what cannot run -> ask for what else it needs -> load the model -> run -> show, with
 * every error reported the same way. Commands supply only the parts that are theirs.
 */
import * as vscode from "vscode";
import { reportErrors } from "./errors";
import type { LoadedModel, ModelHost } from "./model-host";

/** The text a command runs on and where it sits. */
export interface SelectionTarget {
  readonly editor: vscode.TextEditor;
  readonly document: vscode.TextDocument;
  readonly range: vscode.Range;
  readonly text: string;
  /** Document offset of the text's first character. */
  readonly startOffset: number;
  /** Nothing was selected: the text is the whole document. */
  readonly wholeDocument: boolean;
  /** The document's version when the text was read (an edit while the model runs makes the result stale). */
  readonly version: number;
}

export interface SelectionCommand<Asked> {
  /** Said when no text editor is open. */
  readonly noEditor: string;
  /** Said when the text is blank (as a warning, or as information); none: return quietly. Unused with `check`. */
  readonly blank?: string;
  readonly blankIsInformation?: boolean;
  /** A check of its own in place of the blank one; a message refuses the text (as a warning). */
  readonly check?: (text: string, wholeDocument: boolean) => string | undefined;
  /** Drop one final newline from the text (a prompt to be continued almost never means it). */
  readonly trimFinalNewline?: boolean;
  /** Which editor to read; default the active one. */
  readonly editor?: () => vscode.TextEditor | undefined;
  /** Ask for what else the command needs, before the model loads; undefined cancels quietly. */
  readonly ask?: (target: SelectionTarget) => Promise<Asked | undefined>;
  /** With the model loaded: run the request(s) and show the result. */
  run(target: SelectionTarget, asked: Asked, model: LoadedModel): Promise<void>;
}

/** The selection, or the whole document when nothing is selected: what every command reads. */
export function selectionOrDocument(editor: vscode.TextEditor): vscode.Range {
  const document = editor.document;
  return editor.selection.isEmpty ? new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length)) : editor.selection;
}

/**
 * The active text editor, or, while focus is elsewhere (the walkthrough, a panel, the Loupe view), the
 * one text editor in view: a command run from there means that text. Two or more visible: none.
 */
export function activeOrOnlyTextEditor(): vscode.TextEditor | undefined {
  const visible = vscode.window.visibleTextEditors.filter((e) => e.document.uri.scheme !== "output");
  return vscode.window.activeTextEditor ?? (visible.length === 1 ? visible[0] : undefined);
}

/** The target of a command, or undefined after saying why there is none. */
export function selectionTarget(command: Omit<SelectionCommand<unknown>, "run" | "ask">): SelectionTarget | undefined {
  const editor = command.editor ? command.editor() : activeOrOnlyTextEditor();
  if (!editor) {
    void vscode.window.showInformationMessage(command.noEditor);
    return undefined;
  }
  const document = editor.document;
  const range = selectionOrDocument(editor);
  const read = document.getText(range);
  const text = command.trimFinalNewline ? read.replace(/\r?\n$/, "") : read;
  const wholeDocument = editor.selection.isEmpty;
  if (text.trim() === "" && !command.check) {
    if (command.blank) void (command.blankIsInformation ? vscode.window.showInformationMessage(command.blank) : vscode.window.showWarningMessage(command.blank));
    return undefined;
  }
  const problem = command.check?.(text, wholeDocument);
  if (problem) {
    void vscode.window.showWarningMessage(problem);
    return undefined;
  }
  return { editor, document, range, text, startOffset: document.offsetAt(range.start), wholeDocument, version: document.version };
}

export async function runOnSelection<Asked = undefined>(models: ModelHost, command: SelectionCommand<Asked>): Promise<void> {
  const target = selectionTarget(command);
  if (!target) return;
  await reportErrors(async () => {
    let asked = undefined as Asked;
    if (command.ask) {
      const answer = await command.ask(target);
      if (answer === undefined) return;
      asked = answer;
    }
    await command.run(target, asked, await models.ensureChosenLoaded());
  });
}
