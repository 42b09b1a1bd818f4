/** What a platform VSIX must and must not hold, checked from its file list and manifest. */
import { ORT_BIN, runtimeFiles, VSIX_TARGETS, type VsixTarget } from "./targets";

/** vsce puts the extension's files under this folder of the VSIX. */
const ROOT = "extension/";

/** Native code of any platform: binaries must come only from the target's onnxruntime folder. */
const NATIVE = /\.(node|so(\.\d+)*|dylib|dll|exe)$/i;

/** The TargetPlatform the manifest declares, or undefined for a platform-neutral VSIX. */
export function manifestTarget(manifest: string): string | undefined {
  return /TargetPlatform="([^"]+)"/.exec(manifest)?.[1];
}

/**
 * Every problem with a VSIX built for `target` (empty when it is right): the manifest names the
 * target, the target's onnxruntime files are all there, and no native file of another platform (or
 * from anywhere else) got in.
 */
export function vsixProblems(target: VsixTarget, entryNames: readonly string[], manifest: string): string[] {
  const problems: string[] = [];
  const declared = manifestTarget(manifest);
  if (declared !== target) problems.push(`the manifest declares TargetPlatform ${declared ?? "(none)"}, not ${target}`);
  const names = new Set(entryNames);
  const wanted = new Set(runtimeFiles(target).map((file) => ROOT + file));
  for (const file of wanted) if (!names.has(file)) problems.push(`missing ${file}`);
  for (const name of entryNames) {
    if (wanted.has(name)) continue;
    if (name.startsWith(`${ROOT}${ORT_BIN}/`)) problems.push(`${name} is not a ${target} runtime file`);
    else if (NATIVE.test(name)) problems.push(`${name} is native code outside the ${target} runtime folder`);
  }
  return problems;
}

/** The target a VSIX file was built for, from its name (loupe-<target>.vsix). */
export function targetFromFileName(file: string): VsixTarget | undefined {
  return VSIX_TARGETS.find((target) => file.endsWith(`-${target}.vsix`));
}
