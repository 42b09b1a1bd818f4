/**
 * Editor latency: from pressing Ctrl+Alt+I on a ~300-token selection to Loupe's decorations being
 * on screen, in VS Code (code-server 4.100.3 with the packaged VSIX, headless Chromium), after the
 * model is loaded. Each run selects a different line, so no cached result is reused. The same texts
 * inspected in-process by the core (no editor, no worker) are the reference measured in this run.
 * A 135M-class row follows: 1,024-token selections on a SmolLM2-135M-shaped model (random weights,
 * bench/scale/random-model.ts) set as loupe.modelPath, with the worker's peak resident memory
 * (VmHWM of the worker process, weights included; issue 25's targets: under 5 s and 1.5 GB).
 *
 *   npm run package && bash scripts/install-code-server.sh && npx tsx bench/editor/inspect-latency.ts [--runs 10] [--large-runs 3] [--large-only]
 *   LOUPE_BENCH_DIR=folder reuses bench:scale's written models.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { inspectText } from "../../src/core/inspect";
import { HookedModel } from "../../src/core/model/hooked-model";
import { startCodeServer, vsixPath } from "../../test/e2e/code-server";
import { focusEditor, launchBrowser, newPage, openFile, openWorkbench, waitForDecorations } from "../../test/e2e/workbench";
import { SHAPES, writeRandomModel } from "../scale/random-model";
import { GENERATORS } from "../tasks/generate";
import { Rng } from "../tasks/rng";

const MODEL = path.join(__dirname, "..", "..", "models", "reference");

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

interface EditorRuns {
  /** Keypress to decorations on the selected line, ms, per timed run. */
  readonly times: number[];
  /** The worker's peak resident memory, MB (VmHWM), after the runs. */
  readonly workerPeakMb: number | null;
}

/** Inspect Selection on line 0 (warm-up: loads the model), then on lines 1..runs, in code-server with the packaged VSIX. */
async function editorRuns(lines: readonly string[], runs: number, settings: Record<string, unknown> = {}): Promise<EditorRuns> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-latency-"));
  const workspace = path.join(root, "workspace");
  fs.mkdirSync(path.join(workspace, ".vscode"), { recursive: true });
  fs.writeFileSync(path.join(workspace, ".vscode", "settings.json"), JSON.stringify(settings));
  fs.writeFileSync(path.join(workspace, "prompts.txt"), `${lines.join("\n")}\n`);
  const server = await startCodeServer({ workspace, vsix: vsixPath(), root });
  const browser = await launchBrowser();
  const times: number[] = [];
  let workerPeakMb: number | null;
  try {
    const page = await newPage(browser);
    await openWorkbench(page, server.url, workspace);
    await openFile(page, "prompts.txt");
    await focusEditor(page);
    // Keyboard only from here: the caret stays in the editor; Escape closes any hover.
    const selectLine = async (i: number) => {
      await page.keyboard.press("Escape");
      await page.keyboard.press("Control+Home");
      for (let k = 0; k < i; k++) await page.keyboard.press("ArrowDown");
      await page.keyboard.press("Home");
      await page.keyboard.press("Shift+End");
    };
    // Warm-up: loads the model in the worker (not timed: the issue measures after loading).
    await selectLine(0);
    await page.keyboard.press("Control+Alt+KeyI");
    await waitForDecorations(page, (d) => d.heat.length > 0, 600_000);
    for (let i = 1; i <= runs; i++) {
      await selectLine(i);
      const t0 = await page.evaluate(() => performance.now());
      await page.keyboard.press("Control+Alt+KeyI");
      // Decorations on the selected line: the overlay row of the cursor's line gains our background.
      const t1 = await page.waitForFunction(
        (line) => {
          const editor = document.querySelector(".part.editor .editor-group-container.active .monaco-editor");
          const rows = editor?.querySelectorAll<HTMLElement>(".view-overlays > div") ?? [];
          const lineHeight = parseFloat(editor?.querySelector<HTMLElement>(".view-lines .view-line")?.style.height ?? "19") || 19;
          for (const row of Array.from(rows)) {
            const top = parseFloat(row.style.top || "0");
            if (Math.round(top / lineHeight) !== line) continue;
            if (row.querySelector('[class*="TextEditorDecorationType"]')) return performance.now();
          }
          return 0;
        },
        i,
        { polling: "raf", timeout: 300_000 },
      );
      times.push((await t1.jsonValue()) - t0);
    }
    workerPeakMb = workerPeak(root);
  } finally {
    await browser.close();
    await server.stop();
  }
  return { times, workerPeakMb };
}

/** VmHWM (MB) of the Loupe worker this bench's code-server started: the process running dist/worker.js from `root`'s extensions. */
function workerPeak(root: string): number | null {
  for (const pid of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.includes(root) || !/worker\.js/.test(cmdline)) continue;
      const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
      if (match) return Number(match[1]) / 1024;
    } catch {
      // The process ended while we read it.
    }
  }
  return null;
}

