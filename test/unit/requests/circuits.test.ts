/**
 * The traceCircuit request (src/core/requests/circuits.ts): the editor's Trace Circuit answers
 * what `loupe trace` and the core graph say, with each token placed in the text.
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { attribute, influence, loadTranscoders, logitWeights, nodeCount, normaliseRows, tokenNode, traceEncoding } from "../../../src/core/circuits";
import { errorText, type LoupeError } from "../../../src/core/errors";
import { InProcessBackend } from "../../../src/core/requests";
import { parseGraphFile } from "../../../src/core/view/circuit-graph";
import { featureEdits, interveneArguments } from "../../../src/core/view/circuit-panel";
import { countShown, prunePanelGraph } from "../../../src/core/view/circuit-prune";
import { readPackedGraph, unpackGraphFile } from "../../../src/core/view/circuit-wire";
import type { TimelineMark } from "../../../src/core/timeline";
import { rejectsWith } from "../../helpers/errors";
import { TINY_GPT2 } from "../../helpers/fixtures";

const REFERENCE = path.join(__dirname, "..", "..", "..", "models", "reference");
const PLT = path.join(REFERENCE, "transcoders", "plt");
const PROMPT = "When Mia and Leo went to the park, Mia gave a ball to";

describe("traceCircuit request", function () {
  this.timeout(300_000);
  let backend: InProcessBackend;
  before(async () => {
    backend = new InProcessBackend();
    await backend.request("load", { folder: REFERENCE, cacheDir: null, threads: 1 });
  });
  after(async () => backend?.dispose());

  it("gives each token's influence on the answer as the core graph computes it, placed in the text", async () => {
    const result = await backend.request("traceCircuit", { text: PROMPT, answer: " Leo" });
    assert.equal(result.transcoders, PLT, "the bundled model's own PLT set by default");
    assert.deepEqual(result.targets.map((t) => t.label), [" Leo"]);

    // Influence recomputed from the core graph: w (Â + Â² + ...) at the token nodes.
    const model = backend.session.model;
    const graph = await attribute(model, loadTranscoders(PLT), traceEncoding(model, PROMPT).ids, { targets: { kind: "token", token: result.targets[0].token ?? -1 } });
    const n = nodeCount(graph.layout);
    const expected = influence(normaliseRows(graph.adjacency, n), n, logitWeights(graph.layout, graph.targets.map((t) => t.probability)));
    assert.equal(result.tokens.length, graph.layout.nTokens);
    result.tokens.forEach((t, pos) => assert.ok(Math.abs(t.influence - expected[tokenNode(graph.layout, pos)]) < 1e-9, `token ${pos}: ${t.influence} vs ${expected[tokenNode(graph.layout, pos)]}`));
    assert.ok(result.tokens.some((t) => t.influence > 0));

    // As circuit-tracer traces it: behind the model's <|endoftext|>, with the empty range [0, 0];
    // the prompt's own offsets cover it, token by token.
    assert.deepEqual(result.tokens[0], { ...result.tokens[0], text: "<|endoftext|>", start: 0, end: 0 });
    const own = result.tokens.slice(1);
    assert.equal(own.map((t) => PROMPT.slice(t.start, t.end)).join(""), PROMPT);
    assert.deepEqual(own.map((t) => PROMPT.slice(t.start, t.end)), own.map((t) => t.text));
  });

  it("agrees with `loupe trace --json` on the scores and the paths", async () => {
    const result = await backend.request("traceCircuit", { text: PROMPT, answer: " Leo", contrast: " Mia" });
    let out = "";
    const io = { out: (t: string) => void (out += t), readStdin: () => `${PROMPT}\n`, progress: () => undefined };
    assert.equal(await main(["trace", "-", "--answer", " Leo", "--contrast", " Mia", "--json", "--model", REFERENCE], io), 0);
    const cli = JSON.parse(out);
    assert.equal(result.replacementScore, cli.replacementScore);
    assert.equal(result.completenessScore, cli.completenessScore);
    assert.deepEqual(result.paths, cli.paths);
    assert.deepEqual(result.tokens.map((t) => t.influence), cli.tokenInfluence);
    for (const p of result.paths) assert.equal(p.nodes[0], `${JSON.stringify(result.tokens[p.fromToken].text)}@${p.fromToken}`);
    assert.ok(result.paths.length > 0 && result.paths.every((p) => /^"/.test(p.nodes[0]) && p.nodes[p.nodes.length - 1] === 'logit " Leo -  Mia"'), JSON.stringify(result.paths));
  });

  it("stamps its stages on the caller's timeline: transcoders, trace, graph file", async () => {
    const timeline: TimelineMark[] = [];
    await backend.request("traceCircuit", { text: PROMPT, answer: " Leo", graphFile: { nodeThreshold: 0.95, edgeThreshold: 0.995 } }, { timeline });
    assert.deepEqual(
      timeline.map((m) => m.hop),
      ["transcoders ready", "trace done", "summary and graph file built"],
    );
    assert.ok(timeline[1].at - timeline[0].at > 0, "the trace takes time between its stamps");
  });

  it("keeps the transcoder set between requests, and refuses a graph past loupe.maxModelMemoryMB before building it", async () => {
    await backend.request("traceCircuit", { text: PROMPT, answer: " Leo" });
    const model = backend.session.model;
    const kept = backend.session.transcoders.get(PLT, model);
    await backend.request("traceCircuit", { text: PROMPT, answer: " Mia" });
    assert.equal(backend.session.transcoders.get(PLT, model), kept, "read from disk once");

    const small = new InProcessBackend();
    try {
      // 12 MB: the 3.8 MB reference model loads, and a batch of rows with its scratch buffers (about
      // 5 MB here) fits beside it, but the whole graph over this prompt needs tens of MB.
      await small.request("load", { folder: REFERENCE, cacheDir: null, threads: 1, maxModelBytes: 12 * 2 ** 20 });
      const refusal = small.request("traceCircuit", { text: PROMPT, answer: " Leo" });
      await rejectsWith(refusal, "model-too-large", /needs about \d+ MB, more than the \d+ MB allowed\. Shorten the prompt or raise the limit\.$/);
      const error = (await refusal.then(() => undefined, (e: unknown) => e)) as LoupeError;
      // The editor has no feature-node option: it names its setting; the CLI names its flags.
      assert.match(errorText(error, "editor"), /raise the limit\. The limit is the setting loupe\.maxModelMemoryMB\.$/);
      assert.match(errorText(error, "cli"), /raise the limit\. --max-feature-nodes \d+ fits; the limit is --max-memory-mb\.$/);
    } finally {
      await small.dispose();
    }
  });

  it("refuses thresholds outside (0, 1] and transcoders of another model, saying which", async () => {
    await rejectsWith(backend.request("traceCircuit", { text: PROMPT, nodeThreshold: 0 }), "bad-argument", /node threshold must be in \(0, 1\]/);
    const tiny = new InProcessBackend();
    try {
      await tiny.request("load", { folder: TINY_GPT2, cacheDir: null, threads: 1 });
      await rejectsWith(tiny.request("traceCircuit", { text: PROMPT }), "bad-argument", /tiny-gpt2 ships no transcoders: name a transcoder folder/);
      await rejectsWith(tiny.request("traceCircuit", { text: PROMPT, transcoders: PLT }), "bad-shape", /transcoders belong to another model/);
    } finally {
      await tiny.dispose();
    }
  });

  it("returns the graph as circuit-tracer's JSON for the panel, saying which model, transcoders and answer", async () => {
    const result = await backend.request("traceCircuit", { text: PROMPT, answer: " Leo", graphFile: { nodeThreshold: 0.95, edgeThreshold: 0.995 } });
    assert.ok(result.graph);
    const graph = parseGraphFile(JSON.stringify(unpackGraphFile(result.graph)), "traced.json");
    // The packed links the worker sends give the panel the same graph as the file Save writes.
    assert.deepEqual(readPackedGraph(result.graph, "traced.json"), graph);
    assert.equal(graph.metadata.prompt, PROMPT);
    assert.deepEqual(graph.metadata.info && { model: graph.metadata.info.model, answer: graph.metadata.info.answer, transcoders: graph.metadata.info.transcoders }, { model: "reference", answer: " Leo", transcoders: PLT });
    assert.equal(graph.tokens.length, result.tokens.length);
    // Looser than the lens's 0.8 / 0.98, so the panel's sliders can prune further.
    const atDefaults = prunePanelGraph(graph, 0.8, 0.98);
    assert.ok(countShown(atDefaults.nodes) < graph.nodes.length && countShown(atDefaults.links) < graph.links.length);
    await rejectsWith(backend.request("traceCircuit", { text: PROMPT, graphFile: { nodeThreshold: 1.5, edgeThreshold: 0.9 } }), "bad-argument", /graph file's node threshold must be in \(0, 1\]/);
    // Over maxLinks, the file is pruned harder, at most to the lens's thresholds, and says so.
    const capped = await backend.request("traceCircuit", { text: PROMPT, answer: " Leo", graphFile: { nodeThreshold: 0.95, edgeThreshold: 0.995, maxLinks: 100 } });
    assert.ok(capped.graph && capped.graph.links.source.length < result.graph.links.source.length);
    assert.deepEqual([capped.graph.metadata.node_threshold, capped.graph.metadata.info?.edge_threshold], [0.8, 0.98]);
    assert.equal(result.graph.metadata.node_threshold, 0.95);
  });

  it("interveneCircuit (the panel's Check) gives `loupe intervene`'s numbers for the same features", async () => {
    const { graph } = await backend.request("traceCircuit", { text: PROMPT, answer: " Leo", graphFile: { nodeThreshold: 0.8, edgeThreshold: 0.98 } });
    assert.ok(graph);
    const parsed = readPackedGraph(graph, "traced.json");
    const ids = parsed.nodes.filter((n) => n.kind === "feature").slice(0, 3).map((n) => n.id);
    const edits = featureEdits(parsed, ids, "scale", 0.5);
    const result = await backend.request("interveneCircuit", { text: PROMPT, answer: " Leo", edits });
    let out = "";
    const io = { out: (t: string) => void (out += t), readStdin: () => `${PROMPT}\n`, progress: () => undefined };
    assert.equal(await main(["intervene", "-", ...interveneArguments(edits).split(" "), "--answer", " Leo", "--json", "--model", REFERENCE], io), 0);
    const cli = JSON.parse(out);
    assert.deepEqual(cli.edits, edits);
    for (const key of ["baseline", "predicted", "constrained", "free"] as const) assert.equal(result[key], cli[key], key);
    assert.ok(Math.abs(result.predicted) > 0, "the edit changes the target");
  });

});
