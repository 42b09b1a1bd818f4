/**
 * Builds the bundles once, then one VSIX per platform through `vsce package --target`, each with only
 * its own onnxruntime binary, and checks each one (check-vsix.ts). Prints a table of sizes and times.
 *
 *   tsx tools/package/package-all.ts                # npm run package:all: the five targets
 *   tsx tools/package/package-all.ts linux-x64      # npm run package: the one the real-editor suite installs
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { checkVsixFile } from "./check-vsix";
import { ignoreFileFor, isVsixTarget, vsixFileName, VSIX_TARGETS, type VsixTarget } from "./targets";

const REPO_ROOT = path.resolve(__dirname, "../..");

function parseTargets(args: readonly string[]): VsixTarget[] {
  const unknown = args.filter((arg) => !isVsixTarget(arg));
  if (unknown.length) throw new Error(`unknown target ${unknown.join(", ")}: choose from ${VSIX_TARGETS.join(", ")}`);
  return args.length ? (args as VsixTarget[]) : [...VSIX_TARGETS];
}

function packageTarget(target: VsixTarget, ignoreDir: string): string {
  const ignoreFile = path.join(ignoreDir, `${target}.vscodeignore`);
  fs.writeFileSync(ignoreFile, ignoreFileFor(target, fs.readFileSync(path.join(REPO_ROOT, ".vscodeignore"), "utf8")));
  const out = vsixFileName(target);
  // vsce turns the README's relative links (docs/, docs/images/: not shipped) into links into the
  // repository that package.json names, so the Marketplace, Open VSX and the editor show them.
  const vsce = path.join(REPO_ROOT, "node_modules", ".bin", process.platform === "win32" ? "vsce.cmd" : "vsce");
  execFileSync(vsce, ["package", "--target", target, "--ignoreFile", ignoreFile, "--out", out], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
  return path.join(REPO_ROOT, out);
}

function main(): number {
  const targets = parseTargets(process.argv.slice(2));
  const started = performance.now();
  execFileSync(process.execPath, ["esbuild.mjs"], { cwd: REPO_ROOT, stdio: "inherit" });
  const buildMs = performance.now() - started;
  const ignoreDir = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-vscodeignore-"));
  const rows: string[] = [];
  let failed = 0;
  try {
    for (const target of targets) {
      const t0 = performance.now();
      const file = packageTarget(target, ignoreDir);
      const report = checkVsixFile(file);
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      rows.push(`| ${target} | ${(report.bytes / 1e6).toFixed(1)} | ${report.files} | ${seconds} | ${report.problems.length ? "FAIL" : "ok"} |`);
      for (const problem of report.problems) console.error(`${path.basename(file)}: ${problem}`);
      if (report.problems.length) failed++;
    }
  } finally {
    fs.rmSync(ignoreDir, { recursive: true, force: true });
  }
  console.log(`\nbuild ${(buildMs / 1000).toFixed(1)} s, total ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  console.log("| target | VSIX MB | files | s | contents |\n|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  return failed ? 1 : 0;
}

process.exitCode = main();
