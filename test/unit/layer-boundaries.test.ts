/**
 * The layer boundaries of DESIGN.md's rooms, as the type check and the linter enforce them: each case
 * lints or type-checks a small probe file placed (virtually, or in a temporary folder) in one layer,
 * so removing a rule from eslint.config.mjs or a lib/types entry from a tsconfig fails here.
 */
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = path.join(__dirname, "..", "..");
const RULE = "@typescript-eslint/no-restricted-imports";

interface LintMessage {
  readonly ruleId: string | null;
  readonly message: string;
}
interface ESLintApi {
  lintText(code: string, options: { filePath: string }): Promise<{ messages: LintMessage[] }[]>;
}
type ESLintClass = new (options: { cwd: string }) => ESLintApi;

describe("layer boundaries", function () {
  this.timeout(180_000);

  describe("eslint", () => {
    let eslint: ESLintApi;

    before(async () => {
      // The lint toolchain lives in tools/lint/ (typescript-eslint cannot run on the root's TypeScript 7).
      execFileSync("bash", [path.join(ROOT, "tools/lint/lint.sh"), "--install-only"], { stdio: "inherit" });
      const entry = createRequire(path.join(ROOT, "tools/lint/package.json")).resolve("eslint");
      const { ESLint } = (await import(pathToFileURL(entry).href)) as { ESLint: ESLintClass };
      eslint = new ESLint({ cwd: ROOT });
    });

    async function lint(file: string, code: string): Promise<LintMessage[]> {
      const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
      return result.messages;
    }

    const refused: [file: string, code: string, reason: RegExp][] = [
      ["src/core/lint-probe.ts", `import * as vscode from "vscode";\nexport const v = vscode.version;\n`, /src\/core/],
      ["src/core/model/lint-probe.ts", `import { x } from "../../extension/status";\nexport const y = x;\n`, /src\/core/],
      ["src/core/lint-probe.ts", `export { run } from "../worker/server";\n`, /src\/core/],
      ["webview/probe/lint-probe.ts", `import * as fs from "node:fs";\nexport const e = fs.existsSync("a");\n`, /webview/],
      ["webview/probe/lint-probe.ts", `import { join } from "path";\nexport const p = join("a", "b");\n`, /webview/],
      ["webview/probe/lint-probe.ts", `import { spawn } from "child_process";\nexport const s = spawn;\n`, /webview/],
      ["webview/shared/lint-probe.ts", `import * as ort from "onnxruntime-node";\nexport const o = ort;\n`, /webview/],
      ["webview/probe/lint-probe.ts", `import { x } from "../../src/extension/probe-panel";\nexport const y = x;\n`, /webview/],
      // A value import would bundle core (and its Node modules) into the browser sandbox.
      ["webview/probe/lint-probe.ts", `import { x } from "../../src/core/view/probe-panel";\nexport const y = x;\n`, /import type/],
      ["src/worker/lint-probe.ts", `import * as vscode from "vscode";\nexport const v = vscode.version;\n`, /src\/worker/],
      ["src/cli/commands/lint-probe.ts", `import * as vscode from "vscode";\nexport const v = vscode.version;\n`, /src\/cli/],
    ];
    for (const [file, code, reason] of refused) {
      const spec = /from "([^"]+)"/.exec(code)?.[1];
      it(`refuses ${spec} in ${path.dirname(file)}/`, async () => {
        const messages = (await lint(file, code)).filter((m) => m.ruleId === RULE);
        assert.equal(messages.length, 1, JSON.stringify(await lint(file, code)));
        assert.match(messages[0].message, reason);
      });
    }

    const allowed: [file: string, code: string][] = [
      ["src/core/model/lint-probe.ts", `import * as fs from "node:fs";\nexport const e = fs.existsSync("a");\n`],
      ["src/core/model/lint-probe.ts", `import { readWeights } from "./weight-worker";\nexport const r = readWeights;\n`],
      ["webview/probe/lint-probe.ts", `import type { ProbePanelState } from "../../src/core/view/probe-panel";\nexport type S = ProbePanelState;\n`],
      ["src/extension/lint-probe.ts", `import * as vscode from "vscode";\nexport const v = vscode.version;\n`],
      ["src/worker/lint-probe.ts", `import { loadModel } from "../core/model/hooked-model";\nexport const l = loadModel;\n`],
    ];
    for (const [file, code] of allowed) {
      const spec = /from "([^"]+)"/.exec(code)?.[1];
      it(`allows ${spec} in ${path.dirname(file)}/`, async () => {
        assert.deepEqual(await lint(file, code), []);
      });
    }
  });

  describe("per-layer tsconfigs", () => {
    const tsc = path.join(ROOT, "node_modules", ".bin", "tsc");

    /** Type-checks one probe file under a layer's tsconfig; returns tsc's diagnostics ("" when clean). */
    function typeCheck(layer: string, code: string): string {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-layer-"));
      try {
        fs.writeFileSync(path.join(dir, "probe.ts"), code);
        const config = {
          extends: path.join(ROOT, `tsconfig.${layer}.json`),
          // The layer's own types and libs, found in the repository rather than next to the probe.
          compilerOptions: { outDir: path.join(dir, "out"), typeRoots: [path.join(ROOT, "node_modules", "@types")] },
          include: ["probe.ts"],
        };
        fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(config));
        const run = spawnSync(tsc, ["-p", dir, "--pretty", "false"], { encoding: "utf8" });
        return run.stdout + run.stderr;
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }

    it("src/core has no DOM", () => {
      assert.match(typeCheck("core", `export const title = document.title;\n`), /TS2584.*'document'/);
    });
    it("webview/ has no Node types", () => {
      assert.match(typeCheck("webview", `import * as fs from "node:fs";\nexport const e = fs.existsSync("a");\n`), /TS2591.*node:fs/);
      assert.match(typeCheck("webview", `export const cwd = process.cwd();\n`), /TS2591.*'process'/);
    });
    it("each layer still has what it needs", () => {
      assert.equal(typeCheck("core", `import * as fs from "node:fs";\nexport const e: boolean = fs.existsSync("a");\n`), "");
      assert.equal(typeCheck("webview", `export const title: string = document.title;\n`), "");
      assert.equal(typeCheck("node", `export const cwd: string = process.cwd();\n`), "");
    });
  });
});
