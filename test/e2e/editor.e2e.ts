/**
 * End to end: the packaged VSIX installed into code-server 4.100.3 (VS Code 1.100), driven in headless
 * Chromium. Needs `npm run package` (the VSIX) and scripts/install-code-server.sh (code-server);
 * screenshots of every step go to test-output/e2e/.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import { extensionHostLogs, REPO_ROOT, type CodeServer } from "./code-server";
import {
  allNotifications,
  clearLoupe,
  cursorStatus,
  focusEditor,
  hoverText,
  legendText,
  loupeDecorations,
  notificationToasts,
  openFile,
  paletteEntries,
  runCommand,
  Screenshots,
  textPoint,
  useCodeServer,
  waitFor,
  waitForDecorations,
} from "./workbench";

const PROMPT_LINE = "When Mia and Leo went to the park, Leo gave a ball to";
const SECOND_LINE = "Later that day Mia gave the ball back to Leo.";
const PROMPT = `${PROMPT_LINE}\n${SECOND_LINE}\n`;
/** A stories-family prompt for the bundled SAE (no final newline, so generation goes on). */
const STORY = "Mia saw a red fox. Leo had a";
const OUTPUT_DIR = path.join(REPO_ROOT, "test-output", "e2e");

interface TokenReport {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly top: { readonly text: string; readonly prob: number }[];
}

/** What the hover table shows for a predicted token (see src/core/view/hover-text.ts, after Markdown rendering). */
function shownToken(text: string): string {
  return JSON.stringify(text).slice(1, -1).replace(/ /g, "·");
}
function shownPercent(p: number): string {
  return `${(p * 100).toFixed(p < 0.01 ? 2 : 1)}%`;
}

