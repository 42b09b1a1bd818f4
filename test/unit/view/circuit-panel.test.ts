/**
 * The circuit panel's pure parts: reading graph files (and refusing bad ones by name), live
 * pruning with the core's semantics, the grid layout, hit-testing and keyboard moves, qParams
 * round-trips and the message guards.
 */
import { strict as assert } from "node:assert";
import { pruneGraph, type GraphFile } from "../../../src/core/circuits";
import { GraphFileError, linkShares, nodeAnnouncement, nodeLinks, parseGraphFile, parseQParams, supernodeOf, withSubgraph } from "../../../src/core/view/circuit-graph";
import { cellAt, fitView, layoutGraph, neighbour, NodeIndex, toScreen, toWorld, zoomAt } from "../../../src/core/view/circuit-layout";
import { checkRefusal, featureEdits, interveneArguments, parseCircuitPanelRequest, stateUpdate, traceStatus } from "../../../src/core/view/circuit-panel";
import { postedState, receivedState, unpackLinks } from "../../../src/core/view/circuit-wire";
import { countShown, initialThresholds, prunePanelGraph } from "../../../src/core/view/circuit-prune";
import { syntheticGraph, syntheticGraphFile } from "../../helpers/circuit-graphs";

const small = syntheticGraph({ layers: 3, tokens: 5, featuresPerCell: 2, linksPerNode: 6, seed: 3 });
const smallFile = syntheticGraphFile(small);
const parsed = parseGraphFile(JSON.stringify(smallFile), "small.json");

/** A node's id in circuit-tracer's form, from the dense graph's index. */
function idOf(file: GraphFile, graph: typeof small, i: number): string {
  const { nFeatures, nErrors, nTokens } = graph.layout;
  if (i < nFeatures) return `${graph.features[i].layer}_${graph.features[i].feature}_${graph.features[i].pos}`;
  if (i < nFeatures + nErrors) return `0_${Math.floor((i - nFeatures) / nTokens)}_${(i - nFeatures) % nTokens}`;
  if (i < nFeatures + nErrors + nTokens) return `E_${graph.tokens[i - nFeatures - nErrors]}_${i - nFeatures - nErrors}`;
  return file.nodes.filter((n) => n.feature_type === "logit")[i - nFeatures - nErrors - nTokens].node_id;
}

