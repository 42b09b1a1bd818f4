/**
 * bench:editor rows for the circuit panel.
 *
 *   1. Command to graph drawn: Loupe: Trace Circuit… on a 30-token prompt in code-server (the
 *      packaged VSIX, headless Chromium, the reference model already loaded), from pressing Enter
 *      in its answer box to the panel's canvas having drawn the graph. Reference in the same run:
 *      the same trace in-process (InProcessBackend, no editor, no worker, no page).
 *   2. Panning a synthetic 2,000-node / 20,000-link graph in the panel's page (headless Chromium,
 *      no editor): the draw time of each frame and the interval between frames while the mouse
 *      drags across it. Reference in the same run: the same pan over the IOI-sized graph. Peak JS
 *      heap of the page.
 *   3. The panel's own part of row 1, stage by stage, on the graph a 30-token trace gives (traced
 *      in-process once): the worker's reply across the process boundary (v8 serialisation, as
 *      Node's advanced IPC), the extension turning the graph file into the panel's graph, the state
 *      message to the page (JSON, as VS Code posts it) and its parse in the page, and in the page
 *      pruning + layout + hit-test index and the first frame. Reference: the trace itself.
 *
 *   npm run package && bash scripts/install-code-server.sh && npx tsx bench/editor/circuit-panel.ts [--runs 3] [--skip-editor | --editor-only | --panel-only]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as v8 from "node:v8";
import type { Page } from "playwright-core";
import { InProcessBackend } from "../../src/core/requests";
import { parseGraphFile, readGraph } from "../../src/core/view/circuit-graph";
import type { CircuitPanelState } from "../../src/core/view/circuit-panel";
import { postedState, readPackedGraph, receivedState, unpackGraphFile } from "../../src/core/view/circuit-wire";
import { syntheticGraph, syntheticGraphFile } from "../../test/helpers/circuit-graphs";
import { startCodeServer, vsixPath } from "../../test/e2e/code-server";
import { focusEditor, launchBrowser, newPage, openFile, openWorkbench, runCommand } from "../../test/e2e/workbench";
import { timelineGaps, wallClockMs, type TimelineMark } from "../../src/core/timeline";
import { WorkerClient } from "../../src/worker/client";
import { openCircuitPage } from "./circuit-page";

const MODEL = path.join(__dirname, "..", "..", "models", "reference");
/** Cut to their first 30 tokens on the reference model's tokenizer. */
const PROMPTS = [
  "When Mia and Leo went to the park after school on a sunny day, Mia found a small red ball under the old tree and gave it to",
  "When Sam and Ana walked to the shop near the river on a cold morning, Ana saw a little blue kite in the window and bought it for",
  "When Tom and Eva came home from the beach late in the warm evening, Eva made a big green cake in the kitchen and gave a slice to",
  "When Ben and Zoe played in the garden behind the house all afternoon, Zoe picked a bright yellow flower near the fence and handed it to",
];

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

const ms = (v: number) => `${v.toFixed(0)} ms`;

