import * as vscode from "vscode";
import { errorText, LoupeError } from "../core/errors";

/** Turn an error from the worker or core into a message for the user (hints name settings); undefined for cancellation. */
export function describeError(error: unknown): string | undefined {
  const code = typeof error === "object" && error !== null && "code" in error ? (error as { code: unknown }).code : undefined;
  if (code === "cancelled") return undefined;
  const message = errorMessage(error);
  return message.startsWith("Loupe") ? message : `Loupe: ${message}`;
}

/** An error's text as the editor words it: a LoupeError's hint names the setting to change. */
export function errorMessage(error: unknown): string {
  return error instanceof LoupeError ? errorText(error, "editor") : error instanceof Error ? error.message : String(error);
}

/** Show an error the way every Loupe command does (a cancellation says nothing). */
export function showError(error: unknown): void {
  const message = describeError(error);
  if (message) void vscode.window.showErrorMessage(message);
}

/** Run editor work, showing any error it throws. */
export async function reportErrors(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    showError(error);
  }
}
