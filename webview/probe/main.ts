/**
 * Probe panel front end: per-hook accuracy / control / selectivity chart, confusion matrix of the
 * chosen hook, and buttons that ask the extension to apply, save or monitor the probe. All text is
 * set with textContent; nothing from the data is parsed as HTML.
 */
import "@vscode-elements/elements/dist/vscode-single-select/index.js";
import "@vscode-elements/elements/dist/vscode-option/index.js";
import "@vscode-elements/elements/dist/vscode-textfield/index.js";
import type { ProbePanelRequest, ProbePanelState } from "../../src/core/view/probe-panel";
import { button, el, svg } from "../shared/dom";
import { connectPanel } from "../shared/panel";

const vscode = connectPanel<ProbePanelState, ProbePanelRequest>((state) => {
  current = state;
  selected = state.best;
  render();
});

const fmt = (x: number | null) => (x === null ? "–" : x.toFixed(3));

/** Grouped bars per hook: cross-validated accuracy, control-task accuracy, selectivity; majority line. */
function chart(state: ProbePanelState, selected: string, onPick: (hook: string) => void): SVGElement {
  const width = 640;
  const height = 220;
  const left = 40;
  const bottom = 60;
  const plotH = height - bottom - 10;
  const group = (width - left) / state.rows.length;
  const bar = Math.min(22, group / 4);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "probe accuracy per hook" });
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const y = 10 + plotH * (1 - tick);
    root.append(svg("line", { x1: left, x2: width, y1: y, y2: y, class: "grid" }), svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, tick.toFixed(2)));
  }
  const majorityY = 10 + plotH * (1 - state.majorityBaseline);
  root.append(svg("line", { x1: left, x2: width, y1: majorityY, y2: majorityY, class: "majority" }));
  const series: [keyof ProbePanelState["rows"][number], string][] = [
    ["accuracy", "acc"],
    ["control", "control"],
    ["selectivity", "sel"],
  ];
  state.rows.forEach((row, i) => {
    const x0 = left + i * group + (group - 3 * bar) / 2;
    const g = svg("g", { class: row.hook === selected ? "hook selected" : "hook", tabindex: 0 });
    series.forEach(([key, cls], j) => {
      const v = Math.max(0, (row[key] as number | null) ?? 0);
      const h = plotH * Math.min(1, v);
      const rect = svg("rect", { x: x0 + j * bar, y: 10 + plotH - h, width: bar - 2, height: h, class: cls });
      rect.append(svg("title", {}, `${row.hook} ${cls}: ${fmt(row[key] as number | null)}`));
      g.append(rect);
    });
    g.append(svg("text", { x: x0 + 1.5 * bar, y: height - bottom + 16, "text-anchor": "middle", class: "label" }, row.hook.replace(/^blocks\./, "").replace("hook_", "")));
    g.addEventListener("click", () => onPick(row.hook));
    g.addEventListener("keydown", (e) => (e as KeyboardEvent).key === "Enter" && onPick(row.hook));
    root.append(g);
  });
  return root;
}

function confusionTable(state: ProbePanelState, hook: string): HTMLElement {
  const matrix = state.confusion[hook];
  if (!matrix) return el("p", "No cross-validation was run, so there is no confusion matrix.");
  const table = el("table", undefined, "confusion");
  const head = el("tr");
  head.append(el("th", "true \\ predicted"), ...state.classes.map((c) => el("th", c)));
  table.append(head);
  const max = Math.max(1, ...matrix.flat());
  matrix.forEach((row, i) => {
    const tr = el("tr");
    tr.append(el("th", state.classes[i]));
    row.forEach((n, j) => {
      const td = el("td", String(n), i === j ? "diag" : "off");
      td.style.setProperty("--strength", String(n / max));
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}

let current: ProbePanelState | undefined;
let selected = "";

function render(): void {
  const state = current;
  const root = document.getElementById("root")!;
  root.replaceChildren();
  if (!state) return;
  root.append(el("h1", state.title));
  const counts = Object.entries(state.classCounts)
    .map(([c, n]) => `${c} ${n}`)
    .join(", ");
  root.append(
    el("p", `${state.data} · ${state.level}-level${state.concept ? ` · concept "${state.concept}"` : ""} · ${counts} · majority baseline ${fmt(state.majorityBaseline)} · ${state.folds}-fold cross-validation`),
  );
  root.append(chart(state, selected, (hook) => ((selected = hook), render())));
  root.append(el("p", "Bars: cross-validated accuracy, control-task accuracy (Hewitt & Liang), selectivity = accuracy − control. Dashed line: majority baseline. Click a hook to select it.", "legend"));
  const row = state.rows.find((r) => r.hook === selected)!;
  root.append(el("h2", `${selected}${selected === state.best ? " (best)" : ""}: accuracy ${fmt(row.accuracy)}, balanced ${fmt(row.balancedAccuracy)}, selectivity ${fmt(row.selectivity)}`));
  root.append(confusionTable(state, selected));

  const controls = el("div", undefined, "controls");
  const labelSelect = document.createElement("vscode-single-select") as HTMLElement & { value: string };
  for (const c of state.classes) {
    const option = document.createElement("vscode-option");
    option.textContent = c;
    option.setAttribute("value", c);
    labelSelect.append(option);
  }
  // The extension suggests the rarer class of a binary probe (data-watched); fall back to the first real class.
  const suggested = document.body.dataset.watched ?? "";
  const watched = state.classes.includes(suggested) ? suggested : (state.classes.find((c) => c !== "none") ?? state.classes[0]);
  labelSelect.setAttribute("value", watched);
  const threshold = document.createElement("vscode-textfield") as HTMLElement & { value: string };
  threshold.setAttribute("value", "0.8");
  threshold.setAttribute("aria-label", "monitor threshold");
  const label = () => labelSelect.value || watched;
  controls.append(
    el("span", "label "),
    labelSelect,
    button("Apply as editor lens", () => vscode.postMessage({ type: "apply", hook: selected, label: label() })),
    button("Save probe", () => vscode.postMessage({ type: "save", hook: selected })),
    el("span", " threshold "),
    threshold,
    button("Add audit monitor", () => vscode.postMessage({ type: "monitor", hook: selected, label: label(), threshold: Number(threshold.value) })),
  );
  root.append(controls);
  if (state.warnings.length) {
    const list = el("ul", undefined, "warnings");
    for (const w of state.warnings) list.append(el("li", w));
    root.append(list);
  }
}