async function commandToGraph(runs: number): Promise<string[]> {
  const backend = new InProcessBackend();
  await backend.request("load", { folder: MODEL, cacheDir: null, threads: 2 });
  const model = backend.session.model;
  const prompts = PROMPTS.slice(0, runs + 1).map((p) => model.toString(model.toTokens(p).slice(0, 30)));
  const counts = prompts.map((p) => model.toTokens(p).length);
  await backend.request("traceCircuit", { text: prompts[0] });
  const core: number[] = [];
  for (const prompt of prompts.slice(1)) {
    const t0 = performance.now();
    await backend.request("traceCircuit", { text: prompt, graphFile: { nodeThreshold: 0.95, edgeThreshold: 0.995 } });
    core.push(performance.now() - t0);
  }
  await backend.dispose();
  // The same request through the worker process the editor runs (dist/worker.js), no editor: what
  // the process boundary costs apart from code-server and the browser sharing the machine.
  const worker = new WorkerClient(path.join(__dirname, "..", "..", "dist", "worker.js"));
  const viaWorker: number[] = [];
  try {
    await worker.request("load", { folder: MODEL, cacheDir: null });
    await worker.request("traceCircuit", { text: prompts[0] });
    for (const prompt of prompts.slice(1)) {
      const t0 = performance.now();
      await worker.request("traceCircuit", { text: prompt, graphFile: { nodeThreshold: 0.95, edgeThreshold: 0.995 } });
      viaWorker.push(performance.now() - t0);
    }
  } finally {
    await worker.dispose();
  }

  const root = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-circuit-bench-"));
  const workspace = path.join(root, "workspace");
  fs.mkdirSync(workspace);
  prompts.forEach((p, i) => fs.writeFileSync(path.join(workspace, `prompt-${i}.txt`), p));
  const server = await startCodeServer({ workspace, vsix: vsixPath(), root });
  const browser = await launchBrowser();
  const editor: number[] = [];
  const timelines: TimelineMark[][] = [];
  try {
    const page = await newPage(browser);
    await openWorkbench(page, server.url, workspace);
    for (const [i] of prompts.entries()) {
      await openFile(page, `prompt-${i}.txt`);
      await focusEditor(page);
      await runCommand(page, "Loupe: Trace Circuit…");
      await page.locator(".quick-input-widget input").waitFor({ timeout: 30_000 });
      const panel = page.frameLocator("iframe.webview.ready").frameLocator("iframe#active-frame");
      const t0 = performance.now();
      const enter = wallClockMs();
      await page.keyboard.press("Enter");
      // The first run loads the model and builds the graph: a warm-up, not timed.
      const deadline = Date.now() + 600_000;
      for (;;) {
        const drawn = await panel.locator("canvas.graph").getAttribute("data-nodes", { timeout: 1_000 }).catch(() => null);
        // The panel numbers the graphs it shows: the i-th trace is graph i + 1.
        const key = await panel.locator("canvas.graph").getAttribute("data-graph", { timeout: 1_000 }).catch(() => null);
        if (drawn && Number(drawn) > 0 && key === String(i + 1)) break;
        if (Date.now() > deadline) throw new Error(`no graph drawn for prompt ${i}`);
        await page.waitForTimeout(20);
      }
      const seen = wallClockMs();
      if (i > 0) editor.push(performance.now() - t0);
      const timeline = JSON.parse((await panel.locator("canvas.graph").getAttribute("data-timeline")) ?? "[]") as TimelineMark[];
      if (i > 0) timelines.push([{ hop: "bench: Enter pressed in the answer box", at: enter }, ...timeline, { hop: "bench: graph seen drawn", at: seen }]);
    }
  } finally {
    await browser.close();
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return [
    `| Trace Circuit, command to graph drawn (editor) | ${counts.slice(1).join(", ")} tokens | ${ms(quantile(editor, 0.5))} | ${ms(Math.max(...editor))} | ${(quantile(editor, 0.5) / quantile(core, 0.5)).toFixed(2)}x | target < 2 s |`,
    `| traceCircuit in-process (reference) | same prompts | ${ms(quantile(core, 0.5))} | ${ms(Math.max(...core))} | 1.00x | |`,
    `| traceCircuit through the worker process, no editor | same prompts | ${ms(quantile(viaWorker, 0.5))} | ${ms(Math.max(...viaWorker))} | ${(quantile(viaWorker, 0.5) / quantile(core, 0.5)).toFixed(2)}x | |`,
    ...hopRows(timelines),
  ];
}

/**
 * The command's hops, each the median over the runs of the time since the hop before it (and, in
 * the note, since Enter), in the order they happen: where the editor row's time goes.
 */
function hopRows(timelines: readonly TimelineMark[][]): string[] {
  const gaps = new Map<string, { sinceLast: number[]; sinceStart: number[] }>();
  for (const timeline of timelines) {
    for (const { hop, sinceLastMs, sinceStartMs } of timelineGaps(timeline)) {
      const entry = gaps.get(hop) ?? { sinceLast: [], sinceStart: [] };
      entry.sinceLast.push(sinceLastMs);
      entry.sinceStart.push(sinceStartMs);
      gaps.set(hop, entry);
    }
  }
  return [...gaps]
    .sort((a, b) => quantile(a[1].sinceStart, 0.5) - quantile(b[1].sinceStart, 0.5))
    .map(([hop, g]) => `| . ${hop} | ${g.sinceLast.length}/${timelines.length} runs | +${ms(quantile(g.sinceLast, 0.5))} | +${ms(Math.max(...g.sinceLast))} | | ${ms(quantile(g.sinceStart, 0.5))} after Enter |`);
}

interface PanStats {
  readonly nodes: number;
  readonly links: number;
  readonly drawMs: number[];
  readonly intervalMs: number[];
  readonly heapMb: number;
}

async function pan(page: Page, steps: number): Promise<PanStats> {
  await page.locator("input[aria-label='Node threshold']").fill("1");
  await page.locator("input[aria-label='Edge threshold']").fill("1");
  await page.waitForTimeout(300);
  const box = await page.locator("canvas.graph").boundingBox();
  if (!box) throw new Error("no canvas");
  await page.evaluate("window.__frames = []; (function tick(t) { window.__frames.push(t); requestAnimationFrame(tick); })(performance.now());");
  const drawMs: number[] = [];
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
  await page.mouse.down();
  for (let k = 0; k < steps; k++) {
    await page.mouse.move(box.x + box.width * (0.2 + (0.6 * (k % 20)) / 20), box.y + box.height / 2 + (k % 7));
    await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
    drawMs.push(Number(await page.locator("canvas.graph").getAttribute("data-frame-ms")));
  }
  await page.mouse.up();
  const frames = (await page.evaluate("window.__frames")) as number[];
  const intervalMs = frames.slice(1).map((t, i) => t - frames[i]);
  const heap = (await page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")) as number;
  return {
    nodes: Number(await page.locator("canvas.graph").getAttribute("data-nodes")),
    links: Number(await page.locator("canvas.graph").getAttribute("data-links")),
    drawMs,
    intervalMs,
    heapMb: heap / 2 ** 20,
  };
}

async function panning(steps: number): Promise<string[]> {
  const browser = await launchBrowser();
  try {
    const state = (graph: ReturnType<typeof parseGraphFile>, key: string): CircuitPanelState => ({ title: key, graphKey: key, graph, canCheck: false });
    const large = parseGraphFile(JSON.stringify(syntheticGraphFile(syntheticGraph({ layers: 6, tokens: 30, featuresPerCell: 10, linksPerNode: 11, seed: 7 }))), "synthetic.json");
    const small = parseGraphFile(JSON.stringify(syntheticGraphFile(syntheticGraph({ layers: 4, tokens: 14, featuresPerCell: 2, linksPerNode: 10, seed: 7 }))), "ioi-sized.json");
    const rows: string[] = [];
    let reference: PanStats | undefined;
    for (const [name, graph] of [
      ["IOI-sized graph (reference)", small],
      ["synthetic large graph", large],
    ] as const) {
      const { page } = await openCircuitPage(browser, state(graph, name));
      const stats = await pan(page, steps);
      await page.close();
      reference ??= stats;
      rows.push(
        `| pan ${name} | ${stats.nodes} nodes, ${stats.links} links | ${quantile(stats.drawMs, 0.5).toFixed(1)} ms draw (p95 ${quantile(stats.drawMs, 0.95).toFixed(1)}) | ${quantile(stats.intervalMs, 0.5).toFixed(1)} ms frame interval (p95 ${quantile(stats.intervalMs, 0.95).toFixed(1)}) | ${(quantile(stats.drawMs, 0.5) / Math.max(0.01, quantile(reference.drawMs, 0.5))).toFixed(1)}x draw | ${stats.heapMb.toFixed(0)} MB JS heap |`,
      );
    }
    return rows;
  } finally {
    await browser.close();
  }
}

/** Median of `runs` timings of `f` (ms). */
function timed(runs: number, f: () => void): number {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    f();
    times.push(performance.now() - t0);
  }
  return quantile(times, 0.5);
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MB`;

async function panelPart(runs: number): Promise<string[]> {
  const backend = new InProcessBackend();
  await backend.request("load", { folder: MODEL, cacheDir: null, threads: 2 });
  const model = backend.session.model;
  const prompt = model.toString(model.toTokens(PROMPTS[0]).slice(0, 30));
  await backend.request("traceCircuit", { text: prompt });
  const t0 = performance.now();
  const result = await backend.request("traceCircuit", { text: prompt, graphFile: { nodeThreshold: 0.95, edgeThreshold: 0.995 } });
  const traceMs = performance.now() - t0;
  await backend.dispose();
  const graphFile = result.graph;
  if (!graphFile) throw new Error("the trace returned no graph file");

  const reply = v8.serialize(result);
  const ipcMs = timed(runs, () => v8.deserialize(v8.serialize(result)));
  // Before: the file's links as circuit-tracer's objects (two id strings each).
  const unpacked = { ...result, graph: unpackGraphFile(graphFile) };
  const replyBefore = v8.serialize(unpacked);
  const ipcBeforeMs = timed(runs, () => v8.deserialize(v8.serialize(unpacked)));
  const toPanelMs = timed(runs, () => readPackedGraph(graphFile, "the traced graph"));
  const toPanelBeforeMs = timed(runs, () => readGraph(unpacked.graph, "the traced graph"));
  const graph = readPackedGraph(graphFile, "the traced graph");
  const state: CircuitPanelState = { title: "bench", graphKey: "1", graph, canCheck: false };
  // As VS Code posts it: typed arrays go as raw bytes beside the JSON of the rest (its replacer).
  const asPosted = () => {
    let bytes = 0;
    const json = JSON.stringify({ type: "state", state: postedState(state) }, (_key, value: unknown) => {
      if (!ArrayBuffer.isView(value)) return value;
      bytes += value.byteLength;
      return { buffer: "reference" };
    });
    return { json, bytes };
  };
  const posted = asPosted();
  const message = posted.json;
  const stringifyMs = timed(runs, asPosted);
  const stringifyBeforeMs = timed(runs, () => JSON.stringify({ type: "state", state }));
  const beforeBytes = Buffer.byteLength(JSON.stringify({ type: "state", state }));
  const packed = postedState(state);
  const unpackMs = timed(runs, () => receivedState(packed));

  const browser = await launchBrowser();
  let page: { parseMs: number; prepareMs: number; firstDrawMs: number; nodes: number; links: number };
  try {
    const parses: number[] = [];
    const prepares: number[] = [];
    const draws: number[] = [];
    let counts = { nodes: 0, links: 0 };
    for (let r = 0; r < runs; r++) {
      const opened = await openCircuitPage(browser, state);
      parses.push((await opened.page.evaluate(`(() => { const text = ${JSON.stringify(message)}; const t0 = performance.now(); JSON.parse(text); return performance.now() - t0; })()`)) as number);
      const data = (await opened.page.evaluate("({ ...document.querySelector('canvas.graph').dataset })")) as Record<string, string>;
      prepares.push(Number(data.prepareMs));
      draws.push(Number(data.frameMs));
      counts = { nodes: Number(data.nodes), links: Number(data.links) };
      await opened.page.close();
    }
    page = { parseMs: quantile(parses, 0.5), prepareMs: quantile(prepares, 0.5), firstDrawMs: quantile(draws, 0.5), ...counts };
  } finally {
    await browser.close();
  }
  const share = (v: number) => `${((v / traceMs) * 100).toFixed(1)}%`;
  const size = `${graphFile.nodes.length} nodes, ${graphFile.links.source.length} links`;
  return [
    `| trace, 30 tokens, in-process (reference) | ${size} | ${ms(traceMs)} | | 100% | |`,
    `| worker reply across the process (v8 serialise + parse), links packed | ${mb(reply.byteLength)} | ${timedText(ipcMs)} | | ${share(ipcMs)} | was ${mb(replyBefore.byteLength)}, ${timedText(ipcBeforeMs)} (links as objects) |`,
    `| extension: graph file to panel graph | | ${timedText(toPanelMs)} | | ${share(toPanelMs)} | was ${timedText(toPanelBeforeMs)} (links by id) |`,
    `| state message to the page (links packed, JSON of the rest) | ${mb(Buffer.byteLength(message))} JSON + ${mb(posted.bytes)} bytes | ${timedText(stringifyMs)} | | ${share(stringifyMs)} | was ${mb(beforeBytes)} of JSON, ${timedText(stringifyBeforeMs)} |`,
    `| page: JSON.parse of the message's JSON | | ${timedText(page.parseMs)} | | ${share(page.parseMs)} | |`,
    `| page: links unpacked (timed in Node) | | ${timedText(unpackMs)} | | ${share(unpackMs)} | |`,
    `| page: prune + layout + index | ${page.nodes} nodes, ${page.links} links shown | ${timedText(page.prepareMs)} | | ${share(page.prepareMs)} | |`,
    `| page: first frame | | ${timedText(page.firstDrawMs)} | | ${share(page.firstDrawMs)} | |`,
  ];
}

const timedText = (v: number) => `${v.toFixed(1)} ms`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, steps: { type: "string", default: "60" }, "skip-editor": { type: "boolean", default: false }, "panel-only": { type: "boolean", default: false }, "editor-only": { type: "boolean", default: false } } });
  const rows: string[] = [];
  if (values["editor-only"]) {
    rows.push(...(await commandToGraph(Math.min(Number(values.runs), PROMPTS.length - 1))));
    console.log(["| circuit panel | size | median | worst / p95 | ratio | note |", "|---|---|---|---|---|---|", ...rows].join("\n"));
    return;
  }
  rows.push(...(await panelPart(5)));
  if (values["panel-only"]) {
    console.log(["| circuit panel | size | median | worst / p95 | ratio | note |", "|---|---|---|---|---|---|", ...rows].join("\n"));
    return;
  }
  rows.push(...(await panning(Number(values.steps))));
  if (!values["skip-editor"]) rows.push(...(await commandToGraph(Math.min(Number(values.runs), PROMPTS.length - 1))));
  console.log(["| circuit panel | size | median | worst / p95 | ratio | note |", "|---|---|---|---|---|---|", ...rows].join("\n"));
}

void main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
