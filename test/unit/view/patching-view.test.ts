import { strict as assert } from "node:assert";
import type { PatchingResult } from "../../../src/core/patching";
import { isStateMessage, stateMessage } from "../../../src/core/view/panel-protocol";
import { heatmaps, parsePatchingRequest, patchingCsv, patchingPanelState, pngBytes } from "../../../src/core/view/patching-view";

const result = {
  direction: "denoising",
  metric: { kind: "logit-diff", answer: 1, wrong: 2 },
  metricLabel: "logit diff",
  position: 2,
  tokens: { clean: [{ id: 1, text: "Mia" }, { id: 2, text: ', "x"' }, { id: 3, text: " to" }], corrupted: [] },
  baselines: { clean: 2, corrupted: 0 },
  sweeps: [
    { kind: "resid_pre", hookPattern: "blocks.{L}.hook_resid_pre", axes: ["layer", "position"], shape: [2, 3], raw: [0, 2, 0, 0, 1, 1], normalised: [0, 1, 0, 0, 0.5, 0.5], skipped: 0 },
    { kind: "heads", hookPattern: "blocks.{L}.attn.hook_z", axes: ["layer", "head"], shape: [2, 2], raw: [0, 0.4, 1, 0], normalised: [0, 0.2, 0.5, 0], skipped: 0 },
  ],
  variantsRun: 10,
  calls: 2,
  elapsedMs: 5,
} as unknown as PatchingResult;

describe("patching view", () => {
  it("lays sweeps out as layer-by-position or layer-by-head grids with token labels", () => {
    const [resid, heads] = heatmaps(result);
    assert.deepEqual(resid.normalised, [[0, 1, 0], [0, 0.5, 0.5]]);
    assert.deepEqual(resid.columnLabels, ["0 Mia", '1 , \\"x\\"', "2  to"]);
    assert.deepEqual(resid.columnPositions, [0, 1, 2]);
    assert.deepEqual(heads.columnLabels, ["H0", "H1"]);
    assert.deepEqual(heads.columnPositions, [null, null]);
    assert.deepEqual(heads.raw, [[0, 0.4], [1, 0]]);
  });

  it("gives the page a title, a summary of the baselines and runs, and the heatmaps", () => {
    const state = patchingPanelState(result);
    assert.equal(state.title, "Activation patching (denoising)");
    assert.equal(state.summary, "logit diff: clean 2.000, corrupted 0.000 · 10 patched runs in 2 calls, 5 ms");
    assert.deepEqual(state.heatmaps, heatmaps(result));
  });

  it("sends state the way every page reads it, and pages ignore anything else", () => {
    const state = patchingPanelState(result);
    const message = structuredClone(stateMessage(state));
    assert.ok(isStateMessage(message));
    assert.deepEqual(message.state, state);
    for (const other of [null, "state", { type: "state" }, { type: "state", state: null }, { type: "ready" }, { type: "reveal", state }]) assert.equal(isStateMessage(other), false, JSON.stringify(other));
  });

  it("exports every cell as CSV, quoting tokens with commas and quotes", () => {
    const lines = patchingCsv(result).trim().split("\n");
    assert.equal(lines[0], "sweep,layer,position,token,head,metric,normalised");
    assert.equal(lines.length, 1 + 6 + 4);
    assert.equal(lines[2], 'resid_pre,0,1,", ""x""",,2,1');
    assert.equal(lines[7], "heads,0,,,0,0,0");
  });

  it("accepts only well-formed panel requests", () => {
    assert.deepEqual(parsePatchingRequest({ type: "reveal", position: 2 }, 3), { type: "reveal", position: 2 });
    assert.equal(parsePatchingRequest({ type: "reveal", position: 3 }, 3), null);
    assert.equal(parsePatchingRequest({ type: "reveal", position: "1" }, 3), null);
    assert.equal(parsePatchingRequest({ type: "exportPng", dataUrl: "data:text/html;base64,PHNjcmlwdD4=" }, 3), null);
    assert.equal(parsePatchingRequest({ type: "exportPng", dataUrl: "data:image/png;base64,<script>" }, 3), null);
    const png = parsePatchingRequest({ type: "exportPng", dataUrl: "data:image/png;base64,iVBORw0K" }, 3);
    assert.ok(png && png.type === "exportPng");
    assert.deepEqual([...pngBytes(png.dataUrl).slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.equal(parsePatchingRequest({ type: "exportCsv", path: "/etc/passwd" }, 3), null);
  });
});
