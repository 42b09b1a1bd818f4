/**
 * Circuit panel front end: the attribution graph on a canvas (draw.ts), pan with the mouse, zoom
 * with the wheel, click or use the arrow keys / Tab to move between nodes; node and edge threshold
 * sliders re-prune live; the selected node's links and their shares; pins, supernodes, Check, Save
 * and Export. The page keeps its view while the extension posts new states for the same graph.
 */
import { linkShares, nodeAnnouncement, nodeFacts, nodeLinks, supernodeOf, withSubgraph, type PanelGraph } from "../../src/core/view/circuit-graph";
import { cellAt, fitView, layoutGraph, neighbour, NodeIndex, toWorld, zoomAt, type Direction, type GridLayout, type Viewport } from "../../src/core/view/circuit-layout";
import type { CircuitPanelRequest, CircuitPanelState } from "../../src/core/view/circuit-panel";
import { receivedState, type PostedCircuitState } from "../../src/core/view/circuit-wire";
import { countShown, DEFAULT_THRESHOLDS, initialThresholds, prunePanelGraph, type PanelPrune } from "../../src/core/view/circuit-prune";
import { transcoderNeuronpediaUrl } from "../../src/core/sae/releases/neuronpedia";
import { mark, wallClockMs, type TimelineMark } from "../../src/core/timeline";
import { button, el } from "../shared/dom";
import { featureStatsElements, hasFeatureStats, logitEffects, neuronpediaLink } from "../shared/feature-card";
import { connectPanel } from "../shared/panel";
import { drawScene, readTheme, type Theme } from "./draw";

/** When this page's script started: the first hop of a freshly created panel's page. */
const scriptStarted = wallClockMs();
const host = connectPanel<PostedCircuitState, CircuitPanelRequest>((posted) => render(receivedState(posted)));

interface Supernode {
  label: string;
  members: string[];
}

interface Shown {
  graph: PanelGraph;
  key: string;
  prune: PanelPrune;
  layout: GridLayout;
  index: NodeIndex;
  view: Viewport;
  selected: number;
  pinned: Set<string>;
  supernodes: Supernode[];
  nodeThreshold: number;
  edgeThreshold: number;
}

let state: CircuitPanelState | undefined;
let shown: Shown | undefined;
let theme: Theme = readTheme();

const root = document.getElementById("root") as HTMLElement;
const notice = el("p", undefined, "notice");
const summary = el("p", undefined, "summary");
/** A trace in progress, or why the last one gave no graph. */
const traceState = el("p", undefined, "trace-status");
traceState.setAttribute("role", "status");
traceState.hidden = true;
const canvas = el("canvas", undefined, "graph");
canvas.tabIndex = 0;
// An application: screen readers hand it the arrow keys. Tab and Shift+Tab leave it as from any control.
canvas.setAttribute("role", "application");
canvas.setAttribute("aria-roledescription", "attribution graph");
canvas.setAttribute("aria-label", "Attribution graph: arrow keys move between nodes, Enter shows the node's token in the editor, P pins it, Escape clears");
/** Says which node has the keyboard's focus (the canvas itself has no text for a screen reader). */
const announcer = el("p", undefined, "visually-hidden");
announcer.setAttribute("aria-live", "polite");
announcer.setAttribute("role", "status");
announcer.id = "graph-focus";
canvas.setAttribute("aria-describedby", announcer.id);
const details = el("section", undefined, "details");
const subgraph = el("section", undefined, "subgraph");
const checkOut = el("section", undefined, "check");
const nodeSlider = slider("Node threshold", DEFAULT_THRESHOLDS.node, (v) => reprune(v, undefined));
const edgeSlider = slider("Edge threshold", DEFAULT_THRESHOLDS.edge, (v) => reprune(undefined, v));

