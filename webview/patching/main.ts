/**
 * Patching panel front end: one heatmap per sweep (layers down, positions or heads across), exact
 * values on hover, click a position cell to jump to that token in the editor, export CSV / PNG.
 * All labels are set with textContent.
 */
import type { Heatmap, PatchingPanelRequest, PatchingPanelState } from "../../src/core/view/patching-view";
import { button, el, SVG_NS, svg } from "../shared/dom";
import { connectPanel } from "../shared/panel";

const vscode = connectPanel<PatchingPanelState, PatchingPanelRequest>(render);

/** Diverging colour: blue for restoring (towards 1), red for the opposite; white at 0. */
function colour(v: number): string {
  if (!Number.isFinite(v)) return "rgb(128,128,128)";
  const t = Math.max(-1, Math.min(1, v));
  const a = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? `rgb(${a},${a},255)` : `rgb(255,${a},${a})`;
}

function heatmap(h: Heatmap): SVGSVGElement {
  const cell = 26;
  const left = 40;
  const top = 24;
  const bottom = 110;
  const width = left + cell * h.columnLabels.length + 10;
  const height = top + cell * h.rowLabels.length + bottom;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": h.title }) as SVGSVGElement;
  root.append(svg("rect", { x: 0, y: 0, width, height, class: "bg" }));
  root.append(svg("text", { x: left, y: 16, class: "title" }, h.title));
  h.rowLabels.forEach((label, r) => {
    root.append(svg("text", { x: left - 6, y: top + r * cell + cell * 0.65, "text-anchor": "end", class: "axis" }, label));
    h.columnLabels.forEach((_, c) => {
      const v = h.normalised[r][c];
      const rect = svg("rect", { x: left + c * cell, y: top + r * cell, width: cell - 1, height: cell - 1, fill: colour(v), class: h.columnPositions[c] === null ? "cell" : "cell link" });
      rect.append(svg("title", {}, `${h.rowLabels[r]} · ${h.columnLabels[c]}\nnormalised ${Number.isFinite(v) ? v.toFixed(3) : "–"}\nmetric ${h.raw[r][c].toFixed(4)}`));
      const position = h.columnPositions[c];
      if (position !== null) rect.addEventListener("click", () => vscode.postMessage({ type: "reveal", position }));
      root.append(rect);
    });
  });
  h.columnLabels.forEach((label, c) => {
    const x = left + c * cell + cell / 2;
    const y = top + h.rowLabels.length * cell + 8;
    root.append(svg("text", { x, y, transform: `rotate(60 ${x} ${y})`, class: "axis" }, label.length > 16 ? `${label.slice(0, 15)}…` : label));
  });
  return root;
}

/** Rasterise every heatmap into one PNG (the SVGs stacked) and hand it to the extension. */
async function exportPng(): Promise<void> {
  const svgs = [...document.querySelectorAll<SVGSVGElement>("svg")];
  const width = Math.max(...svgs.map((s) => Number(s.getAttribute("width"))));
  const height = svgs.reduce((sum, s) => sum + Number(s.getAttribute("height")), 0);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d")!;
  const styles = getComputedStyle(document.body);
  let y = 0;
  for (const s of svgs) {
    const copy = s.cloneNode(true) as SVGSVGElement;
    copy.setAttribute("xmlns", SVG_NS);
    // Inline the theme colours the stylesheet gives, so the image looks like the panel.
    copy.querySelectorAll(".bg").forEach((e) => e.setAttribute("fill", styles.backgroundColor || "#fff"));
    copy.querySelectorAll("text").forEach((e) => e.setAttribute("fill", styles.color || "#000"));
    copy.querySelectorAll("title").forEach((e) => e.remove());
    const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(copy)], { type: "image/svg+xml" }));
    const image = new Image();
    await new Promise<void>((resolve, reject) => {
      image.onload = () => resolve();
      image.onerror = () => reject(new Error("could not render the heatmap"));
      image.src = url;
    });
    ctx.drawImage(image, 0, y);
    URL.revokeObjectURL(url);
    y += Number(s.getAttribute("height"));
  }
  vscode.postMessage({ type: "exportPng", dataUrl: canvas.toDataURL("image/png") });
}

function render(state: PatchingPanelState): void {
  const root = document.getElementById("root")!;
  root.replaceChildren();
  const controls = el("div", undefined, "controls");
  controls.append(
    button("Export CSV", () => vscode.postMessage({ type: "exportCsv" })),
    button("Export PNG", () => void exportPng()),
  );
  const legend = el(
    "p",
    "Blue: patching this activation restores the clean behaviour (1 = fully); red: the opposite; white: no effect. Hover a cell for exact values; click a position to show its token in the editor.",
    "legend",
  );
  root.append(el("h1", state.title), el("p", state.summary), legend, controls, ...state.heatmaps.map(heatmap));
}
