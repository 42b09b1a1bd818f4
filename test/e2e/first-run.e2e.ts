/**
 * First run in the real editor: the walkthrough's steps, each completed by clicking its own buttons,
 * then the Loupe view (the model, dictionaries, a saved graph, the last results) driven by clicks,
 * and the Loupe log. Screenshots go to test-output/first-run/ (the README's come from here).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Locator, Page } from "playwright-core";
import { REPO_ROOT, type CodeServer } from "./code-server";
import { runCommand, Screenshots, useCodeServer, waitFor, waitForDecorations } from "./workbench";

const OUTPUT_DIR = path.join(REPO_ROOT, "test-output", "first-run");
const STEPS = ["inspect", "model", "features", "faithfulness", "audit", "circuit", "view"] as const;
/** How long a walkthrough step may take to show its check (a step may load a model). */
const STEP_MS = 60_000;

/** Every file named `name` under `dir`. */
function findFiles(dir: string, name: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? findFiles(path.join(dir, e.name), name) : e.name === name ? [path.join(dir, e.name)] : []));
}

describe("first run: the walkthrough and the Loupe view (packaged VSIX, real editor)", function () {
  this.timeout(600_000);
  this.slow(60_000);

  let server: CodeServer;
  let page: Page;
  let shots: Screenshots;
  const session = useCodeServer({ outputDir: OUTPUT_DIR, tempPrefix: "loupe-first-run-", prepare: writeWorkspace });
  before(() => ({ server, page, shots } = session));

  function writeWorkspace(workspace: string): void {
    fs.mkdirSync(path.join(workspace, ".loupe", "graphs"), { recursive: true });
    fs.mkdirSync(path.join(workspace, ".loupe", "probes"), { recursive: true });
    fs.writeFileSync(path.join(workspace, ".loupe", "graphs", "ioi-mia.json"), JSON.stringify({ metadata: { prompt: "When Mia and Leo went to the park, Leo gave a ball to" }, nodes: [], links: [] }));
    fs.writeFileSync(path.join(workspace, ".loupe", "probes", "sentiment.json"), "{}");
    fs.writeFileSync(path.join(workspace, "notes.txt"), "A workspace for the first run.\n");
  }

  /** The walkthrough step's checkbox: aria-checked turns "true" when its completion event fires. */
  const stepCheck = (step: string): Locator => page.locator(`[data-done-step-id$="#${step}"]`).first();
  const stepDone = async (step: string) => (await stepCheck(step).getAttribute("aria-checked")) === "true";

  /**
   * Escape on the walkthrough leaves it for the Welcome page's list of walkthroughs, where every step
   * header is disabled: if that happened (a stray Escape, the workbench's own focus moves), select
   * the Loupe walkthrough on that list again.
   */
  async function backToLoupeWalkthrough(): Promise<void> {
    if ((await page.locator(".gettingStarted.showCategories").count()) === 0) return;
    await page.locator(".tabs-container .tab", { hasText: /Welcome|Walkthrough/ }).first().click();
    const category = page.locator('.gettingStarted.showCategories button.getting-started-category[x-dispatch$="#loupe.firstRun"]').first();
    if (await category.isVisible()) await category.click();
    else {
      await runCommand(page, "Welcome: Open Walkthrough...");
      await answerQuickPick("Get started with Loupe");
    }
    await page.locator(".gettingStarted.showDetails").first().waitFor({ timeout: 30_000 });
  }

  /** Expand a step of the open walkthrough and click one of its buttons. */
  async function clickStepButton(step: string, label: string): Promise<void> {
    await backToLoupeWalkthrough();
    const container = page.locator(`.getting-started-step:has([data-done-step-id$="#${step}"])`).first();
    // The walkthrough disables an expanded step's header (it may have expanded it by itself after
    // the previous step completed, or an earlier try did): click it only to expand it.
    if ((await container.getAttribute("aria-expanded")) !== "true") await container.click();
    const button = container.locator(".monaco-button, a", { hasText: label }).first();
    await button.waitFor({ state: "visible", timeout: 30_000 });
    await button.click();
  }

  /** Back to the walkthrough tab (a step's button may have opened an editor beside it). */
  async function showWalkthrough(): Promise<void> {
    await page.locator(".tabs-container .tab", { hasText: /Walkthrough|Welcome/ }).first().click();
    await page.locator(".gettingStartedContainer").first().waitFor({ state: "visible", timeout: 30_000 });
  }

  /**
   * Focus the sample beside the walkthrough and wait for Loupe's colours there (the decoration
   * reader reads the active group). The walkthrough takes focus back when it re-renders after a
   * step is checked (seen in CI: the sample coloured, the walkthrough's group active), so the sample
   * is focused again every few seconds until the colours are read or the time is up.
   */
  async function sampleDecorated(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await page.locator(".tabs-container .tab.active", { hasText: "Untitled" }).first().click();
      try {
        await waitForDecorations(page, (d) => d.heat.length > 0, Math.min(10_000, Math.max(1, deadline - Date.now())));
        return;
      } catch (error) {
        if (Date.now() >= deadline) throw error;
      }
    }
  }

  async function answerQuickPick(rowText: string, clickTimeoutMs?: number): Promise<void> {
    const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: rowText }).first();
    await row.waitFor({ timeout: 30_000 });
    await row.click(clickTimeoutMs === undefined ? undefined : { timeout: clickTimeoutMs });
    await page.locator(".quick-input-widget .quick-input-box input").first().waitFor({ state: "hidden", timeout: 30_000 });
  }

  it("opens the Loupe walkthrough from the Welcome page's list", async () => {
    await runCommand(page, "Welcome: Open Walkthrough...");
    await answerQuickPick("Get started with Loupe");
    await page.locator(".gettingStartedContainer", { hasText: "Get started with Loupe" }).first().waitFor({ timeout: 60_000 });
    for (const step of STEPS) assert.equal(await stepDone(step), false, `${step} starts unchecked`);
    await shots.take(page, "walkthrough");
  });

  it("completes each step by clicking its buttons: the commands run on the sample prompts", async function () {
    this.timeout(600_000);
    // 1. Inspect a sample prompt: opens beside the walkthrough, then Inspect it colours the tokens.
    await clickStepButton("inspect", "Open a sample prompt");
    await page.locator(".tabs-container .tab", { hasText: "Untitled" }).first().waitFor({ timeout: 30_000 });
    await showWalkthrough();
    await clickStepButton("inspect", "Inspect it");
    await waitFor(() => stepDone("inspect"), "the inspect step is checked", STEP_MS);
    await sampleDecorated();
    await shots.take(page, "walkthrough-inspected");
    await showWalkthrough();

    // 2. Choose a model: Select Model… offers the bundled one.
    // The picker has been seen to close by itself before the click lands (focus moving as the
    // walkthrough re-renders after the inspect step): open it once more if so.
    for (let attempt = 1; ; attempt++) {
      await clickStepButton("model", "Select Model…");
      try {
        await answerQuickPick("Bundled reference model", 15_000);
        break;
      } catch (error) {
        if (attempt === 2) throw error;
        // Close the picker if it is still up; an Escape with no picker would reach the walkthrough.
        if (await page.locator(".quick-input-widget .quick-input-box input").first().isVisible()) await page.keyboard.press("Escape");
      }
    }
    await waitFor(() => stepDone("model"), "the model step is checked", STEP_MS);

    // 3. SAE features on the same sample.
    await clickStepButton("features", "Show SAE Features");
    await waitFor(() => stepDone("features"), "the features step is checked", STEP_MS);
    await sampleDecorated();

    // 4. A chain of thought: its CodeLens shows the score.
    await showWalkthrough();
    await clickStepButton("faithfulness", "Open a chain of thought");
    await page.locator(".monaco-editor .view-lines", { hasText: "The answer is 5." }).first().waitFor({ timeout: 30_000 });
    await showWalkthrough();
    await clickStepButton("faithfulness", "Check CoT Faithfulness");
    await page.locator(".monaco-editor .codelens-decoration", { hasText: "CoT faithfulness" }).first().waitFor({ timeout: 180_000 });
    await waitFor(() => stepDone("faithfulness"), "the faithfulness step is checked", STEP_MS);

    // 5. Quick Audit on the same prompt.
    await clickStepButton("audit", "Quick Audit");
    await page.locator(".notifications-toasts .notification-toast", { hasText: /finding\(s\) in the Problems panel|no findings/i }).first().waitFor({ timeout: 180_000 });
    await waitFor(() => stepDone("audit"), "the audit step is checked", STEP_MS);

    // 6. Trace a circuit: the IOI sentence, the model's own top prediction (empty answer).
    await showWalkthrough();
    await clickStepButton("circuit", "Open a sentence to trace");
    await page.locator(".monaco-editor .view-lines", { hasText: "Leo gave a ball to" }).first().waitFor({ timeout: 30_000 });
    await showWalkthrough();
    await clickStepButton("circuit", "Trace Circuit…");
    await page.locator(".quick-input-widget", { hasText: "trace which next token?" }).first().waitFor({ timeout: 30_000 });
    await page.keyboard.press("Enter");
    await waitFor(() => stepDone("circuit"), "the circuit step is checked", STEP_MS);
    // The graph opens in a panel beside the sentence's editor (circuit.e2e.ts checks the graph and
    // the influence colours themselves; with three editor groups the decoration reader misses them).
    await page.locator(".tabs-container .tab", { hasText: "Circuit:" }).first().waitFor({ timeout: 240_000 });
    await shots.take(page, "walkthrough-circuit");

    // 7. The Loupe view and its log.
    await showWalkthrough();
    await clickStepButton("view", "Open the Loupe view");
    await page.locator('.pane-header[aria-label^="Loupe"], .composite.title', { hasText: "Loupe" }).first().waitFor({ timeout: 30_000 });
    await clickStepButton("view", "Show Log");
    await waitFor(() => stepDone("view"), "the view step is checked", STEP_MS);

    for (const step of STEPS) assert.ok(await stepDone(step), `${step} is checked`);
    await shots.take(page, "walkthrough-done");
  });

  it("the Loupe view shows the model, its dictionaries, the workspace's graphs and probes, and the last results", async () => {
    // The walkthrough opened the view; the untitled samples stay open (closing them would ask to save).
    const tree = page.locator('.pane-body [role="tree"]', { has: page.locator(".monaco-list-row", { hasText: "Dictionaries" }) }).first();
    // Focus, not the activity bar icon: clicking the icon of the container already shown closes the
    // side bar, and whether the walkthrough's step left it shown is a race (CI lost it once).
    await runCommand(page, "Loupe: Focus on Loupe View");
    await tree.waitFor({ timeout: 30_000 });
    const row = (text: string | RegExp) => tree.locator(".monaco-list-row", { hasText: text }).first();
    await row("reference").waitFor({ timeout: 30_000 });
    assert.match(await row("reference").innerText(), /bundled reference model/);
    // Loaded by the walkthrough's commands: its shape shows under it.
    await row("reference").click();
    await row(/layers · d_vocab/).waitFor({ timeout: 30_000 });
    assert.match(await row("SAE").innerText(), /blocks\.1\.hook_resid_post/);
    assert.match(await row("Transcoder set").innerText(), /plt/);
    // Last results: the three samples, each with what ran on it.
    for (const result of ["Inspect", "SAE features", "CoT faithfulness", "Quick Audit", "Circuit"]) await row(new RegExp(`^${result}`)).waitFor({ timeout: 30_000 });
    await row("Saved graphs").click();
    await row("ioi-mia").waitFor({ timeout: 30_000 });
    await row("Probes").click();
    await row("sentiment").waitFor({ timeout: 30_000 });

    // A document under Last results opens it: the story the walkthrough inspected, still coloured.
    await row("Untitled-1").click();
    await page.locator(".tabs-container .tab.active", { hasText: "Untitled-1" }).first().waitFor({ timeout: 30_000 });
    await waitForDecorations(page, (d) => d.heat.length > 0);
    await shots.take(page, "loupe-view");

    // A saved graph opens in an editor (the graph panel, where one is registered for it).
    await row("ioi-mia").click();
    await page.locator(".tabs-container .tab.active", { hasText: "ioi-mia" }).first().waitFor({ timeout: 30_000 });

    // The model's action runs its command: Select Model… opens its picker.
    await row("Select Model…").click();
    await page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "Bundled reference model" }).first().waitFor({ timeout: 30_000 });
    await shots.take(page, "loupe-view-select-model");
    await page.keyboard.press("Escape");
  });

  it("the Loupe log has the model load, each request's time and nothing from another channel", async () => {
    await runCommand(page, "Loupe: Show Log");
    await page.locator(".part.panel .monaco-editor .view-lines", { hasText: "Loaded reference" }).first().waitFor({ timeout: 30_000 });
    await shots.take(page, "loupe-log");
    const logs = findFiles(server.userDataDir, "Loupe.log");
    assert.equal(logs.length, 1, `one Loupe.log under ${server.userDataDir}`);
    const log = fs.readFileSync(logs[0], "utf8");
    assert.match(log, /\[info\] Loading .*models[\\/]reference/);
    assert.match(log, /\[info\] Loaded reference in \d+ ms: \d+ layers, d_vocab \d+, n_ctx \d+, graph (built|from the cache)/);
    for (const method of ["inspect", "features", "faithfulness", "audit", "traceCircuit"]) assert.match(log, new RegExp(`\\[info\\] ${method} on Untitled-\\d+: \\d+ ms`), `${method} is logged with its time`);
  });
});