function slider(label: string, value: number, onInput: (v: number) => void): { box: HTMLElement; input: HTMLInputElement; out: HTMLElement; set: (v: number) => void } {
  const input = el("input");
  input.type = "range";
  input.min = "0.05";
  input.max = "1";
  input.step = "0.01";
  input.value = String(value);
  input.setAttribute("aria-label", label);
  const out = el("output", value.toFixed(2));
  input.addEventListener("input", () => {
    out.textContent = Number(input.value).toFixed(2);
    onInput(Number(input.value));
  });
  const box = el("label", `${label} `, "slider");
  box.append(input, out);
  const set = (v: number) => {
    input.value = String(v);
    out.textContent = v.toFixed(2);
  };
  return { box, input, out, set };
}

const checkKind = el("select");
for (const [value, text] of [["zero", "zero"], ["scale", "scale by"]]) {
  const option = el("option", text);
  option.value = value;
  checkKind.append(option);
}
const checkFactor = el("input");
checkFactor.type = "number";
checkFactor.step = "0.1";
checkFactor.value = "0.5";
checkFactor.setAttribute("aria-label", "Scale factor");
const supernodeName = el("input");
supernodeName.placeholder = "supernode label";
supernodeName.setAttribute("aria-label", "Supernode label");

const toolbar = el("div", undefined, "toolbar");
toolbar.append(
  nodeSlider.box,
  edgeSlider.box,
  button("Fit", () => fit()),
  button("Save", () => send("save")),
  button("Export for Neuronpedia…", () => send("export")),
);
const layoutBox = el("div", undefined, "layout");
const side = el("div", undefined, "side");
side.append(details, subgraph, checkOut);
layoutBox.append(canvas, side);
root.append(traceState, notice, summary, toolbar, layoutBox, announcer);

/** The hops of the trace being drawn, until its first frame (then on the canvas for bench:editor). */
let timeline: TimelineMark[] | undefined;

function render(update: CircuitPanelState): void {
  if (update.timeline) {
    timeline = [...update.timeline];
    // A page created for this state: its navigation and script start are hops too.
    if (!shown) timeline.push({ hop: "page: navigation started", at: performance.timeOrigin }, { hop: "page: script started", at: scriptStarted });
    mark(timeline, "page: state received");
  }
  // An update without the graph is for the graph on show; one for another graph waits for the whole state.
  const held = update.graph === undefined && shown?.key === update.graphKey ? shown.graph : undefined;
  if (update.graph === undefined && !held) return;
  const next = held ? { ...update, graph: held } : update;
  state = next;
  document.title = next.title;
  traceState.textContent = next.status ?? "";
  traceState.hidden = !next.status;
  const notes = next.error ? [next.error] : [...(next.graph?.warnings ?? []), ...(next.notice ? [next.notice] : [])];
  notice.textContent = notes.join(" ");
  notice.hidden = notes.length === 0;
  toolbar.hidden = layoutBox.hidden = !next.graph;
  if (!next.graph) {
    shown = undefined;
    summary.textContent = "";
    return;
  }
  if (!shown || shown.key !== next.graphKey) load(next.graph, next.graphKey);
  else if (next.feature) renderDetails();
  renderCheck();
}

function load(graph: PanelGraph, key: string): void {
  const started = performance.now();
  const byId = new Map(graph.nodes.map((n, i) => [n.id, i]));
  const start = initialThresholds(graph);
  nodeSlider.set(start.node);
  edgeSlider.set(start.edge);
  const nodeThreshold = start.node;
  const edgeThreshold = start.edge;
  const prune = prunePanelGraph(graph, nodeThreshold, edgeThreshold);
  const layout = layoutGraph(graph, prune.nodes);
  shown = {
    graph,
    key,
    prune,
    layout,
    index: new NodeIndex(layout, prune.nodes),
    view: { scale: 1, offsetX: 0, offsetY: 0 },
    selected: byId.get(graph.qParams.clickedId) ?? -1,
    pinned: new Set(graph.qParams.pinnedIds),
    supernodes: graph.qParams.supernodes.map(supernodeOf),
    nodeThreshold,
    edgeThreshold,
  };
  // Pruning, layout and the hit-test index before the first frame (bench:editor reads it).
  canvas.dataset.prepareMs = (performance.now() - started).toFixed(2);
  mark(timeline, "page: graph pruned and laid out");
  resize();
  fit();
  renderDetails();
  renderSubgraph();
}

