/**
 * Settings a repository must not choose for the user. In Restricted Mode VS Code still returns a
 * workspace's `.vscode/settings.json` values from get(); for these keys Loupe reads the inspected
 * layers itself and keeps only the user's own (global) value or the default. The same list is
 * package.json's capabilities.untrustedWorkspaces.restrictedConfigurations, so VS Code shows them
 * as restricted.
 */
export const RESTRICTED_SETTINGS = [
  "loupe.modelPath",
  "loupe.saePath",
  "loupe.transcoderPath",
  // 0 turns the memory guard off; a large value lets a hostile model exhaust memory.
  "loupe.maxModelMemoryMB",
  "loupe.compactWeights",
  "loupe.maxTokens",
  // User regular expressions run on every prompt.
  "loupe.faithfulness.hintPattern",
  "loupe.audit.include",
  "loupe.audit.exclude",
] as const;

/** The layers of a setting as VS Code's WorkspaceConfiguration.inspect() gives them. */
export interface InspectedSetting<T> {
  readonly defaultValue?: T;
  readonly globalValue?: T;
  readonly workspaceValue?: T;
  readonly workspaceFolderValue?: T;
}

/** The value that applies: every layer when the workspace is trusted, only the user's and the default when not. */
export function settingValue<T>(inspected: InspectedSetting<T> | undefined, trusted: boolean, fallback: T): T {
  if (!inspected) return fallback;
  const layers = trusted ? [inspected.workspaceFolderValue, inspected.workspaceValue, inspected.globalValue, inspected.defaultValue] : [inspected.globalValue, inspected.defaultValue];
  return layers.find((v) => v !== undefined) ?? fallback;
}
