/**
 * SAE feature dashboard front end: the feature's label (editable), density and activation
 * summary, a histogram of log10 activations, top-activating contexts with each token shaded by
 * the feature's activation, and the tokens its decoder direction promotes and suppresses. All text
 * is set with textContent; nothing from the data is parsed as HTML.
 */
import "@vscode-elements/elements/dist/vscode-textfield/index.js";
import type { FeatureDashboardRequest, FeatureDashboardState } from "../../src/core/view/feature-dashboard";
import { el, button } from "../shared/dom";
import { featureStatsElements, hasFeatureStats, neuronpediaLink } from "../shared/feature-card";
import { connectPanel } from "../shared/panel";

const vscode = connectPanel<FeatureDashboardState, FeatureDashboardRequest>((state) => {
  current = state;
  render();
});

let current: FeatureDashboardState | undefined;

function render(): void {
  const state = current;
  const root = document.getElementById("root")!;
  root.replaceChildren();
  if (!state) return;
  root.append(el("h1", `Feature #${state.feature}${state.label ? `: ${state.label}` : ""}`));
  const where = el("p", `${state.sae} · ${state.hook_name} · d_sae ${state.d_sae}`, "muted");
  const link = neuronpediaLink(state.neuronpediaUrl);
  if (link) where.append(" · ", link);
  root.append(where);

  const controls = el("div", undefined, "controls");
  const field = document.createElement("vscode-textfield") as HTMLElement & { value: string };
  field.setAttribute("value", state.label);
  field.setAttribute("placeholder", "your label for this feature");
  field.setAttribute("aria-label", "feature label");
  const save = () => vscode.postMessage({ type: "label", feature: state.feature, label: field.value ?? "" });
  field.addEventListener("keydown", (e) => (e as KeyboardEvent).key === "Enter" && save());
  const jump = document.createElement("vscode-textfield") as HTMLElement & { value: string };
  jump.setAttribute("placeholder", "feature #");
  jump.setAttribute("aria-label", "go to feature");
  const go = () => {
    const f = Number(jump.value);
    if (Number.isInteger(f) && f >= 0 && f < state.d_sae) vscode.postMessage({ type: "open", feature: f });
  };
  jump.addEventListener("keydown", (e) => (e as KeyboardEvent).key === "Enter" && go());
  controls.append(field, button("Save label", save), el("span", " "), button("◀", () => state.feature > 0 && vscode.postMessage({ type: "open", feature: state.feature - 1 })), jump, button("Go", go), button("▶", () => state.feature + 1 < state.d_sae && vscode.postMessage({ type: "open", feature: state.feature + 1 })), el("span", " "), button("Steer with it…", () => vscode.postMessage({ type: "steer", feature: state.feature })));
  root.append(controls);

  if (!hasFeatureStats(state)) {
    root.append(el("p", state.note ?? "No statistics for this SAE.", "note"));
    return;
  }
  root.append(...featureStatsElements(state, "h2"));
}
