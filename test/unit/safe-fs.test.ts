/**
 * safe-fs: a repository someone else wrote can plant links under .loupe/ pointing anywhere. Loupe
 * must neither write through them nor read out of the workspace, and must refuse oversized files.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../../src/core/errors";
import { checkFilePath, makeFolder, readTextSafely, readTextSafelyAsync, writeFileSafely } from "../../src/core/safe-fs";
import { scratchDir } from "../helpers/fixtures";

/** A workspace with a .loupe folder and, beside it, a "home" file an attacker would like rewritten. */
function hostile(): { root: string; victim: string } {
  const base = scratchDir("hostile");
  const root = path.join(base, "repo");
  fs.mkdirSync(path.join(root, ".loupe"), { recursive: true });
  const victim = path.join(base, "bashrc");
  fs.writeFileSync(victim, "export PATH=/usr/bin\n");
  return { root, victim };
}

function refusal(code: string, pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof LoupeError && error.code === code && pattern.test(error.message);
}

describe("safe-fs", () => {
  it("refuses to write through a symlink, leaving its target as it was", () => {
    const { root, victim } = hostile();
    const link = path.join(root, ".loupe", "audit.json");
    fs.symlinkSync(path.relative(path.dirname(link), victim), link);
    assert.throws(() => writeFileSafely(link, "{}\n", { root }), refusal("unsafe-path", /symbolic link.*replace it with a plain file/));
    assert.equal(fs.readFileSync(victim, "utf8"), "export PATH=/usr/bin\n");
    assert.ok(fs.lstatSync(link).isSymbolicLink(), "the link itself is left in place");
  });

  it("refuses a dangling symlink rather than creating its target", () => {
    const { root } = hostile();
    const target = path.join(path.dirname(root), "created-by-loupe");
    const link = path.join(root, ".loupe", "feature-labels.json");
    fs.symlinkSync(target, link);
    assert.throws(() => writeFileSafely(link, "{}", { root }), refusal("unsafe-path", /symbolic link/));
    assert.equal(fs.existsSync(target), false);
  });

  it("refuses a file whose folder is a link out of the workspace", () => {
    const { root } = hostile();
    const outside = scratchDir("outside");
    fs.symlinkSync(outside, path.join(root, ".loupe", "probes"));
    assert.throws(() => writeFileSafely(path.join(root, ".loupe", "probes", "p.json"), "{}", { root }), refusal("unsafe-path", /link/));
    assert.deepEqual(fs.readdirSync(outside), []);
    // A whole .loupe that is a link out, and folders yet to be made below it.
    const other = hostile();
    fs.rmSync(path.join(other.root, ".loupe"), { recursive: true });
    fs.symlinkSync(outside, path.join(other.root, ".loupe"));
    assert.throws(() => writeFileSafely(path.join(other.root, ".loupe", "datasets", "a.jsonl"), "x", { root: other.root }), refusal("unsafe-path", /link/));
    assert.deepEqual(fs.readdirSync(outside), []);
  });

  it("refuses paths outside the root as written", () => {
    const { root } = hostile();
    assert.throws(() => writeFileSafely(path.join(root, "..", "escape.json"), "{}", { root }), refusal("unsafe-path", /outside/));
    assert.throws(() => makeFolder(path.join(root, "..", "escape"), { root }), refusal("unsafe-path", /outside/));
  });

  it("creates missing folders and replaces a plain file whole, leaving no temporary file", () => {
    const { root } = hostile();
    const file = path.join(root, ".loupe", "probes", "deep", "p.json");
    writeFileSafely(file, "one", { root });
    writeFileSafely(file, "two", { root });
    assert.equal(fs.readFileSync(file, "utf8"), "two");
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ["p.json"]);
  });

  it("reads refuse links and files over the cap, and report a missing file as undefined", async () => {
    const { root, victim } = hostile();
    const link = path.join(root, ".loupe", "feature-labels.json");
    fs.symlinkSync(victim, link);
    assert.throws(() => readTextSafely(link, { root }), refusal("unsafe-path", /symbolic link/));
    await assert.rejects(readTextSafelyAsync(link, { root }), refusal("unsafe-path", /symbolic link/));
    const big = path.join(root, ".loupe", "big.json");
    fs.writeFileSync(big, Buffer.alloc(2048, 0x20));
    assert.throws(() => readTextSafely(big, { root, maxBytes: 1024 }), refusal("file-too-large", /big\.json is 0\.0 MB, over .*limit/));
    await assert.rejects(readTextSafelyAsync(big, { root, maxBytes: 1024 }), refusal("file-too-large", /Shorten or split it/));
    assert.equal(readTextSafely(path.join(root, ".loupe", "none.json"), { root }), undefined);
    assert.equal((await readTextSafelyAsync(big, { root, maxBytes: 4096 }))?.length, 2048);
  });

  it("without a root (a model folder, maybe a hub-cache snapshot of links) reads follow links", () => {
    const { root, victim } = hostile();
    const link = path.join(root, "config.json");
    fs.symlinkSync(victim, link);
    assert.equal(readTextSafely(link), "export PATH=/usr/bin\n");
    assert.throws(() => readTextSafely(link, { root }), refusal("unsafe-path", /symbolic link/));
  });

  it("refuses a folder where a file is expected", () => {
    const { root } = hostile();
    fs.mkdirSync(path.join(root, ".loupe", "audit.json"));
    assert.throws(() => checkFilePath(path.join(root, ".loupe", "audit.json"), { root }), refusal("unsafe-path", /not a plain file/));
  });
});
