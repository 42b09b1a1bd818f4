/** Timelines (src/core/timeline.ts): the gaps bench:editor prints. */
import { strict as assert } from "node:assert";
import { timelineGaps } from "../../src/core/timeline";

describe("timeline", () => {
  it("orders hops by time and gives each its gap from the one before and from the start", () => {
    const gaps = timelineGaps(
      [
        { hop: "page drew", at: 1_000.5 },
        { hop: "asked", at: 100 },
        { hop: "worker traced", at: 700 },
      ],
      50,
    );
    assert.deepEqual(gaps, [
      { hop: "asked", sinceLastMs: 50, sinceStartMs: 50 },
      { hop: "worker traced", sinceLastMs: 600, sinceStartMs: 650 },
      { hop: "page drew", sinceLastMs: 300.5, sinceStartMs: 950.5 },
    ]);
  });
});