describe("circuit panel: graph files", () => {
  it("reads circuit-tracer's JSON into a layer x token grid: embeddings at the bottom, logits on top", () => {
    assert.equal(parsed.rows, 3 + 2);
    assert.equal(parsed.tokens.length, 5);
    assert.equal(parsed.nodes.length, smallFile.nodes.length);
    assert.equal(parsed.links.length, smallFile.links.length);
    const feature = parsed.nodes.find((n) => n.id === `2_${small.features.find((f) => f.layer === 2)?.feature}_${small.features.find((f) => f.layer === 2)?.pos}`);
    assert.ok(feature);
    assert.equal(feature.kind, "feature");
    assert.equal(feature.row, 3);
    assert.ok(parsed.nodes.filter((n) => n.kind === "embedding").every((n) => n.row === 0));
    assert.ok(parsed.nodes.filter((n) => n.kind === "logit").every((n) => n.row === 4 && n.pos === 4));
    assert.ok(parsed.nodes.filter((n) => n.kind === "error").every((n) => n.row >= 1 && n.row <= 3));
    // Links point at the nodes the file names.
    smallFile.links.forEach((l, k) => {
      assert.equal(parsed.nodes[parsed.links[k].source].id, l.source);
      assert.equal(parsed.nodes[parsed.links[k].target].id, l.target);
    });
  });

  it("refuses a malformed file or another format with the file's name, the fault and the fix", () => {
    const cases: [string, RegExp][] = [
      ["{ not json", /bad\.json is not a circuit-tracer graph.*not JSON/],
      [JSON.stringify({ format: "loupe-compact-graph", metadata: {}, nodes: {}, links: [] }), /compact form.*without --compact/],
      [JSON.stringify({ metadata: {}, links: [] }), /no "nodes" list/],
      [JSON.stringify({ ...smallFile, nodes: [...smallFile.nodes, { ...smallFile.nodes[0] }] }), /appears twice/],
      [JSON.stringify({ ...smallFile, nodes: smallFile.nodes.map((n, i) => (i === 0 ? { ...n, feature_type: "attention head" } : n)) }), /feature_type "attention head"/],
      [JSON.stringify({ ...smallFile, links: [...smallFile.links, { source: "nope", target: smallFile.links[0].target, weight: 1 }] }), /"nope".*no node of the graph/],
      [JSON.stringify({ ...smallFile, links: [{ ...smallFile.links[0], weight: "big" }] }), /has weight "big"/],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => parseGraphFile(text, "bad.json"), (e: unknown) => e instanceof GraphFileError && message.test(e.message) && /loupe trace/.test(e.message), text.slice(0, 60));
    }
  });

  it("names values whose toString is not a function instead of throwing (a fuzz crash)", () => {
    const hostile = { ...smallFile, metadata: { ...smallFile.metadata, prompt_tokens: [{ toString: 1 }] }, links: [{ source: { toString: 1 }, target: "x", weight: 1 }] };
    assert.throws(() => parseGraphFile(JSON.stringify(hostile), "bad.json"), (e: unknown) => e instanceof GraphFileError && /toString/.test(e.message));
  });

  it("round-trips pins and supernodes through qParams in circuit-tracer's shape, dropping unknown ids", () => {
    const [a, b, c] = parsed.nodes.map((n) => n.id);
    const q = withSubgraph(parsed, [a, b, "ghost", a], [{ label: "say Leo", members: [b, c, "ghost"] }, { label: "empty", members: ["ghost"] }], c);
    assert.deepEqual(q.pinnedIds, [a, b]);
    assert.deepEqual(q.supernodes, [["say Leo", b, c]]);
    assert.equal(q.clickedId, c);
    const saved = { ...smallFile, qParams: q };
    const reread = parseGraphFile(JSON.stringify(saved), "saved.json");
    assert.deepEqual(reread.qParams, q);
    assert.deepEqual(reread.qParams.supernodes.map(supernodeOf), [{ label: "say Leo", members: [b, c] }]);
    assert.deepEqual(parseQParams({ pinnedIds: [1, "x"], supernodes: [["only label"], ["l", "x"]], linkType: 3 }), { pinnedIds: ["x"], supernodes: [["l", "x"]], linkType: "both", clickedId: "", sg_pos: "" });
  });

  it("gives a node's inputs and outputs with the shares from features, errors and tokens", () => {
    const logit = parsed.nodes.findIndex((n) => n.isTarget);
    const { inputs } = nodeLinks(parsed, logit);
    assert.ok(inputs.length > 0);
    assert.ok(inputs.every((k, i) => i === 0 || Math.abs(parsed.links[inputs[i - 1]].weight) >= Math.abs(parsed.links[k].weight)), "strongest first");
    const shares = linkShares(parsed, inputs, "source");
    let features = 0;
    let errors = 0;
    let tokens = 0;
    for (const k of inputs) {
      const w = Math.abs(parsed.links[k].weight);
      const kind = parsed.nodes[parsed.links[k].source].kind;
      if (kind === "feature") features += w;
      if (kind === "error") errors += w;
      if (kind === "embedding") tokens += w;
    }
    const total = features + errors + tokens;
    assert.ok(Math.abs(shares.features - features / total) < 1e-12 && Math.abs(shares.errors - errors / total) < 1e-12 && Math.abs(shares.tokens - tokens / total) < 1e-12);
    assert.ok(Math.abs(shares.features + shares.errors + shares.tokens - 1) < 1e-12);
    assert.equal(shares.logits, 0);
    const feature = parsed.nodes.findIndex((n, i) => n.kind === "feature" && parsed.links.some((l) => l.source === i && parsed.nodes[l.target].kind === "logit"));
    const out = linkShares(parsed, nodeLinks(parsed, feature).outputs, "target");
    assert.ok(out.logits > 0 && Math.abs(out.features + out.logits - 1) < 1e-12);
  });
});

