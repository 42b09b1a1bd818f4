import { strict as assert } from "node:assert";
import type { CircuitTrace } from "../../../src/core/requests";
import { circuitHoverMarkdown, circuitLevels } from "../../../src/core/view/circuit-view";
import { LEVELS } from "../../../src/core/view/lenses";

const text = "Mia gave it to";
const tok = (start: number, end: number, influence: number) => ({ text: text.slice(start, end), start, end, influence });
const trace: CircuitTrace = {
  transcoders: "/plt",
  tokens: [tok(0, 3, 0.4), tok(3, 8, 0.1), tok(8, 11, 0), tok(11, 14, 0.2)],
  targets: [{ label: " Leo", token: 7, probability: 0.5 }],
  replacementScore: 0.7,
  completenessScore: 0.9,
  paths: [
    { score: 0.3, nodes: ['"Mia"@0', 'L1/4 at " to"@3', 'logit " Leo"'], fromToken: 0 },
    { score: 0.1, nodes: ['" to"@3', 'logit " Leo"'], fromToken: 3 },
  ],
};

describe("circuit view", () => {
  it("colours tokens by influence relative to the strongest, none without influence", () => {
    assert.deepEqual(circuitLevels(trace), [
      { index: 0, level: LEVELS },
      { index: 1, level: Math.ceil(0.25 * LEVELS) },
      { index: 3, level: Math.ceil(0.5 * LEVELS) },
    ]);
    assert.deepEqual(circuitLevels({ ...trace, tokens: trace.tokens.map((t) => ({ ...t, influence: 0 })) }), []);
  });

  it("scales colours and shares by the tokens in the text, not the leading BOS the trace adds", () => {
    const led: CircuitTrace = { ...trace, tokens: [{ text: "<|endoftext|>", start: 0, end: 0, influence: 0.8 }, ...trace.tokens], paths: [] };
    assert.deepEqual(circuitLevels(led), [
      { index: 1, level: LEVELS },
      { index: 2, level: Math.ceil(0.25 * LEVELS) },
      { index: 4, level: Math.ceil(0.5 * LEVELS) },
    ]);
    assert.match(circuitHoverMarkdown(led, 1), /\(57% of the prompt tokens' influence\)/);
  });

  it("hovers with the token's influence, its share, and the paths from it (else all)", () => {
    const hover = circuitHoverMarkdown(trace, 0);
    assert.match(hover, /Circuit influence on ` Leo` \(p = 0\.500\)/);
    assert.match(hover, /influence 0\.4000 \(57% of the prompt tokens' influence\)/);
    assert.match(hover, /paths from this token/);
    assert.ok(hover.includes("0.3000") && !hover.includes("0.1000"), hover);
    const none = circuitHoverMarkdown(trace, 2);
    assert.match(none, /none from this token/);
    assert.ok(none.includes("0.3000") && none.includes("0.1000"));
  });
});
