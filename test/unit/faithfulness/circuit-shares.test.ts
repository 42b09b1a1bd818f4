import { strict as assert } from "node:assert";
import * as path from "node:path";
import { attribute, influence, logitWeights, nodeCount, normaliseRows, randomTranscoders, saveTranscoders, tokenNode, trace, traceEncoding, type AttributionGraph, type TranscoderSet } from "../../../src/core/circuits";
import { checkFaithfulness } from "../../../src/core/faithfulness/battery";
import { circuitFaithfulness, circuitShares, withCircuit } from "../../../src/core/faithfulness/circuit-shares";
import { segmentPrompt, type Segmentation } from "../../../src/core/faithfulness/segment";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { stepHoverMarkdown } from "../../../src/core/view/faithfulness-view";
import { rejectsWith } from "../../helpers/errors";
import { scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const PROMPT = "Q: 8 - 3 + 7?\nA: 8 - 3 = 5. 5 + 7 = 12. The answer is";
const ANSWER = " 12";

/** Each prompt token's node influence on the graph's targets, computed from the adjacency directly. */
function tokenInfluences(g: Pick<AttributionGraph, "layout" | "adjacency" | "targets">): { tokens: number[]; errors: number } {
  const n = nodeCount(g.layout);
  const inf = influence(
    normaliseRows(g.adjacency, n),
    n,
    logitWeights(
      g.layout,
      g.targets.map((t) => t.probability),
    ),
  );
  let errors = 0;
  for (let i = g.layout.nFeatures; i < g.layout.nFeatures + g.layout.nErrors; i++) errors += inf[i];
  return { tokens: Array.from({ length: g.layout.nTokens }, (_, p) => inf[tokenNode(g.layout, p)]), errors };
}

describe("faithfulness through the circuit (tiny GPT-2, random transcoders)", function () {
  this.timeout(60_000);
  let model: HookedModel;
  let set: TranscoderSet;
  let seg: Segmentation;
  let graph: AttributionGraph;
  let offsets: [number, number][];

  before(async () => {
    model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    set = randomTranscoders({ kind: "plt", dTranscoder: 48, nLayers: model.cfg.nLayers, dModel: model.cfg.dModel, seed: 3, encoderBias: -0.2 });
    seg = segmentPrompt(PROMPT);
    const encoded = model.encode(PROMPT);
    offsets = encoded.offsets.map(([a, b]) => [a, b]);
    graph = await attribute(model, set, encoded.ids, { targets: { kind: "token", token: model.tokenizer.encode(ANSWER).ids[0] } });
  });
  after(() => model.dispose());

  it("splits the answer's influence over question, steps, marker and errors: each step is the sum over its tokens", () => {
    const shares = circuitShares(graph, offsets, seg);
    const { tokens, errors } = tokenInfluences(graph);
    const total = errors + tokens.reduce((a, b) => a + b, 0);
    assert.equal(shares.steps.length, 2);
    seg.steps.forEach((step, i) => {
      // Tokens whose text lies in the step (their leading space sits before it).
      const inside = offsets.map(([a, b], p) => (b > step.start && a < step.end ? p : -1)).filter((p) => p >= 0);
      assert.ok(inside.length >= 5, `step ${i} has ${inside.length} tokens`);
      assert.equal(shares.steps[i].tokens, inside.length);
      const expected = inside.reduce((s, p) => s + tokens[p], 0) / total;
      assert.ok(expected > 0, "the step's tokens carry influence");
      assert.ok(Math.abs(shares.steps[i].share - expected) < 1e-9, `step ${i}: ${shares.steps[i].share} vs ${expected}`);
    });
    assert.ok(Math.abs(shares.reasoning - (shares.steps[0].share + shares.steps[1].share)) < 1e-12);
    assert.ok(Math.abs(shares.errors - errors / total) < 1e-9);
    assert.ok(Math.abs(shares.question + shares.reasoning + shares.marker + shares.errors - 1) < 1e-9);
    assert.ok(shares.question > 0 && shares.marker > 0);
  });

  it("gives a step made irrelevant (its token embeddings feed nothing) no share, and its share to the rest", () => {
    const before = circuitShares(graph, offsets, seg);
    const n = nodeCount(graph.layout);
    const cut = Float32Array.from(graph.adjacency);
    const step = seg.steps[0];
    offsets.forEach(([a, b], p) => {
      if (!(b > step.start && a < step.end)) return;
      for (let t = 0; t < n; t++) cut[t * n + tokenNode(graph.layout, p)] = 0;
    });
    const after = circuitShares({ ...graph, adjacency: cut }, offsets, seg);
    assert.ok(before.steps[0].share > 0.01, `step 1 had ${before.steps[0].share}`);
    assert.equal(after.steps[0].share, 0);
    assert.ok(after.steps[1].share > before.steps[1].share, `step 2: ${before.steps[1].share} -> ${after.steps[1].share}`);
    assert.ok(after.question > before.question);
    assert.ok(Math.abs(after.question + after.reasoning + after.marker + after.errors - 1) < 1e-9);
  });

  it("traces as `loupe trace` does: behind the leading BOS, each step's share the sum of trace()'s influence over its text tokens", async () => {
    const withAnswer = `${PROMPT}${ANSWER}. More text after it.`;
    const c = await circuitFaithfulness(model, set, segmentPrompt(withAnswer), ANSWER);
    assert.equal(c.target, model.tokenizer.decode([model.tokenizer.encode(ANSWER).ids[0]]));

    const encoding = traceEncoding(model, PROMPT);
    assert.equal(encoding.lead, 1, "GPT-2 traces behind its <|endoftext|>");
    const traced = await trace(model, set, encoding.ids, { targets: { kind: "token", token: model.tokenizer.encode(ANSWER).ids[0] } });
    const { layout } = traced.graph;
    const inf = traced.pruned.nodeInfluence;
    let errors = 0;
    for (let i = layout.nFeatures; i < layout.nFeatures + layout.nErrors; i++) errors += inf[i];
    const textTokens = encoding.offsets.map((_, p) => p).filter((p) => p >= encoding.lead);
    assert.ok(inf[tokenNode(layout, 0)] > 0, "the BOS node carries influence in the graph, which the shares must leave out");
    const total = errors + textTokens.reduce((sum, p) => sum + inf[tokenNode(layout, p)], 0);
    seg.steps.forEach((step, i) => {
      const inside = textTokens.filter((p) => encoding.offsets[p][1] > step.start && encoding.offsets[p][0] < step.end);
      assert.equal(c.steps[i].tokens, inside.length);
      const expected = inside.reduce((sum, p) => sum + inf[tokenNode(layout, p)], 0) / total;
      assert.ok(Math.abs(c.steps[i].share - expected) < 1e-6, `step ${i}: ${c.steps[i].share} vs trace's ${expected}`);
    });
    assert.ok(Math.abs(c.errors - errors / total) < 1e-6, `errors: ${c.errors} vs trace's ${errors / total}`);
    assert.ok(Math.abs(c.question + c.reasoning + c.marker + c.errors - 1) < 1e-9);
    assert.equal(c.featureNodes, layout.nFeatures);
  });

  it("adds the circuit to a battery report, from a named set or the model's own; without one it says why, or fails when required", async () => {
    const report = await checkFaithfulness(model, `${PROMPT}${ANSWER}.`, { mistakes: false });
    const folder = path.join(scratchDir("tc-faith"), "plt");
    saveTranscoders(folder, set);
    const traced = await withCircuit(model, report, { transcoders: folder, required: true });
    assert.equal(traced.circuit?.steps.length, report.steps.length);
    assert.equal(traced.circuit?.transcoders, folder);
    assert.match(stepHoverMarkdown(report.steps[0], traced), /through the circuit \| \d+\.\d% \|/);
    assert.doesNotMatch(stepHoverMarkdown(report.steps[0], report), /through the circuit/);

    const skipped = await withCircuit(model, report, { required: false });
    assert.equal(skipped.circuit, undefined);
    assert.match(skipped.notes[skipped.notes.length - 1], /Not traced through the circuit: .*ships no transcoders.*loupe\.transcoderPath/);
    await rejectsWith(withCircuit(model, report, { required: true }), "bad-argument", /ships no transcoders/);
  });
});