describe("circuit panel: live pruning", () => {
  for (const [nodeThreshold, edgeThreshold] of [
    [0.8, 0.98],
    [0.5, 0.9],
    [0.95, 0.995],
  ]) {
    it(`keeps what the core's pruneGraph keeps on the full graph (node ${nodeThreshold}, edge ${edgeThreshold})`, () => {
      const core = pruneGraph(small.adjacency, small.layout, small.targets.map((t) => t.probability), nodeThreshold, edgeThreshold);
      const panel = prunePanelGraph(parsed, nodeThreshold, edgeThreshold);
      const n = core.nodeMask.length;
      const coreNodes = new Set<string>();
      for (let i = 0; i < n; i++) if (core.nodeMask[i]) coreNodes.add(idOf(smallFile, small, i));
      const panelNodes = new Set(parsed.nodes.filter((_, i) => panel.nodes[i]).map((node) => node.id));
      // Features the file left out (no links at all) are never kept by the core either.
      assert.deepEqual([...panelNodes].sort(), [...coreNodes].filter((id) => parsed.nodes.some((node) => node.id === id)).sort());
      const coreLinks = new Set<string>();
      for (let t = 0; t < n; t++) for (let s = 0; s < n; s++) if (core.edgeMask[t * n + s] && core.nodeMask[t] && core.nodeMask[s]) coreLinks.add(`${idOf(smallFile, small, s)}>${idOf(smallFile, small, t)}`);
      const panelLinks = new Set(parsed.links.filter((_, k) => panel.links[k]).map((l) => `${parsed.nodes[l.source].id}>${parsed.nodes[l.target].id}`));
      assert.deepEqual([...panelLinks].sort(), [...coreLinks].sort());
      assert.ok(countShown(panel.nodes) < parsed.nodes.length, "something was pruned");
    });
  }

  it("starts the sliders at 0.8 / 0.98 on a loosely pruned graph, and at 1 (the file as saved) on one pruned at 0.8 or tighter", () => {
    const at = (node_threshold: number) => initialThresholds({ ...parsed, metadata: { ...parsed.metadata, node_threshold } });
    assert.deepEqual(at(0.95), { node: 0.8, edge: 0.98 });
    assert.deepEqual(at(0.8), { node: 1, edge: 1 });
    assert.deepEqual(at(0.6), { node: 1, edge: 1 });
    // At 1 a graph whose every node reaches the logits shows whole.
    const all = prunePanelGraph(parsed, 1, 1);
    assert.equal(countShown(all.nodes), parsed.nodes.length);
    assert.equal(countShown(all.links), parsed.links.length);
  });

  it("shows fewer nodes and links as the thresholds tighten, and always the tokens and logits", () => {
    const loose = prunePanelGraph(parsed, 0.95, 0.99);
    const tight = prunePanelGraph(parsed, 0.4, 0.8);
    assert.ok(countShown(tight.nodes) < countShown(loose.nodes));
    assert.ok(countShown(tight.links) < countShown(loose.links));
    parsed.nodes.forEach((node, i) => {
      if (node.kind === "embedding" || node.kind === "logit") assert.equal(tight.nodes[i], 1);
      if (!tight.nodes[i]) return;
      // Every link shown joins two shown nodes.
    });
    parsed.links.forEach((l, k) => tight.links[k] && assert.ok(tight.nodes[l.source] && tight.nodes[l.target]));
  });
});

