/** Turn an error from the worker or core into a message for the user; undefined for cancellation. */
export function describeError(error: unknown): string | undefined {
  const code = typeof error === "object" && error !== null && "code" in error ? (error as { code: unknown }).code : undefined;
  if (code === "cancelled") return undefined;
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith("Loupe") ? message : `Loupe: ${message}`;
}
