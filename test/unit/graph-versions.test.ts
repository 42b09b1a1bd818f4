/**
 * Built graphs are cached under a key made of the builder's version, the options that change the
 * graph, the config and the weights header (build-graph.ts graphKeyParts), not of the graph's own
 * bytes. So a builder that changes what it builds must bump its version, or a stale cached graph
 * would be reused. This test fingerprints each fixture's graphs under the version in force and fails
 * when the bytes change while the version stays.
 */
import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { buildLensGraph, buildModelGraph, graphKeyParts } from "../../src/core/model/build-graph";
import type { GraphOptions } from "../../src/core/model/graph-options";
import { openModelFolder } from "../../src/core/model/model-folder";
import { FIXTURES } from "../helpers/fixtures";

/** sha256 (first 16 hex digits) of each built graph, by fixture and cache-key parts. */
const FINGERPRINTS: Record<string, string> = {
  "tiny-gpt2 gpt2-v2:model": "83f14f094d958302",
  "tiny-gpt2 gpt2-v2:lens": "a574ac0447325bd7",
  "tiny-llama llama-v3:model": "cf7a7f0adf91e55c",
  "tiny-llama llama-v3:model+ungrouped-key-value-hooks": "d5dd1d65b94f9057",
  "tiny-llama llama-v3:lens": "f66e3b338f7d1b6e",
  "tiny-qwen2 llama-v3:model": "e2b4c67f5c3195f9",
  "tiny-qwen2 llama-v3:model+ungrouped-key-value-hooks": "ec261dacc4508c18",
  "tiny-qwen2 llama-v3:lens": "0a686924badd0ace",
  "tiny-qwen3 llama-v3:model": "1f5ea0ad0c653102",
  "tiny-qwen3 llama-v3:model+ungrouped-key-value-hooks": "f0a65a091f587e54",
  "tiny-qwen3 llama-v3:lens": "354c1d896d1e04bf",
  "tiny-gemma3 llama-v3:model": "357a3c30bea7197f",
  "tiny-gemma3 llama-v3:model+ungrouped-key-value-hooks": "4895b78cb81ef90d",
  "tiny-gemma3 llama-v3:lens": "183f5e31fb8ca4ba",
};

describe("graph cache keys follow what the builders build", () => {
  const variants: Array<[string, GraphOptions]> = [
    ["default", {}],
    ["ungrouped", { ungroupGroupedQueryAttention: true }],
  ];
  for (const fixture of ["tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3"]) {
    it(`${fixture}: every graph's bytes are the ones recorded for its cache key`, () => {
      const { cfg, weights } = openModelFolder(path.join(FIXTURES, fixture));
      for (const [, options] of variants) {
        for (const part of ["model", "lens"] as const) {
          const bytes = part === "model" ? buildModelGraph(cfg, weights, options).bytes : buildLensGraph(cfg, weights, options);
          const key = `${fixture} ${graphKeyParts(cfg, part, options).join("+")}`;
          const fingerprint = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
          assert.equal(
            fingerprint,
            FINGERPRINTS[key],
            `The ${key} graph changed (fingerprint ${fingerprint}). Bump its version in GRAPH_VERSIONS (src/core/model/build-graph.ts), then record the new fingerprint here.`,
          );
        }
      }
    });
  }

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