function reprune(nodeThreshold = shown?.nodeThreshold, edgeThreshold = shown?.edgeThreshold): void {
  if (!shown || nodeThreshold === undefined || edgeThreshold === undefined) return;
  shown.nodeThreshold = nodeThreshold;
  shown.edgeThreshold = edgeThreshold;
  shown.prune = prunePanelGraph(shown.graph, nodeThreshold, edgeThreshold);
  shown.layout = layoutGraph(shown.graph, shown.prune.nodes);
  shown.index = new NodeIndex(shown.layout, shown.prune.nodes);
  draw();
  renderDetails();
}

function resize(): void {
  const ratio = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(rect.width * ratio));
  canvas.height = Math.max(1, Math.round(rect.height * ratio));
  draw();
}

function fit(): void {
  if (!shown) return;
  const rect = canvas.getBoundingClientRect();
  shown.view = fitView(shown.layout, rect.width, rect.height);
  draw();
}

let frame = 0;
function draw(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    drawNow();
  });
}

/** Draws at once; the counts and the frame's time go on the canvas's data attributes (the tests and bench:editor read them). */
function drawNow(): void {
  if (!shown) return;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const ratio = window.devicePixelRatio || 1;
  const started = performance.now();
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const byId = new Map(shown.graph.nodes.map((n, i) => [n.id, i]));
  const members = (ids: readonly string[]) => ids.map((id) => byId.get(id)).filter((i): i is number => i !== undefined);
  const drawn = drawScene(
    ctx,
    canvas.width / ratio,
    canvas.height / ratio,
    {
      graph: shown.graph,
      layout: shown.layout,
      nodes: shown.prune.nodes,
      links: shown.prune.links,
      view: shown.view,
      selected: shown.selected,
      pinned: new Set(members([...shown.pinned])),
      supernodeLabels: new Map(shown.supernodes.flatMap((s) => members(s.members).slice(0, 1).map((i) => [i, s.label] as const))),
      supernodeMembers: new Set(shown.supernodes.flatMap((s) => members(s.members))),
    },
    theme,
  );
  const nodes = countShown(shown.prune.nodes);
  const links = countShown(shown.prune.links);
  summary.textContent = `${nodes} of ${shown.graph.nodes.length} nodes, ${links} of ${shown.graph.links.length} links shown · ${shown.graph.metadata.prompt_tokens?.length ?? shown.graph.tokens.length} tokens`;
  // Where each token node is on screen (CSS pixels), so a test can click one.
  const tokenNodes = shown.graph.nodes.flatMap((n, i) => (n.kind === "embedding" && shown?.prune.nodes[i] ? [[n.pos, Math.round(shown.layout.x[i] * shown.view.scale + shown.view.offsetX), Math.round(shown.layout.y[i] * shown.view.scale + shown.view.offsetY)]] : []));
  // The selected node and where it is on screen, so a test can click it again.
  const at = shown.selected;
  const selected = at >= 0 ? [shown.graph.nodes[at].id, Math.round(shown.layout.x[at] * shown.view.scale + shown.view.offsetX), Math.round(shown.layout.y[at] * shown.view.scale + shown.view.offsetY)] : null;
  Object.assign(canvas.dataset, { selected: JSON.stringify(selected), graph: shown.key, nodes: String(nodes), links: String(links), drawnNodes: String(drawn.nodes), drawnLinks: String(drawn.links), tokenNodes: JSON.stringify(tokenNodes), frameMs: (performance.now() - started).toFixed(2) });
  if (timeline) {
    mark(timeline, "page: first frame drawn");
    canvas.dataset.timeline = JSON.stringify(timeline);
    timeline = undefined;
  }
}