describe("circuit panel: layout, hit-testing and keyboard", () => {
  const shown = prunePanelGraph(parsed, 0.95, 0.99).nodes;
  const layout = layoutGraph(parsed, shown);

  it("puts each shown node in its cell, none on top of another, and leaves pruned ones out", () => {
    const seen = new Set<string>();
    parsed.nodes.forEach((node, i) => {
      if (!shown[i]) return assert.ok(Number.isNaN(layout.x[i]));
      const cell = cellAt(layout, parsed.rows, parsed.tokens.length, layout.x[i], layout.y[i]);
      assert.deepEqual(cell, { row: node.row, pos: node.pos }, node.id);
      const key = `${layout.x[i].toFixed(3)},${layout.y[i].toFixed(3)}`;
      assert.ok(!seen.has(key), `two nodes at ${key}`);
      seen.add(key);
    });
    // Logits above the last layer, tokens below the first.
    const logit = parsed.nodes.findIndex((n) => n.kind === "logit");
    const token = parsed.nodes.findIndex((n) => n.kind === "embedding");
    assert.ok(layout.y[logit] < layout.y[token]);
  });

  it("finds the node under a click through any pan and zoom, and nothing on an empty spot", () => {
    const index = new NodeIndex(layout, shown);
    const view = zoomAt(zoomAt(fitView(layout, 800, 500), 3, 120, 80), 0.7, 400, 300);
    parsed.nodes.forEach((_, i) => {
      if (!shown[i]) return;
      const screen = toScreen(view, layout.x[i], layout.y[i]);
      const world = toWorld(view, screen.x + 1, screen.y - 1);
      assert.equal(index.nearest(world.x, world.y, 4), i);
    });
    assert.equal(index.nearest(-500, -500, 8), -1);
  });

  it("zooms about the pointer: the world point under it stays put", () => {
    const view = { scale: 1.3, offsetX: 40, offsetY: -12 };
    const before = toWorld(view, 210, 95);
    const after = toWorld(zoomAt(view, 2.5, 210, 95), 210, 95);
    assert.ok(Math.abs(before.x - after.x) < 1e-9 && Math.abs(before.y - after.y) < 1e-9);
  });

  it("moves with the arrows to a node in that direction", () => {
    const start = neighbour(parsed, layout, shown, -1, "up");
    assert.ok(parsed.nodes[start].isTarget, "starts at the target logit");
    const down = neighbour(parsed, layout, shown, start, "down");
    assert.ok(down !== start && layout.y[down] > layout.y[start]);
    const left = neighbour(parsed, layout, shown, down, "left");
    if (left !== down) assert.ok(layout.x[left] < layout.x[down]);
    const right = neighbour(parsed, layout, shown, down, "right");
    if (right !== down) assert.ok(layout.x[right] > layout.x[down]);
  });

  it("announces the node the keyboard reaches: its label, layer, token and its links at the thresholds shown", () => {
    const links = prunePanelGraph(parsed, 0.95, 0.99).links;
    const index = parsed.nodes.findIndex((n, i) => n.kind === "feature" && shown[i] && nodeLinks(parsed, i, links).inputs.length > 1 && nodeLinks(parsed, i).inputs.length > nodeLinks(parsed, i, links).inputs.length);
    assert.ok(index >= 0);
    const node = parsed.nodes[index];
    const { inputs, outputs } = nodeLinks(parsed, index, links);
    const text = nodeAnnouncement(parsed, index, links);
    assert.ok(text.startsWith(`${node.label}: feature, layer ${node.row - 1}, token ${JSON.stringify(parsed.tokens[node.pos])}@${node.pos}, feature ${node.feature}`), text);
    assert.ok(text.endsWith(`; ${inputs.length} input links, ${outputs.length} output link${outputs.length === 1 ? "" : "s"}.`), text);
    // Looser thresholds show more links, and the announcement counts them.
    assert.notEqual(nodeAnnouncement(parsed, index), text);
  });
});

