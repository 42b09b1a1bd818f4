import { strict as assert } from "node:assert";
import type { ProbeTraining } from "../../../src/core/probes";
import { defaultWatchedLabel, parseProbePanelRequest, probePanelState } from "../../../src/core/view/probe-panel";

function metrics(acc: number, control: number) {
  return {
    rows: 10,
    classCounts: { name: 2, none: 8 },
    classWeights: { name: 2.5, none: 0.625 },
    majorityBaseline: 0.8,
    trainAccuracy: 1,
    cv: { folds: 5, accuracy: acc, balancedAccuracy: acc, foldAccuracy: [acc], confusion: [[2, 0], [1, 7]] },
    control: { folds: 5, accuracy: control, balancedAccuracy: control, foldAccuracy: [control], confusion: [[1, 1], [2, 6]] },
    selectivity: acc - control,
    iterations: 9,
    converged: true,
    warnings: ["Classes are unbalanced"],
  };
}

const training = {
  data: "d.jsonl",
  level: "token",
  concept: "name",
  classes: ["name", "none"],
  best: "blocks.1.hook_resid_post",
  hooks: [
    { hook: "blocks.0.hook_resid_pre", seconds: 1, metrics: metrics(0.8, 0.7) },
    { hook: "blocks.1.hook_resid_post", seconds: 1, metrics: metrics(0.9, 0.6) },
  ],
  probes: {},
} as unknown as ProbeTraining;

describe("probe panel model", () => {
  const state = probePanelState(training, "Probe: name");

  it("lays out one row per hook with accuracy, control and selectivity", () => {
    assert.deepEqual(state.rows.map((r) => [r.hook, r.accuracy, r.control]), [
      ["blocks.0.hook_resid_pre", 0.8, 0.7],
      ["blocks.1.hook_resid_post", 0.9, 0.6],
    ]);
    assert.ok(Math.abs((state.rows[1].selectivity ?? 0) - 0.3) < 1e-12);
    assert.deepEqual(state.confusion["blocks.1.hook_resid_post"], [[2, 0], [1, 7]]);
    assert.deepEqual(state.warnings, ["Classes are unbalanced"]);
    assert.equal(state.best, "blocks.1.hook_resid_post");
  });

  it("accepts only well-formed requests about known hooks and classes", () => {
    assert.deepEqual(parseProbePanelRequest({ type: "apply", hook: "blocks.0.hook_resid_pre", label: "name" }, state), { type: "apply", hook: "blocks.0.hook_resid_pre", label: "name" });
    assert.deepEqual(parseProbePanelRequest({ type: "monitor", hook: "blocks.0.hook_resid_pre", label: "name", threshold: 0.8 }, state)?.type, "monitor");
    for (const bad of [
      null,
      "apply",
      { type: "apply", hook: "blocks.9.hook_resid_pre", label: "name" },
      { type: "apply", hook: "blocks.0.hook_resid_pre", label: "<img src=x onerror=alert(1)>" },
      { type: "monitor", hook: "blocks.0.hook_resid_pre", label: "name", threshold: 7 },
      { type: "monitor", hook: "blocks.0.hook_resid_pre", label: "name", threshold: "0.5" },
      { type: "save", hook: { toString: () => "blocks.0.hook_resid_pre" } },
      { type: "ready", extra: 1 },
      { type: "run", command: "rm -rf /" },
    ]) {
      assert.equal(parseProbePanelRequest(bad, state), null, JSON.stringify(bad));
    }
  });

  it("watches the rarer real class by default", () => {
    assert.equal(defaultWatchedLabel(["name", "none"], { name: 2, none: 8 }), "name");
    assert.equal(defaultWatchedLabel(["negative", "neutral", "positive"], { negative: 5, neutral: 9, positive: 3 }), "positive");
  });
});
