/**
 * The platforms Loupe ships a VSIX for, and the native files each one needs. Loupe's only native code
 * is onnxruntime-node's CPU runtime (the tokenizer, @huggingface/tokenizers, is plain JavaScript
 * bundled into dist/). onnxruntime-node 1.30's npm package carries the binaries of every platform
 * below (none for darwin-x64: Intel Macs get no VSIX); `require` picks
 * bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node at run time.
 */

/** vsce's `--target` names, one VSIX each. */
export const VSIX_TARGETS = ["linux-x64", "linux-arm64", "darwin-arm64", "win32-x64", "win32-arm64"] as const;
export type VsixTarget = (typeof VSIX_TARGETS)[number];

/** Where onnxruntime-node keeps its per-platform folders (<platform>/<arch> below it). */
export const ORT_BIN = "node_modules/onnxruntime-node/bin/napi-v6";

/**
 * The files of a platform's folder that Loupe's CPU-only sessions load. Left out on purpose:
 * darwin's libonnxruntime.1.30.0.dylib (a byte-identical copy of libonnxruntime.1.dylib, the name the
 * binding links against: npm packs the symlink as a second file), and Windows' DirectML.dll,
 * dxcompiler.dll and dxil.dll (onnxruntime.dll delay-loads DirectML only for the DirectML execution
 * provider; the DirectX compiler serves the GPU providers), which Loupe never asks for.
 */
const RUNTIME_FILES: Record<VsixTarget, readonly string[]> = {
  "linux-x64": ["onnxruntime_binding.node", "libonnxruntime.so.1"],
  "linux-arm64": ["onnxruntime_binding.node", "libonnxruntime.so.1"],
  "darwin-arm64": ["onnxruntime_binding.node", "libonnxruntime.1.dylib"],
  "win32-x64": ["onnxruntime_binding.node", "onnxruntime.dll"],
  "win32-arm64": ["onnxruntime_binding.node", "onnxruntime.dll"],
};

/** The target's onnxruntime folder, relative to the extension root ("node_modules/…/linux/x64"). */
export function runtimeFolder(target: VsixTarget): string {
  const [platform, arch] = target.split("-");
  return `${ORT_BIN}/${platform}/${arch}`;
}

/** The native files the target's VSIX must hold, relative to the extension root. */
export function runtimeFiles(target: VsixTarget): string[] {
  return RUNTIME_FILES[target].map((file) => `${runtimeFolder(target)}/${file}`);
}

export function vsixFileName(target: VsixTarget): string {
  return `loupe-${target}.vsix`;
}

export function isVsixTarget(name: string): name is VsixTarget {
  return (VSIX_TARGETS as readonly string[]).includes(name);
}

/**
 * The ignore file vsce packages the target with: the repository's .vscodeignore (everything but the
 * platform-free files) plus one "!" line per native file of this target, since vsce packages a file
 * that matches any "!" pattern.
 */
export function ignoreFileFor(target: VsixTarget, baseIgnore: string): string {
  const lines = runtimeFiles(target).map((file) => `!${file}`);
  return `${baseIgnore.trimEnd()}\n\n# ${target}: onnxruntime-node's CPU runtime for this platform only (tools/package/targets.ts).\n${lines.join("\n")}\n`;
}