// Pan (drag), zoom (wheel), click (a press that did not move).
let drag: { x: number; y: number; moved: boolean; view: Viewport } | undefined;
canvas.addEventListener("pointerdown", (e) => {
  if (!shown) return;
  canvas.setPointerCapture(e.pointerId);
  drag = { x: e.clientX, y: e.clientY, moved: false, view: shown.view };
});
canvas.addEventListener("pointermove", (e) => {
  if (!drag || !shown) return;
  const dx = e.clientX - drag.x;
  const dy = e.clientY - drag.y;
  if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
  if (drag.moved) {
    shown.view = { ...drag.view, offsetX: drag.view.offsetX + dx, offsetY: drag.view.offsetY + dy };
    draw();
  }
});
canvas.addEventListener("pointerup", (e) => {
  const press = drag;
  drag = undefined;
  if (!press || press.moved || !shown) return;
  const rect = canvas.getBoundingClientRect();
  click(e.clientX - rect.left, e.clientY - rect.top);
});
canvas.addEventListener(
  "wheel",
  (e) => {
    if (!shown) return;
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    shown.view = zoomAt(shown.view, Math.exp(-e.deltaY * 0.0015), e.clientX - rect.left, e.clientY - rect.top);
    draw();
  },
  { passive: false },
);

/** A node selects it (a token node also shows its token in the editor); an empty spot on the grid shows its column's token. */
function click(sx: number, sy: number): void {
  if (!shown) return;
  const world = toWorld(shown.view, sx, sy);
  const node = shown.index.nearest(world.x, world.y, 8 / Math.min(1, shown.view.scale));
  if (node >= 0) {
    select(node);
    if (shown.graph.nodes[node].kind === "embedding") reveal(shown.graph.nodes[node].pos);
    return;
  }
  // The token labels sit just below the bottom row: count them as the bottom row.
  const cell = cellAt(shown.layout, shown.graph.rows, shown.graph.tokens.length, world.x, world.y) ?? cellAt(shown.layout, shown.graph.rows, shown.graph.tokens.length, world.x, world.y - shown.layout.rowHeight / 2);
  if (cell) reveal(cell.pos);
}

function reveal(pos: number): void {
  host.postMessage({ type: "reveal", pos });
}

/** Select a node (-1: none); `announce` says it in the live region (keyboard moves). */
function select(node: number, announce = false): void {
  if (!shown) return;
  shown.selected = node;
  const selected = shown.graph.nodes[node];
  if (selected?.kind === "feature" && state?.canCheck && state.feature?.nodeId !== selected.id) host.postMessage({ type: "feature", nodeId: selected.id });
  keepInView(node);
  draw();
  renderDetails();
  if (announce) announcer.textContent = selected ? nodeAnnouncement(shown.graph, node, shown.prune.links) : "No node selected.";
}

function keepInView(node: number): void {
  if (!shown || node < 0) return;
  const rect = canvas.getBoundingClientRect();
  const x = shown.layout.x[node] * shown.view.scale + shown.view.offsetX;
  const y = shown.layout.y[node] * shown.view.scale + shown.view.offsetY;
  const margin = 30;
  let { offsetX, offsetY } = shown.view;
  if (x < margin) offsetX += margin - x;
  if (x > rect.width - margin) offsetX -= x - (rect.width - margin);
  if (y < margin) offsetY += margin - y;
  if (y > rect.height - margin) offsetY -= y - (rect.height - margin);
  shown.view = { ...shown.view, offsetX, offsetY };
}

const ARROWS: Record<string, Direction> = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down" };
canvas.addEventListener("keydown", (e) => {
  if (!shown) return;
  const s = shown;
  const direction = ARROWS[e.key];
  let handled = true;
  if (direction) select(neighbour(s.graph, s.layout, s.prune.nodes, s.selected, direction), true);
  else if (e.key === "Enter" && s.selected >= 0) reveal(s.graph.nodes[s.selected].pos);
  else if ((e.key === "p" || e.key === "P") && s.selected >= 0) togglePin(s.graph.nodes[s.selected].id);
  else if (e.key === "+" || e.key === "=") zoomCentre(1.25);
  else if (e.key === "-") zoomCentre(0.8);
  else if (e.key === "0") fit();
  else if (e.key === "Escape") select(-1, true);
  else handled = false;
  if (handled) e.preventDefault();
});

