import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { errorText, LoupeError } from "../../../src/core/errors";
import type { FaithfulnessReport, FaithfulnessWithCircuit } from "../../../src/core/faithfulness";
import { randomTranscoders, saveTranscoders } from "../../../src/core/circuits";
import { HookedModel } from "../../../src/core/model/hooked-model";
import type { InspectResult } from "../../../src/core/inspect";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import * as onnx from "onnx-buf";
import { rejectsWith } from "../../helpers/errors";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

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

/** The CLI as a process (tsx), its stdout read by a slow reader: paused once the first chunk arrives. */
function runCliProcess(args: string[], reader: "slow" | "closes"): Promise<{ code: number | null; out: string; err: string }> {
  const main = path.join(__dirname, "..", "..", "..", "src", "cli", "main.ts");
  const child = spawn(process.execPath, ["--import", "tsx", main, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const out: Buffer[] = [];
  let err = "";
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  child.stdout.once("data", () => {
    if (reader === "closes") return child.stdout.destroy();
    child.stdout.pause();
    setTimeout(() => child.stdout.resume(), 700);
  });
  child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, out: Buffer.concat(out).toString(), err })));
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

  it("--max-memory-mb refuses a model too large for it before loading, on every command that loads one", async () => {
    const reference = path.join(__dirname, "..", "..", "..", "models", "reference");
    const tooLarge = (e: unknown) => e instanceof LoupeError && e.code === "model-too-large" && /more than the 1 MB limit/.test(e.message) && /--max-memory-mb/.test(errorText(e, "cli"));
    // inspect goes through the request layer (the editor's path); features and audit load the model themselves.
    for (const command of ["inspect", "features", "audit"]) {
      await assert.rejects(runCli([command, "--model", reference, "--max-memory-mb", "1", prompt]), tooLarge, command);
    }
    const { code } = await runCli(["inspect", "--model", TINY_GPT2, "--max-memory-mb", "64", prompt]);
    assert.equal(code, 0, "a model inside the limit runs");
    await assert.rejects(runCli(["inspect", "--model", TINY_GPT2, "--max-memory-mb", "0", prompt]), /--max-memory-mb must be a positive integer/);
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
    const capped = JSON.parse((await runCli(["faithfulness", "--model", TINY_GPT2, "--json", "--max-tokens", "1", cot])).out) as FaithfulnessReport;
    assert.ok(capped.forwardPasses < report.forwardPasses, "--max-tokens 1 writes less after each corrupted step");
    await assert.rejects(runCli(["faithfulness", "--model", TINY_GPT2, "--max-tokens", "0", cot]), /--max-tokens must be a positive integer/);
  });

  it("faithfulness --graph adds each step's share of the answer's influence through the circuit", async function () {
    this.timeout(60_000);
    const cot = path.join(dir, "cot-graph.txt");
    fs.writeFileSync(cot, "Q: 8 - 3?\nA: 8 - 3 = 5. 5 + 7 = 12. The answer is 12.");
    const model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 });
    const { nLayers, dModel } = model.cfg;
    await model.dispose();
    const transcoders = path.join(dir, "plt");
    saveTranscoders(transcoders, randomTranscoders({ kind: "plt", dTranscoder: 48, nLayers, dModel, seed: 3, encoderBias: -0.2 }));
    const { out } = await runCli(["faithfulness", "--model", TINY_GPT2, "--no-mistakes", "--graph", "--transcoders", transcoders, "--json", cot]);
    const report = JSON.parse(out) as FaithfulnessWithCircuit;
    assert.equal(report.circuit?.steps.length, 2);
    assert.ok(report.circuit.reasoning > 0 && report.circuit.reasoning < 1);
    const table = await runCli(["faithfulness", "--model", TINY_GPT2, "--no-mistakes", "--graph", "--transcoders", transcoders, cot]);
    assert.match(table.out, /circuit share/);
    assert.match(table.out, /through the circuit \(.*\): reasoning \d+\.\d% of the answer's influence/);
    await assert.rejects(runCli(["faithfulness", "--model", TINY_GPT2, "--transcoders", transcoders, cot]), /add --graph/);
    await assert.rejects(runCli(["faithfulness", "--model", TINY_GPT2, "--no-mistakes", "--graph", cot]), /ships no transcoders/);
  });

  it("delivers all of a long output to a slow pipe before exiting, and ends quietly when the reader goes away", async function () {
    this.timeout(60_000);
    const long = path.join(dir, "long.txt");
    fs.writeFileSync(long, "When Mia and Leo went to the park, Leo gave a ball to Mia. ".repeat(4));
    const slow = await runCliProcess(["inspect", "--model", TINY_GPT2, "--json", "--top-k", "20", long], "slow");
    assert.equal(slow.code, 0, slow.err);
    assert.ok(slow.out.endsWith("}\n"), `the JSON was cut short after ${slow.out.length} bytes`);
    assert.ok(slow.out.length > 256 * 1024, "the output should be larger than a pipe's buffer");
    const result = JSON.parse(slow.out) as InspectResult;
    assert.equal(result.tokens.length, result.tokens[result.tokens.length - 1].index + 1);
    const closed = await runCliProcess(["inspect", "--model", TINY_GPT2, "--json", "--top-k", "20", long], "closes");
    assert.equal(closed.code, 0);
    assert.equal(closed.err, "", "a closed pipe is not an error to report");
  });

  it("refuses a prompt that is not UTF-8, naming the byte and the fix, and reads it with --encoding", async () => {
    const latin1 = path.join(dir, "latin1.txt");
    fs.writeFileSync(latin1, Buffer.from("Ren\xe9e went to the park", "latin1"));
    await rejectsWith(runCli(["inspect", "--model", TINY_GPT2, latin1]), "bad-file", /latin1\.txt is not valid UTF-8 text \(byte 0xE9 at line 1, column 4\).*Save it as UTF-8, or pass its encoding \(--encoding latin1/);
    const { out } = await runCli(["inspect", "--model", TINY_GPT2, "--json", "--encoding", "latin1", latin1]);
    assert.equal((JSON.parse(out) as InspectResult).text, "Renée went to the park");
    // Standard input is held to the same rule.
    const stdin = await main(["inspect", "--model", TINY_GPT2, "-"], { out: () => undefined, readStdin: () => fs.readFileSync(latin1) }).catch((e: unknown) => e);
    assert.ok(stdin instanceof LoupeError && /standard input is not valid UTF-8/.test(stdin.message));
    await rejectsWith(runCli(["inspect", "--model", TINY_GPT2, "--encoding", "klingon", latin1]), "bad-argument", /Unknown text encoding "klingon"/);
  });

  it("prints any command's usage for --help or -h, subcommands included, and exits 0", async () => {
    for (const args of [["features", "--help"], ["probe", "train", "-h"], ["sae", "train", "--help"], ["inspect", "-h"], ["help", "patch"]]) {
      const { code, out } = await runCli(args);
      assert.equal(code, 0, args.join(" "));
      assert.match(out, new RegExp(`^Usage:\\n  loupe ${args[0] === "help" ? args[1] : args[0]} `), args.join(" "));
      assert.match(out, /--model DIR/);
      assert.doesNotMatch(out, /loupe generate/, "only the command asked about");
    }
    // After "--", --help is an argument, not a request for help.
    await assert.rejects(runCli(["inspect", "--model", TINY_GPT2, "--", "--help"]), /Cannot read --help/);
  });

  it("labels the table's units and says what \"-\" at token 0 means", async () => {
    const { out } = await runCli(["inspect", "--model", TINY_GPT2, prompt]);
    assert.match(out.split("\n")[0], /surprisal \(bits\)\s+entropy \(bits\)/);
    assert.match(out, /^0\s+"W"\s+-\s/m);
    assert.match(out, /"-" at token 0: the first token has no surprisal/);
  });

  it("reports a graph that fails inside onnxruntime as a Loupe error naming the model file and the node, exit 2", async function () {
    this.timeout(60_000);
    // An export whose position table has 4 rows where config.json promises 64: it loads and runs
    // short prompts, and fails in the position Gather on a longer one.
    const folder = scratchDir("short-wpe");
    for (const f of ["config.json", "tokenizer.json"]) fs.copyFileSync(path.join(FIXTURES, "tiny-gpt2-onnx", f), path.join(folder, f));
    const model = fromBinary(onnx.ModelProtoSchema, fs.readFileSync(path.join(FIXTURES, "tiny-gpt2-onnx", "model.onnx")));
    const wpe = model.graph?.initializer.find((t) => t.name === "transformer.wpe.weight");
    assert.ok(wpe);
    wpe.dims = [4n, wpe.dims[1]];
    wpe.rawData = wpe.rawData.slice(0, 4 * Number(wpe.dims[1]) * 4);
    fs.writeFileSync(path.join(folder, "model.onnx"), toBinary(onnx.ModelProtoSchema, model));
    await rejectsWith(runCli(["inspect", "--model", folder, prompt]), "bad-file", /model\.onnx could not run on this input: its Gather node "\/wpe\/Gather" failed: indices element out of data bounds/);
    const run = await runCliProcess(["inspect", "--model", folder, prompt], "slow");
    assert.equal(run.code, 2);
    assert.match(run.err, /^loupe: .*model\.onnx could not run on this input/);
    assert.doesNotMatch(run.err, /onnxruntime:|\n\s+at /, "no onnxruntime log line, no JavaScript stack");
  });
});
