/**
 * The circuit graph on a 2D canvas. Canvas rather than SVG: the webview's CSP allows no inline
 * styles, and 20,000 SVG paths re-laid out on every pan are slow, while a canvas strokes links
 * batched by sign and width (a dozen paths a frame) and redraws in a few milliseconds.
 * Colours come from VS Code's theme variables, read again when the theme changes.
 */
import type { PanelGraph } from "../../src/core/view/circuit-graph";
import { GRID_MARGIN, NODE_RADIUS, toScreen, type GridLayout, type Viewport } from "../../src/core/view/circuit-layout";

export interface Theme {
  readonly background: string;
  readonly foreground: string;
  readonly muted: string;
  readonly grid: string;
  readonly positive: string;
  readonly negative: string;
  readonly feature: string;
  readonly error: string;
  readonly embedding: string;
  readonly logit: string;
  readonly focus: string;
  readonly pinned: string;
  readonly font: string;
}

export function readTheme(): Theme {
  const style = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  return {
    background: v("--vscode-editor-background", "#1e1e1e"),
    foreground: v("--vscode-editor-foreground", "#d4d4d4"),
    muted: v("--vscode-descriptionForeground", "#999999"),
    grid: v("--vscode-editorIndentGuide-background1", v("--vscode-widget-border", "#404040")),
    positive: v("--vscode-charts-blue", "#3794ff"),
    negative: v("--vscode-charts-red", "#f14c4c"),
    feature: v("--vscode-charts-purple", "#b180d7"),
    error: v("--vscode-disabledForeground", "#808080"),
    embedding: v("--vscode-charts-green", "#89d185"),
    logit: v("--vscode-charts-orange", "#d18616"),
    focus: v("--vscode-focusBorder", "#007fd4"),
    pinned: v("--vscode-charts-yellow", "#cca700"),
    font: `${v("--vscode-editor-font-size", "12px")} ${v("--vscode-editor-font-family", "monospace")}`,
  };
}

export interface Scene {
  readonly graph: PanelGraph;
  readonly layout: GridLayout;
  readonly nodes: Uint8Array;
  readonly links: Uint8Array;
  readonly view: Viewport;
  readonly selected: number;
  readonly pinned: ReadonlySet<number>;
  /** Supernode label by its first member, drawn beside it. */
  readonly supernodeLabels: ReadonlyMap<number, string>;
  readonly supernodeMembers: ReadonlySet<number>;
}

const WIDTH_LEVELS = 6;

/** Draws the scene; returns how many nodes and links were inside the canvas. */
export function drawScene(ctx: CanvasRenderingContext2D, width: number, height: number, scene: Scene, theme: Theme): { nodes: number; links: number } {
  const { graph, layout, view } = scene;
  ctx.save();
  ctx.fillStyle = theme.background;
  ctx.fillRect(0, 0, width, height);
  drawGrid(ctx, scene, theme, width, height);

  let maxWeight = 0;
  scene.links.forEach((shown, k) => {
    if (shown) maxWeight = Math.max(maxWeight, Math.abs(graph.links[k].weight));
  });
  // One path per (sign, width level): a handful of strokes however many links.
  const paths = Array.from({ length: 2 * WIDTH_LEVELS }, () => new Path2D());
  const highlighted = new Path2D();
  let linksDrawn = 0;
  const screen = (i: number) => toScreen(view, layout.x[i], layout.y[i]);
  const inside = (a: { x: number; y: number }, b: { x: number; y: number }) => !((a.x < 0 && b.x < 0) || (a.x > width && b.x > width) || (a.y < 0 && b.y < 0) || (a.y > height && b.y > height));
  graph.links.forEach((link, k) => {
    if (!scene.links[k]) return;
    const a = screen(link.source);
    const b = screen(link.target);
    if (!inside(a, b)) return;
    linksDrawn++;
    const level = Math.min(WIDTH_LEVELS - 1, Math.floor((Math.abs(link.weight) / (maxWeight || 1)) * WIDTH_LEVELS));
    const path = link.source === scene.selected || link.target === scene.selected ? highlighted : paths[(link.weight >= 0 ? 0 : WIDTH_LEVELS) + level];
    path.moveTo(a.x, a.y);
    path.lineTo(b.x, b.y);
  });
  const zoomWidth = Math.max(0.4, Math.min(2, view.scale));
  ctx.globalAlpha = scene.selected >= 0 ? 0.25 : 0.6;
  paths.forEach((path, p) => {
    ctx.strokeStyle = p < WIDTH_LEVELS ? theme.positive : theme.negative;
    ctx.lineWidth = (0.3 + ((p % WIDTH_LEVELS) + 1) * 0.6) * zoomWidth;
    ctx.stroke(path);
  });
  ctx.globalAlpha = 1;
  if (scene.selected >= 0) {
    ctx.strokeStyle = theme.focus;
    ctx.lineWidth = 1.5 * zoomWidth;
    ctx.stroke(highlighted);
  }

  const radius = Math.max(2, NODE_RADIUS * Math.min(2, view.scale));
  const byKind = { feature: new Path2D(), error: new Path2D(), embedding: new Path2D(), logit: new Path2D() };
  let nodesDrawn = 0;
  graph.nodes.forEach((node, i) => {
    if (!scene.nodes[i]) return;
    const p = screen(i);
    if (p.x < -radius || p.x > width + radius || p.y < -radius || p.y > height + radius) return;
    nodesDrawn++;
    const path = byKind[node.kind];
    if (node.kind === "error") path.rect(p.x - radius, p.y - radius, 2 * radius, 2 * radius);
    else {
      path.moveTo(p.x + radius, p.y);
      path.arc(p.x, p.y, radius, 0, 2 * Math.PI);
    }
  });
  for (const kind of ["error", "feature", "embedding", "logit"] as const) {
    ctx.fillStyle = theme[kind];
    ctx.fill(byKind[kind]);
  }
  ring(ctx, scene, scene.supernodeMembers, theme.foreground, radius + 2, 1);
  ring(ctx, scene, scene.pinned, theme.pinned, radius + 1.5, 2);
  if (scene.selected >= 0 && scene.nodes[scene.selected]) ring(ctx, scene, new Set([scene.selected]), theme.focus, radius + 3, 2.5);

  ctx.font = theme.font;
  ctx.fillStyle = theme.foreground;
  ctx.textBaseline = "bottom";
  for (const [i, label] of scene.supernodeLabels) {
    if (!scene.nodes[i]) continue;
    const p = screen(i);
    ctx.fillText(label, p.x + radius + 4, p.y - radius);
  }
  ctx.restore();
  return { nodes: nodesDrawn, links: linksDrawn };
}

