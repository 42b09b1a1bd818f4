/**
 * feature-stats.json and .loupe/feature-labels.json are parsed by the backend (the worker), and
 * what crosses back is what a view shows: one feature's dashboard, the picker's entries, the
 * labels of the features asked for. The editor's own code never parses either file.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../../../src/core/errors";
import { InProcessBackend } from "../../../src/core/requests";
import { readSaeConfig } from "../../../src/core/sae/config";
import { readFeatureLabels, writeFeatureLabels } from "../../../src/core/sae/feature-labels";
import { readFeatureStats } from "../../../src/core/sae/feature-stats-file";
import { featureDashboardState } from "../../../src/core/view/feature-dashboard";
import { scratchDir } from "../../helpers/fixtures";

const ROOT = path.join(__dirname, "..", "..", "..");
const SAE = path.join(ROOT, "models", "reference", "sae", "blocks.1.hook_resid_post");

describe("feature files are parsed by the backend", function () {
  this.timeout(60_000);
  const backend = new InProcessBackend();
  const cfg = readSaeConfig(path.join(SAE, "cfg.json"));
  const view = { saeFolder: SAE, sae: "sae", hook_name: cfg.hook_name, d_sae: cfg.d_sae };
  let workspace: string;
  let labelsFile: string;
  const key = "models/reference/sae/blocks.1.hook_resid_post";
  before(() => {
    workspace = scratchDir("feature-files");
    labelsFile = path.join(workspace, ".loupe", "feature-labels.json");
    fs.mkdirSync(path.dirname(labelsFile));
    writeFeatureLabels(labelsFile, { version: 1, saes: { [key]: { "5": "my five", "900": "nine hundred" }, other: { "5": "not this SAE" } } });
  });
  after(() => backend.dispose());

  it("answers one feature's dashboard from feature-stats.json, read through the SAE store the lens uses", async () => {
    const state = await backend.request("featureDashboard", { ...view, feature: 3, label: "x" });
    assert.deepEqual(state, featureDashboardState({ ...view, feature: 3, label: "x", stats: readFeatureStats(SAE) }));
    assert.equal(state.hasStats, true);
    assert.equal(await backend.request("featureMaxActivation", { saeFolder: SAE, feature: 3 }), readFeatureStats(SAE)!.features[3].maxActivation);
    assert.ok(backend.session.saes.get(SAE).stats, "the requests filled the session's one SAE store");
  });

  it("checks the stats against the SAE for every request: stats made for another hook are refused, not shown", async () => {
    const other = scratchDir("stats-other-sae");
    for (const file of fs.readdirSync(SAE)) fs.copyFileSync(path.join(SAE, file), path.join(other, file));
    const stats = JSON.parse(fs.readFileSync(path.join(other, "feature-stats.json"), "utf8")) as { sae: { hook_name: string } };
    stats.sae.hook_name = "blocks.0.hook_resid_post";
    fs.writeFileSync(path.join(other, "feature-stats.json"), JSON.stringify(stats));
    const refused = (e: unknown) => e instanceof LoupeError && e.code === "bad-file" && e.message.includes(path.join(other, "feature-stats.json")) && /blocks\.0\.hook_resid_post/.test(e.message);
    await assert.rejects(backend.request("featureDashboard", { ...view, saeFolder: other, feature: 3 }), refused);
    const picks = await backend.request("featurePicks", { saeFolder: other, d_sae: cfg.d_sae });
    assert.equal(picks.hasStats, false);
    assert.match(picks.warnings.join(), /describes features at blocks\.0\.hook_resid_post/);
    assert.equal(await backend.request("featureMaxActivation", { saeFolder: other, feature: 3 }), null);
  });

  it("without stats, the dashboard names where Loupe looked and what the SAE's own sparsity file says", async () => {
    const bare = scratchDir("stats-none");
    for (const file of ["cfg.json", "sae_weights.safetensors"]) fs.copyFileSync(path.join(SAE, file), path.join(bare, file));
    const state = await backend.request("featureDashboard", { ...view, saeFolder: bare, sae: "bare", feature: 3 });
    assert.equal(state.hasStats, false);
    assert.ok(state.note?.includes(path.join(bare, "feature-stats.json")), state.note);
    assert.match(state.note ?? "", /loupe features --compute-stats CORPUS\.jsonl --sae bare/);
    assert.doesNotMatch(state.note ?? "", /Density/);
  });

  it("builds the picker with the user's labels first; a broken stats file becomes a warning, not a lost picker", async () => {
    const labels = { file: labelsFile, root: workspace, key };
    const picks = await backend.request("featurePicks", { saeFolder: SAE, d_sae: cfg.d_sae, labels });
    assert.deepEqual(picks.items.slice(0, 2).map((p) => p.label), ["#5 my five", "#900 nine hundred"]);
    assert.ok(picks.hasStats && picks.warnings.length === 0);
    const broken = scratchDir("broken-stats");
    for (const file of ["cfg.json", "sae_weights.safetensors"]) fs.copyFileSync(path.join(SAE, file), path.join(broken, file));
    fs.writeFileSync(path.join(broken, "feature-stats.json"), "{ not json");
    const without = await backend.request("featurePicks", { saeFolder: broken, d_sae: cfg.d_sae, labels });
    assert.equal(without.hasStats, false);
    assert.equal(without.items.length, cfg.d_sae);
    assert.match(without.warnings.join(), /feature-stats\.json is not valid JSON/);
  });

  it("sends back only the labels asked for, and reads and writes the labels file only inside the workspace", async () => {
    assert.deepEqual({ ...(await backend.request("featureLabels", { file: labelsFile, root: workspace, key, features: [5, 6] })) }, { "5": "my five" });
    await backend.request("setFeatureLabel", { file: labelsFile, root: workspace, key, feature: 6, label: " six " });
    assert.deepEqual({ ...readFeatureLabels(labelsFile).saes[key] }, { "5": "my five", "6": "six", "900": "nine hundred" });
    const outside = path.join(scratchDir("labels-outside"), "labels.json");
    fs.writeFileSync(outside, "{}");
    const linked = path.join(workspace, ".loupe", "linked.json");
    fs.symlinkSync(outside, linked);
    const refused = (e: unknown) => e instanceof LoupeError && e.code === "unsafe-path";
    await assert.rejects(backend.request("featureLabels", { file: linked, root: workspace, key, features: [5] }), refused);
    await assert.rejects(backend.request("setFeatureLabel", { file: linked, root: workspace, key, feature: 1, label: "x" }), refused);
    assert.equal(fs.readFileSync(outside, "utf8"), "{}");
  });

  it("summarises an SAE whatever its folder layout: a Gemma Scope 2 folder in the hub cache has no cfg.json", async () => {
    const gemmaScope = path.join(ROOT, "test", "fixtures", "sae-published", "hub", "models--google--gemma-scope-2-270m-pt", "snapshots", "0123456789abcdef0123456789abcdef01234567", "resid_post", "layer_0_width_16k_l0_small");
    assert.throws(() => readSaeConfig(path.join(gemmaScope, "cfg.json")));
    const summary = await backend.request("saeSummary", { saeFolder: gemmaScope });
    assert.equal(summary.hook_name, "blocks.0.hook_resid_post");
    assert.ok(summary.d_sae > 0);
    assert.deepEqual(await backend.request("saeSummary", { saeFolder: SAE }), { d_sae: cfg.d_sae, hook_name: cfg.hook_name, ...(cfg.neuronpedia_id ? { neuronpedia_id: cfg.neuronpedia_id } : {}) });
  });

  it("the extension host's code calls no parser of either file, nor of an SAE's config", () => {
    const parsers = /\b(readFeatureStats|readFeatureStatsFile|readFeatureLabels|readFeatureLabelsAsync|SaeStore|parseFeatureStats|parseFeatureLabels|readSaeConfig|parseSaeConfig|loadSae)\b/;
    const dir = path.join(ROOT, "src", "extension");
    const offenders = fs.readdirSync(dir).filter((f) => f.endsWith(".ts") && parsers.test(fs.readFileSync(path.join(dir, f), "utf8")));
    assert.deepEqual(offenders, []);
  });
});
