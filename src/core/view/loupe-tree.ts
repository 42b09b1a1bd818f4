/**
 * The Loupe view in the activity bar, as plain data: the model in use, its dictionaries, the saved
 * graphs and probes of the workspace and the last results per document. The extension gathers the
 * state and turns each node into a TreeItem; everything the view decides lives here.
 */

/**
 * What clicking a node does: run a Loupe command, or open a file by path or a document by URI (the
 * editor registered for it decides how: graph JSON opens in the graph panel).
 */
export type TreeAction =
  | { readonly command: string; readonly title: string }
  | { readonly openFile: string; readonly title: string }
  | { readonly openUri: string; readonly title: string };

export interface TreeNode {
  /** Stable across refreshes, so the editor keeps expansion and selection. */
  readonly id: string;
  readonly label: string;
  readonly description?: string;
  readonly tooltip?: string;
  /** A codicon name ("package", "folder"). */
  readonly icon?: string;
  readonly action?: TreeAction;
  /** What the view's item menus match on (`viewItem == loupe.model`). */
  readonly contextValue?: string;
  readonly children?: readonly TreeNode[];
  /** Shown expanded the first time. */
  readonly expanded?: boolean;
}

export type ModelSource = "bundled" | "workspace" | "setting";

export interface ModelState {
  readonly folder: string;
  readonly source: ModelSource;
  /** Set once the worker has loaded it. */
  readonly loaded?: { readonly nLayers: number; readonly dVocab: number; readonly nCtx: number };
}

/** A dictionary the current model's commands use (undefined folder: none found, with why). */
export interface DictionaryState {
  readonly folder?: string;
  readonly fromSetting: boolean;
  /** Why there is none, or why it cannot be used. */
  readonly problem?: string;
}

/** A command's last run on a document. */
export interface RunRecord {
  /** The document's URI, as a string. */
  readonly document: string;
  /** How the document is shown (workspace-relative path or title). */
  readonly documentLabel: string;
  /** The request that ran (the catalogue's name: "inspect", "audit", …). */
  readonly method: string;
  readonly elapsedMs: number;
  /** The error's message when it failed. */
  readonly error?: string;
  /** When it finished (ms since the epoch). */
  readonly finishedAt: number;
}

export interface LoupeViewState {
  readonly model: ModelState;
  readonly sae: DictionaryState;
  readonly transcoders: DictionaryState;
  /** Workspace-relative paths of .loupe/graphs/*.json and .loupe/probes/*.json, with their absolute paths. */
  readonly graphs: readonly WorkspaceFile[];
  readonly probes: readonly WorkspaceFile[];
  readonly recent: readonly RunRecord[];
  /** No folder open: graphs and probes have nowhere to be. */
  readonly noWorkspace?: boolean;
}

export interface WorkspaceFile {
  readonly relative: string;
  readonly absolute: string;
}

/** How each request reads in the view ("inspect" -> "Inspect"); unknown ones show their name. */
const RESULT_LABELS: Readonly<Record<string, string>> = {
  inspect: "Inspect",
  features: "SAE features",
  faithfulness: "CoT faithfulness",
  audit: "Quick Audit",
  attribute: "Attribution",
  traceCircuit: "Circuit",
  patch: "Patching",
  applyProbe: "Probe",
  trainProbes: "Probe training",
  steer: "Steering",
};

export function resultLabel(method: string): string {
  return RESULT_LABELS[method] ?? method;
}

const SOURCE_TEXT: Readonly<Record<ModelSource, string>> = {
  bundled: "bundled reference model",
  workspace: "chosen for this workspace",
  setting: "loupe.modelPath",
};

/** The last path segment of a folder or repo id, whichever separator it uses. */
function baseName(folder: string): string {
  return folder.replace(/[\\/]+$/, "").split(/[\\/]/).pop() ?? folder;
}

function modelNodes(model: ModelState): TreeNode[] {
  const loaded = model.loaded ? `${model.loaded.nLayers} layers · d_vocab ${model.loaded.dVocab} · n_ctx ${model.loaded.nCtx}` : "not loaded yet";
  return [
    {
      id: "model/current",
      label: baseName(model.folder),
      description: SOURCE_TEXT[model.source],
      tooltip: `${model.folder}\n${loaded}`,
      icon: model.source === "bundled" ? "package" : "folder-library",
      contextValue: "loupe.model",
      children: [{ id: "model/current/shape", label: loaded, icon: model.loaded ? "pass" : "circle-outline" }],
    },
    { id: "model/select", label: "Select Model…", icon: "arrow-swap", action: { command: "loupe.selectModel", title: "Select Model…" } },
    { id: "model/download", label: "Download Model…", icon: "cloud-download", action: { command: "loupe.downloadModel", title: "Download Model…" } },
  ];
}