function ring(ctx: CanvasRenderingContext2D, scene: Scene, nodes: ReadonlySet<number>, colour: string, radius: number, width: number): void {
  const path = new Path2D();
  for (const i of nodes) {
    if (!scene.nodes[i]) continue;
    const p = toScreen(scene.view, scene.layout.x[i], scene.layout.y[i]);
    path.moveTo(p.x + radius, p.y);
    path.arc(p.x, p.y, radius, 0, 2 * Math.PI);
  }
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.stroke(path);
}

/** Row and column guides, layer names on the left and the prompt's tokens along the bottom. */
function drawGrid(ctx: CanvasRenderingContext2D, scene: Scene, theme: Theme, width: number, height: number): void {
  const { graph, layout, view } = scene;
  const top = toScreen(view, 0, GRID_MARGIN);
  const bottom = toScreen(view, 0, GRID_MARGIN + graph.rows * layout.rowHeight);
  ctx.strokeStyle = theme.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let row = 0; row <= graph.rows; row++) {
    const y = toScreen(view, 0, GRID_MARGIN + row * layout.rowHeight).y;
    ctx.moveTo(Math.max(0, toScreen(view, GRID_MARGIN, 0).x), y);
    ctx.lineTo(Math.min(width, toScreen(view, GRID_MARGIN + graph.tokens.length * layout.columnWidth, 0).x), y);
  }
  for (let pos = 0; pos <= graph.tokens.length; pos++) {
    const x = toScreen(view, GRID_MARGIN + pos * layout.columnWidth, 0).x;
    ctx.moveTo(x, Math.max(0, top.y));
    ctx.lineTo(x, Math.min(height, bottom.y));
  }
  ctx.stroke();
  ctx.font = theme.font;
  ctx.fillStyle = theme.muted;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  for (let row = 0; row < graph.rows; row++) {
    const y = toScreen(view, 0, GRID_MARGIN + (graph.rows - 1 - row + 0.5) * layout.rowHeight).y;
    ctx.fillText(row === 0 ? "Emb" : row === graph.rows - 1 ? "Logit" : `L${row - 1}`, toScreen(view, GRID_MARGIN - 4, 0).x, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  graph.tokens.forEach((token, pos) => {
    const x = toScreen(view, GRID_MARGIN + (pos + 0.5) * layout.columnWidth, 0).x;
    const text = JSON.stringify(token).slice(1, -1);
    ctx.fillText(text.length > 10 ? `${text.slice(0, 9)}…` : text, x, bottom.y + 4);
  });
  ctx.textAlign = "start";
}
