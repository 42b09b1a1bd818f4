/**
 * The audit summary webview: counts per rule and a table of findings per file. Static HTML with no
 * script at all; every piece of prompt text is escaped, and the page's CSP allows only the nonce'd
 * style element.
 */
import { RULES, type FileAudit } from "../audit";
import { lineColumn } from "../audit/files";

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export function auditReportHtml(audits: readonly FileAudit[], options: { nonce: string; cspSource: string; title?: string; elapsedMs?: number }): string {
  const counts = new Map<string, number>();
  for (const a of audits) for (const f of a.findings) counts.set(f.code, (counts.get(f.code) ?? 0) + 1);
  const broken = audits.filter((a) => a.error !== undefined);
  const total = [...counts.values()].reduce((s, n) => s + n, 0);
  const ruleRows = [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `<tr><td><code>${escapeHtml(code)}</code></td><td class="n">${n}</td><td>${escapeHtml(RULES[code as keyof typeof RULES]?.description ?? "")}</td></tr>`)
    .join("");
  const fileSections = audits
    .filter((a) => a.findings.length > 0 || a.error !== undefined)
    .map((a) => {
      const rows = a.findings
        .map((f) => {
          const { line, column } = lineColumn(a.text, f.start);
          const excerpt = a.text.slice(f.start, Math.min(f.end, f.start + 120));
          return `<tr class="${f.severity}"><td class="n">${line}:${column}</td><td>${f.severity}</td><td><code>${escapeHtml(f.code)}</code></td><td>${escapeHtml(f.message)}<div class="excerpt">${escapeHtml(excerpt)}</div></td></tr>`;
        })
        .join("");
      const error = a.error !== undefined ? `<p class="error">Could not audit: ${escapeHtml(a.error)}</p>` : "";
      return `<section><h2>${escapeHtml(a.file)}</h2>${error}${rows ? `<table><tr><th>at</th><th>severity</th><th>rule</th><th>finding</th></tr>${rows}</table>` : ""}</section>`;
    })
    .join("");
  const elapsed = options.elapsedMs === undefined ? "" : ` in ${(options.elapsedMs / 1000).toFixed(1)} s`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${options.cspSource}; style-src 'nonce-${options.nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title ?? "Loupe audit")}</title>
<style nonce="${options.nonce}">
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 1.5em 2em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1.5em; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid var(--vscode-panel-border); vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.warning td:nth-child(2) { color: var(--vscode-editorWarning-foreground); }
tr.error td:nth-child(2), .error { color: var(--vscode-editorError-foreground); }
tr.information td:nth-child(2) { color: var(--vscode-editorInfo-foreground); }
.excerpt { font-family: var(--vscode-editor-font-family); opacity: .75; white-space: pre-wrap; margin-top: .2em; }
h2 { font-size: 1.05em; margin-top: 1.5em; }
</style></head>
<body>
<h1>${escapeHtml(options.title ?? "Loupe audit")}</h1>
<p>${audits.length} file(s) audited${elapsed}: ${total} finding(s)${broken.length ? `, ${broken.length} file(s) could not be audited` : ""}.</p>
${ruleRows ? `<table><tr><th>rule</th><th>findings</th><th>what it means</th></tr>${ruleRows}</table>` : "<p>No findings.</p>"}
${fileSections}
</body></html>`;
}
