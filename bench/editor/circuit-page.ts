/**
 * The circuit panel's page (dist/webview/circuit.js) in headless Chromium without an editor: a
 * stand-in for VS Code's webview API records what the page sends, and states are posted as the
 * extension posts them. bench:editor times frames with it; it also makes quick screenshots.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Browser, Page } from "playwright-core";
import type { CircuitPanelState } from "../../src/core/view/circuit-panel";

const BUNDLE = path.join(__dirname, "..", "..", "dist", "webview", "circuit.js");

/** A page showing `state`, once the graph is drawn. `sent()` gives what the page posted. */
export async function openCircuitPage(browser: Browser, state: CircuitPanelState, size = { width: 1400, height: 900 }): Promise<{ page: Page; sent: () => Promise<unknown[]> }> {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first.`);
  const page = await browser.newPage({ viewport: size });
  page.on("pageerror", (error) => process.stderr.write(`circuit page: ${error.message}\n`));
  await page.setContent(`<!DOCTYPE html><html><head><style>
body { background: #1e1e1e; color: #d4d4d4; font-family: sans-serif; --vscode-editor-background: #1e1e1e; }
.layout { display: flex; gap: 1em; } canvas.graph { flex: 1 1 auto; height: 72vh; } .side { flex: 0 0 22em; max-height: 72vh; overflow: auto; }
</style></head><body><div id="root"></div></body></html>`);
  // Strings, not functions: tsx rewrites functions with helpers the page does not have.
  await page.evaluate("window.__sent = []; window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__sent.push(m) });");
  await page.addScriptTag({ content: fs.readFileSync(BUNDLE, "utf8"), type: "module" });
  await postState(page, state);
  await page.waitForFunction("Number(document.querySelector('canvas')?.dataset.nodes ?? 0) > 0", undefined, { timeout: 30_000 });
  return { page, sent: () => page.evaluate("window.__sent") as Promise<unknown[]> };
}

/** Post `state` as the extension does: the graph's links packed into typed arrays (postedState). */
export async function postState(page: Page, state: CircuitPanelState): Promise<void> {
  const links = state.graph ? { source: state.graph.links.map((l) => l.source), target: state.graph.links.map((l) => l.target), weight: state.graph.links.map((l) => l.weight) } : null;
  const posted = state.graph ? { ...state, graph: { ...state.graph, links: null } } : state;
  await page.evaluate(`(() => {
    const state = ${JSON.stringify(posted)};
    const links = ${JSON.stringify(links)};
    if (links) state.graph.links = { source: Int32Array.from(links.source), target: Int32Array.from(links.target), weight: Float64Array.from(links.weight) };
    window.postMessage({ type: "state", state }, "*");
  })()`);
}
