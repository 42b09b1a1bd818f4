/**
 * The vscode-API integration suite (test/integration/) run inside code-server's extension host, offline:
 * the same tests @vscode/test-cli runs in VS Code desktop (.vscode-test.mjs), with the same runner
 * (@vscode/test-cli's runner.cjs, options in VSCODE_TEST_OPTIONS), the repository loaded as the
 * extension under development through the workbench's `payload` launch parameters.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { REPO_ROOT, startCodeServer, type CodeServer } from "./code-server";
import { launchBrowser, newPage } from "./workbench";

interface MochaJsonReport {
  stats: { tests: number; passes: number; failures: number; pending: number; duration: number };
  tests: { fullTitle: string; duration?: number; err: { message?: string; stack?: string } }[];
  failures: { fullTitle: string; err: { message?: string; stack?: string } }[];
}

describe("integration suite (test/integration) inside code-server", function () {
  this.timeout(600_000);

  let root: string;
  let server: CodeServer | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
    if (root && !process.env.LOUPE_E2E_KEEP) fs.rmSync(root, { recursive: true, force: true });
  });

  it("passes every test against the extension loaded from this repository", async () => {
    assert.ok(fs.existsSync(path.join(REPO_ROOT, "dist", "extension.js")), "dist/ is built (npm run build)");
    // Loading the @vscode/test-cli configuration bundles test/integration/*.test.ts into out/.
    const config = (await import(pathToFileURL(path.join(REPO_ROOT, ".vscode-test.mjs")).href)).default as {
      files: string;
      mocha: Record<string, unknown>;
    };
    const files = fs
      .readdirSync(path.join(REPO_ROOT, "out", "test", "integration"))
      .filter((f) => f.endsWith(".test.js"))
      .map((f) => path.join(REPO_ROOT, "out", "test", "integration", f));
    assert.ok(files.length > 0, `compiled tests for ${config.files}`);

    root = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-integration-"));
    const workspace = path.join(root, "workspace");
    fs.mkdirSync(workspace);
    const report = path.join(root, "report.json");
    const options = {
      mochaOpts: { ...config.mocha, reporter: "json", reporterOption: { output: report } },
      colorDefault: false,
      preload: [],
      files,
    };
    server = await startCodeServer({ workspace, root, env: { VSCODE_TEST_OPTIONS: JSON.stringify(options) } });

    const authority = new URL(server.url).host;
    const remote = (p: string) => `vscode-remote://${authority}${p}`;
    const payload = [
      ["extensionDevelopmentPath", remote(REPO_ROOT)],
      ["extensionTestsPath", remote(path.join(REPO_ROOT, "node_modules", "@vscode", "test-cli", "out", "runner.cjs"))],
    ];
    browser = await launchBrowser();
    page = await newPage(browser);
    await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);

    const deadline = Date.now() + 480_000;
    while (!fs.existsSync(report)) {
      if (Date.now() > deadline) {
        await page.screenshot({ path: path.join(REPO_ROOT, "test-output", "e2e", "integration-timeout.png") }).catch(() => undefined);
        throw new Error(`no report from the integration suite in code-server after 480 s:\n${server.output()}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 500)); // let the reporter finish writing
    const result = JSON.parse(fs.readFileSync(report, "utf8")) as MochaJsonReport;
    fs.mkdirSync(path.join(REPO_ROOT, "test-output", "e2e"), { recursive: true });
    fs.copyFileSync(report, path.join(REPO_ROOT, "test-output", "e2e", "integration-report.json"));
    for (const t of result.tests) console.log(`      ${t.err?.message ? "✗" : "✓"} ${t.fullTitle}${t.duration !== undefined ? ` (${t.duration} ms)` : ""}`);
    assert.deepEqual(
      result.failures.map((f) => `${f.fullTitle}: ${f.err.message}`),
      [],
      "no failing integration test",
    );
    assert.ok(result.stats.passes >= 6, `all integration tests ran (${result.stats.passes} passed)`);
  });
});
