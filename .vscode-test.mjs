// @vscode/test-cli configuration: `npx vscode-test` downloads VS Code 1.100.3 (@vscode/test-electron),
// loads this repository as the extension under development and runs test/integration/ in its
// extension host. It needs dist/ (npm run build) and network access to download VS Code once
// (cached in .vscode-test/). The same tests run inside code-server, offline, from test/e2e/integration.e2e.ts.
import { defineConfig } from "@vscode/test-cli";
import * as esbuild from "esbuild";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(fileURLToPath(import.meta.url));

// The extension host loads plain JavaScript: bundle each test file (vscode and mocha stay external).
const tests = fs.readdirSync(path.join(root, "test", "integration")).filter((f) => f.endsWith(".test.ts"));
esbuild.buildSync({
  entryPoints: tests.map((f) => path.join(root, "test", "integration", f)),
  outdir: path.join(root, "out", "test", "integration"),
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: "inline",
  external: ["vscode", "mocha"],
  logLevel: "warning",
});

export default defineConfig({
  label: "integration",
  files: "out/test/integration/**/*.test.js",
  version: "1.100.3",
  extensionDevelopmentPath: root,
  // --no-sandbox: CI runs as root, where Electron's sandbox refuses to start (Linux also needs a display: xvfb-run).
  launchArgs: ["--disable-extensions", "--disable-workspace-trust", "--skip-welcome", "--skip-release-notes", "--no-sandbox", "--disable-gpu"],
  env: {
    // Built ONNX graphs go to a throwaway folder, never the user's cache.
    LOUPE_CACHE_DIR: process.env.LOUPE_CACHE_DIR ?? path.join(os.tmpdir(), "loupe-integration-cache"),
  },
  mocha: {
    ui: "bdd",
    timeout: 180000,
    slow: 10000,
  },
});