describe("circuit panel: messages", () => {
  const feature = parsed.nodes.find((n) => n.kind === "feature")!;
  const error = parsed.nodes.find((n) => n.kind === "error")!;
  const q = withSubgraph(parsed, [feature.id], [{ label: "group", members: [feature.id, error.id] }], feature.id);

  it("accepts well-formed requests about nodes of the graph", () => {
    assert.deepEqual(parseCircuitPanelRequest({ type: "ready" }, null), { type: "ready" });
    assert.deepEqual(parseCircuitPanelRequest({ type: "reveal", pos: 4 }, parsed), { type: "reveal", pos: 4 });
    assert.deepEqual(parseCircuitPanelRequest({ type: "check", nodeIds: [feature.id, feature.id], kind: "zero" }, parsed), { type: "check", nodeIds: [feature.id], kind: "zero" });
    assert.deepEqual(parseCircuitPanelRequest({ type: "check", nodeIds: [feature.id], kind: "scale", factor: 0.5 }, parsed), { type: "check", nodeIds: [feature.id], kind: "scale", factor: 0.5 });
    assert.deepEqual(parseCircuitPanelRequest({ type: "save", qParams: q }, parsed), { type: "save", qParams: q });
    assert.deepEqual(parseCircuitPanelRequest({ type: "export", qParams: q }, parsed), { type: "export", qParams: q });
    assert.deepEqual(parseCircuitPanelRequest({ type: "feature", nodeId: feature.id }, parsed), { type: "feature", nodeId: feature.id });
  });

  it("ignores anything else: unknown nodes, non-features to Check, bad numbers, no graph", () => {
    const bad: unknown[] = [
      null,
      "reveal",
      { type: "ready", extra: 1 },
      { type: "reveal", pos: 5 },
      { type: "reveal", pos: -1 },
      { type: "reveal", pos: 1.5 },
      { type: "check", nodeIds: [], kind: "zero" },
      { type: "check", nodeIds: [error.id], kind: "zero" },
      { type: "check", nodeIds: ["ghost"], kind: "zero" },
      { type: "check", nodeIds: [feature.id], kind: "scale" },
      { type: "check", nodeIds: [feature.id], kind: "scale", factor: Number.NaN },
      { type: "check", nodeIds: [feature.id], kind: "set", factor: 1 },
      { type: "save", qParams: { ...q, pinnedIds: ["ghost"] } },
      { type: "save", qParams: { ...q, supernodes: [["label only"]] } },
      { type: "save", qParams: { ...q, clickedId: "ghost" } },
      { type: "save" },
      { type: "feature", nodeId: error.id },
      { type: "feature", nodeId: feature.id, extra: true },
      { type: "open", path: "/etc/passwd" },
    ];
    for (const message of bad) assert.equal(parseCircuitPanelRequest(message, parsed), null, JSON.stringify(message));
    assert.equal(parseCircuitPanelRequest({ type: "reveal", pos: 0 }, null), null);
  });

  it("turns checked nodes into the core's feature edits and `loupe intervene` options", () => {
    const edits = featureEdits(parsed, [feature.id], "scale", 0.5);
    assert.deepEqual(edits, [{ layer: feature.row - 1, pos: feature.pos, feature: feature.feature, kind: "scale", value: 0.5 }]);
    assert.equal(feature.id, `${edits[0].layer}_${edits[0].feature}_${edits[0].pos}`);
    assert.equal(interveneArguments([...edits, { ...edits[0], kind: "zero", value: undefined }]), `--scale ${edits[0].layer}/${edits[0].feature}@${edits[0].pos}=0.5 --zero ${edits[0].layer}/${edits[0].feature}@${edits[0].pos}`);
  });

  it("says why Check cannot run a graph of another model or tool", () => {
    assert.equal(checkRefusal(parsed, "reference"), undefined);
    assert.match(checkRefusal(parsed, "smollm2") ?? "", /traced on the model "reference", but "smollm2" is loaded/);
    const foreign = parseGraphFile(JSON.stringify({ ...smallFile, metadata: { ...smallFile.metadata, scan: "gemma-2-2b", info: undefined } }), "g.json");
    assert.match(checkRefusal(foreign, "reference") ?? "", /another tool \(scan "gemma-2-2b"\)/);
  });
});

describe("circuit panel: state updates", () => {
  it("leaves the graph out of an update for the graph the page holds, and sends it for a new one or a failed read", () => {
    const state = { title: "t", graphKey: "3", graph: parsed, canCheck: true };
    assert.equal(stateUpdate(state, "2").graph, parsed, "a new graph goes whole");
    assert.equal(stateUpdate(state, undefined).graph, parsed, "nothing sent yet");
    const update = stateUpdate({ ...state, check: undefined }, "3");
    assert.ok(!("graph" in update), "the page keeps its graph");
    assert.deepEqual({ ...update, graph: parsed }, { ...state, check: undefined });
    assert.equal(stateUpdate({ ...state, graph: null, error: "bad" }, "3").graph, null, "a failed read clears the page's graph");
  });
});

