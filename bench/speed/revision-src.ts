/** A git revision's src/ beside this checkout's node_modules, for benchmarks that time the code before a change in the same run. */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const REPO = path.join(__dirname, "..", "..");

/** `rev`'s src/ extracted into a temporary folder (remove it when done); import modules from `${dir}/src/...`. */
export function revisionSrc(rev: string, prefix = "loupe-baseline-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const archive = execFileSync("git", ["-C", REPO, "archive", rev, "src"], { maxBuffer: 1 << 28 });
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  fs.symlinkSync(fs.realpathSync(path.join(REPO, "node_modules")), path.join(dir, "node_modules"));
  return dir;
}
