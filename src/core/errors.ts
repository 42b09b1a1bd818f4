/**
 * An error the user can cause and fix: a bad model folder, a wrong shape, text past the context
 * window. The message names the file or limit and says what to do; `code` lets callers branch.
 */
export class LoupeError extends Error {
  constructor(
    readonly code: LoupeErrorCode,
    message: string,
    readonly file?: string,
  ) {
    super(message);
    this.name = "LoupeError";
  }
}

export type LoupeErrorCode =
  | "missing-file"
  | "bad-file"
  | "bad-shape"
  | "unsupported-architecture"
  | "context-overflow"
  | "empty-input"
  | "bad-argument"
  | "cancelled"
  | "worker-crashed"
  | "tokenizer-mismatch"
  | "model-too-large"
  | "unsafe-path"
  | "file-too-large"
  | "unsafe-pattern"
  | "offline"
  | "download-failed";

/** Thrown by long jobs whose AbortSignal fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new LoupeError("cancelled", "Cancelled.");
}
