// Bundles the extension, the worker, the CLI and the benchmarks as CommonJS for Node 20.
// onnxruntime-node stays external: it carries a native binary that must be loaded from node_modules.
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import * as fs from "node:fs";

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  external: ["vscode", "onnxruntime-node"],
  logLevel: "warning",
};

/**
 * What built the graphs a bundle caches (src/core/model/graph-cache.ts): the package version and a
 * hash of every module the graph builder bundles, so a changed builder never reuses a cached graph.
 */
async function graphBuilderId() {
  const { metafile } = await esbuild.build({ ...common, entryPoints: ["src/core/model/build-graph.ts"], write: false, metafile: true, sourcemap: false });
  const hash = createHash("sha256");
  for (const file of Object.keys(metafile.inputs).sort()) hash.update(file).update("\0").update(fs.readFileSync(file)).update("\0");
  const { version } = JSON.parse(fs.readFileSync("package.json", "utf8"));
  return `${version}+${hash.digest("hex").slice(0, 16)}`;
}
common.define = { LOUPE_GRAPH_BUILDER: JSON.stringify(await graphBuilderId()) };

const entries = {
  "dist/cli": "src/cli/main.ts",
  "dist/worker": "src/worker/main.ts",
  "dist/extension": "src/extension/extension.ts",
};
for (const file of fs.existsSync("bench/speed") ? fs.readdirSync("bench/speed") : []) {
  if (file.endsWith(".ts")) entries[`dist/bench/${file.replace(/\.ts$/, "")}`] = `bench/speed/${file}`;
}

// Webview front ends run in the editor's browser sandbox: one ES bundle per panel.
const webviews = fs.existsSync("webview") ? fs.readdirSync("webview").filter((d) => fs.existsSync(`webview/${d}/main.ts`)) : [];

await Promise.all([
  ...Object.entries(entries)
    .filter(([, input]) => fs.existsSync(input))
    .map(([out, input]) => esbuild.build({ ...common, entryPoints: [input], outfile: `${out}.js` })),
  ...webviews.map((name) =>
    esbuild.build({
      bundle: true,
      platform: "browser",
      target: "es2022",
      format: "esm",
      sourcemap: true,
      logLevel: "warning",
      entryPoints: [`webview/${name}/main.ts`],
      outfile: `dist/webview/${name}.js`,
    }),
  ),
]);