function zoomCentre(factor: number): void {
  if (!shown) return;
  const rect = canvas.getBoundingClientRect();
  shown.view = zoomAt(shown.view, factor, rect.width / 2, rect.height / 2);
  draw();
}

function percent(v: number): string {
  return `${(v * 100).toFixed(0)}%`;
}

function renderDetails(): void {
  details.replaceChildren();
  if (!shown || shown.selected < 0) {
    details.append(el("p", "Click a node (or focus the graph and use the arrow keys) to see its links.", "muted"));
    return;
  }
  const { graph, prune } = shown;
  const node = graph.nodes[shown.selected];
  details.append(el("h2", node.label));
  const facts = el("p", nodeFacts(graph, shown.selected).join(" · "));
  const page = node.kind === "feature" ? neuronpediaLink(transcoderNeuronpediaUrl(state?.neuronpedia, node.row - 1, node.feature)) : undefined;
  if (page) facts.append(" · ", page);
  details.append(facts);
  if (!prune.nodes[shown.selected]) details.append(el("p", "Pruned at these thresholds.", "muted"));
  const actions = el("div", undefined, "actions");
  actions.append(
    button(shown.pinned.has(node.id) ? "Unpin" : "Pin", () => togglePin(node.id)),
    button("Show token in editor", () => reveal(node.pos)),
  );
  details.append(actions);
  const all = nodeLinks(graph, shown.selected);
  const visible = nodeLinks(graph, shown.selected, prune.links);
  for (const [title, links, end] of [
    ["Inputs", all.inputs, "source"],
    ["Outputs", all.outputs, "target"],
  ] as const) {
    if (links.length === 0) continue;
    const shares = linkShares(graph, links, end);
    const split = end === "source" ? `from features ${percent(shares.features)}, errors ${percent(shares.errors)}, tokens ${percent(shares.tokens)}` : `to features ${percent(shares.features)}, logits ${percent(shares.logits)}`;
    details.append(el("h3", `${title}: ${links.length} links · ${split}`));
    const list = el("ol", undefined, "links");
    const shownLinks = end === "source" ? visible.inputs : visible.outputs;
    for (const k of shownLinks.slice(0, 12)) {
      const link = graph.links[k];
      const other = end === "source" ? link.source : link.target;
      const item = el("li");
      const name = el("a", graph.nodes[other].label);
      name.href = "#";
      name.addEventListener("click", (e) => {
        e.preventDefault();
        select(other);
      });
      item.append(el("span", `${link.weight >= 0 ? "+" : ""}${link.weight.toFixed(3)} `, link.weight >= 0 ? "positive" : "negative"), name);
      list.append(item);
    }
    details.append(list);
  }
  if (node.kind === "feature") details.append(featureCard(node.id));
}

/** The feature's dashboard (asked for on select), or why there is none. */
function featureCard(nodeId: string): HTMLElement {
  const box = el("section", undefined, "feature-card");
  const card = state?.feature?.nodeId === nodeId ? state.feature : undefined;
  if (!card) {
    box.append(el("p", state?.canCheck ? "Loading the feature's dashboard…" : `No feature dashboard: ${state?.notice ?? "this graph's model is not loaded."}`, "muted"));
    return box;
  }
  box.append(el("h3", `Dashboard: ${card.label}`));
  if (hasFeatureStats(card)) box.append(...featureStatsElements(card, "h3"));
  else {
    box.append(el("p", card.note ?? "No statistics for this feature.", "muted"));
    if (card.promoted.length + card.suppressed.length > 0) box.append(...logitEffects(card, "h3"));
  }
  return box;
}

function togglePin(id: string): void {
  if (!shown) return;
  if (shown.pinned.has(id)) shown.pinned.delete(id);
  else shown.pinned.add(id);
  draw();
  renderDetails();
  renderSubgraph();
}

