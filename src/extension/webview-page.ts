/**
 * The page of every scripted Loupe panel (probes, patching, feature dashboard): one policy for
 * all of them, so a panel cannot drift to a looser one. The CSP runs only the page's own nonce'd
 * module script, takes styles from the extension and the page's nonce'd block, and loads nothing
 * remote; the panel's script builds everything inside #root.
 */
import { randomBytes } from "node:crypto";
import type * as vscode from "vscode";

export interface PageOptions {
  /** The panel's own CSS, inlined under the page's nonce. */
  readonly css: string;
  /** Allow blob: and data: images (the patching panel renders its PNG export through one). */
  readonly images?: boolean;
  /** data-* attributes for <body>, read by the script at start-up; values are reduced to [\w-]. */
  readonly data?: Readonly<Record<string, string>>;
}

const BASE_CSS = "body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 1.2em 2em; }";

export function scriptedPage(webview: vscode.Webview, script: vscode.Uri, options: PageOptions): string {
  const nonce = randomBytes(16).toString("base64");
  const images = options.images ? " img-src blob: data:;" : "";
  const data = Object.entries(options.data ?? {})
    .map(([key, value]) => ` data-${key.replace(/[^a-z-]/g, "")}="${value.replace(/[^\w-]/g, "")}"`)
    .join("");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none';${images} style-src ${webview.cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}'; font-src ${webview.cspSource};">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="${nonce}">
${BASE_CSS}
${options.css.trim()}
</style></head>
<body${data}><div id="root"></div>
<script nonce="${nonce}" type="module" src="${webview.asWebviewUri(script)}"></script>
</body></html>`;
}
