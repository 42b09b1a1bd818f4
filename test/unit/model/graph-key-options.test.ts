/**
 * Built graphs are cached under a key made of the builder (version and source hash, graph-cache.ts),
 * the options that change the graph (build-graph.ts graphKeyParts), the config and the weights
 * header. graph-cache.test.ts checks the builder part; this checks the options part.
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { buildModelGraph, graphKeyParts } from "../../../src/core/model/build-graph";
import { openModelFolder } from "../../../src/core/model/model-folder";
import { FIXTURES } from "../../helpers/fixtures";

describe("graph cache keys follow the options that change a graph", () => {
  it("an option that changes the graph changes the key; one that does not, does not", () => {
    const llama = openModelFolder(path.join(FIXTURES, "tiny-llama"));
    const gpt2 = openModelFolder(path.join(FIXTURES, "tiny-gpt2"));
    const ungrouped = { ungroupGroupedQueryAttention: true };
    assert.notDeepEqual(graphKeyParts(llama.cfg, "model", ungrouped), graphKeyParts(llama.cfg, "model", {}));
    assert.notDeepEqual(buildModelGraph(llama.cfg, llama.weights, ungrouped).bytes, buildModelGraph(llama.cfg, llama.weights).bytes);
    // GPT-2 has no grouped heads and the lens no key/value hooks: the same graph, the same key.
    assert.deepEqual(graphKeyParts(gpt2.cfg, "model", ungrouped), graphKeyParts(gpt2.cfg, "model", {}));
    assert.deepEqual(buildModelGraph(gpt2.cfg, gpt2.weights, ungrouped).bytes, buildModelGraph(gpt2.cfg, gpt2.weights).bytes);
    assert.deepEqual(graphKeyParts(llama.cfg, "lens", ungrouped), graphKeyParts(llama.cfg, "lens", {}));
  });
});
