import { randomBytes } from "node:crypto";
import * as path from "node:path";
import * as vscode from "vscode";
import { AUDIT_CONFIG_FILE, DEFAULT_AUDIT_CONFIG, lineColumn, parseAuditConfig, readPromptFile, type AuditConfig, type FileAudit } from "../core/audit";
import { readTextSafelyAsync } from "../core/safe-fs";
import { auditReportHtml } from "../core/view/audit-report-html";
import type { ModelHost } from "./model-host";
import { errorMessage, reportErrors } from "./errors";
import { runOnSelection } from "./selection-command";
import { restrictedSetting } from "./settings";

const FAITHFULNESS_CODES = new Set(["cot-not-load-bearing", "unverbalised-hint"]);

/**
 * Loupe: Quick Audit (the current file or selection) and Loupe: Audit Workspace Prompts. Findings
 * become Diagnostics with code actions; the workspace audit also opens a summary webview.
 */
export class AuditController implements vscode.Disposable, vscode.CodeActionProvider {
  static readonly providedCodeActionKinds = [vscode.CodeActionKind.QuickFix];
  private readonly diagnostics = vscode.languages.createDiagnosticCollection("loupe-audit");
  private panel: vscode.WebviewPanel | undefined;
  /** The finding behind each diagnostic (code actions receive copies of diagnostics, not ours). */
  private readonly findings = new Map<string, FileAudit["findings"][number]>();

  constructor(private readonly models: ModelHost) {}

  quickAudit(): Promise<void> {
    return runOnSelection(this.models, {
      noEditor: "Loupe: open a prompt file to audit.",
      blank: "Loupe: nothing to audit in this selection.",
      ask: () => this.config(),
      run: async ({ document, text, startOffset }, config) => {
        const result = await this.models.run("audit", { text, config, baseDir: this.baseDir() }, { title: "Loupe: auditing the prompt…" });
        this.diagnostics.set(document.uri, this.toDiagnostics(result.findings, (o) => document.positionAt(startOffset + o)));
        const n = result.findings.length;
        void vscode.window.showInformationMessage(n === 0 ? `Loupe: no findings${result.skipped.length ? ` (${result.skipped.join("; ")})` : ""}.` : `Loupe: ${n} finding(s) in the Problems panel.`);
      },
    });
  }

