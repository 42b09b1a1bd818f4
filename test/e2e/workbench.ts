/**
 * Driving the VS Code workbench in a browser page: the command palette, the explorer, the editor,
 * hovers, notifications, and reading Loupe's decorations out of the DOM.
 *
 * How decorations show up: each TextEditorDecorationType gets a generated class (`ced-<n>-TextEditorDecorationType<k>-0`)
 * and a CSS rule `.monaco-editor .ced-… { background-color: var(--vscode-loupe-tokenHeat<L>) }`. Background
 * decorations are drawn as `div.cdr.ced-…` in the editor's `.view-overlays` layer (adjacent ranges of one type may
 * merge into one div); the stale decoration (a text colour) is drawn as inline spans in `.view-lines`. We find our
 * classes by reading the page's CSS rules for our theme colour ids, so the test does not depend on generated numbers.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { closeSession, startCodeServer, vsixPath, type CodeServer, type CodeServerOptions } from "./code-server";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"];

export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH).`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 120_000 });
}

/**
 * A page ready for page.evaluate with functions written here: tsx (esbuild, keepNames) wraps named
 * functions in the test sources in `__name(...)`, which the browser does not define.
 */
export async function newPage(browser: Browser): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.addInitScript({ content: "globalThis.__name = globalThis.__name || ((target) => target);" });
  return page;
}

/** Screenshots go to test-output/e2e/, numbered in the order they are taken. */
export class Screenshots {
  private n = 0;
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    for (const file of fs.readdirSync(dir)) if (file.endsWith(".png")) fs.rmSync(path.join(dir, file));
  }
  async take(page: Page, name: string): Promise<string> {
    this.n += 1;
    const file = path.join(this.dir, `${String(this.n).padStart(2, "0")}-${name.replace(/[^\w.-]+/g, "-")}.png`);
    await page.screenshot({ path: file });
    return file;
  }
}

/** A suite's live code-server session: set by the hooks useCodeServer registers, so read it in tests and hooks, not at definition. */
export interface CodeServerSession {
  /** The suite's temp folder: user data, extensions, Loupe's cache; removed afterwards unless LOUPE_E2E_KEEP. */
  readonly root: string;
  /** `root/workspace`, the folder the workbench opens. */
  readonly workspace: string;
  readonly server: CodeServer;
  readonly browser: Browser;
  readonly page: Page;
  readonly shots: Screenshots;
  /** Errors thrown in the workbench page (the array exists from the start). */
  readonly pageErrors: string[];
}

/** What a suite may set of code-server's options (the helper sets the workspace, VSIX and temp folder). */
export type SuiteServerOptions = Omit<CodeServerOptions, "workspace" | "vsix" | "root">;

export interface CodeServerSuite {
  /** Where the screenshots, and at the end code-server's and the extension host's logs, go. */
  readonly outputDir: string;
  /** The temp folder's name prefix, e.g. "loupe-e2e-chat-". */
  readonly tempPrefix: string;
  /** Fills the (empty) workspace before code-server starts; may return code-server options (env, user settings, trust). */
  readonly prepare?: (workspace: string, root: string) => SuiteServerOptions | void;
}

/**
 * One code-server per suite: call inside describe(). Registers a `before` hook (temp folder, the
 * prepared workspace, code-server with the packaged VSIX, a browser page on the workbench), an
 * `afterEach` that screenshots a failed test as FAILED-<title>, and an `after` that closes the session.
 */
export function useCodeServer(suite: CodeServerSuite): CodeServerSession {
  const live: { -readonly [K in keyof CodeServerSession]?: CodeServerSession[K] } = { pageErrors: [] };
  before(async function () {
    this.timeout(900_000);
    const root = (live.root = fs.mkdtempSync(path.join(os.tmpdir(), suite.tempPrefix)));
    const workspace = (live.workspace = path.join(root, "workspace"));
    fs.mkdirSync(workspace);
    const options = suite.prepare?.(workspace, root) ?? {};
    live.shots = new Screenshots(suite.outputDir);
    live.server = await startCodeServer({ ...options, workspace, vsix: vsixPath(), root });
    live.browser = await launchBrowser();
    const page = (live.page = await newPage(live.browser));
    page.on("pageerror", (error) => live.pageErrors?.push(String(error)));
    await openWorkbench(page, live.server.url, workspace);
  });
  afterEach(async function () {
    const test = this.currentTest;
    if (test?.state === "failed" && live.page && live.shots) await live.shots.take(live.page, `FAILED-${test.title}`).catch(() => undefined);
  });
  after(async function () {
    this.timeout(120_000);
    await closeSession({ browser: live.browser, server: live.server, root: live.root, outputDir: suite.outputDir });
  });
  return live as CodeServerSession;
}

