/**
 * An SAE's feature-stats.json (up to 256 MB) and the workspace's .loupe/feature-labels.json (up to
 * 16 MB) are parsed here, in the backend, never on the editor's thread: a near-cap file takes
 * seconds to parse and would freeze the extension host. What comes back is what a view shows (one
 * feature's dashboard, the picker's entries, the labels of the features on screen), never a whole
 * file: a large reply would cost the editor its deserialisation instead.
 */
import { LoupeError } from "../errors";
import { labelIn, readFeatureLabels, setFeatureLabel, writeFeatureLabels } from "../sae/feature-labels";
import { featureDashboardState, featurePickItems, type FeatureDashboardState, type FeaturePick } from "../view/feature-dashboard";
import { request } from "./request";

/** The labels file and, for a file inside the workspace, the root it must stay in (no links out). */
export interface LabelsFileParams {
  readonly file: string;
  readonly root?: string;
  /** The SAE's key in the file (saeLabelKey). */
  readonly key: string;
}

export interface FeatureDashboardParams {
  readonly saeFolder: string;
  readonly feature: number;
  readonly d_sae: number;
  readonly hook_name: string;
  /** The SAE as shown to the user (and given to `loupe features --sae`): RELEASE/SAE_ID for a published one, else its folder. */
  readonly sae: string;
  readonly label?: string;
  readonly neuronpedia?: string;
}

export interface FeaturePicksParams {
  readonly saeFolder: string;
  readonly d_sae: number;
  /** Where the user's labels are, when a workspace is open. */
  readonly labels?: LabelsFileParams;
}

export interface FeaturePicks {
  readonly items: FeaturePick[];
  readonly hasStats: boolean;
  /** Why the stats or labels were left out (a broken file), to show once each. */
  readonly warnings: string[];
}

/** What a view needs to know of an SAE: read by the backend, which knows every folder layout (SAELens, Gemma Scope, Llama Scope). */
export interface SaeSummary {
  readonly d_sae: number;
  readonly hook_name: string;
  readonly neuronpedia_id?: string;
}

export const FEATURE_FILE_REQUESTS = {
  /** The SAE's width, hook and Neuronpedia id (the editor never reads an SAE's files itself: a Gemma Scope folder has no cfg.json). */
  saeSummary: request<{ readonly saeFolder: string }, SaeSummary>(async (session, { saeFolder }) => {
    const { d_sae, hook_name, neuronpedia_id } = session.saes.sae(saeFolder).cfg;
    return { d_sae, hook_name, ...(neuronpedia_id ? { neuronpedia_id } : {}) };
  }),
  /** One feature's dashboard from the SAE's feature-stats.json (parsed and checked against the SAE once per file version). */
  featureDashboard: request<FeatureDashboardParams, FeatureDashboardState>(async (session, { saeFolder, ...args }) => {
    const { stats, densities, statsFile } = session.saes.get(saeFolder);
    return featureDashboardState({ ...args, stats, statsFile, sparsityDensity: densities?.[args.feature] });
  }),
  /** A feature's largest activation on the stats corpus (a clamp value in its range); null without usable stats. */
  featureMaxActivation: request<{ readonly saeFolder: string; readonly feature: number }, number | null>(async (session, { saeFolder, feature }) => {
    // A broken file: the picker and the dashboard say so.
    return orNone(() => session.saes.get(saeFolder).stats, undefined, [])?.features[feature]?.maxActivation ?? null;
  }),
  /** The Explore / Steer picker's entries; a broken stats file is reported and the picker offered without it. */
  featurePicks: request<FeaturePicksParams, FeaturePicks>(async (session, { saeFolder, d_sae, labels: where }) => {
    const warnings: string[] = [];
    const labels = where ? orNone(() => saeLabels(where), {}, warnings) : {};
    const stats = orNone(() => session.saes.get(saeFolder).stats, undefined, warnings);
    const items = featurePickItems(d_sae, (f) => labelIn(labels, f), stats, Object.keys(labels).map(Number));
    return { items, hasStats: stats !== undefined, warnings };
  }),
  /** The labels of the given features of one SAE (feature index -> label); none when the file does not exist. */
  featureLabels: request<LabelsFileParams & { readonly features: readonly number[] }, Record<string, string>>(async (_session, { features, ...where }) =>
    pick(saeLabels(where), features),
  ),
  /** Set (or, with an empty label, remove) one label: read, change, write, keeping what others saved meanwhile. */
  setFeatureLabel: request<LabelsFileParams & { readonly feature: number; readonly label: string }, void>(async (_session, { file, root, key, feature, label }) => {
    const options = root === undefined ? {} : { root };
    writeFeatureLabels(file, setFeatureLabel(readFeatureLabels(file, options), key, feature, label), options);
  }),
};

/** One SAE's labels from the file (feature index -> label). */
function saeLabels({ file, root, key }: LabelsFileParams): Readonly<Record<string, string>> {
  const labels = readFeatureLabels(file, root === undefined ? {} : { root });
  return Object.hasOwn(labels.saes, key) ? labels.saes[key] : {};
}

function pick(labels: Readonly<Record<string, string>>, features: readonly number[]): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const f of features) {
    const label = labelIn(labels, f);
    if (label !== undefined) out[String(f)] = label;
  }
  return out;
}

/** `read()`, or `none` with the reason kept when the file is broken (a LoupeError); other errors pass. */
function orNone<T, N>(read: () => T, none: N, warnings: string[]): T | N {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof LoupeError)) throw error;
    warnings.push(error.message);
    return none;
  }
}
