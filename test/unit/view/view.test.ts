import { strict as assert } from "node:assert";
import type { InspectResult, TokenReport } from "../../../src/core/inspect";
import { displayToken, tokenHoverMarkdown } from "../../../src/core/view/hover-text";
import { codeSpan } from "../../../src/core/view/markdown";
import { LEVELS, lensValue, parseLens, tokenLevels } from "../../../src/core/view/lenses";
import { trackEdit } from "../../../src/core/view/range-tracking";
import { checkInspectable } from "../../../src/core/view/selection-checks";

function token(index: number, surprisal: number | null, entropy: number, agreement: number[]): TokenReport {
  return {
    index,
    id: index,
    text: ` t${index}`,
    start: index * 3,
    end: index * 3 + 3,
    surprisal,
    entropy,
    top: [{ id: 1, text: " a|b", prob: 0.5 }],
    residNorm: agreement.map((_, l) => 10 + l),
    lens: agreement.map((a) => ({ top: { id: 2, text: "x", prob: 0.3 }, nextTokenProb: 0.1, agreement: a })),
  };
}

const result: InspectResult = {
  modelFolder: "/m",
  nLayers: 2,
  text: " t0 t1 t2 t3",
  tokens: [token(0, null, 1, [0.1, 0.9]), token(1, 6, 2, [0.2, 0.8]), token(2, 12, 0, [0, 1]), token(3, 3, 4, [0.5, 0.5])],
  windows: 1,
  reusedWindows: 0,
  elapsedMs: 1,
};

describe("lenses", () => {
  it("parses lens ids and rejects layers the model does not have", () => {
    assert.deepEqual(parseLens("surprisal"), { kind: "surprisal" });
    assert.deepEqual(parseLens("logit-lens:1", 2), { kind: "logit-lens", layer: 1 });
    assert.equal(parseLens("logit-lens:2", 2), undefined);
    assert.equal(parseLens("nonsense"), undefined);
  });

  it("reads each lens's value from the right field", () => {
    assert.equal(lensValue(result.tokens[1], { kind: "surprisal" }), 6);
    assert.equal(lensValue(result.tokens[1], { kind: "entropy" }), 2);
    assert.equal(lensValue(result.tokens[1], { kind: "logit-lens", layer: 0 }), 0.2);
  });

  it("gives the strongest token full colour under the relative scale and skips tokens with no value", () => {
    const levels = tokenLevels(result, { kind: "surprisal" }, "relative", 320);
    assert.deepEqual(levels.map((l) => l.index), [1, 2, 3]);
    assert.equal(levels.find((l) => l.index === 2)?.level, LEVELS);
    assert.equal(levels.find((l) => l.index === 1)?.level, LEVELS / 2);
    assert.equal(levels.find((l) => l.index === 3)?.level, Math.ceil(LEVELS / 4));
  });

  it("uses fixed ranges under the absolute scale", () => {
    const levels = tokenLevels(result, { kind: "surprisal" }, "absolute", 320);
    // 12 bits of 15 -> level ceil(0.8 * 6) = 5.
    assert.equal(levels.find((l) => l.index === 2)?.level, 5);
    const lens = tokenLevels(result, { kind: "logit-lens", layer: 1 }, "absolute", 320);
    assert.equal(lens.find((l) => l.index === 2)?.level, LEVELS);
  });
});

describe("range tracking", () => {
  const range = { start: 10, length: 5, stale: false };
  it("shifts the range for edits before it, including typing right before it", () => {
    assert.deepEqual(trackEdit(range, { offset: 2, removedLength: 0, insertedLength: 3 }), { start: 13, length: 5, stale: false });
    assert.deepEqual(trackEdit(range, { offset: 10, removedLength: 0, insertedLength: 1 }), { start: 11, length: 5, stale: false });
    assert.deepEqual(trackEdit(range, { offset: 4, removedLength: 6, insertedLength: 0 }), { start: 4, length: 5, stale: false });
  });
  it("ignores edits after it, including typing right after it", () => {
    assert.deepEqual(trackEdit(range, { offset: 15, removedLength: 0, insertedLength: 4 }), range);
    assert.deepEqual(trackEdit(range, { offset: 30, removedLength: 2, insertedLength: 0 }), range);
  });
  it("marks the range stale for edits inside it and follows its new length", () => {
    assert.deepEqual(trackEdit(range, { offset: 12, removedLength: 1, insertedLength: 4 }), { start: 10, length: 8, stale: true });
    assert.deepEqual(trackEdit(range, { offset: 8, removedLength: 4, insertedLength: 0 }), { start: 8, length: 3, stale: true });
    assert.deepEqual(trackEdit(range, { offset: 14, removedLength: 6, insertedLength: 1 }), { start: 10, length: 5, stale: true });
  });
});

describe("selection checks", () => {
  it("explains empty, binary and oversized selections", () => {
    assert.equal(checkInspectable("  \n", 100, false)?.kind, "empty");
    assert.match(checkInspectable("", 100, true)?.message ?? "", /document is empty/);
    assert.equal(checkInspectable("abc\u0000def", 100, false)?.kind, "binary");
    const huge = checkInspectable("x".repeat(100_000), 1024, true);
    assert.equal(huge?.kind, "too-long");
    assert.match(huge?.message ?? "", /100,000 characters.*loupe\.maxTokens/);
    assert.equal(checkInspectable("Hello world", 100, false), undefined);
  });
});

describe("hover text", () => {
  it("escapes Markdown in tokens and lists predictions and the per-block lens", () => {
    assert.equal(displayToken(" *a*"), "·\\*a\\*");
    const md = tokenHoverMarkdown(result.tokens[1]);
    assert.match(md, /surprisal \*\*6\.00 bits\*\*/);
    assert.match(md, /\| ·a\\\|b \| 50\.0% \|/);
    assert.equal((md.match(/^\| [01] \| x \|/gm) ?? []).length, 2, "one lens row per block");
  });
});

describe("markdown code spans", () => {
  it("fence text so that no backtick inside closes the span early", () => {
    assert.equal(codeSpan('"a"'), '`"a"`');
    assert.equal(codeSpan("a`b"), "``a`b``");
    assert.equal(codeSpan("x``y`"), "``` x``y` ```");
    assert.equal(codeSpan("`"), "`` ` ``");
  });
});