describe("circuit panel: what crosses to the page", () => {
  const state = { title: "t", graphKey: "3", graph: parsed, canCheck: true, status: "s" };

  it("posts the links as typed arrays the page turns back into the same graph", () => {
    const posted = postedState(state);
    const links = posted.graph?.links;
    assert.ok(links && links.source instanceof Int32Array && links.target instanceof Int32Array && links.weight instanceof Float64Array);
    assert.equal(links.source.length, parsed.links.length);
    assert.deepEqual(receivedState(posted), state, "weights exact (f64), every other field kept");
    // What VS Code writes as JSON (typed arrays go as bytes beside it): no per-link text.
    const json = JSON.stringify(posted, (_key, value: unknown) => (ArrayBuffer.isView(value) ? "<bytes>" : value));
    assert.equal(json.split('"weight":').length - 1, 1, "one key for all the weights");
    assert.ok(json.length < JSON.stringify(state).length - JSON.stringify(parsed.links).length + 100);
  });

  it("leaves an update without a graph, and a failed read's null graph, as they are", () => {
    const update = stateUpdate(state, "3");
    assert.deepEqual(receivedState(postedState(update)), update);
    assert.ok(!("graph" in postedState(update)));
    assert.equal(postedState({ ...state, graph: null, error: "bad" }).graph, null);
  });

  it("refuses packed links whose arrays disagree in length", () => {
    assert.throws(() => unpackLinks({ source: new Int32Array(2), target: new Int32Array(1), weight: new Float64Array(2) }), /disagree in length \(2, 1, 2\)/);
  });
});

describe("circuit panel: a trace in progress", () => {
  it("says a trace is running, and, once cancelled or failed, says that instead (never \"Tracing…\" forever)", () => {
    assert.match(traceStatus({ kind: "tracing", prompt: "ioi.txt" }, false), /^Tracing the next token of ioi\.txt…$/);
    assert.match(traceStatus({ kind: "tracing", prompt: "ioi.txt" }, true), /previous one until it is done/);
    for (const showing of [false, true]) {
      const cancelled = traceStatus({ kind: "cancelled" }, showing);
      const failed = traceStatus({ kind: "failed", reason: "Loupe: out of memory." }, showing);
      assert.match(cancelled, /^The trace was cancelled\./);
      assert.match(failed, /^The trace failed: Loupe: out of memory\./);
      for (const text of [cancelled, failed]) assert.ok(!/Tracing/.test(text), text);
      assert.equal(/previous one/.test(cancelled), showing, "says the graph on show is the old one only when there is one");
    }
  });
});

describe("circuit panel: id clashes", () => {
  it("reads a file whose error id equals a layer-0 feature's (circuit-tracer's ids allow it), saying so", () => {
    const feature = smallFile.nodes.find((n) => n.feature_type === "cross layer transcoder" && n.layer === "0")!;
    const [, f, pos] = feature.node_id.split("_");
    const errorId = `0_0_${pos}`;
    const rename = (id: string) => (id === errorId ? `0_${f}_${pos}` : id);
    const clash = { ...smallFile, nodes: smallFile.nodes.map((n) => ({ ...n, node_id: rename(n.node_id) })), links: smallFile.links.map((l) => ({ ...l, source: rename(l.source) })) };
    const graph = parseGraphFile(JSON.stringify(clash), "clash.json");
    assert.equal(graph.nodes.length, clash.nodes.length);
    assert.match(graph.warnings.join(), new RegExp(`0_${f}_${pos}.*drawn to the feature`));
    assert.deepEqual(parsed.warnings, []);
  });
});

describe("circuit panel: tokens in the text", () => {
  const withPrompt = (prompt: string, tokens: string[]) => ({ ...parsed, metadata: { ...parsed.metadata, prompt, prompt_tokens: tokens } });
  it("places each prompt token in the prompt, a BOS at [0, 0], and gives up when the tokens do not spell it", async () => {
    const { promptTokenOffsets } = await import("../../../src/core/view/circuit-graph");
    assert.deepEqual(promptTokenOffsets(withPrompt("When Mia", ["When", " Mia"])), [[0, 4], [4, 8]]);
    assert.deepEqual(promptTokenOffsets(withPrompt("When Mia", ["<s>", "When", " Mia"])), [[0, 0], [0, 4], [4, 8]]);
    assert.equal(promptTokenOffsets(withPrompt("When Mia", ["When", " Leo"])), null);
    assert.equal(promptTokenOffsets(withPrompt("When Mia!", ["When", " Mia"])), null);
  });
});
