/**
 * The hostile-workspace scenario of `npm run reliability`, checked here on the file system and in
 * words (its timings are the bench's to report): nothing outside the repository changes, none of
 * its files is rewritten, and every hostile path is refused with the file and the fix named.
 */
import { strict as assert } from "node:assert";
import { runHostileWorkspace } from "../../reliability/hostile-workspace";

describe("a hostile workspace", function () {
  // The near-cap files take their time to write and to parse (in the worker) on a busy machine.
  this.timeout(600_000);

  it("every command path leaves the file system as it was and refuses clearly", async () => {
    const report = await runHostileWorkspace({ cli: true });
    assert.deepEqual(report.outsideChanged, []);
    assert.deepEqual(report.workspaceRewritten, []);
    assert.deepEqual(report.unclearRefusals, []);
    const accepted = report.steps.filter((s) => s.result === "ok").map((s) => s.step);
    // Only the near-cap files (valid, so read, by the worker), the settings checks (which pass by
    // ignoring the workspace) and the bounded picker succeed.
    assert.deepEqual(
      accepted.map((step) => step.replace(/\d+ MB/, "N MB")),
      [
        "Feature lens reads a N MB feature-labels.json (worker)",
        "Explore Feature reads a N MB feature-stats.json (worker)",
        "Explore Feature picker on both near-cap files (worker)",
        "Explore Feature picker on cfg.json d_sae 10,000,000",
        "Restricted Mode: loupe.maxModelMemoryMB 0 ignored",
        "Restricted Mode: hint pattern ignored",
      ],
    );
    assert.ok(report.steps.length >= 22);
  });
});
