/**
 * A feature's statistics as the SAE dashboard and the circuit panel's feature card draw them: the
 * density line, the histogram of log10 activations, the top-activating contexts with each token
 * shaded by the feature's activation, and the tokens its decoder promotes and suppresses. Styles:
 * FEATURE_CARD_CSS (src/extension/feature-dashboard.ts).
 */
import type { FeatureStatsView } from "../../src/core/view/feature-dashboard";
import { el, svg } from "./dom";

const pct = (x: number) => `${(x * 100).toFixed(x < 0.001 ? 3 : x < 0.01 ? 2 : 1)}%`;
export const num = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(2));

/** Whether a card carries its statistics (the states say hasStats and then hold every field). */
export function hasFeatureStats<T extends Partial<FeatureStatsView> & { readonly hasStats: boolean }>(card: T): card is T & FeatureStatsView {
  return card.hasStats && card.histogram !== undefined && card.contexts !== undefined && card.promoted !== undefined && card.suppressed !== undefined;
}

/** A feature card's statistics under headings of level `heading`. */
export function featureStatsElements(view: FeatureStatsView, heading: "h2" | "h3"): HTMLElement[] {
  const c = view.concept;
  const above = c?.threshold === undefined ? "" : ` above activation ${num(c.threshold)}`;
  const concept = c ? ` · best-matching concept "${c.label}" F1 ${c.f1.toFixed(2)}${above} (precision ${c.precision.toFixed(2)}, recall ${c.recall.toFixed(2)})` : "";
  const hist = el("div", undefined, "histogram");
  hist.append(histogram(view.histogram));
  return [
    el("p", `density ${pct(view.density)} (${view.fired} of ${view.corpusTokens} tokens${view.corpus ? `, ${view.corpus}` : ""}) · mean activation ${num(view.meanActivation)} · max ${num(view.maxActivation)}${concept}`),
    el(heading, "Activations (log10, firing tokens)"),
    hist,
    el(heading, "Top-activating contexts"),
    contexts(view.contexts),
    ...logitEffects(view, heading),
  ];
}

/** The promoted / suppressed tables under their heading. */
export function logitEffects(view: Pick<FeatureStatsView, "promoted" | "suppressed">, heading: "h2" | "h3"): HTMLElement[] {
  const logits = el("div", undefined, "logits");
  logits.append(logitTable("promoted", view.promoted, "pos"), logitTable("suppressed", view.suppressed, "neg"));
  return [el(heading, "Logit effects (decoder direction through the unembedding)"), logits];
}

function histogram(bins: FeatureStatsView["histogram"]): SVGElement {
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

function contexts(list: FeatureStatsView["contexts"]): HTMLElement {
  const box = el("div", undefined, "contexts");
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

function logitTable(title: string, rows: FeatureStatsView["promoted"], cls: string): HTMLElement {
  const box = el("div");
  box.append(el("h3", title));
  const table = el("table");
  for (const r of rows) {
    const tr = el("tr");
    tr.append(el("td", JSON.stringify(r.token)), el("td", r.value.toFixed(3), `num ${cls}`));
    table.append(tr);
  }
  box.append(table);
  return box;
}

/** A link to a feature's Neuronpedia page (VS Code opens a webview's https links in the browser); none for any other address. */
export function neuronpediaLink(url: string | undefined): HTMLAnchorElement | undefined {
  if (!url?.startsWith("https://www.neuronpedia.org/")) return undefined;
  const link = document.createElement("a");
  link.href = url;
  link.textContent = "Neuronpedia";
  link.className = "neuronpedia";
  return link;
}
