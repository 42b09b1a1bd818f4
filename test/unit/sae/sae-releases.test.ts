import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { InProcessBackend } from "../../../src/core/requests";
import { loadSae, saeFeatureActivations } from "../../../src/core/sae";
import { saeLabelKey } from "../../../src/core/sae/feature-labels";
import { encodeSafetensors } from "../../../src/core/model/safetensors";
import { encodeFast } from "../../../src/core/sae/encoder-session";
import { readNpz } from "../../../src/core/sae/npz";
import { processingTransform } from "../../../src/core/sae/releases/processing";
import { parseReleaseSae, releaseSaeFiles, resolveSaeReference } from "../../../src/core/sae/releases/reference";
import { SaeStore } from "../../../src/core/sae/sae-store";
import { tokenFeatures } from "../../../src/core/sae/token-features";
import { maxAbsDiff } from "../../../src/core/tensor/tensor";
import { featureDashboardState, featureHoverMarkdown } from "../../../src/core/view/feature-dashboard";
import { main } from "../../../src/cli/main";
import { readFeatureLabels } from "../../../src/core/sae/feature-labels";
import { featureStatsFile } from "../../../src/core/sae/feature-stats-file";
import { pullSae } from "../../../src/core/sae/releases/pull";
import { cacheRepo, withEnv } from "../../helpers/hub-cache";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";
import { startFakeHub } from "../../helpers/hub-server";
import { throwsWith } from "../../helpers/errors";

const PUBLISHED = path.join(FIXTURES, "sae-published");
const HUB = { HF_HUB_CACHE: path.join(PUBLISHED, "hub") };
const JB = "gpt2-small-res-jb/blocks.1.hook_resid_pre";
const GS2 = "gemma-scope-2-270m-pt-res/layer_0_width_16k_l0_small";
const TOLERANCE = 1e-5;

interface PublishedReference {
  tokens: number[];
  resid: Record<string, number[]>;
  saes: Record<string, { hook_name: string; feature_acts: number[]; reconstruction?: number[]; input_raw?: number[]; input_processed?: number[]; reconstruction_centred?: number[]; feature_acts_without_processing?: number[] }>;
}
const reference = JSON.parse(fs.readFileSync(path.join(PUBLISHED, "reference.json"), "utf8")) as PublishedReference;

