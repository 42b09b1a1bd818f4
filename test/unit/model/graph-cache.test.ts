import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { builderSourceHash, cachedGraph, GRAPH_BUILDER_ENTRY, graphBuilderId, graphKey, STALE_GRAPH_MS } from "../../../src/core/model/graph-cache";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const CORE = path.join(__dirname, "..", "..", "..", "src", "core");

describe("The built-graph cache is keyed on what built the graph", () => {
  it("names the package version and hashes the builder's modules as they are now", () => {
    const version = (JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "..", "package.json"), "utf8")) as { version: string }).version;
    assert.match(graphBuilderId(), new RegExp(`^${version.replace(/\./g, "\\.")}\\+[0-9a-f]{16}$`));
    assert.equal(graphBuilderId().split("+")[1], builderSourceHash(GRAPH_BUILDER_ENTRY));
  });

  it("changes the key when a builder module changes, and only then", () => {
    const copy = scratchDir("builder-source");
    fs.cpSync(CORE, copy, { recursive: true });
    const entry = path.join(copy, "model", "build-graph.ts");
    const before = builderSourceHash(entry);
    // A module the builder does not import (the KV cache runs graphs, it does not build them).
    fs.appendFileSync(path.join(copy, "model", "kv-cache.ts"), "\n// unrelated edit\n");
    assert.equal(builderSourceHash(entry), before);
    // A module two imports away from the entry: build-graph -> gpt2-graph -> weight-table.
    fs.appendFileSync(path.join(copy, "model", "weight-table.ts"), "\n// a builder edit\n");
    const after = builderSourceHash(entry);
    assert.notEqual(after, before);
    assert.notEqual(graphKey(["model", "cfg"], `0.1.0+${after}`), graphKey(["model", "cfg"], `0.1.0+${before}`));
  });

  it("does not reuse a graph another builder cached, and removes such entries once unused for a day", async () => {
    const cacheDir = scratchDir("graph-cache");
    const first = await HookedModel.load(TINY_GPT2, { cacheDir, threads: 1 });
    // The lens graph is built at the first lens call.
    await first.lens(new Float32Array(first.cfg.dModel), [[0]], 1);
    await first.dispose();
    const second = await HookedModel.load(TINY_GPT2, { cacheDir, threads: 1 });
    await second.dispose();
    assert.ok(!first.graphFromCache && second.graphFromCache, "the same builder reuses its graph");
    const graphs = path.join(cacheDir, "graphs");
    const ours = fs.readdirSync(graphs);
    assert.equal(ours.length, 2, "the model graph and the lens graph");

    // The same config and weights under another builder: built again, not read back.
    const parts = ["model", "same config and weights"];
    const other = scratchDir("graph-cache-other");
    cachedGraph(other, graphKey(parts, "0.1.0+aaaaaaaaaaaaaaaa"), () => Uint8Array.of(1));
    const rebuilt = cachedGraph(other, graphKey(parts, "0.1.0+bbbbbbbbbbbbbbbb"), () => Uint8Array.of(2));
    assert.ok(!rebuilt.fromCache);
    assert.deepEqual([...rebuilt.bytes], [2]);

    const oldKey = graphKey(["model", "cfg"], "0.0.1+0123456789abcdef");
    // Another builder's entries: one unused for two days, one in use an hour ago; and a key from before builder tags.
    const stale = path.join(graphs, `${oldKey}.onnx`);
    const recent = path.join(graphs, `${graphKey(["lens"], "0.0.2+0123456789abcdef")}.onnx`);
    const untagged = path.join(graphs, `${"f".repeat(64)}.onnx`);
    for (const [file, hoursAgo] of [[stale, 48], [recent, 1], [untagged, 30]] as const) {
      fs.writeFileSync(file, "old graph");
      const when = new Date(Date.now() - hoursAgo * 3600 * 1000);
      fs.utimesSync(file, when, when);
    }
    assert.ok(48 * 3600 * 1000 > STALE_GRAPH_MS && 3600 * 1000 < STALE_GRAPH_MS);
    // Our own entries are old too: in use, they are kept.
    for (const f of ours) fs.utimesSync(path.join(graphs, f), new Date(0), new Date(0));
    const third = await HookedModel.load(TINY_GPT2, { cacheDir, threads: 1 });
    await third.dispose();
    assert.ok(third.graphFromCache);
    assert.ok(!fs.existsSync(stale) && !fs.existsSync(untagged), "stale entries of other builders are removed");
    assert.ok(fs.existsSync(recent), "an entry another install used an hour ago stays");
    for (const f of ours) assert.ok(fs.existsSync(path.join(graphs, f)), f);
  });
});