function renderSubgraph(): void {
  subgraph.replaceChildren();
  if (!shown) return;
  const s = shown;
  const byId = new Map(s.graph.nodes.map((n) => [n.id, n]));
  subgraph.append(el("h2", `Subgraph: ${s.pinned.size} pinned`));
  const list = el("ul", undefined, "pins");
  for (const id of s.pinned) {
    const item = el("li");
    const name = el("a", byId.get(id)?.label ?? id);
    name.href = "#";
    name.addEventListener("click", (e) => {
      e.preventDefault();
      const index = s.graph.nodes.findIndex((n) => n.id === id);
      if (index >= 0) select(index);
    });
    item.append(name, button("Unpin", () => togglePin(id)));
    list.append(item);
  }
  subgraph.append(list);
  const group = el("div", undefined, "actions");
  group.append(
    supernodeName,
    button("Group pinned into supernode", () => {
      const label = supernodeName.value.trim();
      const members = [...s.pinned].filter((id) => !s.supernodes.some((n) => n.members.includes(id)));
      if (!label || members.length === 0) return;
      s.supernodes.push({ label, members });
      supernodeName.value = "";
      draw();
      renderSubgraph();
    }),
  );
  subgraph.append(group);
  for (const [i, node] of s.supernodes.entries()) {
    const item = el("p", `${node.label}: ${node.members.map((id) => byId.get(id)?.label ?? id).join(", ")} `, "supernode");
    item.append(
      button("Ungroup", () => {
        s.supernodes.splice(i, 1);
        draw();
        renderSubgraph();
      }),
    );
    subgraph.append(item);
  }
  const check = el("div", undefined, "actions");
  check.append(el("span", "Check pinned features: "), checkKind, checkFactor, button("Check", () => runCheck()));
  subgraph.append(check);
}

function runCheck(): void {
  if (!shown || !state) return;
  const byId = new Map(shown.graph.nodes.map((n) => [n.id, n]));
  const features = [...shown.pinned].filter((id) => byId.get(id)?.kind === "feature");
  if (features.length === 0) {
    checkOut.replaceChildren(el("p", "Pin at least one feature node to check (errors, tokens and logits cannot be edited).", "muted"));
    return;
  }
  if (!state.canCheck) {
    checkOut.replaceChildren(el("p", state.notice ?? "Check cannot run on this graph.", "muted"));
    return;
  }
  checkOut.replaceChildren(el("p", `Checking ${features.length} features…`, "muted"));
  if (checkKind.value === "scale") host.postMessage({ type: "check", nodeIds: features, kind: "scale", factor: Number(checkFactor.value) });
  else host.postMessage({ type: "check", nodeIds: features, kind: "zero" });
}

function renderCheck(): void {
  const check = state?.check;
  if (!check) return;
  checkOut.replaceChildren(el("h2", `Check: ${check.kind === "zero" ? "zero" : `scale ×${check.factor}`} ${check.nodeIds.length} features`));
  const table = el("table");
  for (const [label, value] of [
    [`Target "${check.target}" on the prompt`, check.baseline],
    ["Predicted change (graph)", check.predicted],
    ["Constrained change (frozen attention and norms)", check.constrained],
    ["Actual change (the real model)", check.free],
  ] as const) {
    const row = el("tr");
    row.append(el("td", label), el("td", value === undefined ? "–" : value.toFixed(4), "number"));
    table.append(row);
  }
  checkOut.append(table, el("p", `loupe intervene ${check.command}`, "command"));
}

function send(type: "save" | "export"): void {
  if (!shown) return;
  const clicked = shown.selected >= 0 ? shown.graph.nodes[shown.selected].id : "";
  host.postMessage({ type, qParams: withSubgraph(shown.graph, [...shown.pinned], shown.supernodes, clicked) });
}

new ResizeObserver(() => resize()).observe(canvas);
// VS Code swaps the body's theme class when the colour theme changes.
new MutationObserver(() => {
  theme = readTheme();
  draw();
}).observe(document.body, { attributes: true, attributeFilter: ["class"] });