function dictionaryNode(id: string, kind: string, state: DictionaryState): TreeNode {
  if (!state.folder) return { id, label: kind, description: state.problem ?? "none", icon: "circle-slash", tooltip: state.problem };
  const where = state.fromSetting ? "from the settings" : "shipped with the model";
  return { id, label: kind, description: baseName(state.folder), tooltip: `${state.folder}\n(${where})${state.problem ? `\n${state.problem}` : ""}`, icon: state.problem ? "warning" : "book" };
}

function fileNodes(prefix: string, files: readonly WorkspaceFile[], icon: string, empty: string): TreeNode[] {
  if (files.length === 0) return [{ id: `${prefix}/none`, label: empty, icon: "info" }];
  return [...files]
    .sort((a, b) => a.relative.localeCompare(b.relative))
    .map((file) => ({ id: `${prefix}/${file.relative}`, label: baseName(file.relative).replace(/\.json$/, ""), description: file.relative, tooltip: file.absolute, icon, action: { openFile: file.absolute, title: "Open" } }));
}

function clock(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function recentNodes(recent: readonly RunRecord[]): TreeNode[] {
  if (recent.length === 0) return [{ id: "recent/none", label: "Nothing run yet: Loupe: Inspect Selection starts", icon: "info", action: { command: "loupe.inspectSelection", title: "Inspect Selection" } }];
  const byDocument = new Map<string, RunRecord[]>();
  for (const run of recent) byDocument.set(run.document, [...(byDocument.get(run.document) ?? []), run]);
  // Most recently used document first; within it, the newest result first.
  const latest = (runs: RunRecord[]) => Math.max(...runs.map((r) => r.finishedAt));
  return [...byDocument.entries()]
    .sort(([, a], [, b]) => latest(b) - latest(a))
    .map(([document, runs]) => ({
      id: `recent/${document}`,
      label: runs[0].documentLabel,
      icon: "file",
      expanded: true,
      action: { openUri: document, title: "Open" },
      children: [...runs]
        .sort((a, b) => b.finishedAt - a.finishedAt)
        .map((run) => ({
          id: `recent/${document}/${run.method}`,
          label: resultLabel(run.method),
          description: run.error ? `failed · ${clock(run.finishedAt)}` : `${Math.round(run.elapsedMs)} ms · ${clock(run.finishedAt)}`,
          tooltip: run.error,
          icon: run.error ? "error" : "check",
          action: { openUri: document, title: "Open" },
        })),
    }));
}

/** The view's top-level sections and everything under them. */
export function buildLoupeTree(state: LoupeViewState): TreeNode[] {
  const noFolder = "Open a folder to keep them in .loupe/";
  return [
    { id: "model", label: "Model", icon: "hubot", expanded: true, children: modelNodes(state.model) },
    {
      id: "dictionaries",
      label: "Dictionaries",
      icon: "library",
      expanded: true,
      children: [dictionaryNode("dictionaries/sae", "SAE", state.sae), dictionaryNode("dictionaries/transcoders", "Transcoder set", state.transcoders)],
    },
    { id: "graphs", label: "Saved graphs", icon: "type-hierarchy", children: state.noWorkspace ? [{ id: "graphs/none", label: noFolder, icon: "info" }] : fileNodes("graphs", state.graphs, "type-hierarchy-sub", "None in .loupe/graphs/") },
    { id: "probes", label: "Probes", icon: "beaker", children: state.noWorkspace ? [{ id: "probes/none", label: noFolder, icon: "info" }] : fileNodes("probes", state.probes, "beaker", "None in .loupe/probes/: Loupe: Train Probe… saves one") },
    { id: "recent", label: "Last results", icon: "history", expanded: true, children: recentNodes(state.recent) },
  ];
}

/**
 * The last run of each command per document, newest documents kept: what the view's "Last results"
 * shows. A rerun replaces the earlier record of the same command on the same document.
 */
export class RecentRuns {
  private readonly runs = new Map<string, RunRecord>();

  constructor(private readonly maxDocuments = 10) {}

  record(run: RunRecord): void {
    const key = `${run.document}\n${run.method}`;
    this.runs.delete(key);
    this.runs.set(key, run);
    const documents = [...new Set([...this.runs.values()].reverse().map((r) => r.document))];
    for (const stale of documents.slice(this.maxDocuments)) {
      for (const [k, r] of this.runs) if (r.document === stale) this.runs.delete(k);
    }
  }

  list(): RunRecord[] {
    return [...this.runs.values()];
  }
}
