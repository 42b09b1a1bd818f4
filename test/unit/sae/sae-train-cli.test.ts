import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { loadSae } from "../../../src/core/sae";
import { readFeatureStats } from "../../../src/core/sae/feature-stats-file";
import { rejectsWith } from "../../helpers/errors";
import { scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const NAMES = ["Mia", "Leo", "Sam", "Ana"];
const THINGS = ["ball", "cup", "book", "hat"];

function writeCorpus(dir: string): string {
  const file = path.join(dir, "corpus.jsonl");
  const lines: string[] = [];
  for (let i = 0; i < 40; i++) {
    const text = `When ${NAMES[i % 4]} and ${NAMES[(i + 1) % 4]} went out, ${NAMES[i % 4]} gave a ${THINGS[i % 4]} to ${NAMES[(i + 1) % 4]}.`;
    const at = text.indexOf(THINGS[i % 4]);
    lines.push(JSON.stringify({ text, spans: [{ start: at, end: at + THINGS[i % 4].length, label: "thing" }] }));
  }
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

describe("loupe sae train", function () {
  this.timeout(120_000);
  const run = (args: string[], signal?: AbortSignal) => {
    let out = "";
    const progress: string[] = [];
    const io = { out: (t: string) => void (out += t), readStdin: () => "", progress: (t: string) => void progress.push(t), signal };
    return main(["sae", "train", ...args, "--model", TINY_GPT2], io).then((code) => ({ code, out, progress }));
  };

  it("trains a TopK SAE on a corpus, saves it in SAELens format with stats, and scores it on held-out texts", async () => {
    const dir = scratchDir("sae-train");
    const out = path.join(dir, "sae");
    const { code, out: text, progress } = await run([writeCorpus(dir), "--hook", "blocks.0.hook_resid_post", "--out", out, "--d-sae", "16", "--k", "4", "--epochs", "2", "--batch", "64", "--stats", "--json"]);
    assert.equal(code, 0);
    const summary = JSON.parse(text);
    const sae = loadSae(out);
    assert.deepEqual([sae.hookName, sae.d_in, sae.d_sae, sae.cfg.architecture, sae.cfg.k], ["blocks.0.hook_resid_post", 32, 16, "topk", 4]);
    assert.equal(summary.heldOutTexts, 4);
    assert.ok(summary.l0 > 0 && summary.l0 <= 4, `L0 ${summary.l0}`);
    assert.ok(summary.varianceExplained > 0, `FVE ${summary.varianceExplained}`);
    assert.ok(Number.isFinite(summary.ceRecovered));
    assert.ok(progress.some((l) => /^gathered \d+ token vectors/.test(l)) && progress.some((l) => /^step \d+\/\d+/.test(l)), progress.join("\n"));
    const stats = readFeatureStats(out, sae)!;
    assert.equal(stats.corpus.texts, 40);
    assert.ok(stats.concepts.some((c) => c.label === "thing"));
  });

  it("stops on cancellation without saving, and refuses bad arguments", async () => {
    const dir = scratchDir("sae-train-bad");
    const corpus = writeCorpus(dir);
    const out = path.join(dir, "never");
    const cancelled = new AbortController();
    cancelled.abort();
    await rejectsWith(run([corpus, "--hook", "blocks.0.hook_resid_post", "--out", out], cancelled.signal), "cancelled", /Cancelled/);
    assert.equal(fs.existsSync(out), false, "nothing saved");
    await rejectsWith(run([corpus, "--out", out]), "bad-argument", /--hook/);
    await rejectsWith(run([corpus, "--hook", "blocks.0.hook_resid_post"]), "bad-argument", /--out DIR/);
    await rejectsWith(run([corpus, "--hook", "blocks.0.hook_resid_post", "--out", out, "--d-sae", "8", "--k", "9"]), "bad-argument", /--k 9 is more than --d-sae 8/);
    await rejectsWith(run([corpus, "--hook", "blocks.0.attn.hook_pattern", "--out", out]), "bad-argument", /per-token hook/);
    await rejectsWith(run([path.join(dir, "missing.jsonl"), "--hook", "blocks.0.hook_resid_post", "--out", out]), "missing-file", /Cannot read/);
  });
});
