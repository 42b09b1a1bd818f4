/**
 * DOM helpers shared by the panels' front ends. Text always goes in through textContent: nothing
 * from the data is parsed as HTML.
 */
import "@vscode-elements/elements/dist/vscode-button/index.js";

export const SVG_NS = "http://www.w3.org/2000/svg";

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

export function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A vscode-elements button. */
export function button(label: string, onClick: () => void): HTMLElement {
  const b = document.createElement("vscode-button");
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}
