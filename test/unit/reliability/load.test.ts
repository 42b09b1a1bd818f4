/**
 * 1,000 consecutive inspections in one process on the reference model: retained heap and RSS must
 * stay flat (test/reliability/load.ts; the reliability bench runs the same). Prints the curve.
 */
import { strict as assert } from "node:assert";
import type { InspectResult } from "../../../src/core/inspect";
import { formatCurve, LOAD_BOUNDS, runLoad } from "../../reliability/load";

describe("load", function () {
  this.timeout(300_000);

  it("1,000 inspections keep memory within bounds", async () => {
    const report = await runLoad({ runs: 1000, every: 100 });
    console.log(`${formatCurve(report.samples)}\n  ${report.msPerRun.toFixed(1)} ms per inspection`);
    assert.equal(report.samples.length, 11, "a sample every 100 runs, plus the baseline");
    assert.ok(report.heapGrowthMb < LOAD_BOUNDS.heapGrowthMb, `heap grew ${report.heapGrowthMb.toFixed(1)} MB`);
    assert.ok(report.rssGrowthMb < LOAD_BOUNDS.rssGrowthMb, `RSS grew ${report.rssGrowthMb.toFixed(1)} MB`);
    assert.ok(report.lateRssGrowthMb < LOAD_BOUNDS.lateRssGrowthMb, `RSS grew ${report.lateRssGrowthMb.toFixed(1)} MB over the second half`);
  });

  it("the monitor catches a deliberate leak (every result kept)", async () => {
    const kept: InspectResult[] = [];
    const report = await runLoad({ runs: 200, every: 100, onResult: (r) => kept.push(r) });
    assert.equal(kept.length, 200);
    assert.ok(report.heapGrowthMb > LOAD_BOUNDS.heapGrowthMb, `keeping 200 results grew the heap by only ${report.heapGrowthMb.toFixed(1)} MB`);
  });
});