/** `count` lines of exactly `tokens` text tokens of `model` (the story text repeated, newlines as spaces). */
function linesOf(model: HookedModel, tokens: number, count: number): string[] {
  const story = fs.readFileSync(path.join(__dirname, "..", "examples", "story.txt"), "utf8").replace(/\s+/g, " ");
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    // A different start per line, so no run reuses another's result.
    let text = `${i}. ${story.slice((i * 97) % story.length)}`;
    while (model.encode(text).ids.length < tokens + 8) text += ` ${story}`;
    const enc = model.encode(text);
    out.push(text.slice(0, enc.offsets[enc.lead + tokens - 1][1]));
  }
  return out;
}

function quantileRow(name: string, xs: number[], reference: number[]): string {
  return `${name.padEnd(52)} | ${quantile(xs, 0.5).toFixed(0).padStart(6)} | ${quantile(xs, 0.9).toFixed(0).padStart(6)} | ${Math.max(...xs).toFixed(0).padStart(6)} | ${(quantile(xs, 0.5) / quantile(reference, 0.5)).toFixed(2)}x`;
}

/** The reference: the core alone on the same texts (line 0 warms up), ms per line; disposes the model. */
async function coreTimes(model: HookedModel, lines: readonly string[]): Promise<number[]> {
  await inspectText(model, lines[0], { topK: 5 });
  const core: number[] = [];
  for (const line of lines.slice(1)) {
    const t0 = performance.now();
    await inspectText(model, line, { topK: 5 });
    core.push(performance.now() - t0);
  }
  await model.dispose();
  return core;
}

/** The reference model on ~300-token lines. */
async function referenceRows(runs: number): Promise<string[]> {
  const model = await HookedModel.load(MODEL, { threads: 2 });
  // One line of ~300 tokens per run (stories joined with spaces).
  const rng = new Rng(2026);
  const lines: string[] = [];
  while (lines.length < runs + 1) {
    let line = "";
    while (model.toTokens(line).length < 300) line += `${GENERATORS.stories(rng, "train").text.trim()} `;
    const ids = model.toTokens(line).slice(0, 300);
    lines.push(model.toString(ids).replace(/\n/g, " "));
  }
  const tokenCounts = lines.map((l) => model.toTokens(l).length);
  const core = await coreTimes(model, lines);
  const editor = await editorRuns(lines, runs);
  return [
    `Inspect Selection on ${Math.min(...tokenCounts)}-${Math.max(...tokenCounts)}-token selections, reference model, ${runs} runs, model loaded`,
    quantileRow("core inspectText in-process (reference), ms", core, core),
    quantileRow("editor: keypress to decorations on screen, ms", editor.times, core),
    `target: decorations within 500 ms (median): ${quantile(editor.times, 0.5) < 500 ? "yes" : "NO"}`,
  ];
}

/** The 135M-class row: SmolLM2-135M shape, 1,024-token selections. */
async function largeRows(runs: number): Promise<string[]> {
  const root = process.env.LOUPE_BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "loupe-editor-135m-"));
  const folder = path.join(root, "smollm2-135m");
  if (!fs.existsSync(path.join(folder, "model.safetensors"))) writeRandomModel(folder, SHAPES["smollm2-135m"]);
  const model = await HookedModel.load(folder, { threads: 2 });
  const lines = linesOf(model, 1024, runs + 1);
  const core = await coreTimes(model, lines);
  const editor = await editorRuns(lines, runs, { "loupe.modelPath": folder });
  const peak = editor.workerPeakMb;
  return [
    `Inspect Selection on 1,024-token selections, SmolLM2-135M shape (random weights, f32), ${runs} runs, model loaded`,
    quantileRow("core inspectText in-process (reference), ms", core, core),
    quantileRow("editor: keypress to decorations on screen, ms", editor.times, core),
    `worker peak resident memory: ${peak === null ? "not found" : `${peak.toFixed(0)} MB`}`,
    `targets: under 5,000 ms (median): ${quantile(editor.times, 0.5) < 5000 ? "yes" : "NO"}; under 1,536 MB: ${peak !== null && peak < 1536 ? "yes" : "NO"}`,
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "10" }, "large-runs": { type: "string", default: "3" }, "large-only": { type: "boolean", default: false } } });
  const sections = [
    ...(values["large-only"] ? [] : [await referenceRows(Number(values.runs))]),
    await largeRows(Number(values["large-runs"])),
  ];
  console.log(`Editor latency (${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)} at the end)\n`);
  for (const [title, ...rows] of sections) {
    console.log(`${title}\n`);
    console.log(`${"".padEnd(52)} | median |    p90 |    max | vs core`);
    console.log(`${"-".repeat(52)}-|--------|--------|--------|--------`);
    for (const row of rows) console.log(row.includes("|") ? row : `\n${row}`);
    console.log("");
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