/** Poll `condition` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Open the workspace folder in the workbench and wait until the explorer lists its files. */
export async function openWorkbench(page: Page, url: string, folder: string): Promise<void> {
  await page.goto(`${url}/?folder=${encodeURIComponent(folder)}`, { waitUntil: "domcontentloaded", timeout: 120_000 });
  await page.locator(".monaco-workbench").waitFor({ timeout: 180_000 });
  await page.locator(".explorer-folders-view .monaco-list-row").first().waitFor({ timeout: 180_000 });
}

/** Open a workspace file from the explorer and wait for its editor tab to be active. */
export async function openFile(page: Page, name: string): Promise<void> {
  await page.locator(".explorer-folders-view .monaco-list-row", { hasText: name }).first().click();
  await page.locator(".tabs-container .tab.active", { hasText: name }).waitFor({ timeout: 60_000 });
  await page.locator(".part.editor .monaco-editor .view-lines").first().waitFor({ timeout: 60_000 });
  await focusEditor(page);
}

/** Put the keyboard focus in the active editor, caret at the start of the document, nothing selected. */
export async function focusEditor(page: Page): Promise<void> {
  const editor = page.locator(".part.editor .editor-group-container.active .monaco-editor").first();
  const line = editor.locator(".view-lines .view-line").first();
  // The editor may re-render its lines just after opening (e.g. when a language mode loads).
  let box = await line.boundingBox();
  for (let tries = 0; !box && tries < 50; tries++) {
    await page.waitForTimeout(200);
    box = await line.boundingBox();
  }
  if (!box) throw new Error("editor not visible");
  await page.mouse.click(box.x + 2, box.y + box.height / 2);
  await page.locator(".part.editor .editor-group-container.active .monaco-editor.focused").waitFor({ timeout: 30_000 });
  await page.keyboard.press("Control+Home");
}

/** The editor's cursor/selection item in the status bar, e.g. "Ln 1, Col 54 (53 selected)". */
export async function cursorStatus(page: Page): Promise<string> {
  return (await page.locator('[id="status.editor.selection"]').innerText()).trim();
}

/** Run a command from the command palette by its title, as a user would. */
export async function runCommand(page: Page, title: string): Promise<void> {
  // Focus moving elsewhere while the palette is open closes it (a walkthrough expanding its next step,
  // a panel or notification taking focus): a try that lost its palette that way opens it again.
  for (let attempt = 1; ; attempt++) {
    try {
      await chooseFromPalette(page, title);
      break;
    } catch (error) {
      if (attempt === 3 || !(error instanceof Error) || error.name !== "TimeoutError") throw error;
      await page.waitForTimeout(500);
    }
  }
  // The palette closes, or turns into the command's own quick pick (no ">" prefix).
  const input = page.locator(".quick-input-widget .quick-input-box input");
  const deadline = Date.now() + 30_000;
  while ((await input.isVisible()) && (await input.inputValue()).startsWith(">")) {
    if (Date.now() > deadline) throw new Error(`the command palette stayed open after choosing "${title}"`);
    await page.waitForTimeout(100);
  }
}

async function chooseFromPalette(page: Page, title: string): Promise<void> {
  const labels = await paletteEntries(page, title, (found) => found.includes(title));
  if (!labels.includes(title)) throw new Error(`the command palette has no "${title}" (saw ${JSON.stringify(labels)})`);
  const exact = new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  await page
    .locator(".quick-input-widget .quick-input-list .monaco-list-row")
    .filter({ has: page.locator(".label-name", { hasText: exact }) })
    .first()
    .click({ timeout: 10_000 });
}

/**
 * The titles the command palette lists for a filter, e.g. "Loupe:", leaving the palette open. Until the
 * extension host has registered every contribution the palette may list too little: reopen it until
 * `ready` holds or the time is up.
 */