describe("published dictionaries", () => {
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })));
  after(() => model.dispose());

  for (const name of ["gemma-scope-npz", "gemma-scope-npz-f16"]) {
    it(`${name}: params.npz loads and encodes as PyTorch does`, async () => {
      const expected = reference.saes[name];
      const sae = loadSae(path.join(PUBLISHED, name), { hook: expected.hook_name });
      assert.equal(sae.cfg.architecture, "jumprelu");
      assert.equal(sae.cfg.apply_b_dec_to_input, false);
      const run = await saeFeatureActivations(model, sae, reference.tokens);
      assert.ok(maxAbsDiff(run.input, reference.resid[expected.hook_name]) < TOLERANCE, "the hook's activations differ from PyTorch's");
      const diff = maxAbsDiff(run.features, expected.feature_acts);
      assert.ok(diff < TOLERANCE, `feature activations differ from PyTorch by ${diff}`);
      assert.ok(run.features.some((v) => v > 0), "some feature fires");
      assert.ok(maxAbsDiff(sae.forward(run.input).reconstruction, expected.reconstruction!) < TOLERANCE, "reconstruction differs");
    });
  }

  it("a Gemma Scope folder without a hook says how to give one", () => {
    throwsWith(() => loadSae(path.join(PUBLISHED, "gemma-scope-npz")), "bad-argument", /params\.npz does not say which hook.*RELEASE\/SAE_ID/);
  });

  it("a truncated params.npz is an error naming the file", () => {
    const dir = scratchDir("npz");
    const bytes = fs.readFileSync(path.join(PUBLISHED, "gemma-scope-npz", "params.npz"));
    fs.writeFileSync(path.join(dir, "params.npz"), bytes.subarray(0, bytes.length - 40));
    throwsWith(() => readNpz(path.join(dir, "params.npz")), "bad-file", new RegExp(`${path.join(dir, "params.npz").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is not a valid \\.npz archive`));
  });

  it("RELEASE/SAE_ID resolves in a hub cache, with the release's processing, label key and Neuronpedia id", () => {
    const resolved = resolveSaeReference(JB, HUB);
    assert.equal(resolved.folder, path.join(HUB.HF_HUB_CACHE, "models--jbloom--GPT2-Small-SAEs-Reformatted", "snapshots", "0123456789abcdef0123456789abcdef01234567", "blocks.1.hook_resid_pre"));
    const sae = loadSae(resolved.folder);
    assert.deepEqual(sae.cfg.processing, { fold_ln: false, center_writing_weights: true, center_unembed: false });
    assert.equal(sae.inputTransform, "center");
    assert.equal(sae.cfg.neuronpedia_id, "gpt2-small/1-res-jb");
    assert.equal(saeLabelKey("/some/workspace", resolved.folder), JB);
  });

  it("a release SAE trained on the TransformerLens-processed model encodes the processed activations", async () => {
    const expected = reference.saes[JB];
    const sae = loadSae(resolveSaeReference(JB, HUB).folder);
    const run = await saeFeatureActivations(model, sae, reference.tokens);
    assert.ok(maxAbsDiff(run.input, expected.input_raw!) < TOLERANCE, "Loupe's raw hook differs from PyTorch's");
    // The fixture discriminates: without the centring the features would differ.
    assert.ok(maxAbsDiff(Float32Array.from(expected.feature_acts), expected.feature_acts_without_processing!) > 0.01);
    const diff = maxAbsDiff(run.features, expected.feature_acts);
    assert.ok(diff < TOLERANCE, `features differ from the processed PyTorch model's by ${diff}`);
    // The reconstruction comes back in the raw model's space: the centred one plus each token's mean.
    const recon = sae.forward(run.input).reconstruction;
    const D = sae.d_in;
    const back = Float32Array.from(expected.reconstruction_centred!, (v, i) => {
      const row = Math.floor(i / D);
      let mu = 0;
      for (let d = 0; d < D; d++) mu += expected.input_raw![row * D + d];
      return v + mu / D;
    });
    assert.ok(maxAbsDiff(recon, back) < TOLERANCE, "reconstruction is not the centred one shifted back");
  });

  it("Gemma Scope 2's params.safetensors resolves by release and encodes as PyTorch does", async () => {
    const expected = reference.saes[GS2];
    const sae = loadSae(resolveSaeReference(GS2, HUB).folder);
    assert.equal(sae.hookName, "blocks.0.hook_resid_post");
    assert.equal(sae.inputTransform, "none");
    const run = await saeFeatureActivations(model, sae, reference.tokens);
    const diff = maxAbsDiff(run.features, expected.feature_acts);
    assert.ok(diff < TOLERANCE, `feature activations differ from PyTorch by ${diff}`);
  });

  it("hovers and the dashboard link a release's features to Neuronpedia", async () => {
    const loaded = new SaeStore().get(resolveSaeReference(JB, HUB).folder);
    const result = await tokenFeatures(model, loaded, "Mia and Leo went to the park", { topK: 3 });
    const at = result.tokens.findIndex((t) => t.features.length > 0);
    assert.ok(at >= 0, "some feature fires");
    const feature = result.tokens[at].features[0].feature;
    assert.ok(featureHoverMarkdown(result, at, () => undefined).includes(`([Neuronpedia](https://www.neuronpedia.org/gpt2-small/1-res-jb/${feature}))`));
    const state = featureDashboardState({ feature: 7, sae: JB, hook_name: "blocks.1.hook_resid_pre", d_sae: 48, neuronpedia: loaded.sae.cfg.neuronpedia_id });
    assert.equal(state.neuronpediaUrl, "https://www.neuronpedia.org/gpt2-small/1-res-jb/7");
    // A local SAE has no page.
    assert.equal(featureDashboardState({ feature: 7, sae: "x", hook_name: "h", d_sae: 48 }).neuronpediaUrl, undefined);
  });

  it("an uncached release SAE says how to download just that dictionary", () => {
    throwsWith(() => resolveSaeReference("gpt2-small-res-jb/blocks.6.hook_resid_pre", HUB), "missing-file", /not in the Hugging Face cache.*loupe pull --sae gpt2-small-res-jb\/blocks\.6\.hook_resid_pre/);
    throwsWith(() => resolveSaeReference("gpt2-small-res-jb/blocks.60.hook_resid_pre", HUB), "bad-argument", /not an SAE id of gpt2-small-res-jb.*blocks\.6\.hook_resid_pre/);
    throwsWith(() => resolveSaeReference("no-such-release/x", HUB), "missing-file", /neither a folder .* nor RELEASE\/SAE_ID.*gpt2-small-res-jb/);
  });

  it("lists one dictionary's files, not the repository's", () => {
    assert.deepEqual(releaseSaeFiles(parseReleaseSae(JB)!), {
      folder: "blocks.1.hook_resid_pre",
      required: ["blocks.1.hook_resid_pre/cfg.json", "blocks.1.hook_resid_pre/sae_weights.safetensors"],
      optional: ["blocks.1.hook_resid_pre/sparsity.safetensors"],
    });
    assert.deepEqual(releaseSaeFiles(parseReleaseSae(GS2)!).required, ["resid_post/layer_0_width_16k_l0_small/params.safetensors"]);
  });

  it("processing maps residual hooks by centring, leaves attention and MLP hooks, refuses weight-dependent ones", () => {
    const tl = { fold_ln: true, center_writing_weights: true, center_unembed: true };
    for (const hook of ["blocks.3.hook_resid_pre", "blocks.3.hook_resid_mid", "blocks.3.hook_resid_post", "blocks.3.hook_attn_out", "blocks.3.hook_mlp_out", "hook_embed"]) assert.equal(processingTransform(hook, tl), "center", hook);
    for (const hook of ["blocks.3.attn.hook_q", "blocks.3.mlp.hook_pre", "blocks.3.mlp.hook_post"]) assert.equal(processingTransform(hook, tl), "none", hook);
    assert.equal(processingTransform("blocks.3.hook_resid_pre", { ...tl, center_writing_weights: false }), "none");
    throwsWith(() => processingTransform("blocks.3.attn.hook_z", tl), "unsupported-architecture", /hook_z.*fold_ln/);
  });

  it("loupe pull --sae fetches one dictionary's files from the hub, and RELEASE/SAE_ID then resolves", async () => {
    const snapshot = path.join(HUB.HF_HUB_CACHE, "models--jbloom--GPT2-Small-SAEs-Reformatted", "snapshots", "0123456789abcdef0123456789abcdef01234567");
    const files: Record<string, Buffer> = { "README.md": Buffer.from("# SAEs") };
    for (const id of ["blocks.1.hook_resid_pre", "blocks.2.hook_resid_pre"]) {
      for (const name of fs.readdirSync(path.join(snapshot, "blocks.1.hook_resid_pre"))) files[`${id}/${name}`] = fs.readFileSync(path.join(snapshot, "blocks.1.hook_resid_pre", name));
    }
    const hub = await startFakeHub([{ repoId: "jbloom/GPT2-Small-SAEs-Reformatted", commit: "abcdef0123456789abcdef0123456789abcdef01", files }]);
    try {
      const cache = scratchDir("sae-pull");
      const env = { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.endpoint, HF_HOME: path.join(cache, "no-home") };
      const result = await pullSae(JB, { env });
      assert.deepEqual(result.files.map((f) => f.path).sort(), ["blocks.1.hook_resid_pre/cfg.json", "blocks.1.hook_resid_pre/sae_weights.safetensors"]);
      assert.ok(!hub.requests.some((r) => r.url.includes("blocks.2.")), "another SAE's files were requested");
      const resolved = resolveSaeReference(JB, env);
      assert.equal(resolved.folder, result.folder);
      assert.equal(loadSae(resolved.folder).cfg.neuronpedia_id, "gpt2-small/1-res-jb");
      await assert.rejects(pullSae("gpt2-small-res-jb/blocks.3.hook_resid_pre", { env }), /has no blocks\.3\.hook_resid_pre\/cfg\.json/);
    } finally {
      await hub.close();
    }
  });

  it("loupe labels import: a Neuronpedia export labels the release's features, shown by loupe features --sae RELEASE/SAE_ID", async () => {
    const dir = scratchDir("np-labels");
    const exportFile = path.join(dir, "explanations.jsonl");
    const labelsFile = path.join(dir, "feature-labels.json");
    const rows: object[] = [];
    for (let f = 0; f < 48; f++) rows.push({ id: `e${f}`, modelId: "gpt2-small", layer: "1-res-jb", index: String(f), description: ` np feature  ${f} `, explanationModelName: "gpt-4o-mini", typeName: "oai_token-act-pair" });
    rows.push({ modelId: "gpt2-small", layer: "2-res-jb", index: "3", description: "another SAE's" });
    rows.push({ modelId: "gpt2-small", layer: "1-res-jb", index: "5", description: "a second explanation of 5" });
    fs.writeFileSync(exportFile, rows.map((r) => JSON.stringify(r)).join("\n"));
    fs.writeFileSync(labelsFile, JSON.stringify({ version: 1, saes: { [JB]: { "2": "mine" } } }));
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), readStdin: () => "Mia and Leo went to the park" };
    await withEnv(HUB, async () => {
      assert.equal(await main(["labels", "import", exportFile, "--release", JB, "--labels", labelsFile, "--json"], io), 0);
      const summary = JSON.parse(out.join("")) as { added: number; keptYours: number; otherSaesSkipped: number };
      assert.deepEqual([summary.added, summary.keptYours, summary.otherSaesSkipped], [47, 1, 1]);
      const labels = readFeatureLabels(labelsFile).saes[JB];
      assert.equal(labels["2"], "mine", "the user's own label is kept");
      assert.equal(labels["5"], "np feature 5", "the first explanation, on one line");
      out.length = 0;
      assert.equal(await main(["features", "-", "--sae", JB, "--labels", labelsFile, "--model", TINY_GPT2, "--json"], io), 0);
    });
    const result = JSON.parse(out.join("")) as { tokens: Array<{ features: Array<{ feature: number; label?: string }> }> };
    const shown = result.tokens.flatMap((t) => t.features);
    assert.ok(shown.length > 0);
    for (const f of shown) assert.equal(f.label, f.feature === 2 ? "mine" : `np feature ${f.feature}`);
  });

  it("loupe features --compute-stats on a cached release writes to Loupe's cache, never into the hub cache, and features then reads it", async () => {
    const hubCache = scratchDir("stats-hub");
    const loupeCache = scratchDir("stats-loupe");
    const source = resolveSaeReference(JB, HUB).folder;
    const files = Object.fromEntries(fs.readdirSync(source).map((name) => [`blocks.1.hook_resid_pre/${name}`, fs.readFileSync(path.join(source, name))]));
    const { snapshot } = cacheRepo(hubCache, "jbloom/GPT2-Small-SAEs-Reformatted", files);
    const listing = (dir: string) => fs.readdirSync(dir, { recursive: true }).map(String).sort();
    const before = listing(path.join(hubCache));
    const corpus = path.join(scratchDir("stats-corpus"), "corpus.jsonl");
    fs.writeFileSync(corpus, ["Mia and Leo went to the park", "The cat sat on the mat"].map((text) => JSON.stringify({ text })).join("\n"));
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), readStdin: () => "Mia and Leo went to the park" };
    const saeFolder = path.join(snapshot, "blocks.1.hook_resid_pre");
    const backend = new InProcessBackend();
    const dashboard = () => backend.request("featureDashboard", { saeFolder, feature: 7, sae: JB, hook_name: "blocks.1.hook_resid_pre", d_sae: 48 });
    await withEnv({ HF_HUB_CACHE: hubCache, LOUPE_CACHE_DIR: loupeCache }, async () => {
      const statsFile = featureStatsFile(saeFolder);
      const missing = await dashboard();
      assert.equal(missing.hasStats, false);
      assert.ok(missing.note?.includes(statsFile), `the dashboard names the file in Loupe's cache, not the SAE's folder: ${missing.note}`);
      assert.match(missing.note ?? "", new RegExp(`--sae ${JB}$`));
      assert.equal(await main(["features", "--compute-stats", corpus, "--sae", JB, "--model", TINY_GPT2, "--json"], io), 0);
      const { file } = JSON.parse(out.join("")) as { file: string };
      assert.equal(file, statsFile);
      assert.ok(file.startsWith(path.join(loupeCache, "feature-stats", "models--jbloom--GPT2-Small-SAEs-Reformatted")), file);
      assert.ok(fs.existsSync(file));
      out.length = 0;
      assert.equal(await main(["features", "-", "--sae", JB, "--model", TINY_GPT2, "--json"], io), 0);
      assert.equal((JSON.parse(out.join("")) as { sae: { statsFile: boolean } }).sae.statsFile, true, "features reads the statistics back");
      assert.equal((await dashboard()).hasStats, true, "the dashboard reads them from Loupe's cache");
    }).finally(() => backend.dispose());
    assert.deepEqual(listing(hubCache), before, "nothing was written into the hub cache");
  });

  it("an export for a wider SAE is refused before anything is written", async () => {
    const dir = scratchDir("np-wide");
    const exportFile = path.join(dir, "explanations.json");
    const labelsFile = path.join(dir, "feature-labels.json");
    fs.writeFileSync(exportFile, JSON.stringify([{ modelId: "gpt2-small", layer: "1-res-jb", index: "24000", description: "far" }]));
    const io = { out: () => undefined, readStdin: () => "" };
    await withEnv(HUB, () => assert.rejects(main(["labels", "import", exportFile, "--release", JB, "--labels", labelsFile], io), /feature 24000, but gpt2-small-res-jb\/blocks\.1\.hook_resid_pre has 48 features/));
    assert.ok(!fs.existsSync(labelsFile));
  });

  it("the onnxruntime encoder gives the JavaScript encoder's features for every architecture, centring and normalisation", async () => {
    const folders = ["relu", "topk", "jumprelu", "relu-rescale"].map((n) => path.join(FIXTURES, "sae", n));
    const saes = [...folders.map((f) => loadSae(f)), loadSae(resolveSaeReference(JB, HUB).folder), loadSae(path.join(PUBLISHED, "gemma-scope-npz"), { hook: "blocks.0.hook_resid_post" })];
    const rows = 7;
    for (const sae of saes) {
      const x = Float32Array.from({ length: rows * sae.d_in }, (_, i) => Math.sin(i * 0.37) * 3 + (i % 5) * 0.2);
      const js = sae.encode(x, rows);
      const fast = await encodeFast(sae, x, rows, { minWeights: 0 });
      assert.ok(maxAbsDiff(fast.features, js.features) < 1e-4, `${sae.source}: features differ by ${maxAbsDiff(fast.features, js.features)}`);
      assert.ok(fast.features.some((v) => v > 0), `${sae.source}: something fires`);
      assert.deepEqual(fast.norm?.shift && Array.from(fast.norm.shift), js.norm?.shift && Array.from(js.norm.shift));
    }
  });

  it("SAELens's sparsity.safetensors gives hover densities when there is no feature-stats.json", async () => {
    const folder = scratchDir("sparsity");
    const source = resolveSaeReference(JB, HUB).folder;
    for (const name of fs.readdirSync(source)) fs.copyFileSync(path.join(source, name), path.join(folder, name));
    const log10 = Float32Array.from({ length: 48 }, (_, i) => -1 - i / 16);
    fs.writeFileSync(path.join(folder, "sparsity.safetensors"), encodeSafetensors({ sparsity: { dtype: "F32", shape: [48], data: log10 } }));
    const result = await tokenFeatures(model, new SaeStore().get(folder), "Mia and Leo went to the park", { topK: 3 });
    const shown = result.tokens.flatMap((t) => t.features);
    assert.ok(shown.length > 0);
    for (const f of shown) assert.ok(Math.abs(f.density! - 10 ** log10[f.feature]) < 1e-6, `density of #${f.feature}`);
    assert.match(featureHoverMarkdown(result, result.tokens.findIndex((t) => t.features.length > 0), () => undefined), /densities are SAELens's \(sparsity\.safetensors\)/);
    const backend = new InProcessBackend();
    try {
      const state = await backend.request("featureDashboard", { saeFolder: folder, feature: 16, sae: "sparsity", hook_name: "blocks.1.hook_resid_pre", d_sae: 48 });
      assert.equal(state.hasStats, false);
      assert.match(state.note ?? "", /^Density 1\.00% over SAELens's training tokens \(sparsity\.safetensors\)\. No feature statistics/);
    } finally {
      await backend.dispose();
    }
  });
});
