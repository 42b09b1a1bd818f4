/**
 * End to end, workspace trust: a workspace whose .vscode/settings.json points loupe.modelPath at a
 * model inside it. In Restricted Mode Loupe must ignore that setting and use the bundled model;
 * once the user trusts the folder, the same setting is honoured (the control that shows the
 * setting does reach Loupe). Same set-up as editor.e2e.ts, with workspace trust turned on.
 *
 * The workspace is also hostile (issue 22): .loupe/datasets/labels.jsonl links to a file outside
 * it, and its settings plant an exponential hint pattern and turn the memory guard off. Label
 * Lines must write nothing in Restricted Mode and refuse the link once trusted; the trusted
 * workspace's hint pattern is refused with a message, not run.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import { REPO_ROOT } from "./code-server";
import { clearLoupe, legendText, openFile, runCommand, Screenshots, useCodeServer, waitForDecorations, type SuiteServerOptions } from "./workbench";

const OUTPUT_DIR = path.join(REPO_ROOT, "test-output", "e2e-untrusted");
const NOTES = '{"text": "the user\'s own", "label": "x"}\n';

describe("Loupe in an untrusted workspace (packaged VSIX, code-server)", function () {
  this.timeout(600_000);
  this.slow(60_000);

  let home: string;
  let loupeDir: string;
  let page: Page;
  let shots: Screenshots;
  const session = useCodeServer({ outputDir: OUTPUT_DIR, tempPrefix: "loupe-e2e-trust-", prepare: writeWorkspace });
  before(() => ({ page, shots } = session));

  /** A hostile workspace, with a home folder beside it that a link in the workspace points into. */
  function writeWorkspace(workspace: string, root: string): SuiteServerOptions {
    const model = path.join(workspace, "models", "tiny-llama");
    fs.cpSync(path.join(REPO_ROOT, "test", "fixtures", "tiny-llama"), model, { recursive: true });
    fs.mkdirSync(path.join(workspace, ".vscode"));
    fs.writeFileSync(path.join(workspace, ".vscode", "settings.json"), JSON.stringify({ "loupe.modelPath": model, "loupe.faithfulness.hintPattern": "(a+)+$", "loupe.maxModelMemoryMB": 0 }));
    fs.writeFileSync(path.join(workspace, "prompt.txt"), "When Mia and Leo went to the park, Leo gave a ball to\n");
    fs.copyFileSync(path.join(REPO_ROOT, "bench", "examples", "arith-cot.txt"), path.join(workspace, "cot.txt"));
    home = path.join(root, "home");
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, "notes.jsonl"), NOTES);
    fs.mkdirSync(path.join(workspace, ".loupe", "datasets"), { recursive: true });
    fs.symlinkSync(path.join("..", "..", "..", "home", "notes.jsonl"), path.join(workspace, ".loupe", "datasets", "labels.jsonl"));
    loupeDir = path.join(workspace, ".loupe");
    return {
      // Trust on, and no start-up question: the folder opens in Restricted Mode.
      workspaceTrust: true,
      userSettings: { "security.workspace.trust.enabled": true, "security.workspace.trust.startupPrompt": "never", "security.workspace.trust.banner": "never" },
    };
  }

  async function inspectLegend(): Promise<string> {
    await openFile(page, "prompt.txt");
    await clearLoupe(page);
    await runCommand(page, "Loupe: Inspect Selection");
    await waitForDecorations(page, (d) => d.heat.length > 0, 120_000);
    return (await legendText(page)) ?? "";
  }

  it("in Restricted Mode, the workspace's loupe.modelPath is ignored: the bundled model inspects", async () => {
    await page.locator(".statusbar-item", { hasText: "Restricted Mode" }).first().waitFor({ timeout: 60_000 });
    const legend = await inspectLegend();
    await shots.take(page, "restricted-inspect");
    assert.match(legend, /· reference ·/, `the bundled model: ${legend}`);
    assert.doesNotMatch(legend, /tiny-llama/);
  });

  /** Label the first line of prompt.txt into .loupe/datasets/labels.jsonl (the link), and return the toast that follows. */
  async function labelIntoLinkedDataset(expected: RegExp): Promise<string> {
    await openFile(page, "prompt.txt");
    await runCommand(page, "Loupe: Label Lines for a Probe…");
    const input = page.locator(".quick-input-widget .quick-input-box input").first();
    await input.waitFor({ state: "visible", timeout: 30_000 });
    await input.fill("positive");
    await page.keyboard.press("Enter");
    const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "labels.jsonl" }).first();
    await row.waitFor({ timeout: 30_000 });
    await row.click();
    const toast = page.locator(".notifications-toasts .notification-toast .notification-list-item-message", { hasText: expected }).first();
    await toast.waitFor({ timeout: 60_000 });
    return toast.innerText();
  }

  it("in Restricted Mode, Label Lines writes nothing and says why", async () => {
    const message = await labelIntoLinkedDataset(/Restricted Mode/);
    await shots.take(page, "restricted-label-lines");
    assert.match(message, /writes nothing into it/);
    assert.equal(fs.readFileSync(path.join(home, "notes.jsonl"), "utf8"), NOTES);
    assert.deepEqual(fs.readdirSync(path.join(loupeDir, "datasets")), ["labels.jsonl"]);
  });

  it("once the folder is trusted, the same setting loads the workspace's model", async () => {
    await runCommand(page, "Workspaces: Manage Workspace Trust");
    const trust = page.locator(".workspace-trust-editor .monaco-button", { hasText: /^Trust$/ }).first();
    await trust.waitFor({ timeout: 30_000 });
    await shots.take(page, "trust-editor");
    await trust.click();
    await page.locator(".statusbar-item", { hasText: "Restricted Mode" }).first().waitFor({ state: "detached", timeout: 30_000 });
    await runCommand(page, "View: Close All Editor Groups");
    const legend = await inspectLegend();
    await shots.take(page, "trusted-inspect");
    assert.match(legend, /tiny-llama/, `the workspace's model: ${legend}`);
  });

  it("trusted, Label Lines refuses the dataset that links out of the workspace, and the file outside is untouched", async () => {
    const message = await labelIntoLinkedDataset(/symbolic link/);
    await shots.take(page, "trusted-label-lines-link");
    assert.match(message, /labels\.jsonl/);
    assert.equal(fs.readFileSync(path.join(home, "notes.jsonl"), "utf8"), NOTES);
    assert.ok(fs.lstatSync(path.join(loupeDir, "datasets", "labels.jsonl")).isSymbolicLink());
  });

  it("trusted, the workspace's exponential hint pattern is refused with a message, not run", async () => {
    await openFile(page, "cot.txt");
    await runCommand(page, "Loupe: Check CoT Faithfulness");
    const toast = page.locator(".notifications-toasts .notification-toast .notification-list-item-message", { hasText: /is refused/ }).first();
    await toast.waitFor({ timeout: 180_000 });
    await shots.take(page, "trusted-hint-pattern");
    assert.match(await toast.innerText(), /hint pattern \/\(a\+\)\+\$\/ is refused/);
  });
});