export async function paletteEntries(page: Page, filter: string, ready: (labels: string[]) => boolean = (l) => l.length > 0, timeoutMs = 90_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const input = await openPalette(page);
    await input.fill(`>${filter}`, { timeout: 10_000 });
    const rows = page.locator(".quick-input-widget .quick-input-list .monaco-list-row");
    await rows.first().waitFor({ timeout: 30_000 });
    await page.waitForTimeout(500);
    const labels = (await rows.locator(".label-name").allInnerTexts()).map((t) => t.trim());
    if (ready(labels) || Date.now() > deadline) return labels;
    await page.keyboard.press("Escape");
    await page.waitForTimeout(1000);
  }
}

async function openPalette(page: Page) {
  const input = page.locator(".quick-input-widget .quick-input-box input");
  if (!(await input.isVisible())) await page.keyboard.press("F1");
  await input.waitFor({ state: "visible", timeout: 30_000 });
  return input;
}

export interface DecoratedRun {
  /** 1-based line number in the editor. */
  readonly line: number;
  readonly level: number;
  readonly left: number;
  readonly width: number;
  /** The run's left and right edges in page coordinates (as textPoint gives them). */
  readonly pageLeft: number;
  readonly pageRight: number;
}

export interface LoupeDecorations {
  /** Background runs of the six heat levels (adjacent tokens of one level may be one run). */
  readonly heat: DecoratedRun[];
  /** Inline spans of the stale decoration. */
  readonly stale: number;
}

/** Read Loupe's decorations in the active editor out of the DOM. */
export async function loupeDecorations(page: Page): Promise<LoupeDecorations> {
  return page.evaluate(() => {
    const editor = document.querySelector(".part.editor .editor-group-container.active .monaco-editor");
    if (!editor) return { heat: [], stale: 0 };
    // The colours our theme colour ids resolve to, normalised by the browser (decoration rules hold resolved colours).
    const probe = document.createElement("div");
    editor.appendChild(probe);
    const resolve = (cssVar: string, property: "backgroundColor" | "color") => {
      probe.style[property] = "";
      probe.style[property] = `var(${cssVar})`;
      return getComputedStyle(probe)[property];
    };
    const heatLevels = new Map<string, number>();
    for (let level = 1; level <= 6; level++) heatLevels.set(resolve(`--vscode-loupe-tokenHeat${level}`, "backgroundColor"), level);
    const staleColor = resolve("--vscode-loupe-staleForeground", "color");
    probe.remove();
    heatLevels.delete("rgba(0, 0, 0, 0)");

    const lineHeight = parseFloat(editor.querySelector<HTMLElement>(".view-lines .view-line")?.style.height ?? "0") || 1;
    const firstLine = Number(editor.querySelector(".margin-view-overlays .line-numbers")?.textContent?.trim() ?? "1") || 1;
    const heat: { line: number; level: number; left: number; width: number; pageLeft: number; pageRight: number }[] = [];
    // Decoration types' backgrounds: generated classes "ced-…-TextEditorDecorationType…" on overlay divs.
    for (const el of Array.from(editor.querySelectorAll<HTMLElement>('.view-overlays [class*="TextEditorDecorationType"]'))) {
      const level = heatLevels.get(getComputedStyle(el).backgroundColor);
      if (level === undefined) continue;
      const top = parseFloat(el.parentElement?.style.top ?? "0") || 0;
      const box = el.getBoundingClientRect();
      heat.push({ line: firstLine + Math.round(top / lineHeight), level, left: parseFloat(el.style.left) || 0, width: parseFloat(el.style.width) || 0, pageLeft: box.left, pageRight: box.right });
    }
    // The stale decoration: inline spans with our stale text colour, in italics.
    let stale = 0;
    for (const el of Array.from(editor.querySelectorAll<HTMLElement>('.view-lines [class*="TextEditorDecorationType"]'))) {
      const style = getComputedStyle(el);
      if (style.color === staleColor && style.fontStyle === "italic") stale += 1;
    }
    heat.sort((a, b) => a.line - b.line || a.left - b.left);
    return { heat, stale };
  });
}

