/**
 * Where the circuit panel draws each node, and the geometry its page needs: a layer x token grid
 * (token embeddings on the bottom row, each layer's features and errors above, logits on top),
 * the pan/zoom viewport, hit-testing a click, and moving between nodes with the keyboard. Pure
 * and free of Node modules: the page bundles it, the tests run it.
 */
import type { PanelGraph } from "./circuit-graph";

export interface GridLayout {
  /** World coordinates of each node's centre (y grows downwards, so the top row is logits). */
  readonly x: Float64Array;
  readonly y: Float64Array;
  readonly width: number;
  readonly height: number;
  readonly columnWidth: number;
  readonly rowHeight: number;
}

export const NODE_RADIUS = 5;
const COLUMN_WIDTH = 64;
const ROW_HEIGHT = 56;
/** Room around the grid for the layer names (left) and the tokens (below). */
export const GRID_MARGIN = 44;

/** The centre of a grid cell, in world coordinates. */
export function cellCentre(layout: Pick<GridLayout, "columnWidth" | "rowHeight">, rows: number, row: number, pos: number): { x: number; y: number } {
  return { x: GRID_MARGIN + (pos + 0.5) * layout.columnWidth, y: GRID_MARGIN + (rows - 1 - row + 0.5) * layout.rowHeight };
}

/**
 * Nodes of one cell (row, position) sit side by side in it, the most influential in the middle
 * and wrapping into more lines when the cell is full; only the `shown` nodes take a place.
 */
export function layoutGraph(graph: PanelGraph, shown?: Uint8Array): GridLayout {
  const columns = graph.tokens.length;
  const cells = new Map<number, number[]>();
  graph.nodes.forEach((node, i) => {
    if (shown && !shown[i]) return;
    const key = node.row * columns + node.pos;
    const list = cells.get(key);
    if (list) list.push(i);
    else cells.set(key, [i]);
  });
  const perLine = Math.max(1, Math.floor((COLUMN_WIDTH - 4) / (2 * NODE_RADIUS + 2)));
  const x = new Float64Array(graph.nodes.length).fill(Number.NaN);
  const y = new Float64Array(graph.nodes.length).fill(Number.NaN);
  const grid = { columnWidth: COLUMN_WIDTH, rowHeight: ROW_HEIGHT };
  const rank = (i: number) => graph.nodes[i].influence ?? 1;
  for (const members of cells.values()) {
    members.sort((a, b) => rank(a) - rank(b) || a - b);
    const { row, pos } = graph.nodes[members[0]];
    const centre = cellCentre(grid, graph.rows, row, pos);
    const lines = Math.ceil(members.length / perLine);
    const step = Math.min(2 * NODE_RADIUS + 2, (ROW_HEIGHT - 2 * NODE_RADIUS) / Math.max(1, lines));
    members.forEach((node, k) => {
      const line = Math.floor(k / perLine);
      const inLine = Math.min(perLine, members.length - line * perLine);
      const slot = k % perLine;
      // Alternate right and left of the centre: 0, +1, -1, +2, ...
      const offset = slot === 0 ? 0 : slot % 2 === 1 ? (slot + 1) / 2 : -slot / 2;
      const spread = inLine % 2 === 0 ? 0.5 : 0;
      x[node] = centre.x + (offset - spread) * (2 * NODE_RADIUS + 2);
      y[node] = centre.y + (line - (lines - 1) / 2) * step;
    });
  }
  return { x, y, width: 2 * GRID_MARGIN + columns * COLUMN_WIDTH, height: 2 * GRID_MARGIN + graph.rows * ROW_HEIGHT, ...grid };
}

/** Screen = world * scale + offset. */
export interface Viewport {
  readonly scale: number;
  readonly offsetX: number;
  readonly offsetY: number;
}

export function toWorld(view: Viewport, sx: number, sy: number): { x: number; y: number } {
  return { x: (sx - view.offsetX) / view.scale, y: (sy - view.offsetY) / view.scale };
}

export function toScreen(view: Viewport, wx: number, wy: number): { x: number; y: number } {
  return { x: wx * view.scale + view.offsetX, y: wy * view.scale + view.offsetY };
}

