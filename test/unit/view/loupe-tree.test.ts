import * as assert from "node:assert/strict";
import { buildLoupeTree, RecentRuns, type LoupeViewState, type RunRecord, type TreeNode } from "../../../src/core/view/loupe-tree";

const base: LoupeViewState = {
  model: { folder: "/ext/models/reference", source: "bundled" },
  sae: { folder: "/ext/models/reference/sae/blocks.1.hook_resid_post", fromSetting: false },
  transcoders: { folder: "/ext/models/reference/transcoders/plt", fromSetting: false },
  graphs: [],
  probes: [],
  recent: [],
};

const section = (tree: readonly TreeNode[], id: string) => tree.find((n) => n.id === id)!;
const run = (document: string, method: string, finishedAt: number, extra: Partial<RunRecord> = {}): RunRecord => ({ document, documentLabel: document.replace("file:///w/", ""), method, elapsedMs: 12.4, finishedAt, ...extra });

describe("the Loupe view's tree", () => {
  it("shows the model, where the choice comes from, its shape once loaded, and the switch and download actions", () => {
    const before = section(buildLoupeTree(base), "model").children!;
    assert.equal(before[0].label, "reference");
    assert.equal(before[0].description, "bundled reference model");
    assert.equal(before[0].contextValue, "loupe.model");
    assert.equal(before[0].children![0].label, "not loaded yet");
    assert.deepEqual(before.slice(1).map((n) => n.action), [
      { command: "loupe.selectModel", title: "Select Model…" },
      { command: "loupe.downloadModel", title: "Download Model…" },
    ]);
    const after = section(buildLoupeTree({ ...base, model: { folder: "C:\\models\\SmolLM2-135M\\", source: "workspace", loaded: { nLayers: 30, dVocab: 49152, nCtx: 8192 } } }), "model").children!;
    assert.equal(after[0].label, "SmolLM2-135M");
    assert.equal(after[0].description, "chosen for this workspace");
    assert.equal(after[0].children![0].label, "30 layers · d_vocab 49152 · n_ctx 8192");
  });

  it("names the dictionaries in use, or why there is none", () => {
    const dictionaries = section(buildLoupeTree({ ...base, sae: { fromSetting: true, problem: "gpt2-small-res-jb/blocks.6.hook_resid_pre is not in the cache: run loupe pull --sae" }, transcoders: { folder: "/w/tc", fromSetting: true, problem: "this folder does not exist" } }), "dictionaries").children!;
    assert.equal(dictionaries[0].description, "gpt2-small-res-jb/blocks.6.hook_resid_pre is not in the cache: run loupe pull --sae");
    assert.equal(dictionaries[0].icon, "circle-slash");
    assert.equal(dictionaries[1].description, "tc");
    assert.equal(dictionaries[1].icon, "warning");
    const shipped = section(buildLoupeTree(base), "dictionaries").children!;
    assert.deepEqual(shipped.map((n) => n.description), ["blocks.1.hook_resid_post", "plt"]);
    assert.match(shipped[0].tooltip!, /shipped with the model/);
  });

  it("lists saved graphs and probes sorted, each opening its file", () => {
    const tree = buildLoupeTree({
      ...base,
      graphs: [
        { relative: ".loupe/graphs/b.json", absolute: "/w/.loupe/graphs/b.json" },
        { relative: ".loupe/graphs/a.json", absolute: "/w/.loupe/graphs/a.json" },
      ],
      probes: [{ relative: ".loupe/probes/sentiment.json", absolute: "/w/.loupe/probes/sentiment.json" }],
    });
    const graphs = section(tree, "graphs").children!;
    assert.deepEqual(graphs.map((n) => n.label), ["a", "b"]);
    assert.deepEqual(graphs[0].action, { openFile: "/w/.loupe/graphs/a.json", title: "Open" });
    assert.equal(section(tree, "probes").children![0].label, "sentiment");
    assert.match(section(buildLoupeTree(base), "graphs").children![0].label, /None in \.loupe\/graphs/);
    assert.match(section(buildLoupeTree({ ...base, noWorkspace: true }), "probes").children![0].label, /Open a folder/);
  });

  it("groups the last results by document, most recent document and result first", () => {
    const recent = section(
      buildLoupeTree({ ...base, recent: [run("file:///w/a.txt", "inspect", 1000), run("file:///w/b.txt", "audit", 2000), run("file:///w/a.txt", "traceCircuit", 3000, { error: "Loupe: no transcoders" })] }),
      "recent",
    ).children!;
    assert.deepEqual(recent.map((n) => n.label), ["a.txt", "b.txt"]);
    assert.deepEqual(recent[0].children!.map((n) => n.label), ["Circuit", "Inspect"]);
    assert.match(recent[0].children![0].description!, /^failed/);
    assert.equal(recent[0].children![0].tooltip, "Loupe: no transcoders");
    assert.match(recent[0].children![1].description!, /^12 ms · \d\d:\d\d$/);
    assert.deepEqual(recent[0].action, { openUri: "file:///w/a.txt", title: "Open" });
    assert.deepEqual(section(buildLoupeTree(base), "recent").children![0].action, { command: "loupe.inspectSelection", title: "Inspect Selection" });
  });

  it("gives every node a unique id", () => {
    const tree = buildLoupeTree({ ...base, graphs: [{ relative: "g.json", absolute: "/g.json" }], recent: [run("file:///w/a.txt", "inspect", 1), run("file:///w/a.txt", "audit", 2)] });
    const ids: string[] = [];
    const walk = (nodes: readonly TreeNode[]) => nodes.forEach((n) => (ids.push(n.id), walk(n.children ?? [])));
    walk(tree);
    assert.equal(new Set(ids).size, ids.length);
  });
});

describe("RecentRuns", () => {
  it("keeps one record per command and document, the rerun replacing the earlier one", () => {
    const runs = new RecentRuns();
    runs.record(run("file:///w/a.txt", "inspect", 1));
    runs.record(run("file:///w/a.txt", "audit", 2));
    runs.record(run("file:///w/a.txt", "inspect", 3, { elapsedMs: 99 }));
    assert.deepEqual(runs.list().map((r) => [r.method, r.finishedAt]), [["audit", 2], ["inspect", 3]]);
  });

  it("forgets the least recently used documents past its cap", () => {
    const runs = new RecentRuns(2);
    runs.record(run("file:///w/a.txt", "inspect", 1));
    runs.record(run("file:///w/b.txt", "inspect", 2));
    runs.record(run("file:///w/a.txt", "audit", 3));
    runs.record(run("file:///w/c.txt", "inspect", 4));
    assert.deepEqual([...new Set(runs.list().map((r) => r.documentLabel))].sort(), ["a.txt", "c.txt"]);
  });
});
