/**
 * The circuit panel's feature card and Neuronpedia links: a transcoder feature's dashboard in the
 * SAE dashboard's form (the same view-model, so the page draws both with the same pieces), and
 * feature pages for the sets Neuronpedia hosts, in the graph and in the Circuit influence hovers.
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { loadTranscoders, nodeLabel, readTranscoderFeatureStats, type AttributionGraph, type TranscoderFeatureDashboard } from "../../../src/core/circuits";
import type { CircuitTrace } from "../../../src/core/requests";
import { neuronpediaTranscoders, transcoderNeuronpediaUrl } from "../../../src/core/sae/releases/neuronpedia";
import { neuronpediaTranscodersOf } from "../../../src/core/sae/releases/reference";
import { circuitFeatureCard, circuitFeatureCardFailed } from "../../../src/core/view/circuit-panel";
import { circuitHoverMarkdown, pathFeature } from "../../../src/core/view/circuit-view";
import { featureDashboardState } from "../../../src/core/view/feature-dashboard";

const PLT = path.join(__dirname, "..", "..", "..", "models", "reference", "transcoders", "plt");

describe("circuit panel: feature card", () => {
  const set = loadTranscoders(PLT);
  const layer = 1;
  const stats = readTranscoderFeatureStats(PLT, set, layer);
  if (!stats) throw new Error("the reference set ships layer statistics");
  const feature = stats.features.findIndex((f) => f.fired > 0 && f.topContexts.length > 1);
  const entry = stats.features[feature];
  const { logits, ...summary } = entry;
  if (!logits) throw new Error("the reference set's statistics hold logit effects");
  const dashboard: TranscoderFeatureDashboard = { layer, feature, labelKey: "plt#layer_1", label: `L1/${feature}`, userLabel: null, summary, histogram: stats.histogram, corpus: stats.corpus, logits, statsFile: "layer_1.feature-stats.json" };

  it("a failed dashboard request gives a card for that node saying why, with no statistics and no logit tables", () => {
    const card = circuitFeatureCardFailed("1_7_4", 1, 7, "the worker stopped");
    assert.equal(card.nodeId, "1_7_4");
    assert.equal(card.hasStats, false);
    assert.match(card.note ?? "", /the worker stopped/);
    assert.deepEqual([card.promoted.length, card.suppressed.length], [0, 0]);
  });

  it("shows a transcoder feature's histogram, top contexts and logit effects as the SAE dashboard shows a feature's", () => {
    const card = circuitFeatureCard(`1_${feature}_4`, dashboard, "plt");
    assert.equal(card.nodeId, `1_${feature}_4`);
    assert.equal(card.hasStats, true);
    assert.equal(card.label, `L1/${feature}`);
    assert.equal(card.histogram?.length, stats.histogram.bins);
    assert.equal(card.histogram?.reduce((sum, b) => sum + b.count, 0), entry.histogram.reduce((a, b) => a + b, 0));
    assert.equal(card.contexts?.length, entry.topContexts.length);
    // Each context's focus piece is the token the context is about, with its activation.
    card.contexts?.forEach((c, i) => {
      const top = entry.topContexts[i];
      const focus = c.pieces.find((p) => p.focus);
      assert.equal(focus?.text, top.text.slice(...top.offsets[top.token]));
      assert.equal(focus?.value, top.values[top.token]);
    });
    assert.deepEqual(card.promoted, logits.promoted);
    assert.deepEqual(card.suppressed, logits.suppressed);
    // The SAE dashboard's view-model on the same statistics gives the same card.
    const sae = featureDashboardState({ feature, sae: "plt", hook_name: stats.sae.hook_name, d_sae: stats.sae.d_sae, stats: { ...stats, features: stats.features } });
    for (const key of ["density", "fired", "corpusTokens", "meanActivation", "maxActivation", "histogram", "contexts", "promoted", "suppressed"] as const) assert.deepEqual(card[key], sae[key], key);
  });

  it("says how to compute a layer's statistics when the set has none, and still gives the logit effects", () => {
    const card = circuitFeatureCard("1_3_4", { ...dashboard, summary: null, histogram: null, corpus: null, statsFile: null }, "my/plt");
    assert.equal(card.hasStats, false);
    assert.equal(card.histogram, undefined);
    assert.match(card.note ?? "", /No statistics for layer 1 of my\/plt: compute them with `loupe transcoder stats CORPUS\.jsonl --transcoders my\/plt`/);
    assert.deepEqual(card.promoted, logits.promoted);
  });
});

describe("Neuronpedia links for transcoder sets", () => {
  it("knows the hosted sets by hub repository or circuit-tracer scan, and no others", () => {
    const qwen = { model: "qwen3-4b", set: "transcoder-hp" };
    assert.deepEqual(neuronpediaTranscoders({ scan: "mwhanna/qwen3-4b-transcoders" }), qwen);
    assert.deepEqual(neuronpediaTranscoders({ scan: "mwhanna/qwen3-4b-transcoders@main" }), qwen);
    assert.deepEqual(neuronpediaTranscoders({ scan: "mntss/gemma-scope-transcoders//sub@abc" }), { model: "gemma-2-2b", set: "gemmascope-transcoder-16k" });
    assert.equal(neuronpediaTranscoders({ scan: "loupe/reference/plt" }), undefined);
    assert.equal(neuronpediaTranscoders({}), undefined);
    assert.equal(transcoderNeuronpediaUrl(qwen, 12, 345), "https://www.neuronpedia.org/qwen3-4b/12-transcoder-hp/345");
    assert.equal(transcoderNeuronpediaUrl(undefined, 12, 345), undefined);
  });

  it("finds a set in the hub cache by its folder, and none for the bundled set", () => {
    const folder = path.join("/cache", "hub", "models--mwhanna--qwen3-8b-transcoders", "snapshots", "0123abc");
    assert.deepEqual(neuronpediaTranscodersOf(folder, undefined), { model: "qwen3-8b", set: "transcoder-hp" });
    assert.equal(neuronpediaTranscodersOf(PLT, loadTranscoders(PLT).scan), undefined);
  });

  it("links the features on a Circuit influence hover's paths, and nothing when the set is not hosted", () => {
    const trace: CircuitTrace = {
      transcoders: "qwen",
      tokens: [{ text: "Mia", start: 0, end: 3, influence: 0.4 }],
      targets: [{ label: " Leo", token: 7, probability: 0.5 }],
      replacementScore: 0.7,
      completenessScore: 0.9,
      paths: [{ score: 0.3, nodes: ['"Mia"@0', 'L1/4 at " to"@3', 'L3/1200 at " to"@3', 'error L2 at " to"@3', 'logit " Leo"'], fromToken: 0 }],
      neuronpedia: { model: "qwen3-4b", set: "transcoder-hp" },
    };
    const hover = circuitHoverMarkdown(trace, 0);
    assert.ok(hover.includes("[L1/4](https://www.neuronpedia.org/qwen3-4b/1-transcoder-hp/4)"), hover);
    assert.ok(hover.includes("[L3/1200](https://www.neuronpedia.org/qwen3-4b/3-transcoder-hp/1200)"), hover);
    assert.equal(hover.match(/neuronpedia\.org/g)?.length, 2, "errors, tokens and logits get no link");
    const { neuronpedia: _hosted, ...unhosted } = trace;
    assert.ok(!circuitHoverMarkdown(unhosted, 0).includes("neuronpedia"));
  });

  it("reads features from path labels exactly as the core writes them", () => {
    const graph = {
      tokens: [5, 9],
      layout: { nFeatures: 1, nErrors: 2, nTokens: 2 },
      features: [{ layer: 2, feature: 77, pos: 1 }],
      targets: [{ label: " x" }],
    } as unknown as AttributionGraph;
    const text = (id: number) => (id === 5 ? "L1/4 at " : " to");
    assert.deepEqual(pathFeature(nodeLabel(graph, 0, text)), { layer: 2, feature: 77 });
    // An error, a token whose text looks like a feature label, and a logit are not features.
    for (const i of [1, 3, 5]) assert.equal(pathFeature(nodeLabel(graph, i, text)), undefined, nodeLabel(graph, i, text));
  });
});
