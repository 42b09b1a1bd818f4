/**
 * The circuit panel end to end (packaged VSIX in code-server, headless Chromium): Trace Circuit on
 * the IOI prompt draws the graph, the node slider prunes it, a click on a token node selects that
 * token in the editor, pinned features grouped into a supernode are saved to .loupe/graphs and come
 * back when the file is opened, and Check gives `loupe intervene`'s numbers for the same features.
 * Screenshots go to test-output/e2e-circuit/.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { FrameLocator, Page } from "playwright-core";
import { REPO_ROOT, type CodeServer } from "./code-server";
import { cursorStatus, focusEditor, openFile, runCommand, Screenshots, useCodeServer, waitFor } from "./workbench";

const PROMPT = "When Mia and Leo went to the park, Mia gave a ball to";
const OUTPUT_DIR = path.join(REPO_ROOT, "test-output", "e2e-circuit");
/** A graph file with a node that has no feature_type. */
const BROKEN = '{"metadata": {}, "nodes": [{"node_id": "x"}], "links": []}';

describe("Circuit panel in code-server (packaged VSIX, real editor)", function () {
  this.timeout(600_000);

  let root: string;
  let workspace: string;
  let server: CodeServer;
  let page: Page;
  let shots: Screenshots;
  const session = useCodeServer({ outputDir: OUTPUT_DIR, tempPrefix: "loupe-e2e-circuit-", prepare: writeWorkspace });
  const pageErrors = session.pageErrors;
  before(() => ({ root, workspace, server, page, shots } = session));

  function writeWorkspace(workspace: string): void {
    fs.writeFileSync(path.join(workspace, "ioi.txt"), `${PROMPT}\n`);
    // Long enough (~170 tokens) that its trace runs for seconds: time to cancel it.
    fs.writeFileSync(path.join(workspace, "long.txt"), `${Array.from({ length: 12 }, () => PROMPT).join(" Leo. ")}\n`);
    // Written before the window opens, so Go to File lists it (its file list is cached).
    fs.mkdirSync(path.join(workspace, ".loupe", "graphs"), { recursive: true });
    fs.writeFileSync(path.join(workspace, ".loupe", "graphs", "broken.json"), BROKEN);
  }

  const panel = (): FrameLocator => page.frameLocator("iframe.webview.ready").frameLocator("iframe#active-frame");
  const canvasData = async (key: string): Promise<string> => (await panel().locator("canvas.graph").getAttribute(`data-${key}`)) ?? "";

  function cli(args: readonly string[]): string {
    const extension = fs.readdirSync(server.extensionsDir).find((d) => d.startsWith("loupe-dev.loupe-"));
    assert.ok(extension);
    return execFileSync(process.execPath, [path.join(server.extensionsDir, extension, "dist", "cli.js"), ...args], {
      input: PROMPT,
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: "", LOUPE_CACHE_DIR: path.join(root, "cli-cache") },
    });
  }

  /** Open a workspace file by name through Go to File (the explorer folds .loupe/graphs into one row). */
  async function quickOpen(name: string): Promise<void> {
    await runCommand(page, "Go to File...");
    await page.locator(".quick-input-widget .quick-input-box input").fill(name);
    await page.locator(".quick-input-widget .quick-input-list .monaco-list-row", { hasText: name }).first().waitFor({ timeout: 30_000 });
    await page.keyboard.press("Enter");
  }

  /** The focused node's facts and label (the details panel's first lines). */
  async function focusedNode(): Promise<{ facts: string; label: string }> {
    return { facts: await panel().locator(".details p").first().innerText(), label: await panel().locator(".details h2").innerText() };
  }

  /** Walk the graph with the arrow keys until a feature node not in `skip` has the focus; its label. */
  async function arrowToFeature(skip: readonly string[] = []): Promise<string> {
    const canvas = panel().locator("canvas.graph");
    await canvas.focus();
    const walk = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowDown", "ArrowLeft", "ArrowLeft", "ArrowDown", "ArrowRight"];
    for (let k = 0; k < 200; k++) {
      await canvas.press(walk[k % walk.length]);
      const { facts, label } = await focusedNode();
      if (facts.startsWith("feature ·") && !skip.includes(label)) return label;
    }
    throw new Error("no feature node reached with the arrow keys");
  }

  /** Pin `count` feature nodes, reached with the arrow keys (P pins the focused node). */
  async function pinFeatures(count: number): Promise<string[]> {
    const pinned: string[] = [];
    while (pinned.length < count) {
      pinned.push(await arrowToFeature(pinned));
      await panel().locator("canvas.graph").press("p");
    }
    return pinned;
  }

  it("traces the IOI prompt and draws the graph beside it; the node slider prunes live", async () => {
    await openFile(page, "ioi.txt");
    await focusEditor(page);
    await runCommand(page, "Loupe: Trace Circuit…");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ timeout: 30_000 });
    await page.keyboard.type(" Leo");
    await page.keyboard.press("Enter");
    await panel().locator("canvas.graph[data-nodes]").waitFor({ timeout: 300_000 });
    await page.waitForTimeout(500);
    await shots.take(page, "traced");
    const nodes = Number(await canvasData("nodes"));
    // 14 tokens and the logit at least, and features between them.
    assert.ok(nodes > 15, `nodes shown: ${nodes}`);
    assert.equal(Number(await canvasData("drawn-nodes")), nodes, "every shown node is inside the canvas after fitting");
    // The canvas holds more than its background: sample its pixels for colours.
    const colours = await panel().locator("canvas.graph").evaluate((c: HTMLCanvasElement) => {
      const data = c.getContext("2d")?.getImageData(0, 0, c.width, c.height).data ?? new Uint8ClampedArray();
      const seen = new Set<number>();
      for (let i = 0; i < data.length; i += 4 * 97) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      return seen.size;
    });
    assert.ok(colours > 5, `distinct colours on the canvas: ${colours}`);

    await panel().locator("input[aria-label='Node threshold']").fill("0.5");
    await waitFor(async () => Number(await canvasData("nodes")) < nodes, "fewer nodes at node threshold 0.5");
    await shots.take(page, "pruned");
    await panel().locator("input[aria-label='Node threshold']").fill("0.8");
    await waitFor(async () => Number(await canvasData("nodes")) === nodes, "the nodes back at 0.8");
  });

  it("clicking a token node selects that token in the editor", async () => {
    const tokens = JSON.parse(await canvasData("token-nodes")) as [number, number, number][];
    // Position 0 is the <|endoftext|> the trace puts in front (as circuit-tracer does); " Leo" is position 4.
    const leo = tokens.find(([pos]) => pos === 4);
    assert.ok(leo, JSON.stringify(tokens));
    await panel().locator("canvas.graph").click({ position: { x: leo[1], y: leo[2] } });
    // " Leo" is characters 12-16 of line 1.
    await waitFor(async () => (await cursorStatus(page)).includes("Ln 1, Col 17 (4 selected)"), '" Leo" selected', 30_000);
    await shots.take(page, "token-revealed");
  });

  it("keyboard: arrows move between nodes and a live region names the focused one; Tab and Shift+Tab leave the graph; Escape clears", async () => {
    const canvas = panel().locator("canvas.graph");
    assert.match((await canvas.getAttribute("aria-label")) ?? "", /Attribution graph: arrow keys move between nodes/);
    const announcer = panel().locator("#graph-focus");
    assert.equal(await announcer.getAttribute("aria-live"), "polite");
    assert.equal(await canvas.getAttribute("aria-describedby"), "graph-focus");
    await canvas.focus();
    await canvas.press("Escape");
    await canvas.press("ArrowUp");
    await waitFor(async () => (await announcer.innerText()).includes("logit"), "the target logit announced");
    const first = await announcer.innerText();
    assert.ok(first.startsWith((await focusedNode()).label), first);
    await canvas.press("ArrowDown");
    await waitFor(async () => (await announcer.innerText()) !== first, "the next node announced");
    assert.match(await announcer.innerText(), /^.+: (feature|error|embedding), .*; \d+ input links?, \d+ output links?\.$/);
    const active = () => canvas.evaluate((c) => (document.activeElement === c ? "canvas" : (document.activeElement?.tagName.toLowerCase() ?? "none")));
    await canvas.press("Tab");
    assert.notEqual(await active(), "canvas", "Tab leaves the graph");
    await page.keyboard.press("Shift+Tab");
    assert.equal(await active(), "canvas", "Shift+Tab comes back");
    await page.keyboard.press("Shift+Tab");
    assert.equal(await active(), "vscode-button", "Shift+Tab from the graph reaches the toolbar's buttons");
    await page.keyboard.press("Tab");
    await canvas.press("Escape");
    await waitFor(async () => (await announcer.innerText()) === "No node selected.", "Escape clears");
    await panel().locator(".details", { hasText: "Click a node" }).waitFor({ timeout: 10_000 });
    await shots.take(page, "keyboard");
  });

  it("clicking a feature node shows its dashboard: label, activation histogram, top contexts and logit effects", async () => {
    await arrowToFeature();
    const [id, x, y] = JSON.parse(await canvasData("selected")) as [string, number, number];
    await panel().locator("canvas.graph").press("Escape");
    await panel().locator("canvas.graph").click({ position: { x, y } });
    await waitFor(async () => JSON.parse(await canvasData("selected"))?.[0] === id, `the click selects ${id}`);
    const card = panel().locator(".feature-card");
    await card.locator("h3", { hasText: /^Dashboard: L\d+\/\d+/ }).waitFor({ timeout: 60_000 });
    await card.locator("svg[aria-label='histogram of log10 activation'] rect.bin").first().waitFor({ state: "attached", timeout: 10_000 });
    assert.equal(await card.locator("rect.bin").count(), 25, "the statistics' 25 log10 bins");
    assert.ok((await card.locator(".context").count()) > 0, "top contexts");
    assert.ok((await card.locator(".context .tok.focus").count()) > 0, "each context marks its token");
    assert.ok((await card.locator(".logits td.num").count()) > 0, "logit effects");
    // The bundled set is Loupe's own: no Neuronpedia page to link.
    assert.equal(await panel().locator(".details a.neuronpedia").count(), 0);
    await card.scrollIntoViewIfNeeded();
    await shots.take(page, "feature-card");
  });

  let pinnedIds: string[] = [];

  it("groups pinned features into a supernode, saves it to .loupe/graphs, and reopens it with the pins", async () => {
    const labels = await pinFeatures(2);
    assert.equal(labels.length, 2);
    await panel().locator("input[aria-label='Supernode label']").fill("say Leo");
    await panel().locator("vscode-button", { hasText: "Group pinned into supernode" }).click();
    await panel().locator(".supernode", { hasText: "say Leo" }).waitFor({ timeout: 10_000 });
    await panel().locator("vscode-button", { hasText: "Save" }).click();
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ timeout: 30_000 });
    await input.fill("ioi-leo");
    await page.keyboard.press("Enter");
    const file = path.join(workspace, ".loupe", "graphs", "ioi-leo.json");
    await waitFor(async () => fs.existsSync(file), "the graph file is written");
    await shots.take(page, "saved");
    const saved = JSON.parse(fs.readFileSync(file, "utf8"));
    pinnedIds = saved.qParams.pinnedIds;
    assert.equal(pinnedIds.length, 2);
    assert.deepEqual(saved.qParams.supernodes, [["say Leo", ...pinnedIds]]);
    assert.ok(saved.nodes.length > 0 && saved.links.length > 0 && saved.metadata.prompt === PROMPT);

    await runCommand(page, "View: Close All Editor Groups");
    await quickOpen("ioi-leo.json");
    await panel().locator("canvas.graph[data-nodes]").waitFor({ timeout: 60_000 });
    await panel().locator(".supernode", { hasText: "say Leo" }).waitFor({ timeout: 10_000 });
    assert.match(await panel().locator(".subgraph h2").first().innerText(), /Subgraph: 2 pinned/);
    await shots.take(page, "reopened");
  });

  it("Check zeroes the pinned features and shows `loupe intervene`'s numbers", async () => {
    await panel().locator("vscode-button", { hasText: "Check" }).click();
    await panel().locator(".check table").waitFor({ timeout: 300_000 });
    await shots.take(page, "checked");
    const rows = await panel().locator(".check tr").allInnerTexts();
    const value = (label: RegExp) => Number(rows.find((r) => label.test(r))?.split(/\s+/).pop());
    const command = (await panel().locator(".check .command").innerText()).replace(/^loupe intervene /, "").split(" ");
    const expected = JSON.parse(cli(["intervene", "-", ...command, "--answer", " Leo", "--json"])) as { predicted: number; constrained: number; free: number; edits: { layer: number; feature: number; pos: number }[] };
    assert.deepEqual(expected.edits.map((e) => `${e.layer}_${e.feature}_${e.pos}`).sort(), [...pinnedIds].sort(), "the same features as the pins");
    for (const [label, want] of [
      [/^Predicted/, expected.predicted],
      [/^Constrained/, expected.constrained],
      [/^Actual/, expected.free],
    ] as const) {
      assert.ok(Math.abs(value(label) - want) <= 5e-5 + 1e-9, `${label}: panel ${value(label)}, loupe intervene ${want}`);
    }
  });

  it("says in the panel while a trace runs, and once cancelled says so and keeps the graph it had", async () => {
    const graphBefore = await canvasData("graph");
    assert.ok(Number(graphBefore) > 0, "a graph from the tests before");
    await openFile(page, "long.txt");
    await focusEditor(page);
    await runCommand(page, "Loupe: Trace Circuit…");
    await page.locator(".quick-input-widget input").waitFor({ timeout: 30_000 });
    await page.keyboard.press("Enter");
    const status = panel().locator(".trace-status");
    await status.filter({ hasText: "Tracing the next token of long.txt" }).waitFor({ timeout: 60_000 });
    await shots.take(page, "tracing");
    const toast = page.locator(".notification-toast", { hasText: "tracing the circuit" });
    await toast.locator(".monaco-button", { hasText: "Cancel" }).click({ timeout: 30_000 });
    await status.filter({ hasText: "The trace was cancelled. The graph below is the previous one." }).waitFor({ timeout: 60_000 });
    await shots.take(page, "cancelled");
    assert.equal(await canvasData("graph"), graphBefore, "the previous graph stays drawn");
    assert.ok(Number(await canvasData("nodes")) > 0);
  });

  it("a malformed graph file gets a message in the panel and stays as it was", async () => {
    const file = path.join(workspace, ".loupe", "graphs", "broken.json");
    await runCommand(page, "View: Close All Editor Groups");
    await quickOpen("broken.json");
    await panel().locator(".notice", { hasText: "broken.json is not a circuit-tracer graph" }).waitFor({ timeout: 60_000 });
    await shots.take(page, "malformed");
    assert.equal(fs.readFileSync(file, "utf8"), BROKEN);
    assert.deepEqual(pageErrors.filter((e) => /loupe|circuit/i.test(e)), []);
  });
});