  async auditWorkspace(): Promise<void> {
    const include = restrictedSetting("loupe.audit", "include", "**/*.{prompt,prompt.md,prompt.txt}");
    const exclude = restrictedSetting("loupe.audit", "exclude", "**/node_modules/**");
    const started = Date.now();
    await reportErrors(async () => {
      const config = await this.config();
      const uris = await vscode.workspace.findFiles(include, exclude, 1000);
      if (uris.length === 0) {
        void vscode.window.showInformationMessage(`Loupe: no prompt files match ${include} (setting loupe.audit.include).`);
        return;
      }
      await this.models.ensureChosenLoaded();
      const audits = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Loupe: auditing prompts", cancellable: true },
        async (progress, token) => {
          const out: FileAudit[] = [];
          for (const [i, uri] of uris.entries()) {
            if (token.isCancellationRequested) break;
            progress.report({ message: `${i + 1}/${uris.length} ${vscode.workspace.asRelativePath(uri)}`, increment: 100 / uris.length });
            out.push(await this.auditFile(uri, config, token));
          }
          return out;
        },
      );
      this.diagnostics.clear();
      this.findings.clear();
      for (const [i, a] of audits.entries()) {
        const at = (o: number) => positionAt(a.text, o);
        this.diagnostics.set(uris[i], this.toDiagnostics(a.findings, at));
      }
      this.showReport(audits, Date.now() - started);
    });
  }

  provideCodeActions(_document: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const actions: vscode.CodeAction[] = [];
    for (const d of context.diagnostics) {
      if (d.source !== "Loupe" || typeof d.code !== "string") continue;
      if (FAITHFULNESS_CODES.has(d.code)) {
        const action = new vscode.CodeAction("Loupe: open the CoT faithfulness view for this prompt", vscode.CodeActionKind.QuickFix);
        action.command = { command: "loupe.checkFaithfulness", title: "Check CoT Faithfulness" };
        action.diagnostics = [d];
        actions.push(action);
      }
      const evidence = this.findings.get(findingKey(d))?.evidence;
      if (d.code === "feature-monitor" && typeof evidence?.saeFolder === "string" && typeof evidence.feature === "number") {
        const action = new vscode.CodeAction(`Loupe: open the dashboard of feature #${evidence.feature}`, vscode.CodeActionKind.QuickFix);
        action.command = { command: "loupe.exploreFeature", title: "Explore SAE Feature", arguments: [{ saeFolder: evidence.saeFolder, feature: evidence.feature }] };
        action.diagnostics = [d];
        actions.push(action);
      }
      if (d.code === "high-surprisal") {
        const action = new vscode.CodeAction("Loupe: inspect these tokens", vscode.CodeActionKind.QuickFix);
        action.command = { command: "loupe.inspectSelection", title: "Inspect Selection" };
        action.diagnostics = [d];
        actions.push(action);
      }
    }
    return actions;
  }

  private async auditFile(uri: vscode.Uri, config: AuditConfig, token: vscode.CancellationToken): Promise<FileAudit> {
    const file = vscode.workspace.asRelativePath(uri);
    let text = "";
    try {
      text = readPromptFile(uri.fsPath);
      const result = await this.models.request("audit", { text, config, baseDir: this.baseDir() }, token);
      return { file, text, findings: result.findings, skipped: result.skipped };
    } catch (error) {
      if ((error as { code?: string }).code === "cancelled") throw error;
      return { file, text, findings: [], skipped: [], error: errorMessage(error) };
    }
  }

  /** `.loupe/audit.json` of the first workspace folder, only in a trusted workspace. */
  private async config(): Promise<AuditConfig> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder || !vscode.workspace.isTrusted) return DEFAULT_AUDIT_CONFIG;
    const text = await readTextSafelyAsync(path.join(folder.uri.fsPath, AUDIT_CONFIG_FILE), { root: folder.uri.fsPath });
    return text === undefined ? DEFAULT_AUDIT_CONFIG : parseAuditConfig(text, AUDIT_CONFIG_FILE);
  }

  private baseDir(): string {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
  }

  private toDiagnostics(findings: FileAudit["findings"], at: (offset: number) => vscode.Position): vscode.Diagnostic[] {
    return findings.map((f) => {
      const severity = f.severity === "error" ? vscode.DiagnosticSeverity.Error : f.severity === "warning" ? vscode.DiagnosticSeverity.Warning : vscode.DiagnosticSeverity.Information;
      const d = new vscode.Diagnostic(new vscode.Range(at(f.start), at(f.end)), f.message, severity);
      d.source = "Loupe";
      d.code = f.code;
      this.findings.set(findingKey(d), f);
      return d;
    });
  }

  private showReport(audits: FileAudit[], elapsedMs: number): void {
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel("loupe.auditReport", "Loupe audit", vscode.ViewColumn.Beside, { enableScripts: false, localResourceRoots: [] });
      this.panel.onDidDispose(() => (this.panel = undefined));
    }
    const nonce = randomBytes(16).toString("base64");
    this.panel.webview.html = auditReportHtml(audits, { nonce, cspSource: this.panel.webview.cspSource, title: `Loupe audit of ${path.basename(this.baseDir())}`, elapsedMs });
    this.panel.reveal(undefined, true);
  }

  clear(): void {
    this.diagnostics.clear();
    this.findings.clear();
  }

  dispose(): void {
    this.diagnostics.dispose();
    this.panel?.dispose();
  }
}

/** Position of an offset in a text that is not open as a document. */
function positionAt(text: string, offset: number): vscode.Position {
  const { line, column } = lineColumn(text, offset);
  return new vscode.Position(line - 1, column - 1);
}

function findingKey(d: vscode.Diagnostic): string {
  const { start, end } = d.range;
  return `${String(typeof d.code === "object" ? d.code.value : d.code)}\u0000${start.line}:${start.character}-${end.line}:${end.character}\u0000${d.message}`;
}
