/** Errors across the process boundary: a LoupeError keeps its code, file and hint; anything else is a bug. */
import { LoupeError } from "../core/errors";
import type { WireError } from "./protocol";

/**
 * A bug in the worker (an exception that is not a LoupeError). Not a LoupeError on purpose: callers
 * treat LoupeErrors as things the user can fix, and this is not one. Carries the worker's stack.
 */
export class WorkerInternalError extends Error {
  readonly code = "internal";

  constructor(message: string, readonly workerStack?: string) {
    super(message);
    this.name = "WorkerInternalError";
  }
}

export function toWireError(error: unknown): WireError {
  if (error instanceof LoupeError) return { code: error.code, message: error.message, file: error.file, ...(error.hint ? { hint: error.hint } : {}) };
  const message = error instanceof Error ? error.message : String(error);
  const stack = error instanceof Error ? error.stack : undefined;
  return { code: "internal", message: `Internal error in the Loupe worker: ${message}`, stack };
}

export function fromWireError(error: WireError): LoupeError | WorkerInternalError {
  if (error.code === "internal") return new WorkerInternalError(error.message, error.stack);
  return new LoupeError(error.code, error.message, error.file, error.hint);
}

export function cancelled(detail = ""): LoupeError {
  return new LoupeError("cancelled", `Cancelled.${detail ? ` ${detail}` : ""}`);
}
