/**
 * Opens each platform VSIX and checks that it holds its own onnxruntime binary and none for other
 * platforms (tools/package/vsix-contents.ts). Exit 1 when any is wrong.
 *
 *   tsx tools/package/check-vsix.ts                       # the five loupe-<target>.vsix files here
 *   tsx tools/package/check-vsix.ts loupe-win32-x64.vsix  # just these
 */
import * as fs from "node:fs";
import { vsixFileName, VSIX_TARGETS } from "./targets";
import { vsixProblems, targetFromFileName } from "./vsix-contents";
import { listZip, readZipEntry } from "./zip";

export interface VsixReport {
  readonly file: string;
  readonly files: number;
  readonly bytes: number;
  readonly problems: string[];
}

export function checkVsixFile(file: string): VsixReport {
  const target = targetFromFileName(file);
  if (!target) return { file, files: 0, bytes: 0, problems: [`${file}: name it loupe-<target>.vsix with a target of ${VSIX_TARGETS.join(", ")}`] };
  if (!fs.existsSync(file)) return { file, files: 0, bytes: 0, problems: [`${file} does not exist: run npm run package:all`] };
  const entries = listZip(file);
  const manifestEntry = entries.find((e) => e.name === "extension.vsixmanifest");
  const manifest = manifestEntry ? readZipEntry(file, manifestEntry).toString("utf8") : "";
  const problems = vsixProblems(
    target,
    entries.map((e) => e.name),
    manifest,
  );
  return { file, files: entries.length, bytes: fs.statSync(file).size, problems };
}

function main(files: string[]): number {
  let failed = 0;
  for (const file of files.length ? files : VSIX_TARGETS.map(vsixFileName)) {
    const report = checkVsixFile(file);
    const size = `${(report.bytes / 1e6).toFixed(1)} MB, ${report.files} files`;
    if (report.problems.length === 0) console.log(`ok    ${file} (${size})`);
    else {
      failed++;
      console.log(`FAIL  ${file} (${size})`);
      for (const problem of report.problems) console.log(`      ${problem}`);
    }
  }
  return failed ? 1 : 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
