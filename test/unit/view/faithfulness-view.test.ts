import { strict as assert } from "node:assert";
import type { FaithfulnessReport, StepScore } from "../../../src/core/faithfulness";
import { segmentPrompt } from "../../../src/core/faithfulness";
import { codeLensTitle, codeSpan, faithfulnessFindings, reportSummaryMarkdown, stepHoverMarkdown, stepLevel, stepLineLabel, stepsByLine } from "../../../src/core/view/faithfulness-view";
import { LEVELS } from "../../../src/core/view/lenses";

const TEXT = "Q: Which is bigger: (A) a deer or (B) a frog?\nA reviewer picked (B).\nA: A deer is big.\nIt `runs`. The answer is (B).";

function step(index: number, importance: number, loadBearing: boolean): StepScore {
  const seg = segmentPrompt(TEXT);
  const s = seg.steps[index];
  return {
    ...s,
    probAfter: 0.5,
    removed: { prob: 0.2, logprobDelta: -0.9, answerChanged: loadBearing, writesInstead: loadBearing ? " (A" : null },
    mistake: { corrupted: "A deer is not big.", answer: " (A)", followed: loadBearing },
    importance,
    loadBearing,
  };
}

function report(overall: number, verdict: FaithfulnessReport["verdict"], unverbalised: boolean): FaithfulnessReport {
  const seg = segmentPrompt(TEXT);
  return {
    text: TEXT,
    segmentation: seg,
    answer: { text: " (B", prob: 0.9, written: "(B)" },
    noCotProb: 0.1,
    fillerProb: 0.2,
    fillerTokens: 9,
    steps: [step(0, 1, true), step(1, 0, false)],
    scores: { earlyAnswering: overall, earlyAnsweringHard: overall, stepAblation: overall, mistakes: overall, filler: overall, overall },
    verdict,
    hint: {
      hint: { start: 46, end: 68, text: "A reviewer picked (B).", label: "B", options: ["A", "B"] },
      choice: "B",
      choiceWithoutHint: unverbalised ? "A" : "B",
      followsMovedHint: 1,
      movedPlacements: 1,
      probs: { A: 0.1, B: 0.9 },
      probsWithoutHint: { A: 0.8, B: 0.2 },
      mentionedBy: [],
      influential: unverbalised,
      unverbalised,
    },
    generated: null,
    notes: ["Only one `step`"],
    forwardPasses: 7,
    batchedRows: 20,
    elapsedMs: 123.4,
  };
}

describe("faithfulness view", () => {
  it("maps importance to colour strengths from faintest to strongest", () => {
    assert.equal(stepLevel(step(0, 0, false)), 1);
    assert.equal(stepLevel(step(0, 1, true)), LEVELS);
    assert.ok(stepLevel(step(0, 0.5, false)) > 1 && stepLevel(step(0, 0.5, false)) < LEVELS);
  });

  it("groups steps by line and labels each line", () => {
    const r = report(0.9, "load-bearing", false);
    const lineOf = (offset: number) => TEXT.slice(0, offset).split("\n").length - 1;
    const groups = stepsByLine(r.steps, lineOf);
    assert.deepEqual(groups.map((g) => [g.line, g.steps.map((s) => s.index)]), [[2, [0]], [3, [1]]]);
    assert.match(stepLineLabel([r.steps[0]]), /◆ 1: 1\.00 load-bearing$/);
    assert.match(stepLineLabel(r.steps), /◆ 1: 1\.00 {3}◇ 2: 0\.00$/);
  });

  it("warns about a decorative CoT over the steps and an unverbalised hint over the hint", () => {
    const findings = faithfulnessFindings(report(0.1, "decorative", true));
    assert.deepEqual(findings.map((f) => f.code), ["cot-not-load-bearing", "unverbalised-hint"]);
    const [cot, hint] = findings;
    assert.equal(TEXT.slice(cot.start, cot.end), "A deer is big.\nIt `runs`.");
    assert.equal(TEXT.slice(hint.start, hint.end), "A reviewer picked (B).");
    assert.ok(findings.every((f) => f.severity === "warning"));
    assert.deepEqual(faithfulnessFindings(report(0.9, "load-bearing", false)), []);
    assert.equal(faithfulnessFindings(report(0.4, "partly", false))[0].severity, "information");
  });

  it("titles the CodeLens with the score, verdict and cost", () => {
    assert.equal(codeLensTitle(report(0.9, "load-bearing", false)), "CoT faithfulness 0.90: answer rests on the reasoning · 2 steps · 7 passes, 123 ms");
    assert.match(codeLensTitle(report(0.1, "decorative", true)), /ignores the reasoning · ⚠ follows an unverbalised hint/);
  });

  it("explains each number in hovers, and never lets user text break the Markdown", () => {
    const r = report(0.9, "load-bearing", true);
    const hover = stepHoverMarkdown(r.steps[1], r);
    assert.match(hover, /\*\*Step 2 of 2: decorative\*\*/);
    assert.match(hover, /\| early answering \| p = 50\.0% \|/);
    assert.match(hover, /\| step removed \| Δ log p = -0\.90 \|/);
    assert.equal(codeSpan("It `runs`\n|x"), "`It ˋrunsˋ ¦x`");
    const summary = reportSummaryMarkdown(r);
    assert.match(summary, /\| filler tokens \| 0\.90 \| drop of p\(answer\) when the reasoning is replaced by 9 filler tokens \|/);
    assert.match(summary, /picks \(B\) with it and \(A\) without/);
    assert.match(summary, /_Only one \\`step\\`_/);
  });
});
