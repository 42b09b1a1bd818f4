import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { encode, loadTranscoders, readTranscoderFeatureStats, transcoderFeatureDashboard, transcoderInput, transcoderLabelKey, type GraphFile } from "../../../src/core/circuits";
import { readLinearModelWeights } from "../../../src/core/circuits/model-weights";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { rejectsWith } from "../../helpers/errors";
import { scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const NAMES = ["Mia", "Leo", "Sam", "Ana"];

function writeCorpus(dir: string): string {
  const file = path.join(dir, "corpus.jsonl");
  const lines: string[] = [];
  for (let i = 0; i < 40; i++) lines.push(JSON.stringify({ text: `When ${NAMES[i % 4]} and ${NAMES[(i + 1) % 4]} went out, ${NAMES[i % 4]} gave a ball to ${NAMES[(i + 1) % 4]}.` }));
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

describe("loupe transcoder train and loupe trace", function () {
  this.timeout(300_000);
  const run = (args: string[], signal?: AbortSignal) => {
    let out = "";
    const progress: string[] = [];
    const io = { out: (t: string) => void (out += t), readStdin: () => "", progress: (t: string) => void progress.push(t), signal };
    return main([...args, "--model", TINY_GPT2], io).then((code) => ({ code, out, progress }));
  };
  const dir = scratchDir("circuits-cli");
  const plt = path.join(dir, "plt");
  let prompt: string;

  before(() => {
    prompt = path.join(dir, "prompt.txt");
    fs.writeFileSync(prompt, "When Mia and Leo went out, Mia gave a ball to\n");
  });

  it("trains a PLT set, saves it in circuit-tracer's layout, and reports its quality on held-out texts", async () => {
    const { code, out, progress } = await run(["transcoder", "train", writeCorpus(dir), "--kind", "plt", "--out", plt, "--d-transcoder", "32", "--k", "4", "--epochs", "40", "--json"]);
    assert.equal(code, 0);
    const summary = JSON.parse(out);
    const set = loadTranscoders(plt);
    assert.equal(set.kind, "plt");
    assert.deepEqual(set.activation, { kind: "topk", k: 4 });
    assert.equal(summary.nmse.length, 2);
    // Trained, the reconstruction explains much of each MLP's output, and replacing every MLP keeps most of the loss gap closed.
    for (const m of summary.nmse) assert.ok(m > 0 && m < 0.9, `normalised MSE ${m}`);
    assert.ok(summary.ceRecovered > 0.3, `CE recovered ${summary.ceRecovered}`);
    assert.deepEqual(summary.l0, [4, 4]);
    assert.ok(progress.some((p) => /step \d+\/\d+: normalised MSE/.test(p)));
    assert.ok(fs.existsSync(path.join(plt, "quality.json")));
  });

  it("--skip trains a PLT with a skip connection (W_skip in each layer file) and refuses one for a CLT", async () => {
    const withSkip = path.join(dir, "plt-skip");
    const { code, out } = await run(["transcoder", "train", writeCorpus(dir), "--kind", "plt", "--skip", "--out", withSkip, "--d-transcoder", "16", "--k", "2", "--epochs", "4", "--json"]);
    assert.equal(code, 0);
    assert.equal(JSON.parse(out).skip, true);
    for (const layer of loadTranscoders(withSkip).layers) assert.ok(layer.skip?.some((x) => x !== 0), "a learned, non-zero skip");
    await rejectsWith(run(["transcoder", "train", writeCorpus(dir), "--kind", "clt", "--skip", "--out", path.join(dir, "clt-skip"), "--d-transcoder", "16", "--k", "2"]), "bad-argument", /no place for a skip connection/);
  });

  it("traces a prompt into circuit-tracer's graph JSON", async () => {
    const out = path.join(dir, "graph.json");
    const { code, out: text } = await run(["trace", prompt, "--transcoders", plt, "--answer", " Leo", "--out", out, "--json"]);
    assert.equal(code, 0);
    const summary = JSON.parse(text);
    assert.ok(summary.replacementScore > 0 && summary.replacementScore <= 1);
    const graph = JSON.parse(fs.readFileSync(out, "utf8")) as GraphFile;
    assert.equal(graph.metadata.schema_version, 1);
    assert.equal(graph.metadata.prompt, "When Mia and Leo went out, Mia gave a ball to");
    const ids = new Set(graph.nodes.map((n) => n.node_id));
    for (const link of graph.links) assert.ok(ids.has(link.source) && ids.has(link.target), `dangling link ${link.source} -> ${link.target}`);
    const logits = graph.nodes.filter((n) => n.feature_type === "logit");
    assert.equal(logits.length, 1);
    assert.equal(logits[0].layer, "3");
    assert.ok(logits[0].is_target_logit);
    const embeddings = graph.nodes.filter((n) => n.feature_type === "embedding");
    assert.equal(embeddings.length, graph.metadata.prompt_tokens.length);
    for (const n of graph.nodes.filter((n) => n.feature_type === "cross layer transcoder")) {
      assert.match(n.node_id, new RegExp(`^${n.layer}_\\d+_${n.ctx_idx}$`));
      assert.ok(n.activation !== null && n.influence !== null && n.influence <= 1 + 1e-9);
    }
    assert.ok(graph.links.some((l) => l.target === logits[0].node_id));
  });

  it("writes the compact form with the same nodes and links as columns", async () => {
    const full = path.join(dir, "full.json");
    const compact = path.join(dir, "compact.json");
    await run(["trace", prompt, "--transcoders", plt, "--out", full]);
    await run(["trace", prompt, "--transcoders", plt, "--out", compact, "--compact"]);
    const a = JSON.parse(fs.readFileSync(full, "utf8")) as GraphFile;
    const b = JSON.parse(fs.readFileSync(compact, "utf8"));
    assert.equal(b.format, "loupe-compact-graph");
    assert.deepEqual(b.nodes.node_id, a.nodes.map((n) => n.node_id));
    assert.equal(b.links.length, 3 * a.links.length);
    a.links.forEach((l, i) => {
      assert.equal(b.nodes.node_id[b.links[3 * i]], l.source);
      assert.equal(b.nodes.node_id[b.links[3 * i + 1]], l.target);
      assert.ok(Math.abs(b.links[3 * i + 2] - l.weight) <= 1e-5 * Math.max(1, Math.abs(l.weight)));
    });
  });

  it("prints the strongest paths from tokens to the target without --out", async () => {
    const { code, out } = await run(["trace", prompt, "--transcoders", plt]);
    assert.equal(code, 0);
    assert.match(out, /strongest paths to/);
    assert.match(out, /-> logit "/);
  });

  it("intervenes on the graph's top features and on named ones, reporting predicted, constrained and free changes", async () => {
    const { code, out } = await run(["intervene", prompt, "--transcoders", plt, "--answer", " Leo", "--contrast", " Mia", "--top", "3", "--json"]);
    assert.equal(code, 0);
    const result = JSON.parse(out);
    assert.equal(result.edits.length, 3);
    assert.ok(Math.abs(result.predicted - result.constrained) <= 1e-4 * Math.max(1, Math.abs(result.predicted)));
    assert.equal(typeof result.free, "number");
    const first = result.edits[0];
    const named = await run(["intervene", prompt, "--transcoders", plt, "--answer", " Leo", "--scale", `${first.layer}/${first.feature}@${first.pos}=2`]);
    assert.match(named.out, /predicted change \(graph\)\s+-?\d/);
    await rejectsWith(run(["intervene", prompt, "--transcoders", plt, "--zero", "1/2"]), "bad-argument", /write LAYER\/FEATURE@POSITION/);
  });

  it("computes transcoder feature statistics in the SAE stats format, one file per layer beside the set", async () => {
    const corpus = writeCorpus(dir);
    const { code, out } = await run(["transcoder", "stats", corpus, "--transcoders", plt]);
    assert.equal(code, 0);
    assert.match(out, /layer_1\.feature-stats\.json: 40 texts/);
    const set = loadTranscoders(plt);
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    try {
      const texts = fs.readFileSync(corpus, "utf8").trim().split("\n").map((l) => JSON.parse(l).text as string);
      const tokens = texts.reduce((s, t) => s + model.encode(t).ids.length, 0);
      const layer = 1;
      const stats = readTranscoderFeatureStats(plt, set, layer)!;
      assert.equal(stats.sae.hook_name, `blocks.${layer}.mlp.hook_in`);
      assert.equal(stats.corpus.tokens, tokens);
      const fired = stats.features.reduce((s, f) => s + f.fired, 0);
      // TopK k=4: at most four features fire per token.
      assert.ok(fired > 0 && fired <= 4 * tokens, `${fired} firings on ${tokens} tokens`);
      // The best feature's top context is the activation the transcoder gives at that token.
      const best = stats.features.reduce((a, b) => (b.maxActivation > a.maxActivation ? b : a));
      const context = best.topContexts[0];
      assert.equal(context.value, best.maxActivation);
      const text = texts[context.source];
      const enc = model.encode(text);
      const at = enc.offsets.findIndex(([a, b]) => text.slice(a, b) === context.text.slice(context.offsets[context.token][0], context.offsets[context.token][1]) && a >= 0);
      assert.ok(at >= 0);
      const { cache } = await model.runWithCache(enc.ids, { names: [`blocks.${layer}.hook_resid_mid`] });
      const weights = readLinearModelWeights(TINY_GPT2, model.cfg);
      const x = transcoderInput(weights.blocks[layer].norm2, set.inputHook, cache.get(`blocks.${layer}.hook_resid_mid`).data, enc.ids.length, set.dModel);
      const acts = encode(set, layer, x, enc.ids.length);
      const values = Array.from({ length: enc.ids.length }, (_, t) => acts[t * set.dTranscoder + best.index]);
      assert.ok(Math.abs(Math.max(...values) - best.maxActivation) <= 1e-3 * Math.max(1, best.maxActivation), `${Math.max(...values)} vs ${best.maxActivation}`);

      // The dashboard: the user's label keyed by set and layer, the stats, and logit effects through W_dec.
      const root = scratchDir("tc-labels");
      fs.mkdirSync(path.join(root, ".loupe"));
      const key = transcoderLabelKey(root, plt, layer);
      fs.writeFileSync(path.join(root, ".loupe", "feature-labels.json"), JSON.stringify({ version: 1, saes: { [key]: { [String(best.index)]: "ball giver" } } }));
      const board = transcoderFeatureDashboard(model, set, plt, layer, best.index, { workspaceRoot: root });
      assert.equal(board.label, `L${layer}/${best.index} ball giver`);
      assert.equal(board.summary?.density, best.density);
      assert.deepEqual(board.summary?.topContexts, best.topContexts);
      assert.deepEqual(board.logits, best.logits);
      const unlabelled = transcoderFeatureDashboard(model, set, plt, layer, best.index);
      assert.equal(unlabelled.userLabel, null);
      assert.match(unlabelled.label, new RegExp(`^L${layer}/${best.index}( ~|$)`));
      // Without statistics the dashboard still has the logit effects, computed from the decoder.
      const bare = path.join(dir, "plt-bare");
      fs.mkdirSync(bare, { recursive: true });
      for (const f of fs.readdirSync(plt).filter((f) => !f.includes("feature-stats"))) fs.copyFileSync(path.join(plt, f), path.join(bare, f));
      const unsummarised = transcoderFeatureDashboard(model, loadTranscoders(bare), bare, layer, best.index);
      assert.equal(unsummarised.summary, null);
      assert.deepEqual(unsummarised.logits.promoted.slice(0, 5).map((t) => t.id), best.logits!.promoted.slice(0, 5).map((t) => t.id));
      // Stats written for another set are refused, naming the file.
      fs.copyFileSync(path.join(plt, "layer_0.feature-stats.json"), path.join(bare, "layer_1.feature-stats.json"));
      assert.throws(() => transcoderFeatureDashboard(model, loadTranscoders(bare), bare, layer, 0), /layer_1\.feature-stats\.json describes features at blocks\.0\.mlp\.hook_in/);
      assert.throws(() => transcoderFeatureDashboard(model, set, plt, 2, 0), /Layer 2 is outside 0\.\.1/);
    } finally {
      await model.dispose();
    }
  });

  it("refuses a target the tokenizer splits, and an unknown subcommand", async () => {
    await rejectsWith(run(["trace", prompt, "--transcoders", plt, "--answer", " Leopardtastic"]), "bad-argument", /is \d+ tokens for this tokenizer .*a graph's target is one next token/);
    await rejectsWith(run(["transcoder", "fit", "x"]), "bad-argument", /the subcommands are "train" and "stats"/);
    await rejectsWith(run(["trace", prompt, "--transcoders", plt, "--contrast", " Leo"]), "bad-argument", /contrast.*needs an answer/);
  });
});
