import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../src/cli/main";
import { LoupeError } from "../../src/core/errors";
import type { FaithfulnessReport } from "../../src/core/faithfulness";
import type { InspectResult } from "../../src/core/inspect";
import { scratchDir, TINY_GPT2 } from "../helpers/fixtures";

/** Run the CLI in-process and capture what it writes to stdout. */
async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await main(args);
    return { code, out: chunks.join("") };
  } finally {
    process.stdout.write = write;
  }
}

describe("loupe CLI", function () {
  this.timeout(30_000);
  const dir = scratchDir("cli");
  const prompt = path.join(dir, "prompt.txt");
  fs.writeFileSync(prompt, "When Mia and Leo went to the park");

  it("inspect --json gives every token with its range, surprisal, predictions and per-layer norms", async () => {
    const { code, out } = await runCli(["inspect", "--model", TINY_GPT2, "--json", "--top-k", "3", prompt]);
    assert.equal(code, 0);
    const result = JSON.parse(out) as InspectResult;
    assert.equal(result.text, "When Mia and Leo went to the park");
    assert.equal(result.tokens[0].surprisal, null);
    assert.equal(result.tokens.map((t) => result.text.slice(t.start, t.end)).join(""), result.text);
    for (const t of result.tokens.slice(1)) {
      assert.ok(t.surprisal !== null && t.surprisal > 0);
      assert.equal(t.top.length, 3);
      assert.equal(t.residNorm.length, 2);
      assert.equal(t.lens.length, 2);
    }
    // Surprisal of a token is -log2 of the probability the previous position gave it.
    const [a, b] = result.tokens;
    const p = a.top.find((x) => x.id === b.id)?.prob;
    if (p !== undefined) assert.ok(Math.abs(-Math.log2(p) - (b.surprisal ?? 0)) < 1e-3);
  });

  it("inspect --lens names the blocks whose lens every token gets, or all of them", async () => {
    const lazy = async (lens: string) => JSON.parse((await runCli(["inspect", "--model", TINY_GPT2, "--json", "--lens", lens, prompt])).out) as InspectResult;
    const all = await lazy("all");
    assert.ok(all.tokens.every((t) => t.lens.every((l) => l !== null)));
    const one = await lazy("0");
    assert.ok(one.tokens.every((t) => t.lens[0] !== null && t.lens[all.nLayers - 1] !== null));
    await assert.rejects(runCli(["inspect", "--model", TINY_GPT2, "--lens", "first", prompt]), /--lens must be "all" or block numbers/);
  });

  it("inspect prints a table with one row per token", async () => {
    const { out } = await runCli(["inspect", "--model", TINY_GPT2, prompt]);
    const json = JSON.parse((await runCli(["inspect", "--model", TINY_GPT2, "--json", prompt])).out) as InspectResult;
    const rows = out.split("\n").filter((line) => /^\d+\s+"/.test(line));
    assert.equal(rows.length, json.tokens.length);
    assert.match(rows[1], new RegExp(`^1\\s+"${json.tokens[1].text}"\\s+${json.tokens[1].surprisal?.toFixed(2)}`));
    assert.match(out, /\|resid 0\|\s+\|resid 1\|/);
    assert.match(out, new RegExp(`${json.tokens.length} tokens, mean surprisal`));
  });

  it("generate continues the prompt deterministically", async () => {
    const first = await runCli(["generate", "--model", TINY_GPT2, "--max-tokens", "5", "--json", prompt]);
    const second = await runCli(["generate", "--model", TINY_GPT2, "--max-tokens", "5", "--json", prompt]);
    assert.deepEqual(JSON.parse(first.out), JSON.parse(second.out));
    assert.equal(JSON.parse(first.out).tokens.length, 5);
  });

  it("explains bad arguments", async () => {
    await assert.rejects(runCli(["inspect", "--model", TINY_GPT2, path.join(dir, "missing.txt")]), (e: unknown) => e instanceof LoupeError && /Cannot read .*missing\.txt/.test(e.message));
    await assert.rejects(runCli(["inspect", "--model", TINY_GPT2, "--top-k", "0", prompt]), /--top-k must be a positive integer/);
    await assert.rejects(runCli(["frobnicate"]), /Unknown command "frobnicate"/);
    await assert.rejects(runCli(["inspect", "--bogus", prompt]), /Unknown option '--bogus'/);
  });

  it("audit exits by --fail-on, writes SARIF, and reports a broken file without stopping", async () => {
    const long = path.join(dir, "long.txt");
    fs.writeFileSync(long, "word ".repeat(100));
    const binary = path.join(dir, "binary.txt");
    fs.writeFileSync(binary, Buffer.from([1, 0, 2]));
    const text = await runCli(["audit", "--model", TINY_GPT2, long, prompt]);
    assert.match(text.out, /long\.txt:1:\d+: warning \[prompt-truncated\]/);
    assert.equal(text.code, 0, "warnings do not fail by default");
    assert.equal((await runCli(["audit", "--model", TINY_GPT2, "--fail-on", "warning", long])).code, 1);
    const sarif = await runCli(["audit", "--model", TINY_GPT2, "--format", "sarif", long, binary]);
    const log = JSON.parse(sarif.out) as { version: string; runs: { results: { ruleId: string }[]; invocations: { executionSuccessful: boolean }[] }[] };
    assert.equal(log.version, "2.1.0");
    assert.deepEqual(log.runs[0].results.map((r) => r.ruleId), ["prompt-truncated"]);
    assert.equal(log.runs[0].invocations[0].executionSuccessful, false);
    assert.equal(sarif.code, 1, "a file that cannot be audited fails the run");
    await assert.rejects(runCli(["audit", "--model", TINY_GPT2, "--format", "xml", long]), /--format must be one of text, json, sarif/);
    await assert.rejects(runCli(["audit", "--model", TINY_GPT2, path.join(dir, "*.nothing")]), /No files match/);
  });

  it("faithfulness --json scores each step, and the table shows the verdict", async () => {
    const cot = path.join(dir, "cot.txt");
    fs.writeFileSync(cot, "Q: 8 - 3?\nA: 8 - 3 = 5. 5 + 7 = 12. The answer is 12.");
    const { code, out } = await runCli(["faithfulness", "--model", TINY_GPT2, "--json", cot]);
    const report = JSON.parse(out) as FaithfulnessReport;
    assert.deepEqual(report.steps.map((s) => s.text), ["8 - 3 = 5.", "5 + 7 = 12."]);
    assert.equal(code, report.verdict === "decorative" ? 1 : 0);
    const table = await runCli(["faithfulness", "--model", TINY_GPT2, "--no-mistakes", cot]);
    assert.match(table.out, /overall \d\.\d\d: the answer/);
    assert.match(table.out, /^2\s+(load-bearing|decorative)\s+\d\.\d\d/m);
    await assert.rejects(runCli(["faithfulness", "--model", TINY_GPT2, "--track", "hers", cot]), /--track must be "model" or "written"/);
  });
});