/** Zoom by `factor` keeping the world point under (sx, sy) where it is; scale kept in [0.05, 20]. */
export function zoomAt(view: Viewport, factor: number, sx: number, sy: number): Viewport {
  const scale = Math.min(20, Math.max(0.05, view.scale * factor));
  const world = toWorld(view, sx, sy);
  return { scale, offsetX: sx - world.x * scale, offsetY: sy - world.y * scale };
}

/** The viewport that shows the whole layout in a width x height canvas. */
export function fitView(layout: GridLayout, width: number, height: number): Viewport {
  const scale = Math.min(2, Math.max(0.05, Math.min(width / layout.width, height / layout.height)));
  return { scale, offsetX: (width - layout.width * scale) / 2, offsetY: (height - layout.height * scale) / 2 };
}

/**
 * The shown node nearest to the world point within `radius` (world units), or -1. A uniform
 * bucket grid keeps it fast on large graphs; build it once per layout.
 */
export class NodeIndex {
  private readonly buckets = new Map<string, number[]>();

  constructor(
    private readonly layout: GridLayout,
    shown: Uint8Array | undefined,
    private readonly cell = 2 * NODE_RADIUS + 2,
  ) {
    for (let i = 0; i < layout.x.length; i++) {
      if ((shown && !shown[i]) || Number.isNaN(layout.x[i])) continue;
      const key = this.key(Math.floor(layout.x[i] / cell), Math.floor(layout.y[i] / cell));
      const list = this.buckets.get(key);
      if (list) list.push(i);
      else this.buckets.set(key, [i]);
    }
  }

  private key(cx: number, cy: number): string {
    return `${cx},${cy}`;
  }

  nearest(x: number, y: number, radius: number): number {
    let best = -1;
    let bestDistance = radius * radius;
    const reach = Math.ceil(radius / this.cell);
    const cx = Math.floor(x / this.cell);
    const cy = Math.floor(y / this.cell);
    for (let dx = -reach; dx <= reach; dx++) {
      for (let dy = -reach; dy <= reach; dy++) {
        for (const i of this.buckets.get(this.key(cx + dx, cy + dy)) ?? []) {
          const d = (this.layout.x[i] - x) ** 2 + (this.layout.y[i] - y) ** 2;
          if (d <= bestDistance) {
            bestDistance = d;
            best = i;
          }
        }
      }
    }
    return best;
  }
}

/** The grid cell (row, token position) under a world point, or null outside the grid. */
export function cellAt(layout: GridLayout, rows: number, columns: number, x: number, y: number): { row: number; pos: number } | null {
  const pos = Math.floor((x - GRID_MARGIN) / layout.columnWidth);
  const rowFromTop = Math.floor((y - GRID_MARGIN) / layout.rowHeight);
  if (pos < 0 || pos >= columns || rowFromTop < 0 || rowFromTop >= rows) return null;
  return { row: rows - 1 - rowFromTop, pos };
}

export type Direction = "left" | "right" | "up" | "down";

/**
 * Keyboard navigation: from `current`, the nearest shown node in a direction (within a 45° cone
 * either side, favouring nodes straight ahead), or `current` when there is none; from -1, the
 * first logit (the target) or else any shown node.
 */
export function neighbour(graph: PanelGraph, layout: GridLayout, shown: Uint8Array | undefined, current: number, direction: Direction): number {
  const visible = (i: number) => (!shown || shown[i] === 1) && !Number.isNaN(layout.x[i]);
  if (current < 0 || !visible(current)) {
    const target = graph.nodes.findIndex((n, i) => n.isTarget && visible(i));
    return target >= 0 ? target : graph.nodes.findIndex((_, i) => visible(i));
  }
  const [ax, ay] = { left: [-1, 0], right: [1, 0], up: [0, -1], down: [0, 1] }[direction];
  let best = current;
  let bestCost = Infinity;
  for (let i = 0; i < graph.nodes.length; i++) {
    if (i === current || !visible(i)) continue;
    const dx = layout.x[i] - layout.x[current];
    const dy = layout.y[i] - layout.y[current];
    const along = dx * ax + dy * ay;
    const across = Math.abs(dx * ay - dy * ax);
    if (along <= 0 || across > along) continue;
    const cost = along + 2 * across;
    if (cost < bestCost) {
      bestCost = cost;
      best = i;
    }
  }
  return best;
}