/** Wait until `predicate` holds for the decorations (polling the DOM). */
export async function waitForDecorations(page: Page, predicate: (d: LoupeDecorations) => boolean, timeoutMs = 120_000): Promise<LoupeDecorations> {
  const deadline = Date.now() + timeoutMs;
  let last = await loupeDecorations(page);
  while (!predicate(last)) {
    if (Date.now() > deadline) throw new Error(`decorations did not reach the expected state in ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
    await page.waitForTimeout(250);
    last = await loupeDecorations(page);
  }
  return last;
}

/** Run `Loupe: Clear` and wait until the active editor shows none of Loupe's colours. */
export async function clearLoupe(page: Page): Promise<void> {
  await runCommand(page, "Loupe: Clear");
  await waitForDecorations(page, (d) => d.heat.length === 0, 30_000);
}

/** Page coordinates of the middle of `needle` on the editor line whose text starts with `lineStart`, and its left and right edges. */
export async function textPoint(page: Page, lineStart: string, needle: string, occurrence: "first" | "last" = "first"): Promise<{ x: number; y: number; left: number; right: number }> {
  const point = await page.evaluate(
    ({ lineStart, needle, occurrence }) => {
      const editor = document.querySelector(".part.editor .editor-group-container.active .monaco-editor");
      const norm = (s: string) => s.replace(/\u00a0/g, " ");
      for (const line of Array.from(editor?.querySelectorAll<HTMLElement>(".view-lines .view-line") ?? [])) {
        if (!norm(line.textContent ?? "").startsWith(lineStart)) continue;
        const text = norm(line.textContent ?? "");
        const at = occurrence === "last" ? text.lastIndexOf(needle) : text.indexOf(needle);
        if (at < 0) return undefined;
        // Walk the text nodes to the character offsets of the needle.
        const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
        let seen = 0;
        let startNode: Text | undefined, startOffset = 0, endNode: Text | undefined, endOffset = 0;
        for (let node = walker.nextNode() as Text | null; node; node = walker.nextNode() as Text | null) {
          const len = node.data.length;
          if (!startNode && at < seen + len) {
            startNode = node;
            startOffset = at - seen;
          }
          if (startNode && at + needle.length <= seen + len) {
            endNode = node;
            endOffset = at + needle.length - seen;
            break;
          }
          seen += len;
        }
        if (!startNode || !endNode) return undefined;
        const range = document.createRange();
        range.setStart(startNode, startOffset);
        range.setEnd(endNode, endOffset);
        const rect = range.getBoundingClientRect();
        return { x: rect.left + rect.width / 2, y: rect.top + rect.height / 2, left: rect.left, right: rect.right };
      }
      return undefined;
    },
    { lineStart, needle, occurrence },
  );
  if (!point) throw new Error(`"${needle}" not found on an editor line starting with "${lineStart}"`);
  return point;
}

/** Hover at a point and return the text of the editor hover that contains `marker`. */
export async function hoverText(page: Page, point: { x: number; y: number }, marker: string): Promise<string> {
  // Come from outside the text so the hover controller sees a fresh mouse move.
  await page.mouse.move(point.x, point.y + 200);
  await page.mouse.move(point.x, point.y, { steps: 5 });
  const hover = page.locator(".monaco-hover:not(.hidden)", { hasText: marker }).first();
  await hover.waitFor({ state: "visible", timeout: 30_000 });
  return hover.innerText();
}

/** Texts of the notification toasts on screen. */
export async function notificationToasts(page: Page): Promise<string[]> {
  return page.locator(".notifications-toasts .notification-toast .notification-list-item-message").allInnerTexts();
}

/** Every notification in the notification center (opened, read, closed). */
export async function allNotifications(page: Page): Promise<string[]> {
  await runCommand(page, "Notifications: Show Notifications");
  const center = page.locator(".notifications-center");
  await center.waitFor({ state: "visible", timeout: 30_000 });
  const texts = await center.locator(".notification-list-item-message").allInnerTexts();
  await page.keyboard.press("Escape");
  return texts;
}

/** The text of Loupe's status-bar legend, or undefined when it is hidden. */
export async function legendText(page: Page): Promise<string | undefined> {
  const item = page.locator('[id="loupe-dev.loupe.loupe.legend"]');
  if ((await item.count()) === 0 || !(await item.isVisible())) return undefined;
  return (await item.innerText()).trim();
}
