import { strict as assert } from "node:assert";
import type { AttributionResult } from "../../../src/core/patching";
import { attributionHoverMarkdown, attributionLevels, lineLabel } from "../../../src/core/view/attribution-view";
import { LEVELS } from "../../../src/core/view/lenses";

const text = "Mia and Leo\nLeo gave it to";
const tok = (index: number, start: number, end: number, attribution: number | null) => ({ index, id: index, text: text.slice(start, end), start, end, attribution });
const result: AttributionResult = {
  text,
  method: "mask",
  baseline: null,
  answer: { ids: [5], text: " Mia", logprob: -0.5, isTop: true },
  contrast: null,
  tokens: [tok(0, 0, 3, 2), tok(1, 3, 7, -0.3), tok(2, 7, 11, 0.5), tok(3, 11, 12, 0), tok(4, 12, 15, 1), tok(5, 15, 26, null)],
  words: [{ start: 0, end: 3, tokens: [0], attribution: 2 } as never, { start: 8, end: 11, tokens: [2], attribution: 0.5 } as never],
  lines: [{ start: 0, end: 11, tokens: [0, 1, 2], attribution: 2.4 } as never, { start: 12, end: 26, tokens: [4, 5], attribution: -0.2 } as never],
  calls: 2,
  elapsedMs: 10,
};

describe("attribution view", () => {
  it("colours only supporting tokens, the strongest at full strength", () => {
    assert.deepEqual(attributionLevels(result), [
      { index: 0, level: LEVELS },
      { index: 2, level: Math.ceil(0.25 * LEVELS) },
      { index: 4, level: Math.ceil(0.5 * LEVELS) },
    ]);
    assert.deepEqual(attributionLevels({ ...result, tokens: result.tokens.map((t) => ({ ...t, attribution: -1 })) }), []);
  });

  it("labels lines with signed nats and explains a token in its hover", () => {
    assert.equal(lineLabel(result, 0), "    line: +2.40 nats");
    assert.equal(lineLabel(result, 1), "    line: −0.20 nats");
    assert.equal(lineLabel(result, 2), null);
    const hover = attributionHoverMarkdown(result.tokens[0], result);
    assert.match(hover, /\*\*Attribution to ` Mia`\*\* \(log p = -0\.50, the model's top prediction\)/);
    assert.match(hover, /\| token `Mia` \| \+2\.00 \|/);
    assert.match(hover, /\| word `Mia` \| \+2\.00 \|/);
    assert.match(hover, /\| this line \| \+2\.40 \|/);
    assert.match(attributionHoverMarkdown(result.tokens[5], result), /cannot be removed/);
    // " Leo" starts at its space, before its word: still found, as are its line and value.
    const spaced = attributionHoverMarkdown(result.tokens[2], result);
    assert.match(spaced, /\| word `Leo` \| \+0\.50 \|/);
    assert.match(spaced, /\| this line \| \+2\.40 \|/);
    assert.match(hover, /Δ log p\(answer\)/);
  });

  it("says so when the attribution is of a logit difference against a contrast", () => {
    const contrasted = { ...result, contrast: { id: 6, text: " Leo", logitDiff: 3.25 } };
    const hover = attributionHoverMarkdown(contrasted.tokens[0], contrasted);
    assert.match(hover, /\*\*Attribution to ` Mia` over ` Leo`\*\* \(logit difference 3\.25\)/);
    assert.match(hover, /Δ logit difference/);
    assert.doesNotMatch(hover, /log p/);
  });
});
