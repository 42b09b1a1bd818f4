/**
 * An error the user can cause and fix: a bad model folder, a wrong shape, text past the context
 * window. The message names the file or limit and says what to do; `code` lets callers branch.
 */
export class LoupeError extends Error {
  constructor(
    readonly code: LoupeErrorCode,
    message: string,
    readonly file?: string,
    /** A knob the user can turn, named by the surface showing the error (errorText). */
    readonly hint?: LoupeHint,
  ) {
    super(message);
    this.name = "LoupeError";
  }
}

/**
 * What the user can change to get past an error, which the CLI and the editor name differently (a
 * flag, a setting); the message says what happened in words true on both. `memory-limit`: the model
 * memory limit; `featureNodes`, for a circuit, the most feature nodes that fit under it.
 * `transcoder-set`: the dictionary given as an SAE is a transcoder, to give where transcoders go.
 */
export type LoupeHint = { readonly kind: "memory-limit"; readonly featureNodes?: number } | { readonly kind: "transcoder-set" };

/** Where an error is shown. */
export type Surface = "cli" | "editor";

/** The error's message, followed by the hint in the surface's own terms. */
export function errorText(error: LoupeError, surface: Surface): string {
  return error.hint ? `${error.message} ${hintText(error.hint, surface)}` : error.message;
}

function hintText(hint: LoupeHint, surface: Surface): string {
  switch (hint.kind) {
    case "memory-limit": {
      if (surface === "editor") return "The limit is the setting loupe.maxModelMemoryMB.";
      const nodes = hint.featureNodes ? `--max-feature-nodes ${hint.featureNodes} fits; ` : "";
      return `${nodes}the limit is --max-memory-mb.`;
    }
    case "transcoder-set":
      return surface === "editor" ? "Set loupe.transcoderPath to it (Trace Circuit), not loupe.saePath." : "Give it to loupe trace --transcoders, not --sae.";
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
