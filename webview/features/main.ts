/**
 * SAE feature dashboard front end: the feature's label (editable), density and activation
 * summary, a histogram of log10 activations, top-activating contexts with each token shaded by
 * the feature's activation, and the tokens its decoder direction promotes and suppresses. All text
 * is set with textContent; nothing from the data is parsed as HTML.
 */
import "@vscode-elements/elements/dist/vscode-textfield/index.js";
import type { FeatureDashboardRequest, FeatureDashboardState } from "../../src/core/view/feature-dashboard";
import { el, svg, button } from "../shared/dom";
import { connectPanel } from "../shared/panel";

const vscode = connectPanel<FeatureDashboardState, FeatureDashboardRequest>((state) => {
  current = state;
  render();
});

const pct = (x: number) => `${(x * 100).toFixed(x < 0.001 ? 3 : x < 0.01 ? 2 : 1)}%`;
const num = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(2));

function histogram(bins: NonNullable<FeatureDashboardState["histogram"]>): SVGElement {
  const width = 600;
  const height = 160;
  const left = 36;
  const bottom = 24;
  const plotH = height - bottom - 8;
  const max = Math.max(1, ...bins.map((b) => b.count));
  const w = (width - left) / bins.length;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "histogram of log10 activation" });
  root.append(svg("line", { x1: left, x2: width, y1: 8 + plotH, y2: 8 + plotH, class: "axis" }));
  root.append(svg("text", { x: left - 4, y: 14, "text-anchor": "end", class: "tick" }, String(max)));
  bins.forEach((b, i) => {
    const h = (plotH * b.count) / max;
    const rect = svg("rect", { x: left + i * w, y: 8 + plotH - h, width: Math.max(1, w - 1), height: h, class: "bin" });
    rect.append(svg("title", {}, `${b.count} tokens with activation ${(10 ** b.from).toPrecision(2)}–${(10 ** b.to).toPrecision(2)}`));
    root.append(rect);
    // Label whole powers of ten only.
    if (Number.isInteger(Math.round(b.from * 1000) / 1000)) root.append(svg("text", { x: left + i * w, y: height - 8, "text-anchor": "middle", class: "tick" }, `1e${Math.round(b.from)}`));
  });
  return root;
}

function contexts(state: FeatureDashboardState): HTMLElement {
  const box = el("div");
  const list = state.contexts ?? [];
  if (list.length === 0) box.append(el("p", "The feature never fired on the corpus.", "muted"));
  const max = Math.max(1e-9, ...list.flatMap((c) => c.pieces.map((p) => p.value)));
  for (const c of list) {
    const line = el("div", undefined, "context");
    line.append(el("span", c.value.toFixed(2), "value"));
    for (const p of c.pieces) {
      const span = el("span", p.text, p.value > 0 || p.focus ? `tok${p.focus ? " focus" : ""}` : undefined);
      if (p.value > 0) {
        span.style.setProperty("--strength", String(Math.min(1, p.value / max)));
        span.title = p.value.toFixed(3);
      }
      line.append(span);
    }
    box.append(line);
  }
  return box;
}

function logitTable(title: string, rows: FeatureDashboardState["promoted"], cls: string): HTMLElement {
  const box = el("div");
  box.append(el("h3", title));
  const table = el("table");
  for (const r of rows ?? []) {
    const tr = el("tr");
    tr.append(el("td", JSON.stringify(r.token)), el("td", r.value.toFixed(3), `num ${cls}`));
    table.append(tr);
  }
  box.append(table);
  return box;
}

let current: FeatureDashboardState | undefined;

function render(): void {
  const state = current;
  const root = document.getElementById("root")!;
  root.replaceChildren();
  if (!state) return;
  root.append(el("h1", `Feature #${state.feature}${state.label ? `: ${state.label}` : ""}`));
  const where = el("p", `${state.sae} · ${state.hook_name} · d_sae ${state.d_sae}`, "muted");
  if (state.neuronpediaUrl?.startsWith("https://www.neuronpedia.org/")) {
    // VS Code opens a webview's https links in the browser.
    const link = document.createElement("a");
    link.href = state.neuronpediaUrl;
    link.textContent = "Neuronpedia";
    where.append(" · ", link);
  }
  root.append(where);

  const controls = el("div", undefined, "controls");
  const field = document.createElement("vscode-textfield") as HTMLElement & { value: string };
  field.setAttribute("value", state.label);
  field.setAttribute("placeholder", "your label for this feature");
  field.setAttribute("aria-label", "feature label");
  const save = () => vscode.postMessage({ type: "label", feature: state.feature, label: field.value ?? "" });
  field.addEventListener("keydown", (e) => (e as KeyboardEvent).key === "Enter" && save());
  const jump = document.createElement("vscode-textfield") as HTMLElement & { value: string };
  jump.setAttribute("placeholder", "feature #");
  jump.setAttribute("aria-label", "go to feature");
  const go = () => {
    const f = Number(jump.value);
    if (Number.isInteger(f) && f >= 0 && f < state.d_sae) vscode.postMessage({ type: "open", feature: f });
  };
  jump.addEventListener("keydown", (e) => (e as KeyboardEvent).key === "Enter" && go());
  controls.append(field, button("Save label", save), el("span", " "), button("◀", () => state.feature > 0 && vscode.postMessage({ type: "open", feature: state.feature - 1 })), jump, button("Go", go), button("▶", () => state.feature + 1 < state.d_sae && vscode.postMessage({ type: "open", feature: state.feature + 1 })), el("span", " "), button("Steer with it…", () => vscode.postMessage({ type: "steer", feature: state.feature })));
  root.append(controls);

  if (!state.hasStats) {
    root.append(el("p", state.note ?? "No statistics for this SAE.", "note"));
    return;
  }
  const c = state.concept;
  const above = c?.threshold === undefined ? "" : ` above activation ${num(c.threshold)}`;
  const concept = c ? ` · best-matching concept "${c.label}" F1 ${c.f1.toFixed(2)}${above} (precision ${c.precision.toFixed(2)}, recall ${c.recall.toFixed(2)})` : "";
  root.append(
    el("p", `density ${pct(state.density ?? 0)} (${state.fired} of ${state.corpusTokens} tokens${state.corpus ? `, ${state.corpus}` : ""}) · mean activation ${num(state.meanActivation)} · max ${num(state.maxActivation)}${concept}`),
  );
  root.append(el("h2", "Activations (log10, firing tokens)"));
  root.append(histogram(state.histogram ?? []));
  root.append(el("h2", "Top-activating contexts"));
  root.append(contexts(state));
  root.append(el("h2", "Logit effects (decoder direction through the unembedding)"));
  const logits = el("div", undefined, "logits");
  logits.append(logitTable("promoted", state.promoted, "pos"), logitTable("suppressed", state.suppressed, "neg"));
  root.append(logits);
}
