/**
 * Integration tests: the extension loaded from this repository (extensionDevelopmentPath) in a real
 * VS Code extension host, driven through the vscode API. Run by @vscode/test-cli (.vscode-test.mjs,
 * VS Code desktop downloaded by @vscode/test-electron) or inside code-server by test/e2e/integration.e2e.ts.
 *
 * Decorations cannot be read back through the API, so the state an inspection leaves behind is
 * observed through what the extension exposes to the editor: its hover provider.
 */
import * as assert from "node:assert/strict";
import * as vscode from "vscode";

const EXTENSION_ID = "loupe-dev.loupe";
const TEXT = "When Mia and Leo went to the park, Leo gave a ball to\nLater that day Mia gave the ball back to Leo.\n";

/** The Markdown of every Loupe hover at a position (through the same command the editor uses). */
async function loupeHovers(document: vscode.TextDocument, position: vscode.Position): Promise<string[]> {
  const hovers = (await vscode.commands.executeCommand<vscode.Hover[]>("vscode.executeHoverProvider", document.uri, position)) ?? [];
  return hovers
    .flatMap((hover) => hover.contents)
    .map((content) => (typeof content === "string" ? content : content.value))
    .filter((value) => value.includes("**Loupe** token"));
}

function positionOf(document: vscode.TextDocument, needle: string): vscode.Position {
  const offset = document.getText().indexOf(needle);
  assert.ok(offset >= 0, `"${needle}" is in the document`);
  return document.positionAt(offset + 1);
}

async function openEditor(content: string): Promise<vscode.TextEditor> {
  const document = await vscode.workspace.openTextDocument({ language: "plaintext", content });
  return vscode.window.showTextDocument(document);
}

describe("Loupe extension (vscode API)", function () {
  this.timeout(180_000);

  before(async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is loaded`);
    await extension.activate();
  });

  afterEach(async () => {
    await vscode.commands.executeCommand("loupe.clear");
    // Untitled documents are dirty: revert them as they close, or VS Code asks whether to save.
    for (let i = 0; i < 20 && vscode.window.visibleTextEditors.length > 0; i++) {
      await vscode.commands.executeCommand("workbench.action.revertAndCloseActiveEditor");
    }
  });

  it("registers its commands", async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const id of ["loupe.inspectSelection", "loupe.clear", "loupe.chooseLens", "loupe.selectModel"]) {
      assert.ok(commands.includes(id), `${id} is registered`);
    }
  });

  it("Inspect Selection on a selection leaves an inspection on exactly the selected tokens", async () => {
    const editor = await openEditor(TEXT);
    const document = editor.document;
    const firstLine = document.lineAt(0).range;
    editor.selection = new vscode.Selection(firstLine.start, firstLine.end);
    assert.deepEqual(await loupeHovers(document, positionOf(document, "park")), [], "no hover before inspecting");

    await vscode.commands.executeCommand("loupe.inspectSelection");

    const hovers = await loupeHovers(document, positionOf(document, "park"));
    assert.equal(hovers.length, 1, "one Loupe hover on an inspected token");
    assert.match(hovers[0], /token \d+: `" park"`/);
    assert.match(hovers[0], /\| next token \| prob \|/);
    assert.match(hovers[0], /surprisal \*\*[\d.]+ bits\*\*/);
    assert.deepEqual(await loupeHovers(document, positionOf(document, "Later")), [], "nothing outside the selection");
  });

  it("Inspect Selection with nothing selected inspects the whole document", async () => {
    const editor = await openEditor(TEXT);
    editor.selection = new vscode.Selection(0, 0, 0, 0);
    await vscode.commands.executeCommand("loupe.inspectSelection");
    assert.equal((await loupeHovers(editor.document, positionOf(editor.document, "park"))).length, 1);
    assert.equal((await loupeHovers(editor.document, positionOf(editor.document, "ball back"))).length, 1);
  });

  it("Clear forgets every inspection", async () => {
    const editor = await openEditor(TEXT);
    await vscode.commands.executeCommand("loupe.inspectSelection");
    assert.equal((await loupeHovers(editor.document, positionOf(editor.document, "park"))).length, 1);
    await vscode.commands.executeCommand("loupe.clear");
    assert.deepEqual(await loupeHovers(editor.document, positionOf(editor.document, "park")), []);
  });

  it("an edit inside the inspected range makes it stale: no more token hovers", async () => {
    const editor = await openEditor(TEXT);
    await vscode.commands.executeCommand("loupe.inspectSelection");
    const at = positionOf(editor.document, "park");
    assert.equal((await loupeHovers(editor.document, at)).length, 1);
    assert.ok(await editor.edit((edit) => edit.insert(at, "x")));
    assert.deepEqual(await loupeHovers(editor.document, positionOf(editor.document, "ball")), []);
  });

  it("an empty document is refused without an error", async () => {
    const editor = await openEditor("");
    await vscode.commands.executeCommand("loupe.inspectSelection");
    assert.deepEqual(await loupeHovers(editor.document, new vscode.Position(0, 0)), []);
  });
});
