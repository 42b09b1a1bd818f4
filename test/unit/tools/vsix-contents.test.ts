import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ignoreFileFor, ORT_BIN, runtimeFiles, VSIX_TARGETS } from "../../../tools/package/targets";
import { manifestTarget, targetFromFileName, vsixProblems } from "../../../tools/package/vsix-contents";

const REPO_ROOT = path.resolve(__dirname, "../../..");
const manifestFor = (target: string) => `<Identity Language="en-US" Id="loupe" Version="0.1.0" Publisher="loupe-dev" TargetPlatform="${target}"/>`;
const common = ["extension.vsixmanifest", "extension/package.json", "extension/dist/worker.js", "extension/node_modules/onnxruntime-node/dist/index.js"];
const packaged = (target: (typeof VSIX_TARGETS)[number]) => [...common, ...runtimeFiles(target).map((f) => `extension/${f}`)];

describe("platform VSIX contents", () => {
  it("each target's runtime files exist in the installed onnxruntime-node, under its own platform folder", () => {
    for (const target of VSIX_TARGETS) {
      const [platform, arch] = target.split("-");
      for (const file of runtimeFiles(target)) {
        assert.ok(file.startsWith(`${ORT_BIN}/${platform}/${arch}/`), file);
        assert.ok(fs.existsSync(path.join(REPO_ROOT, file)), `${file} is installed (onnxruntime-node renamed or dropped it?)`);
      }
      assert.ok(runtimeFiles(target).some((f) => f.endsWith("/onnxruntime_binding.node")), `${target} ships the binding`);
    }
  });

  it("accepts a VSIX holding exactly its own runtime", () => {
    for (const target of VSIX_TARGETS) assert.deepEqual(vsixProblems(target, packaged(target), manifestFor(target)), []);
  });

  it("names another platform's binary, a missing runtime file and a stray native file", () => {
    const names = [...packaged("linux-x64").filter((n) => !n.endsWith("libonnxruntime.so.1")), ...runtimeFiles("win32-x64").map((f) => `extension/${f}`), "extension/models/reference/evil.dylib"];
    const problems = vsixProblems("linux-x64", names, manifestFor("linux-x64"));
    assert.deepEqual(problems, [
      `missing extension/${ORT_BIN}/linux/x64/libonnxruntime.so.1`,
      `extension/${ORT_BIN}/win32/x64/onnxruntime_binding.node is not a linux-x64 runtime file`,
      `extension/${ORT_BIN}/win32/x64/onnxruntime.dll is not a linux-x64 runtime file`,
      "extension/models/reference/evil.dylib is native code outside the linux-x64 runtime folder",
    ]);
  });

  it("refuses files of the right platform that Loupe does not load (DirectML, the duplicate dylib)", () => {
    const extra = [`extension/${ORT_BIN}/win32/x64/DirectML.dll`];
    assert.deepEqual(vsixProblems("win32-x64", [...packaged("win32-x64"), ...extra], manifestFor("win32-x64")), [`${extra[0]} is not a win32-x64 runtime file`]);
    const dup = `extension/${ORT_BIN}/darwin/arm64/libonnxruntime.1.30.0.dylib`;
    assert.equal(vsixProblems("darwin-arm64", [...packaged("darwin-arm64"), dup], manifestFor("darwin-arm64")).length, 1);
  });

  it("checks the manifest's TargetPlatform", () => {
    assert.deepEqual(vsixProblems("win32-arm64", packaged("win32-arm64"), manifestFor("win32-x64")), ["the manifest declares TargetPlatform win32-x64, not win32-arm64"]);
    assert.equal(manifestTarget("<Identity Id='loupe'/>"), undefined);
    assert.deepEqual(vsixProblems("win32-arm64", packaged("win32-arm64"), "<Identity/>"), ["the manifest declares TargetPlatform (none), not win32-arm64"]);
  });

  it("reads the target from the file name", () => {
    assert.equal(targetFromFileName("out/loupe-darwin-arm64.vsix"), "darwin-arm64");
    assert.equal(targetFromFileName("loupe-darwin-x64.vsix"), undefined);
  });

  it("the per-target ignore file adds exactly the target's runtime to the repository's .vscodeignore", () => {
    const base = fs.readFileSync(path.join(REPO_ROOT, ".vscodeignore"), "utf8");
    assert.doesNotMatch(base, /^!.*onnxruntime-node\/bin/m, ".vscodeignore itself ships no binary");
    const ignore = ignoreFileFor("darwin-arm64", base);
    assert.ok(ignore.startsWith(base.trimEnd()));
    const included = ignore.split("\n").filter((l) => l.startsWith("!") && l.includes("/bin/"));
    assert.deepEqual(included, runtimeFiles("darwin-arm64").map((f) => `!${f}`));
  });
});
