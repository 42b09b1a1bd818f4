/**
 * No network at run time: the main CLI commands and the worker (the editor's path) run on the
 * bundled model with every Node network API wrapped, recorded and blocked by a preload that
 * forked processes inherit (test/reliability/net-watch.cjs). A deliberate attempt through each
 * API first proves the watch sees what it must.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { cliCommands, DELIBERATE_APIS, networkScratch, readAttempts, ROOT, runDeliberateAttempts, runWatched, runWorkerWatched, unexpectedLocal } from "../../reliability/network";
import { TINY_GPT2 } from "../../helpers/fixtures";
import { cacheRepo, folderFiles } from "../../helpers/hub-cache";

describe("network", function () {
  this.timeout(300_000);
  const scratch = networkScratch();
  after(() => fs.rmSync(scratch.dir, { recursive: true, force: true }));

  it("the watch records and blocks a deliberate attempt through every network API", () => {
    const { log } = networkScratch();
    const run = runDeliberateAttempts(log);
    assert.equal(run.status, 0, run.stderr);
    const seen = new Set(readAttempts(log).filter((a) => a.kind === "network").map((a) => a.api));
    for (const api of DELIBERATE_APIS) assert.ok(seen.has(api), `the watch missed ${api}; it saw ${[...seen].join(", ")}`);
  });

  it("inspect, generate, faithfulness, audit, attribute, patch and probe train make no network attempt", () => {
    for (const command of cliCommands(scratch.dir)) {
      const run = runWatched(command.name, command.args, scratch.log);
      // faithfulness exits 1 when it judges the reasoning decorative, as this example is.
      assert.ok(run.status === 0 || (command.name === "faithfulness" && run.status === 1), `${command.name} failed (${run.status}): ${run.stderr}`);
    }
    const attempts = readAttempts(scratch.log);
    assert.ok(attempts.filter((a) => a.kind === "loaded").length >= 7, "every command ran with the watch loaded");
    assert.deepEqual(attempts.filter((a) => a.kind === "network"), []);
    assert.deepEqual(unexpectedLocal(attempts), [], "only the test's TypeScript loader opens a local socket");
  });

  it("a model loaded by repo id makes no call; only loupe pull opens connections, and not even it with HF_HUB_OFFLINE=1", () => {
    const { dir, log } = networkScratch();
    const cli = path.join(ROOT, "src", "cli", "main.ts");
    // An endpoint nothing listens on: a call would be refused by the watch before it got there anyway.
    const env = { HF_HUB_CACHE: path.join(dir, "hub"), HF_ENDPOINT: "http://127.0.0.1:9", HF_HOME: path.join(dir, "hf-home"), HF_TOKEN: "" };
    cacheRepo(env.HF_HUB_CACHE, "loupe-test/tiny-gpt2", folderFiles(TINY_GPT2));
    const inspect = runWatched("inspect by repo id", [cli, "inspect", "--model", "loupe-test/tiny-gpt2", path.join(ROOT, "bench", "examples", "story.txt")], log, env);
    assert.equal(inspect.status, 0, inspect.stderr);
    const offline = runWatched("pull offline", [cli, "pull", "loupe-test/tiny-gpt2"], log, { ...env, HF_HUB_OFFLINE: "1" });
    assert.equal(offline.status, 2);
    assert.match(offline.stderr, /HF_HUB_OFFLINE is set/);
    assert.deepEqual(readAttempts(log).filter((a) => a.kind === "network"), [], "no call from inspect or an offline pull");

    const pull = runWatched("pull", [cli, "pull", "loupe-test/tiny-gpt2"], log, env);
    assert.equal(pull.status, 2);
    assert.match(pull.stderr, /Could not reach http:\/\/127\.0\.0\.1:9/);
    const attempts = readAttempts(log).filter((a) => a.kind === "network");
    assert.ok(attempts.length > 0, "the pull tried to connect");
    assert.ok(attempts.every((a) => a.argv[1] === "pull" && a.target.includes("127.0.0.1:9")), JSON.stringify(attempts));
  });

  it("the worker process, forked as the editor forks it, inherits the watch and makes no attempt", async () => {
    const { log } = networkScratch();
    const run = await runWorkerWatched(log);
    assert.equal(run.status, 0, run.stderr);
    const attempts = readAttempts(log);
    assert.ok(attempts.some((a) => a.kind === "loaded" && a.argv.some((x) => x.endsWith("main.ts") && x.includes("worker"))), "the forked worker loaded the watch");
    assert.deepEqual(attempts.filter((a) => a.kind === "network"), []);
    assert.deepEqual(unexpectedLocal(attempts), []);
  });
});
