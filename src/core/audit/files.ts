/**
 * Auditing many prompt files: each file is read, checked and audited on its own, so a broken file
 * (missing, binary, not UTF-8, empty) is reported and the run goes on.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { auditPrompt, type AuditFinding, type ProbeMonitorRunner } from "./audit";
import type { AuditConfig } from "./config";
import { decodeText, type TextOptions } from "../text-file";

export interface FileAudit {
  readonly file: string;
  readonly text: string;
  readonly findings: readonly AuditFinding[];
  readonly skipped: readonly string[];
  /** Why the file could not be audited; findings are empty then. */
  readonly error?: string;
}

/** Largest prompt file read; bigger files are reported rather than loaded. */
export const MAX_PROMPT_BYTES = 1 << 20;

/** Read a prompt file, or say in words why it is not a prompt. */
export function readPromptFile(file: string, textOptions: TextOptions = {}): string {
  let bytes: Buffer;
  try {
    const stat = fs.statSync(file);
    if (stat.isDirectory()) throw new LoupeError("bad-file", `${file} is a folder, not a prompt file.`, file);
    if (stat.size > MAX_PROMPT_BYTES) throw new LoupeError("bad-file", `${file} is ${(stat.size / 1048576).toFixed(1)} MB; prompt files over 1 MB are skipped.`, file);
    bytes = fs.readFileSync(file);
  } catch (error) {
    if (error instanceof LoupeError) throw error;
    throw new LoupeError("missing-file", `Cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}.`, file);
  }
  if (bytes.includes(0)) throw new LoupeError("bad-file", `${file} looks binary (it contains NUL bytes); only text prompts are audited.`, file);
  const text = decodeText(bytes, file, textOptions);
  if (text.trim() === "") throw new LoupeError("empty-input", `${file} is empty.`, file);
  return text;
}

export async function auditFiles(
  model: HookedModel,
  files: readonly string[],
  config: AuditConfig,
  options: { signal?: AbortSignal; probes?: readonly ProbeMonitorRunner[]; onFile?: (done: number, total: number, file: string) => void; text?: TextOptions } = {},
): Promise<FileAudit[]> {
  const out: FileAudit[] = [];
  for (const [i, file] of files.entries()) {
    throwIfAborted(options.signal);
    options.onFile?.(i, files.length, file);
    let text = "";
    try {
      text = readPromptFile(file, options.text);
      const result = await auditPrompt(model, text, config, options);
      out.push({ file, text, findings: result.findings, skipped: result.skipped });
    } catch (error) {
      if (error instanceof LoupeError && error.code === "cancelled") throw error;
      out.push({ file, text, findings: [], skipped: [], error: error instanceof Error ? error.message : String(error) });
    }
  }
  return out;
}

/** 1-based line and column (UTF-16 code units) of an offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Expand file arguments: plain paths as given, globs (`*`, `**`, `?`, `{a,b}`) by walking the tree. */
export function expandGlobs(patterns: readonly string[], cwd = process.cwd()): string[] {
  const found = new Set<string>();
  for (const pattern of patterns) {
    if (!/[*?{]/.test(pattern)) {
      found.add(pattern);
      continue;
    }
    const parts = pattern.split("/");
    const staticParts: string[] = [];
    while (parts.length > 1 && !/[*?{]/.test(parts[0])) staticParts.push(parts.shift()!);
    const root = path.resolve(cwd, staticParts.join("/") || ".");
    const matcher = globToRegExp(parts.join("/"));
    for (const rel of walk(root)) if (matcher.test(rel)) found.add(path.join(path.relative(cwd, root) || ".", rel));
  }
  return [...found].sort();
}

function walk(root: string, prefix = ""): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(root, prefix), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (e.name === "node_modules" || e.name.startsWith(".")) continue;
      out.push(...walk(root, rel));
    } else if (e.isFile()) out.push(rel);
  }
  return out;
}

export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      // "**/" matches any number of folders, including none.
      re += glob[i + 2] === "/" ? "(?:.*/)?" : ".*";
      i += glob[i + 2] === "/" ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "{") {
      const close = glob.indexOf("}", i);
      if (close < 0) re += "\\{";
      else {
        re += `(?:${glob.slice(i + 1, close).split(",").map(escapeRegExp).join("|")})`;
        i = close;
      }
    } else re += escapeRegExp(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
