/** The packaged VSIX (npm run package): what it holds, and that nothing else got in. */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT, vsixPath } from "./code-server";
import { vsixProblems } from "../../tools/package/vsix-contents";
import { listZip, readZipEntry } from "../../tools/package/zip";

/** Every file the VSIX may hold. */
const ALLOWED = [
  /^extension\.vsixmanifest$/,
  /^\[Content_Types\]\.xml$/,
  /^extension\/(package\.json|readme\.md|changelog\.md|LICENSE\.txt)$/,
  /^extension\/dist\/(extension|worker|cli)\.js$/,
  /^extension\/dist\/webview\/[\w-]+\.js$/,
  /^extension\/media\//,
  /^extension\/schemas\/[\w.-]+\.json$/,
  /^extension\/models\/reference\/(sae\/[\w.-]+\/|transcoders\/(plt|clt)\/)?[\w.-]+$/,
  /^extension\/node_modules\/onnxruntime-node\/(package\.json|dist\/[\w-]+\.js)$/,
  /^extension\/node_modules\/onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/(onnxruntime_binding\.node|libonnxruntime\.so\.1)$/,
  /^extension\/node_modules\/onnxruntime-common\/(package\.json|dist\/cjs\/[\w-]+\.js|dist\/cjs\/package\.json)$/,
];

/** Files without which the installed extension cannot work. */
const REQUIRED = [
  "extension/package.json",
  "extension/LICENSE.txt",
  "extension/dist/extension.js",
  "extension/dist/worker.js",
  "extension/dist/cli.js",
  "extension/schemas/audit.schema.json",
  "extension/models/reference/config.json",
  "extension/models/reference/model.safetensors",
  "extension/models/reference/tokenizer.json",
  // The default set of Loupe: Trace Circuit… on the bundled model.
  "extension/models/reference/transcoders/plt/config.yaml",
  "extension/models/reference/transcoders/plt/layer_0.safetensors",
  "extension/node_modules/onnxruntime-node/package.json",
  "extension/node_modules/onnxruntime-node/dist/index.js",
  "extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node",
  "extension/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1",
  "extension/node_modules/onnxruntime-common/package.json",
  "extension/node_modules/onnxruntime-common/dist/cjs/index.js",
  "extension/node_modules/onnxruntime-common/dist/cjs/package.json",
];

describe("the packaged VSIX", () => {
  it("is a linux-x64 package with the bundles, the CPU runtime and the reference model, and nothing else", () => {
    const file = vsixPath();
    const entries = listZip(file);
    const names = entries.map((e) => e.name);
    const size = fs.statSync(file).size;
    const unpacked = entries.reduce((s, e) => s + e.size, 0);
    console.log(`      ${file}: ${(size / 1e6).toFixed(2)} MB, ${entries.length} files, ${(unpacked / 1e6).toFixed(2)} MB unpacked`);

    for (const name of REQUIRED) assert.ok(names.includes(name), `the VSIX holds ${name}`);
    const unexpected = names.filter((n) => !ALLOWED.some((re) => re.test(n)));
    assert.deepEqual(unexpected, [], "no file outside the allow-list (source maps, sources, other platforms, dev dependencies)");
    // Each webview the extension bundles must be there too (dist/webview/<panel>.js per webview/<panel>/main.ts).
    const webviews = path.join(REPO_ROOT, "webview");
    for (const panel of fs.existsSync(webviews) ? fs.readdirSync(webviews).filter((d) => fs.existsSync(path.join(webviews, d, "main.ts"))) : []) {
      assert.ok(names.includes(`extension/dist/webview/${panel}.js`), `the VSIX holds the ${panel} webview bundle`);
    }

    const manifest = readZipEntry(file, entries.find((e) => e.name === "extension.vsixmanifest")!).toString("utf8");
    assert.match(manifest, /TargetPlatform="linux-x64"/);
    // The same check npm run package:all applies to every platform's VSIX.
    assert.deepEqual(vsixProblems("linux-x64", names, manifest), []);
    const pkg = JSON.parse(readZipEntry(file, entries.find((e) => e.name === "extension/package.json")!).toString("utf8")) as { main: string };
    assert.equal(pkg.main, "./dist/extension.js");
    // 31.1 MB with the retrained transcoder sets (the PLT has a skip connection) and their feature statistics; the CPU runtime is 45 MB of it unpacked.
    assert.ok(size < 32e6, `the VSIX stays small (${(size / 1e6).toFixed(2)} MB)`);
  });
});