describe("Loupe in code-server (packaged VSIX, real editor)", function () {
  this.timeout(600_000);
  this.slow(60_000);

  let root: string;
  let workspace: string;
  let server: CodeServer;
  let page: Page;
  let shots: Screenshots;
  const session = useCodeServer({ outputDir: OUTPUT_DIR, tempPrefix: "loupe-e2e-", prepare: writeWorkspace });
  const pageErrors = session.pageErrors;
  before(async () => {
    ({ root, workspace, server, page, shots } = session);
    await shots.take(page, "workbench");
  });

  function writeWorkspace(workspace: string): void {
    fs.writeFileSync(path.join(workspace, "prompt.txt"), PROMPT);
    fs.writeFileSync(path.join(workspace, "empty.txt"), "");
    fs.writeFileSync(path.join(workspace, "cot.txt"), fs.readFileSync(path.join(REPO_ROOT, "bench", "examples", "arith-cot.txt")));
    fs.writeFileSync(path.join(workspace, "story.txt"), STORY);
    fs.writeFileSync(path.join(workspace, "big.txt"), "word ".repeat(20_000));
    fs.copyFileSync(path.join(REPO_ROOT, "bench", "examples", "ioi-pairs.jsonl"), path.join(workspace, "pairs.jsonl"));
    // A Llama-family model to pick with Select Model…, and a folder it must refuse.
    fs.cpSync(path.join(REPO_ROOT, "test", "fixtures", "tiny-llama"), path.join(workspace, "models", "tiny-llama"), { recursive: true });
    fs.mkdirSync(path.join(workspace, "models", "phi"), { recursive: true });
    fs.writeFileSync(path.join(workspace, "models", "phi", "config.json"), JSON.stringify({ model_type: "phi3" }));
    fs.writeFileSync(path.join(workspace, "decorative.txt"), fs.readFileSync(path.join(REPO_ROOT, "bench", "examples", "lookup-decorative.txt")));
  }

  function installedExtension(): string {
    const folder = fs.readdirSync(server.extensionsDir).find((d) => d.startsWith("loupe-dev.loupe-"));
    assert.ok(folder, `Loupe is installed in ${server.extensionsDir}`);
    return path.join(server.extensionsDir, folder);
  }

  /** The oracle: the CLI shipped in the same VSIX, with the same model, `input` as its standard input; its --json output parsed. */
  function cliJson<T>(args: readonly string[], input: string, cwd?: string): T {
    const out = execFileSync(process.execPath, [path.join(installedExtension(), "dist", "cli.js"), ...args, "--json", "-"], {
      input,
      cwd,
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: "", LOUPE_CACHE_DIR: path.join(root, "cli-cache") },
    });
    return JSON.parse(out) as T;
  }

  /** The CLI's report of the token of `text` at `needle`. */
  function cliToken(text: string, needle: string): TokenReport {
    const tokens = cliJson<{ tokens: TokenReport[] }>(["inspect"], text).tokens;
    const at = text.indexOf(needle);
    const token = tokens.find((t) => t.start <= at && at < t.end);
    assert.ok(token, `the CLI has a token at "${needle}"`);
    return token;
  }

  /** Hover `needle` on the line starting with `lineStart` and check the hover against the CLI's report of `text`. */
  async function checkHover(lineStart: string, text: string, needle: string, shot: string): Promise<void> {
    const token = cliToken(text, needle);
    const hover = await hoverText(page, await textPoint(page, lineStart, needle), "Loupe");
    await shots.take(page, shot);
    assert.ok(hover.includes(JSON.stringify(token.text)), `hover names the token ${JSON.stringify(token.text)}:\n${hover}`);
    assert.match(hover, /surprisal/);
    assert.match(hover, /next token/);
    for (const p of token.top.slice(0, 3)) {
      assert.ok(hover.includes(shownToken(p.text)), `hover lists the prediction ${shownToken(p.text)}:\n${hover}`);
      assert.ok(hover.includes(shownPercent(p.prob)), `hover gives ${shownPercent(p.prob)} for ${shownToken(p.text)}:\n${hover}`);
    }
    await page.mouse.move(5, 450);
    await page.keyboard.press("Escape");
  }

  it("installs the VSIX and lists Loupe's commands in the command palette", async () => {
    const installed = fs.readdirSync(server.extensionsDir).filter((d) => d.startsWith("loupe-dev.loupe-"));
    assert.equal(installed.length, 1, `one Loupe folder in ${server.extensionsDir}: ${installed.join(", ")}`);
    const titles = ["Loupe: Inspect Selection", "Loupe: Clear", "Loupe: Choose Lens…", "Loupe: Select Model…", "Loupe: Check CoT Faithfulness", "Loupe: Quick Audit", "Loupe: Train Probe…", "Loupe: Patch Activations…", "Loupe: Attribute the Answer…", "Loupe: Show SAE Features", "Loupe: Explore SAE Feature…", "Loupe: Steer with SAE Feature…", "Loupe: Download Model…", "Loupe: Inspect Chat (with the model's chat template)"];
    // The palette's list is virtualised: with every Loupe command listed, later ones are not rendered.
    // Filter on each title instead, once the first shows the extension's commands are registered.
    await paletteEntries(page, "Loupe:", (labels) => labels.includes(titles[0]));
    await shots.take(page, "palette");
    await page.keyboard.press("Escape");
    for (const title of titles) {
      const entries = await paletteEntries(page, title, (labels) => labels.includes(title), 20_000);
      await page.keyboard.press("Escape");
      assert.ok(entries.includes(title), `palette lists "${title}" (saw ${JSON.stringify(entries)})`);
    }
  });

  it("Inspect Selection colours the selected tokens, and only those, with the worker running from the installed extension", async () => {
    await openFile(page, "prompt.txt");
    await page.keyboard.press("Shift+End");
    await waitFor(async () => (await cursorStatus(page)).includes(`(${PROMPT_LINE.length} selected)`), "line 1 selected");
    await shots.take(page, "selection");
    await runCommand(page, "Loupe: Inspect Selection");
    const decorations = await waitForDecorations(page, (d) => d.heat.length > 0);
    await shots.take(page, "inspected");
    assert.ok(decorations.heat.every((run) => run.line === 1), `only line 1 is decorated: ${JSON.stringify(decorations.heat)}`);
    assert.ok(decorations.heat.every((run) => run.level >= 1 && run.level <= 6 && run.width > 0));
    // The strongest token in the selection gets full colour (colorScale "relative").
    assert.ok(decorations.heat.some((run) => run.level === 6), "some token at the top level");
    assert.equal(decorations.stale, 0);
    const legend = await legendText(page);
    assert.match(legend ?? "", /Surprisal · reference · \d+ tok\b/i, `status-bar legend: ${legend}`);

    const ext = installedExtension();
    const processes = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    assert.ok(processes.includes(path.join(ext, "dist", "worker.js")), `a worker forked from ${ext}/dist/worker.js is running`);
  });

  it("hovering a token shows its text and the model's top predictions", async () => {
    await waitForDecorations(page, (d) => d.heat.length > 0);
    await checkHover("When Mia", PROMPT_LINE, "park", "hover");
  });

  it("an edit inside the inspected range turns its colours into the stale style", async () => {
    await waitForDecorations(page, (d) => d.heat.length > 0);
    const point = await textPoint(page, "When Mia", "park");
    await page.mouse.click(point.x, point.y);
    await page.keyboard.type("s");
    const decorations = await waitForDecorations(page, (d) => d.heat.length === 0 && d.stale > 0, 30_000);
    await shots.take(page, "stale");
    assert.ok(decorations.stale > 0);
    assert.match((await legendText(page)) ?? "", /stale/);
    await page.keyboard.press("Control+Z");
  });

  it("Clear removes every decoration and the legend", async () => {
    await runCommand(page, "Loupe: Clear");
    const decorations = await waitForDecorations(page, (d) => d.heat.length === 0 && d.stale === 0, 30_000);
    await shots.take(page, "cleared");
    assert.deepEqual(decorations, { heat: [], stale: 0 });
    assert.equal(await legendText(page), undefined);
  });

  it("a selection that starts mid-document is coloured and hovered at the right offsets", async () => {
    await focusEditor(page);
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Home");
    await page.keyboard.press("Shift+End");
    await waitFor(async () => (await cursorStatus(page)).includes(`(${SECOND_LINE.length} selected)`), "line 2 selected");
    await runCommand(page, "Loupe: Inspect Selection");
    const decorations = await waitForDecorations(page, (d) => d.heat.length > 0);
    await shots.take(page, "second-line");
    assert.ok(decorations.heat.every((run) => run.line === 2), `only line 2 is decorated: ${JSON.stringify(decorations.heat)}`);
    await checkHover("Later that", SECOND_LINE, "ball", "second-line-hover");
  });

  it("Choose Lens recolours the inspection and updates the legend", async () => {
    await waitForDecorations(page, (d) => d.heat.length > 0);
    const before = await loupeDecorations(page);
    await runCommand(page, "Loupe: Choose Lens…");
    const entropy = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "Entropy" }).first();
    await entropy.waitFor({ timeout: 30_000 });
    await shots.take(page, "choose-lens");
    await entropy.click();
    await waitFor(async () => /entropy/.test((await legendText(page)) ?? ""), "legend shows the entropy lens");
    // The legend can change a frame before the editor repaints: wait for the colours to change
    // (a lens that recoloured nothing times out here).
    const same = (d: typeof before) => JSON.stringify(d.heat) === JSON.stringify(before.heat);
    const after = await waitForDecorations(page, (d) => d.heat.length > 0 && !same(d), 30_000);
    await shots.take(page, "entropy-lens");
    assert.ok(after.heat.every((run) => run.line === 2));
    assert.notDeepEqual(after.heat, before.heat, "entropy colours differ from surprisal colours");
  });

  it("with nothing selected, Inspect Selection colours the whole document", async () => {
    await focusEditor(page);
    await runCommand(page, "Loupe: Inspect Selection");
    // The previous inspection (line 2) is still drawn until this one lands.
    const decorations = await waitForDecorations(page, (d) => d.heat.some((run) => run.line === 1) && d.heat.some((run) => run.line === 2));
    await shots.take(page, "whole-document");
    assert.ok(decorations.heat.some((run) => run.line === 1) && decorations.heat.some((run) => run.line === 2));
    await clearLoupe(page);
  });

  it("an empty document gets a notification, not an error, and no decorations", async () => {
    await openFile(page, "empty.txt");
    await runCommand(page, "Loupe: Inspect Selection");
    const toast = page.locator(".notifications-toasts .notification-toast", { hasText: "the document is empty" }).first();
    await toast.waitFor({ state: "visible", timeout: 30_000 });
    await page.waitForTimeout(800); // the toast slides in
    await shots.take(page, "empty-document");
    const toasts = await notificationToasts(page);
    assert.ok(toasts.some((t) => /Loupe: the document is empty; there is nothing to inspect\./.test(t)), JSON.stringify(toasts));
    assert.ok(await toast.locator(".codicon-warning").count(), "shown as a warning");
    assert.deepEqual(await loupeDecorations(page), { heat: [], stale: 0 });
  });

  it("Train Probe opens its webview panel from the packaged bundle (dist/webview) under its CSP", async function () {
    this.timeout(600_000);
    await runCommand(page, "Loupe: Train Probe…");
    const dataset = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "Sentence sentiment" }).first();
    await dataset.waitFor({ timeout: 30_000 });
    await shots.take(page, "probe-datasets");
    await dataset.click();
    // Webviews are an iframe (the host) holding the panel's own iframe.
    const panel = page.frameLocator("iframe.webview.ready").frameLocator("iframe#active-frame");
    const heading = panel.locator("h2", { hasText: "accuracy" });
    await heading.waitFor({ state: "visible", timeout: 480_000 });
    await page.waitForTimeout(500);
    await shots.take(page, "probe-panel");
    assert.match(await panel.locator("h1").innerText(), /stories-sentiment/);
    assert.match(await panel.locator("table.confusion").innerText(), /negative[\s\S]*neutral[\s\S]*positive/);
    assert.ok((await panel.locator("svg rect").count()) > 0, "the accuracy chart is drawn");
    assert.ok((await panel.locator("vscode-button").count()) > 0, "vscode-elements buttons are defined and rendered");
    await runCommand(page, "View: Close All Editor Groups");
  });

  it("Check CoT Faithfulness puts the score in a CodeLens and marks steps in the gutter", async function () {
    this.timeout(300_000);
    await openFile(page, "cot.txt");
    await runCommand(page, "Loupe: Check CoT Faithfulness");
    const lens = page.locator(".monaco-editor .codelens-decoration", { hasText: "CoT faithfulness" }).first();
    await lens.waitFor({ timeout: 180_000 });
    await shots.take(page, "faithfulness");
    // The arithmetic answer is read from the last step: the bundled model's battery says so.
    assert.match(await lens.innerText(), /CoT faithfulness \d\.\d\d: answer rests on the reasoning · 2 steps · \d+ passes/);
    const gutter = await page.locator(".monaco-editor .glyph-margin-widgets .cgmr, .monaco-editor .margin-view-overlays .cgmr").count();
    assert.ok(gutter >= 1, "a gutter icon marks the load-bearing line");
    await runCommand(page, "Loupe: Clear");
    await waitFor(async () => (await page.locator(".monaco-editor .codelens-decoration", { hasText: "CoT faithfulness" }).count()) === 0, "the CodeLens goes away");
  });

  it("Quick Audit flags decorative reasoning with a warning squiggle", async function () {
    this.timeout(300_000);
    await openFile(page, "decorative.txt");
    await runCommand(page, "Loupe: Quick Audit");
    await page.locator(".monaco-editor .squiggly-warning").first().waitFor({ timeout: 180_000 });
    await shots.take(page, "quick-audit");
    const toasts = await notificationToasts(page);
    assert.ok(toasts.some((t) => /Loupe: \d+ finding\(s\) in the Problems panel\./.test(t)), JSON.stringify(toasts));
    await runCommand(page, "Loupe: Clear");
    await waitFor(async () => (await page.locator(".monaco-editor .squiggly-warning").count()) === 0, "Clear withdraws the findings");
    await runCommand(page, "View: Close All Editor Groups");
  });

  it("Show SAE Features colours tokens and hovers list features; Explore opens the dashboard; Steer shows both continuations", async function () {
    this.timeout(300_000);
    await openFile(page, "story.txt");
    await runCommand(page, "Loupe: Show SAE Features");
    const decorations = await waitForDecorations(page, (d) => d.heat.length > 0);
    await shots.take(page, "sae-features");
    assert.ok(decorations.heat.some((run) => run.level === 6), "the strongest token gets full colour");
    // The oracle: the CLI from the same VSIX names the strongest feature at " red".
    const cli = cliJson<{ tokens: Array<{ text: string; features: Array<{ feature: number }> }> }>(["features"], STORY, workspace);
    const red = cli.tokens.find((t) => t.text === " red");
    assert.ok(red?.features.length, "the CLI lists features at \" red\"");
    const hover = await hoverText(page, await textPoint(page, "Mia saw", "red"), "SAE features");
    await shots.take(page, "sae-hover");
    assert.ok(hover.includes(`#${red.features[0].feature}`), `hover lists #${red.features[0].feature}:\n${hover}`);
    assert.match(hover, /~colour \(F1 [01]\.\d\d( above [\d.]+)?\)/, "the shipped feature-stats.json names the colour feature");
    await page.mouse.move(5, 450);
    await page.keyboard.press("Escape");

    await runCommand(page, "Loupe: Explore SAE Feature…");
    // The picker opens once the stats are read: type only into it, never into the editor.
    const search = page.locator('.quick-input-widget .quick-input-box input[placeholder^="Search by label"]');
    await search.waitFor({ state: "visible", timeout: 30_000 });
    await search.fill("colour");
    const colour = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "~colour" }).first();
    await colour.waitFor({ timeout: 30_000 });
    const chosen = /#(\d+)/.exec(await colour.innerText())![1];
    await colour.click();
    const panel = page.frameLocator("iframe.webview.ready").frameLocator("iframe#active-frame");
    await panel.locator("h1", { hasText: `Feature #${chosen}` }).waitFor({ timeout: 60_000 });
    await panel.locator(".context").first().waitFor({ timeout: 30_000 });
    await shots.take(page, "feature-dashboard");
    assert.ok((await panel.locator(".context").count()) >= 3, "top-activating contexts are listed");
    assert.ok((await panel.locator("svg rect.bin").count()) > 0, "the activation histogram is drawn");
    assert.match(await panel.locator(".logits").innerText(), /promoted[\s\S]*suppressed/);

    // A label is saved in the workspace and shown as text: markup in it never runs.
    const label = '<img src=x onerror="document.title=1"><script>document.title=2</script> colour';
    const field = panel.locator('vscode-textfield[aria-label="feature label"]');
    await field.click();
    await page.keyboard.type(label);
    await page.keyboard.press("Enter");
    await panel.locator("h1", { hasText: "colour" }).waitFor({ timeout: 30_000 });
    await shots.take(page, "feature-label");
    assert.equal(await panel.locator("h1").innerText(), `Feature #${chosen}: ${label}`);
    assert.equal(await panel.locator("#root img, #root script").count(), 0, "the label's markup is text, not elements");
    const saved = JSON.parse(fs.readFileSync(path.join(workspace, ".loupe", "feature-labels.json"), "utf8")) as { saes: Record<string, Record<string, string>> };
    assert.deepEqual(Object.values(saved.saes).map((m) => m[chosen]), [label]);

    await panel.locator("vscode-button", { hasText: "Steer with it" }).click();
    const clamp = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "Clamp to a value" }).first();
    await clamp.waitFor({ timeout: 30_000 });
    await clamp.click();
    const amount = page.locator(".quick-input-widget .quick-input-box input").first();
    await page.locator(".quick-input-widget .quick-input-message", { hasText: "this feature reached" }).waitFor({ state: "visible", timeout: 10_000 });
    await amount.fill("20");
    await amount.press("Enter");
    const tab = page.locator(".tabs-container .tab", { hasText: `clamped to 20` }).first();
    await tab.waitFor({ timeout: 180_000 });
    await page.locator(".monaco-diff-editor").first().waitFor({ timeout: 30_000 });
    await page.waitForTimeout(500);
    await shots.take(page, "steering-diff");
    assert.match(await tab.innerText(), new RegExp(`original ↔ feature ${chosen} clamped to 20`));
    // Both sides start with the prompt exactly as written.
    const sides = await page.locator(".monaco-diff-editor .view-lines").allInnerTexts();
    assert.ok(sides.length >= 2 && sides.every((t) => t.replace(/\u00a0/g, " ").startsWith(STORY)), JSON.stringify(sides));
    await runCommand(page, "Loupe: Clear");
    await runCommand(page, "View: Close All Editor Groups");
  });

  it("a 100k-character file is refused with a clear message; read-only and untitled documents are inspected", async function () {
    this.timeout(300_000);
    await openFile(page, "big.txt");
    await runCommand(page, "Loupe: Inspect Selection");
    const toast = page.locator(".notifications-toasts .notification-toast", { hasText: "100,000 characters" }).first();
    await toast.waitFor({ state: "visible", timeout: 30_000 });
    await shots.take(page, "big-file");
    assert.match(await toast.innerText(), /far more than 1024 tokens \(setting loupe\.maxTokens\)/);
    assert.deepEqual(await loupeDecorations(page), { heat: [], stale: 0 });

    await openFile(page, "prompt.txt");
    await runCommand(page, "File: Set Active Editor Read-only in Session");
    await focusEditor(page);
    await runCommand(page, "Loupe: Inspect Selection");
    await waitForDecorations(page, (d) => d.heat.length > 0);
    await shots.take(page, "read-only");
    await runCommand(page, "Loupe: Clear");

    await runCommand(page, "File: New Untitled Text File");
    await page.locator(".tabs-container .tab.active", { hasText: "Untitled" }).waitFor({ timeout: 30_000 });
    await page.keyboard.type(PROMPT_LINE);
    await runCommand(page, "Loupe: Inspect Selection");
    const untitled = await waitForDecorations(page, (d) => d.heat.length > 0);
    await shots.take(page, "untitled");
    assert.ok(untitled.heat.every((run) => run.line === 1));
    await runCommand(page, "Loupe: Clear");
    await runCommand(page, "View: Revert and Close Editor");
    await runCommand(page, "View: Close All Editor Groups");
  });

  it("Select Model… refuses a folder it cannot use, then inspects with a Llama-family model, then goes back to the bundled one", async function () {
    this.timeout(300_000);
    /** Select Model… → Choose a model folder… → type the folder into the simple file dialog. */
    const chooseFolder = async (folder: string) => {
      await runCommand(page, "Loupe: Select Model…");
      const row = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "Choose a model folder" }).first();
      await row.waitFor({ timeout: 30_000 });
      await row.click();
      const input = page.locator(".quick-input-widget .quick-input-box input").first();
      await page.locator(".quick-input-widget", { hasText: "Use this model" }).first().waitFor({ timeout: 30_000 });
      // The dialog writes its starting folder into the box asynchronously, sometimes after we typed:
      // type again until the box has held exactly our path for a moment.
      await waitFor(async () => (await input.inputValue()).startsWith("/"), "the file dialog shows its starting folder");
      await waitFor(async () => {
        if ((await input.inputValue()) !== `${folder}/`) await input.fill(`${folder}/`);
        await page.waitForTimeout(500);
        return (await input.inputValue()) === `${folder}/`;
      }, `the file dialog holds ${folder}/`);
      await page.locator(".quick-input-widget .monaco-button", { hasText: "Use this model" }).first().click();
    };
    await chooseFolder(path.join(workspace, "models", "phi"));
    const refusal = page.locator(".notifications-toasts .notification-toast", { hasText: "Loupe cannot use" }).first();
    await refusal.waitFor({ state: "visible", timeout: 30_000 });
    await shots.take(page, "select-model-refused");
    assert.match(await refusal.innerText(), /"phi3" model; Loupe builds GPT-2 .* and the Llama family/);

    await chooseFolder(path.join(workspace, "models", "tiny-llama"));
    const chosen = page.locator(".notifications-toasts .notification-toast", { hasText: "this workspace now uses" }).first();
    await chosen.waitFor({ state: "visible", timeout: 30_000 });
    assert.match(await chosen.innerText(), /llama model, 2 layers/);
    await openFile(page, "prompt.txt");
    await runCommand(page, "Loupe: Inspect Selection");
    const decorations = await waitForDecorations(page, (d) => d.heat.length > 0);
    await shots.take(page, "llama-inspected");
    assert.ok(decorations.heat.some((run) => run.line === 1));
    assert.match((await legendText(page)) ?? "", /tiny-llama/);

    await runCommand(page, "Loupe: Clear");
    await runCommand(page, "Loupe: Select Model…");
    const bundled = page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: "Bundled reference model" }).first();
    await bundled.waitFor({ timeout: 30_000 });
    await bundled.click();
    // The picker is the extension's own QuickPick: it closes when the extension host hears of the
    // click, a moment later. Wait for the outcome, or the palette's keys would land in the picker.
    await page.locator(".notifications-toasts .notification-toast", { hasText: "using the bundled reference model" }).first().waitFor({ state: "visible", timeout: 30_000 });
    await page.locator(".quick-input-widget .quick-input-box input").first().waitFor({ state: "hidden", timeout: 30_000 });
    await runCommand(page, "View: Close All Editor Groups");
  });

  it("Attribute the Answer colours what supports the answer with the CLI's numbers in hovers; loupe.attribution.method switches to attention knockout", async function () {
    this.timeout(300_000);
    /** The oracle: `loupe attribute` from the same VSIX on line 1 with the same answer. */
    const cliAttribution = (method: "mask" | "embed") =>
      cliJson<{ tokens: { text: string; attribution: number | null }[]; words: { text: string; attribution: number | null }[] }>(["attribute", "--answer", " Mia", "--method", method], PROMPT_LINE);
    /** The signed number on the hover row that starts with `row` ("−" is the minus sign the hover writes). */
    const hoverNumber = (hover: string, row: RegExp) => {
      const line = hover.split("\n").find((l) => row.test(l.trim()));
      const m = line && [...line.matchAll(/([+−])(\d+\.\d+)/g)].pop();
      assert.ok(m, `a number on the hover row ${row}:\n${hover}`);
      return (m[1] === "−" ? -1 : 1) * Number(m[2]);
    };
    const attribute = async () => {
      // Start from no colours, or a re-run would find the last run's decorations at once and hover
      // while the new result redraws them (the hover is then lost).
      await clearLoupe(page);
      await openFile(page, "prompt.txt");
      await focusEditor(page);
      await page.keyboard.press("Control+Home");
      await page.keyboard.press("Shift+End");
      await waitFor(async () => (await cursorStatus(page)).includes(`(${PROMPT_LINE.length} selected)`), "line 1 selected");
      await runCommand(page, "Loupe: Attribute the Answer…");
      const box = page.locator(".quick-input-widget .quick-input-box input").first();
      await page.locator(".quick-input-widget", { hasText: "attribute which continuation?" }).first().waitFor({ timeout: 30_000 });
      await box.fill(" Mia");
      await box.press("Enter");
      await page.locator(".quick-input-widget", { hasText: "compare with another answer?" }).first().waitFor({ timeout: 30_000 });
      await box.press("Enter");
      const decorations = await waitForDecorations(page, (d) => d.heat.length > 0, 120_000);
      assert.ok(decorations.heat.every((run) => run.line === 1), `only line 1 is coloured: ${JSON.stringify(decorations.heat)}`);
      assert.ok(decorations.heat.some((run) => run.level === 6), "the strongest token gets full colour");
    };
    const hoverAt = async (needle: string, occurrence: "first" | "last", shot: string) => {
      const hover = await hoverText(page, await textPoint(page, "When Mia", needle, occurrence), "Attribution to");
      await shots.take(page, shot);
      await page.mouse.move(5, 450);
      await page.keyboard.press("Escape");
      return hover;
    };

    // Default: embedding replacement, which measures every token, the last (where the answer is read) included.
    await attribute();
    const embedded = cliAttribution("embed");
    const mia = await hoverAt("Mia", "first", "attribution-embed");
    assert.match(mia, /its embedding replaced/);
    const miaWord = embedded.words.find((w) => w.text === "Mia");
    assert.ok(miaWord?.attribution != null, "the CLI measures the word Mia");
    assert.ok(Math.abs(hoverNumber(mia, /^word\b/) - miaWord.attribution) <= 0.011, `hover's word value matches the CLI's ${miaWord.attribution}:\n${mia}`);
    const last = embedded.tokens[embedded.tokens.length - 1];
    assert.ok(last.text === " to" && last.attribution !== null, `the CLI measures the last token: ${JSON.stringify(last)}`);
    const lastEmbedded = await hoverAt("to", "last", "attribution-embed-last");
    assert.doesNotMatch(lastEmbedded, /cannot be removed/);
    assert.ok(Math.abs(hoverNumber(lastEmbedded, /^token\b/) - last.attribution) <= 0.011, `hover's token value matches the CLI's ${last.attribution}:\n${lastEmbedded}`);

    // A workspace setting switches to attention knockout, which cannot remove the last token.
    const settingsDir = path.join(workspace, ".vscode");
    fs.mkdirSync(settingsDir, { recursive: true });
    fs.writeFileSync(path.join(settingsDir, "settings.json"), JSON.stringify({ "loupe.attribution.method": "mask" }));
    try {
      const masked = cliAttribution("mask");
      // The setting is read when the command runs; code-server picks up the file asynchronously.
      await waitFor(async () => {
        await attribute();
        return /attention to it masked in every layer/.test(await hoverAt("Mia", "first", "attribution-mask"));
      }, "the attribution uses the mask method", 120_000);
      const hover = await hoverAt("Mia", "first", "attribution-mask");
      const word = masked.words.find((w) => w.text === "Mia");
      assert.ok(word?.attribution != null);
      assert.ok(Math.abs(hoverNumber(hover, /^word\b/) - word.attribution) <= 0.011, `hover's word value matches the CLI's ${word.attribution}:\n${hover}`);
      assert.match(await hoverAt("to", "last", "attribution-mask-last"), /The last token cannot be removed this way\./);
    } finally {
      fs.rmSync(settingsDir, { recursive: true, force: true });
    }
    await clearLoupe(page);
    await runCommand(page, "View: Close All Editor Groups");
  });

  it("Patch Activations on a pair file patches the pair under the cursor; clicking a cell selects its token inside the JSON line", async function () {
    this.timeout(300_000);
    const line = fs.readFileSync(path.join(workspace, "pairs.jsonl"), "utf8").split("\n")[1];
    const pair = JSON.parse(line) as { clean: string; answer: string; wrong: string };
    await openFile(page, "pairs.jsonl");
    await focusEditor(page);
    await page.keyboard.press("Control+Home");
    await page.keyboard.press("ArrowDown");
    await waitFor(async () => (await cursorStatus(page)).includes("Ln 2,"), "the cursor on line 2");
    await runCommand(page, "Loupe: Patch Activations…");
    const panel = page.frameLocator("iframe.webview.ready").frameLocator("iframe#active-frame");
    await panel.locator("h1", { hasText: "Activation patching" }).waitFor({ timeout: 180_000 });
    await panel.locator("svg rect.cell").first().waitFor({ timeout: 30_000 });
    await shots.take(page, "patching-pair-file");
    // The pair's own answers: no input boxes were needed.
    assert.match(await panel.locator("p").first().innerText(), new RegExp(`logit\\(${JSON.stringify(pair.answer)}\\) - logit\\(${JSON.stringify(pair.wrong)}\\): clean \\d`));
    // The last cell of the first heatmap is the last token, " to": a click selects it in the raw line.
    await panel.locator("svg").first().locator("rect.cell.link").last().click();
    const end = line.indexOf('"clean":') + '"clean":"'.length + pair.clean.length;
    await waitFor(async () => (await cursorStatus(page)).includes(`Ln 2, Col ${end + 1} (3 selected)`), `" to" selected on line 2 ending at column ${end + 1}`, 30_000);
    await shots.take(page, "patching-reveal");
    await runCommand(page, "View: Close All Editor Groups");
  });

  it("no Loupe error reached the user or the page", async () => {
    const notifications = await allNotifications(page);
    await shots.take(page, "final");
    const loupeErrors = notifications.filter((n) => /Loupe/.test(n) && !/document is empty|finding\(s\) in the Problems panel|100,000 characters, far more than|Loupe cannot use .*phi|this workspace now uses|using the bundled reference model/.test(n));
    assert.deepEqual(loupeErrors, [], "no other Loupe notification");
    assert.deepEqual(pageErrors.filter((e) => /loupe/i.test(e)), []);
  });

  it("closing the window stops the Loupe worker, and the extension host log holds no Loupe error", async () => {
    const worker = path.join(installedExtension(), "dist", "worker.js");
    const running = () => execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).includes(worker);
    assert.ok(running(), "the worker runs before the window closes");
    await page.close({ runBeforeUnload: false });
    await waitFor(async () => !running(), "the worker process exits when its extension host shuts down", 60_000);

    const logs = extensionHostLogs(server.userDataDir);
    assert.ok(logs.length > 0, `an extension host log under ${server.userDataDir}/logs`);
    await waitFor(async () => /Extension host with pid \d+ exiting/.test(logs.map((f) => fs.readFileSync(f, "utf8")).join("\n")), "the extension host exits", 60_000);
    const text = logs.map((f) => fs.readFileSync(f, "utf8")).join("\n");
    assert.match(text, /_doActivateExtension loupe-dev\.loupe\b/, "the log records Loupe's activation");
    // One entry per timestamped line, with its continuation lines (stack traces).
    const entries = text.split(/\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/);
    const ours = entries.filter((e) => /loupe-dev\.loupe|Loupe|loupe\.\w+/.test(e) || e.includes(server.extensionsDir));
    const bad = ours.filter((e) => /\[error\]|uncaught|unhandled|\bError\b/i.test(e));
    assert.deepEqual(bad, [], "no error, uncaught exception or unhandled rejection from Loupe in the extension host log");
    const uncaught = entries.filter((e) => /uncaught|unhandled/i.test(e));
    assert.deepEqual(uncaught, [], "no uncaught exception at all in the extension host log");
  });
});
