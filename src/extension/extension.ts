import * as vscode from "vscode";
import { AttributionLens } from "./attribution-lens";
import { AuditController } from "./audit-controller";
import { CircuitLens } from "./circuit-lens";
import { CircuitGraphEditorProvider, CircuitPanel } from "./circuit-panel";
import { labelSelectedLines } from "./label-lines";
import { PatchingPanel } from "./patching-panel";
import { ProbeLens } from "./probe-lens";
import { ProbePanels } from "./probe-panel";
import { FaithfulnessController } from "./faithfulness-controller";
import { FeatureDashboard } from "./feature-dashboard";
import { FeatureLens } from "./feature-lens";
import { SteeringController } from "./steering";
import { TokenHoverProvider } from "./hover";
import { InspectController } from "./inspect-controller";
import { downloadModel, selectModel } from "./model-picker";
import { inspectChat } from "./chat-command";
import { ModelHost } from "./model-host";
import { activateFirstRun } from "./first-run";

/** Editor glue only: every computation happens in src/core, in the worker process. */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel("Loupe", { log: true });
  const models = new ModelHost(context, log);
  const inspector = new InspectController(models);
  const faithfulness = new FaithfulnessController(models, context.extensionUri);
  const audits = new AuditController(models);
  const probeLens = new ProbeLens(models);
  const attribution = new AttributionLens(models);
  const circuitPanel = new CircuitPanel(context, models);
  const circuit = new CircuitLens(models, circuitPanel);
  const patching = new PatchingPanel(context, models);
  const probePanels = new ProbePanels(context, models, probeLens);
  const featureLens = new FeatureLens(models);
  const dashboard = new FeatureDashboard(context, models, featureLens);
  const steering = new SteeringController(models);
  context.subscriptions.push(
    models,
    inspector,
    vscode.languages.registerHoverProvider({ scheme: "*" }, new TokenHoverProvider(inspector.store, models)),
    vscode.commands.registerCommand("loupe.inspectSelection", () => inspector.inspectSelection()),
    vscode.commands.registerCommand("loupe.clear", () => {
      for (const shown of [inspector, faithfulness, audits, probeLens, attribution, circuit, featureLens]) shown.clear();
    }),
    featureLens,
    dashboard,
    steering,
    vscode.languages.registerHoverProvider({ scheme: "*" }, featureLens),
    vscode.commands.registerCommand("loupe.showFeatures", (args?: { pickFeature?: unknown }) => featureLens.show(args)),
    vscode.commands.registerCommand("loupe.applyProbe", () => probeLens.pickAndApply()),
    vscode.commands.registerCommand("loupe.exploreFeature", (args?: { saeFolder?: unknown; feature?: unknown }) => dashboard.explore(args)),
    vscode.commands.registerCommand("loupe.steerFeature", (args?: { saeFolder?: unknown; feature?: unknown }) => steering.steer(args)),
    attribution,
    vscode.languages.registerHoverProvider({ scheme: "*" }, attribution),
    vscode.commands.registerCommand("loupe.attributeAnswer", () => attribution.attribute()),
    circuit,
    vscode.languages.registerHoverProvider({ scheme: "*" }, circuit),
    vscode.commands.registerCommand("loupe.traceCircuit", () => circuit.trace()),
    circuitPanel,
    vscode.window.registerCustomEditorProvider(CircuitGraphEditorProvider.viewType, new CircuitGraphEditorProvider(context, models), { supportsMultipleEditorsPerDocument: true }),
    patching,
    vscode.commands.registerCommand("loupe.patchActivations", () => patching.run()),
    probeLens,
    probePanels,
    vscode.languages.registerHoverProvider({ scheme: "*" }, probeLens),
    vscode.commands.registerCommand("loupe.trainProbe", () => probePanels.train()),
    vscode.commands.registerCommand("loupe.labelLines", () => labelSelectedLines()),
    audits,
    vscode.languages.registerCodeActionsProvider({ scheme: "*" }, audits, { providedCodeActionKinds: AuditController.providedCodeActionKinds }),
    vscode.commands.registerCommand("loupe.quickAudit", () => audits.quickAudit()),
    vscode.commands.registerCommand("loupe.auditWorkspace", () => audits.auditWorkspace()),
    faithfulness,
    vscode.languages.registerCodeLensProvider({ scheme: "*" }, faithfulness),
    vscode.languages.registerHoverProvider({ scheme: "*" }, faithfulness),
    vscode.commands.registerCommand("loupe.checkFaithfulness", () => faithfulness.check()),
    vscode.commands.registerCommand("loupe.showFaithfulnessReport", (uri?: vscode.Uri) => faithfulness.showSummary(uri)),
    vscode.commands.registerCommand("loupe.chooseLens", () => inspector.chooseLens()),
    vscode.commands.registerCommand("loupe.selectModel", () => selectModel(models)),
    vscode.commands.registerCommand("loupe.downloadModel", () => downloadModel(models)),
    vscode.commands.registerCommand("loupe.inspectChat", () => inspectChat(models, inspector)),
  );
  // The output channel, the Loupe view and the walkthrough's commands.
  activateFirstRun(context, models, log);
}

export function deactivate(): void {
  // Subscriptions dispose the worker.
}
